//! The customer widget: the chat panel that `widget.js` loads in an iframe on the
//! customer's site. Pre-chat form, queue state, live messages, End chat; a reload
//! resumes the same chat from the visitor token kept in this frame's storage.

mod host;
mod prechat;

use std::collections::BTreeMap;

use leptos::either::Either;
use leptos::prelude::*;
use parlor_protocol::json::{self, ToJson};
use parlor_protocol::{
    Author, CaseSummary, Chat, ChatMessage, ChatState, EndedBy, Group, PrechatFields, ToVisitor,
    Transcript, VisitorFrame, WidgetSettings,
};

use crate::components::{Composer, MessageList, Viewer};
use crate::net::{self, Handlers, Link, Socket};
use host::EventDetail;
use prechat::{FormSpec, PrechatForm, StartAnswers};

/// Above the offline form.
const OFFLINE_INTRO: &str =
    "Nobody is available to chat right now. Leave a message and we will answer by email.";

/// How long "… is typing" stays up after the last sign of typing.
const TYPING_SHOWN_MS: u64 = 4_000;

/// Everything the panel shows, as signals.
#[derive(Clone, Copy)]
struct Model {
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
    form_error: RwSignal<Option<String>>,
    notice: RwSignal<Option<String>>,
    /// The agent who is typing, until a few seconds after their last keystroke.
    typing: RwSignal<Option<String>>,
    typing_generation: RwSignal<u32>,
    /// The chat's place in the queue while it waits.
    position: RwSignal<Option<u32>>,
    /// What the host page told us about the visitor (`Parlor('identify', …)`).
    known: RwSignal<BTreeMap<String, String>>,
}

/// The pre-chat form, its greeting and groups, and whether anyone can answer: one signal,
/// as the `Welcome` brings them together.
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
            form_error: RwSignal::new(None),
            notice: RwSignal::new(None),
            typing: RwSignal::new(None),
            typing_generation: RwSignal::new(0),
            position: RwSignal::new(None),
            known: RwSignal::new(BTreeMap::new()),
        }
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
                self.offer.set(Offer {
                    form,
                    greeting,
                    groups,
                    online,
                    queue_when_offline,
                });
                socket.set_heartbeat(heartbeat_secs);
                host::save_token(&token);
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
                let email = self.starting.with_untracked(|s| match s {
                    Some(VisitorFrame::LeaveMessage { email, .. }) => Some(email.clone()),
                    _ => None,
                });
                self.starting.set(None);
                self.left_for.set(email);
            }
            ToVisitor::ChatStarted { chat } => {
                self.starting.set(None);
                host::host_event(
                    "chat-started",
                    EventDetail {
                        case_id: chat.case.id,
                        ..EventDetail::default()
                    },
                );
                self.show(chat);
            }
            ToVisitor::Message { message } => {
                if matches!(message.author, Author::Agent { .. }) {
                    self.typing.set(None);
                }
                if self.is_current(message.case_id) {
                    let fresh = self.transcript.with_untracked(|t| !t.has(message.seq));
                    if fresh {
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
            ToVisitor::Typing { name } => self.show_typing(name),
            ToVisitor::Queue { position } => self.position.set(Some(position)),
            // The link answers pings itself.
            ToVisitor::Pong => {}
            ToVisitor::Error { error } => {
                let starting_id = self.starting.with_untracked(|s| match s {
                    Some(
                        VisitorFrame::StartChat { client_id, .. }
                        | VisitorFrame::LeaveMessage { client_id, .. },
                    ) => Some(client_id.clone()),
                    _ => None,
                });
                match error.client_id {
                    Some(id) if Some(&id) == starting_id.as_ref() => {
                        self.starting.set(None);
                        self.form_error.set(Some(error.message));
                    }
                    Some(id) => self
                        .transcript
                        .update(|t| t.fail_pending(&id, error.message)),
                    None => self.notice.set(Some(error.message)),
                }
            }
        }
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

    /// Shows "… is typing" until no news of it for a few seconds.
    fn show_typing(self, name: String) {
        self.typing.set(Some(name));
        self.typing_generation.update(|g| *g = g.wrapping_add(1));
        let generation = self.typing_generation.get_untracked();
        set_timeout(
            move || {
                if self.typing_generation.get_untracked() == generation {
                    self.typing.set(None);
                }
            },
            std::time::Duration::from_millis(TYPING_SHOWN_MS),
        );
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
        self.transcript.update(|t| t.extend(chat.messages));
    }

    /// After a reconnect: what was sent but never confirmed goes again (the server
    /// stores each `client_id` once).
    fn resend(self, socket: &Socket) {
        if let Some(start) = self.starting.get_untracked() {
            socket.send(&start);
        }
        let unsent: Vec<VisitorFrame> = self.transcript.with_untracked(|t| {
            t.pending()
                .iter()
                .filter(|p| p.failed.is_none())
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

/// The whole panel.
#[component]
pub fn WidgetApp() -> impl IntoView {
    let model = Model::new();
    let title = RwSignal::new(
        host::fragment_param("title").unwrap_or_else(|| WidgetSettings::default().title),
    );
    let color = RwSignal::new(host::fragment_param("color"));
    // The console's Appearance page shows the form as its admin edits it, with no socket.
    let preview = host::fragment_param("preview").is_some();
    let socket = (!preview).then(|| {
        Socket::connect(
            "/ws/visitor",
            Handlers {
                on_open: Box::new(move |socket| model.hello(socket)),
                on_frame: Box::new(move |socket, text| model.on_frame(socket, text)),
                on_link: Box::new(move |link| model.link.set(link)),
            },
        )
    });
    if preview {
        model.link.set(Link::Open);
        if let Some(own) = host::own_origin() {
            host::listen_to_parent(own, move |message| {
                if let Some(settings) = message.settings {
                    title.set(settings.title);
                    color.set(Some(settings.brand_color));
                    model.offer.update(|o| {
                        o.greeting = settings.greeting;
                        o.form = settings.fields;
                    });
                }
            });
        }
    } else if let Some(page) = host::fragment_param("host") {
        host::listen_to_parent(page, move |message| match message.parlor.as_str() {
            "identify" => model.known.set(message.visitor),
            "opened" => host::focus_first_field(),
            _ => {}
        });
        // Escape closes the panel from anywhere in it; the loader gives the launcher focus.
        let _ = window_event_listener(leptos::ev::keydown, |ev| {
            if ev.key() == "Escape" {
                host::tell_host("close");
            }
        });
        host::tell_host("ready");
    }
    let socket = StoredValue::new_local(socket);
    let send_frame = move |frame: &VisitorFrame| {
        socket.with_value(|s| {
            if let Some(s) = s {
                s.send(frame);
            }
        });
    };

    // Nobody can take a chat and the admin does not queue them: the message form.
    let offline = move || model.offer.with(Offer::offline);
    let start = Callback::new(move |start: StartAnswers| {
        if offline() {
            let frame = VisitorFrame::LeaveMessage {
                client_id: net::client_id(),
                name: start.answers.name,
                email: start.answers.email,
                subject: start.answers.subject,
                body: start.message,
                custom: start.answers.custom,
            };
            model.form_error.set(None);
            model.starting.set(Some(frame.clone()));
            send_frame(&frame);
            return;
        }
        let (time_zone, language) = host::time_zone_and_language();
        let frame = VisitorFrame::StartChat {
            client_id: net::client_id(),
            name: start.answers.name,
            subject: start.answers.subject,
            body: start.message,
            time_zone,
            language,
            group: start.group,
            email: start.answers.email,
            custom: start.answers.custom,
        };
        model.form_error.set(None);
        model.position.set(None);
        model.starting.set(Some(frame.clone()));
        send_frame(&frame);
    });
    let send = Callback::new(move |body: String| {
        let client_id = net::client_id();
        model
            .transcript
            .update(|t| t.add_pending(client_id.clone(), body.clone()));
        send_frame(&VisitorFrame::Send { client_id, body });
    });
    let draft = RwSignal::new(String::new());
    let typing = Callback::new(move |()| send_frame(&VisitorFrame::Typing));
    let end_chat = move |_| send_frame(&VisitorFrame::EndChat);
    let new_chat = move |_| {
        model.case.set(None);
        model.transcript.set(Transcript::default());
    };

    let state = move || model.case.with(|c| c.as_ref().map(|c| c.state));
    let live = Signal::derive(move || {
        matches!(state(), Some(ChatState::Queued | ChatState::Active))
            && model.link.get() == Link::Open
    });
    let spec = Memo::new(move |_| model.offer.with(|o| o.form_spec(model.known.get())));
    let busy = Signal::derive(move || model.starting.with(Option::is_some));

    // Each part is built when it first shows, not again while it stays.
    let in_chat = Memo::new(move |_| state().is_some());
    let ended = Memo::new(move |_| state() == Some(ChatState::Ended));
    let before_chat = move || match model.left_for.get() {
        Some(email) => Either::Left(view! {
            <div class="message-left" role="status">
                <p>{format!("Thank you: we have your message and will answer at {email}.")}</p>
                <button type="button" on:click=move |_| model.left_for.set(None)>"Write another message"</button>
            </div>
        }),
        None => Either::Right(view! {
            <PrechatForm spec=spec.into() on_start=start problem=model.form_error busy=busy/>
        }),
    };
    let chat_end = move || {
        if ended.get() {
            Either::Left(view! {
                <button type="button" class="primary new-chat" on:click=new_chat>"Start a new chat"</button>
            })
        } else {
            Either::Right(view! {
                <Composer draft=draft on_send=send on_typing=typing enabled=live placeholder="Type a message and press Enter"/>
                <button type="button" class="end-chat" on:click=end_chat>"End chat"</button>
            })
        }
    };
    let chat = move || {
        view! {
            <p class="chat-status" role="status" data-state=move || match state() {
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
            <MessageList transcript=model.transcript viewer=Viewer::Customer/>
            <p class="typing" aria-live="polite">
                {move || model.typing.get().map(|name| format!("{name} is typing…"))}
            </p>
            {chat_end}
        }
    };
    let close_button = host::embedded().then(|| {
        view! {
            <button type="button" class="panel-close" aria-label="Minimise chat"
                on:click=move |_| host::tell_host("close")>"✕"</button>
        }
    });

    view! {
        <div class="panel" style:--parlor-brand=move || color.get()>
            <header class="panel-header">
                <h1 class="panel-title">{title}</h1>
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
            {move || if in_chat.get() { Either::Left(chat()) } else { Either::Right(before_chat) }}
        </div>
    }
}
