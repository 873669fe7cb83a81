//! The one writer. SQLite takes one writer at a time, so every chat write goes through
//! one connection on one thread, and whatever waits while a commit runs shares the next
//! one: one disk flush for a burst instead of one each.
//!
//! The writer runs each group on a thread of its own, with its own connection
//! (rusqlite), from `BEGIN` to `COMMIT`. Through sqlx every statement was a round trip
//! to the connection's thread and back, a tenth to a fifth of a millisecond each under
//! load: five of them per commit were more than half of the writer's time at 10,000
//! messages a second. Here a group's statements run back to back, prepared once.
//!
//! A write is an [`Op`]: plain data and the statements it runs. Writes queued one
//! after another commit in that order, so a caller that queues without waiting (see
//! [`Queued`]) still sees its writes land in order.
//!
//! The other writes (accounts, settings, groups) go through sqlx's write pool; they and
//! the writer take turns through [`WriteTurn`], so neither ever waits on SQLite's lock.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};
use sqlx::SqlitePool;
use tokio::sync::{Mutex, mpsc, oneshot};

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
    fn apply(&self, tx: &Transaction<'_>) -> rusqlite::Result<StoreResult<Self::Output>>;

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

/// An [`Op`] waiting in the queue, with whoever waits for its outcome.
pub(super) trait Job: Send {
    fn apply(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()>;
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
    fn apply(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        self.outcome = Some(self.op.apply(tx)?);
        Ok(())
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

/// Whose turn it is to write: the writer's group, or one of the other writes. SQLite
/// takes one writer at a time; a second connection waiting on its lock would poll with
/// back-off sleeps (and could wait out its timeout behind a writer that never pauses),
/// while this lock is handed over in order, the moment a commit ends.
pub(super) type WriteTurn = Arc<Mutex<()>>;

/// At most this many writes share one commit. A commit waits for the disk, and while it
/// waits the next group gathers: under load the groups grow, up to this (at 256, the
/// relay topped out at 12,000 messages a second with the machine half idle).
pub(super) const WRITE_BATCH: usize = 4096;

/// What tells everyone following a case about a new message, once it is committed.
pub(super) type Publish = Arc<OnceLock<Box<dyn Fn(&ChatMessage) + Send + Sync>>>;

/// The writer's own connection to the database file at `path`, set up as sqlx sets up
/// the others (see `Store::open`). It never checkpoints: its commits carry messages
/// only, and the checkpoints have a connection of their own.
pub(super) fn connect(path: &PathBuf) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(super::BUSY_TIMEOUT)?;
    for (name, value) in super::PRAGMAS {
        conn.pragma_update(None, name, value)?;
    }
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    // Every statement the writer runs, kept prepared.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Starts the writer on `conn` (its own thread) and the checkpoints on `checkpoint`;
/// the writer ends when the store's last queue handle is dropped, the checkpoints when
/// the store closes.
pub(super) fn start(
    conn: Connection,
    turn: WriteTurn,
    checkpoint: SqlitePool,
    publish: Publish,
) -> std::io::Result<Writes> {
    let (writes, queue) = mpsc::channel(WRITE_BATCH);
    let copied = Arc::new(AtomicBool::new(false));
    tokio::spawn(run_checkpoints(checkpoint, copied.clone()));
    std::thread::Builder::new()
        .name("parlor-writer".into())
        .spawn(move || run_writes(conn, turn, queue, copied, publish))?;
    Ok(writes)
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
fn run_writes(
    mut conn: Connection,
    turn: WriteTurn,
    mut queue: mpsc::Receiver<Box<dyn Job>>,
    copied: Arc<AtomicBool>,
    publish: Publish,
) {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < WRITE_BATCH
            && let Ok(next) = queue.try_recv()
        {
            batch.push(next);
        }
        {
            let _turn = turn.blocking_lock();
            if let Err(error) = write_all(&mut conn, &mut batch) {
                tracing::warn!(%error, size = batch.len(), "a group commit failed; writing one by one");
                for one in &mut batch {
                    if let Err(error) = write_all(&mut conn, std::slice::from_mut(one)) {
                        one.failed(error.into());
                    }
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
            let _turn = turn.blocking_lock();
            if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!(%error, "the writer's checkpoint failed");
            }
        }
    }
}

/// Writes `batch` in one transaction, in order; appends next to each other go in
/// together. An error means nothing was committed.
fn write_all(conn: &mut Connection, batch: &mut [Box<dyn Job>]) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut rest = batch;
    while let Some(first) = rest.first_mut() {
        if !first.is_append() {
            first.apply(&tx)?;
            rest = &mut rest[1..];
            continue;
        }
        let run = rest.iter().take_while(|job| job.is_append()).count();
        let (appends, after) = rest.split_at_mut(run);
        let slots = appends
            .iter_mut()
            .filter_map(|job| job.appending())
            .collect();
        append_all(&tx, slots)?;
        rest = after;
    }
    tx.commit()
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
async fn run_checkpoints(checkpoint: SqlitePool, copied: Arc<AtomicBool>) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut since_restart = 0;
    loop {
        tick.tick().await;
        let copy = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&checkpoint)
            .await;
        match copy {
            Ok(_) => {
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
