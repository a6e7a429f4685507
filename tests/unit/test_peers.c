/* test_peers.c: the validator's connection count per peer uid (validator/daemon_peers.c), the
 * table behind max_connections_per_uid: random adds and removes over colliding uids against a
 * plain array, through growth and backward-shift deletion. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "daemon.h"

#define UIDS 3000

static void test_random_against_array(void **state)
{
	static unsigned want[UIDS];
	struct kw_peers *p = kw_peers_new();
	unsigned seed = 12345;

	for (int step = 0; step < 200000; step++) {
		uid_t uid;
		seed = seed * 1103515245 + 12345;
		/* 3000 uids through a table that starts at 64 slots: growth, collisions. */
		uid = (uid_t)((seed >> 8) % UIDS);
		if (((seed >> 4) & 3) != 0 || want[uid] == 0) {
			kw_peers_add(p, uid);
			want[uid]++;
		} else {
			kw_peers_remove(p, uid);
			want[uid]--;
		}
		if (step % 997 == 0) {
			for (uid_t u = 0; u < UIDS; u++)
				assert_int_equal(kw_peers_count(p, u), want[u]);
		}
	}
	for (uid_t u = 0; u < UIDS; u++) {
		assert_int_equal(kw_peers_count(p, u), want[u]);
		while (want[u] > 0) {
			kw_peers_remove(p, u);
			want[u]--;
		}
	}
	for (uid_t u = 0; u < UIDS; u++)
		assert_int_equal(kw_peers_count(p, u), 0);
	kw_peers_remove(p, 7); /* not there: no effect */
	assert_int_equal(kw_peers_count(p, 7), 0);
	kw_peers_free(&p);
	assert_null(p);
}

static void test_large_uids(void **state)
{
	struct kw_peers *p = kw_peers_new();

	kw_peers_add(p, (uid_t)4294967294U);
	kw_peers_add(p, (uid_t)4294967294U);
	kw_peers_add(p, 0);
	assert_int_equal(kw_peers_count(p, (uid_t)4294967294U), 2);
	assert_int_equal(kw_peers_count(p, 0), 1);
	kw_peers_remove(p, 0);
	assert_int_equal(kw_peers_count(p, 0), 0);
	assert_int_equal(kw_peers_count(p, (uid_t)4294967294U), 2);
	kw_peers_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_against_array),
		cmocka_unit_test(test_large_uids),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
