//! Faults, against the real `parlor` binary and its database: the server killed with
//! SIGKILL mid-run and restarted, client connections dropped at random, a screen pop
//! whose timer was running at the crash, and SIGTERM. The check is a "total queue":
//! every message a customer sent and saw acknowledged is stored exactly once, in
//! `seq` order with no hole, and every customer's own copy, put together across its
//! reconnections, is that same transcript.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::traffic::{Balancer, Customer, Run, until};
use common::{PASSWORD, Parlor, Ws, recv, send};
use futures_util::StreamExt;
use parlor_protocol::{OfferClosed, ToAgent, ToVisitor};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

async fn console(addr: SocketAddr, cookie: &str) -> Ws {
    common::console_at(addr, cookie).await.0
}

/// How often each customer sends a message.
const PACE: Duration = Duration::from_millis(15);

/// Runs `customers` concurrent chats for a while; `fault` happens in the middle.
async fn total_queue(customers: usize, drops: bool, crash: bool) {
    let dir = tempfile::tempdir().expect("temp dir");
    let parlor = Parlor::start(dir.path(), "127.0.0.1:0").await;
    // A restart comes back on the same address.
    let nodes = Balancer::new(vec![parlor.addr]);
    let run = Run::default();
    let runs: Vec<_> = (0..customers)
        .map(|number| {
            let customer = Customer::new(number, PACE);
            tokio::spawn(customer.run(nodes.clone(), run.clone(), drops))
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
    run.stop();
    let settled = || run.settled() == customers;
    let stopped = || runs.iter().any(tokio::task::JoinHandle::is_finished);
    until(settled, stopped, "every customer settled").await;
    let stored = run.finish(parlor.addr).await;
    let mut acknowledged = 0;
    let mut links = 0;
    for run in runs {
        let customer = run.await.expect("customer task");
        customer.check(&stored[&customer.case.expect("a chat")]);
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
