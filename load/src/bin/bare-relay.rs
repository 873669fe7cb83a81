//! The floor under any chat server on this machine: a bare axum WebSocket relay that
//! stores nothing, checks nothing and routes nothing. `scripts/bench-load.sh` drives it
//! with `parlor-load --bare` beside Parlor, with the same load, in one run.
//!
//! Agents connect at `/ws/agent/{agent}`, customers at `/ws/customer/{agent}/{customer}`
//! (each customer is served by one agent, as in a chat). A customer's text frame goes
//! to its agent as it is; an agent's frame starts with the customer's number and a
//! space, and goes to that customer.
//!
//! Usage: bare-relay [ADDRESS]   (default 127.0.0.1:9100)

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;

type Sockets = Mutex<HashMap<u64, mpsc::UnboundedSender<Message>>>;

#[derive(Default)]
struct Peers {
    agents: Sockets,
    customers: Sockets,
}

type Shared = Arc<Peers>;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9100".into());
    let app = Router::new()
        .route("/ws/agent/{agent}", get(agent))
        .route("/ws/customer/{agent}/{customer}", get(customer))
        .with_state(Shared::default());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, app).await
}

fn lock(
    sockets: &Sockets,
) -> std::sync::MutexGuard<'_, HashMap<u64, mpsc::UnboundedSender<Message>>> {
    sockets.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The same small buffers as Parlor's sockets, so memory compares fairly.
fn small(ws: WebSocketUpgrade) -> WebSocketUpgrade {
    ws.read_buffer_size(1024).write_buffer_size(0)
}

async fn agent(ws: WebSocketUpgrade, Path(id): Path<u64>, State(peers): State<Shared>) -> Response {
    small(ws).on_upgrade(move |socket| {
        relay(socket, peers, id, true, |peers, text| {
            let (to, _) = text.split_once(' ')?;
            lock(&peers.customers).get(&to.parse().ok()?).cloned()
        })
    })
}

async fn customer(
    ws: WebSocketUpgrade,
    Path((agent, id)): Path<(u64, u64)>,
    State(peers): State<Shared>,
) -> Response {
    small(ws).on_upgrade(move |socket| {
        relay(socket, peers, id, false, move |peers, _| {
            lock(&peers.agents).get(&agent).cloned()
        })
    })
}

/// Runs one socket: registers it, then hands each text frame to the socket `to` picks.
async fn relay(
    socket: WebSocket,
    peers: Shared,
    id: u64,
    is_agent: bool,
    to: impl Fn(&Peers, &str) -> Option<mpsc::UnboundedSender<Message>>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mine = if is_agent {
        &peers.agents
    } else {
        &peers.customers
    };
    lock(mine).insert(id, tx);
    let (mut sink, mut stream) = socket.split();
    let writer = tokio::spawn(async move {
        while let Some(message) = rx.recv().await {
            if sink.send(message).await.is_err() {
                break;
            }
        }
    });
    while let Some(Ok(message)) = stream.next().await {
        if let Message::Text(text) = &message
            && let Some(other) = to(&peers, text.as_str())
        {
            let _ = other.send(message);
        }
    }
    lock(mine).remove(&id);
    writer.abort();
}
