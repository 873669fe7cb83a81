//! Storage: every case, message, agent and session Parlor keeps, in SQLite through sqlx.
//! A message is committed here before anyone is told about it.
//!
//! Every read or write of a case goes through [`Store::case_for`], which scopes it by
//! the caller, so no handler can forget whose case it is.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use parlor_protocol::{
    AgentAccount, AgentId, AgentProfile, Answer, Author, CASES_PAGE, CaseChat, CaseFilter, CaseId,
    CaseStatus, CaseSummary, Channel, Chat, ChatMessage, ChatState, EndedBy, FIRST_MESSAGE_CHARS,
    Group, GroupId, Macro, Millis, OfferClosed, OfferLogEntry, PAGE_BYTES, PAGE_MESSAGES, Seq,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::passwords::{DUMMY_HASH, Passwords};
use crate::secret;

mod chats;
mod writer;

use chats::{
    Append, Assign, CloseOffer, EndChat, LeaveMessage, Mark, OpenOffer, Presence, Requeue,
    SetRouting, StartChat,
};
pub use writer::Queued;
use writer::{Op, Writes};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database: {0}")]
    Writer(#[from] rusqlite::Error),
    #[error("migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("password hashing: {0}")]
    Password(String),
    #[error("too many passwords are being checked at once")]
    PasswordsBusy,
    #[error("Parlor needs at least one active admin")]
    LastAdmin,
    #[error("no such case")]
    CaseNotFound,
    #[error("the chat has ended")]
    ChatEnded,
    #[error("the agent is not in this chat")]
    NotInChat,
    #[error("that message id was already used by someone else")]
    ClientIdTaken,
    #[error("an agent with that email already exists")]
    EmailTaken,
    #[error("this visitor already has a live chat")]
    AlreadyChatting,
    #[error("that name is already used")]
    NameTaken,
    #[error("the case holds {0} messages, the most it keeps")]
    CaseFull(Seq),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Who is asking: the one identity every case query is scoped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    Visitor(VisitorId),
    Agent(AgentId),
}

pub type VisitorId = i64;

/// An agent as routing sees them.
#[derive(Clone, Debug)]
pub struct AgentRecord {
    pub profile: AgentProfile,
    pub routing: bool,
    pub capacity: u32,
    pub groups: Vec<GroupId>,
}

/// A case as stored, for the server's own decisions.
#[derive(Clone, Debug)]
pub struct CaseRecord {
    pub summary: CaseSummary,
    pub visitor_id: VisitorId,
    pub agent_id: Option<AgentId>,
    pub location: String,
    pub group: Option<String>,
    pub group_id: Option<GroupId>,
    pub offer: Option<(AgentId, Millis)>,
}

/// A chat the visitor started (or had started: `new` is false for a retry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Started {
    pub visitor: VisitorId,
    pub case: CaseId,
    pub new: bool,
}

/// What the pre-chat form gives.
#[derive(Clone, Debug)]
pub struct NewChat {
    pub customer_name: String,
    pub subject: String,
    pub location: String,
    pub client_id: String,
    pub body: String,
    pub group: Option<GroupId>,
    pub email: Option<String>,
    /// Answers to the admin's own questions, with the questions as asked.
    pub answers: Vec<Answer>,
}

pub fn now_ms() -> Millis {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Millis::try_from(since_epoch.as_millis()).unwrap_or(Millis::MAX)
}

/// The write pool's connection during its turn.
struct Writing {
    conn: sqlx::pool::PoolConnection<sqlx::Sqlite>,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl std::ops::Deref for Writing {
    type Target = sqlx::SqliteConnection;
    fn deref(&self) -> &Self::Target {
        &self.conn
    }
}

impl std::ops::DerefMut for Writing {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.conn
    }
}

#[derive(Clone)]
pub struct Store {
    /// The connection for the writes outside the chat queue (accounts, settings,
    /// groups), in turn with the writer's own (see [`writer::WriteTurn`]).
    write: SqlitePool,
    turn: writer::WriteTurn,
    /// Readers see every committed write (WAL) and never block the writer.
    read: SqlitePool,
    /// The connection that copies the write-ahead log into the database, off the
    /// writer's path (see [`writer::run_checkpoints`]).
    checkpoint: SqlitePool,
    /// The chat writes, committed in groups by the one writer (see [`writer`]).
    writes: Writes,
    /// How the writer publishes each new message once committed (see
    /// [`Store::publish_with`]).
    publish: writer::Publish,
    /// Argon2 hashing, a few at a time.
    passwords: Arc<Passwords>,
    /// The most messages of customers and agents one case keeps.
    case_cap: Seq,
}

/// The database page size, for a new database. A commit writes every page it changed
/// to the log whole, and a message changes two index pages far apart (its case's place
/// in each); at 1 KiB rather than SQLite's 4 KiB the log takes a quarter of the bytes.
/// A database made with another page size keeps it.
const PAGE_BYTES_ON_DISK: u32 = 1024;

/// How many messages of customers and agents a case keeps unless configured otherwise:
/// hours of lively chat, and a bound on what one chat can make the server hold.
pub const CASE_MESSAGES: u32 = 5_000;

const ACCOUNT_COLUMNS: &str = "id, name, email, is_admin, active, capacity";

const CASE_COLUMNS: &str = "c.id, c.visitor_id, c.customer_name, c.subject, c.location, \
     c.chat_state, c.agent_id, a.name AS agent_name, c.ended_by, c.ended_by_name, \
     c.offer_agent_id, c.offer_expires_at, c.created_at, c.group_id, g.name AS group_name, \
     c.status, c.customer_email, c.answers, c.channel, c.customer_gone_at";
const CASE_FROM: &str = "cases c LEFT JOIN agents a ON a.id = c.agent_id \
     LEFT JOIN groups g ON g.id = c.group_id";

impl Store {
    /// Opens (creating if needed) the SQLite database at `url` and migrates it.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // A message is acknowledged only once it would survive a power cut.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            .page_size(PAGE_BYTES_ON_DISK);
        let one = || {
            SqlitePoolOptions::new()
                .max_connections(1)
                .test_before_acquire(false)
        };
        // Checkpoints run off every write path: see [`writer::run_checkpoints`].
        let write = one()
            .connect_with(options.clone().pragma("wal_autocheckpoint", "0"))
            .await?;
        sqlx::migrate!("./migrations").run(&write).await?;
        let checkpoint = one().connect_with(options.clone()).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .connect_with(options.clone().read_only(true))
            .await?;
        let publish = writer::Publish::default();
        let turn = writer::WriteTurn::default();
        let path = options.get_filename().to_owned();
        let own = tokio::task::spawn_blocking(move || writer::connect(&path))
            .await
            .map_err(|_| StoreError::Database(sqlx::Error::WorkerCrashed))??;
        let writes = writer::start(own, turn.clone(), checkpoint.clone(), publish.clone())
            .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        Ok(Self {
            write,
            turn,
            read,
            checkpoint,
            writes,
            publish,
            passwords: Arc::default(),
            case_cap: Seq::from(CASE_MESSAGES),
        })
    }

    /// How each new message is published once committed: the writer calls `publish`
    /// right after each commit, for its new messages in `seq` order. Set once, when
    /// Parlor starts; a store without it publishes nothing (tests of the store alone).
    pub fn publish_with(&self, publish: impl Fn(&ChatMessage) + Send + Sync + 'static) {
        let _ = self.publish.set(Box::new(publish));
    }

    /// Sets how many messages of customers and agents one case keeps.
    #[must_use]
    pub fn with_case_cap(mut self, messages: u32) -> Self {
        self.case_cap = Seq::from(messages);
        self
    }

    /// Waits for writes in progress, then closes the database.
    pub async fn close(&self) {
        let _turn = self.turn.lock().await;
        self.write.close().await;
        self.read.close().await;
        self.checkpoint.close().await;
    }

    /// Opens the database file `parlor.db` inside `dir`, creating the folder.
    pub async fn open_dir(dir: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        let url = format!("sqlite://{}", dir.join("parlor.db").display());
        Self::open(&url).await
    }

    /// The write pool's connection, once it is its turn (the writer's group in progress
    /// commits first).
    async fn writing(&self) -> StoreResult<Writing> {
        let turn = self.turn.clone().lock_owned().await;
        Ok(Writing {
            conn: self.write.acquire().await?,
            _turn: turn,
        })
    }

    // ----------------------------------------------------------------------- agents

    pub async fn agent_count(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM agents")
            .fetch_one(&self.read)
            .await?)
    }

    /// A new account with the default capacity and no groups.
    pub async fn create_agent(
        &self,
        email: &str,
        name: &str,
        password: &str,
        is_admin: bool,
    ) -> StoreResult<AgentId> {
        let hash = self.passwords.hash(password.to_owned()).await?;
        let result = sqlx::query(
            "INSERT INTO agents (email, name, password_hash, is_admin, created_at) \
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(email.trim())
        .bind(name.trim())
        .bind(hash)
        .bind(is_admin)
        .bind(now_ms())
        .fetch_one(&mut *self.writing().await?)
        .await;
        match result {
            Ok(row) => Ok(row.get(0)),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::EmailTaken),
            Err(e) => Err(e.into()),
        }
    }

    /// The agent with this email and password, if both are right and the account is active.
    pub async fn check_login(&self, email: &str, password: &str) -> StoreResult<Option<AgentId>> {
        let row = sqlx::query("SELECT id, password_hash FROM agents WHERE email = ? AND active")
            .bind(email.trim())
            .fetch_optional(&self.read)
            .await?;
        let Some(row) = row else {
            // Spend the same time as a real check, so timing does not reveal accounts.
            let _ = self
                .passwords
                .verify(password.to_owned(), DUMMY_HASH.to_owned())
                .await;
            return Ok(None);
        };
        let hash: String = row.get("password_hash");
        let ok = self.passwords.verify(password.to_owned(), hash).await?;
        Ok(ok.then(|| row.get("id")))
    }

    pub async fn agent(&self, id: AgentId) -> StoreResult<Option<AgentRecord>> {
        let row = sqlx::query(
            "SELECT id, name, email, is_admin, routing, capacity FROM agents \
             WHERE id = ? AND active",
        )
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(AgentRecord {
            profile: AgentProfile {
                id: row.get("id"),
                name: row.get("name"),
                email: row.get("email"),
                is_admin: row.get("is_admin"),
            },
            routing: row.get("routing"),
            capacity: capacity_of(&row),
            groups: self.groups_of(id).await?,
        }))
    }

    /// The agent's name, or an empty one for an account that is gone.
    pub async fn agent_name(&self, id: AgentId) -> StoreResult<String> {
        Ok(
            sqlx::query_scalar::<_, String>("SELECT name FROM agents WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.read)
                .await?
                .unwrap_or_default(),
        )
    }

    async fn groups_of(&self, agent: AgentId) -> StoreResult<Vec<GroupId>> {
        Ok(sqlx::query_scalar(
            "SELECT group_id FROM agent_groups WHERE agent_id = ? ORDER BY group_id",
        )
        .bind(agent)
        .fetch_all(&self.read)
        .await?)
    }

    /// Every account, active or not, for the admin's agents page.
    pub async fn accounts(&self) -> StoreResult<Vec<AgentAccount>> {
        let rows = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM agents WHERE removed_at IS NULL ORDER BY name COLLATE NOCASE"
        ))
        .fetch_all(&self.read)
        .await?;
        let mut accounts = Vec::with_capacity(rows.len());
        for row in &rows {
            accounts.push(self.account_from_row(row).await?);
        }
        Ok(accounts)
    }

    pub async fn account(&self, id: AgentId) -> StoreResult<Option<AgentAccount>> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM agents WHERE id = ? AND removed_at IS NULL"
        ))
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        match row {
            Some(row) => Ok(Some(self.account_from_row(&row).await?)),
            None => Ok(None),
        }
    }

    async fn account_from_row(&self, row: &sqlx::sqlite::SqliteRow) -> StoreResult<AgentAccount> {
        let id: AgentId = row.get("id");
        Ok(AgentAccount {
            id,
            name: row.get("name"),
            email: row.get("email"),
            is_admin: row.get("is_admin"),
            active: row.get("active"),
            capacity: capacity_of(row),
            groups: self.groups_of(id).await?,
            online: false,
        })
    }

    /// Changes an account: its details, role, capacity, groups, whether it is active and,
    /// when given, its password. A deactivated account's sessions end here.
    pub async fn update_account(
        &self,
        account: &AgentAccount,
        password: Option<&str>,
    ) -> StoreResult<bool> {
        let hash = match password {
            Some(password) => Some(self.passwords.hash(password.to_owned()).await?),
            None => None,
        };
        let mut writing = self.writing().await?;
        let mut tx = sqlx::Connection::begin(&mut *writing).await?;
        let admins_before = active_admins(&mut tx).await?;
        let done = sqlx::query(
            "UPDATE agents SET name = ?, email = ?, is_admin = ?, active = ?, capacity = ?, \
             password_hash = COALESCE(?, password_hash) WHERE id = ?",
        )
        .bind(&account.name)
        .bind(&account.email)
        .bind(account.is_admin)
        .bind(account.active)
        .bind(i64::from(account.capacity))
        .bind(hash)
        .bind(account.id)
        .execute(&mut *tx)
        .await
        .map_err(name_taken)
        .map_err(|e| match e {
            StoreError::NameTaken => StoreError::EmailTaken,
            other => other,
        })?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM agent_groups WHERE agent_id = ?")
            .bind(account.id)
            .execute(&mut *tx)
            .await?;
        for group in &account.groups {
            sqlx::query("INSERT OR IGNORE INTO agent_groups (agent_id, group_id) VALUES (?, ?)")
                .bind(account.id)
                .bind(group)
                .execute(&mut *tx)
                .await?;
        }
        if !account.active {
            sqlx::query("DELETE FROM sessions WHERE agent_id = ?")
                .bind(account.id)
                .execute(&mut *tx)
                .await?;
        }
        // Checked inside the write, so two admins demoting each other at once cannot
        // both succeed (the writes take turns).
        if admins_before > 0 && active_admins(&mut tx).await? == 0 {
            return Err(StoreError::LastAdmin);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Removes an account: it is switched off and can no longer sign in (its sessions
    /// end here), leaves the lists and its groups, and its email is set aside so a new
    /// account can use it; the cases it worked keep its name. `false` when there is no
    /// such agent. The last active admin cannot be removed.
    pub async fn remove_agent(&self, id: AgentId) -> StoreResult<bool> {
        let mut writing = self.writing().await?;
        let mut tx = sqlx::Connection::begin(&mut *writing).await?;
        let admins_before = active_admins(&mut tx).await?;
        let done = sqlx::query(
            "UPDATE agents SET active = 0, routing = 0, removed_at = ?, \
             email = email || ' (removed ' || id || ')' WHERE id = ? AND removed_at IS NULL",
        )
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        for sql in [
            "DELETE FROM agent_groups WHERE agent_id = ?",
            "DELETE FROM sessions WHERE agent_id = ?",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        if admins_before > 0 && active_admins(&mut tx).await? == 0 {
            return Err(StoreError::LastAdmin);
        }
        tx.commit().await?;
        Ok(true)
    }

    // ----------------------------------------------------------------------- groups

    pub async fn groups(&self) -> StoreResult<Vec<Group>> {
        let rows: Vec<(GroupId, String)> =
            sqlx::query_as("SELECT id, name FROM groups ORDER BY name COLLATE NOCASE")
                .fetch_all(&self.read)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(id, name)| Group { id, name })
            .collect())
    }

    pub async fn create_group(&self, name: &str) -> StoreResult<Group> {
        let id = sqlx::query_scalar("INSERT INTO groups (name) VALUES (?) RETURNING id")
            .bind(name)
            .fetch_one(&mut *self.writing().await?)
            .await
            .map_err(name_taken)?;
        Ok(Group {
            id,
            name: name.to_owned(),
        })
    }

    /// `false` when there is no such group.
    pub async fn rename_group(&self, id: GroupId, name: &str) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE groups SET name = ? WHERE id = ?")
            .bind(name)
            .bind(id)
            .execute(&mut *self.writing().await?)
            .await
            .map_err(name_taken)?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes a group: its agents stay (without it), and chats for it, waiting or past,
    /// are for no group from now on. `false` when there is no such group.
    pub async fn delete_group(&self, id: GroupId) -> StoreResult<bool> {
        let mut writing = self.writing().await?;
        let mut tx = sqlx::Connection::begin(&mut *writing).await?;
        sqlx::query("UPDATE cases SET group_id = NULL WHERE group_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM agent_groups WHERE group_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM groups WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    // -------------------------------------------------------------------- offer log

    /// Records a screen pop opened on `agent`'s screen, to run out at `expires_at`.
    pub async fn open_offer(
        &self,
        case: CaseId,
        agent: AgentId,
        expires_at: Millis,
    ) -> StoreResult<Queued<()>> {
        let at = now_ms();
        self.queue(OpenOffer {
            case,
            agent,
            expires_at,
            at,
        })
        .await
    }

    /// Records how the open screen pop of `case` on `agent`'s screen ended.
    pub async fn close_offer(
        &self,
        case: CaseId,
        agent: AgentId,
        outcome: OfferClosed,
    ) -> StoreResult<Queued<()>> {
        let at = now_ms();
        self.queue(CloseOffer {
            case,
            agent,
            outcome,
            at,
        })
        .await
    }

    pub async fn offer_log(&self, case: CaseId) -> StoreResult<Vec<OfferLogEntry>> {
        let rows = sqlx::query(
            "SELECT a.name, o.offered_at, o.closed_at, o.outcome FROM offer_log o \
             JOIN agents a ON a.id = o.agent_id WHERE o.case_id = ? ORDER BY o.id",
        )
        .bind(case)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(|row| OfferLogEntry {
                agent_name: row.get("name"),
                offered_at: row.get("offered_at"),
                closed_at: row.get("closed_at"),
                outcome: row
                    .get::<Option<&str>, _>("outcome")
                    .and_then(outcome_from_name),
            })
            .collect())
    }

    pub async fn set_routing(&self, agent: AgentId, on: bool) -> StoreResult<()> {
        self.queue_routing(agent, on).await?.committed().await
    }

    /// Queues an agent's routing switch without waiting for the commit.
    pub async fn queue_routing(&self, agent: AgentId, on: bool) -> StoreResult<Queued<()>> {
        self.queue(SetRouting { agent, on }).await
    }

    // --------------------------------------------------------------------- sessions

    /// Starts a session and returns the cookie's token.
    pub async fn create_session(&self, agent: AgentId, lifetime: Duration) -> StoreResult<String> {
        let token = secret::token();
        let expires = now_ms() + lifetime.as_millis() as Millis;
        sqlx::query("INSERT INTO sessions (token_hash, agent_id, expires_at) VALUES (?, ?, ?)")
            .bind(secret::digest(&token))
            .bind(agent)
            .bind(expires)
            .execute(&mut *self.writing().await?)
            .await?;
        Ok(token)
    }

    pub async fn session_agent(&self, token: &str) -> StoreResult<Option<AgentRecord>> {
        let id: Option<AgentId> = sqlx::query_scalar(
            "SELECT agent_id FROM sessions WHERE token_hash = ? AND expires_at > ?",
        )
        .bind(secret::digest(token))
        .bind(now_ms())
        .fetch_optional(&self.read)
        .await?;
        match id {
            Some(id) => self.agent(id).await,
            None => Ok(None),
        }
    }

    /// Ends the session of this cookie token; returns its digest (for closing its sockets).
    pub async fn delete_session(&self, token: &str) -> StoreResult<String> {
        let digest = secret::digest(token);
        sqlx::query("DELETE FROM sessions WHERE token_hash = ?")
            .bind(&digest)
            .execute(&mut *self.writing().await?)
            .await?;
        Ok(digest)
    }

    /// Ends every session of `agent` but the one of `keep` (a cookie token); returns the
    /// digests of those ended.
    pub async fn end_sessions_of(
        &self,
        agent: AgentId,
        keep: Option<&str>,
    ) -> StoreResult<Vec<String>> {
        let keep = keep.map(secret::digest).unwrap_or_default();
        Ok(sqlx::query_scalar(
            "DELETE FROM sessions WHERE agent_id = ? AND token_hash <> ? RETURNING token_hash",
        )
        .bind(agent)
        .bind(keep)
        .fetch_all(&mut *self.writing().await?)
        .await?)
    }

    /// Forgets the sessions that expired by `now`; returns their digests.
    pub async fn purge_expired_sessions(&self, now: Millis) -> StoreResult<Vec<String>> {
        Ok(
            sqlx::query_scalar("DELETE FROM sessions WHERE expires_at <= ? RETURNING token_hash")
                .bind(now)
                .fetch_all(&mut *self.writing().await?)
                .await?,
        )
    }

    // --------------------------------------------------------------------- visitors

    pub async fn visitor_by_token(&self, token: &str) -> StoreResult<Option<VisitorId>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM visitors WHERE token_hash = ?")
                .bind(secret::digest(token))
                .fetch_optional(&self.read)
                .await?,
        )
    }

    /// The visitor's chat that has not ended, if any.
    pub async fn live_case_of(&self, visitor: VisitorId) -> StoreResult<Option<CaseId>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM cases WHERE visitor_id = ? AND chat_state != 'ended' \
             ORDER BY id DESC LIMIT 1",
        )
        .bind(visitor)
        .fetch_optional(&self.read)
        .await?)
    }

    /// Creates the visitor (first chat) and the case with its first message, queued.
    /// A retry of the same start (same token, same first message id) returns the chat
    /// already started.
    pub async fn start_chat(&self, token: &str, chat: &NewChat) -> StoreResult<Started> {
        self.write(StartChat {
            token: token.to_owned(),
            chat: chat.clone(),
        })
        .await
    }

    /// The offline form: a case with the customer's message and no chat, for an answer
    /// by email. A retry (same `client_id`) returns the case already made.
    pub async fn leave_message(&self, token: &str, message: &NewChat) -> StoreResult<Started> {
        self.write(LeaveMessage {
            token: token.to_owned(),
            message: message.clone(),
        })
        .await
    }

    // ------------------------------------------------------------------------ cases

    /// The case, if `caller` may see it: a visitor sees only their own cases; an agent
    /// sees every case (read-only entry is for any agent).
    pub async fn case_for(&self, caller: Caller, case: CaseId) -> StoreResult<CaseRecord> {
        let record = self.case(case).await?.ok_or(StoreError::CaseNotFound)?;
        match caller {
            Caller::Visitor(visitor) if record.visitor_id != visitor => {
                Err(StoreError::CaseNotFound)
            }
            _ => Ok(record),
        }
    }

    /// A case without a caller: only for the server's own decisions (routing).
    pub async fn case(&self, case: CaseId) -> StoreResult<Option<CaseRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {CASE_COLUMNS} FROM {CASE_FROM} WHERE c.id = ?"
        ))
        .bind(case)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|row| case_record(&row)))
    }

    /// The case and the latest page of its messages after `since`, if `caller` may see
    /// it.
    pub async fn chat_for(&self, caller: Caller, case: CaseId, since: Seq) -> StoreResult<Chat> {
        let record = self.case_for(caller, case).await?;
        let messages = self.page(case, since, Seq::MAX).await?;
        Ok(Chat {
            case: record.summary,
            messages,
        })
    }

    /// The page of a case's messages just before `before`, if `caller` may see the case.
    pub async fn earlier_for(
        &self,
        caller: Caller,
        case: CaseId,
        before: Seq,
    ) -> StoreResult<Vec<ChatMessage>> {
        self.case_for(caller, case).await?;
        self.page(case, 0, before).await
    }

    /// The latest messages with `after < seq < before`, in `seq` order: at most
    /// [`PAGE_MESSAGES`], and no more once their text passes [`PAGE_BYTES`] (at least
    /// one). Newest first from the index, so a long case costs no more than a short one.
    async fn page(&self, case: CaseId, after: Seq, before: Seq) -> StoreResult<Vec<ChatMessage>> {
        let rows = sqlx::query(
            "SELECT case_id, seq, client_id, author_kind, agent_id, author_name, body, sent_at \
             FROM messages WHERE case_id = ? AND seq > ? AND seq < ? ORDER BY seq DESC LIMIT ?",
        )
        .bind(case)
        .bind(after)
        .bind(before)
        .bind(PAGE_MESSAGES as i64)
        .fetch_all(&self.read)
        .await?;
        let mut bytes = 0;
        let mut page: Vec<ChatMessage> = rows
            .iter()
            .map(message_from_row)
            .take_while(|m| {
                let first = bytes == 0;
                bytes += m.body.len().max(1);
                first || bytes <= PAGE_BYTES
            })
            .collect();
        page.reverse();
        Ok(page)
    }

    /// The summaries of these cases with the start of each one's first message (at most
    /// [`FIRST_MESSAGE_CHARS`] characters), by case: what the waiting list shows, in one
    /// read.
    pub async fn waiting_summaries(
        &self,
        ids: &[CaseId],
    ) -> StoreResult<HashMap<CaseId, (CaseSummary, String)>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let marks = vec!["?"; ids.len()].join(", ");
        let sql = format!(
            "SELECT {CASE_COLUMNS}, COALESCE(substr(m.body, 1, {FIRST_MESSAGE_CHARS}), '') AS first \
             FROM {CASE_FROM} LEFT JOIN messages m ON m.case_id = c.id AND m.seq = 1 \
             WHERE c.id IN ({marks})"
        );
        let mut query = sqlx::query(&sql);
        for id in ids {
            query = query.bind(id);
        }
        let rows = query.fetch_all(&self.read).await?;
        Ok(rows
            .iter()
            .map(|row| {
                let summary = case_record(row).summary;
                (summary.id, (summary, row.get("first")))
            })
            .collect())
    }

    /// The chats an agent is in.
    pub async fn active_cases_of(&self, agent: AgentId) -> StoreResult<Vec<CaseId>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM cases WHERE agent_id = ? AND chat_state = 'active' ORDER BY id",
        )
        .bind(agent)
        .fetch_all(&self.read)
        .await?)
    }

    /// Chats waiting for an agent, oldest first, with the offer that was open, if any.
    pub async fn queued_cases(&self) -> StoreResult<Vec<CaseRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {CASE_COLUMNS} FROM {CASE_FROM} WHERE c.chat_state = 'queued' ORDER BY c.id"
        ))
        .fetch_all(&self.read)
        .await?;
        Ok(rows.iter().map(case_record).collect())
    }

    /// Appends a message by `author`. A retry with a `client_id` already stored in the
    /// case returns the stored message and `false`, storing nothing new. Returns once the
    /// message is committed (and published); messages arriving together share one
    /// commit. With `member` set, the chat must be live with that agent in it
    /// ([`StoreError::NotInChat`]).
    pub async fn append_message(
        &self,
        case: CaseId,
        client_id: &str,
        author: &Author,
        body: &str,
        member: Option<AgentId>,
    ) -> StoreResult<(ChatMessage, bool)> {
        self.queue_message(case, client_id, author, body, member)
            .await?
            .committed()
            .await
    }

    /// Like [`Store::append_message`], without waiting for the commit: messages queued
    /// one after another commit (and are published) in that order.
    pub async fn queue_message(
        &self,
        case: CaseId,
        client_id: &str,
        author: &Author,
        body: &str,
        member: Option<AgentId>,
    ) -> StoreResult<Queued<(ChatMessage, bool)>> {
        let append = Append {
            case,
            client_id: client_id.to_owned(),
            author: author.clone(),
            body: body.to_owned(),
            cap: self.case_cap,
            member,
        };
        self.queue(append).await
    }

    /// Commits `op` with whatever else is waiting, and gives its outcome.
    async fn write<O: Op>(&self, op: O) -> StoreResult<O::Output> {
        self.queue(op).await?.committed().await
    }

    /// Queues `op` behind every write queued before it, without waiting for the commit:
    /// the caller awaits [`Queued::committed`] when it needs the outcome.
    async fn queue<O: Op>(&self, op: O) -> StoreResult<Queued<O::Output>> {
        writer::queue(&self.writes, op).await
    }

    /// Records that `who`'s last socket closed at `since`, or that one is back (`None`).
    async fn set_gone(&self, who: Presence, since: Option<Millis>) -> StoreResult<()> {
        self.write(Mark { who, since }).await
    }

    /// Puts an agent in a queued chat. `false` when the chat is no longer queued.
    /// Queued without waiting for the commit (routing goes on deciding meanwhile).
    pub async fn queue_assign(&self, case: CaseId, agent: AgentId) -> StoreResult<Queued<bool>> {
        self.queue(Assign { case, agent }).await
    }

    /// Ends a chat. `None` when it had already ended; else the agent who was in it.
    pub async fn end_chat(
        &self,
        case: CaseId,
        by: &EndedBy,
    ) -> StoreResult<Option<Option<AgentId>>> {
        self.write(EndChat {
            case,
            by: by.clone(),
        })
        .await
    }

    /// Takes the agent out of a live chat and puts it back in the queue. `false` when
    /// the agent was not in it (any more).
    pub async fn requeue(&self, case: CaseId, agent: AgentId) -> StoreResult<bool> {
        self.write(Requeue { case, agent }).await
    }

    /// The case fields an agent edits. `false` when there is no such case.
    pub async fn update_case(
        &self,
        case: CaseId,
        status: CaseStatus,
        subject: &str,
        group: Option<GroupId>,
    ) -> StoreResult<bool> {
        let done =
            sqlx::query("UPDATE cases SET status = ?, subject = ?, group_id = ? WHERE id = ?")
                .bind(status_name(status))
                .bind(subject)
                .bind(group)
                .bind(case)
                .execute(&mut *self.writing().await?)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The most recent chat cases, newest first.
    pub async fn recent_cases(&self, filter: &CaseFilter) -> StoreResult<Vec<CaseSummary>> {
        let mut sql = format!("SELECT {CASE_COLUMNS} FROM {CASE_FROM} WHERE 1 = 1");
        if filter.status.is_some() {
            sql.push_str(" AND c.status = ?");
        }
        sql.push_str(match filter.chat {
            None => "",
            Some(CaseChat::Waiting) => " AND c.channel = 'chat' AND c.chat_state = 'queued'",
            Some(CaseChat::Live) => " AND c.channel = 'chat' AND c.chat_state = 'active'",
            Some(CaseChat::Ended) => " AND c.channel = 'chat' AND c.chat_state = 'ended'",
            Some(CaseChat::Message) => " AND c.channel = 'message'",
        });
        let words = filter.q.as_deref().map(like_pattern);
        if words.is_some() {
            sql.push_str(
                " AND (c.customer_name LIKE ? ESCAPE '\\' OR c.subject LIKE ? ESCAPE '\\' \
                 OR COALESCE(c.customer_email, '') LIKE ? ESCAPE '\\')",
            );
        }
        if filter.before.is_some() {
            sql.push_str(" AND c.id < ?");
        }
        sql.push_str(" ORDER BY c.id DESC LIMIT ?");
        // Bound in the order the clauses were written.
        let mut query = sqlx::query(&sql);
        if let Some(status) = filter.status {
            query = query.bind(status_name(status));
        }
        if let Some(words) = &words {
            query = query
                .bind(words.clone())
                .bind(words.clone())
                .bind(words.clone());
        }
        if let Some(before) = filter.before {
            query = query.bind(before);
        }
        let rows = query.bind(CASES_PAGE as i64).fetch_all(&self.read).await?;
        Ok(rows.iter().map(|r| case_record(r).summary).collect())
    }

    /// Records that the customer's last widget for the case closed (or that one is back).
    pub async fn set_customer_gone(&self, case: CaseId, since: Option<Millis>) -> StoreResult<()> {
        self.set_gone(Presence::Customer(case), since).await
    }

    /// Records that the agent's last console closed (or that one is back).
    pub async fn set_agent_gone(&self, agent: AgentId, since: Option<Millis>) -> StoreResult<()> {
        self.set_gone(Presence::Agent(agent), since).await
    }

    /// Live chats whose customer has been gone since `before` or longer.
    pub async fn chats_idle_since(&self, before: Millis) -> StoreResult<Vec<CaseId>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM cases WHERE chat_state != 'ended' \
             AND customer_gone_at IS NOT NULL AND customer_gone_at <= ?",
        )
        .bind(before)
        .fetch_all(&self.read)
        .await?)
    }

    /// Agents whose consoles have all been gone since `before` or longer.
    pub async fn agents_gone_since(&self, before: Millis) -> StoreResult<Vec<AgentId>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM agents WHERE gone_at IS NOT NULL AND gone_at <= ?")
                .bind(before)
                .fetch_all(&self.read)
                .await?,
        )
    }

    /// At start nobody is connected: every live chat's customer and every agent in a
    /// chat count as gone from now, unless they were gone already.
    pub async fn mark_everyone_gone(&self, now: Millis) -> StoreResult<()> {
        sqlx::query(
            "UPDATE cases SET customer_gone_at = ? \
             WHERE chat_state != 'ended' AND customer_gone_at IS NULL",
        )
        .bind(now)
        .execute(&mut *self.writing().await?)
        .await?;
        sqlx::query(
            "UPDATE agents SET gone_at = ? WHERE gone_at IS NULL \
             AND id IN (SELECT agent_id FROM cases WHERE chat_state = 'active')",
        )
        .bind(now)
        .execute(&mut *self.writing().await?)
        .await?;
        Ok(())
    }

    // ----------------------------------------------------------------------- macros

    pub async fn macros(&self) -> StoreResult<Vec<Macro>> {
        let rows: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT id, name, body FROM macros ORDER BY name COLLATE NOCASE")
                .fetch_all(&self.read)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(id, name, body)| Macro { id, name, body })
            .collect())
    }

    pub async fn create_macro(&self, name: &str, body: &str) -> StoreResult<Macro> {
        let now = now_ms();
        let id = sqlx::query_scalar(
            "INSERT INTO macros (name, body, created_at, updated_at) VALUES (?, ?, ?, ?) \
             RETURNING id",
        )
        .bind(name)
        .bind(body)
        .bind(now)
        .bind(now)
        .fetch_one(&mut *self.writing().await?)
        .await
        .map_err(name_taken)?;
        Ok(Macro {
            id,
            name: name.to_owned(),
            body: body.to_owned(),
        })
    }

    /// `None` when there is no such macro.
    pub async fn update_macro(
        &self,
        id: i64,
        name: &str,
        body: &str,
    ) -> StoreResult<Option<Macro>> {
        let done = sqlx::query("UPDATE macros SET name = ?, body = ?, updated_at = ? WHERE id = ?")
            .bind(name)
            .bind(body)
            .bind(now_ms())
            .bind(id)
            .execute(&mut *self.writing().await?)
            .await
            .map_err(name_taken)?;
        Ok((done.rows_affected() == 1).then(|| Macro {
            id,
            name: name.to_owned(),
            body: body.to_owned(),
        }))
    }

    /// `false` when there was no such macro.
    pub async fn delete_macro(&self, id: i64) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM macros WHERE id = ?")
            .bind(id)
            .execute(&mut *self.writing().await?)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    // --------------------------------------------------------------------- settings

    pub async fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = ?")
                .bind(key)
                .fetch_optional(&self.read)
                .await?,
        )
    }

    pub async fn set_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES (?, ?) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&mut *self.writing().await?)
        .await?;
        Ok(())
    }
}

fn capacity_of(row: &sqlx::sqlite::SqliteRow) -> u32 {
    u32::try_from(row.get::<i64, _>("capacity").clamp(1, 1000)).unwrap_or(1)
}

fn status_name(status: CaseStatus) -> &'static str {
    match status {
        CaseStatus::New => "new",
        CaseStatus::Open => "open",
        CaseStatus::Pending => "pending",
        CaseStatus::Resolved => "resolved",
    }
}

fn status_from_name(name: &str) -> CaseStatus {
    CaseStatus::ALL
        .into_iter()
        .find(|s| status_name(*s) == name)
        .unwrap_or_default()
}

fn outcome_name(outcome: OfferClosed) -> &'static str {
    match outcome {
        OfferClosed::TimedOut => "timed_out",
        OfferClosed::Disabled => "disabled",
        OfferClosed::Abandoned => "abandoned",
        OfferClosed::Accepted => "accepted",
        OfferClosed::Withdrawn => "withdrawn",
    }
}

fn outcome_from_name(name: &str) -> Option<OfferClosed> {
    [
        OfferClosed::TimedOut,
        OfferClosed::Disabled,
        OfferClosed::Abandoned,
        OfferClosed::Accepted,
        OfferClosed::Withdrawn,
    ]
    .into_iter()
    .find(|o| outcome_name(*o) == name)
}

/// A `LIKE` pattern finding `words` anywhere, with `%`, `_` and `\` taken literally.
fn like_pattern(words: &str) -> String {
    let mut pattern = String::from("%");
    for c in words.trim().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

fn name_taken(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::Database(e) if e.is_unique_violation() => StoreError::NameTaken,
        other => other.into(),
    }
}

fn message_from_row(row: &sqlx::sqlite::SqliteRow) -> ChatMessage {
    ChatMessage {
        case_id: row.get("case_id"),
        seq: row.get("seq"),
        client_id: row.get("client_id"),
        author: author_from_columns(
            row.get("author_kind"),
            row.get("agent_id"),
            row.get("author_name"),
        ),
        body: row.get("body"),
        sent_at: row.get("sent_at"),
    }
}

/// A message's author from how it is stored: kind, agent id and name.
fn author_from_columns(kind: &str, agent_id: Option<AgentId>, name: String) -> Author {
    match kind {
        "customer" => Author::Customer { name },
        "agent" => Author::Agent {
            id: agent_id.unwrap_or_default(),
            name,
        },
        _ => Author::System,
    }
}

fn case_record(row: &sqlx::sqlite::SqliteRow) -> CaseRecord {
    let state = match row.get::<&str, _>("chat_state") {
        "queued" => ChatState::Queued,
        "active" => ChatState::Active,
        _ => ChatState::Ended,
    };
    let ended_by = match row.get::<Option<&str>, _>("ended_by") {
        Some("customer") => Some(EndedBy::Customer),
        Some("timeout") => Some(EndedBy::Timeout),
        Some(_) => Some(EndedBy::Agent {
            name: row
                .get::<Option<String>, _>("ended_by_name")
                .unwrap_or_default(),
        }),
        None => None,
    };
    let offer_agent: Option<AgentId> = row.get("offer_agent_id");
    let offer_expires: Option<Millis> = row.get("offer_expires_at");
    CaseRecord {
        summary: CaseSummary {
            id: row.get("id"),
            subject: row.get("subject"),
            customer_name: row.get("customer_name"),
            state,
            agent_name: row.get("agent_name"),
            created_at: row.get("created_at"),
            ended_by,
            group: row.get("group_name"),
            status: status_from_name(row.get("status")),
            customer_email: row.get("customer_email"),
            answers: serde_json::from_str(row.get::<&str, _>("answers")).unwrap_or_default(),
            channel: match row.get::<&str, _>("channel") {
                "message" => Channel::Message,
                _ => Channel::Chat,
            },
            customer_left_at: match state {
                ChatState::Ended => None,
                _ => row.get("customer_gone_at"),
            },
        },
        visitor_id: row.get("visitor_id"),
        agent_id: row.get("agent_id"),
        location: row.get("location"),
        group: row.get("group_name"),
        group_id: row.get("group_id"),
        offer: offer_agent.zip(offer_expires),
    }
}

/// How many active admins there are, read inside a write.
async fn active_admins(tx: &mut sqlx::SqliteConnection) -> StoreResult<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM agents WHERE is_admin AND active")
            .fetch_one(tx)
            .await?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open_dir(dir.path()).await.expect("opens");
        (store, dir)
    }

    fn new_chat(client_id: &str) -> NewChat {
        NewChat {
            customer_name: "Grace".into(),
            subject: "Billing".into(),
            location: String::new(),
            client_id: client_id.into(),
            body: "Hello".into(),
            group: None,
            email: None,
            answers: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_password_is_checked_against_its_hash() {
        let (store, _dir) = store().await;
        let id = store
            .create_agent("ada@example.com", "Ada", "correct horse", false)
            .await
            .expect("created");
        assert_eq!(
            store
                .check_login("ADA@example.com", "correct horse")
                .await
                .expect("checked"),
            Some(id)
        );
        assert_eq!(
            store
                .check_login("ada@example.com", "wrong")
                .await
                .expect("checked"),
            None
        );
        assert_eq!(
            store
                .check_login("nobody@example.com", "x")
                .await
                .expect("checked"),
            None
        );
    }

    #[tokio::test]
    async fn messages_get_consecutive_sequence_numbers() {
        let (store, _dir) = store().await;
        let case = store
            .start_chat(&secret::token(), &new_chat("m1"))
            .await
            .expect("started")
            .case;
        let customer = Author::Customer {
            name: "Grace".into(),
        };
        let (second, _) = store
            .append_message(case, "m2", &customer, "a", None)
            .await
            .expect("stored");
        let (third, _) = store
            .append_message(case, "m3", &Author::System, "b", None)
            .await
            .expect("stored");
        assert_eq!((second.seq, third.seq), (2, 3));
    }

    #[tokio::test]
    async fn a_retried_message_is_stored_once() {
        let (store, _dir) = store().await;
        let case = store
            .start_chat(&secret::token(), &new_chat("m1"))
            .await
            .expect("started")
            .case;
        let customer = Author::Customer {
            name: "Grace".into(),
        };
        let (first, new) = store
            .append_message(case, "m2", &customer, "hi", None)
            .await
            .expect("stored");
        assert!(new);
        let (again, new) = store
            .append_message(case, "m2", &customer, "hi", None)
            .await
            .expect("stored");
        assert!(!new);
        assert_eq!(first, again);
        let chat = store
            .chat_for(Caller::Agent(1), case, 0)
            .await
            .expect("read");
        assert_eq!(chat.messages.len(), 2);
    }

    #[tokio::test]
    async fn a_retried_start_returns_the_same_case_and_a_second_start_is_refused() {
        let (store, _dir) = store().await;
        let token = secret::token();
        let first = store
            .start_chat(&token, &new_chat("m1"))
            .await
            .expect("started");
        let again = store
            .start_chat(&token, &new_chat("m1"))
            .await
            .expect("retried");
        assert!(first.new && !again.new);
        assert_eq!(first.case, again.case);
        assert!(matches!(
            store.start_chat(&token, &new_chat("other")).await,
            Err(StoreError::AlreadyChatting)
        ));
    }

    #[tokio::test]
    async fn a_visitor_cannot_read_another_visitors_case() {
        let (store, _dir) = store().await;
        let case = store
            .start_chat(&secret::token(), &new_chat("m1"))
            .await
            .expect("started")
            .case;
        let other = store
            .start_chat(&secret::token(), &new_chat("m1"))
            .await
            .expect("started")
            .visitor;
        assert!(matches!(
            store.chat_for(Caller::Visitor(other), case, 0).await,
            Err(StoreError::CaseNotFound)
        ));
    }

    #[tokio::test]
    async fn macros_are_created_renamed_and_deleted_with_unique_names() {
        let (store, _dir) = store().await;
        let greet = store
            .create_macro("Greeting", "Hi!")
            .await
            .expect("created");
        store.create_macro("Bye", "Bye!").await.expect("created");
        assert!(matches!(
            store.create_macro("greeting", "again").await,
            Err(StoreError::NameTaken)
        ));
        let renamed = store
            .update_macro(greet.id, "Hello", "Hello!")
            .await
            .expect("updated");
        assert_eq!(renamed.map(|m| m.name), Some("Hello".into()));
        let names: Vec<String> = store
            .macros()
            .await
            .expect("listed")
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(names, ["Bye", "Hello"]);
        assert!(store.delete_macro(greet.id).await.expect("deleted"));
        assert!(!store.delete_macro(greet.id).await.expect("deleted"));
        assert_eq!(
            store.update_macro(greet.id, "X", "Y").await.expect("ran"),
            None
        );
    }

    #[tokio::test]
    async fn the_offer_log_records_each_screen_pop_and_how_it_ended() {
        let (store, _dir) = store().await;
        let ada = store
            .create_agent("ada@example.com", "Ada", "pw-ada-123", false)
            .await
            .expect("made");
        let bob = store
            .create_agent("bob@example.com", "Bob", "pw-bob-123", false)
            .await
            .expect("made");
        let case = store
            .start_chat(&secret::token(), &new_chat("m1"))
            .await
            .expect("started")
            .case;
        let opened = |agent, expires_at| store.open_offer(case, agent, expires_at);
        opened(ada, 10).await.expect("queued");
        store
            .close_offer(case, ada, OfferClosed::TimedOut)
            .await
            .expect("queued");
        // Queued one after another, the writes commit in that order.
        opened(bob, 41)
            .await
            .expect("queued")
            .committed()
            .await
            .expect("logged");
        let log = store.offer_log(case).await.expect("read");
        assert_eq!(log.len(), 2);
        assert_eq!(
            (log[0].agent_name.as_str(), log[0].outcome),
            ("Ada", Some(OfferClosed::TimedOut))
        );
        assert!(log[0].closed_at >= Some(log[0].offered_at));
        let record = store.case(case).await.expect("read").expect("there");
        assert_eq!(
            record.offer,
            Some((bob, 41)),
            "the open screen pop is Bob's"
        );
        assert_eq!((log[1].agent_name.as_str(), log[1].outcome), ("Bob", None));
    }

    #[tokio::test]
    async fn deactivating_an_account_ends_its_sessions_and_keeps_its_groups_as_set() {
        let (store, _dir) = store().await;
        let id = store
            .create_agent("ada@example.com", "Ada", "pw-ada-123", false)
            .await
            .expect("made");
        let sales = store.create_group("Sales").await.expect("made");
        let token = store
            .create_session(id, Duration::from_secs(60))
            .await
            .expect("session");
        let mut account = store.account(id).await.expect("read").expect("exists");
        account.groups = vec![sales.id];
        account.capacity = 5;
        account.active = false;
        assert!(store.update_account(&account, None).await.expect("updated"));
        assert!(store.session_agent(&token).await.expect("read").is_none());
        assert_eq!(store.account(id).await.expect("read"), Some(account));
        assert_eq!(
            store
                .check_login("ada@example.com", "pw-ada-123")
                .await
                .expect("checked"),
            None
        );
    }

    #[tokio::test]
    async fn nothing_can_be_said_in_an_ended_chat() {
        let (store, _dir) = store().await;
        let case = store
            .start_chat(&secret::token(), &new_chat("m1"))
            .await
            .expect("started")
            .case;
        assert_eq!(
            store
                .end_chat(case, &EndedBy::Customer)
                .await
                .expect("ended"),
            Some(None)
        );
        assert_eq!(
            store
                .end_chat(case, &EndedBy::Customer)
                .await
                .expect("ended"),
            None
        );
        let customer = Author::Customer {
            name: "Grace".into(),
        };
        assert!(matches!(
            store
                .append_message(case, "m2", &customer, "late", None)
                .await,
            Err(StoreError::ChatEnded)
        ));
    }

    #[tokio::test]
    async fn appends_queued_together_get_what_each_would_get_alone() {
        let (store, _dir) = store().await;
        let start = |n: &str| {
            let store = store.clone();
            let chat = new_chat(n);
            async move {
                store
                    .start_chat(&secret::token(), &chat)
                    .await
                    .expect("started")
                    .case
            }
        };
        let (busy, quiet, ended) = (start("s1").await, start("s2").await, start("s3").await);
        store
            .end_chat(ended, &EndedBy::Customer)
            .await
            .expect("ended");
        let customer = Author::Customer {
            name: "Grace".into(),
        };
        let agent = Author::Agent {
            id: 1,
            name: "Ada".into(),
        };
        let mut sends = vec![];
        for i in 0..40 {
            sends.push((busy, format!("b{i}"), customer.clone(), None));
        }
        for i in 0..5 {
            sends.push((quiet, format!("q{i}"), customer.clone(), None));
        }
        // A retry, a message id someone else used, an ended chat, no such chat, and an
        // agent who is not in the chat.
        sends.push((busy, "b3".into(), customer.clone(), None));
        sends.push((busy, "b5".into(), agent.clone(), None));
        sends.push((ended, "e0".into(), customer.clone(), None));
        sends.push((9_999, "n0".into(), customer.clone(), None));
        sends.push((quiet, "a0".into(), agent.clone(), Some(1)));
        let mut writes = tokio::task::JoinSet::new();
        for (case, client_id, author, member) in sends {
            let store = store.clone();
            writes.spawn(async move {
                let said = store
                    .append_message(case, &client_id, &author, "hi", member)
                    .await;
                (client_id, author, said)
            });
        }
        let mut new = HashMap::new();
        let mut retried = 0;
        while let Some(done) = writes.join_next().await {
            let (client_id, author, said) = done.expect("task ran");
            match client_id.as_str() {
                "e0" => assert!(matches!(said, Err(StoreError::ChatEnded))),
                "n0" => assert!(matches!(said, Err(StoreError::CaseNotFound))),
                "a0" => assert!(matches!(said, Err(StoreError::NotInChat))),
                "b5" if author == agent => assert!(matches!(said, Err(StoreError::ClientIdTaken))),
                _ => match said.expect("stored") {
                    (message, true) => assert!(new.insert(client_id, message.seq).is_none()),
                    (message, false) => {
                        retried += 1;
                        assert_eq!(client_id, "b3");
                        new.insert("retry".into(), message.seq);
                    }
                },
            }
        }
        assert_eq!(retried, 1, "the retry stored nothing");
        assert_eq!(
            new.remove("retry"),
            new.get("b3").copied(),
            "the retry got the first one's message"
        );
        for (case, count) in [(busy, 40), (quiet, 5)] {
            let seqs: Vec<Seq> = store
                .page(case, 0, Seq::MAX)
                .await
                .expect("read")
                .iter()
                .map(|m| m.seq)
                .collect();
            assert_eq!(
                seqs,
                (1..=count + 1).collect::<Vec<Seq>>(),
                "gap-free, each once"
            );
        }
    }

    #[tokio::test]
    async fn appends_look_up_their_ids_by_index_not_by_reading_every_message() {
        let (store, _dir) = store().await;
        let plan = format!("EXPLAIN QUERY PLAN {}", chats::STORED_UNDER);
        let plan = sqlx::query(&plan).bind(1).bind("m1");
        let steps: Vec<String> = plan
            .fetch_all(&store.read)
            .await
            .expect("planned")
            .iter()
            .map(|row| row.get("detail"))
            .collect();
        assert!(
            steps
                .iter()
                .any(|step| step.starts_with("SEARCH messages USING INDEX")),
            "{steps:?}"
        );
        assert!(
            !steps.iter().any(|step| step.starts_with("SCAN messages")),
            "{steps:?}"
        );
    }

    #[tokio::test]
    async fn presence_marks_and_messages_sent_together_all_land_and_a_refusal_sinks_no_other() {
        let (store, _dir) = store().await;
        let mut cases = Vec::new();
        for i in 0..100 {
            let chat = new_chat(&format!("start-{i}"));
            cases.push(
                store
                    .start_chat(&secret::token(), &chat)
                    .await
                    .expect("started")
                    .case,
            );
        }
        let ended = cases[0];
        store
            .end_chat(ended, &EndedBy::Customer)
            .await
            .expect("ended");
        // Every customer leaves at once, each saying goodbye first: the writes queue up
        // together and share commits.
        let mut writes = tokio::task::JoinSet::new();
        for (i, &case) in cases.iter().enumerate() {
            let store = store.clone();
            writes.spawn(async move {
                let customer = Author::Customer {
                    name: "Grace".into(),
                };
                let said = store
                    .append_message(case, "bye", &customer, "Bye", None)
                    .await;
                let gone = store
                    .set_customer_gone(case, Some(1_000 + i as Millis))
                    .await;
                (case, said.map(|_| ()), gone)
            });
        }
        while let Some(done) = writes.join_next().await {
            let (case, said, gone) = done.expect("task ran");
            gone.expect("marked");
            if case == ended {
                assert!(matches!(said, Err(StoreError::ChatEnded)));
            } else {
                said.expect("stored");
            }
        }
        let mut idle = store.chats_idle_since(Millis::MAX).await.expect("read");
        idle.sort_unstable();
        assert_eq!(
            idle,
            cases[1..],
            "every live chat's customer is marked gone"
        );
        // Half of them come back.
        for &case in &cases[1..50] {
            store.set_customer_gone(case, None).await.expect("marked");
        }
        let mut idle = store.chats_idle_since(Millis::MAX).await.expect("read");
        idle.sort_unstable();
        assert_eq!(idle, cases[50..]);
        let chat = store
            .chat_for(Caller::Agent(1), cases[7], 0)
            .await
            .expect("read");
        assert_eq!(chat.messages.last().map(|m| m.body.as_str()), Some("Bye"));
    }

    #[tokio::test]
    async fn the_log_is_copied_into_the_database_by_the_checkpointer_not_by_commits() {
        let (store, dir) = store().await;
        let writer_checkpoints: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
            .fetch_one(&store.write)
            .await
            .expect("read");
        assert_eq!(writer_checkpoints, 0, "the writer leaves checkpoints alone");
        let case = store
            .start_chat(&secret::token(), &new_chat("m1"))
            .await
            .expect("started")
            .case;
        let db = dir.path().join("parlor.db");
        let db_size = || std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
        let before = db_size();
        let mut writes = tokio::task::JoinSet::new();
        for i in 0..400 {
            let store = store.clone();
            writes.spawn(async move {
                let customer = Author::Customer {
                    name: "Grace".into(),
                };
                let body = "x".repeat(2_000);
                store
                    .append_message(case, &format!("m{i}"), &customer, &body, None)
                    .await
            });
        }
        while let Some(done) = writes.join_next().await {
            done.expect("task ran").expect("stored");
        }
        // Only the checkpointer copies the log into the database file; it runs every
        // second.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while db_size() < before + 400 * 2_000 {
            assert!(tokio::time::Instant::now() < deadline, "no checkpoint ran");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        store.close().await;
    }

    /// How many times the write-ahead log has started over: its header's checkpoint
    /// sequence number.
    fn log_restarts(dir: &Path) -> u32 {
        let mut header = [0; 16];
        std::fs::File::open(dir.join("parlor.db-wal"))
            .and_then(|mut log| std::io::Read::read_exact(&mut log, &mut header))
            .map_or(0, |()| {
                u32::from_be_bytes([header[12], header[13], header[14], header[15]])
            })
    }

    #[tokio::test]
    async fn a_write_outside_the_chat_queue_is_not_held_behind_every_message_queued() {
        let (store, _dir) = store().await;
        let mut cases = Vec::new();
        for i in 0..20 {
            let chat = new_chat(&format!("start-{i}"));
            let started = store.start_chat(&secret::token(), &chat).await;
            cases.push(started.expect("started").case);
        }
        // Far more messages than one commit takes: the writer keeps its connection from
        // one commit to the next while they last, but not for all of them.
        let sending = tokio::spawn({
            let store = store.clone();
            async move {
                let customer = Author::Customer {
                    name: "Grace".into(),
                };
                let mut last = None;
                for n in 0..12 * writer::WRITE_BATCH {
                    let case = cases[n % cases.len()];
                    let id = format!("m{n}");
                    let queued = store.queue_message(case, &id, &customer, "hi", None).await;
                    last = Some(queued.expect("queued"));
                }
                last.expect("sent").committed().await.expect("stored");
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let created = store.create_agent("ada@example.com", "Ada", "a long password", false);
        tokio::select! {
            biased;
            created = created => {
                created.expect("created");
            }
            _ = &mut std::pin::pin!(async { sending.await.expect("sent") }) => {
                panic!("the account waited for every message queued before it");
            }
        }
        store.close().await;
    }

    #[tokio::test]
    async fn under_steady_writes_the_log_starts_over_instead_of_growing() {
        let (store, dir) = store().await;
        // Seconds of writes that never pause: more than a case keeps by default.
        let store = store.with_case_cap(u32::MAX);
        let mut cases = Vec::new();
        for i in 0..20 {
            let chat = new_chat(&format!("start-{i}"));
            let started = store.start_chat(&secret::token(), &chat).await;
            cases.push(started.expect("started").case);
        }
        let customer = Author::Customer {
            name: "Grace".into(),
        };
        let body = "x".repeat(4_000);
        let restarts_before = log_restarts(dir.path());
        let began = tokio::time::Instant::now();
        let mut n = 0;
        // Writes that never pause, until the log has started over twice (it would never
        // start over if checkpoints had to find a moment with nothing written).
        let mut restarts = 0;
        while restarts < 2 {
            assert!(
                began.elapsed() < Duration::from_secs(30),
                "the log started over {restarts} times in 30 s of writes"
            );
            let sends = cases.iter().map(|&case| {
                n += 1;
                let id = format!("m{n}");
                let (store, customer, body) = (store.clone(), customer.clone(), body.clone());
                async move {
                    store
                        .append_message(case, &id, &customer, &body, None)
                        .await
                }
            });
            for sent in futures_util::future::join_all(sends).await {
                sent.expect("stored");
            }
            restarts = log_restarts(dir.path()).saturating_sub(restarts_before);
        }
        store.close().await;
    }
}
