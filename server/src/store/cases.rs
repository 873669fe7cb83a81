//! Visitors, cases and their messages, presence and the offer log, as read (and the
//! few case writes outside the chat queue).

use super::*;

impl Store {
    // --------------------------------------------------------------------- visitors

    pub async fn visitor_by_token(&self, token: &str) -> StoreResult<Option<VisitorId>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM visitors WHERE token_hash = $1")
                .bind(secret::digest(token))
                .fetch_optional(&self.read)
                .await?,
        )
    }

    /// The visitor's chat that has not ended, if any.
    pub async fn live_case_of(&self, visitor: VisitorId) -> StoreResult<Option<CaseId>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM cases WHERE visitor_id = $1 AND chat_state != 'ended' \
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
            "SELECT {CASE_COLUMNS} FROM {CASE_FROM} WHERE c.id = $1"
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
    pub(super) async fn page(
        &self,
        case: CaseId,
        after: Seq,
        before: Seq,
    ) -> StoreResult<Vec<ChatMessage>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages WHERE case_id = $1 AND seq > $2 AND seq < $3 \
             ORDER BY seq DESC LIMIT $4"
        ))
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

    /// A case's messages with `after < seq <= upto` sent at `since` or later, oldest
    /// first, at most a thousand: what a node's sockets missed (see [`crate::bus`]).
    pub async fn messages_between(
        &self,
        case: CaseId,
        after: Seq,
        upto: Seq,
        since: Millis,
    ) -> StoreResult<Vec<ChatMessage>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages WHERE case_id = $1 AND seq > $2 AND seq <= $3 AND sent_at >= $4 \
             ORDER BY seq LIMIT 1000"
        ))
        .bind(case)
        .bind(after)
        .bind(upto)
        .bind(since)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.iter().map(message_from_row).collect())
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
        let marks = (1..=ids.len())
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
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
            "SELECT id FROM cases WHERE agent_id = $1 AND chat_state = 'active' ORDER BY id",
        )
        .bind(agent)
        .fetch_all(&self.read)
        .await?)
    }

    /// The chats waiting for an agent, each with whether its customer has gone.
    pub async fn queued_cases_away(&self) -> StoreResult<Vec<(CaseId, bool)>> {
        let rows: Vec<(CaseId, Option<Millis>)> =
            sqlx::query_as("SELECT id, customer_gone_at FROM cases WHERE chat_state = 'queued'")
                .fetch_all(&self.read)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(case, gone)| (case, gone.is_some()))
            .collect())
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
    pub(super) async fn write<O: Op>(&self, op: O) -> StoreResult<O::Output> {
        self.queue(op).await?.committed().await
    }

    /// Queues `op` behind every write queued before it, without waiting for the commit:
    /// the caller awaits [`Queued::committed`] when it needs the outcome.
    async fn queue<O: Op>(&self, op: O) -> StoreResult<Queued<O::Output>> {
        writer::queue(&self.writes, op).await
    }

    /// `node` has a socket of `who` again (its first): counted there, and no longer
    /// gone. Gives whether they counted as gone.
    pub async fn here(&self, node: &str, who: Presence) -> StoreResult<bool> {
        self.mark(node, who, Sockets::Opened).await
    }

    /// The last socket of `who` on `node` closed at `at`: gone from then, unless a live
    /// node still has one of theirs. Gives whether they became gone.
    pub async fn left(&self, node: &str, who: Presence, at: Millis) -> StoreResult<bool> {
        self.mark(node, who, Sockets::Closed(at)).await
    }

    /// Records a change in `node`'s sockets of `who` (see [`Sockets`]): gives whether
    /// they became gone (or, for [`Sockets::Opened`], whether they were).
    pub async fn mark(&self, node: &str, who: Presence, sockets: Sockets) -> StoreResult<bool> {
        self.write(Mark {
            node: node.to_owned(),
            who,
            sockets,
            now: now_ms(),
        })
        .await
    }

    /// Puts an agent in a queued chat. `false` when the chat is no longer queued.
    /// Queued without waiting for the commit (routing goes on deciding meanwhile).
    pub async fn queue_assign(
        &self,
        fence: Fence,
        case: CaseId,
        agent: AgentId,
    ) -> StoreResult<Queued<bool>> {
        self.queue(Fenced {
            fence,
            op: Assign { case, agent },
        })
        .await
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
            sqlx::query("UPDATE cases SET status = $1, subject = $2, group_id = $3 WHERE id = $4")
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
        let mut binds = 0;
        let mut next = || {
            binds += 1;
            format!("${binds}")
        };
        if filter.status.is_some() {
            sql.push_str(&format!(" AND c.status = {}", next()));
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
            // Lower case on both sides, by the database: PostgreSQL's LIKE minds case.
            let word = format!("lower({})", next());
            sql.push_str(&format!(
                " AND (lower(c.customer_name) LIKE {word} ESCAPE '\\' \
                 OR lower(c.subject) LIKE {word} ESCAPE '\\' \
                 OR lower(COALESCE(c.customer_email, '')) LIKE {word} ESCAPE '\\')"
            ));
        }
        if filter.before.is_some() {
            sql.push_str(&format!(" AND c.id < {}", next()));
        }
        sql.push_str(&format!(" ORDER BY c.id DESC LIMIT {}", next()));
        // Bound in the order the clauses were written.
        let mut query = sqlx::query(&sql);
        if let Some(status) = filter.status {
            query = query.bind(status_name(status));
        }
        if let Some(words) = &words {
            query = query.bind(words.clone());
        }
        if let Some(before) = filter.before {
            query = query.bind(before);
        }
        let rows = query.bind(CASES_PAGE as i64).fetch_all(&self.read).await?;
        Ok(rows.iter().map(|r| case_record(r).summary).collect())
    }

    /// The agent's absence was dealt with (their chats went back to the queue): it
    /// starts no timer again until they come and go once more.
    pub async fn clear_agent_gone(&self, agent: AgentId) -> StoreResult<()> {
        sqlx::query("UPDATE agents SET gone_at = NULL WHERE id = $1")
            .bind(agent)
            .execute(&mut *self.writing().await?)
            .await?;
        Ok(())
    }

    /// Live chats whose customer has been gone since `before` or longer.
    pub async fn chats_idle_since(&self, before: Millis) -> StoreResult<Vec<CaseId>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM cases WHERE chat_state != 'ended' \
             AND customer_gone_at IS NOT NULL AND customer_gone_at <= $1",
        )
        .bind(before)
        .fetch_all(&self.read)
        .await?)
    }

    /// Agents whose consoles have all been gone since `before` or longer.
    pub async fn agents_gone_since(&self, before: Millis) -> StoreResult<Vec<AgentId>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM agents WHERE gone_at IS NOT NULL AND gone_at <= $1")
                .bind(before)
                .fetch_all(&self.read)
                .await?,
        )
    }

    // -------------------------------------------------------------------- offer log

    /// Records a screen pop opened on `agent`'s screen, to run out at `expires_at`.
    pub async fn open_offer(
        &self,
        fence: Fence,
        case: CaseId,
        agent: AgentId,
        expires_at: Millis,
    ) -> StoreResult<Queued<()>> {
        let at = now_ms();
        let op = OpenOffer {
            case,
            agent,
            expires_at,
            at,
        };
        self.queue(Fenced { fence, op }).await
    }

    /// Records how the open screen pop of `case` on `agent`'s screen ended.
    pub async fn close_offer(
        &self,
        fence: Fence,
        case: CaseId,
        agent: AgentId,
        outcome: OfferClosed,
    ) -> StoreResult<Queued<()>> {
        let at = now_ms();
        let op = CloseOffer {
            case,
            agent,
            outcome,
            at,
        };
        self.queue(Fenced { fence, op }).await
    }

    pub async fn offer_log(&self, case: CaseId) -> StoreResult<Vec<OfferLogEntry>> {
        let rows = sqlx::query(
            "SELECT a.name, o.offered_at, o.closed_at, o.outcome FROM offer_log o \
             JOIN agents a ON a.id = o.agent_id WHERE o.case_id = $1 ORDER BY o.id",
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

    /// An agent's routing switch. `false` when there is no such agent.
    pub async fn set_routing(&self, agent: AgentId, on: bool) -> StoreResult<bool> {
        self.write(SetRouting { agent, on }).await
    }

    /// Queues routing's switching an agent's routing off, without waiting for the
    /// commit.
    pub async fn queue_routing_off(
        &self,
        fence: Fence,
        agent: AgentId,
    ) -> StoreResult<Queued<bool>> {
        let op = SetRouting { agent, on: false };
        self.queue(Fenced { fence, op }).await
    }
}
