/* daemon_conn.h: the connection machinery of keywarden-validator's event loop, shared by the
 * two front ends that live in it: the socket protocol (daemon_server.c) and the HTTP check
 * endpoint (daemon_http.c). Private to validator/: the loop, its connections and the check
 * that both front ends make. Single-threaded, like everything in daemon.h. */
#ifndef KW_DAEMON_CONN_H
#define KW_DAEMON_CONN_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon.h"

#define OUT_HIGH (64 * 1024) /* stop answering a connection above this much pending output */

/* A warning that a peer can cause at will, logged at most once per ACCEPT_WARN_MS. */
struct log_limit {
	int64_t last;        /* when it was last logged; 0: never */
	unsigned suppressed; /* since then */
};

struct conn {
	int fd;
	uid_t uid; /* HTTP over TCP: KW_HTTP_TCP_UID */
	gid_t gid;
	pid_t pid;
	unsigned id; /* for logs */
	bool handshake, eof, closing, dead, readable;
	bool http;      /* accepted on http_listen */
	bool unix_peer; /* over a Unix socket (uid, gid, pid are SO_PEERCRED's) */
	uint32_t events;
	char *in;
	size_t in_len, in_cap;
	char *out;
	size_t out_off, out_len, out_cap;
	uint64_t skip; /* HTTP: body bytes still to discard */
	int family;    /* HTTP over TCP: AF_INET or AF_INET6, with addr and addr_text */
	uint8_t addr[16];
	char addr_text[INET6_ADDRSTRLEN];
	int64_t last_active;
	int64_t line_start;         /* when the partial line (request) in `in` began; 0: none */
	struct conn *prev, *next;   /* idle list, least recently active first */
	struct conn *lprev, *lnext; /* partial-line list, oldest line_start first */
	struct conn *ready_next;
};

struct kw_server {
	int epfd, listen_fd, http_fd, sig_fd;
	struct kw_checker *checker;
	struct kw_rate *rate;
	const struct kw_vconf *vc;
	struct kw_server_hooks hooks;
	struct conn *idle_head, *idle_tail;
	struct conn *line_head, *line_tail;
	struct conn *graveyard;
	struct conn *answering; /* whose requests are being answered (answers_out()) */
	struct kw_peers *peers;
	size_t n_conns;
	int64_t accept_resume; /* listening sockets out of the epoll set until then; 0: in it */
	struct log_limit accept_log, busy_log, busy_uid_log;
	unsigned next_conn_id;
	int64_t next_flush;
	/* the database server's socket (its notifications): our own duplicate, so that the
	 * epoll set never holds a descriptor that libpq closed or reused; -1: none */
	int store_fd;
	unsigned store_epoch;
	bool stop;
	/* Busy polling (wait_events()): the last wakeup answered requests; microseconds of spin
	 * earned by answering; spins that found nothing in a row, and wakeups left to skip
	 * before the next spin. */
	bool busy;
	int64_t spin_credit;
	unsigned spin_misses, spin_skip;
	/* HTTP Date header, formatted once per second. */
	int64_t http_date_sec;
	char http_date[40];
};

/* The audit log's peer uid for failed checks that came over HTTP on TCP, where the peer has
 * no uid (doc/http-authz.md). */
#define KW_HTTP_TCP_UID ((uid_t)-1)

/* ---- daemon_server.c ---- */
void kw_conn_out_reserve(struct conn *c, size_t n);
void kw_conn_out_append(struct conn *c, const char *s, size_t n);
/* Drops the first n bytes of c's input, wiping them (they held tokens). */
void kw_conn_consume(struct conn *c, size_t n);

/* The check that CHECK and GET /authz both make: the rate limit of rate_key (a peer uid, or
 * a client address folded into 64 bits with the top bit set), the checker, the failure count
 * for the rate limit, and the failed-check count for the audit log under audit_uid. c names
 * the peer in the log. ip (may be NULL) is the client address recorded as last use. */
void kw_server_check(struct kw_server *s, const struct conn *c, uint64_t rate_key, uid_t audit_uid,
		     const char *token, size_t len, const char *ip, size_t ip_len, int64_t now,
		     struct kw_check_answer *res_r);

/* ---- daemon_http.c ---- */
/* Answers the complete requests in c's buffer, as far as the output bound allows; marks c
 * closing after a request that ends the connection or a malformed one. */
void kw_http_conn_process(struct kw_server *s, struct conn *c, int64_t now);
/* True when c's buffer holds the beginning of a request not complete yet (the deadline of
 * line_timeout runs). */
bool kw_http_conn_partial(const struct conn *c);
/* What a connection refused at accept() time is told, Connection: close included. */
size_t kw_http_refusal(char *buf, size_t size, unsigned status);

#endif
