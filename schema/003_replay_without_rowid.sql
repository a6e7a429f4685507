-- 003_replay_without_rowid.sql: the SAML replay cache as one B-tree keyed by the message id.
-- 001 kept it in a rowid table with an index on the id and another on the expiry, three
-- B-trees to write per accepted message. Expired entries are now purged by a periodic scan
-- of this small table (it holds only messages still inside their validity window), and an
-- entry past its expiry is overwritten instead of counting as a replay.
CREATE TABLE saml_replay_003 (
	assertion_id  TEXT PRIMARY KEY,
	expires       INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO saml_replay_003 (assertion_id, expires) SELECT assertion_id, expires FROM saml_replay;
DROP TABLE saml_replay;
ALTER TABLE saml_replay_003 RENAME TO saml_replay;
