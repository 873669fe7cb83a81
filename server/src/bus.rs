//! Between nodes: what one node's sockets must hear of what happened on another, over
//! NATS (`--nats-url`). Each node's [`Hub`] hands the bus what it delivered to its own
//! sockets ([`Fanout`]); the other nodes deliver it to theirs.
//!
//! A new message travels whole when its text is short, and as its case and `seq` only
//! when it is long: that text stays in the database, and a node reads it from there.
//! The bus may lose a message (NATS keeps nothing for a node that is away), so each
//! node delivers a case's messages through one sequencer: a message whose `seq` is not
//! the next one its sockets heard is preceded by those in between, read from the
//! database, and one already delivered is dropped. Messages of one case are committed
//! in `seq` order (the case's row is locked while they are numbered), so whatever
//! comes before a `seq` heard is already there to read.
//! After the bus comes back, the sequencer reads what each followed case gained
//! meanwhile and tells the widgets where each chat stands, closes the consoles whose
//! sessions ended meanwhile, reads the settings again (an admin may have changed them
//! on another node), and has every other console here reconnect and resume: what
//! routing told them meanwhile was lost.
//!
//! A node subscribes to a case's subject only while one of its sockets follows the
//! case ([`Interest`]); what is for agents or everyone goes on one subject all nodes
//! hear.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::StreamExt;
use parlor_protocol::{AgentId, CaseId, ChatMessage, Millis, Seq, ToAgent, ToVisitor};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::chat;
use crate::hub::Hub;
use crate::settings::SharedSettings;
use crate::store::{Store, now_ms};

/// How long before this node's sockets followed a case a message may have been sent
/// and still be missing from what they read then (its commit still running, or the
/// clocks of two nodes a little apart).
const MISSED_BEFORE_MS: Millis = 5_000;

/// A message whose text is at most this long travels whole, and the nodes that hear it
/// need not read it from the database; a longer one travels as its case and `seq`.
const CARRIED_BODY_BYTES: usize = 1024;

/// What a node's sockets heard that the other nodes' must hear too.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Fanout {
    /// A message was committed in `case`: the message itself when short, else read it
    /// from the database.
    Message {
        case: CaseId,
        seq: Seq,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<Box<ChatMessage>>,
    },
    /// Frames for everyone following `case`: widgets get `visitor`, consoles `agent`.
    Case {
        case: CaseId,
        visitor: Option<Box<ToVisitor>>,
        agent: Option<Box<ToAgent>>,
    },
    /// A frame for every console of `agent`.
    Agent {
        agent: AgentId,
        frame: ToAgent,
    },
    AllAgents {
        frame: ToAgent,
    },
    AllWidgets {
        frame: ToVisitor,
    },
    /// Every console of `agent` follows `case` from now on (or no longer).
    Follow {
        agent: AgentId,
        case: CaseId,
        on: bool,
    },
    /// Close every console of `agent` (the account was switched off).
    KickAgent {
        agent: AgentId,
    },
    /// Close the consoles of these sessions (token digests): they ended.
    KickSessions {
        sessions: Vec<String>,
    },
    /// An admin changed the settings: read them again.
    Settings,
    /// Routing changed hands: what the node that routed had decided but not yet told
    /// the consoles died with it, so every console reconnects and reads where it
    /// stands.
    ResumeConsoles,
}

/// Whether a node's sockets follow a case: the first one started to, or the last one
/// stopped.
#[derive(Clone, Copy, Debug)]
pub struct Interest {
    pub case: CaseId,
    pub on: bool,
    /// When.
    pub at: Millis,
}

/// Where a [`Hub`] hands what the other nodes must hear.
#[derive(Clone)]
pub struct Outgoing {
    pub fanout: mpsc::UnboundedSender<Fanout>,
    pub interest: mpsc::UnboundedSender<Interest>,
}

/// How long a starting node waits for NATS before it serves without it.
const JOIN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The subjects of one cluster (the nodes on one database).
#[derive(Clone)]
struct Subjects {
    /// `parlor.<cluster>.`
    prefix: Arc<str>,
}

impl Subjects {
    /// What every node hears.
    fn nodes(&self) -> String {
        format!("{}nodes", self.prefix)
    }

    fn case(&self, case: CaseId) -> String {
        format!("{}case.{case}", self.prefix)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot reach NATS: {0}")]
    Connect(#[from] async_nats::ConnectError),
    #[error("cannot subscribe on NATS: {0}")]
    Subscribe(#[from] async_nats::SubscribeError),
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
}

/// This node's end of the bus.
#[derive(Clone)]
pub struct Bus {
    client: async_nats::Client,
    subjects: Subjects,
    sequencer: mpsc::UnboundedSender<Step>,
}

/// What the sequencer does next.
enum Step {
    /// This node committed the message.
    Committed(ChatMessage),
    /// Another node committed the message `seq` of `case`.
    Heard {
        case: CaseId,
        seq: Seq,
        message: Option<Box<ChatMessage>>,
    },
    /// The first socket here followed `case` at `at`.
    Followed { case: CaseId, at: Millis },
    /// No socket here follows `case` any more.
    Forget(CaseId),
    /// This node's subscription to `case` is in place: what was sent before it is
    /// read from the database.
    Subscribed(CaseId),
    /// The bus went away at this time.
    Down(Millis),
    /// The bus is back, with this node's subscriptions: read what each followed case
    /// gained meanwhile.
    Sweep,
}

impl Bus {
    /// Connects to NATS at `url` and joins the nodes: from now on `hub` tells the
    /// others what its sockets hear, and hears what theirs do.
    pub async fn start(
        url: &str,
        hub: Arc<Hub>,
        store: Store,
        settings: SharedSettings,
    ) -> Result<Self, BusError> {
        let subjects = Subjects {
            prefix: format!("parlor.{}.", store.cluster_name().await?).into(),
        };
        let (sequencer, steps) = mpsc::unbounded_channel();
        let back = sequencer.clone();
        let (reconnected, reconnects) = mpsc::unbounded_channel();
        let client = async_nats::ConnectOptions::new()
            // A node's own fanout is already delivered here.
            .no_echo()
            .retry_on_initial_connect()
            // Back within a second of NATS coming back, not after a growing back-off.
            .reconnect_delay_callback(|attempts| {
                std::time::Duration::from_millis((attempts as u64 * 100).min(1000))
            })
            .event_callback(move |event| {
                let back = back.clone();
                let reconnected = reconnected.clone();
                async move {
                    match event {
                        // The subscriptions are made again after this: the sweep waits
                        // for them (see `subscribe`).
                        async_nats::Event::Connected => {
                            let _ = reconnected.send(());
                        }
                        async_nats::Event::Disconnected => {
                            tracing::warn!("NATS is unreachable; reconnecting");
                            let _ = back.send(Step::Down(now_ms()));
                        }
                        _ => {}
                    }
                }
            })
            .connect(url)
            .await?;
        let (fanout, outgoing) = mpsc::unbounded_channel();
        let (interest, interests) = mpsc::unbounded_channel();
        let (heard, incoming) = mpsc::unbounded_channel();
        let nodes = client.subscribe(subjects.nodes()).await?;
        tokio::spawn(forward(nodes, heard.clone()));
        // A node serves nobody before it hears the others (a session ended elsewhere
        // meanwhile would leave its console open here), unless NATS stays away.
        if tokio::time::timeout(JOIN_WAIT, client.flush())
            .await
            .is_err()
        {
            tracing::warn!("NATS is not reachable yet; starting without it, joining once it is");
        }
        tokio::spawn(send_out(client.clone(), subjects.clone(), outgoing));
        let subjects_kept = subjects.clone();
        tokio::spawn(subscribe(
            client.clone(),
            subjects,
            (interests, reconnects),
            heard,
            sequencer.clone(),
        ));
        tokio::spawn(hear(
            incoming,
            hub.clone(),
            sequencer.clone(),
            (store.clone(), settings.clone()),
        ));
        tokio::spawn(sequence(steps, hub.clone(), (store, settings)));
        hub.join(Outgoing { fanout, interest });
        Ok(Self {
            client,
            subjects: subjects_kept,
            sequencer,
        })
    }

    /// Delivers a message this node committed, and tells the other nodes: the store's
    /// writer calls this for each message, in commit order.
    pub fn committed(&self, message: &ChatMessage) {
        let _ = self.sequencer.send(Step::Committed(message.clone()));
    }

    /// The NATS connection, for what other parts of the node send between nodes
    /// (routing, see [`crate::leader`]).
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The subject `name` of this cluster.
    pub fn subject(&self, name: &str) -> String {
        format!("{}{name}", self.subjects.prefix)
    }

    /// Whether the bus is connected now.
    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }
}

/// Publishes what this node's sockets heard, in order.
async fn send_out(
    client: async_nats::Client,
    subjects: Subjects,
    mut outgoing: mpsc::UnboundedReceiver<Fanout>,
) {
    while let Some(fanout) = outgoing.recv().await {
        let subject = match &fanout {
            Fanout::Message { case, .. } | Fanout::Case { case, .. } => subjects.case(*case),
            _ => subjects.nodes(),
        };
        // While NATS is away, what only informs is dropped rather than piled up (the
        // sweep after it comes back reads the messages); what closes sockets, makes
        // them follow a case, or tells an agent's consoles what routing decided (a
        // screen pop shown or closed, a chat opened) waits for it, in order.
        let informs = !matches!(
            fanout,
            Fanout::Agent { .. }
                | Fanout::Follow { .. }
                | Fanout::KickAgent { .. }
                | Fanout::KickSessions { .. }
                | Fanout::Settings
                | Fanout::ResumeConsoles
        );
        if informs && client.connection_state() != async_nats::connection::State::Connected {
            continue;
        }
        let Ok(payload) = serde_json::to_vec(&fanout) else {
            continue;
        };
        if let Err(error) = client.publish(subject, payload.into()).await {
            tracing::warn!(%error, "a fanout was not sent");
        }
    }
}

/// Subscribes to each case while this node's sockets follow it. Once a subscription
/// is in place (the server has it: a flush answered), the sequencer reads what was
/// sent before it; after a reconnect, once the subscriptions are made again, it sweeps.
async fn subscribe(
    client: async_nats::Client,
    subjects: Subjects,
    (mut interests, mut reconnects): (
        mpsc::UnboundedReceiver<Interest>,
        mpsc::UnboundedReceiver<()>,
    ),
    heard: mpsc::UnboundedSender<async_nats::Message>,
    sequencer: mpsc::UnboundedSender<Step>,
) {
    let mut subscribed: HashMap<CaseId, tokio::task::JoinHandle<()>> = HashMap::new();
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            most = interests.recv_many(&mut batch, 1024) => {
                if most == 0 {
                    return;
                }
            }
            Some(()) = reconnects.recv() => {
                if client.flush().await.is_ok() {
                    let _ = sequencer.send(Step::Sweep);
                }
                continue;
            }
        }
        let mut new = Vec::new();
        for Interest { case, on, at } in batch.drain(..) {
            if on {
                let _ = sequencer.send(Step::Followed { case, at });
                if subscribed.contains_key(&case) {
                    continue;
                }
                match client.subscribe(subjects.case(case)).await {
                    Ok(subscriber) => {
                        subscribed.insert(case, tokio::spawn(forward(subscriber, heard.clone())));
                        new.push(case);
                    }
                    Err(error) => tracing::warn!(%error, case, "cannot follow a case on NATS"),
                }
            } else {
                // Dropping the subscriber unsubscribes.
                if let Some(forwarding) = subscribed.remove(&case) {
                    forwarding.abort();
                }
                new.retain(|c| *c != case);
                let _ = sequencer.send(Step::Forget(case));
            }
        }
        if !new.is_empty() && client.flush().await.is_ok() {
            for case in new {
                let _ = sequencer.send(Step::Subscribed(case));
            }
        }
    }
}

async fn forward(
    mut subscriber: async_nats::Subscriber,
    heard: mpsc::UnboundedSender<async_nats::Message>,
) {
    while let Some(message) = subscriber.next().await {
        if heard.send(message).is_err() {
            return;
        }
    }
}

/// Delivers what the other nodes' sockets heard to this node's.
async fn hear(
    mut incoming: mpsc::UnboundedReceiver<async_nats::Message>,
    hub: Arc<Hub>,
    sequencer: mpsc::UnboundedSender<Step>,
    (store, settings): (Store, SharedSettings),
) {
    while let Some(message) = incoming.recv().await {
        match serde_json::from_slice::<Fanout>(&message.payload) {
            Ok(Fanout::Message { case, seq, message }) => {
                let _ = sequencer.send(Step::Heard { case, seq, message });
            }
            Ok(Fanout::Settings) => reload_settings(&settings, &store).await,
            Ok(fanout) => hub.hear(fanout),
            Err(error) => tracing::warn!(%error, "an unreadable fanout"),
        }
    }
}

/// What this node's sockets have of a case they follow.
struct Followed {
    /// The last `seq` delivered here; `None` before the first.
    heard: Option<Seq>,
    /// When the first of them followed it: before the first message delivered here,
    /// what was sent since may be missing (they read what came before when they
    /// followed).
    since: Millis,
}

/// Delivers each followed case's messages to this node's sockets in `seq` order, each
/// once, filling what the bus lost from the database; and tells the other nodes of
/// each message this node committed.
async fn sequence(
    mut steps: mpsc::UnboundedReceiver<Step>,
    hub: Arc<Hub>,
    (store, settings): (Store, SharedSettings),
) {
    let mut cases: HashMap<CaseId, Followed> = HashMap::new();
    // When the bus went away, until the sweep after it came back.
    let mut down_since: Option<Millis> = None;
    while let Some(step) = steps.recv().await {
        match step {
            Step::Committed(message) => {
                let (case, seq) = (message.case_id, message.seq);
                if hub.follows(case) {
                    deliver_next(&mut cases, &hub, &store, &message).await;
                }
                let carried = message.body.len() <= CARRIED_BODY_BYTES;
                hub.tell_others(Fanout::Message {
                    case,
                    seq,
                    message: carried.then(|| Box::new(message)),
                });
            }
            Step::Heard { case, seq, message } => {
                if !hub.follows(case) {
                    continue;
                }
                match message {
                    Some(message) => deliver_next(&mut cases, &hub, &store, &message).await,
                    None => {
                        deliver_upto(&mut cases, &hub, &store, case, seq).await;
                    }
                }
            }
            Step::Followed { case, at } => {
                cases.entry(case).or_insert(Followed {
                    heard: None,
                    since: at,
                });
            }
            Step::Subscribed(case) => {
                if hub.follows(case) {
                    deliver_upto(&mut cases, &hub, &store, case, Seq::MAX).await;
                }
            }
            Step::Forget(case) => {
                cases.remove(&case);
            }
            Step::Down(at) => {
                down_since.get_or_insert(at);
            }
            Step::Sweep => {
                if down_since.take().is_some() {
                    for case in hub.followed_cases() {
                        deliver_upto(&mut cases, &hub, &store, case, Seq::MAX).await;
                        if hub.widgets_following(case) > 0 {
                            tell_widgets_state(&hub, &store, case).await;
                        }
                    }
                    close_ended_sessions(&hub, &store).await;
                    reload_settings(&settings, &store).await;
                    // What routing told the consoles here meanwhile (screen pops shown
                    // and closed, chats opened, switches) was lost with the bus: each
                    // reconnects and reads where it stands afresh (with the settings
                    // just read). Their open screen pops are offered again.
                    hub.kick_consoles_here();
                }
            }
        }
    }
}

/// Tells the widgets here following `case` where it stands (an agent may have joined
/// while the bus was away).
async fn tell_widgets_state(hub: &Hub, store: &Store, case: CaseId) {
    match store.case(case).await {
        Ok(Some(record)) => {
            let state = ToVisitor::State {
                case: record.summary,
            };
            hub.publish_here(case, Some(&state), None);
        }
        Ok(None) => {}
        Err(error) => tracing::warn!(%error, case, "cannot read a case the bus may have changed"),
    }
}

/// Reads the settings again: an admin changed them on another node (or may have, while
/// the bus was away).
async fn reload_settings(settings: &SharedSettings, store: &Store) {
    if let Err(error) = settings.reload(store).await {
        tracing::warn!(%error, "cannot read the settings another node changed");
    }
}

/// Closes the consoles here whose sessions ended while the bus was away (signed out
/// on another node, an account switched off): that news was lost with the bus.
async fn close_ended_sessions(hub: &Hub, store: &Store) {
    let here = hub.console_sessions();
    match store.live_sessions(&here).await {
        Ok(live) => {
            let ended: Vec<String> = here.into_iter().filter(|s| !live.contains(s)).collect();
            hub.kick_sessions_here(&ended);
        }
        Err(error) => tracing::warn!(%error, "cannot check the sessions of the consoles here"),
    }
}

/// Delivers `message` to this node's followers of its case, after whatever they lack
/// before it (read from the database), unless they have it.
async fn deliver_next(
    cases: &mut HashMap<CaseId, Followed>,
    hub: &Hub,
    store: &Store,
    message: &ChatMessage,
) {
    let (case, seq) = (message.case_id, message.seq);
    let followed = deliver_upto(cases, hub, store, case, seq - 1).await;
    if followed.heard.is_none_or(|last| last < seq) {
        chat::publish_message(hub, message);
        followed.heard = Some(seq);
    }
}

/// Delivers from the database what this node's followers of `case` lack, up to `upto`:
/// what came after the last message delivered here, or before the first, whatever was
/// sent since they followed, less a margin (a follower keeps each `seq` once). Gives
/// the case's state.
async fn deliver_upto<'a>(
    cases: &'a mut HashMap<CaseId, Followed>,
    hub: &Hub,
    store: &Store,
    case: CaseId,
    upto: Seq,
) -> &'a mut Followed {
    let followed = cases.entry(case).or_insert_with(|| Followed {
        heard: None,
        since: now_ms(),
    });
    let (mut after, since) = match followed.heard {
        Some(last) => (last, 0),
        None => (0, followed.since - MISSED_BEFORE_MS),
    };
    while after < upto {
        match store.messages_between(case, after, upto, since).await {
            Ok(messages) if messages.is_empty() => break,
            Ok(messages) => {
                for message in &messages {
                    chat::publish_message(hub, message);
                    after = message.seq;
                }
                followed.heard = Some(after);
            }
            Err(error) => {
                tracing::warn!(%error, case, "cannot read the messages the bus lost");
                break;
            }
        }
    }
    followed
}
