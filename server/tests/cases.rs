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

#[tokio::test]
async fn removing_a_group_keeps_its_agents_and_frees_its_chats_and_agents_show_who_is_online() {
    let server = Server::start().await;
    let store = &server.running.state.store;
    let admin = server.sign_in().await;
    let client = reqwest::Client::new();
    let made: serde_json::Value = client
        .post(server.url("/api/groups"))
        .header("cookie", &admin)
        .json(&serde_json::json!({ "name": "Billing" }))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    let group = made["id"].as_i64().expect("an id");
    let (status, _) = server
        .post_agent(
            &admin,
            serde_json::json!({ "name": "Bea", "email": "bea@example.com", "password": "bea-password-1",
                "is_admin": false, "active": true, "capacity": 2, "groups": [group] }),
        )
        .await;
    assert_eq!(status, 201);
    let chat = NewChat {
        customer_name: "Grace".into(),
        subject: "Invoice".into(),
        location: String::new(),
        client_id: "first".into(),
        body: "Hello".into(),
        group: Some(group),
        email: None,
        answers: Vec::new(),
    };
    let case = store
        .start_chat("visitor-token-1", &chat)
        .await
        .expect("started")
        .case;

    let remove = || async {
        client
            .delete(server.url(&format!("/api/groups/{group}")))
            .header("cookie", &admin)
            .send()
            .await
            .expect("answers")
            .status()
    };
    assert_eq!(remove().await, 204);
    assert_eq!(remove().await, 404, "gone already");
    let record = store.case(case).await.expect("read").expect("case");
    assert_eq!(record.group_id, None, "the chat is for no group now");
    let agents: Vec<parlor_protocol::AgentAccount> = server.get_json("/api/agents", &admin).await;
    let bea = agents
        .iter()
        .find(|a| a.email == "bea@example.com")
        .expect("Bea stays");
    assert!(bea.groups.is_empty());
    assert!(!bea.online, "no console of hers is open");
    let _console = server
        .console(&server.sign_in_as("bea@example.com", "bea-password-1").await)
        .await;
    let agents: Vec<parlor_protocol::AgentAccount> = server.get_json("/api/agents", &admin).await;
    assert!(
        agents
            .iter()
            .any(|a| a.email == "bea@example.com" && a.online)
    );
}
