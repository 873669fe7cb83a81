use leptos::prelude::*;
use parlor_protocol::check_message;
use web_sys::KeyboardEvent;

/// The message box: **Enter sends**, Shift+Enter starts a new line. A blank message is
/// not sent; one over the length limit says so before sending.
#[component]
pub fn Composer(
    /// Called with the text to send; the box empties itself.
    on_send: Callback<String>,
    /// Whether sending is possible now (the chat is open).
    #[prop(into)]
    enabled: Signal<bool>,
    #[prop(into)] placeholder: String,
) -> impl IntoView {
    let (draft, set_draft) = signal(String::new());
    let (problem, set_problem) = signal(None::<String>);
    let send = move || {
        let text = draft.get_untracked();
        if text.trim().is_empty() || !enabled.get_untracked() {
            return;
        }
        match check_message(&text) {
            Ok(()) => {
                on_send.run(text);
                set_draft.set(String::new());
                set_problem.set(None);
            }
            Err(error) => set_problem.set(Some(error.to_string())),
        }
    };
    let on_keydown = move |ev: KeyboardEvent| {
        if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
            ev.prevent_default();
            send();
        }
    };
    view! {
        <form class="composer" on:submit=move |ev| { ev.prevent_default(); send(); }>
            <textarea
                class="composer-input"
                rows="2"
                aria-label="Message"
                placeholder=placeholder
                prop:value=move || draft.get()
                prop:disabled=move || !enabled.get()
                on:input=move |ev| set_draft.set(event_target_value(&ev))
                on:keydown=on_keydown
            ></textarea>
            <button type="submit" class="composer-send" prop:disabled=move || !enabled.get()>
                "Send"
            </button>
            <Show when=move || problem.get().is_some()>
                <p class="composer-problem" role="alert">{move || problem.get()}</p>
            </Show>
        </form>
    }
}
