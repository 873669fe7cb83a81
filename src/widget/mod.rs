//! The customer widget: the chat panel that `widget.js` loads in an iframe on the
//! customer's site. Pre-chat form, queue state, live messages, End chat; a reload
//! resumes the same chat from the visitor token the loader keeps.
//!
//! The panel is drawn by hand on the DOM, without Leptos, to keep the first download
//! small: one `State` holds everything it shows, every change goes through [`Widget`],
//! and [`Panel::draw`] then brings the page up to date, touching only what changed.

mod composer;
mod host;
mod prechat;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use parlor_protocol::json::{self, ToJson};
use parlor_protocol::{
    Author, CaseSummary, Chat, ChatMessage, ChatState, EndedBy, Group, PrechatFields, ToVisitor,
    Transcript, VisitorFrame, WidgetSettings,
};
use wasm_bindgen::JsCast;
use web_sys::{Element, HtmlElement, KeyboardEvent};

use crate::components::{Messages, Viewer};
use crate::dom;
use crate::net::{self, Handlers, Link, Socket};
use composer::{Composer, ComposerHooks};
use host::EventDetail;
use prechat::{FormSpec, PrechatForm, StartAnswers};

/// Above the offline form.
const OFFLINE_INTRO: &str =
    "Nobody is available to chat right now. Leave a message and we will answer by email.";

/// How long "… is typing" stays up after the last sign of typing.
const TYPING_SHOWN_MS: i32 = 4_000;

/// Everything the panel shows.
struct State {
    title: String,
    /// The brand colour the loader (or the Appearance preview) gave.
    color: Option<String>,
    link: Link,
    case: Option<CaseSummary>,
    transcript: Transcript,
    /// A `start_chat` (or `leave_message`) on its way, sent again after a reconnect
    /// until answered.
    starting: Option<VisitorFrame>,
    /// What a visitor who is not in a chat is offered, as the server last said.
    offer: Offer,
    /// The address a message left in the offline form will be answered at.
    left_for: Option<String>,
    form_error: Option<String>,
    notice: Option<String>,
    /// The agent who is typing, until a few seconds after their last keystroke.
    typing: Option<String>,
    typing_generation: u32,
    /// The chat's place in the queue while it waits.
    position: Option<u32>,
    /// What the host page told us about the visitor (`Parlor('identify', …)`).
    known: BTreeMap<String, String>,
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

impl State {
    fn new() -> Self {
        Self {
            title: host::fragment_param("title").unwrap_or_else(|| WidgetSettings::default().title),
            color: host::fragment_param("color"),
            link: Link::Connecting,
            case: None,
            transcript: Transcript::default(),
            starting: None,
            offer: Offer {
                form: PrechatFields::default(),
                greeting: WidgetSettings::default().greeting,
                groups: Vec::new(),
                online: true,
                queue_when_offline: false,
            },
            left_for: None,
            form_error: None,
            notice: None,
            typing: None,
            typing_generation: 0,
            position: None,
            known: BTreeMap::new(),
        }
    }

    fn is_current(&self, case: parlor_protocol::CaseId) -> bool {
        self.case.as_ref().is_some_and(|c| c.id == case)
    }

    fn show(&mut self, chat: Chat) {
        if !self.is_current(chat.case.id) {
            self.transcript = Transcript::default();
        }
        self.case = Some(chat.case);
        self.transcript.resume(chat.messages);
    }

    /// The chat's new state; the page hears when it ends.
    fn update_case(&mut self, case: CaseSummary) {
        let was_over = self
            .case
            .as_ref()
            .is_none_or(|c| c.id != case.id || c.state == ChatState::Ended);
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
        self.case = Some(case);
    }

    /// The client id of the `start_chat` or `leave_message` on its way.
    fn starting_id(&self) -> Option<&str> {
        match &self.starting {
            Some(
                VisitorFrame::StartChat { client_id, .. }
                | VisitorFrame::LeaveMessage { client_id, .. },
            ) => Some(client_id),
            _ => None,
        }
    }
}

/// The widget as its parts' listeners reach it, once it exists. The listeners live
/// as long as the page, and so does the widget they hold.
#[derive(Clone, Default)]
struct Handle(Rc<std::cell::OnceCell<Rc<Widget>>>);

impl Handle {
    fn with(&self, act: impl FnOnce(&Rc<Widget>)) {
        if let Some(widget) = self.0.get() {
            act(widget);
        }
    }

    /// A listener that acts on the widget.
    fn act<T>(&self, act: impl Fn(&Rc<Widget>, T) + 'static) -> impl Fn(T) + 'static {
        let handle = self.clone();
        move |arg| handle.with(|widget| act(widget, arg))
    }
}

/// The panel: its state, its page and its link to Parlor.
struct Widget {
    state: RefCell<State>,
    panel: Panel,
    socket: RefCell<Option<Socket>>,
}

impl Widget {
    /// Changes the state, then brings the page up to date.
    fn change(&self, change: impl FnOnce(&mut State)) {
        change(&mut self.state.borrow_mut());
        self.panel.draw(&self.state.borrow());
    }

    fn send(&self, frame: &VisitorFrame) {
        if let Some(socket) = self.socket.borrow().as_ref() {
            socket.send(frame);
        }
    }

    fn hello(&self, socket: &Socket) {
        let since = self.state.borrow().transcript.last_seq();
        socket.send(&VisitorFrame::Hello {
            token: host::load_token(),
            since,
        });
    }

    fn on_frame(self: &Rc<Self>, socket: &Socket, text: &str) {
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
                self.change(|s| {
                    s.offer = Offer {
                        form,
                        greeting,
                        groups,
                        online,
                        queue_when_offline,
                    };
                    match chat {
                        Some(chat) => s.show(chat),
                        // The chat we were in ended while we were away.
                        None => {
                            if let Some(mut case) = s.case.clone() {
                                case.state = ChatState::Ended;
                                s.update_case(case);
                            }
                        }
                    }
                });
                self.resend(socket);
            }
            ToVisitor::Availability { online } => self.change(|s| s.offer.online = online),
            ToVisitor::MessageLeft { .. } => self.change(|s| {
                s.left_for = match s.starting.take() {
                    Some(VisitorFrame::LeaveMessage { email, .. }) => Some(email),
                    _ => None,
                };
            }),
            ToVisitor::ChatStarted { chat } => {
                host::host_event(
                    "chat-started",
                    EventDetail {
                        case_id: chat.case.id,
                        ..EventDetail::default()
                    },
                );
                self.change(|s| {
                    s.starting = None;
                    s.show(chat);
                });
            }
            ToVisitor::Message { message } => self.change(|s| {
                if matches!(message.author, Author::Agent { .. }) {
                    s.typing = None;
                }
                if s.is_current(message.case_id) {
                    if !s.transcript.has(message.seq) {
                        host::host_event("message", message_event(&message));
                    }
                    s.transcript.insert(message);
                }
            }),
            ToVisitor::State { case } => self.change(|s| {
                if s.is_current(case.id) {
                    s.update_case(case);
                }
            }),
            ToVisitor::Earlier { messages } => self.change(|s| {
                if messages.first().is_some_and(|m| s.is_current(m.case_id)) {
                    s.transcript.extend(messages);
                }
            }),
            ToVisitor::Typing { name } => self.show_typing(name),
            ToVisitor::Queue { position } => self.change(|s| s.position = Some(position)),
            // The link answers pings itself.
            ToVisitor::Pong => {}
            ToVisitor::Error { error } => self.change(|s| match error.client_id {
                Some(id) if Some(id.as_str()) == s.starting_id() => {
                    s.starting = None;
                    s.form_error = Some(error.message);
                }
                Some(id) => s.transcript.fail_pending(&id, error.message),
                None => s.notice = Some(error.message),
            }),
        }
    }

    /// Shows "… is typing" until no news of it for a few seconds.
    fn show_typing(self: &Rc<Self>, name: String) {
        let mut generation = 0;
        self.change(|s| {
            s.typing = Some(name);
            s.typing_generation = s.typing_generation.wrapping_add(1);
            generation = s.typing_generation;
        });
        let me = Rc::clone(self);
        let done = wasm_bindgen::closure::Closure::once_into_js(move || {
            if me.state.borrow().typing_generation == generation {
                me.change(|s| s.typing = None);
            }
        });
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(
                done.unchecked_ref(),
                TYPING_SHOWN_MS,
            );
        }
    }

    /// After a reconnect: what was sent but never confirmed goes again (the server
    /// stores each `client_id` once).
    fn resend(&self, socket: &Socket) {
        let state = self.state.borrow();
        if let Some(start) = &state.starting {
            socket.send(start);
        }
        for pending in state.transcript.pending() {
            if pending.failed.is_none() {
                socket.send(&VisitorFrame::Send {
                    client_id: pending.client_id.clone(),
                    body: pending.body.clone(),
                });
            }
        }
    }

    /// The pre-chat form was sent: a chat starts, or (while nobody can answer) a message
    /// is left.
    fn submitted(&self, read: Result<StartAnswers, String>) {
        let start = match read {
            Ok(start) => start,
            Err(problem) => return self.change(|s| s.form_error = Some(problem)),
        };
        let offline = self.state.borrow().offer.offline();
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
        self.change(|s| {
            s.form_error = None;
            if !offline {
                s.position = None;
            }
            s.starting = Some(frame.clone());
        });
        self.send(&frame);
    }

    fn send_message(&self, body: String) {
        let client_id = net::client_id();
        self.change(|s| s.transcript.add_pending(client_id.clone(), body.clone()));
        self.send(&VisitorFrame::Send { client_id, body });
    }
}

/// The panel's parts on the page.
struct Panel {
    root: HtmlElement,
    title: Element,
    banner: Element,
    notice: Element,
    /// The form, or the thanks for a message left.
    before_chat: Element,
    left: Element,
    left_text: Element,
    prechat: Rc<PrechatForm>,
    /// The chat: status, messages, composer.
    chat: Element,
    status: Element,
    messages: Messages,
    typing: Element,
    talk: Element,
    composer: Rc<Composer>,
    new_chat: Element,
}

fn button(class: &str, text: &str, on_click: impl Fn(web_sys::Event) + 'static) -> Option<Element> {
    let button = dom::text_el("button", class, text)?;
    dom::set_attr(&button, "type", "button");
    dom::listen(&button, "click", on_click);
    Some(button)
}

impl Panel {
    fn build(widget: &Handle) -> Option<Self> {
        let root: HtmlElement = dom::typed("div", "panel")?;
        let header = dom::el("header", "panel-header")?;
        let title = dom::el("h1", "panel-title")?;
        dom::append(&header, &[&title]);
        if host::embedded() {
            let close = button("panel-close", "✕", |_| host::tell_host("close"))?;
            dom::set_attr(&close, "aria-label", "Minimise chat");
            dom::append(&header, &[&close]);
        }
        let banner = dom::el("p", "link-banner")?;
        dom::set_attr(&banner, "role", "status");
        let notice = dom::el("p", "notice")?;
        dom::set_attr(&notice, "role", "alert");

        let left = dom::el("div", "message-left")?;
        dom::set_attr(&left, "role", "status");
        let left_text = dom::el("p", "")?;
        let another = button(
            "",
            "Write another message",
            widget.act(|w, _| w.change(|s| s.left_for = None)),
        )?;
        dom::append(&left, &[&left_text, &another]);
        let prechat = PrechatForm::create(Box::new(widget.act(|w, read| w.submitted(read))))?;
        let before_chat = dom::el("div", "before-chat")?;
        dom::append(&before_chat, &[&left, prechat.element()]);

        let status = dom::el("p", "chat-status")?;
        dom::set_attr(&status, "role", "status");
        let messages = Messages::create(
            Viewer::Customer,
            Some(Box::new(widget.act(|w, before| {
                w.send(&VisitorFrame::LoadEarlier { before });
            }))),
        )?;
        let typing = dom::el("p", "typing")?;
        dom::set_attr(&typing, "aria-live", "polite");
        let composer = Composer::create(
            "Type a message and press Enter",
            ComposerHooks {
                on_send: Box::new(widget.act(|w, body| w.send_message(body))),
                on_typing: Box::new({
                    let widget = widget.clone();
                    move || widget.with(|w| w.send(&VisitorFrame::Typing))
                }),
            },
        )?;
        let end = button(
            "end-chat",
            "End chat",
            widget.act(|w, _| w.send(&VisitorFrame::EndChat)),
        )?;
        let talk = dom::el("div", "talk")?;
        dom::append(&talk, &[composer.element(), &end]);
        let new_chat = button(
            "primary new-chat",
            "Start a new chat",
            widget.act(|w, _| {
                w.change(|s| {
                    s.case = None;
                    s.transcript = Transcript::default();
                });
            }),
        )?;
        let chat = dom::el("div", "in-chat")?;
        dom::append(
            &chat,
            &[&status, messages.element(), &typing, &talk, &new_chat],
        );

        dom::append(&root, &[&header, &banner, &notice, &before_chat, &chat]);
        let body = dom::document()?.body()?;
        dom::append(&body, &[&root]);
        Some(Self {
            root,
            title,
            banner,
            notice,
            before_chat,
            left,
            left_text,
            prechat,
            chat,
            status,
            messages,
            typing,
            talk,
            composer,
            new_chat,
        })
    }

    /// Brings the page up to date with `s`.
    fn draw(&self, s: &State) {
        dom::set_text(&self.title, &s.title);
        let style = self.root.style();
        let color = s.color.as_deref().unwrap_or_default();
        if style.get_property_value("--parlor-brand").ok().as_deref() != Some(color) {
            let _ = style.set_property("--parlor-brand", color);
        }
        dom::set_hidden(&self.banner, s.link == Link::Open);
        dom::set_text(
            &self.banner,
            match s.link {
                Link::Reconnecting => "Reconnecting…",
                _ => "Connecting…",
            },
        );
        dom::set_hidden(&self.notice, s.notice.is_none());
        dom::set_text(&self.notice, s.notice.as_deref().unwrap_or_default());
        dom::set_hidden(&self.before_chat, s.case.is_some());
        dom::set_hidden(&self.chat, s.case.is_none());
        match &s.case {
            None => self.draw_offer(s),
            Some(case) => self.draw_chat(s, case),
        }
    }

    fn draw_offer(&self, s: &State) {
        dom::set_hidden(&self.left, s.left_for.is_none());
        dom::set_hidden(self.prechat.element(), s.left_for.is_some());
        if let Some(email) = &s.left_for {
            dom::set_text(
                &self.left_text,
                &format!("Thank you: we have your message and will answer at {email}."),
            );
        }
        self.prechat.show(
            s.offer.form_spec(s.known.clone()),
            s.form_error.as_deref(),
            s.starting.is_some(),
        );
    }

    fn draw_chat(&self, s: &State, case: &CaseSummary) {
        let state = match case.state {
            ChatState::Queued => "queued",
            ChatState::Active => "active",
            ChatState::Ended => "ended",
        };
        dom::set_attr(&self.status, "data-state", state);
        dom::set_text(&self.status, &status_line(case, s.position));
        self.messages.show(&s.transcript);
        let typing = s.typing.as_ref().map(|name| format!("{name} is typing…"));
        dom::set_text(&self.typing, typing.as_deref().unwrap_or_default());
        let ended = case.state == ChatState::Ended;
        self.composer.set_enabled(!ended && s.link == Link::Open);
        dom::set_hidden(&self.talk, ended);
        dom::set_hidden(&self.new_chat, !ended);
    }
}

/// Draws the panel in the page's body and connects it to Parlor (or, in the console's
/// Appearance preview, to the settings being edited).
pub fn start() {
    let handle = Handle::default();
    let Some(panel) = Panel::build(&handle) else {
        return;
    };
    let widget = Rc::new(Widget {
        state: RefCell::new(State::new()),
        panel,
        socket: RefCell::new(None),
    });
    let _ = handle.0.set(Rc::clone(&widget));
    // The console's Appearance page shows the form as its admin edits it, with no socket.
    if host::fragment_param("preview").is_some() {
        widget.change(|s| s.link = Link::Open);
        if let Some(own) = host::own_origin() {
            host::listen_to_parent(
                own,
                handle.act(|w, message: host::FromParent| {
                    if let Some(settings) = message.settings {
                        w.change(|s| {
                            s.title = settings.title;
                            s.color = Some(settings.brand_color);
                            s.offer.greeting = settings.greeting;
                            s.offer.form = settings.fields;
                        });
                    }
                }),
            );
        }
        return;
    }
    let connect = {
        let handle = handle.clone();
        move || {
            handle.with(|w| {
                if w.socket.borrow().is_some() {
                    return;
                }
                let socket = Socket::connect(
                    "/ws/visitor",
                    Handlers {
                        on_open: Box::new({
                            let handle = handle.clone();
                            move |socket| handle.with(|w| w.hello(socket))
                        }),
                        on_frame: Box::new({
                            let handle = handle.clone();
                            move |socket, text| handle.with(|w| w.on_frame(socket, text))
                        }),
                        on_link: Box::new(handle.act(|w, link| w.change(|s| s.link = link))),
                        on_ended: None,
                    },
                );
                *w.socket.borrow_mut() = Some(socket);
            });
        }
    };
    match host::fragment_param("host") {
        // On a host page the socket waits for the loader's hello, which brings the
        // visitor's token (or none yet).
        Some(page) => {
            host::listen_to_parent(
                page,
                handle.act(
                    move |w, message: host::FromParent| match message.parlor.as_str() {
                        "hello" => {
                            host::keep_token(message.token);
                            connect();
                        }
                        "identify" => w.change(|s| s.known = message.visitor),
                        "opened" => host::focus_first_field(),
                        _ => {}
                    },
                ),
            );
            // Escape closes the panel from anywhere in it; the loader gives the launcher focus.
            if let Some(window) = web_sys::window() {
                dom::listen(&window, "keydown", |ev: KeyboardEvent| {
                    if ev.key() == "Escape" {
                        host::tell_host("close");
                    }
                });
            }
            host::tell_host("ready");
        }
        None => connect(),
    }
    widget.change(|_| {});
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
