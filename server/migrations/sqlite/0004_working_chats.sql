-- Working chats: the case status agents set, and when each side went away, so the
-- inactivity timeout and the agent's grace period survive a restart.
ALTER TABLE cases ADD COLUMN status TEXT NOT NULL DEFAULT 'new'
    CHECK (status IN ('new', 'open', 'pending', 'resolved'));
-- Set when the customer's last widget closed; cleared when one comes back.
ALTER TABLE cases ADD COLUMN customer_gone_at INTEGER;
-- Set when the agent's last console closed; cleared when one comes back.
ALTER TABLE agents ADD COLUMN gone_at INTEGER;
CREATE INDEX cases_by_agent ON cases (agent_id, chat_state);
