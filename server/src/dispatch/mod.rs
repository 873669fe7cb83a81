//! The routing shell: one task owns the routing [`Engine`], receives events over a
//! channel, wakes itself when the next screen pop runs out, and carries out the
//! engine's decisions (store, then tell the people concerned). Sockets and handlers
//! only send events; two agents reaching for the same chat are decided here, in order.
//!
//! The shell queues each decision's writes in order and goes on deciding; it does not
//! wait for the commit. What follows a commit (reads, frames, events back to routing)
//! runs in a task per decision: those overlap, so a burst of decisions shares commits
//! and reads, but each sends only after the one before it has sent ([`Turn`]), so a
//! console never hears a screen pop closed before it opened.
//!
//! It also tells whoever cares how the queue changed, at most every
//! [`QUEUE_NEWS_EVERY`]: consoles get the waiting list, waiting customers their place.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parlor_protocol::{
    AgentId, CaseId, ErrorCode, Millis, Offer, ProtocolError, RoutingChange, ToAgent, ToVisitor,
    WAITING_LISTED, WaitingChat,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::chat;
use crate::consoles::Consoles;
use crate::hub::Hub;
use crate::leader::NodeId;
use crate::routing::{Decision, Engine, Event, Queued};
use crate::settings::SharedSettings;
use crate::store::{Caller, Fence, Store, StoreError, StoreResult, now_ms};

mod nodes;

/// What the routing shell hears.
pub(crate) enum Command {
    /// What follows from its own decisions, and the timers of this node.
    Route(Event),
    /// From the sockets and handlers of a node (this one, or another over the bus).
    Node(NodeNews),
}

/// What a node tells routing: over the bus when another node leads.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub(crate) enum NodeNews {
    Event {
        node: NodeId,
        event: Event,
    },
    /// A customer (re)connected to a waiting chat: tell them their place.
    TellPosition {
        case: CaseId,
    },
    /// How many consoles each agent has on `node`, as of this point in its news: a
    /// leader that just took over learns them so, and one that missed some news
    /// corrects itself.
    Consoles {
        node: NodeId,
        agents: Vec<(AgentId, u32)>,
    },
}

/// Queue news (the waiting list, places in the queue) goes out at most this often.
const QUEUE_NEWS_EVERY: Duration = Duration::from_millis(200);

/// Waiting customers this near the front hear each move of their place in the queue.
const POSITIONS_TOLD: usize = 100;

struct Shell {
    store: Store,
    hub: Arc<Hub>,
    settings: SharedSettings,
    engine: Engine,
    /// The queue as consoles last heard it.
    told_waiting: Vec<Queued>,
    /// When consoles and waiting customers next hear how the queue changed.
    queue_due: Option<tokio::time::Instant>,
    online: Arc<AtomicBool>,
    /// Where the tasks that carry out decisions send the events that follow from them;
    /// weak, so the shell still ends when every [`Routing`] handle is gone.
    feedback: mpsc::WeakUnboundedSender<Command>,
    /// Done when the last decision's task has sent what it had to send.
    last_turn: Option<oneshot::Receiver<()>>,
    /// The lease this shell routes under: its writes are refused once another node
    /// took the lease over.
    fence: Fence,
    /// The consoles of each node, as routing was told of them.
    consoles: Consoles,
    /// Chats whose place in the queue differed from the database's at the last check
    /// (see [`Shell::reconcile`]).
    unreconciled: HashSet<CaseId>,
    /// Chats this shell gave an agent lately, and when: their commits may still be on
    /// the way, so the check leaves them be.
    assigned: HashMap<CaseId, tokio::time::Instant>,
}

/// A decision's place in the order of sending: [`Turn::mine`] waits until the decision
/// before has sent its frames; dropping the turn lets the next one go.
struct Turn {
    before: Option<oneshot::Receiver<()>>,
    _done: oneshot::Sender<()>,
}

impl Turn {
    async fn mine(&mut self) {
        if let Some(before) = self.before.take() {
            // An error means the task before ended: its turn is over either way.
            let _ = before.await;
        }
    }
}

/// What a decision's task needs: the store, the sockets, and the way back to routing.
#[derive(Clone)]
struct Crew {
    store: Store,
    hub: Arc<Hub>,
    settings: SharedSettings,
    feedback: mpsc::WeakUnboundedSender<Command>,
}

impl Crew {
    fn tell_routing(&self, event: Event) {
        if let Some(commands) = self.feedback.upgrade() {
            let _ = commands.send(Command::Route(event));
        }
    }
}

/// Starts a routing task (see [`crate::leader`] for which node runs one). It first
/// re-queues the chats that are waiting, with their screen-pop deadlines, then hears
/// what was sent meanwhile; it ends when the sender it gives is dropped.
pub(crate) fn start(
    store: Store,
    hub: Arc<Hub>,
    settings: SharedSettings,
    online: Arc<AtomicBool>,
    (fence, me): (Fence, NodeId),
) -> mpsc::UnboundedSender<Command> {
    let (commands, rx) = mpsc::unbounded_channel();
    let now = settings.get();
    let engine = Engine::new(now.screen_pop_timeout_ms, now.channel_routing);
    let shell = Shell {
        store,
        hub,
        settings,
        engine,
        told_waiting: Vec::new(),
        queue_due: None,
        online,
        feedback: commands.downgrade(),
        last_turn: None,
        fence,
        consoles: Consoles::new(me),
        unreconciled: HashSet::new(),
        assigned: HashMap::new(),
    };
    tokio::spawn(shell.run(rx));
    commands
}

/// How often the shell looks for nodes gone silent.
const SILENCE_CHECK_EVERY: Duration = Duration::from_secs(1);

/// With several nodes, how often routing checks its queue against the database.
const RECONCILE_EVERY: Duration = Duration::from_secs(5);

/// How long after an assignment the check leaves its chat be: longer than a commit can
/// wait for the database (its statements give up after 10 s).
const ASSIGNED_LATELY: Duration = Duration::from_secs(30);

impl Shell {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        self.requeue_waiting().await;
        let mut silence = tokio::time::interval(SILENCE_CHECK_EVERY);
        silence.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reconcile = tokio::time::interval(RECONCILE_EVERY);
        reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let wait = self.engine.next_deadline().map(until);
            let command = tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => command,
                    None => break,
                },
                () = sleep_or_forever(wait) => Command::Route(Event::Tick),
                () = sleep_until_or_forever(self.queue_due) => {
                    self.queue_due = None;
                    if let Err(error) = self.tell_queue().await {
                        tracing::error!(%error, "could not tell the queue");
                    }
                    continue;
                }
                // (One node hears all it routes in order: nothing to check.)
                _ = reconcile.tick(), if self.fence.is_some() => {
                    if let Err(error) = self.reconcile().await {
                        tracing::error!(%error, "could not check the queue against the database");
                    }
                    continue;
                }
                _ = silence.tick() => {
                    for node in self.consoles.silent(tokio::time::Instant::now()) {
                        tracing::warn!(%node, "a node went silent; its consoles count as gone");
                        self.recount(node, Vec::new()).await;
                    }
                    continue;
                }
            };
            match command {
                Command::Route(event) => self.handle(event).await,
                Command::Node(NodeNews::Event { node, event }) => {
                    if self
                        .consoles
                        .count(node, &event, tokio::time::Instant::now())
                    {
                        self.handle(event).await;
                    }
                }
                Command::Node(NodeNews::TellPosition { case }) => {
                    if let Some(position) = self.engine.position(case) {
                        self.tell_position(case, position);
                    }
                }
                Command::Node(NodeNews::Consoles { node, agents }) => {
                    self.recount(node, agents).await;
                }
            }
        }
    }

    /// Routes one event and carries out what the engine decides.
    async fn handle(&mut self, event: Event) {
        let connected = match &event {
            Event::AgentConnected { agent, .. } => Some(*agent),
            _ => None,
        };
        self.engine
            .set_offer_timeout(self.settings.get().screen_pop_timeout_ms);
        for decision in self.engine.handle(now_ms(), event) {
            if let Err(error) = self.carry_out(decision).await {
                tracing::error!(%error, "a routing decision failed");
            }
        }
        if let Some(agent) = connected
            && let Err(error) = self.greet(agent).await
        {
            tracing::error!(%error, "could not tell a console the queue");
        }
        self.queue_due
            .get_or_insert_with(|| tokio::time::Instant::now() + QUEUE_NEWS_EVERY);
    }

    /// Queues the decision's writes behind those before it, and hands the rest to a
    /// task of its own (see the module's note).
    async fn carry_out(&mut self, decision: Decision) -> StoreResult<()> {
        let turn = self.next_turn();
        let crew = Crew {
            store: self.store.clone(),
            hub: self.hub.clone(),
            settings: self.settings.clone(),
            feedback: self.feedback.clone(),
        };
        match decision {
            Decision::Offer {
                case,
                agent,
                expires_at,
            } => {
                let written = self
                    .store
                    .open_offer(self.fence, case, agent, expires_at)
                    .await?;
                tokio::spawn(async move {
                    let sent = async {
                        written.committed().await?;
                        send_offer(&crew.store, &crew.hub, case, agent, expires_at, turn).await
                    };
                    if let Err(error) = sent.await {
                        tracing::error!(%error, "a screen pop failed");
                    }
                });
            }
            Decision::OfferClosed {
                case,
                agent,
                reason,
            } => {
                let written = self
                    .store
                    .close_offer(self.fence, case, agent, reason)
                    .await?;
                tokio::spawn(async move {
                    let mut turn = turn;
                    if !made(written.committed().await, "closing a screen pop failed") {
                        return;
                    }
                    turn.mine().await;
                    let closed = ToAgent::OfferClosed {
                        case_id: case,
                        reason,
                    };
                    crew.hub.send_agent(agent, &closed);
                });
            }
            Decision::RoutingOff { agent, change } => {
                let written = self.store.queue_routing_off(self.fence, agent).await?;
                tokio::spawn(async move {
                    let mut turn = turn;
                    if !made(written.committed().await, "switching routing off failed") {
                        return;
                    }
                    turn.mine().await;
                    crew.hub
                        .send_agent(agent, &ToAgent::Routing { on: false, change });
                });
            }
            Decision::Assign { case, agent } => {
                if self.fence.is_some() {
                    self.assigned.insert(case, tokio::time::Instant::now());
                }
                let written = self.store.queue_assign(self.fence, case, agent).await?;
                tokio::spawn(async move {
                    let done = async {
                        let assigned = written.committed().await?;
                        assign(&crew, case, agent, assigned, turn).await
                    };
                    if let Err(error) = done.await {
                        tracing::error!(%error, "an assignment failed");
                    }
                });
            }
            Decision::Refuse { agent, refusal, .. } => {
                let error = ProtocolError::new(ErrorCode::Conflict, refusal.message());
                tokio::spawn(async move {
                    let mut turn = turn;
                    turn.mine().await;
                    crew.hub.send_agent(agent, &ToAgent::Error { error });
                });
            }
        }
        Ok(())
    }

    /// The next place in the order of sending.
    fn next_turn(&mut self) -> Turn {
        let (done, next) = oneshot::channel();
        Turn {
            before: self.last_turn.replace(next),
            _done: done,
        }
    }

    /// The first [`WAITING_LISTED`] waiting chats, for consoles.
    async fn waiting_frame(&self, waiting: &[Queued]) -> StoreResult<ToAgent> {
        let head = &waiting[..waiting.len().min(WAITING_LISTED)];
        let ids: Vec<CaseId> = head.iter().map(|q| q.case).collect();
        let mut summaries = self.store.waiting_summaries(&ids).await?;
        let chats = head
            .iter()
            .enumerate()
            .filter_map(|(i, queued)| {
                let (case, first_message) = summaries.remove(&queued.case)?;
                Some(WaitingChat {
                    case,
                    position: u32::try_from(i + 1).unwrap_or(u32::MAX),
                    offered: queued.offered,
                    first_message,
                })
            })
            .collect();
        let total = u32::try_from(waiting.len()).unwrap_or(u32::MAX);
        Ok(ToAgent::Waiting { chats, total })
    }

    /// A console that just connected hears the waiting list at once, and its agent's
    /// open screen pop if there is one.
    async fn greet(&mut self, agent: AgentId) -> StoreResult<()> {
        let waiting: Vec<Queued> = self.engine.waiting().collect();
        let frame = self.waiting_frame(&waiting).await?;
        self.hub.send_agent(agent, &frame);
        if let Some((case, expires_at)) = self.engine.offer_of(agent) {
            let turn = self.next_turn();
            send_offer(&self.store, &self.hub, case, agent, expires_at, turn).await?;
        }
        Ok(())
    }

    /// Tells consoles the head of the waiting list if it changed, and each waiting
    /// customer among the first [`POSITIONS_TOLD`] whose place moved their new place.
    /// Runs at most every [`QUEUE_NEWS_EVERY`]: a burst of routing events costs one
    /// frame per console, not one per event.
    async fn tell_queue(&mut self) -> StoreResult<()> {
        self.tell_availability();
        let waiting: Vec<Queued> = self.engine.waiting().collect();
        if waiting == self.told_waiting {
            return Ok(());
        }
        let head = &waiting[..waiting.len().min(WAITING_LISTED)];
        let told_head = &self.told_waiting[..self.told_waiting.len().min(WAITING_LISTED)];
        if head != told_head || waiting.len() != self.told_waiting.len() {
            let frame = self.waiting_frame(&waiting).await?;
            self.hub.send_all_agents(&frame);
        }
        let before: HashMap<CaseId, usize> = self
            .told_waiting
            .iter()
            .enumerate()
            .map(|(i, queued)| (queued.case, i))
            .collect();
        // Far back in a long queue the place is told once, when the chat joins it;
        // telling every customer every move would cost the square of the queue.
        for (i, Queued { case, .. }) in waiting.iter().enumerate() {
            let moved = before.get(case) != Some(&i);
            if moved && (i < POSITIONS_TOLD || !before.contains_key(case)) {
                self.tell_position(*case, i + 1);
            }
        }
        self.told_waiting = waiting;
        Ok(())
    }

    /// Widgets hear when the first agent who can take chats arrives or the last leaves
    /// (they offer the message form meanwhile); at most once per queue-news tick.
    fn tell_availability(&self) {
        let online = self.engine.someone_to_answer();
        if self.online.swap(online, Ordering::Relaxed) != online {
            self.hub
                .send_all_widgets(&ToVisitor::Availability { online });
        }
    }

    fn tell_position(&self, case: CaseId, position: usize) {
        let frame = ToVisitor::Queue {
            position: u32::try_from(position).unwrap_or(u32::MAX),
        };
        self.hub.publish_to(case, Some(&frame), None);
    }
}

/// Shows the screen pop of `case` on `agent`'s consoles, in its turn.
async fn send_offer(
    store: &Store,
    hub: &Hub,
    case: CaseId,
    agent: AgentId,
    expires_at: Millis,
    mut turn: Turn,
) -> StoreResult<()> {
    let record = store.case(case).await?;
    turn.mine().await;
    let Some(record) = record else {
        return Ok(());
    };
    let offer = Offer {
        case_id: case,
        customer_name: record.summary.customer_name,
        subject: record.summary.subject,
        group: record.group,
        location: record.location,
        created_at: record.summary.created_at,
        expires_in_ms: u64::try_from(expires_at - now_ms()).unwrap_or(0),
    };
    hub.send_agent(agent, &ToAgent::Offer { offer });
    Ok(())
}

/// The agent enters the chat (`assigned`: the store took it): the customer is told (if
/// that message is on) and the agent's consoles open the case tab. If the customer
/// ended the chat a moment before, the agent hears so and routing gets the place back.
async fn assign(
    crew: &Crew,
    case: CaseId,
    agent: AgentId,
    assigned: bool,
    mut turn: Turn,
) -> StoreResult<()> {
    let Crew {
        store,
        hub,
        settings,
        ..
    } = crew;
    if !assigned {
        turn.mine().await;
        let error = ProtocolError::new(
            ErrorCode::Conflict,
            "The customer has already left this chat.",
        );
        hub.send_agent(agent, &ToAgent::Error { error });
        crew.tell_routing(Event::ChatClosed { agent, case });
        return Ok(());
    }
    hub.follow_for_agent(agent, case);
    let name = store.agent_name(agent).await?;
    let text = settings
        .get()
        .message(parlor_protocol::SystemMessageKind::AgentJoined, &name);
    chat::announce(store, case, text.as_deref()).await?;
    let chat = store.chat_for(Caller::Agent(agent), case, 0).await?;
    turn.mine().await;
    hub.publish(
        case,
        &ToVisitor::State {
            case: chat.case.clone(),
        },
        &ToAgent::State {
            case: chat.case.clone(),
        },
    );
    hub.send_agent(agent, &ToAgent::ChatOpened { chat });
    Ok(())
}

/// Whether a decision's write stands, so its frames may go out: a write that failed
/// is logged and its frames still go (the console must not keep a screen pop routing
/// has closed), unless this node no longer routes: its decision never happened, and
/// the routing node's stand.
fn made<T>(written: StoreResult<T>, failed: &str) -> bool {
    match written {
        Ok(_) => true,
        Err(StoreError::NotLeader) => false,
        Err(error) => {
            tracing::error!(%error, "{failed}");
            true
        }
    }
}

/// How long until `deadline` (epoch ms), from now.
fn until(deadline: Millis) -> Duration {
    Duration::from_millis(u64::try_from(deadline - now_ms()).unwrap_or(0))
}

async fn sleep_until_or_forever(due: Option<tokio::time::Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

async fn sleep_or_forever(wait: Option<Duration>) {
    match wait {
        Some(wait) => tokio::time::sleep(wait).await,
        None => std::future::pending().await,
    }
}

// Routing changes an agent makes themselves are told to all their consoles by the
// socket that made them; this is the frame they get.
pub fn switched(on: bool) -> ToAgent {
    ToAgent::Routing {
        on,
        change: RoutingChange::Switched,
    }
}
