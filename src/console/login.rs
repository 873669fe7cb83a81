use leptos::prelude::*;
use leptos::task::spawn_local;
use parlor_protocol::{AgentProfile, LoginRequest};

use super::http::call;

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
