//! The agent console: sign in, the routing switch, screen pops, and a case tab for each
//! chat the agent is in.

mod http;
mod login;
mod screen_pop;

use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use parlor_protocol::{
    AgentFrame, AgentProfile, Author, CaseId, CaseSummary, Chat, ChatState, Cursor, EndedBy, Offer,
    OfferClosed, RoutingChange, ToAgent, Transcript,
};

use crate::components::{Composer, MessageList, Viewer};
use crate::net::{self, Handlers, Link, Socket};
use login::LoginForm;
use screen_pop::ScreenPop;

/// One chat the agent is in.
#[derive(Clone, Debug)]
struct CaseTab {
    case: CaseSummary,
    transcript: Transcript,
    /// A customer message arrived while another tab was in front: the red dot.
    unread: bool,
}

/// A screen pop on screen, with its local deadline.
#[derive(Clone, Debug)]
struct ShownOffer {
    offer: Offer,
    deadline: f64,
}

#[derive(Clone, Copy)]
struct Model {
    me: RwSignal<Option<AgentProfile>>,
    link: RwSignal<Link>,
    routing: RwSignal<bool>,
    offer: RwSignal<Option<ShownOffer>>,
    tabs: RwSignal<Vec<CaseTab>>,
    selected: RwSignal<Option<CaseId>>,
    notice: RwSignal<Option<String>>,
    /// The browser's clock, ticking for the screen pop's countdown.
    now: RwSignal<f64>,
}

impl Model {
    fn new() -> Self {
        Self {
            me: RwSignal::new(None),
            link: RwSignal::new(Link::Connecting),
            routing: RwSignal::new(false),
            offer: RwSignal::new(None),
            tabs: RwSignal::new(Vec::new()),
            selected: RwSignal::new(None),
            notice: RwSignal::new(None),
            now: RwSignal::new(net::now_ms()),
        }
    }

    fn hello(self, socket: &Socket) {
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

    fn on_frame(self, socket: &Socket, text: &str) {
        let Ok(frame) = serde_json::from_str::<ToAgent>(text) else {
            return;
        };
        match frame {
            ToAgent::Welcome {
                agent,
                routing,
                chats,
            } => {
                self.me.set(Some(agent));
                self.routing.set(routing);
                chats.into_iter().for_each(|chat| self.merge(chat));
                self.resend(socket);
            }
            ToAgent::Routing { on, change } => {
                self.routing.set(on);
                let why = match change {
                    RoutingChange::IgnoredOffer => {
                        Some("A chat was not accepted in time, so your routing was switched off.")
                    }
                    RoutingChange::DisabledFromOffer => {
                        Some("Routing is off: you pressed Disable.")
                    }
                    RoutingChange::Switched => None,
                };
                if let Some(why) = why {
                    self.notice.set(Some(why.to_owned()));
                }
            }
            ToAgent::Offer { offer } => {
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
                self.merge(chat);
                self.selected.set(Some(id));
            }
            ToAgent::Message { message } => {
                let in_front = self.selected.get_untracked() == Some(message.case_id);
                let from_customer = matches!(message.author, Author::Customer { .. });
                self.tabs.update(|tabs| {
                    if let Some(tab) = tabs.iter_mut().find(|t| t.case.id == message.case_id)
                        && tab.transcript.insert(message)
                        && from_customer
                        && !in_front
                    {
                        tab.unread = true;
                    }
                });
            }
            ToAgent::State { case } => self.tabs.update(|tabs| {
                if let Some(tab) = tabs.iter_mut().find(|t| t.case.id == case.id) {
                    tab.case = case;
                }
            }),
            ToAgent::Error { error } => match error.client_id {
                Some(id) => self.tabs.update(|tabs| {
                    for tab in tabs.iter_mut() {
                        tab.transcript.fail_pending(&id, error.message.clone());
                    }
                }),
                None => self.notice.set(Some(error.message)),
            },
        }
    }

    /// Opens or refreshes the case tab of a chat.
    fn merge(self, chat: Chat) {
        self.tabs.update(
            |tabs| match tabs.iter_mut().find(|t| t.case.id == chat.case.id) {
                Some(tab) => {
                    tab.case = chat.case;
                    tab.transcript.extend(chat.messages);
                }
                None => {
                    let mut transcript = Transcript::default();
                    transcript.extend(chat.messages);
                    tabs.push(CaseTab {
                        case: chat.case,
                        transcript,
                        unread: false,
                    });
                }
            },
        );
        if self.selected.get_untracked().is_none() {
            self.selected
                .set(self.tabs.with_untracked(|t| t.first().map(|t| t.case.id)));
        }
    }

    fn resend(self, socket: &Socket) {
        let unsent: Vec<AgentFrame> = self.tabs.with_untracked(|tabs| {
            tabs.iter()
                .flat_map(|tab| {
                    tab.transcript
                        .pending()
                        .iter()
                        .filter(|p| p.failed.is_none())
                        .map(|p| AgentFrame::Send {
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

    fn select(self, id: CaseId) {
        self.selected.set(Some(id));
        self.tabs.update(|tabs| {
            if let Some(tab) = tabs.iter_mut().find(|t| t.case.id == id) {
                tab.unread = false;
            }
        });
    }
}

fn tab_state(case: &CaseSummary) -> &'static str {
    match case.state {
        ChatState::Queued => "Waiting",
        ChatState::Active => "Live",
        ChatState::Ended => "Ended",
    }
}

fn ended_line(case: &CaseSummary) -> String {
    match &case.ended_by {
        Some(EndedBy::Customer) => "The customer ended the chat.".to_owned(),
        Some(EndedBy::Agent { name }) => format!("{name} ended the chat."),
        None => "The chat has ended.".to_owned(),
    }
}

#[component]
pub fn ConsoleApp() -> impl IntoView {
    let model = Model::new();
    let (checked, set_checked) = signal(false);
    let socket = StoredValue::new_local(None::<Socket>);
    let now = model.now;
    let _ = set_interval_with_handle(move || now.set(net::now_ms()), Duration::from_millis(250));

    let connect = move || {
        if socket.with_value(Option::is_some) {
            return;
        }
        let link = Socket::connect(
            "/ws/agent",
            Handlers {
                on_open: Box::new(move |s| model.hello(s)),
                on_frame: Box::new(move |s, text| model.on_frame(s, text)),
                on_link: Box::new(move |link| model.link.set(link)),
            },
        );
        socket.set_value(Some(link));
    };
    let send = move |frame: AgentFrame| {
        let sent = socket.with_value(|s| s.as_ref().is_some_and(|s| s.send(&frame)));
        if !sent {
            model.notice.set(Some(
                "Not connected to Parlor; try again in a moment.".to_owned(),
            ));
        }
    };

    // Already signed in (the session cookie)? Then straight to work.
    spawn_local(async move {
        if let Ok(agent) = http::call::<AgentProfile>("GET", "/api/me", None::<&()>).await {
            model.me.set(Some(agent));
            connect();
        }
        set_checked.set(true);
    });
    let on_signed_in = Callback::new(move |agent: AgentProfile| {
        model.me.set(Some(agent));
        connect();
    });
    let sign_out = move |_| {
        spawn_local(async move {
            let _ = http::call::<()>("POST", "/api/logout", None::<&()>).await;
            if let Some(window) = web_sys::window() {
                let _ = window.location().reload();
            }
        });
    };

    let seconds_left = Signal::derive(move || {
        let deadline = model
            .offer
            .with(|o| o.as_ref().map(|o| o.deadline))
            .unwrap_or(0.0);
        ((deadline - now.get()) / 1000.0).ceil().max(0.0) as u64
    });
    let screen_pop = move || {
        model.offer.get().map(|shown| {
            let case_id = shown.offer.case_id;
            view! {
                <ScreenPop
                    offer=shown.offer
                    seconds_left=seconds_left
                    on_accept=Callback::new(move |()| send(AgentFrame::Accept { case_id }))
                    on_disable=Callback::new(move |()| send(AgentFrame::Disable { case_id }))
                />
            }
        })
    };

    let tab_list = move || {
        model.tabs.with(|tabs| {
            tabs.iter()
                .map(|tab| {
                    let id = tab.case.id;
                    let unread = tab.unread;
                    let label = format!("#{id} {}", tab.case.customer_name);
                    let state = tab_state(&tab.case);
                    view! {
                        <button type="button" role="tab" class="case-tab"
                            data-case=id
                            aria-selected=move || (model.selected.get() == Some(id)).to_string()
                            on:click=move |_| model.select(id)>
                            <span class="case-tab-label">{label}</span>
                            <span class="case-tab-state">{state}</span>
                            {unread.then(|| view! { <span class="red-dot" role="img" aria-label="Unread message"></span> })}
                        </button>
                    }
                })
                .collect_view()
        })
    };

    let current = move || {
        let id = model.selected.get()?;
        model.tabs.with(|tabs| {
            tabs.iter()
                .find(|t| t.case.id == id)
                .map(|t| t.case.clone())
        })
    };
    let case_view = move || {
        let case = current()?;
        let id = case.id;
        let transcript = Signal::derive(move || {
            model.tabs.with(|tabs| {
                tabs.iter()
                    .find(|t| t.case.id == id)
                    .map(|t| t.transcript.clone())
                    .unwrap_or_default()
            })
        });
        let live = Signal::derive(move || {
            model.link.get() == Link::Open
                && model.tabs.with(|tabs| {
                    tabs.iter()
                        .any(|t| t.case.id == id && t.case.state == ChatState::Active)
                })
        });
        let on_send = Callback::new(move |body: String| {
            let client_id = net::client_id();
            model.tabs.update(|tabs| {
                if let Some(tab) = tabs.iter_mut().find(|t| t.case.id == id) {
                    tab.transcript.add_pending(client_id.clone(), body.clone());
                }
            });
            send(AgentFrame::Send {
                case_id: id,
                client_id,
                body,
            });
        });
        let ended = case.state == ChatState::Ended;
        Some(view! {
            <section class="case" role="tabpanel" data-case=id>
                <header class="case-header">
                    <div>
                        <h2 class="case-subject">{case.subject.clone()}</h2>
                        <p class="case-meta">{format!("Case #{id} · {}", case.customer_name)}</p>
                    </div>
                    <Show when=move || !ended>
                        <button type="button" class="end-chat"
                            on:click=move |_| send(AgentFrame::EndChat { case_id: id })>"End chat"</button>
                    </Show>
                </header>
                {ended.then(|| view! { <p class="chat-status" role="status">{ended_line(&case)}</p> })}
                <MessageList transcript=transcript viewer=Viewer::Agent/>
                <Composer on_send=on_send enabled=live placeholder="Type a reply — Enter sends, Shift+Enter for a new line"/>
            </section>
        })
    };

    view! {
        <Show when=move || checked.get() fallback=|| view! { <p class="loading">"Loading…"</p> }>
            <Show
                when=move || model.me.with(Option::is_some)
                fallback=move || view! { <LoginForm on_signed_in=on_signed_in/> }
            >
                <div class="console">
                    <header class="topbar">
                        <strong class="brand">"Parlor"</strong>
                        <label class="routing-switch">
                            <input type="checkbox" role="switch" name="routing"
                                prop:checked=move || model.routing.get()
                                on:change=move |ev| send(AgentFrame::SetRouting { on: event_target_checked(&ev) })/>
                            <span>{move || if model.routing.get() { "Routing on" } else { "Routing off" }}</span>
                        </label>
                        <span class="link-state" data-link=move || format!("{:?}", model.link.get()).to_lowercase()>
                            {move || match model.link.get() {
                                Link::Open => "Connected",
                                Link::Connecting => "Connecting…",
                                Link::Reconnecting => "Reconnecting…",
                            }}
                        </span>
                        <span class="me">{move || model.me.with(|m| m.as_ref().map(|m| m.name.clone()))}</span>
                        <button type="button" class="sign-out" on:click=sign_out>"Sign out"</button>
                    </header>
                    <Show when=move || model.notice.get().is_some()>
                        <p class="notice" role="alert">
                            {move || model.notice.get()}
                            <button type="button" class="notice-close" aria-label="Dismiss"
                                on:click=move |_| model.notice.set(None)>"✕"</button>
                        </p>
                    </Show>
                    {screen_pop}
                    <nav class="case-tabs" role="tablist" aria-label="Chats">{tab_list}</nav>
                    {move || match case_view() {
                        Some(view) => view.into_any(),
                        None => view! {
                            <section class="case case-empty">
                                <p>"No chat open. With routing on, incoming chats pop up here."</p>
                            </section>
                        }.into_any(),
                    }}
                </div>
            </Show>
        </Show>
    }
}
