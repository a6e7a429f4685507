/* bench_acs.c: a load generator for keywarden-ssod's POST /saml/acs, not a test.
 *
 * CLIENTS threads, each with its own keep-alive connection (reconnecting when the server
 * closes it), POST the form bodies of DIR (one file each: "SAMLResponse=..."; every file is
 * sent once, since a second time would be a replay) as fast as the server answers, until the
 * files run out. Prints the answers per second and how many were 200.
 * Usage: bench_acs HOST PORT DIR CLIENTS
 * tests/bench/bench_acs.py makes the bodies, starts the daemon and compares with bench_saml. */
#include "config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_FILES 100000

struct body {
	char *data;
	size_t len;
};

static struct body bodies[MAX_FILES];
static size_t n_bodies;
static atomic_size_t next_body;
static atomic_size_t ok_count, fail_count, reconnects;
static struct sockaddr_in server;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void load(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d == NULL) {
		perror(dir);
		exit(2);
	}
	while ((e = readdir(d)) != NULL && n_bodies < MAX_FILES) {
		char path[4096];
		FILE *f;
		long len;

		if (strstr(e->d_name, ".form") == NULL)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		f = fopen(path, "rb");
		if (f == NULL)
			continue;
		fseek(f, 0, SEEK_END);
		len = ftell(f);
		fseek(f, 0, SEEK_SET);
		bodies[n_bodies].data = malloc((size_t)len);
		if (bodies[n_bodies].data != NULL &&
		    fread(bodies[n_bodies].data, 1, (size_t)len, f) == (size_t)len)
			bodies[n_bodies++].len = (size_t)len;
		fclose(f);
	}
	closedir(d);
}

static int dial(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&server, sizeof(server)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads one response; returns its status, or -1. *close_r: the server closes. */
static int read_response(int fd, int *close_r)
{
	char buf[16384];
	size_t have = 0, body_len = 0, head_len;
	char *end, *p;
	int status;

	for (;;) {
		ssize_t r = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
		if (r <= 0)
			return -1;
		have += (size_t)r;
		buf[have] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (end != NULL)
			break;
		if (have == sizeof(buf) - 1)
			return -1;
	}
	head_len = (size_t)(end - buf) + 4;
	if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
		return -1;
	*close_r = 0;
	for (p = buf; p < end; p = strstr(p, "\r\n") + 2) {
		if (strncasecmp(p, "Content-Length:", 15) == 0)
			body_len = strtoul(p + 15, NULL, 10);
		else if (strncasecmp(p, "Connection:", 11) == 0 && strcasestr(p, "close") != NULL &&
			 strcasestr(p, "close") < strstr(p, "\r\n"))
			*close_r = 1;
		if (strstr(p, "\r\n") == NULL)
			break;
	}
	while (have - head_len < body_len) {
		char sink[16384];
		ssize_t r = recv(fd, sink, sizeof(sink), 0);
		if (r <= 0)
			return -1;
		have += (size_t)r;
	}
	return status;
}

static void *client(void *arg)
{
	int fd = -1;

	(void)arg;
	for (;;) {
		size_t i = atomic_fetch_add(&next_body, 1);
		char head[256];
		int n, status, closing = 1, tries;

		if (i >= n_bodies)
			break;
		n = snprintf(head, sizeof(head),
			     "POST /saml/acs HTTP/1.1\r\nHost: sp.test\r\nContent-Type: "
			     "application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n\r\n",
			     bodies[i].len);
		status = -1;
		for (tries = 0; tries < 2 && status < 0; tries++) {
			if (fd < 0) {
				fd = dial();
				atomic_fetch_add(&reconnects, 1);
				if (fd < 0)
					break;
			}
			if (send_all(fd, head, (size_t)n) == 0 &&
			    send_all(fd, bodies[i].data, bodies[i].len) == 0)
				status = read_response(fd, &closing);
			if (status < 0 || closing) {
				close(fd);
				fd = -1;
			}
		}
		if (status == 200)
			atomic_fetch_add(&ok_count, 1);
		else
			atomic_fetch_add(&fail_count, 1);
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t threads[256];
	int clients;
	double t0, t;

	if (argc != 5) {
		fprintf(stderr, "usage: bench_acs HOST PORT DIR CLIENTS\n");
		return 2;
	}
	server.sin_family = AF_INET;
	server.sin_port = htons((unsigned short)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &server.sin_addr) != 1) {
		fprintf(stderr, "bench_acs: %s: not an IPv4 address\n", argv[1]);
		return 2;
	}
	clients = atoi(argv[4]);
	if (clients < 1 || clients > 256)
		return 2;
	load(argv[3]);
	if (n_bodies == 0) {
		fprintf(stderr, "bench_acs: no *.form files in %s\n", argv[3]);
		return 1;
	}
	t0 = now_s();
	for (int i = 0; i < clients; i++)
		pthread_create(&threads[i], NULL, client, NULL);
	for (int i = 0; i < clients; i++)
		pthread_join(threads[i], NULL);
	t = now_s() - t0;
	printf("POST /saml/acs, %d clients: %8.0f responses/s (%zu of %zu answered 200, %zu "
	       "connections, %.2f s)\n",
	       clients, (double)n_bodies / t, atomic_load(&ok_count), n_bodies,
	       atomic_load(&reconnects), t);
	for (size_t i = 0; i < n_bodies; i++)
		free(bodies[i].data);
	return atomic_load(&fail_count) == 0 ? 0 : 1;
}
