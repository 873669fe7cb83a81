use leptos::either::Either;
use leptos::html::Ol;
use leptos::prelude::*;
use parlor_protocol::{AgentId, Author, ChatMessage, Segment, Seq, Transcript, segments};

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
            Segment::Text(text) => Either::Left(text.to_owned()),
            Segment::Link { text, href } => Either::Right(view! {
                <a href=href target="_blank" rel="noopener noreferrer">{text.to_owned()}</a>
            }),
        })
        .collect_view();
    view! { <span class="msg-body">{parts}</span> }
}

/// One line of the list: a stored message, or one of the viewer's own still on its way.
struct Line {
    class: &'static str,
    author: String,
    body: String,
    seq: Option<Seq>,
    /// "Sending…", or why it was not sent.
    status: Option<String>,
}

fn lines(transcript: &Transcript, viewer: Viewer) -> Vec<Line> {
    let stored = transcript.messages().iter().map(|m| Line {
        class: class_of(m, viewer),
        author: label_of(m),
        body: m.body.clone(),
        seq: Some(m.seq),
        status: None,
    });
    let pending = transcript.pending().iter().map(|p| Line {
        class: "msg msg-mine msg-pending",
        author: String::new(),
        body: p.body.clone(),
        seq: None,
        status: Some(match &p.failed {
            Some(why) => format!("Not sent: {why}"),
            None => "Sending…".to_owned(),
        }),
    });
    stored.chain(pending).collect()
}

/// A chat's messages, oldest first, then the viewer's own messages still on their way.
/// Every text is a text node: nothing a person writes becomes markup. The list is
/// updated in place (a new message adds one item; the rest keep their nodes).
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
    let items = move || {
        transcript
            .with(|t| lines(t, viewer))
            .into_iter()
            .map(|line| {
                view! {
                    <li class=line.class data-seq=line.seq>
                        <span class="msg-author">{line.author}</span>
                        <MessageBody body=line.body/>
                        {line.status.map(|status| view! { <span class="msg-status">{status}</span> })}
                    </li>
                }
            })
            .collect_view()
    };
    view! {
        <ol class="messages" node_ref=list aria-live="polite" aria-label="Messages">
            {items}
        </ol>
    }
}
