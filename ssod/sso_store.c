/* sso_store.c: the SAML replay cache and SSO users in the store (see sso_store.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "jsonw.h"
#include "sso_store.h"

#define ACTOR "keywarden-ssod"

int kw_sso_store_ensure_account(struct kw_store *store, const char *account, const char **error_r)
{
	struct kw_account acct;
	int ret = kw_store_account_get(store, account, &acct, error_r);

	if (ret == -ENOENT)
		ret = kw_store_account_add(store, ACTOR, account, KW_DEFAULT_TOKEN_LIMIT, error_r);
	return ret;
}

static int step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc;
}

/* Purges expired entries and inserts id; -EALREADY when it is there. Inside a transaction. */
static int replay_insert(struct kw_store *store, const char *id, int64_t expires, int64_t now,
			 const char **error_r)
{
	static int64_t last_purge; /* single-threaded programs: see header */
	static bool purged;
	sqlite3_stmt *st;
	int rc;

	/* An expired entry is harmless (its assertion fails the time checks anyway), so the
	 * purge runs once a minute rather than on every insert. */
	if (!purged || now < last_purge || now - last_purge >= 60) {
		st = kw_store_stmt(store, "DELETE FROM saml_replay WHERE expires <= ?1");
		if (st == NULL)
			return -EIO;
		sqlite3_bind_int64(st, 1, now);
		if (step_done(st) != SQLITE_DONE)
			return -EIO;
		last_purge = now;
		purged = true;
	}
	st =
	    kw_store_stmt(store, "INSERT INTO saml_replay (assertion_id, expires) VALUES (?1, ?2)");
	if (st == NULL)
		return -EIO;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, expires);
	rc = step_done(st);
	if (rc == SQLITE_CONSTRAINT)
		return kw_store_fail(store, -EALREADY, error_r, "assertion %s seen before", id);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

int kw_sso_store_replay(struct kw_store *store, const char *assertion_id, int64_t expires,
			int64_t now, const char **error_r)
{
	int ret;

	/* Outside a transaction each statement commits on its own: the purge (rare) and the
	 * insert need no common one, and one statement is the cheapest commit SQLite has. */
	ret = replay_insert(store, assertion_id, expires, now, error_r);
	if (ret == -EIO)
		ret = kw_store_fail(store, -EIO, error_r, "database: %s",
				    sqlite3_errmsg(kw_store_db(store)));
	return ret;
}

int kw_sso_store_accept(struct kw_store *store, const struct kw_sso_verified *l, int64_t now,
			enum kw_sso_sync *sync_r, const char **error_r)
{
	char details[1024], q_nameid[600], q_role[160];
	enum kw_sso_sync sync;
	struct kw_account acct;
	sqlite3_stmt *st;
	int64_t user_id = 0;
	bool exists = false, is_sso = false;
	const char *action;
	int rc, ret;

	if (kw_store_begin(store) < 0)
		return kw_store_fail(store, -EIO, error_r, "cannot start a transaction");
	ret = replay_insert(store, l->assertion_id, l->replay_expires, now, error_r);
	if (ret == -EIO)
		goto dbfail;
	if (ret < 0)
		goto out;

	ret = kw_store_account_get(store, l->account, &acct, error_r);
	if (ret < 0)
		goto out;
	st = kw_store_stmt(store, "SELECT id, source FROM user WHERE login = ?1");
	if (st == NULL)
		goto dbfail;
	sqlite3_bind_text(st, 1, l->login, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		exists = true;
		user_id = sqlite3_column_int64(st, 0);
		is_sso = strcmp((const char *)sqlite3_column_text(st, 1), "sso") == 0;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		goto dbfail;

	if (exists && !is_sso) {
		sync = KW_SSO_SYNC_LOCAL_USER;
	} else if (!exists && l->role == NULL) {
		sync = KW_SSO_SYNC_NONE;
	} else if (!exists) {
		st = kw_store_stmt(store,
				   "INSERT INTO user (account_id, login, role_id, source, created, "
				   "sso_idp, sso_name_id, sso_last_seen, sso_state) "
				   "VALUES (?1, ?2, ?3, 'sso', ?4, ?5, ?6, ?4, 'active')");
		if (st == NULL)
			goto dbfail;
		sqlite3_bind_int64(st, 1, acct.id);
		sqlite3_bind_text(st, 2, l->login, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, l->role->id);
		sqlite3_bind_int64(st, 4, now);
		sqlite3_bind_text(st, 5, l->idp, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, l->name_id, -1, SQLITE_STATIC);
		if (step_done(st) != SQLITE_DONE)
			goto dbfail;
		user_id = sqlite3_last_insert_rowid(kw_store_db(store));
		sync = KW_SSO_SYNC_CREATED;
	} else {
		/* Role changes learned here never touch tokens (the revocation rule). */
		st = kw_store_stmt(store,
				   "UPDATE user SET role_id = COALESCE(?2, role_id), sso_idp = ?3, "
				   "sso_name_id = ?4, sso_last_seen = ?5 WHERE id = ?1");
		if (st == NULL)
			goto dbfail;
		sqlite3_bind_int64(st, 1, user_id);
		if (l->role != NULL)
			sqlite3_bind_int64(st, 2, l->role->id);
		sqlite3_bind_text(st, 3, l->idp, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, l->name_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, now);
		if (step_done(st) != SQLITE_DONE)
			goto dbfail;
		sync = l->role != NULL ? KW_SSO_SYNC_UPDATED : KW_SSO_SYNC_SEEN;
	}

	if (kw_json_string_buf(q_nameid, sizeof(q_nameid), l->name_id) < 0 ||
	    kw_json_string_buf(q_role, sizeof(q_role), l->role != NULL ? l->role->name : "") < 0) {
		ret = kw_store_fail(store, -EINVAL, error_r, "NameID too long");
		goto out;
	}
	snprintf(details, sizeof(details), "{\"name_id\":%s,\"role\":%s,\"sync\":%d}", q_nameid,
		 q_role, (int)sync);
	st = kw_store_stmt(
	    store, "INSERT INTO sso_event (time, user_id, kind, details) VALUES (?1, ?2, ?3, ?4)");
	if (st == NULL)
		goto dbfail;
	sqlite3_bind_int64(st, 1, now);
	if (user_id != 0 && sync != KW_SSO_SYNC_LOCAL_USER)
		sqlite3_bind_int64(st, 2, user_id);
	sqlite3_bind_text(st, 3, "login", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, details, -1, SQLITE_STATIC);
	if (step_done(st) != SQLITE_DONE)
		goto dbfail;
	action = sync == KW_SSO_SYNC_CREATED ? "sso.user_create" : "sso.login";
	if (kw_audit_append(store, now, ACTOR, action, l->login, details) < 0)
		goto dbfail;
	if (kw_store_commit(store) < 0)
		goto dbfail;
	*sync_r = sync;
	return 0;
dbfail:
	ret =
	    kw_store_fail(store, -EIO, error_r, "database: %s", sqlite3_errmsg(kw_store_db(store)));
out:
	kw_store_rollback(store);
	return ret;
}
