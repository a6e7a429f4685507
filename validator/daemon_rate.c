/* daemon_rate.c: throttling peers, by uid, that send many failing checks (see daemon.h).
 *
 * A fixed window per uid counts `invalid` answers; reaching the limit within the window blocks
 * that uid for the block time, during which each of its CHECKs is answered rate_limited. The
 * table is small (peers are local uids) and bounded; a horizon (the latest end of any block)
 * keeps the common case, nobody blocked, free of any lookup. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "daemon.h"

#define RATE_PEERS_MAX 4096

struct peer {
	uid_t uid;
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

static struct peer *find(struct kw_rate *rate, uid_t uid)
{
	for (size_t i = 0; i < rate->n; i++) {
		if (rate->peers[i].uid == uid)
			return &rate->peers[i];
	}
	return NULL;
}

bool kw_rate_blocked(struct kw_rate *rate, uid_t uid, int64_t now_ms)
{
	struct peer *p;

	if (now_ms >= rate->horizon)
		return false;
	p = find(rate, uid);
	return p != NULL && now_ms < p->blocked_until;
}

static struct peer *add(struct kw_rate *rate, uid_t uid, int64_t now_ms)
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
	p->uid = uid;
	p->window_start = now_ms;
	return p;
}

bool kw_rate_failure(struct kw_rate *rate, uid_t uid, int64_t now_ms)
{
	struct peer *p;

	if (rate->limit == 0)
		return false;
	p = find(rate, uid);
	if (p == NULL)
		p = add(rate, uid, now_ms);
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
