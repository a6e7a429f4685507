/* client.c: libkeywarden, the libc-only client of the validator socket (doc/protocol.md).
 *
 * Loaded into hosts we do not control (sshd through pam_keywarden, HTTP servers): it never
 * aborts, exits, prints or raises SIGPIPE, keeps no global state, bounds every wait by the
 * client's timeout (one deadline per call, CLOCK_MONOTONIC) and treats anything it does not
 * fully understand as an error, so that callers fail closed. The connection is kept open
 * between calls; it is re-opened once per call when the validator went away (EPIPE,
 * ECONNRESET, end of file or an idle ERROR before any byte of an answer), and in a child
 * after fork(), which must not touch its parent's connection. The out buffer holds tokens and
 * is wiped after every call.
 *
 * Every new connection is checked before a byte is sent on it (check_server()): whoever can
 * bind the socket path could otherwise answer "OK user=anyone" to a PAM module. The rules,
 * kept in step with libkeywarden(3) "SERVER IDENTITY", follow the SSSD client: the folder of
 * the socket must be safe, the socket must be the server's, and the server must run as a uid
 * the client trusts. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "keywarden.h"
#include "keywarden_protocol.h"

#define KW_OUT_SIZE (8 * KW_PROTO_LINE_MAX)
#define KW_ID_MAX 4294967295u

struct kw_client {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int timeout_ms;
	int fd;    /* -1 when not connected */
	pid_t pid; /* the process that opened fd */
	dev_t dev; /* identity of fd, to notice a host that closed and reused the number */
	ino_t ino;
	uint32_t next_id;
	bool has_server_uid; /* kw_client_set_server_uid(): exactly this peer uid */
	uid_t server_uid;
	char error[320]; /* kw_client_error(); never holds a token */
	size_t in_len;
	char in[KW_PROTO_LINE_MAX];
	char out[KW_OUT_SIZE];
};

static const char *const status_names[] = {
	[KW_CHECK_OK] = "ok",
	[KW_CHECK_INVALID] = KW_PROTO_FAIL_CODE_INVALID,
	[KW_CHECK_EXPIRED] = KW_PROTO_FAIL_CODE_EXPIRED,
	[KW_CHECK_DELETED] = KW_PROTO_FAIL_CODE_DELETED,
	[KW_CHECK_DISABLED] = KW_PROTO_FAIL_CODE_DISABLED,
	[KW_CHECK_RATE_LIMITED] = KW_PROTO_FAIL_CODE_RATE_LIMITED,
	[KW_CHECK_TEMP_FAIL] = KW_PROTO_FAIL_CODE_TEMP_FAIL,
};

const char *kw_check_status_name(enum kw_check_status status)
{
	if ((unsigned)status < sizeof(status_names) / sizeof(status_names[0]))
		return status_names[status];
	return "unknown";
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left before deadline, for poll(); 0 once it has passed. */
static int remaining_ms(int64_t deadline)
{
	int64_t left = deadline - now_ms();

	if (left <= 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int)left;
}

struct kw_client *kw_client_new(const char *socket_path, int timeout_ms)
{
	struct kw_client *c;
	size_t len;

	if (socket_path == NULL)
		socket_path = KW_DEFAULT_SOCKET_PATH;
	len = strlen(socket_path);
	if (len == 0) {
		errno = EINVAL;
		return NULL;
	}
	if (len >= sizeof(c->path)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	memcpy(c->path, socket_path, len + 1);
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : KW_DEFAULT_TIMEOUT_MS;
	c->fd = -1;
	c->next_id = 1;
	return c;
}

int kw_client_set_server_uid(struct kw_client *client, uid_t uid)
{
	if (client == NULL)
		return -EINVAL;
	client->has_server_uid = uid != (uid_t)-1;
	client->server_uid = uid;
	return 0;
}

const char *kw_client_error(const struct kw_client *client)
{
	return client != NULL ? client->error : "";
}

/* Records why the server is not trusted, for kw_client_error(); returns -EPERM. */
__attribute__((format(printf, 2, 3))) static int distrust(struct kw_client *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->error, sizeof(c->error), fmt, ap);
	va_end(ap);
	return -EPERM;
}

/* Writes the folder part of path into dir (of the same size): "." for a bare name, "/" for a
 * name right under the root. */
static void folder_of(const char *path, char *dir)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL) {
		strcpy(dir, ".");
	} else if (slash == path) {
		strcpy(dir, "/");
	} else {
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = '\0';
	}
}

/* True when every folder above dir (its canonical path), up to and including "/", is owned by
 * root and writable by root only (no sticky exception: in a sticky folder anyone may create
 * the missing name). Only then can no one but root replace dir by a folder of their own, so
 * that dir's owner says something about who runs the server. */
static bool root_owned_above(const char *dir)
{
	char real[PATH_MAX];
	char *slash;
	struct stat st;

	if (realpath(dir, real) == NULL || real[0] != '/')
		return false;
	while (strcmp(real, "/") != 0) {
		slash = strrchr(real, '/');
		if (slash == real)
			slash[1] = '\0'; /* the parent is "/" */
		else
			*slash = '\0';
		if (stat(real, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0 ||
		    (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
			return false;
	}
	return true;
}

/* Decides whether the server on the freshly connected fd may be trusted; 0 or -EPERM (with
 * the reason in c->error). The peer uid comes from the kernel (SO_PEERCRED: whoever called
 * listen()), so it cannot be forged; the file checks make sure that what sits at c->path is
 * that server's socket in a folder nobody else may rearrange. */
static int check_server(struct kw_client *c, int fd)
{
	char dir[sizeof(c->path)];
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct stat dst, sst;
	uid_t me = geteuid();
	unsigned peer;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof(cred))
		return distrust(c, "cannot learn the validator's uid (SO_PEERCRED)");
	peer = (unsigned)cred.uid;
	folder_of(c->path, dir);
	if (stat(dir, &dst) != 0 || !S_ISDIR(dst.st_mode))
		return distrust(c, "cannot check the socket's folder %s", dir);
	if ((dst.st_mode & (S_IWGRP | S_IWOTH)) != 0 &&
	    !((dst.st_mode & S_ISVTX) != 0 && (dst.st_uid == 0 || dst.st_uid == cred.uid)))
		return distrust(
			c,
			"the socket's folder %s (mode %04o, owner uid %u) is writable by "
			"group or others (only sticky and owned by root or the validator is safe)",
			dir, (unsigned)(dst.st_mode & 07777), (unsigned)dst.st_uid);
	if (lstat(c->path, &sst) != 0)
		return distrust(c, "cannot lstat %s", c->path);
	if (!S_ISSOCK(sst.st_mode))
		return distrust(c, "%s is not a socket (a link?)", c->path);
	/* a root listener, e.g. systemd with SocketUser=, may have given the socket away */
	if (sst.st_uid != cred.uid && cred.uid != 0)
		return distrust(c, "%s belongs to uid %u but the validator runs as uid %u", c->path,
				(unsigned)sst.st_uid, peer);
	if (c->has_server_uid) {
		if (cred.uid != c->server_uid)
			return distrust(c, "the validator runs as uid %u, server_uid is %u", peer,
					(unsigned)c->server_uid);
		return 0;
	}
	if (cred.uid == 0 || cred.uid == me)
		return 0;
	if (cred.uid == dst.st_uid && root_owned_above(dir))
		return 0;
	return distrust(
		c,
		"the validator runs as uid %u: not root, not this process's uid %u, and not "
		"the owner of %s in a folder tree owned by root (set server_uid)",
		peer, (unsigned)me, dir);
}

/* True when fd is still the socket this client opened (the host may have closed it and
 * reused the number; such an fd is not ours to use or close). */
static bool fd_is_ours(const struct kw_client *c)
{
	struct stat st;

	if (c->fd < 0 || fstat(c->fd, &st) != 0)
		return false;
	return S_ISSOCK(st.st_mode) && st.st_dev == c->dev && st.st_ino == c->ino;
}

static void disconnect(struct kw_client *c)
{
	/* In a child after fork() this closes the child's copy only; the parent's connection
	 * stays open (no shutdown()). */
	if (fd_is_ours(c))
		close(c->fd);
	c->fd = -1;
	c->in_len = 0;
}

void kw_client_free(struct kw_client **client)
{
	struct kw_client *c;

	if (client == NULL || *client == NULL)
		return;
	c = *client;
	disconnect(c);
	explicit_bzero(c, sizeof(*c));
	free(c);
	*client = NULL;
}

/* Sends all of buf, waiting for room until deadline. */
static int send_all(struct kw_client *c, const char *buf, size_t len, int64_t deadline)
{
	while (len > 0) {
		ssize_t r = send(c->fd, buf, len, MSG_NOSIGNAL);
		if (r > 0) {
			buf += r;
			len -= (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd p = { .fd = c->fd, .events = POLLOUT };
			int left = remaining_ms(deadline);
			int n;

			if (left == 0)
				return -ETIMEDOUT;
			n = poll(&p, 1, left);
			if (n < 0 && errno != EINTR)
				return -errno;
			continue;
		}
		return r < 0 ? -errno : -EIO;
	}
	return 0;
}

/* Reads what is available into the input buffer. Returns the byte count, 0 at end of file,
 * -EAGAIN when nothing is there, or a negative errno. */
static int recv_some(struct kw_client *c)
{
	ssize_t r;

	if (c->in_len >= sizeof(c->in))
		return -EPROTO; /* a line longer than the protocol allows */
	do
		r = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	c->in_len += (size_t)r;
	return (int)r;
}

/* Finds a complete line in the input buffer: returns its length without the LF (the LF is
 * replaced by NUL), or -EAGAIN when none is complete yet, or -EPROTO for a line that is too
 * long or holds NUL or CR. Consume it with consume_line(). */
static int take_line(struct kw_client *c)
{
	char *lf = memchr(c->in, '\n', c->in_len);
	size_t len;

	if (lf == NULL)
		return c->in_len >= sizeof(c->in) ? -EPROTO : -EAGAIN;
	len = (size_t)(lf - c->in);
	if (memchr(c->in, '\0', len) != NULL || memchr(c->in, '\r', len) != NULL)
		return -EPROTO;
	*lf = '\0';
	return (int)len;
}

static void consume_line(struct kw_client *c, int len)
{
	size_t n = (size_t)len + 1;

	memmove(c->in, c->in + n, c->in_len - n);
	c->in_len -= n;
}

/* Reads one line (handshake only) before deadline. */
static int read_line(struct kw_client *c, int64_t deadline)
{
	for (;;) {
		int len = take_line(c);
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		int left, r;

		if (len != -EAGAIN)
			return len;
		left = remaining_ms(deadline);
		if (left == 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, left);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0)
			continue;
		r = recv_some(c);
		if (r == 0)
			return -ECONNRESET;
		if (r < 0 && r != -EAGAIN)
			return r;
	}
}

static bool all_digits(const char *s, size_t max_len)
{
	size_t n = strspn(s, "0123456789");

	return n > 0 && n <= max_len && s[n] == '\0';
}

/* Splits a line at TABs in place; returns the field count or -EPROTO when there are more than
 * max. */
static int split_fields(char *line, char **fields, int max)
{
	int n = 0;

	for (;;) {
		char *tab = strchr(line, '\t');

		if (n == max)
			return -EPROTO;
		fields[n++] = line;
		if (tab == NULL)
			return n;
		*tab = '\0';
		line = tab + 1;
	}
}

/* An ERROR line: the server closes the connection after it. */
static int error_reason(char **fields, int n)
{
	static const char key[] = KW_PROTO_FIELD_REASON "=";
	static const struct {
		const char *reason;
		int err;
	} map[] = {
		{ KW_PROTO_ERROR_REASON_VERSION, -EPROTONOSUPPORT },
		{ KW_PROTO_ERROR_REASON_LINE_TOO_LONG, -EPROTO },
		{ KW_PROTO_ERROR_REASON_PROTOCOL, -EPROTO },
		{ KW_PROTO_ERROR_REASON_NOT_ALLOWED, -EACCES },
		{ KW_PROTO_ERROR_REASON_IDLE, -ECONNRESET },
		{ KW_PROTO_ERROR_REASON_BUSY, -EBUSY },
	};

	for (int i = 1; i < n; i++) {
		if (strncmp(fields[i], key, sizeof(key) - 1) != 0)
			continue;
		for (size_t j = 0; j < sizeof(map) / sizeof(map[0]); j++)
			if (strcmp(fields[i] + sizeof(key) - 1, map[j].reason) == 0)
				return map[j].err;
	}
	return -EPROTO;
}

static int handshake(struct kw_client *c, int64_t deadline)
{
	static const char hello[] = KW_PROTO_HELLO;
	char *fields[8];
	int len, n, ret;

	ret = send_all(c, hello, sizeof(hello) - 1, deadline);
	if (ret < 0)
		return ret;
	len = read_line(c, deadline);
	if (len < 0)
		return len;
	n = split_fields(c->in, fields, 8);
	if (n >= 1 && strcmp(fields[0], KW_PROTO_REPLY_ERROR) == 0)
		ret = error_reason(fields, n);
	else if (n != 3 || strcmp(fields[0], KW_PROTO_CMD_VERSION) != 0 ||
		 !all_digits(fields[1], 9) || !all_digits(fields[2], 9))
		ret = -EPROTO;
	else if (strcmp(fields[1], KW_PROTO_STR(KW_PROTO_MAJOR)) != 0)
		ret = -EPROTONOSUPPORT;
	else
		ret = 0; /* any minor: later minors only add */
	consume_line(c, len);
	return ret;
}

static int connect_fd(struct kw_client *c, int64_t deadline)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, ret;

	memcpy(sa.sun_path, c->path, strlen(c->path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	for (;;) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			/* AF_UNIX: the listen backlog is full; try again shortly. */
			int left = remaining_ms(deadline);

			if (left == 0) {
				ret = -ETIMEDOUT;
				goto fail;
			}
			poll(NULL, 0, left < 10 ? left : 10);
			continue;
		}
		if (errno == EINPROGRESS) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			int err = 0;
			socklen_t elen = sizeof(err);
			int r;

			do
				r = poll(&p, 1, remaining_ms(deadline));
			while (r < 0 && errno == EINTR);
			if (r == 0) {
				ret = -ETIMEDOUT;
				goto fail;
			}
			if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0) {
				ret = -errno;
				goto fail;
			}
			if (err != 0) {
				ret = -err;
				goto fail;
			}
			break;
		}
		ret = -errno;
		goto fail;
	}
	ret = check_server(c, fd);
	if (ret < 0)
		goto fail; /* closed unused: not a byte sent to an untrusted server */
	if (fstat(fd, &st) != 0) {
		ret = -errno;
		goto fail;
	}
	c->fd = fd;
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	c->pid = getpid();
	c->in_len = 0;
	ret = handshake(c, deadline);
	if (ret < 0)
		disconnect(c);
	return ret;
fail:
	close(fd);
	return ret;
}

/* Makes sure the client has a connection of its own. */
static int ensure_connected(struct kw_client *c, int64_t deadline)
{
	if (c->fd >= 0 && (c->pid != getpid() || !fd_is_ours(c)))
		disconnect(c); /* forked child, or the host reused our fd number */
	if (c->fd >= 0)
		return 0;
	return connect_fd(c, deadline);
}

static void clear_result(struct kw_check_result *res, enum kw_check_status status)
{
	memset(res, 0, sizeof(*res));
	res->status = status;
}

/* A value that can be sent: no TAB, CR, LF. */
static bool sendable(const char *s)
{
	return strpbrk(s, "\t\r\n") == NULL;
}

static bool digits_at(const char *s, int n, int min, int max)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	return v >= min && v <= max;
}

/* "never" or an RFC 3339 UTC instant: YYYY-MM-DDTHH:MM:SS[.fraction]Z. */
static bool valid_expires(const char *s)
{
	size_t len = strlen(s);

	if (strcmp(s, KW_PROTO_EXPIRES_NEVER) == 0)
		return true;
	if (len < 20 || len >= KW_EXPIRES_SIZE)
		return false;
	if (!digits_at(s, 4, 0, 9999) || s[4] != '-' || !digits_at(s + 5, 2, 1, 12) ||
	    s[7] != '-' || !digits_at(s + 8, 2, 1, 31) || s[10] != 'T' ||
	    !digits_at(s + 11, 2, 0, 23) || s[13] != ':' || !digits_at(s + 14, 2, 0, 59) ||
	    s[16] != ':' || !digits_at(s + 17, 2, 0, 60))
		return false;
	s += 19;
	if (*s == '.') {
		size_t n = strspn(s + 1, "0123456789");

		if (n == 0)
			return false;
		s += 1 + n;
	}
	return strcmp(s, "Z") == 0;
}

static bool valid_token_id(const char *s)
{
	/* 1 to UINT64_MAX, decimal, no leading zero */
	if (!all_digits(s, KW_TOKEN_ID_SIZE - 1) || s[0] == '0')
		return false;
	return strlen(s) < KW_TOKEN_ID_SIZE - 1 || strcmp(s, "18446744073709551615") <= 0;
}

static int copy_name(char *dst, const char *src)
{
	size_t len = strlen(src);

	if (len == 0 || len >= KW_NAME_SIZE)
		return -EPROTO;
	memcpy(dst, src, len + 1);
	return 0;
}

/* Parses an OK or FAIL answer to the request with id want_id into res. The line is
 * NUL-terminated; it is split in place. */
static int parse_answer(char *line, const char *want_id, struct kw_check_result *res)
{
	static const struct {
		const char *name;
		enum kw_check_status status;
	} codes[] = {
		{ KW_PROTO_FAIL_CODE_INVALID, KW_CHECK_INVALID },
		{ KW_PROTO_FAIL_CODE_EXPIRED, KW_CHECK_EXPIRED },
		{ KW_PROTO_FAIL_CODE_DELETED, KW_CHECK_DELETED },
		{ KW_PROTO_FAIL_CODE_DISABLED, KW_CHECK_DISABLED },
		{ KW_PROTO_FAIL_CODE_RATE_LIMITED, KW_CHECK_RATE_LIMITED },
		{ KW_PROTO_FAIL_CODE_TEMP_FAIL, KW_CHECK_TEMP_FAIL },
	};
	enum { F_TOKEN_ID, F_ACCOUNT, F_USER, F_ROLE, F_EXPIRES, F_CODE, F_N };
	static const char *const keys[F_N] = {
		[F_TOKEN_ID] = KW_PROTO_FIELD_TOKEN_ID, [F_ACCOUNT] = KW_PROTO_FIELD_ACCOUNT,
		[F_USER] = KW_PROTO_FIELD_USER,         [F_ROLE] = KW_PROTO_FIELD_ROLE,
		[F_EXPIRES] = KW_PROTO_FIELD_EXPIRES,   [F_CODE] = KW_PROTO_FIELD_CODE,
	};
	const char *val[F_N] = { NULL };
	char *fields[64];
	bool ok;
	int n;

	n = split_fields(line, fields, 64);
	if (n < 2)
		return -EPROTO;
	if (strcmp(fields[0], KW_PROTO_REPLY_OK) == 0)
		ok = true;
	else if (strcmp(fields[0], KW_PROTO_REPLY_FAIL) == 0)
		ok = false;
	else
		return -EPROTO;
	if (strcmp(fields[1], want_id) != 0)
		return -EPROTO;
	for (int i = 2; i < n; i++) {
		char *eq = strchr(fields[i], '=');
		size_t klen;

		if (eq == NULL)
			return -EPROTO;
		klen = (size_t)(eq - fields[i]);
		if (klen == 0 || strspn(fields[i], "abcdefghijklmnopqrstuvwxyz_") != klen)
			return -EPROTO;
		*eq = '\0';
		for (int k = 0; k < F_N; k++) {
			if (strcmp(fields[i], keys[k]) != 0)
				continue;
			if (val[k] != NULL)
				return -EPROTO; /* a key twice: which one would we believe? */
			val[k] = eq + 1;
		}
		/* unknown keys are ignored (forward compatibility) */
	}
	clear_result(res, KW_CHECK_TEMP_FAIL);
	if (!ok) {
		if (val[F_CODE] == NULL)
			return -EPROTO;
		for (size_t j = 0; j < sizeof(codes) / sizeof(codes[0]); j++) {
			if (strcmp(val[F_CODE], codes[j].name) == 0) {
				res->status = codes[j].status;
				return 0;
			}
		}
		return -EPROTO;
	}
	for (int k = F_TOKEN_ID; k <= F_EXPIRES; k++)
		if (val[k] == NULL)
			return -EPROTO;
	if (!valid_token_id(val[F_TOKEN_ID]) || !valid_expires(val[F_EXPIRES]))
		return -EPROTO;
	if (copy_name(res->account, val[F_ACCOUNT]) < 0 || copy_name(res->user, val[F_USER]) < 0 ||
	    copy_name(res->role, val[F_ROLE]) < 0) {
		clear_result(res, KW_CHECK_TEMP_FAIL);
		return -EPROTO;
	}
	strcpy(res->token_id, val[F_TOKEN_ID]);
	strcpy(res->expires, val[F_EXPIRES]);
	res->status = KW_CHECK_OK;
	return 0;
}

/* The start of an ERROR line, which may come instead of an answer. */
static const char error_tab[] = KW_PROTO_REPLY_ERROR "\t";

static uint32_t id_add(uint32_t base, size_t k)
{
	/* ids run 1..KW_ID_MAX and wrap to 1 */
	return (uint32_t)(((uint64_t)base - 1 + k) % KW_ID_MAX + 1);
}

/* Appends the request for token to out; returns its length, 0 when it does not fit in
 * room, or -EINVAL for opts that cannot be sent. */
static int format_request(char *out, size_t room, uint32_t id, const char *token,
			  const struct kw_check_opts *opts)
{
	const char *service = opts != NULL && opts->service != NULL ? opts->service : "";
	const char *ip = opts != NULL && opts->remote_ip != NULL ? opts->remote_ip : "";
	size_t cap = room < KW_PROTO_LINE_MAX + 1 ? room : KW_PROTO_LINE_MAX + 1;
	int n;

	n = snprintf(out, cap, KW_PROTO_CMD_CHECK "\t%u%s%s%s%s\t" KW_PROTO_FIELD_TOKEN "=%s\n", id,
		     *service ? "\t" KW_PROTO_FIELD_SERVICE "=" : "", service,
		     *ip ? "\t" KW_PROTO_FIELD_REMOTE_IP "=" : "", ip, token);
	if (n < 0 || (size_t)n >= cap) {
		explicit_bzero(out, cap);
		return 0;
	}
	return n;
}

/* A token that can be sent at all; one that cannot is answered "invalid" locally. */
static bool token_sendable(const char *token, const struct kw_check_opts *opts)
{
	char probe[KW_PROTO_LINE_MAX + 1];
	bool fits;

	if (token == NULL || token[0] == '\0' || !sendable(token))
		return false;
	if (strlen(token) > KW_PROTO_LINE_MAX)
		return false;
	fits = format_request(probe, sizeof(probe), KW_ID_MAX, token, opts) > 0;
	explicit_bzero(probe, sizeof(probe));
	return fits;
}

/* One pipelined run over the connection for the tokens tokens[idx[done..m-1]]. Returns 0, or
 * a negative errno; *retry_r is set when the connection went away between answers (never in
 * the middle of one), so that the caller may reconnect and go on from *done_r, the number of
 * answers already stored. Answers come in request order (doc/protocol.md). */
static int run(struct kw_client *c, size_t m, const size_t *idx, const char *const tokens[],
	       const struct kw_check_opts *opts, struct kw_check_result results[], size_t *done_r,
	       int64_t deadline, bool *retry_r)
{
	const size_t start = *done_r;
	const uint32_t first_id = c->next_id;
	size_t to_send = start, answered = start;
	size_t out_off = 0, out_len = 0;
	int ret = 0;

	*retry_r = false;
	while (answered < m) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		int left, r;

		if (out_off == out_len) {
			explicit_bzero(c->out, out_len);
			out_off = out_len = 0;
		}
		while (to_send < m) {
			r = format_request(c->out + out_len, sizeof(c->out) - out_len,
					   id_add(first_id, to_send - start), tokens[idx[to_send]],
					   opts);
			if (r == 0)
				break;
			out_len += (size_t)r;
			to_send++;
		}
		if (out_off < out_len)
			p.events |= POLLOUT;
		left = remaining_ms(deadline);
		if (left == 0) {
			ret = -ETIMEDOUT;
			goto out;
		}
		r = poll(&p, 1, left);
		if (r < 0 && errno != EINTR) {
			ret = -errno;
			goto out;
		}
		if (r <= 0)
			continue;
		if (p.revents & POLLOUT) {
			ssize_t s = send(c->fd, c->out + out_off, out_len - out_off, MSG_NOSIGNAL);

			if (s > 0) {
				out_off += (size_t)s;
			} else if (s < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
				   errno != EINTR) {
				ret = -errno;
				if (ret == -EPIPE || ret == -ECONNRESET)
					*retry_r = c->in_len == 0;
				goto out;
			}
		}
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			r = recv_some(c);
			if (r == 0 || r == -ECONNRESET) {
				ret = -ECONNRESET;
				*retry_r = c->in_len == 0;
				goto out;
			}
			if (r < 0 && r != -EAGAIN) {
				ret = r;
				goto out;
			}
		}
		while (answered < m) {
			char want[16];
			int len = take_line(c);

			if (len == -EAGAIN)
				break;
			if (len < 0) {
				ret = len;
				goto out;
			}
			if (strncmp(c->in, error_tab, sizeof(error_tab) - 1) == 0) {
				char *fields[8];
				int nf = split_fields(c->in, fields, 8);

				ret = nf < 0 ? -EPROTO : error_reason(fields, nf);
				/* an idle close that crossed our request: like end of file */
				*retry_r = ret == -ECONNRESET;
				goto out;
			}
			if (answered == to_send) {
				ret = -EPROTO; /* an answer to nothing we asked */
				goto out;
			}
			snprintf(want, sizeof(want), "%u", id_add(first_id, answered - start));
			ret = parse_answer(c->in, want, &results[idx[answered]]);
			if (ret < 0)
				goto out;
			consume_line(c, len);
			answered++;
			*done_r = answered;
		}
	}
	if (c->in_len > 0) {
		/* More than we asked for. An ERROR behind the answers (say, the idle timeout
		 * crossing our request) only means the server is closing: drop the connection,
		 * keep the answers. Anything else is a protocol violation. */
		size_t k = c->in_len < sizeof(error_tab) - 1 ? c->in_len : sizeof(error_tab) - 1;

		if (memcmp(c->in, error_tab, k) == 0)
			disconnect(c);
		else
			ret = -EPROTO;
	}
out:
	explicit_bzero(c->out, sizeof(c->out));
	c->next_id = id_add(first_id, to_send - start);
	return ret;
}

int kw_client_check_batch(struct kw_client *client, size_t n, const char *const tokens[],
			  const struct kw_check_opts *opts, struct kw_check_result results[])
{
	struct kw_client *c = client;
	size_t *idx = NULL;
	size_t m = 0, done = 0;
	bool retried = false;
	int64_t deadline;
	int ret = 0;

	if (c == NULL || (n > 0 && (tokens == NULL || results == NULL)))
		return -EINVAL;
	c->error[0] = '\0';
	for (size_t i = 0; i < n; i++)
		clear_result(&results[i], KW_CHECK_TEMP_FAIL);
	if (n == 0)
		return 0;
	if (opts != NULL && ((opts->service != NULL && !sendable(opts->service)) ||
			     (opts->remote_ip != NULL && !sendable(opts->remote_ip))))
		return -EINVAL;
	idx = calloc(n, sizeof(*idx));
	if (idx == NULL)
		return -ENOMEM;
	/* a token that cannot be sent is answered here, as the validator would: invalid */
	for (size_t i = 0; i < n; i++) {
		if (token_sendable(tokens[i], opts))
			idx[m++] = i;
		else
			clear_result(&results[i], KW_CHECK_INVALID);
	}
	deadline = now_ms() + c->timeout_ms;
	while (m > 0) {
		bool retry;

		ret = ensure_connected(c, deadline);
		if (ret < 0)
			break;
		ret = run(c, m, idx, tokens, opts, results, &done, deadline, &retry);
		if (ret == 0)
			break;
		disconnect(c);
		if (!retry || retried)
			break;
		retried = true; /* the validator went away: reconnect once */
	}
	free(idx);
	if (ret < 0) {
		for (size_t i = 0; i < n; i++)
			clear_result(&results[i], KW_CHECK_TEMP_FAIL);
	}
	return ret;
}

int kw_client_check(struct kw_client *client, const char *token, const struct kw_check_opts *opts,
		    struct kw_check_result *res)
{
	const char *tokens[1] = { token };

	if (client != NULL)
		client->error[0] = '\0';
	if (res == NULL)
		return -EINVAL;
	return kw_client_check_batch(client, 1, tokens, opts, res);
}
