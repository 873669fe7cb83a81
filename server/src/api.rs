//! The HTTP API: agent sign-in with an HttpOnly session cookie, who am I, and what admins
//! manage: macros, agents, groups, routing settings; and each case's offer log.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::{ConnectInfo, Path};
use axum::http::header::{RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use parlor_protocol::{
    AgentAccount, AgentInput, AgentProfile, ApiError, CaseFilter, CaseSummary, ChatSettings, Group,
    GroupInput, LoginRequest, MAX_NAME_CHARS, Macro, MacroInput, OfferLogEntry, RoutingSettings,
    ToAgent, WidgetSettings, check_message, one_line,
};

use crate::AppState;
use crate::auth::{Admin, Agent, Body, Params, SameOrigin, session_token};
use crate::client;
use crate::routing::Event;
use crate::settings::{
    AGENT_GRACE_KEY, CHANNEL_ROUTING_KEY, INACTIVITY_TIMEOUT_KEY, SCREEN_POP_TIMEOUT_KEY,
    WIDGET_KEY, message_keys,
};
use crate::store::{Caller, StoreError};

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
    /// A body that is not the JSON this route takes.
    #[error("{0}")]
    Malformed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("Too many wrong passwords. Try again in {} seconds.", retry_secs(*.0))]
    TooManyAttempts(Duration),
    #[error("Parlor is busy; please try again in a moment.")]
    Busy,
    #[error("Something went wrong on our side; please try again.")]
    Store(StoreError),
}

/// Whole seconds, rounded up: what `Retry-After` says.
fn retry_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

impl From<StoreError> for HttpError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NameTaken | StoreError::EmailTaken => {
                Self::Conflict(format!("{}.", capitalised(&error.to_string())))
            }
            StoreError::PasswordsBusy => Self::Busy,
            StoreError::CaseNotFound => Self::NotFound("case"),
            StoreError::GroupNotFound => Self::NotFound("group"),
            StoreError::LastAdmin => {
                Self::Conflict("Parlor needs at least one active admin.".into())
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
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
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
        let retry_after = match &self {
            Self::TooManyAttempts(wait) => Some(retry_secs(*wait)),
            Self::Busy => Some(1),
            _ => None,
        };
        let mut response = (self.status_code(), Json(body)).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/logout/everywhere", post(logout_everywhere))
        .route("/api/me", get(me))
        .route("/api/macros", get(list_macros).post(create_macro))
        .route("/api/macros/{id}", put(update_macro).delete(delete_macro))
        .route("/api/agents", get(list_agents).post(create_agent))
        .route("/api/agents/{id}", put(update_agent).delete(remove_agent))
        .route("/api/groups", get(list_groups).post(create_group))
        .route("/api/groups/{id}", put(rename_group).delete(delete_group))
        .route(
            "/api/settings/routing",
            get(routing_settings).put(set_routing_settings),
        )
        .route("/api/cases/{id}/offers", get(case_offers))
        .route("/api/cases", get(recent_cases))
        .route(
            "/api/settings/chat",
            get(get_chat_settings).put(put_chat_settings),
        )
        .route(
            "/api/settings/widget",
            get(get_widget_settings).put(put_widget_settings),
        )
}

fn cookie(value: &str, max_age: Duration, config: &crate::Config) -> HeaderValue {
    let secure = if config.secure() { "; Secure" } else { "" };
    let text = format!(
        "{}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        config.session_cookie(),
        max_age.as_secs()
    );
    // Built from hex and digits only, so it is always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    _: SameOrigin,
    headers: HeaderMap,
    Body(request): Body<LoginRequest>,
) -> Result<Response, HttpError> {
    // Guessing is throttled per account and per address before any password is checked.
    let account = request.email.trim().to_lowercase();
    let address = client::address_key(&headers, peer.ip(), &state.config);
    let throttle = &state.limits.login;
    throttle
        .check(&account, &address, Instant::now())
        .map_err(HttpError::TooManyAttempts)?;
    let Some(id) = state
        .store
        .check_login(&request.email, &request.password)
        .await?
    else {
        throttle.failed(&account, &address, Instant::now());
        // Who tried and from where; never what they typed as the password.
        tracing::warn!(account = %account.chars().take(200).collect::<String>(), %address, "failed sign-in");
        return Err(HttpError::WrongLogin);
    };
    throttle.succeeded(&account);
    let agent = state.store.agent(id).await?.ok_or(HttpError::WrongLogin)?;
    let token = state.store.create_session(id, SESSION_LIFETIME).await?;
    let set_cookie = cookie(&token, SESSION_LIFETIME, &state.config);
    Ok(([(SET_COOKIE, set_cookie)], Json(agent.profile)).into_response())
}

async fn logout(
    State(state): State<AppState>,
    _: SameOrigin,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    if let Some(token) = session_token(&headers, state.config.session_cookie()) {
        // The session ends here, and so do its open consoles.
        let ended = state.store.delete_session(token).await?;
        state.hub.kick_sessions(&[ended]);
    }
    let clear = cookie("", Duration::ZERO, &state.config);
    Ok(([(SET_COOKIE, clear)], StatusCode::NO_CONTENT).into_response())
}

/// Ends every session of the agent (every browser they signed in on) and closes
/// their consoles.
async fn logout_everywhere(
    State(state): State<AppState>,
    _: SameOrigin,
    Agent(agent): Agent,
) -> Result<Response, HttpError> {
    let ended = state.store.end_sessions_of(agent.profile.id, None).await?;
    state.hub.kick_sessions(&ended);
    let clear = cookie("", Duration::ZERO, &state.config);
    Ok(([(SET_COOKIE, clear)], StatusCode::NO_CONTENT).into_response())
}

async fn me(Agent(agent): Agent) -> Json<AgentProfile> {
    Json(agent.profile)
}

/// A macro's name and body as they are saved: the body must be a valid message whose
/// Liquid reads, or it would fail every time an agent sends it.
async fn checked_macro(
    state: &AppState,
    input: &MacroInput,
) -> Result<(String, String), HttpError> {
    let invalid = |e: parlor_protocol::TextError| HttpError::Invalid(e.to_string());
    let name = one_line(&input.name, "name", MAX_NAME_CHARS).map_err(invalid)?;
    let body = check_message(&input.body).map_err(invalid)?;
    state
        .templates
        .check_macro(&body)
        .await
        .map_err(|e| HttpError::Invalid(format!("Not saved. {e}")))?;
    Ok((name, body))
}

async fn list_macros(
    State(state): State<AppState>,
    _: Agent,
) -> Result<Json<Vec<Macro>>, HttpError> {
    Ok(Json(state.store.macros().await?))
}

async fn create_macro(
    State(state): State<AppState>,
    _: Admin,
    Body(input): Body<MacroInput>,
) -> Result<(StatusCode, Json<Macro>), HttpError> {
    let (name, body) = checked_macro(&state, &input).await?;
    Ok((
        StatusCode::CREATED,
        Json(state.store.create_macro(&name, &body).await?),
    ))
}

async fn update_macro(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<i64>,
    Body(input): Body<MacroInput>,
) -> Result<Json<Macro>, HttpError> {
    let (name, body) = checked_macro(&state, &input).await?;
    let updated = state.store.update_macro(id, &name, &body).await?;
    updated.map(Json).ok_or(HttpError::NotFound("macro"))
}

async fn delete_macro(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<i64>,
) -> Result<StatusCode, HttpError> {
    if state.store.delete_macro(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(HttpError::NotFound("macro"))
    }
}

// ------------------------------------------------------------------ agents, groups

/// The most chats one agent can be given at once.
const MAX_CAPACITY: u32 = 50;
/// The shortest password an agent may have.
pub const MIN_PASSWORD_CHARS: usize = 8;

async fn checked_account(
    state: &AppState,
    id: i64,
    input: &AgentInput,
) -> Result<AgentAccount, HttpError> {
    let invalid = |e: parlor_protocol::TextError| HttpError::Invalid(e.to_string());
    let name = one_line(&input.name, "name", MAX_NAME_CHARS).map_err(invalid)?;
    let email = one_line(&input.email, "email", 200).map_err(invalid)?;
    if !email.contains('@') {
        return Err(HttpError::Invalid("The email needs an @.".into()));
    }
    if let Some(password) = &input.password
        && password.chars().count() < MIN_PASSWORD_CHARS
    {
        return Err(HttpError::Invalid(format!(
            "The password needs at least {MIN_PASSWORD_CHARS} characters."
        )));
    }
    if !(1..=MAX_CAPACITY).contains(&input.capacity) {
        return Err(HttpError::Invalid(format!(
            "Capacity is how many chats at once: 1 to {MAX_CAPACITY}."
        )));
    }
    let groups = state.store.groups().await?;
    if input
        .groups
        .iter()
        .any(|g| !groups.iter().any(|known| known.id == *g))
    {
        return Err(HttpError::Invalid("There is no such group.".into()));
    }
    Ok(AgentAccount {
        id,
        name,
        email,
        is_admin: input.is_admin,
        active: input.active,
        capacity: input.capacity,
        groups: input.groups.clone(),
        online: state.hub.consoles_of(id) > 0,
    })
}

async fn list_agents(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<Vec<AgentAccount>>, HttpError> {
    let mut accounts = state.store.accounts().await?;
    for account in &mut accounts {
        account.online = state.hub.consoles_of(account.id) > 0;
    }
    Ok(Json(accounts))
}

async fn create_agent(
    State(state): State<AppState>,
    _: Admin,
    Body(input): Body<AgentInput>,
) -> Result<(StatusCode, Json<AgentAccount>), HttpError> {
    let Some(password) = input.password.clone() else {
        return Err(HttpError::Invalid("A new agent needs a password.".into()));
    };
    let mut account = checked_account(&state, 0, &input).await?;
    account.id = state
        .store
        .create_agent(&account.email, &account.name, &password, account.is_admin)
        .await?;
    state.store.update_account(&account, None).await?;
    Ok((StatusCode::CREATED, Json(account)))
}

async fn update_agent(
    State(state): State<AppState>,
    headers: HeaderMap,
    Admin(me): Admin,
    Path(id): Path<i64>,
    Body(input): Body<AgentInput>,
) -> Result<Json<AgentAccount>, HttpError> {
    let account = checked_account(&state, id, &input).await?;
    let before = state
        .store
        .account(id)
        .await?
        .ok_or(HttpError::NotFound("agent"))?;
    let loses_admin = before.is_admin && before.active && !(account.is_admin && account.active);
    if loses_admin && id == me.profile.id {
        return Err(HttpError::Conflict(
            "You cannot deactivate yourself or take your own admin role; ask another admin.".into(),
        ));
    }
    state
        .store
        .update_account(&account, input.password.as_deref())
        .await?;
    if input.password.is_some() && account.active {
        // A new password signs the agent out everywhere (but the admin setting their
        // own keeps the session they are using).
        let keep =
            session_token(&headers, state.config.session_cookie()).filter(|_| id == me.profile.id);
        let ended = state.store.end_sessions_of(id, keep).await?;
        state.hub.kick_sessions(&ended);
    }
    if account.active {
        state.routing.send(Event::AgentUpdated {
            agent: id,
            capacity: account.capacity,
            groups: account.groups.clone(),
        });
    } else {
        // Their sessions are gone; their open consoles close now, and routing forgets them.
        state.hub.kick_agent(id);
        state.routing.send(Event::AgentRemoved { agent: id });
    }
    Ok(Json(account))
}

/// Removes an agent: signed out at once, their live chats back in the queue now (the
/// customers are told the agent left), gone from the lists; their past cases keep their
/// name and their email is free for a new account.
async fn remove_agent(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path(id): Path<i64>,
) -> Result<StatusCode, HttpError> {
    if id == me.profile.id {
        return Err(HttpError::Conflict(
            "You cannot remove yourself; ask another admin.".into(),
        ));
    }
    if !state.store.remove_agent(id).await? {
        return Err(HttpError::NotFound("agent"));
    }
    state.hub.kick_agent(id);
    state.routing.send(Event::AgentRemoved { agent: id });
    state.chats.requeue_all_of(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_groups(
    State(state): State<AppState>,
    _: Agent,
) -> Result<Json<Vec<Group>>, HttpError> {
    Ok(Json(state.store.groups().await?))
}

fn group_name(input: &GroupInput) -> Result<String, HttpError> {
    one_line(&input.name, "name", MAX_NAME_CHARS).map_err(|e| HttpError::Invalid(e.to_string()))
}

async fn create_group(
    State(state): State<AppState>,
    _: Admin,
    Body(input): Body<GroupInput>,
) -> Result<(StatusCode, Json<Group>), HttpError> {
    let name = group_name(&input)?;
    Ok((
        StatusCode::CREATED,
        Json(state.store.create_group(&name).await?),
    ))
}

async fn rename_group(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<i64>,
    Body(input): Body<GroupInput>,
) -> Result<Json<Group>, HttpError> {
    let name = group_name(&input)?;
    if state.store.rename_group(id, &name).await? {
        Ok(Json(Group { id, name }))
    } else {
        Err(HttpError::NotFound("group"))
    }
}

/// Removes a group. Its agents stay; chats that were for it are for no group (a waiting
/// one goes to whoever is free). Connected agents' routing forgets it at their next
/// change; until then it simply matches no chat.
async fn delete_group(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<i64>,
) -> Result<StatusCode, HttpError> {
    if state.store.delete_group(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(HttpError::NotFound("group"))
    }
}

// ------------------------------------------------------------------------ routing

const SCREEN_POP_SECS: std::ops::RangeInclusive<u32> = 3..=600;

async fn routing_settings(
    State(state): State<AppState>,
    _: Agent,
) -> Result<Json<RoutingSettings>, HttpError> {
    let settings = state.settings.get();
    Ok(Json(RoutingSettings {
        channel_routing: settings.channel_routing,
        screen_pop_timeout_secs: u32::try_from(settings.screen_pop_timeout_ms / 1000)
            .unwrap_or(u32::MAX),
    }))
}

async fn set_routing_settings(
    State(state): State<AppState>,
    _: Admin,
    Body(input): Body<RoutingSettings>,
) -> Result<Json<RoutingSettings>, HttpError> {
    if !SCREEN_POP_SECS.contains(&input.screen_pop_timeout_secs) {
        return Err(HttpError::Invalid(format!(
            "The screen-pop timeout must be {} to {} seconds.",
            SCREEN_POP_SECS.start(),
            SCREEN_POP_SECS.end()
        )));
    }
    let was_on = state.settings.get().channel_routing;
    let ms = u64::from(input.screen_pop_timeout_secs) * 1000;
    state
        .store
        .set_setting(SCREEN_POP_TIMEOUT_KEY, &ms.to_string())
        .await?;
    state
        .store
        .set_setting(
            CHANNEL_ROUTING_KEY,
            if input.channel_routing { "1" } else { "0" },
        )
        .await?;
    reload_settings(&state).await?;
    if was_on != input.channel_routing {
        state.routing.send(Event::ChannelRouting {
            on: input.channel_routing,
        });
        state.hub.send_all_agents(&ToAgent::ChannelRouting {
            on: input.channel_routing,
        });
    }
    Ok(Json(input))
}

async fn case_offers(
    State(state): State<AppState>,
    Agent(agent): Agent,
    Path(id): Path<i64>,
) -> Result<Json<Vec<OfferLogEntry>>, HttpError> {
    state
        .store
        .case_for(Caller::Agent(agent.profile.id), id)
        .await?;
    Ok(Json(state.store.offer_log(id).await?))
}

// ------------------------------------------------------------------- widget settings

async fn get_widget_settings(
    State(state): State<AppState>,
    _: Agent,
) -> Result<Json<WidgetSettings>, HttpError> {
    Ok(Json(state.settings.get().widget.clone()))
}

/// The Appearance page's settings: checked whole (nothing is stored when one field is
/// wrong), then live for the next widget that connects and the next `widget.js`.
async fn put_widget_settings(
    State(state): State<AppState>,
    _: Admin,
    Body(input): Body<WidgetSettings>,
) -> Result<Json<WidgetSettings>, HttpError> {
    let widget = input
        .checked()
        .map_err(|problem| HttpError::Invalid(problem.message))?;
    let json = serde_json::to_string(&widget)
        .map_err(|e| HttpError::Invalid(format!("Unreadable settings: {e}")))?;
    state.store.set_setting(WIDGET_KEY, &json).await?;
    reload_settings(&state).await?;
    Ok(Json(widget))
}

// --------------------------------------------------------------------- chat settings

const TIMEOUT_SECS: std::ops::RangeInclusive<u32> = 1..=86_400;

fn chat_settings(settings: &crate::settings::Settings) -> ChatSettings {
    ChatSettings {
        inactivity_timeout_secs: u32::try_from(settings.inactivity_timeout_ms / 1000)
            .unwrap_or(u32::MAX),
        agent_grace_secs: u32::try_from(settings.agent_grace_ms / 1000).unwrap_or(u32::MAX),
        messages: settings.message_settings(),
    }
}

async fn get_chat_settings(
    State(state): State<AppState>,
    _: Agent,
) -> Result<Json<ChatSettings>, HttpError> {
    Ok(Json(stored_chat_settings(&state).await?))
}

/// The chat settings with every message's stored text, also of those switched off.
async fn stored_chat_settings(state: &AppState) -> Result<ChatSettings, HttpError> {
    let mut settings = chat_settings(&state.settings.get());
    // A message switched off keeps its stored text, so switching it on brings it back.
    for message in &mut settings.messages {
        let (text_key, _) = message_keys(message.kind);
        if let Some(text) = state.store.setting(&text_key).await? {
            message.text = text;
        }
    }
    Ok(settings)
}

async fn put_chat_settings(
    State(state): State<AppState>,
    _: Admin,
    Body(input): Body<ChatSettings>,
) -> Result<Json<ChatSettings>, HttpError> {
    for (secs, what) in [
        (input.inactivity_timeout_secs, "inactivity timeout"),
        (input.agent_grace_secs, "agent grace period"),
    ] {
        if !TIMEOUT_SECS.contains(&secs) {
            return Err(HttpError::Invalid(format!(
                "The {what} must be {} to {} seconds.",
                TIMEOUT_SECS.start(),
                TIMEOUT_SECS.end()
            )));
        }
    }
    let mut texts = Vec::new();
    for message in &input.messages {
        let text = one_line(
            &message.text,
            "message text",
            parlor_protocol::MAX_SUBJECT_CHARS,
        )
        .map_err(|e| HttpError::Invalid(format!("{}: {e}", message.kind.label())))?;
        texts.push((message.kind, message.on, text));
    }
    let store = &state.store;
    store
        .set_setting(
            INACTIVITY_TIMEOUT_KEY,
            &(u64::from(input.inactivity_timeout_secs) * 1000).to_string(),
        )
        .await?;
    store
        .set_setting(
            AGENT_GRACE_KEY,
            &(u64::from(input.agent_grace_secs) * 1000).to_string(),
        )
        .await?;
    for (kind, on, text) in texts {
        let (text_key, on_key) = message_keys(kind);
        store.set_setting(&text_key, &text).await?;
        store
            .set_setting(&on_key, if on { "1" } else { "0" })
            .await?;
    }
    reload_settings(&state).await?;
    Ok(Json(stored_chat_settings(&state).await?))
}

/// Reads the settings again after an admin changed them, and has the other nodes do
/// the same.
async fn reload_settings(state: &AppState) -> Result<(), HttpError> {
    state.settings.reload(&state.store).await?;
    state.hub.tell_others(crate::bus::Fanout::Settings);
    Ok(())
}

/// How many cases the case list shows.
/// The longest text the Cases page searches for.
const MAX_SEARCH_CHARS: usize = 100;

/// Newest first, a page at a time, narrowed by the filters given.
async fn recent_cases(
    State(state): State<AppState>,
    _: Agent,
    Params(filter): Params<CaseFilter>,
) -> Result<Json<Vec<CaseSummary>>, HttpError> {
    if filter
        .q
        .as_ref()
        .is_some_and(|q| q.chars().count() > MAX_SEARCH_CHARS)
    {
        return Err(HttpError::Invalid(format!(
            "Search for at most {MAX_SEARCH_CHARS} characters."
        )));
    }
    Ok(Json(state.store.recent_cases(&filter).await?))
}
