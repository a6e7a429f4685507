/* page.c: the routes and forms of the API tokens pages (page.h). Each request is authenticated
 * as the REST API authenticates it; each change is made by the API's handler (a request built
 * from the form, answered by kw_api_handle()) or, where the API has no endpoint (the
 * notification setting, the SSO review), under kw_api_begin() by the lib/ functions the CLI
 * calls, so that the rules and the audit events are the same whichever face is used.
 * Rendering helpers live in page_html.c. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>
#include <openssl/crypto.h>

#include "error.h"
#include "log.h"
#include "page.h"
#include "sso.h"
#include "text.h"

#define MAX_FIELDS 8
#define ADMIN_ROLE "Administrators"

bool kw_page_path(const char *path)
{
	static const char *const prefixes[] = { "/tokens", "/notifications", "/review", "/signout",
						"/static/" };

	if (strcmp(path, "/") == 0)
		return true;
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t n = strlen(prefixes[i]);
		if (strncmp(path, prefixes[i], n) == 0 &&
		    (path[n] == '\0' || path[n] == '/' || prefixes[i][n - 1] == '/'))
			return true;
	}
	return false;
}

/* ---- forms (application/x-www-form-urlencoded) ---- */

struct field {
	char *name, *value;
};

struct form {
	struct field f[MAX_FIELDS];
	size_t n;
};

static void form_clear(struct form *fm)
{
	for (size_t i = 0; i < fm->n; i++) {
		free(fm->f[i].name);
		if (fm->f[i].value != NULL) {
			OPENSSL_cleanse(fm->f[i].value, strlen(fm->f[i].value));
			free(fm->f[i].value);
		}
	}
	fm->n = 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes len bytes of a form component; NULL when malformed or holding a NUL. */
static char *decode(const char *in, size_t len)
{
	char *out = malloc(len + 1);
	size_t o = 0;

	if (out == NULL)
		abort();
	for (size_t i = 0; i < len; i++) {
		if (in[i] == '+')
			out[o++] = ' ';
		else if (in[i] == '%') {
			int h, l;
			if (i + 2 >= len)
				goto bad;
			h = hexval(in[i + 1]);
			l = hexval(in[i + 2]);
			if (h < 0 || l < 0 || (h == 0 && l == 0))
				goto bad;
			out[o++] = (char)(h * 16 + l);
			i += 2;
		} else
			out[o++] = in[i];
	}
	out[o] = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

/* 0, or -EINVAL (malformed, too many fields, a field given twice). */
static int form_parse(const char *body, size_t len, struct form *fm)
{
	size_t i = 0;

	memset(fm, 0, sizeof(*fm));
	while (i < len) {
		size_t end = i, eq;
		char *name, *value;

		while (end < len && body[end] != '&')
			end++;
		for (eq = i; eq < end && body[eq] != '='; eq++)
			;
		if (end > i) {
			if (fm->n == MAX_FIELDS)
				goto bad;
			name = decode(body + i, eq - i);
			value = eq < end ? decode(body + eq + 1, end - eq - 1) : decode("", 0);
			fm->f[fm->n].name = name;
			fm->f[fm->n++].value = value;
			if (name == NULL || value == NULL)
				goto bad;
			for (size_t k = 0; k + 1 < fm->n; k++) {
				if (strcmp(fm->f[k].name, name) == 0)
					goto bad;
			}
		}
		i = end + 1;
	}
	return 0;
bad:
	form_clear(fm);
	return -EINVAL;
}

static const char *field(const struct form *fm, const char *name)
{
	for (size_t i = 0; i < fm->n; i++) {
		if (strcmp(fm->f[i].name, name) == 0)
			return fm->f[i].value;
	}
	return NULL;
}

static const char *param(const struct kw_api_request *rq, const char *name)
{
	for (size_t i = 0; i < rq->n_params; i++) {
		if (strcmp(rq->params[i].name, name) == 0)
			return rq->params[i].value;
	}
	return NULL;
}

static bool is_form(const char *type)
{
	static const char want[] = "application/x-www-form-urlencoded";
	size_t n = sizeof(want) - 1;

	return type != NULL && strncasecmp(type, want, n) == 0 &&
	       (type[n] == '\0' || type[n] == ';' || type[n] == ' ');
}

/* ---- one request's context ---- */

struct ctx {
	struct kw_store *store;
	struct kw_digest_key *key;
	const struct kw_api_settings *s;
	const struct kw_api_request *rq;
	int64_t now;
	struct kw_api_answer *a;
	struct form form; /* a POST's fields */
	struct kw_api_actor me;
	bool admin;
	struct kw_page_nav nav;
};

static void outcome(struct ctx *c, const char *what)
{
	snprintf(c->a->outcome, sizeof(c->a->outcome), "page: %s", what);
}

static void nav_init(struct ctx *c, const char *current)
{
	c->nav.login = c->me.login;
	c->nav.role = c->me.role.name;
	c->nav.csrf = c->me.csrf;
	c->nav.admin = c->admin;
	c->nav.current = current;
}

/* A page that says something went wrong, with the API's message. */
static void error_page(struct ctx *c, int status, const char *title, const char *message,
		       bool signed_in)
{
	struct kw_page p;

	if (signed_in)
		nav_init(c, NULL);
	kw_page_begin(&p, title, signed_in ? &c->nav : NULL);
	kw_page_raw(&p, "<p class=\"error\" role=\"alert\" id=\"error\">");
	kw_page_text(&p, message);
	kw_page_raw(&p, "</p><p><a class=\"button\" href=\"/tokens\">Back to API tokens</a></p>");
	kw_page_end(&p, c->a, status);
}

/* Not signed in (or the session ended): how to sign in, back to this page afterwards. */
static void signin_page(struct ctx *c, const char *why)
{
	struct kw_page p;
	const char *path = c->rq->path, *next = "/tokens";

	/* back to the page asked for, when it is one of these (a plain path: nothing to encode) */
	if (strcmp(c->rq->method, "GET") == 0 &&
	    (strcmp(path, "/tokens/new") == 0 || strcmp(path, "/notifications") == 0 ||
	     strcmp(path, "/review") == 0))
		next = path;
	kw_page_begin(&p, "Sign in", NULL);
	kw_page_raw(&p, "<p class=\"notice\">");
	kw_page_text(&p, why);
	kw_page_raw(&p, "</p><p>The API tokens pages are for users who signed in with single "
			"sign-on.</p><p><a class=\"button primary\" id=\"signin\" "
			"href=\"/saml/login?next=");
	/* the path holds only [/a-z0-9] (a page path) */
	kw_page_text(&p, next);
	kw_page_raw(&p, "\">Sign in with SSO</a></p>");
	kw_page_end(&p, c->a, 401);
}

/* Authenticates as the API does (the CSRF token of a POST is the form's `csrf` field); when
 * the visitor may not act, the answer is written. */
static int begin(struct ctx *c)
{
	struct kw_api_request r = *c->rq;
	struct kw_role admin;
	const char *error = NULL;
	int ret;

	r.csrf = (char *)field(&c->form, "csrf");
	if (strcmp(r.method, "HEAD") == 0)
		snprintf(r.method, sizeof(r.method), "GET");
	ret = kw_api_begin(c->store, c->key, c->s, &r, c->now, &c->me, c->a);
	if (ret < 0) {
		char message[sizeof(c->a->outcome)];
		int status = c->a->status;
		bool failed = c->a->auth_failed;

		snprintf(message, sizeof(message), "%s", c->a->outcome);
		kw_api_answer_clear(c->a);
		if (status == 401) {
			signin_page(c, "You are not signed in, or your session has ended.");
			c->a->auth_failed = failed; /* the throttle counts it, as for the API */
		} else if (status == 403)
			error_page(c, 403, "Refused",
				   "This form did not come from this site, or it is out of date "
				   "(the CSRF token is missing or wrong): nothing was changed. "
				   "Open the page again and retry.",
				   false);
		else
			error_page(c, status, "Error", message, false);
		snprintf(c->a->outcome, sizeof(c->a->outcome), "page: %s", message);
		return ret;
	}
	c->admin = kw_store_role_get(c->store, ADMIN_ROLE, &admin, &error) == 0 &&
		   c->me.role.rank >= admin.rank;
	return 0;
}

/* The roles up to the user's own, highest first; cb for each. */
static void each_role(struct ctx *c, void (*cb)(struct ctx *, const struct kw_role *, void *),
		      void *arg)
{
	char *names = strdup(kw_store_role_names()), *save = NULL;

	if (names == NULL)
		abort();
	for (char *n = strtok_r(names, ",", &save); n != NULL; n = strtok_r(NULL, ",", &save)) {
		struct kw_role r;
		const char *error = NULL;

		while (*n == ' ')
			n++;
		if (kw_store_role_get(c->store, n, &r, &error) == 0 && r.rank <= c->me.role.rank)
			cb(c, &r, arg);
	}
	free(names);
}

/* ---- calling the API's own handler ---- */

/* Runs the API request (method, path, JSON body or NULL) as this visitor, with the form's CSRF
 * token; the answer in *ans (the caller clears it). */
static void api_call(struct ctx *c, const char *method, const char *path, const char *body,
		     struct kw_api_answer *ans)
{
	struct kw_api_request r;

	memset(&r, 0, sizeof(r));
	snprintf(r.method, sizeof(r.method), "%s", method);
	r.path = (char *)path;
	r.authorization = c->rq->authorization;
	r.cookie = c->rq->cookie;
	r.csrf = (char *)field(&c->form, "csrf");
	r.content_type = body != NULL ? (char *)"application/json" : NULL;
	r.body = (char *)body;
	r.body_len = body != NULL ? strlen(body) : 0;
	memcpy(r.ip, c->rq->ip, sizeof(r.ip));
	kw_api_handle(c->store, c->key, c->s, &r, c->now, ans);
}

/* The "message" of an API error answer, into buf. */
static void api_message(const struct kw_api_answer *ans, char *buf, size_t size)
{
	json_object *o = ans->body != NULL ? json_tokener_parse(ans->body) : NULL, *m = NULL;

	snprintf(buf, size, "error %d", ans->status);
	if (o != NULL && json_object_object_get_ex(o, "message", &m))
		snprintf(buf, size, "%s", json_object_get_string(m));
	json_object_put(o);
}

/* ---- API tokens ---- */

struct list {
	struct kw_page *p;
	struct ctx *c;
	unsigned n, soon;
	struct kw_page body;
};

static bool expires_soon(const struct kw_token_info *t, int64_t now)
{
	return t->status == KW_TOKEN_ACTIVE && t->expires != KW_NEVER &&
	       t->expires - now <= KW_EXPIRY_SOON;
}

static int list_row(const struct kw_token_info *t, void *arg)
{
	struct list *l = arg;
	struct kw_page *p = &l->body;
	bool soon = expires_soon(t, l->c->now);

	l->n++;
	l->soon += soon;
	kw_page_raw(p, "<tr id=\"token-%llu\"><td class=\"long\" data-label=\"Name\">",
		    (unsigned long long)t->id);
	if (soon)
		kw_page_raw(p, "<span class=\"mark\" title=\"expires within 7 days\" "
			       "aria-label=\"expires within 7 days\">!</span> ");
	kw_page_raw(p, "<span class=\"name\">");
	kw_page_text(p, t->name);
	kw_page_raw(p,
		    "</span> <span class=\"muted\">#%llu</span></td><td class=\"long\" "
		    "data-label=\"Description\">",
		    (unsigned long long)t->id);
	kw_page_text(p, t->description);
	kw_page_raw(p, "</td><td data-label=\"Issued by\">");
	kw_page_text(p, t->issuer);
	kw_page_raw(p, "</td><td data-label=\"Role\">");
	kw_page_text(p, t->role.name);
	kw_page_raw(p, "</td><td data-label=\"Created\">");
	kw_page_time(p, t->created, "");
	kw_page_raw(p, "</td><td data-label=\"Last usage\">");
	kw_page_time(p, t->last_used, "never");
	if (t->last_ip[0] != '\0') {
		kw_page_raw(p, "<br><span class=\"muted\">from ");
		kw_page_text(p, t->last_ip);
		kw_page_raw(p, "</span>");
	}
	kw_page_raw(p, "</td><td data-label=\"Expires\">");
	kw_page_time(p, t->expires, "never");
	kw_page_raw(p, "</td><td data-label=\"Status\" class=\"status\">%s</td><td>",
		    kw_token_status_name(t->status));
	if (t->status != KW_TOKEN_DELETED)
		kw_page_raw(p,
			    "<a class=\"button\" href=\"/tokens/%llu/delete\" "
			    "aria-label=\"Delete token #%llu\">Delete</a>",
			    (unsigned long long)t->id, (unsigned long long)t->id);
	kw_page_raw(p, "</td></tr>\n");
	return 0;
}

static void option(struct kw_page *p, const char *value, const char *label, const char *selected)
{
	kw_page_raw(p, "<option value=\"");
	kw_page_text(p, value);
	kw_page_raw(p, "\"%s>",
		    selected != NULL && strcmp(selected, value) == 0 ? " selected" : "");
	kw_page_text(p, label);
	kw_page_raw(p, "</option>");
}

struct select_ctx {
	struct kw_page *p;
	const char *selected;
};

static void role_option(struct ctx *c, const struct kw_role *r, void *arg)
{
	struct select_ctx *sc = arg;

	(void)c;
	option(sc->p, r->name, r->name, sc->selected);
}

static int user_option(const struct kw_user *u, void *arg)
{
	struct select_ctx *sc = arg;

	option(sc->p, u->login, u->login, sc->selected);
	return 0;
}

/* Is a token of this user's (or, for an Administrator, of the account) about to expire? */
static int soon_one(const struct kw_token_info *t, void *arg)
{
	struct ctx *c = arg;

	c->nav.expiring |= expires_soon(t, c->now);
	return 0;
}

static void find_expiring(struct ctx *c)
{
	struct kw_token_filter f = { .status = KW_TOKEN_ACTIVE };
	const char *error = NULL;

	(void)kw_store_token_list(c->store, c->me.login, &f, c->now, soon_one, c, &error);
}

static void tokens_page(struct ctx *c)
{
	struct kw_token_filter filter = { .status = -1 };
	const char *issued_by = param(c->rq, "issued_by"), *role = param(c->rq, "role"),
		   *status = param(c->rq, "status"), *done = param(c->rq, "done"), *error = NULL,
		   *why = NULL;
	struct list l = { .c = c };
	struct select_ctx sc;
	struct kw_page p;
	char problem[KW_ERROR_MAX] = "";
	int ret = 0;

	if (issued_by != NULL && issued_by[0] == '\0')
		issued_by = NULL;
	if (role != NULL && role[0] == '\0')
		role = NULL;
	if (status != NULL && status[0] == '\0')
		status = NULL;
	for (size_t i = 0; i < c->rq->n_params; i++) {
		if (kw_text_check(c->rq->params[i].value, KW_LOGIN_MAX, 0, &why) < 0) {
			snprintf(problem, sizeof(problem), "a filter is not valid text");
			ret = -EINVAL;
		}
	}
	if (status != NULL) {
		enum kw_token_status st = KW_TOKEN_ACTIVE;
		if (kw_token_status_parse(status, &st) < 0) {
			snprintf(problem, sizeof(problem), "unknown status");
			ret = -EINVAL;
		}
		filter.status = (int)st;
	}
	filter.issued_by = issued_by;
	filter.role = role;
	memset(&l.body, 0, sizeof(l.body));
	l.body.f = open_memstream(&l.body.text, &l.body.len);
	if (l.body.f == NULL)
		abort();
	if (ret == 0) {
		ret = kw_store_token_list(c->store, c->me.login, &filter, c->now, list_row, &l,
					  &error);
		if (ret < 0)
			snprintf(problem, sizeof(problem), "%s",
				 ret == -EPERM   ? "you may see your own tokens only"
				 : error != NULL ? error
						 : "the tokens cannot be read now");
	}
	if (fclose(l.body.f) != 0)
		abort();
	find_expiring(c);
	nav_init(c, "tokens");
	kw_page_begin(&p, "API tokens", &c->nav);
	if (c->nav.expiring)
		kw_page_raw(&p, "<p class=\"notice\" id=\"expiring\"><span class=\"mark\">!</span> "
				"A token expires within 7 days.</p>");
	if (done != NULL && strcmp(done, "deleted") == 0)
		kw_page_raw(&p, "<p class=\"notice\" role=\"status\" id=\"done\">The token was "
				"deleted. It stops working at once.</p>");
	kw_page_raw(&p, "<p>%s</p>",
		    c->admin ? "All tokens of your account." : "The tokens you issued.");
	kw_page_raw(&p, "<form class=\"filters\" method=\"get\" action=\"/tokens\" "
			"aria-label=\"Filters\"><div><label for=\"f-issued\">Issued by</label>"
			"<select id=\"f-issued\" name=\"issued_by\">");
	sc.p = &p;
	sc.selected = issued_by;
	option(&p, "", "anyone", issued_by);
	if (c->admin)
		(void)kw_store_user_list(c->store, c->me.account, user_option, &sc, &error);
	else
		option(&p, c->me.login, c->me.login, issued_by);
	kw_page_raw(&p, "</select></div><div><label for=\"f-role\">Role</label>"
			"<select id=\"f-role\" name=\"role\">");
	option(&p, "", "any", role);
	sc.selected = role;
	each_role(c, role_option, &sc);
	kw_page_raw(&p, "</select></div><div><label for=\"f-status\">Status</label>"
			"<select id=\"f-status\" name=\"status\">");
	option(&p, "", "any", status);
	option(&p, "active", "active", status);
	option(&p, "expired", "expired", status);
	option(&p, "deleted", "deleted", status);
	option(&p, "disabled", "disabled", status);
	kw_page_raw(&p, "</select></div><div><button type=\"submit\" id=\"filter\">Filter</button>"
			"</div></form>\n");
	if (problem[0] != '\0') {
		kw_page_raw(&p, "<p class=\"error\" role=\"alert\" id=\"error\">");
		kw_page_text(&p, problem);
		kw_page_raw(&p, "</p>");
	}
	kw_page_raw(&p,
		    "<p><a class=\"button primary\" href=\"/tokens/new\">Create API token</a>"
		    "</p>\n<table id=\"tokens\"><caption class=\"muted\">%u token%s "
		    "(dates in UTC)</caption><thead><tr><th scope=\"col\">Name</th>"
		    "<th scope=\"col\">Description</th><th scope=\"col\">Issued by</th>"
		    "<th scope=\"col\">Role</th><th scope=\"col\">Created</th>"
		    "<th scope=\"col\">Last usage</th><th scope=\"col\">Expires</th>"
		    "<th scope=\"col\">Status</th><th scope=\"col\"><span hidden>Actions</span>"
		    "</th></tr></thead><tbody>\n",
		    l.n, l.n == 1 ? "" : "s");
	if (l.body.len > 0)
		fwrite(l.body.text, 1, l.body.len, p.f);
	free(l.body.text);
	kw_page_raw(&p, "</tbody></table>\n");
	kw_page_end(&p, c->a, problem[0] != '\0' ? 400 : 200);
	snprintf(c->a->outcome, sizeof(c->a->outcome), "page: %u token(s) listed for %s", l.n,
		 c->me.login);
}

/* The creation form, with what was typed and the reason it was refused (both may be NULL). */
static void new_page(struct ctx *c, const char *problem, int status)
{
	const char *name = field(&c->form, "name"), *desc = field(&c->form, "description"),
		   *role = field(&c->form, "role"), *exp = field(&c->form, "expiry"),
		   *date = field(&c->form, "expires");
	bool dated = exp != NULL && strcmp(exp, "date") == 0;
	struct select_ctx sc;
	struct kw_page p;

	find_expiring(c);
	nav_init(c, "new");
	kw_page_begin(&p, "Create API token", &c->nav);
	if (problem != NULL) {
		kw_page_raw(&p, "<p class=\"error\" role=\"alert\" id=\"error\">");
		kw_page_text(&p, problem);
		kw_page_raw(&p, "</p>");
	}
	kw_page_raw(&p, "<form method=\"post\" action=\"/tokens/new\" id=\"create\">");
	kw_page_csrf(&p, c->me.csrf);
	kw_page_raw(&p,
		    "<label for=\"name\">Token name</label><input type=\"text\" id=\"name\" "
		    "name=\"name\" required maxlength=\"%d\" value=\"",
		    KW_TOKEN_NAME_CHARS);
	kw_page_text(&p, name);
	kw_page_raw(&p,
		    "\"><label for=\"description\">Description <span class=\"muted\">"
		    "(optional)</span></label><textarea id=\"description\" "
		    "name=\"description\" rows=\"2\" maxlength=\"%d\">",
		    KW_TOKEN_DESC_CHARS);
	kw_page_text(&p, desc);
	kw_page_raw(&p, "</textarea><label for=\"role\">Role</label><select id=\"role\" "
			"name=\"role\" aria-describedby=\"role-help\">");
	sc.p = &p;
	sc.selected = role != NULL ? role : c->me.role.name;
	each_role(c, role_option, &sc);
	kw_page_raw(
		&p,
		"</select><p class=\"muted\" id=\"role-help\">A token's role is at most "
		"your own.</p><fieldset><legend>Expiration</legend>"
		"<input type=\"radio\" id=\"never\" name=\"expiry\" value=\"never\"%s>"
		"<label for=\"never\">Never expire</label>"
		"<input type=\"radio\" id=\"dated\" name=\"expiry\" value=\"date\"%s>"
		"<label for=\"dated\">Set expiration date</label>"
		"<label class=\"block\" for=\"expires\">Expiration date (end of day, UTC)</label>"
		"<input type=\"date\" id=\"expires\" name=\"expires\" value=\"",
		dated ? "" : " checked", dated ? " checked" : "");
	kw_page_text(&p, date);
	kw_page_raw(&p, "\"></fieldset><button type=\"submit\" class=\"primary\" "
			"id=\"create-button\">Create</button> <a class=\"button\" "
			"href=\"/tokens\">Cancel</a></form>");
	kw_page_end(&p, c->a, status);
	outcome(c, "creation form");
}

/* POST /tokens/new: the API creates; the secret is shown once, on a page nobody caches. */
static void create(struct ctx *c)
{
	const char *exp = field(&c->form, "expiry"), *date = field(&c->form, "expires"),
		   *desc = field(&c->form, "description");
	json_object *req = json_object_new_object(), *ans_o = NULL, *tok = NULL, *idv = NULL;
	struct kw_api_answer ans;
	struct kw_page p;
	char message[KW_ERROR_MAX];
	const char *body;
	char *text = NULL;

	if (req == NULL)
		abort();
	json_object_object_add(
		req, "name",
		json_object_new_string(field(&c->form, "name") ? field(&c->form, "name") : ""));
	if (desc != NULL && desc[0] != '\0')
		json_object_object_add(req, "description", json_object_new_string(desc));
	json_object_object_add(
		req, "role",
		json_object_new_string(field(&c->form, "role") ? field(&c->form, "role") : ""));
	if (exp != NULL && strcmp(exp, "date") == 0)
		json_object_object_add(req, "expires",
				       json_object_new_string(date != NULL ? date : ""));
	body = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	memset(&ans, 0, sizeof(ans));
	api_call(c, "POST", "/api/v1/tokens", body, &ans);
	json_object_put(req);
	if (ans.status != 201) {
		api_message(&ans, message, sizeof(message));
		if (ans.status == 401 &&
		    strstr(ans.body != NULL ? ans.body : "", "reauthentication_required") != NULL)
			snprintf(message + strlen(message), sizeof(message) - strlen(message),
				 " (Sign out and sign in again.)");
		kw_api_answer_clear(&ans);
		new_page(c, message, 400);
		return;
	}
	ans_o = json_tokener_parse(ans.body);
	if (ans_o == NULL || !json_object_object_get_ex(ans_o, "token", &tok) ||
	    !json_object_object_get_ex(ans_o, "id", &idv)) {
		kw_api_answer_clear(&ans);
		error_page(c, 500, "Error", "the API's answer could not be read", true);
		goto out;
	}
	text = strdup(json_object_get_string(tok));
	if (text == NULL)
		abort();
	find_expiring(c);
	nav_init(c, "new");
	kw_page_begin(&p, "Your new API token", &c->nav);
	kw_page_raw(&p, "<p class=\"notice\" role=\"status\">Token <strong id=\"new-name\">");
	{
		json_object *n = NULL;
		if (json_object_object_get_ex(ans_o, "name", &n))
			kw_page_text(&p, json_object_get_string(n));
	}
	kw_page_raw(&p,
		    "</strong> (#%lld) was created.</p>"
		    "<p><strong>Copy it now: it is not stored and cannot be shown again.</strong>"
		    " Send it as <code>Authorization: APIKey &lt;token&gt;</code>.</p>"
		    "<label for=\"secret\">API token</label><input class=\"secret\" type=\"text\" "
		    "id=\"secret\" readonly autocomplete=\"off\" spellcheck=\"false\" value=\"",
		    (long long)json_object_get_int64(idv));
	kw_page_text(&p, text);
	kw_page_raw(&p,
		    "\"><p><button type=\"button\" id=\"copy\" hidden>Copy</button> "
		    "<span id=\"copy-status\" role=\"status\"></span></p>"
		    "<p><a class=\"button primary\" id=\"copied\" href=\"/tokens\">OK, I've copied "
		    "the token</a></p>");
	OPENSSL_cleanse(text, strlen(text));
	free(text);
	kw_api_answer_clear(&ans);
	kw_page_end(&p, c->a, 201);
	c->a->secret = true; /* wiped before it is freed; served no-store */
	snprintf(c->a->outcome, sizeof(c->a->outcome), "page: token %lld created by %s",
		 (long long)json_object_get_int64(idv), c->me.login);
out:
	if (ans_o != NULL) {
		/* the parsed copy of the secret: wiped before it is freed */
		if (tok != NULL) {
			const char *s = json_object_get_string(tok);
			OPENSSL_cleanse((char *)s, strlen(s));
		}
		json_object_put(ans_o);
	}
}

static void delete_page(struct ctx *c, uint64_t id)
{
	struct kw_token_info t;
	const char *error = NULL;
	struct kw_page p;
	int ret = kw_store_token_get(c->store, c->me.login, id, c->now, &t, &error);

	if (ret == -EPERM || ret == -ENOENT) {
		error_page(c, 404, "Not found", "No such token is visible to you.", true);
		return;
	}
	if (ret < 0) {
		error_page(c, 500, "Error", error != NULL ? error : "error", true);
		return;
	}
	nav_init(c, "tokens");
	kw_page_begin(&p, "Delete API token", &c->nav);
	kw_page_raw(&p, "<p>Delete the token <strong id=\"delete-name\">");
	kw_page_text(&p, t.name);
	kw_page_raw(&p, "</strong> (#%llu, issued by ", (unsigned long long)t.id);
	kw_page_text(&p, t.issuer);
	kw_page_raw(&p, ", role ");
	kw_page_text(&p, t.role.name);
	kw_page_raw(&p,
		    ")? Services that send it are refused at once. This cannot be undone.</p>"
		    "<form method=\"post\" action=\"/tokens/%llu/delete\">",
		    (unsigned long long)t.id);
	kw_page_csrf(&p, c->me.csrf);
	kw_page_raw(&p, "<button type=\"submit\" class=\"danger\" id=\"confirm\">Delete API token"
			"</button> <a class=\"button\" href=\"/tokens\">Cancel</a></form>");
	kw_page_end(&p, c->a, 200);
	outcome(c, "delete confirmation");
}

static void redirect(struct ctx *c, const char *location)
{
	kw_api_answer_clear(c->a);
	c->a->status = 303;
	snprintf(c->a->location, sizeof(c->a->location), "%s", location);
	c->a->page = true;
}

static void delete_token(struct ctx *c, uint64_t id)
{
	struct kw_api_answer ans;
	char path[64], message[KW_ERROR_MAX];
	const char *back = field(&c->form, "back");
	const char *error = NULL;

	snprintf(path, sizeof(path), "/api/v1/tokens/%llu", (unsigned long long)id);
	memset(&ans, 0, sizeof(ans));
	api_call(c, "DELETE", path, NULL, &ans);
	if (ans.status != 204) {
		int ans_status = ans.status;

		api_message(&ans, message, sizeof(message));
		kw_api_answer_clear(&ans);
		/* the API's status: 404 for a token the user may not see, 409 deleted already */
		error_page(c, ans_status >= 400 ? ans_status : 500, "Not deleted", message, true);
		return;
	}
	kw_api_answer_clear(&ans);
	if (back != NULL && strcmp(back, "review") == 0) {
		/* the case closes at once when the user holds no active token any more */
		(void)kw_sso_sweep(c->store, c->me.account, c->now, c->s->stale_days, &error);
		redirect(c, "/review?done=deleted");
	} else
		redirect(c, "/tokens?done=deleted");
	snprintf(c->a->outcome, sizeof(c->a->outcome), "page: token %llu deleted by %s",
		 (unsigned long long)id, c->me.login);
}

/* ---- notifications ---- */

static void notifications_page(struct ctx *c, bool post)
{
	struct kw_user u;
	struct kw_page p;
	const char *error = NULL;
	bool saved = false;
	int ret;

	if (post) {
		const char *v = field(&c->form, "expiry_emails");
		struct kw_user_change ch = { .enabled = -1,
					     .expiry_emails = v != NULL && strcmp(v, "on") == 0 };

		ret = kw_store_user_set(c->store, c->me.login, c->me.login, &ch, &error);
		if (ret < 0) {
			error_page(c, 500, "Error", error != NULL ? error : "error", true);
			return;
		}
		saved = true;
	}
	ret = kw_store_user_get(c->store, c->me.login, &u, &error);
	if (ret < 0) {
		error_page(c, 500, "Error", error != NULL ? error : "error", true);
		return;
	}
	find_expiring(c);
	nav_init(c, "notifications");
	kw_page_begin(&p, "Notifications", &c->nav);
	if (saved)
		kw_page_raw(&p, "<p class=\"notice\" role=\"status\" id=\"done\">Saved.</p>");
	kw_page_raw(&p, "<form method=\"post\" action=\"/notifications\">");
	kw_page_csrf(&p, c->me.csrf);
	kw_page_raw(&p,
		    "<p><input type=\"checkbox\" id=\"expiry_emails\" name=\"expiry_emails\" "
		    "value=\"on\"%s> <label for=\"expiry_emails\" class=\"inline\">"
		    "Email me 7 days and 1 day before a token expires</label></p>"
		    "<p class=\"muted\">Sent to ",
		    u.expiry_emails ? " checked" : "");
	kw_page_text(&p, u.email[0] != '\0' ? u.email : "(no email address known)");
	kw_page_raw(&p,
		    ", for the tokens you issued%s.</p><button type=\"submit\" "
		    "class=\"primary\" id=\"save\">Save</button></form>",
		    c->admin ? " and, as an Administrator, those of your account" : "");
	kw_page_end(&p, c->a, 200);
	outcome(c, saved ? "notification setting saved" : "notifications");
}

/* ---- the SSO review (Administrators) ---- */

static void review_page(struct ctx *c)
{
	struct kw_sso_review *rev = NULL;
	const char *error = NULL, *done = param(c->rq, "done");
	struct kw_page p;
	int ret;

	if (!c->admin) {
		error_page(c, 403, "Forbidden", "The SSO review is for Administrators.", true);
		return;
	}
	ret = kw_sso_review(c->store, c->me.account, c->now, c->s->stale_days, &rev, &error);
	if (ret < 0) {
		error_page(c, 500, "Error", error != NULL ? error : "error", true);
		return;
	}
	find_expiring(c);
	nav_init(c, "review");
	kw_page_begin(&p, "SSO review", &c->nav);
	if (done != NULL && strcmp(done, "deleted") == 0)
		kw_page_raw(&p, "<p class=\"notice\" role=\"status\" id=\"done\">The token was "
				"deleted.</p>");
	if (done != NULL && strcmp(done, "dismissed") == 0)
		kw_page_raw(&p, "<p class=\"notice\" role=\"status\" id=\"done\">The case was "
				"dismissed.</p>");
	kw_page_raw(&p, "<p>SSO revocation does not revoke API tokens: when the identity provider "
			"ends or lowers a user's access, their tokens keep working until they are "
			"deleted here or with the CLI. Delete each token, or dismiss the case with "
			"a reason.</p>");
	if (rev->n_cases == 0)
		kw_page_raw(&p, "<p id=\"no-cases\">No open case.</p>");
	for (size_t i = 0; i < rev->n_cases; i++) {
		const struct kw_sso_case *k = &rev->cases[i];

		kw_page_raw(
			&p,
			"<section class=\"case\" id=\"case-%lld\" aria-labelledby=\"case-%lld-h\">"
			"<h2 id=\"case-%lld-h\">",
			(long long)k->id, (long long)k->id, (long long)k->id);
		kw_page_text(&p, k->login);
		kw_page_raw(&p, " <span class=\"muted\">(");
		kw_page_text(&p, k->kind);
		kw_page_raw(&p, ", case %lld)</span></h2><p>", (long long)k->id);
		kw_page_text(&p, k->reason);
		kw_page_raw(&p, "</p><p class=\"muted\">Opened ");
		kw_page_time(&p, k->opened, "");
		kw_page_raw(&p, "; role now ");
		kw_page_text(&p, k->role[0] != '\0' ? k->role : "none");
		kw_page_raw(&p, "; last seen ");
		kw_page_time(&p, k->last_seen, "never");
		kw_page_raw(&p, "</p>");
		if (k->n_tokens > 0) {
			kw_page_raw(&p,
				    "<table><thead><tr><th scope=\"col\">Token</th>"
				    "<th scope=\"col\">Role</th><th scope=\"col\">Last usage</th>"
				    "<th scope=\"col\">Expires</th><th scope=\"col\"><span "
				    "hidden>Actions</span></th></tr></thead><tbody>");
			for (size_t t = 0; t < k->n_tokens; t++) {
				const struct kw_sso_token *tk = &k->tokens[t];

				kw_page_raw(&p, "<tr><td class=\"long\" data-label=\"Token\">");
				kw_page_text(&p, tk->name);
				kw_page_raw(&p,
					    " <span class=\"muted\">#%llu</span></td>"
					    "<td data-label=\"Role\">",
					    (unsigned long long)tk->id);
				kw_page_text(&p, tk->role.name);
				kw_page_raw(&p, "%s</td><td data-label=\"Last usage\">",
					    tk->above_user_role ? " <span class=\"mark\">above the "
								  "user's role</span>"
								: "");
				kw_page_time(&p, tk->last_used, "never");
				kw_page_raw(&p, "</td><td data-label=\"Expires\">");
				kw_page_time(&p, tk->expires, "never");
				kw_page_raw(&p,
					    "</td><td><form method=\"post\" "
					    "action=\"/tokens/%llu/delete\">",
					    (unsigned long long)tk->id);
				kw_page_csrf(&p, c->me.csrf);
				kw_page_raw(&p,
					    "<input type=\"hidden\" name=\"back\" value=\"review\">"
					    "<button type=\"submit\" class=\"danger\" "
					    "id=\"delete-%llu\">Delete</button></form></td></tr>",
					    (unsigned long long)tk->id);
			}
			kw_page_raw(&p, "</tbody></table>");
		}
		kw_page_raw(&p, "<form method=\"post\" action=\"/review/%lld/dismiss\">",
			    (long long)k->id);
		kw_page_csrf(&p, c->me.csrf);
		kw_page_raw(&p,
			    "<label for=\"reason-%lld\">Reason to dismiss</label><input "
			    "type=\"text\" id=\"reason-%lld\" name=\"reason\" required "
			    "maxlength=\"%d\"><br><button type=\"submit\" id=\"dismiss-%lld\">"
			    "Dismiss</button></form></section>\n",
			    (long long)k->id, (long long)k->id, KW_SSO_REASON_MAX,
			    (long long)k->id);
	}
	kw_page_end(&p, c->a, 200);
	snprintf(c->a->outcome, sizeof(c->a->outcome), "page: %zu open SSO case(s) shown",
		 rev->n_cases);
	kw_sso_review_free(&rev);
}

static void dismiss(struct ctx *c, int64_t case_id)
{
	const char *reason = field(&c->form, "reason"), *error = NULL, *why = NULL;
	int ret;

	if (!c->admin) {
		error_page(c, 403, "Forbidden", "The SSO review is for Administrators.", true);
		return;
	}
	if (reason == NULL || kw_text_check(reason, KW_SSO_REASON_MAX, 0, &why) < 0) {
		error_page(c, 400, "Not dismissed", why != NULL ? why : "a reason is required",
			   true);
		return;
	}
	ret = kw_sso_dismiss(c->store, c->me.login, case_id, reason, c->now, &error);
	if (ret < 0) {
		error_page(c,
			   ret == -EPERM    ? 403
			   : ret == -ENOENT ? 404
					    : 409,
			   "Not dismissed", error != NULL ? error : "error", true);
		return;
	}
	redirect(c, "/review?done=dismissed");
	snprintf(c->a->outcome, sizeof(c->a->outcome), "page: SSO case %lld dismissed by %s",
		 (long long)case_id, c->me.login);
}

static void signout(struct ctx *c)
{
	struct kw_api_answer ans;

	memset(&ans, 0, sizeof(ans));
	api_call(c, "POST", "/api/v1/auth/logout", NULL, &ans);
	if (ans.status != 204) {
		char message[KW_ERROR_MAX];
		api_message(&ans, message, sizeof(message));
		kw_api_answer_clear(&ans);
		error_page(c, 400, "Not signed out", message, false);
		return;
	}
	redirect(c, "/tokens");
	memcpy(c->a->set_cookie, ans.set_cookie, sizeof(c->a->set_cookie));
	kw_api_answer_clear(&ans);
	outcome(c, "signed out");
}

/* ---- routing ---- */

static void static_file(struct kw_api_answer *a, const char *text, const char *type)
{
	a->status = 200;
	a->body = strdup(text);
	if (a->body == NULL)
		abort();
	a->len = strlen(text);
	a->content_type = type;
	a->page = true;
	a->cacheable = true;
	snprintf(a->outcome, sizeof(a->outcome), "page: static file");
}

/* "/tokens/{id}/delete" and "/review/{id}/dismiss": the id, or -1. */
static long long id_between(const char *path, const char *prefix, const char *suffix)
{
	size_t n = strlen(prefix);
	unsigned long long v = 0;
	const char *p = path + n;

	if (strncmp(path, prefix, n) != 0 || *p < '1' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > 100000000000000000ULL)
			return -1;
		v = v * 10 + (unsigned)(*p - '0');
	}
	return strcmp(p, suffix) == 0 ? (long long)v : -1;
}

void kw_page_handle(struct kw_store *store, struct kw_digest_key *key,
		    const struct kw_api_settings *s, const struct kw_api_request *rq, int64_t now,
		    struct kw_api_answer *a)
{
	struct ctx c = { .store = store, .key = key, .s = s, .rq = rq, .now = now, .a = a };
	const char *path = rq->path, *m = rq->method;
	bool get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0, post = strcmp(m, "POST") == 0;
	long long id;

	memset(a, 0, sizeof(*a));
	if (strcmp(path, "/static/page.css") == 0 && get) {
		static_file(a, kw_page_css, "text/css; charset=utf-8");
		return;
	}
	if (strcmp(path, "/static/page.js") == 0 && get) {
		static_file(a, kw_page_js, "text/javascript; charset=utf-8");
		return;
	}
	if (strcmp(path, "/") == 0 && get) {
		redirect(&c, "/tokens");
		return;
	}
	if (!get && !post) {
		error_page(&c, 405, "Method not allowed",
			   "Use the links and the forms of the pages.", false);
		snprintf(a->allow, sizeof(a->allow), "GET, POST");
		return;
	}
	if (post && (!is_form(rq->content_type) ||
		     form_parse(rq->body != NULL ? rq->body : "", rq->body_len, &c.form) < 0)) {
		error_page(&c, 400, "Bad request", "The form could not be read.", false);
		return;
	}
	if (begin(&c) < 0)
		goto out;
	if (strcmp(path, "/tokens") == 0 && get)
		tokens_page(&c);
	else if (strcmp(path, "/tokens/new") == 0 && get)
		new_page(&c, NULL, 200);
	else if (strcmp(path, "/tokens/new") == 0)
		create(&c);
	else if ((id = id_between(path, "/tokens/", "/delete")) > 0)
		post ? delete_token(&c, (uint64_t)id) : delete_page(&c, (uint64_t)id);
	else if (strcmp(path, "/notifications") == 0)
		notifications_page(&c, post);
	else if (strcmp(path, "/review") == 0 && get)
		review_page(&c);
	else if ((id = id_between(path, "/review/", "/dismiss")) > 0 && post)
		dismiss(&c, (int64_t)id);
	else if (strcmp(path, "/signout") == 0 && post)
		signout(&c);
	else
		error_page(&c, 404, "Not found", "There is no such page.", true);
	kw_api_end(store);
out:
	form_clear(&c.form);
	OPENSSL_cleanse(&c.me, sizeof(c.me));
}
