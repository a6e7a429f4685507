/* daemon.c: keywarden-validator's options, configuration, listening socket, signals and
 * systemd integration; the loop is in daemon_server.c, the answers in daemon_check.c.
 *
 * Usage: keywarden-validator [--state-dir DIR | -c FILE] [--foreground] [--debug]
 * It always runs in the foreground (under systemd: Type=notify, optionally socket-activated).
 * SIGHUP re-reads the tunables of keywarden.conf; SIGTERM writes the pending last uses and
 * failed-check counts and exits 0. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "conf.h"
#include "error.h"
#include "daemon.h"
#include "http.h"
#include "store.h"

#define PROGRAM "keywarden-validator"

struct daemon {
	struct kw_config_options opts;
	bool debug;
	struct kw_config *cfg;
	struct kw_vconf vc;
	struct kw_checker *checker;
	char *socket_path;      /* set when we created (and must remove) the socket */
	char *http_socket_path; /* the same for http_listen = unix:PATH */
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [--state-dir DIR | -c FILE] [--foreground] [--debug]\n"
		"Answers token checks on a Unix socket (protocol: doc/protocol.md).\n\n"
		"  -d, --state-dir DIR  database, key, socket and keywarden.conf in DIR\n"
		"  -c, --config FILE    configuration file (default %s)\n"
		"  -f, --foreground     run in the foreground (always the case; for symmetry)\n"
		"      --debug          log at debug level (each decision, with the peer)\n"
		"  -h, --help           show this help\n"
		"  -V, --version        show the version\n",
		PROGRAM, KW_DEFAULT_CONFIG);
}

/* ---- tunables ---- */

static int parse_ids(const char *list, bool groups, void **ids_r, size_t *n_r, const char **error_r)
{
	char *copy = strdup(list), *save = NULL, *tok;
	uint32_t *ids = NULL;
	size_t n = 0;
	int ret = 0;

	if (copy == NULL)
		abort();
	for (tok = strtok_r(copy, ", \t", &save); tok != NULL;
	     tok = strtok_r(NULL, ", \t", &save)) {
		char *end;
		unsigned long v;

		errno = 0;
		v = strtoul(tok, &end, 10);
		if (*end != '\0' || errno != 0 || v > UINT32_MAX - 1 || tok[0] == '-') {
			if (groups) {
				struct group *g = getgrnam(tok);
				if (g == NULL)
					goto bad;
				v = g->gr_gid;
			} else {
				struct passwd *p = getpwnam(tok);
				if (p == NULL)
					goto bad;
				v = p->pw_uid;
			}
		}
		ids = realloc(ids, (n + 1) * sizeof(*ids));
		if (ids == NULL)
			abort();
		ids[n++] = (uint32_t)v;
		continue;
	bad:
		*error_r = kw_error_format("[validator] %s: unknown %s '%s'",
					   groups ? "allow_gids" : "allow_uids",
					   groups ? "group" : "user", tok);
		ret = -EINVAL;
		free(ids);
		ids = NULL;
		n = 0;
		break;
	}
	free(copy);
	if (ret == 0 && n == 0) {
		/* An empty list would read as "no list": everyone allowed. Say so instead. */
		*error_r = kw_error_format(
			"[validator] %s: empty; leave the key out to allow every peer",
			groups ? "allow_gids" : "allow_uids");
		ret = -EINVAL;
	}
	*ids_r = ids;
	*n_r = n;
	return ret;
}

/* [validator] http_listen: "unix:PATH" (absolute), or a loopback address and port:
 * "127.0.0.1:8181", "[::1]:8181" (port 0: any free port, logged). Anything else is refused:
 * tokens travel in clear over this endpoint. */
static int parse_http_listen(const char *s, const char **error_r)
{
	struct sockaddr_storage sa;

	if (strncmp(s, "unix:", 5) == 0) {
		if (s[5] != '/' || strlen(s + 5) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
			*error_r = kw_error_format(
				"[validator] http_listen: '%s': give unix: and an absolute path "
				"shorter than 108 bytes",
				s);
			return -EINVAL;
		}
		return 0;
	}
	if (kw_vconf_http_addr(s, &sa) < 0) {
		*error_r = kw_error_format(
			"[validator] http_listen: '%s' is neither unix:PATH nor a loopback address "
			"with a port (127.0.0.1:8181, [::1]:8181)",
			s);
		return -EINVAL;
	}
	return 0;
}

int kw_vconf_http_addr(const char *s, struct sockaddr_storage *sa_r)
{
	char host[64];
	const char *colon = strrchr(s, ':'), *h = s;
	size_t hlen;
	char *end;
	unsigned long port;
	struct sockaddr_storage sa;

	memset(&sa, 0, sizeof(sa));
	if (colon == NULL || colon[1] == '\0')
		return -EINVAL;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || errno != 0 || port > 65535 || colon[1] == '-' || colon[1] == '+')
		return -EINVAL;
	hlen = (size_t)(colon - s);
	if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	} else if (memchr(h, ':', hlen) != NULL) {
		return -EINVAL; /* IPv6 without brackets */
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	struct sockaddr_in *in = (struct sockaddr_in *)&sa;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&sa;
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		if ((ntohl(in->sin_addr.s_addr) >> 24) != 127)
			return -EINVAL;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
	} else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		if (!IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return -EINVAL;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
	} else {
		return -EINVAL;
	}
	*sa_r = sa;
	return 0;
}

/* [validator] trusted_proxies: addresses or blocks (10.0.0.0/8, ::1, 2001:db8::/32) and the
 * word "unix" (peers of an http_listen on a Unix socket), separated by commas or blanks. */
static int parse_trusted(const char *list, struct kw_vconf *n, const char **error_r)
{
	char *copy = strdup(list), *save = NULL, *tok;
	int ret = 0;

	if (copy == NULL)
		abort();
	for (tok = strtok_r(copy, ", \t", &save); tok != NULL;
	     tok = strtok_r(NULL, ", \t", &save)) {
		struct kw_vnet net;
		char *slash = strchr(tok, '/');
		unsigned long prefix = 0;
		char *end;

		if (strcmp(tok, "unix") == 0) {
			n->trust_unix = true;
			continue;
		}
		memset(&net, 0, sizeof(net));
		if (slash != NULL) {
			*slash = '\0';
			errno = 0;
			prefix = strtoul(slash + 1, &end, 10);
			if (slash[1] == '\0' || *end != '\0' || errno != 0)
				goto bad;
		}
		if (inet_pton(AF_INET, tok, net.addr) == 1) {
			net.family = AF_INET;
			net.prefix = slash != NULL ? (unsigned)prefix : 32;
			if (net.prefix > 32)
				goto bad;
		} else if (inet_pton(AF_INET6, tok, net.addr) == 1) {
			net.family = AF_INET6;
			net.prefix = slash != NULL ? (unsigned)prefix : 128;
			if (net.prefix > 128)
				goto bad;
		} else {
			goto bad;
		}
		n->trusted = realloc(n->trusted, (n->n_trusted + 1) * sizeof(*n->trusted));
		if (n->trusted == NULL)
			abort();
		n->trusted[n->n_trusted++] = net;
		continue;
	bad:
		if (slash != NULL)
			*slash = '/';
		*error_r = kw_error_format(
			"[validator] trusted_proxies: '%s' is not an address, an address/prefix or "
			"unix",
			tok);
		ret = -EINVAL;
		break;
	}
	free(copy);
	return ret;
}

void kw_vconf_clear(struct kw_vconf *vc)
{
	free(vc->http_listen);
	free(vc->trusted);
	free(vc->allow_uids);
	free(vc->allow_gids);
	memset(vc, 0, sizeof(*vc));
}

int kw_vconf_load(const struct kw_config *cfg, bool debug, struct kw_vconf *vc,
		  const char **error_r)
{
	struct kw_vconf n;
	const char *s;
	void *ids;
	int ret;

	memset(&n, 0, sizeof(n));
	n.log_level = KW_LOG_INFO;
	if ((s = kw_config_get(cfg, "log", "level")) != NULL &&
	    kw_log_parse_level(s, &n.log_level) < 0) {
		*error_r = kw_error_format(
			"[log] level: '%s' is not one of error, warning, notice, info, debug", s);
		return -EINVAL;
	}
	if (debug)
		n.log_level = KW_LOG_DEBUG;
	n.socket_mode = 0660;
	if ((s = kw_config_get(cfg, "validator", "socket_mode")) != NULL) {
		char *end;
		unsigned long m = strtoul(s, &end, 8);
		if (s[0] == '\0' || *end != '\0' || m > 0777) {
			*error_r = kw_error_format(
				"[validator] socket_mode: '%s' is not an octal mode like 0660", s);
			return -EINVAL;
		}
		n.socket_mode = (unsigned)m;
	}
	if ((s = kw_config_get(cfg, "validator", "socket_group")) != NULL && s[0] != '\0') {
		size_t cnt = 0;
		if ((ret = parse_ids(s, true, &ids, &cnt, error_r)) < 0)
			return ret;
		if (cnt != 1) {
			free(ids);
			*error_r = "[validator] socket_group: give one group";
			return -EINVAL;
		}
		n.has_socket_group = true;
		n.socket_group = ((gid_t *)ids)[0];
		free(ids);
	}
	n.idle_timeout = kw_config_uint(cfg, "validator", "idle_timeout");
	n.max_connections = kw_config_uint(cfg, "validator", "max_connections");
	n.max_line = kw_config_uint(cfg, "validator", "max_line");
	n.last_use_flush = kw_config_uint(cfg, "validator", "last_use_flush");
	n.rate_limit_failures = kw_config_uint(cfg, "validator", "rate_limit_failures");
	n.rate_limit_window = kw_config_uint(cfg, "validator", "rate_limit_window");
	n.rate_limit_block = kw_config_uint(cfg, "validator", "rate_limit_block");
	n.cache_size = kw_config_uint(cfg, "validator", "cache_size");
	n.lease_ms = kw_config_uint(cfg, "validator", "lease_ms");
	n.busy_poll_us = kw_config_uint(cfg, "validator", "busy_poll_us");
	n.line_timeout = kw_config_uint(cfg, "validator", "line_timeout");
	n.http_max_request = kw_config_uint(cfg, "validator", "http_max_request");
	n.http_max_headers = kw_config_uint(cfg, "validator", "http_max_headers");
	/* One uid may hold a quarter of the connections unless told otherwise. */
	if (kw_config_get(cfg, "validator", "max_connections_per_uid") != NULL)
		n.max_connections_uid = kw_config_uint(cfg, "validator", "max_connections_per_uid");
	else
		n.max_connections_uid = n.max_connections / 4 > 0 ? n.max_connections / 4 : 1;
	if ((s = kw_config_get(cfg, "validator", "allow_uids")) != NULL &&
	    (ret = parse_ids(s, false, &ids, &n.n_allow_uids, error_r)) == 0)
		n.allow_uids = ids;
	else if (s != NULL)
		goto fail;
	if ((s = kw_config_get(cfg, "validator", "allow_gids")) != NULL &&
	    (ret = parse_ids(s, true, &ids, &n.n_allow_gids, error_r)) == 0)
		n.allow_gids = ids;
	else if (s != NULL)
		goto fail;
	if ((s = kw_config_get(cfg, "validator", "http_listen")) != NULL && s[0] != '\0' &&
	    strcmp(s, "off") != 0) {
		if ((ret = parse_http_listen(s, error_r)) < 0)
			goto fail;
		n.http_listen = strdup(s);
		if (n.http_listen == NULL)
			abort();
	}
	if ((s = kw_config_get(cfg, "validator", "trusted_proxies")) != NULL &&
	    (ret = parse_trusted(s, &n, error_r)) < 0)
		goto fail;
	*vc = n;
	return 0;
fail:
	kw_vconf_clear(&n);
	return ret;
}

/* ---- the listening socket ---- */

static int take_systemd_socket(int *fd_r)
{
	int n = sd_listen_fds(1);

	if (n < 0) {
		kw_error("sd_listen_fds: %s", strerror(-n));
		return n;
	}
	if (n == 0)
		return 0;
	if (n > 1) {
		kw_error("systemd passed %d sockets; expected one", n);
		return -EINVAL;
	}
	if (sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, NULL, 0) <= 0) {
		kw_error("the socket passed by systemd is not a listening Unix stream socket");
		return -EINVAL;
	}
	/* The loop accepts until EAGAIN: the socket must not block. */
	int flags = fcntl(SD_LISTEN_FDS_START, F_GETFL);
	if (flags < 0 || fcntl(SD_LISTEN_FDS_START, F_SETFL, flags | O_NONBLOCK) < 0) {
		kw_error("cannot make the socket passed by systemd non-blocking: %s",
			 strerror(errno));
		return -errno;
	}
	*fd_r = SD_LISTEN_FDS_START;
	return 1;
}

static int create_socket(struct daemon *d, const char *path, char **created_r, int *fd_r)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old_umask;
	int fd, ret;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		kw_error("socket path %s is too long", path);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			kw_error("%s exists and is not a socket: refusing to replace it", path);
			return -EEXIST;
		}
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(fd);
			kw_error("%s: another validator is listening there", path);
			return -EADDRINUSE;
		}
		if (fd >= 0)
			close(fd);
		unlink(path); /* stale */
	} else {
		/* The runtime folder (e.g. /run/keywarden) when nobody made it. */
		char *dir = strdup(path), *slash;
		if (dir == NULL)
			abort();
		slash = strrchr(dir, '/');
		if (slash != NULL && slash != dir) {
			*slash = '\0';
			if (mkdir(dir, 0755) < 0 && errno != EEXIST)
				kw_warning("cannot create %s: %s", dir, strerror(errno));
		}
		free(dir);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	old_umask = umask(0177); /* no window in which others may connect */
	ret = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old_umask);
	if (ret < 0) {
		ret = -errno;
		kw_error("cannot bind %s: %s", path, strerror(errno));
		close(fd);
		return ret;
	}
	if (d->vc.has_socket_group && chown(path, (uid_t)-1, d->vc.socket_group) < 0) {
		ret = -errno;
		kw_error("cannot give %s to group %u: %s", path, (unsigned)d->vc.socket_group,
			 strerror(errno));
		goto fail;
	}
	if (chmod(path, d->vc.socket_mode) < 0) {
		ret = -errno;
		kw_error("cannot chmod %s: %s", path, strerror(errno));
		goto fail;
	}
	if (listen(fd, SOMAXCONN) < 0) {
		ret = -errno;
		kw_error("cannot listen on %s: %s", path, strerror(errno));
		goto fail;
	}
	*created_r = strdup(path);
	if (*created_r == NULL)
		abort();
	*fd_r = fd;
	return 0;
fail:
	close(fd);
	unlink(path);
	return ret;
}

/* The listening socket of the HTTP check endpoint ([validator] http_listen, checked by
 * kw_vconf_load()): a Unix socket made like the protocol's, or TCP on a loopback address. */
static int create_http_socket(struct daemon *d, int *fd_r)
{
	const char *spec = d->vc.http_listen;
	struct sockaddr_storage sa;
	socklen_t salen;
	char host[INET6_ADDRSTRLEN];
	int fd, one = 1, ret;

	if (strncmp(spec, "unix:", 5) == 0) {
		ret = create_socket(d, spec + 5, &d->http_socket_path, fd_r);
		if (ret == 0)
			kw_info("HTTP check endpoint listening on unix:%s", spec + 5);
		return ret;
	}
	if (kw_vconf_http_addr(spec, &sa) < 0)
		return -EINVAL;
	fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	salen = sa.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	if (bind(fd, (struct sockaddr *)&sa, salen) < 0 || listen(fd, SOMAXCONN) < 0) {
		ret = -errno;
		kw_error("cannot listen on %s (http_listen): %s", spec, strerror(errno));
		close(fd);
		return ret;
	}
	salen = sizeof(sa);
	if (getsockname(fd, (struct sockaddr *)&sa, &salen) == 0) {
		unsigned port;
		if (sa.ss_family == AF_INET) {
			inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, host,
				  sizeof(host));
			port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
			kw_info("HTTP check endpoint listening on %s:%u", host, port);
		} else {
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr, host,
				  sizeof(host));
			port = ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
			kw_info("HTTP check endpoint listening on [%s]:%u", host, port);
		}
	}
	*fd_r = fd;
	return 0;
}

/* File descriptors kept for other uses than connections: standard streams, the listening
 * socket, epoll, signalfd, the database with its journal files and its change watch (twice
 * while a replaced one is reopened), the key file, the log. */
#define FD_RESERVE 32

/* Raises the open files limit toward what max_connections needs, and lowers
 * max_connections to what the limit allows, so that accept() does not run out of files. */
static void fit_fd_limit(struct kw_vconf *vc)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)vc->max_connections + FD_RESERVE;
	unsigned fit;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < want && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			kw_warning("cannot raise the open files limit: %s", strerror(errno));
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur >= want || rl.rlim_cur == RLIM_INFINITY)
		return;
	fit = rl.rlim_cur > FD_RESERVE + 1 ? (unsigned)(rl.rlim_cur - FD_RESERVE) : 1;
	kw_warning("max_connections %u does not fit the open files limit %llu: using %u",
		   vc->max_connections, (unsigned long long)rl.rlim_cur, fit);
	vc->max_connections = fit;
	if (vc->max_connections_uid > fit)
		vc->max_connections_uid = fit;
}

/* ---- reload ---- */

static void reload(struct kw_server *server, void *ctx)
{
	struct daemon *d = ctx;
	struct kw_config *cfg = NULL;
	struct kw_vconf vc;
	const char *error = NULL;

	sd_notify(0, "RELOADING=1");
	if (kw_config_load(&d->opts, &cfg, &error) < 0 ||
	    kw_vconf_load(cfg, d->debug, &vc, &error) < 0) {
		kw_error("SIGHUP: configuration not reloaded: %s", error);
		kw_config_free(&cfg);
		sd_notify(0, "READY=1");
		return;
	}
	if (strcmp(kw_config_socket(cfg), kw_config_socket(d->cfg)) != 0 ||
	    strcmp(kw_config_database(cfg), kw_config_database(d->cfg)) != 0 ||
	    strcmp(kw_config_key_file(cfg), kw_config_key_file(d->cfg)) != 0)
		kw_warning("SIGHUP: the socket, database and key paths change only on restart");
	if ((vc.http_listen == NULL) != (d->vc.http_listen == NULL) ||
	    (vc.http_listen != NULL && strcmp(vc.http_listen, d->vc.http_listen) != 0))
		kw_warning("SIGHUP: http_listen changes only on restart");
	if (vc.socket_mode != d->vc.socket_mode || vc.has_socket_group != d->vc.has_socket_group ||
	    vc.socket_group != d->vc.socket_group)
		kw_warning("SIGHUP: socket_mode and socket_group change only on restart");
	kw_log_set_level(vc.log_level);
	fit_fd_limit(&vc);
	kw_checker_set_cache_size(d->checker, vc.cache_size);
	kw_checker_set_lease(d->checker, vc.lease_ms);
	kw_vconf_clear(&d->vc);
	d->vc = vc;
	kw_server_configure(server, &d->vc);
	kw_config_free(&d->cfg);
	d->cfg = cfg;
	kw_info("configuration reloaded");
	sd_notify(0, "READY=1");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "state-dir", required_argument, NULL, 'd' },
		{ "config", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "debug", no_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct daemon d;
	struct kw_digest_key *key = NULL;
	struct kw_server *server = NULL;
	struct kw_server_hooks hooks;
	const char *error = NULL;
	int opt, fd = -1, http_fd = -1, ret, exit_code = 1;

	memset(&d, 0, sizeof(d));
	while ((opt = getopt_long(argc, argv, "d:c:fhV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			d.opts.state_dir = optarg;
			break;
		case 'c':
			d.opts.config_file = optarg;
			break;
		case 'f':
			break;
		case 'D':
			d.debug = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("%s %s (protocol %d.%d)\n", PROGRAM, PACKAGE_VERSION, KW_PROTO_MAJOR,
			       KW_PROTO_MINOR);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", PROGRAM, argv[optind]);
		usage(stderr);
		return 2;
	}
	kw_log_init(PROGRAM, d.debug ? KW_LOG_DEBUG : KW_LOG_INFO, false);
	signal(SIGPIPE, SIG_IGN);
	if (kw_config_load(&d.opts, &d.cfg, &error) < 0 ||
	    kw_vconf_load(d.cfg, d.debug, &d.vc, &error) < 0) {
		kw_error("%s", error);
		goto out;
	}
	kw_log_set_level(d.vc.log_level);
	if (kw_digest_key_load(kw_config_key_file(d.cfg), &key, &error) < 0) {
		kw_error("%s: %s", kw_config_key_file(d.cfg), error);
		goto out;
	}
	if (kw_checker_new(kw_config_database(d.cfg), key, d.vc.cache_size, &d.checker, &error) <
	    0) {
		kw_error("%s", error);
		goto out;
	}
	kw_checker_set_lease(d.checker, d.vc.lease_ms);
	ret = take_systemd_socket(&fd);
	if (ret < 0)
		goto out;
	if (ret == 0 && create_socket(&d, kw_config_socket(d.cfg), &d.socket_path, &fd) < 0)
		goto out;
	if (d.vc.http_listen != NULL && create_http_socket(&d, &http_fd) < 0)
		goto out;
	fit_fd_limit(&d.vc);
	hooks.reload = reload;
	hooks.ctx = &d;
	if (kw_server_new(fd, http_fd, d.checker, &d.vc, &hooks, &server) < 0)
		goto out;
	fd = http_fd = -1; /* the server owns them now */
	kw_info("listening on %s%s (protocol %d.%d, database %s)",
		d.socket_path != NULL ? d.socket_path : kw_config_socket(d.cfg),
		d.socket_path != NULL ? "" : " (from systemd)", KW_PROTO_MAJOR, KW_PROTO_MINOR,
		kw_config_store_name(d.cfg));
	sd_notifyf(0, "READY=1\nSTATUS=listening on %s",
		   d.socket_path != NULL ? d.socket_path : kw_config_socket(d.cfg));
	if (kw_server_run(server) == 0)
		exit_code = 0;
	sd_notify(0, "STOPPING=1");
	kw_server_free(&server);
	if (kw_checker_pending(d.checker) > 0 && kw_checker_flush(d.checker) < 0) {
		/* The lock may be held for a moment by the CLI: wait for it, once. */
		kw_checker_set_lock_wait(d.checker, 5000);
		if (kw_checker_flush(d.checker) < 0) {
			kw_error("%zu pending rows (last uses, failed-check event) could not be "
				 "written",
				 kw_checker_pending(d.checker));
			exit_code = 1;
		}
	}
out:
	if (d.socket_path != NULL) {
		unlink(d.socket_path);
		free(d.socket_path);
	}
	if (d.http_socket_path != NULL) {
		unlink(d.http_socket_path);
		free(d.http_socket_path);
	}
	if (fd >= 0)
		close(fd);
	if (http_fd >= 0)
		close(http_fd);
	kw_server_free(&server);
	kw_checker_free(&d.checker);
	kw_digest_key_free(&key);
	kw_vconf_clear(&d.vc);
	kw_config_free(&d.cfg);
	if (exit_code == 0)
		kw_info("stopped");
	return exit_code;
}
