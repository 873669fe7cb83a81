//! The pages: the built widget and console (Trunk's output), the `widget.js` loader and
//! the demo page, a stand-in for a customer's website with the widget embedded.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HOST};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use base64::Engine;
use parlor_protocol::WidgetSettings;
use sha2::{Digest, Sha256};
use tower_http::services::{ServeDir, ServeFile};

use crate::AppState;
use crate::settings::SharedSettings;

/// The loader a site embeds: small hand-written JS. Sites get the build's minified copy
/// (see [`loader_source`]); this one, inside the binary, is for running without a build.
/// The admin's widget settings go in where it says `/*SETTINGS*/{}`.
const WIDGET_JS: &str = include_str!("../../public/widget.js");
const SETTINGS_SLOT: &str = "/*SETTINGS*/{}";

/// The loader as sites get it: the build's minified copy (`dist/widget.js`, written by
/// `scripts/build-web.sh`; every site pays for each byte of it), or the source itself
/// when there is no build.
fn loader_source(web_dir: &Path) -> Arc<str> {
    match std::fs::read_to_string(web_dir.join("widget.js")) {
        Ok(built) if built.contains(SETTINGS_SLOT) => built.into(),
        _ => WIDGET_JS.into(),
    }
}

/// Hashed build outputs never change under their name: cache them for a year.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

pub fn router(state: &AppState) -> Router<AppState> {
    let web_dir = &state.config.web_dir;
    let widget_dir = web_dir.join("widget");
    let console_dir = web_dir.join("console");
    let widget_page = PagePolicy::new(&widget_dir, "");
    // The console frames the widget for the Appearance page's preview.
    let console_page = PagePolicy::new(&console_dir, "frame-src 'self'; ");
    let widget = Router::new()
        .fallback_service(compressed(ServeDir::new(&widget_dir)))
        .layer(middleware::from_fn_with_state(
            (state.settings.clone(), widget_page),
            widget_headers,
        ));
    let console = Router::new()
        .fallback_service(
            compressed(ServeDir::new(&console_dir)).fallback(
                ServeFile::new(console_dir.join("index.html"))
                    .precompressed_br()
                    .precompressed_gzip(),
            ),
        )
        .layer(middleware::from_fn_with_state(
            console_page,
            console_headers,
        ));
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/widget.js", {
            let loader = loader_source(web_dir);
            get(move |state: State<AppState>| widget_js(state, loader.clone()))
        })
        .route("/demo", get(demo))
        .route("/healthz", get(healthz))
        .nest_service("/widget", widget)
        .nest_service("/console", console)
}

/// How long `/healthz` waits for the database before it says it is not answering.
const HEALTH_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// For load balancers and monitors: 200 when the database answers a read and the chat
/// writer takes a turn within two seconds, 503 otherwise. The body says how each part
/// is, as JSON; what went wrong goes to the log, not to whoever asked.
async fn healthz(State(state): State<AppState>) -> Response {
    let database = match tokio::time::timeout(HEALTH_WAIT, state.store.check()).await {
        Ok(Ok(())) => "ok",
        Ok(Err(error)) => {
            tracing::error!(%error, "health check: the database does not answer");
            "failing"
        }
        Err(_) => {
            tracing::error!("health check: the database gave no answer in time");
            "not answering"
        }
    };
    let mut health = serde_json::json!({ "database": database });
    let mut ok = database == "ok";
    // With other nodes, the bus between them too.
    if let Some(bus) = &state.bus {
        let connected = bus.connected();
        if !connected {
            tracing::error!("health check: NATS is unreachable");
        }
        health["bus"] = serde_json::json!(if connected { "ok" } else { "unreachable" });
        // Whether this node holds the routing lease (see `leader`): one node should.
        health["routing"] = serde_json::json!(if state.routing.leads() {
            "leads"
        } else {
            "follows"
        });
        ok &= connected;
    }
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(health)).into_response()
}

/// Serves the brotli or gzip copy that the build wrote beside a file, when the browser
/// takes it (scripts/precompress.mjs): compressed once, at the highest level.
fn compressed(dir: ServeDir) -> ServeDir {
    dir.precompressed_br().precompressed_gzip()
}

/// The Content-Security-Policy of one app's page: scripts only from Parlor (and the
/// one inline start-up script Trunk writes, by its hash), WebAssembly, styles only from
/// files, connections only to Parlor.
#[derive(Clone)]
struct PagePolicy {
    /// Everything but `frame-ancestors`, which depends on the page.
    base: String,
}

impl PagePolicy {
    fn new(dir: &Path, extra: &str) -> Self {
        let html = std::fs::read_to_string(dir.join("index.html")).unwrap_or_else(|_| {
            tracing::warn!(dir = %dir.display(), "front end not built here; run scripts/run.sh");
            String::new()
        });
        let hashes: String = inline_scripts(&html)
            .map(|script| {
                let digest = Sha256::digest(script.as_bytes());
                format!(
                    " 'sha256-{}'",
                    base64::engine::general_purpose::STANDARD.encode(digest)
                )
            })
            .collect();
        Self {
            base: format!(
                "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'{hashes}; \
                 style-src 'self'; img-src 'self' data:; connect-src 'self'; \
                 media-src 'self' data:; {extra}base-uri 'none'; form-action 'self'"
            ),
        }
    }

    fn with_ancestors(&self, ancestors: &str) -> Option<HeaderValue> {
        HeaderValue::from_str(&format!("{}; frame-ancestors {ancestors}", self.base)).ok()
    }
}

/// The bodies of the page's inline `<script>` elements.
fn inline_scripts(html: &str) -> impl Iterator<Item = &str> {
    html.split("<script").skip(1).filter_map(|rest| {
        let (attributes, rest) = rest.split_once('>')?;
        if attributes.contains("src=") {
            return None;
        }
        rest.split_once("</script>").map(|(body, _)| body)
    })
}

/// Which pages may frame the widget: the admin's allowed sites (and Parlor itself, for
/// the demo page and the preview), or any site when the admin has listed none.
fn frame_ancestors(widget: &WidgetSettings) -> String {
    if widget.allowed_origins.is_empty() {
        return "*".to_owned();
    }
    std::iter::once("'self'")
        .chain(widget.allowed_origins.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `path` (inside an app) is the app's page rather than one of its files.
fn is_page(path: &str) -> bool {
    path.ends_with('/') || path.ends_with(".html") || !path.contains('.')
}

/// Hashed files cache for a year; the page itself is checked every time and gets the
/// page's policy (made only for pages: `policy` is not called for files).
fn app_headers(page: bool, response: &mut Response, policy: impl FnOnce() -> Option<HeaderValue>) {
    let found = response.status().is_success();
    let headers = response.headers_mut();
    if page {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if let Some(policy) = policy() {
            headers.insert(CONTENT_SECURITY_POLICY, policy);
        }
    } else if found {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    }
}

async fn widget_headers(
    State((settings, policy)): State<(SharedSettings, PagePolicy)>,
    request: Request,
    next: Next,
) -> Response {
    let page = is_page(request.uri().path());
    let mut response = next.run(request).await;
    app_headers(page, &mut response, || {
        policy.with_ancestors(&frame_ancestors(&settings.get().widget))
    });
    response
}

async fn console_headers(
    State(policy): State<PagePolicy>,
    request: Request,
    next: Next,
) -> Response {
    let page = is_page(request.uri().path());
    let mut response = next.run(request).await;
    app_headers(page, &mut response, || policy.with_ancestors("'none'"));
    response
}

/// The public part of the widget settings, for the loader: how to draw the launcher and
/// which sites may show it.
fn loader_settings(widget: &WidgetSettings) -> String {
    serde_json::json!({
        "title": widget.title,
        "color": widget.brand_color,
        "position": widget.position,
        "allowed": widget.allowed_origins,
    })
    .to_string()
}

async fn widget_js(State(state): State<AppState>, loader: Arc<str>) -> impl IntoResponse {
    let settings = loader_settings(&state.settings.get().widget);
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            // Short: an admin's change reaches the sites within minutes.
            (CACHE_CONTROL, "public, max-age=300"),
        ],
        loader.replacen(SETTINGS_SLOT, &settings, 1),
    )
}

/// A customer's website, as far as the widget can tell: one script tag, nothing else.
async fn demo(headers: HeaderMap) -> Html<String> {
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("127.0.0.1:8080");
    Html(DEMO_PAGE.replace("{origin}", &format!("http://{host}")))
}

const DEMO_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Northwind Outfitters — Parlor demo</title>
<style>
  /* Deliberately rude host styles: the widget must look right anyway. */
  * { box-sizing: content-box; font-family: Georgia, serif; }
  button { background: hotpink !important; font-size: 30px; }
  body { margin: 0; color: #222; background: #f4f1ea; }
  header { padding: 2rem; background: #1f3b2d; color: #fff; }
  main { max-width: 40rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.6; }
  /* The tag wraps on a phone rather than widening the page past the launcher. */
  pre { white-space: pre-wrap; overflow-wrap: anywhere; }
</style>
</head>
<body>
<header><h1>Northwind Outfitters</h1><p>Tents, boots and good advice since 1987.</p></header>
<main>
  <h2>Need a hand?</h2>
  <p>This page stands for a customer's website. The chat launcher in the corner comes
  from the one script tag below, exactly as any site embeds Parlor:</p>
  <pre>&lt;script async src="{origin}/widget.js"&gt;&lt;/script&gt;</pre>
  <p>Open the console in another window, sign in, and start a chat here.</p>
  <button type="button">A host page button</button>
</main>
<script async src="{origin}/widget.js"></script>
</body>
</html>
"#;

/// Refuses a request for a host Parlor does not serve (`Config::allowed_hosts`): a page
/// of another site whose name was pointed at this machine (DNS rebinding) reaches a
/// local Parlor with its own name in `Host`, and is turned away here.
pub async fn allowed_host(
    State(hosts): State<Option<Arc<[String]>>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(hosts) = hosts else {
        return next.run(request).await;
    };
    let host = request
        .headers()
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .map(crate::config::without_port)
        .map(str::to_ascii_lowercase);
    match host {
        Some(host) if hosts.contains(&host) => next.run(request).await,
        _ => (
            axum::http::StatusCode::MISDIRECTED_REQUEST,
            "This Parlor does not answer to that host name.",
        )
            .into_response(),
    }
}
