//! The pre-chat form (and the offline form, the same form with another button). Its
//! inputs are plain form fields read once, on submit: no signal per field. A form shown
//! again with the same questions (a reconnect's `Welcome`) keeps what the visitor
//! typed, and a problem shows beside the field it is about.

use std::collections::BTreeMap;

use leptos::prelude::*;

use parlor_protocol::{
    FieldRule, FormProblem, Group, GroupId, MAX_ANSWER_CHARS, MAX_EMAIL_CHARS, MAX_NAME_CHARS,
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
#[derive(Clone, Debug, PartialEq)]
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
    fn read(&self, form: &web_sys::FormData) -> Result<StartAnswers, FormProblem> {
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
        self.fields.check(&answers)?;
        let group = self
            .fields
            .checked_group(typed("group").parse().ok(), &self.groups)?;
        let message = typed("message");
        check_message(&message).map_err(|e| FormProblem {
            field: "message".to_owned(),
            message: e.to_string(),
        })?;
        Ok(StartAnswers {
            answers,
            message,
            group,
        })
    }
}

/// A form-wide problem (the server's answer to a start), shown above the button.
pub fn form_problem(message: String) -> FormProblem {
    FormProblem {
        field: String::new(),
        message,
    }
}

/// The message of `problem` when it is about `field`.
fn about(problem: &Option<FormProblem>, field: &str) -> Option<String> {
    problem
        .as_ref()
        .filter(|p| p.field == field)
        .map(|p| p.message.clone())
}

/// The line under a field that says what is wrong with it (empty while nothing is).
fn problem_line(problem: RwSignal<Option<FormProblem>>, field: String) -> impl IntoView {
    let id = format!("problem-{field}");
    view! {
        <p class="field-problem" id=id role="alert">{move || problem.with(|p| about(p, &field))}</p>
    }
}

/// A field's label, with a mark for sighted readers when it must be answered (the input
/// itself says `required`). The mark sits outside the label, so it is not read as part
/// of the field's name.
fn caption(label: String, required: bool, field: &str) -> impl IntoView + use<> {
    let id = format!("field-{field}");
    view! {
        <span class="field-caption">
            <label for=id>{label}</label>
            {required.then(|| view! { <span class="required" aria-hidden="true">"*"</span> })}
        </span>
    }
}

/// Puts the keyboard in the field a problem is about, so the visitor lands where the
/// fix goes.
fn focus_field(form: &web_sys::HtmlFormElement, field: &str) {
    let selector = format!("[name=\"{field}\"]");
    if let Ok(Some(input)) = form.query_selector(&selector)
        && let Ok(input) = input.dyn_into::<web_sys::HtmlElement>()
    {
        let _ = input.focus();
    }
}

/// The pre-chat form the admin set: name, email, subject, group and questions of their
/// own (each hidden, optional or required), then the first message. Problems show
/// beside their fields; one that belongs to no field (the server's) above the button.
#[component]
pub fn PrechatForm(
    #[prop(into)] spec: Signal<FormSpec>,
    /// Called with valid answers.
    on_start: Callback<StartAnswers>,
    /// What is wrong: this form's check, or the server's answer.
    problem: RwSignal<Option<FormProblem>>,
    /// Whether a start is on its way.
    #[prop(into)]
    busy: Signal<bool>,
    /// Whether the form is out of sight (a message left is being thanked for).
    hidden: Signal<bool>,
) -> impl IntoView {
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(form) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlFormElement>().ok())
        else {
            return;
        };
        let Ok(data) = web_sys::FormData::new_with_form(&form) else {
            return;
        };
        match spec.with_untracked(|spec| spec.read(&data)) {
            Ok(start) => {
                problem.set(None);
                on_start.run(start);
            }
            Err(wrong) => {
                focus_field(&form, &wrong.field);
                problem.set(Some(wrong));
            }
        }
    };
    let invalid = move |field: &str| problem.with(|p| p.as_ref().is_some_and(|p| p.field == field));
    // One slot per question in a fixed order, drawn again in place: an input whose
    // question stays keeps what was typed in it while another comes or goes.
    let questions = move || {
        spec.with(FormSpec::questions)
            .into_iter()
            .map(|slot| {
                slot.map(|q| {
                    let key = q.key.clone();
                    let described = format!("problem-{}", q.key);
                    view! {
                        <div class="field">
                            {caption(q.label, q.required, &q.key)}
                            <input id=format!("field-{}", q.key) name=q.key.clone() type=q.kind
                                autocomplete=q.autocomplete required=q.required maxlength=q.max
                                aria-describedby=described
                                aria-invalid=move || invalid(&key).then_some("true")/>
                            {problem_line(problem, q.key)}
                        </div>
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
                let label = if required {
                    "Group"
                } else {
                    "Group (optional)"
                };
                view! {
                    <div class="field">
                        {caption(label.to_owned(), required, "group")}
                        <select id="field-group" name="group" required=required
                            aria-describedby="problem-group"
                            aria-invalid=move || invalid("group").then_some("true")>
                            <option value="">{if required { "Choose…" } else { "Any" }}</option>
                            {options}
                        </select>
                        {problem_line(problem, "group".to_owned())}
                    </div>
                }
            })
        })
    };
    view! {
        <form class="prechat" on:submit=submit novalidate hidden=hidden>
            <p class="prechat-intro">{move || spec.with(|s| s.greeting.clone())}</p>
            {questions}
            {group_select}
            <div class="field">
                {caption("Message".to_owned(), true, "message")}
                <textarea id="field-message" name="message" rows="3" required
                    aria-describedby="problem-message"
                    aria-invalid=move || invalid("message").then_some("true")></textarea>
                {problem_line(problem, "message".to_owned())}
            </div>
            // Stays in view at the foot of the form however long the admin made it.
            <div class="prechat-actions">
                <p class="form-problem" role="alert">{move || problem.with(|p| about(p, ""))}</p>
                <button type="submit" class="primary" prop:disabled=busy>
                    {move || spec.with(|s| s.submit_label)}
                </button>
            </div>
        </form>
    }
}
