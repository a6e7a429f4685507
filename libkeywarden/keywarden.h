/* keywarden.h: libkeywarden, the client of the keywarden-validator socket (libc only).
 *
 * A service asks the validator whether an API token is valid and for whom. See
 * libkeywarden(3) for the full contract; doc/protocol.md for the wire protocol, whose words
 * (and the default socket path) keywarden_protocol.h holds, shared with the validator.
 *
 * Errors: functions return 0 on success or a negative errno value. A negative value from a
 * check means the validator could not be asked, was not trusted, or answered something that
 * is not protocol 1.x: the caller must treat it as a failure (fail closed), never as "valid".
 *
 * Trust: before the handshake the library checks who answers (libkeywarden(3), "SERVER
 * IDENTITY"): the socket's folder is not writable by group or others unless sticky and owned
 * by root or the server; the socket is a socket (not a link) owned by the server's uid
 * (SO_PEERCRED), or the server is root; the server's uid is root, this process's effective
 * uid, or the owner of the socket's folder when every folder above it is owned by root and
 * writable by root only. kw_client_set_server_uid() replaces the last rule by one exact uid.
 * A connection that fails a check is closed unused and the call returns -EPERM.
 *
 * Threads: a struct kw_client is not thread-safe; use one per thread, or serialise calls.
 * Distinct clients share nothing; the library has no global mutable state.
 * fork(): a client used in a child process notices the pid change and opens its own
 * connection; it never writes to or reads from the connection of its parent. */
#ifndef KEYWARDEN_H
#define KEYWARDEN_H

#include <stddef.h>
#include <sys/types.h>

#include "keywarden_protocol.h" /* KW_DEFAULT_SOCKET_PATH */

#ifdef __cplusplus
extern "C" {
#endif

/* Used when kw_client_new() gets timeout_ms <= 0. */
#define KW_DEFAULT_TIMEOUT_MS 5000

/* Sizes of the text fields of a result, terminating NUL included. An answer whose field does
 * not fit is refused as a protocol error (-EPROTO). */
#define KW_TOKEN_ID_SIZE 21 /* a decimal number below 2^64 */
#define KW_NAME_SIZE 256    /* account, user, role */
#define KW_EXPIRES_SIZE 40  /* "never" or an RFC 3339 UTC instant */

enum kw_check_status {
	KW_CHECK_OK = 0,       /* valid: the fields are set */
	KW_CHECK_INVALID,      /* malformed, unknown or wrong secret */
	KW_CHECK_EXPIRED,      /* past its expiry instant */
	KW_CHECK_DELETED,      /* deleted */
	KW_CHECK_DISABLED,     /* its issuer is disabled */
	KW_CHECK_RATE_LIMITED, /* this peer failed too often recently; retry later */
	KW_CHECK_TEMP_FAIL,    /* the validator cannot answer now; retry later */
};

struct kw_check_opts {
	const char *service;   /* the asking service, for the validator's log; may be NULL */
	const char *remote_ip; /* the address of the service's own client; may be NULL */
};

struct kw_check_result {
	enum kw_check_status status;
	/* Set when status == KW_CHECK_OK, empty strings otherwise. */
	char token_id[KW_TOKEN_ID_SIZE];
	char account[KW_NAME_SIZE];
	char user[KW_NAME_SIZE]; /* the token's issuer (login) */
	char role[KW_NAME_SIZE];
	char expires[KW_EXPIRES_SIZE]; /* "never" or e.g. "2027-01-31T23:59:59Z" */
};

struct kw_client;

/* Creates a client for the validator socket at socket_path (NULL: KW_DEFAULT_SOCKET_PATH).
 * timeout_ms bounds each call (connect, handshake, send and receive together); <= 0 means
 * KW_DEFAULT_TIMEOUT_MS. Does not connect: the first check does. Returns NULL with errno set
 * (ENOMEM, ENAMETOOLONG, EINVAL). The caller frees the client with kw_client_free(). */
struct kw_client *kw_client_new(const char *socket_path, int timeout_ms);

/* Requires the validator to run as exactly uid (its SO_PEERCRED uid), instead of the default
 * rule (root, this process's effective uid, or the owner of the socket's folder in a
 * root-owned tree). With systemd socket activation the listener is systemd, uid 0. The other
 * checks stay. (uid_t)-1 restores the default rule. Takes effect at the next connection: call
 * it before the first check. Returns 0, or -EINVAL for a NULL client. */
int kw_client_set_server_uid(struct kw_client *client, uid_t uid);

/* Why the last check call on client failed, when the library knows more than the errno: today
 * why the validator was not trusted (the call returned -EPERM), e.g. "validator runs as uid
 * 65534, expected uid 0". An empty string otherwise, and for a NULL client. Never NULL; holds
 * no token; valid until the next call on client. */
const char *kw_client_error(const struct kw_client *client);

/* Closes the connection, wipes and frees the client and sets *client to NULL. NULL and a
 * pointer to NULL are accepted. */
void kw_client_free(struct kw_client **client);

/* Asks whether token is valid. token is the bare token ("7711$...") or an Authorization header
 * value ("APIKey 7711$..."). opts may be NULL.
 * Returns 0 when the validator answered; res->status says how. A token that cannot be sent
 * (empty, too long, containing TAB, CR or LF) is answered KW_CHECK_INVALID without asking.
 * Returns a negative errno otherwise, and res is then set to status KW_CHECK_TEMP_FAIL with
 * empty fields: -ENOENT, -ECONNREFUSED, -EACCES (no validator on socket_path), -EPERM
 * (the validator is not trusted: see "Trust" above and kw_client_error()), -ETIMEDOUT,
 * -EPROTO (an answer that breaks the protocol), -EPROTONOSUPPORT (the validator does not
 * speak version 1), -ECONNRESET (the connection broke), -EBUSY (the validator refused the
 * connection), -EINVAL (bad argument or opts value containing TAB, CR or LF), -ENOMEM. */
int kw_client_check(struct kw_client *client, const char *token, const struct kw_check_opts *opts,
		    struct kw_check_result *res);

/* Like kw_client_check() for n tokens, pipelined on one connection: the requests are sent
 * without waiting for the answers. On 0, results[i] holds the answer for tokens[i]. On a
 * negative errno, every results[i] is set to KW_CHECK_TEMP_FAIL (no partial results). */
int kw_client_check_batch(struct kw_client *client, size_t n, const char *const tokens[],
			  const struct kw_check_opts *opts, struct kw_check_result results[]);

/* The protocol name of a status: "ok", "invalid", "expired", "deleted", "disabled",
 * "rate_limited", "temp_fail"; "unknown" for any other value. Never NULL. */
const char *kw_check_status_name(enum kw_check_status status);

#ifdef __cplusplus
}
#endif

#endif
