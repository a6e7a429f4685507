/* store_lease.h: the validator's lease on a PostgreSQL store (store_lease.c says how it keeps
 * the promise of issue 15), behind the change watch of store_validator.h. Private to lib/:
 * store_validator.c calls it for a watch on a PostgreSQL store. Not thread-safe. */
#ifndef KW_STORE_LEASE_H
#define KW_STORE_LEASE_H

#include <stdbool.h>

#include "store_validator.h"

struct kw_store_lease;

/* Nothing is sent yet: the first poll registers. store must outlive the lease; free it with
 * kw_store_lease_free() (which removes the registration when it can). */
struct kw_store_lease *kw_store_lease_new(struct kw_store *store);
void kw_store_lease_free(struct kw_store_lease **lease);
void kw_store_lease_set_ms(struct kw_store_lease *lease, unsigned ms);
/* As kw_store_watch_poll(): registers, acknowledges notified generations, renews when due.
 * KW_STORE_REPLACED: the connection is lost (sticky). */
enum kw_store_change kw_store_lease_poll(struct kw_store_lease *lease);
/* The socket has input: reads it (notifications) without waiting. */
void kw_store_lease_input(struct kw_store_lease *lease);
int kw_store_lease_fd(struct kw_store_lease *lease);
int kw_store_lease_timeout(struct kw_store_lease *lease);
bool kw_store_lease_held(struct kw_store_lease *lease);

#endif
