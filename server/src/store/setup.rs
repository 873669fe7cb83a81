//! What admins set up: groups, macros and settings.

use super::*;

impl Store {
    // ----------------------------------------------------------------------- groups

    pub async fn groups(&self) -> StoreResult<Vec<Group>> {
        let rows: Vec<(GroupId, String)> =
            sqlx::query_as("SELECT id, name FROM groups ORDER BY lower(name), id")
                .fetch_all(&self.read)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(id, name)| Group { id, name })
            .collect())
    }

    pub async fn create_group(&self, name: &str) -> StoreResult<Group> {
        let id = sqlx::query_scalar("INSERT INTO groups (name) VALUES ($1) RETURNING id")
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
        let done = sqlx::query("UPDATE groups SET name = $1 WHERE id = $2")
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
        sqlx::query("UPDATE cases SET group_id = NULL WHERE group_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM agent_groups WHERE group_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM groups WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }
    // ----------------------------------------------------------------------- macros

    pub async fn macros(&self) -> StoreResult<Vec<Macro>> {
        let rows: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT id, name, body FROM macros ORDER BY lower(name), id")
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
            "INSERT INTO macros (name, body, created_at, updated_at) VALUES ($1, $2, $3, $4) \
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
        let done =
            sqlx::query("UPDATE macros SET name = $1, body = $2, updated_at = $3 WHERE id = $4")
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
        let done = sqlx::query("DELETE FROM macros WHERE id = $1")
            .bind(id)
            .execute(&mut *self.writing().await?)
            .await?;
        Ok(done.rows_affected() == 1)
    }
    // --------------------------------------------------------------------- settings

    pub async fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.read)
                .await?,
        )
    }

    pub async fn set_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&mut *self.writing().await?)
        .await?;
        Ok(())
    }

    /// The name of the nodes that share this database, made on first use: their
    /// subjects on NATS start with it, so two clusters on one NATS server never mix.
    pub async fn cluster_name(&self) -> StoreResult<String> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ('cluster_name', $1) \
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(&secret::token()[..12])
        .execute(&mut *self.writing().await?)
        .await?;
        Ok(self.setting("cluster_name").await?.unwrap_or_default())
    }
}
