//! Parts shared by the widget and the console: the message list, drawn by hand so the
//! widget needs no Leptos (the console's `MessageList` wraps it), and the message box's
//! rules (the console's `Composer` is a Leptos component; the widget draws its own).

pub mod composer;
mod message_list;

#[cfg(feature = "console")]
pub use composer::Composer;
#[cfg(feature = "console")]
pub use message_list::MessageList;
pub use message_list::{Messages, Viewer};
