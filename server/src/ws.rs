//! The two WebSockets: one per widget (`/ws/visitor`) and one per console
//! (`/ws/agent`). Each socket is a reader loop and a writer task; the writer drains the
//! socket's outbox in the hub. Every frame that is not understood, too large or not
//! allowed is answered with an `error` frame and changes nothing.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use parlor_protocol::{
    AgentFrame, Author, CaseId, CaseStatus, ChatMessage, ChatState, EndedBy, ErrorCode, FieldRule,
    GroupId, MAX_FRAME_BYTES, MAX_SUBJECT_CHARS, PrechatAnswers, PrechatFields, ProtocolError, Seq,
    SystemMessageKind, TextError, ToAgent, ToVisitor, VisitorFrame, check_client_id, check_message,
    one_line,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use crate::AppState;
use crate::auth::{same_origin, session_token, signed_in_agent};
use crate::chat;
use crate::client;
use crate::hub::{ConnId, Connection, Hub, Outbox, encode};
use crate::limits::{FrameBudget, Rate, Verdict, too_fast};
use crate::location;
use crate::routing::Event;
use crate::secret;
use crate::store::{
    AgentRecord, Caller, CaseRecord, NewChat, StoreError, StoreResult, VisitorId, now_ms,
};
use crate::templates;

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
            StoreError::Database(_)
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

/// What one socket does with the frames it reads.
trait Session {
    /// The frames this socket reads.
    type Frame: DeserializeOwned;
    /// The frame type this socket writes, for errors.
    type Reply: Serialize;

    fn outbox(&self) -> &Outbox;
    fn state(&self) -> &AppState;
    fn conn(&self) -> ConnId;
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
        reply_on(&self.state().hub, self.outbox(), self.conn(), frame);
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
async fn run(
    socket: WebSocket,
    conn: Connection,
    state: &AppState,
    session: &mut impl Session,
    budget: Rate,
) {
    let Connection {
        id,
        mut outbox,
        kicked,
        why,
        ..
    } = conn;
    let (mut sink, mut stream) = socket.split();
    let hub = state.hub.clone();
    let (refuse_tx, mut refuse_rx) = oneshot::channel::<CloseFrame>();
    let mut writer = tokio::spawn(async move {
        let closing = hub.wait_closing();
        tokio::pin!(closing);
        let mut restarting = false;
        let mut burst = Vec::new();
        loop {
            // Biased: what is queued goes out before a refusal's close frame.
            let frame = tokio::select! {
                biased;
                frame = outbox.recv() => frame,
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
            let Some(frame) = frame else { break };
            // Whatever else is queued already goes out in the same write: a console in
            // many busy chats makes one system call for a burst, not one per frame.
            burst.push(frame);
            while burst.len() < BURST_FRAMES
                && let Some(more) = outbox.try_recv()
            {
                burst.push(more);
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
    let silence = Duration::from_secs(2 * u64::from(state.config.heartbeat_secs));
    let quiet = tokio::time::sleep(silence);
    tokio::pin!(quiet);
    let closing = state.hub.wait_closing();
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
    let leaving = state.hub.disconnect(id);
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
    } else if state.hub.is_closing() && !writer.is_finished() {
        // Let the writer send what is queued and the close frame, within the bound.
        let bound = Duration::from_secs(state.config.shutdown_secs);
        if tokio::time::timeout(bound, &mut writer).await.is_err() {
            writer.abort();
        }
    } else {
        writer.abort();
    }
    session.on_close().await;
    drop(leaving);
}

// ------------------------------------------------------------------------------ widget

pub async fn visitor_socket(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "cross-origin socket refused").into_response();
    }
    let geo = proxy_header(&headers, state.config.geo_header.as_deref()).map(str::to_owned);
    let ip = client::address_key(&headers, peer.ip(), &state.config);
    upgrade(ws).on_upgrade(move |socket| async move {
        let conn = state.hub.connect(None);
        let mut session = VisitorSession {
            state: state.clone(),
            conn: conn.id,
            outbox: conn.reply.clone(),
            geo,
            ip,
            token: None,
            visitor: None,
            typed: None,
            live: None,
            case: None,
        };
        let budget = state.limits.visitor_frames;
        run(socket, conn, &state, &mut session, budget).await;
    })
}

/// The value of a header a reverse proxy sets, when Parlor is told its name.
fn proxy_header<'h>(headers: &'h HeaderMap, name: Option<&str>) -> Option<&'h str> {
    headers.get(name?)?.to_str().ok()
}

struct VisitorSession {
    state: AppState,
    conn: ConnId,
    outbox: Outbox,
    geo: Option<String>,
    /// The visitor's IP address, for rate limits.
    ip: String,
    /// Set by `hello`: the token this widget speaks for.
    token: Option<String>,
    /// Set once the visitor has started a chat.
    visitor: Option<VisitorId>,
    /// The chat this widget follows (live, or just ended and still on screen).
    case: Option<CaseId>,
    /// The visitor's live chat and the customer's name in it, as last read, so that a
    /// send needs no read first. A chat that ended since is found out by the write
    /// (`ChatEnded`), which then looks again once.
    live: Option<(CaseId, String)>,
    /// When a typing note was last relayed from this widget.
    typed: Option<Instant>,
}

impl Session for VisitorSession {
    type Frame = VisitorFrame;
    type Reply = ToVisitor;

    fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    fn state(&self) -> &AppState {
        &self.state
    }

    fn conn(&self) -> ConnId {
        self.conn
    }

    fn error_frame(error: ProtocolError) -> ToVisitor {
        ToVisitor::Error { error }
    }

    // Closing the window alerts nobody at once: the chat stays as it is, and its
    // inactivity timeout starts when the customer's last widget has gone.
    async fn on_close(&mut self) {
        let Some(visitor) = self.visitor else { return };
        let store = &self.state.store;
        let gone = async {
            if let Some(case) = store.live_case_of(visitor).await?
                && self.state.hub.widgets_following(case) == 0
            {
                let state = &self.state;
                chat::customer_presence(store, &state.hub, &state.routing, case, Some(now_ms()))
                    .await?;
            }
            Ok::<(), StoreError>(())
        };
        if let Err(error) = gone.await {
            tracing::error!(%error, "could not record that a customer left");
        }
    }

    async fn handle(&mut self, frame: VisitorFrame) -> Result<(), ProtocolError> {
        // A handle of its own, so that the session can change while it is used.
        let store = &self.state.store.clone();
        match frame {
            VisitorFrame::Hello { token, since } => {
                if self.token.is_some() {
                    return Err(ProtocolError::new(
                        ErrorCode::Conflict,
                        "Hello was already said.",
                    ));
                }
                let known = match token.filter(|t| secret::is_token(t)) {
                    Some(token) => store.visitor_by_token(&token).await?.map(|v| (token, v)),
                    None => None,
                };
                // An unknown token is not an error: the widget simply starts afresh.
                let (token, chat) = match known {
                    Some((token, visitor)) => {
                        self.visitor = Some(visitor);
                        let chat = match store.live_case_of(visitor).await? {
                            Some(case) => {
                                let chat = self.follow(case, since, true).await?;
                                self.case = Some(case);
                                self.remember_live(&chat.case);
                                Some(chat)
                            }
                            None => None,
                        };
                        (token, chat)
                    }
                    None => (secret::token(), None),
                };
                self.token = Some(token.clone());
                let groups = store.groups().await?;
                let settings = self.state.settings.get();
                let widget = &settings.widget;
                // The place in the queue follows the welcome.
                let waiting = chat
                    .as_ref()
                    .filter(|chat| chat.case.state == ChatState::Queued)
                    .map(|chat| chat.case.id);
                self.reply(&ToVisitor::Welcome {
                    token,
                    chat,
                    groups,
                    heartbeat_secs: self.state.config.heartbeat_secs,
                    form: widget.fields.clone(),
                    greeting: widget.greeting.clone(),
                    online: self.state.routing.online(),
                    queue_when_offline: widget.queue_when_offline,
                });
                if let Some(case) = waiting {
                    self.state.routing.tell_position(case);
                }
            }
            VisitorFrame::StartChat {
                client_id,
                name,
                subject,
                body,
                time_zone,
                language,
                group,
                email,
                custom,
            } => {
                let token = self.token.clone().ok_or_else(say_hello)?;
                let form = self.state.settings.get().widget.fields.clone();
                let answers = PrechatAnswers {
                    name,
                    email,
                    subject,
                    custom,
                };
                let checked = self
                    .new_case(&form, &client_id, &answers, body, group)
                    .await
                    .map_err(|e| e.for_send(&client_id))?;
                let chat = NewChat {
                    location: location::approximate(
                        self.geo.as_deref(),
                        time_zone.as_deref(),
                        language.as_deref(),
                    ),
                    ..checked
                };
                // Counted only for a form that is otherwise fine.
                self.state
                    .limits
                    .chat(&token, &self.ip)
                    .map_err(|e| e.for_send(&client_id))?;
                let started = store
                    .start_chat(&token, &chat)
                    .await
                    .map_err(|e| ProtocolError::from(e).for_send(&client_id))?;
                self.visitor = Some(started.visitor);
                // A retried start finds the chat already there, perhaps left meanwhile.
                let chat_view = self.follow(started.case, 0, !started.new).await?;
                self.case = Some(started.case);
                self.remember_live(&chat_view.case);
                self.reply(&ToVisitor::ChatStarted { chat: chat_view });
                if started.new {
                    self.state.routing.send(Event::ChatQueued {
                        case: started.case,
                        group: chat.group,
                        offer: None,
                        away: false,
                    });
                }
            }
            VisitorFrame::LeaveMessage {
                client_id,
                name,
                email,
                subject,
                body,
                custom,
            } => {
                let token = self.token.clone().ok_or_else(say_hello)?;
                let form = self.state.settings.get().widget.fields.for_message();
                let answers = PrechatAnswers {
                    name,
                    email,
                    subject,
                    custom,
                };
                let message = self
                    .new_case(&form, &client_id, &answers, body, None)
                    .await
                    .map_err(|e| e.for_send(&client_id))?;
                self.state
                    .limits
                    .chat(&token, &self.ip)
                    .map_err(|e| e.for_send(&client_id))?;
                let left = store
                    .leave_message(&token, &message)
                    .await
                    .map_err(|e| ProtocolError::from(e).for_send(&client_id))?;
                self.visitor = Some(left.visitor);
                self.reply(&ToVisitor::MessageLeft {
                    case_id: left.case,
                    client_id,
                });
            }
            VisitorFrame::Send { client_id, body } => {
                let fail = |e: TextError| invalid(e).for_send(&client_id);
                check_client_id(&client_id).map_err(fail)?;
                let body = check_message(&body).map_err(fail)?;
                let token = self.token.as_deref().ok_or_else(say_hello)?;
                self.state
                    .limits
                    .message(token, &self.ip)
                    .map_err(|e| e.for_send(&client_id))?;
                let (message, new) = self
                    .post(&client_id, &body)
                    .await
                    .map_err(|e| e.for_send(&client_id))?;
                if !new {
                    // A retry: answer the sender alone with what was stored the first time.
                    self.reply(&ToVisitor::Message { message });
                }
            }
            VisitorFrame::Ping => self.reply(&ToVisitor::Pong),
            VisitorFrame::LoadEarlier { before } => {
                self.token.as_ref().ok_or_else(say_hello)?;
                let not_found = || ProtocolError::new(ErrorCode::NotFound, "There is no chat.");
                let (visitor, case) = self.visitor.zip(self.case).ok_or_else(not_found)?;
                let messages = store
                    .earlier_for(Caller::Visitor(visitor), case, before)
                    .await?;
                self.reply(&ToVisitor::Earlier { messages });
            }
            VisitorFrame::Typing => {
                if !typing_due(&mut self.typed) {
                    return Ok(());
                }
                let (case, _) = self.read_live_case().await?;
                self.state
                    .hub
                    .publish_to(case, None, Some(&ToAgent::Typing { case_id: case }));
            }
            VisitorFrame::EndChat => {
                let (case, _) = self.read_live_case().await?;
                self.live = None;
                let settings = self.state.settings.get();
                if let Some(events) =
                    chat::end(store, &self.state.hub, &settings, case, EndedBy::Customer).await?
                {
                    events.into_iter().for_each(|e| self.state.routing.send(e));
                }
            }
        }
        Ok(())
    }
}

impl VisitorSession {
    /// A new case from the widget's form, checked against `form`: the customer's answers,
    /// the first message and the group. The location is left for the caller.
    async fn new_case(
        &self,
        form: &PrechatFields,
        client_id: &str,
        answers: &PrechatAnswers,
        body: String,
        group: Option<GroupId>,
    ) -> Result<NewChat, ProtocolError> {
        check_client_id(client_id).map_err(invalid)?;
        let answers = form
            .check(answers)
            .map_err(|problem| ProtocolError::new(ErrorCode::Invalid, problem.message))?;
        let body = check_message(&body).map_err(invalid)?;
        Ok(NewChat {
            customer_name: answers.name,
            subject: answers.subject,
            email: answers.email,
            answers: answers.custom,
            location: String::new(),
            client_id: client_id.to_owned(),
            body,
            group: self.checked_group(form, group).await?,
        })
    }
    /// The group a new chat is for, by the form's rule (`PrechatFields::checked_group`)
    /// against the groups stored; a hidden group field needs no read.
    async fn checked_group(
        &self,
        form: &PrechatFields,
        group: Option<GroupId>,
    ) -> Result<Option<GroupId>, ProtocolError> {
        if form.group == FieldRule::Hidden {
            return Ok(None);
        }
        let groups = self.state.store.groups().await?;
        form.checked_group(group, &groups)
            .map_err(|problem| ProtocolError::new(ErrorCode::Invalid, problem.message))
    }

    /// Follows the case on this socket and reads what the widget has not seen yet.
    /// Following first means nothing published meanwhile is missed; the widget drops
    /// what it already holds by `seq`. A customer `returning` to a chat that was already
    /// there no longer counts as gone (a new chat has never been left: no write).
    async fn follow(
        &self,
        case: CaseId,
        since: Seq,
        returning: bool,
    ) -> Result<parlor_protocol::Chat, ProtocolError> {
        let visitor = self.visitor.ok_or_else(say_hello)?;
        let state = &self.state;
        state.hub.follow(self.conn, case);
        if returning {
            chat::customer_presence(&state.store, &state.hub, &state.routing, case, None).await?;
        }
        Ok(self
            .state
            .store
            .chat_for(Caller::Visitor(visitor), case, since)
            .await?)
    }

    /// Keeps `case` as the live chat sends go to, unless it has ended.
    fn remember_live(&mut self, case: &parlor_protocol::CaseSummary) {
        self.live = (case.state != ChatState::Ended).then(|| (case.id, case.customer_name.clone()));
    }

    /// Stores and publishes the customer's message in their live chat. The chat known
    /// from before is tried first; if it has ended, the live chat is read again (the
    /// customer may have started another in a second tab) and tried once more.
    async fn post(
        &mut self,
        client_id: &str,
        body: &str,
    ) -> Result<(ChatMessage, bool), ProtocolError> {
        let known = self.live.clone();
        let (case, name) = match known.clone() {
            Some(live) => live,
            None => self.read_live_case().await?,
        };
        let store = &self.state.store;
        let author = Author::Customer { name };
        match store
            .append_message(case, client_id, &author, body, None)
            .await
        {
            Err(StoreError::ChatEnded) if known.is_some() => {
                self.live = None;
                let (again, name) = self.read_live_case().await?;
                if again == case {
                    return Err(StoreError::ChatEnded.into());
                }
                let author = Author::Customer { name };
                let store = &self.state.store;
                Ok(store
                    .append_message(again, client_id, &author, body, None)
                    .await?)
            }
            posted => Ok(posted?),
        }
    }

    /// Reads the visitor's chat that has not ended, with the customer's name, and keeps
    /// it for the sends that follow.
    async fn read_live_case(&mut self) -> Result<(CaseId, String), ProtocolError> {
        self.token.as_ref().ok_or_else(say_hello)?;
        let no_chat = || ProtocolError::new(ErrorCode::Conflict, "There is no chat open.");
        let visitor = self.visitor.ok_or_else(no_chat)?;
        let case = self
            .state
            .store
            .live_case_of(visitor)
            .await?
            .ok_or_else(no_chat)?;
        let record = self
            .state
            .store
            .case_for(Caller::Visitor(visitor), case)
            .await?;
        let live = (case, record.summary.customer_name);
        self.live = Some(live.clone());
        Ok(live)
    }
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

// ----------------------------------------------------------------------------- console

pub async fn agent_socket(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Response {
    if !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "cross-origin socket refused").into_response();
    }
    let agent = match signed_in_agent(&state, &headers).await {
        Ok(agent) => agent,
        Err(error) => return error.into_response(),
    };
    // Ending the session (sign-out, a new password, expiry) closes this socket.
    let session = session_token(&headers, state.config.session_cookie())
        .map(secret::digest)
        .unwrap_or_default();
    upgrade(ws).on_upgrade(move |socket| async move {
        let conn = state.hub.connect_console(agent.profile.id, &session);
        let mut session = AgentSession {
            state: state.clone(),
            conn: conn.id,
            outbox: conn.reply.clone(),
            agent,
            joined: false,
            typed: HashMap::new(),
        };
        let budget = state.limits.agent_frames;
        run(socket, conn, &state, &mut session, budget).await;
    })
}

struct AgentSession {
    state: AppState,
    conn: ConnId,
    outbox: Outbox,
    agent: AgentRecord,
    /// Whether routing counts this console (after `hello`).
    joined: bool,
    /// When a typing note was last relayed from this console, per chat.
    typed: HashMap<CaseId, Instant>,
}

impl AgentSession {
    /// The last console gone starts the grace period; a reload within it changes nothing.
    ///
    /// A console that opens while the mark is being written clears it in its `hello`,
    /// unless that `hello` ran first; checking again after the write settles that order:
    /// whichever ran last, the mark stays only while no console is open.
    async fn start_grace_if_last(&self) -> StoreResult<()> {
        let (hub, store) = (&self.state.hub, &self.state.store);
        if hub.consoles_of(self.me()) > 0 {
            return Ok(());
        }
        store.set_agent_gone(self.me(), Some(now_ms())).await?;
        if hub.consoles_of(self.me()) > 0 {
            store.set_agent_gone(self.me(), None).await?;
        }
        Ok(())
    }
}

impl Session for AgentSession {
    type Frame = AgentFrame;
    type Reply = ToAgent;

    fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    fn state(&self) -> &AppState {
        &self.state
    }

    fn conn(&self) -> ConnId {
        self.conn
    }

    fn error_frame(error: ProtocolError) -> ToAgent {
        ToAgent::Error { error }
    }

    async fn on_close(&mut self) {
        if self.joined {
            self.state
                .routing
                .send(Event::AgentDisconnected { agent: self.me() });
        }
        if let Err(error) = self.start_grace_if_last().await {
            tracing::error!(%error, "could not record that an agent left");
        }
    }

    async fn handle(&mut self, frame: AgentFrame) -> Result<(), ProtocolError> {
        let store = &self.state.store;
        if !self.joined && !matches!(frame, AgentFrame::Hello { .. }) {
            return Err(say_hello());
        }
        match frame {
            AgentFrame::Hello { cursors } => {
                if self.joined {
                    return Err(ProtocolError::new(
                        ErrorCode::Conflict,
                        "Hello was already said.",
                    ));
                }
                // Fresh from the store: the switch may have changed since sign-in.
                let agent = store.agent(self.me()).await?.ok_or_else(|| {
                    ProtocolError::new(ErrorCode::Unauthorized, "Please sign in again.")
                })?;
                let since: HashMap<CaseId, Seq> =
                    cursors.iter().map(|c| (c.case_id, c.since)).collect();
                store.set_agent_gone(self.me(), None).await?;
                let cases = store.active_cases_of(self.me()).await?;
                let mut chats = Vec::with_capacity(cases.len());
                for case in &cases {
                    self.state.hub.follow(self.conn, *case);
                    let from = since.get(case).copied().unwrap_or(0);
                    chats.push(
                        store
                            .chat_for(Caller::Agent(self.me()), *case, from)
                            .await?,
                    );
                }
                self.reply(&ToAgent::Welcome {
                    agent: agent.profile.clone(),
                    routing: agent.routing,
                    channel_routing: self.state.settings.get().channel_routing,
                    chats,
                    heartbeat_secs: self.state.config.heartbeat_secs,
                });
                self.state.routing.send(Event::AgentConnected {
                    agent: self.me(),
                    routing: agent.routing,
                    capacity: agent.capacity,
                    load: u32::try_from(cases.len()).unwrap_or(u32::MAX),
                    groups: agent.groups.clone(),
                });
                self.agent = agent;
                self.joined = true;
            }
            AgentFrame::SetRouting { on } => {
                store.set_routing(self.me(), on).await?;
                self.state
                    .hub
                    .send_agent(self.me(), &crate::dispatch::switched(on));
                self.state.routing.send(Event::RoutingSwitched {
                    agent: self.me(),
                    on,
                });
            }
            AgentFrame::Accept { case_id } => {
                store.case_for(Caller::Agent(self.me()), case_id).await?;
                self.state.routing.send(Event::Accept {
                    agent: self.me(),
                    case: case_id,
                });
            }
            AgentFrame::Disable { case_id } => {
                self.state.routing.send(Event::Disable {
                    agent: self.me(),
                    case: case_id,
                });
            }
            AgentFrame::Send {
                case_id,
                client_id,
                body,
            } => {
                let fail = |e: TextError| invalid(e).for_send(&client_id);
                check_client_id(&client_id).map_err(fail)?;
                let body = check_message(&body).map_err(fail)?;
                // Liquid is filled in now; the stored message is what the customer sees.
                // Plain text needs no read first: the write checks that this agent is
                // in the live chat.
                let body = if templates::has_liquid(&body) {
                    self.rendered(case_id, body)
                        .await
                        .map_err(|e| e.for_send(&client_id))?
                } else {
                    body
                };
                let author = Author::Agent {
                    id: self.me(),
                    name: self.agent.profile.name.clone(),
                };
                let queued = store
                    .queue_message(case_id, &client_id, &author, &body, Some(self.me()))
                    .await
                    .map_err(|e| ProtocolError::from(e).for_send(&client_id))?;
                // The answer is committed and published while this console's next frames
                // are read: an agent in many chats is not held to one commit at a time.
                // A refusal or a retry's stored message comes back on this socket.
                let (hub, outbox, conn) = (self.state.hub.clone(), self.outbox.clone(), self.conn);
                tokio::spawn(async move {
                    let answer = match queued.committed().await {
                        Ok((_, true)) => return,
                        Ok((message, false)) => ToAgent::Message { message },
                        Err(error) => ToAgent::Error {
                            error: ProtocolError::from(error).for_send(&client_id),
                        },
                    };
                    reply_on(&hub, &outbox, conn, &answer);
                });
            }
            AgentFrame::Ping => self.reply(&ToAgent::Pong),
            AgentFrame::Typing { case_id } => {
                // Notes for chats this console is not in stay out of the map (it is
                // checked below, once the note is due).
                let mut typed = self.typed.get(&case_id).copied();
                if !typing_due(&mut typed) {
                    return Ok(());
                }
                self.my_live_chat(case_id).await?;
                self.typed.retain(|_, at| at.elapsed() < TYPING_RELAY_EVERY);
                self.typed.extend(typed.map(|at| (case_id, at)));
                let typing = ToVisitor::Typing {
                    name: self.agent.profile.name.clone(),
                };
                self.state.hub.publish_to(case_id, Some(&typing), None);
            }
            AgentFrame::EndChat { case_id } => {
                self.my_live_chat(case_id).await?;
                let by = EndedBy::Agent {
                    name: self.agent.profile.name.clone(),
                };
                let settings = self.state.settings.get();
                if let Some(events) =
                    chat::end(store, &self.state.hub, &settings, case_id, by).await?
                {
                    events.into_iter().for_each(|e| self.state.routing.send(e));
                }
            }
            AgentFrame::Watch { case_id } => {
                // Read-only: this console follows the case; nobody else hears of it.
                store.case_for(Caller::Agent(self.me()), case_id).await?;
                self.state.hub.follow(self.conn, case_id);
                let chat = store.chat_for(Caller::Agent(self.me()), case_id, 0).await?;
                self.reply(&ToAgent::Watching { chat });
            }
            AgentFrame::LoadEarlier { case_id, before } => {
                // Any agent may read any case (as `watch`), so the page needs no more.
                let messages = store
                    .earlier_for(Caller::Agent(self.me()), case_id, before)
                    .await?;
                self.reply(&ToAgent::Earlier { case_id, messages });
            }
            AgentFrame::CloseTab { case_id } => self.close_tab(case_id).await?,
            AgentFrame::UpdateCase {
                case_id,
                status,
                subject,
                group,
                close_tab,
            } => {
                let subject = one_line(&subject, "subject", MAX_SUBJECT_CHARS).map_err(invalid)?;
                if let Some(group) = group
                    && !store.groups().await?.iter().any(|g| g.id == group)
                {
                    return Err(ProtocolError::new(
                        ErrorCode::Invalid,
                        "There is no such group.",
                    ));
                }
                let record = store.case_for(Caller::Agent(self.me()), case_id).await?;
                // While the customer is there (waiting or chatting) the case belongs to
                // the agent in the chat; watchers and admins see it read-only. Once the
                // chat has ended it is a case like any other.
                let live = record.summary.state != ChatState::Ended;
                if live && record.agent_id != Some(self.me()) {
                    return Err(ProtocolError::new(
                        ErrorCode::Conflict,
                        "Only the agent in this chat can change the case while it is live.",
                    ));
                }
                store.update_case(case_id, status, &subject, group).await?;
                chat::publish_state(store, &self.state.hub, case_id).await?;
                let resolved_live =
                    status == CaseStatus::Resolved && record.summary.state == ChatState::Active;
                if resolved_live && let Some(agent) = record.agent_id {
                    // Resolving a live chat places the customer back in the queue.
                    let name = store.agent_name(agent).await?;
                    self.requeue(case_id, agent, &name, SystemMessageKind::PlacedBackInQueue)
                        .await?;
                }
                if close_tab {
                    self.close_tab(case_id).await?;
                }
            }
        }
        Ok(())
    }
}

impl AgentSession {
    fn me(&self) -> parlor_protocol::AgentId {
        self.agent.profile.id
    }

    /// Closes a case tab. For a live chat I am in, the customer is told I left and the
    /// chat goes back in the queue; otherwise the tab just closes.
    async fn close_tab(&self, case_id: CaseId) -> Result<(), ProtocolError> {
        let store = &self.state.store;
        let record = store.case_for(Caller::Agent(self.me()), case_id).await?;
        let mine = record.agent_id == Some(self.me());
        if mine && record.summary.state == ChatState::Active {
            let name = self.agent.profile.name.clone();
            self.requeue(case_id, self.me(), &name, SystemMessageKind::AgentLeft)
                .await?;
            return Ok(());
        }
        if mine {
            self.state.hub.unfollow_for_agent(self.me(), case_id);
            self.state
                .hub
                .send_agent(self.me(), &ToAgent::TabClosed { case_id });
        } else {
            self.state.hub.unfollow(self.conn, case_id);
            self.reply(&ToAgent::TabClosed { case_id });
        }
        Ok(())
    }

    async fn requeue(
        &self,
        case: CaseId,
        agent: parlor_protocol::AgentId,
        agent_name: &str,
        why: SystemMessageKind,
    ) -> Result<(), ProtocolError> {
        let settings = self.state.settings.get();
        let events = chat::requeue(
            &self.state.store,
            &self.state.hub,
            &settings,
            case,
            agent,
            agent_name,
            why,
        )
        .await?;
        events
            .into_iter()
            .flatten()
            .for_each(|e| self.state.routing.send(e));
        Ok(())
    }

    /// An answer's Liquid filled in with what the case holds, if this agent is in it.
    async fn rendered(&self, case_id: CaseId, body: String) -> Result<String, ProtocolError> {
        let case = self.my_live_chat(case_id).await?;
        let context = templates::Context {
            customer_name: case.summary.customer_name,
            customer_email: case.summary.customer_email,
            agent_name: self.agent.profile.name.clone(),
            case_id,
            case_subject: case.summary.subject,
        };
        self.state
            .templates
            .render_off_workers(body, context)
            .await
            .map_err(|e| ProtocolError::new(ErrorCode::Invalid, e.to_string()))
    }

    /// The case, if this agent is in it and it has not ended.
    async fn my_live_chat(&self, case: CaseId) -> Result<CaseRecord, ProtocolError> {
        let record = self
            .state
            .store
            .case_for(Caller::Agent(self.me()), case)
            .await?;
        match record.summary.state {
            ChatState::Ended => Err(StoreError::ChatEnded.into()),
            _ if record.agent_id != Some(self.me()) => Err(StoreError::NotInChat.into()),
            _ => Ok(record),
        }
    }
}
