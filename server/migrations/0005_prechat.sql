-- What the pre-chat form asked beyond name and subject: the customer's e-mail, and the
-- answers to the admin's own questions as JSON ([{"key", "label", "value"}], labels as
-- asked at the time).
ALTER TABLE cases ADD COLUMN customer_email TEXT;
ALTER TABLE cases ADD COLUMN answers TEXT NOT NULL DEFAULT '[]';
