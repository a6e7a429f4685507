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
