//! The chat writer on SQLite. SQLite takes one writer at a time, so every chat write
//! goes through one connection on one thread (see [`super::writer`] for the queue).
//!
//! The writer runs each group on a thread of its own, with its own connection
//! (rusqlite), from `BEGIN` to `COMMIT`. Through sqlx every statement was a round trip
//! to the connection's thread and back, a tenth to a fifth of a millisecond each under
//! load: five of them per commit were more than half of the writer's time at 10,000
//! messages a second. Here a group's statements run back to back, prepared once.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};
use sqlx::SqlitePool;
use tokio::sync::mpsc;

use super::appends::append_all;
use super::writer::{Job, Publish, Run, WRITE_BATCH, WriteTurn, Writes, finish, runs};

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
        finish(&mut batch, &publish, false);
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
    for run in runs(batch) {
        match run {
            Run::One(job) => job.apply(&tx)?,
            Run::Appends(slots) => append_all(&tx, slots)?,
        }
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
