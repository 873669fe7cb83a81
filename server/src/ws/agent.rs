//! The console's socket: an agent says hello with the chats it holds, switches routing,
//! accepts screen pops, answers, watches, closes tabs and edits cases.

use std::collections::HashMap;
use std::time::Instant;

use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use parlor_protocol::{
    AgentFrame, Author, CaseId, ChatState, EndedBy, ErrorCode, MAX_SUBJECT_CHARS, ProtocolError,
    Seq, TextError, ToAgent, ToVisitor, check_client_id, check_message, one_line,
};

use super::{
    Session, Socket, TYPING_RELAY_EVERY, invalid, reply_on, run, say_hello, typing_due, upgrade,
};
use crate::AppState;
use crate::auth::{same_origin, session_token, signed_in_agent};
use crate::chat::{CaseUpdate, TabClosed};
use crate::routing::Event;
use crate::secret;
use crate::store::{AgentRecord, Caller, CaseRecord, Presence, StoreError, StoreResult, now_ms};
use crate::templates;

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
        let budget = state.limits.agent_frames;
        let mut session = AgentSession {
            socket: Socket {
                state,
                conn: conn.id,
                outbox: conn.reply.clone(),
            },
            agent,
            joined: false,
            typed: HashMap::new(),
        };
        run(socket, conn, &mut session, budget).await;
    })
}

struct AgentSession {
    socket: Socket,
    agent: AgentRecord,
    /// Whether routing counts this console (after `hello`).
    joined: bool,
    /// When a typing note was last relayed from this console, per chat.
    typed: HashMap<CaseId, Instant>,
}

impl AgentSession {
    /// The last console gone (from every node) starts the grace period; a reload within
    /// it changes nothing.
    ///
    /// A console that opens here while the mark is being written clears it in its
    /// `hello`, unless that `hello` ran first; checking again after the write settles
    /// that order: whichever ran last, the mark stays only while no console is open.
    async fn start_grace_if_last(&self) -> StoreResult<()> {
        let state = &self.socket.state;
        let (hub, store, node) = (&state.hub, &state.store, state.routing.node());
        if hub.consoles_of(self.me()) > 0 {
            return Ok(());
        }
        let me = Presence::Agent(self.me());
        store.left(node, me, now_ms()).await?;
        if hub.consoles_of(self.me()) > 0 {
            store.here(node, me).await?;
        }
        Ok(())
    }
}

impl Session for AgentSession {
    type Frame = AgentFrame;
    type Reply = ToAgent;

    fn socket(&self) -> &Socket {
        &self.socket
    }

    fn error_frame(error: ProtocolError) -> ToAgent {
        ToAgent::Error { error }
    }

    async fn on_close(&mut self) {
        if self.joined {
            self.socket
                .state
                .routing
                .send(Event::AgentDisconnected { agent: self.me() });
        }
        if let Err(error) = self.start_grace_if_last().await {
            tracing::error!(%error, "could not record that an agent left");
        }
    }

    async fn handle(&mut self, frame: AgentFrame) -> Result<(), ProtocolError> {
        let store = &self.socket.state.store;
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
                store
                    .here(self.socket.state.routing.node(), Presence::Agent(self.me()))
                    .await?;
                let cases = store.active_cases_of(self.me()).await?;
                let mut chats = Vec::with_capacity(cases.len());
                for case in &cases {
                    self.socket.state.hub.follow(self.socket.conn, *case);
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
                    channel_routing: self.socket.state.settings.get().channel_routing,
                    chats,
                    heartbeat_secs: self.socket.state.config.heartbeat_secs,
                });
                self.socket.state.routing.send(Event::AgentConnected {
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
                self.socket
                    .state
                    .hub
                    .send_agent(self.me(), &crate::dispatch::switched(on));
                self.socket.state.routing.send(Event::RoutingSwitched {
                    agent: self.me(),
                    on,
                });
            }
            AgentFrame::Accept { case_id } => {
                store.case_for(Caller::Agent(self.me()), case_id).await?;
                self.socket.state.routing.send(Event::Accept {
                    agent: self.me(),
                    case: case_id,
                });
            }
            AgentFrame::Disable { case_id } => {
                self.socket.state.routing.send(Event::Disable {
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
                let (hub, outbox, conn) = (
                    self.socket.state.hub.clone(),
                    self.socket.outbox.clone(),
                    self.socket.conn,
                );
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
                self.socket
                    .state
                    .hub
                    .publish_to(case_id, Some(&typing), None);
            }
            AgentFrame::EndChat { case_id } => {
                self.my_live_chat(case_id).await?;
                let by = EndedBy::Agent {
                    name: self.agent.profile.name.clone(),
                };
                self.socket.state.chats.end(case_id, by).await?;
            }
            AgentFrame::Watch { case_id } => {
                // Read-only: this console follows the case; nobody else hears of it.
                store.case_for(Caller::Agent(self.me()), case_id).await?;
                self.socket.state.hub.follow(self.socket.conn, case_id);
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
                let update = CaseUpdate {
                    case: case_id,
                    status,
                    subject: one_line(&subject, "subject", MAX_SUBJECT_CHARS).map_err(invalid)?,
                    group,
                };
                self.socket
                    .state
                    .chats
                    .update_case(self.me(), &update)
                    .await?;
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

    /// Closes a case tab (see [`Chats::close_tab`](crate::chat::Chats::close_tab)).
    async fn close_tab(&self, case_id: CaseId) -> Result<(), ProtocolError> {
        let name = &self.agent.profile.name;
        let chats = &self.socket.state.chats;
        if chats
            .close_tab(self.me(), name, self.socket.conn, case_id)
            .await?
            == TabClosed::Here
        {
            self.reply(&ToAgent::TabClosed { case_id });
        }
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
        self.socket
            .state
            .templates
            .render_off_workers(body, context)
            .await
            .map_err(|e| ProtocolError::new(ErrorCode::Invalid, e.to_string()))
    }

    /// The case, if this agent is in it and it has not ended.
    async fn my_live_chat(&self, case: CaseId) -> Result<CaseRecord, ProtocolError> {
        let record = self
            .socket
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
