-- 001_init.sql: accounts, roles, users, tokens, the audit chain, notification bookkeeping,
-- the SAML replay cache and SSO sessions/events. Times are Unix seconds, UTC.
-- Shipped migrations are never edited: changes go into a new numbered file.

CREATE TABLE role (
	id    INTEGER PRIMARY KEY,
	name  TEXT NOT NULL UNIQUE,
	rank  INTEGER NOT NULL UNIQUE       -- higher rank, more rights
);
INSERT INTO role (id, name, rank) VALUES
	(1, 'Administrators', 50),
	(2, 'Engineers', 40),
	(3, 'Purge and Prefetch only (API+Web)', 30),
	(4, 'Purge and Prefetch only (API)', 20),
	(5, 'Users', 10);

CREATE TABLE account (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	name         TEXT NOT NULL UNIQUE,
	token_limit  INTEGER NOT NULL DEFAULT 50 CHECK (token_limit >= 0),
	created      INTEGER NOT NULL
);

CREATE TABLE user (
	id             INTEGER PRIMARY KEY AUTOINCREMENT,
	account_id     INTEGER NOT NULL REFERENCES account(id),
	login          TEXT NOT NULL UNIQUE,
	email          TEXT,
	role_id        INTEGER NOT NULL REFERENCES role(id),
	source         TEXT NOT NULL DEFAULT 'local' CHECK (source IN ('local', 'sso')),
	enabled        INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
	expiry_emails  INTEGER NOT NULL DEFAULT 1 CHECK (expiry_emails IN (0, 1)),
	created        INTEGER NOT NULL,
	sso_idp        TEXT,
	sso_name_id    TEXT,
	sso_last_seen  INTEGER,
	sso_state      TEXT CHECK (sso_state IN ('active', 'revoked', 'downgraded'))
);
CREATE INDEX user_account ON user(account_id);

-- AUTOINCREMENT: a token id is never reused, not even after its row is gone.
CREATE TABLE token (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	account_id   INTEGER NOT NULL REFERENCES account(id),
	issuer_id    INTEGER NOT NULL REFERENCES user(id),
	name         TEXT NOT NULL,
	description  TEXT NOT NULL DEFAULT '',
	role_id      INTEGER NOT NULL REFERENCES role(id),
	digest       BLOB NOT NULL CHECK (length(digest) = 32),
	created      INTEGER NOT NULL,
	expires      INTEGER,                -- NULL: never
	last_used    INTEGER,
	last_ip      TEXT,
	deleted      INTEGER,                -- NULL: not deleted
	deleted_by   INTEGER REFERENCES user(id)
);
CREATE INDEX token_account ON token(account_id, deleted);
CREATE INDEX token_issuer ON token(issuer_id);

-- Append-only, hash-chained: hash = SHA-256 over the previous hash and this row's fields.
CREATE TABLE audit (
	seq      INTEGER PRIMARY KEY,
	time     INTEGER NOT NULL,
	actor    TEXT NOT NULL,
	action   TEXT NOT NULL,
	target   TEXT NOT NULL,
	details  TEXT NOT NULL,
	hash     BLOB NOT NULL
);

-- One row per expiry mail sent: (token, threshold in days, recipient address).
CREATE TABLE notification_sent (
	token_id   INTEGER NOT NULL REFERENCES token(id),
	threshold  INTEGER NOT NULL CHECK (threshold IN (1, 7)),
	recipient  TEXT NOT NULL,
	sent       INTEGER NOT NULL,
	PRIMARY KEY (token_id, threshold, recipient)
);

CREATE TABLE saml_replay (
	assertion_id  TEXT PRIMARY KEY,
	expires       INTEGER NOT NULL
);
CREATE INDEX saml_replay_expires ON saml_replay(expires);

CREATE TABLE sso_session (
	id             INTEGER PRIMARY KEY AUTOINCREMENT,
	user_id        INTEGER NOT NULL REFERENCES user(id),
	idp            TEXT NOT NULL,
	session_index  TEXT,
	login_time     INTEGER NOT NULL,
	ended          INTEGER
);
CREATE INDEX sso_session_user ON sso_session(user_id);

CREATE TABLE sso_event (
	id       INTEGER PRIMARY KEY AUTOINCREMENT,
	time     INTEGER NOT NULL,
	user_id  INTEGER REFERENCES user(id),
	kind     TEXT NOT NULL,
	details  TEXT NOT NULL DEFAULT ''
);
