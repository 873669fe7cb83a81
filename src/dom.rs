//! Small helpers for building and updating the page by hand, for the parts drawn
//! without Leptos: the widget's panel and the message list both apps share. Every
//! text goes in with `set_text_content` or as a text node, never as markup.

use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{Element, EventTarget, Node};

pub fn document() -> Option<web_sys::Document> {
    web_sys::window()?.document()
}

/// A new element with the given class (none when empty).
pub fn el(tag: &str, class: &str) -> Option<Element> {
    let el = document()?.create_element(tag).ok()?;
    if !class.is_empty() {
        el.set_class_name(class);
    }
    Some(el)
}

/// A new element of a known kind (`HtmlTextAreaElement` for `textarea`, …).
pub fn typed<T: JsCast>(tag: &str, class: &str) -> Option<T> {
    el(tag, class)?.dyn_into().ok()
}

/// A new element holding `text`.
pub fn text_el(tag: &str, class: &str, text: &str) -> Option<Element> {
    let el = el(tag, class)?;
    el.set_text_content(Some(text));
    Some(el)
}

/// Appends each node in turn.
pub fn append(parent: &Node, children: &[&Node]) {
    for child in children {
        let _ = parent.append_child(child);
    }
}

/// Sets a node's text when it differs, so a live region is not announced again for
/// the same words.
pub fn set_text(node: &Node, text: &str) {
    if node.text_content().as_deref() != Some(text) {
        node.set_text_content(Some(text));
    }
}

pub fn set_hidden(el: &Element, hidden: bool) {
    let _ = el.toggle_attribute_with_force("hidden", hidden);
}

pub fn set_attr(el: &Element, name: &str, value: &str) {
    let _ = el.set_attribute(name, value);
}

/// Calls `handler` with every `event` of type `E` on `target`, for the page's whole
/// life (the panel's parts are never taken down).
pub fn listen<E: JsCast + 'static>(
    target: &EventTarget,
    event: &str,
    mut handler: impl FnMut(E) + 'static,
) {
    let listener = Closure::<dyn FnMut(web_sys::Event)>::new(move |ev: web_sys::Event| {
        if let Ok(ev) = ev.dyn_into::<E>() {
            handler(ev);
        }
    });
    let _ = target.add_event_listener_with_callback(event, listener.as_ref().unchecked_ref());
    listener.forget();
}
