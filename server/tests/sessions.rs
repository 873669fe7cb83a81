//! Sessions end when they should, and their open consoles with them: signing out, a new
//! password, "sign out everywhere", and expiry. A console whose session ended cannot go
//! on watching chats.

mod common;

use std::time::Duration;

use common::*;
use parlor_protocol::AgentFrame;
use reqwest::StatusCode;

/// Whether the socket is closed within a few seconds with the code that tells a console
/// its session ended (so it goes to the sign-in page instead of reconnecting).
async fn closes(ws: &mut Ws) -> bool {
    close_code(ws).await == Some(parlor_protocol::CLOSE_SESSION_ENDED)
}

async fn me(server: &Server, cookie: &str) -> StatusCode {
    reqwest::Client::new()
        .get(server.url("/api/me"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("answers")
        .status()
}

async fn post(server: &Server, path: &str, cookie: &str) -> StatusCode {
    reqwest::Client::new()
        .post(server.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .expect("answers")
        .status()
}

async fn add_agent(server: &Server, admin: &str) -> i64 {
    let (status, account) = server
        .post_agent(
            admin,
            serde_json::json!({
                "name": "Bea", "email": "bea@example.com", "password": "bea-password-1",
                "is_admin": false, "active": true, "capacity": 3, "groups": []
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    account["id"].as_i64().expect("id")
}

#[tokio::test]
async fn signing_out_closes_the_open_console_at_once() {
    let server = Server::start().await;
    let cookie = server.sign_in().await;
    let (mut console, _) = server.console(&cookie).await;
    assert_eq!(
        post(&server, "/api/logout", &cookie).await,
        StatusCode::NO_CONTENT
    );
    assert!(closes(&mut console).await, "the console closes");
    assert_eq!(me(&server, &cookie).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_new_password_ends_the_agents_sessions_and_closes_their_consoles() {
    let server = Server::start().await;
    let admin = server.sign_in().await;
    let bea_id = add_agent(&server, &admin).await;
    let bea = server.sign_in_as("bea@example.com", "bea-password-1").await;
    let (mut console, _) = server.console(&bea).await;
    let (mut admin_console, _) = server.console(&admin).await;

    let changed = server
        .put_agent(
            &admin,
            bea_id,
            serde_json::json!({
                "name": "Bea", "email": "bea@example.com", "password": "a-new-password-2",
                "is_admin": false, "active": true, "capacity": 3, "groups": []
            }),
        )
        .await;
    assert_eq!(changed, StatusCode::OK);
    assert!(closes(&mut console).await, "Bea's console closes");
    assert_eq!(me(&server, &bea).await, StatusCode::UNAUTHORIZED);
    // The new password works; the admin was not touched.
    server
        .sign_in_as("bea@example.com", "a-new-password-2")
        .await;
    assert_eq!(me(&server, &admin).await, StatusCode::OK);
    send(&mut admin_console, &AgentFrame::Ping).await;
    assert_eq!(
        recv::<parlor_protocol::ToAgent>(&mut admin_console).await,
        parlor_protocol::ToAgent::Pong
    );
}

#[tokio::test]
async fn an_admin_setting_their_own_password_keeps_the_session_they_use_and_ends_the_others() {
    let server = Server::start().await;
    let here = server.sign_in().await;
    let elsewhere = server.sign_in().await;
    let (mut other_console, _) = server.console(&elsewhere).await;
    let changed = server
        .put_agent(
            &here,
            1,
            serde_json::json!({
                "name": "Admin", "email": "admin@parlor.local", "password": "another-password-3",
                "is_admin": true, "active": true, "capacity": 3, "groups": []
            }),
        )
        .await;
    assert_eq!(changed, StatusCode::OK);
    assert!(closes(&mut other_console).await);
    assert_eq!(me(&server, &elsewhere).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&server, &here).await, StatusCode::OK);
}

#[tokio::test]
async fn signing_out_everywhere_ends_every_session_of_the_agent_only() {
    let server = Server::start().await;
    let admin = server.sign_in().await;
    add_agent(&server, &admin).await;
    let laptop = server.sign_in_as("bea@example.com", "bea-password-1").await;
    let phone = server.sign_in_as("bea@example.com", "bea-password-1").await;
    let (mut laptop_console, _) = server.console(&laptop).await;
    let (mut phone_console, _) = server.console(&phone).await;

    assert_eq!(
        post(&server, "/api/logout/everywhere", &phone).await,
        StatusCode::NO_CONTENT
    );
    assert!(closes(&mut laptop_console).await);
    assert!(closes(&mut phone_console).await);
    assert_eq!(me(&server, &laptop).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&server, &phone).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&server, &admin).await, StatusCode::OK);
    // Signed out, it is refused like any signed-out call.
    assert_eq!(
        post(&server, "/api/logout/everywhere", &phone).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn expired_sessions_are_forgotten_and_their_consoles_closed() {
    let server = Server::start().await;
    let state = &server.running.state;
    let token = state
        .store
        .create_session(1, Duration::from_millis(400))
        .await
        .expect("session");
    let cookie = format!("parlor_session={token}");
    let (mut console, _) = server.console(&cookie).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // What the minutely sweep does.
    let ended = state
        .store
        .purge_expired_sessions(parlor_server::store::now_ms())
        .await
        .expect("purged");
    assert_eq!(ended.len(), 1, "only the expired session");
    state.hub.kick_sessions(&ended);
    assert!(closes(&mut console).await);
    assert_eq!(me(&server, &cookie).await, StatusCode::UNAUTHORIZED);
}

async fn login(server: &Server, password: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.url("/api/login"))
        .json(&serde_json::json!({ "email": "Admin@Parlor.local", "password": password }))
        .send()
        .await
        .expect("answers")
}

/// A sign-in refused with `429`, no cookie, a JSON reason and `Retry-After: secs`.
async fn told_to_wait(refused: reqwest::Response, secs: &str) {
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after = refused
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok());
    assert_eq!(retry_after, Some(secs));
    assert!(refused.headers().get("set-cookie").is_none());
    let body: serde_json::Value = refused.json().await.expect("a JSON error");
    let reason = body["error"].as_str().unwrap_or_default();
    assert!(reason.contains("Try again"), "{body}");
}

#[tokio::test]
async fn guessing_a_password_is_throttled_with_growing_waits_then_the_right_one_works() {
    let server = Server::start().await;
    for _ in 0..5 {
        assert_eq!(
            login(&server, "guess").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // Now even the right password is not checked until the wait is over.
    told_to_wait(login(&server, PASSWORD).await, "1").await;

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        login(&server, "guess").await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Each further failure doubles the wait.
    told_to_wait(login(&server, PASSWORD).await, "2").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(login(&server, PASSWORD).await.status(), StatusCode::OK);
    // Signed in, the account starts afresh.
    assert_eq!(
        login(&server, "guess").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn two_admins_switching_each_other_off_at_once_leave_one_admin() {
    let server = Server::start().await;
    let first = server.sign_in().await;
    let (made, _) = server
        .post_agent(
            &first,
            serde_json::json!({
                "name": "Second", "email": "second@example.com", "password": "second-password",
                "is_admin": true, "active": true, "capacity": 3, "groups": []
            }),
        )
        .await;
    assert_eq!(made, StatusCode::CREATED);
    let second = server
        .sign_in_as("second@example.com", "second-password")
        .await;
    let (a, b) = tokio::join!(
        server.switch_off(&first, 2, ("Second", "second@example.com", true)),
        server.switch_off(&second, 1, ("Admin", "admin@parlor.local", true)),
    );
    let mut statuses = [a, b];
    statuses.sort();
    // One wins; the other is refused (or, signed out by the first, cannot even ask).
    assert_eq!(statuses[0], StatusCode::OK, "{statuses:?}");
    assert_ne!(statuses[1], StatusCode::OK, "{statuses:?}");
    let admins = server
        .running
        .state
        .store
        .accounts()
        .await
        .expect("accounts")
        .iter()
        .filter(|a| a.is_admin && a.active)
        .count();
    assert_eq!(admins, 1);
}
