//! The one chat writer of each store: every chat write goes through one queue, and
//! whatever waits while a commit runs shares the next one: one disk flush for a burst
//! instead of one each. The queue is the same for both databases; each has its own
//! loop ([`super::sqlite`], [`super::postgres`]).
//!
//! A write is an [`Op`]: plain data and the statements it runs, on each database.
//! Writes queued one after another commit in that order, so a caller that queues
//! without waiting (see [`Queued`]) still sees its writes land in order.
//!
//! The other writes (accounts, settings, groups) go through sqlx's write pool; they and
//! the SQLite writer take turns through [`WriteTurn`], so neither ever waits on
//! SQLite's lock.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use rusqlite::Transaction;
use sqlx::PgConnection;
use tokio::sync::{Mutex, mpsc, oneshot};

use parlor_protocol::{AgentId, CaseId, ChatMessage};

use super::appends::AppendSlot;
use super::{StoreError, StoreResult};

/// A write's future on PostgreSQL, boxed so queued writes of every kind share a queue.
pub(super) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One write, applied inside a transaction it shares with others.
pub(super) trait Op: Send + Sync + 'static {
    type Output: Send + 'static;

    /// Writes inside `tx` (SQLite). The outer error means the transaction must go (the
    /// batch is then tried again one write at a time, so each gets its own outcome);
    /// the inner one is this write's own refusal, decided before it wrote anything, and
    /// the rest of the batch commits.
    fn apply(&self, tx: &Transaction<'_>) -> rusqlite::Result<StoreResult<Self::Output>>;

    /// The same on PostgreSQL, inside the transaction `tx`.
    fn apply_pg<'a>(
        &'a self,
        tx: &'a mut PgConnection,
    ) -> impl Future<Output = sqlx::Result<StoreResult<Self::Output>>> + Send + 'a;

    /// Whether this is a message to append: appends next to each other in a batch are
    /// written together.
    fn appends(&self) -> bool {
        false
    }

    /// The rows this write changes or locks, if any: PostgreSQL's writer locks those
    /// of a whole batch first, in one order, so two nodes' batches do not deadlock over
    /// cases and agents. (A new chat's visitor row is still locked in batch order.)
    fn rows(&self) -> Rows {
        Rows::default()
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
    fn apply_pg<'a>(&'a mut self, tx: &'a mut PgConnection) -> BoxFuture<'a, sqlx::Result<()>>;
    /// The write was not committed.
    fn failed(&mut self, error: StoreError);
    /// Tells the sender how it went, after the commit. The sender may have gone (its
    /// socket closed); what was written stays.
    fn reply(self: Box<Self>);
    /// The message to append and its outcome's place, if this job is one: appends
    /// next to each other in a batch are written together.
    fn appending(&mut self) -> Option<AppendSlot<'_>> {
        None
    }
    fn is_append(&self) -> bool {
        false
    }
    fn rows(&self) -> Rows;
}

/// The case and the agent row a write changes or locks (see [`Op::rows`]).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Rows {
    pub case: Option<CaseId>,
    pub agent: Option<AgentId>,
}

impl Rows {
    pub fn case(case: CaseId) -> Self {
        Self {
            case: Some(case),
            agent: None,
        }
    }

    pub fn agent(agent: AgentId) -> Self {
        Self {
            case: None,
            agent: Some(agent),
        }
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

    fn apply_pg<'a>(&'a mut self, tx: &'a mut PgConnection) -> BoxFuture<'a, sqlx::Result<()>> {
        Box::pin(async move {
            self.outcome = Some(self.op.apply_pg(tx).await?);
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

    fn rows(&self) -> Rows {
        self.op.rows()
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

/// A group's writes as each database writes them: one by one, except appends next to
/// each other, which go in together.
pub(super) enum Run<'a> {
    One(&'a mut Box<dyn Job>),
    Appends(Vec<AppendSlot<'a>>),
}

/// Splits `batch` into its [`Run`]s, in order.
pub(super) fn runs(batch: &mut [Box<dyn Job>]) -> Vec<Run<'_>> {
    let mut runs = Vec::new();
    let mut rest = batch;
    while !rest.is_empty() {
        let appends = rest.iter().take_while(|job| job.is_append()).count();
        let (run, after) = std::mem::take(&mut rest).split_at_mut(appends.max(1));
        runs.push(if appends == 0 {
            Run::One(&mut run[0])
        } else {
            Run::Appends(run.iter_mut().filter_map(|job| job.appending()).collect())
        });
        rest = after;
    }
    runs
}

/// After a group's commit (or its failure): publishes the new messages it committed, in
/// its order (with `again`, every message it answered with: the group was written
/// again after a try whose commit may have gone through unannounced), then tells every
/// sender how its write went.
pub(super) fn finish(batch: &mut Vec<Box<dyn Job>>, publish: &Publish, again: bool) {
    if let Some(publish) = publish.get() {
        for job in batch.iter_mut() {
            if let Some((_, Some(Ok((message, new))))) = job.appending()
                && (*new || again)
            {
                publish(message);
            }
        }
    }
    batch.drain(..).for_each(Job::reply);
}
