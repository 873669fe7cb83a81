//! Storage: every case, message, agent and session Parlor keeps, in SQLite (nothing to
//! set up) or PostgreSQL (`--database-url postgres://…`). A message is committed
//! here before anyone is told about it.
//!
//! Every query is written once for both (sqlx's `Any` driver, portable SQL); only the
//! migrations (`migrations/sqlite`, `migrations/postgres`) and the chat writer's loop
//! ([`sqlite`], [`postgres`]) differ.
//!
//! Every read or write of a case goes through [`Store::case_for`], which scopes it by
//! the caller, so no handler can forget whose case it is.
//!
//! By concern: this file opens the database (pools, errors, the types callers get);
//! [`writer`] is the chat writer's queue with its group commits, [`appends`] and
//! [`chats`] the writes it runs; `accounts` holds agents and sessions, `cases` visitors,
//! cases, messages and the offer log as read, `setup` groups, macros and settings, and
//! `rows` how rows map to Parlor's types.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use parlor_protocol::{
    AgentAccount, AgentId, AgentProfile, Answer, Author, CASES_PAGE, CaseChat, CaseFilter, CaseId,
    CaseStatus, CaseSummary, Channel, Chat, ChatMessage, ChatState, EndedBy, FIRST_MESSAGE_CHARS,
    Group, GroupId, Macro, Millis, OfferClosed, OfferLogEntry, PAGE_BYTES, PAGE_MESSAGES, Seq,
};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{AnyConnection, AnyPool, Row, SqlitePool};

use crate::passwords::{DUMMY_HASH, Passwords};
use crate::secret;

/// A message's columns, in the order every query of messages reads them.
macro_rules! message_columns {
    () => {
        "case_id, seq, client_id, author_kind, agent_id, author_name, body, sent_at"
    };
}

mod accounts;
mod appends;
mod cases;
mod chats;
mod lease;
mod postgres;
mod rows;
mod setup;
mod sqlite;
#[cfg(test)]
mod tests;
mod writer;

use rows::*;

use appends::Append;
use chats::{
    Assign, CloseOffer, EndChat, LeaveMessage, Mark, OpenOffer, Ping, Requeue, SetRouting,
    StartChat,
};
pub use chats::{Presence, Sockets};
use lease::Fenced;
pub use lease::{Epoch, Fence};
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
    #[error("only the agent in this chat can change the case while it is live")]
    LiveChatOfAnother,
    #[error("no such group")]
    GroupNotFound,
    #[error("that message id was already used by someone else")]
    ClientIdTaken,
    #[error("an agent with that email already exists")]
    EmailTaken,
    #[error("this visitor already has a live chat")]
    AlreadyChatting,
    #[error("that name is already used")]
    NameTaken,
    #[error("this node no longer routes chats")]
    NotLeader,
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
    conn: sqlx::pool::PoolConnection<sqlx::Any>,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl std::ops::Deref for Writing {
    type Target = AnyConnection;
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
    write: AnyPool,
    turn: writer::WriteTurn,
    /// Readers see every committed write (WAL) and never block the writer.
    read: AnyPool,
    /// What only one of the databases has.
    engine: Engine,
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

/// The database a store is on, with what only it needs.
#[derive(Clone)]
enum Engine {
    /// The connection that copies the write-ahead log into the database, off the
    /// writer's path (see [`sqlite::run_checkpoints`]).
    Sqlite { checkpoint: SqlitePool },
    /// The chat writer's pool.
    Postgres { writer: sqlx::PgPool },
}

/// How every connection to the database is set up, whichever library opens it (sqlx
/// for the pools, rusqlite for the chat writer).
const PRAGMAS: [(&str, &str); 3] = [
    ("journal_mode", "wal"),
    // A message is acknowledged only once it would survive a power cut.
    ("synchronous", "full"),
    ("foreign_keys", "on"),
];

/// How long a connection waits for SQLite's lock before it gives up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The database page size, for a new database. A commit writes every page it changed
/// to the log whole, and a message changes two index pages far apart (its case's place
/// in each); at 1 KiB rather than SQLite's 4 KiB the log takes a quarter of the bytes.
/// A database made with another page size keeps it.
const PAGE_BYTES_ON_DISK: u32 = 1024;

/// `path` made absolute, as a URL's path: every byte but letters, digits and `-._~/`
/// percent-encoded, so spaces, `#`, `?` and `%` in a folder name survive the URL.
fn url_path(path: &Path) -> String {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut url = String::new();
    for byte in path.as_os_str().as_encoded_bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(byte) {
            url.push(char::from(*byte));
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    url
}

/// A pool of `connections` to the SQLite database at `path`, opened in `mode` (`ro`,
/// `rwc`) and set up with [`PRAGMAS`]. Without `checkpoints`, its commits never copy
/// the write-ahead log (see [`sqlite::run_checkpoints`]).
async fn sqlite_pool(
    path: &Path,
    mode: &str,
    connections: u32,
    checkpoints: bool,
) -> StoreResult<AnyPool> {
    let url = format!("sqlite://{}?mode={mode}", url_path(path));
    let pool = AnyPoolOptions::new()
        .max_connections(connections)
        .test_before_acquire(false)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                // The page size first: it applies only before the log is in WAL mode.
                let mut setup = vec![format!("PRAGMA page_size = {PAGE_BYTES_ON_DISK}")];
                setup.extend(
                    PRAGMAS
                        .iter()
                        .map(|(name, value)| format!("PRAGMA {name} = {value}")),
                );
                setup.push(format!(
                    "PRAGMA busy_timeout = {}",
                    BUSY_TIMEOUT.as_millis()
                ));
                if !checkpoints {
                    setup.push("PRAGMA wal_autocheckpoint = 0".to_owned());
                }
                for pragma in setup {
                    sqlx::Executor::execute(&mut *conn, pragma.as_str()).await?;
                }
                Ok(())
            })
        })
        .connect(&url)
        .await?;
    Ok(pool)
}

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
    /// Opens the database at `url` and migrates it: PostgreSQL for a `postgres://` (or
    /// `postgresql://`) URL, else SQLite (the file is made if missing).
    pub async fn open(url: &str) -> StoreResult<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Self::open_postgres(url).await;
        }
        Self::open_sqlite(SqliteConnectOptions::from_str(url)?).await
    }

    /// Opens (creating if needed) the SQLite database `options` name and migrates it.
    async fn open_sqlite(options: SqliteConnectOptions) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let options = options.create_if_missing(true).busy_timeout(BUSY_TIMEOUT);
        let path = options.get_filename().to_owned();
        let one = |checkpoints| sqlite_pool(&path, "rwc", 1, checkpoints);
        // Checkpoints run off every write path: see [`sqlite::run_checkpoints`].
        let write = one(false).await?;
        sqlx::migrate!("./migrations/sqlite").run(&write).await?;
        let checkpoint = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(PRAGMAS.iter().fold(options, |options, (name, value)| {
                options.pragma(*name, *value)
            }))
            .await?;
        let read = sqlite_pool(&path, "ro", 4, true).await?;
        let publish = writer::Publish::default();
        let turn = writer::WriteTurn::default();
        let own = tokio::task::spawn_blocking(move || sqlite::connect(&path))
            .await
            .map_err(|_| StoreError::Database(sqlx::Error::WorkerCrashed))??;
        let writes = sqlite::start(own, turn.clone(), checkpoint.clone(), publish.clone())
            .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        Ok(Self::with(
            write,
            read,
            turn,
            writes,
            publish,
            Engine::Sqlite { checkpoint },
        ))
    }

    /// Opens the PostgreSQL database at `url` and migrates it (one node at a time: the
    /// migrations take a lock).
    async fn open_postgres(url: &str) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let writer = postgres::writer_pool(url).await?;
        sqlx::migrate!("./migrations/postgres").run(&writer).await?;
        // A read while PostgreSQL is unreachable fails after a few seconds rather than
        // holding its request for the pool's default half minute.
        let pool = |connections| {
            AnyPoolOptions::new()
                .max_connections(connections)
                .acquire_timeout(Duration::from_secs(5))
                .connect(url)
        };
        let write = pool(2).await?;
        let read = pool(8).await?;
        let publish = writer::Publish::default();
        let writes = postgres::start(writer.clone(), publish.clone());
        Ok(Self::with(
            write,
            read,
            writer::WriteTurn::default(),
            writes,
            publish,
            Engine::Postgres { writer },
        ))
    }

    fn with(
        write: AnyPool,
        read: AnyPool,
        turn: writer::WriteTurn,
        writes: Writes,
        publish: writer::Publish,
        engine: Engine,
    ) -> Self {
        Self {
            write,
            turn,
            read,
            engine,
            writes,
            publish,
            passwords: Arc::default(),
            case_cap: Seq::from(CASE_MESSAGES),
        }
    }

    /// Whether the database answers: a read on the read pool, and a turn of the chat
    /// writer (it takes the write lock and commits nothing).
    pub async fn check(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        self.write(Ping).await
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
        match &self.engine {
            Engine::Sqlite { checkpoint } => checkpoint.close().await,
            Engine::Postgres { writer } => writer.close().await,
        }
    }

    /// For tests: the database of the test whose files are in `dir`. With
    /// `PARLOR_TEST_POSTGRES` set (the `postgres://` URL of a role that may create
    /// databases), a PostgreSQL database of the test's own, made on first use and named
    /// in `dir` so a restarted server finds it again; otherwise `None`, for the SQLite
    /// file in `dir`. `scripts/test.sh` runs the tests both ways.
    #[doc(hidden)]
    pub async fn test_database_url(dir: &Path) -> StoreResult<Option<String>> {
        let Ok(server) = std::env::var("PARLOR_TEST_POSTGRES") else {
            return Ok(None);
        };
        let io = |e| StoreError::Database(sqlx::Error::Io(e));
        let named = dir.join("postgres-url");
        if let Ok(url) = std::fs::read_to_string(&named) {
            return Ok(Some(url));
        }
        // Random: a process id comes back in a later run against the same server.
        let name = format!("parlor_test_{}", &secret::token()[..16]);
        let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&server).await?;
        sqlx::Executor::execute(&mut admin, format!("CREATE DATABASE {name}").as_str()).await?;
        // The server's URL with this database's name in place of its own.
        let (server_part, query) = server.split_once('?').unwrap_or((server.as_str(), ""));
        let base = server_part
            .rsplit_once('/')
            .map_or(server_part, |(base, _)| base);
        let url = match query {
            "" => format!("{base}/{name}"),
            query => format!("{base}/{name}?{query}"),
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        std::fs::write(&named, &url).map_err(io)?;
        Ok(Some(url))
    }

    /// Opens the database file `parlor.db` inside `dir`, creating the folder.
    pub async fn open_dir(dir: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        Self::open_sqlite(SqliteConnectOptions::new().filename(dir.join("parlor.db"))).await
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
}
