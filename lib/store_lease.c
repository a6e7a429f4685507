/* store_lease.c: a validator's lease on a PostgreSQL store (issue 15): how keywarden-validator
 * on any host knows that its token cache may still answer, and how a writer knows that every
 * validator has seen its change. The writer's half is kw_store_pg_wait_acks() in store_pg.c.
 *
 * The promise: no validator on any host answers OK for a token (or any answer a change could
 * make wrong) after the command that deleted it (disabled its user, changed a role, recorded
 * an SSO change: any writing commit) has returned.
 *
 * The pieces. G is keywarden_generation.gen: every writing commit bumps it in its own
 * transaction, under the writers' lock, and NOTIFYs channel "keywarden" (store_pg.c). Each
 * validator V holds one row of keywarden_validator: acked (the generation its cache was
 * checked against) and lease_until (server clock, ms). V keeps, on its own clock
 * (CLOCK_BOOTTIME: it counts a frozen process and a suspended host), a deadline.
 *
 *  - Registration (at the first poll, and after every reconnect): LISTEN first, then insert
 *    the row with acked = G and lease_until = server now + L; the cache starts empty. Rows
 *    whose lease lapsed long ago (STALE_MS) are removed then.
 *  - Renewal (on a notification naming a generation above the cache's, every L/3, and before
 *    answering once the deadline is near): one statement, UPDATE ... SET acked = G,
 *    lease_until = server now + L RETURNING acked. The deadline becomes the clock read BEFORE
 *    the statement was sent + L - margin. When acked moved, the cache is dropped before the
 *    validator answers anything (one thread; the statement is synchronous).
 *  - The writer W, after COMMIT of generation g, waits until no row has acked < g while
 *    lease_until > server now (store_pg.c).
 *
 * Why it holds. Take W's commit of g, and any validator V when W returns.
 *  (1) V's row shows acked >= g. The statement that wrote it read G with a snapshot that saw
 *      commit g (READ COMMITTED: G is written in the same transaction as the change, and
 *      every generation below g committed before g, under the same row lock). V waited for
 *      that statement's result and dropped its cache before answering anything more; every
 *      lookup it makes afterwards starts later, so it sees commit g. Answers decided after
 *      the statement ran on the server are therefore fresh.
 *  (2) V's row shows lease_until <= server now. The row's lease_until is the server's clock
 *      when the statement ran + L; V's deadline is V's clock when it sent it + L - margin:
 *      sending precedes running, so V's deadline passed at least `margin` before lease_until.
 *      Past its deadline V makes no lookup and answers from its cache only what no commit can
 *      make wrong: FAIL deleted (a deletion is final), FAIL expired (an expiry is written once,
 *      at creation), FAIL invalid for a wrong secret of a cached token (its digest is written
 *      once, in its creating transaction). Everything else (OK, disabled, an unknown id: a
 *      token created since may have it) is temp_fail until a renewal succeeds, and a
 *      successful renewal acks >= g (it starts after g committed), so (1) applies again.
 *  (3) V has no row W can see. V caches nothing before its registration returned. If the
 *      insert was not visible to W's check, it committed after that check, which followed
 *      commit g: V's later lookups see g. A row removed as stale had its lease lapsed long
 *      ago: V is past its deadline, its renewal finds no row, and it re-registers with an
 *      empty cache.
 *  (4) A lost connection. Lost while no statement was in flight: V's row stays as it was and
 *      W waits for its lease, while V answers from its cache until its deadline, cache
 *      misses temp_fail. Lost during a renewal: the server may have run it (acked >= g, W
 *      does not wait) without V learning the result, so V drops its lease at once (its cache
 *      proves only what (2) allows). Notifications are a hint for speed, never needed for
 *      (1)-(3): one lost while disconnected costs nothing, because a reconnect re-registers
 *      with an empty cache.
 * So W returns only once every live validator has dropped what it had, or has stopped
 * answering from it; the wait is bounded by the longest lease (a row's lease_until moves
 * only by its own validator's renewals, and every renewal that starts after commit g acks it).
 *
 * What it assumes. The database server's clock does not jump forward by more than the margin
 * within one lease (a step forward would make W see a lease lapse early; NTP slews); clocks
 * tick at the same rate within the margin; and a validator is not frozen for longer than the
 * margin between deciding an answer and writing it to its socket (the check-then-act gap of
 * any lease). Margin: a fifth of the lease. Every statement on the validator's connection
 * has a statement_timeout of the margin, and the validator reads the clock again before every
 * answer that needs the lease and after every lookup (a batch of cache misses is a round trip
 * each): once the deadline passed it renews, synchronously, before answering
 * (validator/daemon_check.c), so deciding never trails the deadline by a lookup.
 *
 * Cost. Nothing per request or per wakeup: a clock read and libpq's notification queue. One
 * round trip per L/3 and one per writing commit anywhere (its notification). Not
 * thread-safe: the validator's one thread. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "log.h"
#include "store_lease.h"
#include "store_private.h"
#include "store_validator.h"

/* A row whose lease lapsed this long ago (ms) belongs to a validator that is gone (or frozen:
 * it registers again when it wakes). */
#define STALE_MS "600000"
/* After a statement failed on a working connection (not a lost one), try again this late. */
#define RETRY_MS 1000

/* The server's clock in ms since the epoch (the same expression in store_pg.c) */
#define SERVER_MS "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"

/* A process keeps its id across reconnects: its row is replaced, not left behind. */
static const char register_sql[] =
	"INSERT INTO keywarden_validator (id, host, pid, acked, lease_until) "
	"SELECT ?1, ?2, ?3, gen, " SERVER_MS " + ?4 FROM keywarden_generation WHERE id = 1 "
	"ON CONFLICT (id) DO UPDATE SET acked = excluded.acked, lease_until = "
	"excluded.lease_until RETURNING acked";
static const char renew_sql[] =
	"UPDATE keywarden_validator SET acked = (SELECT gen FROM keywarden_generation WHERE id "
	"= 1), lease_until = " SERVER_MS " + ?2 WHERE id = ?1 RETURNING acked";
static const char unregister_sql[] = "DELETE FROM keywarden_validator WHERE id = ?1";
static const char cleanup_sql[] =
	"DELETE FROM keywarden_validator WHERE lease_until < " SERVER_MS " - " STALE_MS;

struct kw_store_lease {
	struct kw_store *store;
	char id[128]; /* host:pid:random */
	char host[64];
	unsigned lease_ms;
	bool registered;      /* our row exists, as far as we know */
	bool lost;            /* the connection is gone: the caller reconnects (a new store) */
	bool notified;        /* a notification named a generation above gen */
	int64_t gen;          /* the generation the cache was checked against */
	int64_t renewed;      /* our clock before sending the last successful renewal */
	int64_t deadline;     /* answer from the cache until then; 0: not at all */
	unsigned renew_lease; /* the lease that renewal asked for */
	int64_t retry_at;     /* after a failed statement: not before then */
};

static int64_t clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned margin_ms(unsigned lease)
{
	return lease / 5;
}

struct kw_store_lease *kw_store_lease_new(struct kw_store *store)
{
	/* one random part per process (a fork draws its own) */
	static pid_t drawn_for;
	static uint64_t r;
	struct kw_store_lease *l = calloc(1, sizeof(*l));

	if (l == NULL)
		abort();
	l->store = store;
	l->lease_ms = KW_STORE_LEASE_DEFAULT_MS;
	if (gethostname(l->host, sizeof(l->host)) < 0)
		snprintf(l->host, sizeof(l->host), "unknown");
	l->host[sizeof(l->host) - 1] = '\0';
	if (drawn_for != getpid()) {
		if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
			r = (uint64_t)clock_ms() ^ ((uint64_t)getpid() << 32);
		drawn_for = getpid();
	}
	snprintf(l->id, sizeof(l->id), "%s:%ld:%016llx", l->host, (long)getpid(),
		 (unsigned long long)r);
	return l;
}

void kw_store_lease_free(struct kw_store_lease **lp)
{
	struct kw_store_lease *l = *lp;
	struct kw_db_stmt *st;

	if (l == NULL)
		return;
	/* Best effort: a row left behind costs writers nothing once its lease lapsed. */
	if (l->registered && !l->lost &&
	    PQstatus(kw_db_pgconn(kw_store_db(l->store))) == CONNECTION_OK &&
	    (st = kw_store_stmt(l->store, unregister_sql)) != NULL) {
		kw_db_bind_text(st, 1, l->id);
		(void)kw_db_step(st);
		kw_db_reset(st);
	}
	free(l);
	*lp = NULL;
}

void kw_store_lease_set_ms(struct kw_store_lease *l, unsigned ms)
{
	l->lease_ms = ms;
}

/* The connection is gone. in_flight: a statement was sent whose outcome is unknown (it may
 * have acked a generation we never learnt of), so the cache proves nothing any more. */
static void lose(struct kw_store_lease *l, bool in_flight)
{
	char why[256];

	snprintf(why, sizeof(why), "%s", PQerrorMessage(kw_db_pgconn(kw_store_db(l->store))));
	why[strcspn(why, "\n")] = '\0';
	if (!l->lost)
		kw_warning("database connection lost (%s)%s", why[0] != '\0' ? why : "closed",
			   in_flight || l->deadline == 0
				   ? ""
				   : ": answering from the token cache until its lease ends");
	l->lost = true;
	if (in_flight)
		l->deadline = 0;
}

static bool connection_ok(struct kw_store_lease *l)
{
	return PQstatus(kw_db_pgconn(kw_store_db(l->store))) == CONNECTION_OK;
}

/* A renewal must run on its own, never inside a transaction: one that rolled back would leave
 * our deadline longer than the row's lease. The validator keeps no transaction open between
 * its calls; one open now was left by a failed call: end it. */
static bool idle(struct kw_store_lease *l)
{
	PGconn *conn = kw_db_pgconn(kw_store_db(l->store));

	if (PQtransactionStatus(conn) == PQTRANS_IDLE)
		return true;
	kw_error("validator lease: a transaction was left open; rolling it back");
	PQclear(PQexec(conn, "ROLLBACK"));
	if (PQtransactionStatus(conn) == PQTRANS_IDLE)
		return true;
	l->deadline = 0;
	l->retry_at = clock_ms() + RETRY_MS;
	return false;
}

/* Runs register_sql or renew_sql; returns 1 with *acked_r, 0 when renew found no row, or
 * -EIO (l->lost set when the connection is gone). */
static int lease_statement(struct kw_store_lease *l, bool insert, int64_t *acked_r)
{
	struct kw_db_stmt *st = kw_store_stmt(l->store, insert ? register_sql : renew_sql);
	unsigned lease = l->lease_ms;
	int64_t sent;
	int rc;

	if (!connection_ok(l)) {
		lose(l, false);
		return -EIO;
	}
	if (!idle(l))
		return -EIO;
	if (st == NULL) {
		lose(l, true);
		return -EIO;
	}
	kw_db_bind_text(st, 1, l->id);
	if (insert) {
		kw_db_bind_text(st, 2, l->host);
		kw_db_bind_int64(st, 3, (int64_t)getpid());
		kw_db_bind_int64(st, 4, lease);
	} else {
		kw_db_bind_int64(st, 2, lease);
	}
	sent = clock_ms();
	rc = kw_db_step(st);
	if (rc == KW_DB_ROW)
		*acked_r = kw_db_column_int64(st, 0);
	kw_db_reset(st);
	if (rc == KW_DB_ERROR) {
		/* sent: it may have run; the result is unknown */
		if (!connection_ok(l)) {
			lose(l, true);
		} else {
			kw_warning("validator lease: %s", kw_store_db_error(l->store));
			l->deadline = 0;
			l->retry_at = clock_ms() + RETRY_MS;
		}
		return -EIO;
	}
	if (rc != KW_DB_ROW)
		return 0;
	l->renewed = sent;
	l->retry_at = 0;
	l->renew_lease = lease;
	l->deadline = sent + lease - margin_ms(lease);
	return 1;
}

static enum kw_store_change do_register(struct kw_store_lease *l)
{
	struct kw_db *db = kw_store_db(l->store);
	int64_t acked = 0;
	char setup[96];

	l->deadline = 0;
	if (!connection_ok(l)) {
		lose(l, false);
		return KW_STORE_REPLACED;
	}
	if (!idle(l))
		return KW_STORE_CHANGED;
	/* No statement may block the validator's loop longer than the margin (a lookup behind
	 * a lock, a slow server): past it the lease must be renewed before anything is answered
	 * (daemon_check.c). LISTEN before reading G: a commit after that read is notified. */
	snprintf(setup, sizeof(setup), "SET statement_timeout = %u; LISTEN keywarden",
		 margin_ms(l->lease_ms) > 0 ? margin_ms(l->lease_ms) : 1);
	if (kw_db_exec(db, setup) < 0 || kw_db_exec(db, cleanup_sql) < 0) {
		if (!connection_ok(l))
			lose(l, false);
		l->retry_at = clock_ms() + RETRY_MS;
		if (!l->lost)
			kw_warning("validator lease: cannot register: %s",
				   kw_store_db_error(l->store));
		return l->lost ? KW_STORE_REPLACED : KW_STORE_CHANGED;
	}
	if (lease_statement(l, true, &acked) <= 0)
		return l->lost ? KW_STORE_REPLACED : KW_STORE_CHANGED;
	l->registered = true;
	l->gen = acked;
	l->notified = false;
	kw_debug("registered as validator %s at generation %lld (lease %u ms)", l->id,
		 (long long)acked, l->renew_lease);
	return KW_STORE_CHANGED;
}

/* Takes the notifications libpq holds (read with the socket's input, or with any result). */
static void take_notifications(struct kw_store_lease *l)
{
	PGconn *conn = kw_db_pgconn(kw_store_db(l->store));
	PGnotify *n;

	while ((n = PQnotifies(conn)) != NULL) {
		char *end;
		long long g = strtoll(n->extra, &end, 10);

		/* a payload we cannot read counts as news */
		if (end == n->extra || *end != '\0' || g > l->gen)
			l->notified = true;
		PQfreemem(n);
	}
}

void kw_store_lease_input(struct kw_store_lease *l)
{
	if (l->lost)
		return;
	if (PQconsumeInput(kw_db_pgconn(kw_store_db(l->store))) == 0 || !connection_ok(l)) {
		lose(l, false);
		return;
	}
	take_notifications(l);
}

enum kw_store_change kw_store_lease_poll(struct kw_store_lease *l)
{
	int64_t acked = 0, now = clock_ms();
	int ret;

	if (l->lost)
		return KW_STORE_REPLACED;
	if (now < l->retry_at)
		return KW_STORE_UNCHANGED; /* the lease is not held: nothing to lose */
	if (!l->registered)
		return do_register(l);
	take_notifications(l);
	if (!l->notified && now < l->renewed + l->renew_lease / 3)
		return KW_STORE_UNCHANGED;
	l->notified = false;
	ret = lease_statement(l, false, &acked);
	if (ret < 0)
		return l->lost ? KW_STORE_REPLACED : KW_STORE_CHANGED;
	if (ret == 0) {
		/* our row was removed as stale (we were frozen a long time): start over */
		l->registered = false;
		kw_notice("validator %s: its registration was removed; registering again", l->id);
		return do_register(l);
	}
	if (acked == l->gen)
		return KW_STORE_UNCHANGED;
	l->gen = acked;
	return KW_STORE_CHANGED;
}

int kw_store_lease_fd(struct kw_store_lease *l)
{
	if (l->lost)
		return -1;
	return PQsocket(kw_db_pgconn(kw_store_db(l->store)));
}

int kw_store_lease_timeout(struct kw_store_lease *l)
{
	int64_t left;

	if (l->lost)
		return -1;
	if (l->retry_at > 0)
		left = l->retry_at - clock_ms();
	else if (!l->registered || l->notified)
		left = 0;
	else
		left = l->renewed + l->renew_lease / 3 - clock_ms();
	return left <= 0 ? 0 : left > 60000 ? 60000 : (int)left;
}

bool kw_store_lease_held(struct kw_store_lease *l)
{
	return l->deadline != 0 && clock_ms() < l->deadline;
}
