/* daemon_server.c: keywarden-validator's event loop (see daemon.h, doc/protocol.md).
 *
 * One thread, one epoll set, level-triggered, non-blocking sockets. Each wakeup runs in two
 * phases: first every readable connection is read once into its own buffer, then the checker
 * syncs with the database (data_version, time), then the complete lines of those buffers are
 * answered and the answers written. Reading before syncing is what makes a commit that
 * returned before a client sent its CHECK visible to that CHECK. The poll runs on every wakeup
 * with requests; while nobody commits it costs no query (lib/store_validator.c reads SQLite's
 * WAL-index header in shared memory, where a commit becomes visible, after the reads). An
 * inotify watch on the database cannot stand for it: a commit in WAL mode becomes visible
 * through shared memory after its last write(2), and a writer stalled between the two would be
 * missed (doc/benchmarks.md). The HTTP check endpoint's connections live in
 * the same loop (daemon_http.c, daemon_conn.h).
 *
 * On a PostgreSQL store the set also holds the database connection's socket (a duplicate:
 * store_fd_update()): a notification that another host committed is acknowledged as soon as
 * it arrives, requests or not, and kw_checker_tick() after every turn renews the lease when
 * due (lib/store_lease.c); neither costs a round trip per request.
 *
 * Memory per connection is bounded: input by the line limit (a longer line is an error), output
 * by OUT_HIGH: above it the connection's input is left unread until its client reads its
 * answers; a client that makes no progress for the idle timeout is closed. Answers go out in
 * request order because requests are answered synchronously, in order.
 *
 * Against peers that hold slots (doc/protocol.md, Timeouts and limits): one uid holds at most
 * max_connections_per_uid connections, and a line must be complete (LF) within line_timeout
 * of its first byte, however slowly its bytes trickle in. When accept() runs out of files the
 * listening socket is left out of the epoll set for ACCEPT_BACKOFF_MS (it stays readable, and a
 * level-triggered loop would spin) and the warning is logged at most once per
 * ACCEPT_WARN_MS. Bytes that held a request are wiped as soon as they are consumed, including
 * the copy that moving a partial line to the buffer's start leaves behind. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "daemon_conn.h"
#include "timeutil.h"

#define MAX_EVENTS 256
#define ACCEPT_BACKOFF_MS 250
#define ACCEPT_WARN_MS 10000 /* at most one warning per this, for each kind of refusal */

static const char version_line[] = KW_PROTO_HELLO;
/* The fixed parts of the answers (keywarden_protocol.h); LIT_LEN: a literal's length. */
#define ERROR_FMT KW_PROTO_REPLY_ERROR "\t" KW_PROTO_FIELD_REASON "=%s\n"
#define OK_TAB KW_PROTO_REPLY_OK "\t"
#define FAIL_TAB KW_PROTO_REPLY_FAIL "\t"
#define CODE_KEY "\t" KW_PROTO_FIELD_CODE "="
#define LIT_LEN(s) (sizeof(s) - 1)

/* ---- idle list ---- */

static void idle_unlink(struct kw_server *s, struct conn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->idle_head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		s->idle_tail = c->prev;
	c->prev = c->next = NULL;
}

static void idle_append(struct kw_server *s, struct conn *c)
{
	c->prev = s->idle_tail;
	c->next = NULL;
	if (s->idle_tail != NULL)
		s->idle_tail->next = c;
	else
		s->idle_head = c;
	s->idle_tail = c;
}

static void touch_conn(struct kw_server *s, struct conn *c, int64_t now)
{
	c->last_active = now;
	if (s->idle_tail != c) {
		idle_unlink(s, c);
		idle_append(s, c);
	}
}

/* ---- partial-line list: the line deadline ---- */

static void line_unlink(struct kw_server *s, struct conn *c)
{
	if (c->line_start == 0)
		return;
	if (c->lprev != NULL)
		c->lprev->lnext = c->lnext;
	else
		s->line_head = c->lnext;
	if (c->lnext != NULL)
		c->lnext->lprev = c->lprev;
	else
		s->line_tail = c->lprev;
	c->lprev = c->lnext = NULL;
	c->line_start = 0;
}

/* Starts the line deadline of c when its buffer holds a line begun but not ended, and stops it
 * when not. A line's clock starts with its first byte and is not reset by later ones. */
static void line_track(struct kw_server *s, struct conn *c, int64_t now)
{
	bool partial = c->http ? kw_http_conn_partial(c)
			       : c->in_len > 0 && memchr(c->in, '\n', c->in_len) == NULL;

	if (!partial) {
		line_unlink(s, c);
		return;
	}
	if (c->line_start != 0)
		return;
	c->line_start = now > 0 ? now : 1;
	c->lprev = s->line_tail;
	c->lnext = NULL;
	if (s->line_tail != NULL)
		s->line_tail->lnext = c;
	else
		s->line_head = c;
	s->line_tail = c;
}

/* ---- connections ---- */

static void conn_close(struct kw_server *s, struct conn *c, const char *why)
{
	if (c->dead)
		return;
	kw_debug("connection %u (uid=%u pid=%d): closed: %s", c->id, (unsigned)c->uid, (int)c->pid,
		 why);
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->dead = true;
	idle_unlink(s, c);
	line_unlink(s, c);
	if (c->unix_peer)
		kw_peers_remove(s->peers, c->uid);
	s->n_conns--;
	/* Freed at the end of the wakeup: the ready list may still point to it. */
	c->ready_next = s->graveyard;
	s->graveyard = c;
}

static void conn_free(struct conn *c)
{
	if (c->in != NULL)
		explicit_bzero(c->in, c->in_cap); /* it held tokens */
	free(c->in);
	free(c->out);
	free(c);
}

void kw_conn_out_reserve(struct conn *c, size_t n)
{
	if (c->out_off > 0 && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len + n <= c->out_cap)
		return;
	if (c->out_off > 0) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
		if (c->out_len + n <= c->out_cap)
			return;
	}
	size_t cap = c->out_cap != 0 ? c->out_cap : 1024;
	while (cap < c->out_len + n)
		cap *= 2;
	c->out = realloc(c->out, cap);
	if (c->out == NULL)
		abort();
	c->out_cap = cap;
}

void kw_conn_out_append(struct conn *c, const char *s, size_t n)
{
	kw_conn_out_reserve(c, n);
	memcpy(c->out + c->out_len, s, n);
	c->out_len += n;
}

static char *fmt_u32(char *p, uint32_t v)
{
	char tmp[10];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	while (n > 0)
		*p++ = tmp[--n];
	return p;
}

/* Queues ERROR and makes the connection close once its output is written. */
static void conn_error(struct conn *c, enum kw_proto_reason reason)
{
	char line[64];
	int n = snprintf(line, sizeof(line), ERROR_FMT, kw_proto_reason_name(reason));

	kw_conn_out_append(c, line, (size_t)n);
	c->closing = true;
}

static void conn_update_events(struct kw_server *s, struct conn *c)
{
	uint32_t want = 0;
	struct epoll_event ev;

	if (!c->closing && !c->eof && c->out_len - c->out_off < OUT_HIGH)
		want |= EPOLLIN;
	if (c->out_len > c->out_off)
		want |= EPOLLOUT;
	if (want == c->events)
		return;
	ev.events = want;
	ev.data.ptr = c;
	if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
		kw_error("epoll_ctl: %s", strerror(errno));
		conn_close(s, c, "epoll_ctl failed");
		return;
	}
	c->events = want;
}

/* Writes what it can. Returns false when the connection was closed. */
static bool conn_write(struct kw_server *s, struct conn *c, int64_t now)
{
	while (c->out_len > c->out_off) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			conn_close(s, c, "write error");
			return false;
		}
		c->out_off += (size_t)n;
		touch_conn(s, c, now);
	}
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if ((c->closing || c->eof) && c->out_len == 0) {
		conn_close(s, c, c->closing ? "after an error" : "by the peer");
		return false;
	}
	return true;
}

/* The checker is about to renew its lease in the middle of a batch (daemon_check.c): the
 * answers already decided for the connection being answered go out first, as far as its
 * socket takes them, because a renewal lets a writer return (lib/store_lease.c), and an
 * answer decided before must not be written after. Errors are left to conn_write(). The
 * other connections of the batch were written after their turn. */
static void answers_out(void *ctx)
{
	struct kw_server *s = ctx;
	struct conn *c = s->answering;

	while (c != NULL && !c->dead && c->out_len > c->out_off) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		c->out_off += (size_t)n;
	}
}

/* The peer's supplementary groups (SO_PEERGROUPS), appended to groups[0..ng); the buffer
 * grows to what the kernel says it needs (a peer may have up to NGROUPS_MAX groups). */
static gid_t *peer_groups(int fd, gid_t primary, size_t *ng_r)
{
	socklen_t len = 64 * sizeof(gid_t);
	gid_t *groups = NULL;

	for (int tries = 0; tries < 4; tries++) {
		gid_t *grown = realloc(groups, sizeof(gid_t) + len);
		if (grown == NULL)
			abort(); /* daemons abort on out-of-memory */
		groups = grown;
		groups[0] = primary;
#ifdef SO_PEERGROUPS
		socklen_t got = len;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups + 1, &got) == 0) {
			*ng_r = 1 + got / sizeof(gid_t);
			return groups;
		}
		if (errno == ERANGE && got > len) {
			len = got; /* the kernel wrote nothing and told the size it needs */
			continue;
		}
#endif
		break;
	}
	*ng_r = 1;
	return groups;
}

static bool peer_allowed(struct kw_server *s, struct conn *c)
{
	const struct kw_vconf *vc = s->vc;
	gid_t *groups;
	size_t ng = 0;
	bool allowed = false;

	if (vc->n_allow_uids == 0 && vc->n_allow_gids == 0)
		return true;
	for (size_t i = 0; i < vc->n_allow_uids; i++) {
		if (vc->allow_uids[i] == c->uid)
			return true;
	}
	if (vc->n_allow_gids == 0)
		return false;
	groups = peer_groups(c->fd, c->gid, &ng);
	for (size_t i = 0; i < vc->n_allow_gids && !allowed; i++) {
		for (size_t j = 0; j < ng; j++) {
			if (vc->allow_gids[i] == groups[j]) {
				allowed = true;
				break;
			}
		}
	}
	free(groups);
	return allowed;
}

/* Refuses a connection with VERSION and ERROR (HTTP: 503 or 403, Connection: close), without
 * queueing anything. */
static void refuse(int fd, bool http, enum kw_proto_reason reason)
{
	char line[512];
	size_t n;

	if (http)
		n = kw_http_refusal(line, sizeof(line),
				    reason == KW_PROTO_REASON_NOT_ALLOWED ? 403 : 503);
	else
		n = (size_t)snprintf(line, sizeof(line), "%s" ERROR_FMT, version_line,
				     kw_proto_reason_name(reason));
	(void)!send(fd, line, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

/* True when the warning may be logged now; *suppressed_r says how many were not since. */
static bool log_limit_pass(struct log_limit *l, int64_t now, unsigned *suppressed_r)
{
	if (l->last != 0 && now - l->last < ACCEPT_WARN_MS) {
		l->suppressed++;
		return false;
	}
	*suppressed_r = l->suppressed;
	l->last = now;
	l->suppressed = 0;
	return true;
}

/* accept() failed for want of resources (EMFILE, ENFILE, ENOBUFS, ENOMEM...): the pending
 * connection stays queued and the socket readable, so stop watching the listening sockets for
 * a while rather than spin, and say so once in a while rather than for every wakeup. */
static void accept_failed(struct kw_server *s, int err, int64_t now)
{
	unsigned more;

	if (log_limit_pass(&s->accept_log, now, &more))
		kw_warning("accept: %s: not accepting for %d ms (%u more failures since the last "
			   "such message; %zu connections open)",
			   strerror(err), ACCEPT_BACKOFF_MS, more, s->n_conns);
	if (epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->listen_fd, NULL) < 0)
		kw_error("epoll_ctl: %s", strerror(errno));
	if (s->http_fd >= 0 && epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->http_fd, NULL) < 0)
		kw_error("epoll_ctl: %s", strerror(errno));
	s->accept_resume = now + ACCEPT_BACKOFF_MS;
}

static void accept_resume(struct kw_server *s, int64_t now)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &s->listen_fd };
	struct epoll_event hev = { .events = EPOLLIN, .data.ptr = &s->http_fd };

	if (s->accept_resume == 0 || now < s->accept_resume)
		return;
	if ((epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->listen_fd, &ev) < 0 && errno != EEXIST) ||
	    (s->http_fd >= 0 && epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->http_fd, &hev) < 0 &&
	     errno != EEXIST)) {
		kw_error("epoll_ctl: %s", strerror(errno));
		s->accept_resume = now + ACCEPT_BACKOFF_MS;
		return;
	}
	s->accept_resume = 0;
}

/* Who a new connection's peer is: SO_PEERCRED over a Unix socket, the address over TCP (the
 * HTTP endpoint on a loopback address). False when the connection is to be dropped. */
static bool accept_peer(int fd, const struct sockaddr_storage *sa, struct conn *c)
{
	struct ucred cred;
	socklen_t clen = sizeof(cred);

	if (sa->ss_family == AF_UNIX) {
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
			kw_warning("SO_PEERCRED: %s", strerror(errno));
			return false;
		}
		c->unix_peer = true;
		c->uid = cred.uid;
		c->gid = cred.gid;
		c->pid = cred.pid;
		return true;
	}
	c->uid = KW_HTTP_TCP_UID;
	c->gid = (gid_t)-1;
	c->pid = 0;
	c->family = sa->ss_family;
	if (sa->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		memcpy(c->addr, &in->sin_addr, 4);
	} else if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		memcpy(c->addr, &in6->sin6_addr, 16);
	} else {
		return false;
	}
	inet_ntop(c->family, c->addr, c->addr_text, sizeof(c->addr_text));
	return true;
}

static void accept_all(struct kw_server *s, int lfd, bool http, int64_t now)
{
	for (;;) {
		struct sockaddr_storage sa;
		socklen_t salen = sizeof(sa);
		struct epoll_event ev;
		struct conn *c;
		unsigned more;
		int fd = accept4(lfd, (struct sockaddr *)&sa, &salen, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				accept_failed(s, errno, now);
			return;
		}
		c = calloc(1, sizeof(*c));
		if (c == NULL)
			abort();
		c->fd = fd;
		c->http = http;
		if (!accept_peer(fd, &sa, c)) {
			close(fd);
			free(c);
			continue;
		}
		if (s->n_conns >= s->vc->max_connections) {
			if (log_limit_pass(&s->busy_log, now, &more))
				kw_warning("%speer uid=%u pid=%d%s%s refused: %zu connections "
					   "(max_connections; %u more refused since the last such "
					   "message)",
					   http ? "HTTP " : "", (unsigned)c->uid, (int)c->pid,
					   c->unix_peer ? "" : " address=", c->addr_text,
					   s->n_conns, more);
			refuse(fd, http, KW_PROTO_REASON_BUSY);
			free(c);
			continue;
		}
		if (c->unix_peer &&
		    kw_peers_count(s->peers, c->uid) >= s->vc->max_connections_uid) {
			if (log_limit_pass(&s->busy_uid_log, now, &more))
				kw_warning(
					"peer uid=%u pid=%d refused: uid holds %u connections "
					"(max_connections_per_uid; %u more refused since the last "
					"such message)",
					(unsigned)c->uid, (int)c->pid, s->vc->max_connections_uid,
					more);
			refuse(fd, http, KW_PROTO_REASON_BUSY);
			free(c);
			continue;
		}
		c->id = ++s->next_conn_id;
		if (c->unix_peer && !peer_allowed(s, c)) {
			kw_notice("peer uid=%u gid=%u pid=%d refused: not on the allow-list",
				  (unsigned)c->uid, (unsigned)c->gid, (int)c->pid);
			refuse(fd, http, KW_PROTO_REASON_NOT_ALLOWED);
			free(c);
			continue;
		}
		c->in_cap = http ? s->vc->http_max_request : s->vc->max_line;
		c->in = malloc(c->in_cap);
		if (c->in == NULL)
			abort();
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			kw_error("epoll_ctl: %s", strerror(errno));
			close(fd);
			conn_free(c);
			continue;
		}
		c->events = EPOLLIN;
		s->n_conns++;
		if (c->unix_peer)
			kw_peers_add(s->peers, c->uid);
		c->last_active = now;
		idle_append(s, c);
		if (c->unix_peer)
			kw_debug("connection %u%s: peer uid=%u gid=%u pid=%d", c->id,
				 http ? " (HTTP)" : "", (unsigned)c->uid, (unsigned)c->gid,
				 (int)c->pid);
		else
			kw_debug("connection %u (HTTP): peer address %s", c->id, c->addr_text);
		if (http)
			continue; /* the client speaks first */
		kw_conn_out_append(c, version_line, sizeof(version_line) - 1);
		if (conn_write(s, c, now))
			conn_update_events(s, c);
	}
}

/* Reads once. Returns true when new bytes arrived or the peer closed. */
static bool conn_read(struct kw_server *s, struct conn *c, int64_t now)
{
	ssize_t n;

	if (c->in_len == c->in_cap)
		return false; /* a full buffer is handled when lines are processed */
	n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return false;
		conn_close(s, c, "read error");
		return false;
	}
	if (n == 0) {
		c->eof = true;
		return true;
	}
	c->in_len += (size_t)n;
	touch_conn(s, c, now);
	return true;
}

/* A client's field for a key=value log line: printable ASCII but blank and backslash as they
 * are, every other byte as \xHH, so that a value can neither end its field, forge another
 * key, nor carry terminal controls. "-" when absent; cut at LOG_FIELD_MAX bytes ("..."). */
#define LOG_FIELD_MAX 128
static const char *log_field(const struct kw_proto_field *f, char buf[LOG_FIELD_MAX * 4 + 4])
{
	static const char hex[] = "0123456789abcdef";
	char *p = buf;

	if (f->s == NULL)
		return "-";
	for (size_t i = 0; i < f->len; i++) {
		unsigned char ch = (unsigned char)f->s[i];
		if (i == LOG_FIELD_MAX) {
			memcpy(p, "...", 3);
			p += 3;
			break;
		}
		if (ch > ' ' && ch < 0x7f && ch != '\\') {
			*p++ = (char)ch;
		} else {
			*p++ = '\\';
			*p++ = 'x';
			*p++ = hex[ch >> 4];
			*p++ = hex[ch & 15];
		}
	}
	*p = '\0';
	return buf;
}

static void log_check(const struct conn *c, const struct kw_proto_request *req, const char *verdict,
		      const struct kw_check_answer *res)
{
	char service[LOG_FIELD_MAX * 4 + 4], ip[LOG_FIELD_MAX * 4 + 4];

	kw_debug("peer uid=%u gid=%u pid=%d request %u: %s token_id=%llu service=%s remote_ip=%s",
		 (unsigned)c->uid, (unsigned)c->gid, (int)c->pid, req->id, verdict,
		 (unsigned long long)res->token_id, log_field(&req->service, service),
		 log_field(&req->remote_ip, ip));
}

void kw_server_check(struct kw_server *s, const struct conn *c, uint64_t rate_key, uid_t audit_uid,
		     const char *token, size_t len, const char *ip, size_t ip_len, int64_t now,
		     struct kw_check_answer *res)
{
	if (kw_rate_blocked(s->rate, rate_key, now)) {
		memset(res, 0, sizeof(*res));
		res->code = KW_PROTO_CODE_RATE_LIMITED;
	} else {
		kw_checker_check(s->checker, token, len, ip, ip_len, res);
		if (!res->ok && res->code == KW_PROTO_CODE_INVALID &&
		    kw_rate_failure(s->rate, rate_key, now))
			kw_warning("%s uid=%u pid=%d%s%.*s: %u failing checks within %u s: rate "
				   "limited for %u s",
				   c->http ? "HTTP peer" : "peer", (unsigned)c->uid, (int)c->pid,
				   c->http ? " client=" : "", c->http ? (int)ip_len : 0,
				   ip != NULL ? ip : "", s->vc->rate_limit_failures,
				   s->vc->rate_limit_window, s->vc->rate_limit_block);
	}
	if (!res->ok)
		kw_checker_failed(s->checker, audit_uid, res);
}

static void handle_check(struct kw_server *s, struct conn *c, const struct kw_proto_request *req,
			 int64_t now)
{
	struct kw_check_answer res;
	char *p;

	kw_server_check(s, c, c->uid, c->uid, req->token.s, req->token.len, req->remote_ip.s,
			req->remote_ip.len, now, &res);
	if (res.ok) {
		kw_conn_out_reserve(c, 16 + res.fields_len);
		p = c->out + c->out_len;
		memcpy(p, OK_TAB, LIT_LEN(OK_TAB));
		p = fmt_u32(p + LIT_LEN(OK_TAB), req->id);
		*p++ = '\t';
		memcpy(p, res.fields, res.fields_len);
		p += res.fields_len;
		*p++ = '\n';
		c->out_len = (size_t)(p - c->out);
		if (kw_log_enabled(KW_LOG_DEBUG))
			log_check(c, req, "OK", &res);
	} else {
		const char *code = kw_proto_code_name(res.code);
		size_t clen = strlen(code);
		kw_conn_out_reserve(c, 32 + clen);
		p = c->out + c->out_len;
		memcpy(p, FAIL_TAB, LIT_LEN(FAIL_TAB));
		p = fmt_u32(p + LIT_LEN(FAIL_TAB), req->id);
		memcpy(p, CODE_KEY, LIT_LEN(CODE_KEY));
		memcpy(p + LIT_LEN(CODE_KEY), code, clen);
		p += LIT_LEN(CODE_KEY) + clen;
		*p++ = '\n';
		c->out_len = (size_t)(p - c->out);
		if (kw_log_enabled(KW_LOG_DEBUG)) {
			char verdict[32];
			snprintf(verdict, sizeof(verdict), "FAIL %s", code);
			log_check(c, req, verdict, &res);
		}
	}
}

static void handle_line(struct kw_server *s, struct conn *c, const char *line, size_t len,
			int64_t now)
{
	struct kw_proto_request req;
	const char *what = NULL;
	int ret = kw_proto_parse(line, len, &req, &what);

	if (!c->handshake) {
		if (ret < 0 || req.verb != KW_PROTO_VERB_VERSION) {
			kw_notice("connection %u (uid=%u pid=%d): protocol violation: %s before "
				  "VERSION",
				  c->id, (unsigned)c->uid, (int)c->pid,
				  ret < 0 ? what : "a request");
			conn_error(c, KW_PROTO_REASON_VERSION);
			return;
		}
		if (req.major != KW_PROTO_MAJOR) {
			kw_notice(
				"connection %u (uid=%u pid=%d): protocol violation: version %u.%u "
				"not supported",
				c->id, (unsigned)c->uid, (int)c->pid, req.major, req.minor);
			conn_error(c, KW_PROTO_REASON_VERSION);
			return;
		}
		c->handshake = true;
		return;
	}
	if (ret < 0 || req.verb != KW_PROTO_VERB_CHECK) {
		kw_notice("connection %u (uid=%u pid=%d): protocol violation: %s", c->id,
			  (unsigned)c->uid, (int)c->pid, ret < 0 ? what : "VERSION repeated");
		conn_error(c, KW_PROTO_REASON_PROTOCOL);
		return;
	}
	handle_check(s, c, &req, now);
}

void kw_conn_consume(struct conn *c, size_t pos)
{
	if (pos == 0)
		return;
	explicit_bzero(c->in, pos);
	memmove(c->in, c->in + pos, c->in_len - pos);
	/* The moved bytes' old place, beyond the new end, still holds them. */
	explicit_bzero(c->in + (c->in_len - pos), pos);
	c->in_len -= pos;
}

/* Answers the complete lines (or HTTP requests) in c's buffer, as far as the output bound
 * allows. */
static void conn_process(struct kw_server *s, struct conn *c, int64_t now)
{
	size_t pos = 0;

	if (c->http) {
		kw_http_conn_process(s, c, now);
		return;
	}

	while (!c->closing && c->out_len - c->out_off < OUT_HIGH) {
		char *lf = memchr(c->in + pos, '\n', c->in_len - pos);
		if (lf == NULL)
			break;
		handle_line(s, c, c->in + pos, (size_t)(lf - (c->in + pos)), now);
		pos = (size_t)(lf - c->in) + 1;
	}
	kw_conn_consume(c, pos);
	if (c->closing)
		return;
	if (c->in_len == c->in_cap && memchr(c->in, '\n', c->in_len) == NULL) {
		kw_notice("connection %u (uid=%u pid=%d): protocol violation: line longer than "
			  "%zu bytes",
			  c->id, (unsigned)c->uid, (int)c->pid, c->in_cap);
		conn_error(c, KW_PROTO_REASON_LINE_TOO_LONG);
		return;
	}
	if (c->eof && c->in_len > 0 && memchr(c->in, '\n', c->in_len) == NULL) {
		size_t dropped = c->in_len;

		/* wiped before the log line that says so (a test reads memory after it) */
		explicit_bzero(c->in, c->in_len);
		c->in_len = 0;
		kw_debug("connection %u: peer closed in the middle of a line (%zu bytes dropped)",
			 c->id, dropped);
	}
}

static void handle_signals(struct kw_server *s)
{
	struct signalfd_siginfo si;

	while (read(s->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			kw_info("signal %u: stopping", si.ssi_signo);
			s->stop = true;
			break;
		case SIGHUP:
			if (s->hooks.reload != NULL)
				s->hooks.reload(s, s->hooks.ctx);
			break;
		default:
			break;
		}
	}
}

/* Says ERROR reason=idle (best effort: a client that stopped reading may not take it) and
 * closes the connection. An HTTP connection is closed without a word (RFC 9112, 9.6). */
static void close_idle(struct kw_server *s, struct conn *c, const char *why)
{
	char line[64];
	int n = snprintf(line, sizeof(line), ERROR_FMT, kw_proto_reason_name(KW_PROTO_REASON_IDLE));

	if (c->out_len == c->out_off && !c->http)
		(void)!send(c->fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	conn_close(s, c, why);
}

static void expire_idle(struct kw_server *s, int64_t now)
{
	int64_t idle_ms = (int64_t)s->vc->idle_timeout * 1000;

	while (s->idle_head != NULL && now - s->idle_head->last_active >= idle_ms)
		close_idle(s, s->idle_head, "idle timeout");
}

/* Closes the connections whose partial line is older than line_timeout (reason idle: the
 * client stopped short of a line's end). */
static void expire_lines(struct kw_server *s, int64_t now)
{
	int64_t limit_ms = (int64_t)s->vc->line_timeout * 1000;

	while (s->line_head != NULL && now - s->line_head->line_start >= limit_ms) {
		struct conn *c = s->line_head;

		kw_notice("connection %u (uid=%u pid=%d): line not complete within %u s: closed",
			  c->id, (unsigned)c->uid, (int)c->pid, s->vc->line_timeout);
		close_idle(s, c, "line timeout");
	}
}

static int next_timeout(struct kw_server *s, int64_t now)
{
	int64_t deadline = s->next_flush;
	int store_ms = kw_checker_timeout(s->checker); /* the lease's upkeep */

	if (s->idle_head != NULL) {
		int64_t d = s->idle_head->last_active + (int64_t)s->vc->idle_timeout * 1000;
		if (d < deadline)
			deadline = d;
	}
	if (s->line_head != NULL) {
		int64_t d = s->line_head->line_start + (int64_t)s->vc->line_timeout * 1000;
		if (d < deadline)
			deadline = d;
	}
	if (s->accept_resume != 0 && s->accept_resume < deadline)
		deadline = s->accept_resume;
	if (store_ms >= 0 && now + store_ms < deadline)
		deadline = now + store_ms;
	if (deadline <= now)
		return 0;
	if (deadline - now > 60000)
		return 60000;
	return (int)(deadline - now);
}

/* Watches the checker's database socket (notifications) when it changed: a duplicate of it,
 * removed from the set and closed before the next one is added. */
static void store_fd_update(struct kw_server *s)
{
	unsigned epoch;
	int fd = kw_checker_fd(s->checker, &epoch);
	struct epoll_event ev;

	if (epoch == s->store_epoch)
		return;
	s->store_epoch = epoch;
	if (s->store_fd >= 0) {
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->store_fd, NULL);
		close(s->store_fd);
		s->store_fd = -1;
	}
	if (fd < 0)
		return;
	s->store_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	ev.events = EPOLLIN;
	ev.data.ptr = &s->store_fd;
	if (s->store_fd < 0 || epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->store_fd, &ev) < 0) {
		/* the lease's timer still renews: only the database's news come later */
		kw_error("cannot watch the database connection: %s", strerror(errno));
		if (s->store_fd >= 0)
			close(s->store_fd);
		s->store_fd = -1;
	}
}

/* Busy polling. Under load the next requests arrive within microseconds of the answers, and
 * going to sleep in epoll_wait() only to be woken for them costs both sides a context switch
 * and the wakeup's latency (the client's send() must wake this thread; doc/benchmarks.md).
 * So after a wakeup that answered requests the loop polls without sleeping (epoll_wait() with
 * no timeout) for up to [validator] busy_poll_us before it sleeps. Three bounds keep that
 * from becoming CPU thrown away:
 *   - credit: a spin lasts at most SPIN_PER_WORK times the time spent answering since the
 *     last one (earned per wakeup, at most busy_poll_us banked), so spinning never costs more
 *     than SPIN_PER_WORK times the daemon's useful work, whatever the pattern of requests (a
 *     client that sends one request just before each spin would end would otherwise keep the
 *     daemon spinning all the time for a trickle of requests);
 *   - back-off: after SPIN_MISSES_MAX spins in a row that found nothing, the next 2^k wakeups
 *     (k up to SPIN_SKIP_SHIFT_MAX: 64) sleep at once; one spin that finds work starts again;
 *   - other tasks first: the spin yields the CPU between polls and stops (a miss) as soon as
 *     a yield let another task run: a client on the same CPU, such as nginx beside the
 *     validator, would only wait for it (without that stop, nginx on the validator's CPU
 *     served 13-15% fewer guarded requests than with busy_poll_us = 0; with it, no difference
 *     beyond the noise: doc/benchmarks.md).
 * Idle, the loop sleeps as before. */
#define SPIN_PER_WORK 2
#define SPIN_MIN_US 2
#define SPIN_MISSES_MAX 2
#define SPIN_SKIP_SHIFT_MAX 6 /* at most 64 wakeups without a spin */
#define YIELD_TAKEN_US 5      /* a sched_yield() this long ran another task on our CPU */

/* Credits the time a wakeup spent answering (from `woke`, microseconds) to the spin. */
static void spin_earn(struct kw_server *s, int64_t woke)
{
	int64_t cap = s->vc->busy_poll_us;

	s->spin_credit += SPIN_PER_WORK * (kw_monotonic_us() - woke);
	if (s->spin_credit > cap)
		s->spin_credit = cap;
}

static int wait_events(struct kw_server *s, struct epoll_event *events, int timeout)
{
	int64_t spin_us =
		s->vc->busy_poll_us < s->spin_credit ? s->vc->busy_poll_us : s->spin_credit;
	int64_t start, now, end, yielded;
	int n;

	if (spin_us < SPIN_MIN_US || !s->busy || timeout == 0)
		return epoll_wait(s->epfd, events, MAX_EVENTS, timeout);
	if (s->spin_skip > 0) {
		s->spin_skip--;
		return epoll_wait(s->epfd, events, MAX_EVENTS, timeout);
	}
	start = now = kw_monotonic_us();
	end = start + spin_us;
	do {
		n = epoll_wait(s->epfd, events, MAX_EVENTS, 0);
		if (n != 0)
			break;
		/* Another task on this CPU (a proxy beside us: nginx) gets it at once, and when
		 * one did, our client shares our CPU and the spin only delays it: stop. */
		sched_yield();
		yielded = now;
		now = kw_monotonic_us();
		if (now - yielded > YIELD_TAKEN_US)
			break;
	} while (now < end);
	s->spin_credit -= kw_monotonic_us() - start;
	if (s->spin_credit < 0)
		s->spin_credit = 0;
	if (n > 0) {
		s->spin_misses = 0;
		return n;
	}
	if (n < 0)
		return n;
	if (s->spin_misses < SPIN_MISSES_MAX + SPIN_SKIP_SHIFT_MAX)
		s->spin_misses++;
	if (s->spin_misses >= SPIN_MISSES_MAX)
		s->spin_skip = 1u << (s->spin_misses - SPIN_MISSES_MAX); /* 1 .. 64 */
	return epoll_wait(s->epfd, events, MAX_EVENTS, timeout);
}

int kw_server_run(struct kw_server *s)
{
	struct epoll_event events[MAX_EVENTS];

	s->next_flush = kw_monotonic_ms() + (int64_t)s->vc->last_use_flush * 1000;
	while (!s->stop) {
		struct conn *ready = NULL, **ready_tail = &ready;
		int64_t now = kw_monotonic_ms();
		int n = wait_events(s, events, next_timeout(s, now));
		int64_t woke = s->vc->busy_poll_us > 0 ? kw_monotonic_us() : 0;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			kw_error("epoll_wait: %s", strerror(errno));
			return -errno;
		}
		now = kw_monotonic_ms();
		/* Phase 1: read. */
		for (int i = 0; i < n; i++) {
			void *ptr = events[i].data.ptr;
			struct conn *c;

			if (ptr == &s->listen_fd) {
				accept_all(s, s->listen_fd, false, now);
				continue;
			}
			if (ptr == &s->http_fd) {
				accept_all(s, s->http_fd, true, now);
				continue;
			}
			if (ptr == &s->sig_fd) {
				handle_signals(s);
				continue;
			}
			if (ptr == &s->store_fd) {
				kw_checker_input(s->checker);
				continue;
			}
			c = ptr;
			if (c->dead)
				continue;
			if ((events[i].events & EPOLLOUT) != 0 && !conn_write(s, c, now))
				continue;
			if ((events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0 &&
			    !c->closing && !c->eof && conn_read(s, c, now) && !c->dead) {
				c->readable = true;
				*ready_tail = c;
				ready_tail = &c->ready_next;
			} else if (!c->dead) {
				/* Output drained below the bound: answer what is buffered. */
				if (c->in_len > 0 && !c->closing && !c->readable) {
					c->readable = true;
					*ready_tail = c;
					ready_tail = &c->ready_next;
				} else {
					conn_update_events(s, c);
				}
			}
		}
		*ready_tail = NULL;
		s->busy = ready != NULL;
		/* Phase 2: answer, with a view of the database no older than the reads. */
		if (ready != NULL)
			kw_checker_sync(s->checker);
		for (struct conn *c = ready, *next; c != NULL; c = next) {
			next = c->ready_next;
			c->readable = false;
			if (c->dead)
				continue;
			s->answering = c;
			conn_process(s, c, now);
			s->answering = NULL;
			line_track(s, c, now);
			if (conn_write(s, c, now))
				conn_update_events(s, c);
		}
		while (s->graveyard != NULL) {
			struct conn *c = s->graveyard;
			s->graveyard = c->ready_next;
			conn_free(c);
		}
		expire_idle(s, now);
		expire_lines(s, now);
		accept_resume(s, now);
		while (s->graveyard != NULL) {
			struct conn *c = s->graveyard;
			s->graveyard = c->ready_next;
			conn_free(c);
		}
		if (now >= s->next_flush) {
			(void)kw_checker_flush(s->checker);
			s->next_flush = now + (int64_t)s->vc->last_use_flush * 1000;
		}
		kw_checker_tick(s->checker);
		store_fd_update(s);
		if (s->busy && woke != 0)
			spin_earn(s, woke);
	}
	return 0;
}

int kw_server_new(int listen_fd, int http_fd, struct kw_checker *checker, const struct kw_vconf *vc,
		  const struct kw_server_hooks *hooks, struct kw_server **server_r)
{
	struct kw_server *s = calloc(1, sizeof(*s));
	struct epoll_event ev;
	sigset_t mask;
	int ret;

	if (s == NULL)
		abort();
	s->listen_fd = listen_fd;
	s->http_fd = http_fd;
	s->checker = checker;
	kw_checker_set_before_renew(checker, answers_out, s);
	s->vc = vc;
	s->hooks = *hooks;
	s->sig_fd = -1;
	s->store_fd = -1;
	s->rate = kw_rate_new();
	s->peers = kw_peers_new();
	kw_rate_configure(s->rate, vc->rate_limit_failures, vc->rate_limit_window,
			  vc->rate_limit_block);
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0)
		goto fail;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		goto fail;
	s->sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (s->sig_fd < 0)
		goto fail;
	ev.events = EPOLLIN;
	ev.data.ptr = &s->sig_fd;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->sig_fd, &ev) < 0)
		goto fail;
	ev.events = EPOLLIN;
	ev.data.ptr = &s->listen_fd;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, listen_fd, &ev) < 0)
		goto fail;
	ev.events = EPOLLIN;
	ev.data.ptr = &s->http_fd;
	if (http_fd >= 0 && epoll_ctl(s->epfd, EPOLL_CTL_ADD, http_fd, &ev) < 0)
		goto fail;
	*server_r = s;
	return 0;
fail:
	ret = -errno;
	kw_error("cannot set up the event loop: %s", strerror(errno));
	s->listen_fd = -1; /* the caller still owns them */
	s->http_fd = -1;
	kw_server_free(&s);
	return ret;
}

void kw_server_configure(struct kw_server *s, const struct kw_vconf *vc)
{
	s->vc = vc;
	kw_rate_configure(s->rate, vc->rate_limit_failures, vc->rate_limit_window,
			  vc->rate_limit_block);
}

void kw_server_free(struct kw_server **serverp)
{
	struct kw_server *s = *serverp;

	if (s == NULL)
		return;
	kw_checker_set_before_renew(s->checker, NULL, NULL);
	while (s->idle_head != NULL)
		conn_close(s, s->idle_head, "shutting down");
	while (s->graveyard != NULL) {
		struct conn *c = s->graveyard;
		s->graveyard = c->ready_next;
		conn_free(c);
	}
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->http_fd >= 0)
		close(s->http_fd);
	if (s->sig_fd >= 0)
		close(s->sig_fd);
	if (s->store_fd >= 0)
		close(s->store_fd);
	if (s->epfd >= 0)
		close(s->epfd);
	kw_rate_free(&s->rate);
	kw_peers_free(&s->peers);
	free(s);
	*serverp = NULL;
}
