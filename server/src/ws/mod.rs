//! The two WebSockets: one per widget (`/ws/visitor`, [`visitor`]) and one per console
//! (`/ws/agent`, [`agent`]). Each socket is a reader loop and a writer task; the writer
//! drains the socket's outbox in the hub. Every frame that is not understood, too large
//! or not allowed is answered with an `error` frame and changes nothing. What a frame
//! changes in a chat goes through the chat service (`crate::chat::Chats`).

mod agent;
mod visitor;

pub use agent::agent_socket;
pub use visitor::visitor_socket;

use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use futures_util::{SinkExt, StreamExt};
use parlor_protocol::{ErrorCode, MAX_FRAME_BYTES, ProtocolError, TextError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use crate::AppState;
use crate::hub::{ConnId, Connection, Hub, Outbox, encode};
use crate::limits::{FrameBudget, Rate, Verdict, too_fast};
use crate::store::StoreError;

/// Frames over this are refused by the socket library outright (the connection drops);
/// between [`MAX_FRAME_BYTES`] and this they get a clear `too_large` error.
const SOCKET_MESSAGE_LIMIT: usize = 4 * MAX_FRAME_BYTES;

impl From<StoreError> for ProtocolError {
    fn from(error: StoreError) -> Self {
        let (code, message) = match error {
            StoreError::CaseNotFound => (ErrorCode::NotFound, "There is no such chat."),
            StoreError::ChatEnded => (ErrorCode::Conflict, "This chat has ended."),
            StoreError::NotInChat => (
                ErrorCode::Conflict,
                "You are not in this chat: accept it first.",
            ),
            StoreError::LiveChatOfAnother => (
                ErrorCode::Conflict,
                "Only the agent in this chat can change the case while it is live.",
            ),
            StoreError::GroupNotFound => (ErrorCode::Invalid, "There is no such group."),
            StoreError::ClientIdTaken => (
                ErrorCode::Conflict,
                "That message id was already used for another message.",
            ),
            StoreError::AlreadyChatting => (ErrorCode::Conflict, "You already have a chat open."),
            StoreError::EmailTaken => (ErrorCode::Conflict, "That email is already in use."),
            StoreError::NameTaken => (ErrorCode::Conflict, "That name is already used."),
            StoreError::PasswordsBusy => {
                (ErrorCode::TooFast, "Parlor is busy; try again in a moment.")
            }
            StoreError::LastAdmin => (
                ErrorCode::Conflict,
                "Parlor needs at least one active admin.",
            ),
            StoreError::CaseFull(most) => {
                return ProtocolError::new(
                    ErrorCode::Conflict,
                    format!(
                        "This chat is full: it has reached {most} messages, the most one chat \
                         keeps. End it and start a new one."
                    ),
                );
            }
            // (NotLeader: routing's writes only, which no frame waits for.)
            StoreError::NotLeader
            | StoreError::Database(_)
            | StoreError::Writer(_)
            | StoreError::Migration(_)
            | StoreError::Password(_) => {
                tracing::error!(%error, "storage failed while handling a frame");
                (
                    ErrorCode::Internal,
                    "Something went wrong on our side; please try again.",
                )
            }
        };
        ProtocolError::new(code, message)
    }
}

fn invalid(error: TextError) -> ProtocolError {
    ProtocolError::new(ErrorCode::Invalid, error.to_string())
}

/// Reads one frame, refusing what is too large or not a known frame.
fn parse<T: DeserializeOwned>(text: &str) -> Result<T, ProtocolError> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(ProtocolError::new(
            ErrorCode::TooLarge,
            format!("Frames are limited to {MAX_FRAME_BYTES} bytes."),
        ));
    }
    serde_json::from_str(text).map_err(|e| {
        ProtocolError::new(
            ErrorCode::Malformed,
            format!("Not a frame Parlor understands: {e}"),
        )
    })
}

/// What every session holds of its socket.
struct Socket {
    state: AppState,
    conn: ConnId,
    /// This socket's own outbox, for replies.
    outbox: Outbox,
}

/// What one socket does with the frames it reads.
trait Session {
    /// The frames this socket reads.
    type Frame: DeserializeOwned;
    /// The frame type this socket writes, for errors.
    type Reply: Serialize;

    fn socket(&self) -> &Socket;
    fn error_frame(error: ProtocolError) -> Self::Reply;
    async fn handle(&mut self, frame: Self::Frame) -> Result<(), ProtocolError>;
    async fn on_close(&mut self);

    /// Reads one text frame; anything refused is answered with an error frame.
    async fn on_text(&mut self, text: &str) {
        let result = match parse::<Self::Frame>(text) {
            // Boxed: the handler's state is large and only lives while a frame is
            // handled, so an idle socket does not carry it.
            Ok(frame) => Box::pin(self.handle(frame)).await,
            Err(error) => Err(error),
        };
        if let Err(error) = result {
            self.refuse(error);
        }
    }

    async fn on_binary(&mut self) {
        let error = ProtocolError::new(ErrorCode::Malformed, "Frames are JSON text.");
        self.refuse(error);
    }

    /// Answers with an error frame.
    fn refuse(&self, error: ProtocolError) {
        self.reply(&Self::error_frame(error));
    }

    /// Sends a frame on this socket's own outbox, in order with everything published to
    /// it. A client that stopped reading is not waited for (this socket's reader, its
    /// heartbeat and shutdown would wait with it): its socket is dropped and it resumes.
    fn reply(&self, frame: &impl Serialize) {
        let socket = self.socket();
        reply_on(&socket.state.hub, &socket.outbox, socket.conn, frame);
    }
}

/// Sends a frame on socket `conn`'s own outbox; see [`Session::reply`].
fn reply_on(hub: &Hub, outbox: &Outbox, conn: ConnId, frame: &impl Serialize) {
    let Some(frame) = encode(frame) else { return };
    if outbox.push(frame).is_err() {
        tracing::warn!(conn, "socket fell behind; disconnecting it so it resumes");
        hub.kick(conn);
    }
}

fn upgrade(ws: WebSocketUpgrade) -> WebSocketUpgrade {
    ws.max_message_size(SOCKET_MESSAGE_LIMIT)
        .max_frame_size(SOCKET_MESSAGE_LIMIT)
        // Small buffers: most sockets are idle chats, and the default costs ~128 KiB each.
        // Frames fed together are written together up to this (see `run`).
        .read_buffer_size(1024)
        .write_buffer_size(WRITE_BUFFER_BYTES)
}

/// How many bytes of frames a socket's writer gathers before writing them out.
const WRITE_BUFFER_BYTES: usize = 16 * 1024;

/// How many queued frames a socket's writer takes in one go.
const BURST_FRAMES: usize = 64;

/// Close code telling a client that Parlor is restarting: reconnect and resume.
const CLOSE_RESTARTING: u16 = 1012;

/// Close code for a socket that kept sending past its frame budget.
const CLOSE_POLICY: u16 = 1008;

/// Runs a socket until either side closes it, it falls silent for two heartbeats, the
/// hub drops it for falling behind, it keeps sending past its frame budget, or Parlor
/// shuts down. On shutdown the frames already queued are still written, then the
/// client is told to come back.
///
/// Every frame read costs one from the socket's `budget`, checked before the frame is
/// even parsed (so before any database work): over it, the frame is refused with a
/// `too_fast` error (said once per streak), and a socket that goes on is closed with
/// code 1008.
async fn run(socket: WebSocket, conn: Connection, session: &mut impl Session, budget: Rate) {
    let Connection {
        id,
        mut outbox,
        kicked,
        why,
        ..
    } = conn;
    let (mut sink, mut stream) = socket.split();
    let state = &session.socket().state;
    let (hub, config) = (state.hub.clone(), state.config.clone());
    let writer_hub = hub.clone();
    let (refuse_tx, mut refuse_rx) = oneshot::channel::<CloseFrame>();
    let mut writer = tokio::spawn(async move {
        let closing = writer_hub.wait_closing();
        tokio::pin!(closing);
        let mut restarting = false;
        let mut burst = Vec::new();
        loop {
            // Biased: what is queued goes out before a refusal's close frame.
            // Whatever is queued goes out in one write: a console in many busy chats
            // makes one system call for a burst, not one per frame.
            let taken = tokio::select! {
                biased;
                taken = outbox.recv_many(&mut burst, BURST_FRAMES) => taken,
                () = &mut closing, if !restarting => {
                    restarting = true;
                    outbox.close();
                    continue;
                }
                Ok(close) = &mut refuse_rx => {
                    let _ = sink.send(Message::Close(Some(close))).await;
                    let _ = sink.close().await;
                    return;
                }
            };
            if taken == 0 {
                break;
            }
            for frame in burst.drain(..) {
                if sink.feed(Message::Text(frame)).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
        if restarting {
            let close = CloseFrame {
                code: CLOSE_RESTARTING,
                reason: "Parlor is restarting".into(),
            };
            let _ = sink.send(Message::Close(Some(close))).await;
        }
        let _ = sink.close().await;
    });
    let silence = Duration::from_secs(2 * u64::from(config.heartbeat_secs));
    let quiet = tokio::time::sleep(silence);
    tokio::pin!(quiet);
    let closing = hub.wait_closing();
    tokio::pin!(closing);
    let mut budget = FrameBudget::new(budget, Instant::now());
    // Set when this side closes the socket with a reason for the client.
    let mut close_with = None;
    loop {
        tokio::select! {
            incoming = stream.next() => {
                quiet.as_mut().reset(tokio::time::Instant::now() + silence);
                match incoming {
                    Some(Ok(Message::Text(text))) => match budget.take(Instant::now()) {
                        Verdict::Read => session.on_text(text.as_str()).await,
                        Verdict::Refuse { say } => if say {
                            session.refuse(too_fast());
                        },
                        Verdict::Close => {
                            tracing::warn!(conn = id, "closing a socket that kept sending past its frame budget");
                            close_with = Some(CloseFrame {
                                code: CLOSE_POLICY,
                                reason: "Too many frames: slow down".into(),
                            });
                            break;
                        }
                    },
                    Some(Ok(Message::Binary(_))) => session.on_binary().await,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                }
            }
            () = &mut quiet => {
                tracing::debug!(conn = id, "closing a socket silent for two heartbeats");
                break;
            }
            () = kicked.notified() => {
                // A session that ended says so, so its console stops reconnecting.
                close_with = match why.load(std::sync::atomic::Ordering::Relaxed) {
                    0 => None,
                    code => Some(CloseFrame { code, reason: "Signed out".into() }),
                };
                break;
            }
            () = &mut closing => break,
            _ = &mut writer => break,
        }
    }
    let leaving = hub.disconnect(id);
    if let Some(close) = close_with {
        let _ = refuse_tx.send(close);
        // The close frame goes out first; then what the client already sent is read and
        // dropped until it answers the close, so the connection is not reset under the
        // close frame (a reset would throw it away unread).
        if tokio::time::timeout(Duration::from_secs(1), &mut writer)
            .await
            .is_err()
        {
            writer.abort();
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(message)) = stream.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    } else if hub.is_closing() && !writer.is_finished() {
        // Let the writer send what is queued and the close frame, within the bound.
        let bound = Duration::from_secs(config.shutdown_secs);
        if tokio::time::timeout(bound, &mut writer).await.is_err() {
            writer.abort();
        }
    } else {
        writer.abort();
    }
    // Boxed: what it awaits is large and runs once, so an open socket does not carry it.
    Box::pin(session.on_close()).await;
    drop(leaving);
}

/// The most often a typing note is relayed from one side of a chat. Clients send one
/// every 2 s while someone types, so every honest note passes; a flood does not reach
/// the other side (or the database).
const TYPING_RELAY_EVERY: Duration = Duration::from_millis(1500);

/// Whether a typing note is due, given when the last was relayed; records it if so.
fn typing_due(last: &mut Option<Instant>) -> bool {
    let now = Instant::now();
    if last.is_some_and(|at| now.duration_since(at) < TYPING_RELAY_EVERY) {
        return false;
    }
    *last = Some(now);
    true
}

fn say_hello() -> ProtocolError {
    ProtocolError::new(ErrorCode::Unauthorized, "Say hello first.")
}
