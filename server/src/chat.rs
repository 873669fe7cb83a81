//! What happens in a chat, whoever triggers it: a message is stored and then published
//! to everyone following the case; Parlor's own messages; ending a chat.

use parlor_protocol::{
    AgentId, Author, CaseId, ChatMessage, ChatState, EndedBy, Millis, SystemMessageKind, ToAgent,
    ToVisitor,
};

use crate::dispatch::Routing;
use crate::hub::Hub;
use crate::routing::Event;
use crate::secret;
use crate::settings::Settings;
use crate::store::{Store, StoreResult};

/// Tells everyone following its case about a new message: the store's writer calls
/// this for each message it commits, in order.
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
pub async fn announce(store: &Store, case: CaseId, text: Option<&str>) -> StoreResult<()> {
    let Some(text) = text else { return Ok(()) };
    let client_id = format!("sys-{}", &secret::token()[..24]);
    store
        .append_message(case, &client_id, &Author::System, text, None)
        .await?;
    Ok(())
}

/// The customer of a live chat closed their last widget (`gone_since` set) or opened
/// one again (`None`): recorded, told to the consoles following the case (a "left"
/// marker; the widget needs no word of it), and to routing, which offers a waiting chat
/// to nobody while its customer is gone. A return when they were not gone changes
/// nothing.
pub async fn customer_presence(
    store: &Store,
    hub: &Hub,
    routing: &Routing,
    case: CaseId,
    gone_since: Option<Millis>,
) -> StoreResult<()> {
    let Some(mut record) = store.case(case).await? else {
        return Ok(());
    };
    if gone_since.is_none() && record.summary.customer_left_at.is_none() {
        return Ok(());
    }
    store.set_customer_gone(case, gone_since).await?;
    routing.send(Event::CustomerPresence {
        case,
        here: gone_since.is_none(),
    });
    // As the store now has it (a chat that has ended shows no mark).
    record.summary.customer_left_at =
        gone_since.filter(|_| record.summary.state != ChatState::Ended);
    let state = ToAgent::State {
        case: record.summary,
    };
    hub.publish_to(case, None, Some(&state));
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
        EndedBy::Customer => settings.message(SystemMessageKind::EndedByCustomer, ""),
        EndedBy::Agent { name } => settings.message(SystemMessageKind::EndedByAgent, name),
        EndedBy::Timeout => settings.message(SystemMessageKind::TimedOut, ""),
    };
    announce(store, case, text.as_deref()).await?;
    publish_state(store, hub, case).await?;
    // Whether it was still waiting or already had an agent, routing hears of it.
    let mut events = vec![Event::ChatLeft { case }];
    if let Some(agent) = agent {
        events.push(Event::ChatClosed { agent, case });
    }
    Ok(Some(events))
}

/// Every live chat of `agent` goes back to the queue, the customers told the agent left:
/// their consoles stayed away past the grace period, or an admin removed them.
pub async fn requeue_all_of(
    store: &Store,
    hub: &Hub,
    routing: &Routing,
    settings: &Settings,
    agent: AgentId,
) -> StoreResult<()> {
    let name = store.agent_name(agent).await?;
    for case in store.active_cases_of(agent).await? {
        let why = SystemMessageKind::AgentLeft;
        if let Some(events) = requeue(store, hub, settings, case, agent, &name, why).await? {
            events.into_iter().for_each(|e| routing.send(e));
        }
    }
    Ok(())
}

/// The agent leaves a live chat and it goes back to the queue: the customer is told
/// (with the `why` message, if on) and routing offers it again. Returns the routing
/// events, or `None` when the agent was not in the chat.
pub async fn requeue(
    store: &Store,
    hub: &Hub,
    settings: &Settings,
    case: CaseId,
    agent: AgentId,
    agent_name: &str,
    why: SystemMessageKind,
) -> StoreResult<Option<Vec<Event>>> {
    if !store.requeue(case, agent).await? {
        return Ok(None);
    }
    hub.unfollow_for_agent(agent, case);
    hub.send_agent(agent, &ToAgent::TabClosed { case_id: case });
    announce(store, case, settings.message(why, agent_name).as_deref()).await?;
    publish_state(store, hub, case).await?;
    let record = store.case(case).await?;
    Ok(Some(vec![
        Event::ChatClosed { agent, case },
        Event::ChatQueued {
            case,
            group: record.as_ref().and_then(|c| c.group_id),
            offer: None,
            away: record.is_some_and(|c| c.summary.customer_left_at.is_some()),
        },
    ]))
}
