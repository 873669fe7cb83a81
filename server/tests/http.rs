//! What every HTTP answer carries and whom Parlor answers at all: security headers on
//! every response, the Host allow-list against DNS rebinding, the `__Host-` cookie and
//! HSTS behind HTTPS, and the first admin's password rules.

mod common;

use common::*;
use parlor_server::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A raw HTTP/1.1 request with the given Host; the whole answer as text.
async fn raw(addr: std::net::SocketAddr, path: &str, host: &str, extra: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("writes");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("reads");
    answer
}

#[tokio::test]
async fn every_response_says_nosniff_and_keeps_its_address_to_parlor() {
    let server = Server::start().await;
    let host = server.running.addr.to_string();
    for path in ["/healthz", "/api/me", "/widget.js", "/nowhere"] {
        let answer = raw(server.running.addr, path, &host, "")
            .await
            .to_lowercase();
        assert!(
            answer.contains("x-content-type-options: nosniff"),
            "{path}: {answer}"
        );
        assert!(answer.contains("referrer-policy: same-origin"), "{path}");
        assert!(
            !answer.contains("strict-transport-security"),
            "no HSTS over plain HTTP"
        );
    }
}

#[tokio::test]
async fn health_is_200_while_the_database_answers_and_503_once_it_does_not() {
    let server = Server::start().await;
    let answer = reqwest::get(server.url("/healthz")).await.expect("answers");
    assert_eq!(answer.status(), 200);
    let body: serde_json::Value = answer.json().await.expect("json");
    assert_eq!(body["database"], "ok");

    server.running.state.store.close().await;
    let answer = reqwest::get(server.url("/healthz")).await.expect("answers");
    assert_eq!(answer.status(), 503);
    let body: serde_json::Value = answer.json().await.expect("json");
    assert_eq!(body["database"], "failing", "and no more than that: {body}");
}

#[tokio::test]
async fn a_local_parlor_answers_only_to_loopback_names() {
    let server = Server::start().await;
    let port = server.running.addr.port();
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "LOCALHOST".into(),
    ] {
        let answer = raw(server.running.addr, "/healthz", &host, "").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{host}: {answer}");
    }
    // A page of evil.example whose name was pointed at 127.0.0.1.
    let answer = raw(
        server.running.addr,
        "/api/me",
        &format!("evil.example:{port}"),
        "",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 421"), "{answer}");
}

#[tokio::test]
async fn behind_https_the_cookie_is_host_prefixed_and_browsers_keep_to_https() {
    let server = Server::start_with(|config| {
        config.public_url = Some(parlor_server::config::PublicUrl {
            https: true,
            host: "chat.example.com".into(),
        });
    })
    .await;
    let answer = raw(server.running.addr, "/healthz", "chat.example.com", "").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer
            .to_lowercase()
            .contains("strict-transport-security: max-age=31536000")
    );
    let answer = raw(server.running.addr, "/healthz", "127.0.0.1", "").await;
    assert!(
        answer.starts_with("HTTP/1.1 421"),
        "only the public name: {answer}"
    );

    let login = reqwest::Client::new()
        .post(server.url("/api/login"))
        .header("host", "chat.example.com")
        .json(&serde_json::json!({ "email": "admin@parlor.local", "password": PASSWORD }))
        .send()
        .await
        .expect("answers");
    assert!(login.status().is_success());
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a cookie")
        .to_owned();
    assert!(cookie.starts_with("__Host-parlor_session="), "{cookie}");
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    // The cookie opens the session; the old name does not.
    let pair = cookie.split(';').next().expect("pair");
    let me = raw(
        server.running.addr,
        "/api/me",
        "chat.example.com",
        &format!("Cookie: {pair}\r\n"),
    )
    .await;
    assert!(me.starts_with("HTTP/1.1 200"), "{me}");
    let token = pair.split_once('=').expect("value").1;
    let old = raw(
        server.running.addr,
        "/api/me",
        "chat.example.com",
        &format!("Cookie: parlor_session={token}\r\n"),
    )
    .await;
    assert!(old.starts_with("HTTP/1.1 401"), "{old}");
}

#[tokio::test]
async fn a_chosen_first_admin_password_follows_the_same_minimum_as_any() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::for_data_dir(dir.path().to_path_buf());
    config.admin_password = Some("short".into());
    match parlor_server::start(config).await {
        Err(parlor_server::StartError::AdminPassword) => {}
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("a five-character admin password was accepted"),
    }
}
