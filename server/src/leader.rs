//! Which node routes chats. With one node, that node. With several (`--nats-url`), the
//! one holding the routing lease (see `store::lease`): it runs the routing shell
//! ([`crate::dispatch`]) with its engine unchanged, and the other nodes send it what
//! their sockets and handlers tell routing, over the bus. Its decisions reach sockets
//! on any node through the [`crate::hub::Hub`], which the bus already spans.
//!
//! Every [`LEASE_TICK`] the leader renews its lease, and beats: every node hears the
//! beat, learns whether anyone can take a chat (for its widgets' welcome), and answers
//! with how many consoles each agent has on it. That answer is how a new leader learns
//! who is connected, how a leader corrects news it missed, and how it notices a node
//! gone (see [`crate::consoles`]). The chats waiting, with their open screen pops and
//! deadlines, a new leader reads from the database, as a restart does.
//!
//! A node that stops renewing (killed, cut off from the database) loses the lease
//! [`LEASE`] after its last renewal; the next node to try takes it within a tick.
//! What a node sends while nobody leads is lost, and what it stands for is read again
//! by the next leader (the waiting chats, the consoles); a click in that gap (Accept)
//! does nothing and can be made again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use parlor_protocol::{AgentId, CaseId};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::bus::Bus;
use crate::consoles;
use crate::dispatch::{self, Command, NodeNews};
use crate::hub::Hub;
use crate::routing::Event;
use crate::secret;
use crate::settings::SharedSettings;
use crate::store::{Epoch, Store, now_ms};

/// A node, as routing tells them apart: random, new at each start.
pub type NodeId = String;

/// How long the routing lease lasts from a renewal.
pub const LEASE: Duration = Duration::from_secs(3);

/// How often the leader renews the lease and beats, and the others try to take it.
pub const LEASE_TICK: Duration = Duration::from_secs(1);

/// Where sockets and handlers send routing events.
#[derive(Clone)]
pub struct Routing {
    inner: Arc<Inner>,
}

struct Inner {
    node: NodeId,
    /// Whether anyone can take a new chat now, as the leader last saw it.
    online: Arc<AtomicBool>,
    local: Mutex<Local>,
    /// The node is shutting down: it takes no lease again.
    stopping: AtomicBool,
}

/// What this node tells routing, and where it goes. One lock, so the consoles it
/// counts and the news it sends stay in one order.
#[derive(Default)]
struct Local {
    /// Consoles per agent on this node that routing was told of.
    consoles: HashMap<AgentId, u32>,
    /// The routing shell, while this node leads, and the lease's epoch it leads under
    /// (none on a node alone).
    shell: Option<mpsc::UnboundedSender<Command>>,
    epoch: Option<Epoch>,
    /// To the leader over the bus, while another node leads.
    to_leader: Option<mpsc::UnboundedSender<NodeNews>>,
}

impl Local {
    fn tell(&self, news: NodeNews) {
        if let Some(shell) = &self.shell {
            if shell.send(Command::Node(news)).is_err() {
                tracing::warn!("routing task has stopped; event dropped");
            }
        } else if let Some(to_leader) = &self.to_leader {
            let _ = to_leader.send(news);
        }
    }

    fn consoles_news(&self, node: &NodeId) -> NodeNews {
        NodeNews::Consoles {
            node: node.clone(),
            agents: self.consoles.iter().map(|(a, n)| (*a, *n)).collect(),
        }
    }
}

/// The leader's beat (see the module's note).
#[derive(Serialize, Deserialize)]
struct Beat {
    node: NodeId,
    online: bool,
}

impl Routing {
    fn local(&self) -> MutexGuard<'_, Local> {
        self.inner
            .local
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether anyone can take a new chat now (for a widget's welcome).
    pub fn online(&self) -> bool {
        self.inner.online.load(Ordering::Relaxed)
    }

    /// This node.
    pub fn node(&self) -> &str {
        &self.inner.node
    }

    /// Whether this node routes chats now (and runs the chat timers).
    pub fn leads(&self) -> bool {
        self.local().shell.is_some()
    }

    /// Hands an event to routing, wherever it runs. If this node leads and its routing
    /// task is gone, the server is shutting down, and there is nobody left to route to.
    pub fn send(&self, event: Event) {
        let mut local = self.local();
        consoles::tally(&mut local.consoles, &event);
        local.tell(NodeNews::Event {
            node: self.inner.node.clone(),
            event,
        });
    }

    /// Asks for the customer's place in the queue to be sent to their widget.
    pub fn tell_position(&self, case: CaseId) {
        self.local().tell(NodeNews::TellPosition { case });
    }

    /// Starts leading under `fence`: a routing shell of this node's own, first told
    /// this node's consoles. From here on this node's news goes to it (before it has
    /// read the waiting chats: what comes meanwhile waits for it).
    fn lead(
        &self,
        (store, hub, settings): (&Store, &Arc<Hub>, &SharedSettings),
        fence: Option<Epoch>,
    ) -> mpsc::UnboundedSender<Command> {
        let node = self.inner.node.clone();
        let shell = dispatch::start(
            store.clone(),
            hub.clone(),
            settings.clone(),
            self.inner.online.clone(),
            (fence, node),
        );
        let mut local = self.local();
        let _ = shell.send(Command::Node(local.consoles_news(&self.inner.node)));
        local.shell = Some(shell.clone());
        local.epoch = fence;
        shell
    }

    fn step_down(&self) {
        let mut local = self.local();
        local.shell = None;
        local.epoch = None;
    }

    /// A node shutting down stops routing and gives the lease up, so another node
    /// takes it at its next tick rather than once the lease ran out.
    pub async fn give_up(&self, store: &Store) {
        self.inner.stopping.store(true, Ordering::Relaxed);
        let epoch = self.local().epoch;
        self.step_down();
        if let Some(epoch) = epoch
            && let Err(error) = store.give_up_lease(&self.inner.node, epoch).await
        {
            tracing::warn!(%error, "could not give the routing lease up");
        }
    }
}

/// A new node's id.
pub fn new_node() -> NodeId {
    secret::token()[..12].to_owned()
}

/// Starts routing on `node`: on its own without a bus, else as one of the nodes that
/// take turns leading.
pub async fn start(
    node: NodeId,
    store: Store,
    hub: Arc<Hub>,
    settings: SharedSettings,
    bus: Option<&Bus>,
) -> Routing {
    let routing = Routing {
        inner: Arc::new(Inner {
            node,
            online: Arc::new(AtomicBool::new(false)),
            local: Mutex::new(Local::default()),
            stopping: AtomicBool::new(false),
        }),
    };
    match bus {
        None => {
            routing.lead((&store, &hub, &settings), None);
        }
        Some(bus) => {
            let (to_leader, news) = mpsc::unbounded_channel();
            routing.local().to_leader = Some(to_leader);
            tokio::spawn(send_news(bus.clone(), news));
            tokio::spawn(hear_beats(bus.clone(), routing.clone()));
            let turns = Turns {
                routing: routing.clone(),
                store,
                hub,
                settings,
                bus: bus.clone(),
            };
            // The first turn before serving: a node that finds nobody leading routes
            // its first sockets' events itself.
            let leading = turns.turn(None).await;
            tokio::spawn(turns.run(leading));
        }
    }
    routing
}

/// Sends this node's news to whichever node leads, in order.
async fn send_news(bus: Bus, mut news: mpsc::UnboundedReceiver<NodeNews>) {
    let subject = bus.subject("routing");
    while let Some(news) = news.recv().await {
        match serde_json::to_vec(&news) {
            Ok(payload) => {
                if let Err(error) = bus.client().publish(subject.clone(), payload.into()).await {
                    tracing::warn!(%error, "news for routing was not sent");
                }
            }
            Err(error) => tracing::warn!(%error, "news for routing does not serialize"),
        }
    }
}

/// Hears the leader's beats: whether anyone can take a chat, and a request for this
/// node's consoles.
async fn hear_beats(bus: Bus, routing: Routing) {
    let mut beats = match bus.client().subscribe(bus.subject("leader")).await {
        Ok(beats) => beats,
        Err(error) => {
            tracing::error!(%error, "cannot hear the routing leader");
            return;
        }
    };
    while let Some(message) = beats.next().await {
        let Ok(beat) = serde_json::from_slice::<Beat>(&message.payload) else {
            tracing::warn!("an unreadable beat");
            continue;
        };
        let local = routing.local();
        if local.shell.is_some() || beat.node == routing.inner.node {
            // This node leads (or led until a moment ago: its next renewal tells).
            continue;
        }
        routing.inner.online.store(beat.online, Ordering::Relaxed);
        local.tell(local.consoles_news(&routing.inner.node));
    }
}

/// While this node leads: its lease's epoch, until when it may count on it, the task
/// handing its shell the other nodes' news, and the one beating.
struct Leading {
    epoch: Epoch,
    until: tokio::time::Instant,
    hearing: tokio::task::JoinHandle<()>,
    beating: tokio::task::JoinHandle<()>,
}

impl Leading {
    /// This node routes no more.
    fn end(self, routing: &Routing) {
        routing.step_down();
        self.hearing.abort();
        self.beating.abort();
    }
}

/// What taking turns at routing needs.
struct Turns {
    routing: Routing,
    store: Store,
    hub: Arc<Hub>,
    settings: SharedSettings,
    bus: Bus,
}

impl Turns {
    /// Every [`LEASE_TICK`] from the first turn (already taken, see [`start`]).
    async fn run(self, mut leading: Option<Leading>) {
        let mut tick = tokio::time::interval(LEASE_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            leading = self.turn(leading).await;
        }
    }

    /// The leader renews its lease (it beats on a timer of its own); the others try to
    /// take the lease, which succeeds once it ran out.
    async fn turn(&self, leading: Option<Leading>) -> Option<Leading> {
        let Self { routing, store, .. } = self;
        let node = &routing.inner.node;
        if routing.inner.stopping.load(Ordering::Relaxed) {
            if let Some(held) = leading {
                held.end(routing);
            }
            return None;
        }
        let asked = tokio::time::Instant::now();
        let until = now_ms() + millis(LEASE);
        let Some(held) = leading else {
            return match store.take_lease(node, now_ms(), until).await {
                Ok(Some(epoch)) => self.take_over(epoch, asked).await,
                Ok(None) => None,
                Err(error) => {
                    tracing::warn!(%error, "cannot try the routing lease");
                    None
                }
            };
        };
        match store.renew_lease(node, held.epoch, until).await {
            Ok(true) => Some(Leading {
                until: asked + LEASE,
                ..held
            }),
            Ok(false) => {
                tracing::warn!(epoch = held.epoch.0, "another node took the routing lease");
                held.end(routing);
                None
            }
            // Cut off from the database: lead on while the lease surely holds (nobody
            // can take it before), then stop.
            Err(error) if asked < held.until => {
                tracing::warn!(%error, "cannot renew the routing lease");
                Some(held)
            }
            Err(error) => {
                tracing::error!(%error, "the routing lease ran out; no longer routing");
                held.end(routing);
                None
            }
        }
    }

    /// Starts routing here under `epoch` (taken at `asked`): hears the other nodes'
    /// news first (so none sent after the waiting chats are read is missed), then
    /// starts the shell, which reads them, and hands it the news.
    async fn take_over(&self, epoch: Epoch, asked: tokio::time::Instant) -> Option<Leading> {
        let Self {
            routing,
            store,
            hub,
            settings,
            bus,
        } = self;
        let started = async {
            let mut news = bus.client().subscribe(bus.subject("routing")).await?;
            bus.client().flush().await?;
            let shell = routing.lead((store, hub, settings), Some(epoch));
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(tokio::spawn(async move {
                while let Some(message) = news.next().await {
                    match serde_json::from_slice::<NodeNews>(&message.payload) {
                        Ok(news) => {
                            if shell.send(Command::Node(news)).is_err() {
                                return;
                            }
                        }
                        Err(error) => tracing::warn!(%error, "unreadable news for routing"),
                    }
                }
            }))
        };
        match started.await {
            Ok(hearing) => {
                tracing::info!(epoch = epoch.0, "this node routes chats now");
                // A node that routed before may have died between a decision's commit
                // and its frames (a chat given to an agent, a screen pop closed): the
                // consoles read where they stand, as after a restart. Their news
                // reaches the shell, which is in place.
                hub.resume_consoles();
                Some(Leading {
                    epoch,
                    until: asked + LEASE,
                    hearing,
                    beating: tokio::spawn(beat(bus.clone(), routing.clone())),
                })
            }
            Err(error) => {
                tracing::error!(%error, "cannot take over routing; giving the lease up");
                routing.step_down();
                let _ = store.give_up_lease(&routing.inner.node, epoch).await;
                None
            }
        }
    }
}

/// Beats every [`LEASE_TICK`] while this node leads: on a timer of its own, so a slow
/// renewal of the lease (waiting on the database) does not make the other nodes look
/// silent.
async fn beat(bus: Bus, routing: Routing) {
    let mut tick = tokio::time::interval(LEASE_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let beat = Beat {
            node: routing.inner.node.clone(),
            online: routing.online(),
        };
        if let Ok(payload) = serde_json::to_vec(&beat)
            && let Err(error) = bus
                .client()
                .publish(bus.subject("leader"), payload.into())
                .await
        {
            tracing::warn!(%error, "the routing beat was not sent");
        }
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
