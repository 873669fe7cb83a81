//! The HTTP API: agent sign-in with an HttpOnly session cookie, and who am I.

use std::time::Duration;

use axum::extract::Path;
use axum::extract::State;
use axum::http::header::{COOKIE, HOST, ORIGIN, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use parlor_protocol::{
    AgentProfile, ApiError, LoginRequest, MAX_NAME_CHARS, Macro, MacroInput, check_message,
    one_line,
};

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
    #[error("Only admins can do that.")]
    NotAdmin,
    #[error("There is no such {0}.")]
    NotFound(&'static str),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("Something went wrong on our side; please try again.")]
    Store(StoreError),
}

impl From<StoreError> for HttpError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NameTaken | StoreError::EmailTaken => {
                Self::Conflict(format!("{}.", capitalised(&error.to_string())))
            }
            other => Self::Store(other),
        }
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

impl HttpError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::SignedOut | Self::WrongLogin => StatusCode::UNAUTHORIZED,
            Self::CrossOrigin | Self::NotAdmin => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict(_) => StatusCode::CONFLICT,
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
        .route("/api/macros", get(list_macros).post(create_macro))
        .route("/api/macros/{id}", put(update_macro).delete(delete_macro))
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

/// The signed-in agent, if they are an admin and the request comes from Parlor's pages.
async fn admin(state: &AppState, headers: &HeaderMap) -> Result<AgentRecord, HttpError> {
    if !same_origin(headers) {
        return Err(HttpError::CrossOrigin);
    }
    let agent = signed_in_agent(state, headers).await?;
    if agent.profile.is_admin {
        Ok(agent)
    } else {
        Err(HttpError::NotAdmin)
    }
}

fn checked_macro(input: &MacroInput) -> Result<(String, String), HttpError> {
    let invalid = |e: parlor_protocol::TextError| HttpError::Invalid(e.to_string());
    let name = one_line(&input.name, "name", MAX_NAME_CHARS).map_err(invalid)?;
    check_message(&input.body).map_err(invalid)?;
    Ok((name, input.body.clone()))
}

async fn list_macros(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Vec<Macro>>, HttpError> {
    signed_in_agent(&state, &headers).await?;
    Ok(Json(state.store.macros().await?))
}

async fn create_macro(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(input): Json<MacroInput>,
) -> Result<(StatusCode, Json<Macro>), HttpError> {
    admin(&state, &headers).await?;
    let (name, body) = checked_macro(&input)?;
    Ok((
        StatusCode::CREATED,
        Json(state.store.create_macro(&name, &body).await?),
    ))
}

async fn update_macro(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Json(input): Json<MacroInput>,
) -> Result<Json<Macro>, HttpError> {
    admin(&state, &headers).await?;
    let (name, body) = checked_macro(&input)?;
    let updated = state.store.update_macro(id, &name, &body).await?;
    updated.map(Json).ok_or(HttpError::NotFound("macro"))
}

async fn delete_macro(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<StatusCode, HttpError> {
    admin(&state, &headers).await?;
    if state.store.delete_macro(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(HttpError::NotFound("macro"))
    }
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
