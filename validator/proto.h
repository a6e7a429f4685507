/* proto.h: the validator's line protocol, version 1 (doc/protocol.md is normative): parsing a
 * client's line and the names of the answer codes and error reasons. The protocol's words
 * (version, line limit, verbs, fields, codes, reasons) are libkeywarden/keywarden_protocol.h's,
 * shared with the client; this header adds the daemon's enums over them.
 *
 * Pure functions without I/O, allocation or global state, so that the daemon, the tests and a
 * libFuzzer target link them alike. A parsed request points into the caller's line buffer and
 * is valid as long as that buffer is. */
#ifndef KW_PROTO_H
#define KW_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "keywarden_protocol.h"

enum kw_proto_verb {
	KW_PROTO_VERB_VERSION,
	KW_PROTO_VERB_CHECK,
};

/* FAIL codes. */
enum kw_proto_code {
	KW_PROTO_CODE_INVALID,
	KW_PROTO_CODE_EXPIRED,
	KW_PROTO_CODE_DELETED,
	KW_PROTO_CODE_DISABLED,
	KW_PROTO_CODE_RATE_LIMITED,
	KW_PROTO_CODE_TEMP_FAIL,
	KW_PROTO_CODE_COUNT
};

/* ERROR reasons (the connection is closed after them). */
enum kw_proto_reason {
	KW_PROTO_REASON_VERSION,
	KW_PROTO_REASON_LINE_TOO_LONG,
	KW_PROTO_REASON_PROTOCOL,
	KW_PROTO_REASON_NOT_ALLOWED,
	KW_PROTO_REASON_IDLE,
	KW_PROTO_REASON_BUSY,
	KW_PROTO_REASON_COUNT
};

struct kw_proto_field {
	const char *s; /* NULL when absent */
	size_t len;
};

struct kw_proto_request {
	enum kw_proto_verb verb;
	/* VERSION */
	unsigned major, minor;
	/* CHECK */
	uint32_t id;
	struct kw_proto_field service, remote_ip, token;
};

/* Parses one line, without its LF, of len bytes. Returns 0, or -EPROTO for a malformed line
 * (unknown verb, bad id, bad field, missing token=, NUL or CR); on -EPROTO, *what_r (when not
 * NULL) names what was wrong, for the log. Never reads beyond line + len. */
int kw_proto_parse(const char *line, size_t len, struct kw_proto_request *req_r,
		   const char **what_r);

/* The fields of an OK answer after the id, for printf: token_id (unsigned long long), account,
 * user, role, expires (strings). */
#define KW_PROTO_OK_FIELDS_FMT                                                                     \
	KW_PROTO_FIELD_TOKEN_ID "=%llu\t" KW_PROTO_FIELD_ACCOUNT "=%s\t" KW_PROTO_FIELD_USER       \
				"=%s\t" KW_PROTO_FIELD_ROLE "=%s\t" KW_PROTO_FIELD_EXPIRES "=%s"

const char *kw_proto_code_name(enum kw_proto_code code);
const char *kw_proto_reason_name(enum kw_proto_reason reason);

#endif
