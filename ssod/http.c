/* http.c: keywarden-ssod's HTTP listener on libmicrohttpd, one thread, and its SAML workers
 * (see http.h).
 *
 * Status codes, decided here and in sso_apply.c only: 200 accepted; 302 to the IdP (GET
 * /saml/login), 303 to `next` after an SP-initiated sign-in; 400 malformed request,
 * form encoding or message (xml, dtd, limit, structure; a missing field); 403 a message not
 * trusted or not for us (signature, wrapping, issuer, audience, time, ...; a login held by a
 * local user or an SSO user of another account); 404 unknown path, or a LogoutRequest for an
 * unknown user; 405 wrong method (with Allow); 408 a request not complete by its deadline;
 * 409 replay; 413 body over [sso] max_body; 415 not a urlencoded form; 500/503 store errors;
 * 503 (with Retry-After, written by refuse()) a connection over [sso] max_connections.
 *
 * The deadline: libmicrohttpd's connection timeout only cuts a connection that goes idle, so a
 * client that sends one byte a second would hold its connection slot for ever. Each request
 * must therefore be complete within DEADLINE_FACTOR x [sso] timeout of the connection's start
 * (or, on a kept-alive connection, of the end of the previous request): the main loop cuts
 * every connection past it (a 408 when nothing was answered yet, then shutdown(); the
 * connection stays libmicrohttpd's, which sees the end of the stream and closes it), and the
 * handler ends a request whose upload data comes later than that. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/crypto.h>
#include <systemd/sd-daemon.h>

#include "api.h"
#include "api_http.h"
#include "page.h"
#include "scim.h"
#include "error.h"
#include "http.h"
#include "login.h"
#include "log.h"
#include "metadata.h"
#include "timeutil.h"

/* A request must be complete within this many times [sso] timeout. */
#define DEADLINE_FACTOR 3
/* Threads that verify and apply SAML messages, each with its own verifier and store. */
#define WORKERS 4
/* Connections over max_connections being answered 503 at a time; more are closed at once. */
#define REFUSED_SLOTS 32
#define REFUSED_LINGER_MS 1000

enum endpoint { EP_NONE, EP_ACS, EP_SLO, EP_METADATA, EP_HEALTHZ, EP_LOGIN, EP_API };

struct request;
struct work;
struct pool;

/* One connection, from its accept to its close (MHD_OPTION_NOTIFY_CONNECTION). */
struct conn {
	struct conn *prev, *next;
	struct MHD_Connection *c;
	int64_t start_ms;   /* monotonic: its accept, or the end of its previous request */
	struct request *rq; /* the request the handler has seen, until it completes */
	bool cut;           /* past its deadline: 408 sent (when nothing was), shut down */
};

/* A connection refused at max_connections: answered 503, its writing side shut down, and
 * read (and dropped) for a moment so that closing it does not reset the answer away. */
struct refused {
	int fd; /* -1: a free slot */
	int64_t until_ms;
};

struct server {
	struct kw_ssod *d;
	struct pool *pool;
	char *metadata;
	size_t metadata_len;
	unsigned long long next_id;
	struct conn *conns;
	unsigned n_conns;    /* served now (MHD_OPTION_NOTIFY_CONNECTION) */
	unsigned suspended;  /* connections whose message a worker has */
	int64_t deadline_ms; /* DEADLINE_FACTOR x [sso] timeout */
	struct refused refused[REFUSED_SLOTS];
	unsigned long long n_refused; /* since the last log line about them */
	int64_t refused_logged_ms;
	struct kw_api_throttle *throttle; /* failed API authentications (api.h) */
};

/* One request's state, from its headers to the completion callback. */
struct request {
	unsigned long long id;
	enum endpoint ep;
	char peer[INET6_ADDRSTRLEN + 16];
	char line[160]; /* "METHOD /path", sanitised for the log */
	char *body;
	size_t len;
	bool too_big;
	size_t discarded; /* bytes dropped after too_big */
	int status;       /* 0 until answered */
	char outcome[KW_LOGIN_MAX + KW_ROLE_MAX + 160];
	struct conn *conn;          /* NULL when libmicrohttpd gave none */
	struct work *work;          /* while a worker has its message, and until it is answered */
	struct kw_api_request *api; /* EP_API: what the worker will need, until submitted */
};

/* One SAML message handed to a worker: the main thread fills it and suspends the connection;
 * the worker fills the outcome and hands it back (struct pool's done list); the main thread
 * resumes the connection and answers from it. Neither touches it while the other has it. */
struct work {
	struct work *next;
	struct MHD_Connection *c;
	struct request *rq;
	enum endpoint ep;
	char *message; /* decoded form field; freed by the worker */
	size_t message_len;
	bool done;
	char *location;             /* EP_LOGIN: the IdP URL (login.h), NULL on failure */
	struct kw_ssod_outcome o;   /* o.detail is not used past the worker: see rq->outcome */
	struct kw_api_request *api; /* EP_API: the request, and its answer (api.h) */
	struct kw_api_answer api_answer;
	char *relay_state;                      /* EP_ACS: the form's RelayState, or NULL */
	char set_cookie[KW_API_SET_COOKIE_MAX]; /* EP_ACS: the session's cookie, or "" */
};

/* The workers. The queue and the done list are guarded by lock; each worker's struct kw_ssod
 * (its verifier and its store connection) is its own, because neither is thread-safe. */
struct pool {
	char *database; /* what the workers' stores open (again, after a lost connection) */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct work *todo, *todo_tail, *done;
	bool stop;
	int efd; /* eventfd: the main thread is woken when something is done */
	unsigned n;
	pthread_t threads[WORKERS];
	struct kw_ssod ctx[WORKERS];
};

static enum MHD_Result api_first_call(struct server *srv, struct MHD_Connection *c,
				      struct request *rq, const char *url, const char *method);
static enum MHD_Result api_process(struct server *srv, struct MHD_Connection *c,
				   struct request *rq);
static size_t body_limit(const struct server *srv, const struct request *rq);
static void work_free(struct work **wp);

/* ---- connections and their deadline ---- */

static void peer_text(struct MHD_Connection *c, char *buf, size_t size)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	char host[INET6_ADDRSTRLEN + 1], serv[16];

	snprintf(buf, size, "unix");
	if (ci != NULL && ci->client_addr != NULL && ci->client_addr->sa_family != AF_UNIX) {
		socklen_t sl = ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
								      : sizeof(struct sockaddr_in);
		if (getnameinfo(ci->client_addr, sl, host, sizeof(host), serv, sizeof(serv),
				NI_NUMERICHOST | NI_NUMERICSERV) == 0)
			snprintf(buf, size,
				 ci->client_addr->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host,
				 serv);
	}
}

static void notify_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			      enum MHD_ConnectionNotificationCode code)
{
	struct server *srv = cls;
	struct conn *cn = *socket_context;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		cn = calloc(1, sizeof(*cn));
		if (cn == NULL)
			abort();
		cn->c = c;
		cn->start_ms = kw_monotonic_ms();
		cn->next = srv->conns;
		if (srv->conns != NULL)
			srv->conns->prev = cn;
		srv->conns = cn;
		srv->n_conns++;
		*socket_context = cn;
		return;
	}
	if (cn == NULL)
		return;
	srv->n_conns--;
	if (cn->prev != NULL)
		cn->prev->next = cn->next;
	else
		srv->conns = cn->next;
	if (cn->next != NULL)
		cn->next->prev = cn->prev;
	if (cn->rq != NULL)
		cn->rq->conn = NULL;
	free(cn);
	*socket_context = NULL;
}

static struct conn *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci != NULL ? ci->socket_context : NULL;
}

static bool overdue(const struct server *srv, const struct conn *cn, int64_t now)
{
	return cn != NULL && now - cn->start_ms >= srv->deadline_ms;
}

/* Ends a connection past its deadline: a 408 when nothing was answered on it yet (written
 * straight to the socket: libmicrohttpd has nothing queued for an unanswered request), then
 * shutdown(), after which libmicrohttpd reads the end of the stream and closes it. */
static void cut(struct server *srv, struct conn *cn)
{
	static const char answer[] = "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
				     "Content-Type: text/plain; charset=utf-8\r\n"
				     "Content-Length: 30\r\n\r\n408 request not complete in time\n";
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(cn->c, MHD_CONNECTION_INFO_CONNECTION_FD);
	unsigned secs = (unsigned)(srv->deadline_ms / 1000);
	char peer[INET6_ADDRSTRLEN + 16];

	if (cn->cut)
		return;
	cn->cut = true;
	if (ci == NULL)
		return;
	if (cn->rq == NULL || cn->rq->status == 0) {
		ssize_t n = send(ci->connect_fd, answer, sizeof(answer) - 1,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)n; /* best effort: the connection ends either way */
	}
	shutdown(ci->connect_fd, SHUT_RDWR);
	if (cn->rq == NULL) {
		/* the handler never saw it, so completed() will not log it */
		peer_text(cn->c, peer, sizeof(peer));
		kw_notice("peer %s: request headers not complete within %u s: 408, connection "
			  "closed (deadline)",
			  peer, secs);
	} else if (cn->rq->status == 0) {
		cn->rq->status = MHD_HTTP_REQUEST_TIMEOUT;
		snprintf(cn->rq->outcome, sizeof(cn->rq->outcome),
			 "request not complete within %u s", secs);
	}
}

/* Cuts the connections past their deadline; returns the milliseconds until the next one's,
 * or -1 when there is none. */
static int cut_overdue(struct server *srv)
{
	int64_t now = kw_monotonic_ms(), next = -1;

	for (struct conn *cn = srv->conns; cn != NULL; cn = cn->next) {
		int64_t left = cn->start_ms + srv->deadline_ms - now;

		/* a message a worker has came in complete: the client is not the slow one */
		if (cn->cut || (cn->rq != NULL && cn->rq->work != NULL))
			continue;
		if (left <= 0)
			cut(srv, cn);
		else if (next < 0 || left < next)
			next = left;
	}
	return next < 0 ? -1 : next > INT_MAX ? INT_MAX : (int)next;
}

/* ---- the answer ---- */

/* queue() with the headers of a sign-in: the session cookie and a redirect (either NULL). */
static enum MHD_Result queue_ex(struct MHD_Connection *c, struct request *rq, int status,
				const char *type, const char *body, size_t len, const char *allow,
				const char *reason, const char *set_cookie, const char *location)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Content-Security-Policy",
				"default-src 'none'; frame-ancestors 'none'");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	if (allow != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	if (reason != NULL)
		MHD_add_response_header(resp, "X-Keywarden-Reason", reason);
	if (set_cookie != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, set_cookie);
	if (location != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
	/* A request whose body was not read to its end cannot be followed by another one. */
	if (status == MHD_HTTP_CONTENT_TOO_LARGE || status == MHD_HTTP_METHOD_NOT_ALLOWED ||
	    status == MHD_HTTP_UNSUPPORTED_MEDIA_TYPE)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	ret = MHD_queue_response(c, (unsigned)status, resp);
	MHD_destroy_response(resp);
	rq->status = status;
	return ret;
}

static enum MHD_Result queue(struct MHD_Connection *c, struct request *rq, int status,
			     const char *type, const char *body, size_t len, const char *allow,
			     const char *reason)
{
	return queue_ex(c, rq, status, type, body, len, allow, reason, NULL, NULL);
}

/* A small plain-text answer for HTTP-level errors. */
static enum MHD_Result plain(struct MHD_Connection *c, struct request *rq, int status,
			     const char *text, const char *allow)
{
	char buf[256];
	int n = snprintf(buf, sizeof(buf), "%d %s\n", status, text);

	snprintf(rq->outcome, sizeof(rq->outcome), "%s", text);
	return queue(c, rq, status, "text/plain; charset=utf-8", buf, (size_t)n, allow, NULL);
}

/* A redirect (302 to the IdP, 303 after a sign-in) to location. */
static enum MHD_Result redirect(struct MHD_Connection *c, struct request *rq, int status,
				const char *location)
{
	return queue_ex(c, rq, status, "text/plain; charset=utf-8", "", 0, NULL, NULL, NULL,
			location);
}

/* The page the browser shows after a POST of the IdP. */
static enum MHD_Result saml_answer(struct MHD_Connection *c, struct request *rq,
				   const struct work *w)
{
	const struct kw_ssod_outcome *o = &w->o;
	const char *cookie = w->set_cookie[0] != '\0' ? w->set_cookie : NULL, *to = NULL;
	char *page = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&page, &len);
	enum MHD_Result ret;

	if (f == NULL)
		abort();
	/* Where a sign-in goes on to, a path on this site only: the `next` stored with our own
	 * AuthnRequest (SP-initiated), else, with a session, the form's RelayState. */
	if (o->status == 200 && rq->ep == EP_ACS) {
		if (o->next[0] != '\0' && kw_ssod_next_ok(o->next))
			to = o->next;
		else if (cookie != NULL && w->relay_state != NULL &&
			 kw_ssod_next_ok(w->relay_state))
			to = w->relay_state;
	}
	fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>keywarden</title>"
	      "</head><body>\n<p>",
	      f);
	if (o->status == 200 && rq->ep == EP_ACS) {
		fputs("Signed in to keywarden as <b>", f);
		kw_ssod_markup_escape(f, o->login);
		fputs("</b>", f);
		if (o->role[0] != '\0') {
			fputs(" with role <b>", f);
			kw_ssod_markup_escape(f, o->role);
			fputs("</b>.", f);
		} else {
			fputs(": no keywarden role maps to your groups.", f);
		}
	} else if (o->status == 200) {
		fputs("Signed out of keywarden: ", f);
		kw_ssod_markup_escape(f, o->login);
		fprintf(f, " (%u session%s ended). Permanent API tokens are not affected.",
			o->sessions_ended, o->sessions_ended == 1 ? "" : "s");
	} else {
		fprintf(f, "%s refused (%d): ", rq->ep == EP_ACS ? "Sign-in" : "Sign-out",
			o->status);
		kw_ssod_markup_escape(f, o->reason);
		fputs(".", f);
	}
	fputs("</p>\n</body></html>\n", f);
	if (fclose(f) != 0)
		abort();
	ret = queue_ex(c, rq, to != NULL ? MHD_HTTP_SEE_OTHER : o->status,
		       "text/html; charset=utf-8", page, len, NULL, o->reason, cookie, to);
	free(page);
	return ret;
}

/* ---- application/x-www-form-urlencoded, strictly ---- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes in[0..len) into out (at least len + 1 bytes); -EINVAL on a bad escape or a NUL. */
static int form_decode(const char *in, size_t len, char *out, size_t *out_len_r)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char ch = in[i];

		if (ch == '+') {
			ch = ' ';
		} else if (ch == '%') {
			int hi, lo;
			if (i + 2 >= len)
				return -EINVAL;
			hi = hexval(in[i + 1]);
			lo = hexval(in[i + 2]);
			if (hi < 0 || lo < 0)
				return -EINVAL;
			ch = (char)(hi * 16 + lo);
			i += 2;
		}
		if (ch == '\0')
			return -EINVAL;
		out[o++] = ch;
	}
	out[o] = '\0';
	*out_len_r = o;
	return 0;
}

struct form {
	char *message; /* SAMLResponse or SAMLRequest, decoded; caller frees */
	size_t message_len;
	size_t relay_state_len;
	char *relay_state; /* decoded; NULL when absent; caller frees */
};

/* Parses body for the field `want`. Returns 0, -EINVAL malformed (why in *why_r), -ENOENT
 * field missing. */
static int form_parse(const char *body, size_t len, const char *want, struct form *f,
		      const char **why_r)
{
	size_t pos = 0;
	bool relay_seen = false;

	memset(f, 0, sizeof(*f));
	while (pos < len) {
		const char *pair = body + pos, *amp = memchr(pair, '&', len - pos), *eq;
		size_t plen = amp != NULL ? (size_t)(amp - pair) : len - pos, nlen, vlen;
		char name[64], *value;

		pos += plen + 1;
		eq = memchr(pair, '=', plen);
		if (plen == 0 || eq == NULL) {
			*why_r = "a form field without '='";
			goto bad;
		}
		if ((size_t)(eq - pair) >= sizeof(name)) {
			/* no field of ours has a long name: skip it, but it must still decode */
			char *tmp = malloc(plen + 1);
			if (tmp == NULL)
				abort();
			if (form_decode(pair, plen, tmp, &nlen) < 0) {
				free(tmp);
				*why_r = "bad percent-encoding";
				goto bad;
			}
			free(tmp);
			continue;
		}
		if (form_decode(pair, (size_t)(eq - pair), name, &nlen) < 0) {
			*why_r = "bad percent-encoding in a field name";
			goto bad;
		}
		value = malloc(plen + 1);
		if (value == NULL)
			abort();
		if (form_decode(eq + 1, plen - (size_t)(eq - pair) - 1, value, &vlen) < 0) {
			free(value);
			*why_r = "bad percent-encoding in a field value";
			goto bad;
		}
		if (strcmp(name, want) == 0) {
			if (f->message != NULL) {
				free(value);
				*why_r = "the message field is given twice";
				goto bad;
			}
			f->message = value;
			f->message_len = vlen;
			continue;
		}
		if (strcmp(name, "RelayState") == 0) {
			if (relay_seen) {
				free(value);
				*why_r = "RelayState is given twice";
				goto bad;
			}
			relay_seen = true;
			f->relay_state_len = vlen;
			f->relay_state = value;
			continue;
		}
		free(value);
	}
	if (f->message == NULL) {
		free(f->relay_state);
		f->relay_state = NULL;
		*why_r = want;
		return -ENOENT;
	}
	return 0;
bad:
	free(f->message);
	f->message = NULL;
	free(f->relay_state);
	f->relay_state = NULL;
	return -EINVAL;
}

static bool is_form(struct MHD_Connection *c)
{
	const char *t =
		MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	static const char want[] = "application/x-www-form-urlencoded";
	size_t n = sizeof(want) - 1;

	return t != NULL && strncasecmp(t, want, n) == 0 &&
	       (t[n] == '\0' || t[n] == ';' || t[n] == ' ');
}

/* ---- the handler ---- */

static void describe(struct MHD_Connection *c, struct request *rq, const char *method,
		     const char *url)
{
	size_t n;

	peer_text(c, rq->peer, sizeof(rq->peer));
	n = (size_t)snprintf(rq->line, sizeof(rq->line), "%.16s ", method);
	for (const char *p = url; *p != '\0' && n + 4 < sizeof(rq->line); p++)
		rq->line[n++] = (*p > 0x20 && *p < 0x7f) ? *p : '?';
	rq->line[n < sizeof(rq->line) ? n : sizeof(rq->line) - 1] = '\0';
}

/* GET /saml/login[?next=PATH]: next is checked here, the AuthnRequest made by a worker (it
 * writes to the store). */
static enum MHD_Result login_first_call(struct MHD_Connection *c, struct request *rq)
{
	const char *next = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "next");

	if (next != NULL && next[0] != '\0' && !kw_ssod_next_ok(next))
		return plain(c, rq, MHD_HTTP_BAD_REQUEST, "next is not a path on this site", NULL);
	rq->body = strdup(next != NULL ? next : "");
	if (rq->body == NULL)
		abort();
	rq->len = strlen(rq->body);
	return MHD_YES;
}

static enum MHD_Result first_call(struct server *srv, struct MHD_Connection *c, struct request *rq,
				  const char *url, const char *method)
{
	const char *allow, *cl;
	bool get_ok;

	if (strcmp(url, "/saml/acs") == 0)
		rq->ep = EP_ACS;
	else if (strcmp(url, "/saml/slo") == 0)
		rq->ep = EP_SLO;
	else if (strcmp(url, "/saml/metadata") == 0)
		rq->ep = EP_METADATA;
	else if (strcmp(url, "/healthz") == 0)
		rq->ep = EP_HEALTHZ;
	else if (strcmp(url, "/saml/login") == 0)
		rq->ep = EP_LOGIN;
	else if (strncmp(url, KW_API_PREFIX, strlen(KW_API_PREFIX)) == 0)
		return api_first_call(srv, c, rq, url, method);
	else if (kw_page_path(url)) /* the pages (page.h): on the workers, as the API */
		return api_first_call(srv, c, rq, url, method);
	else if (strncmp(url, KW_SCIM_PREFIX, strlen(KW_SCIM_PREFIX)) == 0)
		return api_first_call(srv, c, rq, url, method); /* SCIM (scim.h): the API's path */
	if (rq->ep == EP_NONE)
		return plain(c, rq, MHD_HTTP_NOT_FOUND, "not found", NULL);
	get_ok = rq->ep == EP_METADATA || rq->ep == EP_HEALTHZ || rq->ep == EP_LOGIN;
	allow = get_ok ? "GET, HEAD" : "POST";
	if (get_ok ? (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		   : strcmp(method, "POST") != 0)
		return plain(c, rq, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed", allow);
	if (rq->ep == EP_METADATA) {
		snprintf(rq->outcome, sizeof(rq->outcome), "metadata");
		return queue(c, rq, MHD_HTTP_OK, "application/samlmetadata+xml", srv->metadata,
			     srv->metadata_len, NULL, NULL);
	}
	if (rq->ep == EP_HEALTHZ) {
		snprintf(rq->outcome, sizeof(rq->outcome), "ok");
		return queue(c, rq, MHD_HTTP_OK, "text/plain; charset=utf-8", "ok\n", 3, NULL,
			     NULL);
	}
	if (rq->ep == EP_LOGIN)
		return login_first_call(c, rq);
	if (!is_form(c))
		return plain(c, rq, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
			     "not application/x-www-form-urlencoded", NULL);
	cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl != NULL) {
		char *end;
		unsigned long long n;

		errno = 0;
		n = strtoull(cl, &end, 10);
		if (errno != 0 || end == cl || n > srv->d->sso->max_body)
			return plain(c, rq, MHD_HTTP_CONTENT_TOO_LARGE, "body too large", NULL);
	}
	return MHD_YES; /* the body follows */
}

/* Says in rq->outcome what became of the message (the worker's text, copied: o->detail lives
 * until that worker's next message only). Runs in the worker. */
static void describe_outcome(struct request *rq, enum endpoint ep, const struct kw_ssod_outcome *o)
{
	if (o->status == 200 && ep == EP_ACS)
		snprintf(rq->outcome, sizeof(rq->outcome), "accepted login %s role %s (%s)",
			 o->login, o->role[0] != '\0' ? o->role : "-", kw_sso_outcome_name(o->sso));
	else if (o->status == 200)
		snprintf(rq->outcome, sizeof(rq->outcome),
			 "logout of NameID %s recorded, %u session(s) ended", o->login,
			 o->sessions_ended);
	else
		snprintf(rq->outcome, sizeof(rq->outcome), "rejected %s%s%s", o->reason,
			 o->login[0] != '\0' ? " login " : "", o->login);
	if (o->detail != NULL && o->detail[0] != '\0' && o->status != 200) {
		size_t n = strlen(rq->outcome);
		snprintf(rq->outcome + n, sizeof(rq->outcome) - n, ": %s", o->detail);
	}
}

/* ---- the workers ---- */

/* Verifies and applies one message with the worker's own verifier and store. */
static void work_run(struct kw_ssod *d, struct work *w)
{
	if (w->ep == EP_API) {
		if (strncmp(w->api->path, KW_SCIM_PREFIX, strlen(KW_SCIM_PREFIX)) == 0)
			kw_scim_handle(d->store, d->sso, kw_saml_verifier_idp_entity_id(d->v),
				       d->scim, w->api, kw_now(), &w->api_answer);
		else if (kw_page_path(w->api->path))
			kw_page_handle(d->store, d->key, d->api, w->api, kw_now(), &w->api_answer);
		else
			kw_api_handle(d->store, d->key, d->api, w->api, kw_now(), &w->api_answer);
		kw_api_request_free(&w->api);
		snprintf(w->rq->outcome, sizeof(w->rq->outcome), "%s", w->api_answer.outcome);
		return;
	}
	if (w->ep == EP_LOGIN) {
		const char *error = NULL;
		if (kw_ssod_authn_request(d, w->message, kw_now(), &w->location, &error) < 0)
			snprintf(w->rq->outcome, sizeof(w->rq->outcome), "no AuthnRequest: %s",
				 error);
		else
			snprintf(w->rq->outcome, sizeof(w->rq->outcome),
				 "AuthnRequest sent to the IdP");
		free(w->message);
		w->message = NULL;
		return;
	}
	if (w->ep == EP_ACS) {
		int64_t now = kw_now();
		const char *error = NULL;

		kw_ssod_login(d, (const uint8_t *)w->message, w->message_len, now, &w->o);
		/* an accepted sign-in with a role starts the browser's session (api.h) */
		if (w->o.status == 200 && w->o.role[0] != '\0' && d->key != NULL &&
		    kw_api_session_start(d->store, d->key, d->api, w->o.login, now, w->set_cookie,
					 &error) < 0)
			kw_notice("login %s: no session cookie: %s", w->o.login, error);
	} else
		kw_ssod_logout(d, (const uint8_t *)w->message, w->message_len, kw_now(), &w->o);
	free(w->message);
	w->message = NULL;
	describe_outcome(w->rq, w->ep, &w->o);
	w->o.detail = NULL;
}

struct worker_arg {
	struct pool *pool;
	unsigned index;
};

/* A database server's connection is lost (a restart, a network cut): the worker opens its
 * store again before its next job, so that one failed request, not every later one, pays for
 * it. An SQLite store is never lost. */
static void reconnect(struct pool *pool, struct kw_ssod *d)
{
	struct kw_store *store = NULL;
	const char *error = NULL;

	if (!kw_store_lost(d->store))
		return;
	if (kw_store_open(pool->database, 0, &store, &error) < 0) {
		kw_warning("the database is out of reach: %s", error);
		return;
	}
	kw_store_free(&d->store);
	d->store = store;
	kw_notice("the database connection was lost: connected again");
}

static void *worker_main(void *arg)
{
	struct pool *pool = ((struct worker_arg *)arg)->pool;
	struct kw_ssod *d = &pool->ctx[((struct worker_arg *)arg)->index];
	uint64_t one = 1;

	free(arg);
	for (;;) {
		struct work *w;
		ssize_t n;

		pthread_mutex_lock(&pool->lock);
		while (pool->todo == NULL && !pool->stop)
			pthread_cond_wait(&pool->wake, &pool->lock);
		w = pool->todo;
		if (w == NULL) {
			pthread_mutex_unlock(&pool->lock);
			return NULL;
		}
		pool->todo = w->next;
		if (pool->todo == NULL)
			pool->todo_tail = NULL;
		pthread_mutex_unlock(&pool->lock);

		reconnect(pool, d);
		work_run(d, w);

		pthread_mutex_lock(&pool->lock);
		w->next = pool->done;
		pool->done = w;
		pthread_mutex_unlock(&pool->lock);
		n = write(pool->efd, &one, sizeof(one));
		(void)n; /* an eventfd only fails when its counter is full: it is awake then */
	}
}

static void pool_free(struct pool **pp)
{
	struct pool *pool = *pp;

	if (pool == NULL)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stop = true;
	pthread_cond_broadcast(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
	for (unsigned i = 0; i < pool->n; i++)
		pthread_join(pool->threads[i], NULL);
	for (unsigned i = 0; i < WORKERS; i++) {
		kw_saml_verifier_free(&pool->ctx[i].v);
		kw_store_free(&pool->ctx[i].store);
		kw_digest_key_free(&pool->ctx[i].key);
	}
	if (pool->efd >= 0)
		close(pool->efd);
	pthread_cond_destroy(&pool->wake);
	pthread_mutex_destroy(&pool->lock);
	free(pool->database);
	free(pool);
	*pp = NULL;
}

/* Starts WORKERS threads, each with a verifier and a store connection of its own (opened on
 * database, as the main thread's). The caller frees the pool with pool_free(). */
static int pool_new(const struct kw_ssod *d, const char *database, struct pool **pool_r,
		    const char **error_r)
{
	struct pool *pool = calloc(1, sizeof(*pool));
	const char *error;
	int ret = 0;

	if (pool == NULL || (pool->database = strdup(database)) == NULL)
		abort();
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->wake, NULL);
	pool->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (pool->efd < 0) {
		ret = kw_error_fail(error_r, -errno, "eventfd: %s", strerror(errno));
		goto out;
	}
	for (unsigned i = 0; i < WORKERS; i++) {
		struct kw_ssod *ctx = &pool->ctx[i];

		ctx->sso = d->sso;
		ctx->api = d->api;
		ctx->scim = d->scim;
		ret = kw_store_open(database, 0, &ctx->store, &error);
		if (ret < 0) {
			/* the store's message names it (a server without its password) */
			ret = kw_error_fail(error_r, ret, "%s", error);
			goto out;
		}
		ret = kw_digest_key_load(d->api->key_file, &ctx->key, &error);
		if (ret < 0) {
			ret = kw_error_fail(error_r, ret, "%s: %s", d->api->key_file, error);
			goto out;
		}
		ret = kw_saml_verifier_new(&d->sso->saml, d->sso->idp_metadata, d->sso->sp_key,
					   &ctx->v, &error);
		if (ret < 0) {
			ret = kw_error_fail(error_r, ret, "[sso] idp_metadata/sp_key: %s", error);
			goto out;
		}
	}
	for (unsigned i = 0; i < WORKERS; i++) {
		struct worker_arg *arg = malloc(sizeof(*arg));
		int e;

		if (arg == NULL)
			abort();
		arg->pool = pool;
		arg->index = i;
		e = pthread_create(&pool->threads[i], NULL, worker_main, arg);
		if (e != 0) {
			free(arg);
			ret = kw_error_fail(error_r, -e, "cannot start a worker: %s", strerror(e));
			goto out;
		}
		pool->n++;
	}
out:
	if (ret < 0)
		pool_free(&pool);
	else
		*pool_r = pool;
	return ret;
}

/* Main thread: hands a message to the workers and suspends its connection until done. */
static void pool_enqueue(struct server *srv, struct MHD_Connection *c, struct request *rq,
			 struct work *w)
{
	struct pool *pool = srv->pool;

	w->c = c;
	w->rq = rq;
	w->ep = rq->ep;
	rq->work = w;
	MHD_suspend_connection(c);
	srv->suspended++;
	pthread_mutex_lock(&pool->lock);
	if (pool->todo_tail != NULL)
		pool->todo_tail->next = w;
	else
		pool->todo = w;
	pool->todo_tail = w;
	pthread_cond_signal(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
}

static void pool_submit(struct server *srv, struct MHD_Connection *c, struct request *rq,
			struct form *f)
{
	struct work *w = calloc(1, sizeof(*w));

	if (w == NULL)
		abort();
	w->message = f->message;
	w->message_len = f->message_len;
	w->relay_state = f->relay_state;
	f->message = NULL;
	f->relay_state = NULL;
	pool_enqueue(srv, c, rq, w);
}

/* Main thread: resumes the connections whose message is done; the handler answers them. */
static void pool_collect(struct server *srv)
{
	struct pool *pool = srv->pool;
	struct work *done;
	uint64_t count;

	if (read(pool->efd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		kw_warning("eventfd: %s", strerror(errno));
	pthread_mutex_lock(&pool->lock);
	done = pool->done;
	pool->done = NULL;
	pthread_mutex_unlock(&pool->lock);
	for (struct work *w = done, *next; w != NULL; w = next) {
		next = w->next;
		w->next = NULL;
		w->done = true;
		srv->suspended--;
		MHD_resume_connection(w->c);
	}
}

/* ---- the REST API (api.h): requests run on the workers, as SAML messages do, because they
 * use the store (a locked database or a slow disk must not hold /healthz and the other
 * connections) and the digest key, each a worker's own; the throttle of failed
 * authentications stays here, in the HTTP thread, which alone touches it. ---- */

static size_t body_limit(const struct server *srv, const struct request *rq)
{
	return rq->ep == EP_API ? srv->d->api->max_body : srv->d->sso->max_body;
}

static void work_free(struct work **wp)
{
	if (*wp == NULL)
		return;
	kw_api_request_free(&(*wp)->api);
	kw_api_answer_clear(&(*wp)->api_answer);
	free((*wp)->relay_state);
	free((*wp)->location);
	OPENSSL_cleanse((*wp)->set_cookie, sizeof((*wp)->set_cookie));
	free(*wp);
	*wp = NULL;
}

/* An answer of the API (api_http.c writes it), noted for the log line. */
static enum MHD_Result api_queue(struct MHD_Connection *c, struct request *rq,
				 const struct kw_api_answer *a, unsigned retry_after)
{
	rq->status = a->status;
	snprintf(rq->outcome, sizeof(rq->outcome), "%s", a->outcome);
	return kw_api_http_queue(c, a, retry_after);
}

/* An error answered by the HTTP thread itself (429, 413). */
static enum MHD_Result api_fail(struct MHD_Connection *c, struct request *rq, int status,
				const char *code, const char *message, unsigned retry_after)
{
	struct kw_api_answer a = { 0 };
	enum MHD_Result ret;

	if (rq->api != NULL && rq->api->path != NULL &&
	    strncmp(rq->api->path, KW_SCIM_PREFIX, strlen(KW_SCIM_PREFIX)) == 0)
		kw_scim_error(&a, status, NULL, "%s", message); /* SCIM's error form */
	else
		kw_api_error(&a, status, code, "%s", message);
	ret = api_queue(c, rq, &a, retry_after);
	kw_api_answer_clear(&a);
	return ret;
}

static enum MHD_Result api_first_call(struct server *srv, struct MHD_Connection *c,
				      struct request *rq, const char *url, const char *method)
{
	unsigned blocked;

	rq->ep = EP_API;
	rq->api = kw_api_http_request(c, url, method, rq->peer);
	blocked = kw_api_throttle_blocked(srv->throttle, rq->api->ip, kw_monotonic_ms());
	if (blocked > 0)
		return api_fail(c, rq, MHD_HTTP_TOO_MANY_REQUESTS, "rate_limited",
				"too many failed authentications from this client: try later",
				blocked);
	if (kw_api_http_length(c) > srv->d->api->max_body)
		return api_fail(c, rq, MHD_HTTP_CONTENT_TOO_LARGE, "too_large", "body too large",
				0);
	return MHD_YES; /* a body may follow */
}

static enum MHD_Result api_process(struct server *srv, struct MHD_Connection *c, struct request *rq)
{
	struct work *w;

	if (rq->work != NULL) {
		/* resumed: a worker has answered */
		enum MHD_Result r;

		if (!rq->work->done)
			return MHD_YES; /* cannot happen: suspended until done */
		if (rq->work->api_answer.auth_failed)
			kw_api_throttle_failed(srv->throttle, rq->api != NULL ? rq->api->ip : "?",
					       kw_monotonic_ms());
		r = api_queue(c, rq, &rq->work->api_answer, 0);
		work_free(&rq->work);
		return r;
	}
	if (rq->too_big)
		return api_fail(c, rq, MHD_HTTP_CONTENT_TOO_LARGE, "too_large", "body too large",
				0);
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		abort();
	/* the worker takes the request and the body; the client's address stays for the
	 * throttle */
	w->api = rq->api;
	rq->api = calloc(1, sizeof(*rq->api));
	if (rq->api == NULL)
		abort();
	memcpy(rq->api->ip, w->api->ip, sizeof(rq->api->ip));
	w->api->body = rq->body;
	w->api->body_len = rq->len;
	rq->body = NULL;
	rq->len = 0;
	pool_enqueue(srv, c, rq, w);
	return MHD_YES;
}

static enum MHD_Result process(struct server *srv, struct MHD_Connection *c, struct request *rq)
{
	const char *field = rq->ep == EP_ACS ? "SAMLResponse" : "SAMLRequest", *why = NULL;
	struct form f = { 0 };
	int ret;

	if (rq->ep == EP_API)
		return api_process(srv, c, rq);
	if (rq->work != NULL) {
		/* resumed: a worker has verified and applied the message */
		enum MHD_Result r;

		if (!rq->work->done)
			return MHD_YES; /* cannot happen: suspended until done */
		if (rq->ep == EP_LOGIN && rq->work->location != NULL)
			r = redirect(c, rq, MHD_HTTP_FOUND, rq->work->location);
		else if (rq->ep == EP_LOGIN)
			r = queue(c, rq, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain; charset=utf-8",
				  "503 sign-in is not available now\n", 33, NULL, NULL);
		else
			r = saml_answer(c, rq, rq->work);
		work_free(&rq->work);
		return r;
	}
	if (rq->too_big)
		return plain(c, rq, MHD_HTTP_CONTENT_TOO_LARGE, "body too large", NULL);
	if (rq->ep == EP_LOGIN) {
		f.message = rq->body; /* next, checked by login_first_call() */
		f.message_len = rq->len;
		rq->body = NULL;
		rq->len = 0;
		pool_submit(srv, c, rq, &f);
		return MHD_YES;
	}
	ret = form_parse(rq->body != NULL ? rq->body : "", rq->len, field, &f, &why);
	if (ret == -ENOENT) {
		char text[64];
		snprintf(text, sizeof(text), "missing form field %s", field);
		return plain(c, rq, MHD_HTTP_BAD_REQUEST, text, NULL);
	}
	if (ret < 0) {
		char text[128];
		snprintf(text, sizeof(text), "malformed form: %s", why);
		return plain(c, rq, MHD_HTTP_BAD_REQUEST, text, NULL);
	}
	/* the body is not needed any more: the worker has the decoded field */
	free(rq->body);
	rq->body = NULL;
	rq->len = 0;
	pool_submit(srv, c, rq, &f);
	return MHD_YES;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version, const char *upload_data,
			       size_t *upload_data_size, void **con_cls)
{
	struct server *srv = cls;
	struct request *rq = *con_cls;

	if (rq == NULL) {
		rq = calloc(1, sizeof(*rq));
		if (rq == NULL)
			abort();
		rq->id = ++srv->next_id;
		describe(c, rq, method, url);
		*con_cls = rq;
		rq->conn = conn_of(c);
		if (rq->conn != NULL)
			rq->conn->rq = rq;
		if (overdue(srv, rq->conn, kw_monotonic_ms())) {
			/* the headers came in just at the deadline */
			cut(srv, rq->conn);
			return MHD_NO;
		}
		return first_call(srv, c, rq, url, method);
	}
	if (rq->status != 0) {
		/* answered already (an early error): drop what still arrives */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;

		if (overdue(srv, rq->conn, kw_monotonic_ms())) {
			/* a body trickling in past the deadline: 408, and the connection ends */
			cut(srv, rq->conn);
			return MHD_NO;
		}

		if (!rq->too_big && rq->len + n <= body_limit(srv, rq)) {
			char *b = realloc(rq->body, rq->len + n + 1);
			if (b == NULL)
				abort();
			memcpy(b + rq->len, upload_data, n);
			rq->body = b;
			rq->len += n;
			rq->body[rq->len] = '\0';
		} else {
			/* chunked, or longer than announced: keep nothing, answer 413 once the
			 * body has ended; a body that goes on and on gets the connection closed */
			rq->too_big = true;
			free(rq->body);
			rq->body = NULL;
			rq->len = 0;
			rq->discarded += n;
			if (rq->discarded > 4 * body_limit(srv, rq)) {
				snprintf(rq->outcome, sizeof(rq->outcome),
					 "body far over max_body: connection closed");
				return MHD_NO;
			}
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	return process(srv, c, rq);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct request *rq = *con_cls;
	static const char *const why[] = {
		[MHD_REQUEST_TERMINATED_COMPLETED_OK] = "completed",
		[MHD_REQUEST_TERMINATED_WITH_ERROR] = "error",
		[MHD_REQUEST_TERMINATED_TIMEOUT_REACHED] = "timeout",
		[MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN] = "shutdown",
		[MHD_REQUEST_TERMINATED_READ_ERROR] = "read error",
		[MHD_REQUEST_TERMINATED_CLIENT_ABORT] = "client abort",
	};
	const char *w = (unsigned)toe < sizeof(why) / sizeof(why[0]) && why[toe] != NULL ? why[toe]
											 : "closed";

	if (rq == NULL)
		return;
	if (rq->conn != NULL) {
		if (rq->conn->cut)
			w = "deadline";
		/* the next request on this connection has its own deadline */
		rq->conn->rq = NULL;
		rq->conn->start_ms = kw_monotonic_ms();
	}
	if (rq->status == 0)
		kw_notice("peer %s req %llu: \"%s\": no answer, connection closed (%s)", rq->peer,
			  rq->id, rq->line, w);
	else if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
		kw_notice("peer %s req %llu: \"%s\" %d %s; connection closed (%s)", rq->peer,
			  rq->id, rq->line, rq->status, rq->outcome, w);
	else
		kw_notice("peer %s req %llu: \"%s\" %d %s", rq->peer, rq->id, rq->line, rq->status,
			  rq->outcome);
	free(rq->body);
	kw_api_request_free(&rq->api);
	if (rq->work != NULL && rq->work->done)
		work_free(
			&rq->work); /* (a work not done is the worker's: never so while suspended) */
	free(rq);
	*con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	kw_logv(KW_LOG_INFO, fmt, ap);
}

/* ---- the listening socket ---- */

static int listen_unix(const char *path, char *where, size_t wsize, const char **error_r)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return kw_error_fail(error_r, -ENAMETOOLONG, "[sso] listen: %s: path too long",
				     path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	/* a socket left by a previous run: replace it; anything else: refuse */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return kw_error_fail(error_r, -EEXIST,
					     "[sso] listen: %s exists and is not a socket", path);
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return kw_error_fail(error_r, -errno, "socket: %s", strerror(errno));
	old = umask(0117); /* 0660: the reverse proxy's group may connect */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		umask(old);
		close(fd);
		return kw_error_fail(error_r, -e, "[sso] listen: bind %s: %s", path, strerror(e));
	}
	umask(old);
	if (listen(fd, 128) < 0) {
		int e = errno;
		close(fd);
		return kw_error_fail(error_r, -e, "[sso] listen: %s: %s", path, strerror(e));
	}
	snprintf(where, wsize, "unix:%s", path);
	return fd;
}

static int listen_tcp(const char *spec, char *where, size_t wsize, const char **error_r)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[256], serv[16], *colon;
	int fd, one = 1, rc;

	if (strlen(spec) >= sizeof(host))
		return kw_error_fail(error_r, -EINVAL, "[sso] listen: too long");
	snprintf(host, sizeof(host), "%s", spec);
	colon = strrchr(host, ':');
	if (colon == NULL)
		return kw_error_fail(error_r, -EINVAL, "[sso] listen: \"%s\" has no port", spec);
	*colon = '\0';
	snprintf(serv, sizeof(serv), "%s", colon + 1);
	if (host[0] == '[' && colon > host + 1 && colon[-1] == ']') {
		colon[-1] = '\0';
		memmove(host, host + 1, strlen(host));
	}
	rc = getaddrinfo(host, serv, &hints, &ai);
	if (rc != 0)
		return kw_error_fail(error_r, -EINVAL, "[sso] listen: \"%s\": %s", spec,
				     gai_strerror(rc));
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		freeaddrinfo(ai);
		return kw_error_fail(error_r, -errno, "socket: %s", strerror(errno));
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0) {
		int e = errno;
		freeaddrinfo(ai);
		close(fd);
		return kw_error_fail(error_r, -e, "[sso] listen: %s: %s", spec, strerror(e));
	}
	freeaddrinfo(ai);
	/* the real port, for listen = 127.0.0.1:0 */
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 &&
	    getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), serv, sizeof(serv),
			NI_NUMERICHOST | NI_NUMERICSERV) == 0)
		snprintf(where, wsize, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
	else
		snprintf(where, wsize, "%s", spec);
	return fd;
}

/* ---- connections over max_connections ---- */

/* Answers a connection over max_connections 503 at once (best effort: the socket is
 * non-blocking and new, so the answer fits), shuts its writing side and keeps it for a moment
 * to read what the client sent, so that the close does not reset the answer away; the log says
 * how many once a second at most. */
static void refuse(struct server *srv, int fd, int64_t now)
{
	static const char answer[] = "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"
				     "Retry-After: 1\r\nContent-Type: text/plain; charset=utf-8\r\n"
				     "Content-Length: 29\r\n\r\n503 too many connections now\n";
	ssize_t n = send(fd, answer, sizeof(answer) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);

	(void)n;
	shutdown(fd, SHUT_WR);
	srv->n_refused++;
	if (now - srv->refused_logged_ms >= 1000) {
		kw_notice("%llu connection(s) over max_connections (%u): 503, connection closed",
			  srv->n_refused, srv->d->sso->max_connections);
		srv->n_refused = 0;
		srv->refused_logged_ms = now;
	}
	for (unsigned i = 0; i < REFUSED_SLOTS; i++) {
		if (srv->refused[i].fd < 0) {
			srv->refused[i].fd = fd;
			srv->refused[i].until_ms = now + REFUSED_LINGER_MS;
			return;
		}
	}
	close(fd); /* every slot busy: closed at once */
}

/* Reads and drops what refused connections send; closes them at its end, or at their time. */
static void refused_drain(struct server *srv, int64_t now)
{
	char scratch[4096];

	for (unsigned i = 0; i < REFUSED_SLOTS; i++) {
		struct refused *r = &srv->refused[i];
		ssize_t n;

		if (r->fd < 0)
			continue;
		while ((n = recv(r->fd, scratch, sizeof(scratch), MSG_DONTWAIT)) > 0)
			;
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) || now >= r->until_ms) {
			close(r->fd);
			r->fd = -1;
		}
	}
}

/* Takes every pending connection off the listening socket: to libmicrohttpd while fewer than
 * max_connections are served, refused with a 503 otherwise. None is left in the kernel's
 * backlog, where its client would only wait and time out. */
static void accept_all(struct server *srv, struct MHD_Daemon *mhd, int lfd)
{
	for (unsigned k = 0; k < 256; k++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				kw_warning("accept: %s", strerror(errno));
			return;
		}
		if (srv->n_conns >= srv->d->sso->max_connections) {
			refuse(srv, fd, kw_monotonic_ms());
			continue;
		}
		/* libmicrohttpd closes fd itself when it cannot take it */
		if (MHD_add_connection(mhd, fd, (const struct sockaddr *)&ss, sl) != MHD_YES)
			kw_warning("cannot take a connection: %s", strerror(errno));
	}
}

/* ---- the loop ---- */

int kw_ssod_serve(struct kw_ssod *d, const char *database, const char **error_r)
{
	struct server srv = { .d = d,
			      .deadline_ms = (int64_t)DEADLINE_FACTOR * d->sso->timeout * 1000 };
	const char *listen_spec = d->sso->listen, *unix_path = NULL;
	const union MHD_DaemonInfo *info;
	struct MHD_Daemon *mhd = NULL;
	struct signalfd_siginfo si;
	char where[300];
	sigset_t mask;
	bool stopping = false;
	int lfd = -1, sfd = -1, epfd, ret = 0;

	for (unsigned i = 0; i < REFUSED_SLOTS; i++)
		srv.refused[i].fd = -1;
	ret = kw_ssod_metadata(d->sso, &srv.metadata, &srv.metadata_len, error_r);
	if (ret < 0)
		return ret;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	/* blocked for good: a second SIGTERM during the shutdown must not cut it short (and
	 * blocked before the workers start, so that they inherit the mask) */
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		ret = kw_error_fail(error_r, -errno, "signalfd: %s", strerror(errno));
		goto out;
	}
	if (strncmp(listen_spec, "unix:", 5) == 0) {
		unix_path = listen_spec + 5;
		lfd = listen_unix(unix_path, where, sizeof(where), error_r);
	} else {
		lfd = listen_tcp(listen_spec, where, sizeof(where), error_r);
	}
	if (lfd < 0) {
		ret = lfd;
		unix_path = NULL;
		goto out;
	}
	ret = pool_new(d, database, &srv.pool, error_r);
	if (ret < 0)
		goto out;
	srv.throttle = kw_api_throttle_new(d->api);
	/* We accept ourselves (accept_all), so that connections over max_connections are
	 * answered rather than left in the backlog; libmicrohttpd's own limit is a safety net. */
	mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET |
				       MHD_ALLOW_SUSPEND_RESUME,
			       0, NULL, NULL, handler, &srv, MHD_OPTION_CONNECTION_LIMIT,
			       (unsigned)d->sso->max_connections + 1, MHD_OPTION_CONNECTION_TIMEOUT,
			       (unsigned)d->sso->timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
			       (size_t)64 * 1024, MHD_OPTION_NOTIFY_COMPLETED, completed, &srv,
			       MHD_OPTION_NOTIFY_CONNECTION, notify_connection, &srv,
			       MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
	if (mhd == NULL) {
		ret = kw_error_fail(error_r, -EIO, "cannot start the HTTP server on %s", where);
		goto out;
	}
	info = MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (info == NULL) {
		ret = kw_error_fail(error_r, -EIO, "the HTTP server has no epoll descriptor");
		goto out;
	}
	epfd = info->epoll_fd;
	kw_notice("listening on %s (max_body %zu, max_connections %u, timeout %u s, request "
		  "deadline %u s, %u workers)",
		  where, d->sso->max_body, d->sso->max_connections, d->sso->timeout,
		  DEADLINE_FACTOR * d->sso->timeout, WORKERS);
	sd_notifyf(0, "READY=1\nSTATUS=listening on %s", where);

	for (;;) {
		struct pollfd p[4 + REFUSED_SLOTS] = {
			{ .fd = epfd, .events = POLLIN },
			{ .fd = sfd, .events = POLLIN },
			{ .fd = srv.pool->efd, .events = POLLIN },
			{ .fd = stopping ? -1 : lfd, .events = POLLIN },
		};
		MHD_UNSIGNED_LONG_LONG to;
		int64_t now;
		int tmo, n, next_deadline;
		nfds_t np = 4;

		if (stopping && srv.suspended == 0) {
			MHD_run(mhd); /* every message a worker had is answered: send it */
			break;
		}
		/* before polling: a cut connection's end of stream is then ready at once */
		next_deadline = cut_overdue(&srv);
		if (MHD_get_timeout(mhd, &to) == MHD_YES)
			tmo = to > 1000 ? 1000 : (int)to;
		else
			tmo = 1000; /* a safety net: never sleep on an event that might not come */
		if (next_deadline >= 0 && next_deadline < tmo)
			tmo = next_deadline;
		now = kw_monotonic_ms();
		for (unsigned i = 0; i < REFUSED_SLOTS; i++) {
			if (srv.refused[i].fd < 0)
				continue;
			p[np].fd = srv.refused[i].fd;
			p[np++].events = POLLIN;
			if (srv.refused[i].until_ms - now < tmo)
				tmo = srv.refused[i].until_ms - now > 0
					      ? (int)(srv.refused[i].until_ms - now)
					      : 0;
		}
		n = poll(p, np, tmo);
		if (n < 0 && errno != EINTR) {
			ret = kw_error_fail(error_r, -errno, "poll: %s", strerror(errno));
			break;
		}
		if (n > 0 && (p[1].revents & POLLIN) != 0 &&
		    read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si) && !stopping) {
			kw_notice("signal %u: stopping", si.ssi_signo);
			sd_notify(0, "STOPPING=1");
			stopping = true;
		}
		if (n > 0 && (p[2].revents & POLLIN) != 0)
			pool_collect(&srv);
		if (n > 0 && (p[3].revents & POLLIN) != 0)
			accept_all(&srv, mhd, lfd);
		refused_drain(&srv, kw_monotonic_ms());
		MHD_run(mhd);
	}
out:
	/* the workers are idle here (nothing is suspended): join them before the daemon goes */
	pool_free(&srv.pool);
	if (mhd != NULL)
		MHD_stop_daemon(mhd);
	kw_api_throttle_free(&srv.throttle);
	for (unsigned i = 0; i < REFUSED_SLOTS; i++) {
		if (srv.refused[i].fd >= 0)
			close(srv.refused[i].fd);
	}
	if (lfd >= 0)
		close(lfd);
	if (unix_path != NULL)
		unlink(unix_path);
	if (sfd >= 0)
		close(sfd);
	free(srv.metadata);
	return ret;
}
