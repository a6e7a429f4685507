/* http.h: the request side of the validator's HTTP check endpoint (doc/http-authz.md):
 * parsing one HTTP/1.x request head as nginx auth_request, Envoy ext_authz (HTTP mode) and
 * Traefik forwardAuth send it, and the small helpers that read its fields.
 *
 * Pure functions without I/O, allocation or global state, on untrusted bytes, so that the
 * daemon (daemon_http.c), the unit test and a libFuzzer target link them alike. A parsed
 * request points into the caller's buffer and is valid as long as that buffer is. */
#ifndef KW_HTTP_H
#define KW_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h" /* struct kw_proto_field: a (pointer, length) view */

/* The limits of a request head ([validator] http_max_request, http_max_headers) are
 * settings: their defaults and bounds are in lib/conf.c's table. */

enum kw_http_method {
	KW_HTTP_GET,
	KW_HTTP_HEAD,
	KW_HTTP_POST,
};

struct kw_http_request {
	enum kw_http_method method;
	unsigned minor;              /* HTTP/1.minor */
	struct kw_proto_field path;  /* the target up to '?' */
	struct kw_proto_field query; /* after '?' (s == NULL without one) */
	struct kw_proto_field authorization, min_role, forwarded_for, real_ip;
	bool keep_alive;   /* from the version and Connection */
	bool chunked;      /* a Transfer-Encoding was sent: the body cannot be skipped */
	uint64_t body_len; /* Content-Length, 0 when absent */
	size_t head_len;   /* bytes of the head, the empty line's CRLF included */
	unsigned n_headers;
};

/* Parses the request head at the start of buf (len bytes; more may follow: pipelining).
 * Returns
 *   0          a complete head: *req_r filled, req_r->head_len says where the body starts;
 *   -EAGAIN    not complete yet (no byte seen so far is wrong): read more;
 *   -EPROTO    malformed (bad request line, header syntax, bare CR or LF, obs-fold, NUL,
 *              control bytes, a missing or repeated Host in HTTP/1.1, a repeated
 *              Authorization, Content-Length, or both Content-Length and Transfer-Encoding);
 *   -E2BIG     more than max_headers header lines;
 *   -ENOSYS    a method other than GET, HEAD, POST;
 *   -EPROTONOSUPPORT  a version other than HTTP/1.0 and HTTP/1.1.
 * On failure *what_r (when not NULL) names what was wrong, for the log. Never reads beyond
 * buf + len. */
int kw_http_parse(const char *buf, size_t len, unsigned max_headers, struct kw_http_request *req_r,
		  const char **what_r);

/* True when path is /authz or below it (/authz/...). */
bool kw_http_path_is_authz(const struct kw_proto_field *path);

/* The value of the query parameter name (percent- and '+'-decoded) into out (size bytes, NUL
 * terminated). Returns 0, -ENOENT when absent, -EINVAL when malformed or too long. */
int kw_http_query_param(const struct kw_proto_field *query, const char *name, char *out,
			size_t size);

/* Splits an Authorization value into scheme and credentials (blanks trimmed). Returns 0 or
 * -EINVAL (empty scheme or no credentials). */
int kw_http_auth_split(const struct kw_proto_field *value, struct kw_proto_field *scheme_r,
		       struct kw_proto_field *credentials_r);

/* True when the field equals s, ASCII case-insensitively. */
bool kw_http_field_is(const struct kw_proto_field *f, const char *s);

#endif
