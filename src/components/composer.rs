//! The message box both apps use: **Enter sends**, Shift+Enter starts a new line; a
//! blank message is not sent; near the length limit it counts down, and over it says so
//! before sending; "typing" goes to the other side now and then while someone types.

use leptos::html::Textarea;
use leptos::prelude::*;
use parlor_protocol::{MAX_MESSAGE_CHARS, check_message};
use web_sys::KeyboardEvent;

/// How often "typing" is told to the other side while someone types.
const TYPING_EVERY_MS: f64 = 2_000.0;
/// From this many characters on, the composer shows how many are left.
const COUNT_FROM: usize = MAX_MESSAGE_CHARS * 9 / 10;

/// Whether this key press sends the message: Enter, not Shift+Enter, and not while an
/// input method is composing a character.
fn sends(ev: &KeyboardEvent) -> bool {
    ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing()
}

/// How many characters are left, once the text is near the limit (negative over it).
fn chars_left(text: &str) -> Option<i64> {
    let used = text.chars().count();
    (used >= COUNT_FROM).then(|| MAX_MESSAGE_CHARS as i64 - used as i64)
}

fn count_text(left: i64) -> String {
    format!("{left} characters left")
}

/// The message box: **Enter sends**, Shift+Enter starts a new line. A blank message is
/// not sent; near the length limit it counts down, and over it says so before sending.
#[component]
pub fn Composer(
    /// The text being written; owned by the caller so each chat keeps its own draft.
    draft: RwSignal<String>,
    /// Called with the text to send; the box empties itself.
    on_send: Callback<String>,
    /// Called now and then while the person types.
    #[prop(optional)]
    on_typing: Option<Callback<()>>,
    /// Whether sending is possible now (the chat is open).
    #[prop(into)]
    enabled: Signal<bool>,
    #[prop(into)] placeholder: String,
    /// Where the caller's extra tools (the macro picker) go.
    #[prop(optional)]
    children: Option<Children>,
    /// The text area, for callers that move focus to it.
    #[prop(optional)]
    input: Option<NodeRef<Textarea>>,
    /// What is wrong with the message, shown under the box until the text changes:
    /// the composer's own checks, and the caller's (why the server refused it).
    #[prop(optional)]
    problem: Option<RwSignal<Option<String>>>,
) -> impl IntoView {
    let problem = problem.unwrap_or_else(|| RwSignal::new(None));
    let set_problem = problem.write_only();
    let last_typing = StoredValue::new(0.0_f64);
    let input = input.unwrap_or_default();
    let send = move || {
        let text = draft.get_untracked();
        if text.trim().is_empty() || !enabled.get_untracked() {
            return;
        }
        match check_message(&text) {
            Ok(text) => {
                on_send.run(text);
                draft.set(String::new());
                set_problem.set(None);
                last_typing.set_value(0.0);
            }
            Err(error) => set_problem.set(Some(error.to_string())),
        }
    };
    let on_keydown = move |ev: KeyboardEvent| {
        if sends(&ev) {
            ev.prevent_default();
            send();
        }
    };
    let on_input = move |ev| {
        draft.set(event_target_value(&ev));
        set_problem.set(None);
        if let Some(on_typing) = on_typing {
            let now = js_sys::Date::now();
            if now - last_typing.get_value() > TYPING_EVERY_MS {
                last_typing.set_value(now);
                on_typing.run(());
            }
        }
    };
    let left = move || draft.with(|d| chars_left(d));
    view! {
        <form class="composer" on:submit=move |ev| { ev.prevent_default(); send(); }>
            <textarea
                class="composer-input"
                rows="2"
                aria-label="Message"
                placeholder=placeholder
                node_ref=input
                prop:value=move || draft.get()
                prop:disabled=move || !enabled.get()
                on:input=on_input
                on:keydown=on_keydown
            ></textarea>
            <div class="composer-tools">
                {children.map(|children| children())}
                <button type="submit" class="composer-send" prop:disabled=move || !enabled.get()>
                    "Send"
                </button>
            </div>
            <p class="composer-count" class:over=move || left().unwrap_or(0) < 0
                hidden=move || left().is_none()>
                {move || left().map(count_text)}
            </p>
            <p class="composer-problem" role="alert" hidden=move || problem.with(Option::is_none)>
                {move || problem.get()}
            </p>
        </form>
    }
}
