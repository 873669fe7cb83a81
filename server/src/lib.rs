//! Parlor's server: the HTTP API, the widget and console WebSockets, chat routing and
//! storage. [`app`] composes the service; [`start`] opens the store, starts routing and
//! listens; `main` parses the configuration and calls [`serve`].

pub mod api;
pub mod auth;
pub mod bus;
pub mod chat;
pub mod client;
pub mod config;
pub mod consoles;
pub mod dispatch;
pub mod hub;
pub mod leader;
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

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::HeaderValue;
use axum::http::header::{REFERRER_POLICY, STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS};
use axum::middleware;
use axum::routing::any;
use tower::util::option_layer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

pub use config::Config;

use crate::hub::Hub;
use crate::leader::Routing;
use crate::settings::{Settings, SharedSettings};
use crate::store::{Store, StoreError};
use crate::templates::Templates;

/// Everything a handler needs, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub hub: Arc<Hub>,
    pub routing: Routing,
    /// The bus to the other nodes, when there are (`--nats-url`).
    pub bus: Option<bus::Bus>,
    /// Every flow that changes a chat.
    pub chats: chat::Chats,
    pub settings: SharedSettings,
    pub templates: Arc<Templates>,
    pub limits: Arc<limits::Limits>,
    pub config: Arc<Config>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Bus(#[from] bus::BusError),
    #[error("the Liquid dialect does not build: {0}")]
    Templates(#[from] liquid::Error),
    #[error(
        "PARLOR_ADMIN_PASSWORD needs at least {} characters",
        api::MIN_PASSWORD_CHARS
    )]
    AdminPassword,
    #[error("cannot write the admin password to {path}: {source}")]
    AdminPasswordFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The whole service.
pub fn app(state: AppState) -> Router {
    let hosts = state.config.allowed_hosts().map(Arc::from);
    // Over HTTPS, browsers keep to it for a year.
    let hsts = state
        .config
        .public_url
        .as_ref()
        .is_some_and(|url| url.https)
        .then(|| {
            SetResponseHeaderLayer::overriding(
                STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=31536000"),
            )
        });
    Router::new()
        .route("/ws/visitor", any(ws::visitor_socket))
        .route("/ws/agent", any(ws::agent_socket))
        .merge(api::router())
        .merge(web::router(&state))
        .layer(CompressionLayer::new())
        // No response is ever read as another type than it says, and Parlor's own
        // addresses (case ids in a console URL) do not travel to other sites.
        .layer(SetResponseHeaderLayer::if_not_present(
            X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(option_layer(hsts))
        .layer(middleware::from_fn_with_state(hosts, web::allowed_host))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::new())
        .with_state(state)
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    /// The admin account made on this start (an empty database): its email, and its
    /// password when Parlor chose it (not when `PARLOR_ADMIN_PASSWORD` did).
    pub new_admin: Option<(String, Option<String>)>,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Opens the store (creating and migrating it), makes the first admin if there is
/// nobody yet, starts routing and listens.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let store = match &config.database_url {
        Some(url) => Store::open(url).await?,
        None => Store::open_dir(&config.data_dir).await?,
    }
    .with_case_cap(config.max_messages_per_case);
    let new_admin = if store.agent_count().await? == 0 {
        if let Some(chosen) = &config.admin_password
            && chosen.chars().count() < api::MIN_PASSWORD_CHARS
        {
            return Err(StartError::AdminPassword);
        }
        let generated = config
            .admin_password
            .is_none()
            .then(|| secret::token()[..16].to_owned());
        let password = config.admin_password.as_ref().or(generated.as_ref());
        store
            .create_agent(
                &config.admin_email,
                "Admin",
                password.map_or("", String::as_str),
                true,
            )
            .await?;
        Some((config.admin_email.clone(), generated))
    } else {
        None
    };
    // The sockets this node counts count from now (see `timers`): before it serves.
    let node = leader::new_node();
    let now = store::now_ms();
    store
        .renew_node(&node, now, now + timers::NODE_LEASE_MS)
        .await?;
    let settings = SharedSettings::new(Settings::load(&store).await?);
    let hub = Arc::new(Hub::default());
    let bus = match &config.nats_url {
        Some(url) => {
            Some(bus::Bus::start(url, hub.clone(), store.clone(), settings.clone()).await?)
        }
        None => None,
    };
    store.publish_with({
        let hub = hub.clone();
        let bus = bus.clone();
        move |message| match &bus {
            Some(bus) => bus.committed(message),
            None => chat::publish_message(&hub, message),
        }
    });
    let routing = leader::start(
        node,
        store.clone(),
        hub.clone(),
        settings.clone(),
        bus.as_ref(),
    )
    .await;
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
    let chats = chat::Chats::new(
        store.clone(),
        hub.clone(),
        routing.clone(),
        settings.clone(),
    );
    let state = AppState {
        store,
        hub,
        routing,
        bus,
        chats,
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
    let data_dir = config.data_dir.clone();
    let running = start(config).await?;
    let base = format!("http://{}", running.addr);
    println!("Parlor is running.");
    println!("  Agent console: {base}/console/");
    println!("  Demo site:     {base}/demo");
    match &running.new_admin {
        // A password Parlor chose is shown on a terminal only: where the output goes to
        // a log, it goes to a file only this user can read instead.
        Some((email, Some(password))) if std::io::stdout().is_terminal() => {
            println!("  Admin login:   {email} / {password}   (printed once; keep it)")
        }
        Some((email, Some(password))) => {
            let path = data_dir.join("admin-password.txt");
            write_private(&path, password).map_err(|source| StartError::AdminPasswordFile {
                path: path.clone(),
                source,
            })?;
            println!(
                "  Admin login:   {email} / the password in {} (only you can read it; delete it once noted)",
                path.display()
            );
        }
        Some((email, None)) => println!("  Admin login:   {email} / the password you set"),
        None => println!("  Admin login:   {admin_email} (password as shown on first start)"),
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

/// Writes `text` to a new file that only this user can read.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    writeln!(file, "{text}")
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
    state.routing.give_up(&state.store).await;
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
