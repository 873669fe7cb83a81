//! The writes of a chat's life besides its messages (see [`super::appends`]), each an
//! [`Op`] for the one writer: a chat started or a message left, presence marks, screen
//! pops opened and closed, an agent assigned, a chat requeued or ended. Each checks
//! what it depends on inside the transaction that writes it, so no caller needs a read
//! first and nothing can change between the check and the write.
//!
//! Each write's statements are written once and run on both databases: on SQLite by
//! the writer's own connection (rusqlite, statements kept prepared), on PostgreSQL
//! through sqlx.

use parlor_protocol::{AgentId, Author, CaseId, Channel, EndedBy, Millis, OfferClosed};
use rusqlite::{OptionalExtension, Transaction, params};
use sqlx::{PgConnection, Row};

use super::appends::{INSERT_MESSAGE, author_columns};
use super::writer::{Op, Rows};
use super::{NewChat, Started, StoreError, StoreResult, VisitorId, now_ms, outcome_name};
use crate::secret;

/// Whose sockets a node counts: a chat's customer, or an agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    Customer(CaseId),
    Agent(AgentId),
}

impl Presence {
    pub fn kind(self) -> &'static str {
        match self {
            Self::Customer(_) => "customer",
            Self::Agent(_) => "agent",
        }
    }

    pub fn id(self) -> i64 {
        match self {
            Self::Customer(id) | Self::Agent(id) => id,
        }
    }

    pub fn from_row(kind: &str, id: i64) -> Option<Self> {
        match kind {
            "customer" => Some(Self::Customer(id)),
            "agent" => Some(Self::Agent(id)),
            _ => None,
        }
    }

    /// No longer gone; changes a row only if they were.
    fn clear(self) -> &'static str {
        match self {
            Self::Customer(_) => {
                "UPDATE cases SET customer_gone_at = NULL \
                 WHERE id = $1 AND customer_gone_at IS NOT NULL"
            }
            Self::Agent(_) => {
                "UPDATE agents SET gone_at = NULL WHERE id = $1 AND gone_at IS NOT NULL"
            }
        }
    }

    /// Gone since `$1`; changes a row only if they were not gone already.
    fn mark(self) -> &'static str {
        match self {
            Self::Customer(_) => {
                "UPDATE cases SET customer_gone_at = $1 \
                 WHERE id = $2 AND customer_gone_at IS NULL"
            }
            Self::Agent(_) => "UPDATE agents SET gone_at = $1 WHERE id = $2 AND gone_at IS NULL",
        }
    }
}

/// What changed in a node's sockets of someone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sockets {
    /// Its first opened.
    Opened,
    /// Its last closed, then.
    Closed(Millis),
    /// The node died with them: its lease ran out then. Uncounted only while it is still
    /// dead (a node whose lease was renewed meanwhile counts its sockets again).
    LostWithNode(Millis),
}

impl Sockets {
    /// When the last socket went, unless this is one opening.
    pub fn left_at(self) -> Option<Millis> {
        match self {
            Self::Opened => None,
            Self::Closed(at) | Self::LostWithNode(at) => Some(at),
        }
    }
}

const COUNT_HERE: &str =
    "INSERT INTO presence (node, kind, id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
const UNCOUNT: &str = "DELETE FROM presence WHERE node = $1 AND kind = $2 AND id = $3";
/// The same for a dead node, only while it still is: one whose lease was renewed
/// meanwhile counts its sockets again.
const UNCOUNT_DEAD: &str = "DELETE FROM presence WHERE node = $1 AND kind = $2 AND id = $3 \
     AND NOT EXISTS (SELECT 1 FROM nodes WHERE id = $1 AND expires_at > $4)";
/// Whether a live node (its lease still running) has a socket of theirs.
const ELSEWHERE: &str = "SELECT 1 FROM presence p JOIN nodes n ON n.id = p.node \
     WHERE p.kind = $1 AND p.id = $2 AND n.expires_at > $3 LIMIT 1";

/// A node's count of someone's sockets went from none to some ([`Sockets::Opened`]):
/// they are counted there and no longer gone; the output is whether they were. Or from
/// some to none at a time: uncounted there, and gone from then unless a live node
/// still has a socket of theirs; the output is whether they became gone. A crowd of
/// sockets closing (or coming back) at once shares commits.
pub(super) struct Mark {
    pub node: String,
    pub who: Presence,
    pub sockets: Sockets,
    /// When the mark was made: nodes whose lease ran out by then count for nothing.
    pub now: Millis,
}

impl Mark {
    fn left_at(&self) -> Option<Millis> {
        self.sockets.left_at()
    }

    /// The node is dead: its socket is uncounted only if it still is.
    fn node_dead(&self) -> bool {
        matches!(self.sockets, Sockets::LostWithNode(_))
    }
}

impl Op for Mark {
    type Output = bool;

    fn rows(&self) -> Rows {
        match self.who {
            Presence::Customer(case) => Rows::case(case),
            Presence::Agent(agent) => Rows::agent(agent),
        }
    }

    fn apply(&self, tx: &Transaction<'_>) -> rusqlite::Result<StoreResult<bool>> {
        let (kind, id) = (self.who.kind(), self.who.id());
        let Some(at) = self.left_at() else {
            tx.prepare_cached(COUNT_HERE)?
                .execute(params![self.node, kind, id])?;
            let cleared = tx.prepare_cached(self.who.clear())?.execute(params![id])?;
            return Ok(Ok(cleared > 0));
        };
        if self.node_dead() {
            let uncounted = tx
                .prepare_cached(UNCOUNT_DEAD)?
                .execute(params![self.node, kind, id, self.now])?;
            if uncounted == 0 {
                return Ok(Ok(false));
            }
        } else {
            tx.prepare_cached(UNCOUNT)?
                .execute(params![self.node, kind, id])?;
        }
        let elsewhere = tx
            .prepare_cached(ELSEWHERE)?
            .query_row(params![kind, id, self.now], |_| Ok(()))
            .optional()?
            .is_some();
        if elsewhere {
            return Ok(Ok(false));
        }
        let marked = tx
            .prepare_cached(self.who.mark())?
            .execute(params![at, id])?;
        Ok(Ok(marked > 0))
    }

    async fn apply_pg(&self, tx: &mut PgConnection) -> sqlx::Result<StoreResult<bool>> {
        // Their row is locked (the writer locks what each write declares in `rows`):
        // nodes marking the same person wait in turn, so each sees what the one before
        // it counted.
        let (kind, id) = (self.who.kind(), self.who.id());
        let Some(at) = self.left_at() else {
            sqlx::query(COUNT_HERE)
                .bind(&self.node)
                .bind(kind)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let cleared = sqlx::query(self.who.clear())
                .bind(id)
                .execute(&mut *tx)
                .await?;
            return Ok(Ok(cleared.rows_affected() > 0));
        };
        let uncount = sqlx::query(if self.node_dead() {
            UNCOUNT_DEAD
        } else {
            UNCOUNT
        })
        .bind(&self.node)
        .bind(kind)
        .bind(id);
        let uncount = if self.node_dead() {
            uncount.bind(self.now)
        } else {
            uncount
        };
        let uncounted = uncount.execute(&mut *tx).await?;
        if self.node_dead() && uncounted.rows_affected() == 0 {
            return Ok(Ok(false));
        }
        let elsewhere: Option<i32> = sqlx::query_scalar(ELSEWHERE)
            .bind(kind)
            .bind(id)
            .bind(self.now)
            .fetch_optional(&mut *tx)
            .await?;
        if elsewhere.is_some() {
            return Ok(Ok(false));
        }
        let marked = sqlx::query(self.who.mark())
            .bind(at)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        Ok(Ok(marked.rows_affected() > 0))
    }
}

/// The visitor of a token, made on their first chat or message. On PostgreSQL this
/// also locks the visitor's row, so two nodes cannot start two chats for one visitor.
const UPSERT_VISITOR: &str = "INSERT INTO visitors (token_hash, created_at) VALUES ($1, $2) \
     ON CONFLICT (token_hash) DO UPDATE SET token_hash = excluded.token_hash RETURNING id";

/// The visitor's chat that has not ended, with the id of its first message.
const LIVE_CHAT: &str = "SELECT c.id, m.client_id FROM cases c \
     LEFT JOIN messages m ON m.case_id = c.id AND m.seq = 1 \
     WHERE c.visitor_id = $1 AND c.chat_state != 'ended' ORDER BY c.id DESC LIMIT 1";

/// The message the visitor left earlier under this first message id, if any.
const LEFT_EARLIER: &str = "SELECT c.id FROM cases c \
     JOIN messages m ON m.case_id = c.id AND m.seq = 1 \
     WHERE c.visitor_id = $1 AND c.channel = 'message' AND m.client_id = $2";

const INSERT_CASE: &str = "INSERT INTO cases (visitor_id, customer_name, subject, location, \
     group_id, customer_email, answers, chat_state, channel, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id";

/// A new chat: the visitor (on their first chat) and the case with its first message,
/// queued. A retry of the same start (same token, same first message id) returns the
/// chat already started; another start while a chat is live is refused.
pub(super) struct StartChat {
    pub token: String,
    pub chat: NewChat,
}

impl StartChat {
    /// What to answer when the visitor has a live chat whose first message has `first`.
    fn live(
        &self,
        visitor: VisitorId,
        case: CaseId,
        first: Option<String>,
    ) -> StoreResult<Started> {
        if first.as_deref() == Some(self.chat.client_id.as_str()) {
            Ok(Started {
                visitor,
                case,
                new: false,
            })
        } else {
            Err(StoreError::AlreadyChatting)
        }
    }
}

impl Op for StartChat {
    type Output = Started;

    fn apply(&self, tx: &Transaction<'_>) -> rusqlite::Result<StoreResult<Started>> {
        let now = now_ms();
        let visitor = upsert_visitor(tx, &self.token, now)?;
        let live: Option<(CaseId, Option<String>)> = tx
            .prepare_cached(LIVE_CHAT)?
            .query_row([visitor], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        if let Some((case, first)) = live {
            return Ok(self.live(visitor, case, first));
        }
        let case = insert_case(tx, visitor, &self.chat, Channel::Chat, now)?;
        Ok(Ok(Started {
            visitor,
            case,
            new: true,
        }))
    }

    async fn apply_pg(&self, tx: &mut PgConnection) -> sqlx::Result<StoreResult<Started>> {
        let now = now_ms();
        let visitor = upsert_visitor_pg(tx, &self.token, now).await?;
        let live = sqlx::query(LIVE_CHAT)
            .bind(visitor)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = live {
            return Ok(self.live(visitor, row.try_get(0)?, row.try_get(1)?));
        }
        let case = insert_case_pg(tx, visitor, &self.chat, Channel::Chat, now).await?;
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
        let now = now_ms();
        let visitor = upsert_visitor(tx, &self.token, now)?;
        let earlier: Option<CaseId> = tx
            .prepare_cached(LEFT_EARLIER)?
            .query_row(params![visitor, self.message.client_id], |row| row.get(0))
            .optional()?;
        let (case, new) = match earlier {
            Some(case) => (case, false),
            None => (
                insert_case(tx, visitor, &self.message, Channel::Message, now)?,
                true,
            ),
        };
        Ok(Ok(Started { visitor, case, new }))
    }

    async fn apply_pg(&self, tx: &mut PgConnection) -> sqlx::Result<StoreResult<Started>> {
        let now = now_ms();
        let visitor = upsert_visitor_pg(tx, &self.token, now).await?;
        let earlier: Option<CaseId> = sqlx::query_scalar(LEFT_EARLIER)
            .bind(visitor)
            .bind(&self.message.client_id)
            .fetch_optional(&mut *tx)
            .await?;
        let (case, new) = match earlier {
            Some(case) => (case, false),
            None => (
                insert_case_pg(tx, visitor, &self.message, Channel::Message, now).await?,
                true,
            ),
        };
        Ok(Ok(Started { visitor, case, new }))
    }
}

/// Runs one statement that changes rows, on either database, and answers with whether
/// it changed exactly one. `$binds` are bound in order; `$rows` is the row it changes.
macro_rules! changes_one {
    ($name:ident, $sql:expr, |$op:ident| [$($bind:expr),* $(,)?], $rows:expr) => {
        impl Op for $name {
            type Output = bool;

            fn rows(&self) -> Rows {
                let $op = self;
                $rows
            }

            fn apply(&self, tx: &Transaction<'_>) -> rusqlite::Result<StoreResult<bool>> {
                let $op = self;
                let changed = tx.prepare_cached($sql)?.execute(params![$($bind),*])?;
                Ok(Ok(changed == 1))
            }

            async fn apply_pg(&self, tx: &mut PgConnection) -> sqlx::Result<StoreResult<bool>> {
                let $op = self;
                let done = sqlx::query($sql)$(.bind($bind))*.execute(&mut *tx).await?;
                Ok(Ok(done.rows_affected() == 1))
            }
        }
    };
}

/// Puts an agent in a queued chat. `false` when the chat is no longer queued.
pub(super) struct Assign {
    pub case: CaseId,
    pub agent: AgentId,
}

changes_one!(
    Assign,
    "UPDATE cases SET chat_state = 'active', agent_id = $1, offer_agent_id = NULL, \
     offer_expires_at = NULL WHERE id = $2 AND chat_state = 'queued'",
    |op| [op.agent, op.case],
    Rows::case(op.case)
);

/// Takes the agent out of a live chat and puts it back in the queue. `false` when the
/// agent was not in it (any more).
pub(super) struct Requeue {
    pub case: CaseId,
    pub agent: AgentId,
}

changes_one!(
    Requeue,
    "UPDATE cases SET chat_state = 'queued', agent_id = NULL \
     WHERE id = $1 AND chat_state = 'active' AND agent_id = $2",
    |op| [op.case, op.agent],
    Rows::case(op.case)
);

/// An agent's routing switch. `false` when there is no such agent.
pub(super) struct SetRouting {
    pub agent: AgentId,
    pub on: bool,
}

changes_one!(
    SetRouting,
    "UPDATE agents SET routing = $1 WHERE id = $2",
    |op| [op.on, op.agent],
    Rows::agent(op.agent)
);

/// Ends a chat. `None` when it had already ended; else the agent who was in it.
pub(super) struct EndChat {
    pub case: CaseId,
    pub by: EndedBy,
}

const END_CHAT: &str = "UPDATE cases SET chat_state = 'ended', ended_by = $1, \
     ended_by_name = $2, ended_at = $3, offer_agent_id = NULL, offer_expires_at = NULL \
     WHERE id = $4 AND chat_state != 'ended' RETURNING agent_id";

impl EndChat {
    /// How the end is stored: by whom, and the agent's name.
    fn by(&self) -> (&'static str, Option<&str>) {
        match &self.by {
            EndedBy::Customer => ("customer", None),
            EndedBy::Agent { name } => ("agent", Some(name.as_str())),
            EndedBy::Timeout => ("timeout", None),
        }
    }
}

impl Op for EndChat {
    type Output = Option<Option<AgentId>>;

    fn rows(&self) -> Rows {
        Rows::case(self.case)
    }

    fn apply(&self, tx: &Transaction<'_>) -> rusqlite::Result<StoreResult<Self::Output>> {
        let (kind, name) = self.by();
        let agent = tx
            .prepare_cached(END_CHAT)?
            .query_row(params![kind, name, now_ms(), self.case], |row| row.get(0))
            .optional()?;
        Ok(Ok(agent))
    }

    async fn apply_pg(&self, tx: &mut PgConnection) -> sqlx::Result<StoreResult<Self::Output>> {
        let (kind, name) = self.by();
        let agent = sqlx::query_scalar(END_CHAT)
            .bind(kind)
            .bind(name)
            .bind(now_ms())
            .bind(self.case)
            .fetch_optional(&mut *tx)
            .await?;
        Ok(Ok(agent))
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

const SET_OFFER: &str = "UPDATE cases SET offer_agent_id = $1, offer_expires_at = $2 WHERE id = $3";
const LOG_OFFER: &str = "INSERT INTO offer_log (case_id, agent_id, offered_at) VALUES ($1, $2, $3)";

impl Op for OpenOffer {
    type Output = ();

    fn rows(&self) -> Rows {
        Rows::case(self.case)
    }

    fn apply(&self, tx: &Transaction<'_>) -> rusqlite::Result<StoreResult<()>> {
        tx.prepare_cached(SET_OFFER)?
            .execute(params![self.agent, self.expires_at, self.case])?;
        tx.prepare_cached(LOG_OFFER)?
            .execute(params![self.case, self.agent, self.at])?;
        Ok(Ok(()))
    }

    async fn apply_pg(&self, tx: &mut PgConnection) -> sqlx::Result<StoreResult<()>> {
        sqlx::query(SET_OFFER)
            .bind(self.agent)
            .bind(self.expires_at)
            .bind(self.case)
            .execute(&mut *tx)
            .await?;
        sqlx::query(LOG_OFFER)
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

const CLEAR_OFFER: &str = "UPDATE cases SET offer_agent_id = NULL, offer_expires_at = NULL \
     WHERE id = $1 AND offer_agent_id = $2";
const CLOSE_LOGGED_OFFER: &str = "UPDATE offer_log SET outcome = $1, closed_at = $2 \
     WHERE case_id = $3 AND agent_id = $4 AND outcome IS NULL";

impl Op for CloseOffer {
    type Output = ();

    fn rows(&self) -> Rows {
        Rows::case(self.case)
    }

    fn apply(&self, tx: &Transaction<'_>) -> rusqlite::Result<StoreResult<()>> {
        tx.prepare_cached(CLEAR_OFFER)?
            .execute(params![self.case, self.agent])?;
        tx.prepare_cached(CLOSE_LOGGED_OFFER)?.execute(params![
            outcome_name(self.outcome),
            self.at,
            self.case,
            self.agent
        ])?;
        Ok(Ok(()))
    }

    async fn apply_pg(&self, tx: &mut PgConnection) -> sqlx::Result<StoreResult<()>> {
        sqlx::query(CLEAR_OFFER)
            .bind(self.case)
            .bind(self.agent)
            .execute(&mut *tx)
            .await?;
        sqlx::query(CLOSE_LOGGED_OFFER)
            .bind(outcome_name(self.outcome))
            .bind(self.at)
            .bind(self.case)
            .bind(self.agent)
            .execute(&mut *tx)
            .await?;
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

    async fn apply_pg(&self, _tx: &mut PgConnection) -> sqlx::Result<StoreResult<()>> {
        Ok(Ok(()))
    }
}

fn upsert_visitor(tx: &Transaction<'_>, token: &str, now: Millis) -> rusqlite::Result<VisitorId> {
    tx.prepare_cached(UPSERT_VISITOR)?
        .query_row(params![secret::digest(token), now], |row| row.get(0))
}

async fn upsert_visitor_pg(
    tx: &mut PgConnection,
    token: &str,
    now: Millis,
) -> sqlx::Result<VisitorId> {
    sqlx::query_scalar(UPSERT_VISITOR)
        .bind(secret::digest(token))
        .bind(now)
        .fetch_one(&mut *tx)
        .await
}

/// How a new case is stored: its chat state, channel and the answers as JSON.
fn case_columns(chat: &NewChat, channel: Channel) -> (&'static str, &'static str, String) {
    let (state, channel) = match channel {
        Channel::Chat => ("queued", "chat"),
        Channel::Message => ("ended", "message"),
    };
    // A list of plain structs always serialises.
    let answers = serde_json::to_string(&chat.answers).unwrap_or_else(|_| "[]".to_owned());
    (state, channel, answers)
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
    let (state, channel, answers) = case_columns(chat, channel);
    let case: CaseId = tx.prepare_cached(INSERT_CASE)?.query_row(
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
    let author = first_author(chat);
    let (kind, agent_id, name) = author_columns(&author);
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

async fn insert_case_pg(
    tx: &mut PgConnection,
    visitor: VisitorId,
    chat: &NewChat,
    channel: Channel,
    now: Millis,
) -> sqlx::Result<CaseId> {
    let (state, channel, answers) = case_columns(chat, channel);
    let case: CaseId = sqlx::query_scalar(INSERT_CASE)
        .bind(visitor)
        .bind(&chat.customer_name)
        .bind(&chat.subject)
        .bind(&chat.location)
        .bind(chat.group)
        .bind(&chat.email)
        .bind(answers)
        .bind(state)
        .bind(channel)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
    let author = first_author(chat);
    let (kind, agent_id, name) = author_columns(&author);
    sqlx::query(INSERT_MESSAGE)
        .bind(case)
        .bind(1_i64)
        .bind(&chat.client_id)
        .bind(kind)
        .bind(agent_id)
        .bind(name)
        .bind(&chat.body)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    Ok(case)
}

/// Who wrote a case's first message: its customer.
fn first_author(chat: &NewChat) -> Author {
    Author::Customer {
        name: chat.customer_name.clone(),
    }
}
