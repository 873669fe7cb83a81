//! The widget's message box, drawn by hand with the rules the console's `Composer`
//! follows (`components::composer`).

use std::cell::Cell;
use std::rc::Rc;

use parlor_protocol::check_message;
use web_sys::{Element, HtmlButtonElement, HtmlTextAreaElement, KeyboardEvent};

use crate::components::composer::{TYPING_EVERY_MS, chars_left, count_text, sends};
use crate::dom;

/// What the box asks of the panel.
pub struct ComposerHooks {
    /// Called with a message to send; the box has emptied itself.
    pub on_send: Box<dyn Fn(String)>,
    /// Called now and then while the visitor types.
    pub on_typing: Box<dyn Fn()>,
}

pub struct Composer {
    form: Element,
    input: HtmlTextAreaElement,
    send: HtmlButtonElement,
    count: Element,
    problem: Element,
    enabled: Cell<bool>,
    last_typing: Cell<f64>,
    hooks: ComposerHooks,
}

impl Composer {
    pub fn create(placeholder: &str, hooks: ComposerHooks) -> Option<Rc<Self>> {
        let form = dom::el("form", "composer")?;
        let input: HtmlTextAreaElement = dom::typed("textarea", "composer-input")?;
        input.set_rows(2);
        input.set_placeholder(placeholder);
        dom::set_attr(&input, "aria-label", "Message");
        let tools = dom::el("div", "composer-tools")?;
        let send: HtmlButtonElement = dom::typed("button", "composer-send")?;
        send.set_type("submit");
        send.set_text_content(Some("Send"));
        dom::append(&tools, &[&send]);
        let count = dom::el("p", "composer-count")?;
        let problem = dom::el("p", "composer-problem")?;
        dom::set_attr(&problem, "role", "alert");
        dom::set_hidden(&count, true);
        dom::set_hidden(&problem, true);
        dom::append(&form, &[&input, &tools, &count, &problem]);
        let composer = Rc::new(Self {
            form,
            input,
            send,
            count,
            problem,
            enabled: Cell::new(true),
            last_typing: Cell::new(0.0),
            hooks,
        });
        composer.listen();
        Some(composer)
    }

    fn listen(self: &Rc<Self>) {
        let me = Rc::clone(self);
        dom::listen(&self.form, "submit", move |ev: web_sys::Event| {
            ev.prevent_default();
            me.send();
        });
        let me = Rc::clone(self);
        dom::listen(&self.input, "keydown", move |ev: KeyboardEvent| {
            if sends(&ev) {
                ev.prevent_default();
                me.send();
            }
        });
        let me = Rc::clone(self);
        dom::listen(&self.input, "input", move |_: web_sys::Event| {
            me.show_problem(None);
            me.show_count();
            let now = js_sys::Date::now();
            if now - me.last_typing.get() > TYPING_EVERY_MS {
                me.last_typing.set(now);
                (me.hooks.on_typing)();
            }
        });
    }

    pub fn element(&self) -> &Element {
        &self.form
    }

    /// Whether sending is possible now (the chat is open and the link up).
    pub fn set_enabled(&self, enabled: bool) {
        if self.enabled.replace(enabled) != enabled {
            self.input.set_disabled(!enabled);
            self.send.set_disabled(!enabled);
        }
    }

    fn send(&self) {
        let text = self.input.value();
        if text.trim().is_empty() || !self.enabled.get() {
            return;
        }
        match check_message(&text) {
            Ok(text) => {
                self.input.set_value("");
                self.show_count();
                self.show_problem(None);
                self.last_typing.set(0.0);
                (self.hooks.on_send)(text);
            }
            Err(error) => self.show_problem(Some(&error.to_string())),
        }
    }

    fn show_count(&self) {
        let left = chars_left(&self.input.value());
        dom::set_hidden(&self.count, left.is_none());
        let _ = self
            .count
            .class_list()
            .toggle_with_force("over", left.is_some_and(|n| n < 0));
        dom::set_text(&self.count, &left.map(count_text).unwrap_or_default());
    }

    fn show_problem(&self, problem: Option<&str>) {
        dom::set_hidden(&self.problem, problem.is_none());
        dom::set_text(&self.problem, problem.unwrap_or_default());
    }
}
