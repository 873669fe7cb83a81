//! The console's few HTTP calls (sign in, sign out, who am I), with the session cookie.

use parlor_protocol::ApiError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Request, RequestCredentials, RequestInit, Response};

/// Calls the API; on success parses the JSON answer, else returns the error sentence.
pub async fn call<T: DeserializeOwned>(
    method: &str,
    url: &str,
    body: Option<&impl Serialize>,
) -> Result<T, String> {
    let (status, text) = fetch(method, url, body)
        .await
        .map_err(|_| "Parlor cannot be reached; check your connection and try again.".to_owned())?;
    if (200..300).contains(&status) {
        serde_json::from_str(if text.is_empty() { "null" } else { &text })
            .map_err(|e| format!("Unexpected answer from Parlor: {e}"))
    } else {
        Err(serde_json::from_str::<ApiError>(&text)
            .map(|e| e.error)
            .unwrap_or_else(|_| format!("Parlor answered {status}.")))
    }
}

/// Whether Parlor says this browser's session has ended (signed out elsewhere, a new
/// password, deactivated, expired). `false` when Parlor cannot be reached.
pub async fn session_ended() -> bool {
    matches!(fetch("GET", "/api/me", None::<&()>).await, Ok((401, _)))
}

async fn fetch(
    method: &str,
    url: &str,
    body: Option<&impl Serialize>,
) -> Result<(u16, String), JsValue> {
    let init = RequestInit::new();
    init.set_method(method);
    init.set_credentials(RequestCredentials::SameOrigin);
    if let Some(body) = body {
        let json = serde_json::to_string(body).map_err(|e| JsValue::from_str(&e.to_string()))?;
        init.set_body(&JsValue::from_str(&json));
    }
    let request = Request::new_with_str_and_init(url, &init)?;
    request.headers().set("Content-Type", "application/json")?;
    let window = web_sys::window().ok_or_else(|| JsValue::from_str("no window"))?;
    let response: Response = JsFuture::from(window.fetch_with_request(&request))
        .await?
        .dyn_into()?;
    let text = JsFuture::from(response.text()?)
        .await?
        .as_string()
        .unwrap_or_default();
    Ok((response.status(), text))
}
