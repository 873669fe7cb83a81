//! Who may do what, kept as tables: every frame a console can send about a chat, tried
//! by each agent who is not in that chat (another agent, a read-only watcher, an
//! admin), and every API route tried signed out, as an agent and as an admin. A new
//! frame or route that forgets its check fails here.

mod common;

use common::*;
use parlor_protocol::{AgentFrame, CaseStatus, ChatState, ErrorCode, ToAgent, ToVisitor};
use reqwest::StatusCode;
use serde_json::json;

/// What a frame from someone outside the chat must get.
#[derive(Clone, Copy, Debug)]
enum Outcome {
    /// An error frame with this code.
    Refused(ErrorCode),
    /// Only this console's tab closes.
    OwnTabCloses,
    /// Nothing but the sender's own routing switch may change (Disable switches it
    /// off, whatever the case).
    OwnRoutingOnly,
    /// Read-only: any agent may read any case, as with `watch`.
    Reads,
}

fn frames(case_id: i64) -> Vec<(AgentFrame, Outcome)> {
    use Outcome::*;
    vec![
        (
            AgentFrame::Send {
                case_id,
                client_id: "outsider".into(),
                body: "I should not be here".into(),
            },
            Refused(ErrorCode::Conflict),
        ),
        (AgentFrame::Typing { case_id }, Refused(ErrorCode::Conflict)),
        (
            AgentFrame::EndChat { case_id },
            Refused(ErrorCode::Conflict),
        ),
        (
            AgentFrame::UpdateCase {
                case_id,
                status: CaseStatus::Resolved,
                subject: "Rewritten".into(),
                group: None,
                close_tab: false,
            },
            Refused(ErrorCode::Conflict),
        ),
        (
            AgentFrame::UpdateCase {
                case_id,
                status: CaseStatus::Pending,
                subject: "Order 1042 is late".into(),
                group: None,
                close_tab: true,
            },
            Refused(ErrorCode::Conflict),
        ),
        (AgentFrame::Accept { case_id }, Refused(ErrorCode::Conflict)),
        (AgentFrame::Disable { case_id }, OwnRoutingOnly),
        (AgentFrame::CloseTab { case_id }, OwnTabCloses),
        (AgentFrame::LoadEarlier { case_id, before: 2 }, Reads),
    ]
}

/// Reads until the frame's answer; panics on anything that says it changed the chat.
async fn expect_outcome(ws: &mut Ws, role: &str, frame: &AgentFrame, outcome: Outcome) {
    if let Outcome::OwnRoutingOnly = outcome {
        send(ws, &AgentFrame::Ping).await;
    }
    loop {
        match (recv::<ToAgent>(ws).await, outcome) {
            (ToAgent::Error { error }, Outcome::Refused(code)) => {
                assert_eq!(error.code, code, "{role}: {frame:?}: {}", error.message);
                return;
            }
            (ToAgent::TabClosed { .. }, Outcome::OwnTabCloses) => return,
            (ToAgent::Pong, Outcome::OwnRoutingOnly) => return,
            (ToAgent::Earlier { messages, .. }, Outcome::Reads) => {
                assert_eq!(messages.len(), 1, "{role}: the first message");
                return;
            }
            (
                ToAgent::Message { .. }
                | ToAgent::Offer { .. }
                | ToAgent::OfferClosed { .. }
                | ToAgent::Watching { .. }
                | ToAgent::Routing { .. },
                _,
            ) => {}
            (other, _) => panic!("{role}: {frame:?} was answered with {other:?}"),
        }
    }
}

#[tokio::test]
async fn nobody_but_the_agent_in_a_live_chat_can_write_to_it_or_change_it() {
    let server = Server::start().await;
    let store = &server.running.state.store;
    for (email, name) in [
        ("ann@example.com", "Ann"),
        ("bea@example.com", "Bea"),
        ("carl@example.com", "Carl"),
    ] {
        store
            .create_agent(email, name, "agent-password-1", false)
            .await
            .expect("agent made");
    }
    // Ann is the only console open when the chat comes, so it is hers.
    let ann_cookie = server
        .sign_in_as("ann@example.com", "agent-password-1")
        .await;
    let (mut ann, _) = server.console(&ann_cookie).await;
    let (mut visitor, _) = server.visitor().await;
    send(&mut visitor, &start_chat("first")).await;
    let case_id = loop {
        if let ToAgent::Offer { offer } = recv::<ToAgent>(&mut ann).await {
            break offer.case_id;
        }
    };
    send(&mut ann, &AgentFrame::Accept { case_id }).await;
    while !matches!(recv::<ToAgent>(&mut ann).await, ToAgent::ChatOpened { .. }) {}
    let before = store.case(case_id).await.expect("read").expect("case");
    // Everything the customer hears up to now.
    while !quiet::<ToVisitor>(&mut visitor).await {}

    let bea_cookie = server
        .sign_in_as("bea@example.com", "agent-password-1")
        .await;
    let (mut other_agent, _) = server.console(&bea_cookie).await;
    let carl_cookie = server
        .sign_in_as("carl@example.com", "agent-password-1")
        .await;
    let (mut watcher, _) = server.console(&carl_cookie).await;
    send(&mut watcher, &AgentFrame::Watch { case_id }).await;
    while !matches!(
        recv::<ToAgent>(&mut watcher).await,
        ToAgent::Watching { .. }
    ) {}
    let mut admin = server.agent().await;

    for (role, ws) in [
        ("another agent", &mut other_agent),
        ("a watcher", &mut watcher),
        ("an admin", &mut admin),
    ] {
        for (frame, outcome) in frames(case_id) {
            send(ws, &frame).await;
            let answered = tokio::time::timeout(
                std::time::Duration::from_secs(4),
                expect_outcome(ws, role, &frame, outcome),
            )
            .await;
            assert!(answered.is_ok(), "{role}: {frame:?} got no answer");
        }
    }

    assert!(
        quiet::<ToVisitor>(&mut visitor).await,
        "the customer heard nothing"
    );
    let after = store.case(case_id).await.expect("read").expect("case");
    assert_eq!(after.summary.state, ChatState::Active);
    assert_eq!(after.agent_id, before.agent_id);
    assert_eq!(after.summary.status, before.summary.status);
    assert_eq!(after.summary.subject, before.summary.subject);

    // The agent in the chat can do what the others could not.
    send(
        &mut ann,
        &AgentFrame::UpdateCase {
            case_id,
            status: CaseStatus::Pending,
            subject: "Late order".into(),
            group: None,
            close_tab: false,
        },
    )
    .await;
    loop {
        match recv::<ToAgent>(&mut ann).await {
            ToAgent::State { case } if case.subject == "Late order" => break,
            ToAgent::Error { error } => panic!("the agent in the chat was refused: {error:?}"),
            _ => {}
        }
    }
}

#[tokio::test]
async fn an_ended_chat_is_a_case_any_agent_can_update() {
    let server = Server::start().await;
    let (mut agent, mut visitor, case_id) = accepted_chat(&server).await;
    send(&mut visitor, &parlor_protocol::VisitorFrame::EndChat).await;
    while !matches!(
        recv::<ToAgent>(&mut agent).await,
        ToAgent::State { case } if case.state == ChatState::Ended
    ) {}
    let mut bea = server.second_agent("bea@example.com").await;
    send(&mut bea, &AgentFrame::Watch { case_id }).await;
    send(
        &mut bea,
        &AgentFrame::UpdateCase {
            case_id,
            status: CaseStatus::Resolved,
            subject: "Order 1042 is late".into(),
            group: None,
            close_tab: false,
        },
    )
    .await;
    loop {
        match recv::<ToAgent>(&mut bea).await {
            ToAgent::State { case } if case.status == CaseStatus::Resolved => break,
            ToAgent::Error { error } => panic!("refused: {error:?}"),
            _ => {}
        }
    }
}

/// Who calls a route.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Caller {
    SignedOut,
    Agent,
    Admin,
    /// An admin's cookie on a request from another site's page.
    AdminFromAnotherSite,
}

#[tokio::test]
async fn every_api_route_answers_each_role_as_the_table_says() {
    let server = Server::start().await;
    let admin = server.sign_in().await;
    let client = reqwest::Client::new();
    let (made, account) = server
        .post_agent(
            &admin,
            json!({ "name": "Ann", "email": "ann@example.com", "password": "agent-password-1",
                "is_admin": false, "active": true, "capacity": 3, "groups": [] }),
        )
        .await;
    assert_eq!(made, StatusCode::CREATED);
    let ann_id = account["id"].clone();
    let agent = server
        .sign_in_as("ann@example.com", "agent-password-1")
        .await;
    let routing = json!({ "channel_routing": true, "screen_pop_timeout_secs": 30 });
    let macro_body = json!({ "name": "Hello", "body": "Hi {{customer.first_name}}" });
    let group = json!({ "name": "Billing" });
    let ann = json!({ "name": "Ann", "email": "ann@example.com", "is_admin": false,
        "active": true, "capacity": 3, "groups": [] });
    let chat: serde_json::Value = server.get_json("/api/settings/chat", &admin).await;
    let widget: serde_json::Value = server.get_json("/api/settings/widget", &admin).await;
    let (_, visitor_welcome) = server.widget(None, 0).await;
    drop(visitor_welcome);

    use Caller::*;
    let ok = StatusCode::OK;
    let created = StatusCode::CREATED;
    let no_content = StatusCode::NO_CONTENT;
    let signed_out = StatusCode::UNAUTHORIZED;
    let forbidden = StatusCode::FORBIDDEN;
    let not_found = StatusCode::NOT_FOUND;
    // Every route behind a sign-in (signing in and out are tested in sessions.rs; signing
    // out everywhere is here too).
    // (method, path, body, [signed out, agent, admin, admin from another site])
    #[rustfmt::skip]
    let table: Vec<(&str, String, Option<serde_json::Value>, [StatusCode; 4])> = vec![
        ("GET", "/api/me".into(), None, [signed_out, ok, ok, ok]),
        ("GET", "/api/macros".into(), None, [signed_out, ok, ok, ok]),
        ("POST", "/api/macros".into(), Some(macro_body.clone()), [signed_out, forbidden, created, forbidden]),
        ("PUT", "/api/macros/1".into(), Some(macro_body), [signed_out, forbidden, ok, forbidden]),
        ("DELETE", "/api/macros/1".into(), None, [signed_out, forbidden, no_content, forbidden]),
        ("GET", "/api/agents".into(), None, [signed_out, forbidden, ok, forbidden]),
        ("PUT", format!("/api/agents/{ann_id}"), Some(ann), [signed_out, forbidden, ok, forbidden]),
        ("DELETE", "/api/agents/999".into(), None, [signed_out, forbidden, not_found, forbidden]),
        ("GET", "/api/groups".into(), None, [signed_out, ok, ok, ok]),
        ("POST", "/api/groups".into(), Some(group.clone()), [signed_out, forbidden, created, forbidden]),
        ("PUT", "/api/groups/1".into(), Some(group), [signed_out, forbidden, ok, forbidden]),
        ("DELETE", "/api/groups/999".into(), None, [signed_out, forbidden, not_found, forbidden]),
        ("GET", "/api/settings/routing".into(), None, [signed_out, ok, ok, ok]),
        ("PUT", "/api/settings/routing".into(), Some(routing), [signed_out, forbidden, ok, forbidden]),
        ("GET", "/api/settings/chat".into(), None, [signed_out, ok, ok, ok]),
        ("PUT", "/api/settings/chat".into(), Some(chat), [signed_out, forbidden, ok, forbidden]),
        ("GET", "/api/settings/widget".into(), None, [signed_out, ok, ok, ok]),
        ("PUT", "/api/settings/widget".into(), Some(widget), [signed_out, forbidden, ok, forbidden]),
        ("GET", "/api/cases".into(), None, [signed_out, ok, ok, ok]),
        ("GET", "/api/cases/999/offers".into(), None, [signed_out, not_found, not_found, not_found]),
        // Last: it ends the callers' sessions (as another site, it is refused first).
        ("POST", "/api/logout/everywhere".into(), None, [signed_out, no_content, no_content, forbidden]),
    ];
    for (method, path, body, expected) in table {
        for (caller, want) in [SignedOut, Agent, Admin, AdminFromAnotherSite]
            .into_iter()
            .zip(expected)
        {
            let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
            let mut request = client.request(method.clone(), server.url(&path));
            request = match caller {
                SignedOut => request,
                Agent => request.header("cookie", &agent),
                Admin => request.header("cookie", &admin),
                AdminFromAnotherSite => request
                    .header("cookie", &admin)
                    .header("origin", "https://evil.example"),
            };
            if let Some(body) = &body {
                request = request.json(body);
            }
            let response = request.send().await.expect("answers");
            let status = response.status();
            let text = response.text().await.expect("body");
            assert_eq!(status, want, "{method} {path} as {caller:?}: {text}");
            if !status.is_success() {
                let error: serde_json::Value = serde_json::from_str(&text)
                    .unwrap_or_else(|_| panic!("{method} {path} as {caller:?}: not JSON: {text}"));
                assert!(error["error"].is_string(), "{text}");
            }
        }
    }
}

#[tokio::test]
async fn a_malformed_body_gets_the_same_json_error_as_every_other_refusal() {
    let server = Server::start().await;
    let admin = server.sign_in().await;
    let client = reqwest::Client::new();
    for (body, content_type) in [
        ("{\"name\": ", "application/json"),
        ("{\"name\": 5, \"body\": \"x\"}", "application/json"),
        ("name=x", "application/x-www-form-urlencoded"),
    ] {
        let response = client
            .post(server.url("/api/macros"))
            .header("cookie", &admin)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("answers");
        let status = response.status();
        let error: serde_json::Value = response.json().await.expect("a JSON error");
        assert!(status.is_client_error(), "{body}: {status}");
        assert!(
            error["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{error}"
        );
    }
    let macros: Vec<serde_json::Value> = server.get_json("/api/macros", &admin).await;
    assert!(macros.is_empty(), "nothing was stored");
}
