-- Agents an admin removed: they leave every list and can no longer sign in, while the
-- cases they worked keep their name. The email is set aside (see `remove_agent`), so a
-- new account can use it.
ALTER TABLE agents ADD COLUMN removed_at INTEGER;
