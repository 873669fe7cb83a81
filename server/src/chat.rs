//! What happens in a chat, whoever triggers it (a widget, a console, a timer, an
//! admin): [`Chats`] owns every flow that changes a chat. Each writes what it changes,
//! tells the sockets following the case, and sends routing the events that follow
//! from it, so that no caller can forget one.

use std::sync::Arc;

use parlor_protocol::{
    AgentId, Author, CaseId, CaseStatus, ChatMessage, ChatState, EndedBy, GroupId,
    SystemMessageKind, ToAgent, ToVisitor,
};

use crate::hub::{ConnId, Hub};
use crate::leader::Routing;
use crate::routing::Event;
use crate::secret;
use crate::settings::SharedSettings;
use crate::store::{
    Caller, CaseRecord, NewChat, Presence, Sockets, Started, Store, StoreError, StoreResult,
    VisitorId,
};

/// Tells everyone here following its case about a new message: the store's writer
/// calls this for each message it commits, in order (through the bus's sequencer when
/// there are other nodes, see [`crate::bus`]).
pub fn publish_message(hub: &Hub, message: &ChatMessage) {
    hub.publish_here(
        message.case_id,
        Some(&ToVisitor::Message {
            message: message.clone(),
        }),
        Some(&ToAgent::Message {
            message: message.clone(),
        }),
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

/// The chat flows, with what each needs: cheap to clone.
#[derive(Clone)]
pub struct Chats {
    store: Store,
    hub: Arc<Hub>,
    routing: Routing,
    settings: SharedSettings,
}

/// A chat the widget started (or had started: `new` is false for a retry). Routing hears
/// of a new chat when this is dropped: after the caller has told the customer, so a
/// widget hears that its chat started before it hears its place in the queue.
#[must_use]
pub struct StartedChat {
    pub visitor: VisitorId,
    pub case: CaseId,
    pub new: bool,
    queued: Option<(Routing, Event)>,
}

impl Drop for StartedChat {
    fn drop(&mut self) {
        if let Some((routing, event)) = self.queued.take() {
            routing.send(event);
        }
    }
}

/// Where a closed case tab closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TabClosed {
    /// On every console of the agent: the case was theirs (a live chat of theirs went
    /// back to the queue, the customer told).
    Everywhere,
    /// On the console that closed it alone (a case it watched): the caller tells it.
    Here,
}

/// An agent's edit of a case's fields.
#[derive(Clone, Debug)]
pub struct CaseUpdate {
    pub case: CaseId,
    pub status: CaseStatus,
    pub subject: String,
    pub group: Option<GroupId>,
}

impl Chats {
    pub fn new(store: Store, hub: Arc<Hub>, routing: Routing, settings: SharedSettings) -> Self {
        Self {
            store,
            hub,
            routing,
            settings,
        }
    }

    /// Starts a chat from a widget's checked form; a retry finds the chat it started.
    pub async fn start(&self, token: &str, chat: &NewChat) -> StoreResult<StartedChat> {
        let Started { visitor, case, new } = self.store.start_chat(token, chat).await?;
        let queued = new.then(|| {
            let event = Event::ChatQueued {
                case,
                group: chat.group,
                offer: None,
                away: false,
            };
            (self.routing.clone(), event)
        });
        Ok(StartedChat {
            visitor,
            case,
            new,
            queued,
        })
    }

    /// Keeps a message left while nobody could chat: a case for the team to follow up,
    /// which routing never offers.
    pub async fn leave_message(&self, token: &str, message: &NewChat) -> StoreResult<Started> {
        self.store.leave_message(token, message).await
    }

    /// Ends a chat at once for both sides. `false` when it had already ended.
    pub async fn end(&self, case: CaseId, by: EndedBy) -> StoreResult<bool> {
        let Some(agent) = self.store.end_chat(case, &by).await? else {
            return Ok(false);
        };
        let settings = self.settings.get();
        let text = match &by {
            EndedBy::Customer => settings.message(SystemMessageKind::EndedByCustomer, ""),
            EndedBy::Agent { name } => settings.message(SystemMessageKind::EndedByAgent, name),
            EndedBy::Timeout => settings.message(SystemMessageKind::TimedOut, ""),
        };
        announce(&self.store, case, text.as_deref()).await?;
        self.publish_state(case).await?;
        // Whether it was still waiting or already had an agent, routing hears of it.
        self.routing.send(Event::ChatLeft { case });
        if let Some(agent) = agent {
            self.routing.send(Event::ChatClosed { agent, case });
        }
        Ok(true)
    }

    /// The agent leaves a live chat and it goes back to the queue: the customer is told
    /// (with the `why` message, if on) and routing offers it again. `false` when the
    /// agent was not in the chat.
    pub async fn requeue(
        &self,
        case: CaseId,
        agent: AgentId,
        agent_name: &str,
        why: SystemMessageKind,
    ) -> StoreResult<bool> {
        if !self.store.requeue(case, agent).await? {
            return Ok(false);
        }
        self.close_on_consoles_of(agent, case);
        let text = self.settings.get().message(why, agent_name);
        announce(&self.store, case, text.as_deref()).await?;
        let record = self.publish_state(case).await?;
        self.routing.send(Event::ChatClosed { agent, case });
        self.routing.send(Event::ChatQueued {
            case,
            group: record.as_ref().and_then(|c| c.group_id),
            offer: None,
            away: record.is_some_and(|c| c.summary.customer_left_at.is_some()),
        });
        Ok(true)
    }

    /// Every live chat of `agent` goes back to the queue, the customers told the agent
    /// left: their consoles stayed away past the grace period, or an admin removed them.
    pub async fn requeue_all_of(&self, agent: AgentId) -> StoreResult<()> {
        let name = self.store.agent_name(agent).await?;
        for case in self.store.active_cases_of(agent).await? {
            self.requeue(case, agent, &name, SystemMessageKind::AgentLeft)
                .await?;
        }
        Ok(())
    }

    /// The customer of a live chat opened a widget on `node`, closed their last one
    /// there, or lost them with the node: counted there. If that made them gone from
    /// every node, or back, it is told to the consoles following the case (a "left"
    /// marker; the widget needs no word of it), and to routing, which offers a waiting
    /// chat to nobody while its customer is gone.
    pub async fn customer_presence(
        &self,
        node: &str,
        case: CaseId,
        sockets: Sockets,
    ) -> StoreResult<()> {
        let changed = self
            .store
            .mark(node, Presence::Customer(case), sockets)
            .await?;
        let gone_since = sockets.left_at();
        if !changed {
            return Ok(());
        }
        let Some(mut record) = self.store.case(case).await? else {
            return Ok(());
        };
        self.routing.send(Event::CustomerPresence {
            case,
            here: gone_since.is_none(),
        });
        // As the store now has it (a chat that has ended shows no mark).
        record.summary.customer_left_at =
            gone_since.filter(|_| record.summary.state != ChatState::Ended);
        let state = ToAgent::State {
            case: record.summary,
        };
        self.hub.publish_to(case, None, Some(&state));
        Ok(())
    }

    /// An agent closes a case tab on console `conn`. For a live chat they are in, the
    /// customer is told they left and the chat goes back in the queue; a case of theirs
    /// closes on all their consoles; a case they only watched stops following here.
    pub async fn close_tab(
        &self,
        agent: AgentId,
        agent_name: &str,
        conn: ConnId,
        case: CaseId,
    ) -> StoreResult<TabClosed> {
        let record = self.store.case_for(Caller::Agent(agent), case).await?;
        let mine = record.agent_id == Some(agent);
        if mine && record.summary.state == ChatState::Active {
            self.requeue(case, agent, agent_name, SystemMessageKind::AgentLeft)
                .await?;
            return Ok(TabClosed::Everywhere);
        }
        if mine {
            self.close_on_consoles_of(agent, case);
            Ok(TabClosed::Everywhere)
        } else {
            self.hub.unfollow(conn, case);
            Ok(TabClosed::Here)
        }
    }

    /// An agent edits a case's status, subject and group. While the customer is there
    /// (waiting or chatting) the case belongs to the agent in the chat; watchers and
    /// admins see it read-only. Once the chat has ended it is a case like any other.
    /// Resolving a live chat places the customer back in the queue.
    pub async fn update_case(&self, agent: AgentId, update: &CaseUpdate) -> StoreResult<()> {
        let case = update.case;
        if let Some(group) = update.group
            && !self.store.groups().await?.iter().any(|g| g.id == group)
        {
            return Err(StoreError::GroupNotFound);
        }
        let record = self.store.case_for(Caller::Agent(agent), case).await?;
        let live = record.summary.state != ChatState::Ended;
        if live && record.agent_id != Some(agent) {
            return Err(StoreError::LiveChatOfAnother);
        }
        self.store
            .update_case(case, update.status, &update.subject, update.group)
            .await?;
        self.publish_state(case).await?;
        let resolved_live =
            update.status == CaseStatus::Resolved && record.summary.state == ChatState::Active;
        if resolved_live && let Some(agent) = record.agent_id {
            let name = self.store.agent_name(agent).await?;
            self.requeue(case, agent, &name, SystemMessageKind::PlacedBackInQueue)
                .await?;
        }
        Ok(())
    }

    /// The case's tab closes on every console of `agent`, which stop following it.
    fn close_on_consoles_of(&self, agent: AgentId, case: CaseId) {
        self.hub.unfollow_for_agent(agent, case);
        self.hub
            .send_agent(agent, &ToAgent::TabClosed { case_id: case });
    }

    /// Tells everyone following the case where it stands now; returns the case as read.
    async fn publish_state(&self, case: CaseId) -> StoreResult<Option<CaseRecord>> {
        let record = self.store.case(case).await?;
        if let Some(record) = &record {
            self.hub.publish(
                case,
                &ToVisitor::State {
                    case: record.summary.clone(),
                },
                &ToAgent::State {
                    case: record.summary.clone(),
                },
            );
        }
        Ok(record)
    }
}
