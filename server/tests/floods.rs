//! Floods over real sockets: every frame a socket sends costs from its budget, typing
//! notes are relayed at most every 1.5 s per side, and a socket that keeps sending past
//! its budget is told once, then closed with code 1008. A client that stops reading is
//! dropped rather than stalling its own socket.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use parlor_protocol::{AgentFrame, ErrorCode, ToAgent, VisitorFrame};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Sends `frame` `n` times as fast as the socket takes them, reading meanwhile (a
/// client that does not read is dropped for that alone); returns what was read until
/// the socket closed: text frames and the close code.
async fn flood(
    ws: Ws,
    frame: &impl serde::Serialize,
    n: usize,
) -> (Vec<String>, Option<CloseCode>) {
    let text = serde_json::to_string(frame).expect("serialises");
    let (mut sink, mut stream) = ws.split();
    let send = async move {
        for _ in 0..n {
            if sink.feed(Message::Text(text.clone().into())).await.is_err() {
                return;
            }
        }
        let _ = sink.flush().await;
    };
    let read = async move {
        let mut texts = Vec::new();
        let code = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(message) = stream.next().await {
                match message {
                    Ok(Message::Text(text)) => texts.push(text.to_string()),
                    Ok(Message::Close(frame)) => return frame.map(|f| f.code),
                    Ok(_) => {}
                    Err(_) => return None,
                }
            }
            None
        })
        .await
        .expect("the socket closes");
        (texts, code)
    };
    tokio::join!(send, read).1
}

/// How many typing notes reach `ws` in the next while.
async fn typing_notes(ws: &mut Ws) -> usize {
    let mut notes = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(800);
    while let Ok(Some(Ok(Message::Text(text)))) = tokio::time::timeout_at(deadline, ws.next()).await
    {
        if matches!(
            serde_json::from_str(text.as_str()),
            Ok(ToAgent::Typing { .. })
        ) {
            notes += 1;
        }
    }
    notes
}

#[tokio::test]
async fn a_visitors_typing_flood_reaches_the_agent_once_and_the_socket_is_closed() {
    let server = Server::start().await;
    let (mut agent, visitor, _) = accepted_chat(&server).await;
    let (texts, code) = flood(visitor, &VisitorFrame::Typing, 20_000).await;
    assert_eq!(code, Some(CloseCode::Policy), "closed with 1008");
    let errors: Vec<_> = texts
        .iter()
        .filter_map(|t| serde_json::from_str::<parlor_protocol::ToVisitor>(t).ok())
        .filter_map(|f| match f {
            parlor_protocol::ToVisitor::Error { error } => Some(error.code),
            _ => None,
        })
        .collect();
    assert_eq!(errors, vec![ErrorCode::TooFast], "told once");
    assert_eq!(typing_notes(&mut agent).await, 1, "one note relayed");
}

#[tokio::test]
async fn typing_notes_are_relayed_at_most_every_one_and_a_half_seconds_per_side() {
    let server = Server::start().await;
    let (mut agent, mut visitor, case_id) = accepted_chat(&server).await;
    // Within the budget, but faster than anyone types.
    for _ in 0..20 {
        send(&mut visitor, &VisitorFrame::Typing).await;
        send(&mut agent, &AgentFrame::Typing { case_id }).await;
    }
    assert_eq!(typing_notes(&mut agent).await, 1);
    let mut to_visitor = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
    while let Ok(Some(Ok(Message::Text(text)))) =
        tokio::time::timeout_at(deadline, visitor.next()).await
    {
        if text.contains("typing") {
            to_visitor += 1;
        }
    }
    assert_eq!(to_visitor, 1);
    // A note after the interval goes through again.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    send(&mut visitor, &VisitorFrame::Typing).await;
    assert_eq!(typing_notes(&mut agent).await, 1);
}

#[tokio::test]
async fn a_flood_of_pings_or_hellos_is_refused_like_any_other_frame() {
    let server = Server::start().await;
    let (visitor, _) = server.visitor().await;
    let (texts, code) = flood(visitor, &VisitorFrame::Ping, 5_000).await;
    assert_eq!(code, Some(CloseCode::Policy));
    assert!(texts.len() < 200, "{} answers to 5,000 pings", texts.len());

    let (again, _) = server.widget(None, 0).await;
    let hello = VisitorFrame::Hello {
        token: None,
        since: 0,
    };
    let (_, code) = flood(again, &hello, 5_000).await;
    assert_eq!(code, Some(CloseCode::Policy));
}

#[tokio::test]
async fn an_agents_flood_is_refused_too_only_later() {
    let server = Server::start().await;
    let agent = server.agent().await;
    let (texts, code) = flood(agent, &AgentFrame::Ping, 20_000).await;
    assert_eq!(code, Some(CloseCode::Policy));
    let pongs = texts.iter().filter(|t| t.contains("pong")).count();
    assert!(
        pongs >= 120,
        "an agent's burst is larger than a widget's: {pongs}"
    );
    assert!(pongs < 1_000, "{pongs} pongs");
}

/// Whether the server closes this raw connection within `within`.
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 512];
    let read = tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    read.is_ok()
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_cut_off() {
    use tokio::io::AsyncWriteExt;
    let server = Server::start_with(|config| config.header_timeout_secs = 1).await;
    let mut slow = tokio::net::TcpStream::connect(server.running.addr)
        .await
        .expect("connects");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: parlor\r\n")
        .await
        .expect("writes");
    assert!(
        closed_within(&mut slow, Duration::from_secs(5)).await,
        "the connection is closed"
    );
}

#[tokio::test]
async fn one_address_holds_only_so_many_connections() {
    let server = Server::start_with(|config| config.connections_per_ip = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(
            tokio::net::TcpStream::connect(server.running.addr)
                .await
                .expect("connects"),
        );
    }
    let mut fourth = tokio::net::TcpStream::connect(server.running.addr)
        .await
        .expect("the kernel accepts it");
    assert!(
        closed_within(&mut fourth, Duration::from_secs(2)).await,
        "the fourth is closed at once"
    );
    // The first three are still served, and a closed one frees its place.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (mut widget, welcome) = server.widget(None, 0).await;
    assert!(matches!(
        welcome,
        parlor_protocol::ToVisitor::Welcome { .. }
    ));
    send(&mut widget, &VisitorFrame::Ping).await;
}
