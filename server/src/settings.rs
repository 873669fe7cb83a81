//! Admin settings: rows in the `settings` table, read into one cached value that every
//! decision reads, so a change applies to the next decision without a restart.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use parlor_protocol::{Millis, SystemMessageKind, SystemMessageSetting, WidgetSettings};

use crate::store::{Store, StoreResult};

/// The screen-pop timeout when the admin has not set one.
pub const DEFAULT_SCREEN_POP_TIMEOUT_MS: Millis = 30_000;
/// How long after the customer went away their chat ends, unless the admin says otherwise.
pub const DEFAULT_INACTIVITY_TIMEOUT_MS: Millis = 10 * 60_000;
/// How long an agent's console may be gone (a reload, a network blip) before their chats
/// go back to the queue.
pub const DEFAULT_AGENT_GRACE_MS: Millis = 60_000;

pub const SCREEN_POP_TIMEOUT_KEY: &str = "screen_pop_timeout_ms";
pub const CHANNEL_ROUTING_KEY: &str = "channel_routing";
pub const INACTIVITY_TIMEOUT_KEY: &str = "inactivity_timeout_ms";
pub const AGENT_GRACE_KEY: &str = "agent_grace_ms";
/// The widget's settings, one JSON row.
pub const WIDGET_KEY: &str = "widget";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// How long a screen pop waits for Accept before the chat moves on.
    pub screen_pop_timeout_ms: Millis,
    /// Routing on for the chat channel as a whole.
    pub channel_routing: bool,
    pub inactivity_timeout_ms: Millis,
    pub agent_grace_ms: Millis,
    /// The widget: look, pre-chat form, allowed sites, offline behaviour.
    pub widget: WidgetSettings,
    /// Each system message's text, or `None` when the admin switched it off.
    messages: HashMap<SystemMessageKind, Option<String>>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            screen_pop_timeout_ms: DEFAULT_SCREEN_POP_TIMEOUT_MS,
            channel_routing: true,
            inactivity_timeout_ms: DEFAULT_INACTIVITY_TIMEOUT_MS,
            agent_grace_ms: DEFAULT_AGENT_GRACE_MS,
            widget: WidgetSettings::default(),
            messages: SystemMessageKind::ALL
                .into_iter()
                .map(|kind| (kind, Some(kind.default_text().to_owned())))
                .collect(),
        }
    }
}

/// The settings keys of a system message: its text, and whether it is on.
pub fn message_keys(kind: SystemMessageKind) -> (String, String) {
    let name = serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    (format!("message.{name}"), format!("message.{name}.on"))
}

impl Settings {
    pub async fn load(store: &Store) -> StoreResult<Self> {
        let mut settings = Self::default();
        let millis = |value: Option<String>| {
            value
                .and_then(|v| v.parse::<Millis>().ok())
                .filter(|ms| *ms > 0)
        };
        if let Some(ms) = millis(store.setting(SCREEN_POP_TIMEOUT_KEY).await?) {
            settings.screen_pop_timeout_ms = ms;
        }
        if let Some(ms) = millis(store.setting(INACTIVITY_TIMEOUT_KEY).await?) {
            settings.inactivity_timeout_ms = ms;
        }
        if let Some(ms) = millis(store.setting(AGENT_GRACE_KEY).await?) {
            settings.agent_grace_ms = ms;
        }
        if let Some(json) = store.setting(WIDGET_KEY).await? {
            match serde_json::from_str(&json) {
                Ok(widget) => settings.widget = widget,
                Err(error) => tracing::error!(%error, "unreadable widget settings; using defaults"),
            }
        }
        if let Some(on) = store.setting(CHANNEL_ROUTING_KEY).await? {
            settings.channel_routing = on != "0";
        }
        for kind in SystemMessageKind::ALL {
            let (text_key, on_key) = message_keys(kind);
            let text = store
                .setting(&text_key)
                .await?
                .unwrap_or_else(|| kind.default_text().to_owned());
            let on = store.setting(&on_key).await?.is_none_or(|v| v != "0");
            settings.messages.insert(kind, on.then_some(text));
        }
        Ok(settings)
    }

    /// The text of a system message with the agent's name filled in; `None` when off.
    pub fn message(&self, kind: SystemMessageKind, agent: &str) -> Option<String> {
        self.messages
            .get(&kind)
            .cloned()
            .flatten()
            .map(|text| text.replace("{agent}", agent))
    }

    /// Every system message as the settings page shows it.
    pub fn message_settings(&self) -> Vec<SystemMessageSetting> {
        SystemMessageKind::ALL
            .into_iter()
            .map(|kind| {
                let current = self.messages.get(&kind).cloned().flatten();
                SystemMessageSetting {
                    kind,
                    on: current.is_some(),
                    text: current.unwrap_or_else(|| kind.default_text().to_owned()),
                }
            })
            .collect()
    }
}

/// The live settings, shared by every task. Readers get a snapshot that stays as it was
/// while they use it; a reload swaps in a new one.
#[derive(Clone, Default)]
pub struct SharedSettings(Arc<RwLock<Arc<Settings>>>);

impl SharedSettings {
    pub fn new(settings: Settings) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(settings))))
    }

    /// The current settings (a shared snapshot, not a copy).
    pub fn get(&self) -> Arc<Settings> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Re-reads the settings after an admin changed them.
    pub async fn reload(&self, store: &Store) -> StoreResult<()> {
        let fresh = Arc::new(Settings::load(store).await?);
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agents_name_is_filled_in() {
        assert_eq!(
            Settings::default().message(SystemMessageKind::AgentJoined, "Ada"),
            Some("Ada joined the chat.".into())
        );
    }

    #[test]
    fn message_keys_name_the_kind() {
        assert_eq!(
            message_keys(SystemMessageKind::PlacedBackInQueue),
            (
                "message.placed_back_in_queue".into(),
                "message.placed_back_in_queue.on".into()
            )
        );
    }
}
