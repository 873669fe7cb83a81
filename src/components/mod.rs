//! The parts both apps show, as Leptos components: the message list, the message box,
//! a message's text with its links, and the typing line. The widget and the console
//! each link only what they use.

pub mod composer;
mod message_list;

use leptos::either::Either;
use leptos::prelude::*;
use parlor_protocol::{Segment, segments};

pub use composer::Composer;
pub use message_list::{MessageList, Viewer, initials};

/// A message body as text nodes, with links only where the protocol's rule finds them.
/// Links open in a new tab and never pass the opener or the referrer on.
#[component]
pub fn MessageBody(body: String) -> impl IntoView {
    let parts = segments(&body)
        .into_iter()
        .map(|segment| match segment {
            Segment::Text(text) => Either::Left(text.to_owned()),
            Segment::Link { text, href } => Either::Right(view! {
                <a href=href target="_blank" rel="noopener noreferrer">{text.to_owned()}</a>
            }),
        })
        .collect_view();
    view! { <span class="msg-body">{parts}</span> }
}

/// "… is typing…" under the messages while the other side types; said to screen
/// readers politely.
#[component]
pub fn TypingLine(
    /// Who is typing, as the line names them, while they do.
    #[prop(into)]
    who: Signal<Option<String>>,
) -> impl IntoView {
    view! {
        <p class="typing" aria-live="polite">
            {move || who.get().map(|who| format!("{who} is typing…"))}
        </p>
    }
}
