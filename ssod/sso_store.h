/* sso_store.h: what ssod keeps in the store: the SAML replay cache and SSO users.
 *
 * kw_sso_store_accept() records one verified login in one IMMEDIATE transaction: it purges
 * expired replay entries, inserts the assertion ID (refusing one seen before with -EALREADY,
 * and then changes nothing), creates or updates the SSO user, and appends an sso_event and an
 * audit event. A local user of the same login is never taken over. Tokens are never touched:
 * the revocation rule (DESIGN.md, SSO) is issue 5's part. Not thread-safe (one store). */
#ifndef KW_SSO_STORE_H
#define KW_SSO_STORE_H

#include <stdint.h>

#include "store.h"

struct kw_sso_verified {
	const char *account;
	const char *idp;
	const char *login;
	const char *name_id;
	const char *assertion_id;
	int64_t replay_expires;
	const struct kw_role *role; /* NULL: no group maps */
};

enum kw_sso_sync {
	KW_SSO_SYNC_CREATED,
	KW_SSO_SYNC_UPDATED,
	KW_SSO_SYNC_SEEN,	/* known SSO user, no role mapped: only last seen updated */
	KW_SSO_SYNC_NONE,	/* unknown user and no role mapped: nothing to create */
	KW_SSO_SYNC_LOCAL_USER, /* a local user holds the login: left alone */
};

/* Makes sure the SSO account exists (creating it, audited, on first start). */
int kw_sso_store_ensure_account(struct kw_store *store, const char *account, const char **error_r);
/* Only the replay cache (one transaction): 0, or -EALREADY when assertion_id was seen. */
int kw_sso_store_replay(struct kw_store *store, const char *assertion_id, int64_t expires,
			int64_t now, const char **error_r);
/* 0 and *sync_r, -EALREADY (replay), or another negative code with error_r. */
int kw_sso_store_accept(struct kw_store *store, const struct kw_sso_verified *login, int64_t now,
			enum kw_sso_sync *sync_r, const char **error_r);

#endif
