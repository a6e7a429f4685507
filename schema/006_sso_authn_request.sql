-- 006_sso_authn_request.sql: the AuthnRequests keywarden-ssod sent (SP-initiated sign-in), kept
-- until they expire so that a Response's InResponseTo can be checked by any worker thread or
-- process: a Response must answer a request we sent, once. `next` is the path on this site
-- the browser returns to after the sign-in (checked when it is stored and again when it is
-- used). answered: when a Response answered it (NULL: not yet); the row stays until it
-- expires, so that a second answer is told apart from an unknown request.
-- A table of its own rather than the replay cache: a request ID must be known before its
-- answer comes (the replay cache only learns IDs when a message arrives) and carries `next`.
CREATE TABLE IF NOT EXISTS sso_authn_request (
	id        TEXT PRIMARY KEY,
	expires   INTEGER NOT NULL,
	next      TEXT NOT NULL,
	answered  INTEGER
) WITHOUT ROWID;
