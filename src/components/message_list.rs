use std::cell::RefCell;

use parlor_protocol::{AgentId, Author, CaseId, ChatMessage, Segment, Seq, Transcript, segments};
use web_sys::Element;

use crate::dom;

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

fn author_of(message: &ChatMessage) -> &str {
    match &message.author {
        Author::Customer { name } | Author::Agent { name, .. } => name,
        Author::System => "",
    }
}

/// Which line a list item shows: a stored message (by its case, as one list may show
/// one chat and then another), or one of the viewer's own still on its way (by its
/// client id).
#[derive(Clone, Debug, PartialEq)]
enum LineKey {
    Stored(CaseId, Seq),
    Pending(String),
}

/// One line as it should look. A line's author and body never change; its status
/// ("Sending…", or why it was not sent) may.
struct Line<'a> {
    key: LineKey,
    class: &'static str,
    author: &'a str,
    body: &'a str,
    status: Option<String>,
}

fn lines(transcript: &Transcript, viewer: Viewer) -> Vec<Line<'_>> {
    let stored = transcript.messages().iter().map(|m| Line {
        key: LineKey::Stored(m.case_id, m.seq),
        class: class_of(m, viewer),
        author: author_of(m),
        body: &m.body,
        status: None,
    });
    let pending = transcript.pending().iter().map(|p| Line {
        key: LineKey::Pending(p.client_id.clone()),
        class: "msg msg-mine msg-pending",
        author: "",
        body: &p.body,
        status: Some(match &p.failed {
            Some(why) => format!("Not sent: {why}"),
            None => "Sending…".to_owned(),
        }),
    });
    stored.chain(pending).collect()
}

/// A line on the page, with what it was drawn from.
struct Shown {
    key: LineKey,
    status: Option<String>,
    item: Element,
}

/// A message body as text nodes, with links only where the protocol's rule finds them.
/// Links open in a new tab and never pass the opener or the referrer on.
fn body_el(body: &str) -> Option<Element> {
    let span = dom::el("span", "msg-body")?;
    for segment in segments(body) {
        match segment {
            Segment::Text(text) => {
                let _ = span.append_with_str_1(text);
            }
            Segment::Link { text, href } => {
                let link = dom::text_el("a", "", text)?;
                dom::set_attr(&link, "href", &href);
                dom::set_attr(&link, "target", "_blank");
                dom::set_attr(&link, "rel", "noopener noreferrer");
                dom::append(&span, &[&link]);
            }
        }
    }
    Some(span)
}

fn item_el(line: &Line<'_>) -> Option<Element> {
    let item = dom::el("li", line.class)?;
    if let LineKey::Stored(_, seq) = line.key {
        dom::set_attr(&item, "data-seq", &seq.to_string());
    }
    let author = dom::text_el("span", "msg-author", line.author)?;
    let body = body_el(line.body)?;
    dom::append(&item, &[&author, &body]);
    if let Some(status) = &line.status {
        let status = dom::text_el("span", "msg-status", status)?;
        dom::append(&item, &[&status]);
    }
    Some(item)
}

/// A chat's messages in an `<ol>`, oldest first, then the viewer's own messages still
/// on their way. Every text is a text node: nothing a person writes becomes markup.
/// Showing a changed transcript touches only the lines that changed: a new message adds
/// one item and the rest keep their nodes (and whatever the reader selected in them).
pub struct Messages {
    list: Element,
    viewer: Viewer,
    shown: RefCell<Vec<Shown>>,
}

impl Messages {
    /// Fills `list` (an `<ol>`) from now on; whatever it held goes. (A Leptos view
    /// rebuilt in place for another chat hands over the same `<ol>`.)
    pub fn new(list: Element, viewer: Viewer) -> Self {
        list.set_text_content(None);
        Self {
            list,
            viewer,
            shown: RefCell::new(Vec::new()),
        }
    }

    /// A new `<ol class="messages">`, filled from now on.
    pub fn create(viewer: Viewer) -> Option<Self> {
        let list = dom::el("ol", "messages")?;
        dom::set_attr(&list, "aria-live", "polite");
        dom::set_attr(&list, "aria-label", "Messages");
        Some(Self::new(list, viewer))
    }

    pub fn element(&self) -> &Element {
        &self.list
    }

    /// Brings the list up to date with `transcript`, and keeps the newest line in view.
    pub fn show(&self, transcript: &Transcript) {
        let old = std::mem::take(&mut *self.shown.borrow_mut());
        let mut kept = vec![false; old.len()];
        let mut next = Vec::new();
        // Lines keep their order, so each old line is looked for from where the last
        // one was found.
        let mut from = 0;
        for line in lines(transcript, self.viewer) {
            let same = old[from..]
                .iter()
                .position(|s| s.key == line.key)
                .map(|at| from + at)
                .filter(|&at| old[at].status == line.status);
            let item = match same {
                Some(at) => {
                    from = at + 1;
                    kept[at] = true;
                    old[at].item.clone()
                }
                None => match item_el(&line) {
                    Some(item) => item,
                    None => continue,
                },
            };
            next.push(Shown {
                key: line.key,
                status: line.status,
                item,
            });
        }
        let unchanged = next.len() == old.len() && kept.iter().all(|&k| k);
        *self.shown.borrow_mut() = next;
        if unchanged {
            return;
        }
        // Lines no longer shown go; then each line is put in its place, moving nothing
        // that already is.
        for (gone, _) in old.iter().zip(&kept).filter(|(_, kept)| !**kept) {
            gone.item.remove();
        }
        let mut cursor = self.list.first_child();
        for line in self.shown.borrow().iter() {
            let item: &web_sys::Node = &line.item;
            if cursor.as_ref() == Some(item) {
                cursor = item.next_sibling();
            } else {
                let _ = self.list.insert_before(item, cursor.as_ref());
            }
        }
        self.list.set_scroll_top(self.list.scroll_height());
    }
}

#[cfg(feature = "console")]
pub use leptos_list::MessageList;

#[cfg(feature = "console")]
mod leptos_list {
    use leptos::html::Ol;
    use leptos::prelude::*;
    use parlor_protocol::Transcript;

    use super::{Messages, Viewer};

    /// The console's message list: the shared [`Messages`], following a transcript
    /// signal.
    #[component]
    pub fn MessageList(
        /// The chat to show.
        #[prop(into)]
        transcript: Signal<Transcript>,
        viewer: Viewer,
    ) -> impl IntoView {
        let list = NodeRef::<Ol>::new();
        let messages = StoredValue::new_local(None::<Messages>);
        Effect::new(move |_| {
            let Some(ol) = list.get() else {
                return;
            };
            messages.update_value(|messages| {
                let messages = messages.get_or_insert_with(|| Messages::new(ol.into(), viewer));
                transcript.with(|t| messages.show(t));
            });
        });
        view! { <ol class="messages" node_ref=list aria-live="polite" aria-label="Messages"></ol> }
    }
}
