/* kwcheck.c: a test driver for libkeywarden; prints one line per result so that
 * tests/client/test_client.py can hold the library against a scripted server.
 *
 *   kwcheck [-t MS] [-s SERVICE] [-i IP] [-u UID] [-b] [-r N] [-w MS] [-f] SOCKET TOKEN...
 *
 * -u sets kw_client_set_server_uid(); after an error with a kw_client_error() detail, the
 * detail goes to standard error as "detail=...". -b checks all tokens in one pipelined batch; -r repeats the whole run N times with the same
 * client, sleeping -w MS between runs; -f runs once, forks, runs in the child (lines prefixed
 * "child "), then runs again in the parent. Tokens "@N:PREFIX" expand to N tokens PREFIXi. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "keywarden.h"

static void print_result(const struct kw_client *c, const char *prefix, int ret,
			 const struct kw_check_result *res)
{
	if (ret < 0) {
		const char *name = strerrorname_np(-ret);

		printf("%serror=%s status=%s\n", prefix, name ? name : "?",
		       kw_check_status_name(res->status));
		if (kw_client_error(c)[0] != '\0')
			fprintf(stderr, "%sdetail=%s\n", prefix, kw_client_error(c));
		return;
	}
	printf("%sstatus=%s token_id=%s account=%s user=%s role=%s expires=%s\n", prefix,
	       kw_check_status_name(res->status), res->token_id, res->account, res->user, res->role,
	       res->expires);
}

static void run(struct kw_client *c, const char *prefix, int n, const char **tokens, int batch,
		const struct kw_check_opts *opts)
{
	if (batch) {
		struct kw_check_result *res = calloc((size_t)n, sizeof(*res));
		int ret;

		if (res == NULL)
			exit(99);
		ret = kw_client_check_batch(c, (size_t)n, tokens, opts, res);
		printf("%sbatch=%d\n", prefix, ret);
		for (int i = 0; i < n; i++)
			print_result(c, prefix, ret, &res[i]);
		free(res);
	} else {
		for (int i = 0; i < n; i++) {
			struct kw_check_result res;
			int ret = kw_client_check(c, tokens[i], opts, &res);

			print_result(c, prefix, ret, &res);
		}
	}
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct kw_check_opts opts = { NULL, NULL };
	int timeout = 0, batch = 0, repeat = 1, wait_ms = 0, do_fork = 0, opt, n = 0;
	long server_uid = -1;
	struct kw_client *c;
	const char **tokens;
	char **owned;
	int n_owned = 0;

	while ((opt = getopt(argc, argv, "t:s:i:u:br:w:f")) != -1) {
		switch (opt) {
		case 't':
			timeout = atoi(optarg);
			break;
		case 's':
			opts.service = optarg;
			break;
		case 'i':
			opts.remote_ip = optarg;
			break;
		case 'u':
			server_uid = atol(optarg);
			break;
		case 'b':
			batch = 1;
			break;
		case 'r':
			repeat = atoi(optarg);
			break;
		case 'w':
			wait_ms = atoi(optarg);
			break;
		case 'f':
			do_fork = 1;
			break;
		default:
			return 2;
		}
	}
	if (argc - optind < 1)
		return 2;
	c = kw_client_new(argv[optind], timeout);
	if (c == NULL) {
		printf("new=%s\n", strerrorname_np(errno));
		return 0;
	}
	if (server_uid >= 0 && kw_client_set_server_uid(c, (uid_t)server_uid) != 0)
		return 99;
	tokens = calloc((size_t)(argc + 100000), sizeof(*tokens));
	owned = calloc(100000, sizeof(*owned));
	if (tokens == NULL || owned == NULL)
		return 99;
	for (int i = optind + 1; i < argc; i++) {
		int count;
		char prefix[256];

		if (sscanf(argv[i], "@%d:%255s", &count, prefix) == 2 && count > 0 &&
		    count <= 100000) {
			for (int k = 0; k < count; k++) {
				char *t = malloc(300);

				if (t == NULL)
					return 99;
				snprintf(t, 300, "%s%d", prefix, k);
				tokens[n++] = t;
				if (n_owned < 100000)
					owned[n_owned++] = t;
			}
		} else {
			tokens[n++] = argv[i];
		}
	}
	if (do_fork) {
		pid_t pid;
		int st;

		run(c, "", n, tokens, batch, &opts);
		pid = fork();
		if (pid < 0)
			return 99;
		if (pid == 0) {
			run(c, "child ", n, tokens, batch, &opts);
			kw_client_free(&c);
			_exit(0);
		}
		waitpid(pid, &st, 0);
		run(c, "", n, tokens, batch, &opts);
	} else {
		for (int r = 0; r < repeat; r++) {
			struct timespec ts = { wait_ms / 1000, (wait_ms % 1000) * 1000000L };

			if (r > 0 && wait_ms > 0)
				nanosleep(&ts, NULL);
			run(c, "", n, tokens, batch, &opts);
		}
	}
	kw_client_free(&c);
	for (int i = 0; i < n_owned; i++)
		free(owned[i]);
	free(owned);
	free(tokens);
	if (c != NULL)
		return 98;
	return 0;
}
