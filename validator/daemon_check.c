/* daemon_check.c: answering a CHECK (see daemon.h).
 *
 * Speed without stale answers: token rows (and "no such token" as negative entries) are kept
 * in a bounded cache keyed by token id; the whole cache is dropped whenever the store says that
 * someone else committed (kw_store_watch_poll()). kw_checker_sync() runs once per wakeup after
 * the requests of that wakeup were read from their sockets, so a commit that returned to the
 * CLI before a client sent its CHECK is always seen. When the database file was replaced (a
 * restored backup), the checker closes it and opens the one now at the configured path; until
 * that works every CHECK is answered temp_fail. The checker owns its store for that reason.
 *
 * On PostgreSQL (several hosts) the watch is a lease (lib/store_lease.c): the cache answers
 * only while it is held (c->trusted, taken at each sync); past it only what no commit can
 * make wrong (deleted, expired, a wrong secret of a cached token) and temp_fail for the rest.
 * A batch of cache misses is a round trip each, so the clock is read again before every
 * answer that depends on the lease (lease_holds()): a lease that lapsed within the batch is
 * renewed first, synchronously, and the answer decided again.
 * A lost connection keeps the old store, and its lease, until a new connection works.
 *
 * The secret is checked before the token's status is told, so that nobody learns the status of
 * a token whose secret they lack: by the HMAC digest (a cached row holds only the digest), or
 * by the row's memo of the token text that last matched that digest. The memo is SipHash-2-4
 * (lib/siphash.h, 128 bits) of the text under a random key that never leaves this process:
 * a text whose memo equals the row's is that text, up to a chance of 2^-128 per guess to
 * someone who does not know the key, so it would parse, pass its checksum and match the
 * digest as it did; its parse, checksum and HMAC (three SHA-256 blocks) are skipped. Every
 * other text costs the memo, one constant-time compare of it (with a random decoy when the row
 * has none), the parse and the digest: a wrong secret of a known token, an unknown id and a
 * known token whose memo is not set yet take the same time, so that the time of an answer
 * does not tell a real token id from an unknown one (doc/protocol.md); an unknown id is
 * compared with a random decoy digest. Only the holder of the text that matched gets the
 * shortcut, and learns nothing from it that the answer does not say. The memo is dropped with
 * the row (any commit by someone else, eviction), never outlives the digest it stands for,
 * and is no more use to someone who reads this process's memory than the digest is.
 *
 * Last use is recorded in memory, coalesced per token, and written by kw_checker_flush() in one
 * transaction (every [validator] last_use_flush seconds and at exit). Failed checks are counted
 * the same way (daemon_rate.c) and go out in that transaction as one audit event, so they cost
 * no write of their own, and an interval without any costs none at all. The daemon's own
 * writes need not count as a change (for SQLite they do not), so flushing does not drop the
 * cache. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>

#include "daemon.h"
#include "error.h"
#include "siphash.h"
#include "store.h"
#include "timeutil.h"

#define NIL UINT32_MAX
#define TOUCH_SLOTS 16384 /* pending last uses; flushed early at 3/4 */
#define IP_MAX KW_STORE_IP_MAX
#define ROLES_CACHED 16
#define LOCK_WAIT_MS 100  /* the loop must never wait long for a lock: a busy flush retries */
#define RETRY_MAX_MS 2000 /* a lost database server: the longest pause between connects */

/* A cached row: three cache lines, 64-byte aligned. The first holds what every check reads
 * (the id on the bucket chain, the flags, the digest), the other two what an OK reads and
 * writes (the answer's fields, inline when they fit, and the last use); the check prefetches
 * them while it computes the digest. */
#define FIELDS_INLINE 80
struct centry {
	uint64_t id;
	uint32_t next; /* bucket chain */
	uint32_t fields_len;
	bool negative, deleted, issuer_enabled, referenced;
	bool memo_set;       /* memo holds the memo of a text that matched digest */
	bool used;           /* a last use waits here (listed in checker->used) */
	uint8_t used_family; /* of used_ip: AF_INET, AF_INET6, 0 for none */
	int64_t expires;
	uint8_t digest[KW_DIGEST_LEN];
	/* second and third lines */
	uint8_t memo[KW_SIPHASH_LEN];
	int64_t used_at;
	uint8_t used_ip[16];
	char *fields; /* "token_id=..\taccount=..\tuser=..\trole=..\texpires=..": inline or
		       * malloc()ed */
	char inline_fields[FIELDS_INLINE];
} __attribute__((aligned(64)));
_Static_assert(sizeof(struct centry) == 192, "three cache lines");

struct kw_checker {
	char *db_path;
	struct kw_store *store; /* NULL while a replaced database cannot be reopened */
	struct kw_store_watch *watch;
	unsigned lock_wait_ms;
	/* A database server (store_validator.h, the lease): the cache answers only while the
	 * lease is held (trusted, taken by each sync); offline: the connection is lost, the
	 * store is kept until a new one connects (tried at retry_at, backing off). */
	bool leased, trusted, offline;
	unsigned lease_ms, retry_ms;
	int64_t retry_at;
	void (*before_renew)(void *ctx); /* kw_checker_set_before_renew() */
	void *before_renew_ctx;
	unsigned fd_epoch; /* moves when kw_checker_fd() may have changed */
	struct kw_digest_key *key;
	uint8_t decoy[KW_DIGEST_LEN];         /* what an unknown id's digest is compared with */
	uint8_t memo_key[KW_SIPHASH_KEY_LEN]; /* random, this process's own */
	uint8_t memo_decoy[KW_SIPHASH_LEN];   /* what a row without a memo is compared with */
	int64_t now;

	struct centry *entries;
	void *entries_mem; /* what calloc() returned, entries aligned within */
	size_t cap, count, hand;
	/* Chains by hash_id(); the table grows with count (at most half full until it reaches
	 * buckets_max), so that a small working set keeps it in the CPU's cache. */
	uint32_t *buckets;
	size_t bucket_mask, buckets_max;

	struct kw_token_use *touches; /* open addressing by token id; token_id 0: free */
	size_t n_touches;
	/* Last uses are first recorded in the cache entry the check just read (no other memory
	 * touched), and moved into touches when the entry is evicted or the cache dropped, and
	 * before a write. used: the indexes of such entries (at most cap; may repeat one that
	 * was moved and used again, which is skipped). */
	uint32_t *used;
	size_t n_used;

	struct kw_failures *failures;

	/* Role ranks asked for by min_role (daemon_http.c): few, cached with the tokens. */
	struct {
		char name[KW_ROLE_MAX + 1];
		int rank;
	} roles[ROLES_CACHED];
	size_t n_roles;
};

static size_t hash_id(uint64_t id)
{
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdULL;
	id ^= id >> 33;
	return (size_t)id;
}

static void touches_harvest(struct kw_checker *c);
static void touch_move(struct kw_checker *c, struct centry *e);
static bool lease_holds(struct kw_checker *c);

#define BUCKETS_MIN 256

static void cache_reset(struct kw_checker *c)
{
	touches_harvest(c);
	c->bucket_mask = (c->buckets_max < BUCKETS_MIN ? c->buckets_max : BUCKETS_MIN) - 1;
	memset(c->buckets, 0xff, (c->bucket_mask + 1) * sizeof(uint32_t));
	c->count = 0;
	c->hand = 0;
	c->n_roles = 0;
}

static void cache_alloc(struct kw_checker *c, size_t cap)
{
	size_t nb = 16;

	while (nb < cap)
		nb <<= 1;
	c->cap = cap;
	/* calloc(): the pages of entries never used stay untouched (and out of the RSS). */
	c->entries_mem = calloc(cap + 1, sizeof(*c->entries));
	c->buckets = malloc(nb * sizeof(uint32_t));
	c->used = malloc(cap * sizeof(uint32_t));
	c->n_used = 0;
	if (c->entries_mem == NULL || c->buckets == NULL || c->used == NULL)
		abort();
	c->entries = (struct centry *)(((uintptr_t)c->entries_mem + 63) & ~(uintptr_t)63);
	c->buckets_max = nb;
	cache_reset(c);
}

static void cache_release(struct kw_checker *c)
{
	touches_harvest(c);
	free(c->used);
	c->used = NULL;
	if (c->entries != NULL) {
		for (size_t i = 0; i < c->cap; i++) {
			if (c->entries[i].fields != c->entries[i].inline_fields)
				free(c->entries[i].fields);
		}
	}
	free(c->entries_mem);
	free(c->buckets);
	c->entries = NULL;
	c->entries_mem = NULL;
	c->buckets = NULL;
}

static struct centry *cache_find(struct kw_checker *c, uint64_t id)
{
	for (uint32_t i = c->buckets[hash_id(id) & c->bucket_mask]; i != NIL;
	     i = c->entries[i].next) {
		if (c->entries[i].id == id) {
			c->entries[i].referenced = true;
			return &c->entries[i];
		}
	}
	return NULL;
}

/* Doubles the bucket table and chains every entry again. */
static void buckets_grow(struct kw_checker *c)
{
	c->bucket_mask = (c->bucket_mask << 1) | 1;
	memset(c->buckets, 0xff, (c->bucket_mask + 1) * sizeof(uint32_t));
	for (uint32_t i = 0; i < (uint32_t)c->count; i++) {
		uint32_t *b = &c->buckets[hash_id(c->entries[i].id) & c->bucket_mask];
		c->entries[i].next = *b;
		*b = i;
	}
}

/* A slot for id, evicting by CLOCK when the cache is full. */
static struct centry *cache_slot(struct kw_checker *c, uint64_t id)
{
	struct centry *e;
	uint32_t idx, *link;

	if (c->count < c->cap) {
		idx = (uint32_t)c->count++;
	} else {
		for (;;) {
			e = &c->entries[c->hand];
			if (!e->referenced)
				break;
			e->referenced = false;
			c->hand = (c->hand + 1) % c->cap;
		}
		idx = (uint32_t)c->hand;
		c->hand = (c->hand + 1) % c->cap;
		if (e->used)
			touch_move(c, e);
		for (link = &c->buckets[hash_id(e->id) & c->bucket_mask]; *link != idx;
		     link = &c->entries[*link].next)
			;
		*link = e->next;
	}
	e = &c->entries[idx];
	e->id = id;
	e->referenced = true;
	e->negative = false;
	e->memo_set = false;
	memcpy(e->memo, c->memo_decoy, KW_SIPHASH_LEN);
	e->used = false;
	e->next = c->buckets[hash_id(id) & c->bucket_mask];
	c->buckets[hash_id(id) & c->bucket_mask] = idx;
	if (c->count > (c->bucket_mask + 1) / 2 && c->bucket_mask + 1 < c->buckets_max)
		buckets_grow(c);
	return e;
}

static void fill_entry(struct centry *e, const struct kw_token_check *row)
{
	char expires[KW_TIME_TEXT_MAX];
	char buf[80 + KW_ACCOUNT_MAX + KW_LOGIN_MAX + KW_ROLE_MAX + KW_TIME_TEXT_MAX];
	int n;

	if (row->expires == KW_NEVER)
		snprintf(expires, sizeof(expires), KW_PROTO_EXPIRES_NEVER);
	else
		kw_time_format(row->expires, expires);
	n = snprintf(buf, sizeof(buf), KW_PROTO_OK_FIELDS_FMT, (unsigned long long)row->id,
		     row->account, row->user, row->role, expires);
	/* a 1-hour access token (issue 11) says so; a permanent token has no kind field */
	if (n > 0 && row->access && (size_t)n < sizeof(buf))
		n += snprintf(buf + n, sizeof(buf) - (size_t)n,
			      "\t" KW_PROTO_FIELD_KIND "=" KW_PROTO_KIND_ACCESS);
	if (n < 0 || (size_t)n >= sizeof(buf))
		abort(); /* cannot happen: the buffer holds the longest names */
	if (e->fields != e->inline_fields)
		free(e->fields);
	if ((size_t)n < sizeof(e->inline_fields)) {
		e->fields = e->inline_fields;
	} else {
		e->fields = malloc((size_t)n + 1);
		if (e->fields == NULL)
			abort();
	}
	memcpy(e->fields, buf, (size_t)n + 1);
	e->fields_len = (uint32_t)n;
	memcpy(e->digest, row->digest, KW_DIGEST_LEN);
	e->memo_set = false; /* a memo stands for the digest it was checked against */
	e->expires = row->expires;
	e->deleted = row->deleted;
	e->issuer_enabled = row->issuer_enabled;
}

/* Opens the database at c->db_path and starts watching it. */
static int store_open(struct kw_checker *c, const char **error_r)
{
	int ret = kw_store_open(c->db_path, 0, &c->store, error_r);

	if (ret < 0)
		return ret;
	kw_store_set_bookkeeping(c->store);
	kw_store_lock_wait(c->store, c->lock_wait_ms);
	/* The database must be the key's (at start, and after a replacement too). */
	ret = kw_store_key_check(c->store, c->key, error_r);
	if (ret == 0)
		ret = kw_store_watch_new(c->store, &c->watch, error_r);
	if (ret == 0) {
		kw_store_watch_set_lease(c->watch, c->lease_ms);
		c->leased = kw_store_watch_leased(c->watch);
		c->fd_epoch++;
	}
	if (ret < 0) {
		/* the text may live in the store: keep a copy past its free */
		*error_r = kw_error_format("%s", *error_r);
		kw_store_free(&c->store);
	}
	return ret;
}

static void store_close(struct kw_checker *c)
{
	kw_store_watch_free(&c->watch);
	kw_store_free(&c->store);
}

int kw_checker_new(const char *db_path, struct kw_digest_key *key, size_t cache_size,
		   struct kw_checker **checker_r, const char **error_r)
{
	struct kw_checker *c = calloc(1, sizeof(*c));
	int ret;

	if (c == NULL || (c->db_path = strdup(db_path)) == NULL)
		abort();
	c->key = key;
	c->lock_wait_ms = LOCK_WAIT_MS;
	c->lease_ms = KW_STORE_LEASE_DEFAULT_MS;
	if (getrandom(c->decoy, sizeof(c->decoy), 0) != (ssize_t)sizeof(c->decoy) ||
	    getrandom(c->memo_key, sizeof(c->memo_key), 0) != (ssize_t)sizeof(c->memo_key) ||
	    getrandom(c->memo_decoy, sizeof(c->memo_decoy), 0) != (ssize_t)sizeof(c->memo_decoy)) {
		*error_r = "cannot read random bytes";
		free(c->db_path);
		free(c);
		return -EIO;
	}
	ret = store_open(c, error_r);
	if (ret < 0) {
		free(c->db_path);
		free(c);
		return ret;
	}
	c->trusted = !c->leased; /* a lease is held from the first sync on */
	cache_alloc(c, cache_size);
	c->touches = calloc(TOUCH_SLOTS, sizeof(*c->touches));
	if (c->touches == NULL)
		abort();
	c->failures = kw_failures_new();
	*checker_r = c;
	return 0;
}

void kw_checker_free(struct kw_checker **checkerp)
{
	struct kw_checker *c = *checkerp;

	if (c == NULL)
		return;
	store_close(c);
	free(c->db_path);
	cache_release(c);
	free(c->touches);
	kw_failures_free(&c->failures);
	explicit_bzero(c->memo_key, sizeof(c->memo_key));
	free(c);
	*checkerp = NULL;
}

void kw_checker_set_cache_size(struct kw_checker *c, size_t cache_size)
{
	if (cache_size == c->cap)
		return;
	cache_release(c);
	cache_alloc(c, cache_size);
}

void kw_checker_set_lock_wait(struct kw_checker *c, unsigned ms)
{
	c->lock_wait_ms = ms;
	if (c->store != NULL)
		kw_store_lock_wait(c->store, ms);
}

/* The database file was replaced: close ours (before opening the new one, so that the two
 * never share the lock files) and open what is at the path now. Pending last uses stay
 * pending and go to the new database (a restored copy has the same token ids). */
static void store_reopen(struct kw_checker *c)
{
	bool was_open = c->store != NULL;
	const char *error = NULL;

	store_close(c);
	if (store_open(c, &error) < 0) {
		if (was_open)
			kw_error("database %s was replaced and cannot be reopened: %s; answering "
				 "temp_fail until it can",
				 c->db_path, error);
		return;
	}
	kw_notice("database %s was replaced (another file at that path): reopened", c->db_path);
}

void kw_checker_set_lease(struct kw_checker *c, unsigned ms)
{
	c->lease_ms = ms;
	if (c->watch != NULL)
		kw_store_watch_set_lease(c->watch, ms);
}

void kw_checker_set_before_renew(struct kw_checker *c, void (*fn)(void *ctx), void *ctx)
{
	c->before_renew = fn;
	c->before_renew_ctx = ctx;
}

/* A database server's connection is lost. Unlike a replaced file, the old store stays until
 * a new connection works: its lease says how long the cache may still answer (cache misses
 * are temp_fail meanwhile). Connects again at most every retry_ms (100 ms doubling to 2 s);
 * the new connection registers afresh, with an empty cache. */
static enum kw_store_change lease_reconnect(struct kw_checker *c)
{
	struct kw_store *old_store = c->store;
	struct kw_store_watch *old_watch = c->watch;
	int64_t now = kw_monotonic_ms();
	const char *error = NULL;

	if (!c->offline) {
		c->offline = true;
		c->fd_epoch++;
		c->retry_ms = 100;
		c->retry_at = now;
	}
	if (now < c->retry_at)
		return KW_STORE_UNCHANGED;
	c->store = NULL;
	c->watch = NULL;
	if (store_open(c, &error) < 0) {
		c->store = old_store;
		c->watch = old_watch;
		c->retry_at = now + c->retry_ms;
		kw_debug("database server: %s; next try in %u ms", error, c->retry_ms);
		c->retry_ms = c->retry_ms < RETRY_MAX_MS / 2 ? c->retry_ms * 2 : RETRY_MAX_MS;
		return KW_STORE_UNCHANGED;
	}
	kw_store_watch_free(&old_watch);
	kw_store_free(&old_store);
	c->offline = false;
	kw_notice("database server: connected again; token cache dropped");
	if (kw_store_watch_poll(c->watch) == KW_STORE_REPLACED) {
		/* lost again at once: this store is the old one now */
		c->offline = true;
		c->fd_epoch++;
		c->retry_at = now + c->retry_ms;
		c->retry_ms = c->retry_ms < RETRY_MAX_MS / 2 ? c->retry_ms * 2 : RETRY_MAX_MS;
	}
	return KW_STORE_CHANGED;
}

void kw_checker_sync(struct kw_checker *c)
{
	enum kw_store_change change =
		c->store != NULL ? kw_store_watch_poll(c->watch) : KW_STORE_REPLACED;

	if (change == KW_STORE_REPLACED && c->leased) {
		change = lease_reconnect(c);
	} else if (change == KW_STORE_REPLACED) {
		store_reopen(c);
		/* The first poll of a new watch answers CHANGED: take it now. */
		if (c->store != NULL)
			(void)kw_store_watch_poll(c->watch);
		change = KW_STORE_CHANGED;
	}
	if (change == KW_STORE_CHANGED) {
		if (c->count > 0)
			kw_debug("database changed: token cache dropped (%zu rows)", c->count);
		cache_reset(c);
	}
	c->trusted = !c->leased || kw_store_watch_held(c->watch);
	c->now = kw_now();
}

void kw_checker_tick(struct kw_checker *c)
{
	if (c->leased)
		kw_checker_sync(c);
}

void kw_checker_input(struct kw_checker *c)
{
	if (c->leased && !c->offline) {
		kw_store_watch_input(c->watch);
		kw_checker_sync(c);
	}
}

int kw_checker_fd(struct kw_checker *c, unsigned *epoch_r)
{
	*epoch_r = c->fd_epoch;
	return c->leased && !c->offline ? kw_store_watch_fd(c->watch) : -1;
}

int kw_checker_timeout(struct kw_checker *c)
{
	int64_t left;

	if (!c->leased)
		return -1;
	if (!c->offline)
		return kw_store_watch_timeout(c->watch);
	left = c->retry_at - kw_monotonic_ms();
	return left <= 0 ? 0 : left > 60000 ? 60000 : (int)left;
}

/* Records a last use of id at when from ip (text, "" for none) in touches. */
static void touch_insert(struct kw_checker *c, uint64_t id, int64_t when, const char *ip)
{
	for (size_t i = hash_id(id) & (TOUCH_SLOTS - 1);; i = (i + 1) & (TOUCH_SLOTS - 1)) {
		struct kw_token_use *t = &c->touches[i];
		if (t->token_id == id || t->token_id == 0) {
			if (t->token_id == 0) {
				if (c->n_touches >= TOUCH_SLOTS - 1)
					return; /* the database refuses writes: drop, keep going */
				t->token_id = id;
				t->ip[0] = '\0';
				c->n_touches++;
			}
			if (when > t->when)
				t->when = when;
			if (ip[0] != '\0')
				snprintf(t->ip, sizeof(t->ip), "%s", ip);
			break;
		}
	}
}

/* Moves the last use waiting in e into touches. */
static void touch_move(struct kw_checker *c, struct centry *e)
{
	char ip[IP_MAX] = "";

	if (e->used_family != 0)
		inet_ntop(e->used_family, e->used_ip, ip, sizeof(ip));
	touch_insert(c, e->id, e->used_at, ip);
	e->used = false;
}

static void touches_harvest(struct kw_checker *c)
{
	for (size_t i = 0; i < c->n_used; i++) {
		struct centry *e = &c->entries[c->used[i]];
		if (e->used)
			touch_move(c, e);
	}
	c->n_used = 0;
}

static void record_use(struct kw_checker *c, struct centry *e, const char *ip, size_t ip_len)
{
	char ipbuf[IP_MAX];

	if (!e->used) {
		if (c->n_used == c->cap)
			touches_harvest(c); /* only repeats of moved entries fill it */
		e->used = true;
		e->used_family = 0;
		c->used[c->n_used++] = (uint32_t)(e - c->entries);
	}
	e->used_at = c->now;
	if (ip != NULL && ip_len > 0 && ip_len < IP_MAX) {
		memcpy(ipbuf, ip, ip_len);
		ipbuf[ip_len] = '\0';
		/* Only a well-formed address is recorded; a malformed one keeps the previous. */
		if (inet_pton(AF_INET, ipbuf, e->used_ip) == 1)
			e->used_family = AF_INET;
		else if (inet_pton(AF_INET6, ipbuf, e->used_ip) == 1)
			e->used_family = AF_INET6;
	}
	if (c->n_touches + c->n_used >= TOUCH_SLOTS / 4 * 3)
		(void)kw_checker_flush(c);
}

size_t kw_checker_pending(const struct kw_checker *c)
{
	size_t n = c->n_touches;

	for (size_t i = 0; i < c->n_used; i++)
		n += c->entries[c->used[i]].used ? 1 : 0;
	return n + (kw_failures_pending(c->failures) ? 1 : 0);
}

void kw_checker_failed(struct kw_checker *c, uid_t uid, const struct kw_check_answer *res)
{
	if (!res->ok)
		kw_failures_add(c->failures, uid, res->token_id, res->code, c->now);
}

int kw_checker_flush(struct kw_checker *c)
{
	struct kw_failures_event ev = { .details = NULL };
	bool failures;
	const char *error = NULL;
	int ret;

	touches_harvest(c);
	failures = kw_failures_event(c->failures, kw_now(), &ev);
	if (c->n_touches == 0 && !failures)
		return 0;
	if (c->store == NULL || c->offline) {
		kw_failures_event_clear(&ev);
		return -EIO; /* a replaced database not reopened yet: keep everything */
	}
	ret = kw_store_token_uses_write(c->store, c->touches, c->n_touches > 0 ? TOUCH_SLOTS : 0,
					failures ? &ev.event : NULL, &error);
	kw_failures_event_clear(&ev);
	if (ret < 0) {
		kw_warning("last use: cannot write %zu rows%s (%s); will retry", c->n_touches,
			   failures ? " and the failed-check event" : "", error);
		return ret;
	}
	kw_debug("last use: wrote %zu rows%s", c->n_touches,
		 failures ? " and the failed-check event" : "");
	if (c->n_touches > 0) {
		memset(c->touches, 0, TOUCH_SLOTS * sizeof(*c->touches));
		c->n_touches = 0;
	}
	if (failures)
		kw_failures_committed(c->failures);
	return 0;
}

int kw_checker_role_rank(struct kw_checker *c, const char *name, size_t len, int *rank_r)
{
	char buf[KW_ROLE_MAX + 1];
	struct kw_role role;
	const char *error = NULL;
	int ret;

	if (len > KW_ROLE_MAX || memchr(name, '\0', len) != NULL)
		return -ENOENT;
	(void)lease_holds(c); /* a rank answers for the lease too */
	for (size_t i = 0; i < c->n_roles && c->trusted; i++) {
		if (strlen(c->roles[i].name) == len && memcmp(c->roles[i].name, name, len) == 0) {
			*rank_r = c->roles[i].rank;
			return 0;
		}
	}
	if (c->store == NULL || c->offline || !c->trusted)
		return -EIO;
	memcpy(buf, name, len);
	buf[len] = '\0';
	ret = kw_store_role_get(c->store, buf, &role, &error);
	if (ret == -ENOENT)
		return -ENOENT;
	if (ret < 0) {
		kw_warning("role lookup failed: %s", error != NULL ? error : "database error");
		return -EIO;
	}
	if (!lease_holds(c))
		return -EIO; /* the lookup outlasted the lease: its row may be older than a commit */
	if (c->n_roles < ROLES_CACHED) {
		memcpy(c->roles[c->n_roles].name, buf, len + 1);
		c->roles[c->n_roles].rank = role.rank;
		c->n_roles++;
	}
	*rank_r = role.rank;
	return 0;
}

/* The lease may have lapsed since this wakeup's sync: every lookup is a blocking round trip, and
 * a batch of cache misses can take longer than the margin (lib/store_lease.c). Read the clock
 * before every answer that depends on the lease; when it no longer holds, renew at once (a
 * sync: it drops the cache when acked moved) or, when that fails, stop trusting the cache.
 * True when the answer may go out. */
static bool lease_holds(struct kw_checker *c)
{
	if (!c->leased)
		return true;
	if (c->trusted && kw_store_watch_held(c->watch))
		return true;
	if (c->trusted) {
		kw_debug("validator lease lapsed within a batch: renewing before answering");
		if (c->before_renew != NULL)
			c->before_renew(c->before_renew_ctx);
		kw_checker_sync(c);
	}
	return c->trusted;
}

/* Decides the answer for id from the cache, looking it up on a miss; e_r: the entry (NULL when
 * none). memo: the memo of the token's text; digest: its HMAC digest, or NULL when not computed
 * yet: then the memo is compared (once, with a decoy when the row has none), and false
 * (nothing decided, nothing looked up) means that the digest is needed. With the digest the
 * digest decides, and a match sets the row's memo. */
static bool decide(struct kw_checker *c, uint64_t id, const uint8_t memo[KW_SIPHASH_LEN],
		   const uint8_t *digest, struct kw_check_answer *res, struct centry **e_r)
{
	struct kw_token_check row;
	const uint8_t *expected;
	struct centry *e;
	bool match, memo_set;
	int ret;

	*e_r = NULL;
	e = cache_find(c, id);
	match = false;
	if (digest == NULL) {
		/* A cached row's memo holds the decoy until set (cache_slot()), so that a row
		 * with a memo and one without (a negative one) cost the same memory read. */
		memo_set = e != NULL && e->memo_set;
		match = kw_siphash_equal(memo, e != NULL ? e->memo : c->memo_decoy) && memo_set;
		if (!match)
			return false;
	}
	res->ok = false;
	res->code = KW_PROTO_CODE_INVALID;
	if (e == NULL && (c->offline || !c->trusted)) {
		res->code = KW_PROTO_CODE_TEMP_FAIL; /* nobody to ask (store_lease.c) */
		return true;
	}
	if (e == NULL) {
		ret = kw_store_token_lookup(c->store, id, &row);
		if (ret == -ENOENT) {
			e = cache_slot(c, id);
			e->negative = true;
		} else if (ret < 0) {
			kw_warning("token %llu: database lookup failed: %s", (unsigned long long)id,
				   kw_store_db_error(c->store));
			res->code = KW_PROTO_CODE_TEMP_FAIL;
			return true;
		} else {
			e = cache_slot(c, id);
			fill_entry(e, &row);
			OPENSSL_cleanse(&row, sizeof(row));
		}
	}
	*e_r = e;
	if (!match) {
		/* The same work for every id that parsed: an unknown one is compared with the
		 * decoy. */
		expected = e->negative ? c->decoy : e->digest;
		match = kw_digest_equal(digest, expected);
		if (match && !e->negative) {
			memcpy(e->memo, memo, KW_SIPHASH_LEN);
			e->memo_set = true;
		}
	}
	if (e->negative && !c->trusted)
		res->code = KW_PROTO_CODE_TEMP_FAIL; /* it may have been created since */
	if (!match || e->negative)
		return true;
	switch (kw_token_status_of(e->expires, e->deleted ? 1 : 0, e->issuer_enabled, c->now)) {
	case KW_TOKEN_ACTIVE:
		if (!c->trusted) {
			res->code = KW_PROTO_CODE_TEMP_FAIL; /* the lease ended: not proven */
			break;
		}
		res->ok = true;
		break;
	case KW_TOKEN_EXPIRED:
		res->code = KW_PROTO_CODE_EXPIRED;
		break;
	case KW_TOKEN_DELETED:
		res->code = KW_PROTO_CODE_DELETED;
		break;
	case KW_TOKEN_DISABLED:
		/* a user may be enabled again: only the lease proves it is still disabled */
		res->code = c->trusted ? KW_PROTO_CODE_DISABLED : KW_PROTO_CODE_TEMP_FAIL;
		break;
	}
	return true;
}

/* An answer that a commit could make wrong: OK, disabled, an unknown id (a token created since
 * may have it). Deleted, expired and a wrong secret of a known token are final. */
static bool needs_lease(const struct kw_check_answer *res, const struct centry *e)
{
	return res->ok || res->code == KW_PROTO_CODE_DISABLED ||
	       (res->code == KW_PROTO_CODE_INVALID && e != NULL && e->negative);
}

/* Decides the answer (decide()) with the memo alone when the row has the text's, else with
 * the digest, computed here once (*have_digest) from the full parse. False when the token is
 * malformed (its digits or checksum): then nothing was looked up. */
static bool decide_any(struct kw_checker *c, uint64_t id, const char *token, size_t len,
		       const uint8_t memo[KW_SIPHASH_LEN], uint8_t digest[KW_DIGEST_LEN],
		       bool *have_digest, struct kw_check_answer *res, struct centry **e_r)
{
	struct kw_secret secret;
	int ret;

	if (decide(c, id, memo, *have_digest ? digest : NULL, res, e_r))
		return true;
	ret = kw_token_parse(token, len, &id, &secret);
	if (ret == 0)
		ret = kw_token_digest(c->key, id, &secret, digest);
	kw_secret_wipe(&secret);
	if (ret == -EINVAL)
		return false;
	if (ret < 0) {
		*e_r = NULL;
		res->ok = false;
		res->code = KW_PROTO_CODE_TEMP_FAIL;
		return true;
	}
	*have_digest = true;
	return decide(c, id, memo, digest, res, e_r);
}

void kw_checker_check(struct kw_checker *c, const char *token, size_t len, const char *ip,
		      size_t ip_len, struct kw_check_answer *res)
{
	struct kw_secret secret;
	uint8_t memo[KW_SIPHASH_LEN], digest[KW_DIGEST_LEN];
	struct centry *e;
	const char *text;
	size_t text_len;
	uint64_t id;
	uint32_t first;
	bool have_digest = false;

	memset(res, 0, sizeof(*res));
	res->code = KW_PROTO_CODE_INVALID;
	if (c->store == NULL) {
		/* a replaced database not reopened yet */
		if (kw_token_parse(token, len, &id, &secret) == 0) {
			res->token_id = id;
			res->code = KW_PROTO_CODE_TEMP_FAIL;
		}
		kw_secret_wipe(&secret);
		return;
	}
	if (kw_token_locate(token, len, &id, &text, &text_len) < 0)
		return;
	/* The memo first (the same work for every token that may be one), while the first
	 * row of the id's bucket comes into the CPU's cache. */
	first = c->buckets[hash_id(id) & c->bucket_mask];
	if (first != NIL) {
		const char *p = (const char *)&c->entries[first];
		__builtin_prefetch(p);
		__builtin_prefetch(p + 64, 1);
		__builtin_prefetch(p + 128);
	}
	kw_siphash128(c->memo_key, text, text_len, memo);
	/* Before a lookup (whose row the cache keeps) and after it (a lookup is a round trip):
	 * the lease must still hold when the answer is decided. A renewal may drop the cache:
	 * decide again, once; past that, what needs the lease is temp_fail. */
	(void)lease_holds(c);
	if (!decide_any(c, id, token, len, memo, digest, &have_digest, res, &e))
		goto out; /* malformed: invalid, and no token id told */
	if (needs_lease(res, e) && !lease_holds(c)) {
		if (!decide_any(c, id, token, len, memo, digest, &have_digest, res, &e)) {
			res->ok = false; /* cannot happen: the text parsed the first time */
			res->code = KW_PROTO_CODE_INVALID;
			goto out;
		}
		if (needs_lease(res, e) && !lease_holds(c)) {
			res->ok = false;
			res->code = KW_PROTO_CODE_TEMP_FAIL;
		}
	}
	res->token_id = id;
	if (res->ok) {
		res->fields = e->fields;
		res->fields_len = e->fields_len;
		record_use(c, e, ip, ip_len);
	}
out:
	explicit_bzero(digest, sizeof(digest)); /* a plain memset that is kept: cheaper here */
	explicit_bzero(memo, sizeof(memo));
}
