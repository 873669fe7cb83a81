//! Customers who have gone, over real sockets: consoles see "left" and "back" live,
//! nobody is screen-popped for a chat whose customer has gone, and nobody's routing
//! goes off for a screen pop whose customer left.

mod common;

use common::*;
use parlor_protocol::{AgentFrame, CaseSummary, OfferClosed, ToAgent};

/// The next state of `case_id` this console hears.
async fn next_state(ws: &mut Ws, case_id: i64) -> CaseSummary {
    first_of(ws, |frame: ToAgent| match frame {
        ToAgent::State { case } if case.id == case_id => Some(case),
        _ => None,
    })
    .await
}

/// Whether the waiting list this console hears next lists `case_id` as left (`Some`)
/// or not, waiting for a list that has it.
async fn listed_as_left(ws: &mut Ws, case_id: i64) -> bool {
    first_of(ws, |frame: ToAgent| match frame {
        ToAgent::Waiting { chats, .. } => chats
            .into_iter()
            .find(|w| w.case.id == case_id)
            .map(|w| w.case.customer_left_at.is_some()),
        _ => None,
    })
    .await
}

async fn next_offer(ws: &mut Ws) -> i64 {
    first_of(ws, |frame: ToAgent| match frame {
        ToAgent::Offer { offer } => Some(offer.case_id),
        _ => None,
    })
    .await
}

/// Whether no screen pop reaches this console for a while.
async fn no_offer_for_a_while(ws: &mut Ws) -> bool {
    tokio::time::timeout(std::time::Duration::from_millis(800), next_offer(ws))
        .await
        .is_err()
}

#[tokio::test]
async fn the_agent_in_a_chat_sees_the_customer_leave_and_come_back() {
    let server = Server::start().await;
    let (mut agent, visitor, case_id, token) = accepted_chat_with_token(&server).await;
    drop(visitor);
    let left = next_state(&mut agent, case_id).await;
    assert!(left.customer_left_at.is_some(), "{left:?}");
    let (_widget, _) = server.widget(Some(token), 0).await;
    let back = next_state(&mut agent, case_id).await;
    assert_eq!(back.customer_left_at, None);
}

#[tokio::test]
async fn a_waiting_chat_whose_customer_left_gets_no_screen_pop_until_they_come_back() {
    let server = Server::start().await;
    let mut agent = server.agent().await;
    send(&mut agent, &AgentFrame::SetRouting { on: false }).await;
    let (mut visitor, token) = server.visitor().await;
    send(&mut visitor, &start_chat("first")).await;
    let (case_id, first_message) = first_of(&mut agent, |frame: ToAgent| match frame {
        ToAgent::Waiting { chats, .. } => {
            chats.first().map(|w| (w.case.id, w.first_message.clone()))
        }
        _ => None,
    })
    .await;
    assert_eq!(
        first_message, "Where is my order?",
        "the list shows how it began"
    );
    drop(visitor);
    assert!(listed_as_left(&mut agent, case_id).await);

    // Routing on with the chat waiting: no screen pop, the customer is not there.
    send(&mut agent, &AgentFrame::SetRouting { on: true }).await;
    assert!(
        no_offer_for_a_while(&mut agent).await,
        "no screen pop for a gone customer"
    );

    // Back: the chat is offered, and listed as not left.
    let (_widget, _) = server.widget(Some(token), 0).await;
    assert_eq!(next_offer(&mut agent).await, case_id);
}

#[tokio::test]
async fn a_screen_pop_whose_customer_left_runs_out_without_switching_routing_off() {
    let server = Server::start().await;
    assert_eq!(server.put_routing(true, 3).await, 200);
    let mut agent = server.agent().await;
    let (mut visitor, _) = server.visitor().await;
    send(&mut visitor, &start_chat("first")).await;
    let case_id = next_offer(&mut agent).await;
    drop(visitor);
    let (closed, reason) = loop {
        match recv::<ToAgent>(&mut agent).await {
            ToAgent::OfferClosed { case_id, reason } => break (case_id, reason),
            ToAgent::Routing { on, change } => panic!("routing changed: {on} {change:?}"),
            _ => {}
        }
    };
    assert_eq!((closed, reason), (case_id, OfferClosed::Abandoned));
    // Ask for a pong: nothing about routing came before it.
    send(&mut agent, &AgentFrame::Ping).await;
    loop {
        match recv::<ToAgent>(&mut agent).await {
            ToAgent::Pong => break,
            ToAgent::Routing { on, change } => panic!("routing changed: {on} {change:?}"),
            _ => {}
        }
    }
    let me = server
        .running
        .state
        .store
        .agent(1)
        .await
        .expect("read")
        .expect("admin");
    assert!(me.routing, "the admin's routing is still on");
}

#[tokio::test]
async fn a_chat_put_back_in_the_queue_after_its_customer_left_waits_for_them() {
    let server = Server::start().await;
    let (mut admin, visitor, case_id, token) = accepted_chat_with_token(&server).await;
    drop(visitor);
    assert!(
        next_state(&mut admin, case_id)
            .await
            .customer_left_at
            .is_some()
    );
    // Bea is free with her routing on; the admin closes the tab and the chat waits.
    let mut bea = server.second_agent("bea@example.com").await;
    send(&mut admin, &AgentFrame::SetRouting { on: false }).await;
    send(&mut admin, &AgentFrame::CloseTab { case_id }).await;
    assert!(listed_as_left(&mut bea, case_id).await);
    assert!(
        no_offer_for_a_while(&mut bea).await,
        "no screen pop for a gone customer"
    );
    let (_widget, _) = server.widget(Some(token), 0).await;
    assert_eq!(next_offer(&mut bea).await, case_id);
}
