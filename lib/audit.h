/* audit.h: the append-only, hash-chained audit log.
 *
 * Each event's hash is SHA-256 over the previous event's hash (32 zero bytes for the first)
 * and this event's sequence number, time, actor, action, target and details, each
 * length-prefixed. Editing, deleting, inserting or reordering any past event breaks the chain
 * at that event. kw_audit_append() must run inside the transaction of the change it records;
 * details are JSON object text and never hold a secret. */
#ifndef KW_AUDIT_H
#define KW_AUDIT_H

#include <stdint.h>
#include <sys/types.h>

#include "store.h"

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

#endif
