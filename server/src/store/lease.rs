//! The routing lease: with several nodes on one database, one routes chats at a time,
//! the node holding the `routing_lease` row. It renews the lease well before it runs
//! out; when it stops doing so (killed, cut off), another node takes the row once it
//! has run out, raising its `epoch`.
//!
//! Routing's writes are fenced by that epoch ([`Fenced`]): each checks, in its own
//! transaction, that the lease still has the epoch it was decided under, and is refused
//! otherwise. On PostgreSQL the check holds a share lock on the row until the commit,
//! so a node taking the lease over waits for it: a write either commits before the new
//! epoch exists or sees it and changes nothing. A leader that lost its lease without
//! knowing (paused, or its renewals lost) can decide, but never commit.
//!
//! The lease's clock is each node's own: a node whose clock runs ahead takes the lease
//! early, which the fence makes safe; it only costs the old leader its last decisions.
//!
//! Each node also keeps a lease on its row in `nodes` (see `crate::timers`): the
//! sockets it counts as here count only while it holds it. That lease is judged by
//! the routing node's clock, so the nodes' clocks must agree to well within its five
//! seconds (NTP does): a node whose clock lags by more counts as dead.

use rusqlite::{OptionalExtension, Transaction, params};
use sqlx::PgConnection;

use super::writer::{Op, Rows};
use super::{Presence, Store, StoreError, StoreResult};
use parlor_protocol::Millis;

/// Which holding of the routing lease routing's writes were decided under: `epoch`
/// rises each time a node takes the lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Epoch(pub i64);

/// What routing's writes are checked against: the lease's epoch with several nodes,
/// nothing with one (no other node can route).
pub type Fence = Option<Epoch>;

const TAKE: &str = "UPDATE routing_lease SET holder = $1, epoch = epoch + 1, \
     expires_at = $2 WHERE id = 1 AND expires_at <= $3 RETURNING epoch";

const RENEW: &str = "UPDATE routing_lease SET expires_at = $1 \
     WHERE id = 1 AND holder = $2 AND epoch = $3";

const HELD: &str = "SELECT 1 FROM routing_lease WHERE id = 1 AND epoch = $1";

/// The same, keeping the row from changing until the transaction ends.
const HELD_PG: &str = "SELECT 1 FROM routing_lease WHERE id = 1 AND epoch = $1 FOR SHARE";

impl Store {
    /// Takes the routing lease for `node` until `until` if it ran out by `now`; gives
    /// the new epoch, or `None` while another node holds it.
    pub async fn take_lease(
        &self,
        node: &str,
        now: Millis,
        until: Millis,
    ) -> StoreResult<Option<Epoch>> {
        let epoch: Option<i64> = sqlx::query_scalar(TAKE)
            .bind(node)
            .bind(until)
            .bind(now)
            .fetch_optional(&mut *self.writing().await?)
            .await?;
        Ok(epoch.map(Epoch))
    }

    /// Keeps the lease `node` holds under `epoch` until `until`; `false` when it is no
    /// longer theirs.
    pub async fn renew_lease(&self, node: &str, epoch: Epoch, until: Millis) -> StoreResult<bool> {
        let renewed = sqlx::query(RENEW)
            .bind(until)
            .bind(node)
            .bind(epoch.0)
            .execute(&mut *self.writing().await?)
            .await?;
        Ok(renewed.rows_affected() == 1)
    }

    /// Gives the lease up at once (a node shutting down), so another takes it without
    /// waiting for it to run out.
    pub async fn give_up_lease(&self, node: &str, epoch: Epoch) -> StoreResult<()> {
        self.renew_lease(node, epoch, 0).await.map(drop)
    }

    // ------------------------------------------------------------------ node leases

    /// Keeps `node` alive from `now` until `until`: the sockets it counts count (see
    /// [`Store::here`]). Gives whether its lease had run out (or was about to, within
    /// a second) or was forgotten: the sockets it counted may have been uncounted
    /// meanwhile, and must be counted again.
    pub async fn renew_node(&self, node: &str, now: Millis, until: Millis) -> StoreResult<bool> {
        let mut conn = self.writing().await?;
        let before: Option<Millis> =
            sqlx::query_scalar("SELECT expires_at FROM nodes WHERE id = $1")
                .bind(node)
                .fetch_optional(&mut *conn)
                .await?;
        sqlx::query(
            "INSERT INTO nodes (id, expires_at) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at",
        )
        .bind(node)
        .bind(until)
        .execute(&mut *conn)
        .await?;
        Ok(before.is_none_or(|at| at <= now + 1_000))
    }

    /// Who holds the routing lease, under which epoch, until when.
    pub async fn routing_lease(&self) -> StoreResult<(String, Epoch, Millis)> {
        let (holder, epoch, until): (String, i64, Millis) =
            sqlx::query_as("SELECT holder, epoch, expires_at FROM routing_lease WHERE id = 1")
                .fetch_one(&self.read)
                .await?;
        Ok((holder, Epoch(epoch), until))
    }

    /// The nodes whose lease ran out by `now` (stopped, killed or cut off), with when.
    pub async fn dead_nodes(&self, now: Millis) -> StoreResult<Vec<(String, Millis)>> {
        Ok(
            sqlx::query_as("SELECT id, expires_at FROM nodes WHERE expires_at <= $1")
                .bind(now)
                .fetch_all(&self.read)
                .await?,
        )
    }

    /// Whose sockets `node` counted.
    pub async fn counted_on(&self, node: &str) -> StoreResult<Vec<Presence>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT kind, id FROM presence WHERE node = $1")
                .bind(node)
                .fetch_all(&self.read)
                .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(kind, id)| Presence::from_row(&kind, id))
            .collect())
    }

    /// Forgets a node dead at `now` once it counts nobody (one that renewed its lease
    /// meanwhile stays).
    pub async fn forget_node(&self, node: &str, now: Millis) -> StoreResult<()> {
        sqlx::query(
            "DELETE FROM nodes WHERE id = $1 AND expires_at <= $2 \
             AND NOT EXISTS (SELECT 1 FROM presence WHERE node = $1)",
        )
        .bind(node)
        .bind(now)
        .execute(&mut *self.writing().await?)
        .await?;
        Ok(())
    }
}

/// A routing write, made only while the lease still has the epoch it was decided
/// under; else it changes nothing and fails with [`StoreError::NotLeader`].
pub(super) struct Fenced<O> {
    pub fence: Fence,
    pub op: O,
}

impl<O: Op> Op for Fenced<O> {
    type Output = O::Output;

    fn rows(&self) -> Rows {
        self.op.rows()
    }

    fn apply(&self, tx: &Transaction<'_>) -> rusqlite::Result<StoreResult<O::Output>> {
        if let Some(Epoch(epoch)) = self.fence {
            // The writer's transaction holds SQLite's write lock: the lease cannot change
            // before it commits.
            let held = tx
                .prepare_cached(HELD)?
                .query_row(params![epoch], |_| Ok(()))
                .optional()?;
            if held.is_none() {
                return Ok(Err(StoreError::NotLeader));
            }
        }
        self.op.apply(tx)
    }

    async fn apply_pg(&self, tx: &mut PgConnection) -> sqlx::Result<StoreResult<O::Output>> {
        if let Some(Epoch(epoch)) = self.fence {
            let held: Option<i32> = sqlx::query_scalar(HELD_PG)
                .bind(epoch)
                .fetch_optional(&mut *tx)
                .await?;
            if held.is_none() {
                return Ok(Err(StoreError::NotLeader));
            }
        }
        self.op.apply_pg(tx).await
    }
}
