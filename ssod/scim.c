/* scim.c: the SCIM 2.0 receiver of keywarden-ssod (see scim.h): bearer authentication, routing,
 * the User resources (the [sso] account's SSO users, id = the user's number, userName = login)
 * and the one mapping of store errors to SCIM error bodies.
 *
 * active:false and DELETE go through kw_sso_revoke() (the rule: sessions and access tokens
 * end, the warning names each permanent token and its delete command, a review case opens, no
 * permanent token changes); active:true through kw_sso_restore(); roles (POST, PUT, PATCH)
 * through kw_sso_login() as a SCIM claim, mapped by [sso] role_map like SAML groups, so that
 * a lower role or none applies the rule too. Statuses: 200, 201, 204; 400 invalidFilter /
 * invalidSyntax / invalidValue / mutability; 401 (Bearer challenge); 404; 405; 409
 * uniqueness; 413; 415; 500; 503 busy. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "error.h"
#include "jsonw.h"
#include "log.h"
#include "scim.h"
#include "secret.h"
#include "sso.h"
#include "store_scim.h"
#include "text.h"

#define SCIM_V2 "/scim/v2"
#define SCHEMA_USER "urn:ietf:params:scim:schemas:core:2.0:User"
#define SCHEMA_ERROR "urn:ietf:params:scim:api:messages:2.0:Error"
#define SCHEMA_LIST "urn:ietf:params:scim:api:messages:2.0:ListResponse"
#define BEARER_MAX 4096
#define COUNT_MAX 200

int kw_scim_settings_load(const struct kw_config *cfg, struct kw_scim_settings *s,
			  const char **error_r)
{
	const char *path = kw_config_get(cfg, "scim", "bearer_token_file");
	unsigned char buf[BEARER_MAX];
	size_t len = 0;
	int ret;

	memset(s, 0, sizeof(*s));
	if (path == NULL || path[0] == '\0')
		return 0;
	ret = kw_secret_file_read(path, buf, sizeof(buf), &len, error_r);
	if (ret < 0)
		return ret;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
		len--;
	if (len < 16) {
		OPENSSL_cleanse(buf, sizeof(buf));
		return kw_error_fail(error_r, -EINVAL,
				     "%s: the SCIM bearer token must have at least 16 characters",
				     path);
	}
	SHA256(buf, len, s->token_hash);
	OPENSSL_cleanse(buf, sizeof(buf));
	s->enabled = true;
	return 0;
}

void kw_scim_settings_clear(struct kw_scim_settings *s)
{
	OPENSSL_cleanse(s, sizeof(*s));
}

/* ---- answers ---- */

static void body_from(struct kw_api_answer *a, FILE *f, char *buf, size_t len)
{
	(void)f;
	free(a->body);
	a->body = buf;
	a->len = len;
}

static FILE *body_open(char **buf, size_t *len)
{
	FILE *f = open_memstream(buf, len);
	if (f == NULL)
		abort();
	return f;
}

void kw_scim_error(struct kw_api_answer *a, int status, const char *scim_type, const char *fmt, ...)
{
	char detail[512], *buf = NULL;
	size_t len = 0;
	va_list ap;
	FILE *f;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	f = body_open(&buf, &len);
	fprintf(f, "{\"schemas\":[\"" SCHEMA_ERROR "\"],\"status\":\"%d\"", status);
	if (scim_type != NULL)
		fprintf(f, ",\"scimType\":\"%s\"", scim_type);
	fputs(",\"detail\":", f);
	kw_json_string(f, detail);
	fputs("}", f);
	fclose(f);
	body_from(a, NULL, buf, len);
	a->status = status;
	a->scim = true;
	a->www_authenticate = status == 401;
	snprintf(a->outcome, sizeof(a->outcome), "SCIM %d%s%s: %s", status,
		 scim_type != NULL ? " " : "", scim_type != NULL ? scim_type : "", detail);
}

static void store_error(struct kw_api_answer *a, int ret, const char *error)
{
	if (ret == -ENOENT)
		kw_scim_error(a, 404, NULL, "%s", error != NULL ? error : "not found");
	else if (ret == -EINVAL)
		kw_scim_error(a, 400, "invalidValue", "%s", error != NULL ? error : "invalid");
	else if (ret == -EBUSY)
		kw_scim_error(a, 503, NULL, "the database is busy: try again");
	else {
		kw_error("SCIM: store: %s", error != NULL ? error : "?");
		kw_scim_error(a, 500, NULL, "internal error");
	}
}

/* ---- users ---- */

struct users {
	const char *account;
	const char *login;       /* filter userName eq (case-insensitive), NULL: all */
	int64_t id;              /* 0: any */
	const char *external_id; /* filter externalId eq (case-sensitive), NULL: any */
	bool none;               /* a filter that matches nothing */
	struct kw_user *u;
	size_t n, size;
};

static int users_cb(const struct kw_user *u, void *ctx)
{
	struct users *l = ctx;

	if (!u->sso || l->none || (l->login != NULL && strcasecmp(u->login, l->login) != 0) ||
	    (l->id != 0 && u->id != l->id))
		return 0;
	if (l->n == l->size) {
		l->size = l->size == 0 ? 16 : l->size * 2;
		l->u = realloc(l->u, l->size * sizeof(*l->u));
		if (l->u == NULL)
			abort();
	}
	l->u[l->n++] = *u;
	return 0;
}

static void user_json(struct kw_store *store, FILE *f, const struct kw_user *u)
{
	char ext[KW_TEXT_SIZE(KW_SCIM_EXTERNAL_ID_MAX)];
	const char *error;

	fprintf(f, "{\"schemas\":[\"" SCHEMA_USER "\"],\"id\":\"%lld\",\"userName\":",
		(long long)u->id);
	kw_json_string(f, u->login);
	if (kw_store_scim_external_id_get(store, u->id, ext, sizeof(ext), &error) == 0 &&
	    ext[0] != '\0') {
		fputs(",\"externalId\":", f);
		kw_json_string(f, ext);
	}
	fprintf(f, ",\"active\":%s", strcmp(u->sso_state, "revoked") == 0 ? "false" : "true");
	if (u->email[0] != '\0') {
		fputs(",\"emails\":[{\"value\":", f);
		kw_json_string(f, u->email);
		fputs(",\"primary\":true}]", f);
	}
	fputs(",\"roles\":[{\"value\":", f);
	kw_json_string(f, u->role.name);
	fprintf(f,
		"}],\"meta\":{\"resourceType\":\"User\",\"location\":\"" SCIM_V2 "/Users/%lld\"}}",
		(long long)u->id);
}

static void user_answer(struct kw_store *store, struct kw_api_answer *a, int status,
			const struct kw_user *u)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = body_open(&buf, &len);

	user_json(store, f, u);
	fclose(f);
	body_from(a, NULL, buf, len);
	a->status = status;
}

/* filter: `userName eq "x"` or `externalId eq "x"`, names and operator in any case. */
static int filter_parse(const char *filter, struct users *l, char *value, size_t size)
{
	const char *p = filter, *attr, *q, *error;
	size_t n, alen;

	while (*p == ' ')
		p++;
	attr = p;
	while (*p != '\0' && *p != ' ')
		p++;
	alen = (size_t)(p - attr);
	while (*p == ' ')
		p++;
	if (strncasecmp(p, "eq", 2) != 0 || p[2] != ' ')
		return -EINVAL;
	p += 3;
	while (*p == ' ')
		p++;
	if (*p != '"')
		return -EINVAL;
	q = strchr(p + 1, '"');
	if (q == NULL)
		return -EINVAL;
	n = (size_t)(q - p - 1);
	for (const char *r = q + 1; *r != '\0'; r++)
		if (*r != ' ')
			return -EINVAL;
	if (n + 1 > size || memchr(p + 1, '\\', n) != NULL)
		return -EINVAL;
	memcpy(value, p + 1, n);
	value[n] = '\0';
	if (kw_text_check(value, KW_SCIM_EXTERNAL_ID_MAX, 0, &error) < 0)
		return -EINVAL;
	if (alen == 8 && strncasecmp(attr, "userName", 8) == 0)
		l->login = value;
	else if (alen == 10 && strncasecmp(attr, "externalId", 10) == 0)
		l->external_id = value;
	else
		return -EINVAL;
	return 0;
}

static const char *param(const struct kw_api_request *rq, const char *name)
{
	for (size_t i = 0; i < rq->n_params; i++)
		if (strcasecmp(rq->params[i].name, name) == 0)
			return rq->params[i].value;
	return NULL;
}

static int number(const char *s, long long def, long long *n_r)
{
	char *end;
	long long n;

	if (s == NULL) {
		*n_r = def;
		return 0;
	}
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return -EINVAL;
	*n_r = n;
	return 0;
}

static void users_list(struct kw_store *store, const struct kw_sso_config *sso,
		       const struct kw_api_request *rq, struct kw_api_answer *a)
{
	struct users l = { .account = sso->account };
	const char *filter = param(rq, "filter"), *error = NULL;
	char value[KW_TEXT_SIZE(KW_SCIM_EXTERNAL_ID_MAX)];
	long long start, count;
	char *buf = NULL;
	size_t len = 0, shown = 0;
	FILE *f;
	int ret;

	if (filter != NULL && filter_parse(filter, &l, value, sizeof(value)) < 0) {
		kw_scim_error(a, 400, "invalidFilter",
			      "only userName eq \"...\" and externalId eq \"...\" are supported");
		return;
	}
	if (l.external_id != NULL) {
		struct kw_account acct;

		ret = kw_store_account_get(store, sso->account, &acct, &error);
		if (ret == 0)
			ret = kw_store_scim_external_id_find(store, acct.id, l.external_id, &l.id,
							     &error);
		if (ret == -ENOENT)
			l.none = true;
		else if (ret < 0) {
			store_error(a, ret, error);
			return;
		}
	}
	if (number(param(rq, "startIndex"), 1, &start) < 0 ||
	    number(param(rq, "count"), COUNT_MAX, &count) < 0) {
		kw_scim_error(a, 400, "invalidValue", "startIndex and count are integers");
		return;
	}
	if (start < 1)
		start = 1; /* RFC 7644 3.4.2.4: less than 1 reads as 1 */
	if (count < 0)
		count = 0;
	if (count > COUNT_MAX)
		count = COUNT_MAX;
	ret = kw_store_user_list(store, sso->account, users_cb, &l, &error);
	if (ret < 0) {
		free(l.u);
		store_error(a, ret, error);
		return;
	}
	f = body_open(&buf, &len);
	fprintf(f, "{\"schemas\":[\"" SCHEMA_LIST "\"],\"totalResults\":%zu", l.n);
	fputs(",\"Resources\":[", f);
	for (size_t i = (size_t)start - 1; i < l.n && shown < (size_t)count; i++, shown++) {
		if (shown > 0)
			fputc(',', f);
		user_json(store, f, &l.u[i]);
	}
	fprintf(f, "],\"startIndex\":%lld,\"itemsPerPage\":%zu}", start, shown);
	fclose(f);
	free(l.u);
	body_from(a, NULL, buf, len);
	a->status = 200;
	snprintf(a->outcome, sizeof(a->outcome), "SCIM list: %zu of %zu user(s)", shown, l.n);
}

/* The SSO user of the account with this SCIM id; 0, or an answer written and -1. */
static int user_find(struct kw_store *store, const struct kw_sso_config *sso, const char *id,
		     struct kw_user *u_r, struct kw_api_answer *a)
{
	struct users l = { .account = sso->account };
	const char *error = NULL;
	long long n;
	int ret;

	if (number(id, 0, &n) < 0 || n <= 0) {
		kw_scim_error(a, 404, NULL, "no such user");
		return -1;
	}
	l.id = n;
	ret = kw_store_user_list(store, sso->account, users_cb, &l, &error);
	if (ret < 0) {
		free(l.u);
		store_error(a, ret, error);
		return -1;
	}
	if (l.n == 0) {
		free(l.u);
		kw_scim_error(a, 404, NULL, "no such user");
		return -1;
	}
	*u_r = l.u[0];
	free(l.u);
	return 0;
}

/* active:false (how: "PATCH", "PUT", "DELETE") by the rule, active:true restores. */
static int set_active(struct kw_store *store, const char *idp, struct kw_user *u, bool active,
		      const char *how, int64_t now, struct kw_api_answer *a)
{
	char actor[64 + KW_LOGIN_MAX], reason[512];
	struct kw_sso_result res;
	const char *error = NULL;
	int ret;

	if (active == (strcmp(u->sso_state, "revoked") != 0))
		return 0;
	snprintf(actor, sizeof(actor), "scim");
	if (!active) {
		snprintf(reason, sizeof(reason),
			 "the IdP %s deprovisioned the user through SCIM (%s active=false)",
			 idp != NULL ? idp : "?", how);
		ret = kw_sso_revoke(store, actor, u->login, reason, now, &res, &error);
	} else {
		snprintf(reason, sizeof(reason),
			 "the IdP %s reactivated the user through SCIM (%s active=true)",
			 idp != NULL ? idp : "?", how);
		ret = kw_sso_restore(store, actor, u->login, reason, now, &res, &error);
	}
	if (ret < 0) {
		store_error(a, ret, error);
		return -1;
	}
	snprintf(u->sso_state, sizeof(u->sso_state), "%s", active ? "active" : "revoked");
	snprintf(a->outcome, sizeof(a->outcome), "SCIM %s %s: %s%s", how, u->login,
		 active ? "SSO access restored" : "SSO access revoked by the rule",
		 !active && res.case_id != 0 ? ", review case opened" : "");
	return 0;
}

/* Roles sent by the IdP map through [sso] role_map like SAML groups; the store decides as for
 * an assertion (kw_sso_login() with scim set: no session), so that a lower role or none
 * applies the rule. *outcome_r: what the store decided (KW_SSO_CREATED: a new user). */
static int apply_roles(struct kw_store *store, const struct kw_sso_config *sso, const char *idp,
		       const char *login, const struct kw_scim_user *in, int64_t now,
		       struct kw_api_answer *a, enum kw_sso_outcome *outcome_r)
{
	const struct kw_role *r = kw_sso_map_role(sso, in->roles, in->n_roles);
	struct kw_sso_assertion as = { .account = sso->account,
				       .idp = idp,
				       .login = login,
				       .role = r != NULL ? r->name : NULL,
				       .scim = true };
	struct kw_sso_result res;
	const char *error = NULL;
	int ret = kw_sso_login(store, &as, now, &res, &error);

	if (ret == -EPERM || ret == -EACCES) {
		kw_scim_error(a, 409, "uniqueness", "%s", error);
		return -1;
	}
	if (ret < 0) {
		store_error(a, ret, error);
		return -1;
	}
	*outcome_r = res.outcome;
	snprintf(a->outcome, sizeof(a->outcome), "SCIM roles of %s: role %s, %s%s", login,
		 r != NULL ? r->name : "none", kw_sso_outcome_name(res.outcome),
		 res.case_id != 0 ? ", the rule applied (review case)" : "");
	return 0;
}

static bool json_body(const struct kw_api_request *rq, struct kw_api_answer *a)
{
	const char *ct = rq->content_type;

	if (ct != NULL && (strncasecmp(ct, "application/scim+json", 21) == 0 ||
			   strncasecmp(ct, "application/json", 16) == 0))
		return true;
	kw_scim_error(a, 415, NULL, "the body must be application/scim+json");
	return false;
}

static void user_one(struct kw_store *store, const struct kw_sso_config *sso, const char *idp,
		     const struct kw_api_request *rq, const char *id, int64_t now,
		     struct kw_api_answer *a)
{
	struct kw_scim_user in = { .active = -1 };
	const char *why = NULL, *type = NULL;
	struct kw_user u;
	char outcome[sizeof(a->outcome)];

	if (user_find(store, sso, id, &u, a) < 0)
		return;
	if (strcmp(rq->method, "GET") == 0) {
		user_answer(store, a, 200, &u);
		snprintf(a->outcome, sizeof(a->outcome), "SCIM get %s", u.login);
		return;
	}
	if (strcmp(rq->method, "DELETE") == 0) {
		if (set_active(store, idp, &u, false, "DELETE", now, a) < 0)
			return;
		a->status = 204;
		free(a->body);
		a->body = NULL;
		a->len = 0;
		if (a->outcome[0] == '\0')
			snprintf(a->outcome, sizeof(a->outcome), "SCIM DELETE %s: already revoked",
				 u.login);
		return;
	}
	if (strcmp(rq->method, "PATCH") != 0 && strcmp(rq->method, "PUT") != 0) {
		snprintf(a->allow, sizeof(a->allow), "GET, PUT, PATCH, DELETE");
		kw_scim_error(a, 405, NULL, "method not allowed");
		return;
	}
	if (!json_body(rq, a))
		return;
	if (strcmp(rq->method, "PATCH") == 0
		    ? kw_scim_json_patch(rq->body, rq->body_len, &in, &why, &type) < 0
		    : (type = "invalidSyntax",
		       kw_scim_json_user(rq->body, rq->body_len, &in, &why) < 0)) {
		kw_scim_error(a, 400, type, "%s", why);
		return;
	}
	if (in.user_name != NULL && strcasecmp(in.user_name, u.login) != 0) {
		kw_scim_user_clear(&in);
		kw_scim_error(a, 400, "mutability", "userName cannot change: it is the login");
		return;
	}
	if (in.external_id != NULL) {
		const char *error = NULL;
		int ret = kw_store_scim_external_id_set(store, "scim", u.id, u.login,
							in.external_id, now, &error);
		if (ret < 0) {
			kw_scim_user_clear(&in);
			store_error(a, ret, error);
			return;
		}
	}
	if (in.active == 1 && set_active(store, idp, &u, true, rq->method, now, a) < 0) {
		kw_scim_user_clear(&in);
		return;
	}
	/* roles count while access is on: a revoked user stays so until active:true */
	if (in.roles_sent && in.active != 0 && strcmp(u.sso_state, "revoked") != 0) {
		enum kw_sso_outcome o;

		if (apply_roles(store, sso, idp, u.login, &in, now, a, &o) < 0 ||
		    user_find(store, sso, id, &u, a) < 0) {
			kw_scim_user_clear(&in);
			return;
		}
	}
	if (in.active == 0 && set_active(store, idp, &u, false, rq->method, now, a) < 0) {
		kw_scim_user_clear(&in);
		return;
	}
	kw_scim_user_clear(&in);
	snprintf(outcome, sizeof(outcome), "%s", a->outcome);
	user_answer(store, a, 200, &u);
	if (outcome[0] != '\0')
		snprintf(a->outcome, sizeof(a->outcome), "%s", outcome);
	else
		snprintf(a->outcome, sizeof(a->outcome), "SCIM %s %s: nothing to change",
			 rq->method, u.login);
}

static void user_create(struct kw_store *store, const struct kw_sso_config *sso, const char *idp,
			const struct kw_api_request *rq, int64_t now, struct kw_api_answer *a)
{
	enum kw_sso_outcome o;
	struct kw_scim_user in = { .active = -1 };
	const char *why = NULL, *error = NULL;
	struct kw_user u;
	int ret;

	if (!json_body(rq, a))
		return;
	if (kw_scim_json_user(rq->body, rq->body_len, &in, &why) < 0) {
		kw_scim_error(a, 400, "invalidSyntax", "%s", why);
		return;
	}
	if (in.user_name == NULL) {
		kw_scim_user_clear(&in);
		kw_scim_error(a, 400, "invalidValue", "userName is required");
		return;
	}
	ret = kw_store_user_get(store, in.user_name, &u, &error);
	if (ret == 0) {
		kw_scim_user_clear(&in);
		kw_scim_error(a, 409, "uniqueness", "a user with this userName exists");
		return;
	}
	if (ret != -ENOENT) {
		kw_scim_user_clear(&in);
		store_error(a, ret, error);
		return;
	}
	if (apply_roles(store, sso, idp, in.user_name, &in, now, a, &o) < 0)
		goto out;
	if (o != KW_SSO_CREATED) {
		kw_scim_error(a, 400, "invalidValue",
			      "no role of [sso] role_map maps from the roles sent: nobody created");
		goto out;
	}
	if (kw_store_user_get(store, in.user_name, &u, &error) < 0) {
		store_error(a, -EIO, error);
		goto out;
	}
	if (in.external_id != NULL &&
	    (ret = kw_store_scim_external_id_set(store, "scim", u.id, u.login, in.external_id, now,
						 &error)) < 0) {
		store_error(a, ret, error);
		goto out;
	}
	if (in.active == 0 && set_active(store, idp, &u, false, "POST", now, a) < 0)
		goto out;
	user_answer(store, a, 201, &u);
	snprintf(a->location, sizeof(a->location), SCIM_V2 "/Users/%lld", (long long)u.id);
	snprintf(a->outcome, sizeof(a->outcome), "SCIM POST: SSO user %s created", u.login);
out:
	kw_scim_user_clear(&in);
}

/* ---- discovery (RFC 7644 4) ---- */

static const char service_provider_config[] =
	"{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig\"],"
	"\"documentationUri\":\"man:keywarden-ssod(8)\","
	"\"patch\":{\"supported\":true},\"bulk\":{\"supported\":false,\"maxOperations\":0,"
	"\"maxPayloadSize\":0},\"filter\":{\"supported\":true,\"maxResults\":200},"
	"\"changePassword\":{\"supported\":false},\"sort\":{\"supported\":false},"
	"\"etag\":{\"supported\":false},\"authenticationSchemes\":[{\"type\":\"oauthbearertoken\","
	"\"name\":\"Bearer token\",\"description\":\"the token of [scim] bearer_token_file\"}],"
	"\"meta\":{\"resourceType\":\"ServiceProviderConfig\",\"location\":\"" SCIM_V2
	"/ServiceProviderConfig\"}}";

static const char resource_types[] =
	"{\"schemas\":[\"" SCHEMA_LIST "\"],\"totalResults\":1,\"startIndex\":1,"
	"\"itemsPerPage\":1,\"Resources\":[{\"schemas\":["
	"\"urn:ietf:params:scim:schemas:core:2.0:ResourceType\"],\"id\":\"User\",\"name\":\"User\","
	"\"endpoint\":\"/Users\",\"schema\":\"" SCHEMA_USER "\",\"meta\":{\"resourceType\":"
	"\"ResourceType\",\"location\":\"" SCIM_V2 "/ResourceTypes/User\"}}]}";

#define ATTR(name, type, extra)                                                                    \
	"{\"name\":\"" name "\",\"type\":\"" type "\",\"multiValued\":false,\"required\":false,"   \
	"\"caseExact\":false,\"mutability\":" extra ",\"returned\":\"default\","                   \
	"\"uniqueness\":\"none\"}"

static const char schemas[] =
	"{\"schemas\":[\"" SCHEMA_LIST "\"],\"totalResults\":1,\"startIndex\":1,"
	"\"itemsPerPage\":1,\"Resources\":[{\"schemas\":["
	"\"urn:ietf:params:scim:schemas:core:2.0:Schema\"],\"id\":\"" SCHEMA_USER "\","
	"\"name\":\"User\",\"description\":\"an SSO user of the [sso] "
	"account\",\"attributes\":[" ATTR("userName", "string", "\"immutable\"") "," ATTR(
		"active", "boolean",
		"\"readWrite\"") "," ATTR("externalId", "string",
					  "\"readWrite\"") "],\"meta\":{\"resourceType\":"
							   "\"Schema\","
							   "\"location\":\"" SCIM_V2
							   "/Schemas/" SCHEMA_USER "\"}}]}";

static void fixed(struct kw_api_answer *a, const char *text, const char *what)
{
	free(a->body);
	a->body = strdup(text);
	if (a->body == NULL)
		abort();
	a->len = strlen(text);
	a->status = 200;
	snprintf(a->outcome, sizeof(a->outcome), "SCIM %s", what);
}

/* ---- authentication and routing ---- */

static bool authenticated(const struct kw_scim_settings *s, const struct kw_api_request *rq)
{
	unsigned char got[SHA256_DIGEST_LENGTH];
	const char *h = rq->authorization, *t;
	bool ok;

	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return false;
	for (t = h + 7; *t == ' '; t++)
		;
	SHA256((const unsigned char *)t, strlen(t), got);
	ok = CRYPTO_memcmp(got, s->token_hash, sizeof(got)) == 0;
	OPENSSL_cleanse(got, sizeof(got));
	return ok;
}

void kw_scim_handle(struct kw_store *store, const struct kw_sso_config *sso, const char *idp,
		    const struct kw_scim_settings *s, const struct kw_api_request *rq, int64_t now,
		    struct kw_api_answer *a)
{
	const char *p = rq->path;
	bool get = strcmp(rq->method, "GET") == 0;

	a->scim = true;
	if (s == NULL || !s->enabled) {
		kw_scim_error(a, 404, NULL, "SCIM is not enabled ([scim] bearer_token_file)");
		return;
	}
	if (!authenticated(s, rq)) {
		a->auth_failed = true;
		kw_scim_error(a, 401, NULL, "a valid bearer token is required");
		snprintf(a->outcome, sizeof(a->outcome), "SCIM 401: %s bearer token",
			 rq->authorization == NULL ? "no" : "a wrong");
		return;
	}
	if (strncmp(p, SCIM_V2, strlen(SCIM_V2)) != 0) {
		kw_scim_error(a, 404, NULL, "not found");
		return;
	}
	p += strlen(SCIM_V2);
	if (strcmp(p, "/ServiceProviderConfig") == 0 || strcmp(p, "/Schemas") == 0 ||
	    strcmp(p, "/ResourceTypes") == 0) {
		if (!get) {
			snprintf(a->allow, sizeof(a->allow), "GET");
			kw_scim_error(a, 405, NULL, "method not allowed");
		} else
			fixed(a,
			      p[1] == 'S' && p[2] == 'e' ? service_provider_config
			      : p[1] == 'S'              ? schemas
							 : resource_types,
			      p + 1);
		return;
	}
	if (strcmp(p, "/Users") == 0) {
		if (get)
			users_list(store, sso, rq, a);
		else if (strcmp(rq->method, "POST") == 0)
			user_create(store, sso, idp, rq, now, a);
		else {
			snprintf(a->allow, sizeof(a->allow), "GET, POST");
			kw_scim_error(a, 405, NULL, "method not allowed");
		}
		return;
	}
	if (strncmp(p, "/Users/", 7) == 0 && p[7] != '\0' && strchr(p + 7, '/') == NULL) {
		user_one(store, sso, idp, rq, p + 7, now, a);
		return;
	}
	kw_scim_error(a, 404, NULL, "not found");
}
