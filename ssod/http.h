/* http.h: keywarden-ssod's HTTP listener (libmicrohttpd), behind a TLS reverse proxy.
 *
 *   POST /saml/acs       form field SAMLResponse (HTTP-POST binding), optional RelayState
 *   POST /saml/slo       form field SAMLRequest: a signed LogoutRequest
 *   GET  /saml/metadata  the SP EntityDescriptor
 *   GET  /saml/login     [?next=PATH] SP-initiated sign-in: 302 to the IdP (login.h)
 *   GET  /healthz        "ok"
 *   /api/v1/...          the REST API (api.h), run on the workers like SAML messages
 *   /, /tokens, ...      the API tokens pages (page.h), run on the workers as the API
 *
 * One thread serves HTTP: libmicrohttpd runs in external-select mode on its epoll
 * descriptor, polled with a signalfd by kw_ssod_serve(), so that a slow client never blocks
 * another (sockets are non-blocking; each connection is cut after [sso] timeout seconds of
 * inactivity, and each request must be complete within 3 x [sso] timeout, so that clients
 * that trickle a byte now and then cannot hold the connection slots). That thread accepts
 * the connections itself: over [sso] max_connections they are answered 503 at once, never
 * left in the kernel's backlog. Bodies are bounded by [sso] max_body.
 *
 * A complete SAML message goes to one of a few worker threads (its connection suspended
 * meanwhile), each with its own verifier and store connection (neither is thread-safe), so
 * that a slow verification or a locked database never holds /healthz or other sign-ins. */
#ifndef KW_SSO_HTTP_H
#define KW_SSO_HTTP_H

#include "sso_apply.h"

/* Listens on d->sso->listen, tells systemd READY=1, serves until SIGTERM or SIGINT
 * (STOPPING=1), then closes. Returns 0, or a negative errno-style code with error_r when it
 * cannot start. */
int kw_ssod_serve(struct kw_ssod *d, const char *database, const char **error_r);

#endif
