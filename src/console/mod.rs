//! The agent console: sign in, the routing switch, screen pops, and a case tab for each
//! chat the agent is in.

mod admin;
mod alerts;
mod appearance;
mod cases;
mod http;
mod login;
mod macros;
mod screen_pop;

use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::{Route, Router, Routes};
use leptos_router::hooks::{use_location, use_navigate};
use leptos_router::{NavigateOptions, path};
use parlor_protocol::{
    AgentFrame, AgentProfile, Author, CaseId, CaseSummary, Chat, ChatState, Cursor, EndedBy,
    ErrorCode, Group, Macro, Millis, Offer, OfferClosed, OfferLogEntry, RoutingChange,
    RoutingSwitch, ToAgent, Transcript, WaitingChat, flatten_markdown,
};

use crate::components::{Composer, MessageList, TypingLine, Viewer};
use crate::net::{self, Handlers, Link, Socket};
use cases::CaseFields;
use login::LoginForm;
use macros::{MacroPicker, MacrosPage};
use screen_pop::ScreenPop;

/// How long "customer is typing" stays up after the last sign of typing.
const TYPING_SHOWN_MS: f64 = 4_000.0;

/// The console's pages, each at its own URL (so the back button, a reload and a link
/// to a case work): `/console/` for the chats, `/console/cases/42` for the chats with
/// case 42 in front (a link to a case), and `/console/cases`, `/console/macros`, … for
/// the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Page {
    Chats,
    Cases,
    Macros,
    Agents,
    Groups,
    Settings,
    Appearance,
}

impl Page {
    const ADMIN: [Page; 5] = [
        Page::Macros,
        Page::Agents,
        Page::Groups,
        Page::Settings,
        Page::Appearance,
    ];

    fn path(self) -> &'static str {
        match self {
            Page::Chats => "/console/",
            Page::Cases => "/console/cases",
            Page::Macros => "/console/macros",
            Page::Agents => "/console/agents",
            Page::Groups => "/console/groups",
            Page::Settings => "/console/settings",
            Page::Appearance => "/console/appearance",
        }
    }

    /// The page at `path`, and the case it puts in front (the chats with a case).
    /// Anything else is the chats.
    fn at(path: &str) -> (Page, Option<CaseId>) {
        let path = path.trim_end_matches('/');
        if let Some(id) = path.strip_prefix("/console/cases/") {
            return (Page::Chats, id.parse().ok());
        }
        let page = [Page::Cases]
            .into_iter()
            .chain(Page::ADMIN)
            .find(|page| page.path() == path)
            .unwrap_or(Page::Chats);
        (page, None)
    }

    fn title(self) -> &'static str {
        match self {
            Page::Chats => "Chats",
            Page::Cases => "Cases",
            Page::Macros => "Macros",
            Page::Agents => "Agents",
            Page::Groups => "Groups",
            Page::Settings => "Settings",
            Page::Appearance => "Appearance",
        }
    }
}

/// One chat the agent is in.
#[derive(Clone, Debug)]
struct CaseTab {
    case: CaseSummary,
    transcript: Transcript,
    /// A customer message arrived while another tab was in front: the red dot.
    unread: bool,
    /// What the agent is writing in this chat, kept while they look at another tab.
    draft: RwSignal<String>,
    /// Why the last reply was not sent (a Liquid mistake), shown under the composer.
    refusal: RwSignal<Option<String>>,
    /// Until when "customer is typing" shows (browser clock).
    typing_until: f64,
    /// Opened read-only: I watch, I cannot write, the customer was not told.
    read_only: bool,
}

/// What the sign-in page says when a console's session ended.
const SESSION_ENDED: &str =
    "You were signed out: you signed out elsewhere, your password changed or your session expired.";

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
    /// The agent's routing switch: shown as clicked, settled by the server.
    routing: RwSignal<RoutingSwitch>,
    offer: RwSignal<Option<ShownOffer>>,
    tabs: RwSignal<Vec<CaseTab>>,
    selected: RwSignal<Option<CaseId>>,
    /// A case Parlor's news brings to the front (a chat accepted, a case watched, or the
    /// next tab when the front one closes): the URL follows it.
    to_front: RwSignal<Option<CaseId>>,
    notice: RwSignal<Option<String>>,
    /// The browser's clock, ticking for the screen pop's countdown.
    now: RwSignal<f64>,
    macros: RwSignal<Vec<Macro>>,
    groups: RwSignal<Vec<Group>>,
    /// The admin's switch for routing on the whole chat channel.
    channel_routing: RwSignal<bool>,
    waiting: RwSignal<Vec<WaitingChat>>,
    /// How many chats wait in all (the list shows the first of them).
    waiting_total: RwSignal<u32>,
}

impl net::OutFrame for AgentFrame {
    fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl Model {
    fn new() -> Self {
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
    fn merge(self, chat: Chat, read_only: bool) {
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

    /// Removes a case tab and brings another to the front.
    fn close_tab(self, id: CaseId) {
        self.tabs.update(|tabs| tabs.retain(|t| t.case.id != id));
        if self.selected.get_untracked() == Some(id) {
            let next = self.tabs.with_untracked(|t| t.last().map(|t| t.case.id));
            self.selected.set(next);
            self.to_front.set(next);
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

/// The URL of the chats with case `id` in front.
fn case_path(id: CaseId) -> String {
    format!("/console/cases/{id}")
}

/// A link in the pages bar. Leaving the Appearance page with unsaved edits asks first.
#[component]
fn PageLink(page: Page, current: Memo<Page>) -> impl IntoView {
    view! {
        <a href=page.path() aria-current=move || (current.get() == page).then_some("page")
            on:click=move |ev| {
                if current.get_untracked() != page && !appearance::may_leave() {
                    ev.prevent_default();
                }
            }>
            {page.title()}
        </a>
    }
}

fn outcome_text(entry: &OfferLogEntry) -> &'static str {
    match entry.outcome {
        None => "on screen",
        Some(OfferClosed::Accepted) => "accepted",
        Some(OfferClosed::Disabled) => "disabled",
        Some(OfferClosed::TimedOut) => "timed out",
        Some(OfferClosed::Abandoned) => "abandoned by the customer",
        Some(OfferClosed::Withdrawn) => "withdrawn",
    }
}

fn clock(ms: i64) -> String {
    js_sys::Date::new(&(ms as f64).into())
        .to_locale_time_string("en-GB")
        .as_string()
        .unwrap_or_default()
}

/// Who the chat was offered to, when, and how each screen pop ended; read when opened.
#[component]
fn OfferLog(case_id: CaseId) -> impl IntoView {
    let entries = RwSignal::new(None::<Result<Vec<OfferLogEntry>, String>>);
    let load = move |ev: leptos::ev::Event| {
        let open = event_target::<web_sys::HtmlDetailsElement>(&ev).open();
        if open {
            spawn_local(async move {
                let url = format!("/api/cases/{case_id}/offers");
                entries.set(Some(
                    http::call::<Vec<OfferLogEntry>>("GET", &url, None::<&()>).await,
                ));
            });
        }
    };
    view! {
        <details class="offer-log" on:toggle=load>
            <summary>"Offer log"</summary>
            {move || match entries.get() {
                None => view! { <p>"Loading…"</p> }.into_any(),
                Some(Err(error)) => view! { <p class="form-problem">{error}</p> }.into_any(),
                Some(Ok(list)) if list.is_empty() => view! { <p>"Never offered: entered from the list."</p> }.into_any(),
                Some(Ok(list)) => view! {
                    <ol class="offer-log-list">
                        {list.into_iter().map(|entry| view! {
                            <li>{format!("{} · offered {} · {}", entry.agent_name, clock(entry.offered_at), outcome_text(&entry))}</li>
                        }).collect_view()}
                    </ol>
                }.into_any(),
            }}
        </details>
    }
}

fn tab_state(case: &CaseSummary) -> &'static str {
    match case.state {
        ChatState::Ended => "Ended",
        _ if case.customer_left_at.is_some() => "Customer left",
        ChatState::Queued => "Waiting",
        ChatState::Active => "Live",
    }
}

/// Why routing went off, said until it is on again.
const NOTICE_IGNORED: &str = "A chat was not accepted in time, so your routing was switched off.";
const NOTICE_DISABLED: &str = "Routing is off: you pressed Disable.";

/// Seconds from `since` to `now` (epoch ms).
fn seconds_since(since: Millis, now: f64) -> u64 {
    ((now - since as f64) / 1000.0).max(0.0) as u64
}

/// A span of time as the console says it: "45 s", "2 min", "1 h 5 min".
fn span(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min", secs / 60),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}

/// How long a chat has waited, for the waiting list.
fn waited(since: Millis, now: f64) -> String {
    span(seconds_since(since, now))
}

/// How long ago `at` was, for "left 3 min ago".
fn ago(at: Millis, now: f64) -> String {
    match seconds_since(at, now) {
        0..=59 => "just now".to_owned(),
        secs => format!("{} ago", span(secs)),
    }
}

/// The line a live chat's tab shows while its customer has gone.
fn left_line(case: &CaseSummary, now: f64) -> Option<String> {
    let at = case
        .customer_left_at
        .filter(|_| case.state != ChatState::Ended)?;
    Some(format!(
        "The customer left {}: their window is closed. The chat goes on if they come back, \
         and ends by itself if they do not.",
        ago(at, now)
    ))
}

/// What the customer told the pre-chat form beyond name and subject.
fn customer_answers(case: &parlor_protocol::CaseSummary) -> impl IntoView + use<> {
    let email = case.customer_email.clone().map(|email| {
        view! { <dt>"Email"</dt><dd>{email}</dd> }
    });
    let answers = case
        .answers
        .iter()
        .map(|a| view! { <dt>{a.label.clone()}</dt><dd>{a.value.clone()}</dd> })
        .collect_view();
    (email.is_some() || !case.answers.is_empty())
        .then(|| view! { <dl class="case-answers">{email}{answers}</dl> })
}

fn ended_line(case: &CaseSummary) -> String {
    match &case.ended_by {
        Some(EndedBy::Customer) => "The customer ended the chat.".to_owned(),
        Some(EndedBy::Agent { name }) => format!("{name} ended the chat."),
        Some(EndedBy::Timeout) => "The chat timed out: the customer went away.".to_owned(),
        None => "The chat has ended.".to_owned(),
    }
}

/// The console, its pages routed by URL.
#[component]
pub fn Console() -> impl IntoView {
    view! { <Router><ConsoleApp/></Router> }
}

#[component]
fn ConsoleApp() -> impl IntoView {
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
                on_link: Box::new(move |link| {
                    // Open is shown when the server's welcome arrives.
                    if link != Link::Open {
                        model.link.set(link);
                    }
                    // A console whose session ended (signed out elsewhere, a new
                    // password, deactivated, expired) is closed by Parlor: say so on the
                    // sign-in page rather than reconnecting forever.
                    if link == Link::Reconnecting {
                        spawn_local(async {
                            if http::session_ended().await {
                                login::signed_out(SESSION_ENDED);
                            }
                        });
                    }
                }),
                // Parlor says why it closed the socket for good.
                on_ended: Some(Box::new(|code| {
                    login::signed_out(if code == parlor_protocol::CLOSE_ACCOUNT_OFF {
                        "Your account was deactivated. Ask an admin if that is a mistake."
                    } else {
                        SESSION_ENDED
                    });
                })),
            },
        );
        socket.set_value(Some(link));
        spawn_local(async move {
            if let Err(error) = macros::reload(model.macros).await {
                model.notice.set(Some(error));
            }
            match http::call::<Vec<Group>>("GET", "/api/groups", None::<&()>).await {
                Ok(groups) => model.groups.set(groups),
                Err(error) => model.notice.set(Some(error)),
            }
        });
    };
    let send = move |frame: AgentFrame| {
        let sent = socket.with_value(|s| s.as_ref().is_some_and(|s| s.send(&frame)));
        if !sent {
            model.notice.set(Some(
                "Not connected to Parlor; try again in a moment.".to_owned(),
            ));
        }
    };

    // Bumped when sound or notifications are allowed, so the top bar can update. The
    // first click or key anywhere (signing in, say) allows sound.
    let alerts_on = RwSignal::new(0_u32);
    alerts::unlock_on_first_gesture(move || alerts_on.update(|n| *n += 1));

    // The window title counts chats with an unread customer message.
    Effect::new(move |_| {
        let unread = model
            .tabs
            .with(|tabs| tabs.iter().filter(|t| t.unread).count());
        alerts::rest_title(if unread > 0 {
            format!("({unread}) {}", alerts::TITLE)
        } else {
            alerts::TITLE.to_owned()
        });
    });

    // The URL says which page shows, and which case is in front on the chats page.
    let location = use_location();
    let navigate = use_navigate();
    let route = Memo::new(move |_| location.pathname.with(|path| Page::at(path)));
    let page = Memo::new(move |_| route.get().0);
    // A link to a case puts it in front: its tab if the agent has one, else it is
    // watched (read-only) once the console is connected. Asked once per visit to the
    // link, so closing the tab does not bring it back.
    let asked = StoredValue::new(None::<CaseId>);
    Effect::new(move |before: Option<Option<CaseId>>| {
        let case = route.get().1;
        let connected = model.link.get() == Link::Open;
        if before != Some(case) {
            asked.set_value(None);
        }
        if let Some(id) = case {
            if model
                .tabs
                .with_untracked(|tabs| tabs.iter().any(|t| t.case.id == id))
            {
                if model.selected.get_untracked() != Some(id) {
                    model.select(id);
                }
            } else if connected && asked.get_value() != Some(id) {
                asked.set_value(Some(id));
                send(AgentFrame::Watch { case_id: id });
            }
        }
        case
    });
    // What Parlor brings to the front, the URL shows (in place of the entry it had).
    Effect::new({
        let navigate = navigate.clone();
        move |first: Option<()>| {
            let front = model.to_front.get();
            let (page, shown) = route.get_untracked();
            if first.is_some() && page == Page::Chats && front != shown {
                let path = front.map_or_else(|| Page::Chats.path().to_owned(), case_path);
                let replace = NavigateOptions {
                    replace: true,
                    ..NavigateOptions::default()
                };
                navigate(&path, replace);
            }
        }
    });
    let open_case = Callback::new({
        let navigate = navigate.clone();
        move |id: CaseId| navigate(&case_path(id), NavigateOptions::default())
    });

    // A notice of why routing went off goes once it is on again: it is no longer true.
    Effect::new(move |_| {
        if model.routing.with(RoutingSwitch::shown)
            && model.notice.with_untracked(|n| {
                n.as_deref()
                    .is_some_and(|n| n == NOTICE_IGNORED || n == NOTICE_DISABLED)
            })
        {
            model.notice.set(None);
        }
    });

    // While a screen pop is up the title flashes and the tab's icon has a badge.
    Effect::new(move |_| {
        model.offer.with(|shown| match shown {
            Some(shown) => {
                alerts::call_attention(&format!("Incoming chat: {}", shown.offer.customer_name));
            }
            None => alerts::calm(),
        });
    });

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
    let sign_out = move |everywhere: bool| {
        spawn_local(async move {
            let url = if everywhere {
                "/api/logout/everywhere"
            } else {
                "/api/logout"
            };
            let _ = http::call::<()>("POST", url, None::<&()>).await;
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
                    customer_left=Signal::derive(move || model.waiting.with(|chats| {
                        chats.iter().any(|w| w.case.id == case_id && w.case.customer_left_at.is_some())
                    }))
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
                    let state = if tab.read_only { "Read-only" } else { tab_state(&tab.case) };
                    view! {
                        <div class="case-tab-wrap" data-case=id>
                            <button type="button" role="tab" class="case-tab"
                                aria-selected=move || (model.selected.get() == Some(id)).to_string()
                                on:click=move |_| open_case.run(id)>
                                <span class="case-tab-label">{label}</span>
                                <span class="case-tab-state">{state}</span>
                                {unread.then(|| view! { <span class="red-dot" role="img" aria-label="Unread message"></span> })}
                            </button>
                            <button type="button" class="case-tab-close" aria-label=format!("Close tab #{id}")
                                on:click=move |_| send(AgentFrame::CloseTab { case_id: id })>"×"</button>
                        </div>
                    }
                })
                .collect_view()
        })
    };

    let waiting_list = move || {
        let chats = model.waiting.get();
        if chats.is_empty() {
            return view! { <p class="waiting-empty">"No chat is waiting."</p> }.into_any();
        }
        view! {
            <ul class="waiting-list">
                {chats.into_iter().map(|waiting| {
                    let id = waiting.case.id;
                    let group = waiting.case.group.clone().map(|g| format!(" · {g}")).unwrap_or_default();
                    let since = waiting.case.created_at;
                    view! {
                        <li class="waiting-chat" data-case=id>
                            <div>
                                <strong>{format!("#{} {}", waiting.position, waiting.case.customer_name)}</strong>
                                <span class="waiting-time">{move || waited(since, model.now.get())}</span>
                                <span class="waiting-subject">{format!("{}{group}", waiting.case.subject)}</span>
                                <span class="waiting-first">{waiting.first_message.clone()}</span>
                                {waiting.case.customer_left_at.is_some().then(|| view! {
                                    <span class="waiting-left">"Customer left: not offered until they are back"</span>
                                })}
                                {waiting.offered.then(|| view! { <span class="waiting-offered">"Being offered to an agent"</span> })}
                            </div>
                            <button type="button" on:click=move |_| send(AgentFrame::Accept { case_id: id })>"Enter"</button>
                        </li>
                    }
                }).collect_view()}
            </ul>
        }
        .into_any()
    };

    // The case view is rebuilt only when another tab comes to the front, so the
    // composer keeps its focus while messages arrive.
    let selected = Memo::new(move |_| model.selected.get());
    let case_view = move || {
        let id = selected.get()?;
        let (draft, refusal) = model.tabs.with_untracked(|tabs| {
            tabs.iter()
                .find(|t| t.case.id == id)
                .map(|t| (t.draft, t.refusal))
        })?;
        let case = Memo::new(move |_| {
            model.tabs.with(|tabs| {
                tabs.iter()
                    .find(|t| t.case.id == id)
                    .map(|t| t.case.clone())
            })
        });
        let transcript = Signal::derive(move || {
            model.tabs.with(|tabs| {
                tabs.iter()
                    .find(|t| t.case.id == id)
                    .map(|t| t.transcript.clone())
                    .unwrap_or_default()
            })
        });
        let state = move || case.with(|c| c.as_ref().map(|c| c.state));
        let me = model
            .me
            .with_untracked(|m| m.as_ref().map(|m| m.id))
            .unwrap_or_default();
        let read_only = model
            .tabs
            .with_untracked(|tabs| tabs.iter().any(|t| t.case.id == id && t.read_only));
        let live = Signal::derive(move || {
            !read_only && model.link.get() == Link::Open && state() == Some(ChatState::Active)
        });
        let typing = move || {
            let now = model.now.get();
            model
                .tabs
                .with(|tabs| tabs.iter().any(|t| t.case.id == id && t.typing_until > now))
        };
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
        let on_typing = Callback::new(move |()| send(AgentFrame::Typing { case_id: id }));
        let input = NodeRef::new();
        let on_pick = Callback::new(move |chosen: Macro| {
            let text = flatten_markdown(&chosen.body);
            draft.update(|d| {
                if !d.is_empty() && !d.ends_with(' ') {
                    d.push(' ');
                }
                d.push_str(&text);
            });
            if let Some(input) = input.get_untracked() {
                let input: web_sys::HtmlTextAreaElement = input;
                let _ = input.focus();
            }
        });
        Some(view! {
            <section class="case" role="tabpanel" data-case=id>
                <header class="case-header">
                    <div>
                        <h2 class="case-subject">{move || case.with(|c| c.as_ref().map(|c| c.subject.clone()))}</h2>
                        <p class="case-meta">
                            {move || case.with(|c| c.as_ref().map(|c| format!("Case #{id} · {}", c.customer_name)))}
                        </p>
                        {move || case.with(|c| c.as_ref().map(customer_answers))}
                    </div>
                    {read_only.then(|| view! { <span class="read-only-badge">"Read-only: the customer does not know you are here"</span> })}
                    <Show when=move || !read_only && state() == Some(ChatState::Active)>
                        <button type="button" class="end-chat"
                            on:click=move |_| send(AgentFrame::EndChat { case_id: id })>"End chat"</button>
                    </Show>
                </header>
                {move || case.get().map(|c| {
                    let locked = read_only && c.state != ChatState::Ended;
                    view! {
                        <CaseFields case=c groups=model.groups locked=locked
                            on_update=Callback::new(send)/>
                    }
                })}
                <OfferLog case_id=id/>
                <p class="customer-left" role="status">
                    {move || {
                        let now = model.now.get();
                        case.with(|c| c.as_ref().and_then(|c| left_line(c, now)))
                    }}
                </p>
                <Show when=move || state() == Some(ChatState::Ended)>
                    <p class="chat-status" role="status">
                        {move || case.with(|c| c.as_ref().map(ended_line))}
                    </p>
                </Show>
                <MessageList
                    transcript=transcript
                    viewer=Viewer::Agent(me)
                    on_earlier=Callback::new(move |before| send(AgentFrame::LoadEarlier { case_id: id, before }))
                />
                <TypingLine who=Signal::derive(move || typing().then(|| "The customer".to_owned()))/>
                <Composer draft=draft on_send=on_send on_typing=on_typing enabled=live input=input problem=refusal
                    placeholder="Type a reply — Enter sends, Shift+Enter for a new line">
                    <MacroPicker macros=model.macros on_pick=on_pick/>
                </Composer>
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
                        <nav class="pages" aria-label="Console pages">
                            <PageLink page=Page::Chats current=page/>
                            <PageLink page=Page::Cases current=page/>
                            <Show when=move || model.me.with(|m| m.as_ref().is_some_and(|m| m.is_admin))>
                                {Page::ADMIN.into_iter().map(|to| view! { <PageLink page=to current=page/> }).collect_view()}
                            </Show>
                        </nav>
                        <label class="routing-switch">
                            <input type="checkbox" role="switch" name="routing"
                                prop:checked=move || model.routing.with(RoutingSwitch::shown)
                                aria-busy=move || model.routing.with(RoutingSwitch::is_pending).then_some("true")
                                on:change=move |ev| {
                                    let on = event_target_checked(&ev);
                                    model.routing.update(|s| s.click(on));
                                    // Not connected now: the next welcome sends it.
                                    socket.with_value(|s| {
                                        s.as_ref().map(|s| s.send(&AgentFrame::SetRouting { on }))
                                    });
                                }/>
                            <span>{move || if model.routing.with(RoutingSwitch::shown) { "Routing on" } else { "Routing off" }}</span>
                        </label>
                        <Show when=move || !model.channel_routing.get()>
                            <span class="channel-off" role="status"
                                title="An admin switched screen pops off for the whole chat channel: nobody gets them until it is back on. Take chats from the waiting list meanwhile.">
                                ", paused for everyone: take chats from the waiting list"
                            </span>
                        </Show>
                        <span class="link-state" data-link=move || format!("{:?}", model.link.get()).to_lowercase()>
                            {move || match model.link.get() {
                                Link::Open => "Connected",
                                Link::Connecting => "Connecting…",
                                Link::Reconnecting => "Reconnecting…",
                            }}
                        </span>
                        {move || {
                            alerts_on.track();
                            let label = if !alerts::sound_on() {
                                "Enable alerts"
                            } else if alerts::notifications_askable() {
                                "Turn on notifications"
                            } else {
                                return None;
                            };
                            Some(view! {
                                <button type="button" class="enable-alerts"
                                    title="A sound and desktop notifications for screen pops and new messages"
                                    on:click=move |_| {
                                        let asked = alerts::enable();
                                        spawn_local(async move {
                                            if let Some(answer) = asked {
                                                let _ = wasm_bindgen_futures::JsFuture::from(answer).await;
                                            }
                                            alerts_on.update(|n| *n += 1);
                                        });
                                    }>
                                    {label}
                                </button>
                            })
                        }}
                        <span class="me">{move || model.me.with(|m| m.as_ref().map(|m| m.name.clone()))}</span>
                        <button type="button" class="sign-out" on:click=move |_| sign_out(false)>"Sign out"</button>
                        <button type="button" class="sign-out-everywhere" title="Sign out on every browser and device"
                            on:click=move |_| sign_out(true)>"Sign out everywhere"</button>
                    </header>
                    <Show when=move || model.notice.get().is_some()>
                        <p class="notice" role="alert">
                            {move || model.notice.get()}
                            <button type="button" class="notice-close" aria-label="Dismiss"
                                on:click=move |_| model.notice.set(None)>"✕"</button>
                        </p>
                    </Show>
                    // Said aloud as it comes: the pop itself is not focused (it would take
                    // the caret from someone typing), so a live region announces it.
                    <p class="sr-only" role="status" aria-live="assertive">
                        {move || model.offer.with(|o| o.as_ref().map(|o| format!(
                            "Incoming chat from {}: {}. Accept or Disable.", o.offer.customer_name, o.offer.subject
                        )))}
                    </p>
                    {screen_pop}
                    // The chats stay on the page (hidden) while another shows, so a draft
                    // keeps its caret and a transcript its place.
                    <Routes fallback=|| ()>
                        <Route path=path!("/console/cases") view=move || view! { <cases::CasesPage on_open=open_case/> }/>
                        <Route path=path!("/console/macros") view=move || view! { <MacrosPage macros=model.macros/> }/>
                        <Route path=path!("/console/agents") view=admin::AgentsPage/>
                        <Route path=path!("/console/groups") view=admin::GroupsPage/>
                        <Route path=path!("/console/settings") view=admin::SettingsPage/>
                        <Route path=path!("/console/appearance") view=appearance::AppearancePage/>
                    </Routes>
                    <div class="chats" class:hidden=move || page.get() != Page::Chats>
                        <aside class="waiting" aria-label="Waiting chats">
                            <h2>{move || format!("Waiting ({})", model.waiting_total.get())}</h2>
                            {waiting_list}
                        </aside>
                        <div class="work">
                            <nav class="case-tabs" role="tablist" aria-label="Chats">{tab_list}</nav>
                            {move || match case_view() {
                                Some(view) => view.into_any(),
                                None => view! {
                                    <section class="case case-empty">
                                        <p>"No chat open. With routing on, incoming chats pop up here; you can also enter a waiting chat from the list."</p>
                                    </section>
                                }.into_any(),
                            }}
                        </div>
                    </div>
                </div>
            </Show>
        </Show>
    }
}
