/* page.h: the API tokens pages of keywarden-ssod, for a user signed in through SSO (the session
 * cookie of /saml/acs), server-rendered HTML:
 *
 *   GET  /                         303 to /tokens
 *   GET  /tokens                   the tokens ?issued_by=LOGIN&role=ROLE&status=STATUS
 *   GET  /tokens/new               the creation form
 *   POST /tokens/new               creates (as POST /api/v1/tokens): the secret, shown once
 *   GET  /tokens/{id}/delete       asks to confirm
 *   POST /tokens/{id}/delete       deletes (as DELETE /api/v1/tokens/{id})
 *   GET  /notifications            the user's expiry-mail setting
 *   POST /notifications            changes it
 *   GET  /review                   Administrators: the open cases of the SSO rule
 *   POST /review/{case}/dismiss    closes a case with a reason
 *   POST /signout                  ends the session (as POST /api/v1/auth/logout)
 *   GET  /static/page.css, /static/page.js
 *
 * The pages are a second face of the REST API (api.h): a change is made by the API's own
 * handler (kw_api_handle() on a request built from the form) or, where the API has no
 * endpoint, under kw_api_begin() (the same authentication, CSRF check and audit context) by
 * the store's functions the CLI calls. Every form carries the session's CSRF token in the
 * field `csrf`, checked as X-CSRF-Token is. A visitor who is not signed in is shown how to
 * sign in (/saml/login?next=PATH).
 *
 * Threads: kw_page_handle() runs in one of ssod's workers, as kw_api_handle() does. */
#ifndef KW_SSOD_PAGE_H
#define KW_SSOD_PAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "api.h"

/* True for the paths the pages serve (never /saml/, /api/, /scim/, /healthz). */
bool kw_page_path(const char *path);

/* Answers one request of the pages; never fails: everything is in *a (a->page set). */
void kw_page_handle(struct kw_store *store, struct kw_digest_key *key,
		    const struct kw_api_settings *s, const struct kw_api_request *rq, int64_t now,
		    struct kw_api_answer *a);

/* ---- rendering (page_html.c) ---- */

/* The stylesheet and the script, static text. */
extern const char kw_page_css[];
extern const char kw_page_js[];

/* A page being written: open_memstream() text. */
struct kw_page {
	FILE *f;
	char *text;
	size_t len;
};

struct kw_page_nav {
	const char *login, *role; /* NULL: not signed in */
	const char *csrf;         /* for the sign-out form */
	bool admin;               /* show SSO review */
	bool expiring;            /* a token of the user expires within 7 days: the `!` */
	const char *current;      /* "tokens", "new", "notifications", "review" */
};

/* Opens the page with its <head>, the header and the navigation; kw_page_end() closes it and
 * gives the text to the answer (status, text/html). */
void kw_page_begin(struct kw_page *p, const char *title, const struct kw_page_nav *nav);
void kw_page_end(struct kw_page *p, struct kw_api_answer *a, int status);
/* Text escaped for HTML (text and quoted attributes). */
void kw_page_text(struct kw_page *p, const char *s);
/* printf into the page, unescaped: only for markup and numbers. */
void kw_page_raw(struct kw_page *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An instant as "2027-01-31 23:59 UTC", or `none` when t is 0 / KW_NEVER. */
void kw_page_time(struct kw_page *p, int64_t t, const char *none);
/* The hidden CSRF field of a form. */
void kw_page_csrf(struct kw_page *p, const char *csrf);

#endif
