use leptos::prelude::*;
use parlor_protocol::{Group, GroupId, MAX_NAME_CHARS, MAX_SUBJECT_CHARS, check_message, one_line};

/// What the customer filled in.
#[derive(Clone, Debug)]
pub struct PrechatAnswers {
    pub name: String,
    pub subject: String,
    pub message: String,
    pub group: Option<GroupId>,
}

/// The pre-chat form: name, subject, group (when there are groups) and the first message.
#[component]
pub fn PrechatForm(
    /// The groups to choose from; the field shows only when there are some.
    #[prop(into)]
    groups: Signal<Vec<Group>>,
    /// Called with valid answers.
    on_start: Callback<PrechatAnswers>,
    /// A problem reported by the server, shown under the form.
    #[prop(into)]
    server_error: Signal<Option<String>>,
    /// Whether a start is on its way.
    #[prop(into)]
    busy: Signal<bool>,
) -> impl IntoView {
    let (name, set_name) = signal(String::new());
    let (subject, set_subject) = signal(String::new());
    let (message, set_message) = signal(String::new());
    let (group, set_group) = signal(None::<GroupId>);
    let (problem, set_problem) = signal(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let checked = one_line(&name.get_untracked(), "name", MAX_NAME_CHARS).and_then(|name| {
            let subject = one_line(&subject.get_untracked(), "subject", MAX_SUBJECT_CHARS)?;
            let message = message.get_untracked();
            check_message(&message)?;
            Ok(PrechatAnswers {
                name,
                subject,
                message,
                group: group.get_untracked(),
            })
        });
        match checked {
            Ok(answers) => {
                set_problem.set(None);
                on_start.run(answers);
            }
            Err(error) => set_problem.set(Some(error.to_string())),
        }
    };
    view! {
        <form class="prechat" on:submit=submit novalidate>
            <p class="prechat-intro">"Tell us who you are and what you need; an agent will join you."</p>
            <label>
                "Name"
                <input name="name" autocomplete="name" required maxlength=MAX_NAME_CHARS
                    on:input=move |ev| set_name.set(event_target_value(&ev)) prop:value=name/>
            </label>
            <label>
                "Subject"
                <input name="subject" required maxlength=MAX_SUBJECT_CHARS
                    on:input=move |ev| set_subject.set(event_target_value(&ev)) prop:value=subject/>
            </label>
            <Show when=move || groups.with(|g| !g.is_empty())>
                <label>
                    "Group"
                    <select name="group" on:change=move |ev| set_group.set(event_target_value(&ev).parse().ok())>
                        <option value="">"Any"</option>
                        {move || groups.get().into_iter().map(|g| view! {
                            <option value=g.id.to_string()>{g.name}</option>
                        }).collect_view()}
                    </select>
                </label>
            </Show>
            <label>
                "Message"
                <textarea name="message" rows="3" required
                    on:input=move |ev| set_message.set(event_target_value(&ev)) prop:value=message></textarea>
            </label>
            <p class="form-problem" role="alert">{move || problem.get().or_else(|| server_error.get())}</p>
            <button type="submit" class="primary" prop:disabled=busy>"Start chat"</button>
        </form>
    }
}
