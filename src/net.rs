//! The one WebSocket each app keeps to Parlor: JSON frames both ways. When the link
//! drops it reconnects by itself, backing off exponentially with full jitter (capped),
//! and says so, so the app can show "reconnecting…" and resume from its last `seq`.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Serialize;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{MessageEvent, WebSocket};

/// The state of the link, for the "connecting / reconnecting" banner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    Connecting,
    Open,
    Reconnecting,
}

/// Handles one text frame from the server.
pub type FrameHandler = Box<dyn Fn(&Socket, &str)>;

/// What the app does when the link opens, a frame arrives, or the link changes.
pub struct Handlers {
    /// Called on every (re)connection: the place to say hello.
    pub on_open: Box<dyn Fn(&Socket)>,
    pub on_frame: FrameHandler,
    pub on_link: Box<dyn Fn(Link)>,
}

struct State {
    url: String,
    ws: Option<WebSocket>,
    failures: u32,
    // Kept alive as long as the socket they are attached to.
    callbacks: Vec<Closure<dyn FnMut(web_sys::Event)>>,
}

/// A reconnecting WebSocket. Cheap to clone; all clones are the same link.
#[derive(Clone)]
pub struct Socket {
    state: Rc<RefCell<State>>,
    handlers: Rc<Handlers>,
}

const FIRST_RETRY_MS: f64 = 500.0;
const MAX_RETRY_MS: f64 = 15_000.0;

/// `ws://` or `wss://` URL for `path` on the page's own host.
pub fn socket_url(path: &str) -> String {
    let location = web_sys::window().map(|w| w.location());
    let host = location
        .as_ref()
        .and_then(|l| l.host().ok())
        .unwrap_or_default();
    let secure = location
        .and_then(|l| l.protocol().ok())
        .is_some_and(|p| p == "https:");
    format!("{}://{host}{path}", if secure { "wss" } else { "ws" })
}

impl Socket {
    pub fn connect(path: &str, handlers: Handlers) -> Self {
        let socket = Self {
            state: Rc::new(RefCell::new(State {
                url: socket_url(path),
                ws: None,
                failures: 0,
                callbacks: Vec::new(),
            })),
            handlers: Rc::new(handlers),
        };
        (socket.handlers.on_link)(Link::Connecting);
        socket.open();
        socket
    }

    /// Sends a frame now. `false` when the link is down: the caller keeps it and sends
    /// it again after the next hello.
    pub fn send(&self, frame: &impl Serialize) -> bool {
        let Ok(json) = serde_json::to_string(frame) else {
            return false;
        };
        let state = self.state.borrow();
        match &state.ws {
            Some(ws) if ws.ready_state() == WebSocket::OPEN => ws.send_with_str(&json).is_ok(),
            _ => false,
        }
    }

    pub fn is_open(&self) -> bool {
        self.state
            .borrow()
            .ws
            .as_ref()
            .is_some_and(|ws| ws.ready_state() == WebSocket::OPEN)
    }

    fn open(&self) {
        let url = self.state.borrow().url.clone();
        let Ok(ws) = WebSocket::new(&url) else {
            self.retry_later();
            return;
        };
        let on_open = {
            let socket = self.clone();
            Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
                socket.state.borrow_mut().failures = 0;
                (socket.handlers.on_link)(Link::Open);
                (socket.handlers.on_open)(&socket);
            })
        };
        let on_message = {
            let socket = self.clone();
            Closure::<dyn FnMut(web_sys::Event)>::new(move |event: web_sys::Event| {
                let text = event
                    .dyn_ref::<MessageEvent>()
                    .and_then(|m| m.data().as_string());
                if let Some(text) = text {
                    (socket.handlers.on_frame)(&socket, &text);
                }
            })
        };
        let on_close = {
            let socket = self.clone();
            Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
                (socket.handlers.on_link)(Link::Reconnecting);
                socket.retry_later();
            })
        };
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        let mut state = self.state.borrow_mut();
        if let Some(old) = state.ws.replace(ws) {
            old.set_onopen(None);
            old.set_onmessage(None);
            old.set_onclose(None);
        }
        state.callbacks = vec![on_open, on_message, on_close];
    }

    fn retry_later(&self) {
        let failures = {
            let mut state = self.state.borrow_mut();
            state.failures = state.failures.saturating_add(1);
            state.failures
        };
        let ceiling = (FIRST_RETRY_MS * 2f64.powi(failures.min(16) as i32)).min(MAX_RETRY_MS);
        let delay = (js_sys::Math::random() * ceiling).max(100.0);
        let socket = self.clone();
        let retry = Closure::once_into_js(move || socket.open());
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(
                retry.unchecked_ref(),
                delay as i32,
            );
        }
    }
}

/// A fresh client-chosen message id: 16 random bytes as hex.
pub fn client_id() -> String {
    let mut bytes = [0u8; 16];
    let filled = web_sys::window()
        .and_then(|w| w.crypto().ok())
        .is_some_and(|c| c.get_random_values_with_u8_array(&mut bytes).is_ok());
    if !filled {
        bytes
            .iter_mut()
            .for_each(|b| *b = (js_sys::Math::random() * 256.0) as u8);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Milliseconds since the epoch, from the browser's clock (for display only).
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}
