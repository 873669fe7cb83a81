//! Frame and API body types.

use serde::{Deserialize, Serialize};

/// A case's id, as stored.
pub type CaseId = i64;
/// An agent's id, as stored.
pub type AgentId = i64;
/// A group's id, as stored.
pub type GroupId = i64;
/// A message's place in its case: 1, 2, 3 … assigned by the server, never reused.
pub type Seq = i64;
/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// Who wrote a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Author {
    Customer {
        name: String,
    },
    Agent {
        id: AgentId,
        name: String,
    },
    /// Parlor itself: "agent joined", "chat ended" and the like.
    System,
}

/// One stored chat message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub case_id: CaseId,
    pub seq: Seq,
    /// Chosen by the sender; the server makes one up for system messages.
    pub client_id: String,
    pub author: Author,
    /// Exactly as sent: never markup.
    pub body: String,
    pub sent_at: Millis,
}

/// Where a chat stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatState {
    /// Waiting for an agent.
    Queued,
    /// An agent is in the chat.
    Active,
    /// Over; the transcript stays on the case.
    Ended,
}

/// How a case came in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A live chat.
    #[default]
    Chat,
    /// A message left in the widget while nobody could take a chat.
    Message,
}

/// Who ended a chat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndedBy {
    Customer,
    Agent {
        name: String,
    },
    /// The customer went away and the inactivity timeout ran out.
    Timeout,
}

/// A case's status, as agents set it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    #[default]
    New,
    Open,
    Pending,
    Resolved,
}

impl CaseStatus {
    pub const ALL: [CaseStatus; 4] = [Self::New, Self::Open, Self::Pending, Self::Resolved];

    pub fn label(self) -> &'static str {
        match self {
            Self::New => "New",
            Self::Open => "Open",
            Self::Pending => "Pending",
            Self::Resolved => "Resolved",
        }
    }
}

/// What either side needs to show a chat case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseSummary {
    pub id: CaseId,
    pub subject: String,
    pub customer_name: String,
    pub state: ChatState,
    /// The agent in the chat, once one accepted.
    pub agent_name: Option<String>,
    pub created_at: Millis,
    pub ended_by: Option<EndedBy>,
    /// The group the customer chose, if any.
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub status: CaseStatus,
    /// From the pre-chat form, when asked and given.
    #[serde(default)]
    pub customer_email: Option<String>,
    /// The answers to the admin's own pre-chat questions.
    #[serde(default)]
    pub answers: Vec<Answer>,
    #[serde(default)]
    pub channel: Channel,
    /// While the chat is live: since when the customer has had no widget open (they
    /// closed the window or left the site); `None` while they are here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_left_at: Option<Millis>,
}

/// One answer to an admin's own pre-chat question, with the question as it was asked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub key: String,
    pub label: String,
    pub value: String,
}

/// A group of agents a chat can be for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub id: GroupId,
    pub name: String,
}

/// How many waiting chats the console lists; the rest are counted.
pub const WAITING_LISTED: usize = 50;

/// A chat waiting for an agent, as the console's waiting list shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingChat {
    pub case: CaseSummary,
    /// 1 for the next chat to be taken.
    pub position: u32,
    /// Whether a screen pop for it is on some agent's screen now.
    pub offered: bool,
    /// The start of the customer's first message.
    #[serde(default)]
    pub first_message: String,
}

/// How much of a waiting chat's first message the waiting list shows.
pub const FIRST_MESSAGE_CHARS: usize = 140;

/// A case with the messages the client does not hold yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chat {
    pub case: CaseSummary,
    /// In `seq` order: the latest page of those after the `since` the client sent (see
    /// [`PAGE_MESSAGES`]). Sequence numbers have no gaps, so a first `seq` above 1 means
    /// there are earlier messages (`load_earlier`), and one above the client's `since`
    /// + 1 means its copy no longer joins up with this page: it starts over from it.
    pub messages: Vec<ChatMessage>,
}

/// The most messages one page of a transcript holds: what `hello`, `watch` and an
/// accepted chat send, and each `load_earlier` answer.
pub const PAGE_MESSAGES: usize = 50;

/// A page also stops once its messages' text passes this many bytes (it always holds
/// at least one message), so a page of long messages stays a small frame.
pub const PAGE_BYTES: usize = 64 * 1024;

/// A chat routed to one agent, waiting for Accept (the screen pop).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    pub case_id: CaseId,
    pub customer_name: String,
    pub subject: String,
    pub group: Option<String>,
    /// Approximate, from what the server can know without an outside service.
    pub location: String,
    pub created_at: Millis,
    /// Time left to accept, counted by the server; the console counts down locally.
    pub expires_in_ms: u64,
}

/// Why an offer left an agent's screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferClosed {
    /// The countdown reached 0; the chat went to the next agent.
    TimedOut,
    /// The agent pressed Disable.
    Disabled,
    /// The customer left before anyone accepted.
    Abandoned,
    /// The agent accepted it.
    Accepted,
    /// The agent went offline; the chat went to the next agent.
    Withdrawn,
}

/// Why an agent's routing switch changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoutingChange {
    /// The agent flipped the switch.
    Switched,
    /// The agent pressed Disable on a screen pop.
    DisabledFromOffer,
    /// The agent let a screen pop time out.
    IgnoredOffer,
}

/// A clear error, sent instead of doing anything.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
    /// The `client_id` of the send that failed, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// Machine-readable error kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not valid JSON, or not a known frame.
    Malformed,
    /// The frame is over [`MAX_FRAME_BYTES`].
    TooLarge,
    /// The frame is valid but its content is not (empty text, too long, …).
    Invalid,
    /// No such case for this caller (also for cases that belong to someone else).
    NotFound,
    /// The action does not fit the chat's current state.
    Conflict,
    /// The caller must say hello (or sign in) first.
    Unauthorized,
    /// Something failed inside Parlor; details are in its log.
    Internal,
    /// Over a rate limit: wait, then try again.
    TooFast,
}

impl ProtocolError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            client_id: None,
        }
    }

    pub fn for_send(mut self, client_id: &str) -> Self {
        self.client_id = Some(client_id.to_owned());
        self
    }
}

/// The largest frame either socket accepts.
pub const MAX_FRAME_BYTES: usize = 16 * 1024;

/// How often clients ping, in seconds, until `Welcome` says otherwise. Either side
/// closes a socket it has heard nothing on for twice the interval.
pub const HEARTBEAT_SECS: u32 = 20;

/// Close code of a console whose sign-in session ended (signed out here or everywhere,
/// a new password, expiry): the console goes to the sign-in page, it does not reconnect.
pub const CLOSE_SESSION_ENDED: u16 = 4401;

/// Close code of a console whose agent was switched off by an admin.
pub const CLOSE_ACCOUNT_OFF: u16 = 4403;

fn heartbeat_secs() -> u32 {
    HEARTBEAT_SECS
}

fn yes() -> bool {
    true
}

// ---------------------------------------------------------------------------------------
// Widget <-> server

/// Frames the widget sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VisitorFrame {
    /// The first frame on every connection. `token` is the one from an earlier
    /// `Welcome`, kept by the widget; `since` is the last `seq` the widget holds.
    Hello {
        token: Option<String>,
        #[serde(default)]
        since: Seq,
    },
    /// The pre-chat form and the first message: creates the case and queues it.
    StartChat {
        client_id: String,
        name: String,
        subject: String,
        body: String,
        /// Reported by the browser, for the agent's approximate location.
        #[serde(default)]
        time_zone: Option<String>,
        #[serde(default)]
        language: Option<String>,
        /// The group chosen in the pre-chat form.
        #[serde(default)]
        group: Option<GroupId>,
        #[serde(default)]
        email: String,
        /// Answers to the admin's own questions, by key.
        #[serde(default)]
        custom: std::collections::BTreeMap<String, String>,
    },
    /// The offline form: a message that becomes a case, for an answer by email, when
    /// nobody can take a chat. Answered with `message_left`.
    LeaveMessage {
        client_id: String,
        #[serde(default)]
        name: String,
        email: String,
        #[serde(default)]
        subject: String,
        body: String,
        #[serde(default)]
        custom: std::collections::BTreeMap<String, String>,
    },
    /// A message in the visitor's live chat.
    Send { client_id: String, body: String },
    /// The customer is typing (sent at most every few seconds while they type).
    Typing,
    /// The customer pressed End chat.
    EndChat,
    /// The page of the chat's messages just before `before` (the first `seq` the widget
    /// holds): answered with `earlier`.
    LoadEarlier { before: Seq },
    /// The heartbeat: answered with `pong`.
    Ping,
}

/// Frames the server sends a widget.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToVisitor {
    /// The answer to `Hello`: the visitor's token (the one sent if it is known, else a
    /// new one — keep it to resume) and the visitor's live chat, if any.
    Welcome {
        token: String,
        chat: Option<Chat>,
        /// The groups the pre-chat form offers.
        #[serde(default)]
        groups: Vec<Group>,
        /// Ping every this many seconds.
        #[serde(default = "heartbeat_secs")]
        heartbeat_secs: u32,
        /// The pre-chat form the admin set.
        #[serde(default)]
        form: crate::PrechatFields,
        /// Shown above the pre-chat form.
        #[serde(default)]
        greeting: String,
        /// Whether an agent can take a chat now.
        #[serde(default = "yes")]
        online: bool,
        /// Whether chats queue even when nobody can take them (else: the offline form).
        #[serde(default)]
        queue_when_offline: bool,
    },
    /// Whether an agent can take a chat now changed.
    Availability {
        online: bool,
    },
    /// The answer to `leave_message`: the case it made.
    MessageLeft {
        case_id: CaseId,
        client_id: String,
    },
    /// The answer to `StartChat`.
    ChatStarted {
        chat: Chat,
    },
    /// A new message in the chat (also the acknowledgement of the visitor's own send).
    Message {
        message: ChatMessage,
    },
    /// The chat's state changed (an agent joined, it was queued again, …).
    State {
        case: CaseSummary,
    },
    /// The agent is typing.
    Typing {
        name: String,
    },
    /// Where the waiting chat stands in the queue: 1 is next.
    Queue {
        position: u32,
    },
    /// The answer to `load_earlier`: a page of messages, in `seq` order; none when there
    /// are no earlier ones.
    Earlier {
        messages: Vec<ChatMessage>,
    },
    /// The answer to `ping`.
    Pong,
    Error {
        error: ProtocolError,
    },
}

// ---------------------------------------------------------------------------------------
// Console <-> server

/// Where the console's copy of one chat ends, for resuming.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub case_id: CaseId,
    pub since: Seq,
}

/// Frames the console sends. The socket is signed in by the session cookie.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentFrame {
    /// The first frame: the chats the console already holds, and up to where.
    Hello {
        #[serde(default)]
        cursors: Vec<Cursor>,
    },
    /// The routing switch for the chat channel.
    SetRouting {
        on: bool,
    },
    Accept {
        case_id: CaseId,
    },
    /// Decline a screen pop: switches the agent's routing off.
    Disable {
        case_id: CaseId,
    },
    /// A reply. Liquid variables in `body` are filled in by the server.
    Send {
        case_id: CaseId,
        client_id: String,
        body: String,
    },
    /// The agent is typing in this chat.
    Typing {
        case_id: CaseId,
    },
    EndChat {
        case_id: CaseId,
    },
    /// Open any chat case read-only: watch it live; the customer is not told.
    Watch {
        case_id: CaseId,
    },
    /// Close a case tab. Closing the tab of a live chat I am in tells the customer I
    /// left and puts the chat back in the queue.
    CloseTab {
        case_id: CaseId,
    },
    /// The page of a case's messages just before `before`: answered with `earlier`. Any
    /// agent may, as for `watch`.
    LoadEarlier {
        case_id: CaseId,
        before: Seq,
    },
    /// The case fields' Update button, with the Close tab box.
    UpdateCase {
        case_id: CaseId,
        status: CaseStatus,
        subject: String,
        group: Option<GroupId>,
        close_tab: bool,
    },
    /// The heartbeat: answered with `pong`.
    Ping,
}

/// The signed-in agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentProfile {
    pub id: AgentId,
    pub name: String,
    pub email: String,
    pub is_admin: bool,
}

/// Frames the server sends a console.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToAgent {
    /// The answer to `Hello`: who I am, my switch and my chats. An open screen pop
    /// follows as an `Offer` frame.
    Welcome {
        agent: AgentProfile,
        routing: bool,
        /// The admin's switch for routing on the chat channel as a whole.
        channel_routing: bool,
        chats: Vec<Chat>,
        /// Ping every this many seconds.
        #[serde(default = "heartbeat_secs")]
        heartbeat_secs: u32,
    },
    /// The admin switched routing for the whole chat channel.
    ChannelRouting {
        on: bool,
    },
    /// The chats waiting for an agent, oldest first.
    Waiting {
        /// The first of them, at most [`WAITING_LISTED`].
        chats: Vec<WaitingChat>,
        /// How many chats are waiting in all.
        total: u32,
    },
    Routing {
        on: bool,
        change: RoutingChange,
    },
    /// A screen pop.
    Offer {
        offer: Offer,
    },
    OfferClosed {
        case_id: CaseId,
        reason: OfferClosed,
    },
    /// I entered a chat: open its case tab.
    ChatOpened {
        chat: Chat,
    },
    /// A case opened read-only: a tab without a composer.
    Watching {
        chat: Chat,
    },
    /// One of my case tabs closed (from this console or another of mine).
    TabClosed {
        case_id: CaseId,
    },
    Message {
        message: ChatMessage,
    },
    State {
        case: CaseSummary,
    },
    /// The customer is typing in this chat.
    Typing {
        case_id: CaseId,
    },
    /// The answer to `load_earlier`: a page of the case's messages, in `seq` order.
    Earlier {
        case_id: CaseId,
        messages: Vec<ChatMessage>,
    },
    /// The answer to `ping`.
    Pong,
    Error {
        error: ProtocolError,
    },
}

// ---------------------------------------------------------------------------------------
// HTTP API bodies

/// `POST /api/login`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// A canned response. `body` is Markdown; in chat it is flattened to one line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Macro {
    pub id: i64,
    pub name: String,
    pub body: String,
}

/// `POST /api/macros`, `PUT /api/macros/{id}`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MacroInput {
    pub name: String,
    pub body: String,
}

/// An agent account, as admins manage it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentAccount {
    pub id: AgentId,
    pub name: String,
    pub email: String,
    pub is_admin: bool,
    pub active: bool,
    /// How many chats at once.
    pub capacity: u32,
    pub groups: Vec<GroupId>,
    /// A console of theirs is open now (in the admins' list; never stored).
    #[serde(default)]
    pub online: bool,
}

/// `POST /api/agents` (a password is required) and `PUT /api/agents/{id}` (a password
/// sets a new one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInput {
    pub name: String,
    pub email: String,
    #[serde(default)]
    pub password: Option<String>,
    pub is_admin: bool,
    pub active: bool,
    pub capacity: u32,
    #[serde(default)]
    pub groups: Vec<GroupId>,
}

/// `POST /api/groups`, `PUT /api/groups/{id}`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInput {
    pub name: String,
}

/// `GET`/`PUT /api/settings/routing`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingSettings {
    /// Routing on for the chat channel as a whole.
    pub channel_routing: bool,
    /// How long a screen pop waits for Accept, in seconds.
    pub screen_pop_timeout_secs: u32,
}

/// The texts Parlor writes into chats, each of which an admin can switch off or reword.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SystemMessageKind {
    AgentJoined,
    /// The agent closed the tab or went away: the chat is back in the queue.
    AgentLeft,
    /// The case was resolved while the chat was live.
    PlacedBackInQueue,
    EndedByCustomer,
    EndedByAgent,
    TimedOut,
}

impl SystemMessageKind {
    pub const ALL: [SystemMessageKind; 6] = [
        Self::AgentJoined,
        Self::AgentLeft,
        Self::PlacedBackInQueue,
        Self::EndedByCustomer,
        Self::EndedByAgent,
        Self::TimedOut,
    ];

    /// What it is for, on the settings page.
    pub fn label(self) -> &'static str {
        match self {
            Self::AgentJoined => "Agent joined",
            Self::AgentLeft => "Agent left, back in the queue",
            Self::PlacedBackInQueue => "Case resolved, placed back in the queue",
            Self::EndedByCustomer => "Chat ended by the customer",
            Self::EndedByAgent => "Chat ended by the agent",
            Self::TimedOut => "Chat timed out",
        }
    }

    /// The text when the admin has not changed it; `{agent}` is the agent's name.
    pub fn default_text(self) -> &'static str {
        match self {
            Self::AgentJoined => "{agent} joined the chat.",
            Self::AgentLeft => "{agent} left the chat. You are back in the queue.",
            Self::PlacedBackInQueue => "You have been placed back in the queue.",
            Self::EndedByCustomer => "The customer ended the chat.",
            Self::EndedByAgent => "{agent} ended the chat.",
            Self::TimedOut => "The chat timed out due to inactivity.",
        }
    }
}

/// One system message's setting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemMessageSetting {
    pub kind: SystemMessageKind,
    pub on: bool,
    pub text: String,
}

/// `GET`/`PUT /api/settings/chat`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatSettings {
    /// How long after the customer went away a chat ends as timed out.
    pub inactivity_timeout_secs: u32,
    /// How long an agent's console may be gone before their chats go back to the queue.
    pub agent_grace_secs: u32,
    pub messages: Vec<SystemMessageSetting>,
}

/// Where a chat stands, as the Cases page filters it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseChat {
    Waiting,
    Live,
    Ended,
    /// A message left on the offline form.
    Message,
}

/// `GET /api/cases`: newest first, [`CASES_PAGE`] at a time; each filter given narrows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<CaseStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat: Option<CaseChat>,
    /// Words found in the customer's name, email or the subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// Only cases older than this one (the next page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<CaseId>,
}

/// How many cases one page of the Cases page holds.
pub const CASES_PAGE: usize = 50;

/// One line of a case's offer log: offered to whom, when, and how it ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferLogEntry {
    pub agent_name: String,
    pub offered_at: Millis,
    pub closed_at: Option<Millis>,
    /// None while the screen pop is still up.
    pub outcome: Option<OfferClosed>,
}

/// The body of every HTTP error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_named_by_their_kind_in_snake_case() {
        let frame = VisitorFrame::Send {
            client_id: "c1".into(),
            body: "hi".into(),
        };
        let json = serde_json::to_string(&frame).expect("serialises");
        assert_eq!(json, r#"{"send":{"client_id":"c1","body":"hi"}}"#);
        let ping = serde_json::to_string(&VisitorFrame::Ping).expect("serialises");
        assert_eq!(ping, r#""ping""#, "a frame without fields is its name");
    }

    #[test]
    fn hello_without_since_means_from_the_start() {
        let frame: VisitorFrame =
            serde_json::from_str(r#"{"hello":{"token":null}}"#).expect("parses");
        assert_eq!(
            frame,
            VisitorFrame::Hello {
                token: None,
                since: 0
            }
        );
    }

    #[test]
    fn unknown_frame_types_are_rejected() {
        assert!(serde_json::from_str::<AgentFrame>(r#"{"take_over":{}}"#).is_err());
        assert!(serde_json::from_str::<AgentFrame>(r#"{"type":"accept","case_id":1}"#).is_err());
    }

    #[test]
    fn every_server_frame_round_trips() {
        let message = ChatMessage {
            case_id: 7,
            seq: 3,
            client_id: "abc".into(),
            author: Author::Agent {
                id: 1,
                name: "Ada".into(),
            },
            body: "<b>not markup</b>".into(),
            sent_at: 1,
        };
        let frames = [
            ToAgent::Message {
                message: message.clone(),
            },
            ToAgent::OfferClosed {
                case_id: 7,
                reason: OfferClosed::TimedOut,
            },
            ToAgent::Routing {
                on: false,
                change: RoutingChange::IgnoredOffer,
            },
        ];
        for frame in frames {
            let json = serde_json::to_string(&frame).expect("serialises");
            let back: ToAgent = serde_json::from_str(&json).expect("parses");
            assert_eq!(back, frame);
        }
    }

    #[test]
    fn an_error_names_the_failed_send() {
        let error = ProtocolError::new(ErrorCode::Invalid, "empty").for_send("c9");
        let json = serde_json::to_value(ToVisitor::Error { error }).expect("serialises");
        assert_eq!(json["error"]["error"]["client_id"], "c9");
        assert_eq!(json["error"]["error"]["code"], "invalid");
    }
}
