-- Routing: which groups each agent belongs to, and every screen pop a case has had.

CREATE TABLE agent_groups (
    agent_id INTEGER NOT NULL REFERENCES agents (id),
    group_id INTEGER NOT NULL REFERENCES groups (id),
    PRIMARY KEY (agent_id, group_id)
);

-- One row per screen pop: to whom, when, and how it ended (accepted, disabled,
-- timed_out, abandoned, withdrawn); outcome is NULL while it is on screen.
CREATE TABLE offer_log (
    id         INTEGER PRIMARY KEY,
    case_id    INTEGER NOT NULL REFERENCES cases (id),
    agent_id   INTEGER NOT NULL REFERENCES agents (id),
    offered_at INTEGER NOT NULL,
    closed_at  INTEGER,
    outcome    TEXT
);
CREATE INDEX offer_log_by_case ON offer_log (case_id, id);
