-- 005_meta.sql: facts about the database itself, one row per name.
-- key_fingerprint: the public fingerprint of the digest key the tokens were made with
-- (kw_digest_key_fingerprint(), lowercase hex). A program that loads a different key refuses
-- to work instead of failing every token. A database made before this migration has no row:
-- it records the first key a program loads with it (kw_store_key_check()).
-- IF NOT EXISTS: re-applying this file to a database that has it is harmless.
CREATE TABLE IF NOT EXISTS meta (
	name   TEXT PRIMARY KEY,
	value  TEXT NOT NULL
) WITHOUT ROWID;
