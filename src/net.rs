//! The one WebSocket each app keeps to Parlor: JSON frames both ways. When the link
//! drops it reconnects by itself, backing off exponentially with full jitter (capped),
//! and says so, so the app can show "reconnecting…" and resume from its last `seq`.
//! It pings every heartbeat interval and gives up on a link it has heard nothing on
//! for one and a half intervals (a server answers every ping), so a dead link is
//! noticed within two intervals even when the browser does not notice it.
//!
//! The socket is the browser's own, with `gloo` listeners and timers, rather than
//! `gloo-net`'s: that one is a stream of messages that ends on close, and reconnecting
//! with backoff, the heartbeat and the close codes that end a console's session would
//! sit on top of it anyway, with an async runtime in the widget for nothing.

use std::cell::RefCell;
use std::rc::Rc;

use gloo::events::EventListener;
use gloo::timers::callback::{Interval, Timeout};
use wasm_bindgen::JsCast;
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
    /// Called instead of reconnecting when Parlor closes the socket for good: the
    /// console's session ended ([`parlor_protocol::CLOSE_SESSION_ENDED`]) or its agent
    /// was switched off ([`parlor_protocol::CLOSE_ACCOUNT_OFF`]). Without it, the link
    /// reconnects whatever the code.
    pub on_ended: Option<Box<dyn Fn(u16)>>,
}

struct State {
    url: String,
    ws: Option<WebSocket>,
    failures: u32,
    /// Listening as long as the socket they are attached to.
    listeners: Vec<EventListener>,
    heartbeat_ms: f64,
    /// When the server was last heard, and when we last pinged (browser clock, ms).
    last_heard: f64,
    last_ping: f64,
    /// The timer checking the heartbeat, while a link is open. (Dropped from inside its
    /// own callback when the link is lost: wasm-bindgen frees a closure only once it
    /// has returned.)
    beat: Option<Interval>,
}

const PING: &str = r#""ping""#;
const PONG: &str = r#""pong""#;

/// A frame as the text a socket carries. The console writes its frames with serde; the
/// widget with the protocol's small codec (`parlor_protocol::json`), which keeps serde's
/// weight out of its download.
pub trait OutFrame {
    fn to_text(&self) -> String;
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
                listeners: Vec::new(),
                heartbeat_ms: f64::from(parlor_protocol::HEARTBEAT_SECS) * 1000.0,
                last_heard: 0.0,
                last_ping: 0.0,
                beat: None,
            })),
            handlers: Rc::new(handlers),
        };
        (socket.handlers.on_link)(Link::Connecting);
        socket.open();
        socket
    }

    /// Sends a frame now. `false` when the link is down: the caller keeps it and sends
    /// it again after the next hello.
    pub fn send(&self, frame: &impl OutFrame) -> bool {
        let json = frame.to_text();
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
        let socket = self.clone();
        let on_open = EventListener::new(&ws, "open", move |_| {
            socket.state.borrow_mut().failures = 0;
            socket.start_heartbeat();
            (socket.handlers.on_link)(Link::Open);
            (socket.handlers.on_open)(&socket);
        });
        let socket = self.clone();
        let on_message = EventListener::new(&ws, "message", move |event| {
            let text = event
                .dyn_ref::<MessageEvent>()
                .and_then(|m| m.data().as_string());
            socket.state.borrow_mut().last_heard = now_ms();
            if let Some(text) = text
                && text != PONG
            {
                (socket.handlers.on_frame)(&socket, &text);
            }
        });
        let socket = self.clone();
        let on_close = EventListener::new(&ws, "close", move |event| {
            let code = event.dyn_ref::<web_sys::CloseEvent>().map(|e| e.code());
            let for_good = matches!(
                code,
                Some(parlor_protocol::CLOSE_SESSION_ENDED | parlor_protocol::CLOSE_ACCOUNT_OFF)
            );
            match (&socket.handlers.on_ended, code) {
                (Some(ended), Some(code)) if for_good => {
                    socket.stop_heartbeat();
                    ended(code);
                }
                _ => socket.lost(),
            }
        });
        let mut state = self.state.borrow_mut();
        // The old socket's listeners go with it (a dropped listener is removed).
        state.ws = Some(ws);
        state.listeners = vec![on_open, on_message, on_close];
    }

    /// The server's heartbeat interval, from its `Welcome`.
    pub fn set_heartbeat(&self, secs: u32) {
        let ms = f64::from(secs.max(1)) * 1000.0;
        let changed = {
            let mut state = self.state.borrow_mut();
            let changed = state.heartbeat_ms != ms;
            state.heartbeat_ms = ms;
            changed
        };
        if changed && self.is_open() {
            self.start_heartbeat();
        }
    }

    /// Checks the link every half interval: pings once per interval, and drops the
    /// link when the server has been silent for one and a half.
    fn start_heartbeat(&self) {
        self.stop_heartbeat();
        let interval = {
            let mut state = self.state.borrow_mut();
            state.last_heard = now_ms();
            state.last_ping = now_ms();
            state.heartbeat_ms
        };
        let socket = self.clone();
        let beat = Interval::new((interval / 2.0) as u32, move || {
            let now = now_ms();
            let (silent, ping_due) = {
                let state = socket.state.borrow();
                (
                    now - state.last_heard > 1.5 * state.heartbeat_ms,
                    now - state.last_ping >= state.heartbeat_ms * 0.99,
                )
            };
            if silent {
                socket.lost();
            } else if ping_due {
                socket.state.borrow_mut().last_ping = now;
                let state = socket.state.borrow();
                if let Some(ws) = &state.ws {
                    let _ = ws.send_with_str(PING);
                }
            }
        });
        self.state.borrow_mut().beat = Some(beat);
    }

    fn stop_heartbeat(&self) {
        let beat = self.state.borrow_mut().beat.take();
        drop(beat);
    }

    /// The link is gone (closed, or silent too long): let go of it and try again.
    fn lost(&self) {
        self.stop_heartbeat();
        let old = {
            let mut state = self.state.borrow_mut();
            // Its listeners go first, so its close is not heard as another loss.
            state.listeners.clear();
            state.ws.take()
        };
        if let Some(old) = old {
            let _ = old.close();
        }
        (self.handlers.on_link)(Link::Reconnecting);
        self.retry_later();
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
        Timeout::new(delay as u32, move || socket.open()).forget();
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
