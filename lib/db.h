/* db.h: the statement interface under the store, one connection to SQLite or to PostgreSQL.
 *
 * Only the store (lib/store*.c) and the two drivers (lib/db.c for SQLite, lib/db_pg.c on
 * libpq) include it. The interface is SQLite's own shape (prepare, bind, step, column,
 * reset), which is what the store's code was written against, so that one store function
 * serves both engines.
 *
 * SQL is written once, in the dialect both engines accept (ON CONFLICT, RETURNING, CASE,
 * coalesce; integers for booleans and times). The PostgreSQL driver rewrites two lexical
 * differences when it prepares a statement: the placeholders ?N and ? become $N, and the
 * table name user (a reserved word there) becomes "user". Nothing else is translated: SQL
 * that only one engine accepts does not belong in a store file.
 *
 * Errors: kw_db_step() and friends return KW_DB_ERROR; kw_db_errcode()/kw_db_errmsg() then
 * say what. A statement belongs to the connection that prepared it, and a connection to one
 * thread at a time. */
#ifndef KW_DB_H
#define KW_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kw_db;
struct kw_db_stmt;
struct sqlite3;
struct pg_conn;

enum kw_db_kind { KW_DB_SQLITE, KW_DB_PG };

enum kw_db_step_result { KW_DB_ERROR = -1, KW_DB_DONE = 0, KW_DB_ROW = 1 };

enum kw_db_errcode {
	KW_DB_OK,
	KW_DB_EBUSY,       /* locked by another writer, or a serialisation failure: retry */
	KW_DB_EFULL,       /* the disk of the database is full */
	KW_DB_ECONSTRAINT, /* a UNIQUE, CHECK or foreign key constraint */
	KW_DB_ENOTDB,      /* not a database (SQLite: not a database file) */
	KW_DB_EGONE,       /* the server's connection is lost (PostgreSQL) */
	KW_DB_EIO,         /* anything else */
};

/* SQLite: path opened read-only or read-write (never created here: see check_file() in
 * store.c), no symlink followed. */
int kw_db_open_sqlite(const char *path, bool readonly, struct kw_db **db_r, const char **error_r);
/* PostgreSQL: a libpq connection URI or key=value string. */
int kw_db_open_pg(const char *conninfo, struct kw_db **db_r, const char **error_r);
void kw_db_close(struct kw_db **dbp);
/* A PostgreSQL URI checked without connecting: 0, or -EINVAL with error_r saying what is
 * wrong (never quoting the URI: it may hold a password). Refused unless unverified_ok: a
 * server reached over the network (not a socket folder, not loopback) without
 * sslmode=verify-full or verify-ca. name_r (malloc'd): the URI as messages may show it,
 * user, host, port and database only. */
int kw_db_pg_url_check(const char *url, bool unverified_ok, char **name_r, const char **error_r);

enum kw_db_kind kw_db_kind(const struct kw_db *db);
/* The engine's handle, for what only that engine has (the SQLite file's WAL, the server's
 * notifications); NULL for the other engine. */
struct sqlite3 *kw_db_sqlite(struct kw_db *db);
struct pg_conn *kw_db_pgconn(struct kw_db *db);

/* Runs SQL without parameters or rows (may hold several statements). 0 or KW_DB_ERROR. */
int kw_db_exec(struct kw_db *db, const char *sql);
/* persistent: kept for the connection's life (the store's cache). 0 or KW_DB_ERROR. */
int kw_db_prepare(struct kw_db *db, const char *sql, bool persistent, struct kw_db_stmt **st_r);
void kw_db_finalize(struct kw_db_stmt *st);

/* Parameters count from 1; an unbound parameter is NULL. Text and blobs are not copied:
 * they must stay valid until the statement is reset. */
void kw_db_bind_int64(struct kw_db_stmt *st, int i, int64_t v);
void kw_db_bind_text(struct kw_db_stmt *st, int i, const char *s); /* NULL binds NULL */
void kw_db_bind_blob(struct kw_db_stmt *st, int i, const void *p, size_t n);
void kw_db_bind_null(struct kw_db_stmt *st, int i);

/* KW_DB_ROW, KW_DB_DONE or KW_DB_ERROR. */
int kw_db_step(struct kw_db_stmt *st);
/* Ready to run again, every parameter NULL. */
void kw_db_reset(struct kw_db_stmt *st);

/* Columns count from 0 and are valid until the next step or reset. NULL reads as 0, NULL
 * text, and an empty blob. */
int64_t kw_db_column_int64(struct kw_db_stmt *st, int col);
int kw_db_column_int(struct kw_db_stmt *st, int col);
const char *kw_db_column_text(struct kw_db_stmt *st, int col);
const void *kw_db_column_blob(struct kw_db_stmt *st, int col);
size_t kw_db_column_bytes(struct kw_db_stmt *st, int col);
bool kw_db_column_null(struct kw_db_stmt *st, int col);

/* Rows changed by the last INSERT, UPDATE or DELETE stepped on this connection. */
int64_t kw_db_changes(struct kw_db *db);
enum kw_db_errcode kw_db_errcode(struct kw_db *db);
const char *kw_db_errmsg(struct kw_db *db);

/* Transactions. write: SQLite takes the write lock at once (BEGIN IMMEDIATE); PostgreSQL
 * does not lock here (the store serialises its writers itself, store_pg.c). */
int kw_db_begin(struct kw_db *db, bool write);
int kw_db_commit(struct kw_db *db);
int kw_db_rollback(struct kw_db *db);
bool kw_db_in_transaction(struct kw_db *db);
/* Called once a transaction that started after it was set has ended: committed (durably:
 * SQLite's WAL hook) or rolled back. One hook a connection; set it again to replace. */
typedef void kw_db_end_hook(void *ctx, bool committed);
void kw_db_set_end_hook(struct kw_db *db, kw_db_end_hook *hook, void *ctx);

#endif
