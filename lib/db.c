/* db.c: db.h for SQLite, and the dispatch to the PostgreSQL driver (db_pg.c).
 *
 * The SQLite side is a thin veneer: each call is the sqlite3_* call of the same name, so the
 * validator's hot path (bind, step, column) costs one well-predicted branch more. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_private.h"
#include "error.h"

/* The checkpoint threshold SQLite's own WAL hook uses (sqlite3_wal_autocheckpoint): setting
 * a WAL hook replaces SQLite's auto-checkpoint, so ours does what it did. */
#define WAL_CHECKPOINT_PAGES 1000

static struct kw_db *db_new(enum kw_db_kind kind)
{
	struct kw_db *db = calloc(1, sizeof(*db));

	if (db == NULL)
		abort(); /* programs, not libraries: out of memory ends them */
	db->kind = kind;
	return db;
}

static int wal_committed(void *ctx, sqlite3 *lite, const char *name, int n_pages)
{
	struct kw_db *db = ctx;

	if (db->end_hook != NULL)
		db->end_hook(db->end_ctx, true);
	if (n_pages >= WAL_CHECKPOINT_PAGES)
		(void)sqlite3_wal_checkpoint_v2(lite, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	return SQLITE_OK;
}

static void rolled_back(void *ctx)
{
	struct kw_db *db = ctx;

	if (db->end_hook != NULL)
		db->end_hook(db->end_ctx, false);
}

int kw_db_open_sqlite(const char *path, bool readonly, struct kw_db **db_r, const char **error_r)
{
	struct kw_db *db = db_new(KW_DB_SQLITE);
	int flags =
		(readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOFOLLOW;

	if (sqlite3_open_v2(path, &db->lite, flags, NULL) != SQLITE_OK) {
		*error_r = kw_error_format("cannot open database %s: %s", path,
					   db->lite != NULL ? sqlite3_errmsg(db->lite)
							    : "out of memory");
		kw_db_close(&db);
		return -EIO;
	}
	sqlite3_busy_timeout(db->lite, 5000);
	sqlite3_extended_result_codes(db->lite, 0);
	sqlite3_wal_hook(db->lite, wal_committed, db);
	sqlite3_rollback_hook(db->lite, rolled_back, db);
	*db_r = db;
	return 0;
}

int kw_db_open_pg(const char *conninfo, struct kw_db **db_r, const char **error_r)
{
	struct kw_db *db = db_new(KW_DB_PG);
	int ret = kw_pg_open(db, conninfo, error_r);

	if (ret < 0) {
		kw_db_close(&db);
		return ret;
	}
	*db_r = db;
	return 0;
}

void kw_db_close(struct kw_db **dbp)
{
	struct kw_db *db = *dbp;

	if (db == NULL)
		return;
	if (db->lite != NULL)
		sqlite3_close(db->lite);
	kw_pg_close(db);
	free(db);
	*dbp = NULL;
}

enum kw_db_kind kw_db_kind(const struct kw_db *db)
{
	return db->kind;
}

struct sqlite3 *kw_db_sqlite(struct kw_db *db)
{
	return db->lite;
}

struct pg_conn *kw_db_pgconn(struct kw_db *db)
{
	return db->pg;
}

int kw_db_exec(struct kw_db *db, const char *sql)
{
	if (db->kind == KW_DB_PG)
		return kw_pg_exec(db, sql);
	return sqlite3_exec(db->lite, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : KW_DB_ERROR;
}

int kw_db_prepare(struct kw_db *db, const char *sql, bool persistent, struct kw_db_stmt **st_r)
{
	struct kw_db_stmt *st = calloc(1, sizeof(*st));

	if (st == NULL)
		abort();
	st->db = db;
	st->persistent = persistent;
	if (db->kind == KW_DB_PG) {
		if (kw_pg_prepare(st, sql) < 0) {
			kw_db_finalize(st);
			return KW_DB_ERROR;
		}
	} else if (sqlite3_prepare_v3(db->lite, sql, -1, persistent ? SQLITE_PREPARE_PERSISTENT : 0,
				      &st->lite, NULL) != SQLITE_OK) {
		kw_db_finalize(st);
		return KW_DB_ERROR;
	}
	*st_r = st;
	return 0;
}

void kw_db_finalize(struct kw_db_stmt *st)
{
	if (st == NULL)
		return;
	if (st->lite != NULL)
		sqlite3_finalize(st->lite);
	if (st->db->kind == KW_DB_PG)
		kw_pg_finalize(st);
	free(st);
}

/* ---- parameters ---- */

/* The parameter i, or NULL for a placeholder the SQL does not have: SQLite ignores such a
 * binding (SQLITE_RANGE), and statements that share binding code may lack one. */
static struct kw_pg_param *pg_param(struct kw_db_stmt *st, int i)
{
	static _Thread_local struct kw_pg_param ignored;

	if (i < 1 || i > st->n_params)
		return &ignored;
	return &st->params[i - 1];
}

void kw_db_bind_int64(struct kw_db_stmt *st, int i, int64_t v)
{
	struct kw_pg_param *p;

	if (st->lite != NULL) {
		sqlite3_bind_int64(st->lite, i, v);
		return;
	}
	p = pg_param(st, i);
	p->type = KW_PG_INT8;
	p->length = snprintf(p->text, sizeof(p->text), "%lld", (long long)v);
	p->value = p->text;
}

void kw_db_bind_text(struct kw_db_stmt *st, int i, const char *s)
{
	struct kw_pg_param *p;

	if (st->lite != NULL) {
		if (s == NULL)
			sqlite3_bind_null(st->lite, i);
		else
			sqlite3_bind_text(st->lite, i, s, -1, SQLITE_STATIC);
		return;
	}
	p = pg_param(st, i);
	p->type = s != NULL ? KW_PG_TEXT : 0;
	p->value = s;
	p->length = 0;
}

void kw_db_bind_blob(struct kw_db_stmt *st, int i, const void *v, size_t n)
{
	struct kw_pg_param *p;

	if (st->lite != NULL) {
		sqlite3_bind_blob(st->lite, i, v, (int)n, SQLITE_STATIC);
		return;
	}
	p = pg_param(st, i);
	p->type = KW_PG_BYTEA;
	p->value = n > 0 ? v : "";
	p->length = (int)n;
}

void kw_db_bind_null(struct kw_db_stmt *st, int i)
{
	if (st->lite != NULL) {
		sqlite3_bind_null(st->lite, i);
		return;
	}
	*pg_param(st, i) = (struct kw_pg_param){ 0 };
}

/* ---- running ---- */

int kw_db_step(struct kw_db_stmt *st)
{
	if (st->lite != NULL) {
		switch (sqlite3_step(st->lite)) {
		case SQLITE_ROW:
			return KW_DB_ROW;
		case SQLITE_DONE:
			return KW_DB_DONE;
		default:
			return KW_DB_ERROR;
		}
	}
	return kw_pg_step(st);
}

void kw_db_reset(struct kw_db_stmt *st)
{
	if (st->lite != NULL) {
		sqlite3_reset(st->lite);
		sqlite3_clear_bindings(st->lite);
		return;
	}
	kw_pg_reset(st);
}

/* ---- columns ---- */

int64_t kw_db_column_int64(struct kw_db_stmt *st, int col)
{
	const char *v;

	if (st->lite != NULL)
		return sqlite3_column_int64(st->lite, col);
	v = kw_pg_value(st, col, NULL);
	if (v == NULL)
		return 0;
	/* a condition's value (t.deleted IS NOT NULL) is a boolean there, 1 or 0 in SQLite */
	if (v[0] == 't' || v[0] == 'f')
		return v[0] == 't';
	return strtoll(v, NULL, 10);
}

int kw_db_column_int(struct kw_db_stmt *st, int col)
{
	return (int)kw_db_column_int64(st, col);
}

const char *kw_db_column_text(struct kw_db_stmt *st, int col)
{
	if (st->lite != NULL)
		return (const char *)sqlite3_column_text(st->lite, col);
	return kw_pg_value(st, col, NULL);
}

const void *kw_db_column_blob(struct kw_db_stmt *st, int col)
{
	if (st->lite != NULL)
		return sqlite3_column_blob(st->lite, col);
	return kw_pg_blob(st, col, NULL);
}

size_t kw_db_column_bytes(struct kw_db_stmt *st, int col)
{
	size_t n = 0;

	if (st->lite != NULL)
		return (size_t)sqlite3_column_bytes(st->lite, col);
	/* a blob's bytes, decoded (the text form of bytea is \x and hex digits) */
	if (kw_pg_blob(st, col, &n) == NULL)
		return 0;
	return n;
}

bool kw_db_column_null(struct kw_db_stmt *st, int col)
{
	if (st->lite != NULL)
		return sqlite3_column_type(st->lite, col) == SQLITE_NULL;
	return kw_pg_value(st, col, NULL) == NULL;
}

/* ---- connection state ---- */

int64_t kw_db_changes(struct kw_db *db)
{
	if (db->kind == KW_DB_PG)
		return db->pg_changes;
	return sqlite3_changes(db->lite);
}

enum kw_db_errcode kw_db_errcode(struct kw_db *db)
{
	if (db->kind == KW_DB_PG)
		return db->pg_errcode;
	switch (sqlite3_errcode(db->lite)) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return KW_DB_OK;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return KW_DB_EBUSY;
	case SQLITE_FULL:
		return KW_DB_EFULL;
	case SQLITE_CONSTRAINT:
		return KW_DB_ECONSTRAINT;
	case SQLITE_NOTADB:
		return KW_DB_ENOTDB;
	default:
		return KW_DB_EIO;
	}
}

const char *kw_db_errmsg(struct kw_db *db)
{
	if (db->kind == KW_DB_PG)
		return db->pg_error;
	return sqlite3_errmsg(db->lite);
}

int kw_db_begin(struct kw_db *db, bool write)
{
	/* PostgreSQL: a read transaction sees one snapshot, as SQLite's does (READ COMMITTED
	 * would give each statement its own) */
	if (db->kind == KW_DB_PG)
		return kw_pg_exec(db, write ? "BEGIN"
					    : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
	return kw_db_exec(db, write ? "BEGIN IMMEDIATE" : "BEGIN");
}

int kw_db_commit(struct kw_db *db)
{
	int ret = kw_db_exec(db, "COMMIT");

	/* SQLite's hooks have run; PostgreSQL's commit is durable once COMMIT returns */
	if (db->kind == KW_DB_PG && db->end_hook != NULL)
		db->end_hook(db->end_ctx, ret == 0);
	return ret;
}

int kw_db_rollback(struct kw_db *db)
{
	int ret;

	if (!kw_db_in_transaction(db))
		return 0;
	ret = kw_db_exec(db, "ROLLBACK");
	if (db->kind == KW_DB_PG && db->end_hook != NULL)
		db->end_hook(db->end_ctx, false);
	return ret;
}

bool kw_db_in_transaction(struct kw_db *db)
{
	if (db->kind == KW_DB_PG)
		return kw_pg_in_transaction(db);
	return !sqlite3_get_autocommit(db->lite);
}

void kw_db_set_end_hook(struct kw_db *db, kw_db_end_hook *hook, void *ctx)
{
	db->end_hook = hook;
	db->end_ctx = ctx;
}
