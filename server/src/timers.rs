//! The chat timers that are not routing: a chat whose customer went away ends after the
//! admin's inactivity timeout, and an agent whose consoles are all gone for longer than
//! the grace period has their chats put back in the queue.
//!
//! Both deadlines are data (`cases.customer_gone_at`, `agents.gone_at`), so a restart
//! changes nothing: this task reads them a few times a second and acts on what is due.
//! Once a minute it also forgets expired sign-in sessions and closes their consoles, and
//! every few seconds the rate limits forget what no longer limits anyone.

use std::time::Duration;

use parlor_protocol::EndedBy;

use crate::AppState;
use crate::store::{StoreResult, now_ms};

/// How often deadlines are checked: the most a timeout can run late.
const SWEEP_EVERY: Duration = Duration::from_millis(250);

/// How often expired sessions are looked for: the most a console outlives its session.
const SESSIONS_EVERY: Duration = Duration::from_secs(60);

/// How often the rate limits forget what no longer limits anyone.
const LIMITS_EVERY: Duration = Duration::from_secs(10);

pub async fn run(state: AppState) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sessions = tokio::time::interval(SESSIONS_EVERY);
    sessions.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut limits = tokio::time::interval(LIMITS_EVERY);
    limits.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
        state.store.set_agent_gone(agent, None).await?;
    }
    Ok(())
}
