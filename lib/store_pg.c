/* store_pg.c: the store on PostgreSQL: opening and migrating, the writers' lock, and the
 * generation that tells validators on every host that something changed.
 *
 * Writers. SQLite lets one writer in at a time (BEGIN IMMEDIATE), and every rule of the
 * store (the 50-token limit, "role at most the issuer's", the audit chain's head, the notify
 * ledger) was written for that. On PostgreSQL each writing transaction takes the same
 * transaction-scoped advisory lock first, so writers on any host queue exactly as they do on
 * one SQLite file; under READ COMMITTED each statement then reads everything the previous
 * writer committed. Readers (the validator's lookups) take no lock.
 *
 * Generation. A commit that wrote anything bumps keywarden_generation.gen and NOTIFYs
 * channel "keywarden" with the new value, in the same transaction: a validator that reads the
 * generation (or receives the notification) knows every change up to it is visible to its
 * next statement. Bookkeeping writes (last uses, check events: kw_store_bookkeeping()) do
 * not bump it: they change no answer. After COMMIT, the writer waits until every validator
 * whose lease is live acknowledged the new generation (wait_acks(); lib/store_lease.c says
 * why that keeps every validator's cache from answering stale).
 *
 * A writer that found nothing to do ("already deleted", a user already disabled) may have
 * read the change of another writer that is still waiting for the validators: it must not
 * return before that one could. Every writer's transaction that ends without a bump (commit
 * or rollback) waits likewise until every live validator acknowledged the generation current
 * then (kw_store_pg_settle(): one query when they all have). A COMMIT whose outcome is
 * unknown (the connection ended) waits as long as the longest lease. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "error.h"
#include "log.h"
#include "schema.h"
#include "store_private.h"

/* pg_advisory_xact_lock() keys: "kw" (0x6b77) and a purpose, in decimal for the SQL */
#define LOCK_WRITERS "1802960897"
#define LOCK_MIGRATE "1802960898"
#define LOCK_NOTIFY "1802960899"

bool kw_store_url_is_pg(const char *where)
{
	return strncmp(where, "postgresql:", 11) == 0 || strncmp(where, "postgres:", 9) == 0;
}

static int query_text(struct kw_store *store, const char *sql, char *out, size_t size,
		      bool *found_r)
{
	struct kw_db_stmt *st = NULL;
	int rc;

	if (kw_db_prepare(kw_store_db(store), sql, false, &st) < 0)
		return -EIO;
	rc = kw_db_step(st);
	*found_r = rc == KW_DB_ROW && !kw_db_column_null(st, 0);
	if (*found_r)
		snprintf(out, size, "%s", kw_db_column_text(st, 0));
	kw_db_finalize(st);
	return rc == KW_DB_ERROR ? -EIO : 0;
}

static int migrate(struct kw_store *store, bool readonly, bool create, const char **error_r)
{
	struct kw_db *db = kw_store_db(store);
	char text[64], sql[192];
	bool found;
	long version;
	int ret;

	if (kw_db_exec(db, "BEGIN") < 0 ||
	    kw_db_exec(db, "SELECT pg_advisory_xact_lock(" LOCK_MIGRATE ")") < 0)
		return kw_store_db_fail(store, error_r, "cannot lock the database");
	if ((ret = query_text(store, "SELECT to_regclass('meta')::text", text, sizeof(text),
			      &found)) < 0) {
		ret = kw_store_db_fail(store, error_r, "cannot read the schema version");
		goto out;
	}
	version = 0;
	if (found) {
		if (query_text(store, "SELECT value FROM meta WHERE name = 'application'", text,
			       sizeof(text), &found) < 0) {
			ret = kw_store_db_fail(store, error_r, "cannot read the schema version");
			goto out;
		}
		if (!found || strcmp(text, "keywarden") != 0) {
			ret = kw_store_fail(store, -EPROTO, error_r, "not a keywarden database");
			goto out;
		}
		if (query_text(store, "SELECT value FROM meta WHERE name = 'schema_version'", text,
			       sizeof(text), &found) < 0 ||
		    !found) {
			ret = kw_store_fail(store, -EPROTO, error_r,
					    "the database has no schema version");
			goto out;
		}
		version = strtol(text, NULL, 10);
	} else {
		if (query_text(store,
			       "SELECT count(*)::text FROM pg_catalog.pg_tables WHERE schemaname = "
			       "current_schema()",
			       text, sizeof(text), &found) < 0) {
			ret = kw_store_db_fail(store, error_r, "cannot read the schema");
			goto out;
		}
		if (strcmp(text, "0") != 0) {
			ret = kw_store_fail(store, -EPROTO, error_r,
					    "not a keywarden database (it holds other tables)");
			goto out;
		}
	}
	if (version < 0 || (unsigned long)version > kw_pg_migrations_count) {
		ret = kw_store_fail(
			store, -EPROTO, error_r,
			"the database has schema version %ld, newer than this program's "
			"%u: upgrade keywarden",
			version, kw_pg_migrations_count);
		goto out;
	}
	if ((unsigned long)version == kw_pg_migrations_count) {
		ret = 0;
		goto out;
	}
	if (version == 0 && !create) {
		ret = kw_store_fail(store, -EPROTO, error_r,
				    "the database holds no keywarden data: only 'keywarden init' "
				    "makes a new database");
		goto out;
	}
	if (readonly) {
		ret = kw_store_fail(store, -EPROTO, error_r,
				    "the database has schema version %ld and needs migrating",
				    version);
		goto out;
	}
	for (unsigned v = (unsigned)version; v < kw_pg_migrations_count; v++) {
		if (kw_db_exec(db, kw_pg_migrations[v]) < 0) {
			ret = kw_store_db_fail(store, error_r, "schema migration failed");
			goto out;
		}
	}
	snprintf(sql, sizeof(sql),
		 "INSERT INTO meta (name, value) VALUES ('schema_version', '%u') ON CONFLICT "
		 "(name) DO UPDATE SET value = excluded.value",
		 kw_pg_migrations_count);
	if (kw_db_exec(db, "INSERT INTO meta (name, value) VALUES ('application', 'keywarden') "
			   "ON CONFLICT (name) DO NOTHING") < 0 ||
	    kw_db_exec(db, sql) < 0) {
		ret = kw_store_db_fail(store, error_r, "schema migration failed");
		goto out;
	}
	ret = 0;
out:
	if (ret == 0 && kw_db_commit(db) < 0)
		ret = kw_store_db_fail(store, error_r, "commit failed");
	if (ret < 0)
		(void)kw_db_rollback(db);
	return ret;
}

/* What errors may name of the server: host and database, never the URL (it may hold a
 * password). */
static const char *server_name(struct kw_store *store)
{
	(void)store;
	return "the PostgreSQL database";
}

int kw_store_pg_open(const char *url, unsigned flags, struct kw_store **store_r,
		     const char **error_r)
{
	bool readonly = (flags & KW_STORE_READONLY) != 0;
	bool create = (flags & KW_STORE_CREATE) != 0;
	struct kw_store *store;
	struct kw_db *db;
	const char *why = NULL;
	int ret;

	if ((ret = kw_db_open_pg(url, &db, error_r)) < 0)
		return ret;
	store = kw_store_new(db, NULL, readonly);
	if (readonly && kw_db_exec(db, "SET default_transaction_read_only = on") < 0) {
		ret = kw_store_db_fail(store, &why, "cannot set up the database");
		goto fail;
	}
	if ((ret = migrate(store, readonly, create, &why)) < 0)
		goto fail;
	*store_r = store;
	return 0;
fail:
	*error_r = kw_error_format("%s: %s", server_name(store), why);
	kw_store_free(&store);
	return ret;
}

int kw_store_pg_begin(struct kw_store *store, bool batch)
{
	struct kw_db *db = kw_store_db(store);

	/* A batch holds only bookkeeping that never moves back (last uses: "last_used <= ?"):
	 * no rule reads it, so it need not queue behind every host's writers, nor hold them up
	 * for its many rows. */
	if (batch)
		return kw_db_exec(db, "BEGIN") == 0 ? 0 : -EIO;
	/* one round trip: the lock is taken before the first statement of the transaction */
	if (kw_db_exec(db, "BEGIN; SELECT pg_advisory_xact_lock(" LOCK_WRITERS ")") == 0)
		return 0;
	/* The BEGIN went through and the lock did not (lock_timeout: kw_store_lock_wait()):
	 * leave no aborted transaction behind, as a failed BEGIN IMMEDIATE leaves none; straight
	 * through libpq, so that the caller still reads the lock's error. */
	if (kw_db_in_transaction(db))
		PQclear(PQexec(kw_db_pgconn(db), "ROLLBACK"));
	return -EIO;
}

/* The server's clock in ms since the epoch (as in store_lease.c) */
#define SERVER_MS "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"

static const char bump_sql[] =
	"WITH g AS (UPDATE keywarden_generation SET gen = gen + 1 WHERE id = 1 AND "
	"txid_current_if_assigned() IS NOT NULL RETURNING gen) "
	"SELECT gen, pg_notify('keywarden', gen::text) FROM g";
/* The validators that may still answer from a cache older than generation ?1: how many, and
 * the most ms one of them may still do so. */
static const char lagging_sql[] =
	"WITH n AS (SELECT " SERVER_MS " AS ms) "
	"SELECT count(*), coalesce(max(v.lease_until - n.ms), 0) FROM keywarden_validator v, n "
	"WHERE v.acked < ?1 AND v.lease_until > n.ms";

/* Longest wait when the connection is lost before any validator could be counted: the
 * largest [validator] lease_ms (conf.c). */
#define LEASE_MAX_MS 60000
/* A validator that neither acknowledges nor lets its lease lapse breaks the protocol (its
 * lease_until moves only when it acknowledges): give up on it after this long. */
#define WAIT_MAX_MS (2 * LEASE_MAX_MS + 10000)

static void sleep_ms(int64_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int64_t clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* After generation gen committed: returns once no validator may answer from a cache older
 * than it (store_lease.c says why that suffices). Polls 1 ms apart, growing to 10 ms over
 * the first 200 ms (a validator that acknowledges does so within a round trip or two). When
 * the connection is lost meanwhile, waits out the longest lease last seen (or the largest
 * possible), which is as long as such a validator may answer. */
static void wait_acks(struct kw_store *store, int64_t gen)
{
	int64_t start = clock_ms(), longest = -1, pause = 4; /* quarter ms */
	struct kw_db_stmt *st = kw_store_stmt(store, lagging_sql);

	for (;;) {
		int64_t n, left;
		int rc;

		if (st == NULL)
			break;
		kw_db_bind_int64(st, 1, gen);
		rc = kw_db_step(st);
		n = rc == KW_DB_ROW ? kw_db_column_int64(st, 0) : 0;
		left = rc == KW_DB_ROW ? kw_db_column_int64(st, 1) : 0;
		kw_db_reset(st);
		if (rc != KW_DB_ROW)
			break;
		if (n == 0)
			return;
		longest = left;
		if (clock_ms() - start > WAIT_MAX_MS) {
			kw_warning("%lld validator(s) did not acknowledge generation %lld within "
				   "%d s: "
				   "not waiting any longer",
				   (long long)n, (long long)gen, WAIT_MAX_MS / 1000);
			return;
		}
		sleep_ms(pause / 4);
		pause = pause < 40 ? pause + 1 : 40;
	}
	/* Cannot tell: a validator may answer from its cache until its lease ends. */
	longest = longest >= 0 ? longest + 1000 : LEASE_MAX_MS;
	kw_warning("cannot confirm that the validators saw generation %lld (%s): waiting %lld ms "
		   "for their leases to end",
		   (long long)gen, kw_db_errmsg(kw_store_db(store)), (long long)longest);
	sleep_ms(longest);
}

/* Cannot tell which generation the validators saw: a validator may answer from its cache until
 * its lease ends. */
static void wait_longest(struct kw_store *store)
{
	kw_warning("cannot read which generation the validators saw (%s): waiting %d ms for "
		   "their leases to end",
		   kw_db_errmsg(kw_store_db(store)), LEASE_MAX_MS);
	sleep_ms(LEASE_MAX_MS);
}

/* The current generation, and whether a live validator has not acknowledged it yet. */
static const char settle_sql[] =
	"WITH n AS (SELECT " SERVER_MS " AS ms), "
	"g AS (SELECT gen FROM keywarden_generation WHERE id = 1) "
	"SELECT g.gen, (SELECT count(*) FROM keywarden_validator v WHERE v.acked < g.gen AND "
	"v.lease_until > n.ms) FROM g, n";

void kw_store_pg_settle(struct kw_store *store)
{
	struct kw_db_stmt *st;
	int64_t gen = 0, n = 0;
	int rc;

	if (PQstatus(kw_db_pgconn(kw_store_db(store))) != CONNECTION_OK ||
	    kw_db_in_transaction(kw_store_db(store)))
		return; /* nothing read any more (a lost connection), or not done yet */
	if ((st = kw_store_stmt(store, settle_sql)) == NULL) {
		wait_longest(store);
		return;
	}
	rc = kw_db_step(st);
	if (rc == KW_DB_ROW) {
		gen = kw_db_column_int64(st, 0);
		n = kw_db_column_int64(st, 1);
	}
	kw_db_reset(st);
	if (rc != KW_DB_ROW)
		wait_longest(store);
	else if (n > 0)
		wait_acks(store, gen);
}

int kw_store_pg_commit(struct kw_store *store, bool batch)
{
	struct kw_db *db = kw_store_db(store);
	struct kw_db_stmt *st;
	int64_t gen = 0;
	int rc;

	/* Only a transaction that wrote has a transaction id: reads and failed checks cost
	 * the validators nothing. The notification is delivered at COMMIT. Bookkeeping (a
	 * validator's own last uses and events, any batch) changes no answer: no bump, no
	 * wait. */
	if (!batch && !kw_store_bookkeeping(store)) {
		if ((st = kw_store_stmt(store, bump_sql)) == NULL)
			return -EIO;
		rc = kw_db_step(st);
		if (rc == KW_DB_ROW)
			gen = kw_db_column_int64(st, 0);
		kw_db_reset(st);
		if (rc == KW_DB_ERROR)
			return -EIO;
	}
	if (kw_db_commit(db) < 0) {
		/* The connection ended during COMMIT: the change may have committed, and nobody
		 * can ask whether the validators saw it. Wait as long as any lease may last. */
		if (gen > 0 && PQstatus(kw_db_pgconn(db)) != CONNECTION_OK) {
			kw_warning("the outcome of the commit of generation %lld is unknown (the "
				   "connection ended): waiting %d ms for the validators' leases "
				   "to end",
				   (long long)gen, LEASE_MAX_MS);
			sleep_ms(LEASE_MAX_MS);
		}
		return -EIO;
	}
	if (gen > 0)
		wait_acks(store, gen);
	else if (!batch && !kw_store_bookkeeping(store))
		kw_store_pg_settle(store); /* it may have read another writer's change */
	return 0;
}

bool kw_store_lost(struct kw_store *store)
{
	struct pg_conn *conn = kw_db_pgconn(kw_store_db(store));

	return conn != NULL && PQstatus(conn) == CONNECTION_BAD;
}

int kw_store_notify_lock(struct kw_store *store, const char **error_r)
{
	if (!kw_store_is_pg(store))
		return kw_store_fail(store, -EINVAL, error_r, "no run lock in an SQLite store");
	/* session-level: held until the connection ends, whatever the run commits */
	if (kw_db_exec(kw_store_db(store), "SELECT pg_advisory_lock(" LOCK_NOTIFY ")") < 0)
		return kw_store_db_fail(store, error_r, "cannot take the notify run lock");
	return 0;
}
