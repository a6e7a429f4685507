/* store_private.h: the helpers the store's own files (lib/store*.c) share: the connection
 * (db.h: SQLite or PostgreSQL), the statement cache, errors and text checks. Nothing outside
 * lib/ includes it, but for test set-up (tests/unit, tests/bench). */
#ifndef KW_STORE_PRIVATE_H
#define KW_STORE_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include "db.h"
#include "store.h"

#define KW_APPLICATION_ID 0x6b77646e /* "kwdn" in the SQLite header */

/* A store around an open connection (path: the SQLite file, or NULL). */
struct kw_store *kw_store_new(struct kw_db *db, const char *path, bool readonly);
struct kw_db *kw_store_db(struct kw_store *store);
bool kw_store_readonly(const struct kw_store *store);
bool kw_store_is_pg(const struct kw_store *store);
bool kw_store_bookkeeping(const struct kw_store *store);
/* The SQLite connection, for what only an SQLite file has (the WAL, its path, its locks);
 * NULL on PostgreSQL. */
struct sqlite3 *kw_store_sqlite(struct kw_store *store);
/* Returns a cached prepared statement for sql (reset, bindings cleared); the store owns it.
 * sql is compared by address: pass string literals (or other storage that outlives the
 * store), never a buffer that is rewritten. */
struct kw_db_stmt *kw_store_stmt(struct kw_store *store, const char *sql);
/* The error of the last database call, as -EBUSY or -EIO with "what: detail". */
int kw_store_db_fail(struct kw_store *store, const char **error_r, const char *what);
void kw_store_copy_text(char *dst, size_t size, struct kw_db_stmt *st, int col);
/* Text fields: at most max characters of the text text.h accepts (valid UTF-8, no controls,
 * no bidirectional controls); the error names the kind of character, never the bytes. */
int kw_store_check_text(struct kw_store *store, const char *what, const char *s, size_t max,
			bool allow_empty, const char **error_r);
/* Logins and account names: as text, not empty, at most max bytes too, and without blanks
 * (Unicode ones included), invisible characters or '=' (they travel in protocol fields and
 * key=value log lines). */
int kw_store_check_name(struct kw_store *store, const char *what, const char *s, size_t max,
			const char **error_r);
/* What kw_store_act() set: the acting user's role cap (NULL: none) and the JSON members
 * that kw_audit_append() adds to every event's details ("" when none). */
const struct kw_role *kw_store_role_cap(const struct kw_store *store);
const char *kw_store_audit_context(const struct kw_store *store);
/* store_session.c: kw_store_token_lookup() for an access token's id (>
 * KW_SESSION_TOKEN_ID_BASE); -ENOENT for any other id, a refresh token or none. */
int kw_store_access_token_lookup(struct kw_store *store, uint64_t wire,
				 struct kw_token_check *check_r);
/* The database file's path (the reserve lives beside it). */
const char *kw_store_path(const struct kw_store *store);
/* store_reserve.c: creates or completes the reserve beside a database opened for writing;
 * warns when the disk has no room for it. */
void kw_store_reserve_ensure(struct kw_store *store);
/* Releases a slice of the reserve (and warns through the log): 0, or -ENOENT when it is
 * spent. For the revocations' retry only. */
int kw_store_reserve_release(struct kw_store *store);
/* The plausibility rule for email addresses: text as for a name, at most KW_EMAIL_MAX bytes,
 * one '@' with text on both sides, nothing that would break a mail header. */
bool kw_store_email_ok(const char *email);

/* store_pg.c: the PostgreSQL store. kw_store_open() hands it a postgresql:// location. */
int kw_store_pg_open(const char *url, unsigned flags, struct kw_store **store_r,
		     const char **error_r);
/* A transaction of the store: writers serialise on one advisory lock, as SQLite's writers
 * do on its write lock, so that every rule reads what the previous writer committed. */
int kw_store_pg_begin(struct kw_store *store, bool batch);
/* Commits; a change that validators must see (any but a batch) bumps the generation and
 * notifies them, and returns once every live validator has seen it (store_pg.c). */
int kw_store_pg_commit(struct kw_store *store, bool batch);
/* After a writer's transaction ended without a change: returns once every live validator
 * acknowledged the generation current now (what it read may be another writer's change that
 * is still waiting for them). */
void kw_store_pg_settle(struct kw_store *store);

#endif
