use leptos::prelude::*;
use leptos::task::spawn_local;
use parlor_protocol::{AgentProfile, LoginRequest};

use super::http::call;

/// Where the console leaves, across the reload that signs it out, why it was signed out.
const SIGNED_OUT_KEY: &str = "parlor-signed-out";

fn session_storage() -> Option<web_sys::Storage> {
    web_sys::window().and_then(|w| w.session_storage().ok().flatten())
}

/// Leaves the console for the sign-in page, which says `reason`.
pub fn signed_out(reason: &str) {
    if let Some(storage) = session_storage() {
        let _ = storage.set_item(SIGNED_OUT_KEY, reason);
    }
    if let Some(window) = web_sys::window() {
        let _ = window.location().reload();
    }
}

/// Why the console was signed out, once.
fn signed_out_reason() -> Option<String> {
    let storage = session_storage()?;
    let reason = storage.get_item(SIGNED_OUT_KEY).ok().flatten();
    let _ = storage.remove_item(SIGNED_OUT_KEY);
    reason
}

/// Sign in with email and password.
#[component]
pub fn LoginForm(
    /// Called with the signed-in agent.
    on_signed_in: Callback<AgentProfile>,
) -> impl IntoView {
    let (email, set_email) = signal(String::new());
    let (password, set_password) = signal(String::new());
    let (problem, set_problem) = signal(None::<String>);
    let (busy, set_busy) = signal(false);
    let reason = signed_out_reason();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let request = LoginRequest {
            email: email.get_untracked(),
            password: password.get_untracked(),
        };
        set_busy.set(true);
        spawn_local(async move {
            let result = call::<AgentProfile>("POST", "/api/login", Some(&request)).await;
            set_busy.set(false);
            match result {
                Ok(agent) => on_signed_in.run(agent),
                Err(error) => set_problem.set(Some(error)),
            }
        });
    };
    view! {
        <main class="login">
            <form class="login-form" on:submit=submit>
                <h1>"Parlor"</h1>
                <p>"Sign in to the agent console."</p>
                {reason.map(|reason| view! { <p class="signed-out-note" role="status">{reason}</p> })}
                <label>"Email"
                    <input type="email" name="email" autocomplete="username" required
                        on:input=move |ev| set_email.set(event_target_value(&ev)) prop:value=email/>
                </label>
                <label>"Password"
                    <input type="password" name="password" autocomplete="current-password" required
                        on:input=move |ev| set_password.set(event_target_value(&ev)) prop:value=password/>
                </label>
                <p class="form-problem" role="alert">{move || problem.get()}</p>
                <button type="submit" class="primary" prop:disabled=busy>"Sign in"</button>
            </form>
        </main>
    }
}
