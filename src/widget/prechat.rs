use std::collections::BTreeMap;

use leptos::prelude::*;
use parlor_protocol::{
    FieldRule, Group, GroupId, MAX_ANSWER_CHARS, MAX_EMAIL_CHARS, MAX_NAME_CHARS,
    MAX_SUBJECT_CHARS, PrechatAnswers, PrechatFields, check_message,
};

/// What the customer filled in, checked against the admin's form.
#[derive(Clone, Debug)]
pub struct StartAnswers {
    pub answers: PrechatAnswers,
    pub message: String,
    pub group: Option<GroupId>,
}

/// One one-line field of the form; shows only when the form asks for it and the page
/// has not told us the answer already (`Parlor('identify', …)`).
#[component]
fn Field(
    label: String,
    name: String,
    rule: FieldRule,
    value: RwSignal<String>,
    max: usize,
    #[prop(optional)] kind: Option<&'static str>,
    #[prop(optional)] autocomplete: Option<&'static str>,
) -> impl IntoView {
    let required = rule == FieldRule::Required;
    let label = if required {
        label
    } else {
        format!("{label} (optional)")
    };
    view! {
        <label>
            {label}
            <input name=name type=kind.unwrap_or("text") autocomplete=autocomplete required=required
                maxlength=max prop:value=value on:input=move |ev| value.set(event_target_value(&ev))/>
        </label>
    }
}

/// The pre-chat form the admin set: name, email, subject, group and questions of their
/// own (each hidden, optional or required), then the first message.
#[component]
pub fn PrechatForm(
    #[prop(into)] form: Signal<PrechatFields>,
    /// What the host page told us about the visitor (`identify`), by field key.
    #[prop(into)]
    known: Signal<BTreeMap<String, String>>,
    #[prop(into)] greeting: Signal<String>,
    /// The groups to choose from; the field shows only when there are some.
    #[prop(into)]
    groups: Signal<Vec<Group>>,
    /// Called with valid answers.
    on_start: Callback<StartAnswers>,
    /// A problem reported by the server, shown under the form.
    #[prop(into)]
    server_error: Signal<Option<String>>,
    /// Whether a start is on its way.
    #[prop(into)]
    busy: Signal<bool>,
    /// "Start chat", or "Send message" for the offline form.
    #[prop(into)]
    submit_label: Signal<&'static str>,
) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let email = RwSignal::new(String::new());
    let subject = RwSignal::new(String::new());
    let message = RwSignal::new(String::new());
    let custom: RwSignal<BTreeMap<String, RwSignal<String>>> = RwSignal::new(BTreeMap::new());
    let (group, set_group) = signal(None::<GroupId>);
    let (problem, set_problem) = signal(None::<String>);
    // A field the page already answered is not asked again.
    let shown = move |key: &str, rule: FieldRule| {
        rule.shown() && known.with(|k| k.get(key).is_none_or(|v| v.trim().is_empty()))
    };
    let answer = move |key: &str, typed: RwSignal<String>| {
        known
            .with_untracked(|k| k.get(key).cloned())
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| typed.get_untracked())
    };
    let custom_value = move |key: &str| {
        custom
            .with_untracked(|c| c.get(key).copied())
            .unwrap_or_else(|| {
                let value = RwSignal::new(String::new());
                custom.update_untracked(|c| {
                    c.insert(key.to_owned(), value);
                });
                value
            })
    };

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let fields = form.get_untracked();
        let answers = PrechatAnswers {
            name: answer("name", name),
            email: answer("email", email),
            subject: subject.get_untracked(),
            custom: fields
                .custom
                .iter()
                .map(|f| (f.key.clone(), answer(&f.key, custom_value(&f.key))))
                .collect(),
        };
        let chosen = group.get_untracked();
        let checked = fields.check(&answers).map_err(|p| p.message).and_then(|_| {
            let no_group = chosen.is_none()
                && fields.group == FieldRule::Required
                && groups.with_untracked(|g| !g.is_empty());
            if no_group {
                return Err("Please choose a group.".to_owned());
            }
            let message = message.get_untracked();
            check_message(&message).map_err(|e| e.to_string())?;
            Ok(StartAnswers {
                answers,
                message,
                group: chosen,
            })
        });
        match checked {
            Ok(start) => {
                set_problem.set(None);
                on_start.run(start);
            }
            Err(error) => set_problem.set(Some(error)),
        }
    };
    let group_rule = move || form.with(|f| f.group);
    view! {
        <form class="prechat" on:submit=submit novalidate>
            <Show when=move || greeting.with(|g| !g.is_empty())>
                <p class="prechat-intro">{greeting}</p>
            </Show>
            {move || {
                let fields = form.get();
                let mut shown_fields = Vec::new();
                if shown("name", fields.name) {
                    shown_fields.push(view! {
                        <Field label="Name".into() name="name".into() rule=fields.name value=name
                            max=MAX_NAME_CHARS autocomplete="name"/>
                    }.into_any());
                }
                if shown("email", fields.email) {
                    shown_fields.push(view! {
                        <Field label="Email".into() name="email".into() rule=fields.email value=email
                            max=MAX_EMAIL_CHARS kind="email" autocomplete="email"/>
                    }.into_any());
                }
                if fields.subject.shown() {
                    shown_fields.push(view! {
                        <Field label="Subject".into() name="subject".into() rule=fields.subject
                            value=subject max=MAX_SUBJECT_CHARS/>
                    }.into_any());
                }
                for question in fields.custom.iter().filter(|q| shown(&q.key, FieldRule::Required)) {
                    let rule = if question.required { FieldRule::Required } else { FieldRule::Optional };
                    shown_fields.push(view! {
                        <Field label=question.label.clone() name=question.key.clone() rule=rule
                            value=custom_value(&question.key) max=MAX_ANSWER_CHARS/>
                    }.into_any());
                }
                shown_fields
            }}
            <Show when=move || group_rule().shown() && groups.with(|g| !g.is_empty())>
                <label>
                    {move || if group_rule() == FieldRule::Required { "Group" } else { "Group (optional)" }}
                    <select name="group" on:change=move |ev| set_group.set(event_target_value(&ev).parse().ok())>
                        <option value="">{move || if group_rule() == FieldRule::Required { "Choose…" } else { "Any" }}</option>
                        {move || groups.get().into_iter().map(|g| view! {
                            <option value=g.id.to_string()>{g.name}</option>
                        }).collect_view()}
                    </select>
                </label>
            </Show>
            <label>
                "Message"
                <textarea name="message" rows="3" required
                    on:input=move |ev| message.set(event_target_value(&ev)) prop:value=message></textarea>
            </label>
            <p class="form-problem" role="alert">{move || problem.get().or_else(|| server_error.get())}</p>
            <button type="submit" class="primary" prop:disabled=busy>{submit_label}</button>
        </form>
    }
}
