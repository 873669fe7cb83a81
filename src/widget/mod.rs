//! The customer widget: the chat panel that `widget.js` loads in an iframe on the
//! customer's site. Pre-chat form, queue state, live messages, End chat; a reload
//! resumes the same chat from the visitor token the loader keeps.
//!
//! A Leptos app built from the same components as the console (`crate::components`).
//! `Model` holds what the panel shows, a signal per part, and each frame from Parlor
//! changes only the parts it is about.

mod host;
mod prechat;

use std::collections::BTreeMap;

use leptos::html::Textarea;
use leptos::prelude::*;
use parlor_protocol::json::{self, ToJson};
use parlor_protocol::{
    Author, CaseSummary, Chat, ChatMessage, ChatState, EndedBy, FormProblem, Group, PrechatFields,
    ToVisitor, Transcript, VisitorFrame, WidgetSettings,
};
use wasm_bindgen::JsCast;

use crate::components::{Composer, MessageList, TypingLine, Viewer};
use crate::net::{self, Handlers, Link, Socket};
use host::EventDetail;
use prechat::{FormSpec, PrechatForm, StartAnswers, form_problem};

/// Above the offline form.
const OFFLINE_INTRO: &str =
    "Nobody is available to chat right now. Leave a message and we will answer by email.";

/// How long "… is typing" stays up after the last sign of typing.
const TYPING_SHOWN_MS: u64 = 4_000;

/// Everything the panel shows, as signals: a frame from Parlor changes only what it is
/// about, so a typing notice does not touch the message list.
#[derive(Clone, Copy)]
struct Model {
    title: RwSignal<String>,
    /// The brand colour the loader (or the Appearance preview) gave.
    color: RwSignal<Option<String>>,
    link: RwSignal<Link>,
    case: RwSignal<Option<CaseSummary>>,
    transcript: RwSignal<Transcript>,
    /// A `start_chat` (or `leave_message`) on its way, sent again after a reconnect
    /// until answered.
    starting: RwSignal<Option<VisitorFrame>>,
    /// What a visitor who is not in a chat is offered, as the server last said.
    offer: RwSignal<Offer>,
    /// The address a message left in the offline form will be answered at.
    left_for: RwSignal<Option<String>>,
    form_problem: RwSignal<Option<FormProblem>>,
    notice: RwSignal<Option<String>>,
    /// The agent who is typing, until a few seconds after their last keystroke.
    typing: RwSignal<Option<String>>,
    typing_generation: StoredValue<u32>,
    /// The chat's place in the queue while it waits.
    position: RwSignal<Option<u32>>,
    /// What the host page told us about the visitor (`Parlor('identify', …)`).
    known: RwSignal<BTreeMap<String, String>>,
    /// The socket, once the panel has one.
    socket: StoredValue<Option<Socket>, LocalStorage>,
    /// The message box, which takes the keyboard when the visitor's chat starts.
    composer: NodeRef<Textarea>,
}

/// The pre-chat form, its greeting and groups, and whether anyone can answer, as the
/// `Welcome` brings them together.
#[derive(Clone, Debug, PartialEq)]
struct Offer {
    form: PrechatFields,
    greeting: String,
    groups: Vec<Group>,
    /// Whether an agent can take a chat now, and whether chats queue anyway when not.
    online: bool,
    queue_when_offline: bool,
}

impl Offer {
    /// Nobody can take a chat and the admin does not queue them: the message form.
    fn offline(&self) -> bool {
        !self.online && !self.queue_when_offline
    }

    /// The form to show: the pre-chat form, or the message form while offline.
    fn form_spec(&self, known: BTreeMap<String, String>) -> FormSpec {
        if self.offline() {
            FormSpec {
                fields: self.form.for_message(),
                known,
                greeting: OFFLINE_INTRO.to_owned(),
                groups: Vec::new(),
                submit_label: "Send message",
            }
        } else {
            FormSpec {
                fields: self.form.clone(),
                known,
                greeting: self.greeting.clone(),
                groups: self.groups.clone(),
                submit_label: "Start chat",
            }
        }
    }
}

impl net::OutFrame for VisitorFrame {
    fn to_text(&self) -> String {
        self.to_json().encode()
    }
}

impl Model {
    fn new() -> Self {
        Self {
            title: RwSignal::new(
                host::fragment_param("title").unwrap_or_else(|| WidgetSettings::default().title),
            ),
            color: RwSignal::new(host::fragment_param("color")),
            link: RwSignal::new(Link::Connecting),
            case: RwSignal::new(None),
            transcript: RwSignal::new(Transcript::default()),
            starting: RwSignal::new(None),
            offer: RwSignal::new(Offer {
                form: PrechatFields::default(),
                greeting: WidgetSettings::default().greeting,
                groups: Vec::new(),
                online: true,
                queue_when_offline: false,
            }),
            left_for: RwSignal::new(None),
            form_problem: RwSignal::new(None),
            notice: RwSignal::new(None),
            typing: RwSignal::new(None),
            typing_generation: StoredValue::new(0),
            position: RwSignal::new(None),
            known: RwSignal::new(BTreeMap::new()),
            socket: StoredValue::new_local(None),
            composer: NodeRef::new(),
        }
    }

    fn send(self, frame: &VisitorFrame) {
        self.socket.with_value(|socket| {
            if let Some(socket) = socket {
                socket.send(frame);
            }
        });
    }

    fn hello(self, socket: &Socket) {
        let since = self.transcript.with_untracked(Transcript::last_seq);
        socket.send(&VisitorFrame::Hello {
            token: host::load_token(),
            since,
        });
    }

    fn on_frame(self, socket: &Socket, text: &str) {
        let Some(frame) = json::decode::<ToVisitor>(text) else {
            return;
        };
        match frame {
            ToVisitor::Welcome {
                token,
                chat,
                groups,
                heartbeat_secs,
                form,
                greeting,
                online,
                queue_when_offline,
            } => {
                socket.set_heartbeat(heartbeat_secs);
                host::save_token(&token);
                self.offer.set(Offer {
                    form,
                    greeting,
                    groups,
                    online,
                    queue_when_offline,
                });
                match chat {
                    Some(chat) => self.show(chat),
                    // The chat we were in ended while we were away.
                    None => {
                        if let Some(mut case) = self.case.get_untracked() {
                            case.state = ChatState::Ended;
                            self.update_case(case);
                        }
                    }
                }
                self.resend(socket);
            }
            ToVisitor::Availability { online } => self.offer.update(|o| o.online = online),
            ToVisitor::MessageLeft { .. } => {
                let email = match self.starting.get_untracked() {
                    Some(VisitorFrame::LeaveMessage { email, .. }) => Some(email),
                    _ => None,
                };
                self.starting.set(None);
                self.left_for.set(email);
            }
            ToVisitor::ChatStarted { chat } => {
                host::host_event(
                    "chat-started",
                    EventDetail {
                        case_id: chat.case.id,
                        ..EventDetail::default()
                    },
                );
                // After Start chat the keyboard goes to the message box, not to the page.
                if self.starting.with_untracked(Option::is_some) {
                    focus_when_shown(self.composer);
                }
                self.starting.set(None);
                self.show(chat);
            }
            ToVisitor::Message { message } => {
                if matches!(message.author, Author::Agent { .. }) {
                    self.typing.set(None);
                }
                if self.is_current(message.case_id) {
                    if !self.transcript.with_untracked(|t| t.has(message.seq)) {
                        host::host_event("message", message_event(&message));
                    }
                    self.transcript.update(|t| {
                        t.insert(message);
                    });
                }
            }
            ToVisitor::State { case } => {
                if self.is_current(case.id) {
                    self.update_case(case);
                }
            }
            ToVisitor::Earlier { messages } => {
                if messages.first().is_some_and(|m| self.is_current(m.case_id)) {
                    self.transcript.update(|t| t.extend(messages));
                }
            }
            ToVisitor::Typing { name } => self.show_typing(name),
            ToVisitor::Queue { position } => self.position.set(Some(position)),
            // The link answers pings itself.
            ToVisitor::Pong => {}
            ToVisitor::Error { error } => match error.client_id {
                Some(id) if Some(&id) == self.starting_id().as_ref() => {
                    self.starting.set(None);
                    self.form_problem.set(Some(form_problem(error.message)));
                }
                Some(id) => self
                    .transcript
                    .update(|t| t.fail_pending(&id, error.message)),
                None => self.notice.set(Some(error.message)),
            },
        }
    }

    fn is_current(self, case: parlor_protocol::CaseId) -> bool {
        self.case
            .with_untracked(|c| c.as_ref().is_some_and(|c| c.id == case))
    }

    fn show(self, chat: Chat) {
        if !self.is_current(chat.case.id) {
            self.transcript.set(Transcript::default());
        }
        self.case.set(Some(chat.case));
        self.transcript.update(|t| t.resume(chat.messages));
    }

    /// The chat's new state; the page hears when it ends.
    fn update_case(self, case: CaseSummary) {
        let was_over = self.case.with_untracked(|c| {
            c.as_ref()
                .is_none_or(|c| c.id != case.id || c.state == ChatState::Ended)
        });
        if case.state == ChatState::Ended && !was_over {
            host::host_event(
                "chat-ended",
                EventDetail {
                    case_id: case.id,
                    ended_by: Some(ended_by(case.ended_by.as_ref())),
                    ..EventDetail::default()
                },
            );
        }
        self.case.set(Some(case));
    }

    /// The client id of the `start_chat` or `leave_message` on its way.
    fn starting_id(self) -> Option<String> {
        self.starting.with_untracked(|s| match s {
            Some(
                VisitorFrame::StartChat { client_id, .. }
                | VisitorFrame::LeaveMessage { client_id, .. },
            ) => Some(client_id.clone()),
            _ => None,
        })
    }

    /// Shows "… is typing" until no news of it for a few seconds.
    fn show_typing(self, name: String) {
        self.typing.set(Some(name));
        let generation = self.typing_generation.get_value().wrapping_add(1);
        self.typing_generation.set_value(generation);
        set_timeout(
            move || {
                if self.typing_generation.get_value() == generation {
                    self.typing.set(None);
                }
            },
            std::time::Duration::from_millis(TYPING_SHOWN_MS),
        );
    }

    /// After a reconnect: what was sent but never confirmed goes again (the server
    /// stores each `client_id` once).
    fn resend(self, socket: &Socket) {
        if let Some(start) = self.starting.get_untracked() {
            socket.send(&start);
        }
        let unsent: Vec<VisitorFrame> = self.transcript.with_untracked(|t| {
            t.unsent()
                .map(|p| VisitorFrame::Send {
                    client_id: p.client_id.clone(),
                    body: p.body.clone(),
                })
                .collect()
        });
        for frame in unsent {
            socket.send(&frame);
        }
    }

    /// The pre-chat form was sent: a chat starts, or (while nobody can answer) a message
    /// is left.
    fn start(self, start: StartAnswers) {
        let offline = self.offer.with_untracked(Offer::offline);
        let frame = if offline {
            VisitorFrame::LeaveMessage {
                client_id: net::client_id(),
                name: start.answers.name,
                email: start.answers.email,
                subject: start.answers.subject,
                body: start.message,
                custom: start.answers.custom,
            }
        } else {
            let (time_zone, language) = host::time_zone_and_language();
            VisitorFrame::StartChat {
                client_id: net::client_id(),
                name: start.answers.name,
                subject: start.answers.subject,
                body: start.message,
                time_zone,
                language,
                group: start.group,
                email: start.answers.email,
                custom: start.answers.custom,
            }
        };
        self.form_problem.set(None);
        if !offline {
            self.position.set(None);
        }
        self.starting.set(Some(frame.clone()));
        self.send(&frame);
    }

    fn send_message(self, body: String) {
        let client_id = net::client_id();
        self.transcript
            .update(|t| t.add_pending(client_id.clone(), body.clone()));
        self.send(&VisitorFrame::Send { client_id, body });
    }

    /// Connects to Parlor, once.
    fn connect(self) {
        if self.socket.with_value(Option::is_some) {
            return;
        }
        let socket = Socket::connect(
            "/ws/visitor",
            Handlers {
                on_open: Box::new(move |socket| self.hello(socket)),
                on_frame: Box::new(move |socket, text| self.on_frame(socket, text)),
                on_link: Box::new(move |link| self.link.set(link)),
                on_ended: None,
            },
        );
        self.socket.set_value(Some(socket));
    }

    /// Ties the panel to the page around it: in the console's Appearance preview, the
    /// settings being edited; on a host page, the loader (whose hello brings the
    /// visitor's token, so the socket waits for it); on its own, Parlor at once.
    fn attach(self) {
        if host::fragment_param("preview").is_some() {
            self.link.set(Link::Open);
            if let Some(own) = host::own_origin() {
                host::listen_to_parent(own, move |message: host::FromParent| {
                    if let Some(settings) = message.settings {
                        self.title.set(settings.title);
                        self.color.set(Some(settings.brand_color));
                        self.offer.update(|o| {
                            o.greeting = settings.greeting;
                            o.form = settings.fields;
                        });
                    }
                });
            }
            return;
        }
        let Some(page) = host::fragment_param("host") else {
            return self.connect();
        };
        host::listen_to_parent(page, move |message: host::FromParent| {
            match message.parlor.as_str() {
                "hello" => {
                    host::keep_token(message.token);
                    self.connect();
                }
                "identify" => self.known.set(message.visitor),
                "opened" => host::focus_first_field(),
                _ => {}
            }
        });
        // Escape closes the panel from anywhere in it; the loader gives the launcher focus.
        if let Some(window) = web_sys::window() {
            // For the page's whole life.
            gloo::events::EventListener::new(&window, "keydown", |ev| {
                if ev
                    .dyn_ref::<web_sys::KeyboardEvent>()
                    .is_some_and(|ev| ev.key() == "Escape")
                {
                    host::tell_host("close");
                }
            })
            .forget();
        }
        host::tell_host("ready");
    }
}

/// The whole panel. Its parts are built once and shown or hidden as the chat goes
/// (what is hidden keeps what was typed in it), which is also the cheapest way to draw
/// them: no part is a view built again and again.
#[component]
pub fn WidgetApp() -> impl IntoView {
    let model = Model::new();
    model.attach();

    let state = Memo::new(move |_| model.case.with(|c| c.as_ref().map(|c| c.state)));
    let live = Signal::derive(move || {
        matches!(state.get(), Some(ChatState::Queued | ChatState::Active))
            && model.link.get() == Link::Open
    });
    let spec = Memo::new(move |_| model.offer.with(|o| o.form_spec(model.known.get())));
    let busy = Signal::derive(move || model.starting.with(Option::is_some));
    let draft = RwSignal::new(String::new());
    let ended = move || state.get() == Some(ChatState::Ended);
    // End chat asks once before it ends anything. The question takes the keyboard on
    // its safe answer, which hands it back to the message box.
    let confirming_end = RwSignal::new(false);
    let keep_chatting = NodeRef::<leptos::html::Button>::new();
    let ask_end = move |_| {
        confirming_end.set(true);
        focus_when_shown(keep_chatting);
    };
    let keep = move |_| {
        confirming_end.set(false);
        focus_when_shown(model.composer);
    };
    let end = move |_| model.send(&VisitorFrame::EndChat);
    let new_chat = move |_| {
        model.case.set(None);
        model.transcript.set(Transcript::default());
    };
    // However the chat ended (here, by the agent, by a timeout), the question goes with
    // it, and a visitor who just ended it keeps the keyboard on Start a new chat.
    let start_again = NodeRef::<leptos::html::Button>::new();
    Effect::new(move |_| {
        if ended() && confirming_end.get_untracked() {
            confirming_end.set(false);
            focus_when_shown(start_again);
        }
    });
    let close_button = host::embedded().then(|| {
        view! {
            <button type="button" class="panel-close" aria-label="Minimise chat"
                on:click=move |_| host::tell_host("close")>"✕"</button>
        }
    });

    view! {
        <div class="panel" style:--parlor-brand=move || model.color.get()>
            <header class="panel-header">
                <h1 class="panel-title">{model.title}</h1>
                {close_button}
            </header>
            <p class="link-banner" role="status" hidden=move || model.link.get() == Link::Open>
                {move || match model.link.get() {
                    Link::Reconnecting => "Reconnecting…",
                    _ => "Connecting…",
                }}
            </p>
            <p class="notice" role="alert" hidden=move || model.notice.with(Option::is_none)>
                {move || model.notice.get()}
            </p>
            <div class="before-chat" hidden=move || state.get().is_some()>
                <div class="message-left" role="status" hidden=move || model.left_for.with(Option::is_none)>
                    <p>{move || model.left_for.get().map(|email| format!("Thank you: we have your message and will answer at {email}."))}</p>
                    <button type="button" on:click=move |_| model.left_for.set(None)>"Write another message"</button>
                </div>
                <PrechatForm spec=spec on_start=Callback::new(move |start| model.start(start))
                    problem=model.form_problem busy=busy hidden=Signal::derive(move || model.left_for.with(Option::is_some))/>
            </div>
            <div class="in-chat" hidden=move || state.get().is_none()>
                <p class="chat-status" role="status" data-state=move || match state.get() {
                    Some(ChatState::Queued) => "queued",
                    Some(ChatState::Active) => "active",
                    Some(ChatState::Ended) => "ended",
                    None => "none",
                }>
                    {move || {
                        let position = model.position.get();
                        model.case.with(|c| c.as_ref().map(|c| status_line(c, position)))
                    }}
                </p>
                <MessageList transcript=model.transcript viewer=Viewer::Customer
                    on_earlier=Callback::new(move |before| model.send(&VisitorFrame::LoadEarlier { before }))/>
                <TypingLine who=model.typing/>
                <div class="talk" hidden=ended>
                    <Composer draft=draft enabled=live input=model.composer
                        on_send=Callback::new(move |body| model.send_message(body))
                        on_typing=Callback::new(move |()| model.send(&VisitorFrame::Typing))
                        placeholder="Type a message and press Enter"/>
                    <div class="end-chat-row">
                        <button type="button" class="end-chat" hidden=move || confirming_end.get()
                            on:click=ask_end>"End chat"</button>
                        <span class="end-question" hidden=move || !confirming_end.get()>"End this chat?"</span>
                        <button type="button" class="end-chat-yes" hidden=move || !confirming_end.get()
                            on:click=end>"End chat"</button>
                        <button type="button" class="end-chat-no" node_ref=keep_chatting
                            hidden=move || !confirming_end.get() on:click=keep>"Keep chatting"</button>
                    </div>
                </div>
                <button type="button" class="primary new-chat" node_ref=start_again
                    hidden=move || !ended() on:click=new_chat>
                    "Start a new chat"
                </button>
            </div>
        </div>
    }
}

/// Gives `node` the keyboard once the change just made has reached the page (a part
/// that was hidden cannot take focus until it shows).
fn focus_when_shown<E>(node: NodeRef<E>)
where
    E: leptos::html::ElementType,
    E::Output: JsCast + Clone + 'static,
    NodeRef<E>: Get<Value = Option<E::Output>>,
{
    request_animation_frame(move || {
        if let Some(el) = node.get_untracked() {
            let el: &web_sys::HtmlElement = el.unchecked_ref();
            let _ = el.focus();
        }
    });
}

/// Draws the panel in the page's body and connects it to Parlor (or, in the console's
/// Appearance preview, to the settings being edited).
pub fn start() {
    leptos::mount::mount_to_body(WidgetApp);
}

/// A message as the page's `message` listeners get it.
fn message_event(message: &ChatMessage) -> EventDetail<'_> {
    let (author, name) = match &message.author {
        Author::Customer { name } => ("customer", Some(name.as_str())),
        Author::Agent { name, .. } => ("agent", Some(name.as_str())),
        Author::System => ("system", None),
    };
    EventDetail {
        case_id: message.case_id,
        author: Some(author),
        name,
        body: Some(&message.body),
        sent_at: Some(message.sent_at),
        ended_by: None,
    }
}

fn ended_by(by: Option<&EndedBy>) -> &'static str {
    match by {
        Some(EndedBy::Customer) => "customer",
        Some(EndedBy::Agent { .. }) => "agent",
        Some(EndedBy::Timeout) => "timeout",
        None => "unknown",
    }
}

fn status_line(case: &CaseSummary, position: Option<u32>) -> String {
    match (&case.state, &case.agent_name, &case.ended_by) {
        (ChatState::Queued, _, _) => match position {
            Some(1) => {
                "You are in the queue, next in line. An agent will be with you shortly.".to_owned()
            }
            Some(n) => {
                format!("You are in the queue, number {n}. An agent will be with you shortly.")
            }
            None => "You are in the queue. An agent will be with you shortly.".to_owned(),
        },
        (ChatState::Active, Some(agent), _) => format!("You are chatting with {agent}."),
        (ChatState::Active, None, _) => "You are chatting with an agent.".to_owned(),
        (ChatState::Ended, _, Some(EndedBy::Customer)) => "You ended the chat.".to_owned(),
        (ChatState::Ended, _, Some(EndedBy::Agent { name })) => format!("{name} ended the chat."),
        (ChatState::Ended, _, Some(EndedBy::Timeout)) => {
            "The chat timed out due to inactivity.".to_owned()
        }
        (ChatState::Ended, _, None) => "This chat has ended.".to_owned(),
    }
}
