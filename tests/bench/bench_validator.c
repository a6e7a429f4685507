/* bench_validator.c: the validator benchmark's tools (not a test; run by
 * tests/bench/run_validator_bench.sh).
 *
 *   bench_validator populate DIR COUNT HOT OUTFILE
 *       a keywarden state folder with COUNT tokens, inserted in one transaction straight
 *       through lib (kw_token_digest + INSERT); HOT of them, spread over the id range, are
 *       written to OUTFILE (one token a line) for the load.
 *   bench_validator echo SOCKET
 *       a bare line echo server on a Unix socket (the baseline: same loop shape, no work).
 *   bench_validator load PROTO ADDR TOKENFILE CONNS DEPTH SECONDS [HTTP_PATH]
 *       the one load generator of every comparison (one thread, epoll): CONNS connections to
 *       ADDR (a Unix socket path, or 127.0.0.1:PORT), each sending DEPTH requests at a time and
 *       waiting for their DEPTH answers before the next batch (as redis-benchmark -P does);
 *       prints requests/s and the p50/p99/p99.9 latency of a request (from its batch's send
 *       to its answer). PROTO: val (VERSION, then CHECK lines), echo (CHECK lines to the echo
 *       server), resp (Redis: SET of every token first, untimed, then EXISTS <token>: one hash
 *       lookup and a one-line reply), http (GET HTTP_PATH, default /authz, with
 *       Authorization: APIKey <token>, keep-alive; a success is a 200). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include <sqlite3.h>

#include "store_private.h" /* test set-up only: SQL straight to the database */
#include "timeutil.h"
#include "token.h"

static void die(const char *what)
{
	fprintf(stderr, "bench_validator: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- populate ---- */

static int populate(const char *dir, long count, long hot, const char *outfile)
{
	char path[4096], keypath[4096], text[KW_TOKEN_TEXT_MAX];
	struct kw_store *store = NULL;
	struct kw_digest_key *key = NULL;
	struct kw_account acct;
	struct kw_user user;
	const char *error = "";
	sqlite3_stmt *st;
	sqlite3 *db;
	FILE *out;
	int64_t now = kw_now();
	long step = hot > 0 ? count / hot : count + 1;

	snprintf(keypath, sizeof(keypath), "%s/keywarden.key", dir);
	snprintf(path, sizeof(path), "%s/keywarden.db", dir);
	if (access(keypath, F_OK) < 0 && kw_digest_key_create(keypath, &error) < 0)
		goto fail;
	if (kw_digest_key_load(keypath, &key, &error) < 0 ||
	    kw_store_open(path, KW_STORE_CREATE, &store, &error) < 0)
		goto fail;
	if (kw_store_account_get(store, "bench", &acct, &error) < 0 &&
	    (kw_store_account_add(store, "bench", "bench", 100000, &error) < 0 ||
	     kw_store_account_get(store, "bench", &acct, &error) < 0))
		goto fail;
	if (kw_store_user_get(store, "bench", &user, &error) < 0 &&
	    (kw_store_user_add(store, "bench", "bench", "bench", "Engineers", NULL, &error) < 0 ||
	     kw_store_user_get(store, "bench", &user, &error) < 0))
		goto fail;
	out = fopen(outfile, "w");
	if (out == NULL)
		die(outfile);
	db = kw_store_sqlite(store);
	if (kw_store_begin(store) < 0 ||
	    sqlite3_prepare_v2(db, "SELECT coalesce(max(id), 0) FROM token", -1, &st, NULL) !=
		    SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		error = sqlite3_errmsg(db);
		goto fail;
	}
	uint64_t base = (uint64_t)sqlite3_column_int64(st, 0) + 1;
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(
		    db,
		    "INSERT INTO token (id, account_id, issuer_id, name, role_id, digest, "
		    "created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
		    -1, &st, NULL) != SQLITE_OK) {
		error = sqlite3_errmsg(db);
		goto fail;
	}
	for (long i = 0; i < count; i++) {
		struct kw_secret secret;
		uint8_t digest[KW_DIGEST_LEN];
		char name[32];
		uint64_t id = base + (uint64_t)i;

		if (kw_secret_generate(&secret) < 0 ||
		    kw_token_digest(key, id, &secret, digest) < 0) {
			error = "random or digest";
			goto fail;
		}
		snprintf(name, sizeof(name), "bench-%ld", i);
		sqlite3_bind_int64(st, 1, (int64_t)id);
		sqlite3_bind_int64(st, 2, acct.id);
		sqlite3_bind_int64(st, 3, user.id);
		sqlite3_bind_text(st, 4, name, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 5, user.role.id);
		sqlite3_bind_blob(st, 6, digest, KW_DIGEST_LEN, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 7, now);
		if (sqlite3_step(st) != SQLITE_DONE) {
			error = sqlite3_errmsg(db);
			goto fail;
		}
		sqlite3_reset(st);
		if (hot > 0 && i % step == 0 && i / step < hot) {
			kw_token_format(id, &secret, text);
			fprintf(out, "%s\n", text);
		}
		kw_secret_wipe(&secret);
	}
	sqlite3_finalize(st);
	if (kw_store_commit(store) < 0) {
		error = sqlite3_errmsg(db);
		goto fail;
	}
	fclose(out);
	kw_store_free(&store);
	kw_digest_key_free(&key);
	return 0;
fail:
	fprintf(stderr, "bench_validator populate: %s\n", error);
	return 1;
}

/* ---- echo ---- */

static int unix_listen(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1024) < 0)
		die(path);
	return fd;
}

static int echo_server(const char *path)
{
	int lfd = unix_listen(path), ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd }, evs[256];
	static char buf[65536];

	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
		die("epoll");
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == lfd) {
				int c;
				while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					struct epoll_event ce = { .events = EPOLLIN, .data.fd = c };
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
				}
				continue;
			}
			ssize_t r = recv(fd, buf, sizeof(buf), 0);
			if (r <= 0) {
				if (r < 0 && errno == EAGAIN)
					continue;
				close(fd);
				continue;
			}
			/* The load never has more than a socket buffer in flight: blocking is fine. */
			for (ssize_t off = 0; off < r;) {
				ssize_t w = send(fd, buf + off, (size_t)(r - off), MSG_NOSIGNAL);
				if (w < 0) {
					if (errno == EAGAIN)
						continue;
					break;
				}
				off += w;
			}
		}
		if (n < 0 && errno != EINTR)
			die("epoll_wait");
	}
	return 0;
}

/* ---- load ---- */

enum lproto {
	P_VAL,  /* the validator protocol: VERSION, then CHECK lines; answers OK/FAIL lines */
	P_ECHO, /* CHECK lines to the echo server: each comes back */
	P_RESP, /* Redis: EXISTS <token> after SET <token> 1 of every token; answers :1 */
	P_HTTP, /* GET <path> with Authorization: APIKey <token>; answers 200 */
};

struct lconn {
	int fd;
	int pending;        /* answers awaited in the batch */
	int64_t batch_sent; /* ns */
	char in[65536];
	size_t in_len;
	bool greeted;
};

struct load {
	enum lproto proto;
	const char *path; /* HTTP */
	char **tokens;
	size_t n_tokens, next_token;
	uint32_t next_id;
	int depth;
	bool recording;
	uint32_t *lat; /* ns, capped */
	size_t n_lat, cap_lat;
	uint64_t done, ok, bad;
};

static size_t format_request(struct load *l, char *buf, size_t size, const char *tok)
{
	switch (l->proto) {
	case P_VAL:
	case P_ECHO:
		return (size_t)snprintf(buf, size, "CHECK\t%u\tservice=bench\ttoken=%s\n",
					++l->next_id, tok);
	case P_RESP:
		return (size_t)snprintf(buf, size, "*2\r\n$6\r\nEXISTS\r\n$%zu\r\n%s\r\n",
					strlen(tok), tok);
	case P_HTTP:
		return (size_t)snprintf(buf, size,
					"GET %s HTTP/1.1\r\nHost: bench\r\nAuthorization: APIKey "
					"%s\r\n\r\n",
					l->path, tok);
	}
	return 0;
}

static void send_all(int fd, const char *buf, size_t len)
{
	for (size_t off = 0; off < len;) {
		ssize_t w = send(fd, buf + off, len - off, MSG_NOSIGNAL);
		if (w < 0)
			die("send");
		off += (size_t)w;
	}
}

static void send_batch(struct load *l, struct lconn *c)
{
	char buf[65536];
	size_t len = 0;

	for (int i = 0; i < l->depth; i++) {
		const char *tok = l->tokens[l->next_token];
		l->next_token = (l->next_token + 1) % l->n_tokens;
		len += format_request(l, buf + len, sizeof(buf) - len, tok);
	}
	c->pending = l->depth;
	c->batch_sent = now_ns();
	send_all(c->fd, buf, len);
}

/* The length of the first complete answer in buf (0: not complete yet) and whether it is a
 * success. */
static size_t next_answer(const struct load *l, struct lconn *c, const char *buf, size_t len,
			  bool *ok_r)
{
	const char *lf, *end;
	size_t head, body = 0;

	if (l->proto != P_HTTP) {
		lf = memchr(buf, '\n', len);
		if (lf == NULL)
			return 0;
		if (!c->greeted) {
			*ok_r = true;
			return (size_t)(lf - buf) + 1;
		}
		if (l->proto == P_VAL)
			*ok_r = memcmp(buf, "OK\t", 3) == 0;
		else if (l->proto == P_ECHO)
			*ok_r = memcmp(buf, "CHECK", 5) == 0;
		else
			*ok_r = len >= 4 && memcmp(buf, ":1\r", 3) == 0;
		return (size_t)(lf - buf) + 1;
	}
	end = memmem(buf, len, "\r\n\r\n", 4);
	if (end == NULL)
		return 0;
	head = (size_t)(end - buf) + 4;
	for (const char *p = buf; p < end;) {
		const char *eol = memmem(p, (size_t)(end - p) + 2, "\r\n", 2);
		if (eol == NULL)
			break;
		if (eol - p > 15 && strncasecmp(p, "Content-Length:", 15) == 0)
			body = strtoul(p + 15, NULL, 10);
		p = eol + 2;
	}
	if (len < head + body)
		return 0;
	*ok_r = len > 12 && memcmp(buf + 9, "200", 3) == 0;
	return head + body;
}

static void record(struct load *l, int64_t ns)
{
	if (!l->recording)
		return;
	if (l->n_lat == l->cap_lat) {
		l->cap_lat = l->cap_lat ? l->cap_lat * 2 : 1 << 20;
		l->lat = realloc(l->lat, l->cap_lat * sizeof(*l->lat));
		if (l->lat == NULL)
			die("realloc");
	}
	l->lat[l->n_lat++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* A Unix socket path, or HOST:PORT (IPv4) for TCP. */
static int connect_to(const char *addr)
{
	const char *colon = strrchr(addr, ':');
	int fd;

	if (addr[0] == '/' || colon == NULL) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", addr);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			die(addr);
		return fd;
	}
	struct sockaddr_in in = { .sin_family = AF_INET };
	char host[64];
	int one = 1;
	snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
	in.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &in.sin_addr) != 1)
		die(addr);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&in, sizeof(in)) < 0)
		die(addr);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Redis: SET every token (untimed), so that each EXISTS finds its key. */
static void resp_populate(struct load *l, int fd)
{
	char buf[65536], in[65536];
	size_t got = 0, want = 0;

	for (size_t i = 0; i < l->n_tokens; i++) {
		int n = snprintf(buf, sizeof(buf), "*3\r\n$3\r\nSET\r\n$%zu\r\n%s\r\n$1\r\n1\r\n",
				 strlen(l->tokens[i]), l->tokens[i]);
		send_all(fd, buf, (size_t)n);
		want += 5; /* +OK\r\n */
		while (got < want) {
			ssize_t r = recv(fd, in, sizeof(in), 0);
			if (r <= 0)
				die("redis SET");
			got += (size_t)r;
		}
	}
}

/* CPU time of this process (user + system), ns. */
static int64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int load(enum lproto proto, const char *addr, const char *path, const char *tokfile,
		int conns, int depth, double seconds)
{
	struct load l = { .depth = depth, .proto = proto, .path = path };
	struct lconn *cs = calloc((size_t)conns, sizeof(*cs));
	struct epoll_event evs[256];
	char line[512];
	FILE *f = fopen(tokfile, "r");
	int ep = epoll_create1(0);
	int64_t start, rec_start = 0, rec_cpu = 0, end;

	if (f == NULL || cs == NULL || ep < 0)
		die(tokfile);
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		l.tokens = realloc(l.tokens, (l.n_tokens + 1) * sizeof(char *));
		l.tokens[l.n_tokens++] = strdup(line);
	}
	fclose(f);
	if (l.n_tokens == 0) {
		fprintf(stderr, "no tokens in %s\n", tokfile);
		return 1;
	}
	for (int i = 0; i < conns; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &cs[i] };
		cs[i].fd = connect_to(addr);
		if (proto == P_RESP && i == 0)
			resp_populate(&l, cs[i].fd);
		if (proto == P_VAL && send(cs[i].fd, "VERSION\t1\t0\n", 12, MSG_NOSIGNAL) != 12)
			die("send");
		cs[i].greeted = proto != P_VAL;
		epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
		send_batch(&l, &cs[i]);
	}
	start = now_ns();
	end = start + (int64_t)(seconds * 1e9) + 300000000; /* 0.3 s warm-up */
	for (;;) {
		int64_t t = now_ns();
		if (!l.recording && t >= start + 300000000) {
			l.recording = true;
			l.done = l.ok = l.bad = 0;
			rec_start = t;
			rec_cpu = cpu_ns();
		}
		if (t >= end)
			break;
		int n = epoll_wait(ep, evs, 256, 100);
		for (int i = 0; i < n; i++) {
			struct lconn *c = evs[i].data.ptr;
			ssize_t r = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
			int64_t got;
			size_t pos = 0, alen;
			bool ok;
			if (r <= 0) {
				fprintf(stderr,
					"bench_validator: connection closed by the server\n");
				return 1;
			}
			got = now_ns();
			c->in_len += (size_t)r;
			while ((alen = next_answer(&l, c, c->in + pos, c->in_len - pos, &ok)) > 0) {
				if (!c->greeted) {
					c->greeted = true;
				} else {
					l.done++;
					if (ok)
						l.ok++;
					else
						l.bad++;
					record(&l, got - c->batch_sent);
					c->pending--;
				}
				pos += alen;
			}
			memmove(c->in, c->in + pos, c->in_len - pos);
			c->in_len -= pos;
			if (c->pending == 0)
				send_batch(&l, c);
		}
	}
	double secs = (double)(now_ns() - rec_start) / 1e9;
	double busy = (double)(cpu_ns() - rec_cpu) / 1e9 / secs;
	qsort(l.lat, l.n_lat, sizeof(*l.lat), cmp_u32);
#define PCT(p) (l.n_lat ? l.lat[(size_t)((double)(l.n_lat - 1) * (p))] / 1000.0 : 0)
	/* client_busy: the share of its CPU this client used (1.00: it was the bottleneck) */
	printf("conns=%d depth=%d checks/s=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f ok=%llu "
	       "bad=%llu client_busy=%.2f\n",
	       conns, depth, (double)l.done / secs, PCT(0.5), PCT(0.99), PCT(0.999),
	       (unsigned long long)l.ok, (unsigned long long)l.bad, busy);
	return l.bad == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	static const char *const names[] = {
		[P_VAL] = "val", [P_ECHO] = "echo", [P_RESP] = "resp", [P_HTTP] = "http"
	};

	signal(SIGPIPE, SIG_IGN);
	if (argc == 6 && strcmp(argv[1], "populate") == 0)
		return populate(argv[2], atol(argv[3]), atol(argv[4]), argv[5]);
	if (argc == 3 && strcmp(argv[1], "echo") == 0)
		return echo_server(argv[2]);
	if ((argc == 8 || argc == 9) && strcmp(argv[1], "load") == 0) {
		for (int p = P_VAL; p <= P_HTTP; p++) {
			if (strcmp(argv[2], names[p]) == 0)
				return load((enum lproto)p, argv[3], argc == 9 ? argv[8] : "/authz",
					    argv[4], atoi(argv[5]), atoi(argv[6]), atof(argv[7]));
		}
	}
	fprintf(stderr,
		"usage: bench_validator populate DIR COUNT HOT OUTFILE\n"
		"       bench_validator echo SOCKET\n"
		"       bench_validator load val|echo|resp|http ADDR TOKENFILE CONNS DEPTH SECONDS "
		"[HTTP_PATH]\n"
		"         ADDR: a Unix socket path or 127.0.0.1:PORT\n");
	return 2;
}
