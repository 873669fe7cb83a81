//! Parlor's browser apps, one Leptos single-page app each, built from shared
//! components: the customer widget (`bin/widget`) and the agent console
//! (`bin/console`). Each binary links only what it uses, so the widget's download holds
//! no console code.

pub mod components;
pub mod console;
pub mod net;
pub mod widget;
