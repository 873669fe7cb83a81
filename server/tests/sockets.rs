//! Parlor over real sockets: a server on port 0 with a fresh SQLite file, driven by
//! real WebSocket and HTTP clients, as a widget and a console would.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use parlor_protocol::{
    AgentFrame, Author, ChatState, EndedBy, ErrorCode, MAX_FRAME_BYTES, OfferClosed, RoutingChange,
    ToAgent, ToVisitor, VisitorFrame,
};
use parlor_server::store::Caller;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Message, http::HeaderValue};

#[tokio::test]
async fn a_chat_goes_from_widget_to_screen_pop_to_accept_to_messages_to_end() {
    let server = Server::start().await;
    let mut agent = server.agent().await;
    let (mut visitor, _token) = server.visitor().await;

    send(&mut visitor, &start_chat("first")).await;
    let case_id = match recv::<ToVisitor>(&mut visitor).await {
        ToVisitor::ChatStarted { chat } => {
            assert_eq!(chat.case.state, ChatState::Queued);
            assert_eq!(chat.messages.len(), 1);
            assert_eq!(chat.messages[0].seq, 1);
            chat.case.id
        }
        other => panic!("expected chat_started, got {other:?}"),
    };

    // The screen pop, with the countdown and the drop-down's facts.
    match recv::<ToAgent>(&mut agent).await {
        ToAgent::Offer { offer } => {
            assert_eq!(offer.case_id, case_id);
            assert_eq!(offer.customer_name, "Grace Hopper");
            assert_eq!(offer.subject, "Order 1042 is late");
            assert!(offer.location.contains("Europe/Paris"));
            assert!(offer.expires_in_ms > 0 && offer.expires_in_ms <= 30_000);
        }
        other => panic!("expected an offer, got {other:?}"),
    }

    send(&mut agent, &AgentFrame::Accept { case_id }).await;
    assert!(matches!(
        recv::<ToAgent>(&mut agent).await,
        ToAgent::OfferClosed {
            reason: OfferClosed::Accepted,
            ..
        }
    ));
    // The customer is told the agent joined, and sees who.
    match recv::<ToVisitor>(&mut visitor).await {
        ToVisitor::Message { message } => {
            assert_eq!(message.author, Author::System);
            assert_eq!(message.body, "Admin joined the chat.");
        }
        other => panic!("expected the joined message, got {other:?}"),
    }
    match recv::<ToVisitor>(&mut visitor).await {
        ToVisitor::State { case } => {
            assert_eq!(case.state, ChatState::Active);
            assert_eq!(case.agent_name.as_deref(), Some("Admin"));
        }
        other => panic!("expected the new state, got {other:?}"),
    }
    // The agent's case tab opens with the whole transcript.
    loop {
        match recv::<ToAgent>(&mut agent).await {
            ToAgent::ChatOpened { chat } => {
                assert_eq!(chat.case.id, case_id);
                assert_eq!(chat.messages.len(), 2);
                break;
            }
            ToAgent::Message { .. } | ToAgent::State { .. } => continue,
            other => panic!("expected chat_opened, got {other:?}"),
        }
    }

    // Messages flow both ways, live.
    send(
        &mut agent,
        &AgentFrame::Send {
            case_id,
            client_id: "a1".into(),
            body: "Let me check.".into(),
        },
    )
    .await;
    match recv::<ToVisitor>(&mut visitor).await {
        ToVisitor::Message { message } => {
            assert_eq!(message.body, "Let me check.");
            assert_eq!(message.seq, 3);
            assert!(matches!(message.author, Author::Agent { ref name, .. } if name == "Admin"));
        }
        other => panic!("expected the agent's message, got {other:?}"),
    }
    send(
        &mut visitor,
        &VisitorFrame::Send {
            client_id: "v1".into(),
            body: "Thanks!".into(),
        },
    )
    .await;
    let mut agent_saw = Vec::new();
    while agent_saw.len() < 2 {
        if let ToAgent::Message { message } = recv::<ToAgent>(&mut agent).await {
            agent_saw.push(message.body);
        }
    }
    assert_eq!(agent_saw, ["Let me check.", "Thanks!"]);

    // The customer ends the chat: both sides hear it at once.
    send(&mut visitor, &VisitorFrame::EndChat).await;
    let mut visitor_ended = false;
    while !visitor_ended {
        if let ToVisitor::State { case } = recv::<ToVisitor>(&mut visitor).await {
            visitor_ended =
                case.state == ChatState::Ended && case.ended_by == Some(EndedBy::Customer);
        }
    }
    let mut agent_ended = false;
    while !agent_ended {
        if let ToAgent::State { case } = recv::<ToAgent>(&mut agent).await {
            agent_ended = case.state == ChatState::Ended;
        }
    }

    // The case records it all.
    let chat = server
        .running
        .state
        .store
        .chat_for(Caller::Agent(1), case_id, 0)
        .await
        .expect("stored");
    assert_eq!(chat.case.state, ChatState::Ended);
    assert_eq!(chat.case.ended_by, Some(EndedBy::Customer));
    let bodies: Vec<&str> = chat.messages.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(
        bodies,
        [
            "Where is my order?",
            "Admin joined the chat.",
            "Let me check.",
            "Thanks!",
            "The customer ended the chat."
        ]
    );
}

#[tokio::test]
async fn a_retried_send_is_stored_once_and_answered_with_the_original() {
    let server = Server::start().await;
    let (mut visitor, _) = server.visitor().await;
    send(&mut visitor, &start_chat("first")).await;
    let case_id = match recv::<ToVisitor>(&mut visitor).await {
        ToVisitor::ChatStarted { chat } => chat.case.id,
        other => panic!("expected chat_started, got {other:?}"),
    };
    let frame = VisitorFrame::Send {
        client_id: "retry-me".into(),
        body: "Hello?".into(),
    };
    send(&mut visitor, &frame).await;
    let first = match recv::<ToVisitor>(&mut visitor).await {
        ToVisitor::Message { message } => message,
        other => panic!("expected the message, got {other:?}"),
    };
    send(&mut visitor, &frame).await;
    let again = match recv::<ToVisitor>(&mut visitor).await {
        ToVisitor::Message { message } => message,
        other => panic!("expected the message, got {other:?}"),
    };
    assert_eq!(first, again);
    // A retried start is the same chat, not a second one.
    send(&mut visitor, &start_chat("first")).await;
    match recv::<ToVisitor>(&mut visitor).await {
        ToVisitor::ChatStarted { chat } => assert_eq!(chat.case.id, case_id),
        other => panic!("expected chat_started, got {other:?}"),
    }
    let chat = server
        .running
        .state
        .store
        .chat_for(Caller::Agent(1), case_id, 0)
        .await
        .expect("stored");
    assert_eq!(chat.messages.len(), 2);
}

#[tokio::test]
async fn a_reconnecting_widget_resumes_its_chat_from_its_last_seq() {
    let server = Server::start().await;
    let (mut visitor, token) = server.visitor().await;
    send(&mut visitor, &start_chat("first")).await;
    recv::<ToVisitor>(&mut visitor).await;
    for (id, body) in [("m2", "two"), ("m3", "three")] {
        send(
            &mut visitor,
            &VisitorFrame::Send {
                client_id: id.into(),
                body: body.into(),
            },
        )
        .await;
        recv::<ToVisitor>(&mut visitor).await;
    }
    drop(visitor);

    match server.widget(Some(token.clone()), 2).await.1 {
        ToVisitor::Welcome {
            token: same,
            chat: Some(chat),
            ..
        } => {
            assert_eq!(same, token);
            let seqs: Vec<i64> = chat.messages.iter().map(|m| m.seq).collect();
            assert_eq!(seqs, [3], "exactly the gap, nothing twice");
        }
        other => panic!("expected the resumed chat, got {other:?}"),
    }
}

#[tokio::test]
async fn a_visitor_token_opens_only_its_own_chat() {
    let server = Server::start().await;
    let (mut grace, grace_token) = server.visitor().await;
    send(&mut grace, &start_chat("first")).await;
    recv::<ToVisitor>(&mut grace).await;

    // Another visitor with a guessed token gets a fresh token and no chat.
    let (mut mallory, mallory_token) = server.visitor().await;
    assert_ne!(mallory_token, grace_token);
    let guess = "0".repeat(48);
    let (mut guesser, welcome) = server.widget(Some(guess.clone()), 0).await;
    match welcome {
        ToVisitor::Welcome { token, chat, .. } => {
            assert_ne!(token, guess);
            assert!(chat.is_none());
        }
        other => panic!("expected welcome, got {other:?}"),
    }
    // Mallory cannot write into anyone's chat, and hears nothing of Grace's.
    send(
        &mut mallory,
        &VisitorFrame::Send {
            client_id: "x".into(),
            body: "hi".into(),
        },
    )
    .await;
    assert_eq!(visitor_error(&mut mallory).await.code, ErrorCode::Conflict);
    send(
        &mut grace,
        &VisitorFrame::Send {
            client_id: "g2".into(),
            body: "private".into(),
        },
    )
    .await;
    recv::<ToVisitor>(&mut grace).await;
    assert!(quiet::<ToVisitor>(&mut mallory).await);
    assert!(quiet::<ToVisitor>(&mut guesser).await);
}

#[tokio::test]
async fn malformed_and_oversized_frames_get_a_clear_error_and_change_nothing() {
    let server = Server::start().await;
    let (mut ws, _) = connect_async(format!("ws://{}/ws/visitor", server.running.addr))
        .await
        .expect("opens");

    send(
        &mut ws,
        &VisitorFrame::Send {
            client_id: "early".into(),
            body: "hi".into(),
        },
    )
    .await;
    assert_eq!(visitor_error(&mut ws).await.code, ErrorCode::Unauthorized);

    send_raw(&mut ws, "this is not json").await;
    assert_eq!(visitor_error(&mut ws).await.code, ErrorCode::Malformed);
    send_raw(&mut ws, r#"{"take_over":{"case_id":1}}"#).await;
    assert_eq!(visitor_error(&mut ws).await.code, ErrorCode::Malformed);
    ws.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .expect("sent");
    assert_eq!(visitor_error(&mut ws).await.code, ErrorCode::Malformed);

    send(
        &mut ws,
        &VisitorFrame::Hello {
            token: None,
            since: 0,
        },
    )
    .await;
    assert!(matches!(
        recv::<ToVisitor>(&mut ws).await,
        ToVisitor::Welcome { .. }
    ));

    let huge = start_with("big", "Big", &"x".repeat(MAX_FRAME_BYTES + 1));
    send(&mut ws, &huge).await;
    let error = visitor_error(&mut ws).await;
    assert_eq!(error.code, ErrorCode::TooLarge);
    assert!(error.message.contains("limited"));

    for bad in [
        start_with("blank", "   ", "b"),
        start_with("empty", "n", " \n "),
        start_with("has spaces", "n", "b"),
    ] {
        send(&mut ws, &bad).await;
        assert_eq!(visitor_error(&mut ws).await.code, ErrorCode::Invalid);
    }

    // Nothing was stored, and the socket still works.
    assert!(
        server
            .running
            .state
            .store
            .queued_cases()
            .await
            .expect("read")
            .is_empty()
    );
    send(&mut ws, &start_chat("good")).await;
    assert!(matches!(
        recv::<ToVisitor>(&mut ws).await,
        ToVisitor::ChatStarted { .. }
    ));
}

#[tokio::test]
async fn the_agent_socket_needs_a_session_and_parlors_own_origin() {
    let server = Server::start().await;
    let anonymous = connect_async(format!("ws://{}/ws/agent", server.running.addr)).await;
    assert!(anonymous.is_err(), "no cookie, no socket");

    let cookie = server.sign_in().await;
    let mut request = format!("ws://{}/ws/agent", server.running.addr)
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("cookie", HeaderValue::from_str(&cookie).expect("header"));
    request
        .headers_mut()
        .insert("origin", HeaderValue::from_static("https://evil.example"));
    assert!(
        connect_async(request).await.is_err(),
        "another site's page is refused"
    );
}

#[tokio::test]
async fn a_wrong_password_is_refused_with_a_clear_error() {
    let server = Server::start().await;
    let response = reqwest::Client::new()
        .post(server.url("/api/login"))
        .json(&serde_json::json!({ "email": "admin@parlor.local", "password": "nope" }))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 401);
    assert!(response.headers().get("set-cookie").is_none());
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["error"], "Wrong email or password.");
}

#[tokio::test]
async fn an_ignored_screen_pop_switches_routing_off_and_the_chat_waits() {
    let server = Server::start().await;
    let state = &server.running.state;
    state
        .store
        .set_setting(parlor_server::settings::SCREEN_POP_TIMEOUT_KEY, "300")
        .await
        .expect("stored");
    state.settings.reload(&state.store).await.expect("reloaded");

    let mut agent = server.agent().await;
    let (mut visitor, _) = server.visitor().await;
    send(&mut visitor, &start_chat("first")).await;
    recv::<ToVisitor>(&mut visitor).await;
    assert!(matches!(
        recv::<ToAgent>(&mut agent).await,
        ToAgent::Offer { .. }
    ));
    assert!(matches!(
        recv::<ToAgent>(&mut agent).await,
        ToAgent::OfferClosed {
            reason: OfferClosed::TimedOut,
            ..
        }
    ));
    assert!(matches!(
        recv::<ToAgent>(&mut agent).await,
        ToAgent::Routing {
            on: false,
            change: RoutingChange::IgnoredOffer
        }
    ));
    let stored = state.store.agent(1).await.expect("read").expect("admin");
    assert!(!stored.routing, "the switch is stored off");
    assert!(
        quiet::<ToAgent>(&mut agent).await,
        "no one else to offer it to: the chat waits"
    );

    // Routing back on: the waiting chat pops up again.
    send(&mut agent, &AgentFrame::SetRouting { on: true }).await;
    assert!(matches!(
        recv::<ToAgent>(&mut agent).await,
        ToAgent::Routing {
            on: true,
            change: RoutingChange::Switched
        }
    ));
    assert!(matches!(
        recv::<ToAgent>(&mut agent).await,
        ToAgent::Offer { .. }
    ));
}

#[tokio::test]
async fn liquid_in_a_reply_is_filled_in_and_a_mistake_is_refused_with_why() {
    let server = Server::start().await;
    let (mut agent, mut visitor, case_id) = accepted_chat(&server).await;
    let reply = |client_id: &str, body: &str| AgentFrame::Send {
        case_id,
        client_id: client_id.into(),
        body: body.into(),
    };
    send(
        &mut agent,
        &reply(
            "l1",
            "Hi {{ customer.first_name }}, {{ agent.name }} here about case {{ case.id }}.",
        ),
    )
    .await;
    match recv::<ToVisitor>(&mut visitor).await {
        ToVisitor::Message { message } => assert_eq!(
            message.body,
            format!("Hi Grace, Admin here about case {case_id}.")
        ),
        other => panic!("expected the reply, got {other:?}"),
    }
    // The customer's own text is never a template.
    send(
        &mut visitor,
        &VisitorFrame::Send {
            client_id: "v1".into(),
            body: "{{ agent.name }}".into(),
        },
    )
    .await;
    match recv::<ToVisitor>(&mut visitor).await {
        ToVisitor::Message { message } => assert_eq!(message.body, "{{ agent.name }}"),
        other => panic!("expected the message, got {other:?}"),
    }
    loop {
        if let ToAgent::Message { message } = recv::<ToAgent>(&mut agent).await
            && message.client_id == "v1"
        {
            break;
        }
    }
    send(&mut agent, &reply("l2", "Hi {{ customer.frist_name }}")).await;
    match recv::<ToAgent>(&mut agent).await {
        ToAgent::Error { error } => {
            assert_eq!(error.code, ErrorCode::Invalid);
            assert_eq!(error.client_id.as_deref(), Some("l2"));
            assert!(error.message.contains("Liquid"), "{}", error.message);
        }
        other => panic!("expected an error, got {other:?}"),
    }
    send(
        &mut agent,
        &reply("l3", &"x".repeat(parlor_protocol::MAX_MESSAGE_CHARS + 1)),
    )
    .await;
    match recv::<ToAgent>(&mut agent).await {
        ToAgent::Error { error } => assert_eq!(error.code, ErrorCode::Invalid),
        other => panic!("expected an error, got {other:?}"),
    }
    assert!(
        quiet::<ToVisitor>(&mut visitor).await,
        "nothing refused reached the customer"
    );
}

#[tokio::test]
async fn typing_is_relayed_to_the_other_side_only() {
    let server = Server::start().await;
    let (mut agent, mut visitor, case_id) = accepted_chat(&server).await;
    send(&mut visitor, &VisitorFrame::Typing).await;
    assert_eq!(
        recv::<ToAgent>(&mut agent).await,
        ToAgent::Typing { case_id }
    );
    assert!(
        quiet::<ToVisitor>(&mut visitor).await,
        "the typist does not hear their own typing"
    );
    send(&mut agent, &AgentFrame::Typing { case_id }).await;
    assert_eq!(
        recv::<ToVisitor>(&mut visitor).await,
        ToVisitor::Typing {
            name: "Admin".into()
        }
    );
    assert!(quiet::<ToAgent>(&mut agent).await);
}

#[tokio::test]
async fn only_admins_change_macros_and_bad_ones_get_a_clear_error() {
    let server = Server::start().await;
    let client = reqwest::Client::new();
    let admin = server.sign_in().await;
    let create = |cookie: &str, name: &str, body: &str| {
        client
            .post(server.url("/api/macros"))
            .header("cookie", cookie)
            .json(&serde_json::json!({ "name": name, "body": body }))
            .send()
    };
    let made = create(&admin, "Greeting", "Hi **there**")
        .await
        .expect("answers");
    assert_eq!(made.status(), 201);
    let duplicate = create(&admin, "greeting", "again").await.expect("answers");
    assert_eq!(duplicate.status(), 409);
    let empty = create(&admin, "Empty", "  ").await.expect("answers");
    assert_eq!(empty.status(), 422);
    let body: serde_json::Value = empty.json().await.expect("json");
    assert_eq!(body["error"], "The message is empty.");
    // Liquid that would fail every send is refused at save, naming the problem.
    for broken in [
        "Hi {{ customer.frist_name }}",
        "{% if %}x",
        "{{ 'now' | date: '%99Y' }}",
    ] {
        let refused = create(&admin, "Broken", broken).await.expect("answers");
        assert_eq!(refused.status(), 422, "{broken}");
        let body: serde_json::Value = refused.json().await.expect("json");
        let reason = body["error"].as_str().unwrap_or_default();
        assert!(reason.starts_with("Not saved."), "{reason}");
    }
    let fine = create(
        &admin,
        "Fine",
        "Hi {{ customer.first_name | default: 'there' }}",
    )
    .await;
    assert_eq!(fine.expect("answers").status(), 201);

    let state = &server.running.state;
    state
        .store
        .create_agent("bob@example.com", "Bob", "bob-password", false)
        .await
        .expect("agent made");
    let bob = server.sign_in_as("bob@example.com", "bob-password").await;
    let refused = create(&bob, "Bob's", "mine").await.expect("answers");
    assert_eq!(refused.status(), 403);
    let listed: Vec<parlor_protocol::Macro> = server.get_json("/api/macros", &bob).await;
    let names: Vec<&str> = listed.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        ["Fine", "Greeting"],
        "agents read macros; nothing else was stored"
    );
}

/// The next queue position the widget hears.
async fn position(ws: &mut Ws) -> u32 {
    first_of(ws, |frame| match frame {
        ToVisitor::Queue { position } => Some(position),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn waiting_customers_hear_their_place_in_the_queue_as_it_moves() {
    let server = Server::start().await;
    assert_eq!(server.put_routing(false, 30).await, 200);
    let (mut first, _) = server.visitor().await;
    send(&mut first, &start_chat("a")).await;
    assert_eq!(position(&mut first).await, 1);
    let (mut second, _) = server.visitor().await;
    send(&mut second, &start_chat("b")).await;
    assert_eq!(position(&mut second).await, 2);
    send(&mut first, &VisitorFrame::EndChat).await;
    assert_eq!(position(&mut second).await, 1);
}

#[tokio::test]
async fn two_agents_entering_the_same_waiting_chat_one_gets_it_the_other_is_told() {
    let server = Server::start().await;
    assert_eq!(server.put_routing(false, 30).await, 200);
    let mut ada = server.agent().await;
    let mut bea = server.second_agent("bea@example.com").await;
    let (mut visitor, _) = server.visitor().await;
    send(&mut visitor, &start_chat("a")).await;
    let case_id = loop {
        if let ToAgent::Waiting { chats, .. } = recv_any::<ToAgent>(&mut bea).await
            && let Some(chat) = chats.first()
        {
            assert!(!chat.offered, "no screen pops with channel routing off");
            break chat.case.id;
        }
    };
    send(&mut ada, &AgentFrame::Accept { case_id }).await;
    send(&mut bea, &AgentFrame::Accept { case_id }).await;
    let mut opened = 0;
    let mut refused = 0;
    for ws in [&mut ada, &mut bea] {
        loop {
            match recv::<ToAgent>(ws).await {
                ToAgent::ChatOpened { .. } => {
                    opened += 1;
                    break;
                }
                ToAgent::Error { error } => {
                    assert_eq!(error.code, ErrorCode::Conflict);
                    refused += 1;
                    break;
                }
                _ => continue,
            }
        }
    }
    assert_eq!((opened, refused), (1, 1));
}

#[tokio::test]
async fn a_deactivated_agent_is_disconnected_at_once_and_cannot_sign_in() {
    let server = Server::start().await;
    let mut bea = server.second_agent("bea@example.com").await;
    let admin = server.sign_in().await;
    let response = server
        .switch_off(&admin, 2, ("Bea", "bea@example.com", false))
        .await;
    assert_eq!(response, 200);
    assert_eq!(
        close_code(&mut bea).await,
        Some(parlor_protocol::CLOSE_ACCOUNT_OFF),
        "the socket closes saying the account was switched off"
    );
    let login = reqwest::Client::new()
        .post(server.url("/api/login"))
        .json(&serde_json::json!({ "email": "bea@example.com", "password": "bea-password-1" }))
        .send()
        .await
        .expect("answers");
    assert_eq!(login.status(), 401);

    // The last admin cannot switch themselves off.
    let response = server
        .switch_off(&admin, 1, ("Admin", "admin@parlor.local", true))
        .await;
    assert_eq!(response, 409);
}

#[tokio::test]
async fn routing_settings_are_checked_and_the_offer_log_tells_each_screen_pop() {
    let server = Server::start().await;
    assert_eq!(
        server.put_routing(true, 1).await,
        422,
        "too short a timeout"
    );
    assert_eq!(server.put_routing(true, 3).await, 200);
    let mut agent = server.agent().await;
    let (mut visitor, _) = server.visitor().await;
    send(&mut visitor, &start_chat("a")).await;
    let case_id = match recv::<ToAgent>(&mut agent).await {
        ToAgent::Offer { offer } => {
            assert!(
                offer.expires_in_ms <= 3_000,
                "the new timeout applies to the next offer"
            );
            offer.case_id
        }
        other => panic!("expected an offer, got {other:?}"),
    };
    send(&mut agent, &AgentFrame::Disable { case_id }).await;
    loop {
        if let ToAgent::Routing { on: false, .. } = recv::<ToAgent>(&mut agent).await {
            break;
        }
    }
    let cookie = server.sign_in().await;
    let log: Vec<parlor_protocol::OfferLogEntry> = reqwest::Client::new()
        .get(server.url(&format!("/api/cases/{case_id}/offers")))
        .header("cookie", cookie)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].agent_name, "Admin");
    assert_eq!(log[0].outcome, Some(OfferClosed::Disabled));
}

impl Server {
    /// Changes the chat settings: timeouts in seconds, and system messages switched off.
    async fn put_chat_settings(&self, inactivity: u32, grace: u32, off: &[&str]) {
        let cookie = self.sign_in().await;
        let client = reqwest::Client::new();
        let mut settings: serde_json::Value = client
            .get(self.url("/api/settings/chat"))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("answers")
            .json()
            .await
            .expect("json");
        settings["inactivity_timeout_secs"] = inactivity.into();
        settings["agent_grace_secs"] = grace.into();
        if let Some(messages) = settings["messages"].as_array_mut() {
            for message in messages {
                let kind = message["kind"].as_str().unwrap_or_default().to_owned();
                message["on"] = (!off.contains(&kind.as_str())).into();
            }
        }
        let status = client
            .put(self.url("/api/settings/chat"))
            .header("cookie", &cookie)
            .json(&settings)
            .send()
            .await
            .expect("answers")
            .status();
        assert_eq!(status, 200);
    }
}

/// Reads widget frames until a system message arrives; returns its text.
async fn next_system_message(ws: &mut Ws) -> String {
    loop {
        if let ToVisitor::Message { message } = recv::<ToVisitor>(ws).await
            && message.author == Author::System
        {
            return message.body;
        }
    }
}

/// Reads widget frames until the chat is in `state`.
async fn until_state(ws: &mut Ws, state: ChatState) -> parlor_protocol::CaseSummary {
    loop {
        if let ToVisitor::State { case } = recv::<ToVisitor>(ws).await
            && case.state == state
        {
            return case;
        }
    }
}

#[tokio::test]
async fn closing_the_tab_of_a_live_chat_tells_the_customer_and_routes_the_chat_again() {
    let server = Server::start().await;
    let (mut agent, mut visitor, case_id) = accepted_chat(&server).await;
    send(&mut agent, &AgentFrame::CloseTab { case_id }).await;
    assert_eq!(
        next_system_message(&mut visitor).await,
        "Admin left the chat. You are back in the queue."
    );
    until_state(&mut visitor, ChatState::Queued).await;
    let mut closed = false;
    loop {
        match recv::<ToAgent>(&mut agent).await {
            ToAgent::TabClosed { case_id: id } if id == case_id => closed = true,
            ToAgent::Offer { offer } => {
                assert_eq!(offer.case_id, case_id, "the chat is routed again");
                break;
            }
            _ => {}
        }
    }
    assert!(closed);
}

#[tokio::test]
async fn update_without_close_tab_keeps_the_chat_and_with_it_requeues() {
    let server = Server::start().await;
    let (mut agent, mut visitor, case_id) = accepted_chat(&server).await;
    let update = |close_tab| AgentFrame::UpdateCase {
        case_id,
        status: parlor_protocol::CaseStatus::Pending,
        subject: "Order 1042, refund".into(),
        group: None,
        close_tab,
    };
    send(&mut agent, &update(false)).await;
    let case = until_state(&mut visitor, ChatState::Active).await;
    assert_eq!(case.status, parlor_protocol::CaseStatus::Pending);
    assert_eq!(case.subject, "Order 1042, refund");
    assert!(
        quiet::<ToVisitor>(&mut visitor).await,
        "nobody left the chat"
    );
    send(&mut agent, &update(true)).await;
    assert!(
        next_system_message(&mut visitor)
            .await
            .contains("back in the queue")
    );
}

#[tokio::test]
async fn resolving_a_live_chat_places_the_customer_back_in_the_queue() {
    let server = Server::start().await;
    let (mut agent, mut visitor, case_id) = accepted_chat(&server).await;
    send(
        &mut agent,
        &AgentFrame::UpdateCase {
            case_id,
            status: parlor_protocol::CaseStatus::Resolved,
            subject: "Order 1042 is late".into(),
            group: None,
            close_tab: false,
        },
    )
    .await;
    assert_eq!(
        next_system_message(&mut visitor).await,
        "You have been placed back in the queue."
    );
    let case = until_state(&mut visitor, ChatState::Queued).await;
    assert_eq!(case.status, parlor_protocol::CaseStatus::Resolved);
}

#[tokio::test]
async fn moving_a_case_to_a_group_that_does_not_exist_is_refused_and_changes_nothing() {
    let server = Server::start().await;
    let (mut agent, _visitor, case_id) = accepted_chat(&server).await;
    let store = &server.running.state.store;
    let before = store.case(case_id).await.expect("read").expect("case");
    send(
        &mut agent,
        &AgentFrame::UpdateCase {
            case_id,
            status: parlor_protocol::CaseStatus::Pending,
            subject: "Moved".into(),
            group: Some(9_999),
            close_tab: false,
        },
    )
    .await;
    loop {
        match recv::<ToAgent>(&mut agent).await {
            ToAgent::Error { error } => {
                assert_eq!(error.code, ErrorCode::Invalid);
                assert_eq!(error.message, "There is no such group.");
                break;
            }
            ToAgent::State { case } => panic!("the case changed: {case:?}"),
            _ => {}
        }
    }
    let after = store.case(case_id).await.expect("read").expect("case");
    assert_eq!(after.summary.subject, before.summary.subject);
    assert_eq!(after.summary.status, before.summary.status);
    assert_eq!(after.group_id, before.group_id);
}

#[tokio::test]
async fn watching_a_chat_read_only_tells_the_customer_nothing_and_cannot_write() {
    let server = Server::start().await;
    let (mut agent, mut visitor, case_id) = accepted_chat(&server).await;
    let mut watcher = server.second_agent("bea@example.com").await;
    send(&mut watcher, &AgentFrame::Watch { case_id }).await;
    loop {
        if let ToAgent::Watching { chat } = recv::<ToAgent>(&mut watcher).await {
            assert_eq!(chat.messages.len(), 2, "the whole transcript");
            break;
        }
    }
    assert!(
        quiet::<ToVisitor>(&mut visitor).await,
        "the customer is not told"
    );
    send(
        &mut agent,
        &AgentFrame::Send {
            case_id,
            client_id: "a1".into(),
            body: "Live".into(),
        },
    )
    .await;
    loop {
        if let ToAgent::Message { message } = recv::<ToAgent>(&mut watcher).await {
            assert_eq!(message.body, "Live", "the watcher sees the chat live");
            break;
        }
    }
    send(
        &mut watcher,
        &AgentFrame::Send {
            case_id,
            client_id: "w1".into(),
            body: "sneaky".into(),
        },
    )
    .await;
    loop {
        if let ToAgent::Error { error } = recv::<ToAgent>(&mut watcher).await {
            assert_eq!(error.code, ErrorCode::Conflict);
            break;
        }
    }
}

#[tokio::test]
async fn a_chat_whose_customer_went_away_ends_after_the_inactivity_timeout() {
    let server = Server::start().await;
    server.put_chat_settings(1, 60, &[]).await;
    let (mut agent, visitor, case_id) = accepted_chat(&server).await;
    drop(visitor);
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let ToAgent::State { case } = recv::<ToAgent>(&mut agent).await
                && case.state == ChatState::Ended
            {
                return case;
            }
        }
    })
    .await
    .expect("ends within the timeout and a sweep");
    assert_eq!(ended.id, case_id);
    assert_eq!(ended.ended_by, Some(EndedBy::Timeout));
    let chat = server
        .running
        .state
        .store
        .chat_for(Caller::Agent(1), case_id, 0)
        .await
        .expect("read");
    assert_eq!(
        chat.messages.last().map(|m| m.body.as_str()),
        Some("The chat timed out due to inactivity.")
    );
}

#[tokio::test]
async fn an_agent_gone_past_the_grace_period_has_their_chat_put_back_in_the_queue() {
    let server = Server::start().await;
    server.put_chat_settings(600, 1, &[]).await;
    let (agent, mut visitor, _) = accepted_chat(&server).await;
    drop(agent);
    assert_eq!(
        next_system_message(&mut visitor).await,
        "Admin left the chat. You are back in the queue."
    );
    until_state(&mut visitor, ChatState::Queued).await;
}

#[tokio::test]
async fn a_system_message_switched_off_is_not_sent() {
    let server = Server::start().await;
    server.put_chat_settings(600, 60, &["agent_joined"]).await;
    let mut agent = server.agent().await;
    let (mut visitor, _) = server.visitor().await;
    send(&mut visitor, &start_chat("first")).await;
    recv::<ToVisitor>(&mut visitor).await;
    let case_id = match recv::<ToAgent>(&mut agent).await {
        ToAgent::Offer { offer } => offer.case_id,
        other => panic!("expected an offer, got {other:?}"),
    };
    send(&mut agent, &AgentFrame::Accept { case_id }).await;
    match recv::<ToVisitor>(&mut visitor).await {
        ToVisitor::State { case } => assert_eq!(case.state, ChatState::Active),
        other => panic!("expected only the new state, got {other:?}"),
    }
}

#[tokio::test]
async fn an_agent_who_reconnects_within_the_grace_period_keeps_their_chat() {
    let server = Server::start().await;
    server.put_chat_settings(600, 2, &[]).await;
    let (agent, mut visitor, case_id) = accepted_chat(&server).await;
    drop(agent);
    let mut again = server.agent().await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert!(
        quiet::<ToVisitor>(&mut visitor).await,
        "the customer hears nothing"
    );
    send(
        &mut again,
        &AgentFrame::Send {
            case_id,
            client_id: "back".into(),
            body: "Still here".into(),
        },
    )
    .await;
    match recv::<ToVisitor>(&mut visitor).await {
        ToVisitor::Message { message } => assert_eq!(message.body, "Still here"),
        other => panic!("expected the message, got {other:?}"),
    }
}

#[tokio::test]
async fn a_socket_silent_for_two_heartbeats_is_closed_and_one_that_pings_stays() {
    let server = Server::start_with(|config| config.heartbeat_secs = 1).await;
    let (mut silent, welcome) = server.widget(None, 0).await;
    assert!(matches!(
        welcome,
        ToVisitor::Welcome {
            heartbeat_secs: 1,
            ..
        }
    ));
    let (mut pinging, _) = server.widget(None, 0).await;
    let started = tokio::time::Instant::now();
    let keep_pinging = async {
        for _ in 0..8 {
            send(&mut pinging, &VisitorFrame::Ping).await;
            assert_eq!(recv::<ToVisitor>(&mut pinging).await, ToVisitor::Pong);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let closed = async {
        // Anything but a text frame (a close frame, an error, the end) is the close.
        while let Some(Ok(Message::Text(_))) = silent.next().await {}
        started.elapsed()
    };
    let ((), closed_after) = tokio::join!(keep_pinging, closed);
    assert!(
        closed_after < Duration::from_millis(2600),
        "closed after {closed_after:?}"
    );
    // Four seconds on, the socket that pinged is still served.
    send(&mut pinging, &VisitorFrame::Ping).await;
    assert_eq!(recv::<ToVisitor>(&mut pinging).await, ToVisitor::Pong);
}

#[tokio::test]
async fn a_visitor_over_the_message_rate_gets_a_clear_error_and_nothing_is_stored() {
    // One a second, bursts of ten.
    let server = Server::start_with(|config| config.messages_per_visitor_per_sec = 1).await;
    let (mut visitor, token) = server.visitor().await;
    send(&mut visitor, &start_chat("start")).await;
    assert!(matches!(
        recv::<ToVisitor>(&mut visitor).await,
        ToVisitor::ChatStarted { .. }
    ));
    for i in 0..10 {
        let client_id = format!("m{i}");
        send(
            &mut visitor,
            &VisitorFrame::Send {
                client_id,
                body: "hi".into(),
            },
        )
        .await;
        assert!(matches!(
            recv::<ToVisitor>(&mut visitor).await,
            ToVisitor::Message { .. }
        ));
    }
    let over = VisitorFrame::Send {
        client_id: "m10".into(),
        body: "one too many".into(),
    };
    send(&mut visitor, &over).await;
    let error = visitor_error(&mut visitor).await;
    assert_eq!(error.code, ErrorCode::TooFast);
    assert_eq!(error.client_id.as_deref(), Some("m10"));
    let (_, welcome) = server.widget(Some(token), 0).await;
    match welcome {
        ToVisitor::Welcome {
            chat: Some(chat), ..
        } => {
            assert_eq!(chat.messages.len(), 11);
            assert!(chat.messages.iter().all(|m| m.client_id != "m10"));
        }
        other => panic!("expected the chat, got {other:?}"),
    }
    // A second later there is room for one more.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    send(&mut visitor, &over).await;
    assert!(matches!(
        recv::<ToVisitor>(&mut visitor).await,
        ToVisitor::Message { .. }
    ));
}

#[tokio::test]
async fn new_chats_from_one_address_are_limited_with_a_clear_error() {
    let server = Server::start_with(|config| config.chats_per_ip_per_minute = 2).await;
    for i in 0..2 {
        let (mut visitor, _) = server.visitor().await;
        send(&mut visitor, &start_chat(&format!("s{i}"))).await;
        assert!(matches!(
            recv::<ToVisitor>(&mut visitor).await,
            ToVisitor::ChatStarted { .. }
        ));
    }
    let (mut third, token) = server.visitor().await;
    send(&mut third, &start_chat("s2")).await;
    let error = visitor_error(&mut third).await;
    assert_eq!(error.code, ErrorCode::TooFast);
    let (_, welcome) = server.widget(Some(token), 0).await;
    assert!(matches!(welcome, ToVisitor::Welcome { chat: None, .. }));
}

#[tokio::test]
async fn text_that_would_disguise_itself_arrives_without_its_hidden_characters() {
    let server = Server::start().await;
    let mut agent = server.agent().await;
    let (mut visitor, _) = server.visitor().await;
    send(
        &mut visitor,
        &start_with("s1", "Ad\u{200B}min\u{202E}", "Hi \u{2066}there\u{2069}"),
    )
    .await;
    let offer = loop {
        if let ToAgent::Offer { offer } = recv::<ToAgent>(&mut agent).await {
            break offer;
        }
    };
    assert_eq!(offer.customer_name, "Admin");
    send(
        &mut agent,
        &AgentFrame::Accept {
            case_id: offer.case_id,
        },
    )
    .await;
    let chat = loop {
        if let ToAgent::ChatOpened { chat } = recv::<ToAgent>(&mut agent).await {
            break chat;
        }
    };
    assert_eq!(chat.messages[0].body, "Hi there");
    send(
        &mut visitor,
        &VisitorFrame::Send {
            client_id: "m1".into(),
            body: "open invoice_\u{202E}fdp.exe at www.exa\u{200B}mple.com".into(),
        },
    )
    .await;
    loop {
        if let ToAgent::Message { message } = recv::<ToAgent>(&mut agent).await {
            assert_eq!(message.body, "open invoice_fdp.exe at www.example.com");
            break;
        }
    }
}

/// The case a customer's message with `client_id` landed in, as published.
async fn landed_in(ws: &mut Ws, client_id: &str) -> i64 {
    first_of(ws, |frame: ToVisitor| match frame {
        ToVisitor::Message { message } if message.client_id == client_id => Some(message.case_id),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn a_widget_whose_chat_ended_in_another_tab_sends_into_the_chat_started_there() {
    let server = Server::start().await;
    assert_eq!(server.put_routing(false, 30).await, 200);
    let (mut first, token) = server.visitor().await;
    send(&mut first, &start_chat("a")).await;
    let say = |client_id: &str| VisitorFrame::Send {
        client_id: client_id.into(),
        body: "hello".into(),
    };
    send(&mut first, &say("m1")).await;
    let ended = landed_in(&mut first, "m1").await;

    let (mut second, _) = server.widget(Some(token), 0).await;
    send(&mut second, &VisitorFrame::EndChat).await;
    first_of(&mut second, |frame: ToVisitor| match frame {
        ToVisitor::State { case } if case.state == ChatState::Ended => Some(()),
        _ => None,
    })
    .await;
    send(&mut second, &start_chat("b")).await;
    let live = first_of(&mut second, |frame: ToVisitor| match frame {
        ToVisitor::ChatStarted { chat } => Some(chat.case.id),
        _ => None,
    })
    .await;
    assert_ne!(live, ended);

    // The first tab still holds the chat that ended; its next message goes to the new one.
    send(&mut first, &say("m2")).await;
    assert_eq!(landed_in(&mut second, "m2").await, live);
}

#[tokio::test]
async fn an_agents_answers_sent_back_to_back_reach_the_customer_in_order_and_a_refusal_comes_back()
{
    let server = Server::start().await;
    let (mut agent, mut visitor, case_id) = accepted_chat(&server).await;
    let answer = |case_id, client_id: &str| AgentFrame::Send {
        case_id,
        client_id: client_id.into(),
        body: format!("answer {client_id}"),
    };
    // None waits for the one before: all are queued before the first commits.
    for i in 0..20 {
        send(&mut agent, &answer(case_id, &format!("a{i}"))).await;
    }
    send(&mut agent, &answer(case_id + 1, "elsewhere")).await;
    send(&mut agent, &answer(case_id, "a3")).await;

    let mut seqs = Vec::new();
    while seqs.len() < 20 {
        if let ToVisitor::Message { message } = recv::<ToVisitor>(&mut visitor).await {
            assert_eq!(
                message.body,
                format!("answer a{}", seqs.len()),
                "in the order sent"
            );
            seqs.push(message.seq);
        }
    }
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "one after another: {seqs:?}"
    );
    // The agent hears its first "a3" as published, then the retry's answer: the same.
    let mut refused = false;
    let mut a3_heard = 0;
    while !(refused && a3_heard == 2) {
        match recv::<ToAgent>(&mut agent).await {
            ToAgent::Error { error } if error.client_id.as_deref() == Some("elsewhere") => {
                assert_eq!(error.code, ErrorCode::NotFound);
                refused = true;
            }
            ToAgent::Message { message } if message.client_id == "a3" => {
                assert_eq!(message.seq, seqs[3]);
                a3_heard += 1;
            }
            _ => {}
        }
    }
    assert!(
        quiet::<ToVisitor>(&mut visitor).await,
        "the retry stored nothing new"
    );
}
