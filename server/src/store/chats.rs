//! The writes of a chat's life, each an [`Op`] for the one writer: a chat started or a
//! message left, a message appended, presence marks, screen pops opened and closed, an
//! agent assigned, a chat requeued or ended. Each checks what it depends on inside the
//! transaction that writes it, so no caller needs a read first and nothing can change
//! between the check and the write.

use std::collections::HashMap;

use parlor_protocol::{
    AgentId, Author, CaseId, Channel, ChatMessage, EndedBy, Millis, OfferClosed, Seq,
};
use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::writer::Op;
use super::{
    NewChat, Started, StoreError, StoreResult, VisitorId, author_from_columns, now_ms, outcome_name,
};
use crate::secret;

/// One message to append.
pub(super) struct Append {
    pub case: CaseId,
    pub client_id: String,
    pub author: Author,
    pub body: String,
    /// Refused once the case holds this many messages (Parlor's own are never refused:
    /// a chat can always end).
    pub cap: Seq,
    /// The agent who must be in the chat for it to be written: an agent's own send is
    /// checked here, in the transaction, rather than by a read before it.
    pub member: Option<AgentId>,
}

impl Op for Append {
    type Output = (ChatMessage, bool);

    fn appends(&self) -> bool {
        true
    }

    fn appending<'a>(
        &'a self,
        outcome: &'a mut Option<StoreResult<Self::Output>>,
    ) -> Option<AppendSlot<'a>> {
        Some((self, outcome))
    }

    /// The writer takes appends through [`append_all`], a run of them at a time; one
    /// alone is a run of one.
    fn apply(&self, tx: &Transaction<'_>) -> rusqlite::Result<StoreResult<Self::Output>> {
        let mut outcome = None;
        append_all(tx, vec![(self, &mut outcome)])?;
        Ok(outcome.unwrap_or(Err(StoreError::CaseNotFound)))
    }
}

/// The message stored under an id in a case, if any (the `(case_id, client_id)` index).
pub(super) const STORED_UNDER: &str = "SELECT case_id, seq, client_id, author_kind, agent_id, \
     author_name, body, sent_at FROM messages WHERE case_id = ? AND client_id = ?";

/// What an append checks of its case: the chat's state, the last `seq` (from the
/// primary key's index) and the agent in it.
const CASE_FOR_APPEND: &str = "SELECT c.chat_state, \
     (SELECT COALESCE(MAX(m.seq), 0) FROM messages m WHERE m.case_id = c.id), \
     c.agent_id FROM cases c WHERE c.id = ?";

pub(super) const INSERT_MESSAGE: &str = "INSERT INTO messages (case_id, seq, client_id, author_kind, \
     agent_id, author_name, body, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";

/// An append waiting in a batch, and where its outcome goes.
pub(super) type AppendSlot<'a> = (&'a Append, &'a mut Option<StoreResult<(ChatMessage, bool)>>);

/// Writes appends that arrived together. Each case is read once for all its appends,
/// each id looked up and each message inserted with statements prepared once. Each
/// append gets what it would get alone, in this order (a retry within the group is
/// answered with the message stored before it). An error means the transaction must
/// go.
pub(super) fn append_all(tx: &Transaction<'_>, run: Vec<AppendSlot<'_>>) -> rusqlite::Result<()> {
    let mut stored_under = tx.prepare_cached(STORED_UNDER)?;
    let mut case_for = tx.prepare_cached(CASE_FOR_APPEND)?;
    let mut insert = tx.prepare_cached(INSERT_MESSAGE)?;
    let mut cases: HashMap<CaseId, Option<(String, Seq, Option<AgentId>)>> = HashMap::new();
    let now = now_ms();
    for (append, outcome) in run {
        let stored = stored_under
            .query_row(params![append.case, append.client_id], message_from_row)
            .optional()?;
        if let Some(message) = stored {
            *outcome = Some(if same_author(&message.author, &append.author) {
                Ok((message, false))
            } else {
                Err(StoreError::ClientIdTaken)
            });
            continue;
        }
        let case = match cases.entry(append.case) {
            std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
            std::collections::hash_map::Entry::Vacant(new) => new.insert(
                case_for
                    .query_row([append.case], |row| {
                        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                    })
                    .optional()?,
            ),
        };
        let Some((state, last_seq, agent)) = case else {
            *outcome = Some(Err(StoreError::CaseNotFound));
            continue;
        };
        if let Some(refused) = refusal(append, state, *last_seq, *agent) {
            *outcome = Some(Err(refused));
            continue;
        }
        let message = ChatMessage {
            case_id: append.case,
            seq: *last_seq + 1,
            client_id: append.client_id.clone(),
            author: append.author.clone(),
            body: append.body.clone(),
            sent_at: now,
        };
        let (kind, agent_id, name) = author_columns(&message.author);
        insert.execute(params![
            message.case_id,
            message.seq,
            message.client_id,
            kind,
            agent_id,
            name,
            message.body,
            message.sent_at
        ])?;
        *last_seq = message.seq;
        *outcome = Some(Ok((message, true)));
    }
    Ok(())
}

/// A message as the writer reads it back (columns as in [`STORED_UNDER`]).
fn message_from_row(row: &Row<'_>) -> rusqlite::Result<ChatMessage> {
    Ok(ChatMessage {
        case_id: row.get(0)?,
        seq: row.get(1)?,
        client_id: row.get(2)?,
        author: author_from_columns(&row.get::<_, String>(3)?, row.get(4)?, row.get(5)?),
        body: row.get(6)?,
        sent_at: row.get(7)?,
    })
}

/// Why `append` may not be written to a case in `state` holding `last_seq` messages
/// with `agent` in it, if it may not. Parlor's own messages always may: a chat can
/// always end.
fn refusal(
    append: &Append,
    state: &str,
    last_seq: Seq,
    agent: Option<AgentId>,
) -> Option<StoreError> {
    if append.author == Author::System {
        return None;
    }
    if state == "ended" {
        return Some(StoreError::ChatEnded);
    }
    if append.member.is_some() && (state != "active" || agent != append.member) {
        return Some(StoreError::NotInChat);
    }
    (last_seq >= append.cap).then_some(StoreError::CaseFull(append.cap))
}

/// How an author is stored: kind, agent id and name.
fn author_columns(author: &Author) -> (&'static str, Option<AgentId>, &str) {
    match author {
        Author::Customer { name } => ("customer", None, name.as_str()),
        Author::Agent { id, name } => ("agent", Some(*id), name.as_str()),
        Author::System => ("system", None, ""),
    }
}

/// Whose last socket has closed (or is back): a chat's customer, or an agent.
#[derive(Clone, Copy, Debug)]
pub(super) enum Presence {
    Customer(CaseId),
    Agent(AgentId),
}

/// A presence mark: gone since then, or back (`None`). A crowd of sockets closing (or
/// coming back) at once shares commits instead of waiting their turn one by one.
pub(super) struct Mark {
    pub who: Presence,
    pub since: Option<Millis>,
}

impl Op for Mark {
    type Output = ();

    fn apply(&self, tx: &Transaction<'_>) -> rusqlite::Result<StoreResult<()>> {
        let (sql, id) = match self.who {
            Presence::Customer(case) => {
                ("UPDATE cases SET customer_gone_at = ? WHERE id = ?", case)
            }
            Presence::Agent(agent) => ("UPDATE agents SET gone_at = ? WHERE id = ?", agent),
        };
        tx.prepare_cached(sql)?.execute(params![self.since, id])?;
        Ok(Ok(()))
    }
}

/// A new chat: the visitor (on their first chat) and the case with its first message,
/// queued. A retry of the same start (same token, same first message id) returns the
/// chat already started; another start while a chat is live is refused.
pub(super) struct StartChat {
    pub token: String,
    pub chat: NewChat,
}

impl Op for StartChat {
    type Output = Started;

    fn apply(&self, tx: &Transaction<'_>) -> rusqlite::Result<StoreResult<Started>> {
        let live: Option<(VisitorId, CaseId, Option<String>)> = tx
            .prepare_cached(
                "SELECT v.id, c.id, m.client_id FROM visitors v \
                 JOIN cases c ON c.visitor_id = v.id AND c.chat_state != 'ended' \
                 LEFT JOIN messages m ON m.case_id = c.id AND m.seq = 1 \
                 WHERE v.token_hash = ? ORDER BY c.id DESC LIMIT 1",
            )?
            .query_row([secret::digest(&self.token)], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .optional()?;
        if let Some((visitor, case, first_client_id)) = live {
            return Ok(
                if first_client_id.as_deref() == Some(self.chat.client_id.as_str()) {
                    Ok(Started {
                        visitor,
                        case,
                        new: false,
                    })
                } else {
                    Err(StoreError::AlreadyChatting)
                },
            );
        }
        let now = now_ms();
        let visitor = upsert_visitor(tx, &self.token, now)?;
        let case = insert_case(tx, visitor, &self.chat, Channel::Chat, now)?;
        Ok(Ok(Started {
            visitor,
            case,
            new: true,
        }))
    }
}

/// The offline form: a case with the customer's message and no chat, for an answer by
/// email. A retry (same `client_id`) returns the case already made.
pub(super) struct LeaveMessage {
    pub token: String,
    pub message: NewChat,
}

impl Op for LeaveMessage {
    type Output = Started;

    fn apply(&self, tx: &Transaction<'_>) -> rusqlite::Result<StoreResult<Started>> {
        let earlier: Option<(VisitorId, CaseId)> = tx
            .prepare_cached(
                "SELECT v.id, c.id FROM visitors v \
                 JOIN cases c ON c.visitor_id = v.id AND c.channel = 'message' \
                 JOIN messages m ON m.case_id = c.id AND m.seq = 1 \
                 WHERE v.token_hash = ? AND m.client_id = ?",
            )?
            .query_row(
                params![secret::digest(&self.token), self.message.client_id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        if let Some((visitor, case)) = earlier {
            return Ok(Ok(Started {
                visitor,
                case,
                new: false,
            }));
        }
        let now = now_ms();
        let visitor = upsert_visitor(tx, &self.token, now)?;
        let case = insert_case(tx, visitor, &self.message, Channel::Message, now)?;
        Ok(Ok(Started {
            visitor,
            case,
            new: true,
        }))
    }
}

/// Puts an agent in a queued chat. `false` when the chat is no longer queued.
pub(super) struct Assign {
    pub case: CaseId,
    pub agent: AgentId,
}

impl Op for Assign {
    type Output = bool;

    fn apply(&self, tx: &Transaction<'_>) -> rusqlite::Result<StoreResult<bool>> {
        let changed = tx
            .prepare_cached(
                "UPDATE cases SET chat_state = 'active', agent_id = ?, offer_agent_id = NULL, \
                 offer_expires_at = NULL WHERE id = ? AND chat_state = 'queued'",
            )?
            .execute(params![self.agent, self.case])?;
        Ok(Ok(changed == 1))
    }
}

/// Ends a chat. `None` when it had already ended; else the agent who was in it.
pub(super) struct EndChat {
    pub case: CaseId,
    pub by: EndedBy,
}

impl Op for EndChat {
    type Output = Option<Option<AgentId>>;

    fn apply(&self, tx: &Transaction<'_>) -> rusqlite::Result<StoreResult<Self::Output>> {
        let (kind, name) = match &self.by {
            EndedBy::Customer => ("customer", None),
            EndedBy::Agent { name } => ("agent", Some(name.as_str())),
            EndedBy::Timeout => ("timeout", None),
        };
        let agent = tx
            .prepare_cached(
                "UPDATE cases SET chat_state = 'ended', ended_by = ?, ended_by_name = ?, \
                 ended_at = ?, offer_agent_id = NULL, offer_expires_at = NULL \
                 WHERE id = ? AND chat_state != 'ended' RETURNING agent_id",
            )?
            .query_row(params![kind, name, now_ms(), self.case], |row| row.get(0))
            .optional()?;
        Ok(Ok(agent))
    }
}

/// Takes the agent out of a live chat and puts it back in the queue. `false` when the
/// agent was not in it (any more).
pub(super) struct Requeue {
    pub case: CaseId,
    pub agent: AgentId,
}

impl Op for Requeue {
    type Output = bool;

    fn apply(&self, tx: &Transaction<'_>) -> rusqlite::Result<StoreResult<bool>> {
        let changed = tx
            .prepare_cached(
                "UPDATE cases SET chat_state = 'queued', agent_id = NULL \
                 WHERE id = ? AND chat_state = 'active' AND agent_id = ?",
            )?
            .execute(params![self.case, self.agent])?;
        Ok(Ok(changed == 1))
    }
}

/// A screen pop opened on an agent's screen: recorded on the case (so a restart can
/// re-arm it) and in the offer log.
pub(super) struct OpenOffer {
    pub case: CaseId,
    pub agent: AgentId,
    pub expires_at: Millis,
    pub at: Millis,
}

impl Op for OpenOffer {
    type Output = ();

    fn apply(&self, tx: &Transaction<'_>) -> rusqlite::Result<StoreResult<()>> {
        tx.prepare_cached(
            "UPDATE cases SET offer_agent_id = ?, offer_expires_at = ? WHERE id = ?",
        )?
        .execute(params![self.agent, self.expires_at, self.case])?;
        tx.prepare_cached(
            "INSERT INTO offer_log (case_id, agent_id, offered_at) VALUES (?, ?, ?)",
        )?
        .execute(params![self.case, self.agent, self.at])?;
        Ok(Ok(()))
    }
}

/// The open screen pop of a case on an agent's screen ended, and how.
pub(super) struct CloseOffer {
    pub case: CaseId,
    pub agent: AgentId,
    pub outcome: OfferClosed,
    pub at: Millis,
}

impl Op for CloseOffer {
    type Output = ();

    fn apply(&self, tx: &Transaction<'_>) -> rusqlite::Result<StoreResult<()>> {
        tx.prepare_cached(
            "UPDATE cases SET offer_agent_id = NULL, offer_expires_at = NULL \
             WHERE id = ? AND offer_agent_id = ?",
        )?
        .execute(params![self.case, self.agent])?;
        tx.prepare_cached(
            "UPDATE offer_log SET outcome = ?, closed_at = ? \
             WHERE case_id = ? AND agent_id = ? AND outcome IS NULL",
        )?
        .execute(params![
            outcome_name(self.outcome),
            self.at,
            self.case,
            self.agent
        ])?;
        Ok(Ok(()))
    }
}

/// An agent's routing switch.
pub(super) struct SetRouting {
    pub agent: AgentId,
    pub on: bool,
}

impl Op for SetRouting {
    type Output = ();

    fn apply(&self, tx: &Transaction<'_>) -> rusqlite::Result<StoreResult<()>> {
        tx.prepare_cached("UPDATE agents SET routing = ? WHERE id = ?")?
            .execute(params![self.on, self.agent])?;
        Ok(Ok(()))
    }
}

/// Nothing: a transaction that takes the write lock and commits no change (so no disk
/// flush), to show the writer is alive and can write.
pub(super) struct Ping;

impl Op for Ping {
    type Output = ();

    fn apply(&self, _tx: &Transaction<'_>) -> rusqlite::Result<StoreResult<()>> {
        Ok(Ok(()))
    }
}

/// A retry must come from whoever sent the original: the same customer or agent.
fn same_author(stored: &Author, retry: &Author) -> bool {
    match (stored, retry) {
        (Author::Customer { .. }, Author::Customer { .. }) => true,
        (Author::Agent { id: a, .. }, Author::Agent { id: b, .. }) => a == b,
        (Author::System, Author::System) => true,
        _ => false,
    }
}

/// The visitor of `token`, made on their first chat or message.
fn upsert_visitor(tx: &Transaction<'_>, token: &str, now: Millis) -> rusqlite::Result<VisitorId> {
    tx.prepare_cached(
        "INSERT INTO visitors (token_hash, created_at) VALUES (?, ?) \
         ON CONFLICT (token_hash) DO UPDATE SET token_hash = excluded.token_hash \
         RETURNING id",
    )?
    .query_row(params![secret::digest(token), now], |row| row.get(0))
}

/// A new case with the customer's first message: a queued chat, or a message left
/// (over at once: nobody chats in it).
fn insert_case(
    tx: &Transaction<'_>,
    visitor: VisitorId,
    chat: &NewChat,
    channel: Channel,
    now: Millis,
) -> rusqlite::Result<CaseId> {
    let (state, channel) = match channel {
        Channel::Chat => ("queued", "chat"),
        Channel::Message => ("ended", "message"),
    };
    let answers = serde_json::to_string(&chat.answers)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
    let case: CaseId = tx
        .prepare_cached(
            "INSERT INTO cases (visitor_id, customer_name, subject, location, group_id, \
             customer_email, answers, chat_state, channel, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )?
        .query_row(
            params![
                visitor,
                chat.customer_name,
                chat.subject,
                chat.location,
                chat.group,
                chat.email,
                answers,
                state,
                channel,
                now
            ],
            |row| row.get(0),
        )?;
    let first = Author::Customer {
        name: chat.customer_name.clone(),
    };
    let (kind, agent_id, name) = author_columns(&first);
    tx.prepare_cached(INSERT_MESSAGE)?.execute(params![
        case,
        1,
        chat.client_id,
        kind,
        agent_id,
        name,
        chat.body,
        now
    ])?;
    Ok(case)
}
