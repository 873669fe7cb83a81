//! Several Parlor nodes sharing one PostgreSQL database and one NATS server (real ones:
//! `scripts/test.sh` starts them for its PostgreSQL pass): what the sockets of one node
//! hear reaches those of another, each message once and in `seq` order.

mod common;

use std::time::Duration;

use common::cluster::*;
use common::*;
use futures_util::StreamExt;
use parlor_protocol::{AgentFrame, ChatMessage, ToAgent, ToVisitor, VisitorFrame};
use tokio_tungstenite::tungstenite::Message;

/// Two nodes on a new database and the NATS server at `nats`.
async fn two_nodes(nats: &str) -> (Server, Server) {
    let one = Server::start_with(|config| config.nats_url = Some(nats.to_owned())).await;
    let two = another_node(&one, nats).await;
    (one, two)
}

/// Another node on `one`'s database and the NATS at `nats`, in this process.
async fn another_node(one: &Server, nats: &str) -> Server {
    let database = one.running.state.config.database_url.clone();
    Server::start_with(|config| {
        config.database_url = database;
        config.nats_url = Some(nats.to_owned());
    })
    .await
}

/// A chat on node `one` (its agent's console, the customer's widget, the case) watched
/// from node `two`, and the last seq the watcher got in the transcript.
async fn watched_chat(one: &Server, two: &Server) -> (Ws, Ws, i64, Ws, i64) {
    let (agent, visitor, case_id) = accepted_chat(one).await;
    let mut watcher = two.second_agent("bea@example.com").await;
    send(&mut watcher, &AgentFrame::Watch { case_id }).await;
    let last_seen = first_of(&mut watcher, |frame: ToAgent| match frame {
        ToAgent::Watching { chat } => chat.messages.last().map(|m| m.seq),
        _ => None,
    })
    .await;
    (agent, visitor, case_id, watcher, last_seen)
}

/// The customer and the agent each send `count` messages.
async fn both_send(visitor: &mut Ws, agent: &mut Ws, case_id: i64, count: usize) {
    for n in 0..count {
        let frame = VisitorFrame::Send {
            client_id: format!("v{n}"),
            body: format!("customer {n}"),
        };
        send(visitor, &frame).await;
        let reply = AgentFrame::Send {
            case_id,
            client_id: format!("a{n}"),
            body: format!("agent {n}"),
        };
        send(agent, &reply).await;
    }
}

fn console_message(frame: ToAgent) -> Option<ChatMessage> {
    match frame {
        ToAgent::Message { message } => Some(message),
        _ => None,
    }
}

fn widget_message(frame: ToVisitor) -> Option<ChatMessage> {
    match frame {
        ToVisitor::Message { message } => Some(message),
        _ => None,
    }
}

/// The next `count` messages a socket hears after `seq` `after`, as seq and text, in
/// the order heard (what it already held may come again before: a client keeps each
/// seq once).
async fn heard_after<T: serde::de::DeserializeOwned>(
    ws: &mut Ws,
    after: i64,
    count: usize,
    message: fn(T) -> Option<ChatMessage>,
) -> Vec<(i64, String)> {
    let mut heard = Vec::new();
    while heard.len() < count {
        let message = first_of(ws, message).await;
        if message.seq > after {
            heard.push((message.seq, message.body));
        }
    }
    heard
}

/// The next message frame on a console, skipping others.
async fn next_message(ws: &mut Ws) -> ChatMessage {
    first_of(ws, console_message).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_on_another_node_hears_every_message_once_and_in_order() {
    let Some(nats) = shared_nats() else { return };
    let (one, two) = two_nodes(&nats).await;
    // The customer and the agent in the chat on node one, a watcher on node two.
    let (mut agent, mut visitor, case_id, mut watcher, last_seen) = watched_chat(&one, &two).await;
    both_send(&mut visitor, &mut agent, case_id, 10).await;
    let (seqs, bodies): (Vec<i64>, Vec<String>) =
        heard_after(&mut watcher, last_seen, 20, console_message)
            .await
            .into_iter()
            .unzip();
    let expected: Vec<i64> = (last_seen + 1..=last_seen + 20).collect();
    assert_eq!(seqs, expected, "each message once, in seq order");
    for n in 0..10 {
        assert!(bodies.contains(&format!("customer {n}")), "{bodies:?}");
        assert!(bodies.contains(&format!("agent {n}")), "{bodies:?}");
    }
    assert!(quiet::<ToAgent>(&mut watcher).await, "nothing twice");
    // A long message travels as its seq only; the watcher's node reads its text.
    let long = "long ".repeat(400);
    let frame = AgentFrame::Send {
        case_id,
        client_id: "long".into(),
        body: long.clone(),
    };
    send(&mut agent, &frame).await;
    let message = next_message(&mut watcher).await;
    assert_eq!((message.seq, message.body), (last_seen + 21, long));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_resumes_on_another_node_and_hears_the_agent_there() {
    let Some(nats) = shared_nats() else { return };
    let (one, two) = two_nodes(&nats).await;
    let (mut agent, visitor, case_id, token) = accepted_chat_with_token(&one).await;
    drop(visitor);
    send(
        &mut agent,
        &AgentFrame::Send {
            case_id,
            client_id: "a1".into(),
            body: "While you were away".into(),
        },
    )
    .await;
    next_message(&mut agent).await;
    // The widget comes back through the load balancer, to the other node.
    // (A message may come before the welcome or again after it: the widget keeps each
    // seq once.)
    let (mut widget, _, chat) = widget_hello(two.running.addr, Some(token)).await;
    let chat = chat.expect("the live chat in the welcome");
    assert_eq!(chat.case.id, case_id);
    assert_eq!(
        chat.messages.last().map(|m| m.body.as_str()),
        Some("While you were away")
    );
    let last = chat.messages.last().map_or(0, |m| m.seq);
    send(
        &mut agent,
        &AgentFrame::Send {
            case_id,
            client_id: "a2".into(),
            body: "Welcome back".into(),
        },
    )
    .await;
    let heard = first_of(&mut widget, |frame: ToVisitor| match frame {
        ToVisitor::Message { message } if message.seq > last => Some(message),
        _ => None,
    })
    .await;
    assert_eq!(heard.body, "Welcome back");
    assert_eq!(heard.seq, last + 1);
    // And the customer's reply, sent on node two, reaches the agent on node one.
    send(
        &mut widget,
        &VisitorFrame::Send {
            client_id: "v9".into(),
            body: "Thanks".into(),
        },
    )
    .await;
    loop {
        let message = next_message(&mut agent).await;
        if message.body == "Thanks" {
            assert_eq!(message.seq, last + 2);
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_node_missed_while_nats_restarted_arrives_once_in_order_when_it_is_back() {
    if shared_nats().is_none() {
        return;
    }
    // Its own NATS, stopped mid-test: the one the other tests share stays up.
    let nats = OwnNats::start().await;
    let (one, two) = two_nodes(&nats.url).await;
    let (mut agent, mut visitor, case_id, mut watcher, last_seen) = watched_chat(&one, &two).await;
    let health = |server: &Server| {
        let url = server.url("/healthz");
        async move { reqwest::get(url).await.expect("answers").status() }
    };
    assert_eq!(health(&two).await, reqwest::StatusCode::OK);

    nats_script("stop", nats.dir.path()).await;
    // Five from node one, heard there at once (and dropped for the bus while it is
    // away), then five written by a process with no bus at all: node two can only read
    // them from the database once the bus is back, and node one the last five too.
    both_send(&mut visitor, &mut agent, case_id, 5).await;
    let mut on_one = 0;
    while on_one < 10 {
        next_message(&mut agent).await;
        on_one += 1;
    }
    let database = one.running.state.config.database_url.clone();
    let busless = parlor_server::store::Store::open(&database.expect("PostgreSQL"))
        .await
        .expect("opens");
    let customer = parlor_protocol::Author::Customer {
        name: "Grace Hopper".into(),
    };
    for n in 0..5 {
        let id = format!("b{n}");
        busless
            .append_message(case_id, &id, &customer, &id, None)
            .await
            .expect("stored");
    }
    busless.close().await;
    assert_eq!(
        health(&two).await,
        reqwest::StatusCode::SERVICE_UNAVAILABLE,
        "a node without the bus says so"
    );
    nats_script("resume", nats.dir.path()).await;

    // The customer's widget on node one hears the five only the database has, once
    // and in order (the node reads them when the bus is back).
    let from_db = heard_after(&mut visitor, last_seen + 10, 5, widget_message).await;
    let expected: Vec<(i64, String)> = (0..5)
        .map(|n| (last_seen + 11 + n, format!("b{n}")))
        .collect();
    assert_eq!(from_db, expected, "what only the database has, in order");
    // The consoles here missed what routing told them meanwhile: each is dropped, and
    // resumes. The watcher's finds the fifteen it missed, in order.
    assert!(
        closed_within(&mut watcher).await,
        "node two drops its consoles"
    );
    assert!(closed_within(&mut agent).await, "and so does node one");
    let mut watcher = two
        .console(&two.sign_in_as("bea@example.com", "bea-password-1").await)
        .await
        .0;
    send(&mut watcher, &AgentFrame::Watch { case_id }).await;
    let seqs = first_of(&mut watcher, |frame: ToAgent| match frame {
        ToAgent::Watching { chat } => Some(chat.messages.iter().map(|m| m.seq).collect::<Vec<_>>()),
        _ => None,
    })
    .await;
    let missed: Vec<i64> = seqs.into_iter().filter(|&seq| seq > last_seen).collect();
    let expected: Vec<i64> = (last_seen + 1..=last_seen + 15).collect();
    assert_eq!(
        missed, expected,
        "what the bus lost, read from the database, in order"
    );
    // And the bus carries the chat again.
    let mut agent = one.agent().await;
    send(
        &mut agent,
        &AgentFrame::Send {
            case_id,
            client_id: "after".into(),
            body: "after".into(),
        },
    )
    .await;
    // (What it read on watching may come again: a console keeps each seq once.)
    let after = heard_after(&mut watcher, last_seen + 15, 1, console_message).await;
    assert_eq!(after, vec![(last_seen + 16, "after".to_owned())]);
    assert!(quiet::<ToAgent>(&mut watcher).await, "nothing twice");
    assert_eq!(health(&two).await, reqwest::StatusCode::OK);
}

/// Whether the server drops the socket within a few seconds (frames before are
/// skipped).
async fn closed_within(ws: &mut Ws) -> bool {
    tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_on_one_node_closes_the_console_open_on_another() {
    let Some(nats) = shared_nats() else { return };
    let (one, two) = two_nodes(&nats).await;
    let cookie = one.sign_in().await;
    let (mut console, _) = two.console(&cookie).await;
    let status = reqwest::Client::new()
        .post(one.url("/api/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("answers")
        .status();
    assert_eq!(status, reqwest::StatusCode::NO_CONTENT);
    assert_eq!(
        close_code(&mut console).await,
        Some(parlor_protocol::CLOSE_SESSION_ENDED),
        "the console on the other node closes, saying the session ended"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_an_agent_off_on_one_node_closes_their_console_on_another() {
    let Some(nats) = shared_nats() else { return };
    let (one, two) = two_nodes(&nats).await;
    let mut bea = two.second_agent("bea@example.com").await;
    let admin = one.sign_in().await;
    let status = one
        .switch_off(&admin, 2, ("Bea", "bea@example.com", false))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        close_code(&mut bea).await,
        Some(parlor_protocol::CLOSE_ACCOUNT_OFF),
        "the console on the other node closes, saying the account was switched off"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ended_while_a_node_was_cut_off_from_nats_closes_its_console_when_it_is_back() {
    if shared_nats().is_none() {
        return;
    }
    let nats = OwnNats::start().await;
    let (one, two) = two_nodes(&nats.url).await;
    let cookie = one.sign_in().await;
    let (mut console, _) = two.console(&cookie).await;
    nats_script("stop", nats.dir.path()).await;
    // Ended by a process with no bus: node two can only find out from the database.
    let token = cookie
        .split_once('=')
        .map(|(_, token)| token)
        .expect("a cookie");
    let database = one.running.state.config.database_url.clone();
    let busless = parlor_server::store::Store::open(&database.expect("PostgreSQL"))
        .await
        .expect("opens");
    busless.delete_session(token).await.expect("ended");
    busless.close().await;
    nats_script("resume", nats.dir.path()).await;
    assert_eq!(
        close_code(&mut console).await,
        Some(parlor_protocol::CLOSE_SESSION_ENDED),
        "the console closes once its node hears the bus again"
    );
}

/// A `parlor` process on a new database (its folder `dir`) that routes, being the first
/// node, and a second node in this process that follows.
async fn process_leader_and_node(nats: &str, dir: &std::path::Path) -> (Parlor, Server) {
    let leader = Parlor::start_with(dir, "127.0.0.1:0", &[("PARLOR_NATS_URL", nats)]).await;
    let database = parlor_server::store::Store::test_database_url(dir)
        .await
        .expect("a database");
    let two = Server::start_with(|config| {
        config.database_url = database;
        config.nats_url = Some(nats.to_owned());
    })
    .await;
    assert!(!two.running.state.routing.leads());
    (leader, two)
}

/// The chat of the next screen pop on a console within `limit`, skipping other frames
/// (however long the console stays quiet meanwhile).
async fn offer_within(ws: &mut Ws, limit: Duration) -> Option<i64> {
    let next = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    if let Ok(ToAgent::Offer { offer }) = serde_json::from_str(text.as_str()) {
                        return offer.case_id;
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("the console closed: {other:?}"),
            }
        }
    };
    tokio::time::timeout(limit, next).await.ok()
}

/// Accepts `case_id` on a console and waits for its tab to open.
async fn accept(agent: &mut Ws, case_id: i64) {
    send(agent, &AgentFrame::Accept { case_id }).await;
    let opened = first_of(agent, |frame: ToAgent| match frame {
        ToAgent::ChatOpened { chat } => Some(chat.case.id),
        _ => None,
    })
    .await;
    assert_eq!(opened, case_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_routing_node_is_killed_another_routes_the_next_chat_within_the_lease() {
    let Some(nats) = shared_nats() else { return };
    // The first node, a real process, takes the routing lease; node two follows.
    let dir = tempfile::tempdir().expect("temp dir");
    let (leader, two) = process_leader_and_node(&nats, dir.path()).await;
    let health: serde_json::Value = reqwest::get(two.url("/healthz"))
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    assert_eq!(health["routing"], "follows");

    // A chat started on node two pops up on the agent's console on node two: the
    // leader hears both over the bus, and its screen pop comes back over it.
    let mut agent = two.agent().await;
    let (mut first, _) = two.visitor().await;
    send(&mut first, &start_chat("first")).await;
    let case_id = offer_within(&mut agent, Duration::from_secs(5))
        .await
        .expect("a screen pop");
    accept(&mut agent, case_id).await;

    leader.kill_9().await;
    let killed = tokio::time::Instant::now();
    let (mut second, _) = two.visitor().await;
    send(&mut second, &start_chat("second")).await;
    // Nobody routes until the lease runs out; then node two takes it, has every
    // console resume (the dead node may have committed a decision it never told
    // them), reads the chat waiting, and pops it up.
    // (The lease and a tick at most; and room for a busy machine.)
    let bound =
        parlor_server::leader::LEASE + parlor_server::leader::LEASE_TICK + Duration::from_secs(3);
    let resumed = tokio::time::timeout(bound, async {
        while let Some(Ok(_)) = agent.next().await {}
    });
    assert!(resumed.await.is_ok(), "the console resumes at the takeover");
    let mut agent = two.agent().await;
    let next = offer_within(&mut agent, bound.saturating_sub(killed.elapsed()))
        .await
        .unwrap_or_else(|| panic!("no screen pop within {bound:?} of the kill"));
    assert_ne!(next, case_id);
    assert!(two.running.state.routing.leads());
    eprintln!("screen pop {:?} after the kill", killed.elapsed());
    accept(&mut agent, next).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_an_admin_changes_on_one_node_apply_on_the_others() {
    let Some(nats) = shared_nats() else { return };
    let (one, two) = two_nodes(&nats).await;
    let cookie = one.sign_in().await;
    let mut widget: serde_json::Value = one.get_json("/api/settings/widget", &cookie).await;
    widget["title"] = "Talk to Parlor".into();
    let status = reqwest::Client::new()
        .put(one.url("/api/settings/widget"))
        .header("cookie", &cookie)
        .json(&widget)
        .send()
        .await
        .expect("answers")
        .status();
    assert!(status.is_success(), "{status}");
    // Node two reads them again when the bus tells it (a moment later).
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let seen: serde_json::Value = two.get_json("/api/settings/widget", &cookie).await;
            if seen["title"] == "Talk to Parlor" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("node two has the new title");
}

/// When the customer of `case` counts as gone, as the database has it.
async fn customer_left_at(server: &Server, case: i64) -> Option<i64> {
    let record = server.running.state.store.case(case).await.expect("read");
    record.expect("the case").summary.customer_left_at
}

/// When the customer of `case` counts as gone, once they do within `limit`.
async fn gone_within(server: &Server, case: i64, limit: Duration) -> Option<i64> {
    let gone = async {
        loop {
            if let Some(at) = customer_left_at(server, case).await {
                return at;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(limit, gone).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_with_widgets_on_two_nodes_counts_as_gone_only_when_both_closed() {
    let Some(nats) = shared_nats() else { return };
    let (one, two) = two_nodes(&nats).await;
    let (first, token, case_id) = customer_at(one.running.addr, "first").await;
    // A second tab, through the load balancer to node two.
    let (second, _, chat) = widget_hello(two.running.addr, Some(token)).await;
    assert!(chat.is_some(), "the live chat in the welcome");
    drop(first);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        customer_left_at(&one, case_id).await,
        None,
        "one widget is open"
    );
    let before_last = parlor_server::store::now_ms();
    drop(second);
    let left = gone_within(&one, case_id, Duration::from_secs(5))
        .await
        .expect("gone once the last widget closed");
    assert!(
        left >= before_last,
        "counted gone at {left}, before the last widget closed at {before_last}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_counts_its_customers_gone_once_its_lease_ran_out_and_a_start_counts_nobody_else()
 {
    let Some(nats) = shared_nats() else { return };
    let one = Server::start_with(|config| config.nats_url = Some(nats.clone())).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let other = process_node(&one, &nats, dir.path()).await;
    // A customer on each node.
    let (here, _, staying) = customer_at(one.running.addr, "here").await;
    let (_there, _, stranded) = customer_at(other.addr, "there").await;

    let killed = parlor_server::store::now_ms();
    other.kill_9().await;
    // Its widget's socket is gone with it; its customer counts as gone once its lease
    // ran out (5 s), found by the node that routes.
    let left = gone_within(&one, stranded, Duration::from_secs(15))
        .await
        .expect("the killed node's customer counts as gone");
    // From when its lease ran out: its last renewal (before the kill) and 5 s.
    assert!(
        left > killed,
        "gone from when the lease ran out, not before"
    );
    assert!(
        left <= killed + parlor_server::timers::NODE_LEASE_MS,
        "gone from when the lease ran out, not when it was found"
    );
    assert_eq!(customer_left_at(&one, staying).await, None);

    // A node starting on the database counts nobody else as gone.
    let _again = process_node(&one, &nats, dir.path()).await;
    assert_eq!(customer_left_at(&one, staying).await, None);
    drop(here);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_chat_routing_never_heard_of_is_found_in_the_database_and_routed() {
    let Some(nats) = shared_nats() else { return };
    let (one, two) = two_nodes(&nats).await;
    assert!(one.running.state.routing.leads());
    let mut agent = two.agent().await;
    // A chat whose news was lost on the bus: written by a process with no bus at all.
    let database = one.running.state.config.database_url.clone();
    let busless = parlor_server::store::Store::open(&database.expect("PostgreSQL"))
        .await
        .expect("opens");
    let chat = parlor_server::store::NewChat {
        customer_name: "Grace".into(),
        subject: "Lost news".into(),
        location: String::new(),
        client_id: "lost".into(),
        body: "Hello?".into(),
        group: None,
        email: None,
        answers: Vec::new(),
    };
    let started = busless
        .start_chat("a-visitor-token-nobody-heard-of", &chat)
        .await
        .expect("started");
    // Routing checks its queue against the database every 5 s, and acts on what
    // differed twice.
    let offered = offer_within(&mut agent, Duration::from_secs(15))
        .await
        .expect("the chat pops up once routing finds it");
    assert_eq!(offered, started.case);
    accept(&mut agent, offered).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_with_room_for_two_and_consoles_on_two_nodes_gets_two_of_three_chats_taken_at_once()
 {
    let Some(nats) = shared_nats() else { return };
    let (one, two) = two_nodes(&nats).await;
    // Routing off for the channel: agents take chats from the waiting list.
    assert!(one.put_routing(false, 30).await.is_success());
    let bea = one
        .running
        .state
        .store
        .create_agent("bea@example.com", "Bea", "bea-password-1", false)
        .await
        .expect("made");
    let admin = one.sign_in().await;
    let body = serde_json::json!({
        "name": "Bea", "email": "bea@example.com", "is_admin": false,
        "active": true, "capacity": 2, "groups": []
    });
    assert!(one.put_agent(&admin, bea, body).await.is_success());
    let mut cases = Vec::new();
    let mut widgets = Vec::new();
    for n in 0..3 {
        let (widget, _, case) = customer_at(one.running.addr, &format!("c{n}")).await;
        cases.push(case);
        widgets.push(widget);
    }
    let cookie = one.sign_in_as("bea@example.com", "bea-password-1").await;
    let (mut on_one, _) = one.console(&cookie).await;
    let (mut on_two, _) = two.console(&cookie).await;
    // Two chats from the console on node one, the third from node two, at once.
    send(&mut on_one, &AgentFrame::Accept { case_id: cases[0] }).await;
    send(&mut on_one, &AgentFrame::Accept { case_id: cases[1] }).await;
    send(&mut on_two, &AgentFrame::Accept { case_id: cases[2] }).await;
    // Every console of hers hears each chat she entered, and the refusal; then nothing
    // more comes (a third chat would).
    let at_capacity = "You are in as many chats as your capacity allows.";
    let mut opened = std::collections::BTreeSet::new();
    for console in [&mut on_one, &mut on_two] {
        let (mut entered, mut refused) = (Vec::new(), Vec::new());
        let heard = tokio::time::timeout(Duration::from_secs(10), async {
            while entered.len() < 2 || refused.is_empty() {
                match recv_any::<ToAgent>(console).await {
                    ToAgent::ChatOpened { chat } => entered.push(chat.case.id),
                    ToAgent::Error { error } => refused.push(error.message),
                    _ => {}
                }
            }
        })
        .await;
        assert!(heard.is_ok(), "entered {entered:?}, refused {refused:?}");
        assert_eq!(refused, vec![at_capacity.to_owned()]);
        while let Ok(frame) =
            tokio::time::timeout(Duration::from_secs(1), recv_any::<ToAgent>(console)).await
        {
            assert!(
                !matches!(frame, ToAgent::ChatOpened { .. }),
                "a third: {frame:?}"
            );
        }
        opened.extend(entered);
    }
    assert_eq!(opened.len(), 2, "two chats entered: {opened:?}");
}

/// Another node on `one`'s database and the NATS at `nats`: a `parlor` process (it can
/// be killed), its folder `dir`.
async fn process_node(one: &Server, nats: &str, dir: &std::path::Path) -> Parlor {
    let database = one.running.state.config.database_url.clone();
    let database = database.expect("PostgreSQL");
    let env = [
        ("PARLOR_NATS_URL", nats),
        ("PARLOR_DATABASE_URL", database.as_str()),
    ];
    Parlor::start_with(dir, "127.0.0.1:0", &env).await
}

/// A widget on node `addr` saying hello with `token` (none: a new visitor), and the
/// welcome's token and live chat. (A message may come before the welcome: the widget
/// keeps each seq once.)
async fn widget_hello(
    addr: std::net::SocketAddr,
    token: Option<String>,
) -> (Ws, String, Option<parlor_protocol::Chat>) {
    let mut widget = silent_widget_at(addr).await;
    send(&mut widget, &VisitorFrame::Hello { token, since: 0 }).await;
    let (token, chat) = first_of(&mut widget, |frame: ToVisitor| match frame {
        ToVisitor::Welcome { token, chat, .. } => Some((token, chat)),
        _ => None,
    })
    .await;
    (widget, token, chat)
}

/// A customer's widget on node `addr` with a new chat: the socket, its token, the case.
async fn customer_at(addr: std::net::SocketAddr, first: &str) -> (Ws, String, i64) {
    let (mut widget, token, _) = widget_hello(addr, None).await;
    send(&mut widget, &start_chat(first)).await;
    let case = first_of(&mut widget, |frame: ToVisitor| match frame {
        ToVisitor::ChatStarted { chat } => Some(chat.case.id),
        _ => None,
    })
    .await;
    (widget, token, case)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_chat_loses_nothing_acknowledged_and_its_customers_resume_on_another() {
    let Some(nats) = shared_nats() else { return };
    let one = Server::start_with(|config| config.nats_url = Some(nats.clone())).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let other = process_node(&one, &nats, dir.path()).await;
    // The agent (room for three) on node one; four customers on the other node: three
    // chats accepted, the fourth waiting.
    let mut agent = one.agent().await;
    let mut customers = Vec::new();
    for n in 0..4 {
        let (widget, token, case) = customer_at(other.addr, &format!("first{n}")).await;
        if n < 3 {
            let offered = offer_within(&mut agent, Duration::from_secs(5)).await;
            assert_eq!(offered, Some(case));
            accept(&mut agent, case).await;
        }
        customers.push((widget, token, case));
    }
    let waiting = customers[3].2;
    // Each chatting customer sends five messages and sees each acknowledged.
    for (widget, _, case) in &mut customers[..3] {
        for n in 0..5 {
            let frame = VisitorFrame::Send {
                client_id: format!("m{case}-{n}"),
                body: format!("message {n}"),
            };
            send(widget, &frame).await;
            first_of(widget, |frame: ToVisitor| match frame {
                ToVisitor::Message { message } if message.client_id == format!("m{case}-{n}") => {
                    Some(())
                }
                _ => None,
            })
            .await;
        }
    }

    other.kill_9().await;
    // Each customer's widget reconnects, through the load balancer, to node one, and
    // finds every message it saw acknowledged there once, in seq order.
    let mut back = Vec::new();
    for (_, token, case) in customers.drain(..) {
        let (mut widget, _, chat) = widget_hello(one.running.addr, Some(token)).await;
        let chat = chat.expect("the live chat");
        assert_eq!(chat.case.id, case);
        let seqs: Vec<i64> = chat.messages.iter().map(|m| m.seq).collect();
        let expected: Vec<i64> = (1..=seqs.len() as i64).collect();
        assert_eq!(seqs, expected, "no gap, none twice");
        if case != waiting {
            for n in 0..5 {
                let id = format!("m{case}-{n}");
                let copies = chat.messages.iter().filter(|m| m.client_id == id).count();
                assert_eq!(copies, 1, "{id} once");
            }
            // The chat goes on: the agent's answer reaches the customer on node one.
            let reply = AgentFrame::Send {
                case_id: case,
                client_id: format!("r{case}"),
                body: "Still here".into(),
            };
            send(&mut agent, &reply).await;
            first_of(&mut widget, |frame: ToVisitor| match frame {
                ToVisitor::Message { message } if message.body == "Still here" => Some(()),
                _ => None,
            })
            .await;
        }
        back.push((widget, case));
    }
    // The waiting chat is still routing's: once the agent has room, it pops up.
    let ended = back[0].1;
    send(&mut agent, &AgentFrame::EndChat { case_id: ended }).await;
    let offered = offer_within(&mut agent, Duration::from_secs(15)).await;
    assert_eq!(
        offered,
        Some(waiting),
        "the waiting chat is offered once there is room"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_lease_ran_out_counts_its_customers_again_when_it_renews_it() {
    let Some(nats) = shared_nats() else { return };
    let (one, two) = two_nodes(&nats).await;
    let (_widget, _, case) = customer_at(two.running.addr, "cut-off").await;
    let node_two = two.running.state.routing.node().to_owned();
    // Node two's lease runs out (as if it was cut off from the database for a while),
    // and the routing node uncounts its sockets. (Should node two renew in between,
    // its socket still counts and nothing changes: again.)
    use parlor_server::store::{Sockets, now_ms};
    let state = &one.running.state;
    while customer_left_at(&one, case).await.is_none() {
        let now = now_ms();
        let ran_out = state.store.renew_node(&node_two, now, now - 1).await;
        ran_out.expect("written");
        let lost = Sockets::LostWithNode(now);
        let marked = state.chats.customer_presence(&node_two, case, lost).await;
        marked.expect("marked");
    }
    // Its next renewal finds the lease had run out, and counts its widget again.
    let back = tokio::time::timeout(Duration::from_secs(5), async {
        while customer_left_at(&one, case).await.is_some() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(back.is_ok(), "the customer counts as here again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routing_node_shutting_down_gives_the_lease_up_for_another_to_take_at_once() {
    let Some(nats) = shared_nats() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut leader, two) = process_leader_and_node(&nats, dir.path()).await;
    leader.sigterm().await;
    let exited = tokio::time::timeout(Duration::from_secs(10), leader.child.wait()).await;
    assert!(exited.is_ok(), "the leader stops");
    // Given up (or already taken by node two): not left to run out.
    let (holder, _, until) = two.running.state.store.routing_lease().await.expect("read");
    assert!(
        until == 0 || holder == two.running.state.routing.node(),
        "held by {holder} until {until}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_an_agent_and_a_watcher_on_three_nodes_each_see_every_message_once_in_order() {
    let Some(nats) = shared_nats() else { return };
    let (one, two) = two_nodes(&nats).await;
    let three = another_node(&one, &nats).await;
    // The customer on node one, the agent on node two (routed by node one), a watcher
    // on node three.
    let (mut customer, _, case_id) = customer_at(one.running.addr, "first").await;
    let mut agent = two.agent().await;
    let offered = offer_within(&mut agent, Duration::from_secs(5)).await;
    assert_eq!(offered, Some(case_id));
    accept(&mut agent, case_id).await;
    let mut watcher = three.second_agent("bea@example.com").await;
    send(&mut watcher, &AgentFrame::Watch { case_id }).await;
    let watched = first_of(&mut watcher, |frame: ToAgent| match frame {
        ToAgent::Watching { chat } => Some(chat.messages.last().map_or(0, |m| m.seq)),
        _ => None,
    })
    .await;
    both_send(&mut customer, &mut agent, case_id, 5).await;
    // What the database holds, in order.
    let mut ten = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let stored = one
                .running
                .state
                .store
                .messages_between(case_id, watched, i64::MAX, 0);
            let stored = stored.await.expect("read");
            if stored.len() >= 10 {
                return stored;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("all ten stored");
    ten.truncate(10);
    let expected: Vec<(i64, String)> = ten.iter().map(|m| (m.seq, m.body.clone())).collect();
    // Each side hears them in that order, each once.
    let heard = heard_after(&mut watcher, watched, 10, console_message).await;
    assert_eq!(heard, expected, "the watcher on node three");
    let heard = heard_after(&mut agent, watched, 10, console_message).await;
    assert_eq!(heard, expected, "the agent on node two");
    let heard = heard_after(&mut customer, watched, 10, widget_message).await;
    assert_eq!(heard, expected, "the customer on node one");
    assert!(quiet::<ToAgent>(&mut watcher).await, "nothing twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_chat_whose_customer_came_back_unheard_is_offered_once_routing_checks() {
    let Some(nats) = shared_nats() else { return };
    let (one, two) = two_nodes(&nats).await;
    let (widget, _, case) = customer_at(one.running.addr, "back").await;
    drop(widget);
    gone_within(&one, case, Duration::from_secs(5))
        .await
        .expect("the customer counts as gone");
    // They come back through a process with no bus: routing never hears of it, and
    // offers a chat whose customer is gone to nobody.
    let database = one.running.state.config.database_url.clone();
    let busless = parlor_server::store::Store::open(&database.expect("PostgreSQL"))
        .await
        .expect("opens");
    let back = parlor_server::store::Presence::Customer(case);
    assert!(
        busless
            .here("a-node-with-no-bus", back)
            .await
            .expect("marked")
    );
    let mut agent = two.agent().await;
    // Routing checks its queue against the database every 5 s, and acts on what
    // differed twice.
    let offered = offer_within(&mut agent, Duration::from_secs(15)).await;
    assert_eq!(
        offered,
        Some(case),
        "offered once routing found the customer back"
    );
}
