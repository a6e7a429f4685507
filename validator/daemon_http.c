/* daemon_http.c: the HTTP check endpoint of keywarden-validator (doc/http-authz.md), for
 * nginx auth_request, Envoy ext_authz (HTTP mode) and Traefik forwardAuth.
 *
 * It lives in the socket protocol's event loop (daemon_server.c owns the connections, their
 * buffers, deadlines and output bound: daemon_conn.h) and answers each request with the same
 * call as CHECK (kw_server_check(): rate limit, checker, last use, failed-check counts), so
 * that both front ends share one store connection, one token cache and one set of rules.
 * Requests are parsed by http.c, a pure function; this file maps a verdict to a status:
 *
 *   OK                                   200 + X-Keywarden-* headers
 *   invalid, expired, deleted, disabled  401 + WWW-Authenticate: APIKey + X-Keywarden-Reason
 *   role below min_role, rate_limited    403 (+ Retry-After for rate_limited: nginx turns a 429
 *                                        into a 500)
 *   temp_fail                            503
 *
 * always with Cache-Control: no-store and an empty body. Keep-alive and pipelining: answers go
 * out in request order (requests are answered synchronously); a body (Content-Length) is read
 * and discarded; a chunked body is not: the request is answered and the connection closed. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "daemon_conn.h"
#include "http.h"

#define BODY_SKIP_MAX (64 * 1024) /* a larger body is not read: answer, then close */
#define RESPONSE_MAX 4096
#define KIND_APIKEY "apikey"

struct resp {
	char buf[RESPONSE_MAX];
	size_t len;
	bool overflow;
};

static void put(struct resp *r, const char *s, size_t n)
{
	if (r->overflow || r->len + n > sizeof(r->buf)) {
		r->overflow = true;
		return;
	}
	memcpy(r->buf + r->len, s, n);
	r->len += n;
}

#define PUT_LIT(r, lit) put((r), (lit), sizeof(lit) - 1)

static void put_str(struct resp *r, const char *s)
{
	put(r, s, strlen(s));
}

static void put_uint(struct resp *r, unsigned long long v)
{
	char tmp[24];
	int n = snprintf(tmp, sizeof(tmp), "%llu", v);

	put(r, tmp, (size_t)n);
}

static const char *status_text(unsigned status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Error";
	}
}

/* "Date: ...\r\n", formatted once per second. */
static const char *http_date(struct kw_server *s)
{
	time_t t = time(NULL);
	struct tm tm;

	if ((int64_t)t != s->http_date_sec) {
		gmtime_r(&t, &tm);
		strftime(s->http_date, sizeof(s->http_date), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n",
			 &tm);
		s->http_date_sec = (int64_t)t;
	}
	return s->http_date;
}

/* The status line and the headers every answer has. */
static void start(struct kw_server *s, struct resp *r, unsigned minor, unsigned status)
{
	put_str(r, minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ");
	put_uint(r, status);
	PUT_LIT(r, " ");
	put_str(r, status_text(status));
	PUT_LIT(r, "\r\nContent-Length: 0\r\nCache-Control: no-store\r\n");
	put_str(r, http_date(s));
}

static void finish(struct conn *c, struct resp *r, unsigned minor, bool keep)
{
	if (!keep)
		PUT_LIT(r, "Connection: close\r\n");
	else if (minor == 0)
		PUT_LIT(r, "Connection: keep-alive\r\n");
	PUT_LIT(r, "\r\n");
	if (r->overflow) {
		/* Cannot happen (names are bounded); answer what cannot be mistaken for a grant. */
		static const char fallback[] = "HTTP/1.1 500 Internal Server Error\r\n"
					       "Content-Length: 0\r\nCache-Control: no-store\r\n"
					       "Connection: close\r\n\r\n";
		kw_conn_out_append(c, fallback, sizeof(fallback) - 1);
		c->closing = true;
		return;
	}
	kw_conn_out_append(c, r->buf, r->len);
	if (!keep)
		c->closing = true;
}

/* A request that could not be parsed or is not for us. */
static void answer_error(struct kw_server *s, struct conn *c, unsigned minor, unsigned status,
			 const char *reason, bool keep)
{
	struct resp r = { .len = 0 };

	start(s, &r, minor, status);
	PUT_LIT(&r, "X-Keywarden-Reason: ");
	put_str(&r, reason);
	PUT_LIT(&r, "\r\n");
	if (status == 405)
		PUT_LIT(&r, "Allow: GET, HEAD, POST\r\n");
	finish(c, &r, minor, keep);
}

size_t kw_http_refusal(char *buf, size_t size, unsigned status)
{
	int n = snprintf(buf, size,
			 "HTTP/1.1 %u %s\r\nContent-Length: 0\r\nCache-Control: no-store\r\n"
			 "X-Keywarden-Reason: %s\r\n%sConnection: close\r\n\r\n",
			 status, status_text(status), status == 403 ? "not_allowed" : "busy",
			 status == 503 ? "Retry-After: 1\r\n" : "");

	return n < 0 ? 0 : (size_t)n >= size ? size - 1 : (size_t)n;
}

/* ---- the client's address ---- */

static bool net_match(const struct kw_vnet *net, int family, const uint8_t *addr)
{
	unsigned bits = net->prefix, full = bits / 8, rest = bits % 8;

	if (net->family != family)
		return false;
	if (memcmp(net->addr, addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (net->addr[full] & mask) == (addr[full] & mask);
}

static bool addr_trusted(const struct kw_vconf *vc, int family, const uint8_t *addr)
{
	for (size_t i = 0; i < vc->n_trusted; i++) {
		if (net_match(&vc->trusted[i], family, addr))
			return true;
	}
	return false;
}

/* Parses an address (len bytes) into family and addr; false when it is none. An IPv4-mapped
 * IPv6 address counts as the IPv4 one. */
static bool parse_addr(const char *s, size_t len, int *family_r, uint8_t addr[16])
{
	char buf[INET6_ADDRSTRLEN];

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, addr) == 1) {
		*family_r = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, buf, addr) == 1) {
		static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
		if (memcmp(addr, mapped, 12) == 0) {
			memmove(addr, addr + 12, 4);
			*family_r = AF_INET;
		} else {
			*family_r = AF_INET6;
		}
		return true;
	}
	return false;
}

static void trim(const char **s, size_t *len)
{
	while (*len > 0 && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
		(*len)--;
}

/* The client's address as text into ip (INET6_ADDRSTRLEN), "" when unknown: from
 * X-Forwarded-For (the rightmost address that is not itself a trusted proxy) or X-Real-IP
 * when the peer is a trusted proxy, else the peer's own address. A forwarded value that does
 * not parse is ignored as a whole (the peer's address is used). */
static void client_address(const struct kw_vconf *vc, const struct conn *c,
			   const struct kw_http_request *req, char *ip)
{
	bool trusted = c->unix_peer ? vc->trust_unix
				    : c->family != 0 && addr_trusted(vc, c->family, c->addr);
	uint8_t addr[16];
	int family;

	snprintf(ip, INET6_ADDRSTRLEN, "%s", c->addr_text);
	if (!trusted)
		return;
	if (req->forwarded_for.s != NULL) {
		const char *v = req->forwarded_for.s;
		size_t end = req->forwarded_for.len;
		const char *pick = NULL;
		size_t pick_len = 0;

		for (;;) {
			size_t start = end;
			while (start > 0 && v[start - 1] != ',')
				start--;
			const char *e = v + start;
			size_t elen = end - start;
			trim(&e, &elen);
			if (!parse_addr(e, elen, &family, addr))
				return; /* malformed: keep the peer's address */
			pick = e;
			pick_len = elen;
			if (!addr_trusted(vc, family, addr) || start == 0)
				break;
			end = start - 1;
		}
		parse_addr(pick, pick_len, &family, addr);
		inet_ntop(family, addr, ip, INET6_ADDRSTRLEN);
		return;
	}
	if (req->real_ip.s != NULL) {
		const char *e = req->real_ip.s;
		size_t elen = req->real_ip.len;
		trim(&e, &elen);
		if (parse_addr(e, elen, &family, addr))
			inet_ntop(family, addr, ip, INET6_ADDRSTRLEN);
	}
}

/* The rate limit's key of a client: its address folded into 63 bits with the top bit set (a
 * peer uid, the key of socket clients, never has it); the peer uid when no address is known. */
static uint64_t rate_key(const struct conn *c, const char *ip)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	if (ip[0] == '\0')
		return c->uid;
	for (const char *p = ip; *p != '\0'; p++) {
		h ^= (unsigned char)*p;
		h *= 0x100000001b3ULL;
	}
	return h | (1ULL << 63);
}

/* ---- answering ---- */

/* Copies the OK fields ("token_id=..\taccount=..") as X-Keywarden-Token-Id: ... headers, and
 * finds the role among them. */
/* Whether a Bearer credential names one of the 1-hour access tokens (issue 11): their ids
 * start at KW_SESSION_TOKEN_ID_BASE (store.h). Only the id is read; the check does the rest. */
static bool is_access_token(const struct kw_proto_field *cred)
{
	unsigned long long id = 0;
	size_t i = 0;

	while (i < cred->len && i < 20 && cred->s[i] >= '0' && cred->s[i] <= '9')
		id = id * 10 + (unsigned long long)(cred->s[i++] - '0');
	return i > 0 && i < 20 && id >= KW_SESSION_TOKEN_ID_BASE;
}

static void put_fields(struct resp *r, const char *fields, size_t len, const char **role_r,
		       size_t *role_len_r, bool *kind_r)
{
	size_t i = 0;

	while (i < len) {
		const char *tab = memchr(fields + i, '\t', len - i);
		size_t end = tab != NULL ? (size_t)(tab - fields) : len;
		const char *eq = memchr(fields + i, '=', end - i);

		if (eq != NULL) {
			const char *k = fields + i, *v = eq + 1;
			size_t klen = (size_t)(eq - k), vlen = end - (size_t)(v - fields);
			bool up = true;

			PUT_LIT(r, "X-Keywarden-");
			for (size_t j = 0; j < klen; j++) {
				char ch = k[j];
				if (ch == '_') {
					PUT_LIT(r, "-");
					up = true;
					continue;
				}
				if (up && ch >= 'a' && ch <= 'z')
					ch = (char)(ch - 32);
				up = false;
				put(r, &ch, 1);
			}
			PUT_LIT(r, ": ");
			for (size_t j = 0; j < vlen; j++) {
				/* The store refuses control characters in names; never let one
				 * end a header line all the same. */
				char ch = (unsigned char)v[j] < ' ' || v[j] == 0x7f ? '?' : v[j];
				put(r, &ch, 1);
			}
			PUT_LIT(r, "\r\n");
			if (klen == sizeof(KW_PROTO_FIELD_KIND) - 1 &&
			    memcmp(k, KW_PROTO_FIELD_KIND, klen) == 0)
				*kind_r = true;
			if (klen == sizeof(KW_PROTO_FIELD_ROLE) - 1 &&
			    memcmp(k, KW_PROTO_FIELD_ROLE, klen) == 0) {
				*role_r = v;
				*role_len_r = vlen;
			}
		}
		i = end + 1;
	}
}

static void answer_denied(struct kw_server *s, struct resp *r, unsigned minor,
			  enum kw_proto_code code)
{
	const char *reason = kw_proto_code_name(code);

	switch (code) {
	case KW_PROTO_CODE_RATE_LIMITED:
		start(s, r, minor, 403);
		PUT_LIT(r, "Retry-After: ");
		put_uint(r, s->vc->rate_limit_block);
		PUT_LIT(r, "\r\n");
		break;
	case KW_PROTO_CODE_TEMP_FAIL:
		start(s, r, minor, 503);
		PUT_LIT(r, "Retry-After: 1\r\n");
		break;
	default:
		start(s, r, minor, 401);
		PUT_LIT(r, "WWW-Authenticate: APIKey\r\n");
		break;
	}
	PUT_LIT(r, "X-Keywarden-Reason: ");
	put_str(r, reason);
	PUT_LIT(r, "\r\n");
}

/* The highest rank that min_role (query parameter and header) asks for, -1 for none; false
 * when a role named there does not exist (the answer is then 500: a proxy misconfigured)
 * or cannot be looked up (503). */
static int required_rank(struct kw_server *s, const struct kw_http_request *req, int *rank_r)
{
	char name[KW_ROLE_MAX + 1];
	int rank = -1, r, ret;

	ret = kw_http_query_param(&req->query, "min_role", name, sizeof(name));
	if (ret == -EINVAL)
		return -ENOENT;
	if (ret == 0) {
		if ((ret = kw_checker_role_rank(s->checker, name, strlen(name), &r)) < 0)
			return ret;
		rank = r;
	}
	if (req->min_role.s != NULL) {
		if ((ret = kw_checker_role_rank(s->checker, req->min_role.s, req->min_role.len,
						&r)) < 0)
			return ret;
		if (r > rank)
			rank = r;
	}
	*rank_r = rank;
	return 0;
}

static void log_request(const struct conn *c, const char *ip, unsigned status, const char *why,
			uint64_t token_id)
{
	if (c->unix_peer)
		kw_debug("HTTP peer uid=%u pid=%d connection %u: client=%s %u %s token_id=%llu",
			 (unsigned)c->uid, (int)c->pid, c->id, ip[0] != '\0' ? ip : "-", status,
			 why, (unsigned long long)token_id);
	else
		kw_debug("HTTP peer %s connection %u: client=%s %u %s token_id=%llu", c->addr_text,
			 c->id, ip[0] != '\0' ? ip : "-", status, why,
			 (unsigned long long)token_id);
}

static void handle_request(struct kw_server *s, struct conn *c, const struct kw_http_request *req,
			   bool keep, int64_t now)
{
	struct kw_proto_field scheme, cred;
	struct kw_check_answer res;
	struct resp r = { .len = 0 };
	char ip[INET6_ADDRSTRLEN];
	const char *role = NULL;
	size_t role_len = 0;
	bool kind = false;
	int need = -1, have, ret;

	if (!kw_http_path_is_authz(&req->path)) {
		answer_error(s, c, req->minor, 404, "not_found", keep);
		return;
	}
	client_address(s->vc, c, req, ip);
	if (req->authorization.s == NULL ||
	    kw_http_auth_split(&req->authorization, &scheme, &cred) < 0) {
		/* Nothing to check: no count, no audit (a browser's first request). */
		start(s, &r, req->minor, 401);
		PUT_LIT(&r, "WWW-Authenticate: APIKey\r\nX-Keywarden-Reason: missing\r\n");
		finish(c, &r, req->minor, keep);
		if (kw_log_enabled(KW_LOG_DEBUG))
			log_request(c, ip, 401, "missing", 0);
		return;
	}
	if (kw_http_field_is(&scheme, "APIKey") ||
	    (kw_http_field_is(&scheme, "Bearer") && is_access_token(&cred))) {
		kw_server_check(s, c, rate_key(c, ip), c->uid, cred.s, cred.len, ip, strlen(ip),
				now, &res);
	} else {
		/* Another scheme, or a Bearer credential that is not one of our 1-hour access
		 * tokens (a permanent token belongs under APIKey): answered as an unknown token
		 * (401 invalid), counted alike. */
		static const char none[] = "-";
		kw_server_check(s, c, rate_key(c, ip), c->uid, none, 1, ip, strlen(ip), now, &res);
	}
	if (!res.ok) {
		answer_denied(s, &r, req->minor, res.code);
		finish(c, &r, req->minor, keep);
		if (kw_log_enabled(KW_LOG_DEBUG))
			log_request(c, ip,
				    res.code == KW_PROTO_CODE_TEMP_FAIL      ? 503
				    : res.code == KW_PROTO_CODE_RATE_LIMITED ? 403
									     : 401,
				    kw_proto_code_name(res.code), res.token_id);
		return;
	}
	start(s, &r, req->minor, 200);
	put_fields(&r, res.fields, res.fields_len, &role, &role_len, &kind);
	ret = required_rank(s, req, &need);
	if (ret == 0 && need >= 0 && role != NULL)
		ret = kw_checker_role_rank(s->checker, role, role_len, &have);
	if (ret < 0) {
		r.len = 0;
		if (ret == -ENOENT) {
			start(s, &r, req->minor, 500);
			PUT_LIT(&r, "X-Keywarden-Reason: unknown_min_role\r\n");
		} else {
			answer_denied(s, &r, req->minor, KW_PROTO_CODE_TEMP_FAIL);
		}
		finish(c, &r, req->minor, keep);
		if (kw_log_enabled(KW_LOG_DEBUG))
			log_request(c, ip, ret == -ENOENT ? 500 : 503, "min_role", res.token_id);
		return;
	}
	if (need >= 0 && (role == NULL || have < need)) {
		r.len = 0;
		start(s, &r, req->minor, 403);
		PUT_LIT(&r, "X-Keywarden-Reason: insufficient_role\r\n");
		finish(c, &r, req->minor, keep);
		if (kw_log_enabled(KW_LOG_DEBUG))
			log_request(c, ip, 403, "insufficient_role", res.token_id);
		return;
	}
	if (!kind) /* an access token's fields say kind=access; a permanent token's say nothing */
		PUT_LIT(&r, "X-Keywarden-Kind: " KIND_APIKEY "\r\n");
	finish(c, &r, req->minor, keep);
	if (kw_log_enabled(KW_LOG_DEBUG))
		log_request(c, ip, 200, "OK", res.token_id);
}

bool kw_http_conn_partial(const struct conn *c)
{
	return c->in_len > 0 || c->skip > 0;
}

void kw_http_conn_process(struct kw_server *s, struct conn *c, int64_t now)
{
	size_t pos = 0;

	while (!c->closing && c->out_len - c->out_off < OUT_HIGH) {
		struct kw_http_request req;
		const char *what = NULL;
		bool keep;
		int ret;

		if (c->skip > 0) {
			size_t n = c->in_len - pos < c->skip ? c->in_len - pos : (size_t)c->skip;
			pos += n;
			c->skip -= n;
			if (c->skip > 0)
				break;
		}
		if (pos == c->in_len)
			break;
		ret = kw_http_parse(c->in + pos, c->in_len - pos, s->vc->http_max_headers, &req,
				    &what);
		if (ret == -EAGAIN)
			break;
		if (ret < 0) {
			unsigned status = ret == -E2BIG             ? 431
					  : ret == -ENOSYS          ? 405
					  : ret == -EPROTONOSUPPORT ? 505
								    : 400;
			kw_notice("HTTP connection %u (%s%s): protocol violation: %s", c->id,
				  c->unix_peer ? "Unix peer" : "peer ",
				  c->unix_peer ? "" : c->addr_text, what);
			answer_error(s, c, 1, status,
				     status == 431   ? "header_too_large"
				     : status == 405 ? "method_not_allowed"
						     : "bad_request",
				     false);
			pos = c->in_len;
			break;
		}
		keep = req.keep_alive && !req.chunked && req.body_len <= BODY_SKIP_MAX;
		handle_request(s, c, &req, keep, now);
		pos += req.head_len;
		if (keep)
			c->skip = req.body_len;
		else
			pos = c->in_len; /* what follows is not read */
	}
	kw_conn_consume(c, pos);
	if (c->closing)
		return;
	if (c->in_len == c->in_cap) {
		kw_notice("HTTP connection %u: protocol violation: request head longer than %zu "
			  "bytes",
			  c->id, c->in_cap);
		answer_error(s, c, 1, 431, "header_too_large", false);
		kw_conn_consume(c, c->in_len);
		return;
	}
	if (c->eof && c->in_len > 0) {
		size_t dropped = c->in_len;

		kw_conn_consume(c, c->in_len);
		kw_debug("HTTP connection %u: peer closed in the middle of a request (%zu bytes "
			 "dropped)",
			 c->id, dropped);
	}
}
