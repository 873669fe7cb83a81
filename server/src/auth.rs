//! Who is calling, as axum extractors: a handler that takes an [`Agent`] or an
//! [`Admin`] gets the check by its signature and cannot forget it. Also the one JSON
//! body extractor, [`Body`], whose rejection is the API's JSON error like every other.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::HeaderMap;
use axum::http::header::{COOKIE, HOST, ORIGIN};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::api::HttpError;
use crate::store::AgentRecord;

/// Whether a browser request comes from Parlor's own pages. Requests without an
/// `Origin` (not from a browser page) carry no victim's cookie and pass.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    origin_host.is_some_and(|h| !host.is_empty() && h.eq_ignore_ascii_case(host))
}

/// The session token of the request's cookie (named `cookie`, see
/// [`crate::Config::session_cookie`]).
pub fn session_token<'h>(headers: &'h HeaderMap, cookie: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(cookie)?.strip_prefix('='))
}

/// The agent whose session cookie this request carries.
pub async fn signed_in_agent(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<AgentRecord, HttpError> {
    let token =
        session_token(headers, state.config.session_cookie()).ok_or(HttpError::SignedOut)?;
    state
        .store
        .session_agent(token)
        .await?
        .ok_or(HttpError::SignedOut)
}

/// A request from Parlor's own pages (or from no browser page at all): what every call
/// that signs in or out or changes something needs, checked before who is calling.
pub struct SameOrigin;

impl<S: Send + Sync> FromRequestParts<S> for SameOrigin {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, HttpError> {
        if same_origin(&parts.headers) {
            Ok(Self)
        } else {
            Err(HttpError::CrossOrigin)
        }
    }
}

/// A signed-in agent (admins included).
pub struct Agent(pub AgentRecord);

impl FromRequestParts<AppState> for Agent {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, HttpError> {
        signed_in_agent(state, &parts.headers).await.map(Self)
    }
}

/// A signed-in admin, on a request from Parlor's own pages (the cookie is SameSite, and
/// the Origin is checked as well for every change an admin makes).
pub struct Admin(pub AgentRecord);

impl FromRequestParts<AppState> for Admin {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, HttpError> {
        SameOrigin::from_request_parts(parts, state).await?;
        let agent = signed_in_agent(state, &parts.headers).await?;
        if agent.profile.is_admin {
            Ok(Self(agent))
        } else {
            Err(HttpError::NotAdmin)
        }
    }
}

/// A JSON body. A malformed one is refused with the API's JSON error, saying what is
/// wrong, instead of axum's plain-text rejection.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = HttpError;

    async fn from_request(request: Request, state: &S) -> Result<Self, HttpError> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(HttpError::Malformed(rejection_text(&rejection))),
        }
    }
}

/// A request's query string, read into `T`. One that does not read is refused with
/// the API's JSON error, saying what is wrong.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, HttpError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(HttpError::Malformed(format!(
                "The query could not be read: {}",
                rejection.body_text()
            ))),
        }
    }
}

fn rejection_text(rejection: &JsonRejection) -> String {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            "Send the body as JSON (Content-Type: application/json).".into()
        }
        other => format!("The body could not be read: {}", other.body_text()),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).expect("valid header"));
        }
        map
    }

    #[test]
    fn a_page_from_another_site_is_not_same_origin() {
        assert!(same_origin(&headers(&[
            ("host", "parlor.test"),
            ("origin", "https://parlor.test")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "parlor.test"),
            ("origin", "https://evil.test")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "parlor.test"),
            ("origin", "null")
        ])));
        assert!(same_origin(&headers(&[("host", "parlor.test")])));
    }

    #[test]
    fn the_session_token_is_found_among_other_cookies() {
        let h = headers(&[("cookie", "theme=dark; parlor_session=abc123; x=y")]);
        assert_eq!(session_token(&h, "parlor_session"), Some("abc123"));
        assert_eq!(
            session_token(
                &headers(&[("cookie", "parlor_sessionx=1")]),
                "parlor_session"
            ),
            None
        );
        assert_eq!(session_token(&h, "__Host-parlor_session"), None);
    }
}
