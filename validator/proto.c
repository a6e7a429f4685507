/* proto.c: parsing the validator protocol's request lines (see proto.h, doc/protocol.md). */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "proto.h"

static const char *const code_names[KW_PROTO_CODE_COUNT] = {
	[KW_PROTO_CODE_INVALID] = KW_PROTO_FAIL_CODE_INVALID,
	[KW_PROTO_CODE_EXPIRED] = KW_PROTO_FAIL_CODE_EXPIRED,
	[KW_PROTO_CODE_DELETED] = KW_PROTO_FAIL_CODE_DELETED,
	[KW_PROTO_CODE_DISABLED] = KW_PROTO_FAIL_CODE_DISABLED,
	[KW_PROTO_CODE_RATE_LIMITED] = KW_PROTO_FAIL_CODE_RATE_LIMITED,
	[KW_PROTO_CODE_TEMP_FAIL] = KW_PROTO_FAIL_CODE_TEMP_FAIL,
};

static const char *const reason_names[KW_PROTO_REASON_COUNT] = {
	[KW_PROTO_REASON_VERSION] = KW_PROTO_ERROR_REASON_VERSION,
	[KW_PROTO_REASON_LINE_TOO_LONG] = KW_PROTO_ERROR_REASON_LINE_TOO_LONG,
	[KW_PROTO_REASON_PROTOCOL] = KW_PROTO_ERROR_REASON_PROTOCOL,
	[KW_PROTO_REASON_NOT_ALLOWED] = KW_PROTO_ERROR_REASON_NOT_ALLOWED,
	[KW_PROTO_REASON_IDLE] = KW_PROTO_ERROR_REASON_IDLE,
	[KW_PROTO_REASON_BUSY] = KW_PROTO_ERROR_REASON_BUSY,
};

const char *kw_proto_code_name(enum kw_proto_code code)
{
	return (unsigned)code < KW_PROTO_CODE_COUNT ? code_names[code]
						    : KW_PROTO_FAIL_CODE_TEMP_FAIL;
}

const char *kw_proto_reason_name(enum kw_proto_reason reason)
{
	return (unsigned)reason < KW_PROTO_REASON_COUNT ? reason_names[reason]
							: KW_PROTO_ERROR_REASON_PROTOCOL;
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

/* True when the field (or key) f of flen bytes is exactly word. */
static bool is_word(const char *f, size_t flen, const char *word)
{
	size_t n = strlen(word);

	return flen == n && memcmp(f, word, n) == 0;
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
		if (is_word(f, klen, KW_PROTO_FIELD_TOKEN)) {
			/* The credential is the rest of the line, TABs included. */
			req->token.s = c->line + start + klen + 1;
			req->token.len = c->len - start - klen - 1;
			return 0;
		}
		if (is_word(f, klen, KW_PROTO_FIELD_SERVICE)) {
			req->service.s = f + klen + 1;
			req->service.len = flen - klen - 1;
		} else if (is_word(f, klen, KW_PROTO_FIELD_REMOTE_IP)) {
			req->remote_ip.s = f + klen + 1;
			req->remote_ip.len = flen - klen - 1;
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
	if (is_word(f, flen, KW_PROTO_CMD_CHECK))
		ret = parse_check(&c, &req, what_r);
	else if (is_word(f, flen, KW_PROTO_CMD_VERSION))
		ret = parse_version(&c, &req, what_r);
	else
		ret = fail(what_r, "unknown verb");
	if (ret == 0)
		*req_r = req;
	return ret;
}
