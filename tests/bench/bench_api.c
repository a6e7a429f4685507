/* bench_api.c: a load generator for keywarden-ssod's REST API, not a test.
 *
 * CLIENTS threads, each with its own keep-alive connection (reconnecting when the server
 * closes it), send the same request (METHOD PATH, an optional Authorization value and JSON
 * body) as fast as the server answers, for SECONDS seconds. Prints the answers per second and
 * how many were 2xx.
 * Usage: bench_api HOST PORT METHOD PATH AUTH|- BODY|- CLIENTS SECONDS
 * tests/bench/bench_api.py starts the daemon and runs it against GET /healthz, GET and POST
 * /api/v1/tokens in the same run. */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in server;
static char request[8192];
static size_t request_len;
static double deadline;
static atomic_size_t ok_count, other_count, reconnects, connect_failed;
static atomic_int last_other;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_server(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&server, sizeof(server)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Sends the request and reads one answer: its status, or -1 when the connection ended. */
static int one_request(int fd, bool *close_r)
{
	char buf[65536];
	size_t have = 0, need = 0;
	char *end = NULL;
	int status;

	if (send(fd, request, request_len, MSG_NOSIGNAL) != (ssize_t)request_len)
		return -1;
	for (;;) {
		ssize_t n = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
		if (n <= 0)
			return -1;
		have += (size_t)n;
		buf[have] = '\0';
		if (end == NULL && (end = strstr(buf, "\r\n\r\n")) != NULL) {
			char *cl = strcasestr(buf, "\r\nContent-Length:");
			need = (size_t)(end - buf) + 4 +
			       (cl != NULL && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
			*close_r = strcasestr(buf, "\r\nConnection: close") != NULL;
		}
		if (end != NULL && have >= need)
			break;
		if (have >= sizeof(buf) - 1)
			return -1;
	}
	if (sscanf(buf, "HTTP/1.%*c %d", &status) != 1)
		return -1;
	return status;
}

static void *client(void *arg)
{
	int fd = -1;

	(void)arg;
	while (now_s() < deadline) {
		bool closing = false;
		int status;

		if (fd < 0 && (fd = connect_server()) < 0) {
			atomic_fetch_add(&connect_failed, 1);
			usleep(1000);
			continue;
		}
		status = one_request(fd, &closing);
		if (status < 0 || closing) {
			close(fd);
			fd = -1;
			atomic_fetch_add(&reconnects, 1);
		}
		if (status >= 200 && status < 300)
			atomic_fetch_add(&ok_count, 1);
		else if (status > 0) {
			atomic_fetch_add(&other_count, 1);
			atomic_store(&last_other, status);
		}
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t threads[256];
	int clients, seconds, n;
	double start, took;

	if (argc != 9) {
		fprintf(stderr, "usage: bench_api HOST PORT METHOD PATH AUTH|- BODY|- CLIENTS "
				"SECONDS\n");
		return 2;
	}
	server.sin_family = AF_INET;
	server.sin_port = htons((unsigned short)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &server.sin_addr) != 1) {
		fprintf(stderr, "bench_api: %s: not an IPv4 address\n", argv[1]);
		return 2;
	}
	clients = atoi(argv[7]);
	seconds = atoi(argv[8]);
	if (clients < 1 || clients > 256 || seconds < 1) {
		fprintf(stderr, "bench_api: 1..256 clients, at least 1 second\n");
		return 2;
	}
	n = snprintf(request, sizeof(request), "%s %s HTTP/1.1\r\nHost: %s\r\n%s%s%s%s%s\r\n%s",
		     argv[3], argv[4], argv[1], strcmp(argv[5], "-") != 0 ? "Authorization: " : "",
		     strcmp(argv[5], "-") != 0 ? argv[5] : "",
		     strcmp(argv[5], "-") != 0 ? "\r\n" : "",
		     strcmp(argv[6], "-") != 0 ? "Content-Type: application/json\r\n" : "", "",
		     strcmp(argv[6], "-") != 0 ? argv[6] : "");
	if (n < 0 || (size_t)n >= sizeof(request)) {
		fprintf(stderr, "bench_api: request too long\n");
		return 2;
	}
	if (strcmp(argv[6], "-") != 0) {
		/* Content-Length goes before the blank line: rebuild with it */
		n = snprintf(request, sizeof(request),
			     "%s %s HTTP/1.1\r\nHost: %s\r\n%s%s%sContent-Type: "
			     "application/json\r\nContent-Length: %zu\r\n\r\n%s",
			     argv[3], argv[4], argv[1],
			     strcmp(argv[5], "-") != 0 ? "Authorization: " : "",
			     strcmp(argv[5], "-") != 0 ? argv[5] : "",
			     strcmp(argv[5], "-") != 0 ? "\r\n" : "", strlen(argv[6]), argv[6]);
	}
	request_len = (size_t)n;
	start = now_s();
	deadline = start + seconds;
	for (int i = 0; i < clients; i++)
		pthread_create(&threads[i], NULL, client, NULL);
	for (int i = 0; i < clients; i++)
		pthread_join(threads[i], NULL);
	took = now_s() - start;
	printf("%s %s: %.0f requests/s (%d clients, %.2f s): %zu answers 2xx, %zu other (last %d), "
	       "%zu reconnects, %zu failed connects\n",
	       argv[3], argv[4], (double)ok_count / took, clients, took, (size_t)ok_count,
	       (size_t)other_count, (int)last_other, (size_t)reconnects, (size_t)connect_failed);
	return 0;
}
