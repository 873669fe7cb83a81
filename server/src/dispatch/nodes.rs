//! What the routing shell does to know what the nodes know: the waiting chats read
//! from the database when it starts, each node's consoles as the node counts them, and
//! its queue checked against the database (news lost on the bus).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use parlor_protocol::{AgentId, CaseId};

use super::{ASSIGNED_LATELY, Shell};
use crate::leader::NodeId;
use crate::routing::Event;
use crate::store::StoreResult;

impl Shell {
    /// Queues the chats the database has waiting, with their open screen pops and
    /// deadlines; reads again until the database answers (nothing can be routed
    /// before).
    pub(super) async fn requeue_waiting(&mut self) {
        loop {
            match self.store.queued_cases().await {
                Ok(cases) => {
                    for case in cases {
                        self.handle(Event::ChatQueued {
                            case: case.summary.id,
                            group: case.group_id,
                            offer: case.offer,
                            away: case.summary.customer_left_at.is_some(),
                        })
                        .await;
                    }
                    return;
                }
                Err(error) => {
                    tracing::error!(%error, "cannot read the waiting chats; trying again");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// `node` has `agents`' consoles now: routing hears of those that came and went
    /// since it last knew. A console's agent and load are read from the database (an
    /// agent switched off meanwhile does not come back).
    pub(super) async fn recount(&mut self, node: NodeId, agents: Vec<(AgentId, u32)>) {
        let now = tokio::time::Instant::now();
        let (gone, came) = self.consoles.recount(node.clone(), agents, now);
        for agent in gone {
            self.handle(Event::AgentDisconnected { agent }).await;
        }
        for (agent, consoles) in came {
            match self.connected(agent).await {
                Ok(Some(event)) => {
                    for _ in 0..consoles {
                        self.consoles.count(node.clone(), &event, now);
                        self.handle(event.clone()).await;
                    }
                }
                Ok(None) => {}
                Err(error) => tracing::error!(%error, agent, "cannot read an agent for routing"),
            }
        }
    }

    /// Puts right what news lost on the bus left wrong (a node's "chat waiting" sent
    /// while no node led, or while NATS was away): a chat waiting in the database but
    /// not here joins the queue, one here but no longer waiting there leaves it, and
    /// one whose customer came or went as the database has it but not here is told
    /// so. Only a difference seen at two checks in a row counts: one seen once may be
    /// news on its way, or a decision of this node's not committed yet.
    pub(super) async fn reconcile(&mut self) -> StoreResult<()> {
        let stored: HashMap<CaseId, bool> =
            self.store.queued_cases_away().await?.into_iter().collect();
        let here: HashMap<CaseId, bool> = self.engine.waiting().map(|q| (q.case, q.away)).collect();
        let lately = tokio::time::Instant::now() - ASSIGNED_LATELY;
        self.assigned.retain(|_, at| *at > lately);
        let differ: HashSet<CaseId> = stored
            .keys()
            .chain(here.keys())
            .filter(|case| stored.get(case) != here.get(case))
            .filter(|case| !self.assigned.contains_key(case))
            .copied()
            .collect();
        let lasting: Vec<CaseId> = differ.intersection(&self.unreconciled).copied().collect();
        self.unreconciled = differ;
        for case in lasting {
            self.unreconciled.remove(&case);
            match (stored.get(&case), here.get(&case)) {
                (None, _) => {
                    tracing::warn!(case, "a chat no longer waiting was still in the queue");
                    self.handle(Event::ChatLeft { case }).await;
                }
                (Some(&away), Some(_)) => {
                    tracing::warn!(case, away, "a waiting chat's customer came or went unheard");
                    self.handle(Event::CustomerPresence { case, here: !away })
                        .await;
                }
                (Some(_), None) => {
                    let Some(record) = self.store.case(case).await? else {
                        continue;
                    };
                    if record.summary.state == parlor_protocol::ChatState::Queued {
                        tracing::warn!(case, "a waiting chat was missing from the queue");
                        self.handle(Event::ChatQueued {
                            case,
                            group: record.group_id,
                            offer: record.offer,
                            away: record.summary.customer_left_at.is_some(),
                        })
                        .await;
                    }
                }
            }
        }
        Ok(())
    }

    /// A console of `agent` as routing hears of one connecting, read from the database;
    /// `None` if the agent was switched off.
    async fn connected(&self, agent: AgentId) -> StoreResult<Option<Event>> {
        let Some(record) = self.store.agent(agent).await? else {
            return Ok(None);
        };
        let load = self.store.active_cases_of(agent).await?.len();
        Ok(Some(Event::AgentConnected {
            agent,
            routing: record.routing,
            capacity: record.capacity,
            load: u32::try_from(load).unwrap_or(u32::MAX),
            groups: record.groups,
        }))
    }
}
