//! The one writer. SQLite takes one writer at a time, so every chat write goes through
//! one connection in one task, and whatever waits while a commit runs shares the next
//! one: one disk flush for a burst instead of one each, and no write ever waits on the
//! database lock (several writers would, with back-off sleeps).
//!
//! A write is an [`Op`]: plain data and the statements it runs. Writes queued one
//! after another commit in that order, so a caller that queues without waiting (see
//! [`Queued`]) still sees its writes land in order.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Sqlite, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use parlor_protocol::ChatMessage;

use super::chats::{AppendSlot, append_all};
use super::{StoreError, StoreResult};

/// One write, applied inside a transaction it shares with others.
pub(super) trait Op: Send + 'static {
    type Output: Send + 'static;

    /// Writes inside `tx`. The outer error means the transaction must go (the batch is
    /// then tried again one write at a time, so each gets its own outcome); the inner
    /// one is this write's own refusal, decided before it wrote anything, and the rest
    /// of the batch commits.
    fn apply(
        &self,
        tx: &mut SqliteConnection,
    ) -> impl Future<Output = StoreResult<StoreResult<Self::Output>>> + Send;

    /// Whether this is a message to append: appends next to each other in a batch are
    /// written together ([`append_all`]).
    fn appends(&self) -> bool {
        false
    }

    /// The message to append with its outcome's place, if this is one.
    fn appending<'a>(
        &'a self,
        _outcome: &'a mut Option<StoreResult<Self::Output>>,
    ) -> Option<AppendSlot<'a>> {
        None
    }
}

type Applying<'a> = Pin<Box<dyn Future<Output = StoreResult<()>> + Send + 'a>>;

/// An [`Op`] waiting in the queue, with whoever waits for its outcome.
pub(super) trait Job: Send {
    fn apply<'a>(&'a mut self, tx: &'a mut SqliteConnection) -> Applying<'a>;
    /// The write was not committed.
    fn failed(&mut self, error: StoreError);
    /// Tells the sender how it went, after the commit. The sender may have gone (its
    /// socket closed); what was written stays.
    fn reply(self: Box<Self>);
    /// The message to append and its outcome's place, if this job is one: appends
    /// next to each other in a batch are written together ([`append_all`]).
    fn appending(&mut self) -> Option<AppendSlot<'_>> {
        None
    }
    fn is_append(&self) -> bool {
        false
    }
}

struct Pending<O: Op> {
    op: O,
    outcome: Option<StoreResult<O::Output>>,
    reply: oneshot::Sender<StoreResult<O::Output>>,
}

impl<O: Op> Job for Pending<O> {
    fn apply<'a>(&'a mut self, tx: &'a mut SqliteConnection) -> Applying<'a> {
        Box::pin(async move {
            self.outcome = Some(self.op.apply(tx).await?);
            Ok(())
        })
    }

    fn failed(&mut self, error: StoreError) {
        self.outcome = Some(Err(error));
    }

    fn reply(self: Box<Self>) {
        let _ = self
            .reply
            .send(self.outcome.unwrap_or_else(|| Err(closed())));
    }

    fn appending(&mut self) -> Option<AppendSlot<'_>> {
        self.op.appending(&mut self.outcome)
    }

    fn is_append(&self) -> bool {
        self.op.appends()
    }
}

/// The writer's queue.
pub(super) type Writes = mpsc::Sender<Box<dyn Job>>;

/// A write in the queue; awaiting it gives its outcome once committed.
pub struct Queued<T>(oneshot::Receiver<StoreResult<T>>);

impl<T> Queued<T> {
    pub async fn committed(self) -> StoreResult<T> {
        self.0.await.map_err(|_| closed())?
    }
}

/// Queues `op` behind every write queued before it. Fails only when the store is
/// closing.
pub(super) async fn queue<O: Op>(writes: &Writes, op: O) -> StoreResult<Queued<O::Output>> {
    let (reply, answer) = oneshot::channel();
    let job = Box::new(Pending {
        op,
        outcome: None,
        reply,
    });
    writes.send(job).await.map_err(|_| closed())?;
    Ok(Queued(answer))
}

/// The error a write gets when the store is closing.
pub(super) fn closed() -> StoreError {
    StoreError::Database(sqlx::Error::PoolClosed)
}

/// At most this many writes share one commit. A commit waits for the disk, and while it
/// waits the next group gathers: under load the groups grow, up to this (at 256, the
/// relay topped out at 12,000 messages a second with the machine half idle).
pub(super) const WRITE_BATCH: usize = 4096;

/// At most this many appends go in one statement (SQLite takes up to 32,766 values in
/// one, and each message binds eight).
const APPENDS_AT_ONCE: usize = 1024;

/// What tells everyone following a case about a new message, once it is committed.
pub(super) type Publish = Arc<OnceLock<Box<dyn Fn(&ChatMessage) + Send + Sync>>>;

/// Starts the writer on `write` (its pool's one connection) and the checkpoints on
/// `checkpoint`; the writer ends when the store's last queue handle is dropped, the
/// checkpoints when the store closes.
pub(super) fn start(write: SqlitePool, checkpoint: SqlitePool, publish: Publish) -> Writes {
    let (writes, queue) = mpsc::channel(WRITE_BATCH);
    let copied = Arc::new(AtomicBool::new(false));
    tokio::spawn(run_checkpoints(checkpoint, copied.clone()));
    tokio::spawn(run_writes(write, queue, copied, publish));
    writes
}

/// Writes as they come, all those waiting in one transaction. Each sender hears back
/// only after the commit. If a commit fails, that group is tried again one write at a
/// time, so each sender gets its own outcome.
///
/// New messages are published here, right after their commit and in its order: every
/// follower gets a case's messages in `seq` order, and a sender goes on to its next
/// frame without waiting for its message to reach anyone.
///
/// Every few checkpoints (`copied`), the writer copies the little written since, between
/// two commits, so the log starts over: see [`run_checkpoints`].
async fn run_writes(
    write: SqlitePool,
    mut queue: mpsc::Receiver<Box<dyn Job>>,
    copied: Arc<AtomicBool>,
    publish: Publish,
) {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    let mut held = Held::default();
    while queue.recv_many(&mut batch, WRITE_BATCH).await > 0 {
        match held.connection(&write).await {
            Ok(conn) => {
                if let Err(error) = write_all(conn, &mut batch).await {
                    tracing::warn!(%error, size = batch.len(), "a group commit failed; writing one by one");
                    for one in &mut batch {
                        if let Err(error) = write_all(conn, std::slice::from_mut(one)).await {
                            one.failed(error);
                        }
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "the writer has no connection");
                let closing = matches!(error, sqlx::Error::PoolClosed);
                for job in &mut batch {
                    job.failed(if closing {
                        closed()
                    } else {
                        StoreError::Database(sqlx::Error::PoolTimedOut)
                    });
                }
            }
        }
        if let Some(publish) = publish.get() {
            for job in &mut batch {
                if let Some((_, Some(Ok((message, true))))) = job.appending() {
                    publish(message);
                }
            }
        }
        batch.drain(..).for_each(Job::reply);
        if copied.swap(false, Ordering::AcqRel) {
            let copy = match held.connection(&write).await {
                Ok(conn) => checkpoint(conn).await,
                Err(error) => Err(error),
            };
            if let Err(error) = copy {
                tracing::warn!(%error, "the writer's checkpoint failed");
            }
        }
        if queue.is_empty() {
            held.release();
        }
    }
}

/// How long the writer keeps its connection while writes keep coming. Taking it from
/// the pool for each commit cost a third of a millisecond (the pool takes a connection
/// back in a task of its own); the other writes (accounts, settings, groups) share the
/// pool's one connection and get their turn at least this often.
const HOLD_AT_MOST: Duration = Duration::from_millis(10);

/// The writer's connection while it is busy.
#[derive(Default)]
struct Held(Option<(PoolConnection<Sqlite>, Instant)>);

impl Held {
    /// The connection held, or one from the pool if none is held or it was held for
    /// [`HOLD_AT_MOST`].
    async fn connection(
        &mut self,
        pool: &SqlitePool,
    ) -> Result<&mut SqliteConnection, sqlx::Error> {
        if self
            .0
            .as_ref()
            .is_some_and(|(_, since)| since.elapsed() >= HOLD_AT_MOST)
        {
            self.release();
        }
        let (conn, _) = match self.0.take() {
            Some(held) => self.0.insert(held),
            None => self.0.insert((pool.acquire().await?, Instant::now())),
        };
        Ok(&mut **conn)
    }

    /// Gives the connection back to the pool.
    fn release(&mut self) {
        self.0 = None;
    }
}

/// Writes `batch` in one transaction, in order; appends next to each other go in
/// together. An error means nothing was committed.
async fn write_all(conn: &mut SqliteConnection, batch: &mut [Box<dyn Job>]) -> StoreResult<()> {
    let mut tx = sqlx::Connection::begin(conn).await?;
    let mut rest = batch;
    while let Some(first) = rest.first_mut() {
        if !first.is_append() {
            first.apply(&mut tx).await?;
            rest = &mut rest[1..];
            continue;
        }
        let run = rest.iter().take_while(|job| job.is_append()).count();
        let (appends, after) = rest.split_at_mut(run);
        for some in appends.chunks_mut(APPENDS_AT_ONCE) {
            let slots = some.iter_mut().filter_map(|job| job.appending()).collect();
            append_all(&mut tx, slots).await?;
        }
        rest = after;
    }
    tx.commit().await?;
    Ok(())
}

/// How often the write-ahead log is copied into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// After how many checkpoints the writer copies the rest itself and the log starts
/// over. That copy ends with a disk flush of the database file, 5 to 15 ms here, and
/// every write queued meanwhile waits for it: once a second, it alone set the p99 at
/// 10,000 messages a second. Every fifth second, the log holds five seconds of writes.
const RESTART_LOG_AFTER: u32 = 5;

/// Copies what the write-ahead log holds into the database file, every second, on a
/// connection of its own. SQLite would otherwise do it inside whichever commit fills
/// the log to 1,000 pages, and every message queued behind that commit would wait for
/// the copy and its disk flush (this halved the relay's p99 under load). A passive
/// checkpoint never blocks the writer or the readers; what it cannot copy yet (a
/// reader still needs it) waits for the next one. Ends when the store closes.
///
/// Under steady writes this copy never catches up with the end of the log, and SQLite
/// starts the log over only once all of it is copied: the file grew by the gigabyte,
/// and a sixth of the server's time went to the kernel zeroing its new pages. So after
/// every [`RESTART_LOG_AFTER`]th copy the writer copies the rest, between two of its
/// commits (nothing is being written then, so it ends with the whole log copied, and
/// the next commit starts the log over). That rest is only what was written during the
/// copy.
async fn run_checkpoints(checkpoint_pool: SqlitePool, copied: Arc<AtomicBool>) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut since_restart = 0;
    loop {
        tick.tick().await;
        match checkpoint(&checkpoint_pool).await {
            Ok(()) => {
                since_restart += 1;
                if since_restart == RESTART_LOG_AFTER {
                    since_restart = 0;
                    copied.store(true, Ordering::Release);
                }
            }
            Err(sqlx::Error::PoolClosed) => return,
            Err(error) => tracing::warn!(%error, "a checkpoint failed; trying again"),
        }
    }
}

/// A passive checkpoint: copies what it can without waiting for anyone.
async fn checkpoint<'c>(on: impl sqlx::SqliteExecutor<'c>) -> Result<(), sqlx::Error> {
    sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .execute(on)
        .await
        .map(|_| ())
}
