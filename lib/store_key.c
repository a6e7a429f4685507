/* store_key.c: the database remembers the fingerprint of its digest key (schema/005_meta.sql),
 * so that a program given another key (a restore that mixed up backups, a key file from
 * another host) stops with a clear error instead of answering "invalid" to every token. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "log.h"
#include "store.h"
#include "store_private.h"

#define FINGERPRINT_NAME "key_fingerprint"

static int read_fingerprint(struct kw_store *store, char *out, size_t size, const char **error_r)
{
	struct kw_db_stmt *st = kw_store_stmt(store, "SELECT value FROM meta WHERE name = ?1");
	int rc;

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "cannot read the key fingerprint");
	kw_db_bind_text(st, 1, FINGERPRINT_NAME);
	rc = kw_db_step(st);
	if (rc == KW_DB_DONE) {
		kw_db_reset(st);
		return -ENOENT;
	}
	if (rc != KW_DB_ROW) {
		kw_db_reset(st);
		return kw_store_db_fail(store, error_r, "cannot read the key fingerprint");
	}
	kw_store_copy_text(out, size, st, 0);
	kw_db_reset(st);
	return 0;
}

static int compare(struct kw_store *store, const char *recorded, const char *fp,
		   const char **error_r)
{
	if (strcmp(recorded, fp) == 0)
		return 0;
	return kw_store_fail(store, -EKEYREJECTED, error_r,
			     "the key file is not this database's key (key fingerprint %s, the "
			     "database was made with %s): restore the database's key; no token "
			     "of this database can be checked with another",
			     fp, recorded);
}

int kw_store_key_check(struct kw_store *store, const struct kw_digest_key *key,
		       const char **error_r)
{
	const char *fp = kw_digest_key_fingerprint(key);
	char recorded[2 * KW_KEY_FINGERPRINT_LEN + 1];
	struct kw_db_stmt *st;
	int ret;

	ret = read_fingerprint(store, recorded, sizeof(recorded), error_r);
	if (ret != -ENOENT)
		return ret < 0 ? ret : compare(store, recorded, fp, error_r);
	if (kw_store_readonly(store))
		return 0;
	/* None yet: this key is the database's from now on. Read again under the write lock,
	 * in case another program recorded one meanwhile. */
	if (kw_store_begin(store) < 0)
		return kw_store_db_fail(store, error_r, "cannot record the key fingerprint");
	ret = read_fingerprint(store, recorded, sizeof(recorded), error_r);
	if (ret == 0) {
		kw_store_rollback(store);
		return compare(store, recorded, fp, error_r);
	}
	if (ret != -ENOENT)
		goto out;
	st = kw_store_stmt(store, "INSERT INTO meta (name, value) VALUES (?1, ?2)");
	if (st == NULL)
		goto dbfail;
	kw_db_bind_text(st, 1, FINGERPRINT_NAME);
	kw_db_bind_text(st, 2, fp);
	if (kw_db_step(st) != KW_DB_DONE || kw_store_commit(store) < 0)
		goto dbfail;
	kw_notice("database %s: recorded the fingerprint %s of its digest key; from now on "
		  "only this key is accepted",
		  kw_store_path(store) != NULL ? kw_store_path(store) : "(PostgreSQL)", fp);
	return 0;
dbfail:
	ret = kw_store_db_fail(store, error_r, "cannot record the key fingerprint");
out:
	kw_store_rollback(store);
	return ret;
}
