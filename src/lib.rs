//! Parlor's browser apps, built from shared parts: the customer widget (`bin/widget`)
//! and the agent console (`bin/console`). Each binary links only its own app, so the
//! widget's download holds no console code.

pub mod components;
pub mod console;
pub mod net;
pub mod widget;
