-- With several nodes, a customer or an agent is gone only once none of the nodes has a
-- socket of theirs. Each node keeps a lease on its row in `nodes` while it runs, and a
-- row in `presence` for each customer (by case) and agent it has a socket of; a node
-- whose lease ran out is dead, and its rows count for nothing.
CREATE TABLE nodes (
    id         TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE TABLE presence (
    node TEXT   NOT NULL,
    kind TEXT   NOT NULL CHECK (kind = 'customer' OR kind = 'agent'),
    id   BIGINT NOT NULL,
    PRIMARY KEY (kind, id, node)
);
-- A dead node's rows, to uncount them.
CREATE INDEX presence_node ON presence (node);
-- Nobody is connected now, to any node: whoever counted as present counts as gone from
-- this upgrade (as a start counted them before presence was kept per node).
UPDATE cases SET customer_gone_at = (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT
    WHERE chat_state != 'ended' AND customer_gone_at IS NULL;
UPDATE agents SET gone_at = (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT
    WHERE gone_at IS NULL AND id IN (SELECT agent_id FROM cases WHERE chat_state = 'active');
