//! What the socket tests share: a server on port 0 with a fresh database (SQLite, or
//! PostgreSQL when the tests run on it), and real
//! WebSocket and HTTP clients that speak to it as a widget and a console would.
#![allow(dead_code, unused_imports)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use parlor_protocol::{
    AgentFrame, Author, ChatState, EndedBy, ErrorCode, MAX_FRAME_BYTES, OfferClosed, RoutingChange,
    ToAgent, ToVisitor, VisitorFrame,
};
use parlor_server::store::Caller;
use parlor_server::{Config, Running};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Message, http::HeaderValue};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

pub mod cluster;
pub mod process;
pub mod traffic;
pub use process::Parlor;

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub const PASSWORD: &str = "integration-password";

pub struct Server {
    pub running: Running,
    _dir: tempfile::TempDir,
}

impl Server {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A server whose configuration `tweak` changes first.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::for_data_dir(dir.path().to_path_buf());
        config.database_url = parlor_server::store::Store::test_database_url(dir.path())
            .await
            .expect("a database");
        config.admin_password = Some(PASSWORD.into());
        tweak(&mut config);
        let running = parlor_server::start(config).await.expect("server starts");
        Self { running, _dir: dir }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.addr)
    }

    /// Signs the admin in and returns the session cookie.
    pub async fn sign_in(&self) -> String {
        self.sign_in_as("admin@parlor.local", PASSWORD).await
    }

    /// Signs an agent in and returns the session cookie.
    pub async fn sign_in_as(&self, email: &str, password: &str) -> String {
        sign_in_at(self.running.addr, email, password).await
    }

    /// The admin's console socket, past its welcome.
    pub async fn agent(&self) -> Ws {
        let cookie = self.sign_in().await;
        let (ws, routing) = self.console(&cookie).await;
        assert!(routing, "the admin starts with routing on");
        ws
    }

    /// A console socket signed in by `cookie`, past its welcome, and its routing switch.
    pub async fn console(&self, cookie: &str) -> (Ws, bool) {
        console_at(self.running.addr, cookie).await
    }

    /// A widget socket that said hello with `token`, and the server's answer.
    pub async fn widget(&self, token: Option<String>, since: i64) -> (Ws, ToVisitor) {
        widget_at(self.running.addr, token, since).await
    }

    /// Makes an agent account and opens their console socket.
    pub async fn second_agent(&self, email: &str) -> Ws {
        self.running
            .state
            .store
            .create_agent(email, "Bea", "bea-password-1", false)
            .await
            .expect("agent made");
        let cookie = self.sign_in_as(email, "bea-password-1").await;
        self.console(&cookie).await.0
    }

    /// An admin's `PUT /api/agents/{id}` switching the account of `name` and `email`
    /// off; its status.
    pub async fn switch_off(
        &self,
        cookie: &str,
        id: i64,
        (name, email, is_admin): (&str, &str, bool),
    ) -> reqwest::StatusCode {
        let body = serde_json::json!({
            "name": name, "email": email, "is_admin": is_admin,
            "active": false, "capacity": 3, "groups": []
        });
        self.put_agent(cookie, id, body).await
    }

    /// An admin's `PUT /api/agents/{id}`; its status.
    pub async fn put_agent(
        &self,
        cookie: &str,
        id: i64,
        body: serde_json::Value,
    ) -> reqwest::StatusCode {
        reqwest::Client::new()
            .put(self.url(&format!("/api/agents/{id}")))
            .header("cookie", cookie)
            .json(&body)
            .send()
            .await
            .expect("answers")
            .status()
    }

    pub async fn put_routing(&self, channel_routing: bool, secs: u32) -> reqwest::StatusCode {
        let cookie = self.sign_in().await;
        put_routing_at(self.running.addr, &cookie, channel_routing, secs).await
    }

    /// An admin's `POST /api/agents`: its status and the account it answered.
    pub async fn post_agent(
        &self,
        cookie: &str,
        body: serde_json::Value,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        self.post_json("/api/agents", cookie, body).await
    }

    /// `GET path` with `cookie`, read as JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str, cookie: &str) -> T {
        reqwest::Client::new()
            .get(self.url(path))
            .header("cookie", cookie)
            .send()
            .await
            .expect("answers")
            .json()
            .await
            .expect("json")
    }

    /// `POST path` with `cookie` and a JSON body: its status and its answer as JSON
    /// (`null` when it has none).
    pub async fn post_json(
        &self,
        path: &str,
        cookie: &str,
        body: serde_json::Value,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let response = reqwest::Client::new()
            .post(self.url(path))
            .header("cookie", cookie)
            .json(&body)
            .send()
            .await
            .expect("answers");
        let status = response.status();
        (status, response.json().await.unwrap_or_default())
    }

    pub async fn visitor(&self) -> (Ws, String) {
        match self.widget(None, 0).await {
            (
                ws,
                ToVisitor::Welcome {
                    token, chat: None, ..
                },
            ) => (ws, token),
            (_, other) => panic!("expected welcome, got {other:?}"),
        }
    }
}

/// Signs an agent in at the server on `addr` and returns the session cookie.
pub async fn sign_in_at(addr: std::net::SocketAddr, email: &str, password: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/api/login"))
        .json(&serde_json::json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("login answers");
    assert!(response.status().is_success());
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie")
        .to_owned();
    assert!(cookie.contains("HttpOnly"));
    cookie.split(';').next().expect("cookie pair").to_owned()
}

/// A console socket to the server on `addr`, signed in by `cookie`, past its
/// welcome, and its routing switch.
pub async fn console_at(addr: std::net::SocketAddr, cookie: &str) -> (Ws, bool) {
    match console_resuming_at(addr, cookie, vec![]).await {
        (ws, ToAgent::Welcome { routing, .. }) => (ws, routing),
        (_, other) => panic!("expected welcome, got {other:?}"),
    }
}

/// A console socket to the server on `addr`, signed in by `cookie`, that said hello
/// holding the chats up to these `cursors`, and the server's answer.
pub async fn console_resuming_at(
    addr: std::net::SocketAddr,
    cookie: &str,
    cursors: Vec<parlor_protocol::Cursor>,
) -> (Ws, ToAgent) {
    let mut request = format!("ws://{addr}/ws/agent")
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("cookie", HeaderValue::from_str(cookie).expect("header"));
    let (mut ws, _) = connect_async(request).await.expect("agent socket opens");
    send(&mut ws, &AgentFrame::Hello { cursors }).await;
    let welcome = recv::<ToAgent>(&mut ws).await;
    (ws, welcome)
}

/// A widget socket that has not said hello.
pub async fn silent_widget_at(addr: std::net::SocketAddr) -> Ws {
    connect_async(format!("ws://{addr}/ws/visitor"))
        .await
        .expect("visitor socket opens")
        .0
}

/// An admin's `PUT /api/settings/routing` at the server on `addr`; its status.
pub async fn put_routing_at(
    addr: std::net::SocketAddr,
    admin: &str,
    channel_routing: bool,
    secs: u32,
) -> reqwest::StatusCode {
    reqwest::Client::new()
        .put(format!("http://{addr}/api/settings/routing"))
        .header("cookie", admin)
        .json(&serde_json::json!({
            "channel_routing": channel_routing,
            "screen_pop_timeout_secs": secs
        }))
        .send()
        .await
        .expect("answers")
        .status()
}

/// A widget socket to the server on `addr` that said hello with `token`, and the
/// server's answer.
pub async fn widget_at(
    addr: std::net::SocketAddr,
    token: Option<String>,
    since: i64,
) -> (Ws, ToVisitor) {
    let mut ws = silent_widget_at(addr).await;
    send(&mut ws, &VisitorFrame::Hello { token, since }).await;
    let welcome = recv::<ToVisitor>(&mut ws).await;
    (ws, welcome)
}

pub async fn send(ws: &mut Ws, frame: &impl Serialize) {
    let json = serde_json::to_string(frame).expect("serialises");
    ws.send(Message::Text(json.into())).await.expect("sent");
}

pub async fn send_raw(ws: &mut Ws, text: &str) {
    ws.send(Message::Text(text.into())).await.expect("sent");
}

/// Frames that report the queue (and whether anyone can take chats) as it changes;
/// most tests look past them.
pub trait Frame: DeserializeOwned {
    fn is_queue_news(&self) -> bool;
}

impl Frame for ToAgent {
    fn is_queue_news(&self) -> bool {
        matches!(self, ToAgent::Waiting { .. })
    }
}

impl Frame for ToVisitor {
    fn is_queue_news(&self) -> bool {
        matches!(
            self,
            ToVisitor::Queue { .. } | ToVisitor::Availability { .. }
        )
    }
}

/// The next frame that is not queue news, within a few seconds.
pub async fn recv<T: Frame>(ws: &mut Ws) -> T {
    loop {
        let frame: T = recv_any(ws).await;
        if !frame.is_queue_news() {
            return frame;
        }
    }
}

/// What `pick` takes from the first frame it takes anything from, queue news included.
pub async fn first_of<T: DeserializeOwned, R>(ws: &mut Ws, pick: impl Fn(T) -> Option<R>) -> R {
    loop {
        if let Some(picked) = pick(recv_any(ws).await) {
            return picked;
        }
    }
}

/// The next frame of any kind, within a few seconds.
pub async fn recv_any<T: DeserializeOwned>(ws: &mut Ws) -> T {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s")
            .expect("socket open")
            .expect("socket healthy");
        if let Message::Text(text) = message {
            return serde_json::from_str(text.as_str())
                .unwrap_or_else(|e| panic!("unreadable frame {text}: {e}"));
        }
    }
}

/// The code the server closes the socket with, within a few seconds (frames before it
/// are skipped); `None` when it closes without one or stays open.
pub async fn close_code(ws: &mut Ws) -> Option<u16> {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(_))) => continue,
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                _ => return None,
            }
        }
    })
    .await
    .ok()
    .flatten()
}

/// Whether no frame but queue news arrives within a short while.
pub async fn quiet<T: Frame>(ws: &mut Ws) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return true,
            Ok(Some(Ok(Message::Text(text)))) => match serde_json::from_str::<T>(text.as_str()) {
                Ok(frame) if frame.is_queue_news() => continue,
                _ => return false,
            },
            Ok(_) => return false,
        }
    }
}

pub fn start_chat(client_id: &str) -> VisitorFrame {
    VisitorFrame::StartChat {
        client_id: client_id.into(),
        name: "Grace Hopper".into(),
        subject: "Order 1042 is late".into(),
        body: "Where is my order?".into(),
        time_zone: Some("Europe/Paris".into()),
        language: Some("fr-FR".into()),
        group: None,
        email: String::new(),
        custom: Default::default(),
    }
}

pub fn start_with(client_id: &str, name: &str, body: &str) -> VisitorFrame {
    VisitorFrame::StartChat {
        client_id: client_id.into(),
        name: name.into(),
        subject: "A subject".into(),
        body: body.into(),
        time_zone: None,
        language: None,
        group: None,
        email: String::new(),
        custom: Default::default(),
    }
}

pub async fn visitor_error(ws: &mut Ws) -> parlor_protocol::ProtocolError {
    match recv::<ToVisitor>(ws).await {
        ToVisitor::Error { error } => error,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// A visitor in a chat the admin has accepted: (agent socket, visitor socket, case).
pub async fn accepted_chat(server: &Server) -> (Ws, Ws, i64) {
    let (agent, visitor, case_id, _) = accepted_chat_with_token(server).await;
    (agent, visitor, case_id)
}

/// [`accepted_chat`], with the visitor's token.
pub async fn accepted_chat_with_token(server: &Server) -> (Ws, Ws, i64, String) {
    let mut agent = server.agent().await;
    let (mut visitor, token) = server.visitor().await;
    send(&mut visitor, &start_chat("first")).await;
    recv::<ToVisitor>(&mut visitor).await;
    let case_id = match recv::<ToAgent>(&mut agent).await {
        ToAgent::Offer { offer } => offer.case_id,
        other => panic!("expected an offer, got {other:?}"),
    };
    send(&mut agent, &AgentFrame::Accept { case_id }).await;
    loop {
        if let ToAgent::ChatOpened { .. } = recv::<ToAgent>(&mut agent).await {
            break;
        }
    }
    // The joined message and the new state.
    recv::<ToVisitor>(&mut visitor).await;
    recv::<ToVisitor>(&mut visitor).await;
    (agent, visitor, case_id, token)
}
