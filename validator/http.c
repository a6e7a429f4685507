/* http.c: parsing the HTTP/1.x request heads of the check endpoint (see http.h,
 * doc/http-authz.md).
 *
 * Strict where leniency lets two parsers disagree about where a request ends or what it says
 * (the request smuggling family): CRLF only (no bare CR or LF), no obs-fold, no blank before a
 * header's colon, one Host, one Content-Length, never Content-Length with Transfer-Encoding,
 * and one of each header the answer depends on (Authorization, X-Keywarden-Min-Role,
 * X-Forwarded-For, X-Real-IP): a proxy that sends two is refused rather than guessed at.
 * Leading empty lines before a request line are skipped (RFC 9112, 2.2). */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "http.h"

#define CONTENT_LENGTH_MAX (1ULL << 53)

static int fail(const char **what_r, const char *what, int ret)
{
	if (what_r != NULL)
		*what_r = what;
	return ret;
}

/* RFC 9110 tchar. */
static bool is_tchar(unsigned char ch)
{
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
		return true;
	return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static unsigned char lower(unsigned char ch)
{
	return ch >= 'A' && ch <= 'Z' ? (unsigned char)(ch + 32) : ch;
}

static bool eq_nocase(const char *s, size_t len, const char *lit)
{
	size_t n = strlen(lit);

	if (len != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (lower((unsigned char)s[i]) != (unsigned char)lit[i])
			return false;
	}
	return true;
}

bool kw_http_field_is(const struct kw_proto_field *f, const char *s)
{
	size_t n = strlen(s);

	if (f->s == NULL || f->len != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (lower((unsigned char)f->s[i]) != lower((unsigned char)s[i]))
			return false;
	}
	return true;
}

/* The end of the head: the offset just past CRLF CRLF, 0 while it is not in buf yet, or
 * (size_t)-1 for a bare CR, bare LF or NUL. The scan starts after leading CRLFs (skip). */
static size_t head_end(const char *buf, size_t len, size_t skip)
{
	for (size_t i = skip; i < len; i++) {
		char ch = buf[i];

		if (ch == '\0' || ch == '\n')
			return (size_t)-1; /* an LF not consumed below is bare */
		if (ch != '\r')
			continue;
		if (i + 1 == len)
			return 0;
		if (buf[i + 1] != '\n')
			return (size_t)-1;
		if (i + 2 == len)
			return 0;
		if (buf[i + 2] == '\r') {
			if (i + 3 == len)
				return 0;
			if (buf[i + 3] != '\n')
				return (size_t)-1;
			return i + 4;
		}
		i++; /* past the LF */
	}
	return 0;
}

static int parse_request_line(const char *s, size_t len, struct kw_http_request *req,
			      const char **what_r)
{
	const char *sp1 = memchr(s, ' ', len), *sp2, *target, *version;
	size_t mlen, tlen, vlen;

	if (sp1 == NULL)
		return fail(what_r, "request line without blanks", -EPROTO);
	mlen = (size_t)(sp1 - s);
	for (size_t i = 0; i < mlen; i++) {
		if (!is_tchar((unsigned char)s[i]))
			return fail(what_r, "bad method", -EPROTO);
	}
	if (mlen == 0)
		return fail(what_r, "empty method", -EPROTO);
	target = sp1 + 1;
	sp2 = memchr(target, ' ', len - (size_t)(target - s));
	if (sp2 == NULL)
		return fail(what_r, "request line without a version", -EPROTO);
	tlen = (size_t)(sp2 - target);
	version = sp2 + 1;
	vlen = len - (size_t)(version - s);
	if (tlen == 0 || target[0] != '/')
		return fail(what_r, "request target not in origin form", -EPROTO);
	for (size_t i = 0; i < tlen; i++) {
		unsigned char ch = (unsigned char)target[i];
		if (ch <= ' ' || ch >= 0x7f)
			return fail(what_r, "bad byte in the request target", -EPROTO);
	}
	if (vlen != 8 || memcmp(version, "HTTP/", 5) != 0 || version[5] < '0' || version[5] > '9' ||
	    version[6] != '.' || version[7] < '0' || version[7] > '9')
		return fail(what_r, "bad HTTP version", -EPROTO);
	if (version[5] != '1' || version[7] > '1')
		return fail(what_r, "HTTP version not supported", -EPROTONOSUPPORT);
	req->minor = (unsigned)(version[7] - '0');
	if (mlen == 3 && memcmp(s, "GET", 3) == 0)
		req->method = KW_HTTP_GET;
	else if (mlen == 4 && memcmp(s, "HEAD", 4) == 0)
		req->method = KW_HTTP_HEAD;
	else if (mlen == 4 && memcmp(s, "POST", 4) == 0)
		req->method = KW_HTTP_POST;
	else
		return fail(what_r, "method not allowed", -ENOSYS);
	req->path.s = target;
	req->path.len = tlen;
	const char *q = memchr(target, '?', tlen);
	if (q != NULL) {
		req->path.len = (size_t)(q - target);
		req->query.s = q + 1;
		req->query.len = tlen - req->path.len - 1;
	}
	return 0;
}

/* Connection: a comma-separated list of tokens. */
static void parse_connection(const char *v, size_t len, struct kw_http_request *req)
{
	size_t i = 0;

	while (i < len) {
		size_t start, end;

		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		start = i;
		while (i < len && v[i] != ',')
			i++;
		end = i;
		while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
			end--;
		if (eq_nocase(v + start, end - start, "close"))
			req->keep_alive = false;
		else if (eq_nocase(v + start, end - start, "keep-alive") && req->minor == 0)
			req->keep_alive = true;
	}
}

static int set_once(struct kw_proto_field *f, const char *v, size_t len, const char **what_r,
		    const char *what)
{
	if (f->s != NULL)
		return fail(what_r, what, -EPROTO);
	f->s = v;
	f->len = len;
	return 0;
}

int kw_http_parse(const char *buf, size_t len, unsigned max_headers, struct kw_http_request *req_r,
		  const char **what_r)
{
	struct kw_http_request req;
	size_t skip = 0, end, pos, eol;
	bool have_host = false, have_length = false, close_seen;
	int ret;

	while (skip + 1 < len && buf[skip] == '\r' && buf[skip + 1] == '\n')
		skip += 2;
	if (skip == len || (skip + 1 == len && buf[skip] == '\r'))
		return fail(what_r, "incomplete", -EAGAIN);
	end = head_end(buf, len, skip);
	if (end == (size_t)-1)
		return fail(what_r, "bare CR, bare LF or NUL in the request head", -EPROTO);
	if (end == 0) {
		/* Fail early on too many lines, rather than when the buffer is full. */
		unsigned lines = 0;
		for (size_t i = skip; i < len; i++)
			lines += buf[i] == '\n';
		if (lines > max_headers + 1)
			return fail(what_r, "too many header lines", -E2BIG);
		return fail(what_r, "incomplete", -EAGAIN);
	}
	memset(&req, 0, sizeof(req));
	/* The request line. */
	eol = (size_t)((const char *)memchr(buf + skip, '\r', end - skip) - buf);
	ret = parse_request_line(buf + skip, eol - skip, &req, what_r);
	if (ret < 0)
		return ret;
	req.keep_alive = req.minor >= 1;
	close_seen = false;
	/* Header lines, up to the empty line. */
	for (pos = eol + 2; pos < end - 2; pos = eol + 2) {
		const char *line = buf + pos, *colon, *v;
		size_t llen, nlen, vlen;

		eol = (size_t)((const char *)memchr(line, '\r', end - pos) - buf);
		llen = eol - pos;
		if (++req.n_headers > max_headers)
			return fail(what_r, "too many header lines", -E2BIG);
		if (line[0] == ' ' || line[0] == '\t')
			return fail(what_r, "obsolete line folding", -EPROTO);
		colon = memchr(line, ':', llen);
		if (colon == NULL)
			return fail(what_r, "header line without a colon", -EPROTO);
		nlen = (size_t)(colon - line);
		if (nlen == 0)
			return fail(what_r, "empty header name", -EPROTO);
		for (size_t i = 0; i < nlen; i++) {
			if (!is_tchar((unsigned char)line[i]))
				return fail(what_r, "bad header name", -EPROTO);
		}
		v = colon + 1;
		vlen = llen - nlen - 1;
		while (vlen > 0 && (v[0] == ' ' || v[0] == '\t')) {
			v++;
			vlen--;
		}
		while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
			vlen--;
		for (size_t i = 0; i < vlen; i++) {
			unsigned char ch = (unsigned char)v[i];
			if ((ch < ' ' && ch != '\t') || ch == 0x7f)
				return fail(what_r, "control byte in a header value", -EPROTO);
		}
		if (eq_nocase(line, nlen, "host")) {
			if (have_host)
				return fail(what_r, "repeated Host", -EPROTO);
			have_host = true;
		} else if (eq_nocase(line, nlen, "authorization")) {
			if ((ret = set_once(&req.authorization, v, vlen, what_r,
					    "repeated Authorization")) < 0)
				return ret;
		} else if (eq_nocase(line, nlen, "x-keywarden-min-role")) {
			if ((ret = set_once(&req.min_role, v, vlen, what_r,
					    "repeated X-Keywarden-Min-Role")) < 0)
				return ret;
		} else if (eq_nocase(line, nlen, "x-forwarded-for")) {
			if ((ret = set_once(&req.forwarded_for, v, vlen, what_r,
					    "repeated X-Forwarded-For")) < 0)
				return ret;
		} else if (eq_nocase(line, nlen, "x-real-ip")) {
			if ((ret = set_once(&req.real_ip, v, vlen, what_r, "repeated X-Real-IP")) <
			    0)
				return ret;
		} else if (eq_nocase(line, nlen, "connection")) {
			parse_connection(v, vlen, &req);
			close_seen = close_seen || !req.keep_alive;
		} else if (eq_nocase(line, nlen, "content-length")) {
			uint64_t n = 0;
			if (have_length)
				return fail(what_r, "repeated Content-Length", -EPROTO);
			have_length = true;
			if (vlen == 0 || vlen > 16)
				return fail(what_r, "bad Content-Length", -EPROTO);
			for (size_t i = 0; i < vlen; i++) {
				if (v[i] < '0' || v[i] > '9')
					return fail(what_r, "bad Content-Length", -EPROTO);
				n = n * 10 + (uint64_t)(v[i] - '0');
			}
			if (n > CONTENT_LENGTH_MAX)
				return fail(what_r, "bad Content-Length", -EPROTO);
			req.body_len = n;
		} else if (eq_nocase(line, nlen, "transfer-encoding")) {
			req.chunked = true;
		}
	}
	if (close_seen)
		req.keep_alive = false;
	if (req.chunked && have_length)
		return fail(what_r, "both Content-Length and Transfer-Encoding", -EPROTO);
	if (req.minor >= 1 && !have_host)
		return fail(what_r, "HTTP/1.1 request without Host", -EPROTO);
	req.head_len = end;
	*req_r = req;
	return 0;
}

bool kw_http_path_is_authz(const struct kw_proto_field *path)
{
	static const char prefix[] = "/authz";
	size_t n = sizeof(prefix) - 1;

	if (path->s == NULL || path->len < n || memcmp(path->s, prefix, n) != 0)
		return false;
	return path->len == n || path->s[n] == '/';
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int kw_http_query_param(const struct kw_proto_field *query, const char *name, char *out,
			size_t size)
{
	size_t nlen = strlen(name), i = 0;

	if (query->s == NULL || size == 0)
		return -ENOENT;
	while (i <= query->len) {
		const char *amp = memchr(query->s + i, '&', query->len - i);
		size_t end = amp != NULL ? (size_t)(amp - query->s) : query->len;
		const char *p = query->s + i;
		size_t plen = end - i;

		if (plen > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == '=') {
			size_t o = 0;
			for (size_t j = nlen + 1; j < plen; j++) {
				char ch = p[j];
				if (ch == '+') {
					ch = ' ';
				} else if (ch == '%') {
					int hi, lo;
					if (j + 2 >= plen)
						return -EINVAL;
					hi = hexval(p[j + 1]);
					lo = hexval(p[j + 2]);
					if (hi < 0 || lo < 0)
						return -EINVAL;
					ch = (char)(hi * 16 + lo);
					j += 2;
				}
				if ((unsigned char)ch < ' ' || ch == 0x7f || o + 1 >= size)
					return -EINVAL;
				out[o++] = ch;
			}
			out[o] = '\0';
			return 0;
		}
		if (amp == NULL)
			break;
		i = end + 1;
	}
	return -ENOENT;
}

int kw_http_auth_split(const struct kw_proto_field *value, struct kw_proto_field *scheme_r,
		       struct kw_proto_field *credentials_r)
{
	const char *s = value->s;
	size_t len = value->len, i = 0, start;

	if (s == NULL)
		return -EINVAL;
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	start = i;
	while (i < len && s[i] != ' ' && s[i] != '\t')
		i++;
	if (i == start)
		return -EINVAL;
	scheme_r->s = s + start;
	scheme_r->len = i - start;
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	while (len > i && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (i == len)
		return -EINVAL;
	credentials_r->s = s + i;
	credentials_r->len = len - i;
	return 0;
}
