//! The widget's ties to the page around it: the settings `widget.js` passes in the
//! frame's URL fragment, messages to the host page, and where the visitor token is kept.

use std::collections::BTreeMap;

use gloo::events::EventListener;
use parlor_protocol::json::{self, Json, ToJson};
use parlor_protocol::{CaseId, Millis, WidgetSettings};
use wasm_bindgen::JsCast;
use wasm_bindgen::JsValue;

const TOKEN_KEY: &str = "parlor.visitor";

/// One value from the frame URL's fragment (`#host=…&title=…`).
pub fn fragment_param(name: &str) -> Option<String> {
    let hash = web_sys::window()?.location().hash().ok()?;
    let params = web_sys::UrlSearchParams::new_with_str(hash.trim_start_matches('#')).ok()?;
    params.get(name).filter(|v| !v.is_empty())
}

/// What the page's `Parlor('on', name, fn)` listeners get; only the fields of the event.
#[derive(Default)]
pub struct EventDetail<'a> {
    pub case_id: CaseId,
    pub author: Option<&'a str>,
    pub name: Option<&'a str>,
    pub body: Option<&'a str>,
    pub sent_at: Option<Millis>,
    pub ended_by: Option<&'a str>,
}

impl EventDetail<'_> {
    /// As the page's JavaScript names them, leaving out what the event does not have.
    fn to_json(&self) -> Json {
        let texts = [
            ("author", self.author),
            ("name", self.name),
            ("body", self.body),
            ("endedBy", self.ended_by),
        ];
        let mut members = vec![("caseId", Json::Int(self.case_id))];
        members.extend(
            texts
                .into_iter()
                .filter_map(|(key, v)| Some((key, v?.to_json()))),
        );
        if let Some(at) = self.sent_at {
            members.push(("sentAt", Json::Int(at)));
        }
        Json::object(members)
    }
}

/// What the parent window may tell the panel: the loader's `hello` (with the visitor
/// token it keeps), `identify` and `opened`, or the console's `preview` with the settings
/// being edited.
pub struct FromParent {
    pub parlor: String,
    pub token: Option<String>,
    pub visitor: BTreeMap<String, String>,
    pub settings: Option<WidgetSettings>,
}

parlor_protocol::read_json_structs! {
    FromParent { parlor, token, visitor = default, settings }
}

/// Tells the host page's loader something (`ready`, `close`). Sent only to the origin
/// that embedded the widget, never to `*`.
pub fn tell_host(kind: &str) {
    post_to_host(vec![("parlor", kind.to_json())]);
}

/// An event for the page's `Parlor('on', name, fn)` listeners, with its detail.
pub fn host_event(name: &str, detail: EventDetail<'_>) {
    post_to_host(vec![
        ("parlor", "event".to_json()),
        ("name", name.to_json()),
        ("detail", detail.to_json()),
    ]);
}

/// Posts `{parlor: …, …}` to the page that embedded the widget.
fn post_to_host(message: Vec<(&str, Json)>) {
    let Some(origin) = fragment_param("host") else {
        return;
    };
    let Some(window) = web_sys::window() else {
        return;
    };
    let Ok(Some(parent)) = window.parent() else {
        return;
    };
    if let Ok(message) = js_sys::JSON::parse(&Json::object(message).encode()) {
        let _ = parent.post_message(&message, &origin);
    }
}

/// Calls `handle` with every message the parent window sends whose origin is `from`
/// (the host page for the loader's messages, Parlor itself for the console's preview):
/// anything else is ignored.
pub fn listen_to_parent(from: String, handle: impl Fn(FromParent) + 'static) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let parent = window.parent().ok().flatten();
    let listener = EventListener::new(&window, "message", move |event| {
        let Some(event) = event.dyn_ref::<web_sys::MessageEvent>() else {
            return;
        };
        let from_parent = match (&parent, event.source()) {
            (Some(parent), Some(source)) => JsValue::from(parent.clone()) == JsValue::from(source),
            _ => false,
        };
        if !from_parent || event.origin() != from {
            return;
        }
        let json = js_sys::JSON::stringify(&event.data())
            .ok()
            .and_then(|s| s.as_string())
            .and_then(|s| json::decode(&s));
        if let Some(json) = json {
            handle(json);
        }
    });
    // Listens for the page's whole life.
    listener.forget();
}

/// Puts the keyboard in the panel's first field that shows (the form's, or the
/// composer) when the visitor opens it.
pub fn focus_first_field() {
    let Some(fields) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.query_selector_all("input, textarea, select").ok())
    else {
        return;
    };
    let shown = (0..fields.length())
        .filter_map(|i| fields.item(i)?.dyn_into::<web_sys::HtmlElement>().ok())
        .find(|field| field.offset_parent().is_some());
    if let Some(field) = shown {
        let _ = field.focus();
    }
}

/// The page's own origin (`https://parlor.example.com`).
pub fn own_origin() -> Option<String> {
    web_sys::window()?.location().origin().ok()
}

/// Whether the widget runs inside a host page (and so has a close button).
pub fn embedded() -> bool {
    fragment_param("host").is_some()
}

thread_local! {
    /// The token this page has, once it has one: what a reconnect says hello with.
    static TOKEN: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// The visitor token: only ever one Parlor issued to this browser. On a host page the
/// loader keeps it, in the page's own storage (browsers that block storage in
/// third-party frames, such as Safari or Chrome without third-party cookies, give this
/// frame none that lasts), and hands it over by `postMessage` after the handshake
/// ([`keep_token`]); `Parlor('shutdown')` forgets it there, and so forgets the visitor.
/// Never from the frame's URL: a link with a token in it would make whoever opens it
/// chat under a token its sender knows. The frame's own storage is used only when the
/// widget is opened on its own. Once the server has answered, the token it gave is kept
/// in memory for reconnects.
pub fn load_token() -> Option<String> {
    TOKEN
        .with_borrow(Clone::clone)
        .or_else(|| own_storage()?.get_item(TOKEN_KEY).ok().flatten())
}

/// The token the loader handed over (checked by the loader's origin, see
/// [`listen_to_parent`]).
pub fn keep_token(token: Option<String>) {
    TOKEN.with_borrow_mut(|kept| *kept = token);
}

pub fn save_token(token: &str) {
    TOKEN.with_borrow_mut(|kept| *kept = Some(token.to_owned()));
    if let Some(storage) = own_storage() {
        let _ = storage.set_item(TOKEN_KEY, token);
    }
    post_to_host(vec![
        ("parlor", "token".to_json()),
        ("token", token.to_json()),
    ]);
}

/// This frame's storage, when the widget runs on its own rather than on a host page.
/// Straight from `web_sys` rather than `gloo-storage`, which throws where a browser
/// blocks storage and stores values as JSON through serde (the token is one string).
fn own_storage() -> Option<web_sys::Storage> {
    if embedded() {
        return None;
    }
    web_sys::window()?.local_storage().ok().flatten()
}

/// The browser's time zone and language, for the agent's approximate location.
pub fn time_zone_and_language() -> (Option<String>, Option<String>) {
    let options = js_sys::Intl::DateTimeFormat::new(&js_sys::Array::new(), &js_sys::Object::new())
        .resolved_options();
    let zone = js_sys::Reflect::get(&options, &"timeZone".into())
        .ok()
        .and_then(|v| v.as_string());
    let language = web_sys::window().and_then(|w| w.navigator().language());
    (zone, language)
}
