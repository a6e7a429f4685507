/* sso_config.c: the [sso] section of keywarden.conf (see sso_config.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "error.h"
#include "secret.h"
#include "sso_config.h"
#include "xalloc.h"

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = '\0';
	return s;
}

static int required(const struct kw_config *cfg, const char *key, char **v_r, const char **error_r)
{
	const char *v = kw_config_get(cfg, "sso", key);

	if (v == NULL || v[0] == '\0')
		return kw_error_fail(error_r, -EINVAL, "[sso] %s: missing (required for ingest)",
				     key);
	*v_r = kw_strdup(v);
	return 0;
}

/* "group:Role, group:Role"; a group may hold ':' (the last one separates). */
static int parse_role_map(struct kw_sso_config *sso, const char *text, struct kw_store *store,
			  const char **error_r)
{
	char *copy = kw_strdup(text), *save = NULL, *item;
	int ret = 0;

	for (item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
		char *colon = strrchr(item, ':'), *group, *role;
		struct kw_sso_role_map *m;
		const char *err;

		if (colon == NULL) {
			ret = kw_error_fail(error_r, -EINVAL,
					    "[sso] role_map: \"%s\" is not group:Role", trim(item));
			goto out;
		}
		*colon = '\0';
		group = trim(item);
		role = trim(colon + 1);
		if (group[0] == '\0' || role[0] == '\0') {
			ret = kw_error_fail(error_r, -EINVAL,
					    "[sso] role_map: empty group or role");
			goto out;
		}
		m = realloc(sso->map, (sso->n_map + 1) * sizeof(*m));
		if (m == NULL)
			abort();
		sso->map = m;
		m = &sso->map[sso->n_map++];
		memset(m, 0, sizeof(*m));
		m->group = kw_strdup(group);
		snprintf(m->role.name, sizeof(m->role.name), "%s", role);
		if (store != NULL && kw_store_role_get(store, role, &m->role, &err) < 0) {
			ret = kw_error_fail(error_r, -EINVAL,
					    "[sso] role_map: unknown role \"%s\" (roles: %s)", role,
					    kw_store_role_names());
			goto out;
		}
	}
	if (sso->n_map == 0)
		ret = kw_error_fail(error_r, -EINVAL, "[sso] role_map: empty");
out:
	free(copy);
	return ret;
}

static const struct {
	const char *name, *uri;
} nameids[KW_SSO_NAMEID_COUNT] = {
	{ "persistent", "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent" },
	{ "emailAddress", "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress" },
	{ "unspecified", "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified" },
	{ "transient", "urn:oasis:names:tc:SAML:2.0:nameid-format:transient" },
};

const char *kw_sso_nameid_name(unsigned i)
{
	return i < KW_SSO_NAMEID_COUNT ? nameids[i].name : NULL;
}

const char *kw_sso_nameid_uri(unsigned i)
{
	return i < KW_SSO_NAMEID_COUNT ? nameids[i].uri : NULL;
}

unsigned kw_sso_nameid_of_uri(const char *uri)
{
	static const char v20[] = "urn:oasis:names:tc:SAML:2.0:nameid-format:";

	for (unsigned i = 0; i < KW_SSO_NAMEID_COUNT; i++) {
		if (strcmp(uri, nameids[i].uri) == 0)
			return 1u << i;
	}
	/* Some IdPs (OneLogin, older ADFS rules) spell the SAML 1.1 formats with "2.0". */
	if (strcmp(uri, "urn:oasis:names:tc:SAML:2.0:nameid-format:unspecified") == 0)
		return KW_SSO_NAMEID_UNSPECIFIED;
	if (strncmp(uri, v20, sizeof(v20) - 1) == 0 &&
	    strcmp(uri + sizeof(v20) - 1, "emailAddress") == 0)
		return KW_SSO_NAMEID_EMAIL;
	return 0;
}

/* "persistent, emailAddress": short names or URIs, in the order of preference (the first is
 * the one an AuthnRequest asks for). */
static int parse_nameid_formats(struct kw_sso_config *sso, const char *text, const char **error_r)
{
	char *copy = kw_strdup(text), *save = NULL, *item;
	int ret = 0;

	sso->nameid_formats = 0;
	for (item = strtok_r(copy, ", ", &save); item != NULL; item = strtok_r(NULL, ", ", &save)) {
		unsigned bit = kw_sso_nameid_of_uri(item);
		for (unsigned i = 0; bit == 0 && i < KW_SSO_NAMEID_COUNT; i++) {
			if (strcasecmp(item, nameids[i].name) == 0)
				bit = 1u << i;
		}
		if (bit == 0) {
			ret = kw_error_fail(
				error_r, -EINVAL,
				"[sso] nameid_format: unknown format \"%s\" (persistent, "
				"emailAddress, unspecified, transient or their URIs)",
				item);
			goto out;
		}
		if (sso->nameid_formats == 0)
			sso->nameid_first = bit;
		sso->nameid_formats |= bit;
	}
	if (sso->nameid_formats == 0)
		ret = kw_error_fail(error_r, -EINVAL, "[sso] nameid_format: empty");
	else if ((sso->nameid_formats & KW_SSO_NAMEID_TRANSIENT) != 0 &&
		 sso->saml.login_attribute == NULL)
		ret = kw_error_fail(error_r, -EINVAL,
				    "[sso] nameid_format: transient NameIDs change at each sign-in "
				    "and need login_attribute to name the login");
out:
	free(copy);
	return ret;
}

static int check_cert_file(const char *path, const char **error_r)
{
	FILE *f = fopen(path, "re");
	X509 *x;

	if (f == NULL)
		return kw_error_fail(error_r, -EINVAL, "[sso] sp_cert: cannot read %s", path);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL)
		return kw_error_fail(error_r, -EINVAL, "[sso] sp_cert: %s is not a PEM certificate",
				     path);
	X509_free(x);
	return 0;
}

int kw_sso_config_load(const struct kw_config *cfg, struct kw_store *store,
		       struct kw_sso_config **sso_r, const char **error_r)
{
	struct kw_sso_config *sso = calloc(1, sizeof(*sso));
	const char *v;
	int ret;

	if (sso == NULL)
		abort();
	if ((ret = required(cfg, "account", &sso->account, error_r)) < 0 ||
	    (ret = required(cfg, "sp_entity_id", (char **)&sso->saml.sp_entity_id, error_r)) < 0 ||
	    (ret = required(cfg, "acs_url", (char **)&sso->saml.acs_url, error_r)) < 0 ||
	    (ret = required(cfg, "idp_metadata", &sso->idp_metadata, error_r)) < 0)
		goto fail;
	if (strncmp(sso->saml.acs_url, "https://", 8) != 0 &&
	    strncmp(sso->saml.acs_url, "http://", 7) != 0) {
		ret = kw_error_fail(error_r, -EINVAL, "[sso] acs_url: \"%s\" is not an http(s) URL",
				    sso->saml.acs_url);
		goto fail;
	}
	v = kw_config_get(cfg, "sso", "slo_url");
	if (v != NULL) {
		if (strncmp(v, "https://", 8) != 0 && strncmp(v, "http://", 7) != 0) {
			ret = kw_error_fail(error_r, -EINVAL,
					    "[sso] slo_url: \"%s\" is not an http(s) URL", v);
			goto fail;
		}
		sso->slo_url = kw_strdup(v);
	} else {
		size_t n = strlen(sso->saml.acs_url);
		/* the usual layout: .../saml/acs and .../saml/slo */
		if (n > 4 && strcmp(sso->saml.acs_url + n - 4, "/acs") == 0) {
			sso->slo_url = kw_strdup(sso->saml.acs_url);
			memcpy(sso->slo_url + n - 3, "slo", 3);
		}
	}
	sso->saml.slo_url = sso->slo_url;
	v = kw_config_get(cfg, "sso", "listen");
	if (v != NULL && (v[0] == '\0' || (strncmp(v, "unix:", 5) == 0 && v[5] != '/') ||
			  (strncmp(v, "unix:", 5) != 0 && strrchr(v, ':') == NULL))) {
		ret = kw_error_fail(error_r, -EINVAL,
				    "[sso] listen: \"%s\" is neither HOST:PORT nor unix:/PATH", v);
		goto fail;
	}
	sso->listen = kw_strdup(v != NULL ? v : KW_SSO_DEFAULT_LISTEN);
	sso->max_body = (size_t)kw_config_uint(cfg, "sso", "max_body");
	sso->max_connections = (unsigned)kw_config_uint(cfg, "sso", "max_connections");
	sso->timeout = (unsigned)kw_config_uint(cfg, "sso", "timeout");
	sso->sp_key = kw_strdup(kw_config_get(cfg, "sso", "sp_key"));
	if (sso->sp_key != NULL) {
		/* A private key: the rules of every secret file (secret.h); xmlsec opens it
		 * by name afterwards. */
		const char *why = NULL;
		if (kw_secret_file_check(sso->sp_key, NULL, &why) < 0) {
			ret = kw_error_fail(error_r, -EINVAL, "[sso] sp_key %s %s", sso->sp_key,
					    why);
			goto fail;
		}
	}
	sso->sp_cert = kw_strdup(kw_config_get(cfg, "sso", "sp_cert"));
	if (sso->sp_cert != NULL && (ret = check_cert_file(sso->sp_cert, error_r)) < 0)
		goto fail;
	sso->saml.clock_skew = (int64_t)kw_config_uint(cfg, "sso", "clock_skew");
	sso->saml.allow_sha1 = kw_config_bool(cfg, "sso", "allow_sha1");
	sso->saml.allow_legacy_encryption = kw_config_bool(cfg, "sso", "allow_legacy_encryption");
	sso->saml.allow_missing_recipient = kw_config_bool(cfg, "sso", "allow_missing_recipient");
	v = kw_config_get(cfg, "sso", "login_attribute");
	if (v != NULL && v[0] == '\0') {
		ret = kw_error_fail(
			error_r, -EINVAL,
			"[sso] login_attribute: empty (leave it out to use the NameID)");
		goto fail;
	}
	sso->saml.login_attribute = kw_strdup(v);
	v = kw_config_get(cfg, "sso", "role_attribute");
	if (v != NULL && v[0] == '\0') {
		ret = kw_error_fail(error_r, -EINVAL, "[sso] role_attribute: empty");
		goto fail;
	}
	sso->saml.role_attribute = kw_strdup(v);
	v = kw_config_get(cfg, "sso", "email_attribute");
	if (v != NULL && v[0] == '\0') {
		ret = kw_error_fail(error_r, -EINVAL, "[sso] email_attribute: empty");
		goto fail;
	}
	sso->saml.email_attribute = kw_strdup(v);
	v = kw_config_get(cfg, "sso", "nameid_format");
	ret = parse_nameid_formats(sso, v != NULL ? v : KW_SSO_NAMEID_DEFAULT, error_r);
	if (ret < 0)
		goto fail;
	sso->allow_unsolicited = kw_config_bool(cfg, "sso", "allow_unsolicited");
	sso->request_lifetime = (unsigned)kw_config_uint(cfg, "sso", "request_lifetime");
	v = kw_config_get(cfg, "sso", "idp_entity_id");
	if (v != NULL && v[0] == '\0') {
		ret = kw_error_fail(error_r, -EINVAL, "[sso] idp_entity_id: empty");
		goto fail;
	}
	sso->saml.idp_entity_id = kw_strdup(v);
	v = kw_config_get(cfg, "sso", "idp_metadata_cert");
	if (v != NULL) {
		FILE *cf = fopen(v, "re");
		X509 *x = cf != NULL ? PEM_read_X509(cf, NULL, NULL, NULL) : NULL;
		if (cf != NULL)
			fclose(cf);
		if (x == NULL) {
			ret = kw_error_fail(error_r, -EINVAL,
					    "[sso] idp_metadata_cert: %s is not a PEM certificate",
					    v);
			goto fail;
		}
		X509_free(x);
	}
	sso->saml.idp_metadata_cert = kw_strdup(v);
	v = kw_config_get(cfg, "sso", "role_map");
	if (v != NULL) {
		if (sso->saml.role_attribute == NULL) {
			ret = kw_error_fail(error_r, -EINVAL,
					    "[sso] role_map: set, but role_attribute is not");
			goto fail;
		}
		ret = parse_role_map(sso, v, store, error_r);
		if (ret < 0)
			goto fail;
	}
	*sso_r = sso;
	return 0;
fail:
	kw_sso_config_free(&sso);
	return ret;
}

void kw_sso_config_free(struct kw_sso_config **p)
{
	struct kw_sso_config *sso = *p;

	if (sso == NULL)
		return;
	free(sso->account);
	free(sso->idp_metadata);
	free(sso->sp_key);
	free(sso->sp_cert);
	free(sso->slo_url);
	free(sso->listen);
	free((char *)sso->saml.sp_entity_id);
	free((char *)sso->saml.acs_url);
	free((char *)sso->saml.login_attribute);
	free((char *)sso->saml.role_attribute);
	free((char *)sso->saml.email_attribute);
	free((char *)sso->saml.idp_entity_id);
	free((char *)sso->saml.idp_metadata_cert);
	for (size_t i = 0; i < sso->n_map; i++)
		free(sso->map[i].group);
	free(sso->map);
	free(sso);
	*p = NULL;
}

const struct kw_role *kw_sso_map_role(const struct kw_sso_config *sso, char *const *groups,
				      size_t n_groups)
{
	const struct kw_role *best = NULL;

	for (size_t g = 0; g < n_groups; g++) {
		for (size_t i = 0; i < sso->n_map; i++) {
			if (strcmp(groups[g], sso->map[i].group) == 0 &&
			    (best == NULL || sso->map[i].role.rank > best->rank))
				best = &sso->map[i].role;
		}
	}
	return best;
}
