/* audit.h: the append-only, hash-chained audit log.
 *
 * Each event's hash is SHA-256 over the previous event's hash (32 zero bytes for the first)
 * and this event's sequence number, time, actor, action, target and details, each
 * length-prefixed. Editing, deleting, inserting or reordering any past event breaks the chain
 * at that event. kw_audit_append() must run inside the transaction of the change it records;
 * details are JSON object text and never hold a secret. */
#ifndef KW_AUDIT_H
#define KW_AUDIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "store.h"

#define KW_AUDIT_HASH_LEN 32

/* One event as stored. The texts are never NULL and valid during the callback only. */
struct kw_audit_event {
	int64_t seq;
	int64_t time;
	const char *actor, *action, *target, *details;
	uint8_t hash[KW_AUDIT_HASH_LEN];
	bool has_hash; /* false when the stored hash is not KW_AUDIT_HASH_LEN bytes (an edit) */
};

typedef int kw_audit_event_cb(const struct kw_audit_event *event, void *ctx);

int kw_audit_append(struct kw_store *store, int64_t time, const char *actor, const char *action,
		    const char *target, const char *details);
/* Adds "unix_uid" and "unix_user" (the Unix user who ran the program) to the details of every
 * event this process appends from now on. The CLI sets it; the daemons, whose user is fixed,
 * do not. */
void kw_audit_set_origin(uid_t uid, const char *user);

/* Walks the chain. Returns 0 when intact (count_r events), -EBADMSG when broken (bad_seq_r is
 * the sequence number of the first bad event, and error_r says what is wrong), -EIO. */
int kw_audit_verify(struct kw_store *store, int64_t *count_r, int64_t *bad_seq_r,
		    const char **error_r);

/* The stored hash of event seq: -ENOENT when there is no such event, -EIO when its hash is
 * unreadable. (For anchors: the chain alone cannot tell that its newest events were cut.) */
int kw_audit_event_hash(struct kw_store *store, int64_t seq, uint8_t hash_r[KW_AUDIT_HASH_LEN],
			const char **error_r);
/* Every event at or after `since` (0: all), by sequence number, as stored (not verified). */
int kw_audit_foreach(struct kw_store *store, int64_t since, kw_audit_event_cb *cb, void *ctx,
		     const char **error_r);

#endif
