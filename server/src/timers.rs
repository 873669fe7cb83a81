//! The chat timers that are not routing: a chat whose customer went away ends after the
//! admin's inactivity timeout, and an agent whose consoles are all gone for longer than
//! the grace period has their chats put back in the queue.
//!
//! Both deadlines are data (`cases.customer_gone_at`, `agents.gone_at`), so a restart
//! changes nothing: this task reads them a few times a second and acts on what is due.
//! Once a minute it also forgets expired sign-in sessions and closes their consoles, and
//! every few seconds the rate limits forget what no longer limits anyone.
//!
//! Each node keeps a lease on its row in `nodes`, renewed every second: the customers
//! and agents it counts as here (`presence`) count only while it holds it. On the node
//! that routes, the same tick finds nodes whose lease ran out (stopped, killed, cut
//! off) and uncounts their sockets, so whoever had sockets only there counts as gone
//! from the moment the lease ran out, and their timers start.

use std::time::Duration;

use parlor_protocol::{EndedBy, Millis};

use crate::AppState;
use crate::store::{Presence, Sockets, StoreResult, now_ms};

/// How often deadlines are checked: the most a timeout can run late.
const SWEEP_EVERY: Duration = Duration::from_millis(250);

/// How often expired sessions are looked for: the most a console outlives its session.
const SESSIONS_EVERY: Duration = Duration::from_secs(60);

/// How often the rate limits forget what no longer limits anyone.
const LIMITS_EVERY: Duration = Duration::from_secs(10);

/// How often a node renews its lease, and the routing node looks for dead ones.
const NODES_EVERY: Duration = Duration::from_secs(1);

/// How long a node's lease lasts from a renewal: a node gone this long is dead.
pub const NODE_LEASE_MS: Millis = 5_000;

pub async fn run(state: AppState) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sessions = tokio::time::interval(SESSIONS_EVERY);
    sessions.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut limits = tokio::time::interval(LIMITS_EVERY);
    limits.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut nodes = tokio::time::interval(NODES_EVERY);
    nodes.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        tokio::select! {
            // With several nodes, the one that routes runs the chat timers.
            _ = tick.tick(), if state.routing.leads() => {
                if let Err(error) = sweep(&state).await {
                    tracing::error!(%error, "chat timers failed; trying again");
                }
            }
            _ = sessions.tick() => match state.store.purge_expired_sessions(now_ms()).await {
                Ok(ended) => state.hub.kick_sessions(&ended),
                Err(error) => tracing::error!(%error, "could not forget expired sessions"),
            },
            _ = limits.tick() => state.limits.sweep(std::time::Instant::now()),
            _ = nodes.tick() => {
                if let Err(error) = keep_nodes(&state).await {
                    tracing::error!(%error, "node leases failed; trying again");
                }
            }
        }
    }
}

async fn sweep(state: &AppState) -> StoreResult<()> {
    let settings = state.settings.get();
    let now = now_ms();
    for case in state
        .store
        .chats_idle_since(now - settings.inactivity_timeout_ms)
        .await?
    {
        state.chats.end(case, EndedBy::Timeout).await?;
    }
    for agent in state
        .store
        .agents_gone_since(now - settings.agent_grace_ms)
        .await?
    {
        state.chats.requeue_all_of(agent).await?;
        state.store.clear_agent_gone(agent).await?;
    }
    Ok(())
}

/// Renews this node's lease; on the routing node, uncounts the sockets of dead nodes.
async fn keep_nodes(state: &AppState) -> StoreResult<()> {
    let me = state.routing.node();
    let now = now_ms();
    // Renewed after the lease ran out (cut off from the database, paused): the routing
    // node may have uncounted this node's sockets meanwhile. They count again.
    if state.store.renew_node(me, now, now + NODE_LEASE_MS).await? {
        tracing::warn!("this node's lease ran out; counting its sockets again");
        let (agents, cases) = state.hub.present();
        for agent in agents {
            state.store.here(me, Presence::Agent(agent)).await?;
        }
        for case in cases {
            state
                .chats
                .customer_presence(me, case, Sockets::Opened)
                .await?;
        }
    }
    if !state.routing.leads() {
        return Ok(());
    }
    for (node, ran_out) in state.store.dead_nodes(now_ms()).await? {
        if node == me {
            continue;
        }
        let lost = Sockets::LostWithNode(ran_out);
        for who in state.store.counted_on(&node).await? {
            match who {
                Presence::Customer(case) => {
                    state.chats.customer_presence(&node, case, lost).await?;
                }
                Presence::Agent(_) => {
                    state.store.mark(&node, who, lost).await?;
                }
            }
        }
        state.store.forget_node(&node, now_ms()).await?;
    }
    Ok(())
}
