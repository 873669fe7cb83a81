-- What the pre-chat form asked beyond name and subject: the customer's e-mail, and the
-- answers to the admin's own questions as JSON ([{"key", "label", "value"}], labels as
-- asked at the time).
ALTER TABLE cases ADD COLUMN customer_email TEXT;
ALTER TABLE cases ADD COLUMN answers TEXT NOT NULL DEFAULT '[]';
-- How the case came in: a live chat, or a message left while nobody could take one.
ALTER TABLE cases ADD COLUMN channel TEXT NOT NULL DEFAULT 'chat'
    CHECK (channel IN ('chat', 'message'));
