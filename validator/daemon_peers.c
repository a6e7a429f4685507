/* daemon_peers.c: connections per peer uid (see daemon.h), so that one uid cannot hold every
 * connection slot of the validator ([validator] max_connections_per_uid).
 *
 * An open-addressing table uid -> count, kept at most half full, grown by doubling; a uid whose
 * count drops to 0 is removed by backward-shift deletion, so that the table never fills with
 * tombstones however many uids come and go. */
#include "config.h"

#include <stdlib.h>

#include "daemon.h"

struct slot {
	uid_t uid;
	unsigned count; /* 0: free */
};

struct kw_peers {
	struct slot *slots;
	size_t mask, used;
};

static size_t hash_uid(uid_t uid)
{
	uint32_t h = (uint32_t)uid * 0x9e3779b1U;
	return (size_t)(h ^ (h >> 16));
}

struct kw_peers *kw_peers_new(void)
{
	struct kw_peers *p = calloc(1, sizeof(*p));

	if (p == NULL || (p->slots = calloc(64, sizeof(*p->slots))) == NULL)
		abort();
	p->mask = 63;
	return p;
}

void kw_peers_free(struct kw_peers **peersp)
{
	if (*peersp == NULL)
		return;
	free((*peersp)->slots);
	free(*peersp);
	*peersp = NULL;
}

static struct slot *lookup(struct kw_peers *p, uid_t uid)
{
	size_t i = hash_uid(uid) & p->mask;

	while (p->slots[i].count != 0 && p->slots[i].uid != uid)
		i = (i + 1) & p->mask;
	return &p->slots[i];
}

static void grow(struct kw_peers *p)
{
	struct slot *old = p->slots;
	size_t n = p->mask + 1;

	p->slots = calloc(n * 2, sizeof(*p->slots));
	if (p->slots == NULL)
		abort();
	p->mask = n * 2 - 1;
	for (size_t i = 0; i < n; i++) {
		if (old[i].count != 0)
			*lookup(p, old[i].uid) = old[i];
	}
	free(old);
}

unsigned kw_peers_count(struct kw_peers *p, uid_t uid)
{
	return lookup(p, uid)->count;
}

void kw_peers_add(struct kw_peers *p, uid_t uid)
{
	struct slot *s;

	if ((p->used + 1) * 2 > p->mask + 1)
		grow(p);
	s = lookup(p, uid);
	if (s->count == 0) {
		s->uid = uid;
		p->used++;
	}
	s->count++;
}

void kw_peers_remove(struct kw_peers *p, uid_t uid)
{
	struct slot *s = lookup(p, uid);
	size_t i, j;

	if (s->count == 0 || --s->count > 0)
		return;
	p->used--;
	/* Backward-shift deletion: move later members of the cluster into the hole when their
	 * home slot does not lie cyclically between the hole and them. */
	i = (size_t)(s - p->slots);
	for (j = (i + 1) & p->mask; p->slots[j].count != 0; j = (j + 1) & p->mask) {
		size_t home = hash_uid(p->slots[j].uid) & p->mask;
		if (((j - home) & p->mask) >= ((j - i) & p->mask)) {
			p->slots[i] = p->slots[j];
			p->slots[j].count = 0;
			i = j;
		}
	}
	p->slots[i].count = 0;
}
