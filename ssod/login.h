/* login.h: SP-initiated sign-in: GET /saml/login[?next=PATH] sends the browser to the IdP's
 * SingleSignOnService with an AuthnRequest (HTTP-Redirect binding: DEFLATE, base64, signed
 * with sp_key by RSA-SHA256 when the IdP's metadata says WantAuthnRequestsSigned). The
 * request's ID is kept in the store for [sso] request_lifetime seconds, with `next`, so that
 * the Response's InResponseTo can be checked by whichever worker or process receives it
 * (sso_apply.c).
 *
 * Not thread-safe: a struct kw_ssod belongs to one thread. */
#ifndef KW_SSOD_LOGIN_H
#define KW_SSOD_LOGIN_H

#include <stdbool.h>
#include <stdint.h>

struct kw_ssod;

/* Whether next is a path on this site and nothing else: it starts with one '/', is printable
 * ASCII without blanks or '\', has no "//" or "/\" that a browser would read as another host,
 * no scheme and at most KW_SSOD_NEXT_MAX bytes. Pure. */
bool kw_ssod_next_ok(const char *next);

/* Makes an AuthnRequest, keeps its ID (and next, NULL or "" for none, which must pass
 * kw_ssod_next_ok()) and returns in *location_r the URL the browser is sent to (caller
 * frees). -ENOENT: the IdP's metadata has no HTTP-Redirect SingleSignOnService; -EINVAL: next
 * is not a path on this site; store errors as store.h says. */
int kw_ssod_authn_request(struct kw_ssod *d, const char *next, int64_t now, char **location_r,
			  const char **error_r);

#endif
