/* db_private.h: the connection and statement of db.h, shared by its two drivers (db.c for
 * SQLite and the dispatch, db_pg.c for PostgreSQL). Nothing else includes it. */
#ifndef KW_DB_PRIVATE_H
#define KW_DB_PRIVATE_H

#include <sqlite3.h>

#include "db.h"

struct kw_pg_param {
	int type; /* a PostgreSQL type OID, 0 for NULL */
	const void *value;
	int length;
	char text[24]; /* an integer's digits */
};

struct kw_db {
	enum kw_db_kind kind;
	sqlite3 *lite;
	struct pg_conn *pg;
	/* PostgreSQL: the driver's own state (SQLite keeps its own) */
	enum kw_db_errcode pg_errcode;
	char pg_error[512];
	int64_t pg_changes;
	unsigned pg_next_stmt;
	kw_db_end_hook *end_hook;
	void *end_ctx;
};

struct kw_db_stmt {
	struct kw_db *db;
	sqlite3_stmt *lite;
	/* PostgreSQL */
	char *pg_sql;     /* with $N placeholders */
	char pg_name[16]; /* the server-side prepared statement, "" until prepared */
	int *pg_types;    /* the parameter types it was prepared with */
	int n_params;     /* the highest placeholder number */
	struct kw_pg_param *params;
	struct pg_result *res;
	int row, n_rows;
	bool persistent;
	/* the last blob column read, decoded from PostgreSQL's text form: blob_n bytes of
	 * blob_cap, from the result's cell blob_src (NULL: none since the last reset) */
	unsigned char *blob;
	size_t blob_n, blob_cap;
	const char *blob_src;
};

/* PostgreSQL type OIDs (pg_type.h; stable across versions) */
#define KW_PG_INT8 20
#define KW_PG_TEXT 25
#define KW_PG_BYTEA 17

/* db_pg.c, called by db.c for a PostgreSQL connection */
int kw_pg_open(struct kw_db *db, const char *conninfo, const char **error_r);
void kw_pg_close(struct kw_db *db);
int kw_pg_exec(struct kw_db *db, const char *sql);
int kw_pg_prepare(struct kw_db_stmt *st, const char *sql);
void kw_pg_finalize(struct kw_db_stmt *st);
int kw_pg_step(struct kw_db_stmt *st);
void kw_pg_reset(struct kw_db_stmt *st);
/* The value of a column of the current row: NULL for SQL NULL. */
const char *kw_pg_value(struct kw_db_stmt *st, int col, size_t *len_r);
const void *kw_pg_blob(struct kw_db_stmt *st, int col, size_t *len_r);
bool kw_pg_in_transaction(struct kw_db *db);

#endif
