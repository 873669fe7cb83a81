//! Parts shared by the widget and the console.

mod composer;
mod message_list;

pub use composer::Composer;
pub use message_list::{MessageList, Viewer};
