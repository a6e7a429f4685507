/* http.h: keywarden-ssod's HTTP listener (libmicrohttpd), behind a TLS reverse proxy.
 *
 *   POST /saml/acs       form field SAMLResponse (HTTP-POST binding), optional RelayState
 *   POST /saml/slo       form field SAMLRequest: a signed LogoutRequest
 *   GET  /saml/metadata  the SP EntityDescriptor
 *   GET  /healthz        "ok"
 *
 * One thread does everything: libmicrohttpd runs in external-select mode on its epoll
 * descriptor, polled with a signalfd by kw_ssod_serve(), so that the store and the verifier
 * (neither thread-safe) are only ever used from that thread and a slow client never blocks
 * another (sockets are non-blocking; each connection is cut after [sso] timeout seconds of
 * inactivity, and each request must be complete within 3 x [sso] timeout, so that clients
 * that trickle a byte now and then cannot hold the connection slots). Bodies are bounded by
 * [sso] max_body, connections by [sso] max_connections. */
#ifndef KW_SSO_HTTP_H
#define KW_SSO_HTTP_H

#include "sso_apply.h"

/* Listens on d->sso->listen, tells systemd READY=1, serves until SIGTERM or SIGINT
 * (STOPPING=1), then closes. Returns 0, or a negative errno-style code with error_r when it
 * cannot start. */
int kw_ssod_serve(struct kw_ssod *d, const char *database, const char **error_r);

#endif
