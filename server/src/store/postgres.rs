//! The chat writer on PostgreSQL (see [`super::writer`] for the queue). PostgreSQL takes
//! many writers at once, but one writer per node still gathers whatever waits while a
//! commit runs into the next one: one disk flush for a burst instead of one each.
//!
//! Each group commit first locks the case and agent rows its writes change, the cases
//! in id order and then the agents, so two nodes' groups wait for each other rather
//! than in a circle (PostgreSQL would end one after a second, and it would be written
//! again one by one).
//!
//! A run of appends is set-based: whatever its size, it reads their last `seq` and
//! the ids it uses, and inserts every new message in one statement. The case's row lock
//! is what keeps `seq` gap-free when several nodes append to one case: each reads the
//! last `seq` only once it holds the lock, in a statement of its own (so it sees what
//! the node before it committed).

use std::collections::HashMap;
use std::time::Duration;

use parlor_protocol::{AgentId, CaseId, ChatMessage};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Acquire, PgConnection, PgPool, Row};
use tokio::sync::mpsc;

use super::appends::{AppendSlot, CaseForAppend, author_columns, decide};
use super::writer::{Job, Publish, Run, WRITE_BATCH, Writes, finish, runs};
use super::{StoreError, StoreResult, author_from_columns, now_ms};

/// How long a statement may wait for a lock or the server before it gives up: a
/// write waits at most this long for another node's.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the writer waits for a connection before it counts PostgreSQL as
/// unreachable (and waits on, see [`write_when_reachable`]).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The writer's pool: one connection at a time, made again if PostgreSQL restarts.
pub(super) async fn writer_pool(url: &str) -> StoreResult<PgPool> {
    let options: PgConnectOptions = url.parse()?;
    Ok(PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect_with(options.options([(
            "statement_timeout",
            STATEMENT_TIMEOUT.as_millis().to_string(),
        )]))
        .await?)
}

/// Starts the writer on `pool`; it ends when the store's last queue handle is dropped.
pub(super) fn start(pool: PgPool, publish: Publish) -> Writes {
    let (writes, queue) = mpsc::channel(WRITE_BATCH);
    tokio::spawn(run_writes(pool, queue, publish));
    writes
}

/// Writes as they come, all those waiting in one transaction; each sender hears back
/// after the commit, and new messages are published right after it, in its order. If
/// a commit fails, that group is tried again one write at a time, so each sender gets
/// its own outcome. While PostgreSQL cannot be reached (restarting, a network cut),
/// the writes wait for it (see [`write_when_reachable`]).
async fn run_writes(pool: PgPool, mut queue: mpsc::Receiver<Box<dyn Job>>, publish: Publish) {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    while let Some(first) = queue.recv().await {
        batch.push(first);
        while batch.len() < WRITE_BATCH
            && let Ok(next) = queue.try_recv()
        {
            batch.push(next);
        }
        let mut written_again = false;
        match write_when_reachable(&pool, &mut batch).await {
            Ok(again) => written_again = again,
            Err(error) if unreachable(&error) => {
                tracing::error!(%error, size = batch.len(), "PostgreSQL stayed unreachable; the writes fail");
                for job in &mut batch {
                    job.failed(StoreError::Database(sqlx::Error::PoolTimedOut));
                }
            }
            Err(error) => {
                tracing::warn!(%error, size = batch.len(), "a group commit failed; writing one by one");
                for one in &mut batch {
                    if let Err(error) = write_all(&pool, std::slice::from_mut(one)).await {
                        one.failed(error.into());
                    }
                }
            }
        }
        finish(&mut batch, &publish, written_again);
    }
}

/// How long writes wait for an unreachable PostgreSQL before they fail.
const WAIT_FOR_DATABASE: Duration = Duration::from_secs(60);

/// Writes `batch` (see [`write_all`]), trying again while PostgreSQL cannot be reached,
/// for up to [`WAIT_FOR_DATABASE`]: a restart of the database holds sends back ("Sending…"
/// on screen) rather than failing them. Gives whether it was written again after a
/// try that may have committed: if the connection drops after a commit but before its
/// answer (rare), appends and new chats get what was stored (so their messages are
/// published again: followers keep each seq once); the other writes find their change
/// made and answer as if another had made it (an assignment, an end), and a screen pop
/// opened is logged twice.
async fn write_when_reachable(pool: &PgPool, batch: &mut [Box<dyn Job>]) -> sqlx::Result<bool> {
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(50);
    let mut again = false;
    loop {
        match write_all(pool, batch).await {
            Err(error) if unreachable(&error) && started.elapsed() < WAIT_FOR_DATABASE => {
                tracing::warn!(%error, "PostgreSQL cannot be reached; the writes wait");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
                again = true;
            }
            done => return done.map(|()| again),
        }
    }
}

/// Whether `error` says PostgreSQL could not be reached or went away (rather than
/// refusing the writes).
fn unreachable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_) => true,
        sqlx::Error::WorkerCrashed => true,
        // Connection exceptions (08…) and the server shutting down or starting (57P…).
        sqlx::Error::Database(e) => e
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}

/// Writes `batch` in one transaction, in order; appends next to each other go in
/// together. An error means nothing was committed.
async fn write_all(pool: &PgPool, batch: &mut [Box<dyn Job>]) -> sqlx::Result<()> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    let rows = batch_rows(batch);
    lock_rows(&mut tx, rows).await?;
    for run in runs(batch) {
        match run {
            Run::One(job) => job.apply_pg(&mut tx).await?,
            Run::Appends(slots) => append_all(&mut tx, slots).await?,
        }
    }
    tx.commit().await
}

/// Locks the rows the batch's writes change, before any of them: the cases in id
/// order, then the agents. Another node's writer takes them in the same order, so the
/// two wait for each other rather than deadlock (which PostgreSQL would break only
/// after a second, failing one batch). `NO KEY UPDATE`, what an `UPDATE` takes, lets
/// the inserts that merely refer to a row (a message to its case) go on.
async fn lock_rows(
    tx: &mut PgConnection,
    (cases, agents): (Vec<CaseId>, Vec<AgentId>),
) -> sqlx::Result<()> {
    for (ids, lock) in [(cases, LOCK_CASE_ROWS), (agents, LOCK_AGENT_ROWS)] {
        if !ids.is_empty() {
            sqlx::query(lock).bind(&ids).execute(&mut *tx).await?;
        }
    }
    Ok(())
}

/// The cases and the agents the batch's writes change, each once, in id order.
fn batch_rows(batch: &[Box<dyn Job>]) -> (Vec<CaseId>, Vec<AgentId>) {
    let (mut cases, mut agents): (Vec<CaseId>, Vec<AgentId>) = (Vec::new(), Vec::new());
    for job in batch {
        let rows = job.rows();
        cases.extend(rows.case);
        agents.extend(rows.agent);
    }
    for ids in [&mut cases, &mut agents] {
        ids.sort_unstable();
        ids.dedup();
    }
    (cases, agents)
}

const LOCK_CASE_ROWS: &str = "SELECT 1 FROM cases WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE";
const LOCK_AGENT_ROWS: &str =
    "SELECT 1 FROM agents WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE";

/// Gives each of the run's cases its state and agent (their rows are locked: see
/// [`lock_rows`]).
const LOCK_CASES: &str = "SELECT id, chat_state, agent_id FROM cases WHERE id = ANY($1) \
     ORDER BY id FOR NO KEY UPDATE";

/// The last `seq` of each case, read once its lock is held.
const LAST_SEQS: &str = "SELECT case_id, MAX(seq) FROM messages WHERE case_id = ANY($1) \
     GROUP BY case_id";

/// The messages stored under the run's ids.
const STORED: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM messages JOIN UNNEST($1::BIGINT[], $2::TEXT[]) AS k (case_id, client_id) \
     USING (case_id, client_id)"
);

const INSERT_MESSAGES: &str = concat!(
    "INSERT INTO messages (",
    message_columns!(),
    ") SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], \
     $5::BIGINT[], $6::TEXT[], $7::TEXT[], $8::BIGINT[])"
);

/// Writes appends that arrived together: four statements whatever the run's size. An
/// error means the transaction must go.
pub(super) async fn append_all(
    tx: &mut PgConnection,
    mut run: Vec<AppendSlot<'_>>,
) -> sqlx::Result<()> {
    let mut ids: Vec<CaseId> = run.iter().map(|(append, _)| append.case).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut cases: HashMap<CaseId, Option<CaseForAppend>> =
        ids.iter().map(|id| (*id, None)).collect();
    for row in sqlx::query(LOCK_CASES)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?
    {
        let id: CaseId = row.try_get(0)?;
        cases.insert(
            id,
            Some(CaseForAppend {
                state: row.try_get(1)?,
                last_seq: 0,
                agent: row.try_get(2)?,
            }),
        );
    }
    for row in sqlx::query(LAST_SEQS)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?
    {
        let id: CaseId = row.try_get(0)?;
        if let Some(Some(case)) = cases.get_mut(&id) {
            case.last_seq = row.try_get(1)?;
        }
    }
    let (keys_case, keys_id): (Vec<CaseId>, Vec<&str>) = run
        .iter()
        .map(|(append, _)| (append.case, append.client_id.as_str()))
        .unzip();
    let mut stored = HashMap::new();
    for row in sqlx::query(STORED)
        .bind(&keys_case)
        .bind(&keys_id)
        .fetch_all(&mut *tx)
        .await?
    {
        let message = ChatMessage {
            case_id: row.try_get(0)?,
            seq: row.try_get(1)?,
            client_id: row.try_get(2)?,
            author: author_from_columns(row.try_get(3)?, row.try_get(4)?, row.try_get(5)?),
            body: row.try_get(6)?,
            sent_at: row.try_get(7)?,
        };
        stored.insert((message.case_id, message.client_id.clone()), message);
    }
    decide(&mut run, &mut cases, &stored, now_ms());
    let new: Vec<&ChatMessage> = run
        .iter()
        .filter_map(|(_, outcome)| match outcome {
            Some(Ok((message, true))) => Some(message),
            _ => None,
        })
        .collect();
    if new.is_empty() {
        return Ok(());
    }
    let authors: Vec<_> = new.iter().map(|m| author_columns(&m.author)).collect();
    sqlx::query(INSERT_MESSAGES)
        .bind(new.iter().map(|m| m.case_id).collect::<Vec<_>>())
        .bind(new.iter().map(|m| m.seq).collect::<Vec<_>>())
        .bind(new.iter().map(|m| m.client_id.as_str()).collect::<Vec<_>>())
        .bind(authors.iter().map(|a| a.0).collect::<Vec<_>>())
        .bind(authors.iter().map(|a| a.1).collect::<Vec<_>>())
        .bind(authors.iter().map(|a| a.2).collect::<Vec<_>>())
        .bind(new.iter().map(|m| m.body.as_str()).collect::<Vec<_>>())
        .bind(new.iter().map(|m| m.sent_at).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    Ok(())
}
