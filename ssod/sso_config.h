/* sso_config.h: the [sso] section of keywarden.conf, checked once at start.
 *
 * Every problem is refused with a message that names the key ("[sso] role_map: ..."), so that
 * a typo never weakens verification. The role map is resolved against the store's roles: each
 * entry maps an IdP group (a value of role_attribute) to a keywarden role; the highest-ranked
 * mapped role wins. A struct kw_sso_config is freed with kw_sso_config_free(). */
#ifndef KW_SSO_CONFIG_H
#define KW_SSO_CONFIG_H

#include <stddef.h>

#include "conf.h"
#include "saml_verify.h"
#include "store.h"

#define KW_SSO_DEFAULT_LISTEN "127.0.0.1:8443"

struct kw_sso_role_map {
	char *group;
	struct kw_role role;
};

/* NameID formats, as [sso] nameid_format names them; the one table is in sso_config.c. */
enum kw_sso_nameid {
	KW_SSO_NAMEID_PERSISTENT = 1 << 0,
	KW_SSO_NAMEID_EMAIL = 1 << 1,
	KW_SSO_NAMEID_UNSPECIFIED = 1 << 2,
	KW_SSO_NAMEID_TRANSIENT = 1 << 3,
	KW_SSO_NAMEID_COUNT = 4,
};
#define KW_SSO_NAMEID_DEFAULT "persistent, emailAddress"

/* The short name and the URI of format bit i (0 .. KW_SSO_NAMEID_COUNT - 1). */
const char *kw_sso_nameid_name(unsigned i);
const char *kw_sso_nameid_uri(unsigned i);
/* The bit of a Format URI, or 0 for one not in the table. */
unsigned kw_sso_nameid_of_uri(const char *uri);

struct kw_sso_config {
	char *account;
	char *idp_metadata;
	char *sp_key;                 /* NULL when unset */
	char *sp_cert;                /* NULL when unset */
	char *slo_url;                /* [sso] slo_url, or acs_url with /acs -> /slo; may be NULL */
	char *listen;                 /* host:port, [v6]:port or unix:/path */
	size_t max_body;              /* bytes of a request body */
	unsigned max_connections;     /* concurrent HTTP connections */
	unsigned timeout;             /* seconds of inactivity before a connection is cut */
	struct kw_saml_settings saml; /* strings point into cfg, valid while it lives */
	struct kw_sso_role_map *map;
	size_t n_map;
	unsigned nameid_formats;   /* enum kw_sso_nameid bits: [sso] nameid_format */
	unsigned nameid_first;     /* the bit listed first: what an AuthnRequest asks for */
	bool allow_unsolicited;    /* IdP-initiated Responses (without InResponseTo) */
	unsigned request_lifetime; /* seconds an AuthnRequest may be answered in */
};

/* Reads and checks [sso]; store resolves role names (may be NULL: then only syntax). */
int kw_sso_config_load(const struct kw_config *cfg, struct kw_store *store,
		       struct kw_sso_config **sso_r, const char **error_r);
void kw_sso_config_free(struct kw_sso_config **sso);

/* The highest role mapped from the given groups, or NULL when none maps. */
const struct kw_role *kw_sso_map_role(const struct kw_sso_config *sso, char *const *groups,
				      size_t n_groups);

#endif
