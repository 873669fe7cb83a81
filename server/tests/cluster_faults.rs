//! Faults under load across several nodes: three `parlor` processes on one PostgreSQL
//! database and a NATS server, customers and agents spread over them and chatting
//! without pause, and in the middle a node killed with SIGKILL, the routing node
//! killed, or NATS restarted. Afterwards every message acknowledged is stored once with
//! no hole, every widget and console holds its chats as stored, every chat was entered
//! by exactly one agent, and no chat or agent ever had two screen pops open at once.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use common::cluster::{OwnNats, nats_script, shared_nats};
use common::traffic::{Agent, Balancer, Customer, Run, until};
use common::{PASSWORD, Parlor, Ws, console_at, first_of, send, sign_in_at, start_chat, widget_at};
use futures_util::StreamExt;
use parlor_protocol::{AgentFrame, CaseId, Millis, OfferLogEntry, ToAgent, VisitorFrame};
use parlor_server::store::Store;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// The load: customers arrive one every [`ARRIVING_EVERY`], each sending a message
/// every [`PACE`]; agents (room for three chats each, one more agent than the
/// customers need) answer in each of their chats every 250 ms.
const CUSTOMERS: usize = 24;
const AGENTS: usize = 9;
const ARRIVING_EVERY: Duration = Duration::from_millis(150);
const PACE: Duration = Duration::from_millis(50);

/// The heavy tests take turns: two at once on two cores measure the machine, not Parlor.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Three nodes: the first takes the routing lease.
struct Cluster {
    nodes: Vec<Option<Parlor>>,
    addrs: Vec<SocketAddr>,
    database: String,
    _dirs: Vec<tempfile::TempDir>,
}

impl Cluster {
    async fn start(nats: &str) -> Self {
        let mut dirs = Vec::new();
        let mut nodes = Vec::new();
        let mut database: Option<String> = None;
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("temp dir");
            let mut env = vec![("PARLOR_NATS_URL", nats)];
            if let Some(database) = &database {
                env.push(("PARLOR_DATABASE_URL", database.as_str()));
            }
            let node = Parlor::start_with(dir.path(), "127.0.0.1:0", &env).await;
            if database.is_none() {
                database = Store::test_database_url(dir.path())
                    .await
                    .expect("a database");
                assert!(database.is_some(), "the cluster runs on PostgreSQL");
                wait_for_routing(node.addr, "leads").await;
            }
            nodes.push(node);
            dirs.push(dir);
        }
        Self {
            addrs: nodes.iter().map(|node| node.addr).collect(),
            nodes: nodes.into_iter().map(Some).collect(),
            database: database.expect("a database"),
            _dirs: dirs,
        }
    }

    async fn kill_9(&mut self, node: usize) {
        self.nodes[node].take().expect("running").kill_9().await;
    }

    /// A node still running.
    fn live(&self) -> SocketAddr {
        let node = self.nodes.iter().position(Option::is_some);
        self.addrs[node.expect("a node running")]
    }
}

/// Waits until the node at `addr` says it `leads` or `follows` routing.
async fn wait_for_routing(addr: SocketAddr, state: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let health: serde_json::Value = reqwest::get(format!("http://{addr}/healthz"))
            .await
            .expect("answers")
            .json()
            .await
            .expect("json");
        if health["routing"] == state {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{addr} never {state}: {health}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Agent accounts with room for three chats each, signed in: their session cookies.
async fn agents(addr: SocketAddr) -> Vec<String> {
    let admin = sign_in_at(addr, "admin@parlor.local", PASSWORD).await;
    // Screen pops not taken go to the next agent soon, so a run does not wait long on
    // an Accept a fault swallowed.
    let routing = common::put_routing_at(addr, &admin, true, 8).await;
    assert!(routing.is_success());
    let mut cookies = Vec::new();
    for n in 0..AGENTS {
        let email = format!("agent{n}@example.com");
        let status = reqwest::Client::new()
            .post(format!("http://{addr}/api/agents"))
            .header("cookie", &admin)
            .json(&serde_json::json!({
                "name": format!("Agent {n}"), "email": email, "password": "agent-password-1",
                "is_admin": false, "active": true, "capacity": 3, "groups": []
            }))
            .send()
            .await
            .expect("answers")
            .status();
        assert!(status.is_success(), "agent {n}: {status}");
        cookies.push(sign_in_at(addr, &email, "agent-password-1").await);
    }
    cookies
}

/// What a fault test runs: the cluster, and the load on it.
struct Load {
    cluster: Cluster,
    run: Run,
    customers: Vec<JoinHandle<Customer>>,
    agents: Vec<JoinHandle<Agent>>,
}

impl Load {
    /// Starts the agents' consoles, spread over the nodes, and the customers, arriving
    /// one by one, each on the next node.
    async fn start(cluster: Cluster) -> Self {
        let cookies = agents(cluster.addrs[0]).await;
        let nodes = Balancer::new(cluster.addrs.clone());
        let run = Run::default();
        let agents = cookies
            .into_iter()
            .enumerate()
            .map(|(number, cookie)| {
                tokio::spawn(Agent::new(number, cookie).run(nodes.clone(), run.clone()))
            })
            .collect();
        let customers = (0..CUSTOMERS)
            .map(|number| {
                let (nodes, run) = (nodes.clone(), run.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(ARRIVING_EVERY * number as u32).await;
                    let customer = Customer::new(number, PACE);
                    customer.run(nodes, run, false).await
                })
            })
            .collect();
        Self {
            cluster,
            run,
            customers,
            agents,
        }
    }

    /// Stops the load, waits until every chat is entered and every client holds it to
    /// the end, and checks them all: what each customer and agent holds against what
    /// is stored, and the screen pops against each other.
    async fn finish(self) -> Finished {
        let Self {
            cluster,
            run,
            customers,
            agents,
        } = self;
        run.stop();
        let clients = CUSTOMERS + AGENTS;
        let settled = || run.settled() == clients;
        let stopped = || {
            customers.iter().any(JoinHandle::is_finished)
                || agents.iter().any(JoinHandle::is_finished)
        };
        until(settled, stopped, "every client settled").await;
        let cases = run.cases();
        assert_eq!(cases.len(), CUSTOMERS, "every customer started a chat");
        // No chat is lost from routing: each one waiting at the fault, or started
        // during it, is offered and entered.
        let entered = || run.entered.lock().expect("entered").len() == CUSTOMERS;
        until(entered, stopped, "every chat entered").await;
        let stored = run.finish(cluster.live()).await;
        // Each client returns once it holds its chats to the end.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let held = |what: &str| format!("{what} did not hear its chats to the end");
        let (mut messages, mut resumed) = (0, 0);
        for customer in customers {
            let customer = tokio::time::timeout_at(deadline, customer)
                .await
                .unwrap_or_else(|_| panic!("{}", held("a customer")))
                .expect("customer task");
            customer.check(&stored[&customer.case.expect("a chat")]);
            messages += customer.sent.len();
            resumed += usize::from(customer.links > 1);
        }
        let mut offers = 0;
        for agent in agents {
            let agent = tokio::time::timeout_at(deadline, agent)
                .await
                .unwrap_or_else(|_| panic!("{}", held("an agent")))
                .expect("agent task");
            agent.check(&stored);
            messages += agent.sent.len();
            offers += agent.offers;
        }
        eprintln!("{messages} messages, {offers} screen pops, {resumed} customers resumed");
        assert!(
            messages > CUSTOMERS * 100,
            "only {messages} messages flowed"
        );
        let store = Store::open(&cluster.database).await.expect("opens");
        let pops = one_screen_pop_at_a_time(&store, &cases).await;
        store.close().await;
        Finished { pops, resumed }
    }
}

/// What a run ended with: every screen pop stored, and how many customers lost their
/// link and resumed (consoles also resume when routing changes hands).
struct Finished {
    pops: Vec<OfferLogEntry>,
    resumed: usize,
}

/// Checks the screen pops stored: for one chat, and for one agent, each closed before
/// the next opened. Gives the stored pops.
async fn one_screen_pop_at_a_time(store: &Store, cases: &[CaseId]) -> Vec<OfferLogEntry> {
    let mut all = Vec::new();
    for &case in cases {
        let log = store.offer_log(case).await.expect("reads");
        assert!(!log.is_empty(), "case {case} was never offered");
        one_after_another(&log, &format!("case {case}"));
        all.extend(log);
    }
    let mut by_agent: HashMap<String, Vec<OfferLogEntry>> = HashMap::new();
    for entry in &all {
        let pops = by_agent.entry(entry.agent_name.clone()).or_default();
        pops.push(entry.clone());
    }
    for (agent, mut pops) in by_agent {
        pops.sort_by_key(|pop| pop.offered_at);
        one_after_another(&pops, &agent);
    }
    all
}

fn one_after_another(pops: &[OfferLogEntry], whose: &str) {
    for pair in pops.windows(2) {
        let closed = pair[0].closed_at;
        assert!(
            closed.is_some_and(|closed| closed <= pair[1].offered_at),
            "{whose}: a screen pop at {} while one from {} was open (closed at {closed:?})",
            pair[1].offered_at,
            pair[0].offered_at,
        );
    }
}

/// A chat between a customer on node one and the admin on node two, entered before
/// the load starts (the admin then switches routing off, and takes no other chat): it
/// times how soon the bus carries a message from one node to another again.
struct Probe {
    widget: Ws,
    console: Ws,
    /// Where the console is, and its session, to resume it when the node drops it.
    at: (SocketAddr, String),
    case_id: CaseId,
    sent: usize,
}

impl Probe {
    async fn start(cluster: &Cluster) -> Self {
        let admin = sign_in_at(cluster.addrs[1], "admin@parlor.local", PASSWORD).await;
        let (mut console, _) = console_at(cluster.addrs[1], &admin).await;
        let (mut widget, _) = widget_at(cluster.addrs[0], None, 0).await;
        send(&mut widget, &start_chat("probe")).await;
        let case_id = first_of(&mut console, |frame: ToAgent| match frame {
            ToAgent::Offer { offer } => Some(offer.case_id),
            _ => None,
        })
        .await;
        send(&mut console, &AgentFrame::Accept { case_id }).await;
        first_of(&mut console, |frame: ToAgent| match frame {
            ToAgent::ChatOpened { chat } => Some(chat.case.id),
            _ => None,
        })
        .await;
        send(&mut console, &AgentFrame::SetRouting { on: false }).await;
        Self {
            widget,
            console,
            at: (cluster.addrs[1], admin),
            case_id,
            sent: 0,
        }
    }

    /// Sends from the widget every 50 ms until the console hears one of these (live;
    /// resuming it if the node dropped it); how long that took.
    async fn time_to_carry(&mut self) -> Duration {
        let start = tokio::time::Instant::now();
        let first = self.sent;
        loop {
            let client_id = format!("probe-{}", self.sent);
            self.sent += 1;
            let body = client_id.clone();
            send(&mut self.widget, &VisitorFrame::Send { client_id, body }).await;
            let until = tokio::time::Instant::now() + Duration::from_millis(50);
            while let Ok(frame) = tokio::time::timeout_at(until, self.console.next()).await {
                let Some(Ok(Message::Text(text))) = frame else {
                    if !matches!(frame, Some(Ok(_))) {
                        self.console = console_at(self.at.0, &self.at.1).await.0;
                    }
                    continue;
                };
                if let Ok(ToAgent::Message { message }) = serde_json::from_str(text.as_str())
                    && let Some(n) = message.client_id.strip_prefix("probe-")
                    && n.parse::<usize>().is_ok_and(|n| n >= first)
                {
                    return start.elapsed();
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "case {}: nothing carried for 30 s",
                self.case_id
            );
        }
    }
}

fn now() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as Millis
}

/// How long after the fault the load keeps going.
const LOAD_AFTER: Duration = Duration::from_secs(5);

/// Waits until half the customers have arrived: when the fault comes.
async fn halfway() {
    tokio::time::sleep(ARRIVING_EVERY * (CUSTOMERS as u32 / 2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_under_load_loses_no_acknowledged_message_and_no_chat_from_routing() {
    let Some(nats) = shared_nats() else { return };
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut load = Load::start(Cluster::start(&nats).await).await;
    halfway().await;
    // Node two follows routing; its customers and consoles resume on the others.
    load.cluster.kill_9(1).await;
    tokio::time::sleep(LOAD_AFTER).await;
    let finished = load.finish().await;
    assert!(finished.resumed > 0, "nobody was on the node killed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_routing_node_killed_under_load_hands_over_with_never_two_screen_pops_at_once() {
    let Some(nats) = shared_nats() else { return };
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut load = Load::start(Cluster::start(&nats).await).await;
    halfway().await;
    load.cluster.kill_9(0).await;
    let killed = now();
    tokio::time::sleep(LOAD_AFTER).await;
    let Finished { pops, resumed } = load.finish().await;
    assert!(resumed > 0, "nobody was on the node killed");
    let open = pops
        .iter()
        .filter(|pop| pop.offered_at < killed && pop.closed_at.is_none_or(|at| at > killed));
    assert!(
        open.count() > 0,
        "no screen pop was open when the routing node was killed"
    );
    // The chats arriving meanwhile were offered once the lease ran out.
    let first = pops
        .iter()
        .map(|pop| pop.offered_at)
        .filter(|&at| at > killed)
        .min();
    let after = first.expect("a screen pop after the kill") - killed;
    let after = Duration::from_millis(after as u64);
    eprintln!("first screen pop {after:?} after the routing node was killed");
    let bound =
        parlor_server::leader::LEASE + parlor_server::leader::LEASE_TICK + Duration::from_secs(4);
    assert!(after <= bound, "first screen pop {after:?} after the kill");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_restarted_under_load_loses_and_doubles_nothing_and_traffic_flows_again() {
    if shared_nats().is_none() {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    // Its own NATS, stopped mid-test: the one the other tests share stays up.
    let nats = OwnNats::start().await;
    let cluster = Cluster::start(&nats.url).await;
    let mut probe = Probe::start(&cluster).await;
    let load = Load::start(cluster).await;
    halfway().await;
    let before = probe.time_to_carry().await;
    nats_script("stop", nats.dir.path()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    nats_script("resume", nats.dir.path()).await;
    let after = probe.time_to_carry().await;
    eprintln!("a message crossed nodes in {before:?} under load, {after:?} after NATS was back");
    // The nodes try again every second at most.
    assert!(
        after <= Duration::from_secs(3),
        "{after:?} before traffic flowed again"
    );
    tokio::time::sleep(LOAD_AFTER).await;
    load.finish().await;
}
