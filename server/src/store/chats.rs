//! The writes of a chat's life, each an [`Op`] for the one writer: a chat started or a
//! message left, a message appended, presence marks, screen pops opened and closed, an
//! agent assigned, a chat requeued or ended. Each checks what it depends on inside the
//! transaction that writes it, so no caller needs a read first and nothing can change
//! between the check and the write.

use std::collections::HashMap;

use parlor_protocol::{
    AgentId, Author, CaseId, Channel, ChatMessage, EndedBy, Millis, OfferClosed, Seq,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::writer::Op;
use super::{
    NewChat, Started, StoreError, StoreResult, VisitorId, message_from_row, now_ms, outcome_name,
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
    async fn apply(&self, tx: &mut SqliteConnection) -> StoreResult<StoreResult<Self::Output>> {
        let mut outcome = None;
        append_all(tx, vec![(self, &mut outcome)]).await?;
        Ok(outcome.unwrap_or(Err(StoreError::CaseNotFound)))
    }
}

/// What an append checks of its case: the chat's state, the last `seq` (from the
/// primary key's index) and the agent in it.
const CASE_FOR_APPEND: &str = "c.chat_state, \
     (SELECT COALESCE(MAX(m.seq), 0) FROM messages m WHERE m.case_id = c.id) AS last_seq, \
     c.agent_id";

/// An append waiting in a batch, and where its outcome goes.
pub(super) type AppendSlot<'a> = (&'a Append, &'a mut Option<StoreResult<(ChatMessage, bool)>>);

/// Writes appends that arrived together with a handful of statements for all of them
/// instead of three each: one read of the ids already stored, one of the cases (with
/// their last `seq`) and one insert of every new message. Each append
/// gets what [`Append::apply`] would give it in this order (a retry within the group
/// is answered with the message stored before it). An error means the transaction
/// must go.
pub(super) async fn append_all(
    tx: &mut SqliteConnection,
    run: Vec<AppendSlot<'_>>,
) -> StoreResult<()> {
    let mut stored: HashMap<(CaseId, String), ChatMessage> = HashMap::new();
    let mut known = QueryBuilder::<Sqlite>::new("");
    push_stored(&mut known, run.iter().map(|(append, _)| *append));
    for row in known.build().fetch_all(&mut *tx).await? {
        let message = message_from_row(&row);
        stored.insert((message.case_id, message.client_id.clone()), message);
    }

    let mut cases: HashMap<CaseId, (String, Seq, Option<AgentId>)> = HashMap::new();
    let mut read = QueryBuilder::<Sqlite>::new(format!(
        "SELECT c.id, {CASE_FOR_APPEND} FROM cases c WHERE c.id IN ("
    ));
    let mut ids = read.separated(", ");
    for (append, _) in &run {
        ids.push_bind(append.case);
    }
    read.push(")");
    for row in read.build().fetch_all(&mut *tx).await? {
        cases.insert(
            row.get("id"),
            (
                row.get("chat_state"),
                row.get("last_seq"),
                row.get("agent_id"),
            ),
        );
    }

    let now = now_ms();
    let mut new = Vec::new();
    for (append, outcome) in run {
        let key = (append.case, append.client_id.clone());
        *outcome = Some(match stored.get(&key) {
            Some(message) if same_author(&message.author, &append.author) => {
                Ok((message.clone(), false))
            }
            Some(_) => Err(StoreError::ClientIdTaken),
            None => match cases.get_mut(&append.case) {
                None => Err(StoreError::CaseNotFound),
                Some((state, last_seq, agent)) => match refusal(append, state, *last_seq, *agent) {
                    Some(refused) => Err(refused),
                    None => {
                        *last_seq += 1;
                        let message = ChatMessage {
                            case_id: append.case,
                            seq: *last_seq,
                            client_id: append.client_id.clone(),
                            author: append.author.clone(),
                            body: append.body.clone(),
                            sent_at: now,
                        };
                        stored.insert(key, message.clone());
                        new.push(message.clone());
                        Ok((message, true))
                    }
                },
            },
        });
    }
    if new.is_empty() {
        return Ok(());
    }

    let mut insert = QueryBuilder::<Sqlite>::new(
        "INSERT INTO messages (case_id, seq, client_id, author_kind, agent_id, author_name, \
         body, sent_at) ",
    );
    insert.push_values(&new, |mut row, message| {
        let (kind, agent_id, name) = author_columns(&message.author);
        row.push_bind(message.case_id)
            .push_bind(message.seq)
            .push_bind(&message.client_id)
            .push_bind(kind)
            .push_bind(agent_id)
            .push_bind(name)
            .push_bind(&message.body)
            .push_bind(message.sent_at);
    });
    insert.build().execute(&mut *tx).await?;
    Ok(())
}

/// The query for the messages already stored under these appends' ids. A join with
/// the list rather than `(case_id, client_id) IN (VALUES …)`, which SQLite answers by
/// reading every message stored.
pub(super) fn push_stored<'a>(
    query: &mut QueryBuilder<'a, Sqlite>,
    appends: impl Iterator<Item = &'a Append>,
) {
    query.push(
        "SELECT m.case_id, m.seq, m.client_id, m.author_kind, m.agent_id, m.author_name, \
         m.body, m.sent_at FROM (VALUES ",
    );
    let mut ids = query.separated(", ");
    for append in appends {
        ids.push("(")
            .push_bind_unseparated(append.case)
            .push_unseparated(", ")
            .push_bind_unseparated(&append.client_id)
            .push_unseparated(")");
    }
    query.push(") k JOIN messages m ON m.case_id = k.column1 AND m.client_id = k.column2");
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

    async fn apply(&self, tx: &mut SqliteConnection) -> StoreResult<StoreResult<()>> {
        let (sql, id) = match self.who {
            Presence::Customer(case) => {
                ("UPDATE cases SET customer_gone_at = ? WHERE id = ?", case)
            }
            Presence::Agent(agent) => ("UPDATE agents SET gone_at = ? WHERE id = ?", agent),
        };
        sqlx::query(sql)
            .bind(self.since)
            .bind(id)
            .execute(&mut *tx)
            .await?;
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

    async fn apply(&self, tx: &mut SqliteConnection) -> StoreResult<StoreResult<Started>> {
        let live: Option<(VisitorId, CaseId, Option<String>)> = sqlx::query_as(
            "SELECT v.id, c.id, m.client_id FROM visitors v \
             JOIN cases c ON c.visitor_id = v.id AND c.chat_state != 'ended' \
             LEFT JOIN messages m ON m.case_id = c.id AND m.seq = 1 \
             WHERE v.token_hash = ? ORDER BY c.id DESC LIMIT 1",
        )
        .bind(secret::digest(&self.token))
        .fetch_optional(&mut *tx)
        .await?;
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
        let visitor = upsert_visitor(tx, &self.token, now).await?;
        let case = insert_case(tx, visitor, &self.chat, Channel::Chat, now).await?;
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

    async fn apply(&self, tx: &mut SqliteConnection) -> StoreResult<StoreResult<Started>> {
        let earlier: Option<(VisitorId, CaseId)> = sqlx::query_as(
            "SELECT v.id, c.id FROM visitors v \
             JOIN cases c ON c.visitor_id = v.id AND c.channel = 'message' \
             JOIN messages m ON m.case_id = c.id AND m.seq = 1 \
             WHERE v.token_hash = ? AND m.client_id = ?",
        )
        .bind(secret::digest(&self.token))
        .bind(&self.message.client_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((visitor, case)) = earlier {
            return Ok(Ok(Started {
                visitor,
                case,
                new: false,
            }));
        }
        let now = now_ms();
        let visitor = upsert_visitor(tx, &self.token, now).await?;
        let case = insert_case(tx, visitor, &self.message, Channel::Message, now).await?;
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

    async fn apply(&self, tx: &mut SqliteConnection) -> StoreResult<StoreResult<bool>> {
        let done = sqlx::query(
            "UPDATE cases SET chat_state = 'active', agent_id = ?, offer_agent_id = NULL, \
             offer_expires_at = NULL WHERE id = ? AND chat_state = 'queued'",
        )
        .bind(self.agent)
        .bind(self.case)
        .execute(&mut *tx)
        .await?;
        Ok(Ok(done.rows_affected() == 1))
    }
}

/// Ends a chat. `None` when it had already ended; else the agent who was in it.
pub(super) struct EndChat {
    pub case: CaseId,
    pub by: EndedBy,
}

impl Op for EndChat {
    type Output = Option<Option<AgentId>>;

    async fn apply(&self, tx: &mut SqliteConnection) -> StoreResult<StoreResult<Self::Output>> {
        let (kind, name) = match &self.by {
            EndedBy::Customer => ("customer", None),
            EndedBy::Agent { name } => ("agent", Some(name.as_str())),
            EndedBy::Timeout => ("timeout", None),
        };
        let agent = sqlx::query_scalar(
            "UPDATE cases SET chat_state = 'ended', ended_by = ?, ended_by_name = ?, ended_at = ?, \
             offer_agent_id = NULL, offer_expires_at = NULL \
             WHERE id = ? AND chat_state != 'ended' RETURNING agent_id",
        )
        .bind(kind)
        .bind(name)
        .bind(now_ms())
        .bind(self.case)
        .fetch_optional(&mut *tx)
        .await?;
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

    async fn apply(&self, tx: &mut SqliteConnection) -> StoreResult<StoreResult<bool>> {
        let done = sqlx::query(
            "UPDATE cases SET chat_state = 'queued', agent_id = NULL \
             WHERE id = ? AND chat_state = 'active' AND agent_id = ?",
        )
        .bind(self.case)
        .bind(self.agent)
        .execute(&mut *tx)
        .await?;
        Ok(Ok(done.rows_affected() == 1))
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

    async fn apply(&self, tx: &mut SqliteConnection) -> StoreResult<StoreResult<()>> {
        sqlx::query("UPDATE cases SET offer_agent_id = ?, offer_expires_at = ? WHERE id = ?")
            .bind(self.agent)
            .bind(self.expires_at)
            .bind(self.case)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO offer_log (case_id, agent_id, offered_at) VALUES (?, ?, ?)")
            .bind(self.case)
            .bind(self.agent)
            .bind(self.at)
            .execute(&mut *tx)
            .await?;
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

    async fn apply(&self, tx: &mut SqliteConnection) -> StoreResult<StoreResult<()>> {
        sqlx::query(
            "UPDATE cases SET offer_agent_id = NULL, offer_expires_at = NULL \
             WHERE id = ? AND offer_agent_id = ?",
        )
        .bind(self.case)
        .bind(self.agent)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE offer_log SET outcome = ?, closed_at = ? \
             WHERE case_id = ? AND agent_id = ? AND outcome IS NULL",
        )
        .bind(outcome_name(self.outcome))
        .bind(self.at)
        .bind(self.case)
        .bind(self.agent)
        .execute(&mut *tx)
        .await?;
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

    async fn apply(&self, tx: &mut SqliteConnection) -> StoreResult<StoreResult<()>> {
        sqlx::query("UPDATE agents SET routing = ? WHERE id = ?")
            .bind(self.on)
            .bind(self.agent)
            .execute(&mut *tx)
            .await?;
        Ok(Ok(()))
    }
}

pub(super) async fn insert_message(
    tx: &mut SqliteConnection,
    case: CaseId,
    client_id: &str,
    author: &Author,
    body: &str,
    sent_at: Millis,
) -> StoreResult<ChatMessage> {
    let seq: Seq =
        sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE case_id = ?")
            .bind(case)
            .fetch_one(&mut *tx)
            .await?;
    let (kind, agent_id, name) = author_columns(author);
    sqlx::query(
        "INSERT INTO messages (case_id, seq, client_id, author_kind, agent_id, author_name, \
         body, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(case)
    .bind(seq)
    .bind(client_id)
    .bind(kind)
    .bind(agent_id)
    .bind(name)
    .bind(body)
    .bind(sent_at)
    .execute(&mut *tx)
    .await?;
    Ok(ChatMessage {
        case_id: case,
        seq,
        client_id: client_id.to_owned(),
        author: author.clone(),
        body: body.to_owned(),
        sent_at,
    })
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
async fn upsert_visitor(
    tx: &mut SqliteConnection,
    token: &str,
    now: Millis,
) -> StoreResult<VisitorId> {
    Ok(sqlx::query_scalar(
        "INSERT INTO visitors (token_hash, created_at) VALUES (?, ?) \
         ON CONFLICT (token_hash) DO UPDATE SET token_hash = excluded.token_hash \
         RETURNING id",
    )
    .bind(secret::digest(token))
    .bind(now)
    .fetch_one(&mut *tx)
    .await?)
}

/// A new case with the customer's first message: a queued chat, or a message left
/// (over at once: nobody chats in it).
async fn insert_case(
    tx: &mut SqliteConnection,
    visitor: VisitorId,
    chat: &NewChat,
    channel: Channel,
    now: Millis,
) -> StoreResult<CaseId> {
    let (state, channel) = match channel {
        Channel::Chat => ("queued", "chat"),
        Channel::Message => ("ended", "message"),
    };
    let case: CaseId = sqlx::query_scalar(
        "INSERT INTO cases (visitor_id, customer_name, subject, location, group_id, \
         customer_email, answers, chat_state, channel, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(visitor)
    .bind(&chat.customer_name)
    .bind(&chat.subject)
    .bind(&chat.location)
    .bind(chat.group)
    .bind(&chat.email)
    .bind(serde_json::to_string(&chat.answers).unwrap_or_else(|_| "[]".to_owned()))
    .bind(state)
    .bind(channel)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    insert_message(
        tx,
        case,
        &chat.client_id,
        &Author::Customer {
            name: chat.customer_name.clone(),
        },
        &chat.body,
        now,
    )
    .await?;
    Ok(case)
}
