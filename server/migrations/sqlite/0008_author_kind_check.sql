-- The same rule for a message's author, written without an IN list: SQLite checks
-- `author_kind IN (...)` by building a temporary table of the three names for every
-- message inserted, and opening and dropping it was a twentieth of the server's CPU
-- under load. SQLite cannot change a CHECK in place, so the table is rebuilt.
CREATE TABLE messages_new (
    case_id     INTEGER NOT NULL REFERENCES cases (id),
    seq         INTEGER NOT NULL,
    client_id   TEXT    NOT NULL,
    author_kind TEXT    NOT NULL CHECK (
        author_kind = 'customer' OR author_kind = 'agent' OR author_kind = 'system'
    ),
    agent_id    INTEGER REFERENCES agents (id),
    author_name TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    sent_at     INTEGER NOT NULL,
    PRIMARY KEY (case_id, seq),
    UNIQUE (case_id, client_id)
);
INSERT INTO messages_new (case_id, seq, client_id, author_kind, agent_id, author_name, body, sent_at)
    SELECT case_id, seq, client_id, author_kind, agent_id, author_name, body, sent_at FROM messages;
DROP TABLE messages;
ALTER TABLE messages_new RENAME TO messages;
