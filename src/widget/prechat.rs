//! The pre-chat form (and the offline form, the same form with another button). Its
//! inputs are plain form fields read once, on submit, and a form shown again with the
//! same questions (a reconnect's `Welcome`) keeps what the visitor typed.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use parlor_protocol::{
    FieldRule, Group, GroupId, MAX_ANSWER_CHARS, MAX_EMAIL_CHARS, MAX_NAME_CHARS,
    MAX_SUBJECT_CHARS, PrechatAnswers, PrechatFields, check_message,
};
use web_sys::{
    Element, HtmlButtonElement, HtmlFormElement, HtmlInputElement, HtmlSelectElement,
    HtmlTextAreaElement,
};

use crate::dom;

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

/// One asked field on the page: its label, the label's words and the input (which
/// keeps what was typed while the question changes around it).
struct Slot {
    question: Question,
    label: Element,
    caption: web_sys::Text,
    input: HtmlInputElement,
}

impl Slot {
    fn create(question: Question) -> Option<Self> {
        let label = dom::el("label", "")?;
        let caption = dom::document()?.create_text_node("");
        let input: HtmlInputElement = dom::typed("input", "")?;
        dom::append(&label, &[&caption, &input]);
        let slot = Self {
            question,
            label,
            caption,
            input,
        };
        slot.draw();
        Some(slot)
    }

    fn draw(&self) {
        let q = &self.question;
        self.caption.set_data(&q.label);
        self.input.set_name(&q.key);
        self.input.set_type(q.kind);
        self.input.set_autocomplete(q.autocomplete);
        self.input.set_required(q.required);
        self.input
            .set_max_length(i32::try_from(q.max).unwrap_or(i32::MAX));
    }
}

/// The group field: a label and its select, filled from the groups.
struct GroupField {
    label: Element,
    caption: web_sys::Text,
    select: HtmlSelectElement,
}

impl GroupField {
    fn create() -> Option<Self> {
        let label = dom::el("label", "")?;
        let caption = dom::document()?.create_text_node("");
        let select: HtmlSelectElement = dom::typed("select", "")?;
        select.set_name("group");
        dom::append(&label, &[&caption, &select]);
        Some(Self {
            label,
            caption,
            select,
        })
    }

    /// Shown only when the field is and there are groups to choose from.
    fn draw(&self, rule: FieldRule, groups: &[Group]) -> Option<()> {
        let shown = rule.shown() && !groups.is_empty();
        dom::set_hidden(&self.label, !shown);
        self.select.set_disabled(!shown);
        let required = rule == FieldRule::Required;
        self.caption.set_data(if required {
            "Group"
        } else {
            "Group (optional)"
        });
        self.select.set_text_content(None);
        let none = dom::text_el("option", "", if required { "Choose…" } else { "Any" })?;
        dom::set_attr(&none, "value", "");
        dom::append(&self.select, &[&none]);
        for group in groups {
            let option = dom::text_el("option", "", &group.name)?;
            dom::set_attr(&option, "value", &group.id.to_string());
            dom::append(&self.select, &[&option]);
        }
        Some(())
    }
}

/// The pre-chat form the admin set: name, email, subject, group and questions of their
/// own (each hidden, optional or required), then the first message.
pub struct PrechatForm {
    form: HtmlFormElement,
    intro: Element,
    slots: RefCell<Vec<Option<Slot>>>,
    group: GroupField,
    problem: Element,
    submit: HtmlButtonElement,
    /// What the form asks now.
    spec: RefCell<Option<FormSpec>>,
    /// Called on submit: valid answers, or what is wrong with them.
    on_submit: Box<dyn Fn(Result<StartAnswers, String>)>,
}

impl PrechatForm {
    pub fn create(on_submit: Box<dyn Fn(Result<StartAnswers, String>)>) -> Option<Rc<Self>> {
        let form: HtmlFormElement = dom::typed("form", "prechat")?;
        form.set_no_validate(true);
        let intro = dom::el("p", "prechat-intro")?;
        let group = GroupField::create()?;
        let message = dom::text_el("label", "", "Message")?;
        let text: HtmlTextAreaElement = dom::typed("textarea", "")?;
        text.set_name("message");
        text.set_rows(3);
        text.set_required(true);
        dom::append(&message, &[&text]);
        let problem = dom::el("p", "form-problem")?;
        dom::set_attr(&problem, "role", "alert");
        let submit: HtmlButtonElement = dom::typed("button", "primary")?;
        submit.set_type("submit");
        dom::append(&form, &[&intro, &group.label, &message, &problem, &submit]);
        let prechat = Rc::new(Self {
            form,
            intro,
            slots: RefCell::new(Vec::new()),
            group,
            problem,
            submit,
            spec: RefCell::new(None),
            on_submit,
        });
        let me = Rc::clone(&prechat);
        dom::listen(&prechat.form, "submit", move |ev: web_sys::Event| {
            ev.prevent_default();
            me.submitted();
        });
        Some(prechat)
    }

    pub fn element(&self) -> &Element {
        &self.form
    }

    fn submitted(&self) {
        let Ok(data) = web_sys::FormData::new_with_form(&self.form) else {
            return;
        };
        let read = self.spec.borrow().as_ref().map(|spec| spec.read(&data));
        if let Some(read) = read {
            (self.on_submit)(read);
        }
    }

    /// Shows the form `spec` asks for; what stays the same stays as typed.
    pub fn show(&self, spec: FormSpec, problem: Option<&str>, busy: bool) {
        dom::set_text(&self.problem, problem.unwrap_or_default());
        self.submit.set_disabled(busy);
        if self.spec.borrow().as_ref() == Some(&spec) {
            return;
        }
        dom::set_text(&self.intro, &spec.greeting);
        dom::set_text(&self.submit, spec.submit_label);
        let group_changed = self.spec.borrow().as_ref().is_none_or(|shown| {
            (shown.fields.group, &shown.groups) != (spec.fields.group, &spec.groups)
        });
        if group_changed {
            let _ = self.group.draw(spec.fields.group, &spec.groups);
        }
        self.show_questions(spec.questions());
        *self.spec.borrow_mut() = Some(spec);
    }

    /// Each slot keeps its input while its question stays; a slot whose question goes
    /// takes its input with it, and a new one goes in its place in the order.
    fn show_questions(&self, questions: Vec<Option<Question>>) {
        let mut slots = self.slots.borrow_mut();
        let kept = questions.len().min(slots.len());
        for gone in slots.drain(kept..).flatten() {
            gone.label.remove();
        }
        slots.resize_with(questions.len(), || None);
        let mut next: web_sys::Node = self.group.label.clone().into();
        for (slot, question) in slots.iter_mut().zip(questions).rev() {
            match (slot.as_mut(), question) {
                (Some(shown), Some(question)) => {
                    if shown.question != question {
                        shown.question = question;
                        shown.draw();
                    }
                }
                (None, Some(question)) => {
                    *slot = Slot::create(question);
                    if let Some(new) = slot.as_ref() {
                        let _ = self.form.insert_before(&new.label, Some(&next));
                    }
                }
                (Some(_), None) => {
                    if let Some(gone) = slot.take() {
                        gone.label.remove();
                    }
                }
                (None, None) => {}
            }
            if let Some(shown) = slot.as_ref() {
                next = shown.label.clone().into();
            }
        }
    }
}
