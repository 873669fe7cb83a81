//! The widget's socket: a visitor says hello with the token it keeps, starts a chat or
//! leaves a message, sends, types and ends the chat.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use parlor_protocol::{
    Author, CaseId, ChatMessage, ChatState, EndedBy, ErrorCode, FieldRule, GroupId, PrechatAnswers,
    PrechatFields, ProtocolError, Seq, TextError, ToAgent, ToVisitor, VisitorFrame,
    check_client_id, check_message,
};

use super::{Session, Socket, invalid, run, say_hello, typing_due, upgrade};
use crate::AppState;
use crate::auth::same_origin;
use crate::client;
use crate::location;
use crate::secret;
use crate::store::{Caller, NewChat, Sockets, StoreError, VisitorId, now_ms};

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
        let budget = state.limits.visitor_frames;
        let mut session = VisitorSession {
            socket: Socket {
                state,
                conn: conn.id,
                outbox: conn.reply.clone(),
            },
            geo,
            ip,
            token: None,
            visitor: None,
            typed: None,
            live: None,
            case: None,
        };
        run(socket, conn, &mut session, budget).await;
    })
}

/// The value of a header a reverse proxy sets, when Parlor is told its name.
fn proxy_header<'h>(headers: &'h HeaderMap, name: Option<&str>) -> Option<&'h str> {
    headers.get(name?)?.to_str().ok()
}

struct VisitorSession {
    socket: Socket,
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

    fn socket(&self) -> &Socket {
        &self.socket
    }

    fn error_frame(error: ProtocolError) -> ToVisitor {
        ToVisitor::Error { error }
    }

    // Closing the window alerts nobody at once: the chat stays as it is, and its
    // inactivity timeout starts when the customer's last widget has gone.
    async fn on_close(&mut self) {
        let Some(visitor) = self.visitor else { return };
        let state = &self.socket.state;
        let node = state.routing.node();
        let gone = async {
            if let Some(case) = state.store.live_case_of(visitor).await?
                && state.hub.widgets_following(case) == 0
            {
                state
                    .chats
                    .customer_presence(node, case, Sockets::Closed(now_ms()))
                    .await?;
                // A widget that followed while the mark was written made its own mark
                // first, which this one undid: whichever ran last, the customer counts
                // as gone only while no widget is open.
                if state.hub.widgets_following(case) > 0 {
                    state
                        .chats
                        .customer_presence(node, case, Sockets::Opened)
                        .await?;
                }
            }
            Ok::<(), StoreError>(())
        };
        if let Err(error) = gone.await {
            tracing::error!(%error, "could not record that a customer left");
        }
    }

    async fn handle(&mut self, frame: VisitorFrame) -> Result<(), ProtocolError> {
        // A handle of its own, so that the session can change while it is used.
        let store = &self.socket.state.store.clone();
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
                                let chat = self.follow(case, since).await?;
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
                let settings = self.socket.state.settings.get();
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
                    heartbeat_secs: self.socket.state.config.heartbeat_secs,
                    form: widget.fields.clone(),
                    greeting: widget.greeting.clone(),
                    online: self.socket.state.routing.online(),
                    queue_when_offline: widget.queue_when_offline,
                });
                if let Some(case) = waiting {
                    self.socket.state.routing.tell_position(case);
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
                let form = self.socket.state.settings.get().widget.fields.clone();
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
                self.socket
                    .state
                    .limits
                    .chat(&token, &self.ip)
                    .map_err(|e| e.for_send(&client_id))?;
                // Routing hears of a new chat once `started` is dropped, after the reply.
                let started = self
                    .socket
                    .state
                    .chats
                    .start(&token, &chat)
                    .await
                    .map_err(|e| ProtocolError::from(e).for_send(&client_id))?;
                self.visitor = Some(started.visitor);
                // A retried start finds the chat already there, perhaps left meanwhile.
                let chat_view = self.follow(started.case, 0).await?;
                self.case = Some(started.case);
                self.remember_live(&chat_view.case);
                self.reply(&ToVisitor::ChatStarted { chat: chat_view });
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
                let form = self.socket.state.settings.get().widget.fields.for_message();
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
                self.socket
                    .state
                    .limits
                    .chat(&token, &self.ip)
                    .map_err(|e| e.for_send(&client_id))?;
                let left = self
                    .socket
                    .state
                    .chats
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
                self.socket
                    .state
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
                self.socket.state.hub.publish_to(
                    case,
                    None,
                    Some(&ToAgent::Typing { case_id: case }),
                );
            }
            VisitorFrame::EndChat => {
                let (case, _) = self.read_live_case().await?;
                self.live = None;
                self.socket.state.chats.end(case, EndedBy::Customer).await?;
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
        let groups = self.socket.state.store.groups().await?;
        form.checked_group(group, &groups)
            .map_err(|problem| ProtocolError::new(ErrorCode::Invalid, problem.message))
    }

    /// Follows the case on this socket and reads what the widget has not seen yet.
    /// Following first means nothing published meanwhile is missed; the widget drops
    /// what it already holds by `seq`. This node counts the customer as here (so
    /// closing a widget on another node does not count them gone), and a customer
    /// returning to a chat that was already there no longer counts as gone.
    async fn follow(
        &self,
        case: CaseId,
        since: Seq,
    ) -> Result<parlor_protocol::Chat, ProtocolError> {
        let visitor = self.visitor.ok_or_else(say_hello)?;
        let state = &self.socket.state;
        state.hub.follow(self.socket.conn, case);
        state
            .chats
            .customer_presence(state.routing.node(), case, Sockets::Opened)
            .await?;
        Ok(self
            .socket
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
        let store = &self.socket.state.store;
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
                let store = &self.socket.state.store;
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
            .socket
            .state
            .store
            .live_case_of(visitor)
            .await?
            .ok_or_else(no_chat)?;
        let record = self
            .socket
            .state
            .store
            .case_for(Caller::Visitor(visitor), case)
            .await?;
        let live = (case, record.summary.customer_name);
        self.live = Some(live.clone());
        Ok(live)
    }
}
