//! The widget as the admin sets it: the settings API, the pre-chat form the server
//! enforces, and the pages' headers (which sites may frame the widget, the strict
//! Content-Security-Policy, caching) and the loader's settings.

mod common;

use std::collections::BTreeMap;

use common::*;
use parlor_protocol::{
    AgentFrame, CaseSummary, Channel, ChatState, ErrorCode, FieldRule, ToAgent, ToVisitor,
    VisitorFrame, WidgetSettings,
};
use serde_json::json;

async fn put_widget(server: &Server, cookie: &str, body: &serde_json::Value) -> reqwest::Response {
    reqwest::Client::new()
        .put(server.url("/api/settings/widget"))
        .header("cookie", cookie)
        .json(body)
        .send()
        .await
        .expect("answers")
}

async fn get_widget(server: &Server, cookie: &str) -> WidgetSettings {
    server.get_json("/api/settings/widget", cookie).await
}

async fn recent_cases(server: &Server, cookie: &str) -> Vec<CaseSummary> {
    server.get_json("/api/cases", cookie).await
}

fn strict_form() -> serde_json::Value {
    json!({
        "title": "  Talk to Northwind ",
        "greeting": "Hi! We answer within minutes.",
        "brand_color": "#AA3300",
        "position": "left",
        "fields": {
            "name": "required", "email": "required", "subject": "hidden", "group": "optional",
            "custom": [
                { "key": "order", "label": "Order number", "required": true },
                { "key": "plan", "label": "Plan", "required": false }
            ]
        },
        "allowed_origins": ["https://Shop.Example.com/"],
        "queue_when_offline": false
    })
}

#[tokio::test]
async fn widget_settings_are_checked_whole_and_a_bad_one_changes_nothing() {
    let server = Server::start().await;
    let admin = server.sign_in().await;
    assert_eq!(get_widget(&server, &admin).await, WidgetSettings::default());

    let saved = put_widget(&server, &admin, &strict_form()).await;
    assert_eq!(saved.status(), 200);
    let saved: WidgetSettings = saved.json().await.expect("settings");
    assert_eq!(saved.title, "Talk to Northwind");
    assert_eq!(saved.brand_color, "#aa3300");
    assert_eq!(saved.allowed_origins, vec!["https://shop.example.com"]);
    assert_eq!(get_widget(&server, &admin).await, saved);

    let mut bad = strict_form();
    bad["allowed_origins"] = json!(["https://ok.example.com", "shop.example.com/contact"]);
    bad["title"] = json!("Changed");
    let refused = put_widget(&server, &admin, &bad).await;
    assert_eq!(refused.status(), 422);
    let error: serde_json::Value = refused.json().await.expect("error body");
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|e| e.contains("shop.example.com/contact")),
        "the error names the bad origin: {error}"
    );
    assert_eq!(
        get_widget(&server, &admin).await,
        saved,
        "nothing of a refused change is stored"
    );

    let anonymous = put_widget(&server, "parlor_session=nobody", &strict_form()).await;
    assert_eq!(anonymous.status(), 401);
}

fn start(client_id: &str, name: &str, email: &str, custom: &[(&str, &str)]) -> VisitorFrame {
    VisitorFrame::StartChat {
        client_id: client_id.into(),
        name: name.into(),
        subject: "dropped: the form hides the subject".into(),
        body: "Where is my order?".into(),
        time_zone: None,
        language: None,
        group: None,
        email: email.into(),
        custom: custom
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    }
}

#[tokio::test]
async fn the_pre_chat_form_the_admin_set_is_enforced_by_the_server_and_its_answers_reach_the_agent()
{
    let server = Server::start().await;
    let admin = server.sign_in().await;
    assert_eq!(
        put_widget(&server, &admin, &strict_form()).await.status(),
        200
    );
    let mut agent = server.agent().await;

    let (mut visitor, welcome) = server.widget(None, 0).await;
    let ToVisitor::Welcome { form, greeting, .. } = welcome else {
        panic!("expected welcome, got {welcome:?}");
    };
    assert_eq!(form.email, FieldRule::Required);
    assert_eq!(form.subject, FieldRule::Hidden);
    assert_eq!(form.custom.len(), 2);
    assert_eq!(greeting, "Hi! We answer within minutes.");

    for (frame, field) in [
        (
            start("no-email", "Grace", "", &[("order", "1042")]),
            "email",
        ),
        (
            start("bad-email", "Grace", "grace@", &[("order", "1042")]),
            "email",
        ),
        (
            start("no-order", "Grace", "grace@example.com", &[]),
            "Order number",
        ),
    ] {
        send(&mut visitor, &frame).await;
        let error = visitor_error(&mut visitor).await;
        assert_eq!(error.code, ErrorCode::Invalid);
        assert!(error.message.contains(field), "{field}: {}", error.message);
        assert!(
            error.client_id.is_some(),
            "the form's error names its start"
        );
    }
    assert!(
        quiet::<ToAgent>(&mut agent).await,
        "no refused form reached an agent"
    );

    send(
        &mut visitor,
        &start(
            "good",
            "Grace Hopper",
            "grace@example.com",
            &[("order", "1042"), ("unknown", "dropped")],
        ),
    )
    .await;
    let case = loop {
        if let ToVisitor::ChatStarted { chat } = recv::<ToVisitor>(&mut visitor).await {
            break chat.case;
        }
    };
    assert_eq!(case.subject, "", "a hidden field's answer is not kept");
    assert_eq!(case.customer_email.as_deref(), Some("grace@example.com"));
    let answers: Vec<_> = case
        .answers
        .iter()
        .map(|a| (a.label.as_str(), a.value.as_str()))
        .collect();
    assert_eq!(answers, vec![("Order number", "1042")]);

    let cases = recent_cases(&server, &admin).await;
    assert_eq!(cases.len(), 1, "only the valid form made a case");
    assert_eq!(
        cases[0].customer_email.as_deref(),
        Some("grace@example.com")
    );
    assert_eq!(cases[0].answers, case.answers);
}

/// A built widget and console with Trunk's inline start-up script, and a hashed file.
fn web_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for app in ["widget", "console"] {
        let app_dir = dir.path().join(app);
        std::fs::create_dir_all(&app_dir).expect("app dir");
        std::fs::write(
            app_dir.join("index.html"),
            format!(
                "<!doctype html><script type=\"module\">import init from '/{app}/{app}-1a2b.js';\
                 await init();</script><body></body>"
            ),
        )
        .expect("page");
        std::fs::write(app_dir.join(format!("{app}-1a2b.js")), "export default 1;").expect("js");
    }
    dir
}

async fn get(server: &Server, path: &str) -> reqwest::Response {
    reqwest::get(server.url(path)).await.expect("answers")
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn the_widget_page_may_be_framed_only_by_allowed_sites_under_a_strict_policy() {
    let web = web_dir();
    let path = web.path().to_path_buf();
    let server = Server::start_with(move |config| config.web_dir = path).await;
    let script = "import init from '/widget/widget-1a2b.js';await init();";
    let hash = {
        use base64::Engine;
        use sha2::Digest;
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script))
    };

    let page = get(&server, "/widget/").await;
    assert_eq!(page.status(), 200);
    let policy = header(&page, "content-security-policy");
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert!(
        policy.contains(&format!(
            "script-src 'self' 'wasm-unsafe-eval' 'sha256-{hash}'"
        )),
        "only Parlor's scripts and the start-up script by its hash: {policy}"
    );
    assert!(policy.contains("connect-src 'self'"), "{policy}");
    assert!(
        policy.ends_with("frame-ancestors *"),
        "any site, until the admin lists some: {policy}"
    );
    assert_eq!(header(&page, "cache-control"), "no-cache");

    let admin = server.sign_in().await;
    assert_eq!(
        put_widget(&server, &admin, &strict_form()).await.status(),
        200
    );
    let policy = header(&get(&server, "/widget/").await, "content-security-policy");
    assert!(
        policy.ends_with("frame-ancestors 'self' https://shop.example.com"),
        "{policy}"
    );

    let console = header(
        &get(&server, "/console/cases").await,
        "content-security-policy",
    );
    assert!(console.ends_with("frame-ancestors 'none'"), "{console}");
    assert!(
        console.contains("frame-src 'self'"),
        "the console previews the widget"
    );

    let asset = get(&server, "/widget/widget-1a2b.js").await;
    assert_eq!(
        header(&asset, "cache-control"),
        "public, max-age=31536000, immutable"
    );
}

#[tokio::test]
async fn the_loader_carries_the_admins_look_and_allowed_sites() {
    let server = Server::start().await;
    let admin = server.sign_in().await;
    assert_eq!(
        put_widget(&server, &admin, &strict_form()).await.status(),
        200
    );
    let loader = get(&server, "/widget.js").await.text().await.expect("js");
    assert!(!loader.contains("/*SETTINGS*/"), "the settings went in");
    for expected in [
        r##""color":"#aa3300""##,
        r#""position":"left""#,
        r#""title":"Talk to Northwind""#,
        r#""allowed":["https://shop.example.com"]"#,
    ] {
        assert!(loader.contains(expected), "{expected}");
    }
}

fn leave(client_id: &str, email: &str) -> VisitorFrame {
    VisitorFrame::LeaveMessage {
        client_id: client_id.into(),
        name: "Grace Hopper".into(),
        email: email.into(),
        subject: "After hours".into(),
        body: "Please call me back tomorrow.".into(),
        custom: BTreeMap::new(),
    }
}

async fn availability(ws: &mut Ws) -> bool {
    first_of(ws, |frame| match frame {
        ToVisitor::Availability { online } => Some(online),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn with_nobody_to_answer_the_widget_hears_so_and_a_message_left_becomes_a_case() {
    let server = Server::start().await;
    let (mut visitor, welcome) = server.widget(None, 0).await;
    let ToVisitor::Welcome {
        online,
        queue_when_offline,
        ..
    } = welcome
    else {
        panic!("expected welcome, got {welcome:?}");
    };
    assert!(!online, "nobody is signed in");
    assert!(!queue_when_offline, "the message form is the default");

    send(&mut visitor, &leave("m1", "")).await;
    let error = visitor_error(&mut visitor).await;
    assert!(
        error.message.contains("email"),
        "an answer goes by email: {}",
        error.message
    );
    send(&mut visitor, &leave("m1", "grace@example.com")).await;
    let ToVisitor::MessageLeft { case_id, client_id } = recv::<ToVisitor>(&mut visitor).await
    else {
        panic!("expected message_left");
    };
    assert_eq!(client_id, "m1");
    send(&mut visitor, &leave("m1", "grace@example.com")).await;
    let ToVisitor::MessageLeft { case_id: again, .. } = recv::<ToVisitor>(&mut visitor).await
    else {
        panic!("expected message_left");
    };
    assert_eq!(again, case_id, "a retry makes no second case");

    let admin = server.sign_in().await;
    let cases = recent_cases(&server, &admin).await;
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].channel, Channel::Message);
    assert_eq!(
        cases[0].state,
        ChatState::Ended,
        "nobody chats in a message"
    );
    assert_eq!(
        cases[0].customer_email.as_deref(),
        Some("grace@example.com")
    );

    // An agent arrives with routing on: widgets hear that chats are answered now; the
    // agent switches routing off: they hear that nobody is there again.
    let (mut agent, routing) = server.console(&admin).await;
    assert!(routing);
    assert!(availability(&mut visitor).await);
    send(&mut agent, &AgentFrame::SetRouting { on: false }).await;
    assert!(!availability(&mut visitor).await);
}
