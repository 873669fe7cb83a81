//! The routing shell: one task owns the routing [`Engine`], receives events over a
//! channel, wakes itself when the next screen pop runs out, and carries out the
//! engine's decisions (store, then tell the people concerned). Sockets and handlers
//! only send events; two agents reaching for the same chat are decided here, in order.

use std::time::Duration;

use parlor_protocol::{
    AgentId, CaseId, ErrorCode, Millis, Offer, ProtocolError, RoutingChange, ToAgent,
};
use tokio::sync::mpsc;

use crate::chat;
use crate::hub::Hub;
use crate::routing::{Decision, Engine, Event};
use crate::settings::{SharedSettings, fill};
use crate::store::{Store, StoreResult, now_ms};

/// Where sockets and handlers send routing events.
#[derive(Clone)]
pub struct Routing {
    events: mpsc::UnboundedSender<Event>,
}

impl Routing {
    /// Hands an event to the routing task. If that task is gone the server is shutting
    /// down, and there is nobody left to route to.
    pub fn send(&self, event: Event) {
        if self.events.send(event).is_err() {
            tracing::warn!("routing task has stopped; event dropped");
        }
    }
}

struct Shell {
    store: Store,
    hub: std::sync::Arc<Hub>,
    settings: SharedSettings,
    engine: Engine,
}

/// Starts the routing task, re-queueing the chats that were waiting when the server
/// stopped, with their screen-pop deadlines.
pub async fn start(
    store: Store,
    hub: std::sync::Arc<Hub>,
    settings: SharedSettings,
) -> StoreResult<Routing> {
    let (tx, rx) = mpsc::unbounded_channel();
    let engine = Engine::new(settings.get().screen_pop_timeout_ms);
    let waiting = store.queued_cases().await?;
    let routing = Routing { events: tx };
    for case in waiting {
        routing.send(Event::ChatQueued {
            case: case.summary.id,
            offer: case.offer,
        });
    }
    let shell = Shell {
        store,
        hub,
        settings,
        engine,
    };
    tokio::spawn(shell.run(rx));
    Ok(routing)
}

impl Shell {
    async fn run(mut self, mut events: mpsc::UnboundedReceiver<Event>) {
        loop {
            let wait = self.engine.next_deadline().map(until);
            let event = tokio::select! {
                event = events.recv() => match event {
                    Some(event) => event,
                    None => break,
                },
                () = sleep_or_forever(wait) => Event::Tick,
            };
            let mut pending = vec![event];
            while let Some(event) = pending.pop() {
                let connected = match &event {
                    Event::AgentConnected { agent, .. } => Some(*agent),
                    _ => None,
                };
                self.engine
                    .set_offer_timeout(self.settings.get().screen_pop_timeout_ms);
                for decision in self.engine.handle(now_ms(), event) {
                    match self.carry_out(decision).await {
                        Ok(more) => pending.extend(more),
                        Err(error) => tracing::error!(%error, "a routing decision failed"),
                    }
                }
                // A console that connects while its agent has a screen pop shows it too.
                if let Some(agent) = connected
                    && let Some((case, expires_at)) = self.engine.offer_of(agent)
                    && let Err(error) = self.send_offer(case, agent, expires_at).await
                {
                    tracing::error!(%error, "could not resend a screen pop");
                }
            }
        }
    }

    /// Carries out one decision; returns events that follow from it.
    async fn carry_out(&mut self, decision: Decision) -> StoreResult<Vec<Event>> {
        match decision {
            Decision::Offer {
                case,
                agent,
                expires_at,
            } => {
                self.store
                    .set_offer(case, Some((agent, expires_at)))
                    .await?;
                self.send_offer(case, agent, expires_at).await?;
            }
            Decision::OfferClosed {
                case,
                agent,
                reason,
            } => {
                self.store.set_offer(case, None).await?;
                self.hub.send_agent(
                    agent,
                    &ToAgent::OfferClosed {
                        case_id: case,
                        reason,
                    },
                );
            }
            Decision::RoutingOff { agent, change } => {
                self.store.set_routing(agent, false).await?;
                self.hub
                    .send_agent(agent, &ToAgent::Routing { on: false, change });
            }
            Decision::Assign { case, agent } => return self.assign(case, agent).await,
            Decision::Refuse { agent, refusal, .. } => {
                let error = ProtocolError::new(ErrorCode::Conflict, refusal.message());
                self.hub.send_agent(agent, &ToAgent::Error { error });
            }
        }
        Ok(Vec::new())
    }

    async fn send_offer(
        &self,
        case: CaseId,
        agent: AgentId,
        expires_at: Millis,
    ) -> StoreResult<()> {
        let Some(record) = self.store.case(case).await? else {
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
        self.hub.send_agent(agent, &ToAgent::Offer { offer });
        Ok(())
    }

    /// The agent enters the chat: stored first, then the customer is told (if that
    /// message is on) and the agent's consoles open the case tab.
    async fn assign(&mut self, case: CaseId, agent: AgentId) -> StoreResult<Vec<Event>> {
        if !self.store.assign(case, agent).await? {
            // The customer ended the chat a moment before: give the place back.
            let error = ProtocolError::new(
                ErrorCode::Conflict,
                "The customer has already left this chat.",
            );
            self.hub.send_agent(agent, &ToAgent::Error { error });
            return Ok(vec![Event::ChatClosed { agent, case }]);
        }
        self.hub.follow_for_agent(agent, case);
        let name = self
            .store
            .agent(agent)
            .await?
            .map(|a| a.profile.name)
            .unwrap_or_default();
        let text = self
            .settings
            .get()
            .messages
            .agent_joined
            .map(|t| fill(&t, &name));
        chat::announce(&self.store, &self.hub, case, text.as_deref()).await?;
        chat::publish_state(&self.store, &self.hub, case).await?;
        let chat = self
            .store
            .chat_for(crate::store::Caller::Agent(agent), case, 0)
            .await?;
        self.hub.send_agent(agent, &ToAgent::ChatOpened { chat });
        Ok(Vec::new())
    }
}

/// How long until `deadline` (epoch ms), from now.
fn until(deadline: Millis) -> Duration {
    Duration::from_millis(u64::try_from(deadline - now_ms()).unwrap_or(0))
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
