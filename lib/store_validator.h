/* store_validator.h: what a long-lived reader of the store (keywarden-validator) needs beyond
 * the token lookup of store.h: knowing whether what it read may be stale, knowing whether the
 * database it holds open is still the one the configuration names, bounding its lock waits,
 * and writing its batched bookkeeping (last uses, one audit event) in one transaction.
 *
 * The contracts name concepts, not SQLite mechanisms, so that another backend (PostgreSQL) can
 * implement them: "has anyone else committed since I last looked", "is this still the same
 * database". Errors as in store.h. Not thread-safe: use them on the store's own thread. */
#ifndef KW_STORE_VALIDATOR_H
#define KW_STORE_VALIDATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Longest text address recorded as last use (INET6_ADDRSTRLEN, NUL included). */
#define KW_STORE_IP_MAX 46

/* How long a call on store waits for a lock held by another process before it fails with
 * -EBUSY. The validator keeps it short so that its loop never stalls behind the CLI. */
void kw_store_lock_wait(struct kw_store *store, unsigned ms);

/* A description of the last database failure on store, for logs (never NULL; valid until the
 * next call on store). */
const char *kw_store_db_error(struct kw_store *store);

/* Marks store as the validator's: its writes (last uses, check events) are bookkeeping that
 * changes no answer, so they do not count as changes for the other validators (a database
 * server shared by several hosts: store_pg.c). */
void kw_store_set_bookkeeping(struct kw_store *store);

/* ---- watching for changes made by others ---- */

enum kw_store_change {
	KW_STORE_UNCHANGED, /* nobody else committed since the previous poll */
	KW_STORE_CHANGED,   /* someone else may have committed: drop what you cached */
	KW_STORE_REPLACED,  /* the database at the configured place is no longer the one held
			     * open (replaced, moved or removed): reopen it */
};

struct kw_store_watch;

/* Starts watching store (which must outlive the watch; free the watch first). The identity of
 * the database is taken now: a database replaced between kw_store_open() and this call is
 * reported as KW_STORE_REPLACED by the first poll. The caller frees the watch with
 * kw_store_watch_free(). Returns 0 or -EIO (error_r says why). */
int kw_store_watch_new(struct kw_store *store, struct kw_store_watch **watch_r,
		       const char **error_r);
void kw_store_watch_free(struct kw_store_watch **watch);
/* Answers whether the store changed since the previous poll (the first poll answers
 * KW_STORE_CHANGED). Commits made through this same store need not be reported (they may
 * be). A commit that returned before the poll started is always reported. Cheap enough to
 * call once per batch of requests: for SQLite in WAL mode, while nobody commits, a read of
 * the WAL-index header in shared memory and one read() of an inotify descriptor; else one
 * small query (and a stat() when the folder saw a change, or once a second). A poll that
 * cannot tell answers KW_STORE_CHANGED (or KW_STORE_REPLACED when the database has gone),
 * never KW_STORE_UNCHANGED. A replacement by a rename, link or removal in the database's
 * folder is reported by the next poll; one elsewhere on its path (a parent folder renamed, a
 * mount) within a second. */
enum kw_store_change kw_store_watch_poll(struct kw_store_watch *watch);

/* ---- the lease (PostgreSQL: several validators share one database; lib/store_lease.c) ----
 * A validator on a database server holds a lease: it registers itself, acknowledges every
 * generation it is notified of, renews its lease every third of it, and a writer's commit
 * returns only once every live validator acknowledged it or lost its lease. The poll above
 * does all of that (it registers at the first call; KW_STORE_REPLACED: the connection is
 * lost, connect a new store while this one's lease may still hold); these say when to call it
 * and whether the cache may answer. On SQLite: no lease, no descriptor, no timer, always
 * held. */

/* The default lease, ms ([validator] lease_ms). */
#define KW_STORE_LEASE_DEFAULT_MS 3000

bool kw_store_watch_leased(const struct kw_store_watch *watch);
/* How long the validator may answer from its cache without hearing from the database, ms;
 * taken at the next registration or renewal. */
void kw_store_watch_set_lease(struct kw_store_watch *watch, unsigned ms);
/* A descriptor to watch for input (the server's notifications), or -1: none (SQLite), or the
 * connection is lost. It changes only when the store is replaced. */
int kw_store_watch_fd(struct kw_store_watch *watch);
/* The descriptor has input: reads it without waiting; the next poll acts on it. */
void kw_store_watch_input(struct kw_store_watch *watch);
/* Milliseconds until the poll must run again (a renewal is due), or -1: no need. */
int kw_store_watch_timeout(struct kw_store_watch *watch);
/* Whether the cache may answer now (the lease holds): checked before answering. When false,
 * answer only what no commit can make wrong (a deleted or expired token, a wrong secret of a
 * known token) and nothing from the database: temp_fail. */
bool kw_store_watch_held(struct kw_store_watch *watch);

/* ---- batched bookkeeping ---- */

/* One token's latest use: token_id 0 marks an unused slot (skipped), so that a caller may pass
 * its open-addressing table as it is. ip is "" when unknown. */
struct kw_token_use {
	uint64_t token_id;
	int64_t when;
	char ip[KW_STORE_IP_MAX];
};

/* An audit event (audit.h says what its fields mean); details is JSON object text. */
struct kw_store_event {
	int64_t time;
	const char *actor, *action, *target, *details;
};

/* Records uses[0..n) as last uses (a use never moves a token's last use back in time; a token
 * that is gone is skipped) and appends event (when not NULL) to the audit log, all in one
 * transaction: everything is written, or nothing (then -EBUSY when another process held the
 * lock past kw_store_lock_wait(), else -EIO; error_r says why). */
int kw_store_token_uses_write(struct kw_store *store, const struct kw_token_use *uses, size_t n,
			      const struct kw_store_event *event, const char **error_r);

#endif
