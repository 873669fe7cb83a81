//! Agents' accounts and their console sessions.

use super::*;

impl Store {
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
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
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
        let row = sqlx::query(
            "SELECT id, password_hash FROM agents WHERE lower(email) = lower($1) AND active",
        )
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
             WHERE id = $1 AND active",
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
                is_admin: flag(&row, "is_admin"),
            },
            routing: flag(&row, "routing"),
            capacity: capacity_of(&row),
            groups: self.groups_of(id).await?,
        }))
    }

    /// The agent's name, or an empty one for an account that is gone.
    pub async fn agent_name(&self, id: AgentId) -> StoreResult<String> {
        Ok(
            sqlx::query_scalar::<_, String>("SELECT name FROM agents WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.read)
                .await?
                .unwrap_or_default(),
        )
    }

    async fn groups_of(&self, agent: AgentId) -> StoreResult<Vec<GroupId>> {
        Ok(sqlx::query_scalar(
            "SELECT group_id FROM agent_groups WHERE agent_id = $1 ORDER BY group_id",
        )
        .bind(agent)
        .fetch_all(&self.read)
        .await?)
    }

    /// Every account, active or not, for the admin's agents page.
    pub async fn accounts(&self) -> StoreResult<Vec<AgentAccount>> {
        let rows = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM agents WHERE removed_at IS NULL ORDER BY lower(name), id"
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
            "SELECT {ACCOUNT_COLUMNS} FROM agents WHERE id = $1 AND removed_at IS NULL"
        ))
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        match row {
            Some(row) => Ok(Some(self.account_from_row(&row).await?)),
            None => Ok(None),
        }
    }

    async fn account_from_row(&self, row: &AnyRow) -> StoreResult<AgentAccount> {
        let id: AgentId = row.get("id");
        Ok(AgentAccount {
            id,
            name: row.get("name"),
            email: row.get("email"),
            is_admin: flag(row, "is_admin"),
            active: flag(row, "active"),
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
        self.lock_admins(&mut tx).await?;
        let admins_before = active_admins(&mut tx).await?;
        let done = sqlx::query(
            "UPDATE agents SET name = $1, email = $2, is_admin = $3, active = $4, capacity = $5, \
             password_hash = COALESCE($6, password_hash) WHERE id = $7",
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
        sqlx::query("DELETE FROM agent_groups WHERE agent_id = $1")
            .bind(account.id)
            .execute(&mut *tx)
            .await?;
        for group in &account.groups {
            sqlx::query("INSERT INTO agent_groups (agent_id, group_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(account.id)
                .bind(group)
                .execute(&mut *tx)
                .await?;
        }
        if !account.active {
            sqlx::query("DELETE FROM sessions WHERE agent_id = $1")
                .bind(account.id)
                .execute(&mut *tx)
                .await?;
        }
        // Checked inside the write, so two admins demoting each other at once cannot
        // both succeed (the writes take turns; across nodes, see `lock_admins`).
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
        self.lock_admins(&mut tx).await?;
        let admins_before = active_admins(&mut tx).await?;
        let done = sqlx::query(
            "UPDATE agents SET active = FALSE, routing = FALSE, removed_at = $1, \
             email = email || ' (removed ' || id || ')' WHERE id = $2 AND removed_at IS NULL",
        )
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        for sql in [
            "DELETE FROM agent_groups WHERE agent_id = $1",
            "DELETE FROM sessions WHERE agent_id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        if admins_before > 0 && active_admins(&mut tx).await? == 0 {
            return Err(StoreError::LastAdmin);
        }
        tx.commit().await?;
        Ok(true)
    }
    // --------------------------------------------------------------------- sessions

    /// Starts a session and returns the cookie's token.
    pub async fn create_session(&self, agent: AgentId, lifetime: Duration) -> StoreResult<String> {
        let token = secret::token();
        let expires = now_ms() + lifetime.as_millis() as Millis;
        sqlx::query("INSERT INTO sessions (token_hash, agent_id, expires_at) VALUES ($1, $2, $3)")
            .bind(secret::digest(&token))
            .bind(agent)
            .bind(expires)
            .execute(&mut *self.writing().await?)
            .await?;
        Ok(token)
    }

    pub async fn session_agent(&self, token: &str) -> StoreResult<Option<AgentRecord>> {
        let id: Option<AgentId> = sqlx::query_scalar(
            "SELECT agent_id FROM sessions WHERE token_hash = $1 AND expires_at > $2",
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

    /// Which of these sessions (token digests) are still live.
    pub async fn live_sessions(&self, digests: &[String]) -> StoreResult<HashSet<String>> {
        let mut live = HashSet::new();
        for chunk in digests.chunks(500) {
            let marks = (2..chunk.len() + 2)
                .map(|n| format!("${n}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT token_hash FROM sessions WHERE expires_at > $1 AND token_hash IN ({marks})"
            );
            let mut query = sqlx::query_scalar::<_, String>(&sql).bind(now_ms());
            for digest in chunk {
                query = query.bind(digest);
            }
            live.extend(query.fetch_all(&self.read).await?);
        }
        Ok(live)
    }

    /// Ends the session of this cookie token; returns its digest (for closing its sockets).
    pub async fn delete_session(&self, token: &str) -> StoreResult<String> {
        let digest = secret::digest(token);
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
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
            "DELETE FROM sessions WHERE agent_id = $1 AND token_hash <> $2 RETURNING token_hash",
        )
        .bind(agent)
        .bind(keep)
        .fetch_all(&mut *self.writing().await?)
        .await?)
    }

    /// Forgets the sessions that expired by `now`; returns their digests.
    pub async fn purge_expired_sessions(&self, now: Millis) -> StoreResult<Vec<String>> {
        Ok(
            sqlx::query_scalar("DELETE FROM sessions WHERE expires_at <= $1 RETURNING token_hash")
                .bind(now)
                .fetch_all(&mut *self.writing().await?)
                .await?,
        )
    }

    /// On PostgreSQL, locks the active admins' rows for the rest of `tx`, so that two
    /// nodes changing admins at once take turns and the last active admin stays (on
    /// SQLite the writes take turns already).
    async fn lock_admins(&self, tx: &mut AnyConnection) -> StoreResult<()> {
        if let Engine::Postgres { .. } = self.engine {
            sqlx::query("SELECT id FROM agents WHERE is_admin AND active ORDER BY id FOR UPDATE")
                .fetch_all(&mut *tx)
                .await?;
        }
        Ok(())
    }
}
