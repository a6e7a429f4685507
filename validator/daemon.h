/* daemon.h: the parts of keywarden-validator and what they share.
 *
 *   daemon.c         options, configuration (and its reload), signals, systemd, main()
 *   daemon_server.c  the epoll loop: listening sockets, connections, line framing, answers
 *   daemon_http.c    the HTTP check endpoint (GET /authz) in the same loop (daemon_conn.h)
 *   http.c           parsing HTTP request heads (no I/O; shared with the fuzz target)
 *   daemon_check.c   answering a CHECK: token cache, staleness rule, last-use coalescing
 *   daemon_rate.c    failing checks: throttling peers (by uid) that send many, and counting
 *                    them all for the audit log
 *   daemon_peers.c   connections per peer uid (max_connections_per_uid)
 *   proto.c          parsing request lines (no I/O; shared with the fuzz target)
 *
 * The daemon is single-threaded: nothing here is thread-safe, nothing needs to be. */
#ifndef KW_DAEMON_H
#define KW_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "log.h"
#include "proto.h"
#include "store.h"
#include "store_validator.h"
#include "token.h"

/* An address block of [validator] trusted_proxies. */
struct kw_vnet {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	unsigned prefix; /* bits */
};

/* Tunables of [validator] (and [log] level); re-read on SIGHUP. */
struct kw_vconf {
	unsigned socket_mode;
	bool has_socket_group;
	gid_t socket_group;
	uid_t *allow_uids;
	size_t n_allow_uids;
	gid_t *allow_gids;
	size_t n_allow_gids;
	unsigned idle_timeout;        /* seconds */
	unsigned max_connections;     /* as configured, lowered to fit RLIMIT_NOFILE */
	unsigned max_connections_uid; /* per peer uid; at most max_connections */
	unsigned line_timeout;        /* seconds from a line's first byte to its LF */
	size_t max_line;              /* bytes, LF included */
	unsigned last_use_flush;      /* seconds */
	unsigned rate_limit_failures; /* 0: no rate limiting */
	unsigned rate_limit_window;   /* seconds */
	unsigned rate_limit_block;    /* seconds */
	size_t cache_size;            /* token rows */
	unsigned lease_ms;            /* on a database server (lib/store_lease.c) */
	unsigned busy_poll_us;        /* 0: off (daemon_server.c, wait_events()) */
	enum kw_log_level log_level;
	/* The HTTP check endpoint (doc/http-authz.md). */
	char *http_listen;       /* NULL: off; "unix:PATH" or a loopback "ADDR:PORT" */
	struct kw_vnet *trusted; /* trusted_proxies: their X-Forwarded-For is believed */
	size_t n_trusted;
	bool trust_unix;           /* trusted_proxies holds "unix": peers on a Unix socket */
	size_t http_max_request;   /* bytes of a request head */
	unsigned http_max_headers; /* header lines of a request */
};

/* Parses the tunables of cfg into *vc (which the caller frees with kw_vconf_clear()). */
struct kw_config;
int kw_vconf_load(const struct kw_config *cfg, bool debug, struct kw_vconf *vc,
		  const char **error_r);
void kw_vconf_clear(struct kw_vconf *vc);
/* The socket address of a loopback "ADDR:PORT" http_listen value; -EINVAL for anything else. */
struct sockaddr_storage;
int kw_vconf_http_addr(const char *s, struct sockaddr_storage *sa_r);

/* ---- daemon_check.c ---- */
struct kw_checker;

/* Opens the database at db_path (and owns it: it reopens it when the file is replaced); keeps
 * key (owned by the caller, who frees it after the checker). */
int kw_checker_new(const char *db_path, struct kw_digest_key *key, size_t cache_size,
		   struct kw_checker **checker_r, const char **error_r);
void kw_checker_free(struct kw_checker **checker);
void kw_checker_set_cache_size(struct kw_checker *checker, size_t cache_size);
/* How long a database call may wait for another process's lock (default 100 ms). */
void kw_checker_set_lock_wait(struct kw_checker *checker, unsigned ms);
/* Called once per wakeup, after the requests to answer were read and before any is answered:
 * drops the cache if someone else changed the database, reopens a replaced database file, and
 * takes the time. On a database server it also keeps the lease (lib/store_lease.c): then the
 * cache answers only while the lease holds, and a lost connection is reconnected. */
void kw_checker_sync(struct kw_checker *checker);
/* The lease of a database server ([validator] lease_ms; no effect on SQLite). */
void kw_checker_set_lease(struct kw_checker *checker, unsigned ms);
/* fn(ctx) runs right before the checker renews its lease while answering (the lease lapsed
 * within a batch of lookups): a renewal lets writers return, so the answers decided so far
 * must be out first. NULL: none. */
void kw_checker_set_before_renew(struct kw_checker *checker, void (*fn)(void *ctx), void *ctx);
/* The lease's upkeep between requests: call on every turn of the loop (cheap: nothing is sent
 * unless a renewal or a reconnect is due or a notification came), and call
 * kw_checker_input() when the descriptor of kw_checker_fd() is readable. fd: -1 for none;
 * *epoch_r moves whenever the descriptor may have changed (watch the new one). timeout: ms
 * until kw_checker_tick() is due, -1 for never (SQLite). */
void kw_checker_tick(struct kw_checker *checker);
void kw_checker_input(struct kw_checker *checker);
int kw_checker_fd(struct kw_checker *checker, unsigned *epoch_r);
int kw_checker_timeout(struct kw_checker *checker);

/* The checker's verdict on one CHECK (libkeywarden's struct kw_check_result is the client's). */
struct kw_check_answer {
	bool ok;
	enum kw_proto_code code; /* when !ok */
	uint64_t token_id;       /* 0 when the token was malformed */
	const char *fields;      /* when ok: the answer's fields after the id, TAB-separated; */
	size_t fields_len;       /* valid until the next call into the checker */
};
/* Answers a CHECK of token (len bytes). ip (may be NULL) is recorded as last use. */
void kw_checker_check(struct kw_checker *checker, const char *token, size_t len, const char *ip,
		      size_t ip_len, struct kw_check_answer *res_r);
/* The rank of role name (len bytes; higher is more) into *rank_r. Returns 0, -ENOENT for no
 * such role, or -EIO when the database cannot tell (then answer temp_fail). Roles are cached
 * with the tokens and dropped with them. */
int kw_checker_role_rank(struct kw_checker *checker, const char *name, size_t len, int *rank_r);
/* Counts a failed check of peer uid for the audit log (nothing for OK and temp_fail answers).
 * res->token_id is 0 when no id was parsed, as for a rate_limited answer. */
void kw_checker_failed(struct kw_checker *checker, uid_t uid, const struct kw_check_answer *res);
/* Writes the coalesced last uses and the failed-check event (if any) in one transaction;
 * keeps both on failure. */
int kw_checker_flush(struct kw_checker *checker);
/* Rows waiting for kw_checker_flush(): last uses, plus one when failed checks were counted. */
size_t kw_checker_pending(const struct kw_checker *checker);

/* ---- daemon_rate.c ---- */
struct kw_rate;

struct kw_rate *kw_rate_new(void);
void kw_rate_free(struct kw_rate **rate);
void kw_rate_configure(struct kw_rate *rate, unsigned failures, unsigned window_s,
		       unsigned block_s);
/* key: a peer uid, or an HTTP client address folded into 64 bits with the top bit set. */
bool kw_rate_blocked(struct kw_rate *rate, uint64_t key, int64_t now_ms);
/* Counts a failing check of key; true when this failure started a block. */
bool kw_rate_failure(struct kw_rate *rate, uint64_t key, int64_t now_ms);

/* Failed checks between two writes, per peer uid and per (token id, code), for the audit log.
 * Memory is fixed at creation: past KW_FAILURES_TOKENS_MAX token ids or KW_FAILURES_PEERS_MAX
 * uids in one interval, further failures are counted only in an overflow bucket. */
#define KW_FAILURES_TOKENS_MAX 4096
/* Of those, an event itemises at most this many (the most failing); the rest count as other. */
#define KW_FAILURES_EVENT_TOKENS 256
#define KW_FAILURES_PEERS_MAX 1024
struct kw_failures;

struct kw_failures *kw_failures_new(void);
void kw_failures_free(struct kw_failures **failures);
/* Counts one failed check answered code at now (wall clock, seconds); token_id 0: none.
 * No allocation; temp_fail (and anything but a FAIL code) is ignored. */
void kw_failures_add(struct kw_failures *failures, uid_t uid, uint64_t token_id,
		     enum kw_proto_code code, int64_t now);
bool kw_failures_pending(const struct kw_failures *failures);
/* The validator.failed_checks audit event covering the counts up to now, for
 * kw_store_token_uses_write(); false (and nothing filled) when nothing was counted. Call
 * kw_failures_committed() once it was written (the counts are kept until then, so that a
 * rolled-back write loses nothing), and kw_failures_event_clear() in any case. */
struct kw_failures_event {
	struct kw_store_event event; /* points into the fields below */
	char target[64];
	char *details;
};
bool kw_failures_event(struct kw_failures *failures, int64_t now, struct kw_failures_event *ev_r);
void kw_failures_event_clear(struct kw_failures_event *ev);
/* Logs the summary of the committed event and starts a new interval. */
void kw_failures_committed(struct kw_failures *failures);

/* ---- daemon_peers.c ---- */
struct kw_peers;

struct kw_peers *kw_peers_new(void);
void kw_peers_free(struct kw_peers **peers);
unsigned kw_peers_count(struct kw_peers *peers, uid_t uid);
void kw_peers_add(struct kw_peers *peers, uid_t uid);
void kw_peers_remove(struct kw_peers *peers, uid_t uid);

/* ---- daemon_server.c ---- */
struct kw_server;

struct kw_server_hooks {
	/* Called from the loop when SIGHUP arrives; returns the new tunables or NULL. */
	void (*reload)(struct kw_server *server, void *ctx);
	void *ctx;
};

/* listen_fd: a listening Unix stream socket; http_fd: the listening socket of the HTTP check
 * endpoint (TCP on loopback or Unix), or -1. Both taken over: the server closes them. */
int kw_server_new(int listen_fd, int http_fd, struct kw_checker *checker, const struct kw_vconf *vc,
		  const struct kw_server_hooks *hooks, struct kw_server **server_r);
/* Replaces the tunables (the server keeps a pointer: vc must outlive it or be replaced). */
void kw_server_configure(struct kw_server *server, const struct kw_vconf *vc);
/* Runs until SIGTERM or SIGINT. Returns 0, or a negative errno on a fatal error. */
int kw_server_run(struct kw_server *server);
void kw_server_free(struct kw_server **server);

#endif
