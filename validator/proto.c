/* proto.c: parsing the validator protocol's request lines (see proto.h, doc/protocol.md). */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "proto.h"

static const char *const code_names[KW_PROTO_CODE_COUNT] = {
	[KW_PROTO_CODE_INVALID] = "invalid",           [KW_PROTO_CODE_EXPIRED] = "expired",
	[KW_PROTO_CODE_DELETED] = "deleted",           [KW_PROTO_CODE_DISABLED] = "disabled",
	[KW_PROTO_CODE_RATE_LIMITED] = "rate_limited", [KW_PROTO_CODE_TEMP_FAIL] = "temp_fail",
};

static const char *const reason_names[KW_PROTO_REASON_COUNT] = {
	[KW_PROTO_REASON_VERSION] = "version",   [KW_PROTO_REASON_LINE_TOO_LONG] = "line_too_long",
	[KW_PROTO_REASON_PROTOCOL] = "protocol", [KW_PROTO_REASON_NOT_ALLOWED] = "not_allowed",
	[KW_PROTO_REASON_IDLE] = "idle",         [KW_PROTO_REASON_BUSY] = "busy",
};

const char *kw_proto_code_name(enum kw_proto_code code)
{
	return (unsigned)code < KW_PROTO_CODE_COUNT ? code_names[code] : "temp_fail";
}

const char *kw_proto_reason_name(enum kw_proto_reason reason)
{
	return (unsigned)reason < KW_PROTO_REASON_COUNT ? reason_names[reason] : "protocol";
}

static int fail(const char **what_r, const char *what)
{
	if (what_r != NULL)
		*what_r = what;
	return -EPROTO;
}

/* Decimal without sign or leading zero, at most max. */
static int parse_number(const char *s, size_t len, uint64_t max, uint64_t *v_r)
{
	uint64_t v = 0;

	if (len == 0 || len > 10 || (s[0] == '0' && len > 1))
		return -EPROTO;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EPROTO;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > max)
		return -EPROTO;
	*v_r = v;
	return 0;
}

/* Splits fields on TAB: the field at *pos, and whether another follows. */
struct cursor {
	const char *line;
	size_t len, pos;
	bool more; /* a field (possibly empty) remains */
};

static void next_field(struct cursor *c, const char **f_r, size_t *flen_r)
{
	const char *start = c->line + c->pos;
	const char *tab = memchr(start, '\t', c->len - c->pos);
	size_t flen = tab != NULL ? (size_t)(tab - start) : c->len - c->pos;

	*f_r = start;
	*flen_r = flen;
	c->pos += flen;
	if (tab != NULL) {
		c->pos++;
		c->more = true;
	} else {
		c->more = false;
	}
}

static bool is_verb(const char *f, size_t flen, const char *verb)
{
	size_t n = strlen(verb);

	return flen == n && memcmp(f, verb, n) == 0;
}

static int parse_version(struct cursor *c, struct kw_proto_request *req, const char **what_r)
{
	const char *f;
	size_t flen;
	uint64_t major, minor;

	if (!c->more)
		return fail(what_r, "VERSION without a major version");
	next_field(c, &f, &flen);
	if (parse_number(f, flen, UINT32_MAX, &major) < 0)
		return fail(what_r, "VERSION with a malformed major version");
	if (!c->more)
		return fail(what_r, "VERSION without a minor version");
	next_field(c, &f, &flen);
	if (parse_number(f, flen, UINT32_MAX, &minor) < 0)
		return fail(what_r, "VERSION with a malformed minor version");
	/* Further fields are ignored: a later minor version may add some. */
	req->verb = KW_PROTO_VERB_VERSION;
	req->major = (unsigned)major;
	req->minor = (unsigned)minor;
	return 0;
}

static int parse_check(struct cursor *c, struct kw_proto_request *req, const char **what_r)
{
	const char *f;
	size_t flen;
	uint64_t id;

	if (!c->more)
		return fail(what_r, "CHECK without an id");
	next_field(c, &f, &flen);
	if (parse_number(f, flen, UINT32_MAX, &id) < 0 || id == 0)
		return fail(what_r, "CHECK with a malformed id");
	req->verb = KW_PROTO_VERB_CHECK;
	req->id = (uint32_t)id;
	while (c->more) {
		size_t start = c->pos, klen = 0;

		next_field(c, &f, &flen);
		while (klen < flen && ((f[klen] >= 'a' && f[klen] <= 'z') || f[klen] == '_'))
			klen++;
		if (klen == 0 || klen == flen || f[klen] != '=')
			return fail(what_r, "CHECK with a field that is not key=value");
		if (klen == 5 && memcmp(f, "token", 5) == 0) {
			/* The credential is the rest of the line, TABs included. */
			req->token.s = c->line + start + 6;
			req->token.len = c->len - start - 6;
			return 0;
		}
		if (klen == 7 && memcmp(f, "service", 7) == 0) {
			req->service.s = f + 8;
			req->service.len = flen - 8;
		} else if (klen == 9 && memcmp(f, "remote_ip", 9) == 0) {
			req->remote_ip.s = f + 10;
			req->remote_ip.len = flen - 10;
		}
		/* Unknown keys are ignored. */
	}
	return fail(what_r, "CHECK without token=");
}

int kw_proto_parse(const char *line, size_t len, struct kw_proto_request *req_r,
		   const char **what_r)
{
	struct kw_proto_request req;
	struct cursor c = { .line = line, .len = len, .pos = 0, .more = true };
	const char *f;
	size_t flen;
	int ret;

	memset(&req, 0, sizeof(req));
	if (len == 0)
		return fail(what_r, "empty line");
	if (memchr(line, '\0', len) != NULL)
		return fail(what_r, "NUL byte in a line");
	if (memchr(line, '\r', len) != NULL)
		return fail(what_r, "CR in a line");
	next_field(&c, &f, &flen);
	if (is_verb(f, flen, "CHECK"))
		ret = parse_check(&c, &req, what_r);
	else if (is_verb(f, flen, "VERSION"))
		ret = parse_version(&c, &req, what_r);
	else
		ret = fail(what_r, "unknown verb");
	if (ret == 0)
		*req_r = req;
	return ret;
}
