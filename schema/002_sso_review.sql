-- 002_sso_review.sql: the review list of the SSO rule ("SSO revocation does not revoke API
-- tokens"). When SSO access of a user ends or shrinks, or the user has not been seen in any
-- assertion for [sso] stale_days while holding active tokens, keywarden changes no token and
-- opens a case here for an admin to work through (keywarden sso review / dismiss).
-- A user has at most one open case; a new event on an open case updates it (kind, reason,
-- updated, events). A case closes by itself once the user holds no active token
-- (closed_by 'keywarden'), or when an Administrator dismisses it with a reason.
-- IF NOT EXISTS: re-applying this file to a database that has it (a user_version set back by
-- hand) is harmless.

CREATE TABLE IF NOT EXISTS sso_case (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	account_id    INTEGER NOT NULL REFERENCES account(id),
	user_id       INTEGER NOT NULL REFERENCES user(id),
	kind          TEXT NOT NULL
	              CHECK (kind IN ('revoked', 'downgraded', 'stale', 'idp_revoked')),
	reason        TEXT NOT NULL,
	opened        INTEGER NOT NULL,
	updated       INTEGER NOT NULL,
	events        INTEGER NOT NULL DEFAULT 1 CHECK (events >= 1),
	closed        INTEGER,                -- NULL: open
	closed_by     TEXT,                   -- a login, or 'keywarden' when it closed by itself
	close_reason  TEXT,
	CHECK ((closed IS NULL) = (closed_by IS NULL)),
	CHECK ((closed IS NULL) = (close_reason IS NULL))
);
CREATE UNIQUE INDEX IF NOT EXISTS sso_case_open_user ON sso_case(user_id) WHERE closed IS NULL;
CREATE INDEX IF NOT EXISTS sso_case_account ON sso_case(account_id, closed);
CREATE INDEX IF NOT EXISTS sso_case_user ON sso_case(user_id, kind, opened);

-- Logouts end sessions by (user, session index).
CREATE INDEX IF NOT EXISTS sso_session_open ON sso_session(user_id, ended);
