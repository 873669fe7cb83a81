//! Load for the fault tests: customers and agents that chat without pause over
//! several connections, as real widgets and consoles do (each reconnects, resumes from
//! what it holds and sends what was never acknowledged again, with its own ids), and
//! what each saw, to check against what is stored once the fault is over.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use parlor_protocol::{
    AgentFrame, CaseId, Chat, ChatMessage, Cursor, Seq, ToAgent, ToVisitor, VisitorFrame,
};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::{Frame, Ws, start_with};

/// The nodes clients reach, handed out as a load balancer with no sticky sessions
/// does: each new connection may land on any of them, and one that fails goes to the
/// next.
#[derive(Clone)]
pub struct Balancer(Arc<Vec<SocketAddr>>);

impl Balancer {
    pub fn new(nodes: Vec<SocketAddr>) -> Self {
        Self(Arc::new(nodes))
    }

    /// The node for a client's `n`-th try.
    pub fn pick(&self, n: usize) -> SocketAddr {
        self.0[n % self.0.len()]
    }
}

/// Where a run stands, shared by the test and every client. It ends in three steps:
/// [`Run::stop`] (no new messages), every client settled (each message it sent is
/// acknowledged), then [`Run::finish`] with each chat's last stored `seq`, which every
/// client waits to hold before it returns: then what each holds can be checked.
#[derive(Clone, Default)]
pub struct Run {
    stop: Arc<AtomicBool>,
    settled: Arc<AtomicUsize>,
    finish: Arc<Mutex<Option<HashMap<CaseId, Seq>>>>,
    /// Each customer's token and chat, by case.
    chats: Arc<Mutex<HashMap<CaseId, String>>>,
    /// Which agent entered each chat (the first to enter it).
    pub entered: Arc<Mutex<HashMap<CaseId, usize>>>,
}

impl Run {
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Counts a client as settled, once.
    fn settle(&self, counted: &mut bool) {
        if !std::mem::replace(counted, true) {
            self.settled.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many clients have settled.
    pub fn settled(&self) -> usize {
        self.settled.load(Ordering::Relaxed)
    }

    /// The chats started, as their customers' widgets heard.
    pub fn cases(&self) -> Vec<CaseId> {
        self.chats.lock().expect("chats").keys().copied().collect()
    }

    /// Reads every chat's stored transcript through the node at `addr` and tells every
    /// client how far each goes; gives them by case.
    pub async fn finish(&self, addr: SocketAddr) -> HashMap<CaseId, Vec<(Seq, String)>> {
        let chats = self.chats.lock().expect("chats").clone();
        let mut stored = HashMap::new();
        for (case, token) in chats {
            stored.insert(case, transcript(addr, &token).await);
        }
        let last = stored
            .iter()
            .map(|(&case, messages)| (case, messages.last().map_or(0, |(seq, _)| *seq)))
            .collect();
        *self.finish.lock().expect("finish") = Some(last);
        stored
    }

    /// Whether the run is finished and a client holds each of these chats (case, last
    /// `seq` held) to its end.
    fn caught_up(&self, held: impl IntoIterator<Item = (CaseId, Seq)>) -> bool {
        let finish = self.finish.lock().expect("finish");
        let Some(last) = finish.as_ref() else {
            return false;
        };
        held.into_iter()
            .all(|(case, seq)| last.get(&case).is_some_and(|&last| seq >= last))
    }
}

/// Waits until `done`, for a minute at most. A client that `stopped` before the end
/// failed (see its panic), and so does the test, at once.
pub async fn until(done: impl Fn() -> bool, stopped: impl Fn() -> bool, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(!stopped(), "a client failed: see its panic above");
        assert!(
            tokio::time::Instant::now() < deadline,
            "not {what} in a minute"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A chat's whole stored transcript as seq and `client_id`, read afresh through a
/// widget with the customer's `token`, a page at a time (over again if the node drops
/// the socket).
pub async fn transcript(addr: SocketAddr, token: &str) -> Vec<(Seq, String)> {
    for _ in 0..5 {
        if let Some(stored) = try_transcript(addr, token).await {
            return stored;
        }
    }
    panic!("the transcript could not be read from {addr}");
}

async fn try_transcript(addr: SocketAddr, token: &str) -> Option<Vec<(Seq, String)>> {
    let (mut ws, _) = connect_async(format!("ws://{addr}/ws/visitor"))
        .await
        .ok()?;
    let hello = VisitorFrame::Hello {
        token: Some(token.to_owned()),
        since: 0,
    };
    ws.send(text(&hello)).await.ok()?;
    // (A message may come before the welcome.)
    let chat = loop {
        if let ToVisitor::Welcome { chat, .. } = next(&mut ws).await? {
            break chat.expect("the chat");
        }
    };
    let mut stored: Vec<(Seq, String)> = chat
        .messages
        .into_iter()
        .map(|m| (m.seq, m.client_id))
        .collect();
    // The welcome holds the latest page; the rest comes a page at a time.
    while let Some(&(first, _)) = stored.first().filter(|(seq, _)| *seq > 1) {
        let earlier = VisitorFrame::LoadEarlier { before: first };
        ws.send(text(&earlier)).await.ok()?;
        let page = loop {
            match next(&mut ws).await? {
                ToVisitor::Earlier { messages } => break messages,
                ToVisitor::Error { error } => panic!("{error:?}"),
                _ => {}
            }
        };
        assert!(!page.is_empty(), "no page before {first}");
        stored.splice(0..0, page.into_iter().map(|m| (m.seq, m.client_id)));
    }
    Some(stored)
}

/// A small deterministic generator, so a failing run can be told apart by its seed.
pub struct Dice(pub u64);

impl Dice {
    pub fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % sides
    }
}

/// What one customer saw and sent over the whole run.
#[derive(Default)]
pub struct Customer {
    pub number: usize,
    /// How often it sends a message.
    pub pace: Duration,
    pub token: Option<String>,
    /// Its chat, once started.
    pub case: Option<CaseId>,
    /// Every message this customer's widget received, by `seq`.
    pub seen: BTreeMap<Seq, String>,
    pub sent: Vec<String>,
    pub acked: HashSet<String>,
    /// Links that opened and said hello: more than one means it lost a link and came back.
    pub links: u32,
}

impl Customer {
    pub fn new(number: usize, pace: Duration) -> Self {
        Self {
            number,
            pace,
            ..Self::default()
        }
    }

    fn since(&self) -> Seq {
        self.seen.keys().next_back().copied().unwrap_or(0)
    }

    /// Records a message; the same `seq` must always be the same message.
    fn saw(&mut self, seq: Seq, client_id: &str) {
        let before = self.seen.insert(seq, client_id.to_owned());
        if let Some(before) = before {
            assert_eq!(before, client_id, "seq {seq} changed its message");
        }
        self.acked.insert(client_id.to_owned());
    }

    /// Connects (retrying, on the next node, while a node is down), resumes from the
    /// last `seq`, and starts the chat if it is not stored yet.
    async fn connect(&mut self, nodes: &Balancer) -> Ws {
        let mut tries = 0;
        loop {
            let addr = nodes.pick(self.number + self.links as usize + tries);
            tries += 1;
            if let Ok((mut ws, _)) = connect_async(format!("ws://{addr}/ws/visitor")).await {
                let hello = VisitorFrame::Hello {
                    token: self.token.clone(),
                    since: self.since(),
                };
                if ws.send(text(&hello)).await.is_ok()
                    && let Some(chat) = self.welcome(&mut ws).await
                {
                    self.links += 1;
                    if chat {
                        return ws;
                    }
                    let n = self.number;
                    let start =
                        start_with(&format!("start-{n}"), &format!("Customer {n}"), "hello");
                    if ws.send(text(&start)).await.is_ok() && self.started(&mut ws).await {
                        return ws;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Reads the welcome: `Some(true)` when the chat is stored, with the gap since.
    async fn welcome(&mut self, ws: &mut Ws) -> Option<bool> {
        // The socket follows the chat before the transcript is read, so a message
        // published meanwhile may come first (it is kept by `seq` like any other), and so
        // may the chat's state (the welcome holds it as read), typing and queue news.
        let mut frame = next(ws).await?;
        loop {
            match &frame {
                ToVisitor::Message { message } => self.saw(message.seq, &message.client_id),
                ToVisitor::State { .. } | ToVisitor::Typing { .. } => {}
                news if news.is_queue_news() => {}
                _ => break,
            }
            frame = next(ws).await?;
        }
        match frame {
            ToVisitor::Welcome { token, chat, .. } => {
                self.token = Some(token);
                let Some(chat) = chat else {
                    return Some(false);
                };
                self.case = Some(chat.case.id);
                for message in chat.messages {
                    self.saw(message.seq, &message.client_id);
                }
                Some(true)
            }
            other => panic!("expected welcome, got {other:?}"),
        }
    }

    async fn started(&mut self, ws: &mut Ws) -> bool {
        loop {
            match next(ws).await {
                Some(ToVisitor::ChatStarted { chat }) => {
                    self.case = Some(chat.case.id);
                    for message in chat.messages {
                        self.saw(message.seq, &message.client_id);
                    }
                    return true;
                }
                Some(_) => continue,
                None => return false,
            }
        }
    }

    /// Sends a message every few milliseconds until the run stops; returns once it is
    /// finished and the widget holds the whole chat. Each (re)connection, to the next
    /// node, sends the unacknowledged ones again with their own ids. `drops` closes the
    /// socket now and then.
    pub async fn run(mut self, nodes: Balancer, run: Run, drops: bool) -> Self {
        let mut dice = Dice(0x9E37_79B9_7F4A_7C15 ^ (self.number as u64 + 1));
        let give_up = tokio::time::Instant::now() + Duration::from_secs(90);
        let mut settled = false;
        'connection: loop {
            assert!(
                tokio::time::Instant::now() < give_up,
                "customer {} never settled",
                self.number
            );
            let mut ws = self.connect(&nodes).await;
            if let (Some(token), Some(case)) = (&self.token, self.case) {
                let mut chats = run.chats.lock().expect("chats");
                chats.entry(case).or_insert_with(|| token.clone());
            }
            let unacked: Vec<String> = self
                .sent
                .iter()
                .filter(|id| !self.acked.contains(*id))
                .cloned()
                .collect();
            for client_id in unacked {
                let frame = VisitorFrame::Send {
                    body: client_id.clone(),
                    client_id,
                };
                if ws.send(text(&frame)).await.is_err() {
                    continue 'connection;
                }
            }
            let mut tick = tokio::time::interval(self.pace);
            loop {
                assert!(
                    tokio::time::Instant::now() < give_up,
                    "customer {} never settled",
                    self.number
                );
                let stopping = run.stopping();
                if stopping && self.sent.iter().all(|id| self.acked.contains(id)) {
                    run.settle(&mut settled);
                    if run.caught_up(self.case.map(|case| (case, self.since()))) {
                        return self;
                    }
                }
                tokio::select! {
                    _ = tick.tick() => {
                        if drops && dice.roll(40) == 0 {
                            let _ = ws.close(None).await;
                            continue 'connection;
                        }
                        if stopping {
                            continue;
                        }
                        let client_id = format!("c{}-{}", self.number, self.sent.len());
                        self.sent.push(client_id.clone());
                        let frame = VisitorFrame::Send { body: client_id.clone(), client_id };
                        if ws.send(text(&frame)).await.is_err() {
                            continue 'connection;
                        }
                    }
                    frame = next(&mut ws) => match frame {
                        Some(ToVisitor::Message { message }) => self.saw(message.seq, &message.client_id),
                        Some(ToVisitor::Error { error }) => panic!("customer {}: {error:?}", self.number),
                        Some(_) => {}
                        None => continue 'connection,
                    },
                }
            }
        }
    }

    /// Checks the chat's whole stored transcript against what this customer sent and
    /// saw: no hole, nothing twice, every message acknowledged stored, and the widget's
    /// copy the same.
    pub fn check(&self, stored: &[(Seq, String)]) {
        let n = self.number;
        let seqs: Vec<Seq> = stored.iter().map(|(seq, _)| *seq).collect();
        let expected: Vec<Seq> = (1..=stored.len() as Seq).collect();
        assert_eq!(seqs, expected, "customer {n}: stored seqs have a hole");
        let ids: HashSet<&String> = stored.iter().map(|(_, id)| id).collect();
        assert_eq!(
            ids.len(),
            stored.len(),
            "customer {n}: a message is stored twice"
        );
        for id in &self.sent {
            assert!(
                self.acked.contains(id),
                "customer {n}: {id} never acknowledged"
            );
            assert!(
                ids.contains(id),
                "customer {n}: acknowledged {id} is not stored"
            );
        }
        let seen: Vec<(Seq, String)> = self.seen.clone().into_iter().collect();
        assert_eq!(
            seen, stored,
            "customer {n}: what the widget holds is not the transcript"
        );
    }
}

fn text(frame: &impl serde::Serialize) -> Message {
    Message::Text(serde_json::to_string(frame).expect("serialises").into())
}

/// The next frame, or `None` when the socket failed, closed or went quiet for 5 s.
pub async fn next(ws: &mut Ws) -> Option<ToVisitor> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                return Some(serde_json::from_str(text.as_str()).expect("a known frame"));
            }
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            _ => return None,
        }
    }
}

/// What one agent's consoles did and saw over the whole run.
pub struct Agent {
    pub number: usize,
    cookie: String,
    /// The chats open on its console.
    pub mine: HashSet<CaseId>,
    /// What its consoles hold of each chat, by `seq`.
    pub seen: HashMap<CaseId, BTreeMap<Seq, String>>,
    /// Its own messages and their chats, in the order sent.
    pub sent: Vec<(CaseId, String)>,
    pub acked: HashSet<String>,
    pub links: u32,
    /// Screen pops shown, and accepts refused (another took the chat, or routing was
    /// catching up).
    pub offers: u32,
    pub refused: u32,
}

/// A screen pop on a console, and when to press Accept (again).
type OnScreen = Option<(CaseId, tokio::time::Instant)>;

/// How long an agent takes to press Accept on a screen pop, and to press it again
/// while nothing happens, as a person does.
const ACCEPT_AFTER: Duration = Duration::from_millis(500);
const ACCEPT_AGAIN_AFTER: Duration = Duration::from_secs(1);

impl Agent {
    pub fn new(number: usize, cookie: String) -> Self {
        Self {
            number,
            cookie,
            mine: HashSet::new(),
            seen: HashMap::new(),
            sent: Vec::new(),
            acked: HashSet::new(),
            links: 0,
            offers: 0,
            refused: 0,
        }
    }

    /// Keeps one message of a chat; the same `seq` must always be the same message.
    fn keep(&mut self, message: ChatMessage) {
        let copy = self.seen.entry(message.case_id).or_default();
        self.acked.insert(message.client_id.clone());
        if let Some(before) = copy.insert(message.seq, message.client_id.clone()) {
            assert_eq!(
                before, message.client_id,
                "agent {}: seq {} of case {} changed its message",
                self.number, message.seq, message.case_id
            );
        }
    }

    /// Keeps a chat's page. A page that no longer joins up with the copy held starts
    /// it over, as the console does.
    fn take(&mut self, chat: Chat) {
        let copy = self.seen.entry(chat.case.id).or_default();
        let last = copy.keys().next_back().copied().unwrap_or(0);
        if chat.messages.first().is_some_and(|m| m.seq > last + 1) {
            copy.clear();
        }
        self.mine.insert(chat.case.id);
        for message in chat.messages {
            self.keep(message);
        }
    }

    /// Keeps a chat of its own; one agent's only.
    fn enter(&mut self, chat: Chat, entered: &Mutex<HashMap<CaseId, usize>>) {
        let (case, n) = (chat.case.id, self.number);
        let first = *entered.lock().expect("entered").entry(case).or_insert(n);
        assert_eq!(first, n, "case {case} entered by agents {first} and {n}");
        self.take(chat);
    }

    /// Each chat open on its console, and the last `seq` it holds of it.
    fn held(&self) -> Vec<(CaseId, Seq)> {
        self.mine
            .iter()
            .map(|&case| {
                let last = self
                    .seen
                    .get(&case)
                    .and_then(|copy| copy.keys().next_back());
                (case, last.copied().unwrap_or(0))
            })
            .collect()
    }

    /// Opens a console on `addr` holding what this agent holds, up to its welcome.
    async fn connect(
        &mut self,
        addr: SocketAddr,
        entered: &Mutex<HashMap<CaseId, usize>>,
    ) -> Option<Ws> {
        let mut request = format!("ws://{addr}/ws/agent").into_client_request().ok()?;
        request
            .headers_mut()
            .insert("cookie", HeaderValue::from_str(&self.cookie).ok()?);
        let (mut ws, _) = connect_async(request).await.ok()?;
        let cursors = self
            .held()
            .into_iter()
            .map(|(case_id, since)| Cursor { case_id, since })
            .collect();
        ws.send(text(&AgentFrame::Hello { cursors })).await.ok()?;
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
                .await
                .ok()??
                .ok()?;
            let Message::Text(frame) = frame else {
                continue;
            };
            match serde_json::from_str(frame.as_str()).expect("a known frame") {
                ToAgent::Message { message } => self.keep(message),
                ToAgent::Welcome { chats, routing, .. } => {
                    self.mine.clear();
                    for chat in chats {
                        self.enter(chat, entered);
                    }
                    if !routing {
                        ws.send(text(&AgentFrame::SetRouting { on: true }))
                            .await
                            .ok()?;
                    }
                    self.links += 1;
                    return Some(ws);
                }
                _ => {}
            }
        }
    }

    /// What the console does with one frame, and what it answers. Panics on two screen
    /// pops at once on one console, and on a chat entered by two agents.
    fn frame(
        &mut self,
        frame: ToAgent,
        on_screen: &mut OnScreen,
        entered: &Mutex<HashMap<CaseId, usize>>,
    ) -> Vec<AgentFrame> {
        let n = self.number;
        match frame {
            ToAgent::Offer { offer } => {
                self.offers += 1;
                if let Some((shown, _)) = on_screen {
                    assert_eq!(
                        *shown, offer.case_id,
                        "agent {n}: a screen pop for case {} while case {shown}'s is up",
                        offer.case_id
                    );
                }
                let press = tokio::time::Instant::now() + ACCEPT_AFTER;
                *on_screen = Some((offer.case_id, press));
                vec![]
            }
            ToAgent::OfferClosed { case_id, .. } => {
                on_screen.take_if(|(shown, _)| *shown == case_id);
                vec![]
            }
            ToAgent::ChatOpened { chat } => {
                on_screen.take_if(|(shown, _)| *shown == chat.case.id);
                self.enter(chat, entered);
                vec![]
            }
            ToAgent::Message { message } => {
                self.keep(message);
                vec![]
            }
            ToAgent::TabClosed { case_id } => {
                self.mine.remove(&case_id);
                vec![]
            }
            // A screen pop left unanswered switches routing off: switch it on again.
            ToAgent::Routing { on: false, .. } => vec![AgentFrame::SetRouting { on: true }],
            ToAgent::Error { error } => {
                assert!(
                    error.client_id.is_none(),
                    "agent {n}: a message refused: {error:?}"
                );
                self.refused += 1;
                vec![]
            }
            _ => vec![],
        }
    }

    /// Accepts every screen pop after a moment (pressing Accept again while nothing
    /// happens) and answers in each chat every 250 ms until the run stops; returns once
    /// it is finished and the console holds each of its chats to the end. Each
    /// (re)connection, to the next node, sends the unacknowledged ones again with their
    /// own ids.
    pub async fn run(mut self, nodes: Balancer, run: Run) -> Self {
        let give_up = tokio::time::Instant::now() + Duration::from_secs(120);
        let mut settled = false;
        let mut tries = 0;
        'connection: loop {
            assert!(
                tokio::time::Instant::now() < give_up,
                "agent {} never settled",
                self.number
            );
            let addr = nodes.pick(self.number + tries);
            tries += 1;
            let Some(mut ws) = self.connect(addr, &run.entered).await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let unacked: Vec<AgentFrame> = self
                .sent
                .iter()
                .filter(|(_, id)| !self.acked.contains(id))
                .map(|(case_id, id)| AgentFrame::Send {
                    case_id: *case_id,
                    client_id: id.clone(),
                    body: id.clone(),
                })
                .collect();
            for frame in unacked {
                if ws.send(text(&frame)).await.is_err() {
                    continue 'connection;
                }
            }
            let mut on_screen: OnScreen = None;
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                let mut out = Vec::new();
                tokio::select! {
                    _ = tick.tick() => {
                        assert!(
                            tokio::time::Instant::now() < give_up,
                            "agent {} never settled",
                            self.number
                        );
                        let acked = self.sent.iter().all(|(_, id)| self.acked.contains(id));
                        if run.stopping() && acked {
                            run.settle(&mut settled);
                            if run.caught_up(self.held()) {
                                return self;
                            }
                        }
                        let now = tokio::time::Instant::now();
                        if let Some((case_id, press)) = &mut on_screen
                            && now >= *press
                        {
                            *press = now + ACCEPT_AGAIN_AFTER;
                            out.push(AgentFrame::Accept { case_id: *case_id });
                        }
                        if !run.stopping() {
                            let mut mine: Vec<CaseId> = self.mine.iter().copied().collect();
                            mine.sort_unstable();
                            for case_id in mine {
                                let id = format!("a{}-{}", self.number, self.sent.len());
                                self.sent.push((case_id, id.clone()));
                                out.push(AgentFrame::Send { case_id, client_id: id.clone(), body: id });
                            }
                        }
                    }
                    frame = ws.next() => match frame {
                        Some(Ok(Message::Text(frame))) => {
                            let frame = serde_json::from_str(frame.as_str()).expect("a known frame");
                            out = self.frame(frame, &mut on_screen, &run.entered);
                        }
                        Some(Ok(_)) => {}
                        _ => continue 'connection,
                    },
                }
                for frame in out {
                    if ws.send(text(&frame)).await.is_err() {
                        continue 'connection;
                    }
                }
            }
        }
    }

    /// Checks what this agent's consoles hold against the stored transcripts (by
    /// case): each chat of its own up to the end as stored, from wherever its copy
    /// starts, with no hole; each message it sent acknowledged and stored.
    pub fn check(&self, stored: &HashMap<CaseId, Vec<(Seq, String)>>) {
        let n = self.number;
        for case in &self.mine {
            let transcript = &stored[case];
            let copy: Vec<(Seq, String)> = self.seen[case].clone().into_iter().collect();
            let from = copy.first().map_or(1, |(seq, _)| *seq) as usize;
            assert_eq!(
                copy,
                transcript[from - 1..],
                "agent {n}: its copy of case {case} is not the stored transcript's end"
            );
        }
        for (case, id) in &self.sent {
            assert!(
                self.acked.contains(id),
                "agent {n}: {id} never acknowledged"
            );
            assert!(
                stored[case].iter().any(|(_, stored)| stored == id),
                "agent {n}: acknowledged {id} is not stored"
            );
        }
    }
}
