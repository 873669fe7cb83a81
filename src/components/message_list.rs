use leptos::html::Ol;
use leptos::prelude::*;
use parlor_protocol::{AgentId, Author, ChatMessage, Segment, Transcript, segments};

/// Who is looking at the transcript: their own messages sit on the right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Viewer {
    Customer,
    /// An agent: their own messages are theirs; other agents' are not.
    Agent(AgentId),
}

fn class_of(message: &ChatMessage, viewer: Viewer) -> &'static str {
    match (&message.author, viewer) {
        (Author::System, _) => "msg msg-system",
        (Author::Customer { .. }, Viewer::Customer) => "msg msg-mine",
        (Author::Agent { id, .. }, Viewer::Agent(me)) if *id == me => "msg msg-mine",
        (Author::Customer { .. }, Viewer::Agent(_)) => "msg msg-theirs msg-customer",
        (Author::Agent { .. }, _) => "msg msg-theirs msg-agent",
    }
}

fn label_of(message: &ChatMessage) -> String {
    match &message.author {
        Author::Customer { name } | Author::Agent { name, .. } => name.clone(),
        Author::System => String::new(),
    }
}

/// A message body as text nodes, with links only where the protocol's rule finds them.
/// Links open in a new tab and never pass the opener or the referrer on.
#[component]
pub fn MessageBody(body: String) -> impl IntoView {
    let parts = segments(&body)
        .into_iter()
        .map(|segment| match segment {
            Segment::Text(text) => text.to_owned().into_any(),
            Segment::Link { text, href } => view! {
                <a href=href target="_blank" rel="noopener noreferrer">{text.to_owned()}</a>
            }
            .into_any(),
        })
        .collect_view();
    view! { <span class="msg-body">{parts}</span> }
}

/// A chat's messages, oldest first, then the viewer's own messages still on their way.
/// Every text is a text node: nothing a person writes becomes markup.
#[component]
pub fn MessageList(
    /// The chat to show.
    #[prop(into)]
    transcript: Signal<Transcript>,
    viewer: Viewer,
) -> impl IntoView {
    let list = NodeRef::<Ol>::new();
    // Keep the newest message in view.
    Effect::new(move |_| {
        transcript.track();
        if let Some(list) = list.get() {
            list.set_scroll_top(list.scroll_height());
        }
    });
    view! {
        <ol class="messages" node_ref=list aria-live="polite" aria-label="Messages">
            <For
                each=move || transcript.with(|t| t.messages().to_vec())
                key=|m| m.seq
                children=move |m| {
                    let label = label_of(&m);
                    let class = class_of(&m, viewer);
                    view! {
                        <li class=class data-seq=m.seq>
                            <span class="msg-author">{label}</span>
                            <MessageBody body=m.body/>
                        </li>
                    }
                }
            />
            <For
                each=move || transcript.with(|t| t.pending().to_vec())
                key=|p| (p.client_id.clone(), p.failed.clone())
                children=move |p| {
                    let status = match &p.failed {
                        Some(why) => format!("Not sent: {why}"),
                        None => "Sending…".to_owned(),
                    };
                    view! {
                        <li class="msg msg-mine msg-pending">
                            <span class="msg-body">{p.body}</span>
                            <span class="msg-status">{status}</span>
                        </li>
                    }
                }
            />
        </ol>
    }
}
