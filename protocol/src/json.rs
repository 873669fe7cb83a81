//! The widget's own JSON: a small parser and writer, and the codec of the frames a widget
//! reads and writes, in exactly the form serde gives them on the server.
//!
//! Why not serde in the widget: serde's derived code is generic over every deserializer
//! and builds a visitor per type, which cost the widget's WebAssembly about 30 KB brotli,
//! nearly half its size budget. This codec is plain code over one value type, a few
//! KB. The server, the console and the tests keep serde; the tests below check that each
//! frame reads back equal across the two (`serde_json` writes, this reads, and the other
//! way round), so the two cannot drift apart unseen.
//!
//! Numbers are integers only: Parlor's frames carry ids, sequence numbers and epoch
//! milliseconds, never fractions.

use std::collections::BTreeMap;

use crate::{
    Answer, Author, CaseStatus, CaseSummary, Channel, Chat, ChatMessage, ChatState, CustomField,
    EndedBy, ErrorCode, FieldRule, Group, HEARTBEAT_SECS, PrechatFields, ProtocolError, Side,
    ToVisitor, VisitorFrame, WidgetSettings,
};

/// A JSON value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Arr(Vec<Json>),
    /// Members in the order written.
    Obj(Vec<(String, Json)>),
}

/// How deep arrays and objects may nest; the deepest frame (a welcome's message author)
/// needs seven levels.
const MAX_DEPTH: u32 = 32;

impl Json {
    /// Parses one JSON text; `None` when it is not JSON (or has a fraction in a number).
    pub fn parse(text: &str) -> Option<Self> {
        let mut parser = Parser { text, at: 0 };
        let value = parser.value(0)?;
        parser.skip_space();
        (parser.at == text.len()).then_some(value)
    }

    /// The JSON text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Self::Null => out.push_str("null"),
            Self::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Self::Int(n) => out.push_str(&n.to_string()),
            Self::Str(s) => write_string(s, out),
            Self::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Self::Obj(members) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(key, out);
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }

    /// An object from its members.
    pub fn object(members: Vec<(&str, Json)>) -> Self {
        Self::Obj(
            members
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value))
                .collect(),
        )
    }

    /// An enum value as serde writes it: `{"name":{…}}`.
    pub fn tagged(name: &str, members: Vec<(&str, Json)>) -> Self {
        Self::Obj(vec![(name.to_owned(), Self::object(members))])
    }

    /// The members of an object.
    pub fn fields(&self) -> Option<Fields<'_>> {
        match self {
            Self::Obj(members) => Some(Fields(members)),
            _ => None,
        }
    }

    /// An enum value's variant name and content: `"ping"` is `("ping", null)`,
    /// `{"send":{…}}` is `("send", {…})`.
    pub fn variant(&self) -> Option<(&str, &Json)> {
        match self {
            Self::Str(name) => Some((name, &Self::Null)),
            Self::Obj(members) if members.len() == 1 => {
                members.first().map(|(name, value)| (name.as_str(), value))
            }
            _ => None,
        }
    }
}

/// Reads a value of type `T` from JSON text.
pub fn decode<T: FromJson>(text: &str) -> Option<T> {
    T::from_json(&Json::parse(text)?)
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let b = u32::from(c) as usize;
                out.push_str("\\u00");
                out.push(char::from(HEX[b >> 4]));
                out.push(char::from(HEX[b & 15]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// Skips space, then `byte` if it is next.
    fn eat(&mut self, byte: u8) -> bool {
        self.skip_space();
        let next = self.peek() == Some(byte);
        if next {
            self.at += 1;
        }
        next
    }

    fn word(&mut self, word: &str, value: Json) -> Option<Json> {
        let rest = self.text.get(self.at..)?;
        rest.starts_with(word).then(|| {
            self.at += word.len();
            value
        })
    }

    fn value(&mut self, depth: u32) -> Option<Json> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_space();
        match self.peek()? {
            b'{' => {
                self.at += 1;
                let mut members = Vec::new();
                if !self.eat(b'}') {
                    loop {
                        self.skip_space();
                        let key = self.string()?;
                        if !self.eat(b':') {
                            return None;
                        }
                        members.push((key, self.value(depth + 1)?));
                        if self.eat(b'}') {
                            break;
                        }
                        if !self.eat(b',') {
                            return None;
                        }
                    }
                }
                Some(Json::Obj(members))
            }
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                if !self.eat(b']') {
                    loop {
                        items.push(self.value(depth + 1)?);
                        if self.eat(b']') {
                            break;
                        }
                        if !self.eat(b',') {
                            return None;
                        }
                    }
                }
                Some(Json::Arr(items))
            }
            b'"' => self.string().map(Json::Str),
            b't' => self.word("true", Json::Bool(true)),
            b'f' => self.word("false", Json::Bool(false)),
            b'n' => self.word("null", Json::Null),
            _ => self.integer(),
        }
    }

    fn integer(&mut self) -> Option<Json> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        self.text.get(start..self.at)?.parse().ok().map(Json::Int)
    }

    fn string(&mut self) -> Option<String> {
        if self.peek() != Some(b'"') {
            return None;
        }
        self.at += 1;
        let mut out = String::new();
        loop {
            let start = self.at;
            while self
                .peek()
                .is_some_and(|b| b != b'"' && b != b'\\' && b >= 0x20)
            {
                self.at += 1;
            }
            // Stopped at an ASCII byte, so on a character boundary.
            out.push_str(self.text.get(start..self.at)?);
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(out);
                }
                b'\\' => {
                    self.at += 1;
                    let escape = self.peek()?;
                    self.at += 1;
                    out.push(match escape {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.escaped_char()?,
                        _ => return None,
                    });
                }
                // A raw control character.
                _ => return None,
            }
        }
    }

    /// After `\u`: four hex digits, and a second `\uXXXX` for a surrogate pair.
    fn escaped_char(&mut self) -> Option<char> {
        let high = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&high) {
            if !self.text.get(self.at..)?.starts_with("\\u") {
                return None;
            }
            self.at += 2;
            let low = self.hex4()?;
            if !(0xDC00..0xE000).contains(&low) {
                return None;
            }
            0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
        } else {
            high
        };
        char::from_u32(code)
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.text.get(self.at..self.at + 4)?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.at += 4;
        u32::from_str_radix(digits, 16).ok()
    }
}

/// An object's members, to read a struct from.
#[derive(Clone, Copy)]
pub struct Fields<'a>(&'a [(String, Json)]);

impl Fields<'_> {
    pub fn get(&self, key: &str) -> Option<&Json> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// A field that must be there, unless its type says what missing means (`Option`).
    pub fn field<T: FromJson>(&self, key: &str) -> Option<T> {
        match self.get(key) {
            Some(value) => T::from_json(value),
            None => T::missing(),
        }
    }

    /// A field that takes `default` when missing (serde's `#[serde(default)]`).
    pub fn field_or<T: FromJson>(&self, key: &str, default: T) -> Option<T> {
        match self.get(key) {
            Some(value) => T::from_json(value),
            None => Some(default),
        }
    }

    pub fn field_or_default<T: FromJson + Default>(&self, key: &str) -> Option<T> {
        self.field_or(key, T::default())
    }
}

/// A type read from JSON as serde's derive would read it.
pub trait FromJson: Sized {
    fn from_json(json: &Json) -> Option<Self>;

    /// What an absent field of this type means: an error, except for `Option`.
    fn missing() -> Option<Self> {
        None
    }
}

/// A type written to JSON as serde's derive would write it.
pub trait ToJson {
    fn to_json(&self) -> Json;
}

impl FromJson for String {
    fn from_json(json: &Json) -> Option<Self> {
        match json {
            Json::Str(s) => Some(s.clone()),
            _ => None,
        }
    }
}

impl FromJson for i64 {
    fn from_json(json: &Json) -> Option<Self> {
        match json {
            Json::Int(n) => Some(*n),
            _ => None,
        }
    }
}

impl FromJson for u32 {
    fn from_json(json: &Json) -> Option<Self> {
        i64::from_json(json).and_then(|n| n.try_into().ok())
    }
}

impl FromJson for bool {
    fn from_json(json: &Json) -> Option<Self> {
        match json {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

impl<T: FromJson> FromJson for Option<T> {
    fn from_json(json: &Json) -> Option<Self> {
        match json {
            Json::Null => Some(None),
            json => T::from_json(json).map(Some),
        }
    }

    fn missing() -> Option<Self> {
        Some(None)
    }
}

impl<T: FromJson> FromJson for Vec<T> {
    fn from_json(json: &Json) -> Option<Self> {
        match json {
            Json::Arr(items) => items.iter().map(T::from_json).collect(),
            _ => None,
        }
    }
}

impl FromJson for BTreeMap<String, String> {
    fn from_json(json: &Json) -> Option<Self> {
        let Json::Obj(members) = json else {
            return None;
        };
        // Inserted one by one: collecting would sort first, and bring a sort's code along.
        let mut map = Self::new();
        for (key, value) in members {
            map.insert(key.clone(), String::from_json(value)?);
        }
        Some(map)
    }
}

impl ToJson for str {
    fn to_json(&self) -> Json {
        Json::Str(self.to_owned())
    }
}

impl ToJson for String {
    fn to_json(&self) -> Json {
        Json::Str(self.clone())
    }
}

impl ToJson for i64 {
    fn to_json(&self) -> Json {
        Json::Int(*self)
    }
}

impl<T: ToJson> ToJson for Option<T> {
    fn to_json(&self) -> Json {
        self.as_ref().map_or(Json::Null, T::to_json)
    }
}

impl ToJson for BTreeMap<String, String> {
    fn to_json(&self) -> Json {
        Json::Obj(self.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
    }
}

/// One field of a struct or variant being read: required (an `Option` reads as `None`
/// when absent), `= default` for the type's default when absent (serde's
/// `#[serde(default)]`), or `= (value)` for a given one.
#[doc(hidden)]
#[macro_export]
macro_rules! json_field {
    ($f:ident, $field:ident) => {
        $f.field(stringify!($field))?
    };
    ($f:ident, $field:ident = default) => {
        $f.field_or_default(stringify!($field))?
    };
    ($f:ident, $field:ident = $value:tt) => {
        $f.field_or(stringify!($field), $value)?
    };
}

/// [`FromJson`] for structs, as serde's derive reads them: each struct and its fields
/// (with what an absent one means, see [`json_field!`]).
#[macro_export]
macro_rules! read_json_structs {
    ($($ty:ident { $($field:ident $(= $absent:tt)?),* $(,)? })*) => {$(
        impl $crate::json::FromJson for $ty {
            fn from_json(json: &$crate::json::Json) -> Option<Self> {
                let f = json.fields()?;
                Some(Self { $($field: $crate::json_field!(f, $field $(= $absent)?)),* })
            }
        }
    )*};
}

/// [`FromJson`] for enums in serde's default form: a unit variant is its name
/// (`"ping"`), any other `{"name": {fields}}`. Each variant is given with that name
/// (serde's `snake_case` of it).
macro_rules! read_json_enums {
    ($($ty:ident { $($variant:ident = $name:literal $({ $($field:ident $(= $absent:tt)?),* $(,)? })?),* $(,)? })*) => {$(
        impl FromJson for $ty {
            fn from_json(json: &Json) -> Option<Self> {
                let (name, _content) = json.variant()?;
                match name {
                    $($name => read_json_enums!(@variant _content, $variant $({ $($field $(= $absent)?),* })?),)*
                    _ => None,
                }
            }
        }
    )*};
    // A unit variant is its name alone: `{"queued": …}` is not one (serde refuses it).
    (@variant $content:ident, $variant:ident) => {
        matches!($content, Json::Null).then_some(Self::$variant)
    };
    (@variant $content:ident, $variant:ident { $($field:ident $(= $absent:tt)?),* }) => {{
        let f = $content.fields()?;
        Some(Self::$variant { $($field: json_field!(f, $field $(= $absent)?)),* })
    }};
}

/// [`ToJson`] for enums in serde's default form (see [`read_json_enums!`]).
macro_rules! write_json_enums {
    ($($ty:ident { $($variant:ident = $name:literal $({ $($field:ident),* $(,)? })?),* $(,)? })*) => {$(
        impl ToJson for $ty {
            fn to_json(&self) -> Json {
                match self {
                    $(write_json_enums!(@pattern $variant $({ $($field),* })?) =>
                        write_json_enums!(@value $name $({ $($field),* })?),)*
                }
            }
        }
    )*};
    (@pattern $variant:ident) => { Self::$variant };
    (@pattern $variant:ident { $($field:ident),* }) => { Self::$variant { $($field),* } };
    (@value $name:literal) => { Json::Str($name.to_owned()) };
    (@value $name:literal { $($field:ident),* }) => {
        Json::tagged($name, vec![$((stringify!($field), $field.to_json())),*])
    };
}

read_json_enums! {
    ChatState { Queued = "queued", Active = "active", Ended = "ended" }
    Channel { Chat = "chat", Message = "message" }
    CaseStatus { New = "new", Open = "open", Pending = "pending", Resolved = "resolved" }
    FieldRule { Hidden = "hidden", Optional = "optional", Required = "required" }
    Side { Right = "right", Left = "left" }
    ErrorCode {
        Malformed = "malformed", TooLarge = "too_large", Invalid = "invalid",
        NotFound = "not_found", Conflict = "conflict", Unauthorized = "unauthorized",
        Internal = "internal", TooFast = "too_fast",
    }
    Author { System = "system", Customer = "customer" { name }, Agent = "agent" { id, name } }
    EndedBy { Customer = "customer", Timeout = "timeout", Agent = "agent" { name } }
    ToVisitor {
        Pong = "pong",
        Welcome = "welcome" {
            token, chat, groups = default, heartbeat_secs = HEARTBEAT_SECS, form = default,
            greeting = default, online = true, queue_when_offline = default,
        },
        Availability = "availability" { online },
        MessageLeft = "message_left" { case_id, client_id },
        ChatStarted = "chat_started" { chat },
        Message = "message" { message },
        State = "state" { case },
        Typing = "typing" { name },
        Queue = "queue" { position },
        Earlier = "earlier" { messages },
        Error = "error" { error },
    }
}

read_json_structs! {
    ChatMessage { case_id, seq, client_id, author, body, sent_at }
    Answer { key, label, value }
    CaseSummary {
        id, subject, customer_name, state, agent_name, created_at, ended_by, group,
        status = default, customer_email, answers = default, channel = default,
        customer_left_at,
    }
    Chat { case, messages }
    Group { id, name }
    ProtocolError { code, message, client_id }
    CustomField { key, label, required }
    // The whole struct has `#[serde(default)]`: each absent field is its default's.
    PrechatFields {
        name = (Self::default().name), email = (Self::default().email),
        subject = (Self::default().subject), group = (Self::default().group),
        custom = default,
    }
    WidgetSettings {
        title = (Self::default().title), greeting = (Self::default().greeting),
        brand_color = (Self::default().brand_color), position = default, fields = default,
        allowed_origins = default, queue_when_offline = default,
    }
}

write_json_enums! {
    VisitorFrame {
        Hello = "hello" { token, since },
        StartChat = "start_chat" {
            client_id, name, subject, body, time_zone, language, group, email, custom,
        },
        LeaveMessage = "leave_message" { client_id, name, email, subject, body, custom },
        Send = "send" { client_id, body },
        Typing = "typing",
        EndChat = "end_chat",
        LoadEarlier = "load_earlier" { before },
        Ping = "ping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn case(state: ChatState) -> CaseSummary {
        CaseSummary {
            id: 41,
            subject: "Refund \"order\" #7\n".to_owned(),
            customer_name: "Zoë ✓ 😀".to_owned(),
            state,
            agent_name: Some("Bea".to_owned()),
            created_at: 1_764_000_000_123,
            ended_by: Some(EndedBy::Agent {
                name: "Bea".to_owned(),
            }),
            group: Some("Billing".to_owned()),
            status: CaseStatus::Pending,
            customer_email: Some("zoe@example.com".to_owned()),
            answers: vec![Answer {
                key: "order".to_owned(),
                label: "Order number".to_owned(),
                value: "A-1\t2".to_owned(),
            }],
            channel: Channel::Message,
            customer_left_at: Some(1_764_000_100_000),
        }
    }

    fn message(seq: i64, author: Author) -> ChatMessage {
        ChatMessage {
            case_id: 41,
            seq,
            client_id: format!("c{seq}"),
            author,
            body: "see https://example.com/a?b=c&d \\ \u{1}".to_owned(),
            sent_at: -5,
        }
    }

    /// Every frame a widget reads, each field set to something other than its default.
    fn every_frame_to_a_visitor() -> Vec<ToVisitor> {
        let chat = Chat {
            case: case(ChatState::Active),
            messages: vec![
                message(1, Author::System),
                message(
                    2,
                    Author::Customer {
                        name: "Zoë".to_owned(),
                    },
                ),
                message(
                    3,
                    Author::Agent {
                        id: 9,
                        name: "Bea".to_owned(),
                    },
                ),
            ],
        };
        let mut settings = WidgetSettings::default();
        settings.fields.custom.push(CustomField {
            key: "plan".to_owned(),
            label: "Your plan".to_owned(),
            required: true,
        });
        settings.fields.email = FieldRule::Hidden;
        let mut ended = case(ChatState::Ended);
        ended.ended_by = Some(EndedBy::Timeout);
        ended.agent_name = None;
        ended.group = None;
        ended.customer_email = None;
        let mut queued = case(ChatState::Queued);
        queued.ended_by = Some(EndedBy::Customer);
        queued.status = CaseStatus::Resolved;
        vec![
            ToVisitor::Welcome {
                token: "t0k3n".to_owned(),
                chat: Some(chat.clone()),
                groups: vec![Group {
                    id: 3,
                    name: "Sales".to_owned(),
                }],
                heartbeat_secs: 7,
                form: settings.fields,
                greeting: "Hi!".to_owned(),
                online: false,
                queue_when_offline: true,
            },
            ToVisitor::Welcome {
                token: String::new(),
                chat: None,
                groups: Vec::new(),
                heartbeat_secs: HEARTBEAT_SECS,
                form: PrechatFields::default(),
                greeting: String::new(),
                online: true,
                queue_when_offline: false,
            },
            ToVisitor::Availability { online: true },
            ToVisitor::MessageLeft {
                case_id: i64::MAX,
                client_id: "x".to_owned(),
            },
            ToVisitor::ChatStarted { chat },
            ToVisitor::Message {
                message: message(4, Author::System),
            },
            ToVisitor::State { case: ended },
            ToVisitor::State { case: queued },
            ToVisitor::Typing {
                name: "Bea".to_owned(),
            },
            ToVisitor::Queue { position: 12 },
            ToVisitor::Earlier {
                messages: vec![message(3, Author::System)],
            },
            ToVisitor::Earlier {
                messages: Vec::new(),
            },
            ToVisitor::Pong,
            ToVisitor::Error {
                error: ProtocolError::new(ErrorCode::TooFast, "Slow down.").for_send("c9"),
            },
            ToVisitor::Error {
                error: ProtocolError::new(ErrorCode::NotFound, "No such chat."),
            },
        ]
    }

    fn every_frame_from_a_visitor() -> Vec<VisitorFrame> {
        let custom: BTreeMap<String, String> =
            [("plan".to_owned(), "Gold \"plus\"".to_owned())].into();
        vec![
            VisitorFrame::Hello {
                token: Some("t0k3n".to_owned()),
                since: 12,
            },
            VisitorFrame::Hello {
                token: None,
                since: 0,
            },
            VisitorFrame::StartChat {
                client_id: "c1".to_owned(),
                name: "Zoë".to_owned(),
                subject: "Help\u{7f}".to_owned(),
                body: "Line one\nline two 😀".to_owned(),
                time_zone: Some("Europe/Paris".to_owned()),
                language: None,
                group: Some(3),
                email: "zoe@example.com".to_owned(),
                custom: custom.clone(),
            },
            VisitorFrame::LeaveMessage {
                client_id: "c2".to_owned(),
                name: String::new(),
                email: "zoe@example.com".to_owned(),
                subject: "Later".to_owned(),
                body: "Call me \\ back".to_owned(),
                custom,
            },
            VisitorFrame::Send {
                client_id: "c3".to_owned(),
                body: "\u{0}\u{1f}\"".to_owned(),
            },
            VisitorFrame::Typing,
            VisitorFrame::EndChat,
            VisitorFrame::LoadEarlier { before: 51 },
            VisitorFrame::Ping,
        ]
    }

    #[test]
    fn every_frame_the_server_writes_reads_back_equal() {
        for frame in every_frame_to_a_visitor() {
            let text = serde_json::to_string(&frame).expect("serialises");
            assert_eq!(decode::<ToVisitor>(&text), Some(frame), "{text}");
        }
    }

    #[test]
    fn every_frame_the_widget_writes_the_server_reads_equal() {
        for frame in every_frame_from_a_visitor() {
            let text = frame.to_json().encode();
            let back: VisitorFrame = serde_json::from_str(&text).expect(&text);
            assert_eq!(back, frame);
        }
    }

    #[test]
    fn settings_read_back_equal_and_missing_fields_take_their_defaults() {
        let mut settings = WidgetSettings {
            title: "Help".to_owned(),
            greeting: String::new(),
            brand_color: "#000000".to_owned(),
            position: Side::Left,
            allowed_origins: vec!["https://shop.example.com".to_owned()],
            queue_when_offline: true,
            ..WidgetSettings::default()
        };
        settings.fields.group = FieldRule::Required;
        let text = serde_json::to_string(&settings).expect("serialises");
        assert_eq!(decode::<WidgetSettings>(&text), Some(settings));
        assert_eq!(
            decode::<WidgetSettings>(r#"{"title":"Hi","fields":{"name":"hidden"}}"#),
            serde_json::from_str(r#"{"title":"Hi","fields":{"name":"hidden"}}"#).ok()
        );
    }

    #[test]
    fn frames_missing_a_required_field_or_of_an_unknown_kind_are_refused() {
        for text in [
            r#"{"typing":{}}"#,
            r#"{"queue":{"position":-1}}"#,
            r#"{"message":{"message":{"case_id":1,"seq":1,"client_id":"c","author":"system","body":"b"}}}"#,
            r#"{"shout":{"name":"x"}}"#,
            r#"{"typing":{"name":"a"},"queue":{"position":1}}"#,
            r#""welcome""#,
            r#"{"queue":{"position":1.5}}"#,
            r#"{"state":{"case":{"id":"1"}}}"#,
        ] {
            assert_eq!(decode::<ToVisitor>(text), None, "{text}");
        }
    }

    #[test]
    fn the_parser_refuses_what_is_not_json() {
        for text in [
            "",
            " ",
            "{",
            "[1,]",
            "{\"a\"}",
            "{\"a\":1,}",
            "[1 2]",
            "tru",
            "nul",
            "\"abc",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"a\nb\"",
            "1e5",
            "-",
            "1 2",
            "{a:1}",
            "'a'",
            "[]]",
        ] {
            assert_eq!(Json::parse(text), None, "{text:?}");
        }
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        assert_eq!(Json::parse(&deep), None, "nesting deeper than any frame");
    }

    #[test]
    fn the_parser_reads_escapes_space_and_nesting() {
        let json = Json::parse(
            " { \"a\" : [ true , false , null , -12 , \"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\" ] , \"b\" : { } } ",
        );
        assert_eq!(
            json,
            Some(Json::Obj(vec![
                (
                    "a".to_owned(),
                    Json::Arr(vec![
                        Json::Bool(true),
                        Json::Bool(false),
                        Json::Null,
                        Json::Int(-12),
                        Json::Str("\"\\/\u{8}\u{c}\n\r\té😀".to_owned()),
                    ])
                ),
                ("b".to_owned(), Json::Obj(Vec::new())),
            ]))
        );
    }

    proptest! {
        #[test]
        fn any_text_survives_both_ways(text in any::<String>()) {
            let ours = Json::Str(text.clone()).encode();
            prop_assert_eq!(serde_json::from_str::<String>(&ours).ok(), Some(text.clone()));
            let theirs = serde_json::to_string(&text).expect("serialises");
            prop_assert_eq!(Json::parse(&theirs), Some(Json::Str(text)));
        }

        #[test]
        fn any_integer_survives_both_ways(n in any::<i64>()) {
            prop_assert_eq!(Json::parse(&Json::Int(n).encode()), Some(Json::Int(n)));
            prop_assert_eq!(Json::parse(&n.to_string()), Some(Json::Int(n)));
        }
    }
}
