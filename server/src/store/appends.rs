//! Messages appended to cases, the writer's busiest work. Appends that arrive together
//! are written together: each database reads what the run depends on (each case once,
//! each id the run uses), [`decide`] settles every append from that, the same way on
//! both, and the new messages are inserted.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use parlor_protocol::{AgentId, Author, CaseId, ChatMessage, Millis, Seq};
use rusqlite::{OptionalExtension, Row, Transaction, params};
use sqlx::PgConnection;

use super::writer::{Op, Rows};
use super::{StoreError, StoreResult, author_from_columns, now_ms};

/// One message to append.
pub(super) struct Append {
    pub case: CaseId,
    pub client_id: String,
    pub author: Author,
    pub body: String,
    /// Refused once the case holds this many messages (Parlor's own are never refused:
    /// a chat can always end).
    pub cap: Seq,
    /// The agent who must be in the chat for it to be written: an agent's own send is
    /// checked here, in the transaction, rather than by a read before it.
    pub member: Option<AgentId>,
}

/// An append waiting in a batch, and where its outcome goes.
pub(super) type AppendSlot<'a> = (&'a Append, &'a mut Option<StoreResult<(ChatMessage, bool)>>);

impl Op for Append {
    type Output = (ChatMessage, bool);

    fn rows(&self) -> Rows {
        Rows::case(self.case)
    }

    fn appends(&self) -> bool {
        true
    }

    fn appending<'a>(
        &'a self,
        outcome: &'a mut Option<StoreResult<Self::Output>>,
    ) -> Option<AppendSlot<'a>> {
        Some((self, outcome))
    }

    /// The writer takes appends a run at a time; one alone is a run of one.
    fn apply(&self, tx: &Transaction<'_>) -> rusqlite::Result<StoreResult<Self::Output>> {
        let mut outcome = None;
        append_all(tx, vec![(self, &mut outcome)])?;
        Ok(outcome.unwrap_or(Err(StoreError::CaseNotFound)))
    }

    async fn apply_pg(&self, tx: &mut PgConnection) -> sqlx::Result<StoreResult<Self::Output>> {
        let mut outcome = None;
        super::postgres::append_all(tx, vec![(self, &mut outcome)]).await?;
        Ok(outcome.unwrap_or(Err(StoreError::CaseNotFound)))
    }
}

/// What an append depends on in its case.
pub(super) struct CaseForAppend {
    pub state: String,
    /// The case's last `seq`: the next message is the one after.
    pub last_seq: Seq,
    /// The agent in the chat.
    pub agent: Option<AgentId>,
}

/// Settles a run of appends in order: each gets what it would get alone. `cases` holds
/// every case of the run (`None`: no such case) and `stored` the messages already
/// stored under the ids the run uses; a retry of an append earlier in the same run is
/// answered with the message that one made. Every new message is in its outcome as
/// `Ok((message, true))`, with the next `seq` of its case.
pub(super) fn decide(
    run: &mut [AppendSlot<'_>],
    cases: &mut HashMap<CaseId, Option<CaseForAppend>>,
    stored: &HashMap<(CaseId, String), ChatMessage>,
    now: Millis,
) {
    // Messages made by this run, by case and id: where their outcome is.
    let mut made: HashMap<(CaseId, &str), usize> = HashMap::new();
    for i in 0..run.len() {
        let append = run[i].0;
        let earlier = match made.get(&(append.case, append.client_id.as_str())) {
            Some(&at) => match &run[at].1 {
                Some(Ok((message, _))) => Some(message.clone()),
                _ => None,
            },
            // Usually none: only a retry finds one.
            None if stored.is_empty() => None,
            None => stored
                .get(&(append.case, append.client_id.clone()))
                .cloned(),
        };
        let outcome = if let Some(message) = earlier {
            if same_author(&message.author, &append.author) {
                Ok((message, false))
            } else {
                Err(StoreError::ClientIdTaken)
            }
        } else if let Some(Some(case)) = cases.get_mut(&append.case) {
            match refusal(append, &case.state, case.last_seq, case.agent) {
                Some(refused) => Err(refused),
                None => {
                    case.last_seq += 1;
                    made.insert((append.case, append.client_id.as_str()), i);
                    Ok((
                        ChatMessage {
                            case_id: append.case,
                            seq: case.last_seq,
                            client_id: append.client_id.clone(),
                            author: append.author.clone(),
                            body: append.body.clone(),
                            sent_at: now,
                        },
                        true,
                    ))
                }
            }
        } else {
            Err(StoreError::CaseNotFound)
        };
        *run[i].1 = Some(outcome);
    }
}

/// The message stored under an id in a case, if any (the `(case_id, client_id)` index).
pub(super) const STORED_UNDER: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM messages WHERE case_id = $1 AND client_id = $2"
);

/// What an append checks of its case: the chat's state, the last `seq` (from the
/// primary key's index) and the agent in it.
const CASE_FOR_APPEND: &str = "SELECT c.chat_state, \
     (SELECT COALESCE(MAX(m.seq), 0) FROM messages m WHERE m.case_id = c.id), \
     c.agent_id FROM cases c WHERE c.id = $1";

pub(super) const INSERT_MESSAGE: &str = concat!(
    "INSERT INTO messages (",
    message_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
);

/// Writes appends that arrived together, on SQLite: each case read once for all its
/// appends, each id looked up and each message inserted with statements prepared once.
/// An error means the transaction must go.
pub(super) fn append_all(
    tx: &Transaction<'_>,
    mut run: Vec<AppendSlot<'_>>,
) -> rusqlite::Result<()> {
    let mut stored_under = tx.prepare_cached(STORED_UNDER)?;
    let mut case_for = tx.prepare_cached(CASE_FOR_APPEND)?;
    let mut cases = HashMap::new();
    let mut stored = HashMap::new();
    for (append, _) in &run {
        if let Some(message) = stored_under
            .query_row(params![append.case, append.client_id], message_from_row)
            .optional()?
        {
            stored.insert((append.case, append.client_id.clone()), message);
        }
        if let Entry::Vacant(slot) = cases.entry(append.case) {
            let case = case_for
                .query_row([append.case], |row| {
                    Ok(CaseForAppend {
                        state: row.get(0)?,
                        last_seq: row.get(1)?,
                        agent: row.get(2)?,
                    })
                })
                .optional()?;
            slot.insert(case);
        }
    }
    decide(&mut run, &mut cases, &stored, now_ms());
    let mut insert = tx.prepare_cached(INSERT_MESSAGE)?;
    for (_, outcome) in &run {
        if let Some(Ok((message, true))) = outcome {
            let (kind, agent_id, name) = author_columns(&message.author);
            insert.execute(params![
                message.case_id,
                message.seq,
                message.client_id,
                kind,
                agent_id,
                name,
                message.body,
                message.sent_at
            ])?;
        }
    }
    Ok(())
}

/// A message as the writer reads it back (columns as in `message_columns!`).
fn message_from_row(row: &Row<'_>) -> rusqlite::Result<ChatMessage> {
    Ok(ChatMessage {
        case_id: row.get(0)?,
        seq: row.get(1)?,
        client_id: row.get(2)?,
        author: author_from_columns(&row.get::<_, String>(3)?, row.get(4)?, row.get(5)?),
        body: row.get(6)?,
        sent_at: row.get(7)?,
    })
}

/// Why `append` may not be written to a case in `state` holding `last_seq` messages
/// with `agent` in it, if it may not. Parlor's own messages always may: a chat can
/// always end.
fn refusal(
    append: &Append,
    state: &str,
    last_seq: Seq,
    agent: Option<AgentId>,
) -> Option<StoreError> {
    if append.author == Author::System {
        return None;
    }
    if state == "ended" {
        return Some(StoreError::ChatEnded);
    }
    if append.member.is_some() && (state != "active" || agent != append.member) {
        return Some(StoreError::NotInChat);
    }
    (last_seq >= append.cap).then_some(StoreError::CaseFull(append.cap))
}

/// How an author is stored: kind, agent id and name.
pub(super) fn author_columns(author: &Author) -> (&'static str, Option<AgentId>, &str) {
    match author {
        Author::Customer { name } => ("customer", None, name.as_str()),
        Author::Agent { id, name } => ("agent", Some(*id), name.as_str()),
        Author::System => ("system", None, ""),
    }
}

/// A retry must come from whoever sent the original: the same customer or agent.
fn same_author(stored: &Author, retry: &Author) -> bool {
    match (stored, retry) {
        (Author::Customer { .. }, Author::Customer { .. }) => true,
        (Author::Agent { id: a, .. }, Author::Agent { id: b, .. }) => a == b,
        (Author::System, Author::System) => true,
        _ => false,
    }
}
