/* daemon_check.c: answering a CHECK (see daemon.h).
 *
 * Speed without stale answers: token rows (and "no such token" as negative entries) are kept
 * in a bounded cache keyed by token id; the whole cache is dropped whenever SQLite's
 * PRAGMA data_version on the daemon's own connection changes. kw_checker_sync() runs once per
 * wakeup after the requests of that wakeup were read from their sockets, so a commit that
 * returned to the CLI before a client sent its CHECK is always seen. The secret is checked by
 * the HMAC digest on every CHECK (a cached row holds only the digest), before the token's
 * status is told, so that nobody learns the status of a token whose secret they lack.
 *
 * Last use is recorded in memory, coalesced per token, and written by kw_checker_flush() in one
 * transaction (every [validator] last_use_flush seconds and at exit). Failed checks are counted
 * the same way (daemon_rate.c) and go out in that transaction as one audit event, so they cost
 * no write of their own, and an interval without any costs none at all. The daemon's own
 * writes do not change its own data_version, so flushing does not drop the cache. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "daemon.h"
#include "timeutil.h"

#define NIL UINT32_MAX
#define TOUCH_SLOTS 16384 /* pending last uses; flushed early at 3/4 */
#define IP_MAX 46         /* INET6_ADDRSTRLEN */

struct centry {
	uint64_t id;
	uint32_t next; /* bucket chain */
	bool negative, deleted, issuer_enabled, referenced;
	int64_t expires;
	uint8_t digest[KW_DIGEST_LEN];
	char *fields; /* "token_id=..\taccount=..\tuser=..\trole=..\texpires=.." */
	size_t fields_len;
};

struct touch {
	uint64_t id; /* 0: free slot */
	int64_t when;
	char ip[IP_MAX];
};

struct kw_checker {
	struct kw_store *store;
	struct kw_digest_key *key;
	sqlite3_stmt *data_version_stmt;
	int64_t data_version;
	int64_t now;

	struct centry *entries;
	size_t cap, count, hand;
	uint32_t *buckets;
	size_t bucket_mask;

	struct touch *touches;
	size_t n_touches;

	struct kw_failures *failures;
};

static size_t hash_id(uint64_t id)
{
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdULL;
	id ^= id >> 33;
	return (size_t)id;
}

static void cache_reset(struct kw_checker *c)
{
	memset(c->buckets, 0xff, (c->bucket_mask + 1) * sizeof(uint32_t));
	c->count = 0;
	c->hand = 0;
}

static void cache_alloc(struct kw_checker *c, size_t cap)
{
	size_t nb = 16;

	while (nb < cap)
		nb <<= 1;
	c->cap = cap;
	c->entries = calloc(cap, sizeof(*c->entries));
	c->buckets = malloc(nb * sizeof(uint32_t));
	if (c->entries == NULL || c->buckets == NULL)
		abort();
	c->bucket_mask = nb - 1;
	cache_reset(c);
}

static void cache_release(struct kw_checker *c)
{
	if (c->entries != NULL) {
		for (size_t i = 0; i < c->cap; i++)
			free(c->entries[i].fields);
	}
	free(c->entries);
	free(c->buckets);
	c->entries = NULL;
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
		for (link = &c->buckets[hash_id(e->id) & c->bucket_mask]; *link != idx;
		     link = &c->entries[*link].next)
			;
		*link = e->next;
	}
	e = &c->entries[idx];
	e->id = id;
	e->referenced = true;
	e->negative = false;
	e->next = c->buckets[hash_id(id) & c->bucket_mask];
	c->buckets[hash_id(id) & c->bucket_mask] = idx;
	return e;
}

static void fill_entry(struct centry *e, const struct kw_token_check *row)
{
	char expires[KW_TIME_TEXT_MAX];
	char buf[64 + KW_ACCOUNT_MAX + KW_LOGIN_MAX + KW_ROLE_MAX + KW_TIME_TEXT_MAX];
	int n;

	if (row->expires == KW_NEVER)
		snprintf(expires, sizeof(expires), "never");
	else
		kw_time_format(row->expires, expires);
	n = snprintf(buf, sizeof(buf), "token_id=%llu\taccount=%s\tuser=%s\trole=%s\texpires=%s",
		     (unsigned long long)row->id, row->account, row->user, row->role, expires);
	if (n < 0 || (size_t)n >= sizeof(buf))
		abort(); /* cannot happen: the buffer holds the longest names */
	free(e->fields);
	e->fields = malloc((size_t)n + 1);
	if (e->fields == NULL)
		abort();
	memcpy(e->fields, buf, (size_t)n + 1);
	e->fields_len = (size_t)n;
	memcpy(e->digest, row->digest, KW_DIGEST_LEN);
	e->expires = row->expires;
	e->deleted = row->deleted;
	e->issuer_enabled = row->issuer_enabled;
}

int kw_checker_new(struct kw_store *store, struct kw_digest_key *key, size_t cache_size,
		   struct kw_checker **checker_r, const char **error_r)
{
	struct kw_checker *c = calloc(1, sizeof(*c));

	if (c == NULL)
		abort();
	c->store = store;
	c->key = key;
	if (sqlite3_prepare_v3(kw_store_db(store), "PRAGMA data_version", -1,
			       SQLITE_PREPARE_PERSISTENT, &c->data_version_stmt,
			       NULL) != SQLITE_OK) {
		*error_r = "cannot prepare PRAGMA data_version";
		free(c);
		return -EIO;
	}
	c->data_version = -1;
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
	sqlite3_finalize(c->data_version_stmt);
	cache_release(c);
	free(c->touches);
	kw_failures_free(&c->failures);
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

void kw_checker_sync(struct kw_checker *c)
{
	sqlite3_stmt *st = c->data_version_stmt;
	int64_t v = -1;

	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (v < 0 || v != c->data_version) {
		if (c->count > 0)
			kw_debug("database changed: token cache dropped (%zu rows)", c->count);
		cache_reset(c);
		c->data_version = v;
	}
	c->now = kw_now();
}

static void record_use(struct kw_checker *c, uint64_t id, const char *ip, size_t ip_len)
{
	char ipbuf[IP_MAX];
	unsigned char addr[16];
	size_t i;

	ipbuf[0] = '\0';
	if (ip != NULL && ip_len > 0 && ip_len < IP_MAX) {
		memcpy(ipbuf, ip, ip_len);
		ipbuf[ip_len] = '\0';
		/* Only a well-formed address is recorded. */
		if (inet_pton(AF_INET, ipbuf, addr) != 1 && inet_pton(AF_INET6, ipbuf, addr) != 1)
			ipbuf[0] = '\0';
	}
	for (i = hash_id(id) & (TOUCH_SLOTS - 1);; i = (i + 1) & (TOUCH_SLOTS - 1)) {
		struct touch *t = &c->touches[i];
		if (t->id == id || t->id == 0) {
			if (t->id == 0) {
				if (c->n_touches >= TOUCH_SLOTS - 1)
					return; /* the database refuses writes: drop, keep going */
				t->id = id;
				t->ip[0] = '\0';
				c->n_touches++;
			}
			t->when = c->now;
			if (ipbuf[0] != '\0')
				memcpy(t->ip, ipbuf, sizeof(ipbuf));
			break;
		}
	}
	if (c->n_touches >= TOUCH_SLOTS / 4 * 3)
		(void)kw_checker_flush(c);
}

size_t kw_checker_pending(const struct kw_checker *c)
{
	return c->n_touches + (kw_failures_pending(c->failures) ? 1 : 0);
}

void kw_checker_failed(struct kw_checker *c, uid_t uid, const struct kw_check_result *res)
{
	if (!res->ok)
		kw_failures_add(c->failures, uid, res->token_id, res->code, c->now);
}

int kw_checker_flush(struct kw_checker *c)
{
	bool failures = kw_failures_pending(c->failures);
	int ret = 0;

	if (c->n_touches == 0 && !failures)
		return 0;
	/* Last uses alone need not wait for the disk; a failed-check event must (its journal
	 * copy must never outlive it). */
	if ((failures ? kw_store_begin(c->store) : kw_store_begin_batch(c->store)) < 0) {
		kw_warning("last use: cannot start a transaction (%s); %zu last uses%s pending, "
			   "will retry",
			   sqlite3_errmsg(kw_store_db(c->store)), c->n_touches,
			   failures ? " and failed checks" : "");
		return -EBUSY;
	}
	for (size_t i = 0; i < TOUCH_SLOTS && ret == 0 && c->n_touches > 0; i++) {
		const struct touch *t = &c->touches[i];
		if (t->id != 0)
			ret = kw_store_token_touch(c->store, t->id, t->when,
						   t->ip[0] != '\0' ? t->ip : NULL);
	}
	if (ret == 0 && failures)
		ret = kw_failures_append(c->failures, c->store, kw_now());
	if (ret == 0 && kw_store_commit(c->store) < 0)
		ret = -EIO;
	if (ret < 0) {
		kw_warning("last use: cannot write %zu rows%s (%s); will retry", c->n_touches,
			   failures ? " and the failed-check event" : "",
			   sqlite3_errmsg(kw_store_db(c->store)));
		kw_store_rollback(c->store);
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

void kw_checker_check(struct kw_checker *c, const char *token, size_t len, const char *ip,
		      size_t ip_len, struct kw_check_result *res)
{
	struct kw_token_check row;
	struct kw_secret secret;
	uint8_t digest[KW_DIGEST_LEN];
	struct centry *e;
	uint64_t id;
	int ret;

	memset(res, 0, sizeof(*res));
	res->code = KW_PROTO_CODE_INVALID;
	if (kw_token_parse(token, len, &id, &secret) < 0)
		return;
	res->token_id = id;
	e = cache_find(c, id);
	if (e == NULL) {
		ret = kw_store_token_lookup(c->store, id, &row);
		if (ret == -ENOENT) {
			e = cache_slot(c, id);
			e->negative = true;
		} else if (ret < 0) {
			kw_warning("token %llu: database lookup failed: %s", (unsigned long long)id,
				   sqlite3_errmsg(kw_store_db(c->store)));
			res->code = KW_PROTO_CODE_TEMP_FAIL;
			goto out;
		} else {
			e = cache_slot(c, id);
			fill_entry(e, &row);
			OPENSSL_cleanse(&row, sizeof(row));
		}
	}
	if (e->negative)
		goto out;
	if (kw_token_digest(c->key, id, &secret, digest) < 0) {
		res->code = KW_PROTO_CODE_TEMP_FAIL;
		goto out;
	}
	if (!kw_digest_equal(digest, e->digest))
		goto out;
	switch (kw_token_status_of(e->expires, e->deleted ? 1 : 0, e->issuer_enabled, c->now)) {
	case KW_TOKEN_ACTIVE:
		res->ok = true;
		res->fields = e->fields;
		res->fields_len = e->fields_len;
		record_use(c, id, ip, ip_len);
		break;
	case KW_TOKEN_EXPIRED:
		res->code = KW_PROTO_CODE_EXPIRED;
		break;
	case KW_TOKEN_DELETED:
		res->code = KW_PROTO_CODE_DELETED;
		break;
	case KW_TOKEN_DISABLED:
		res->code = KW_PROTO_CODE_DISABLED;
		break;
	}
out:
	kw_secret_wipe(&secret);
}
