//! Parlor's browser apps, built from shared parts: the customer widget (`bin/widget`)
//! and the agent console (`bin/console`). Each binary links only its own app, so the
//! widget's download holds no console code. The console is a Leptos app (the `console`
//! feature); the widget is drawn by hand on the DOM and is built without that feature,
//! which keeps its first download small.

pub mod components;
#[cfg(feature = "console")]
pub mod console;
pub mod dom;
pub mod net;
pub mod widget;
