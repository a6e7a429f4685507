/* test_login.c: SP-initiated sign-in's pure parts and its store (issue 17): which `next`
 * values lead only to a path on this site (kw_ssod_next_ok(), ssod/login.h), and the
 * AuthnRequest list of the store (kw_store_sso_request_add/answer(), lib/store_sso.h): a
 * request is answered once, an unknown or expired one not at all. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "login.h"
#include "sso_apply.h"
#include "store.h"
#include "store_sso.h"

static void next_paths(void **state)
{
	static const char *const good[] = {
		"/", "/tokens", "/tokens?x=1&y=2", "/a/b/c#frag", "/a//b", "/%2F%2Fhost", "/a:b",
	};
	static const char *const bad[] = {
		"",
		"tokens",
		"//evil.example",
		"//evil.example/x",
		"/\\evil.example",
		"\\\\evil.example",
		"https://evil.example/",
		"javascript:alert(1)",
		"/a\\b",
		"/a b",
		"/a\tb",
		"/a\r\nLocation: x",
		"/\x7f",
		"/caf\xc3\xa9",
		" /tokens",
		"http:/x",
	};
	char long_path[KW_SSOD_NEXT_MAX + 2];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (!kw_ssod_next_ok(good[i]))
			fail_msg("refused a path on this site: \"%s\"", good[i]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (kw_ssod_next_ok(bad[i]))
			fail_msg("took a next that leaves the site: \"%s\"", bad[i]);
	}
	assert_false(kw_ssod_next_ok(NULL));
	memset(long_path, 'a', sizeof(long_path) - 1);
	long_path[0] = '/';
	long_path[KW_SSOD_NEXT_MAX] = '\0';
	assert_true(kw_ssod_next_ok(long_path));
	long_path[KW_SSOD_NEXT_MAX] = 'a';
	long_path[KW_SSOD_NEXT_MAX + 1] = '\0';
	assert_false(kw_ssod_next_ok(long_path));
}

static void request_list(void **state)
{
	char dir[] = "/tmp/kw-test-login.XXXXXX", path[128], next[64];
	struct kw_store *a = NULL, *b = NULL;
	const char *error = NULL;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/keywarden.db", dir);
	assert_int_equal(kw_store_open(path, KW_STORE_CREATE, &a, &error), 0);
	assert_int_equal(kw_store_open(path, 0, &b, &error), 0);

	assert_int_equal(kw_store_sso_request_add(a, "_k1", "/tokens", 1600, 1000, &error), 0);
	assert_int_equal(kw_store_sso_request_add(a, "_k2", "", 1600, 1000, &error), 0);
	/* another connection (another worker or process) answers it */
	assert_int_equal(kw_store_sso_request_answer(b, "_k1", 1100, next, sizeof(next), &error),
			 0);
	assert_string_equal(next, "/tokens");
	/* once */
	assert_int_equal(kw_store_sso_request_answer(a, "_k1", 1101, next, sizeof(next), &error),
			 -EALREADY);
	assert_non_null(strstr(error, "answered before"));
	/* never sent */
	assert_int_equal(kw_store_sso_request_answer(a, "_nope", 1100, next, sizeof(next), &error),
			 -ENOENT);
	/* expired */
	assert_int_equal(kw_store_sso_request_answer(a, "_k2", 1600, next, sizeof(next), &error),
			 -ENOENT);
	/* an expired entry is purged when a new request is kept */
	assert_int_equal(kw_store_sso_request_add(a, "_k3", "/", 2400, 1700, &error), 0);
	assert_int_equal(kw_store_sso_request_answer(a, "_k1", 1701, next, sizeof(next), &error),
			 -ENOENT);
	assert_int_equal(kw_store_sso_request_answer(a, "_k3", 1701, next, sizeof(next), &error),
			 0);
	assert_string_equal(next, "/");

	kw_store_free(&a);
	kw_store_free(&b);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(next_paths),
		cmocka_unit_test(request_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
