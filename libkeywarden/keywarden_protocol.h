/* keywarden_protocol.h: the words of the validator socket protocol, version 1, written once.
 *
 * doc/protocol.md is the normative text; this header is its vocabulary in C: the version, the
 * line limit, the verbs, the field names, the FAIL codes and ERROR reasons, and the default
 * socket path. libkeywarden (client.c), pam_keywarden and keywarden-validator (proto.c,
 * daemon_server.c, daemon_check.c) all spell the protocol with these macros, as Dovecot's
 * server and client share auth-client-interface.h; tests/validator/spec.py checks them
 * against doc/protocol.md.
 *
 * Macros only, no includes, no declarations: it costs a libc-only client nothing. It is
 * installed beside keywarden.h, which includes it for KW_DEFAULT_SOCKET_PATH, so the names
 * below are part of libkeywarden's public API (prefix KW_PROTO_). */
#ifndef KEYWARDEN_PROTOCOL_H
#define KEYWARDEN_PROTOCOL_H

/* Where the validator listens unless configured otherwise (keywarden.conf [validator] socket;
 * kw_client_new() with socket_path == NULL). */
#define KW_DEFAULT_SOCKET_PATH "/run/keywarden/validator.sock"

/* Protocol version: a peer refuses another major; a later minor only adds. */
#define KW_PROTO_MAJOR 1
#define KW_PROTO_MINOR 0
/* Longest line, LF included, that a client sends and the validator answers (a validator may be
 * configured to accept longer requests: [validator] max_line). */
#define KW_PROTO_LINE_MAX 8192
/* The bounds of [validator] max_line. */
#define KW_PROTO_LINE_MIN 512
#define KW_PROTO_LINE_LIMIT 65536

#define KW_PROTO_STR_(x) #x
#define KW_PROTO_STR(x) KW_PROTO_STR_(x) /* a number macro as a string literal */

/* Verbs: the first field of a line. VERSION opens the conversation on both sides; the client
 * sends CHECK; the validator answers OK or FAIL, or ERROR and closes. */
#define KW_PROTO_CMD_VERSION "VERSION"
#define KW_PROTO_CMD_CHECK "CHECK"
#define KW_PROTO_REPLY_OK "OK"
#define KW_PROTO_REPLY_FAIL "FAIL"
#define KW_PROTO_REPLY_ERROR "ERROR"

/* The VERSION line both sides send first, LF included. */
#define KW_PROTO_HELLO                                                                             \
	KW_PROTO_CMD_VERSION                                                                       \
	"\t" KW_PROTO_STR(KW_PROTO_MAJOR) "\t" KW_PROTO_STR(KW_PROTO_MINOR) "\n"

/* Field names (key=value). CHECK: service, remote_ip, then token, always last (its value is
 * the rest of the line). OK: token_id, account, user, role, expires. FAIL: code. ERROR:
 * reason. */
#define KW_PROTO_FIELD_SERVICE "service"
#define KW_PROTO_FIELD_REMOTE_IP "remote_ip"
#define KW_PROTO_FIELD_TOKEN "token"
#define KW_PROTO_FIELD_TOKEN_ID "token_id"
#define KW_PROTO_FIELD_ACCOUNT "account"
#define KW_PROTO_FIELD_USER "user"
#define KW_PROTO_FIELD_ROLE "role"
#define KW_PROTO_FIELD_EXPIRES "expires"
/* OK of a 1-hour access token only: kind=access (a permanent token's OK has no kind). */
#define KW_PROTO_FIELD_KIND "kind"
#define KW_PROTO_KIND_ACCESS "access"
#define KW_PROTO_FIELD_CODE "code"
#define KW_PROTO_FIELD_REASON "reason"

/* The expires value of a token that never expires (otherwise an RFC 3339 UTC instant). */
#define KW_PROTO_EXPIRES_NEVER "never"

/* The roles that role= names, highest first, as an initializer list (the store seeds the same
 * ranks in schema/001_init.sql; tests/unit/test_core checks that they agree). */
#define KW_PROTO_ROLE_NAMES                                                                        \
	"Administrators", "Engineers", "Purge and Prefetch only (API+Web)",                        \
		"Purge and Prefetch only (API)", "Users"

/* FAIL codes (the value of code=). */
#define KW_PROTO_FAIL_CODE_INVALID "invalid"
#define KW_PROTO_FAIL_CODE_EXPIRED "expired"
#define KW_PROTO_FAIL_CODE_DELETED "deleted"
#define KW_PROTO_FAIL_CODE_DISABLED "disabled"
#define KW_PROTO_FAIL_CODE_RATE_LIMITED "rate_limited"
#define KW_PROTO_FAIL_CODE_TEMP_FAIL "temp_fail"

/* ERROR reasons (the value of reason=); the validator closes the connection after them. */
#define KW_PROTO_ERROR_REASON_VERSION "version"
#define KW_PROTO_ERROR_REASON_LINE_TOO_LONG "line_too_long"
#define KW_PROTO_ERROR_REASON_PROTOCOL "protocol"
#define KW_PROTO_ERROR_REASON_NOT_ALLOWED "not_allowed"
#define KW_PROTO_ERROR_REASON_IDLE "idle"
#define KW_PROTO_ERROR_REASON_BUSY "busy"

#endif
