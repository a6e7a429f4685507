-- 008_scim_external_id.sql: the IdP's own id of an SSO user, as SCIM sends it in `externalId`
-- (issue 13): kept so that the IdP can look the user up by it (filter externalId eq "...") and
-- read it back. One row per user that SCIM gave one; a table of its own (not a column of
-- user) so that this file can be applied again to a database that has it.
CREATE TABLE IF NOT EXISTS scim_user (
	user_id      INTEGER PRIMARY KEY REFERENCES user(id),
	external_id  TEXT NOT NULL,
	updated      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS scim_user_external_id ON scim_user(external_id);
