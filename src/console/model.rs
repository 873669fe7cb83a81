//! The console's state: the agent, their chat tabs, the waiting list, the screen pop
//! and the routing switch, as signals, and how each frame from Parlor changes them.

use leptos::prelude::*;
use parlor_protocol::{
    AgentFrame, AgentProfile, Author, CaseId, CaseSummary, Chat, Cursor, ErrorCode, Group, Macro,
    Offer, OfferClosed, RoutingChange, RoutingSwitch, ToAgent, Transcript, WaitingChat,
};

use super::alerts;
use crate::net::{self, Link, Socket};

/// How long "customer is typing" stays up after the last sign of typing.
const TYPING_SHOWN_MS: f64 = 4_000.0;

/// Why routing went off, said until it is on again.
pub const NOTICE_IGNORED: &str =
    "A chat was not accepted in time, so your routing was switched off.";
pub const NOTICE_DISABLED: &str = "Routing is off: you pressed Disable.";

/// One chat the agent is in.
#[derive(Clone, Debug)]
pub(super) struct CaseTab {
    pub(super) case: CaseSummary,
    pub(super) transcript: Transcript,
    /// A customer message arrived while another tab was in front: the red dot.
    pub(super) unread: bool,
    /// What the agent is writing in this chat, kept while they look at another tab.
    pub(super) draft: RwSignal<String>,
    /// Why the last reply was not sent (a Liquid mistake), shown under the composer.
    pub(super) refusal: RwSignal<Option<String>>,
    /// Until when "customer is typing" shows (browser clock).
    pub(super) typing_until: f64,
    /// Opened read-only: I watch, I cannot write, the customer was not told.
    pub(super) read_only: bool,
}

/// What the sign-in page says when a console's session ended.
pub(super) const SESSION_ENDED: &str =
    "You were signed out: you signed out elsewhere, your password changed or your session expired.";

/// A screen pop on screen, with its local deadline.
#[derive(Clone, Debug)]
pub(super) struct ShownOffer {
    pub(super) offer: Offer,
    pub(super) deadline: f64,
}

#[derive(Clone, Copy)]
pub(super) struct Model {
    pub(super) me: RwSignal<Option<AgentProfile>>,
    pub(super) link: RwSignal<Link>,
    /// The agent's routing switch: shown as clicked, settled by the server.
    pub(super) routing: RwSignal<RoutingSwitch>,
    pub(super) offer: RwSignal<Option<ShownOffer>>,
    pub(super) tabs: RwSignal<Vec<CaseTab>>,
    pub(super) selected: RwSignal<Option<CaseId>>,
    /// A case Parlor's news brings to the front (a chat accepted, a case watched, or the
    /// next tab when the front one closes): the URL follows it.
    pub(super) to_front: RwSignal<Option<CaseId>>,
    pub(super) notice: RwSignal<Option<String>>,
    /// The browser's clock, ticking for the screen pop's countdown.
    pub(super) now: RwSignal<f64>,
    pub(super) macros: RwSignal<Vec<Macro>>,
    pub(super) groups: RwSignal<Vec<Group>>,
    /// The admin's switch for routing on the whole chat channel.
    pub(super) channel_routing: RwSignal<bool>,
    pub(super) waiting: RwSignal<Vec<WaitingChat>>,
    /// How many chats wait in all (the list shows the first of them).
    pub(super) waiting_total: RwSignal<u32>,
}

impl net::OutFrame for AgentFrame {
    fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl Model {
    pub(super) fn new() -> Self {
        Self {
            me: RwSignal::new(None),
            link: RwSignal::new(Link::Connecting),
            routing: RwSignal::new(RoutingSwitch::default()),
            offer: RwSignal::new(None),
            tabs: RwSignal::new(Vec::new()),
            selected: RwSignal::new(None),
            to_front: RwSignal::new(None),
            notice: RwSignal::new(None),
            now: RwSignal::new(net::now_ms()),
            macros: RwSignal::new(Vec::new()),
            groups: RwSignal::new(Vec::new()),
            channel_routing: RwSignal::new(true),
            waiting: RwSignal::new(Vec::new()),
            waiting_total: RwSignal::new(0),
        }
    }

    pub(super) fn hello(self, socket: &Socket) {
        let cursors = self.tabs.with_untracked(|tabs| {
            tabs.iter()
                .map(|t| Cursor {
                    case_id: t.case.id,
                    since: t.transcript.last_seq(),
                })
                .collect()
        });
        socket.send(&AgentFrame::Hello { cursors });
    }

    pub(super) fn on_frame(self, socket: &Socket, text: &str) {
        let Ok(frame) = serde_json::from_str::<ToAgent>(text) else {
            return;
        };
        match frame {
            ToAgent::Welcome {
                agent,
                routing,
                channel_routing,
                chats,
                heartbeat_secs,
            } => {
                socket.set_heartbeat(heartbeat_secs);
                // Connected once welcomed, not when the socket opens: until then the
                // switch and the tabs still show the last connection's state.
                self.link.set(Link::Open);
                self.me.set(Some(agent));
                if let Some(on) = self.routing.try_update(|s| s.welcomed(routing)).flatten() {
                    socket.send(&AgentFrame::SetRouting { on });
                }
                self.channel_routing.set(channel_routing);
                chats.into_iter().for_each(|chat| self.merge(chat, false));
                // Read-only tabs are per console: follow them again after a reconnect.
                let watched: Vec<CaseId> = self.tabs.with_untracked(|tabs| {
                    tabs.iter()
                        .filter(|t| t.read_only)
                        .map(|t| t.case.id)
                        .collect()
                });
                for case_id in watched {
                    socket.send(&AgentFrame::Watch { case_id });
                }
                self.resend(socket);
            }
            ToAgent::Routing { on, change } => {
                self.routing.update(|s| s.server_says(on, change));
                let why = match change {
                    RoutingChange::IgnoredOffer => Some(NOTICE_IGNORED),
                    RoutingChange::DisabledFromOffer => Some(NOTICE_DISABLED),
                    RoutingChange::Switched => None,
                };
                if let Some(why) = why {
                    self.notice.set(Some(why.to_owned()));
                }
            }
            ToAgent::Offer { offer } => {
                alerts::alert(
                    "Incoming chat",
                    &format!("{}: {}", offer.customer_name, offer.subject),
                );
                let now = net::now_ms();
                let deadline = now + offer.expires_in_ms as f64;
                self.now.set(now);
                self.offer.set(Some(ShownOffer { offer, deadline }));
            }
            ToAgent::OfferClosed { case_id, reason } => {
                let shown = self
                    .offer
                    .with_untracked(|o| o.as_ref().is_some_and(|o| o.offer.case_id == case_id));
                if shown {
                    self.offer.set(None);
                }
                if reason == OfferClosed::Abandoned {
                    self.notice.set(Some(
                        "The customer left before the chat was accepted.".to_owned(),
                    ));
                }
            }
            ToAgent::ChatOpened { chat } => {
                let id = chat.case.id;
                self.merge(chat, false);
                self.selected.set(Some(id));
                self.to_front.set(Some(id));
            }
            ToAgent::Watching { chat } => {
                let id = chat.case.id;
                self.merge(chat, true);
                self.selected.set(Some(id));
                self.to_front.set(Some(id));
            }
            ToAgent::TabClosed { case_id } => self.close_tab(case_id),
            ToAgent::Earlier { case_id, messages } => self.tabs.update(|tabs| {
                if let Some(tab) = tabs.iter_mut().find(|t| t.case.id == case_id) {
                    tab.transcript.extend(messages);
                }
            }),
            ToAgent::Message { message } => {
                let in_front = self.selected.get_untracked() == Some(message.case_id);
                let from_customer = matches!(message.author, Author::Customer { .. });
                let customer_line = match &message.author {
                    Author::Customer { name } if !in_front => Some((
                        name.clone(),
                        message.body.chars().take(80).collect::<String>(),
                    )),
                    _ => None,
                };
                self.tabs.update(|tabs| {
                    if let Some(tab) = tabs.iter_mut().find(|t| t.case.id == message.case_id) {
                        if from_customer {
                            tab.typing_until = 0.0;
                        }
                        if tab.transcript.insert(message) && from_customer && !in_front {
                            tab.unread = true;
                        }
                    }
                });
                if let Some((name, line)) = customer_line {
                    alerts::alert(&format!("New message from {name}"), &line);
                }
            }
            ToAgent::ChannelRouting { on } => self.channel_routing.set(on),
            ToAgent::Waiting { chats, total } => {
                self.waiting.set(chats);
                self.waiting_total.set(total);
            }
            ToAgent::Typing { case_id } => {
                let until = net::now_ms() + TYPING_SHOWN_MS;
                self.tabs.update(|tabs| {
                    if let Some(tab) = tabs.iter_mut().find(|t| t.case.id == case_id) {
                        tab.typing_until = until;
                    }
                });
            }
            ToAgent::State { case } => self.tabs.update(|tabs| {
                if let Some(tab) = tabs.iter_mut().find(|t| t.case.id == case.id) {
                    tab.case = case;
                }
            }),
            // The link answers pings itself.
            ToAgent::Pong => {}
            ToAgent::Error { error } => match error.client_id {
                // Refused for its text (a Liquid mistake, say): back into the draft, with
                // why under the composer, where the agent fixes it.
                Some(id) if error.code == ErrorCode::Invalid => {
                    self.tabs.update(|tabs| {
                        for tab in tabs.iter_mut() {
                            if let Some(unsent) = tab.transcript.take_pending(&id) {
                                tab.draft.update(|d| {
                                    if d.trim().is_empty() {
                                        *d = unsent.body;
                                    }
                                });
                                tab.refusal
                                    .set(Some(format!("Not sent. {}", error.message)));
                            }
                        }
                    });
                }
                Some(id) => self.tabs.update(|tabs| {
                    for tab in tabs.iter_mut() {
                        tab.transcript.fail_pending(&id, error.message.clone());
                    }
                }),
                // A click on the routing switch is the one frame without an id that
                // the server answers: a refusal while one waits is about it.
                None if self.routing.try_update(RoutingSwitch::refused) == Some(true) => {
                    self.notice
                        .set(Some(format!("Routing was not switched: {}", error.message)));
                }
                None => self.notice.set(Some(error.message)),
            },
        }
    }

    /// Opens or refreshes the case tab of a chat.
    pub(super) fn merge(self, chat: Chat, read_only: bool) {
        self.tabs.update(
            |tabs| match tabs.iter_mut().find(|t| t.case.id == chat.case.id) {
                Some(tab) => {
                    tab.case = chat.case;
                    tab.transcript.resume(chat.messages);
                    tab.read_only = read_only;
                }
                None => {
                    let mut transcript = Transcript::default();
                    transcript.extend(chat.messages);
                    tabs.push(CaseTab {
                        case: chat.case,
                        transcript,
                        unread: false,
                        draft: RwSignal::new(String::new()),
                        refusal: RwSignal::new(None),
                        typing_until: 0.0,
                        read_only,
                    });
                }
            },
        );
        if self.selected.get_untracked().is_none() {
            self.selected
                .set(self.tabs.with_untracked(|t| t.first().map(|t| t.case.id)));
        }
    }

    pub(super) fn resend(self, socket: &Socket) {
        let unsent: Vec<AgentFrame> = self.tabs.with_untracked(|tabs| {
            tabs.iter()
                .flat_map(|tab| {
                    tab.transcript.unsent().map(|p| AgentFrame::Send {
                        case_id: tab.case.id,
                        client_id: p.client_id.clone(),
                        body: p.body.clone(),
                    })
                })
                .collect()
        });
        for frame in unsent {
            socket.send(&frame);
        }
    }

    /// Removes a case tab and brings another to the front.
    pub(super) fn close_tab(self, id: CaseId) {
        self.tabs.update(|tabs| tabs.retain(|t| t.case.id != id));
        if self.selected.get_untracked() == Some(id) {
            let next = self.tabs.with_untracked(|t| t.last().map(|t| t.case.id));
            self.selected.set(next);
            self.to_front.set(next);
        }
    }

    pub(super) fn select(self, id: CaseId) {
        self.selected.set(Some(id));
        self.tabs.update(|tabs| {
            if let Some(tab) = tabs.iter_mut().find(|t| t.case.id == id) {
                tab.unread = false;
            }
        });
    }
}
