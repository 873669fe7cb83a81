-- With several nodes, one routes chats at a time: the node whose lease this row holds.
-- Each node that takes it over raises `epoch`, and every write routing makes checks the
-- epoch it decided under, so a node that lost the lease cannot commit a decision.
CREATE TABLE routing_lease (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    holder     TEXT   NOT NULL,
    epoch      BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
INSERT INTO routing_lease (id, holder, epoch, expires_at) VALUES (1, '', 0, 0);
