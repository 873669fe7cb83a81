//! Parlor's wire protocol: the typed frames a widget or a console exchanges with the
//! server over its one WebSocket, the bodies of the HTTP API, and the pure rules for
//! what a valid chat text is. No I/O: this crate compiles to native and to wasm, and
//! both sides of every socket use the same types.
//!
//! A frame is JSON named by its kind: `{"send":{"client_id":"…","body":"…"}}`, or just
//! `"ping"` for a frame without fields. (Serde's default enum form: it parses without
//! buffering, which keeps the widget's WebAssembly small.) Every chat message carries the
//! server-assigned per-case sequence number `seq` and the sender's `client_id`, so a
//! client that reconnects asks for what came after the last `seq` it holds, and a
//! retried send (same `client_id`) is answered with the message already stored.

mod flatten;
mod frames;
pub mod json;
mod links;
mod switch;
mod text;
mod transcript;
mod widget;

pub use flatten::flatten_markdown;
pub use frames::*;
pub use links::{Segment, segments};
pub use switch::RoutingSwitch;
pub use text::*;
pub use transcript::*;
pub use widget::*;
