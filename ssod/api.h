/* api.h: the REST API of keywarden-ssod, /api/v1/ (see doc/openapi.yaml and keywarden-ssod(8)).
 *
 *   GET    /api/v1/me               who acts: login, account, role
 *   GET    /api/v1/tokens           ?issued_by=LOGIN&role=ROLE&status=active|expired|...
 *   POST   /api/v1/tokens           {"name", "description"?, "role", "expires"?} -> 201
 *   GET    /api/v1/tokens/{id}
 *   DELETE /api/v1/tokens/{id}      -> 204
 *
 * A request acts as someone: `Authorization: APIKey <id>$<secret>` acts as the token's issuer
 * with the lower of the token's role and the issuer's current role (kw_store_token_authenticate()
 * says who may act). Every rule and audit event is the store's (lib/store.h), as for the CLI;
 * the audit events of a change made here carry "via":"api", the credential and the client.
 *
 * Errors are JSON {"error": CODE, "message": TEXT}; the mapping of store errors to HTTP
 * statuses and codes lives in api.c only. Messages never hold a secret.
 *
 * Threads: kw_api_handle() runs in one of ssod's workers, with that worker's store and digest
 * key (neither is thread-safe); it sees no libmicrohttpd object (http.c copies what it needs
 * into struct kw_api_request). The throttle of failed authentications (struct kw_api_throttle)
 * belongs to the HTTP thread, which alone reads and updates it: no lock. */
#ifndef KW_SSOD_API_H
#define KW_SSOD_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "store.h"
#include "token.h"

#define KW_API_PREFIX "/api/"
#define KW_API_MAX_PARAMS 8

/* [api] of keywarden.conf. */
struct kw_api_settings {
	size_t max_body;        /* bytes of a request body */
	unsigned auth_failures; /* failed authentications of one client within auth_window... */
	unsigned auth_window;   /* ...seconds that block it for auth_block seconds (0: never) */
	unsigned auth_block;
	const char *key_file; /* the digest key (points into the config) */
	/* [sso] session_lifetime, session_idle (seconds), reauth_minutes */
	unsigned session_lifetime, session_idle, reauth_minutes;
	unsigned access_lifetime, refresh_lifetime; /* [api]: seconds */
	unsigned stale_days;                        /* [sso]: for the pages' SSO review */
};

/* The session cookie (a __Host- cookie: Secure, Path=/, no Domain). */
#define KW_API_COOKIE "__Host-kw_session"
/* The longest Set-Cookie value kw_api_session_start() writes. */
#define KW_API_SET_COOKIE_MAX 192

void kw_api_settings_load(const struct kw_config *cfg, struct kw_api_settings *s);

struct kw_api_param {
	char *name, *value;
};

/* What a worker needs of one request; owned by whoever holds it, freed by kw_api_request_free()
 * (which wipes the Authorization header). */
struct kw_api_request {
	char method[8];
	char *path;          /* the URL path, /api/... */
	char *authorization; /* NULL when absent */
	char *content_type;  /* NULL when absent */
	char *cookie;        /* the Cookie header, NULL when absent; wiped when freed */
	char *csrf;          /* X-CSRF-Token, NULL when absent */
	char *body;          /* NUL-terminated; NULL when empty */
	size_t body_len;
	struct kw_api_param params[KW_API_MAX_PARAMS];
	size_t n_params;
	bool too_many_params;
	char ip[64]; /* the client's address, without port ("unix" for a Unix socket) */
};

void kw_api_request_free(struct kw_api_request **rq);

/* The answer: status, JSON body (NULL for 204), and the headers that go with it. */
struct kw_api_answer {
	int status;
	char *body; /* malloc'd; wiped before it is freed when it holds a new token's secret */
	size_t len;
	bool secret;
	bool www_authenticate; /* 401: send WWW-Authenticate */
	bool auth_failed;      /* a failed authentication: the throttle counts it */
	char allow[32];        /* 405: the Allow header */
	char location[64];     /* 201: the Location header */
	char set_cookie[KW_API_SET_COOKIE_MAX]; /* logout: the cookie cleared */
	char outcome[256];        /* for the log line: what happened, never a secret */
	const char *content_type; /* static; NULL: application/json (the pages: text/html) */
	bool page;                /* a page (page.c): its Content-Security-Policy */
	bool cacheable;           /* the stylesheet and the script: may be cached */
	bool scim; /* a SCIM answer (scim.h): application/scim+json, Bearer challenge */
};

void kw_api_answer_clear(struct kw_api_answer *a);

/* Answers one request, with the worker's store and key. Never fails: everything is in *a. */
void kw_api_handle(struct kw_store *store, struct kw_digest_key *key,
		   const struct kw_api_settings *s, const struct kw_api_request *rq, int64_t now,
		   struct kw_api_answer *a);

/* After an accepted Response for `login` (a worker, after kw_ssod_login()): gives the SSO
 * session it opened a cookie and writes the Set-Cookie header value into set_cookie
 * (KW_API_SET_COOKIE_MAX bytes; the caller wipes it). 0, or a negative errno-style code with
 * error_r (no session: the page says who signed in, without a cookie). */
int kw_api_session_start(struct kw_store *store, struct kw_digest_key *key,
			 const struct kw_api_settings *s, const char *login, int64_t now,
			 char *set_cookie, const char **error_r);

/* ---- for the pages (page.c), a second face of the same operations ---- */

/* Who acts, as the API authenticates a request (the session cookie, or a credential). */
struct kw_api_actor {
	char login[KW_LOGIN_MAX + 1];
	char account[KW_ACCOUNT_MAX + 1];
	struct kw_role role;             /* the role the request acts with */
	char csrf[KW_CSRF_TEXT_LEN + 1]; /* the session's CSRF token, "" without a session */
};

/* Authenticates rq as kw_api_handle() does, checks the CSRF token of a change (rq->csrf) as it
 * does, and makes the store act as that user (role cap, audit context) until kw_api_end().
 * 0, or a negative errno-style code with the answer written in *a (401, 403 csrf, 5xx). */
int kw_api_begin(struct kw_store *store, struct kw_digest_key *key, const struct kw_api_settings *s,
		 const struct kw_api_request *rq, int64_t now, struct kw_api_actor *actor_r,
		 struct kw_api_answer *a);
void kw_api_end(struct kw_store *store);

/* An error answer of the API's form, from any thread: {"error": code, "message": ...}. */
void kw_api_error(struct kw_api_answer *a, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- the throttle of failed authentications, per client address (HTTP thread only) ---- */
struct kw_api_throttle;

struct kw_api_throttle *kw_api_throttle_new(const struct kw_api_settings *s);
void kw_api_throttle_free(struct kw_api_throttle **t);
/* Seconds the client stays blocked (0: not blocked). */
unsigned kw_api_throttle_blocked(struct kw_api_throttle *t, const char *ip, int64_t now_ms);
void kw_api_throttle_failed(struct kw_api_throttle *t, const char *ip, int64_t now_ms);

/* ---- JSON (api_json.c, json-c) ---- */
struct kw_api_create {
	char *name, *description, *role, *expires; /* description and expires may be NULL */
};

/* Parses a POST /api/v1/tokens body strictly: an object of these string members only, valid
 * UTF-8, no NUL, bounded depth. 0, or -EINVAL with *why_r (a static string). The caller frees
 * the strings with kw_api_create_clear(). */
int kw_api_json_create(const char *body, size_t len, struct kw_api_create *c, const char **why_r);
void kw_api_create_clear(struct kw_api_create *c);
/* POST /api/v1/auth/refresh: {"refresh": TEXT}, strictly; *refresh_r malloc'd (the caller
 * wipes and frees it). 0, or -EINVAL with *why_r. */
int kw_api_json_refresh(const char *body, size_t len, char **refresh_r, const char **why_r);
/* A token as `keywarden token list --json` shows it; malloc'd text (*len_r bytes). */
char *kw_api_json_token(const struct kw_token_info *t, int64_t now, size_t *len_r);
/* Adds one token to a list being built (list NULL: starts it); kw_api_json_list_end() returns
 * the text of the whole array and frees the list. */
struct kw_api_json_list;
int kw_api_json_list_add(struct kw_api_json_list **list, const struct kw_token_info *t,
			 int64_t now);
char *kw_api_json_list_end(struct kw_api_json_list **list, size_t *len_r);
/* {"error": code, "message": message}, malloc'd. */
char *kw_api_json_error(const char *code, const char *message, size_t *len_r);
/* GET /api/v1/me; csrf: the session's csrf_token (NULL for a key); token_id 0: none. */
char *kw_api_json_me(const struct kw_token_auth *auth, const char *auth_kind, const char *csrf,
		     size_t *len_r);

#endif
