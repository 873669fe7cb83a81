//! Tests of the store on a real SQLite file.

use super::*;

/// A store on SQLite whatever the tests run on, for what only SQLite does.
async fn sqlite_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open_dir(dir.path()).await.expect("opens");
    (store, dir)
}

/// A store on a database of its own: SQLite in a temporary folder, or PostgreSQL when
/// the tests run on it (see [`Store::test_database_url`]).
async fn store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = match Store::test_database_url(dir.path())
        .await
        .expect("a database")
    {
        Some(url) => Store::open(&url).await,
        None => Store::open_dir(dir.path()).await,
    }
    .expect("opens");
    (store, dir)
}

/// A chat a new visitor started, its first message's id `first`: the case.
async fn started(store: &Store, first: &str) -> CaseId {
    store
        .start_chat(&secret::token(), &new_chat(first))
        .await
        .expect("started")
        .case
}

/// The customer of [`new_chat`].
fn grace() -> Author {
    Author::Customer {
        name: "Grace".into(),
    }
}

fn new_chat(client_id: &str) -> NewChat {
    NewChat {
        customer_name: "Grace".into(),
        subject: "Billing".into(),
        location: String::new(),
        client_id: client_id.into(),
        body: "Hello".into(),
        group: None,
        email: None,
        answers: Vec::new(),
    }
}

#[tokio::test]
async fn a_password_is_checked_against_its_hash() {
    let (store, _dir) = store().await;
    let id = store
        .create_agent("ada@example.com", "Ada", "correct horse", false)
        .await
        .expect("created");
    assert_eq!(
        store
            .check_login("ADA@example.com", "correct horse")
            .await
            .expect("checked"),
        Some(id)
    );
    assert_eq!(
        store
            .check_login("ada@example.com", "wrong")
            .await
            .expect("checked"),
        None
    );
    assert_eq!(
        store
            .check_login("nobody@example.com", "x")
            .await
            .expect("checked"),
        None
    );
}

#[tokio::test]
async fn messages_get_consecutive_sequence_numbers() {
    let (store, _dir) = store().await;
    let case = started(&store, "m1").await;
    let customer = grace();
    let (second, _) = store
        .append_message(case, "m2", &customer, "a", None)
        .await
        .expect("stored");
    let (third, _) = store
        .append_message(case, "m3", &Author::System, "b", None)
        .await
        .expect("stored");
    assert_eq!((second.seq, third.seq), (2, 3));
}

#[tokio::test]
async fn a_retried_message_is_stored_once() {
    let (store, _dir) = store().await;
    let case = started(&store, "m1").await;
    let customer = grace();
    let (first, new) = store
        .append_message(case, "m2", &customer, "hi", None)
        .await
        .expect("stored");
    assert!(new);
    let (again, new) = store
        .append_message(case, "m2", &customer, "hi", None)
        .await
        .expect("stored");
    assert!(!new);
    assert_eq!(first, again);
    let chat = store
        .chat_for(Caller::Agent(1), case, 0)
        .await
        .expect("read");
    assert_eq!(chat.messages.len(), 2);
}

#[tokio::test]
async fn a_retried_start_returns_the_same_case_and_a_second_start_is_refused() {
    let (store, _dir) = store().await;
    let token = secret::token();
    let first = store
        .start_chat(&token, &new_chat("m1"))
        .await
        .expect("started");
    let again = store
        .start_chat(&token, &new_chat("m1"))
        .await
        .expect("retried");
    assert!(first.new && !again.new);
    assert_eq!(first.case, again.case);
    assert!(matches!(
        store.start_chat(&token, &new_chat("other")).await,
        Err(StoreError::AlreadyChatting)
    ));
}

#[tokio::test]
async fn a_visitor_cannot_read_another_visitors_case() {
    let (store, _dir) = store().await;
    let case = started(&store, "m1").await;
    let other = store
        .start_chat(&secret::token(), &new_chat("m1"))
        .await
        .expect("started")
        .visitor;
    assert!(matches!(
        store.chat_for(Caller::Visitor(other), case, 0).await,
        Err(StoreError::CaseNotFound)
    ));
}

#[tokio::test]
async fn macros_are_created_renamed_and_deleted_with_unique_names() {
    let (store, _dir) = store().await;
    let greet = store
        .create_macro("Greeting", "Hi!")
        .await
        .expect("created");
    store.create_macro("Bye", "Bye!").await.expect("created");
    assert!(matches!(
        store.create_macro("greeting", "again").await,
        Err(StoreError::NameTaken)
    ));
    let renamed = store
        .update_macro(greet.id, "Hello", "Hello!")
        .await
        .expect("updated");
    assert_eq!(renamed.map(|m| m.name), Some("Hello".into()));
    let names: Vec<String> = store
        .macros()
        .await
        .expect("listed")
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["Bye", "Hello"]);
    assert!(store.delete_macro(greet.id).await.expect("deleted"));
    assert!(!store.delete_macro(greet.id).await.expect("deleted"));
    assert_eq!(
        store.update_macro(greet.id, "X", "Y").await.expect("ran"),
        None
    );
}

#[tokio::test]
async fn the_offer_log_records_each_screen_pop_and_how_it_ended() {
    let (store, _dir) = store().await;
    let ada = store
        .create_agent("ada@example.com", "Ada", "pw-ada-123", false)
        .await
        .expect("made");
    let bob = store
        .create_agent("bob@example.com", "Bob", "pw-bob-123", false)
        .await
        .expect("made");
    let case = started(&store, "m1").await;
    let opened = |agent, expires_at| store.open_offer(None, case, agent, expires_at);
    opened(ada, 10).await.expect("queued");
    store
        .close_offer(None, case, ada, OfferClosed::TimedOut)
        .await
        .expect("queued");
    // Queued one after another, the writes commit in that order.
    opened(bob, 41)
        .await
        .expect("queued")
        .committed()
        .await
        .expect("logged");
    let log = store.offer_log(case).await.expect("read");
    assert_eq!(log.len(), 2);
    assert_eq!(
        (log[0].agent_name.as_str(), log[0].outcome),
        ("Ada", Some(OfferClosed::TimedOut))
    );
    assert!(log[0].closed_at >= Some(log[0].offered_at));
    let record = store.case(case).await.expect("read").expect("there");
    assert_eq!(
        record.offer,
        Some((bob, 41)),
        "the open screen pop is Bob's"
    );
    assert_eq!((log[1].agent_name.as_str(), log[1].outcome), ("Bob", None));
}

#[tokio::test]
async fn deactivating_an_account_ends_its_sessions_and_keeps_its_groups_as_set() {
    let (store, _dir) = store().await;
    let id = store
        .create_agent("ada@example.com", "Ada", "pw-ada-123", false)
        .await
        .expect("made");
    let sales = store.create_group("Sales").await.expect("made");
    let token = store
        .create_session(id, Duration::from_secs(60))
        .await
        .expect("session");
    let mut account = store.account(id).await.expect("read").expect("exists");
    account.groups = vec![sales.id];
    account.capacity = 5;
    account.active = false;
    assert!(store.update_account(&account, None).await.expect("updated"));
    assert!(store.session_agent(&token).await.expect("read").is_none());
    assert_eq!(store.account(id).await.expect("read"), Some(account));
    assert_eq!(
        store
            .check_login("ada@example.com", "pw-ada-123")
            .await
            .expect("checked"),
        None
    );
}

#[tokio::test]
async fn nothing_can_be_said_in_an_ended_chat() {
    let (store, _dir) = store().await;
    let case = started(&store, "m1").await;
    assert_eq!(
        store
            .end_chat(case, &EndedBy::Customer)
            .await
            .expect("ended"),
        Some(None)
    );
    assert_eq!(
        store
            .end_chat(case, &EndedBy::Customer)
            .await
            .expect("ended"),
        None
    );
    let customer = grace();
    assert!(matches!(
        store
            .append_message(case, "m2", &customer, "late", None)
            .await,
        Err(StoreError::ChatEnded)
    ));
}

#[tokio::test]
async fn appends_queued_together_get_what_each_would_get_alone() {
    let (store, _dir) = store().await;
    let start = |n: &str| {
        let store = store.clone();
        let chat = new_chat(n);
        async move {
            store
                .start_chat(&secret::token(), &chat)
                .await
                .expect("started")
                .case
        }
    };
    let (busy, quiet, ended) = (start("s1").await, start("s2").await, start("s3").await);
    store
        .end_chat(ended, &EndedBy::Customer)
        .await
        .expect("ended");
    let customer = grace();
    let agent = Author::Agent {
        id: 1,
        name: "Ada".into(),
    };
    let mut sends = vec![];
    for i in 0..40 {
        sends.push((busy, format!("b{i}"), customer.clone(), None));
    }
    for i in 0..5 {
        sends.push((quiet, format!("q{i}"), customer.clone(), None));
    }
    // A retry, a message id someone else used, an ended chat, no such chat, and an
    // agent who is not in the chat.
    sends.push((busy, "b3".into(), customer.clone(), None));
    sends.push((busy, "b5".into(), agent.clone(), None));
    sends.push((ended, "e0".into(), customer.clone(), None));
    sends.push((9_999, "n0".into(), customer.clone(), None));
    sends.push((quiet, "a0".into(), agent.clone(), Some(1)));
    let mut writes = tokio::task::JoinSet::new();
    for (case, client_id, author, member) in sends {
        let store = store.clone();
        writes.spawn(async move {
            let said = store
                .append_message(case, &client_id, &author, "hi", member)
                .await;
            (client_id, author, said)
        });
    }
    let mut new = HashMap::new();
    let mut retried = 0;
    while let Some(done) = writes.join_next().await {
        let (client_id, author, said) = done.expect("task ran");
        match client_id.as_str() {
            "e0" => assert!(matches!(said, Err(StoreError::ChatEnded))),
            "n0" => assert!(matches!(said, Err(StoreError::CaseNotFound))),
            "a0" => assert!(matches!(said, Err(StoreError::NotInChat))),
            "b5" if author == agent => assert!(matches!(said, Err(StoreError::ClientIdTaken))),
            _ => match said.expect("stored") {
                (message, true) => assert!(new.insert(client_id, message.seq).is_none()),
                (message, false) => {
                    retried += 1;
                    assert_eq!(client_id, "b3");
                    new.insert("retry".into(), message.seq);
                }
            },
        }
    }
    assert_eq!(retried, 1, "the retry stored nothing");
    assert_eq!(
        new.remove("retry"),
        new.get("b3").copied(),
        "the retry got the first one's message"
    );
    for (case, count) in [(busy, 40), (quiet, 5)] {
        let seqs: Vec<Seq> = store
            .page(case, 0, Seq::MAX)
            .await
            .expect("read")
            .iter()
            .map(|m| m.seq)
            .collect();
        assert_eq!(
            seqs,
            (1..=count + 1).collect::<Vec<Seq>>(),
            "gap-free, each once"
        );
    }
}

#[tokio::test]
async fn appends_look_up_their_ids_by_index_not_by_reading_every_message() {
    let (store, _dir) = sqlite_store().await;
    let plan = format!("EXPLAIN QUERY PLAN {}", appends::STORED_UNDER);
    let plan = sqlx::query(&plan).bind(1).bind("m1");
    let steps: Vec<String> = plan
        .fetch_all(&store.read)
        .await
        .expect("planned")
        .iter()
        .map(|row| row.get("detail"))
        .collect();
    assert!(
        steps
            .iter()
            .any(|step| step.starts_with("SEARCH messages USING INDEX")),
        "{steps:?}"
    );
    assert!(
        !steps.iter().any(|step| step.starts_with("SCAN messages")),
        "{steps:?}"
    );
}

#[tokio::test]
async fn presence_marks_and_messages_sent_together_all_land_and_a_refusal_sinks_no_other() {
    let (store, _dir) = store().await;
    let mut cases = Vec::new();
    for i in 0..100 {
        let chat = new_chat(&format!("start-{i}"));
        cases.push(
            store
                .start_chat(&secret::token(), &chat)
                .await
                .expect("started")
                .case,
        );
    }
    let ended = cases[0];
    store
        .end_chat(ended, &EndedBy::Customer)
        .await
        .expect("ended");
    // Every customer leaves at once, each saying goodbye first: the writes queue up
    // together and share commits.
    let mut writes = tokio::task::JoinSet::new();
    for (i, &case) in cases.iter().enumerate() {
        let store = store.clone();
        writes.spawn(async move {
            let customer = grace();
            let said = store
                .append_message(case, "bye", &customer, "Bye", None)
                .await;
            let gone = store
                .left("node", Presence::Customer(case), 1_000 + i as Millis)
                .await;
            (case, said.map(|_| ()), gone)
        });
    }
    while let Some(done) = writes.join_next().await {
        let (case, said, gone) = done.expect("task ran");
        gone.expect("marked");
        if case == ended {
            assert!(matches!(said, Err(StoreError::ChatEnded)));
        } else {
            said.expect("stored");
        }
    }
    let mut idle = store.chats_idle_since(Millis::MAX).await.expect("read");
    idle.sort_unstable();
    assert_eq!(
        idle,
        cases[1..],
        "every live chat's customer is marked gone"
    );
    // Half of them come back.
    for &case in &cases[1..50] {
        store
            .here("node", Presence::Customer(case))
            .await
            .expect("marked");
    }
    let mut idle = store.chats_idle_since(Millis::MAX).await.expect("read");
    idle.sort_unstable();
    assert_eq!(idle, cases[50..]);
    let chat = store
        .chat_for(Caller::Agent(1), cases[7], 0)
        .await
        .expect("read");
    assert_eq!(chat.messages.last().map(|m| m.body.as_str()), Some("Bye"));
}

#[tokio::test]
async fn the_log_is_copied_into_the_database_by_the_checkpointer_not_by_commits() {
    let (store, dir) = sqlite_store().await;
    let writer_checkpoints: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
        .fetch_one(&store.write)
        .await
        .expect("read");
    assert_eq!(writer_checkpoints, 0, "the writer leaves checkpoints alone");
    let case = started(&store, "m1").await;
    let db = dir.path().join("parlor.db");
    let db_size = || std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    let before = db_size();
    let mut writes = tokio::task::JoinSet::new();
    for i in 0..400 {
        let store = store.clone();
        writes.spawn(async move {
            let customer = grace();
            let body = "x".repeat(2_000);
            store
                .append_message(case, &format!("m{i}"), &customer, &body, None)
                .await
        });
    }
    while let Some(done) = writes.join_next().await {
        done.expect("task ran").expect("stored");
    }
    // Only the checkpointer copies the log into the database file; it runs every
    // second.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while db_size() < before + 400 * 2_000 {
        assert!(tokio::time::Instant::now() < deadline, "no checkpoint ran");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    store.close().await;
}

/// How many times the write-ahead log has started over: its header's checkpoint
/// sequence number.
fn log_restarts(dir: &Path) -> u32 {
    let mut header = [0; 16];
    std::fs::File::open(dir.join("parlor.db-wal"))
        .and_then(|mut log| std::io::Read::read_exact(&mut log, &mut header))
        .map_or(0, |()| {
            u32::from_be_bytes([header[12], header[13], header[14], header[15]])
        })
}

#[tokio::test]
async fn a_write_outside_the_chat_queue_is_not_held_behind_every_message_queued() {
    let (store, _dir) = store().await;
    let mut cases = Vec::new();
    for i in 0..20 {
        cases.push(started(&store, &format!("start-{i}")).await);
    }
    // Far more messages than one commit takes: the writer goes from one commit to the
    // next while they last, and an account written meanwhile takes its turn between two
    // of them, not after all of them.
    let sending = tokio::spawn({
        let store = store.clone();
        async move {
            let customer = grace();
            let mut last = None;
            for n in 0..12 * writer::WRITE_BATCH {
                let case = cases[n % cases.len()];
                let id = format!("m{n}");
                let queued = store.queue_message(case, &id, &customer, "hi", None).await;
                last = Some(queued.expect("queued"));
            }
            last.expect("sent").committed().await.expect("stored");
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let created = store.create_agent("ada@example.com", "Ada", "a long password", false);
    tokio::select! {
        biased;
        created = created => {
            created.expect("created");
        }
        _ = &mut std::pin::pin!(async { sending.await.expect("sent") }) => {
            panic!("the account waited for every message queued before it");
        }
    }
    store.close().await;
}

#[tokio::test]
async fn under_steady_writes_the_log_starts_over_instead_of_growing() {
    let (store, dir) = sqlite_store().await;
    // Seconds of writes that never pause: more than a case keeps by default.
    let store = store.with_case_cap(u32::MAX);
    let mut cases = Vec::new();
    for i in 0..20 {
        cases.push(started(&store, &format!("start-{i}")).await);
    }
    let customer = grace();
    let body = "x".repeat(4_000);
    let restarts_before = log_restarts(dir.path());
    let began = tokio::time::Instant::now();
    let mut n = 0;
    // Writes that never pause, until the log has started over twice (it would never
    // start over if checkpoints had to find a moment with nothing written).
    let mut restarts = 0;
    while restarts < 2 {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "the log started over {restarts} times in 30 s of writes"
        );
        let sends = cases.iter().map(|&case| {
            n += 1;
            let id = format!("m{n}");
            let (store, customer, body) = (store.clone(), customer.clone(), body.clone());
            async move {
                store
                    .append_message(case, &id, &customer, &body, None)
                    .await
            }
        });
        for sent in futures_util::future::join_all(sends).await {
            sent.expect("stored");
        }
        restarts = log_restarts(dir.path()).saturating_sub(restarts_before);
    }
    store.close().await;
}

#[tokio::test]
async fn a_database_made_before_the_author_check_was_rewritten_keeps_its_messages() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("parlor.db").display());
    {
        let options = SqliteConnectOptions::from_str(&url)
            .expect("url")
            .create_if_missing(true);
        let pool = SqlitePool::connect_with(options).await.expect("opens");
        let mut before = sqlx::migrate!("./migrations/sqlite");
        before.migrations = before
            .migrations
            .iter()
            .filter(|m| m.version < 8)
            .cloned()
            .collect::<Vec<_>>()
            .into();
        before.run(&pool).await.expect("migrated to 7");
        sqlx::query(
            "INSERT INTO visitors (token_hash, created_at) VALUES ('t', 1); \
             INSERT INTO cases (visitor_id, customer_name, subject, location, chat_state, \
             channel, created_at) VALUES (1, 'Grace', '', '', 'queued', 'chat', 1); \
             INSERT INTO messages (case_id, seq, client_id, author_kind, author_name, body, \
             sent_at) VALUES (1, 1, 'm1', 'customer', 'Grace', 'hello', 1)",
        )
        .execute(&pool)
        .await
        .expect("an older chat");
        pool.close().await;
    }
    let store = Store::open(&url).await.expect("migrates");
    let chat = store
        .chat_for(Caller::Visitor(1), 1, 0)
        .await
        .expect("read");
    let bodies: Vec<&str> = chat.messages.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["hello"]);
    let customer = grace();
    let (next, new) = store
        .append_message(1, "m2", &customer, "still here", None)
        .await
        .expect("appended");
    assert!(new);
    assert_eq!(next.seq, 2);
    let refused = sqlx::query(
        "INSERT INTO messages (case_id, seq, client_id, author_kind, author_name, body, \
         sent_at) VALUES (1, 3, 'm3', 'robot', 'R', 'x', 1)",
    )
    .execute(&mut *store.writing().await.expect("turn"))
    .await;
    assert!(refused.is_err(), "an unknown author kind is still refused");
    store.close().await;
}

#[tokio::test]
async fn appending_a_message_builds_no_temporary_table() {
    let (store, _dir) = sqlite_store().await;
    // On a connection that may write: a read-only one leaves the CHECKs out of its plan.
    let steps: Vec<String> = sqlx::query(&format!("EXPLAIN {}", appends::INSERT_MESSAGE))
        .fetch_all(&mut *store.writing().await.expect("turn"))
        .await
        .expect("explained")
        .iter()
        .map(|row| row.get("opcode"))
        .collect();
    assert!(steps.iter().any(|op| op == "Insert"), "{steps:?}");
    assert!(!steps.iter().any(|op| op == "OpenEphemeral"), "{steps:?}");
    store.close().await;
}

/// A second store on the same database as the one whose files are in `dir`: another
/// Parlor node (on SQLite, another process on the same file).
async fn same_database(dir: &Path) -> Store {
    match Store::test_database_url(dir).await.expect("a database") {
        Some(url) => Store::open(&url).await,
        None => Store::open_dir(dir).await,
    }
    .expect("opens")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_appending_to_one_case_at_once_keep_its_seq_gap_free_and_store_each_message_once()
{
    let (one, dir) = store().await;
    let two = same_database(dir.path()).await;
    let case = started(&one, "m0").await;
    let customer = grace();
    const EACH: usize = 150;
    // Queued without waiting, so each node's writer commits them in groups that race
    // the other node's.
    let mut queued = Vec::new();
    for n in 0..EACH {
        for (node, store) in [("a", &one), ("b", &two)] {
            let id = format!("{node}{n}");
            queued.push(
                store
                    .queue_message(case, &id, &customer, &id, None)
                    .await
                    .expect("queued"),
            );
        }
    }
    for sent in queued {
        let (_, new) = sent.committed().await.expect("stored");
        assert!(new);
    }
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT seq, client_id FROM messages WHERE case_id = $1 ORDER BY seq")
            .bind(case)
            .fetch_all(&one.read)
            .await
            .expect("read");
    let seqs: Vec<i64> = rows.iter().map(|(seq, _)| *seq).collect();
    let expected: Vec<i64> = (1..=(2 * EACH as i64 + 1)).collect();
    assert_eq!(seqs, expected, "every seq once, none skipped");
    let mut ids: Vec<&str> = rows.iter().map(|(_, id)| id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 2 * EACH + 1, "every message once");
    one.close().await;
    two.close().await;
}

#[tokio::test]
async fn a_send_retried_on_another_node_gets_the_message_stored_the_first_time() {
    let (one, dir) = store().await;
    let two = same_database(dir.path()).await;
    let case = started(&one, "m1").await;
    let customer = grace();
    let (first, new) = one
        .append_message(case, "m2", &customer, "hi", None)
        .await
        .expect("stored");
    assert!(new);
    let (again, new) = two
        .append_message(case, "m2", &customer, "hi", None)
        .await
        .expect("answered");
    assert!(!new, "stored once");
    assert_eq!(first, again);
    let agent = Author::Agent {
        id: 1,
        name: "Ada".into(),
    };
    let taken = two.append_message(case, "m2", &agent, "hi", None).await;
    assert!(matches!(taken, Err(StoreError::ClientIdTaken)), "{taken:?}");
    one.close().await;
    two.close().await;
}

/// A PostgreSQL server of a test's own (`scripts/postgres.sh`), stopped when dropped.
struct OwnPostgres {
    dir: tempfile::TempDir,
    url: String,
}

impl OwnPostgres {
    fn script() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/postgres.sh")
    }

    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = Self::run("start", dir.path()).await;
        Self { dir, url }
    }

    /// Runs the script's `command` on the server in `dir`; gives what it printed.
    async fn run(command: &str, dir: &Path) -> String {
        let out = tokio::process::Command::new(Self::script())
            .arg(command)
            .arg(dir)
            .output()
            .await
            .expect("scripts/postgres.sh runs");
        assert!(out.status.success(), "postgres.sh {command}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = std::process::Command::new(Self::script())
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_made_while_postgres_restarts_wait_for_it_and_then_land_once_in_order() {
    // Its own server, stopped and started mid-test: the one the other tests share
    // must stay up. Runs in the PostgreSQL pass of scripts/test.sh.
    if std::env::var("PARLOR_TEST_POSTGRES").is_err() {
        eprintln!("skipped: PostgreSQL only (PARLOR_TEST_POSTGRES is not set)");
        return;
    }
    let postgres = OwnPostgres::start().await;
    let store = Store::open(&postgres.url).await.expect("opens");
    let case = started(&store, "m0").await;
    let customer = grace();
    OwnPostgres::run("stop", postgres.dir.path()).await;
    let mut queued = Vec::new();
    for n in 1..=20 {
        let id = format!("m{n}");
        queued.push(
            store
                .queue_message(case, &id, &customer, &id, None)
                .await
                .expect("queued"),
        );
    }
    // Longer than the writer waits for a connection, twice over (the group, then its
    // first write alone): the writes must wait on.
    tokio::time::sleep(Duration::from_secs(5)).await;
    OwnPostgres::run("resume", postgres.dir.path()).await;
    for (n, sent) in queued.into_iter().enumerate() {
        let (message, new) = sent
            .committed()
            .await
            .expect("stored once the database is back");
        assert!(new);
        assert_eq!(message.seq, n as i64 + 2, "in the order sent");
    }
    let chat = store
        .chat_for(Caller::Agent(1), case, 0)
        .await
        .expect("read");
    let ids: Vec<&str> = chat.messages.iter().map(|m| m.client_id.as_str()).collect();
    let expected: Vec<String> = (0..=20).map(|n| format!("m{n}")).collect();
    assert_eq!(ids, expected, "each once, in order");
    store.close().await;
}

#[tokio::test]
async fn a_data_folder_with_spaces_and_url_signs_in_its_name_opens() {
    let dir = tempfile::tempdir().expect("temp dir");
    let odd = dir.path().join("my data #1 ?x=%20");
    let store = Store::open_dir(&odd).await.expect("opens");
    started(&store, "m1").await;
    store.close().await;
    assert!(
        odd.join("parlor.db").exists(),
        "the file is where it was asked for"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_routing_lease_goes_to_one_node_at_a_time_and_only_once_it_ran_out() {
    let (one, dir) = store().await;
    let two = same_database(dir.path()).await;
    let first = one.take_lease("one", 1_000, 4_000).await.expect("tried");
    assert_eq!(first, Some(Epoch(1)));
    assert_eq!(
        two.take_lease("two", 3_999, 6_999).await.expect("tried"),
        None
    );
    assert!(
        one.renew_lease("one", Epoch(1), 7_000)
            .await
            .expect("renewed")
    );
    assert!(
        !two.renew_lease("two", Epoch(1), 8_000)
            .await
            .expect("tried")
    );
    assert_eq!(
        two.take_lease("two", 7_000, 10_000).await.expect("tried"),
        Some(Epoch(2))
    );
    assert!(
        !one.renew_lease("one", Epoch(1), 11_000)
            .await
            .expect("tried")
    );
    two.give_up_lease("two", Epoch(2)).await.expect("given up");
    assert_eq!(
        one.take_lease("one", 7_001, 10_000).await.expect("tried"),
        Some(Epoch(3))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routing_decision_made_under_a_lease_another_node_took_over_changes_nothing() {
    let (one, dir) = store().await;
    let two = same_database(dir.path()).await;
    let ada = one
        .create_agent("ada@example.com", "Ada", "pw-ada-123", false)
        .await
        .expect("made");
    let case = started(&one, "m1").await;
    let old = one.take_lease("one", 0, 1_000).await.expect("tried");
    // Node one's writes pass while its lease holds.
    one.open_offer(old, case, ada, 500)
        .await
        .expect("queued")
        .committed()
        .await
        .expect("under the lease");
    // Node two takes the lease over once it ran out; node one does not know yet.
    let new = two.take_lease("two", 1_000, 4_000).await.expect("tried");
    assert!(new.is_some());
    let refused = one
        .queue_assign(old, case, ada)
        .await
        .expect("queued")
        .committed()
        .await;
    assert!(matches!(refused, Err(StoreError::NotLeader)), "{refused:?}");
    let closed = one
        .close_offer(old, case, ada, OfferClosed::TimedOut)
        .await
        .expect("queued");
    assert!(matches!(
        closed.committed().await,
        Err(StoreError::NotLeader)
    ));
    let off = one
        .queue_routing_off(old, ada)
        .await
        .expect("queued")
        .committed()
        .await;
    assert!(matches!(off, Err(StoreError::NotLeader)));
    // Nothing changed: the chat still waits, with node one's screen pop still open.
    let record = two.case(case).await.expect("read").expect("there");
    assert_eq!(record.summary.state, ChatState::Queued);
    assert_eq!(record.offer, Some((ada, 500)));
    // Node two's decisions under the new lease go through.
    let assigned = two
        .queue_assign(new, case, ada)
        .await
        .expect("queued")
        .committed()
        .await
        .expect("under the new lease");
    assert!(assigned);
}
