/* store_validator.c: the store functions of a long-lived reader, keywarden-validator (see
 * store_validator.h): change and replacement watching, lock waits, batched last uses.
 *
 * SQLite mechanisms behind the concepts: "changed by someone else" is PRAGMA data_version
 * (which moves when another connection commits, not for our own commits); "still the same
 * database" is the device and inode of the configured path against those taken when the
 * watch started, and SQLite's own SQLITE_FCNTL_HAS_MOVED (which compares the path with the
 * file descriptor it really holds) at that start, so that a file replaced between the open
 * and the watch is caught too. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "audit.h"
#include "store_lease.h"
#include "store_private.h"
#include "store_validator.h"

struct kw_store_watch {
	struct kw_store *store;
	char *path;
	dev_t dev;
	ino_t ino;
	bool replaced; /* sticky: the caller reopens and starts a new watch */
	bool polled;
	int64_t version;
	struct kw_store_lease *lease; /* PostgreSQL: the lease (store_lease.c), no file */
};

static const char data_version_sql[] = "PRAGMA data_version";

void kw_store_lock_wait(struct kw_store *store, unsigned ms)
{
	char sql[64];

	if (kw_store_is_pg(store)) {
		snprintf(sql, sizeof(sql), "SET lock_timeout = %u", ms);
		(void)kw_db_exec(kw_store_db(store), sql);
		return;
	}
	sqlite3_busy_timeout(kw_store_sqlite(store), ms > INT32_MAX ? INT32_MAX : (int)ms);
}

const char *kw_store_db_error(struct kw_store *store)
{
	return kw_db_errmsg(kw_store_db(store));
}

int kw_store_watch_new(struct kw_store *store, struct kw_store_watch **watch_r,
		       const char **error_r)
{
	sqlite3 *db = kw_store_sqlite(store);
	const char *path = db != NULL ? sqlite3_db_filename(db, "main") : NULL;
	struct kw_store_watch *w;
	struct stat st;
	int moved = 0;

	if (kw_store_is_pg(store)) {
		w = calloc(1, sizeof(*w));
		if (w == NULL)
			abort();
		w->store = store;
		w->lease = kw_store_lease_new(store);
		*watch_r = w;
		return 0;
	}
	if (path == NULL || path[0] == '\0') {
		*error_r = "the database has no file to watch";
		return -EIO;
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL || (w->path = strdup(path)) == NULL)
		abort(); /* programs, not libraries: out of memory ends them */
	w->store = store;
	if (stat(w->path, &st) < 0) {
		w->replaced = true;
	} else {
		w->dev = st.st_dev;
		w->ino = st.st_ino;
	}
	if (sqlite3_file_control(db, "main", SQLITE_FCNTL_HAS_MOVED, &moved) == SQLITE_OK &&
	    moved != 0)
		w->replaced = true;
	*watch_r = w;
	return 0;
}

void kw_store_watch_free(struct kw_store_watch **watchp)
{
	struct kw_store_watch *w = *watchp;

	if (w == NULL)
		return;
	kw_store_lease_free(&w->lease);
	free(w->path);
	free(w);
	*watchp = NULL;
}

enum kw_store_change kw_store_watch_poll(struct kw_store_watch *w)
{
	struct stat st;
	struct kw_db_stmt *stmt;
	int64_t v;

	if (w->replaced)
		return KW_STORE_REPLACED;
	if (w->lease != NULL)
		return kw_store_lease_poll(w->lease);
	if (stat(w->path, &st) < 0 || st.st_dev != w->dev || st.st_ino != w->ino) {
		w->replaced = true;
		return KW_STORE_REPLACED;
	}
	stmt = kw_store_stmt(w->store, data_version_sql);
	if (stmt == NULL)
		return KW_STORE_CHANGED;
	if (kw_db_step(stmt) != KW_DB_ROW) {
		kw_db_reset(stmt);
		w->polled = false; /* whatever comes next counts as a change */
		return KW_STORE_CHANGED;
	}
	v = kw_db_column_int64(stmt, 0);
	kw_db_reset(stmt);
	if (w->polled && v == w->version)
		return KW_STORE_UNCHANGED;
	w->polled = true;
	w->version = v;
	return KW_STORE_CHANGED;
}

/* The lease exists on PostgreSQL only: an SQLite watch has no descriptor, no timer, and its
 * cache is always held (its poll before each batch of answers is enough). */
bool kw_store_watch_leased(const struct kw_store_watch *w)
{
	return w->lease != NULL;
}

void kw_store_watch_set_lease(struct kw_store_watch *w, unsigned ms)
{
	if (w->lease != NULL)
		kw_store_lease_set_ms(w->lease, ms);
}

int kw_store_watch_fd(struct kw_store_watch *w)
{
	return w->lease != NULL ? kw_store_lease_fd(w->lease) : -1;
}

void kw_store_watch_input(struct kw_store_watch *w)
{
	if (w->lease != NULL)
		kw_store_lease_input(w->lease);
}

int kw_store_watch_timeout(struct kw_store_watch *w)
{
	return w->lease != NULL ? kw_store_lease_timeout(w->lease) : -1;
}

bool kw_store_watch_held(struct kw_store_watch *w)
{
	return w->lease == NULL || kw_store_lease_held(w->lease);
}

int kw_store_token_uses_write(struct kw_store *store, const struct kw_token_use *uses, size_t n,
			      const struct kw_store_event *event, const char **error_r)
{
	int ret = 0;

	/* Last uses alone need not wait for the disk; a failed-check event must (its journal copy
	 * must never outlive it). */
	if ((event != NULL ? kw_store_begin(store) : kw_store_begin_batch(store)) < 0)
		return kw_store_db_fail(store, error_r, "cannot start a transaction");
	for (size_t i = 0; i < n && ret == 0; i++) {
		if (uses[i].token_id != 0)
			ret = kw_store_token_touch(store, uses[i].token_id, uses[i].when,
						   uses[i].ip[0] != '\0' ? uses[i].ip : NULL);
	}
	if (ret == 0 && event != NULL)
		ret = kw_audit_append(store, event->time, event->actor, event->action,
				      event->target, event->details);
	if (ret == 0 && kw_store_commit(store) < 0)
		ret = -EIO;
	if (ret < 0) {
		ret = kw_store_db_fail(store, error_r, "cannot write last uses");
		kw_store_rollback(store);
	}
	return ret;
}
