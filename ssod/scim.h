/* scim.h: the SCIM 2.0 receiver of keywarden-ssod, /scim/v2/ (RFC 7643/7644; see
 * keywarden-ssod(8)). The IdP (Okta, Entra ID) tells keywarden that a user's access ended
 * (active:false, DELETE) or is back (active:true); keywarden acts by the rule of DESIGN.md
 * (lib/sso.h: kw_sso_revoke(), kw_sso_restore()) and changes no permanent token.
 *
 *   GET  /scim/v2/ServiceProviderConfig, /Schemas, /ResourceTypes
 *   GET  /scim/v2/Users?filter=userName eq "x"&startIndex=1&count=N    -> ListResponse
 *   POST /scim/v2/Users                                                -> 201, 409 when it exists
 *   GET, PUT, PATCH, DELETE /scim/v2/Users/{id}
 *
 * Authentication: `Authorization: Bearer <token>`, the token of [scim] bearer_token_file (a
 * 0600 file read once at start; only its SHA-256 is kept); compared in constant time after
 * hashing both sides. Failures set answer.auth_failed so that http.c's throttle (the API's)
 * counts them; the token is never logged.
 *
 * Threads: kw_scim_handle() runs in a worker with that worker's store, like kw_api_handle();
 * the settings are read-only after kw_scim_settings_load(). */
#ifndef KW_SSOD_SCIM_H
#define KW_SSOD_SCIM_H

#include <stdbool.h>
#include <stdint.h>

#include "api.h"
#include "conf.h"
#include "sso_config.h"
#include "store.h"

#define KW_SCIM_PREFIX "/scim/"
#define KW_SCIM_CONTENT_TYPE "application/scim+json"

struct kw_scim_settings {
	bool enabled;                 /* [scim] bearer_token_file is set */
	unsigned char token_hash[32]; /* SHA-256 of the bearer token */
};

/* Reads [scim] bearer_token_file (kw_secret_file_read(): 0600, owner) when set. 0, or a
 * negative errno-style code with error_r. */
int kw_scim_settings_load(const struct kw_config *cfg, struct kw_scim_settings *s,
			  const char **error_r);
void kw_scim_settings_clear(struct kw_scim_settings *s);

/* Answers one request under /scim/ (a kw_api_request from kw_api_http_request()); never fails:
 * everything is in *a (a->scim set: SCIM content type and Bearer challenge). idp: the pinned
 * IdP's entity id, named in the reasons of revocations. */
void kw_scim_handle(struct kw_store *store, const struct kw_sso_config *sso, const char *idp,
		    const struct kw_scim_settings *s, const struct kw_api_request *rq, int64_t now,
		    struct kw_api_answer *a);

/* A SCIM error answer (RFC 7644 3.12), from any thread (http.c: 413, 429); scim_type NULL for
 * none. */
void kw_scim_error(struct kw_api_answer *a, int status, const char *scim_type, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- JSON (scim_json.c, json-c) ---- */

/* What a PUT, POST or PATCH body says of a user; strings malloc'd, freed by
 * kw_scim_user_clear(). Unknown attributes are ignored (RFC 7644 3.5.2: the server ignores
 * what it does not support). */
struct kw_scim_user {
	char *user_name;   /* NULL: not sent */
	char *external_id; /* NULL: not sent */
	int active;        /* -1 not sent, 0, 1 */
	/* roles (or groups) sent: each value, mapped through [sso] role_map like SAML groups; a
	 * remove of roles sends none */
	bool roles_sent;
	char **roles;
	size_t n_roles;
};

void kw_scim_user_clear(struct kw_scim_user *u);
/* A User resource (POST, PUT). 0, or -EINVAL with *why_r (static text). */
int kw_scim_json_user(const char *body, size_t len, struct kw_scim_user *u, const char **why_r);
/* A PatchOp: every operation whose op is add or replace (any case), with or without path;
 * booleans as JSON or as strings. 0, or -EINVAL with *why_r and *scim_type_r. */
int kw_scim_json_patch(const char *body, size_t len, struct kw_scim_user *u, const char **why_r,
		       const char **scim_type_r);

#endif
