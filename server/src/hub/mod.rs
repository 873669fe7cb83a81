//! The hub: every open widget and console socket, and which chats each one follows.
//! Publishing a frame serialises it once and queues it on each follower's bounded
//! outbox; a socket whose outbox is full (in frames or in bytes) is disconnected (its
//! client resumes from its last `seq`), so one slow reader never stalls the others nor
//! makes the server hold an unbounded backlog for it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use parlor_protocol::{
    AgentId, CLOSE_ACCOUNT_OFF, CLOSE_SESSION_ENDED, CaseId, ToAgent, ToVisitor,
};
use serde::Serialize;
use tokio::sync::{Notify, watch};

use crate::bus::{Fanout, Interest, Outgoing};

mod outbox;
use outbox::outbox;
pub use outbox::{Behind, OUTBOX_BYTES, OUTBOX_FRAMES, Outbound, Outbox, OutboxReader};

pub type ConnId = u64;

/// What a socket session keeps to hear from the hub.
pub struct Connection {
    pub id: ConnId,
    pub outbox: OutboxReader,
    /// Sends on this socket's own outbox, in order with everything published to it.
    pub reply: Outbox,
    /// Notified when the hub drops this socket (it fell behind, or its session ended).
    pub kicked: Arc<Notify>,
    /// Why, as the close code to send (0: none, the client simply reconnects).
    pub why: Arc<AtomicU16>,
}

struct Conn {
    outbox: Outbox,
    kicked: Arc<Notify>,
    why: Arc<AtomicU16>,
    agent: Option<AgentId>,
    /// A console's session (the digest of its cookie's token), so that ending the
    /// session closes the socket.
    session: Option<Box<str>>,
    cases: HashSet<CaseId>,
}

#[derive(Default)]
struct Inner {
    next_id: ConnId,
    conns: HashMap<ConnId, Conn>,
    followers: HashMap<CaseId, HashSet<ConnId>>,
    /// Sockets gone from `conns` whose sessions are still recording that they left.
    leaving: usize,
    /// Told when the first socket follows a case or the last stops (see [`crate::bus`]).
    interest: Option<tokio::sync::mpsc::UnboundedSender<Interest>>,
}

pub struct Hub {
    inner: Mutex<Inner>,
    /// Turns true once when Parlor shuts down: every socket closes with "restarting".
    closing: watch::Sender<bool>,
    /// Where what this node's sockets hear goes for the other nodes' sockets (see
    /// [`crate::bus`]); unset on a node alone.
    others: OnceLock<Outgoing>,
}

impl Default for Hub {
    fn default() -> Self {
        Self {
            inner: Mutex::default(),
            closing: watch::Sender::new(false),
            others: OnceLock::new(),
        }
    }
}

/// Serialises a frame. Parlor's frames are plain data, so this cannot fail in practice;
/// if it ever did, the frame is logged and skipped rather than taking the server down.
pub fn encode(frame: &impl Serialize) -> Option<Outbound> {
    match serde_json::to_string(frame) {
        Ok(json) => Some(Outbound::from(json)),
        Err(error) => {
            tracing::error!(%error, "a frame could not be serialised");
            None
        }
    }
}

/// A socket's session finishing after the socket closed; see [`Hub::disconnect`].
#[must_use]
pub struct Leaving<'a>(&'a Hub);

impl Drop for Leaving<'_> {
    fn drop(&mut self) {
        self.0.lock().leaving -= 1;
    }
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The lock is never held across an await or a panic-prone call; recover anyway.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a socket: a console when `agent` is set, else a widget.
    pub fn connect(&self, agent: Option<AgentId>) -> Connection {
        self.register(agent, None)
    }

    /// Registers a console opened with the session whose token digest is `session`.
    pub fn connect_console(&self, agent: AgentId, session: &str) -> Connection {
        self.register(Some(agent), Some(session.into()))
    }

    fn register(&self, agent: Option<AgentId>, session: Option<Box<str>>) -> Connection {
        let (tx, rx) = outbox();
        let kicked = Arc::new(Notify::new());
        let why = Arc::new(AtomicU16::new(0));
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        inner.conns.insert(
            id,
            Conn {
                outbox: tx.clone(),
                kicked: kicked.clone(),
                why: why.clone(),
                agent,
                session,
                cases: HashSet::new(),
            },
        );
        Connection {
            id,
            outbox: rx,
            reply: tx,
            kicked,
            why,
        }
    }

    /// Tells every socket to finish what it is writing and close: Parlor is shutting
    /// down. Sockets opened after this close at once.
    pub fn close_all(&self) {
        self.closing.send_replace(true);
    }

    /// Waits until [`Hub::close_all`] was called.
    pub async fn wait_closing(&self) {
        let mut closing = self.closing.subscribe();
        // Fails only if the sender is gone, which it is not while `self` lives.
        let _ = closing.wait_for(|closing| *closing).await;
    }

    pub fn is_closing(&self) -> bool {
        *self.closing.borrow()
    }

    /// Waits until every socket has closed and its session has recorded that it left,
    /// or `bound` has passed; `false` if some were not done.
    pub async fn drained(&self, bound: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + bound;
        while {
            let inner = self.lock();
            !inner.conns.is_empty() || inner.leaving > 0
        } {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        true
    }

    /// Forgets a closed socket. Its session then records that it left (a customer gone,
    /// an agent's grace period) while the returned guard lives; shutdown waits for it,
    /// so those writes reach the store before it closes.
    pub fn disconnect(&self, id: ConnId) -> Leaving<'_> {
        let mut inner = self.lock();
        remove(&mut inner, id);
        inner.leaving += 1;
        Leaving(self)
    }

    /// The socket now hears everything published to `case`.
    pub fn follow(&self, id: ConnId, case: CaseId) {
        let mut inner = self.lock();
        if let Some(conn) = inner.conns.get_mut(&id) {
            conn.cases.insert(case);
            let followers = inner.followers.entry(case).or_default();
            followers.insert(id);
            if followers.len() == 1 {
                interest(&inner, case, true);
            }
        }
    }

    /// Every console of `agent`, on every node, now hears `case`.
    pub fn follow_for_agent(&self, agent: AgentId, case: CaseId) {
        self.follow_for_agent_here(agent, case);
        self.tell_others(Fanout::Follow {
            agent,
            case,
            on: true,
        });
    }

    fn follow_for_agent_here(&self, agent: AgentId, case: CaseId) {
        let ids = consoles(&self.lock(), Some(agent));
        for id in ids {
            self.follow(id, case);
        }
    }

    /// The socket no longer hears `case`.
    pub fn unfollow(&self, id: ConnId, case: CaseId) {
        let mut inner = self.lock();
        if let Some(conn) = inner.conns.get_mut(&id) {
            conn.cases.remove(&case);
        }
        drop_follower(&mut inner, case, id);
    }

    /// No console of `agent`, on any node, hears `case` any more.
    pub fn unfollow_for_agent(&self, agent: AgentId, case: CaseId) {
        self.unfollow_for_agent_here(agent, case);
        self.tell_others(Fanout::Follow {
            agent,
            case,
            on: false,
        });
    }

    fn unfollow_for_agent_here(&self, agent: AgentId, case: CaseId) {
        let ids = consoles(&self.lock(), Some(agent));
        for id in ids {
            self.unfollow(id, case);
        }
    }

    /// How many widgets follow `case`: none means the customer has gone away.
    pub fn widgets_following(&self, case: CaseId) -> usize {
        let inner = self.lock();
        inner.followers.get(&case).map_or(0, |set| {
            set.iter()
                .filter(|id| inner.conns.get(id).is_some_and(|c| c.agent.is_none()))
                .count()
        })
    }

    /// How many consoles of `agent` are open.
    pub fn consoles_of(&self, agent: AgentId) -> usize {
        consoles(&self.lock(), Some(agent)).len()
    }

    /// Sends a frame to everyone following `case`: widgets get `visitor`, consoles `agent`.
    pub fn publish(&self, case: CaseId, visitor: &ToVisitor, agent: &ToAgent) {
        self.publish_to(case, Some(visitor), Some(agent));
    }

    /// Like [`Hub::publish`], to widgets only, consoles only, or both.
    pub fn publish_to(&self, case: CaseId, visitor: Option<&ToVisitor>, agent: Option<&ToAgent>) {
        self.publish_here(case, visitor, agent);
        if self.others.get().is_some() {
            self.tell_others(Fanout::Case {
                case,
                visitor: visitor.cloned().map(Box::new),
                agent: agent.cloned().map(Box::new),
            });
        }
    }

    /// Like [`Hub::publish_to`], to this node's sockets only: a new message, which
    /// reaches the other nodes by its `seq` (see [`crate::bus`]).
    pub fn publish_here(&self, case: CaseId, visitor: Option<&ToVisitor>, agent: Option<&ToAgent>) {
        let to_visitor = visitor.and_then(encode);
        let to_agent = agent.and_then(encode);
        let mut inner = self.lock();
        let ids: Vec<ConnId> = inner
            .followers
            .get(&case)
            .map(|set| set.iter().copied().collect())
            .unwrap_or_default();
        for id in ids {
            let frame = match inner.conns.get(&id).map(|c| c.agent.is_some()) {
                Some(true) => to_agent.clone(),
                Some(false) => to_visitor.clone(),
                None => None,
            };
            if let Some(frame) = frame {
                deliver(&mut inner, id, frame);
            }
        }
    }

    /// Sends a frame to every console of `agent`.
    pub fn send_agent(&self, agent: AgentId, frame: &ToAgent) {
        self.send_consoles(Some(agent), frame);
        if self.others.get().is_some() {
            self.tell_others(Fanout::Agent {
                agent,
                frame: frame.clone(),
            });
        }
    }

    /// Sends a frame to every console.
    pub fn send_all_agents(&self, frame: &ToAgent) {
        self.send_consoles(None, frame);
        if self.others.get().is_some() {
            self.tell_others(Fanout::AllAgents {
                frame: frame.clone(),
            });
        }
    }

    /// Sends a frame to every widget.
    pub fn send_all_widgets(&self, frame: &ToVisitor) {
        self.send_all_widgets_here(frame);
        if self.others.get().is_some() {
            self.tell_others(Fanout::AllWidgets {
                frame: frame.clone(),
            });
        }
    }

    fn send_all_widgets_here(&self, frame: &ToVisitor) {
        let Some(frame) = encode(frame) else { return };
        let mut inner = self.lock();
        let widgets: Vec<ConnId> = inner
            .conns
            .iter()
            .filter(|(_, c)| c.agent.is_none())
            .map(|(id, _)| *id)
            .collect();
        for id in widgets {
            deliver(&mut inner, id, frame.clone());
        }
    }

    fn send_consoles(&self, agent: Option<AgentId>, frame: &ToAgent) {
        let Some(frame) = encode(frame) else { return };
        let mut inner = self.lock();
        for id in consoles(&inner, agent) {
            deliver(&mut inner, id, frame.clone());
        }
    }

    /// Closes every console of `agent` at once (their account was deactivated).
    pub fn kick_agent(&self, agent: AgentId) {
        self.kick_agent_here(agent);
        self.tell_others(Fanout::KickAgent { agent });
    }

    fn kick_agent_here(&self, agent: AgentId) {
        let mut inner = self.lock();
        for id in consoles(&inner, Some(agent)) {
            kick_for(&mut inner, id, CLOSE_ACCOUNT_OFF);
        }
    }

    /// Drops one socket at once (it fell behind); its client reconnects and resumes.
    pub fn kick(&self, id: ConnId) {
        kick(&mut self.lock(), id);
    }

    /// Closes at once the consoles opened with these sessions (token digests): the
    /// sessions ended (signed out, password changed, expired).
    pub fn kick_sessions(&self, sessions: &[String]) {
        if sessions.is_empty() {
            return;
        }
        self.kick_sessions_here(sessions);
        self.tell_others(Fanout::KickSessions {
            sessions: sessions.to_vec(),
        });
    }

    /// Closes the consoles of these sessions on this node only.
    pub fn kick_sessions_here(&self, sessions: &[String]) {
        let mut inner = self.lock();
        let ended: Vec<ConnId> = inner
            .conns
            .iter()
            .filter(|(_, c)| {
                c.session
                    .as_deref()
                    .is_some_and(|s| sessions.iter().any(|e| e == s))
            })
            .map(|(id, _)| *id)
            .collect();
        for id in ended {
            kick_for(&mut inner, id, CLOSE_SESSION_ENDED);
        }
    }

    /// Drops every console on every node; each reconnects and resumes.
    pub fn resume_consoles(&self) {
        self.kick_consoles_here();
        self.tell_others(Fanout::ResumeConsoles);
    }

    /// Drops every console on this node; each reconnects and resumes.
    pub fn kick_consoles_here(&self) {
        let mut inner = self.lock();
        for id in consoles(&inner, None) {
            kick(&mut inner, id);
        }
    }

    /// Joins the other nodes: from now on what this node's sockets hear goes to `others`
    /// too, and so does which cases they follow.
    pub fn join(&self, others: Outgoing) {
        let mut inner = self.lock();
        for case in inner.followers.keys() {
            let _ = others.interest.send(Interest {
                case: *case,
                on: true,
                at: crate::store::now_ms(),
            });
        }
        inner.interest = Some(others.interest.clone());
        let _ = self.others.set(others);
    }

    /// Hands the other nodes what this node's sockets heard (nothing on a node alone).
    pub fn tell_others(&self, fanout: Fanout) {
        if let Some(others) = self.others.get() {
            let _ = others.fanout.send(fanout);
        }
    }

    /// Delivers to this node's sockets what another node's heard.
    pub fn hear(&self, fanout: Fanout) {
        match fanout {
            // The bus reads a new message (or the settings) from the database.
            Fanout::Message { .. } | Fanout::Settings => {}
            Fanout::Case {
                case,
                visitor,
                agent,
            } => self.publish_here(case, visitor.as_deref(), agent.as_deref()),
            Fanout::Agent { agent, frame } => self.send_consoles(Some(agent), &frame),
            Fanout::AllAgents { frame } => self.send_consoles(None, &frame),
            Fanout::AllWidgets { frame } => self.send_all_widgets_here(&frame),
            Fanout::Follow {
                agent,
                case,
                on: true,
            } => self.follow_for_agent_here(agent, case),
            Fanout::Follow {
                agent,
                case,
                on: false,
            } => self.unfollow_for_agent_here(agent, case),
            Fanout::KickAgent { agent } => self.kick_agent_here(agent),
            Fanout::KickSessions { sessions } => self.kick_sessions_here(&sessions),
            Fanout::ResumeConsoles => self.kick_consoles_here(),
        }
    }

    /// The sessions (token digests) of the consoles open here.
    pub fn console_sessions(&self) -> Vec<String> {
        let inner = self.lock();
        let mut sessions: Vec<String> = inner
            .conns
            .values()
            .filter_map(|c| c.session.as_deref().map(str::to_owned))
            .collect();
        sessions.sort_unstable();
        sessions.dedup();
        sessions
    }

    /// Whose sockets are open here: the agents with a console, and the cases a widget
    /// follows (their customers').
    pub fn present(&self) -> (Vec<AgentId>, Vec<CaseId>) {
        let inner = self.lock();
        let mut agents: Vec<AgentId> = inner.conns.values().filter_map(|c| c.agent).collect();
        agents.sort_unstable();
        agents.dedup();
        let widget = |id: &ConnId| inner.conns.get(id).is_some_and(|c| c.agent.is_none());
        let cases = inner
            .followers
            .iter()
            .filter(|(_, ids)| ids.iter().any(widget))
            .map(|(case, _)| *case)
            .collect();
        (agents, cases)
    }

    /// The cases some socket here follows.
    pub fn followed_cases(&self) -> Vec<CaseId> {
        self.lock().followers.keys().copied().collect()
    }

    /// Whether any socket here follows `case`.
    pub fn follows(&self, case: CaseId) -> bool {
        self.lock().followers.contains_key(&case)
    }

    /// How many sockets are open.
    pub fn len(&self) -> usize {
        self.lock().conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The consoles of `agent`, or of everyone when `None`.
fn consoles(inner: &Inner, agent: Option<AgentId>) -> Vec<ConnId> {
    inner
        .conns
        .iter()
        .filter(|(_, c)| c.agent.is_some() && (agent.is_none() || c.agent == agent))
        .map(|(id, _)| *id)
        .collect()
}

fn deliver(inner: &mut Inner, id: ConnId, frame: Outbound) {
    let Some(conn) = inner.conns.get(&id) else {
        return;
    };
    if conn.outbox.push(frame).is_err() {
        tracing::warn!(
            conn = id,
            "socket fell behind; disconnecting it so it resumes"
        );
        kick(inner, id);
    }
}

fn kick(inner: &mut Inner, id: ConnId) {
    kick_for(inner, id, 0);
}

/// Drops a socket, saying why with a close code (0: none).
fn kick_for(inner: &mut Inner, id: ConnId, code: u16) {
    if let Some(conn) = inner.conns.get(&id) {
        conn.why.store(code, Ordering::Relaxed);
        conn.kicked.notify_one();
    }
    remove(inner, id);
}

fn remove(inner: &mut Inner, id: ConnId) {
    if let Some(conn) = inner.conns.remove(&id) {
        for case in conn.cases {
            drop_follower(inner, case, id);
        }
    }
}

/// `id` no longer follows `case`; a case nobody here follows is forgotten.
fn drop_follower(inner: &mut Inner, case: CaseId, id: ConnId) {
    if let Some(set) = inner.followers.get_mut(&case) {
        set.remove(&id);
        if set.is_empty() {
            inner.followers.remove(&case);
            interest(inner, case, false);
        }
    }
}

/// Tells the bus, if any, that this node's sockets follow `case` now or no longer.
fn interest(inner: &Inner, case: CaseId, on: bool) {
    if let Some(interest) = &inner.interest {
        let _ = interest.send(Interest {
            case,
            on,
            at: crate::store::now_ms(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parlor_protocol::{ErrorCode, ProtocolError};

    fn visitor_frame() -> ToVisitor {
        ToVisitor::Error {
            error: ProtocolError::new(ErrorCode::Invalid, "v"),
        }
    }

    fn agent_frame() -> ToAgent {
        ToAgent::Error {
            error: ProtocolError::new(ErrorCode::Invalid, "a"),
        }
    }

    #[test]
    fn a_case_is_published_to_its_followers_only_each_in_their_own_frame_type() {
        let hub = Hub::default();
        let mut widget = hub.connect(None);
        let mut console = hub.connect(Some(1));
        let mut stranger = hub.connect(None);
        hub.follow(widget.id, 7);
        hub.follow_for_agent(1, 7);
        hub.publish(7, &visitor_frame(), &agent_frame());
        assert!(
            widget
                .outbox
                .try_recv()
                .expect("widget hears")
                .contains("\"v\"")
        );
        assert!(
            console
                .outbox
                .try_recv()
                .expect("console hears")
                .contains("\"a\"")
        );
        assert!(stranger.outbox.try_recv().is_none());
    }

    #[test]
    fn a_socket_that_falls_behind_is_dropped_not_waited_for() {
        let hub = Hub::default();
        let slow = hub.connect(None);
        let mut quick = hub.connect(None);
        hub.follow(slow.id, 7);
        hub.follow(quick.id, 7);
        for _ in 0..=OUTBOX_FRAMES {
            hub.publish(7, &visitor_frame(), &agent_frame());
            assert!(quick.outbox.try_recv().is_some());
        }
        assert_eq!(hub.len(), 1);
    }

    fn big_frame(bytes: usize) -> ToVisitor {
        ToVisitor::Error {
            error: ProtocolError::new(ErrorCode::Invalid, "x".repeat(bytes)),
        }
    }

    #[test]
    fn a_socket_with_a_megabyte_waiting_is_dropped_though_few_frames_wait() {
        let hub = Hub::default();
        let slow = hub.connect(None);
        let mut quick = hub.connect(None);
        hub.follow(slow.id, 7);
        hub.follow(quick.id, 7);
        let frame = big_frame(200 * 1024);
        for _ in 0..OUTBOX_BYTES / (200 * 1024) {
            hub.publish(7, &frame, &agent_frame());
            assert!(quick.outbox.try_recv().is_some());
        }
        assert_eq!(hub.len(), 2, "five frames of 200 KiB fit");
        hub.publish(7, &frame, &agent_frame());
        assert_eq!(hub.len(), 1, "the sixth does not: the slow socket went");
        assert!(quick.outbox.try_recv().is_some());
    }

    #[test]
    fn one_frame_larger_than_the_bound_still_reaches_a_socket_with_nothing_waiting() {
        let hub = Hub::default();
        let mut reader = hub.connect(None);
        hub.follow(reader.id, 7);
        for _ in 0..3 {
            hub.publish(7, &big_frame(OUTBOX_BYTES + 1), &agent_frame());
            assert!(reader.outbox.try_recv().is_some(), "taken as it came");
        }
        assert_eq!(hub.len(), 1);
        hub.publish(7, &big_frame(OUTBOX_BYTES + 1), &agent_frame());
        hub.publish(7, &visitor_frame(), &agent_frame());
        assert_eq!(hub.len(), 0, "nothing more fits behind it");
    }
}
