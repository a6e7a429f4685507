/* store.c: opening and migrating the database, transactions, statement cache, roles,
 * accounts and users. Tokens are in tokens.c, the audit chain in audit.c. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "error.h"
#include "jsonw.h"
#include "keywarden_protocol.h"
#include "schema.h"
#include "secret.h"
#include "store.h"
#include "store_private.h"
#include "store_validator.h"
#include "store_sso.h"
#include "text.h"
#include "timeutil.h"

struct stmt_slot {
	const char *sql; /* compared by address: callers pass string literals */
	struct kw_db_stmt *stmt;
};

struct kw_store {
	struct kw_db *db;
	struct stmt_slot *stmts; /* grows; a program uses a few dozen statements */
	size_t n_stmts, cap_stmts;
	char *path; /* SQLite: the database file, for the reserve (store_reserve.c) */
	bool readonly;
	bool bookkeeping; /* kw_store_set_bookkeeping() */
	bool batch;       /* in a kw_store_begin_batch() transaction: synchronous is NORMAL */
	bool writing;     /* PostgreSQL: in a kw_store_begin() transaction (store_pg.c) */
	/* kw_store_act(): the acting user's role cap and what every audit event adds */
	bool capped;
	struct kw_role cap;
	char audit_context[KW_STORE_AUDIT_CONTEXT_MAX];
	char error[512];
};

unsigned kw_store_schema_version(void)
{
	return kw_migrations_count;
}

int kw_store_fail(struct kw_store *store, int code, const char **error_r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(store->error, sizeof(store->error), fmt, ap);
	va_end(ap);
	if (error_r != NULL)
		*error_r = store->error;
	return code;
}

int kw_store_db_fail(struct kw_store *store, const char **error_r, const char *what)
{
	switch (kw_db_errcode(store->db)) {
	case KW_DB_EBUSY:
		return kw_store_fail(store, -EBUSY, error_r, "%s: the database is busy", what);
	case KW_DB_EFULL:
		return kw_store_fail(store, -ENOSPC, error_r,
				     "%s: the disk of the database is full (nothing was changed)",
				     what);
	case KW_DB_EGONE:
		return kw_store_fail(store, -ECONNRESET, error_r,
				     "%s: the connection to the database server is lost: %s", what,
				     kw_db_errmsg(store->db));
	default:
		return kw_store_fail(store, -EIO, error_r, "%s: %s", what, kw_db_errmsg(store->db));
	}
}

static int exec(struct kw_store *store, const char *sql)
{
	return kw_db_exec(store->db, sql) == 0 ? 0 : -EIO;
}

bool kw_store_is_pg(const struct kw_store *store)
{
	return kw_db_kind(store->db) == KW_DB_PG;
}

int kw_store_begin(struct kw_store *store)
{
	if (kw_store_is_pg(store)) {
		if (kw_store_pg_begin(store, store->batch) < 0)
			return -EIO;
		store->writing = true;
		return 0;
	}
	return kw_db_begin(store->db, true) == 0 ? 0 : -EIO;
}

static void end_batch(struct kw_store *store)
{
	if (store->batch && !kw_db_in_transaction(store->db)) {
		if (!kw_store_is_pg(store))
			(void)exec(store, "PRAGMA synchronous = FULL");
		store->batch = false;
	}
}

/* Every commit waits for the disk (synchronous = FULL, set by kw_store_open()), except these:
 * in WAL mode, NORMAL leaves the sync to the next checkpoint, and a crash of the OS may take
 * the last such commits back. Fine for rows nobody was told about; the next FULL commit
 * makes them durable too. */
int kw_store_begin_batch(struct kw_store *store)
{
	if (!kw_store_is_pg(store) && exec(store, "PRAGMA synchronous = NORMAL") < 0)
		return -EIO;
	store->batch = true;
	if (kw_store_begin(store) < 0) {
		end_batch(store);
		return -EIO;
	}
	return 0;
}

int kw_store_commit(struct kw_store *store)
{
	int ret;

	if (kw_store_is_pg(store)) {
		store->writing = false;
		ret = kw_store_pg_commit(store, store->batch);
	} else
		ret = kw_db_commit(store->db) == 0 ? 0 : -EIO;
	end_batch(store);
	return ret;
}

void kw_store_rollback(struct kw_store *store)
{
	bool settle = store->writing && !store->batch && !store->bookkeeping;

	store->writing = false;
	(void)kw_db_rollback(store->db);
	end_batch(store);
	/* PostgreSQL: what this writer read (a token "already deleted") may be another writer's
	 * change that the validators have not all seen yet */
	if (settle)
		kw_store_pg_settle(store);
}

int kw_store_act(struct kw_store *store, const struct kw_store_acting *acting, const char **error_r)
{
	struct kw_role cap;
	int ret;

	store->capped = false;
	store->audit_context[0] = '\0';
	if (acting == NULL)
		return 0;
	if (acting->audit_context != NULL &&
	    strlen(acting->audit_context) >= sizeof(store->audit_context))
		return kw_store_fail(store, -EINVAL, error_r, "audit context too long");
	if (acting->role_cap != NULL) {
		if ((ret = kw_store_role_get(store, acting->role_cap, &cap, error_r)) < 0)
			return ret;
		store->cap = cap;
		store->capped = true;
	}
	if (acting->audit_context != NULL)
		snprintf(store->audit_context, sizeof(store->audit_context), "%s",
			 acting->audit_context);
	return 0;
}

const struct kw_role *kw_store_role_cap(const struct kw_store *store)
{
	return store->capped ? &store->cap : NULL;
}

const char *kw_store_audit_context(const struct kw_store *store)
{
	return store->audit_context;
}

const char *kw_store_path(const struct kw_store *store)
{
	return store->path;
}

struct kw_db *kw_store_db(struct kw_store *store)
{
	return store->db;
}

struct sqlite3 *kw_store_sqlite(struct kw_store *store)
{
	return kw_db_sqlite(store->db);
}

struct kw_db_stmt *kw_store_stmt(struct kw_store *store, const char *sql)
{
	struct stmt_slot *s;

	for (size_t i = 0; i < store->n_stmts; i++) {
		s = &store->stmts[i];
		if (s->sql == sql) {
			kw_db_reset(s->stmt);
			return s->stmt;
		}
	}
	if (store->n_stmts == store->cap_stmts) {
		size_t cap = store->cap_stmts == 0 ? 32 : store->cap_stmts * 2;
		struct stmt_slot *grown = realloc(store->stmts, cap * sizeof(*grown));
		if (grown == NULL)
			abort(); /* programs, not libraries: out of memory ends them */
		store->stmts = grown;
		store->cap_stmts = cap;
	}
	s = &store->stmts[store->n_stmts];
	if (kw_db_prepare(store->db, sql, true, &s->stmt) < 0)
		return NULL;
	s->sql = sql;
	store->n_stmts++;
	return s->stmt;
}

/* The one integer a PRAGMA returns. */
static int pragma_int(struct kw_store *store, const char *sql, int64_t *value_r)
{
	struct kw_db_stmt *st = NULL;
	int ret = -EIO;

	if (kw_db_prepare(store->db, sql, false, &st) == 0 && kw_db_step(st) == KW_DB_ROW) {
		*value_r = kw_db_column_int64(st, 0);
		ret = 0;
	}
	kw_db_finalize(st);
	return ret;
}

static int migrate(struct kw_store *store, bool readonly, bool create, const char **error_r)
{
	int64_t version = -1, app_id = 0;
	int ret;

	if (!readonly && kw_store_begin(store) < 0)
		return kw_store_db_fail(store, error_r, "cannot lock the database");
	if (pragma_int(store, "PRAGMA user_version", &version) < 0) {
		ret = kw_store_db_fail(store, error_r, "cannot read the schema version");
		goto out;
	}
	if (pragma_int(store, "PRAGMA application_id", &app_id) < 0) {
		ret = kw_store_db_fail(store, error_r, "cannot read the database header");
		goto out;
	}
	if (version > 0 && app_id != KW_APPLICATION_ID) {
		ret = kw_store_fail(store, -EPROTO, error_r, "not a keywarden database");
		goto out;
	}
	if ((unsigned)version > kw_migrations_count) {
		ret = kw_store_fail(
			store, -EPROTO, error_r,
			"the database has schema version %lld, newer than this program's "
			"%u: upgrade keywarden",
			(long long)version, kw_migrations_count);
		goto out;
	}
	if ((unsigned)version == kw_migrations_count) {
		ret = 0;
		goto out;
	}
	if (version == 0 && !create) {
		/* An empty or truncated file, or one that a restore left without its content:
		 * making it new would lose every token and audit event without a word. */
		ret = kw_store_fail(store, -EPROTO, error_r,
				    "the database holds no keywarden data (a truncated or badly "
				    "restored file?): restore it from a backup; only 'keywarden "
				    "init' makes a new database");
		goto out;
	}
	if (readonly) {
		ret = kw_store_fail(store, -EPROTO, error_r,
				    "the database has schema version %lld and needs migrating",
				    (long long)version);
		goto out;
	}
	for (unsigned v = (unsigned)version; v < kw_migrations_count; v++) {
		if (exec(store, kw_migrations[v]) < 0) {
			ret = kw_store_db_fail(store, error_r, "schema migration failed");
			goto out;
		}
	}
	char sql[96];
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %u; PRAGMA application_id = %d",
		 kw_migrations_count, KW_APPLICATION_ID);
	if (exec(store, sql) < 0) {
		ret = kw_store_db_fail(store, error_r, "schema migration failed");
		goto out;
	}
	ret = kw_store_commit(store) < 0 ? kw_store_db_fail(store, error_r, "commit failed") : 0;
	return ret;
out:
	if (!readonly) {
		if (ret == 0 && kw_store_commit(store) == 0)
			return 0;
		kw_store_rollback(store);
	}
	return ret;
}

/* The checks before SQLite opens the file: the database's folder is private, the file is a
 * regular file of ours with mode 0600 (secret.h), and not empty. create: make it first (0600
 * from its first byte). */
static int check_file(const char *path, bool create, char *error, size_t size)
{
	const char *why = NULL;
	char *dir = strdup(path), *slash;
	struct stat st;
	int ret;

	if (dir == NULL)
		abort();
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
	ret = kw_secret_dir_check(slash != NULL ? dir : ".", &why);
	if (ret < 0) {
		snprintf(error, size, "the folder of database %s %s", path, why);
		free(dir);
		return ret == -ENOTDIR || ret == -EPERM ? -EPROTO : ret;
	}
	free(dir);
	if (create) {
		/* Only 'keywarden init' creates, holding no other connection whose POSIX locks
		 * this close() could drop (see kw_secret_file_check()). */
		int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
		if (fd < 0) {
			ret = -errno;
			snprintf(error, size, "cannot create database %s: %s", path,
				 strerror(errno));
			return ret;
		}
		close(fd);
	}
	ret = kw_secret_file_check(path, &st, &why);
	if (ret == -ENOENT) {
		snprintf(error, size, "database %s does not exist (run 'keywarden init')", path);
		return ret;
	}
	if (ret < 0) {
		snprintf(error, size, "database %s %s", path, why);
		return ret == -EACCES ? ret : -EPROTO;
	}
	if (st.st_size == 0 && !create) {
		snprintf(error, size,
			 "database %s is empty (0 bytes): restore it from a backup; only "
			 "'keywarden init' makes a new database",
			 path);
		return -EPROTO;
	}
	return 0;
}

static int open_once(const char *path, unsigned flags, struct kw_store **store_r,
		     const char **error_r, bool *retry_r);

struct kw_store *kw_store_new(struct kw_db *db, const char *path, bool readonly)
{
	struct kw_store *store = calloc(1, sizeof(*store));

	if (store == NULL || (path != NULL && (store->path = strdup(path)) == NULL))
		abort();
	store->db = db;
	store->readonly = readonly;
	return store;
}

void kw_store_set_bookkeeping(struct kw_store *store)
{
	store->bookkeeping = true;
}

bool kw_store_bookkeeping(const struct kw_store *store)
{
	return store->bookkeeping;
}

bool kw_store_readonly(const struct kw_store *store)
{
	return store->readonly;
}

int kw_store_open(const char *path, unsigned flags, struct kw_store **store_r, const char **error_r)
{
	bool retry;
	int ret;

	if (kw_store_url_is_pg(path))
		return kw_store_pg_open(path, flags, store_r, error_r);
	if (strncmp(path, "sqlite:", 7) == 0)
		path += 7;

	do {
		retry = false;
		ret = open_once(path, flags, store_r, error_r, &retry);
	} while (ret < 0 && retry);
	return ret;
}

static int open_once(const char *path, unsigned flags, struct kw_store **store_r,
		     const char **error_r, bool *retry_r)
{
	char why[512];
	bool readonly = (flags & KW_STORE_READONLY) != 0;
	bool create = (flags & KW_STORE_CREATE) != 0;
	struct kw_store *store;
	struct kw_db *db;
	int ret;

	ret = check_file(path, create, why, sizeof(why));
	if (ret < 0) {
		*error_r = kw_error_format("%s", why);
		return ret;
	}
	if ((ret = kw_db_open_sqlite(path, readonly, &db, error_r)) < 0)
		return ret;
	store = kw_store_new(db, path, readonly);
	/* synchronous = FULL: in WAL mode, NORMAL may lose the last commits to an OS crash or a
	 * power cut, and a token that 'delete' reported gone would come back. Every change a
	 * user is told about waits for the disk; kw_store_begin_batch() is the exception. */
	if (exec(store, "PRAGMA foreign_keys = ON") < 0 ||
	    (!readonly && exec(store, "PRAGMA journal_mode = WAL") < 0) ||
	    exec(store, "PRAGMA synchronous = FULL") < 0) {
		ret = kw_store_db_fail(store, NULL, "cannot set up the database");
		if (kw_db_errcode(store->db) == KW_DB_ENOTDB)
			ret = kw_store_fail(store, -EPROTO, NULL, "%s is not a keywarden database",
					    path);
		goto fail;
	}
	ret = migrate(store, readonly, create, NULL);
	if (ret < 0)
		goto fail;
	/* A revocation does not take room back for the reserve: it may need that room. */
	if (!readonly && (flags & KW_STORE_REVOKE) == 0)
		kw_store_reserve_ensure(store);
	*store_r = store;
	return 0;
fail:
	*error_r = kw_error_format("%s: %s", path, store->error);
	/* No room for the WAL index when no other program has the database open: a
	 * revocation may use the reserve for that too. */
	if ((flags & KW_STORE_REVOKE) != 0 &&
	    (kw_db_errcode(store->db) == KW_DB_EFULL || kw_db_errcode(store->db) == KW_DB_EIO) &&
	    kw_store_reserve_release(store) == 0)
		*retry_r = true;
	kw_store_free(&store);
	return ret;
}

void kw_store_free(struct kw_store **storep)
{
	struct kw_store *store = *storep;

	if (store == NULL)
		return;
	for (size_t i = 0; i < store->n_stmts; i++)
		kw_db_finalize(store->stmts[i].stmt);
	free(store->stmts);
	kw_db_close(&store->db);
	free(store->path);
	free(store);
	*storep = NULL;
}

void kw_store_copy_text(char *dst, size_t size, struct kw_db_stmt *st, int col)
{
	const char *t = kw_db_column_text(st, col);
	/* cut on a character boundary: a cut UTF-8 sequence would reach output */
	size_t n = t != NULL && size > 0 ? kw_text_boundary(t, size - 1) : 0;

	if (size > 0)
		snprintf(dst, size, "%.*s", (int)n, t != NULL ? t : "");
}

/* ---- roles ---- */

static const char *const role_list[] = { KW_PROTO_ROLE_NAMES };
static char role_names[256];
static pthread_once_t role_names_once = PTHREAD_ONCE_INIT;

static void role_names_join(void)
{
	size_t n = 0;

	for (size_t i = 0; i < sizeof(role_list) / sizeof(role_list[0]); i++)
		n += (size_t)snprintf(role_names + n, sizeof(role_names) - n, "%s%s",
				      i > 0 ? ", " : "", role_list[i]);
}

const char *kw_store_role_names(void)
{
	pthread_once(&role_names_once, role_names_join);
	return role_names;
}

int kw_store_role_get(struct kw_store *store, const char *name, struct kw_role *role_r,
		      const char **error_r)
{
	struct kw_db_stmt *st = kw_store_stmt(
		store, "SELECT id, rank, name FROM role WHERE name = ?1 COLLATE NOCASE");
	int rc;

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "role lookup");
	kw_db_bind_text(st, 1, name);
	rc = kw_db_step(st);
	if (rc == KW_DB_DONE)
		return kw_store_fail(store, -ENOENT, error_r, "unknown role '%s' (roles: %s)", name,
				     kw_store_role_names());
	if (rc != KW_DB_ROW)
		return kw_store_db_fail(store, error_r, "role lookup");
	role_r->id = kw_db_column_int64(st, 0);
	role_r->rank = kw_db_column_int(st, 1);
	kw_store_copy_text(role_r->name, sizeof(role_r->name), st, 2);
	kw_db_reset(st);
	return 0;
}

/* ---- validation ---- */

int kw_store_check_text(struct kw_store *store, const char *what, const char *s, size_t max,
			bool allow_empty, const char **error_r)
{
	const char *why;
	int ret;

	if (s[0] == '\0' && !allow_empty)
		return kw_store_fail(store, -EINVAL, error_r, "%s must not be empty", what);
	/* The reason names the kind of character, never the bytes: they may be what is refused. */
	ret = kw_text_check(s, max, 0, &why);
	if (ret == -E2BIG)
		return kw_store_fail(store, -EINVAL, error_r, "%s is longer than %zu characters",
				     what, max);
	if (ret < 0)
		return kw_store_fail(store, -EINVAL, error_r, "%s %s", what, why);
	return 0;
}

int kw_store_check_name(struct kw_store *store, const char *what, const char *s, size_t max,
			const char **error_r)
{
	const char *why;
	int ret = kw_store_check_text(store, what, s, max, false, error_r);

	if (ret < 0)
		return ret;
	if ((ret = kw_text_check(s, max, KW_TEXT_NAME, &why)) < 0)
		return kw_store_fail(store, -EINVAL, error_r, "%s %s", what, why);
	/* Names travel in protocol fields whose size is fixed in bytes (KW_NAME_SIZE of
	 * keywarden.h): max bounds the bytes too. */
	if (strlen(s) > max)
		return kw_store_fail(store, -EINVAL, error_r,
				     "%s is longer than %zu bytes (in UTF-8)", what, max);
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == ' ' || *p == '=')
			return kw_store_fail(store, -EINVAL, error_r,
					     "%s must not contain blanks or '='", what);
	}
	return 0;
}

bool kw_store_email_ok(const char *email)
{
	const char *at = strchr(email, '@');
	const char *why;

	return kw_text_check(email, KW_EMAIL_MAX, KW_TEXT_NAME, &why) == 0 &&
	       strlen(email) <= KW_EMAIL_MAX && at != NULL && at != email && at[1] != '\0' &&
	       strchr(at + 1, '@') == NULL && strpbrk(email, " <>,;\"\\") == NULL;
}

static int check_email(struct kw_store *store, const char *email, const char **error_r)
{
	int ret = kw_store_check_text(store, "email", email, KW_EMAIL_MAX, false, error_r);

	if (ret < 0)
		return ret;
	if (!kw_store_email_ok(email))
		return kw_store_fail(store, -EINVAL, error_r, "'%s' is not an email address",
				     email);
	return 0;
}

/* ---- accounts ---- */

int kw_store_account_get(struct kw_store *store, const char *name, struct kw_account *acct_r,
			 const char **error_r)
{
	struct kw_db_stmt *st =
		kw_store_stmt(store, "SELECT id, token_limit, name FROM account WHERE name = ?1");
	int rc;

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "account lookup");
	kw_db_bind_text(st, 1, name);
	rc = kw_db_step(st);
	if (rc == KW_DB_DONE)
		return kw_store_fail(store, -ENOENT, error_r, "unknown account '%s'", name);
	if (rc != KW_DB_ROW)
		return kw_store_db_fail(store, error_r, "account lookup");
	acct_r->id = kw_db_column_int64(st, 0);
	acct_r->token_limit = kw_db_column_int64(st, 1);
	kw_store_copy_text(acct_r->name, sizeof(acct_r->name), st, 2);
	kw_db_reset(st);
	return 0;
}

int kw_store_account_add(struct kw_store *store, const char *actor, const char *name,
			 int64_t token_limit, const char **error_r)
{
	struct kw_account acct;
	char details[64];
	struct kw_db_stmt *st;
	int64_t now = kw_now();
	int ret;

	ret = kw_store_check_name(store, "account name", name, KW_ACCOUNT_MAX, error_r);
	if (ret == 0 && (token_limit < 0 || token_limit > 100000))
		ret = kw_store_fail(store, -EINVAL, error_r,
				    "token limit must be between 0 and 100000");
	if (ret < 0)
		return ret;
	if (kw_store_begin(store) < 0)
		return kw_store_db_fail(store, error_r, "cannot start a transaction");
	ret = kw_store_account_get(store, name, &acct, error_r);
	if (ret == 0) {
		ret = kw_store_fail(store, -EEXIST, error_r, "account '%s' already exists", name);
		goto out;
	}
	if (ret != -ENOENT)
		goto out;
	st = kw_store_stmt(store,
			   "INSERT INTO account (name, token_limit, created) VALUES (?1, ?2, ?3)");
	if (st == NULL)
		goto dbfail;
	kw_db_bind_text(st, 1, name);
	kw_db_bind_int64(st, 2, token_limit);
	kw_db_bind_int64(st, 3, now);
	if (kw_db_step(st) != KW_DB_DONE)
		goto dbfail;
	snprintf(details, sizeof(details), "{\"token_limit\":%lld}", (long long)token_limit);
	if (kw_audit_append(store, now, actor, "account.add", name, details) < 0)
		goto dbfail;
	if (kw_store_commit(store) < 0)
		goto dbfail;
	return 0;
dbfail:
	ret = kw_store_db_fail(store, error_r, "cannot add account");
out:
	kw_store_rollback(store);
	return ret;
}

/* ---- users ---- */

#define USER_COLUMNS                                                                               \
	"u.id, u.account_id, a.name, u.login, u.email, r.id, r.rank, r.name, u.enabled, "          \
	"u.expiry_emails, u.source, u.sso_state, u.sso_last_seen "

static void read_user(struct kw_db_stmt *st, struct kw_user *u)
{
	memset(u, 0, sizeof(*u));
	u->id = kw_db_column_int64(st, 0);
	u->account_id = kw_db_column_int64(st, 1);
	kw_store_copy_text(u->account, sizeof(u->account), st, 2);
	kw_store_copy_text(u->login, sizeof(u->login), st, 3);
	kw_store_copy_text(u->email, sizeof(u->email), st, 4);
	u->role.id = kw_db_column_int64(st, 5);
	u->role.rank = kw_db_column_int(st, 6);
	kw_store_copy_text(u->role.name, sizeof(u->role.name), st, 7);
	u->enabled = kw_db_column_int(st, 8) != 0;
	u->expiry_emails = kw_db_column_int(st, 9) != 0;
	u->sso = strcmp(kw_db_column_text(st, 10), "sso") == 0;
	kw_store_copy_text(u->sso_state, sizeof(u->sso_state), st, 11);
	u->sso_last_seen = kw_db_column_int64(st, 12);
}

int kw_store_user_get(struct kw_store *store, const char *login, struct kw_user *user_r,
		      const char **error_r)
{
	struct kw_db_stmt *st = kw_store_stmt(
		store, "SELECT " USER_COLUMNS "FROM user u JOIN account a ON a.id = u.account_id "
		       "JOIN role r ON r.id = u.role_id WHERE u.login = ?1");
	int rc;

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "user lookup");
	kw_db_bind_text(st, 1, login);
	rc = kw_db_step(st);
	if (rc == KW_DB_DONE)
		return kw_store_fail(store, -ENOENT, error_r, "unknown user '%s'", login);
	if (rc != KW_DB_ROW)
		return kw_store_db_fail(store, error_r, "user lookup");
	read_user(st, user_r);
	kw_db_reset(st);
	return 0;
}

int kw_store_user_add(struct kw_store *store, const char *actor, const char *account,
		      const char *login, const char *role, const char *email, const char **error_r)
{
	struct kw_account acct;
	struct kw_role r;
	struct kw_user existing;
	char details[512], jrole[KW_ROLE_MAX * 6 + 3], jacct[KW_ACCOUNT_MAX * 6 + 3];
	struct kw_db_stmt *st;
	int64_t now = kw_now();
	int ret;

	ret = kw_store_check_name(store, "login", login, KW_LOGIN_MAX, error_r);
	if (ret == 0 && email != NULL)
		ret = check_email(store, email, error_r);
	if (ret < 0)
		return ret;
	if (kw_store_begin(store) < 0)
		return kw_store_db_fail(store, error_r, "cannot start a transaction");
	if ((ret = kw_store_account_get(store, account, &acct, error_r)) < 0 ||
	    (ret = kw_store_role_get(store, role, &r, error_r)) < 0)
		goto out;
	ret = kw_store_user_get(store, login, &existing, error_r);
	if (ret == 0) {
		ret = kw_store_fail(store, -EEXIST, error_r, "user '%s' already exists", login);
		goto out;
	}
	if (ret != -ENOENT)
		goto out;
	st = kw_store_stmt(store, "INSERT INTO user (account_id, login, email, role_id, created) "
				  "VALUES (?1, ?2, ?3, ?4, ?5)");
	if (st == NULL)
		goto dbfail;
	kw_db_bind_int64(st, 1, acct.id);
	kw_db_bind_text(st, 2, login);
	if (email != NULL)
		kw_db_bind_text(st, 3, email);
	kw_db_bind_int64(st, 4, r.id);
	kw_db_bind_int64(st, 5, now);
	if (kw_db_step(st) != KW_DB_DONE)
		goto dbfail;
	kw_json_string_buf(jrole, sizeof(jrole), r.name);
	kw_json_string_buf(jacct, sizeof(jacct), acct.name);
	snprintf(details, sizeof(details), "{\"account\":%s,\"role\":%s}", jacct, jrole);
	if (kw_audit_append(store, now, actor, "user.add", login, details) < 0 ||
	    kw_store_commit(store) < 0)
		goto dbfail;
	return 0;
dbfail:
	ret = kw_store_db_fail(store, error_r, "cannot add user");
out:
	kw_store_rollback(store);
	return ret;
}

static int user_set(struct kw_store *store, const char *actor, const char *login,
		    const struct kw_user_change *change, const char **error_r)
{
	struct kw_user u;
	struct kw_role r;
	char details[1024], jv[600];
	size_t dl = 0;
	struct kw_db_stmt *st;
	int64_t now = kw_now();
	int ret;

	if (change->email != NULL && change->email[0] != '\0' &&
	    (ret = check_email(store, change->email, error_r)) < 0)
		return ret;
	if (kw_store_begin(store) < 0)
		return kw_store_db_fail(store, error_r, "cannot start a transaction");
	if ((ret = kw_store_user_get(store, login, &u, error_r)) < 0)
		goto out;
	details[dl++] = '{';
	if (change->role != NULL) {
		if ((ret = kw_store_role_get(store, change->role, &r, error_r)) < 0)
			goto out;
		st = kw_store_stmt(store, "UPDATE user SET role_id = ?2 WHERE id = ?1");
		if (st == NULL)
			goto dbfail;
		kw_db_bind_int64(st, 1, u.id);
		kw_db_bind_int64(st, 2, r.id);
		if (kw_db_step(st) != KW_DB_DONE)
			goto dbfail;
		kw_json_string_buf(jv, sizeof(jv), r.name);
		dl += (size_t)snprintf(details + dl, sizeof(details) - dl, "%s\"role\":%s",
				       dl > 1 ? "," : "", jv);
		kw_json_string_buf(jv, sizeof(jv), u.role.name);
		dl += (size_t)snprintf(details + dl, sizeof(details) - dl, ",\"old_role\":%s", jv);
	}
	if (change->email != NULL) {
		st = kw_store_stmt(store, "UPDATE user SET email = ?2 WHERE id = ?1");
		if (st == NULL)
			goto dbfail;
		kw_db_bind_int64(st, 1, u.id);
		if (change->email[0] != '\0')
			kw_db_bind_text(st, 2, change->email);
		if (kw_db_step(st) != KW_DB_DONE)
			goto dbfail;
		kw_json_string_buf(jv, sizeof(jv), change->email);
		dl += (size_t)snprintf(details + dl, sizeof(details) - dl, "%s\"email\":%s",
				       dl > 1 ? "," : "", jv);
	}
	if (change->enabled >= 0) {
		st = kw_store_stmt(store, "UPDATE user SET enabled = ?2 WHERE id = ?1");
		if (st == NULL)
			goto dbfail;
		kw_db_bind_int64(st, 1, u.id);
		kw_db_bind_int64(st, 2, change->enabled);
		if (kw_db_step(st) != KW_DB_DONE)
			goto dbfail;
		dl += (size_t)snprintf(details + dl, sizeof(details) - dl, "%s\"enabled\":%s",
				       dl > 1 ? "," : "", change->enabled ? "true" : "false");
		/* A disabled user's SSO sessions and their access and refresh tokens end now (an
		 * enable later does not bring them back); permanent tokens only stop validating
		 * while the user is disabled. */
		if (!change->enabled) {
			const char *why = NULL;
			unsigned ended = 0;

			if (kw_store_sso_sessions_end(store, u.id, NULL, now, &ended, &why) < 0)
				goto dbfail;
			if (ended > 0)
				dl += (size_t)snprintf(details + dl, sizeof(details) - dl,
						       ",\"sessions_ended\":%u", ended);
		}
	}
	if (change->expiry_emails >= 0) {
		st = kw_store_stmt(store, "UPDATE user SET expiry_emails = ?2 WHERE id = ?1");
		if (st == NULL)
			goto dbfail;
		kw_db_bind_int64(st, 1, u.id);
		kw_db_bind_int64(st, 2, change->expiry_emails);
		if (kw_db_step(st) != KW_DB_DONE)
			goto dbfail;
		dl += (size_t)snprintf(details + dl, sizeof(details) - dl, "%s\"expiry_emails\":%s",
				       dl > 1 ? "," : "", change->expiry_emails ? "true" : "false");
	}
	if (dl == 1) {
		ret = kw_store_fail(store, -EINVAL, error_r, "nothing to change");
		goto out;
	}
	snprintf(details + dl, sizeof(details) - dl, "}");
	if (kw_audit_append(store, now, actor, "user.set", login, details) < 0 ||
	    kw_store_commit(store) < 0)
		goto dbfail;
	return 0;
dbfail:
	ret = kw_store_db_fail(store, error_r, "cannot change user");
out:
	kw_store_rollback(store);
	return ret;
}

int kw_store_user_set(struct kw_store *store, const char *actor, const char *login,
		      const struct kw_user_change *change, const char **error_r)
{
	int ret = user_set(store, actor, login, change, error_r);

	/* disabling is a revocation: a full disk must not keep the user's tokens valid */
	while (ret == -ENOSPC && change->enabled == 0 && kw_store_reserve_release(store) == 0)
		ret = user_set(store, actor, login, change, error_r);
	return ret;
}

int kw_store_user_list(struct kw_store *store, const char *account, kw_user_cb *cb, void *ctx,
		       const char **error_r)
{
	struct kw_account acct;
	struct kw_user u;
	struct kw_db_stmt *st;
	int ret, rc;

	if ((ret = kw_store_account_get(store, account, &acct, error_r)) < 0)
		return ret;
	st = kw_store_stmt(store, "SELECT " USER_COLUMNS
				  "FROM user u JOIN account a ON a.id = u.account_id "
				  "JOIN role r ON r.id = u.role_id WHERE u.account_id = ?1 "
				  "ORDER BY u.login");
	if (st == NULL)
		return kw_store_db_fail(store, error_r, "user list");
	kw_db_bind_int64(st, 1, acct.id);
	while ((rc = kw_db_step(st)) == KW_DB_ROW) {
		read_user(st, &u);
		if ((ret = cb(&u, ctx)) < 0) {
			kw_db_reset(st);
			return ret;
		}
	}
	kw_db_reset(st);
	return rc == KW_DB_DONE ? 0 : kw_store_db_fail(store, error_r, "user list");
}
