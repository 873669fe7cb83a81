//! The Cases page's list over real HTTP: newest first, a page at a time, narrowed by
//! status, where the chat stands and words; bad filters get a clear JSON error.

mod common;

use common::*;
use parlor_protocol::{CASES_PAGE, CaseStatus, CaseSummary, ChatState, EndedBy};
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
    let (_, made) = server
        .post_json(
            "/api/groups",
            &admin,
            serde_json::json!({ "name": "Billing" }),
        )
        .await;
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

#[tokio::test]
async fn removing_an_agent_signs_them_out_requeues_their_chats_and_frees_their_email() {
    let server = Server::start().await;
    let admin = server.sign_in().await;
    let (status, bea) = server
        .post_agent(
            &admin,
            serde_json::json!({ "name": "Bea", "email": "bea@example.com", "password": "bea-password-1",
                "is_admin": false, "active": true, "capacity": 2, "groups": [] }),
        )
        .await;
    assert_eq!(status, 201);
    let bea_id = bea["id"].as_i64().expect("an id");
    // Bea is the only one taking chats, and takes one.
    let bea_cookie = server.sign_in_as("bea@example.com", "bea-password-1").await;
    let (mut console, _) = server.console(&bea_cookie).await;
    let (mut visitor, _) = server.visitor().await;
    send(&mut visitor, &start_chat("first")).await;
    let case_id = first_of(
        &mut console,
        |frame: parlor_protocol::ToAgent| match frame {
            parlor_protocol::ToAgent::Offer { offer } => Some(offer.case_id),
            _ => None,
        },
    )
    .await;
    send(
        &mut console,
        &parlor_protocol::AgentFrame::Accept { case_id },
    )
    .await;
    first_of(
        &mut visitor,
        |frame: parlor_protocol::ToVisitor| match frame {
            parlor_protocol::ToVisitor::State { case } if case.state == ChatState::Active => {
                Some(())
            }
            _ => None,
        },
    )
    .await;

    let client = reqwest::Client::new();
    let remove = |id: i64| {
        let request = client
            .delete(server.url(&format!("/api/agents/{id}")))
            .header("cookie", &admin);
        async move { request.send().await.expect("answers").status() }
    };
    assert_eq!(remove(1).await, 409, "not yourself");
    assert_eq!(remove(bea_id).await, 204);
    assert_eq!(remove(bea_id).await, 404, "gone already");

    // The customer hears she left and is back in the queue at once.
    let back = first_of(
        &mut visitor,
        |frame: parlor_protocol::ToVisitor| match frame {
            parlor_protocol::ToVisitor::State { case } if case.state == ChatState::Queued => {
                Some(case)
            }
            _ => None,
        },
    )
    .await;
    assert_eq!(back.id, case_id);
    // Signed out everywhere, and her sign-in no longer works.
    let me = client
        .get(server.url("/api/me"))
        .header("cookie", &bea_cookie)
        .send()
        .await
        .expect("answers");
    assert_eq!(me.status(), 401);
    let login = client
        .post(server.url("/api/login"))
        .json(&serde_json::json!({ "email": "bea@example.com", "password": "bea-password-1" }))
        .send()
        .await
        .expect("answers");
    assert_eq!(login.status(), 401);
    let agents: Vec<parlor_protocol::AgentAccount> = server.get_json("/api/agents", &admin).await;
    assert!(agents.iter().all(|a| a.id != bea_id), "gone from the list");
    // Her email is free for a new account; her past case keeps her name.
    let (status, _) = server
        .post_agent(
            &admin,
            serde_json::json!({ "name": "Bea Again", "email": "bea@example.com", "password": "bea-password-2",
                "is_admin": false, "active": true, "capacity": 2, "groups": [] }),
        )
        .await;
    assert_eq!(status, 201);
    let chat = server
        .running
        .state
        .store
        .chat_for(parlor_server::store::Caller::Agent(1), case_id, 0)
        .await
        .expect("read");
    assert!(
        chat.messages
            .iter()
            .any(|m| m.body.starts_with("Bea left the chat")),
        "{:?}",
        chat.messages
    );
}
