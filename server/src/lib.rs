//! Parlor's server: the HTTP API, the widget and console WebSockets, chat routing and
//! storage. [`app`] composes the service; [`start`] opens the store, starts routing and
//! listens; `main` parses the configuration and calls [`serve`].

pub mod api;
pub mod auth;
pub mod chat;
pub mod client;
pub mod config;
pub mod dispatch;
pub mod hub;
pub mod limits;
pub mod location;
pub mod passwords;
pub mod routing;
pub mod secret;
pub mod serve;
pub mod settings;
pub mod store;
pub mod templates;
pub mod timers;
pub mod web;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::any;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::trace::TraceLayer;

pub use config::Config;

use crate::dispatch::Routing;
use crate::hub::Hub;
use crate::settings::{Settings, SharedSettings};
use crate::store::{Store, StoreError};
use crate::templates::Templates;

/// Everything a handler needs, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub hub: Arc<Hub>,
    pub routing: Routing,
    pub settings: SharedSettings,
    pub templates: Arc<Templates>,
    pub limits: Arc<limits::Limits>,
    pub config: Arc<Config>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("the Liquid dialect does not build: {0}")]
    Templates(#[from] liquid::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The whole service.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/ws/visitor", any(ws::visitor_socket))
        .route("/ws/agent", any(ws::agent_socket))
        .merge(api::router())
        .merge(web::router(&state))
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::new())
        .with_state(state)
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    /// The admin account made on this start (an empty database): email and password.
    pub new_admin: Option<(String, String)>,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Opens the store (creating and migrating it), makes the first admin if there is
/// nobody yet, starts routing and listens.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let store = match &config.database_url {
        Some(url) => Store::open(url).await?,
        None => Store::open_dir(&config.data_dir).await?,
    };
    let new_admin = if store.agent_count().await? == 0 {
        let password = config
            .admin_password
            .clone()
            .unwrap_or_else(|| secret::token()[..16].to_owned());
        store
            .create_agent(&config.admin_email, "Admin", &password, true)
            .await?;
        Some((config.admin_email.clone(), password))
    } else {
        None
    };
    // Whoever was connected before this start is gone until they come back.
    store.mark_everyone_gone(store::now_ms()).await?;
    let settings = SharedSettings::new(Settings::load(&store).await?);
    let hub = Arc::new(Hub::default());
    let routing = dispatch::start(store.clone(), hub.clone(), settings.clone()).await?;
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|source| StartError::Listen {
            addr: config.addr,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: config.addr,
        source,
    })?;
    let state = AppState {
        store,
        hub,
        routing,
        settings,
        templates: Arc::new(Templates::new()?),
        limits: Arc::new(limits::Limits::new(&config)),
        config: Arc::new(config),
    };
    tokio::spawn(timers::run(state.clone()));
    // Behind a proxy every connection comes from the proxy: count none per address.
    let per_ip = if state.config.client_ip_header.is_some() {
        0
    } else {
        state.config.connections_per_ip
    };
    let admission = serve::Admission::new(per_ip, state.config.max_connections);
    let hub = state.hub.clone();
    let header_timeout = std::time::Duration::from_secs(state.config.header_timeout_secs);
    let serving = serve::serve(
        listener,
        app(state.clone()),
        admission,
        header_timeout,
        async move {
            shutdown_signal().await;
            tracing::info!("shutting down: sockets are told to reconnect");
            hub.close_all();
        },
    );
    let server = tokio::spawn(shut_down_gracefully(state.clone(), serving));
    Ok(Running {
        addr,
        state,
        new_admin,
        server,
    })
}

/// Starts Parlor and tells the person running it where everything is.
pub async fn serve(config: Config) -> Result<(), StartError> {
    let admin_email = config.admin_email.clone();
    let running = start(config).await?;
    let base = format!("http://{}", running.addr);
    println!("Parlor is running.");
    println!("  Agent console: {base}/console/");
    println!("  Demo site:     {base}/demo");
    match &running.new_admin {
        Some((email, password)) => {
            println!("  Admin login:   {email} / {password}   (printed once; keep it)")
        }
        None => println!("  Admin login:   {admin_email} (password as printed on first start)"),
    }
    match running.server.await {
        Ok(result) => result.map_err(|source| StartError::Listen {
            addr: running.addr,
            source,
        }),
        Err(error) => {
            tracing::error!(%error, "server task failed");
            Ok(())
        }
    }
}

/// Runs the server until a shutdown signal, then: no new connections, HTTP requests
/// in flight finish, every socket writes what it has queued and tells its client to
/// reconnect, and the store finishes its writes and closes, each step within
/// `shutdown_secs`.
async fn shut_down_gracefully(
    state: AppState,
    serving: impl Future<Output = std::io::Result<()>>,
) -> std::io::Result<()> {
    let bound = std::time::Duration::from_secs(state.config.shutdown_secs);
    let result = tokio::select! {
        result = serving => result,
        () = async {
            state.hub.wait_closing().await;
            tokio::time::sleep(bound).await;
        } => {
            tracing::warn!("HTTP requests were still running at the shutdown bound");
            Ok(())
        }
    };
    if !state.hub.drained(bound).await {
        tracing::warn!("some sockets had not closed at the shutdown bound");
    }
    state.store.close().await;
    tracing::info!("Parlor stopped");
    result
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
