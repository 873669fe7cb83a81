//! A chat's messages, as both apps show them: oldest first, then the viewer's own
//! messages still on their way. The list is keyed, so a new message adds one item and
//! the lines already shown keep their nodes (and whatever the reader selected in them).
//! Every text is a text node: nothing a person writes becomes markup.

use leptos::html::Ol;
use leptos::prelude::*;
use parlor_protocol::{AgentId, Author, CaseId, ChatMessage, Millis, Seq, Transcript};

use super::MessageBody;

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
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum LineKey {
    Stored(CaseId, Seq),
    Pending(String),
}

/// What an item is drawn from, and so its key in the list: a line whose status
/// ("Sending…", or why it was not sent) or place in a run changes is drawn again; its
/// author and body never change.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct LineId {
    key: LineKey,
    status: Option<String>,
    /// By the same person as the line before: the author and avatar are not repeated.
    continued: bool,
}

/// One line as it should look.
#[derive(Clone)]
struct Line {
    id: LineId,
    class: &'static str,
    author: String,
    body: String,
    /// When it was sent (people's stored lines only).
    sent_at: Option<Millis>,
}

fn lines(transcript: &Transcript, viewer: Viewer) -> Vec<Line> {
    let mut before: Option<&Author> = None;
    let stored = transcript.messages().iter().map(move |m| {
        let continued = before.is_some_and(|b| same_author(b, &m.author));
        before = Some(&m.author);
        Line {
            id: LineId {
                key: LineKey::Stored(m.case_id, m.seq),
                status: None,
                continued,
            },
            class: class_of(m, viewer),
            author: author_of(m).to_owned(),
            body: m.body.clone(),
            // Parlor's own lines ("… joined the chat") carry no time of their own.
            sent_at: (m.author != Author::System).then_some(m.sent_at),
        }
    });
    let pending = transcript.pending().iter().map(|p| Line {
        id: LineId {
            key: LineKey::Pending(p.client_id.clone()),
            status: Some(match &p.failed {
                Some(why) => format!("Not sent: {why}"),
                None => "Sending…".to_owned(),
            }),
            continued: true,
        },
        class: "msg msg-mine msg-pending",
        author: String::new(),
        body: p.body.clone(),
        sent_at: None,
    });
    stored.chain(pending).collect()
}

/// `sent_at` as the time of day ("14:05", local), the full local date and time for
/// hovering, and the machine-readable form.
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

fn line_view(line: Line) -> impl IntoView {
    let seq = match line.id.key {
        LineKey::Stored(_, seq) => Some(seq),
        LineKey::Pending(_) => None,
    };
    let time = line.sent_at.map(|at| {
        let (short, full, iso) = clock(at);
        view! { <time class="msg-time" datetime=iso title=full>{short}</time> }
    });
    let status = line
        .id
        .status
        .map(|status| view! { <span class="msg-status">{status}</span> });
    view! {
        <li class=line.class class:msg-continued=line.id.continued data-seq=seq>
            <span class="msg-avatar" aria-hidden="true">{initials(&line.author)}</span>
            <span class="msg-author">{line.author}</span>
            <MessageBody body=line.body/>
            {time}
            {status}
        </li>
    }
}

const EARLIER: &str = "Earlier messages";

/// A chat's messages in an `<ol>`. A long chat comes a page at a time: while there are
/// messages before those held, the list starts with an **Earlier messages** button, and
/// a page added above keeps what the reader sees where it was. Otherwise the newest
/// line is kept in view.
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
    // The first `seq` whose earlier page was asked for: one request per click, until
    // the page arrives (the first line moves) and the button asks again.
    let asked = RwSignal::new(None::<Seq>);
    let first = Memo::new(move |_| transcript.with(Transcript::first_seq));
    let loading = move || asked.get() == Some(first.get());
    // How far the reader was from the bottom before the list last changed, kept as they
    // scroll: a page added above is put back there.
    let from_bottom = StoredValue::new(0);
    let last_line = StoredValue::new(None::<LineKey>);
    let measure = move || {
        if let Some(list) = list.get_untracked() {
            from_bottom.set_value(list.scroll_height() - list.scroll_top());
        }
    };
    Effect::new(move |_| {
        let newest = transcript.with(lines_end);
        let Some(list) = list.get() else {
            return;
        };
        // Once the list's own update has reached the page, before it is painted.
        request_animation_frame(move || {
            let same_end = last_line.with_value(|last| last.is_some() && *last == newest);
            let bottom = list.scroll_height();
            list.set_scroll_top(if same_end {
                bottom - from_bottom.get_value()
            } else {
                bottom
            });
            last_line.set_value(newest);
            measure();
        });
    });
    view! {
        <ol class="messages" node_ref=list aria-live="polite" aria-label="Messages"
            on:scroll=move |_| measure()>
            <li class="msg-earlier" hidden=move || !transcript.with(Transcript::has_earlier)>
                <button type="button" prop:disabled=loading
                    on:click=move |_| {
                        let before = first.get_untracked();
                        asked.set(Some(before));
                        on_earlier.run(before);
                    }>
                    {move || if loading() { "Loading…" } else { EARLIER }}
                </button>
            </li>
            <For
                each=move || transcript.with(|t| lines(t, viewer))
                key=|line| line.id.clone()
                children=line_view
            />
        </ol>
    }
}

/// The key of the newest line: when it is the same after a change, the change came
/// above (an earlier page).
fn lines_end(transcript: &Transcript) -> Option<LineKey> {
    match transcript.pending().last() {
        Some(p) => Some(LineKey::Pending(p.client_id.clone())),
        None => transcript
            .messages()
            .last()
            .map(|m| LineKey::Stored(m.case_id, m.seq)),
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
