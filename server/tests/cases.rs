//! The Cases page's list over real HTTP: newest first, a page at a time, narrowed by
//! status, where the chat stands and words; bad filters get a clear JSON error.

mod common;

use common::*;
use parlor_protocol::{CASES_PAGE, CaseStatus, CaseSummary, EndedBy};
use parlor_server::store::NewChat;

/// A chat started straight in the store by its own visitor; returns its case.
async fn case(server: &Server, n: usize, name: &str, subject: &str) -> i64 {
    let chat = NewChat {
        customer_name: name.into(),
        subject: subject.into(),
        location: String::new(),
        client_id: format!("first-{n}"),
        body: "Hello".into(),
        group: None,
        email: Some(format!("customer{n}@example.com")),
        answers: Vec::new(),
    };
    let started = server
        .running
        .state
        .store
        .start_chat(&format!("visitor-token-{n:04}"), &chat)
        .await
        .expect("started");
    started.case
}

async fn list(server: &Server, cookie: &str, query: &str) -> Vec<i64> {
    let cases: Vec<CaseSummary> = server.get_json(&format!("/api/cases{query}"), cookie).await;
    cases.iter().map(|c| c.id).collect()
}

#[tokio::test]
async fn cases_come_newest_first_a_page_at_a_time_and_filters_narrow_them() {
    let server = Server::start().await;
    let store = &server.running.state.store;
    let mut ids = Vec::new();
    for n in 0..CASES_PAGE + 5 {
        ids.push(case(&server, n, &format!("Customer {n}"), "Shipping").await);
    }
    let grace = case(&server, 900, "Grace Hopper", "100% refund_please").await;
    let ended = case(&server, 901, "Alan Turing", "Broken tent").await;
    store
        .end_chat(ended, &EndedBy::Customer)
        .await
        .expect("ended");
    store
        .update_case(grace, CaseStatus::Pending, "100% refund_please", None)
        .await
        .expect("updated");
    let cookie = server.sign_in().await;

    let first = list(&server, &cookie, "").await;
    assert_eq!(first.len(), CASES_PAGE);
    assert_eq!(&first[..2], [ended, grace]);
    let next = list(
        &server,
        &cookie,
        &format!("?before={}", first[CASES_PAGE - 1]),
    )
    .await;
    assert_eq!(next.len(), 7, "the rest, older ones");
    assert_eq!(next.last(), ids.first());

    assert_eq!(list(&server, &cookie, "?status=pending").await, [grace]);
    assert_eq!(list(&server, &cookie, "?chat=ended").await, [ended]);
    assert_eq!(
        list(&server, &cookie, "?chat=waiting&q=grace").await,
        [grace],
        "by name, any case"
    );
    // Words are text, not patterns: % and _ find themselves only.
    assert_eq!(list(&server, &cookie, "?q=100%25").await, [grace]);
    assert_eq!(list(&server, &cookie, "?q=d_p").await, [grace]);
    assert!(list(&server, &cookie, "?q=_x_").await.is_empty());
    assert_eq!(
        list(&server, &cookie, "?q=customer901%40example").await,
        [ended],
        "by email"
    );
}

#[tokio::test]
async fn a_filter_that_does_not_read_gets_a_clear_json_error() {
    let server = Server::start().await;
    let cookie = server.sign_in().await;
    let long = format!("?q={}", "x".repeat(101));
    for (query, status) in [("?status=closed", 400), ("?before=soon", 400), (&long, 422)] {
        let response = reqwest::Client::new()
            .get(server.url(&format!("/api/cases{query}")))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status(), status, "{query}");
        let body: serde_json::Value = response.json().await.expect("json");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{query}: {body}"
        );
    }
}
