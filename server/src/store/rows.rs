//! How rows map to Parlor's types, and the small helpers the queries share.

use super::*;

pub(super) fn capacity_of(row: &AnyRow) -> u32 {
    u32::try_from(row.get::<i64, _>("capacity").clamp(1, 1000)).unwrap_or(1)
}

/// A yes-or-no column: SQLite keeps it as an integer, PostgreSQL as a boolean.
pub(super) fn flag(row: &AnyRow, column: &str) -> bool {
    row.try_get::<bool, _>(column)
        .or_else(|_| row.try_get::<i64, _>(column).map(|n| n != 0))
        .unwrap_or(false)
}

pub(super) fn status_name(status: CaseStatus) -> &'static str {
    match status {
        CaseStatus::New => "new",
        CaseStatus::Open => "open",
        CaseStatus::Pending => "pending",
        CaseStatus::Resolved => "resolved",
    }
}

pub(super) fn status_from_name(name: &str) -> CaseStatus {
    CaseStatus::ALL
        .into_iter()
        .find(|s| status_name(*s) == name)
        .unwrap_or_default()
}

pub(super) fn outcome_name(outcome: OfferClosed) -> &'static str {
    match outcome {
        OfferClosed::TimedOut => "timed_out",
        OfferClosed::Disabled => "disabled",
        OfferClosed::Abandoned => "abandoned",
        OfferClosed::Accepted => "accepted",
        OfferClosed::Withdrawn => "withdrawn",
    }
}

pub(super) fn outcome_from_name(name: &str) -> Option<OfferClosed> {
    [
        OfferClosed::TimedOut,
        OfferClosed::Disabled,
        OfferClosed::Abandoned,
        OfferClosed::Accepted,
        OfferClosed::Withdrawn,
    ]
    .into_iter()
    .find(|o| outcome_name(*o) == name)
}

/// A `LIKE` pattern finding `words` anywhere, with `%`, `_` and `\` taken literally.
pub(super) fn like_pattern(words: &str) -> String {
    let mut pattern = String::from("%");
    for c in words.trim().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

pub(super) fn name_taken(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::Database(e) if e.is_unique_violation() => StoreError::NameTaken,
        other => other.into(),
    }
}

pub(super) fn message_from_row(row: &AnyRow) -> ChatMessage {
    ChatMessage {
        case_id: row.get("case_id"),
        seq: row.get("seq"),
        client_id: row.get("client_id"),
        author: author_from_columns(
            row.get("author_kind"),
            row.get("agent_id"),
            row.get("author_name"),
        ),
        body: row.get("body"),
        sent_at: row.get("sent_at"),
    }
}

/// A message's author from how it is stored: kind, agent id and name.
pub(super) fn author_from_columns(kind: &str, agent_id: Option<AgentId>, name: String) -> Author {
    match kind {
        "customer" => Author::Customer { name },
        "agent" => Author::Agent {
            id: agent_id.unwrap_or_default(),
            name,
        },
        _ => Author::System,
    }
}

pub(super) fn case_record(row: &AnyRow) -> CaseRecord {
    let state = match row.get::<&str, _>("chat_state") {
        "queued" => ChatState::Queued,
        "active" => ChatState::Active,
        _ => ChatState::Ended,
    };
    let ended_by = match row.get::<Option<&str>, _>("ended_by") {
        Some("customer") => Some(EndedBy::Customer),
        Some("timeout") => Some(EndedBy::Timeout),
        Some(_) => Some(EndedBy::Agent {
            name: row
                .get::<Option<String>, _>("ended_by_name")
                .unwrap_or_default(),
        }),
        None => None,
    };
    let offer_agent: Option<AgentId> = row.get("offer_agent_id");
    let offer_expires: Option<Millis> = row.get("offer_expires_at");
    CaseRecord {
        summary: CaseSummary {
            id: row.get("id"),
            subject: row.get("subject"),
            customer_name: row.get("customer_name"),
            state,
            agent_name: row.get("agent_name"),
            created_at: row.get("created_at"),
            ended_by,
            group: row.get("group_name"),
            status: status_from_name(row.get("status")),
            customer_email: row.get("customer_email"),
            answers: serde_json::from_str(row.get::<&str, _>("answers")).unwrap_or_default(),
            channel: match row.get::<&str, _>("channel") {
                "message" => Channel::Message,
                _ => Channel::Chat,
            },
            customer_left_at: match state {
                ChatState::Ended => None,
                _ => row.get("customer_gone_at"),
            },
        },
        visitor_id: row.get("visitor_id"),
        agent_id: row.get("agent_id"),
        location: row.get("location"),
        group: row.get("group_name"),
        group_id: row.get("group_id"),
        offer: offer_agent.zip(offer_expires),
    }
}

/// How many active admins there are, read inside a write.
pub(super) async fn active_admins(tx: &mut AnyConnection) -> StoreResult<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM agents WHERE is_admin AND active")
            .fetch_one(tx)
            .await?,
    )
}
