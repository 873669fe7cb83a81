//! parlor-load: drives a running Parlor over real WebSockets, as N customers and M agents
//! would, and prints what it measured: connections held, messages per second, relay
//! latency (customer → agent and agent → customer, p50/p99/max, including the database
//! write), errors, and the server's memory per connection.
//!
//! Every customer starts a chat; agents accept every screen pop, so chats spread over
//! them. Then customers send at the set rate and agents answer each message, for the set
//! time. One process holds all sockets: keep customers + agents under the open-file
//! limit (`ulimit -n`).
//!
//! With `--bare` it drives the bare relay (`bare-relay`, the floor: no storage, no
//! routing) with the same customers, rate and measurements, so the two compare in one
//! run. It also reports the server's CPU time per message, so that work moved from the
//! server to the load tool does not look like a gain.
//!
//! While the load runs, probe chats measure re-offers: the screen-pop timeout is set short
//! and whichever agent gets a probe's first screen pop lets it run out; the time from that
//! deadline to the next agent's screen pop is the re-offer latency.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use parlor_protocol::{
    AgentFrame, Author, CaseId, ChatState, RoutingChange, ToAgent, ToVisitor, VisitorFrame,
};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

#[derive(Parser, Debug)]
#[command(about = "Drive a running Parlor with customers and agents and print what it measured")]
struct Args {
    /// Parlor's address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Several Parlor nodes' addresses, comma-separated, instead of `--url`: customers
    /// and agents are spread over them in turn (the admin's calls go to the first).
    #[arg(long, value_delimiter = ',')]
    urls: Vec<String>,
    #[arg(long, env = "PARLOR_ADMIN_EMAIL", default_value = "admin@parlor.local")]
    admin_email: String,
    #[arg(long, env = "PARLOR_ADMIN_PASSWORD")]
    admin_password: String,
    /// Concurrent chats: one widget socket each.
    #[arg(long, default_value_t = 1000)]
    customers: usize,
    /// Agent consoles; chats are spread over them.
    #[arg(long, default_value_t = 10)]
    agents: usize,
    /// Chat messages per second in all, customers' and agents' answers together.
    #[arg(long, default_value_t = 200)]
    rate: u64,
    /// How long to send, in seconds.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// New customer connections per second while ramping up.
    #[arg(long, default_value_t = 400)]
    ramp: u64,
    /// Probe chats started during the run to measure re-offers after a screen-pop timeout.
    #[arg(long, default_value_t = 10)]
    probes: usize,
    /// The screen-pop timeout set for the probes, in seconds (Parlor takes 3 to 600).
    #[arg(long, default_value_t = 3)]
    probe_timeout: u32,
    /// The server's process id, to report its memory and CPU time.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Drive the bare relay (`bare-relay`) instead of Parlor: the same customers and
    /// agents, each customer served by one agent, with no sign-in, routing, storage or
    /// probes.
    #[arg(long)]
    bare: bool,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What every task reports into.
#[derive(Default)]
struct Tally {
    customers_connected: AtomicUsize,
    chats_active: AtomicUsize,
    agents_ready: AtomicUsize,
    received: AtomicU64,
    errors: AtomicU64,
    /// Micros: customer send → agent receipt.
    to_agent: Mutex<Vec<u64>>,
    /// Micros: agent send → customer receipt.
    to_customer: Mutex<Vec<u64>>,
    /// Micros: customer send → the customer's own copy back (stored and acknowledged).
    acked: Mutex<Vec<u64>>,
    measuring: AtomicBool,
    /// Probe chats whose first screen pop is being let run out: when it expires.
    ignored_offers: std::sync::Mutex<HashMap<CaseId, Instant>>,
    /// Micros: a probe's screen-pop deadline → the next agent's screen pop.
    reoffer: Mutex<Vec<u64>>,
}

/// The subject that marks a probe chat.
const PROBE: &str = "Re-offer probe";

struct Run {
    args: Args,
    start: Instant,
    tally: Tally,
}

impl Run {
    fn micros(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// The address client `number` (a customer's or an agent's) connects to.
    fn url(&self, number: usize) -> &str {
        match self.args.urls.len() {
            0 => &self.args.url,
            nodes => &self.args.urls[number % nodes],
        }
    }

    fn ws_url(&self, number: usize, path: &str) -> String {
        format!("{}{path}", self.url(number).replacen("http", "ws", 1))
    }

    fn error(&self, what: &str) {
        if self.tally.errors.fetch_add(1, Ordering::Relaxed) < 5 {
            eprintln!("error: {what}");
        }
    }
}

/// Pings at the protocol's heartbeat interval, as the widget and console do.
fn heartbeat() -> tokio::time::Interval {
    let every = Duration::from_secs(u64::from(parlor_protocol::HEARTBEAT_SECS));
    tokio::time::interval_at(tokio::time::Instant::now() + every, every)
}

/// The send time a message carries: `t=<micros>`.
fn stamp(body: &str) -> Option<u64> {
    body.strip_prefix("t=")?.split(' ').next()?.parse().ok()
}

async fn send_json(ws: &mut Ws, frame: &impl serde::Serialize) -> Result<(), String> {
    let json = serde_json::to_string(frame).map_err(|e| e.to_string())?;
    ws.send(Message::Text(json.into()))
        .await
        .map_err(|e| e.to_string())
}

async fn sign_in(
    http: &reqwest::Client,
    url: &str,
    email: &str,
    password: &str,
) -> Result<String, String> {
    let response = http
        .post(format!("{url}/api/login"))
        .json(&serde_json::json!({ "email": email, "password": password }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("sign-in of {email} answered {}", response.status()));
    }
    response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
        .ok_or_else(|| "no session cookie".to_owned())
}

/// CPU time (user and system, all threads) a process has used, in seconds. Linux
/// counts it in ticks of 1/100 s (USER_HZ).
fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count fields after its `)`.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((user + system) as f64 / 100.0)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

async fn agent(run: Arc<Run>, number: usize, cookie: String) {
    let mut request = match run.ws_url(number, "/ws/agent").into_client_request() {
        Ok(request) => request,
        Err(e) => return run.error(&e.to_string()),
    };
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        request.headers_mut().insert("cookie", value);
    }
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async_with_config(request, None, true).await
    else {
        return run.error("agent socket did not open");
    };
    if send_json(&mut ws, &AgentFrame::Hello { cursors: vec![] })
        .await
        .is_err()
    {
        return run.error("agent hello failed");
    }
    run.tally.agents_ready.fetch_add(1, Ordering::Relaxed);
    let mut replies = 0u64;
    let mut beat = heartbeat();
    loop {
        let message = tokio::select! {
            message = ws.next() => message,
            _ = beat.tick() => {
                if send_json(&mut ws, &AgentFrame::Ping).await.is_err() {
                    return run.error("agent ping failed");
                }
                continue;
            }
        };
        let Some(Ok(Message::Text(text))) = message else {
            if matches!(message, Some(Ok(_))) {
                continue;
            }
            break;
        };
        let Ok(frame) = serde_json::from_str::<ToAgent>(text.as_str()) else {
            run.error("unreadable frame");
            continue;
        };
        let answer = match frame {
            ToAgent::Offer { offer } => {
                if offer.subject == PROBE && first_sight(&run, &offer).await {
                    continue;
                }
                Some(AgentFrame::Accept {
                    case_id: offer.case_id,
                })
            }
            // Letting a screen pop run out switched routing off: back on, as an agent would.
            ToAgent::Routing {
                on: false,
                change: RoutingChange::IgnoredOffer,
            } => Some(AgentFrame::SetRouting { on: true }),
            ToAgent::Message { message } if matches!(message.author, Author::Customer { .. }) => {
                let Some(sent) = stamp(&message.body) else {
                    continue;
                };
                run.tally.received.fetch_add(1, Ordering::Relaxed);
                if run.tally.measuring.load(Ordering::Relaxed) {
                    run.tally
                        .to_agent
                        .lock()
                        .await
                        .push(run.micros().saturating_sub(sent));
                }
                replies += 1;
                Some(AgentFrame::Send {
                    case_id: message.case_id,
                    client_id: format!("a{replies}-{}", message.seq),
                    body: format!("t={}", run.micros()),
                })
            }
            ToAgent::Error { error } => {
                run.error(&error.message);
                None
            }
            _ => None,
        };
        if let Some(answer) = answer
            && send_json(&mut ws, &answer).await.is_err()
        {
            return run.error("agent send failed");
        }
    }
    run.error("an agent socket closed");
}

/// Whether this is a probe's first screen pop, to be let run out; otherwise, when it is
/// the screen pop after one that ran out, records how long after that deadline it came.
async fn first_sight(run: &Run, offer: &parlor_protocol::Offer) -> bool {
    let now = Instant::now();
    let deadline = {
        let mut ignored = run
            .tally
            .ignored_offers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let deadline = ignored.remove(&offer.case_id);
        if deadline.is_none() {
            ignored.insert(
                offer.case_id,
                now + Duration::from_millis(offer.expires_in_ms),
            );
        }
        deadline
    };
    let Some(deadline) = deadline else {
        return true;
    };
    let late = now.saturating_duration_since(deadline).as_micros();
    run.tally
        .reoffer
        .lock()
        .await
        .push(u64::try_from(late).unwrap_or(u64::MAX));
    false
}

/// A customer: `every` is how often it sends once its chat is active; `None` for a probe,
/// which only waits to be accepted.
async fn customer(run: Arc<Run>, number: usize, every: Option<Duration>) {
    let Ok((mut ws, _)) =
        tokio_tungstenite::connect_async_with_config(run.ws_url(number, "/ws/visitor"), None, true)
            .await
    else {
        return run.error("customer socket did not open");
    };
    if every.is_some() {
        run.tally
            .customers_connected
            .fetch_add(1, Ordering::Relaxed);
    }
    let start = VisitorFrame::StartChat {
        client_id: format!("start{number}"),
        name: format!("Customer {number}"),
        subject: if every.is_some() { "Load" } else { PROBE }.into(),
        body: "hello".into(),
        time_zone: None,
        language: None,
        group: None,
        email: String::new(),
        custom: Default::default(),
    };
    if send_json(
        &mut ws,
        &VisitorFrame::Hello {
            token: None,
            since: 0,
        },
    )
    .await
    .is_err()
        || send_json(&mut ws, &start).await.is_err()
    {
        return run.error("customer could not start a chat");
    }
    let mut active = false;
    let mut sent = 0u64;
    // Spread the customers' sends evenly over the interval; a probe never sends.
    let probe = every.is_none();
    let every = every.unwrap_or(Duration::from_secs(3600));
    let offset = every.mul_f64((number as f64 * 0.618_034).fract());
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, every);

    let mut beat = heartbeat();
    loop {
        tokio::select! {
            _ = beat.tick() => {
                if send_json(&mut ws, &VisitorFrame::Ping).await.is_err() {
                    return run.error("customer ping failed");
                }
            }
            incoming = ws.next() => {
                let Some(Ok(Message::Text(text))) = incoming else {
                    return run.error("a customer socket closed");
                };
                match serde_json::from_str::<ToVisitor>(text.as_str()) {
                    Ok(ToVisitor::State { case }) if case.state == ChatState::Active && !active => {
                        active = true;
                        if !probe {
                            run.tally.chats_active.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok(ToVisitor::Message { message }) => {
                        let Some(at) = stamp(&message.body) else { continue };
                        let took = run.micros().saturating_sub(at);
                        let measuring = run.tally.measuring.load(Ordering::Relaxed);
                        match message.author {
                            Author::Agent { .. } => {
                                run.tally.received.fetch_add(1, Ordering::Relaxed);
                                if measuring {
                                    run.tally.to_customer.lock().await.push(took);
                                }
                            }
                            Author::Customer { .. } if measuring => {
                                run.tally.acked.lock().await.push(took);
                            }
                            _ => {}
                        }
                    }
                    Ok(ToVisitor::Error { error }) => run.error(&error.message),
                    Ok(_) => {}
                    Err(_) => run.error("unreadable frame"),
                }
            }
            _ = tick.tick() => {
                if probe || !active || !run.tally.measuring.load(Ordering::Relaxed) {
                    continue;
                }
                sent += 1;
                let frame = VisitorFrame::Send {
                    client_id: format!("c{number}-{sent}"),
                    body: format!("t={}", run.micros()),
                };
                if send_json(&mut ws, &frame).await.is_err() {
                    return run.error("customer send failed");
                }
            }
        }
    }
}

/// A bare relay's agent socket: answers each customer message as a Parlor agent would,
/// starting the answer with the customer's number so the relay knows where it goes.
async fn bare_agent(run: Arc<Run>, number: usize) {
    let url = run.ws_url(number, &format!("/ws/agent/{number}"));
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async_with_config(url, None, true).await
    else {
        return run.error("agent socket did not open");
    };
    run.tally.agents_ready.fetch_add(1, Ordering::Relaxed);
    while let Some(Ok(message)) = ws.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        // "t=<micros> c=<customer>"
        let (Some(sent), Some(from)) = (stamp(text.as_str()), text.split(" c=").nth(1)) else {
            continue;
        };
        run.tally.received.fetch_add(1, Ordering::Relaxed);
        if run.tally.measuring.load(Ordering::Relaxed) {
            let took = run.micros().saturating_sub(sent);
            run.tally.to_agent.lock().await.push(took);
        }
        let answer = format!("{from} t={}", run.micros());
        if ws.send(Message::Text(answer.into())).await.is_err() {
            return run.error("agent send failed");
        }
    }
    run.error("an agent socket closed");
}

/// A bare relay's customer socket, served by one of the agents as in Parlor: sends
/// every `every`.
async fn bare_customer(run: Arc<Run>, number: usize, every: Duration) {
    let agent = number % run.args.agents.max(1);
    // On the relay its agent is on: a relay knows only its own sockets.
    let url = run.ws_url(agent, &format!("/ws/customer/{agent}/{number}"));
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async_with_config(url, None, true).await
    else {
        return run.error("customer socket did not open");
    };
    run.tally
        .customers_connected
        .fetch_add(1, Ordering::Relaxed);
    run.tally.chats_active.fetch_add(1, Ordering::Relaxed);
    let offset = every.mul_f64((number as f64 * 0.618_034).fract());
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, every);
    loop {
        tokio::select! {
            incoming = ws.next() => {
                let Some(Ok(message)) = incoming else {
                    return run.error("a customer socket closed");
                };
                // "<customer> t=<micros>"
                if let Message::Text(text) = message
                    && let Some(at) = text.split_once(' ').and_then(|(_, answer)| stamp(answer))
                {
                    run.tally.received.fetch_add(1, Ordering::Relaxed);
                    if run.tally.measuring.load(Ordering::Relaxed) {
                        let took = run.micros().saturating_sub(at);
                        run.tally.to_customer.lock().await.push(took);
                    }
                }
            }
            _ = tick.tick() => {
                if !run.tally.measuring.load(Ordering::Relaxed) {
                    continue;
                }
                let body = format!("t={} c={number}", run.micros());
                if ws.send(Message::Text(body.into())).await.is_err() {
                    return run.error("customer send failed");
                }
            }
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let at = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[at] as f64 / 1000.0
}

async fn report(name: &str, samples: &Mutex<Vec<u64>>) {
    let mut samples = samples.lock().await.clone();
    samples.sort_unstable();
    println!(
        "  {name:<28} n={:<7} p50 {:>7.2} ms   p99 {:>7.2} ms   max {:>8.2} ms",
        samples.len(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        percentile(&samples, 1.0)
    );
}

async fn wait_for(what: &str, target: usize, counter: &AtomicUsize, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while counter.load(Ordering::Relaxed) < target {
        if Instant::now() > deadline {
            eprintln!(
                "{what}: only {} of {target} in time",
                counter.load(Ordering::Relaxed)
            );
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    true
}

/// Switches routing on for the channel with this screen-pop timeout.
async fn put_routing(
    run: &Run,
    http: &reqwest::Client,
    admin: &str,
    secs: u32,
) -> Result<(), String> {
    let routing = http
        .put(format!("{}/api/settings/routing", run.url(0)))
        .header("cookie", admin)
        .json(&serde_json::json!({ "channel_routing": true, "screen_pop_timeout_secs": secs }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !routing.status().is_success() {
        return Err(format!("setting routing answered {}", routing.status()));
    }
    Ok(())
}

/// Signs the admin in, switches routing on and makes the agents: the admin's cookie and
/// one per agent.
async fn prepare_agents(
    run: &Run,
    http: &reqwest::Client,
) -> Result<(String, Vec<String>), String> {
    let url = run.url(0);
    let admin = sign_in(http, url, &run.args.admin_email, &run.args.admin_password).await?;
    put_routing(run, http, &admin, 600).await?;
    let capacity = run.args.customers.div_ceil(run.args.agents.max(1)) + 1;
    let tag = std::process::id();
    let mut cookies = Vec::new();
    for i in 0..run.args.agents {
        let email = format!("load-{tag}-{i}@parlor.local");
        let password = "load-password-1";
        let made = http
            .post(format!("{url}/api/agents"))
            .header("cookie", &admin)
            .json(&serde_json::json!({
                "name": format!("Load agent {i}"), "email": email, "password": password,
                "is_admin": false, "active": true, "capacity": capacity.min(50), "groups": []
            }))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !made.status().is_success() {
            return Err(format!("creating an agent answered {}", made.status()));
        }
        cookies.push(sign_in(http, url, &email, password).await?);
    }
    Ok((admin, cookies))
}

/// Sets the short screen-pop timeout and starts the probe chats, spread over the window.
async fn start_probes(
    run: &Arc<Run>,
    http: &reqwest::Client,
    admin: &str,
    first_number: usize,
    window: Duration,
) -> Option<tokio::task::JoinHandle<()>> {
    let count = run.args.probes;
    if count == 0 {
        return None;
    }
    if let Err(error) = put_routing(run, http, admin, run.args.probe_timeout).await {
        run.error(&error);
        return None;
    }
    let run = run.clone();
    let gap = window.div_f64(count as f64 + 1.0);
    Some(tokio::spawn(async move {
        for number in first_number..first_number + count {
            tokio::time::sleep(gap).await;
            tokio::spawn(customer(run.clone(), number, None));
        }
    }))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if args.customers.div_ceil(args.agents.max(1)) + 1 > 50 {
        eprintln!(
            "Each agent takes at most 50 chats: use at least {} agents.",
            args.customers.div_ceil(49)
        );
        return std::process::ExitCode::FAILURE;
    }
    let run = Arc::new(Run {
        args,
        start: Instant::now(),
        tally: Tally::default(),
    });
    let http = reqwest::Client::new();
    let n = run.args.customers;
    let bare = run.args.bare;
    let mut admin = String::new();
    if bare {
        for number in 0..run.args.agents {
            tokio::spawn(bare_agent(run.clone(), number));
        }
    } else {
        let cookies = match prepare_agents(&run, &http).await {
            Ok((signed_in, cookies)) => {
                admin = signed_in;
                cookies
            }
            Err(error) => {
                eprintln!("parlor-load: {error}");
                return std::process::ExitCode::FAILURE;
            }
        };
        for (number, cookie) in cookies.into_iter().enumerate() {
            tokio::spawn(agent(run.clone(), number, cookie));
        }
    }
    let agents = run.args.agents;
    wait_for(
        "agents",
        agents,
        &run.tally.agents_ready,
        Duration::from_secs(30 + n as u64 / 200),
    )
    .await;
    let pid = run.args.server_pid;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = pid.and_then(rss_kib);

    // Customers send half the rate; agents answer every message with the other half.
    let every = Duration::from_secs_f64((2 * n) as f64 / run.args.rate.max(1) as f64);
    let ramp = Instant::now();
    let pause = Duration::from_secs_f64(1.0 / run.args.ramp.max(1) as f64);
    let mut ramp_start = tokio::time::Instant::now();
    // Halfway, the ramp waits for those chats to settle and reads the server's memory:
    // what the second half adds is what a connection costs, free of what the server
    // held before (a sign-in's password hashing not yet given back) or fills once
    // (SQLite's page cache).
    let half = n / 2;
    let mut rss_half = None;
    let mut paused = Duration::ZERO;
    for number in 0..n {
        if bare {
            tokio::spawn(bare_customer(run.clone(), number, every));
        } else {
            tokio::spawn(customer(run.clone(), number, Some(every)));
        }
        if number + 1 == half && half > 0 && pid.is_some() {
            let stop = Instant::now();
            let limit = Duration::from_secs(60 + half as u64 / 20);
            wait_for("chats accepted", half, &run.tally.chats_active, limit).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            rss_half = pid.and_then(rss_kib);
            // Without the pause, the first half's last chats would be accepted while
            // the second half connects: the whole pause is left out of the time.
            paused += stop.elapsed();
            ramp_start += stop.elapsed();
        }
        // On a schedule rather than a sleep per customer: timers tick in milliseconds,
        // and a pause shorter than that would hold the ramp to 1,000 a second.
        tokio::time::sleep_until(ramp_start + pause.mul_f64((number + 1) as f64)).await;
    }
    let all_in = wait_for(
        "chats accepted",
        n,
        &run.tally.chats_active,
        Duration::from_secs(60 + n as u64 / 20),
    )
    .await;
    let ramp_secs = (ramp.elapsed() - paused).as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = pid.and_then(rss_kib);

    let server = pid.map(|pid| pid.to_string());
    let cpu = || {
        let server = server.as_deref().and_then(cpu_secs);
        (server, cpu_secs("self"))
    };
    run.tally.measuring.store(true, Ordering::Relaxed);
    let received_before = run.tally.received.load(Ordering::Relaxed);
    let cpu_before = cpu();
    let window = Duration::from_secs(run.args.duration);
    let probes = if bare {
        None
    } else {
        start_probes(&run, &http, &admin, n, window).await
    };
    tokio::time::sleep(window).await;
    run.tally.measuring.store(false, Ordering::Relaxed);
    let relayed = run.tally.received.load(Ordering::Relaxed) - received_before;
    let cpu_after = cpu();
    if let Some(probes) = probes {
        // The last probe's screen pop may still be running out.
        let _ = probes.await;
        tokio::time::sleep(Duration::from_secs(u64::from(run.args.probe_timeout) + 1)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = pid.and_then(rss_kib);

    let t = &run.tally;
    let against = if bare { "the bare relay" } else { "Parlor" };
    let at = match run.args.urls.as_slice() {
        [] => run.args.url.clone(),
        nodes => nodes.join(", "),
    };
    println!("parlor-load against {against} at {at}");
    println!(
        "  customers connected           {} of {n}; chats accepted {} ({:.1} s to open and accept all{})",
        t.customers_connected.load(Ordering::Relaxed),
        t.chats_active.load(Ordering::Relaxed),
        ramp_secs,
        if all_in { "" } else { ", NOT ALL" }
    );
    println!(
        "  agents                        {}",
        t.agents_ready.load(Ordering::Relaxed)
    );
    println!(
        "  messages relayed              {relayed} in {} s = {:.0}/s (asked for {}/s)",
        run.args.duration,
        relayed as f64 / window.as_secs_f64(),
        run.args.rate
    );
    report("customer → agent", &t.to_agent).await;
    report("agent → customer", &t.to_customer).await;
    if !bare {
        report("customer's send stored+acked", &t.acked).await;
    }
    if !bare && run.args.probes > 0 {
        report("re-offer after a timeout", &t.reoffer).await;
    }
    let used = |before: Option<f64>, after: Option<f64>| Some(after? - before?);
    if let Some(server) = used(cpu_before.0, cpu_after.0) {
        println!(
            "  server CPU                    {server:.1} s in {} s ({:.0}% of the machine) = {:.1} µs per message relayed; the load tool used {:.1} s",
            run.args.duration,
            100.0 * server
                / window.as_secs_f64()
                / std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64),
            1e6 * server / relayed.max(1) as f64,
            used(cpu_before.1, cpu_after.1).unwrap_or(f64::NAN)
        );
    }
    println!(
        "  errors                        {}",
        t.errors.load(Ordering::Relaxed)
    );
    let sockets = (n + agents) as f64;
    if let (Some(before), Some(idle)) = (rss_before, rss_idle) {
        println!(
            "  server RSS                    {before} KiB before, {idle} KiB with {} sockets idle = {:.1} KiB per connection from before; {} KiB after traffic",
            n + agents,
            (idle as f64 - before as f64) / sockets,
            rss_after.unwrap_or_default()
        );
    }
    if let (Some(at_half), Some(idle)) = (rss_half, rss_idle) {
        println!(
            "  server memory per connection  {:.1} KiB: {at_half} KiB with {half} chats idle, {idle} KiB with {n}",
            (idle as f64 - at_half as f64) / (n - half) as f64,
        );
    }
    std::process::ExitCode::SUCCESS
}
