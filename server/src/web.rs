//! The pages: the built widget and console (Trunk's output), the `widget.js` loader and
//! the demo page, a stand-in for a customer's website with the widget embedded.

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HOST};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{Html, IntoResponse, Redirect};
use axum::routing::get;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::AppState;
use crate::config::Config;

/// The loader a site embeds: small hand-written JS, shipped inside the server binary.
const WIDGET_JS: &str = include_str!("../../public/widget.js");

pub fn router(config: &Config) -> Router<AppState> {
    let widget_dir = config.web_dir.join("widget");
    let console_dir = config.web_dir.join("console");
    for dir in [&widget_dir, &console_dir] {
        if !dir.join("index.html").exists() {
            tracing::warn!(dir = %dir.display(), "front end not built here; run scripts/run.sh");
        }
    }
    let widget = Router::new()
        .fallback_service(ServeDir::new(&widget_dir))
        // Which sites may frame the widget becomes an admin setting; any, for now.
        .layer(SetResponseHeaderLayer::overriding(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors *"),
        ));
    let console = Router::new()
        .fallback_service(
            ServeDir::new(&console_dir).fallback(ServeFile::new(console_dir.join("index.html"))),
        )
        .layer(SetResponseHeaderLayer::overriding(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors 'none'"),
        ));
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/widget.js", get(widget_js))
        .route("/demo", get(demo))
        .route("/healthz", get(|| async { "ok" }))
        .nest_service("/widget", widget)
        .nest_service("/console", console)
}

async fn widget_js() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=300"),
        ],
        WIDGET_JS,
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
