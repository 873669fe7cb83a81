//! The HTTP API: agent sign-in with an HttpOnly session cookie, and who am I.

use std::time::Duration;

use axum::extract::State;
use axum::http::header::{COOKIE, HOST, ORIGIN, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use parlor_protocol::{AgentProfile, ApiError, LoginRequest};

use crate::AppState;
use crate::store::{AgentRecord, StoreError};

pub const SESSION_COOKIE: &str = "parlor_session";
const SESSION_LIFETIME: Duration = Duration::from_secs(14 * 24 * 60 * 60);

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("Please sign in.")]
    SignedOut,
    #[error("Wrong email or password.")]
    WrongLogin,
    #[error("This request comes from another site.")]
    CrossOrigin,
    #[error("Something went wrong on our side; please try again.")]
    Store(#[from] StoreError),
}

impl HttpError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::SignedOut | Self::WrongLogin => StatusCode::UNAUTHORIZED,
            Self::CrossOrigin => StatusCode::FORBIDDEN,
            Self::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        if let Self::Store(error) = &self {
            tracing::error!(%error, "storage failed during a request");
        }
        let body = ApiError {
            error: self.to_string(),
        };
        (self.status_code(), Json(body)).into_response()
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/me", get(me))
}

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

fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(SESSION_COOKIE)?.strip_prefix('='))
}

/// The agent whose session cookie this request carries.
pub async fn signed_in_agent(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<AgentRecord, HttpError> {
    let token = session_token(headers).ok_or(HttpError::SignedOut)?;
    state
        .store
        .session_agent(token)
        .await?
        .ok_or(HttpError::SignedOut)
}

fn cookie(value: &str, max_age: Duration, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{SESSION_COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        max_age.as_secs()
    );
    // Built from hex and digits only, so it is always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(request): Json<LoginRequest>,
) -> Result<Response, HttpError> {
    if !same_origin(&headers) {
        return Err(HttpError::CrossOrigin);
    }
    let id = state
        .store
        .check_login(&request.email, &request.password)
        .await?
        .ok_or(HttpError::WrongLogin)?;
    let agent = state.store.agent(id).await?.ok_or(HttpError::WrongLogin)?;
    let token = state.store.create_session(id, SESSION_LIFETIME).await?;
    let set_cookie = cookie(&token, SESSION_LIFETIME, state.config.secure_cookies);
    Ok(([(SET_COOKIE, set_cookie)], Json(agent.profile)).into_response())
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, HttpError> {
    if !same_origin(&headers) {
        return Err(HttpError::CrossOrigin);
    }
    if let Some(token) = session_token(&headers) {
        state.store.delete_session(token).await?;
    }
    let clear = cookie("", Duration::ZERO, state.config.secure_cookies);
    Ok(([(SET_COOKIE, clear)], StatusCode::NO_CONTENT).into_response())
}

async fn me(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<AgentProfile>, HttpError> {
    Ok(Json(signed_in_agent(&state, &headers).await?.profile))
}

#[cfg(test)]
mod tests {
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
        assert_eq!(session_token(&h), Some("abc123"));
        assert_eq!(
            session_token(&headers(&[("cookie", "parlor_sessionx=1")])),
            None
        );
    }
}
