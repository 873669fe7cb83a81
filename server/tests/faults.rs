//! Faults, against the real `parlor` binary and its database: the server killed with
//! SIGKILL mid-run and restarted, client connections dropped at random, a screen pop
//! whose timer was running at the crash, and SIGTERM. The check is a "total queue":
//! every message a customer sent and saw acknowledged is stored exactly once, in
//! `seq` order with no hole, and every customer's own copy, put together across its
//! reconnections, is that same transcript.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Frame, PASSWORD, Parlor, Ws, recv, send};
use futures_util::{SinkExt, StreamExt};
use parlor_protocol::{OfferClosed, Seq, ToAgent, ToVisitor, VisitorFrame};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

async fn console(addr: SocketAddr, cookie: &str) -> Ws {
    common::console_at(addr, cookie).await.0
}

/// A small deterministic generator, so a failing run can be told apart by its seed.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % sides
    }
}

/// What one customer saw and sent over the whole run.
#[derive(Default)]
struct Customer {
    number: usize,
    token: Option<String>,
    /// Every message this customer's widget received, by `seq`.
    seen: BTreeMap<Seq, String>,
    sent: Vec<String>,
    acked: HashSet<String>,
    /// Links that opened and said hello: more than one means it lost a link and came back.
    links: u32,
}

impl Customer {
    fn since(&self) -> Seq {
        self.seen.keys().next_back().copied().unwrap_or(0)
    }

    /// Records a message; the same `seq` must always be the same message.
    fn saw(&mut self, seq: Seq, client_id: &str) {
        let before = self.seen.insert(seq, client_id.to_owned());
        if let Some(before) = before {
            assert_eq!(before, client_id, "seq {seq} changed its message");
        }
        self.acked.insert(client_id.to_owned());
    }

    /// Connects (retrying while the server is down), resumes from the last `seq`, and
    /// starts the chat if it is not stored yet.
    async fn connect(&mut self, addr: SocketAddr) -> Ws {
        loop {
            if let Ok((mut ws, _)) = connect_async(format!("ws://{addr}/ws/visitor")).await {
                let hello = VisitorFrame::Hello {
                    token: self.token.clone(),
                    since: self.since(),
                };
                if ws.send(text(&hello)).await.is_ok()
                    && let Some(chat) = self.welcome(&mut ws).await
                {
                    self.links += 1;
                    if chat {
                        return ws;
                    }
                    let start = VisitorFrame::StartChat {
                        client_id: format!("start-{}", self.number),
                        name: format!("Customer {}", self.number),
                        subject: "Faults".into(),
                        body: "hello".into(),
                        time_zone: None,
                        language: None,
                        group: None,
                        email: String::new(),
                        custom: Default::default(),
                    };
                    if ws.send(text(&start)).await.is_ok() && self.started(&mut ws).await {
                        return ws;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Reads the welcome: `Some(true)` when the chat is stored, with the gap since.
    async fn welcome(&mut self, ws: &mut Ws) -> Option<bool> {
        // The socket follows the chat before the transcript is read, so a message
        // published meanwhile may come first (it is kept by `seq` like any other), and so
        // may queue news.
        let mut frame = next(ws).await?;
        loop {
            match &frame {
                ToVisitor::Message { message } => self.saw(message.seq, &message.client_id),
                news if news.is_queue_news() => {}
                _ => break,
            }
            frame = next(ws).await?;
        }
        match frame {
            ToVisitor::Welcome { token, chat, .. } => {
                self.token = Some(token);
                let Some(chat) = chat else {
                    return Some(false);
                };
                for message in chat.messages {
                    self.saw(message.seq, &message.client_id);
                }
                Some(true)
            }
            other => panic!("expected welcome, got {other:?}"),
        }
    }

    async fn started(&mut self, ws: &mut Ws) -> bool {
        loop {
            match next(ws).await {
                Some(ToVisitor::ChatStarted { chat }) => {
                    for message in chat.messages {
                        self.saw(message.seq, &message.client_id);
                    }
                    return true;
                }
                Some(_) => continue,
                None => return false,
            }
        }
    }

    /// Sends a message every few milliseconds until `stop`, then until every message
    /// sent is acknowledged. Each (re)connection sends the unacknowledged ones again
    /// with their own ids. `drops` closes the socket now and then.
    async fn run(
        mut self,
        addr: Arc<std::sync::Mutex<SocketAddr>>,
        stop: Arc<AtomicBool>,
        drops: bool,
    ) -> Self {
        let mut dice = Dice(0x9E37_79B9_7F4A_7C15 ^ (self.number as u64 + 1));
        let give_up = tokio::time::Instant::now() + Duration::from_secs(60);
        'connection: loop {
            assert!(
                tokio::time::Instant::now() < give_up,
                "customer {} never settled",
                self.number
            );
            let to = *addr.lock().expect("address");
            let mut ws = self.connect(to).await;
            let unacked: Vec<String> = self
                .sent
                .iter()
                .filter(|id| !self.acked.contains(*id))
                .cloned()
                .collect();
            for client_id in unacked {
                let frame = VisitorFrame::Send {
                    body: client_id.clone(),
                    client_id,
                };
                if ws.send(text(&frame)).await.is_err() {
                    continue 'connection;
                }
            }
            let mut tick = tokio::time::interval(Duration::from_millis(15));
            loop {
                let stopping = stop.load(Ordering::Relaxed);
                if stopping && self.sent.iter().all(|id| self.acked.contains(id)) {
                    return self;
                }
                tokio::select! {
                    _ = tick.tick() => {
                        if drops && dice.roll(40) == 0 {
                            let _ = ws.close(None).await;
                            continue 'connection;
                        }
                        if stopping {
                            continue;
                        }
                        let client_id = format!("c{}-{}", self.number, self.sent.len());
                        self.sent.push(client_id.clone());
                        let frame = VisitorFrame::Send { body: client_id.clone(), client_id };
                        if ws.send(text(&frame)).await.is_err() {
                            continue 'connection;
                        }
                    }
                    frame = next(&mut ws) => match frame {
                        Some(ToVisitor::Message { message }) => self.saw(message.seq, &message.client_id),
                        Some(ToVisitor::Error { error }) => panic!("customer {}: {error:?}", self.number),
                        Some(_) => {}
                        None => continue 'connection,
                    },
                }
            }
        }
    }

    /// The whole stored transcript, read afresh, checked against what was sent and seen.
    async fn check(&self, addr: SocketAddr) {
        let (mut ws, _) = connect_async(format!("ws://{addr}/ws/visitor"))
            .await
            .expect("opens");
        let hello = VisitorFrame::Hello {
            token: self.token.clone(),
            since: 0,
        };
        send(&mut ws, &hello).await;
        let mut stored: Vec<(Seq, String)> = match recv::<ToVisitor>(&mut ws).await {
            ToVisitor::Welcome {
                chat: Some(chat), ..
            } => chat
                .messages
                .into_iter()
                .map(|m| (m.seq, m.client_id))
                .collect(),
            other => panic!("customer {}: expected the chat, got {other:?}", self.number),
        };
        // The welcome holds the latest page; the rest comes a page at a time.
        while let Some(&(first, _)) = stored.first().filter(|(seq, _)| *seq > 1) {
            send(&mut ws, &VisitorFrame::LoadEarlier { before: first }).await;
            let page = loop {
                match recv::<ToVisitor>(&mut ws).await {
                    ToVisitor::Earlier { messages } => break messages,
                    ToVisitor::Error { error } => panic!("customer {}: {error:?}", self.number),
                    _ => {}
                }
            };
            assert!(
                !page.is_empty(),
                "customer {}: no page before {first}",
                self.number
            );
            stored.splice(0..0, page.into_iter().map(|m| (m.seq, m.client_id)));
        }
        let n = self.number;
        let seqs: Vec<Seq> = stored.iter().map(|(seq, _)| *seq).collect();
        let expected: Vec<Seq> = (1..=stored.len() as Seq).collect();
        assert_eq!(seqs, expected, "customer {n}: stored seqs have a hole");
        let ids: HashSet<&String> = stored.iter().map(|(_, id)| id).collect();
        assert_eq!(
            ids.len(),
            stored.len(),
            "customer {n}: a message is stored twice"
        );
        for id in &self.sent {
            assert!(
                self.acked.contains(id),
                "customer {n}: {id} never acknowledged"
            );
            assert!(
                ids.contains(id),
                "customer {n}: acknowledged {id} is not stored"
            );
        }
        let seen: Vec<(Seq, String)> = self.seen.clone().into_iter().collect();
        assert_eq!(
            seen, stored,
            "customer {n}: what the widget holds is not the transcript"
        );
    }
}

fn text(frame: &VisitorFrame) -> Message {
    Message::Text(serde_json::to_string(frame).expect("serialises").into())
}

/// The next frame, or `None` when the socket failed, closed or went quiet for 5 s.
async fn next(ws: &mut Ws) -> Option<ToVisitor> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                return Some(serde_json::from_str(text.as_str()).expect("a known frame"));
            }
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            _ => return None,
        }
    }
}

/// Runs `customers` concurrent chats for a while; `fault` happens in the middle.
async fn total_queue(customers: usize, drops: bool, crash: bool) {
    let dir = tempfile::tempdir().expect("temp dir");
    let parlor = Parlor::start(dir.path(), "127.0.0.1:0").await;
    let addr = Arc::new(std::sync::Mutex::new(parlor.addr));
    let stop = Arc::new(AtomicBool::new(false));
    let runs: Vec<_> = (0..customers)
        .map(|number| {
            let customer = Customer {
                number,
                ..Customer::default()
            };
            tokio::spawn(customer.run(addr.clone(), stop.clone(), drops))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let parlor = if crash {
        let at = parlor.kill_9().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        Parlor::start(dir.path(), &at.to_string()).await
    } else {
        parlor
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = 0;
    let mut links = 0;
    for run in runs {
        let customer = run.await.expect("customer task");
        customer.check(parlor.addr).await;
        acknowledged += customer.acked.len();
        links += customer.links;
        if crash {
            assert!(
                customer.links > 1,
                "customer {} did not lose its link in the crash",
                customer.number
            );
        }
    }
    if drops {
        assert!(
            links > 2 * customers as u32,
            "only {links} links for {customers} customers: too few were dropped"
        );
    }
    assert!(
        acknowledged > customers * 20,
        "only {acknowledged} messages flowed"
    );
}

#[tokio::test]
async fn after_kill_9_and_a_restart_every_acknowledged_message_is_stored_once_and_resumed_without_a_gap()
 {
    total_queue(20, false, true).await;
}

#[tokio::test]
async fn dropping_connections_at_random_loses_and_doubles_nothing() {
    total_queue(20, true, false).await;
}

#[tokio::test]
async fn a_screen_pop_running_at_a_crash_times_out_on_its_stored_deadline_after_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let parlor = Parlor::start(dir.path(), "127.0.0.1:0").await;
    let admin = parlor.sign_in("admin@parlor.local", PASSWORD).await;
    // Long enough that a restart on a busy machine still finds the screen pop running.
    let routing = common::put_routing_at(parlor.addr, &admin, true, 12).await;
    assert!(routing.is_success());
    parlor.add_agent(&admin, "bea@example.com").await;
    let bea_cookie = parlor.sign_in("bea@example.com", "bea-password-1").await;
    let mut first = console(parlor.addr, &admin).await;
    let mut second = console(parlor.addr, &bea_cookie).await;

    let (mut widget, welcome) = common::widget_at(parlor.addr, None, 0).await;
    let ToVisitor::Welcome { token, .. } = welcome else {
        panic!("expected welcome, got {welcome:?}");
    };
    send(&mut widget, &common::start_chat("s1")).await;
    let offered_at = tokio::time::Instant::now();
    // Whoever has been idle longest gets the screen pop.
    let (case_id, first_has_it) = tokio::select! {
        frame = recv::<ToAgent>(&mut first) => (offer_of(frame), true),
        frame = recv::<ToAgent>(&mut second) => (offer_of(frame), false),
    };
    let deadline = offered_at + Duration::from_secs(12);

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let at = parlor.kill_9().await;
    drop((first, second, widget));
    let parlor = Parlor::start(dir.path(), &at.to_string()).await;
    let admin = parlor.sign_in("admin@parlor.local", PASSWORD).await;
    let bea_cookie = parlor.sign_in("bea@example.com", "bea-password-1").await;
    let first = console(parlor.addr, &admin).await;
    let second = console(parlor.addr, &bea_cookie).await;
    let (mut holder, mut other) = if first_has_it {
        (first, second)
    } else {
        (second, first)
    };
    // The customer's widget reconnects too (a chat whose customer has gone is offered
    // to nobody).
    let (_widget, _) = common::widget_at(parlor.addr, Some(token), 0).await;

    // The holder's console shows the same screen pop again, with the time it has left.
    match recv::<ToAgent>(&mut holder).await {
        ToAgent::Offer { offer } => {
            assert_eq!(offer.case_id, case_id);
            assert!(
                offer.expires_in_ms <= 9600,
                "{} ms left",
                offer.expires_in_ms
            );
        }
        other => panic!("expected the open screen pop, got {other:?}"),
    }
    let reoffer = loop {
        match tokio::time::timeout(Duration::from_secs(15), other.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                if let Ok(ToAgent::Offer { offer }) = serde_json::from_str(text.as_str()) {
                    break (offer.case_id, tokio::time::Instant::now());
                }
            }
            other => panic!("no re-offer: {other:?}"),
        }
    };
    assert_eq!(reoffer.0, case_id);
    // On the stored deadline, not a fresh twelve seconds from the restart.
    assert!(
        reoffer.1 + Duration::from_millis(300) >= deadline,
        "re-offered early"
    );
    assert!(
        reoffer.1 <= deadline + Duration::from_millis(1500),
        "re-offered {:?} late",
        reoffer.1 - deadline
    );
    loop {
        if let ToAgent::OfferClosed { reason, .. } = recv::<ToAgent>(&mut holder).await {
            assert_eq!(reason, OfferClosed::TimedOut);
            break;
        }
    }
}

fn offer_of(frame: ToAgent) -> i64 {
    match frame {
        ToAgent::Offer { offer } => offer.case_id,
        other => panic!("expected a screen pop, got {other:?}"),
    }
}

#[tokio::test]
async fn sigterm_tells_every_socket_to_reconnect_and_exits_within_its_bound() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut parlor = Parlor::start(dir.path(), "127.0.0.1:0").await;
    let (mut widget, _) = common::widget_at(parlor.addr, None, 0).await;

    let signalled = tokio::time::Instant::now();
    parlor.sigterm().await;
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(5), widget.next()).await {
            Ok(Some(Ok(Message::Close(close)))) => break close,
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    let close = close.expect("a close code");
    assert_eq!(close.code, CloseCode::Restart);
    let exit = tokio::time::timeout(Duration::from_secs(6), parlor.child.wait())
        .await
        .expect("parlor exits within its bound")
        .expect("exit status");
    assert!(exit.success(), "exit status {exit:?}");
    assert!(signalled.elapsed() < Duration::from_secs(6));
    // A new connection is refused: nobody is listening any more.
    assert!(
        connect_async(format!("ws://{}/ws/visitor", parlor.addr))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn sigterm_records_that_each_customer_left_before_the_store_closes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut parlor = Parlor::start(dir.path(), "127.0.0.1:0").await;
    // Enough customers that recording their departures takes a while.
    let customers = 300;
    let mut widgets = Vec::new();
    for i in 0..customers {
        let (mut widget, _) = common::widget_at(parlor.addr, None, 0).await;
        send(&mut widget, &common::start_chat(&format!("start-{i}"))).await;
        common::first_of(&mut widget, |frame: ToVisitor| {
            matches!(frame, ToVisitor::ChatStarted { .. }).then_some(())
        })
        .await;
        widgets.push(widget);
    }

    parlor.sigterm().await;
    let exit = tokio::time::timeout(Duration::from_secs(6), parlor.child.wait())
        .await
        .expect("parlor exits within its bound")
        .expect("exit status");
    assert!(exit.success(), "exit status {exit:?}");

    // Each chat's inactivity timeout runs from the shutdown, as if the customer had
    // closed the window then: nobody's departure was dropped for a closed store.
    let url = parlor_server::store::Store::test_database_url(dir.path())
        .await
        .expect("a database")
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("parlor.db").display()));
    sqlx::any::install_default_drivers();
    let db = sqlx::AnyPool::connect(&url)
        .await
        .expect("the database opens");
    let unmarked: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM cases WHERE chat_state != 'ended' AND customer_gone_at IS NULL",
    )
    .fetch_one(&db)
    .await
    .expect("counted");
    let live: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cases WHERE chat_state != 'ended'")
        .fetch_one(&db)
        .await
        .expect("counted");
    assert_eq!((live, unmarked), (customers, 0));
    drop(widgets);
}
