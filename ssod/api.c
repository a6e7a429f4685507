/* api.c: the REST API of keywarden-ssod (see api.h): authentication, routing, the endpoints,
 * the one mapping of store errors to HTTP statuses and error codes, and the throttle of failed
 * authentications.
 *
 * Statuses and codes: 400 bad_request (malformed JSON, an unknown member or parameter, a bad
 * value the store refuses with -EINVAL, an unknown role); 401 unauthenticated (no or a bad
 * credential, a user who may not act: with WWW-Authenticate); 403 forbidden (the role rules:
 * -EPERM of a creation or a listing); 404 not_found (an unknown path, an unknown token or one
 * the actor may not see: a token of another user is "not found" for a non-Administrator, so
 * that its existence is not told); 405 method_not_allowed (with Allow); 409 conflict (already
 * deleted, the token limit reached); 413 too_large; 415 unsupported_media_type; 429
 * rate_limited (with Retry-After, from http.c); 500 internal; 503 busy (database locked). */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "api.h"
#include "error.h"
#include "log.h"
#include "text.h"
#include "timeutil.h"

#define API_V1 "/api/v1"
#define THROTTLE_SLOTS 1024

void kw_api_settings_load(const struct kw_config *cfg, struct kw_api_settings *s)
{
	s->max_body = (size_t)kw_config_uint(cfg, "api", "max_body");
	s->auth_failures = (unsigned)kw_config_uint(cfg, "api", "auth_failures");
	s->auth_window = (unsigned)kw_config_uint(cfg, "api", "auth_window");
	s->auth_block = (unsigned)kw_config_uint(cfg, "api", "auth_block");
	s->key_file = kw_config_key_file(cfg);
	s->session_lifetime = (unsigned)kw_config_uint(cfg, "sso", "session_lifetime");
	s->session_idle = (unsigned)kw_config_uint(cfg, "sso", "session_idle");
	s->reauth_minutes = (unsigned)kw_config_uint(cfg, "sso", "reauth_minutes");
	s->access_lifetime = (unsigned)kw_config_uint(cfg, "api", "access_lifetime");
	s->refresh_lifetime = (unsigned)kw_config_uint(cfg, "api", "refresh_lifetime");
	s->stale_days = (unsigned)kw_config_uint(cfg, "sso", "stale_days");
}

int kw_api_session_start(struct kw_store *store, struct kw_digest_key *key,
			 const struct kw_api_settings *s, const char *login, int64_t now,
			 char *set_cookie, const char **error_r)
{
	char text[KW_TOKEN_TEXT_MAX];
	uint64_t id;
	int ret = kw_store_session_start(store, key, login, now, s->session_lifetime, text, &id,
					 error_r);

	if (ret < 0)
		return ret;
	snprintf(set_cookie, KW_API_SET_COOKIE_MAX,
		 KW_API_COOKIE "=%s; Path=/; Max-Age=%u; Secure; HttpOnly; SameSite=Lax", text,
		 s->session_lifetime);
	OPENSSL_cleanse(text, sizeof(text));
	return 0;
}

void kw_api_request_free(struct kw_api_request **rqp)
{
	struct kw_api_request *rq = *rqp;

	if (rq == NULL)
		return;
	if (rq->authorization != NULL) {
		OPENSSL_cleanse(rq->authorization, strlen(rq->authorization));
		free(rq->authorization);
	}
	if (rq->body != NULL) {
		OPENSSL_cleanse(rq->body, rq->body_len);
		free(rq->body);
	}
	if (rq->cookie != NULL) {
		OPENSSL_cleanse(rq->cookie, strlen(rq->cookie));
		free(rq->cookie);
	}
	free(rq->csrf);
	free(rq->path);
	free(rq->content_type);
	for (size_t i = 0; i < rq->n_params; i++) {
		free(rq->params[i].name);
		free(rq->params[i].value);
	}
	free(rq);
	*rqp = NULL;
}

void kw_api_answer_clear(struct kw_api_answer *a)
{
	if (a->body != NULL && a->secret)
		OPENSSL_cleanse(a->body, a->len);
	free(a->body);
	memset(a, 0, sizeof(*a));
}

static void outcome(struct kw_api_answer *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void outcome(struct kw_api_answer *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->outcome, sizeof(a->outcome), fmt, ap);
	va_end(ap);
}

void kw_api_error(struct kw_api_answer *a, int status, const char *code, const char *fmt, ...)
{
	char message[KW_ERROR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	kw_api_answer_clear(a);
	a->status = status;
	a->body = kw_api_json_error(code, message, &a->len);
	a->www_authenticate = status == 401;
	outcome(a, "%s: %s", code, message);
}

/* The one mapping of a store error to an answer (see the top of this file). */
static void store_error(struct kw_api_answer *a, int ret, const char *error)
{
	if (error == NULL)
		error = "error";
	switch (ret) {
	case -EINVAL:
		kw_api_error(a, 400, "bad_request", "%s", error);
		break;
	case -ENOENT:
		kw_api_error(a, 404, "not_found", "%s", error);
		break;
	case -EPERM:
		kw_api_error(a, 403, "forbidden", "%s", error);
		break;
	case -EEXIST:
	case -EALREADY:
	case -EDQUOT:
		kw_api_error(a, 409, "conflict", "%s", error);
		break;
	case -EBUSY:
		kw_api_error(a, 503, "busy", "%s", error);
		break;
	default:
		kw_api_error(a, 500, "internal", "%s", error);
		break;
	}
}

static void json_answer(struct kw_api_answer *a, int status, char *body, size_t len)
{
	a->status = status;
	a->body = body;
	a->len = len;
}

static const char *param(const struct kw_api_request *rq, const char *name)
{
	for (size_t i = 0; i < rq->n_params; i++) {
		if (strcmp(rq->params[i].name, name) == 0)
			return rq->params[i].value;
	}
	return NULL;
}

/* Query parameters: only the allowed ones, each once, as text text.h accepts. */
static bool params_ok(const struct kw_api_request *rq, const char *const *allowed,
		      struct kw_api_answer *a)
{
	const char *why;

	if (rq->too_many_params) {
		kw_api_error(a, 400, "bad_request", "too many query parameters");
		return false;
	}
	for (size_t i = 0; i < rq->n_params; i++) {
		bool known = false;

		for (size_t k = 0; allowed != NULL && allowed[k] != NULL; k++)
			known |= strcmp(rq->params[i].name, allowed[k]) == 0;
		if (!known) {
			kw_api_error(a, 400, "bad_request", "unknown query parameter");
			return false;
		}
		for (size_t k = 0; k < i; k++) {
			if (strcmp(rq->params[k].name, rq->params[i].name) == 0) {
				kw_api_error(a, 400, "bad_request",
					     "query parameter %s given twice", rq->params[i].name);
				return false;
			}
		}
		if (kw_text_check(rq->params[i].value, KW_LOGIN_MAX, 0, &why) < 0) {
			kw_api_error(a, 400, "bad_request", "query parameter %s: %s",
				     rq->params[i].name, why != NULL ? why : "too long");
			return false;
		}
	}
	return true;
}

/* ---- authentication ---- */

/* Who acts, and with which credential. */
struct actor {
	struct kw_token_auth t; /* login, account, role (for a session: the user's) */
	bool session;
	struct kw_session_auth s;
	bool bearer;     /* an access token */
	uint64_t family; /* its family */
};

/* The value of the session cookie in a Cookie header, or NULL; *len_r its length. */
static const char *session_cookie(const char *header, size_t *len_r)
{
	static const char name[] = KW_API_COOKIE "=";
	const char *p = header;

	while (p != NULL && *p != '\0') {
		while (*p == ' ' || *p == ';')
			p++;
		if (strncmp(p, name, sizeof(name) - 1) == 0) {
			const char *v = p + sizeof(name) - 1;
			*len_r = strcspn(v, ";");
			return v;
		}
		p = strchr(p, ';');
	}
	return NULL;
}

static int authenticate_session(struct kw_store *store, struct kw_digest_key *key,
				const struct kw_api_settings *settings, const char *cookie,
				size_t len, int64_t now, struct actor *who, struct kw_api_answer *a)
{
	const char *why = NULL, *error = NULL;
	struct kw_user u;
	int ret = kw_store_session_auth(store, key, cookie, len, now, settings->session_idle,
					&who->s, &why, &error);

	if (ret == -EACCES) {
		kw_api_error(a, 401, "unauthenticated",
			     "the session is not valid (%s): sign in again", why);
		outcome(a, "unauthenticated: %s", error);
		a->auth_failed = strcmp(why, "invalid") == 0;
		return ret;
	}
	if (ret == 0)
		ret = kw_store_user_get(store, who->s.login, &u, &error);
	if (ret < 0) {
		store_error(a, ret, error);
		return ret;
	}
	who->session = true;
	snprintf(who->t.login, sizeof(who->t.login), "%s", u.login);
	snprintf(who->t.account, sizeof(who->t.account), "%s", u.account);
	who->t.role = u.role;
	who->t.user_role = u.role;
	return 0;
}

/* Who acts: the credential of the Authorization header, else the session cookie. 0, or an
 * answer written (401, 500, 503). */
static int authenticate(struct kw_store *store, struct kw_digest_key *key,
			const struct kw_api_settings *settings, const struct kw_api_request *rq,
			int64_t now, struct actor *who, struct kw_api_answer *a)
{
	const char *h = rq->authorization, *why = NULL, *error = NULL, *cookie;
	size_t len = 0;
	int ret;

	if (h == NULL) {
		cookie = rq->cookie != NULL ? session_cookie(rq->cookie, &len) : NULL;
		if (cookie != NULL)
			return authenticate_session(store, key, settings, cookie, len, now, who, a);
		kw_api_error(a, 401, "unauthenticated",
			     "send Authorization: APIKey <id>$<secret>, or sign in");
		return -EACCES;
	}
	while (*h == ' ' || *h == '\t')
		h++;
	if (strncasecmp(h, "Bearer", 6) == 0 && (h[6] == ' ' || h[6] == '\t')) {
		h += 7;
		while (*h == ' ' || *h == '\t')
			h++;
		ret = kw_store_access_token_auth(store, key, h, strlen(h), now, &who->t,
						 &who->family, &why, &error);
		if (ret == -EACCES) {
			kw_api_error(a, 401, "unauthenticated",
				     "the access token is not valid (%s)",
				     strcmp(why, "revoked") == 0 ? "ended" : why);
			outcome(a, "unauthenticated: %s", error);
			a->auth_failed = strcmp(why, "invalid") == 0;
			return ret;
		}
		if (ret < 0) {
			store_error(a, ret, error);
			return ret;
		}
		who->bearer = true;
		return 0;
	}
	if (strncasecmp(h, "APIKey", 6) != 0 || (h[6] != ' ' && h[6] != '\t')) {
		kw_api_error(a, 401, "unauthenticated",
			     "unsupported authorization scheme: send APIKey <id>$<secret> or "
			     "Bearer <access token>");
		a->auth_failed = true;
		return -EACCES;
	}
	ret = kw_store_token_authenticate(store, key, h, strlen(h), now, rq->ip, &who->t, &why,
					  &error);
	if (ret == -EACCES) {
		/* the log line says why (never the secret); the client learns no more than the
		 * validator tells a service, and nothing about a revoked or disabled user */
		kw_api_error(a, 401, "unauthenticated", "the API key is not valid (%s)",
			     strcmp(why, "revoked") == 0 ? "disabled" : why);
		outcome(a, "unauthenticated: %s", error);
		a->auth_failed = true;
		return ret;
	}
	if (ret < 0) {
		store_error(a, ret, error);
		return ret;
	}
	return 0;
}

/* A state-changing request made with the session cookie must prove it comes from a page of
 * this site: X-CSRF-Token equal to the session's csrf_token (compared in constant time). */
static bool csrf_ok(const struct actor *who, const struct kw_api_request *rq,
		    struct kw_api_answer *a)
{
	size_t n = strlen(who->s.csrf);

	if (!who->session || strcmp(rq->method, "GET") == 0)
		return true;
	if (rq->csrf != NULL && strlen(rq->csrf) == n && n > 0 &&
	    CRYPTO_memcmp(rq->csrf, who->s.csrf, n) == 0)
		return true;
	kw_api_error(a, 403, "csrf", "send X-CSRF-Token with the csrf_token of GET /api/v1/me");
	return false;
}

/* Makes the store act as the authenticated user: capped role, audit context. */
static int act(struct kw_store *store, const struct actor *who, const struct kw_api_request *rq,
	       struct kw_api_answer *a)
{
	char context[KW_STORE_AUDIT_CONTEXT_MAX], ip[sizeof(rq->ip)], cred[48];
	struct kw_store_acting acting = { .role_cap = who->t.role.name, .audit_context = context };
	const char *error = NULL;
	int ret;

	/* the address holds digits, dots, colons and letters only (getnameinfo NUMERICHOST) */
	snprintf(ip, sizeof(ip), "%s", rq->ip);
	for (char *p = ip; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
			*p = '?';
	}
	if (who->session)
		snprintf(cred, sizeof(cred), "session:%llu", (unsigned long long)who->s.session_id);
	else if (who->bearer)
		snprintf(cred, sizeof(cred), "access:%llu", (unsigned long long)who->t.token_id);
	else
		snprintf(cred, sizeof(cred), "token:%llu", (unsigned long long)who->t.token_id);
	snprintf(context, sizeof(context),
		 "\"via\":\"api\",\"credential\":\"%s\",\"acting_role\":\"%s\",\"remote\":\"%s\"",
		 cred, who->t.role.name, ip);
	ret = kw_store_act(store, &acting, &error);
	if (ret < 0)
		store_error(a, ret, error);
	return ret;
}

/* ---- the endpoints ---- */

static void get_me(const struct actor *who, struct kw_api_answer *a)
{
	json_answer(a, 200, NULL, 0);
	a->body = kw_api_json_me(&who->t,
				 who->session  ? "session"
				 : who->bearer ? "bearer"
					       : "apikey",
				 who->session ? who->s.csrf : NULL, &a->len);
	outcome(a, "me: %s", who->t.login);
}

/* POST /api/v1/auth/logout with the session cookie: the session ends, the cookie is cleared. */
static void logout(struct kw_store *store, const struct actor *who, int64_t now,
		   struct kw_api_answer *a)
{
	const char *error = NULL;
	int ret;

	if (who->bearer) {
		ret = kw_store_session_tokens_end(store, who->family, who->t.login, now, &error);
		if (ret < 0) {
			store_error(a, ret, error);
			return;
		}
		json_answer(a, 204, NULL, 0);
		outcome(a, "token family %llu of %s ended (logout)",
			(unsigned long long)who->family, who->t.login);
		return;
	}
	if (!who->session) {
		kw_api_error(a, 400, "bad_request",
			     "logout ends a session or an access token: send the cookie or "
			     "Authorization: Bearer");
		return;
	}
	ret = kw_store_session_end(store, who->s.session_id, who->t.login, now, &error);
	if (ret < 0) {
		store_error(a, ret, error);
		return;
	}
	json_answer(a, 204, NULL, 0);
	snprintf(a->set_cookie, sizeof(a->set_cookie),
		 KW_API_COOKIE "=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax");
	outcome(a, "session %llu of %s ended (logout)", (unsigned long long)who->s.session_id,
		who->t.login);
}

struct list_ctx {
	struct kw_api_json_list *list;
	int64_t now;
	unsigned n;
};

static int list_one(const struct kw_token_info *t, void *p)
{
	struct list_ctx *ctx = p;

	ctx->n++;
	return kw_api_json_list_add(&ctx->list, t, ctx->now);
}

static void list_tokens(struct kw_store *store, const struct kw_token_auth *auth,
			const struct kw_api_request *rq, int64_t now, struct kw_api_answer *a)
{
	static const char *const allowed[] = { "issued_by", "role", "status", NULL };
	struct kw_token_filter filter = { .status = -1 };
	struct list_ctx ctx = { .now = now };
	const char *status = param(rq, "status"), *error = NULL;
	int ret;

	if (!params_ok(rq, allowed, a))
		return;
	if (status != NULL) {
		enum kw_token_status st;
		if (kw_token_status_parse(status, &st) < 0) {
			kw_api_error(a, 400, "bad_request",
				     "status must be active, expired, deleted or disabled");
			return;
		}
		filter.status = (int)st;
	}
	filter.issued_by = param(rq, "issued_by");
	filter.role = param(rq, "role");
	ret = kw_store_token_list(store, auth->login, &filter, now, list_one, &ctx, &error);
	if (ret < 0) {
		free(kw_api_json_list_end(&ctx.list, &a->len));
		a->len = 0;
		/* a filter naming an unknown role or user is a bad request, not a missing page */
		if (ret == -ENOENT)
			kw_api_error(a, 400, "bad_request", "%s", error);
		else if (ret == -ENOMEM)
			kw_api_error(a, 500, "internal", "out of memory");
		else
			store_error(a, ret, error);
		return;
	}
	json_answer(a, 200, NULL, 0);
	a->body = kw_api_json_list_end(&ctx.list, &a->len);
	outcome(a, "%u token(s) listed for %s", ctx.n, auth->login);
}

static int parse_expires(const char *text, int64_t now, int64_t *expires_r, struct kw_api_answer *a)
{
	int64_t t;

	if (text == NULL || strcmp(text, "never") == 0) {
		*expires_r = KW_NEVER;
		return 0;
	}
	if (kw_time_parse(text, 1, &t) < 0) {
		kw_api_error(a, 400, "bad_request",
			     "expires must be \"never\", a date (YYYY-MM-DD) or an RFC 3339 time");
		return -EINVAL;
	}
	if (t <= now) {
		kw_api_error(a, 400, "bad_request", "expires lies in the past");
		return -EINVAL;
	}
	*expires_r = t;
	return 0;
}

static bool is_json(const char *type)
{
	static const char want[] = "application/json";
	size_t n = sizeof(want) - 1;

	return type != NULL && strncasecmp(type, want, n) == 0 &&
	       (type[n] == '\0' || type[n] == ';' || type[n] == ' ');
}

static void create_token(struct kw_store *store, struct kw_digest_key *key,
			 const struct kw_api_settings *settings, const struct actor *who,
			 const struct kw_api_request *rq, int64_t now, struct kw_api_answer *a)
{
	const struct kw_token_auth *auth = &who->t;
	struct kw_api_create c;
	struct kw_token_info t;
	char text[KW_TOKEN_TEXT_MAX], *obj = NULL, *body;
	const char *why = NULL, *error = NULL;
	int64_t expires;
	uint64_t id;
	size_t len, tlen;
	int ret;

	if (!params_ok(rq, NULL, a))
		return;
	if (!is_json(rq->content_type)) {
		kw_api_error(a, 415, "unsupported_media_type",
			     "send Content-Type: application/json");
		return;
	}
	/* sudo mode: a permanent token is made only from a recent sign-in (a session's, or that
	 * of the session an access token came from) */
	if ((who->session || who->bearer) &&
	    now - (who->session ? who->s.created : who->t.signed_in) >
		    (int64_t)settings->reauth_minutes * 60) {
		kw_api_error(a, 401, "reauthentication_required",
			     "creating a permanent token needs a sign-in within the last %u "
			     "minutes: sign in again at the identity provider",
			     settings->reauth_minutes);
		return;
	}
	if (kw_api_json_create(rq->body, rq->body_len, &c, &why) < 0) {
		kw_api_error(a, 400, "bad_request", "%s", why);
		return;
	}
	if (parse_expires(c.expires, now, &expires, a) < 0)
		goto out;
	ret = kw_store_token_create(store, key, auth->login, c.name,
				    c.description != NULL ? c.description : "", c.role, expires,
				    &id, text, &error);
	if (ret == -ENOENT) {
		kw_api_error(a, 400, "bad_request", "%s", error); /* an unknown role */
		goto out;
	}
	if (ret < 0) {
		store_error(a, ret, error);
		goto out;
	}
	ret = kw_store_token_get(store, auth->login, id, now, &t, &error);
	if (ret < 0) {
		OPENSSL_cleanse(text, sizeof(text));
		store_error(a, ret, error);
		goto out;
	}
	/* {...fields...,"token":"<id>$<secret>"}: the secret is added here, outside json-c,
	 * in a buffer that is wiped before it is freed (the text is [0-9]+$[A-Za-z0-9_-]+) */
	obj = kw_api_json_token(&t, now, &len);
	tlen = strlen(text);
	body = malloc(len + tlen + 16);
	if (body == NULL)
		abort();
	memcpy(body, obj, len - 1);
	a->len = (size_t)sprintf(body + len - 1, ",\"token\":\"%s\"}", text) + len - 1;
	OPENSSL_cleanse(text, sizeof(text));
	a->status = 201;
	a->body = body;
	a->secret = true;
	snprintf(a->location, sizeof(a->location), API_V1 "/tokens/%llu", (unsigned long long)id);
	outcome(a, "token %llu created by %s", (unsigned long long)id, auth->login);
out:
	free(obj);
	kw_api_create_clear(&c);
}

/* A store error about token id: another user's token is not visible to a non-Administrator
 * (404, as if it did not exist: the API does not tell that it exists); the rest as usual. */
static void token_error(struct kw_api_answer *a, int ret, const char *error, uint64_t id)
{
	if (ret == -EPERM)
		kw_api_error(a, 404, "not_found", "no token %llu visible to you",
			     (unsigned long long)id);
	else
		store_error(a, ret, error);
}

static void get_token(struct kw_store *store, const struct kw_token_auth *auth, uint64_t id,
		      int64_t now, struct kw_api_answer *a)
{
	struct kw_token_info t;
	const char *error = NULL;
	int ret = kw_store_token_get(store, auth->login, id, now, &t, &error);

	if (ret < 0) {
		token_error(a, ret, error, id);
		return;
	}
	json_answer(a, 200, NULL, 0);
	a->body = kw_api_json_token(&t, now, &a->len);
	outcome(a, "token %llu shown to %s", (unsigned long long)id, auth->login);
}

static void delete_token(struct kw_store *store, const struct kw_token_auth *auth, uint64_t id,
			 struct kw_api_answer *a)
{
	const char *error = NULL;
	int ret = kw_store_token_delete(store, auth->login, id, &error); /* reserve on full disk */

	if (ret < 0) {
		token_error(a, ret, error, id);
		return;
	}
	json_answer(a, 204, NULL, 0);
	outcome(a, "token %llu deleted by %s", (unsigned long long)id, auth->login);
}

/* The answer of a new pair: {"access", "access_expires", "refresh", "refresh_expires",
 * "token_type"} in a buffer wiped before it is freed (no secret passes through json-c; the
 * texts are [0-9]+$[A-Za-z0-9_-]+ and RFC 3339 instants). */
static void pair_answer(struct kw_api_answer *a, int status, const struct kw_session_pair *p)
{
	char ae[KW_TIME_TEXT_MAX], re[KW_TIME_TEXT_MAX];
	size_t size = 2 * KW_TOKEN_TEXT_MAX + 2 * KW_TIME_TEXT_MAX + 128;
	char *body = malloc(size);

	if (body == NULL)
		abort();
	kw_time_format(p->access_expires, ae);
	kw_time_format(p->refresh_expires, re);
	a->len = (size_t)snprintf(body, size,
				  "{\"access\":\"%s\",\"access_expires\":\"%s\",\"refresh\":"
				  "\"%s\",\"refresh_expires\":\"%s\",\"token_type\":\"Bearer\"}",
				  p->access, ae, p->refresh, re);
	a->status = status;
	a->body = body;
	a->secret = true;
}

/* POST /api/v1/auth/tokens: a new pair for a signed-in session. */
static void issue_tokens(struct kw_store *store, struct kw_digest_key *key,
			 const struct kw_api_settings *s, const struct actor *who, int64_t now,
			 struct kw_api_answer *a)
{
	struct kw_session_pair p;
	const char *error = NULL;
	int ret;

	if (!who->session) {
		kw_api_error(a, 403, "forbidden",
			     "access tokens are issued to a signed-in session (the cookie of "
			     "/saml/acs)");
		return;
	}
	ret = kw_store_session_tokens_issue(store, key, who->s.session_id, now, s->access_lifetime,
					    s->refresh_lifetime, &p, &error);
	if (ret == -EACCES) {
		kw_api_error(a, 401, "unauthenticated", "%s", error);
		return;
	}
	if (ret < 0) {
		store_error(a, ret, error);
		return;
	}
	pair_answer(a, 201, &p);
	outcome(a, "token family %llu issued to %s", (unsigned long long)p.family, who->t.login);
	OPENSSL_cleanse(&p, sizeof(p));
}

/* POST /api/v1/auth/refresh: the refresh token is the credential. */
static void refresh_tokens(struct kw_store *store, struct kw_digest_key *key,
			   const struct kw_api_settings *s, const struct kw_api_request *rq,
			   int64_t now, struct kw_api_answer *a)
{
	struct kw_session_pair p;
	const char *why = NULL, *error = NULL;
	char *text = NULL;
	int ret;

	if (!params_ok(rq, NULL, a))
		return;
	if (!is_json(rq->content_type)) {
		kw_api_error(a, 415, "unsupported_media_type",
			     "send Content-Type: application/json");
		return;
	}
	if (kw_api_json_refresh(rq->body, rq->body_len, &text, &why) < 0) {
		kw_api_error(a, 400, "bad_request", "%s", why);
		return;
	}
	ret = kw_store_session_tokens_refresh(store, key, text, strlen(text), now,
					      s->access_lifetime, s->refresh_lifetime, &p, &why,
					      &error);
	OPENSSL_cleanse(text, strlen(text));
	free(text);
	if (ret == -EACCES) {
		kw_api_error(
			a, 401, "unauthenticated", "the refresh token is not valid (%s)%s", why,
			strcmp(why, "reused") == 0
				? ": it was used before, so all tokens of its family have ended"
				: "");
		outcome(a, "refresh refused: %s", error);
		a->auth_failed = strcmp(why, "invalid") == 0;
		return;
	}
	if (ret < 0) {
		store_error(a, ret, error);
		return;
	}
	pair_answer(a, 200, &p);
	outcome(a, "token family %llu refreshed", (unsigned long long)p.family);
	OPENSSL_cleanse(&p, sizeof(p));
}

/* ---- routing ---- */

enum route { R_NONE, R_ME, R_TOKENS, R_TOKEN, R_LOGOUT, R_AUTH_TOKENS, R_REFRESH };

static enum route route_of(const char *path, uint64_t *id_r, bool *bad_id_r)
{
	static const char tokens[] = API_V1 "/tokens";

	*bad_id_r = false;
	if (strcmp(path, API_V1 "/me") == 0)
		return R_ME;
	if (strcmp(path, tokens) == 0)
		return R_TOKENS;
	if (strcmp(path, API_V1 "/auth/logout") == 0)
		return R_LOGOUT;
	if (strcmp(path, API_V1 "/auth/tokens") == 0)
		return R_AUTH_TOKENS;
	if (strcmp(path, API_V1 "/auth/refresh") == 0)
		return R_REFRESH;
	if (strncmp(path, tokens, sizeof(tokens) - 1) == 0 && path[sizeof(tokens) - 1] == '/') {
		if (kw_token_id_parse(path + sizeof(tokens), id_r) < 0)
			*bad_id_r = true;
		return R_TOKEN;
	}
	return R_NONE;
}

void kw_api_handle(struct kw_store *store, struct kw_digest_key *key,
		   const struct kw_api_settings *s, const struct kw_api_request *rq, int64_t now,
		   struct kw_api_answer *a)
{
	static const char *const allows[] = {
		[R_ME] = "GET",      [R_TOKENS] = "GET, POST", [R_TOKEN] = "GET, DELETE",
		[R_LOGOUT] = "POST", [R_AUTH_TOKENS] = "POST", [R_REFRESH] = "POST",
	};
	struct actor who;
	const char *m = rq->method;
	uint64_t id = 0;
	bool bad_id;
	enum route r = route_of(rq->path, &id, &bad_id);

	memset(a, 0, sizeof(*a));
	memset(&who, 0, sizeof(who));
	if (r == R_NONE) {
		kw_api_error(a, 404, "not_found", "no such API path");
		return;
	}
	if (strstr(allows[r], m) == NULL ||
	    (strcmp(m, "GET") != 0 && strcmp(m, "POST") != 0 && strcmp(m, "DELETE") != 0)) {
		kw_api_error(a, 405, "method_not_allowed", "allowed: %s", allows[r]);
		snprintf(a->allow, sizeof(a->allow), "%s", allows[r]);
		return;
	}
	if (r == R_REFRESH) {
		refresh_tokens(store, key, s, rq, now, a);
		return;
	}
	if (authenticate(store, key, s, rq, now, &who, a) < 0)
		goto out;
	if (!csrf_ok(&who, rq, a) || act(store, &who, rq, a) < 0)
		goto out;
	if (r == R_TOKEN && bad_id) {
		kw_api_error(a, 404, "not_found", "not a token id (a number such as 7711)");
		goto out;
	}
	if (r != R_TOKENS || strcmp(m, "GET") != 0) {
		if (r != R_TOKENS && !params_ok(rq, NULL, a))
			goto out;
	}
	if (r == R_ME)
		get_me(&who, a);
	else if (r == R_LOGOUT)
		logout(store, &who, now, a);
	else if (r == R_AUTH_TOKENS)
		issue_tokens(store, key, s, &who, now, a);
	else if (r == R_TOKENS && strcmp(m, "GET") == 0)
		list_tokens(store, &who.t, rq, now, a);
	else if (r == R_TOKENS)
		create_token(store, key, s, &who, rq, now, a);
	else if (strcmp(m, "GET") == 0)
		get_token(store, &who.t, id, now, a);
	else
		delete_token(store, &who.t, id, a);
out:
	(void)kw_store_act(store, NULL, NULL);
	OPENSSL_cleanse(&who, sizeof(who));
}

/* ---- the pages' entry (page.c) ---- */

int kw_api_begin(struct kw_store *store, struct kw_digest_key *key, const struct kw_api_settings *s,
		 const struct kw_api_request *rq, int64_t now, struct kw_api_actor *actor_r,
		 struct kw_api_answer *a)
{
	struct actor who;
	int ret = -EACCES;

	memset(&who, 0, sizeof(who));
	if (authenticate(store, key, s, rq, now, &who, a) < 0)
		goto out;
	if (!csrf_ok(&who, rq, a))
		goto out;
	ret = act(store, &who, rq, a);
	if (ret < 0)
		goto out;
	memset(actor_r, 0, sizeof(*actor_r));
	snprintf(actor_r->login, sizeof(actor_r->login), "%s", who.t.login);
	snprintf(actor_r->account, sizeof(actor_r->account), "%s", who.t.account);
	actor_r->role = who.t.role;
	if (who.session)
		snprintf(actor_r->csrf, sizeof(actor_r->csrf), "%s", who.s.csrf);
	ret = 0;
out:
	OPENSSL_cleanse(&who, sizeof(who));
	return ret;
}

void kw_api_end(struct kw_store *store)
{
	(void)kw_store_act(store, NULL, NULL);
}

/* ---- the throttle ---- */

struct slot {
	char ip[64]; /* "" when free */
	unsigned failures;
	int64_t window_start, blocked_until, last; /* ms */
};

struct kw_api_throttle {
	const struct kw_api_settings *s;
	struct slot slots[THROTTLE_SLOTS];
};

struct kw_api_throttle *kw_api_throttle_new(const struct kw_api_settings *s)
{
	struct kw_api_throttle *t = calloc(1, sizeof(*t));

	if (t == NULL)
		abort();
	t->s = s;
	return t;
}

void kw_api_throttle_free(struct kw_api_throttle **t)
{
	free(*t);
	*t = NULL;
}

static struct slot *find(struct kw_api_throttle *t, const char *ip)
{
	for (size_t i = 0; i < THROTTLE_SLOTS; i++) {
		if (strcmp(t->slots[i].ip, ip) == 0)
			return &t->slots[i];
	}
	return NULL;
}

unsigned kw_api_throttle_blocked(struct kw_api_throttle *t, const char *ip, int64_t now_ms)
{
	struct slot *sl = find(t, ip);

	if (sl == NULL || sl->blocked_until <= now_ms)
		return 0;
	return (unsigned)((sl->blocked_until - now_ms + 999) / 1000);
}

/* A client's failures within auth_window; the table keeps the clients seen last (a full table
 * reuses the slot of the client whose last failure is the oldest, never a blocked one while
 * another is free of a block). */
void kw_api_throttle_failed(struct kw_api_throttle *t, const char *ip, int64_t now_ms)
{
	struct slot *sl = find(t, ip), *victim = NULL;

	if (t->s->auth_failures == 0)
		return;
	if (sl == NULL) {
		for (size_t i = 0; i < THROTTLE_SLOTS; i++) {
			struct slot *c = &t->slots[i];
			bool c_blocked = c->blocked_until > now_ms;

			if (c->ip[0] == '\0') {
				victim = c;
				break;
			}
			if (victim == NULL || (victim->blocked_until > now_ms && !c_blocked) ||
			    ((victim->blocked_until > now_ms) == c_blocked &&
			     c->last < victim->last))
				victim = c;
		}
		sl = victim;
		memset(sl, 0, sizeof(*sl));
		snprintf(sl->ip, sizeof(sl->ip), "%s", ip);
	}
	sl->last = now_ms;
	if (now_ms - sl->window_start >= (int64_t)t->s->auth_window * 1000) {
		sl->window_start = now_ms;
		sl->failures = 0;
	}
	if (++sl->failures >= t->s->auth_failures) {
		sl->blocked_until = now_ms + (int64_t)t->s->auth_block * 1000;
		sl->failures = 0;
		sl->window_start = now_ms;
		kw_warning("client %s: %u failed API authentications within %u s: blocked for %u s",
			   ip, t->s->auth_failures, t->s->auth_window, t->s->auth_block);
	}
}
