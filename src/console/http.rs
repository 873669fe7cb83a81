//! The console's HTTP calls to Parlor's API (`gloo-net`), with the session cookie and
//! JSON both ways.

use gloo::net::http::{Method, RequestBuilder};
use parlor_protocol::ApiError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use web_sys::RequestCredentials;

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
) -> Result<(u16, String), gloo::net::Error> {
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|e| gloo::net::Error::GlooError(e.to_string()))?;
    let request = RequestBuilder::new(url)
        .method(method)
        .credentials(RequestCredentials::SameOrigin);
    let request = match body {
        Some(body) => request.json(body)?,
        None => request.build()?,
    };
    let response = request.send().await?;
    Ok((response.status(), response.text().await?))
}
