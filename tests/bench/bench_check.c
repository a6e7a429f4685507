/* bench_check.c: the time of one CHECK by path, inside the validator's checker (not a test:
 * it prints figures for doc/benchmarks.md; issue 10, item 5).
 *
 *   bench_check [ROUNDS]
 *
 * Builds a state folder in /tmp with one token, then times kw_checker_check() (cache warm, as
 * a probing client sees it) for: the right secret, a known id with a wrong secret, an unknown
 * id, and a malformed token. Rounds are interleaved (A B C D A B C D ...) so that frequency
 * changes hit every path alike; prints the median and mean ns per check of each path, and
 * the difference between the unknown id and the wrong secret, which must be noise. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "store.h"
#include "token.h"

#define BATCH 1000 /* checks per timed sample */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void die(const char *what, const char *error)
{
	fprintf(stderr, "bench_check: %s: %s\n", what, error != NULL ? error : "failed");
	exit(1);
}

int main(int argc, char **argv)
{
	enum { GOOD, WRONG, UNKNOWN, MALFORMED, PATHS };
	static const char *const names[PATHS] = { "right secret", "known id, wrong secret",
						  "unknown id", "malformed (bad checksum)" };
	char dir[] = "/tmp/kw-bench-check.XXXXXX", path[128], keypath[128], cmd[160];
	char text[PATHS][KW_TOKEN_TEXT_MAX];
	long rounds = argc > 1 ? atol(argv[1]) : 2000;
	struct kw_store *store = NULL;
	struct kw_digest_key *key = NULL;
	struct kw_checker *checker = NULL;
	struct kw_secret secret;
	const char *error = NULL;
	double *samples[PATHS], mean[PATHS];
	uint64_t id;

	if (rounds < 10)
		rounds = 10;
	if (mkdtemp(dir) == NULL)
		die("mkdtemp", NULL);
	snprintf(keypath, sizeof(keypath), "%s/keywarden.key", dir);
	snprintf(path, sizeof(path), "%s/keywarden.db", dir);
	kw_log_init("bench_check", KW_LOG_WARNING, false);
	if (kw_digest_key_create(keypath, &error) < 0 ||
	    kw_digest_key_load(keypath, &key, &error) < 0 ||
	    kw_store_open(path, KW_STORE_CREATE, &store, &error) < 0 ||
	    kw_store_account_add(store, "bench", "bench", 50, &error) < 0 ||
	    kw_store_user_add(store, "bench", "bench", "bench", "Engineers", NULL, &error) < 0 ||
	    kw_store_token_create(store, key, "bench", "t", "", "Engineers", KW_NEVER, &id,
				  text[GOOD], &error) < 0)
		die("setup", error);
	kw_store_free(&store);
	if (kw_secret_generate(&secret) < 0)
		die("random", NULL);
	kw_token_format(id, &secret, text[WRONG]);
	kw_token_format(id + 1000, &secret, text[UNKNOWN]);
	snprintf(text[MALFORMED], sizeof(text[MALFORMED]), "%s", text[WRONG]);
	text[MALFORMED][strlen(text[MALFORMED]) - 1] ^= 1; /* the checksum no longer matches */
	kw_secret_wipe(&secret);
	if (kw_checker_new(path, key, 64, &checker, &error) < 0)
		die("checker", error);
	kw_checker_sync(checker);

	for (int p = 0; p < PATHS; p++) {
		samples[p] = calloc((size_t)rounds, sizeof(double));
		if (samples[p] == NULL)
			die("memory", NULL);
		mean[p] = 0;
	}
	for (long r = -10; r < rounds; r++) { /* 10 warm-up rounds */
		for (int p = 0; p < PATHS; p++) {
			struct kw_check_answer res;
			size_t len = strlen(text[p]);
			int64_t t0 = now_ns();
			for (int i = 0; i < BATCH; i++)
				kw_checker_check(checker, text[p], len, NULL, 0, &res);
			double ns = (double)(now_ns() - t0) / BATCH;
			if (r >= 0) {
				samples[p][r] = ns;
				mean[p] += ns / (double)rounds;
			}
		}
	}
	printf("# bench_check: %ld rounds of %d checks per path, interleaved; ns per check\n",
	       rounds, BATCH);
	printf("%-28s %10s %10s\n", "path", "median", "mean");
	double median[PATHS];
	for (int p = 0; p < PATHS; p++) {
		qsort(samples[p], (size_t)rounds, sizeof(double), cmp_double);
		median[p] = samples[p][rounds / 2];
		printf("%-28s %10.0f %10.0f\n", names[p], median[p], mean[p]);
		free(samples[p]);
	}
	printf("unknown id - wrong secret: %+.0f ns (median), %+.1f%%\n",
	       median[UNKNOWN] - median[WRONG],
	       100.0 * (median[UNKNOWN] - median[WRONG]) / median[WRONG]);
	kw_checker_free(&checker);
	kw_digest_key_free(&key);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : 1;
}
