/* store_scim.h: what the store keeps for SCIM (ssod/scim.c): the IdP's externalId of an SSO
 * user (table scim_user, schema/008). Errors as in store.h; not thread-safe (one struct
 * kw_store per thread). */
#ifndef KW_STORE_SCIM_H
#define KW_STORE_SCIM_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define KW_SCIM_EXTERNAL_ID_MAX 256

/* The externalId of user_id into buf (KW_TEXT_SIZE(KW_SCIM_EXTERNAL_ID_MAX) bytes); "" when
 * SCIM gave none. */
int kw_store_scim_external_id_get(struct kw_store *store, int64_t user_id, char *buf, size_t size,
				  const char **error_r);

/* The user of `account_id` whose externalId is external_id (case-sensitive, as RFC 7643 says
 * of externalId); -ENOENT when none. */
int kw_store_scim_external_id_find(struct kw_store *store, int64_t account_id,
				   const char *external_id, int64_t *user_id_r,
				   const char **error_r);

/* Sets the externalId of an SSO user (actor: the audit name, "scim"), in its own transaction
 * with an sso_event and the audit event scim.external_id; nothing when it is unchanged.
 * -EINVAL for refused text (lib/text.h) or a longer one. */
int kw_store_scim_external_id_set(struct kw_store *store, const char *actor, int64_t user_id,
				  const char *login, const char *external_id, int64_t now,
				  const char **error_r);

#endif
