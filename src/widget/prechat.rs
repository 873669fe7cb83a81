//! The pre-chat form (and the offline form, the same form with another button). Its
//! inputs are plain form fields read once, on submit: no signal per field, which keeps
//! the widget's download small, and a form rebuilt with the same questions (a reconnect's
//! `Welcome`) keeps what the visitor typed.

use std::collections::BTreeMap;

use leptos::prelude::*;
use parlor_protocol::{
    FieldRule, Group, GroupId, MAX_ANSWER_CHARS, MAX_EMAIL_CHARS, MAX_NAME_CHARS,
    MAX_SUBJECT_CHARS, PrechatAnswers, PrechatFields, check_message,
};
use wasm_bindgen::JsCast;

/// What the form asks, as the panel gives it.
#[derive(Clone, Debug, PartialEq)]
pub struct FormSpec {
    pub fields: PrechatFields,
    /// What the host page told us about the visitor (`Parlor('identify', …)`), by key:
    /// a field answered there is not asked again.
    pub known: BTreeMap<String, String>,
    pub greeting: String,
    /// The groups to choose from; the field shows only when there are some.
    pub groups: Vec<Group>,
    /// "Start chat", or "Send message" for the offline form.
    pub submit_label: &'static str,
}

/// What the customer filled in, checked against the admin's form.
#[derive(Clone, Debug)]
pub struct StartAnswers {
    pub answers: PrechatAnswers,
    pub message: String,
    pub group: Option<GroupId>,
}

/// One one-line field as shown.
struct Question {
    key: String,
    label: String,
    required: bool,
    kind: &'static str,
    autocomplete: &'static str,
    max: usize,
}

impl FormSpec {
    fn known(&self, key: &str) -> Option<&String> {
        self.known.get(key).filter(|v| !v.trim().is_empty())
    }

    /// The one-line fields, one slot each in a fixed order (name, email, subject, then
    /// the admin's own): `None` where the field is not asked. Fixed slots keep each input,
    /// and what was typed in it, in place when another field comes or goes (the page's
    /// `identify` answering one, say).
    fn questions(&self) -> Vec<Option<Question>> {
        let f = &self.fields;
        let ask = |key: &str, label: &str, rule: FieldRule, max: usize| {
            // The subject is asked even when the page gave one: it is this chat's.
            let asked = rule.shown() && (key == "subject" || self.known(key).is_none());
            asked.then(|| {
                let required = rule == FieldRule::Required;
                let (kind, autocomplete) = match key {
                    "name" => ("text", "name"),
                    "email" => ("email", "email"),
                    _ => ("text", "off"),
                };
                Question {
                    key: key.to_owned(),
                    label: if required {
                        label.to_owned()
                    } else {
                        format!("{label} (optional)")
                    },
                    required,
                    kind,
                    autocomplete,
                    max,
                }
            })
        };
        let mut slots = vec![
            ask("name", "Name", f.name, MAX_NAME_CHARS),
            ask("email", "Email", f.email, MAX_EMAIL_CHARS),
            ask("subject", "Subject", f.subject, MAX_SUBJECT_CHARS),
        ];
        for q in &f.custom {
            let rule = if q.required {
                FieldRule::Required
            } else {
                FieldRule::Optional
            };
            slots.push(ask(&q.key, &q.label, rule, MAX_ANSWER_CHARS));
        }
        slots
    }

    /// Reads and checks the submitted form; the page's `identify` answers fill in what
    /// was not asked.
    fn read(&self, form: &web_sys::FormData) -> Result<StartAnswers, String> {
        let typed = |key: &str| form.get(key).as_string().unwrap_or_default();
        let answer = |key: &str| self.known(key).cloned().unwrap_or_else(|| typed(key));
        let mut answers = PrechatAnswers {
            name: answer("name"),
            email: answer("email"),
            subject: typed("subject"),
            custom: BTreeMap::new(),
        };
        for question in &self.fields.custom {
            answers
                .custom
                .insert(question.key.clone(), answer(&question.key));
        }
        self.fields.check(&answers).map_err(|p| p.message)?;
        let group = self
            .fields
            .checked_group(typed("group").parse().ok(), &self.groups)
            .map_err(|p| p.message)?;
        let message = typed("message");
        check_message(&message).map_err(|e| e.to_string())?;
        Ok(StartAnswers {
            answers,
            message,
            group,
        })
    }
}

/// The pre-chat form the admin set: name, email, subject, group and questions of their
/// own (each hidden, optional or required), then the first message.
#[component]
pub fn PrechatForm(
    spec: Signal<FormSpec>,
    /// Called with valid answers.
    on_start: Callback<StartAnswers>,
    /// What is wrong, shown under the form: this form's check, or the server's.
    problem: RwSignal<Option<String>>,
    /// Whether a start is on its way.
    busy: Signal<bool>,
) -> impl IntoView {
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let form = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlFormElement>().ok())
            .and_then(|form| web_sys::FormData::new_with_form(&form).ok());
        let Some(form) = form else {
            return;
        };
        match spec.with_untracked(|spec| spec.read(&form)) {
            Ok(start) => {
                problem.set(None);
                on_start.run(start);
            }
            Err(error) => problem.set(Some(error)),
        }
    };
    let questions = move || {
        spec.with(FormSpec::questions)
            .into_iter()
            .map(|slot| {
                slot.map(|q| {
                    view! {
                        <label>
                            {q.label}
                            <input name=q.key type=q.kind autocomplete=q.autocomplete
                                required=q.required maxlength=q.max/>
                        </label>
                    }
                })
            })
            .collect_view()
    };
    let group_select = move || {
        spec.with(|spec| {
            let rule = spec.fields.group;
            (rule.shown() && !spec.groups.is_empty()).then(|| {
                let required = rule == FieldRule::Required;
                let options = spec
                    .groups
                    .iter()
                    .map(|g| view! { <option value=g.id.to_string()>{g.name.clone()}</option> })
                    .collect_view();
                view! {
                    <label>
                        {if required { "Group" } else { "Group (optional)" }}
                        <select name="group">
                            <option value="">{if required { "Choose…" } else { "Any" }}</option>
                            {options}
                        </select>
                    </label>
                }
            })
        })
    };
    view! {
        <form class="prechat" on:submit=submit novalidate>
            <p class="prechat-intro">{move || spec.with(|s| s.greeting.clone())}</p>
            {questions}
            {group_select}
            <label>
                "Message"
                <textarea name="message" rows="3" required></textarea>
            </label>
            <p class="form-problem" role="alert">{move || problem.get()}</p>
            <button type="submit" class="primary" prop:disabled=busy>
                {move || spec.with(|s| s.submit_label)}
            </button>
        </form>
    }
}
