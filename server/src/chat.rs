//! What happens in a chat, whoever triggers it: a message is stored and then published
//! to everyone following the case; Parlor's own messages; ending a chat.

use parlor_protocol::{Author, CaseId, ChatMessage, EndedBy, ToAgent, ToVisitor};

use crate::hub::Hub;
use crate::routing::Event;
use crate::secret;
use crate::settings::{Settings, fill};
use crate::store::{Store, StoreResult};

/// Stores a message, then publishes it. A retry (same `client_id`) publishes nothing
/// and returns the stored message with `false`.
pub async fn post(
    store: &Store,
    hub: &Hub,
    case: CaseId,
    client_id: &str,
    author: &Author,
    body: &str,
) -> StoreResult<(ChatMessage, bool)> {
    let (message, new) = store.append_message(case, client_id, author, body).await?;
    if new {
        publish_message(hub, &message);
    }
    Ok((message, new))
}

pub fn publish_message(hub: &Hub, message: &ChatMessage) {
    hub.publish(
        message.case_id,
        &ToVisitor::Message {
            message: message.clone(),
        },
        &ToAgent::Message {
            message: message.clone(),
        },
    );
}

/// Writes one of Parlor's own messages into the chat, when the admin has it on.
pub async fn announce(
    store: &Store,
    hub: &Hub,
    case: CaseId,
    text: Option<&str>,
) -> StoreResult<()> {
    let Some(text) = text else { return Ok(()) };
    let client_id = format!("sys-{}", &secret::token()[..24]);
    post(store, hub, case, &client_id, &Author::System, text).await?;
    Ok(())
}

/// Tells everyone following the case where it stands now.
pub async fn publish_state(store: &Store, hub: &Hub, case: CaseId) -> StoreResult<()> {
    if let Some(record) = store.case(case).await? {
        hub.publish(
            case,
            &ToVisitor::State {
                case: record.summary.clone(),
            },
            &ToAgent::State {
                case: record.summary,
            },
        );
    }
    Ok(())
}

/// Ends a chat at once for both sides. Returns the routing events to send, or `None`
/// when the chat had already ended.
pub async fn end(
    store: &Store,
    hub: &Hub,
    settings: &Settings,
    case: CaseId,
    by: EndedBy,
) -> StoreResult<Option<Vec<Event>>> {
    let Some(agent) = store.end_chat(case, &by).await? else {
        return Ok(None);
    };
    let text = match &by {
        EndedBy::Customer => settings.messages.ended_by_customer.clone(),
        EndedBy::Agent { name } => settings
            .messages
            .ended_by_agent
            .as_deref()
            .map(|t| fill(t, name)),
    };
    announce(store, hub, case, text.as_deref()).await?;
    publish_state(store, hub, case).await?;
    // Whether it was still waiting or already had an agent, routing hears of it.
    let mut events = vec![Event::ChatLeft { case }];
    if let Some(agent) = agent {
        events.push(Event::ChatClosed { agent, case });
    }
    Ok(Some(events))
}
