//! Transcripts come a page at a time over real sockets: joining or resuming a long chat
//! sends its latest page, earlier pages come on request, and a case stops taking
//! messages at its cap (it can still end).

mod common;

use common::*;
use parlor_protocol::{
    AgentFrame, Author, ChatMessage, ChatState, Cursor, ErrorCode, PAGE_BYTES, PAGE_MESSAGES, Seq,
    ToAgent, ToVisitor, VisitorFrame,
};

fn seqs(messages: &[ChatMessage]) -> Vec<Seq> {
    messages.iter().map(|m| m.seq).collect()
}

/// Adds `count` customer messages of `len` characters to the case, straight into the
/// store (the socket's rate limits are tested elsewhere).
async fn fill(server: &Server, case_id: i64, count: usize, len: usize) {
    let store = &server.running.state.store;
    let author = Author::Customer {
        name: "Grace Hopper".into(),
    };
    for n in 0..count {
        let body = format!("{n:05}{}", "x".repeat(len.saturating_sub(5)));
        store
            .append_message(case_id, &format!("fill-{n}"), &author, &body, None)
            .await
            .expect("stored");
    }
}

async fn visitor_earlier(ws: &mut Ws, before: Seq) -> Vec<ChatMessage> {
    send(ws, &VisitorFrame::LoadEarlier { before }).await;
    first_of(ws, |frame: ToVisitor| match frame {
        ToVisitor::Earlier { messages } => Some(messages),
        ToVisitor::Error { error } => panic!("refused: {}", error.message),
        _ => None,
    })
    .await
}

async fn agent_earlier(ws: &mut Ws, case_id: i64, before: Seq) -> Vec<ChatMessage> {
    send(ws, &AgentFrame::LoadEarlier { case_id, before }).await;
    first_of(ws, |frame: ToAgent| match frame {
        ToAgent::Earlier {
            case_id: of,
            messages,
        } if of == case_id => Some(messages),
        ToAgent::Error { error } => panic!("refused: {}", error.message),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn a_returning_customer_gets_the_latest_page_and_pages_back_to_the_first_message() {
    let server = Server::start().await;
    let (_agent, visitor, case_id, token) = accepted_chat_with_token(&server).await;
    drop(visitor);
    fill(&server, case_id, 120, 20).await;
    // The first message, "joined", then the 120.
    let last = 2 + 120;
    let (mut widget, welcome) = server.widget(Some(token), 0).await;
    let ToVisitor::Welcome {
        chat: Some(chat), ..
    } = welcome
    else {
        panic!("expected the chat back, got {welcome:?}");
    };
    let mut held = seqs(&chat.messages);
    assert_eq!(held.len(), PAGE_MESSAGES);
    assert_eq!(held.last(), Some(&last));
    while held[0] > 1 {
        let page = visitor_earlier(&mut widget, held[0]).await;
        assert!(!page.is_empty() && page.len() <= PAGE_MESSAGES);
        assert_eq!(
            page.last().map(|m| m.seq),
            Some(held[0] - 1),
            "pages join up"
        );
        held.splice(0..0, seqs(&page));
    }
    assert_eq!(held, (1..=last).collect::<Vec<_>>());
    assert!(visitor_earlier(&mut widget, 1).await.is_empty());
}

#[tokio::test]
async fn a_console_resuming_past_a_long_gap_gets_the_latest_page_not_everything_since() {
    let server = Server::start().await;
    let (_agent, _visitor, case_id) = accepted_chat(&server).await;
    fill(&server, case_id, 200, 20).await;
    // Another console of the admin, holding the chat up to "joined" (seq 2).
    let cookie = server.sign_in().await;
    let cursors = vec![Cursor { case_id, since: 2 }];
    let (_console, welcome) = console_resuming_at(server.running.addr, &cookie, cursors).await;
    let ToAgent::Welcome { chats, .. } = welcome else {
        panic!("expected welcome, got {welcome:?}");
    };
    let chat = chats
        .iter()
        .find(|c| c.case.id == case_id)
        .expect("the chat");
    assert_eq!(
        seqs(&chat.messages),
        (2 + 200 - PAGE_MESSAGES as Seq + 1..=2 + 200).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_page_of_long_messages_stops_at_its_byte_bound() {
    let server = Server::start().await;
    let (mut agent, _visitor, case_id) = accepted_chat(&server).await;
    fill(&server, case_id, 40, 4_000).await;
    let page = agent_earlier(&mut agent, case_id, Seq::MAX).await;
    let bytes: usize = page.iter().map(|m| m.body.len()).sum();
    assert!(bytes <= PAGE_BYTES, "{bytes} bytes");
    assert_eq!(page.len(), PAGE_BYTES / 4_000);
    assert_eq!(page.last().map(|m| m.seq), Some(2 + 40));
}

#[tokio::test]
async fn any_agent_may_page_a_case_but_a_visitor_only_their_own_chat() {
    let server = Server::start().await;
    let (_agent, _visitor, case_id) = accepted_chat(&server).await;
    fill(&server, case_id, 60, 20).await;
    // Another agent, not in the chat and not watching it: read-only, as `watch`.
    let mut bea = server.second_agent("bea@example.com").await;
    let page = agent_earlier(&mut bea, case_id, 30).await;
    assert_eq!(seqs(&page), (1..30).collect::<Vec<_>>());
    send(
        &mut bea,
        &AgentFrame::LoadEarlier {
            case_id: case_id + 1000,
            before: 10,
        },
    )
    .await;
    match recv::<ToAgent>(&mut bea).await {
        ToAgent::Error { error } => assert_eq!(error.code, ErrorCode::NotFound),
        other => panic!("expected not found, got {other:?}"),
    }
    // A visitor with no chat has nothing to page; before hello, nothing at all.
    let (mut stranger, _) = server.visitor().await;
    send(&mut stranger, &VisitorFrame::LoadEarlier { before: 30 }).await;
    assert_eq!(visitor_error(&mut stranger).await.code, ErrorCode::NotFound);
    let mut silent = silent_widget_at(server.running.addr).await;
    send(&mut silent, &VisitorFrame::LoadEarlier { before: 30 }).await;
    assert_eq!(
        visitor_error(&mut silent).await.code,
        ErrorCode::Unauthorized
    );
}

#[tokio::test]
async fn a_full_case_refuses_more_messages_from_either_side_and_can_still_end() {
    let server = Server::start_with(|c| c.max_messages_per_case = 6).await;
    let (mut agent, mut visitor, case_id) = accepted_chat(&server).await;
    // seq 1 is the first message, seq 2 "joined": four more fit.
    for n in 0..4 {
        let frame = VisitorFrame::Send {
            client_id: format!("v{n}"),
            body: "still room".into(),
        };
        send(&mut visitor, &frame).await;
        assert!(matches!(
            recv::<ToVisitor>(&mut visitor).await,
            ToVisitor::Message { .. }
        ));
    }
    send(
        &mut visitor,
        &VisitorFrame::Send {
            client_id: "v-full".into(),
            body: "one too many".into(),
        },
    )
    .await;
    let error = visitor_error(&mut visitor).await;
    assert_eq!(error.code, ErrorCode::Conflict);
    assert!(
        error.message.contains("This chat is full"),
        "{}",
        error.message
    );
    assert_eq!(error.client_id.as_deref(), Some("v-full"));
    send(
        &mut agent,
        &AgentFrame::Send {
            case_id,
            client_id: "a-full".into(),
            body: "me neither".into(),
        },
    )
    .await;
    let error = first_of(&mut agent, |frame: ToAgent| match frame {
        ToAgent::Error { error } => Some(error),
        _ => None,
    })
    .await;
    assert!(error.message.contains("6 messages"), "{}", error.message);
    // Ending says so in the chat, past the cap: Parlor's own messages always fit.
    send(&mut agent, &AgentFrame::EndChat { case_id }).await;
    let ended = first_of(&mut visitor, |frame: ToVisitor| match frame {
        ToVisitor::State { case } if case.state == ChatState::Ended => Some(case),
        _ => None,
    })
    .await;
    assert_eq!(ended.id, case_id);
    let record = server
        .running
        .state
        .store
        .case(case_id)
        .await
        .expect("read");
    assert_eq!(
        record.map(|r| r.summary.state),
        Some(ChatState::Ended),
        "the case ended"
    );
}
