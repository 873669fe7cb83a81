use std::cell::{Cell, RefCell};
use std::rc::Rc;

use parlor_protocol::{
    AgentId, Author, CaseId, ChatMessage, Millis, Segment, Seq, Transcript, segments,
};
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

/// Whether two messages are by the same person (a run shows its author once).
fn same_author(a: &Author, b: &Author) -> bool {
    match (a, b) {
        (Author::Customer { .. }, Author::Customer { .. }) => true,
        (Author::Agent { id: x, .. }, Author::Agent { id: y, .. }) => x == y,
        _ => false,
    }
}

/// Up to two initials of a name, for its avatar: "Grace Hopper" → "GH". They are shown
/// in capitals by CSS (`text-transform`), which spares the widget Unicode's case tables.
pub fn initials(name: &str) -> String {
    name.split_whitespace()
        .filter_map(|word| word.chars().find(|c| !c.is_ascii_punctuation()))
        .take(2)
        .collect()
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
    /// When it was sent (people's stored lines only).
    sent_at: Option<Millis>,
    /// By the same person as the line before: the author and avatar are not repeated.
    continued: bool,
}

fn lines(transcript: &Transcript, viewer: Viewer) -> Vec<Line<'_>> {
    let mut before: Option<&Author> = None;
    let stored = transcript.messages().iter().map(move |m| {
        let continued = before.is_some_and(|b| same_author(b, &m.author));
        before = Some(&m.author);
        Line {
            key: LineKey::Stored(m.case_id, m.seq),
            class: class_of(m, viewer),
            author: author_of(m),
            body: &m.body,
            status: None,
            // Parlor's own lines ("… joined the chat") carry no time of their own.
            sent_at: (m.author != Author::System).then_some(m.sent_at),
            continued,
        }
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
        sent_at: None,
        continued: true,
    });
    stored.chain(pending).collect()
}

/// A line on the page, with what it was drawn from.
struct Shown {
    key: LineKey,
    status: Option<String>,
    continued: bool,
    item: Element,
}

/// `sent_at` as the time of day ("14:05", local) and as the full local date and time
/// for hovering.
fn clock(sent_at: Millis) -> (String, String, String) {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(sent_at as f64));
    let short = format!("{:02}:{:02}", date.get_hours(), date.get_minutes());
    let language = web_sys::window()
        .and_then(|w| w.navigator().language())
        .unwrap_or_else(|| "en".to_owned());
    let options = wasm_bindgen::JsValue::UNDEFINED;
    let full = String::from(date.to_locale_string(&language, &options));
    (short, full, String::from(date.to_iso_string()))
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
    if line.continued {
        let _ = item.class_list().add_1("msg-continued");
    }
    if let LineKey::Stored(_, seq) = line.key {
        dom::set_attr(&item, "data-seq", &seq.to_string());
    }
    let avatar = dom::text_el("span", "msg-avatar", &initials(line.author))?;
    dom::set_attr(&avatar, "aria-hidden", "true");
    let author = dom::text_el("span", "msg-author", line.author)?;
    let body = body_el(line.body)?;
    dom::append(&item, &[&avatar, &author, &body]);
    if let Some(sent_at) = line.sent_at {
        let (short, full, iso) = clock(sent_at);
        let time = dom::text_el("time", "msg-time", &short)?;
        dom::set_attr(&time, "datetime", &iso);
        dom::set_attr(&time, "title", &full);
        dom::append(&item, &[&time]);
    }
    if let Some(status) = &line.status {
        let status = dom::text_el("span", "msg-status", status)?;
        dom::append(&item, &[&status]);
    }
    Some(item)
}

/// What the "Earlier messages" button asks for: the page before this `seq`.
pub type OnEarlier = Box<dyn Fn(Seq)>;

const EARLIER: &str = "Earlier messages";

/// The first line of the list while the chat has messages before those held: a button
/// that asks for the page before them.
struct EarlierLine {
    item: Element,
    button: web_sys::HtmlButtonElement,
    /// The first `seq` held: the button asks for what comes before it.
    first: Rc<Cell<Seq>>,
}

impl EarlierLine {
    fn create(on_earlier: OnEarlier) -> Option<Self> {
        let item = dom::el("li", "msg-earlier")?;
        let button: web_sys::HtmlButtonElement = dom::typed("button", "")?;
        button.set_type("button");
        button.set_text_content(Some(EARLIER));
        dom::append(&item, &[&button]);
        dom::set_hidden(&item, true);
        let first = Rc::new(Cell::new(0));
        dom::listen::<web_sys::Event>(&button, "click", {
            let first = first.clone();
            let button = button.clone();
            move |_| {
                // Until the page arrives (the next `show`): one request per click.
                button.set_disabled(true);
                button.set_text_content(Some("Loading…"));
                on_earlier(first.get());
            }
        });
        Some(Self {
            item,
            button,
            first,
        })
    }

    fn show(&self, transcript: &Transcript) {
        dom::set_hidden(&self.item, !transcript.has_earlier());
        // A page arrived (the first line moved): the button asks again.
        if self.first.replace(transcript.first_seq()) != transcript.first_seq() {
            self.button.set_disabled(false);
            dom::set_text(&self.button, EARLIER);
        }
    }
}

/// A chat's messages in an `<ol>`, oldest first, then the viewer's own messages still
/// on their way. Every text is a text node: nothing a person writes becomes markup.
/// Showing a changed transcript touches only the lines that changed: a new message adds
/// one item and the rest keep their nodes (and whatever the reader selected in them).
/// A long chat comes a page at a time: while there are messages before those held, the
/// list starts with an "Earlier messages" button, and a page added above keeps what
/// the reader sees where it was.
pub struct Messages {
    list: Element,
    viewer: Viewer,
    shown: RefCell<Vec<Shown>>,
    earlier: Option<EarlierLine>,
}

impl Messages {
    /// Fills `list` (an `<ol>`) from now on; whatever it held goes. (A Leptos view
    /// rebuilt in place for another chat hands over the same `<ol>`.) Without
    /// `on_earlier`, only the messages held are shown.
    pub fn new(list: Element, viewer: Viewer, on_earlier: Option<OnEarlier>) -> Self {
        list.set_text_content(None);
        let earlier = on_earlier.and_then(EarlierLine::create);
        if let Some(line) = &earlier {
            dom::append(&list, &[&line.item]);
        }
        Self {
            list,
            viewer,
            shown: RefCell::new(Vec::new()),
            earlier,
        }
    }

    /// A new `<ol class="messages">`, filled from now on.
    pub fn create(viewer: Viewer, on_earlier: Option<OnEarlier>) -> Option<Self> {
        let list = dom::el("ol", "messages")?;
        dom::set_attr(&list, "aria-live", "polite");
        dom::set_attr(&list, "aria-label", "Messages");
        Some(Self::new(list, viewer, on_earlier))
    }

    pub fn element(&self) -> &Element {
        &self.list
    }

    /// Brings the list up to date with `transcript`. The newest line is kept in view,
    /// unless the newest line is the same as before (an earlier page came): then what
    /// the reader sees stays where it was.
    pub fn show(&self, transcript: &Transcript) {
        if let Some(line) = &self.earlier {
            line.show(transcript);
        }
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
                .filter(|&at| old[at].status == line.status && old[at].continued == line.continued);
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
                continued: line.continued,
                item,
            });
        }
        let unchanged = next.len() == old.len() && kept.iter().all(|&k| k);
        let same_end = !old.is_empty() && old.last().map(|s| &s.key) == next.last().map(|s| &s.key);
        *self.shown.borrow_mut() = next;
        if unchanged {
            return;
        }
        // Lines no longer shown go; then each line is put in its place, moving nothing
        // that already is.
        let from_bottom = self.list.scroll_height() - self.list.scroll_top();
        for (gone, _) in old.iter().zip(&kept).filter(|(_, kept)| !**kept) {
            gone.item.remove();
        }
        let mut cursor = match &self.earlier {
            Some(line) => line.item.next_sibling(),
            None => self.list.first_child(),
        };
        for line in self.shown.borrow().iter() {
            let item: &web_sys::Node = &line.item;
            if cursor.as_ref() == Some(item) {
                cursor = item.next_sibling();
            } else {
                let _ = self.list.insert_before(item, cursor.as_ref());
            }
        }
        let bottom = self.list.scroll_height();
        self.list.set_scroll_top(if same_end {
            bottom - from_bottom
        } else {
            bottom
        });
    }
}

#[cfg(test)]
mod tests {
    use super::initials;

    #[test]
    fn initials_take_the_first_letter_of_the_first_two_words() {
        assert_eq!(initials("Grace Hopper"), "GH");
        assert_eq!(initials("ada"), "a");
        assert_eq!(initials("  Zoë  de la Cruz "), "Zd");
        assert_eq!(initials("(Bob) Smith"), "BS");
        assert_eq!(initials(""), "");
    }
}

#[cfg(feature = "console")]
pub use leptos_list::MessageList;

#[cfg(feature = "console")]
mod leptos_list {
    use leptos::html::Ol;
    use leptos::prelude::*;
    use parlor_protocol::{Seq, Transcript};

    use super::{Messages, Viewer};

    /// The console's message list: the shared [`Messages`], following a transcript
    /// signal.
    #[component]
    pub fn MessageList(
        /// The chat to show.
        #[prop(into)]
        transcript: Signal<Transcript>,
        viewer: Viewer,
        /// Asks for the page before this `seq`.
        on_earlier: Callback<Seq>,
    ) -> impl IntoView {
        let list = NodeRef::<Ol>::new();
        let messages = StoredValue::new_local(None::<Messages>);
        Effect::new(move |_| {
            let Some(ol) = list.get() else {
                return;
            };
            messages.update_value(|messages| {
                let messages = messages.get_or_insert_with(|| {
                    let ask = Box::new(move |before| on_earlier.run(before));
                    Messages::new(ol.into(), viewer, Some(ask))
                });
                transcript.with(|t| messages.show(t));
            });
        });
        view! { <ol class="messages" node_ref=list aria-live="polite" aria-label="Messages"></ol> }
    }
}
