-- Parlor's first schema: agents and their sessions, visitors, chat cases and their
-- messages, settings. Times are milliseconds since the Unix epoch.

CREATE TABLE agents (
    id            INTEGER PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    name          TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    is_admin      INTEGER NOT NULL DEFAULT 0,
    active        INTEGER NOT NULL DEFAULT 1,
    routing       INTEGER NOT NULL DEFAULT 1,
    capacity      INTEGER NOT NULL DEFAULT 3 CHECK (capacity > 0),
    created_at    INTEGER NOT NULL
);

-- Only a hash of the cookie's token is kept, so a copy of the database opens no session.
CREATE TABLE sessions (
    token_hash TEXT    PRIMARY KEY,
    agent_id   INTEGER NOT NULL REFERENCES agents (id),
    expires_at INTEGER NOT NULL
);

CREATE TABLE visitors (
    id         INTEGER PRIMARY KEY,
    token_hash TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE groups (
    id   INTEGER PRIMARY KEY,
    name TEXT    NOT NULL UNIQUE
);

CREATE TABLE cases (
    id               INTEGER PRIMARY KEY,
    visitor_id       INTEGER NOT NULL REFERENCES visitors (id),
    customer_name    TEXT    NOT NULL,
    subject          TEXT    NOT NULL,
    group_id         INTEGER REFERENCES groups (id),
    location         TEXT    NOT NULL DEFAULT '',
    chat_state       TEXT    NOT NULL CHECK (chat_state IN ('queued', 'active', 'ended')),
    agent_id         INTEGER REFERENCES agents (id),
    -- 'customer' or 'agent'; with the agent's name at the time.
    ended_by         TEXT,
    ended_by_name    TEXT,
    ended_at         INTEGER,
    -- The open screen pop, so a restart can re-arm its deadline.
    offer_agent_id   INTEGER REFERENCES agents (id),
    offer_expires_at INTEGER,
    last_seq         INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL
);
CREATE INDEX cases_by_visitor ON cases (visitor_id, id);
CREATE INDEX cases_by_state ON cases (chat_state, id);

CREATE TABLE messages (
    case_id     INTEGER NOT NULL REFERENCES cases (id),
    seq         INTEGER NOT NULL,
    client_id   TEXT    NOT NULL,
    author_kind TEXT    NOT NULL CHECK (author_kind IN ('customer', 'agent', 'system')),
    agent_id    INTEGER REFERENCES agents (id),
    author_name TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    sent_at     INTEGER NOT NULL,
    PRIMARY KEY (case_id, seq),
    UNIQUE (case_id, client_id)
);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
