-- 007_web_sessions.sql: the browser's SSO sessions (issue 11). A Response accepted at
-- /saml/acs opens a row of sso_session (001); keywarden-ssod then gives the browser a cookie
-- "<id>$<secret>" whose HMAC (the digest key, as for tokens) is cookie_digest: the secret is
-- never stored. csrf is the session's anti-CSRF value (sent back in X-CSRF-Token); expires
-- bounds its lifetime, last_seen its idle time. Whatever ends SSO sessions (SLO, keywarden sso
-- revoke, a revocation or downgrade by assertion, logout) sets sso_session.ended, which ends
-- the cookie's session too. A table of its own (not columns of sso_session) so that this file
-- can be applied again to a database that has it.
CREATE TABLE IF NOT EXISTS sso_web_session (
	session_id     INTEGER PRIMARY KEY REFERENCES sso_session(id),
	cookie_digest  BLOB NOT NULL,
	csrf           TEXT NOT NULL,
	last_seen      INTEGER NOT NULL,
	expires        INTEGER NOT NULL
);

-- The 1-hour access and 24-hour refresh tokens issued to a signed-in user (POST
-- /api/v1/auth/tokens). Their wire id is KW_SESSION_TOKEN_ID_BASE + id (lib/store.h), far
-- above any permanent token's, so that the validator tells them apart by the id alone. Only
-- the HMAC of the secret is stored, as for permanent tokens. role_id: the user's role at issue
-- time. family: the id of the first refresh token of a chain of refreshes; a refresh token
-- used twice (used set) ends the whole family. ended: logout, reuse, or the end of the
-- session they came from (SLO, SSO revocation, a lower role by assertion).
CREATE TABLE IF NOT EXISTS session_token (
	id          INTEGER PRIMARY KEY,
	kind        TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
	family      INTEGER NOT NULL,
	session_id  INTEGER NOT NULL REFERENCES sso_session(id),
	user_id     INTEGER NOT NULL REFERENCES user(id),
	role_id     INTEGER NOT NULL REFERENCES role(id),
	digest      BLOB NOT NULL,
	created     INTEGER NOT NULL,
	expires     INTEGER NOT NULL,
	used        INTEGER,
	ended       INTEGER
);
CREATE INDEX IF NOT EXISTS session_token_family ON session_token(family);
CREATE INDEX IF NOT EXISTS session_token_session ON session_token(session_id);
