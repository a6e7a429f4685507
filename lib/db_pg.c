/* db_pg.c: db.h on PostgreSQL, through libpq.
 *
 * Statements the store keeps (persistent) are prepared on the server once, under a name of
 * this connection ("kw1", "kw2"...), with the parameter types of their first run; those that
 * a function prepares and finalizes run as one-off parameterised queries. Parameters travel
 * in text form (integers, text) or binary (blobs), results in text form: integers are
 * parsed, bytea is decoded from its hex form. A whole result is read at once: the store's
 * results are small (at most an account's tokens, a page of the audit log), except a full
 * audit walk. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "db_private.h"
#include "error.h"

/* The most placeholders a statement of the store has is 12: room to spare. */
#define MAX_PARAMS 32

static void set_error(struct kw_db *db, const PGresult *res)
{
	const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res != NULL ? PQresultErrorMessage(res) : "";
	size_t n;

	if (msg == NULL || msg[0] == '\0')
		msg = PQerrorMessage(db->pg);
	snprintf(db->pg_error, sizeof(db->pg_error), "%s", msg);
	/* libpq's messages end in a newline (and may hold a DETAIL line): keep the first */
	n = strcspn(db->pg_error, "\n");
	db->pg_error[n] = '\0';
	if (PQstatus(db->pg) != CONNECTION_OK)
		db->pg_errcode = KW_DB_EGONE;
	else if (state == NULL)
		db->pg_errcode = KW_DB_EIO;
	else if (strncmp(state, "23", 2) == 0)
		db->pg_errcode = KW_DB_ECONSTRAINT;
	else if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
		 strcmp(state, "55P03") == 0)
		db->pg_errcode = KW_DB_EBUSY;
	else if (strcmp(state, "53100") == 0)
		db->pg_errcode = KW_DB_EFULL;
	else if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)
		db->pg_errcode = KW_DB_EGONE;
	else
		db->pg_errcode = KW_DB_EIO;
}

static void ignore_notice(void *ctx, const char *message)
{
	(void)ctx;
	(void)message;
}

/* ---- the URI, before any connection ---- */

static const char *option(PQconninfoOption *opts, const char *keyword)
{
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
		if (strcmp(o->keyword, keyword) == 0)
			return o->val != NULL && o->val[0] != '\0' ? o->val : NULL;
	return NULL;
}

/* Whether one entry of host= or hostaddr= reaches the server without a network an attacker
 * may sit on: a socket folder, or a loopback address. */
static bool local_host(const char *h, size_t n)
{
	static const char *const loopback[] = { "localhost", "127.0.0.1", "::1" };

	if (n == 0 || h[0] == '/' || h[0] == '@')
		return true;
	if (n > 4 && strncmp(h, "127.", 4) == 0)
		return true;
	for (size_t i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++)
		if (strlen(loopback[i]) == n && strncmp(h, loopback[i], n) == 0)
			return true;
	return false;
}

static bool all_local(const char *list)
{
	if (list == NULL)
		return true; /* libpq's default: the local socket folder */
	for (const char *p = list;;) {
		size_t n = strcspn(p, ",");

		if (!local_host(p, n))
			return false;
		if (p[n] == '\0')
			return true;
		p += n + 1;
	}
}

int kw_db_pg_url_check(const char *url, bool unverified_ok, char **name_r, const char **error_r)
{
	char *msg = NULL, *name;
	PQconninfoOption *opts = PQconninfoParse(url, &msg);
	const char *host, *addr, *mode, *user, *port, *dbname;
	size_t size;

	if (opts == NULL) {
		/* libpq's message quotes the URI, password included: not shown */
		PQfreemem(msg);
		*error_r = kw_error_format("the store URL is not a valid PostgreSQL URI (see "
					   "\"Connection URIs\" in libpq's documentation)");
		return -EINVAL;
	}
	host = option(opts, "host");
	addr = option(opts, "hostaddr");
	mode = option(opts, "sslmode");
	if (!unverified_ok && (!all_local(host) || (addr != NULL && !all_local(addr))) &&
	    (mode == NULL ||
	     (strcmp(mode, "verify-full") != 0 && strcmp(mode, "verify-ca") != 0))) {
		PQconninfoFree(opts);
		*error_r = kw_error_format(
			"the store URL reaches its server over the network without "
			"sslmode=verify-full (or verify-ca): whoever sits on that network could "
			"answer for the server; add sslmode=verify-full&sslrootcert=FILE, or set "
			"[store] unverified_tls = yes to accept the risk");
		return -EINVAL;
	}
	/* what messages may show: user, host, port, database; never a password */
	user = option(opts, "user");
	port = option(opts, "port");
	dbname = option(opts, "dbname");
	size = strlen(url) + 64;
	name = malloc(size);
	if (name == NULL)
		abort();
	if (host != NULL && host[0] != '/' && host[0] != '@')
		snprintf(name, size, "postgresql://%s%s%s%s%s/%s", user != NULL ? user : "",
			 user != NULL ? "@" : "", host, port != NULL ? ":" : "",
			 port != NULL ? port : "", dbname != NULL ? dbname : "");
	else
		snprintf(name, size, "postgresql:///%s%s%s%s%s", dbname != NULL ? dbname : "",
			 host != NULL ? "?host=" : "", host != NULL ? host : "",
			 user != NULL ? (host != NULL ? "&user=" : "?user=") : "",
			 user != NULL ? user : "");
	PQconninfoFree(opts);
	*name_r = name;
	return 0;
}

/* Connection settings libpq leaves open, set unless the URL says otherwise: a server that
 * stops answering must not hold a program (the validator answers nothing meanwhile) for the
 * kernel's 15 minutes of TCP retries. */
static const char *const default_keywords[] = {
	"connect_timeout",     "keepalives",       "keepalives_idle",
	"keepalives_interval", "keepalives_count", "tcp_user_timeout",
	"application_name",    "dbname",           NULL,
};
static const char *const default_values[] = {
	"10", "1", "10", "3", "3", "10000", "keywarden", NULL /* the URL */, NULL,
};

int kw_pg_open(struct kw_db *db, const char *conninfo, const char **error_r)
{
	const char *values[sizeof(default_values) / sizeof(default_values[0])];
	char *name = NULL;
	PGresult *res;

	/* a URI libpq cannot parse would come back quoted in its message */
	if (kw_db_pg_url_check(conninfo, true, &name, error_r) < 0)
		return -EINVAL;
	free(name);
	memcpy(values, default_values, sizeof(values));
	/* dbname, the last pair: what the URL sets wins over the defaults before it */
	values[sizeof(values) / sizeof(values[0]) - 2] = conninfo;
	db->pg = PQconnectdbParams(default_keywords, values, 1);
	if (db->pg == NULL) {
		*error_r = kw_error_format("cannot connect to PostgreSQL: out of memory");
		return -ENOMEM;
	}
	if (PQstatus(db->pg) != CONNECTION_OK) {
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(db->pg));
		msg[strcspn(msg, "\n")] = '\0';
		*error_r = kw_error_format("cannot connect to PostgreSQL: %s", msg);
		return -EIO;
	}
	/* "relation already exists, skipping" and the like are not the user's business */
	PQsetNoticeProcessor(db->pg, ignore_notice, NULL);
	/* what this driver parses, whatever the role's or database's defaults say */
	res = PQexec(db->pg, "SET bytea_output = 'hex'; SET client_encoding = 'UTF8'");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		PQclear(res);
		*error_r = kw_error_format("cannot set up the PostgreSQL session");
		return -EIO;
	}
	PQclear(res);
	return 0;
}

void kw_pg_close(struct kw_db *db)
{
	if (db->pg != NULL)
		PQfinish(db->pg);
	db->pg = NULL;
}

static int result_ok(struct kw_db *db, PGresult *res)
{
	ExecStatusType status = PQresultStatus(res);

	db->pg_errcode = KW_DB_OK;
	db->pg_error[0] = '\0';
	if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
		const char *n = PQcmdTuples(res);

		db->pg_changes = n != NULL && n[0] != '\0' ? strtoll(n, NULL, 10) : 0;
		return 0;
	}
	set_error(db, res);
	return KW_DB_ERROR;
}

int kw_pg_exec(struct kw_db *db, const char *sql)
{
	PGresult *res = PQexec(db->pg, sql);
	int ret = result_ok(db, res);

	/* COMMIT of a transaction that failed earlier "succeeds" as a ROLLBACK */
	if (ret == 0 && strcmp(sql, "COMMIT") == 0 && strcmp(PQcmdStatus(res), "ROLLBACK") == 0) {
		db->pg_errcode = KW_DB_EIO;
		snprintf(db->pg_error, sizeof(db->pg_error),
			 "the transaction failed and was rolled back");
		ret = KW_DB_ERROR;
	}
	PQclear(res);
	return ret;
}

bool kw_pg_in_transaction(struct kw_db *db)
{
	return PQtransactionStatus(db->pg) != PQTRANS_IDLE;
}

/* SQLite's SQL to PostgreSQL's: ?N and ? become $N, the identifier user becomes "user".
 * Literals, quoted identifiers and comments are copied as they are. */
static char *translate(const char *sql, int *n_params_r)
{
	size_t len = strlen(sql), o = 0;
	/* each character grows at most to "user" -> "\"user\"" (+2 for 4) or ? -> $NNN */
	char *out = malloc(len * 3 + 1);
	int max = 0;

	if (out == NULL)
		abort();
	for (size_t i = 0; i < len;) {
		char c = sql[i];

		if (c == '\'' || c == '"') {
			size_t j = i + 1;

			while (j < len && sql[j] != c)
				j++;
			j = j < len ? j + 1 : j;
			memcpy(out + o, sql + i, j - i);
			o += j - i;
			i = j;
		} else if (c == '-' && sql[i + 1] == '-') {
			size_t j = i + strcspn(sql + i, "\n");

			memcpy(out + o, sql + i, j - i);
			o += j - i;
			i = j;
		} else if (c == '?') {
			int n = 0;

			i++;
			if (sql[i] >= '0' && sql[i] <= '9') {
				while (sql[i] >= '0' && sql[i] <= '9')
					n = n * 10 + (sql[i++] - '0');
			} else {
				n = max + 1;
			}
			if (n > max)
				max = n;
			o += (size_t)sprintf(out + o, "$%d", n);
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
			size_t j = i;

			while ((sql[j] >= 'a' && sql[j] <= 'z') ||
			       (sql[j] >= 'A' && sql[j] <= 'Z') ||
			       (sql[j] >= '0' && sql[j] <= '9') || sql[j] == '_' || sql[j] == '$')
				j++;
			if (j - i == 4 && memcmp(sql + i, "user", 4) == 0) {
				memcpy(out + o, "\"user\"", 6);
				o += 6;
			} else {
				memcpy(out + o, sql + i, j - i);
				o += j - i;
			}
			i = j;
		} else {
			out[o++] = c;
			i++;
		}
	}
	out[o] = '\0';
	*n_params_r = max;
	return out;
}

int kw_pg_prepare(struct kw_db_stmt *st, const char *sql)
{
	st->pg_sql = translate(sql, &st->n_params);
	if (st->n_params > MAX_PARAMS)
		abort(); /* fixed SQL of the store: a programming error */
	if (st->n_params > 0) {
		st->params = calloc((size_t)st->n_params, sizeof(*st->params));
		st->pg_types = calloc((size_t)st->n_params, sizeof(*st->pg_types));
		if (st->params == NULL || st->pg_types == NULL)
			abort();
	}
	return 0;
}

void kw_pg_finalize(struct kw_db_stmt *st)
{
	/* A server-side statement lives until the connection ends: persistent statements are
	 * finalized only then, and one-off statements are never prepared on the server. */
	PQclear(st->res);
	free(st->pg_sql);
	free(st->params);
	free(st->pg_types);
	free(st->blob);
}

/* Prepares st on the server with the types of its current parameters: at its first run, or
 * when a parameter that was NULL then (its type left to the server) now has a type the
 * server did not infer the same way. */
static int server_prepare(struct kw_db_stmt *st, const Oid *types)
{
	struct kw_db *db = st->db;
	PGresult *res;
	int ret;

	snprintf(st->pg_name, sizeof(st->pg_name), "kw%u", ++db->pg_next_stmt);
	res = PQprepare(db->pg, st->pg_name, st->pg_sql, st->n_params, types);
	ret = result_ok(db, res);
	PQclear(res);
	if (ret < 0) {
		st->pg_name[0] = '\0';
		return ret;
	}
	for (int i = 0; i < st->n_params; i++)
		st->pg_types[i] = (int)types[i];
	return 0;
}

static int execute(struct kw_db_stmt *st)
{
	struct kw_db *db = st->db;
	int n = st->n_params;
	const char *values[MAX_PARAMS];
	int lengths[MAX_PARAMS], formats[MAX_PARAMS];
	Oid types[MAX_PARAMS];
	bool retype = st->pg_name[0] == '\0';

	for (int i = 0; i < n; i++) {
		const struct kw_pg_param *p = &st->params[i];

		values[i] = p->type != 0 ? p->value : NULL;
		lengths[i] = p->length;
		formats[i] = p->type == KW_PG_BYTEA;
		types[i] = (Oid)p->type;
		if (p->type != 0 && st->pg_types != NULL && st->pg_types[i] != p->type)
			retype = true;
	}
	if (!st->persistent) {
		st->res = PQexecParams(db->pg, st->pg_sql, n, types, values, lengths, formats, 0);
	} else {
		if (retype) {
			/* keep the types the server was told before for parameters NULL now */
			for (int i = 0; i < n; i++)
				if (types[i] == 0 && st->pg_name[0] != '\0')
					types[i] = (Oid)st->pg_types[i];
			if (server_prepare(st, types) < 0)
				return KW_DB_ERROR;
		}
		st->res = PQexecPrepared(db->pg, st->pg_name, n, values, lengths, formats, 0);
	}
	if (result_ok(db, st->res) < 0)
		return KW_DB_ERROR;
	st->n_rows = PQresultStatus(st->res) == PGRES_TUPLES_OK ? PQntuples(st->res) : 0;
	st->row = -1;
	return 0;
}

int kw_pg_step(struct kw_db_stmt *st)
{
	if (st->res == NULL && execute(st) < 0)
		return KW_DB_ERROR;
	if (st->row + 1 < st->n_rows) {
		st->row++;
		return KW_DB_ROW;
	}
	st->row = st->n_rows;
	return KW_DB_DONE;
}

void kw_pg_reset(struct kw_db_stmt *st)
{
	PQclear(st->res);
	st->res = NULL;
	st->blob_src = NULL; /* its cell is gone */
	st->row = st->n_rows = 0;
	if (st->n_params > 0)
		memset(st->params, 0, (size_t)st->n_params * sizeof(*st->params));
}

const char *kw_pg_value(struct kw_db_stmt *st, int col, size_t *len_r)
{
	if (st->res == NULL || st->row < 0 || st->row >= st->n_rows || col < 0 ||
	    col >= PQnfields(st->res) || PQgetisnull(st->res, st->row, col))
		return NULL;
	if (len_r != NULL)
		*len_r = (size_t)PQgetlength(st->res, st->row, col);
	return PQgetvalue(st->res, st->row, col);
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

const void *kw_pg_blob(struct kw_db_stmt *st, int col, size_t *len_r)
{
	size_t len = 0, n;
	const char *v = kw_pg_value(st, col, &len);

	if (v == NULL)
		return NULL;
	if (v == st->blob_src) { /* column_blob() then column_bytes(): decoded once */
		if (len_r != NULL)
			*len_r = st->blob_n;
		return st->blob;
	}
	/* bytea_output = hex (pinned at connect): "\x" then two digits a byte */
	if (len < 2 || v[0] != '\\' || v[1] != 'x' || len % 2 != 0)
		return NULL;
	n = (len - 2) / 2;
	if (n > st->blob_cap || st->blob == NULL) {
		unsigned char *grown = realloc(st->blob, n > 0 ? n : 1);

		if (grown == NULL)
			abort();
		st->blob = grown;
		st->blob_cap = n;
	}
	st->blob_src = NULL; /* until the whole cell is decoded */
	for (size_t i = 0; i < n; i++) {
		int hi = hex_digit(v[2 + 2 * i]), lo = hex_digit(v[3 + 2 * i]);

		if (hi < 0 || lo < 0)
			return NULL;
		st->blob[i] = (unsigned char)(hi << 4 | lo);
	}
	st->blob_src = v;
	st->blob_n = n;
	if (len_r != NULL)
		*len_r = n;
	return st->blob;
}
