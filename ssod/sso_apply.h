/* sso_apply.h: one SAML message, from bytes to the store, as keywarden-ssod's `ingest`
 * command and its HTTP endpoints both do it: verify (saml_verify.h), map the role
 * (sso_config.h), then apply it through lib/sso.h (kw_sso_login() with the rule "SSO
 * revocation does not revoke API tokens", kw_sso_logout()). Keeping this in one place is what
 * makes ingest and HTTP share one path.
 *
 * The outcome carries a reason class (the word that logs, the ingest output and the HTTP
 * answer show) and its HTTP status; the mapping of reasons to statuses lives here only.
 *
 * Not thread-safe: a struct kw_ssod (its verifier and its store) belongs to one thread. */
#ifndef KW_SSO_APPLY_H
#define KW_SSO_APPLY_H

#include <stddef.h>
#include <stdint.h>

#include "saml_verify.h"
#include "sso.h"
#include "sso_config.h"
#include "store.h"

#define KW_SSOD_NEXT_MAX 512
struct kw_api_settings;

struct kw_scim_settings;

/* What the daemon holds; the caller owns each part. */
struct kw_ssod {
	struct kw_sso_config *sso;
	struct kw_saml_verifier *v;
	struct kw_store *store;
	/* `ingest`: Responses from files an admin gives, answering no AuthnRequest this
	 * process sent: InResponseTo and allow_unsolicited are not checked (HTTP checks them) */
	bool ingest;
	/* the REST API (api.h); NULL for ingest. Each worker has its own key (not thread-safe) */
	const struct kw_api_settings *api;
	struct kw_digest_key *key;
	const struct kw_scim_settings *scim; /* SCIM (scim.h); NULL for ingest */
};

struct kw_ssod_outcome {
	int status;         /* HTTP status: 200, 400, 403, 404, 409, 500, 503 */
	const char *reason; /* "ok", a kw_saml_reason name ("nameid" or "attribute" also for a
			       login the store refuses), "replay", "local_user",
			       "other_account", "unknown_user", "busy", "store" */
	const char *detail; /* for the log only; valid until the next call */
	char login[KW_LOGIN_MAX + 1];
	char role[KW_ROLE_MAX + 1]; /* "" when no role maps (or for a logout) */
	enum kw_sso_outcome sso;    /* for a login */
	unsigned sessions_ended;    /* for a logout */
	int64_t case_id;            /* the review case the rule opened or updated, or 0 */
	unsigned active_tokens;     /* when the rule applied */
	/* after an SP-initiated sign-in: the path on this site to send the browser to ("" for
	 * none; checked with kw_ssod_next_ok()) */
	char next[KW_SSOD_NEXT_MAX + 1];
};

/* A Response (raw XML or base64). Never fails: everything is in *o (o->status 200: accepted). */
void kw_ssod_login(struct kw_ssod *d, const uint8_t *data, size_t len, int64_t now,
		   struct kw_ssod_outcome *o);
/* A LogoutRequest (raw XML or base64). */
void kw_ssod_logout(struct kw_ssod *d, const uint8_t *data, size_t len, int64_t now,
		    struct kw_ssod_outcome *o);

/* The HTTP status of a kw_saml_verify() reason (the one mapping, see keywarden-ssod(8)). */
int kw_ssod_http_status(enum kw_saml_reason reason);

#endif
