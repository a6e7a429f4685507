/* daemon_rate.c: failing checks (see daemon.h): throttling the peers, by uid, that send many,
 * and counting every one of them for the audit log.
 *
 * Throttling: a fixed window per key (a peer uid, or an HTTP client's address folded into 64
 * bits with the top bit set) counts `invalid` answers; reaching the limit within the
 * window blocks that key for the block time, during which each of its CHECKs is answered
 * rate_limited. The table is bounded (RATE_PEERS_MAX keys, scanned: local uids are few, and an
 * HTTP client's address enters only with its first failure); a horizon (the latest
 * end of any block) keeps the common case, nobody blocked, free of any lookup.
 *
 * Counting: failed checks are too many to record one by one, so they are counted in two
 * open-addressing tables allocated once (per peer uid, and per token id and code) and written
 * as one audit event per interval, in the transaction that writes last use (daemon_check.c).
 * Counting is a hash and an increment. The tables hold at most KW_FAILURES_TOKENS_MAX and
 * KW_FAILURES_PEERS_MAX keys (half full at most, so probes stay short); beyond that a failure
 * is counted in an overflow bucket, so that a peer sending random token ids grows neither
 * memory nor the event. The event holds numbers and code names only, never token text. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "timeutil.h"

#define RATE_PEERS_MAX 4096

struct peer {
	uint64_t key; /* a peer uid, or an HTTP client address folded (daemon_conn.h) */
	unsigned failures;
	int64_t window_start;  /* ms */
	int64_t blocked_until; /* ms, 0 when not blocked */
};

struct kw_rate {
	struct peer *peers;
	size_t n;
	unsigned limit;
	int64_t window_ms, block_ms;
	int64_t horizon; /* no block lasts beyond this */
};

struct kw_rate *kw_rate_new(void)
{
	struct kw_rate *rate = calloc(1, sizeof(*rate));

	if (rate == NULL || (rate->peers = calloc(RATE_PEERS_MAX, sizeof(struct peer))) == NULL)
		abort();
	return rate;
}

void kw_rate_free(struct kw_rate **ratep)
{
	if (*ratep == NULL)
		return;
	free((*ratep)->peers);
	free(*ratep);
	*ratep = NULL;
}

void kw_rate_configure(struct kw_rate *rate, unsigned failures, unsigned window_s, unsigned block_s)
{
	rate->limit = failures;
	rate->window_ms = (int64_t)window_s * 1000;
	rate->block_ms = (int64_t)block_s * 1000;
	if (failures == 0) {
		rate->n = 0;
		rate->horizon = 0;
	}
}

static struct peer *find(struct kw_rate *rate, uint64_t key)
{
	for (size_t i = 0; i < rate->n; i++) {
		if (rate->peers[i].key == key)
			return &rate->peers[i];
	}
	return NULL;
}

bool kw_rate_blocked(struct kw_rate *rate, uint64_t key, int64_t now_ms)
{
	struct peer *p;

	if (now_ms >= rate->horizon)
		return false;
	p = find(rate, key);
	return p != NULL && now_ms < p->blocked_until;
}

static struct peer *add(struct kw_rate *rate, uint64_t key, int64_t now_ms)
{
	struct peer *p;

	if (rate->n == RATE_PEERS_MAX) {
		/* Forget peers that are neither blocked nor counting in a current window. */
		size_t o = 0;
		for (size_t i = 0; i < rate->n; i++) {
			struct peer *q = &rate->peers[i];
			if (now_ms < q->blocked_until || now_ms - q->window_start < rate->window_ms)
				rate->peers[o++] = *q;
		}
		rate->n = o;
		if (rate->n == RATE_PEERS_MAX)
			rate->n--; /* still full: sacrifice the last one */
	}
	p = &rate->peers[rate->n++];
	memset(p, 0, sizeof(*p));
	p->key = key;
	p->window_start = now_ms;
	return p;
}

bool kw_rate_failure(struct kw_rate *rate, uint64_t key, int64_t now_ms)
{
	struct peer *p;

	if (rate->limit == 0)
		return false;
	p = find(rate, key);
	if (p == NULL)
		p = add(rate, key, now_ms);
	if (now_ms - p->window_start >= rate->window_ms) {
		p->window_start = now_ms;
		p->failures = 0;
	}
	if (++p->failures < rate->limit)
		return false;
	p->failures = 0;
	p->window_start = now_ms + rate->block_ms;
	p->blocked_until = now_ms + rate->block_ms;
	if (p->blocked_until > rate->horizon)
		rate->horizon = p->blocked_until;
	return true;
}

/* ---- failed checks, for the audit log ---- */

#define FAIL_CODES KW_PROTO_CODE_TEMP_FAIL /* invalid .. rate_limited; temp_fail is not counted */
#define TOKEN_SLOTS (2 * KW_FAILURES_TOKENS_MAX)
#define PEER_SLOTS (2 * KW_FAILURES_PEERS_MAX)
#define LOG_TOKENS 8 /* tokens named in the log line (most failures first); all are in the event */
#define LOG_PEERS 16
/* journald MESSAGE_ID of the summary line: stable, never change it (SIEM rules match on it). */
#define FAILURES_MESSAGE_ID "dbdffa772f3d4cb5a36aaed078e5ad5c"
#define ACTOR "keywarden-validator"

_Static_assert(KW_PROTO_CODE_INVALID == 0 && KW_PROTO_CODE_RATE_LIMITED == FAIL_CODES - 1,
	       "the FAIL codes counted are the first ones of enum kw_proto_code");

struct tally_token {
	uint64_t id; /* 0: free (token ids start at 1) */
	uint32_t codes[FAIL_CODES];
};

struct tally_peer {
	uid_t uid;
	bool used;
	uint32_t codes[FAIL_CODES];
};

struct kw_failures {
	struct tally_token *tokens; /* TOKEN_SLOTS */
	uint64_t *token_ids;        /* the ids in use, for the writer and the reset */
	size_t n_tokens;
	struct tally_peer *peers; /* PEER_SLOTS */
	uid_t *peer_uids;
	size_t n_peers;
	uint64_t total;
	uint64_t other;       /* failures with a token id that did not fit in the table */
	uint64_t other_peers; /* failures of uids that did not fit */
	int64_t start, end;   /* first failure; end of the interval last appended */
};

static void bump(uint32_t *n)
{
	if (*n != UINT32_MAX)
		(*n)++;
}

static size_t mix64(uint64_t v)
{
	v ^= v >> 33;
	v *= 0xff51afd7ed558ccdULL;
	v ^= v >> 33;
	return (size_t)v;
}

struct kw_failures *kw_failures_new(void)
{
	struct kw_failures *f = calloc(1, sizeof(*f));

	if (f == NULL)
		abort();
	f->tokens = calloc(TOKEN_SLOTS, sizeof(*f->tokens));
	f->token_ids = calloc(KW_FAILURES_TOKENS_MAX, sizeof(*f->token_ids));
	f->peers = calloc(PEER_SLOTS, sizeof(*f->peers));
	f->peer_uids = calloc(KW_FAILURES_PEERS_MAX, sizeof(*f->peer_uids));
	if (f->tokens == NULL || f->token_ids == NULL || f->peers == NULL || f->peer_uids == NULL)
		abort();
	return f;
}

void kw_failures_free(struct kw_failures **failuresp)
{
	struct kw_failures *f = *failuresp;

	if (f == NULL)
		return;
	free(f->tokens);
	free(f->token_ids);
	free(f->peers);
	free(f->peer_uids);
	free(f);
	*failuresp = NULL;
}

/* The slot of id; with add, a new one when there is room; NULL otherwise. */
static struct tally_token *token_slot(struct kw_failures *f, uint64_t id, bool add)
{
	for (size_t i = mix64(id) & (TOKEN_SLOTS - 1);; i = (i + 1) & (TOKEN_SLOTS - 1)) {
		struct tally_token *t = &f->tokens[i];
		if (t->id == id)
			return t;
		if (t->id != 0)
			continue;
		if (!add || f->n_tokens == KW_FAILURES_TOKENS_MAX)
			return NULL;
		t->id = id;
		f->token_ids[f->n_tokens++] = id;
		return t;
	}
}

static struct tally_peer *peer_slot(struct kw_failures *f, uid_t uid, bool add)
{
	for (size_t i = mix64(uid) & (PEER_SLOTS - 1);; i = (i + 1) & (PEER_SLOTS - 1)) {
		struct tally_peer *p = &f->peers[i];
		if (p->used && p->uid == uid)
			return p;
		if (p->used)
			continue;
		if (!add || f->n_peers == KW_FAILURES_PEERS_MAX)
			return NULL;
		p->used = true;
		p->uid = uid;
		f->peer_uids[f->n_peers++] = uid;
		return p;
	}
}

void kw_failures_add(struct kw_failures *f, uid_t uid, uint64_t token_id, enum kw_proto_code code,
		     int64_t now)
{
	struct tally_peer *p;
	struct tally_token *t;

	if ((unsigned)code >= FAIL_CODES)
		return;
	if (f->total++ == 0)
		f->start = now;
	if ((p = peer_slot(f, uid, true)) != NULL)
		bump(&p->codes[code]);
	else
		f->other_peers++;
	if (token_id == 0)
		return;
	if ((t = token_slot(f, token_id, true)) != NULL)
		bump(&t->codes[code]);
	else
		f->other++;
}

bool kw_failures_pending(const struct kw_failures *f)
{
	return f->total > 0;
}

static uint64_t sum_codes(const uint32_t codes[FAIL_CODES])
{
	uint64_t n = 0;

	for (int i = 0; i < FAIL_CODES; i++)
		n += codes[i];
	return n;
}

static void put_codes(FILE *out, const uint32_t codes[FAIL_CODES])
{
	const char *sep = "";

	fputs("\"codes\":{", out);
	for (int i = 0; i < FAIL_CODES; i++) {
		if (codes[i] == 0)
			continue;
		fprintf(out, "%s\"%s\":%u", sep, kw_proto_code_name((enum kw_proto_code)i),
			(unsigned)codes[i]);
		sep = ",";
	}
	fputc('}', out);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* qsort has no context argument: the table being sorted, for cmp_token_failures(). */
static struct kw_failures *failures_sort_ctx;

/* Most failures first; ties by id, so that the choice is deterministic. */
static int cmp_token_failures(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	uint64_t fx = sum_codes(token_slot(failures_sort_ctx, x, false)->codes);
	uint64_t fy = sum_codes(token_slot(failures_sort_ctx, y, false)->codes);

	if (fx != fy)
		return fx > fy ? -1 : 1;
	return x < y ? -1 : x > y;
}

static int cmp_uid(const void *a, const void *b)
{
	uid_t x = *(const uid_t *)a, y = *(const uid_t *)b;

	return x < y ? -1 : x > y;
}

/* The event's details: {"failures":N,"peers":[...],"tokens":[...],"other":N,"other_peers":N},
 * peers and tokens in ascending order. The caller frees the text. */
static char *details_json(struct kw_failures *f)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	if (out == NULL)
		abort();
	qsort(f->peer_uids, f->n_peers, sizeof(*f->peer_uids), cmp_uid);
	qsort(f->token_ids, f->n_tokens, sizeof(*f->token_ids), cmp_u64);
	fprintf(out, "{\"failures\":%llu,\"peers\":[", (unsigned long long)f->total);
	for (size_t i = 0; i < f->n_peers; i++) {
		const struct tally_peer *p = peer_slot(f, f->peer_uids[i], false);
		fprintf(out, "%s{\"uid\":%u,\"failures\":%llu,", i > 0 ? "," : "", (unsigned)p->uid,
			(unsigned long long)sum_codes(p->codes));
		put_codes(out, p->codes);
		fputc('}', out);
	}
	fputs("],\"tokens\":[", out);
	/* The event names the tokens with the most failures; the rest are counted in "other",
	 * so that a flood of made-up ids cannot make one event large. */
	uint64_t other = f->other;
	if (f->n_tokens > KW_FAILURES_EVENT_TOKENS) {
		failures_sort_ctx = f;
		qsort(f->token_ids, f->n_tokens, sizeof(*f->token_ids), cmp_token_failures);
		for (size_t i = KW_FAILURES_EVENT_TOKENS; i < f->n_tokens; i++)
			other += sum_codes(token_slot(f, f->token_ids[i], false)->codes);
		qsort(f->token_ids, KW_FAILURES_EVENT_TOKENS, sizeof(*f->token_ids), cmp_u64);
	}
	for (size_t i = 0; i < f->n_tokens && i < KW_FAILURES_EVENT_TOKENS; i++) {
		const struct tally_token *t = token_slot(f, f->token_ids[i], false);
		fprintf(out, "%s{\"token_id\":%llu,", i > 0 ? "," : "", (unsigned long long)t->id);
		put_codes(out, t->codes);
		fputc('}', out);
	}
	fprintf(out, "],\"other\":%llu,\"other_peers\":%llu}", (unsigned long long)other,
		(unsigned long long)f->other_peers);
	if (fclose(out) != 0 || text == NULL)
		abort(); /* out of memory */
	return text;
}

bool kw_failures_event(struct kw_failures *f, int64_t now, struct kw_failures_event *ev_r)
{
	if (f->total == 0)
		return false;
	if (now < f->start)
		now = f->start; /* the wall clock stepped back */
	f->end = now;
	memset(ev_r, 0, sizeof(*ev_r));
	snprintf(ev_r->target, sizeof(ev_r->target), "interval:%lld-%lld", (long long)f->start,
		 (long long)now);
	ev_r->details = details_json(f);
	ev_r->event.time = now;
	ev_r->event.actor = ACTOR;
	ev_r->event.action = "validator.failed_checks";
	ev_r->event.target = ev_r->target;
	ev_r->event.details = ev_r->details;
	return true;
}

void kw_failures_event_clear(struct kw_failures_event *ev)
{
	free(ev->details);
	memset(ev, 0, sizeof(*ev));
}

/* Appends to buf at *pos, truncating (with "...") rather than overflowing. */
static void putf(char *buf, size_t size, size_t *pos, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void putf(char *buf, size_t size, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*pos >= size - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *pos, size - *pos, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size - *pos) {
		*pos = size - 1;
		memcpy(buf + size - 4, "...", 4);
		return;
	}
	*pos += (size_t)n;
}

static void put_code_list(char *buf, size_t size, size_t *pos, const uint32_t codes[FAIL_CODES])
{
	const char *sep = "";

	for (int i = 0; i < FAIL_CODES; i++) {
		if (codes[i] == 0)
			continue;
		putf(buf, size, pos, "%s%s %u", sep, kw_proto_code_name((enum kw_proto_code)i),
		     (unsigned)codes[i]);
		sep = ", ";
	}
}

static void log_summary(struct kw_failures *f)
{
	char line[3072], start[KW_TIME_TEXT_MAX], end[KW_TIME_TEXT_MAX];
	const struct tally_token *top[LOG_TOKENS];
	size_t pos = 0, n_top = 0;

	/* The tokens with the most failures, by insertion into a short sorted list. */
	for (size_t i = 0; i < f->n_tokens; i++) {
		const struct tally_token *t = token_slot(f, f->token_ids[i], false);
		uint64_t n = sum_codes(t->codes);
		size_t j = n_top < LOG_TOKENS ? n_top++ : LOG_TOKENS;

		while (j > 0 && sum_codes(top[j - 1]->codes) < n) {
			if (j < LOG_TOKENS)
				top[j] = top[j - 1];
			j--;
		}
		if (j < LOG_TOKENS)
			top[j] = t;
	}
	kw_time_format(f->start, start);
	kw_time_format(f->end, end);
	putf(line, sizeof(line), &pos,
	     "%llu failed checks from %s to %s; peers:", (unsigned long long)f->total, start, end);
	for (size_t i = 0; i < f->n_peers && i < LOG_PEERS; i++) {
		const struct tally_peer *p = peer_slot(f, f->peer_uids[i], false);
		putf(line, sizeof(line), &pos, "%s uid=%u (", i > 0 ? ";" : "", (unsigned)p->uid);
		put_code_list(line, sizeof(line), &pos, p->codes);
		putf(line, sizeof(line), &pos, ")");
	}
	if (f->n_peers > LOG_PEERS)
		putf(line, sizeof(line), &pos, "; %zu more", f->n_peers - LOG_PEERS);
	if (f->other_peers > 0)
		putf(line, sizeof(line), &pos, "%s other uids (%llu)", f->n_peers > 0 ? ";" : "",
		     (unsigned long long)f->other_peers);
	putf(line, sizeof(line), &pos, "; token ids: %zu", f->n_tokens);
	for (size_t i = 0; i < n_top; i++)
		putf(line, sizeof(line), &pos, "%s%llu (%llu)", i == 0 ? ", most failures: " : ", ",
		     (unsigned long long)top[i]->id, (unsigned long long)sum_codes(top[i]->codes));
	if (f->other > 0)
		putf(line, sizeof(line), &pos, "; other token ids (%llu)",
		     (unsigned long long)f->other);
	kw_log_id(KW_LOG_NOTICE, FAILURES_MESSAGE_ID, "%s", line);
}

void kw_failures_committed(struct kw_failures *f)
{
	if (f->total == 0)
		return;
	log_summary(f);
	/* A few hundred KiB once per interval with failures; never on the CHECK path. */
	memset(f->tokens, 0, TOKEN_SLOTS * sizeof(*f->tokens));
	memset(f->peers, 0, PEER_SLOTS * sizeof(*f->peers));
	f->n_tokens = f->n_peers = 0;
	f->total = f->other = f->other_peers = 0;
	f->start = f->end = 0;
}
