-- 004_notify_attempts.sql: expiry mails that may or may not have been delivered. When the
-- SMTP exchange breaks after the whole message went out (no final reply within its wait, or
-- the connection lost while waiting for it), the server may have taken the mail: keywarden
-- notify run counts such unconfirmed attempts per (token, threshold, recipient), sends the
-- mail again on the next run, and after 3 of them stops (a warning names the Message-ID).
-- A confirmed delivery is recorded in notification_sent as before; rows here stay as history.
-- IF NOT EXISTS: re-applying this file to a database that has it is harmless.
CREATE TABLE IF NOT EXISTS notification_attempt (
	token_id    INTEGER NOT NULL REFERENCES token(id),
	threshold   INTEGER NOT NULL CHECK (threshold IN (1, 7)),
	recipient   TEXT NOT NULL COLLATE NOCASE,
	attempts    INTEGER NOT NULL CHECK (attempts >= 1),
	first_try   INTEGER NOT NULL,
	last_try    INTEGER NOT NULL,
	last_error  TEXT NOT NULL,
	PRIMARY KEY (token_id, threshold, recipient)
);
