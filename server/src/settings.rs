//! Admin settings: rows in the `settings` table, read into one cached value that every
//! decision reads, so a change applies to the next decision without a restart.

use std::sync::{Arc, RwLock};

use parlor_protocol::Millis;

use crate::store::{Store, StoreResult};

/// The screen-pop timeout when the admin has not set one.
pub const DEFAULT_SCREEN_POP_TIMEOUT_MS: Millis = 30_000;

pub const SCREEN_POP_TIMEOUT_KEY: &str = "screen_pop_timeout_ms";
pub const CHANNEL_ROUTING_KEY: &str = "channel_routing";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// How long a screen pop waits for Accept before the chat moves on.
    pub screen_pop_timeout_ms: Millis,
    /// Routing on for the chat channel as a whole.
    pub channel_routing: bool,
    pub messages: SystemMessages,
}

/// The texts Parlor writes into a chat. `{agent}` is replaced by the agent's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemMessages {
    pub agent_joined: Option<String>,
    pub ended_by_customer: Option<String>,
    pub ended_by_agent: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            screen_pop_timeout_ms: DEFAULT_SCREEN_POP_TIMEOUT_MS,
            channel_routing: true,
            messages: SystemMessages {
                agent_joined: Some("{agent} joined the chat.".into()),
                ended_by_customer: Some("The customer ended the chat.".into()),
                ended_by_agent: Some("{agent} ended the chat.".into()),
            },
        }
    }
}

impl Settings {
    pub async fn load(store: &Store) -> StoreResult<Self> {
        let mut settings = Self::default();
        if let Some(ms) = store
            .setting(SCREEN_POP_TIMEOUT_KEY)
            .await?
            .and_then(|v| v.parse::<Millis>().ok())
            .filter(|ms| *ms > 0)
        {
            settings.screen_pop_timeout_ms = ms;
        }
        if let Some(on) = store.setting(CHANNEL_ROUTING_KEY).await? {
            settings.channel_routing = on != "0";
        }
        Ok(settings)
    }
}

/// The live settings, shared by every task.
#[derive(Clone, Default)]
pub struct SharedSettings(Arc<RwLock<Settings>>);

impl SharedSettings {
    pub fn new(settings: Settings) -> Self {
        Self(Arc::new(RwLock::new(settings)))
    }

    pub fn get(&self) -> Settings {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Re-reads the settings after an admin changed them.
    pub async fn reload(&self, store: &Store) -> StoreResult<()> {
        let fresh = Settings::load(store).await?;
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }
}

/// A system message text with the agent's name filled in.
pub fn fill(template: &str, agent: &str) -> String {
    template.replace("{agent}", agent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agents_name_is_filled_in() {
        assert_eq!(
            fill("{agent} joined the chat.", "Ada"),
            "Ada joined the chat."
        );
    }
}
