//! The widget's ties to the page around it: the settings `widget.js` passes in the
//! frame's URL fragment, messages to the host page, and where the visitor token is kept.

use wasm_bindgen::JsValue;

const TOKEN_KEY: &str = "parlor.visitor";

/// One value from the frame URL's fragment (`#host=…&title=…`).
pub fn fragment_param(name: &str) -> Option<String> {
    let hash = web_sys::window()?.location().hash().ok()?;
    let params = web_sys::UrlSearchParams::new_with_str(hash.trim_start_matches('#')).ok()?;
    params.get(name).filter(|v| !v.is_empty())
}

/// Tells the host page's loader something (`close`, …). Sent only to the origin that
/// embedded the widget, never to `*`.
pub fn tell_host(kind: &str) {
    let Some(origin) = fragment_param("host") else {
        return;
    };
    let Some(window) = web_sys::window() else {
        return;
    };
    let Ok(Some(parent)) = window.parent() else {
        return;
    };
    let message = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&message, &"parlor".into(), &JsValue::from_str(kind));
    let _ = parent.post_message(&message, &origin);
}

/// Whether the widget runs inside a host page (and so has a close button).
pub fn embedded() -> bool {
    fragment_param("host").is_some()
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

pub fn load_token() -> Option<String> {
    storage()?.get_item(TOKEN_KEY).ok().flatten()
}

pub fn save_token(token: &str) {
    if let Some(storage) = storage() {
        let _ = storage.set_item(TOKEN_KEY, token);
    }
}

/// The browser's time zone and language, for the agent's approximate location.
pub fn time_zone_and_language() -> (Option<String>, Option<String>) {
    let options = js_sys::Intl::DateTimeFormat::new(&js_sys::Array::new(), &js_sys::Object::new())
        .resolved_options();
    let zone = js_sys::Reflect::get(&options, &"timeZone".into())
        .ok()
        .and_then(|v| v.as_string());
    let language = web_sys::window().and_then(|w| w.navigator().language());
    (zone, language)
}
