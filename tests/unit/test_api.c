/* test_api.c: the pure parts of keywarden-ssod's REST API (ssod/api.h): which RelayState is
 * followed (no open redirect), the throttle of failed authentications per client (window,
 * block, end of the block, other clients untouched, a full table), and the strict JSON of a
 * token creation and of a refresh. */
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

#include "api.h"

static void test_throttle(void **state)
{
	struct kw_api_settings s = { .auth_failures = 3, .auth_window = 10, .auth_block = 60 };
	struct kw_api_throttle *t = kw_api_throttle_new(&s);
	char ip[32];

	(void)state;
	assert_int_equal(kw_api_throttle_blocked(t, "192.0.2.1", 0), 0);
	kw_api_throttle_failed(t, "192.0.2.1", 0);
	kw_api_throttle_failed(t, "192.0.2.1", 1000);
	assert_int_equal(kw_api_throttle_blocked(t, "192.0.2.1", 1000), 0);
	/* the window passes: counting starts again */
	kw_api_throttle_failed(t, "192.0.2.1", 11000);
	kw_api_throttle_failed(t, "192.0.2.1", 12000);
	assert_int_equal(kw_api_throttle_blocked(t, "192.0.2.1", 12000), 0);
	kw_api_throttle_failed(t, "192.0.2.1", 13000);
	assert_int_equal(kw_api_throttle_blocked(t, "192.0.2.1", 13000), 60);
	assert_int_equal(kw_api_throttle_blocked(t, "192.0.2.1", 72500), 1);
	assert_int_equal(kw_api_throttle_blocked(t, "192.0.2.2", 13000), 0);
	assert_int_equal(kw_api_throttle_blocked(t, "192.0.2.1", 73000), 0);
	/* a full table keeps the blocked client: others come and go */
	kw_api_throttle_failed(t, "192.0.2.9", 80000);
	kw_api_throttle_failed(t, "192.0.2.9", 80000);
	kw_api_throttle_failed(t, "192.0.2.9", 80000);
	for (unsigned i = 0; i < 5000; i++) {
		snprintf(ip, sizeof(ip), "10.0.%u.%u", i / 256, i % 256);
		kw_api_throttle_failed(t, ip, 81000 + i);
	}
	assert_int_equal(kw_api_throttle_blocked(t, "192.0.2.9", 90000), 50);
	kw_api_throttle_free(&t);
	assert_null(t);
	/* auth_failures = 0: never blocked */
	s.auth_failures = 0;
	t = kw_api_throttle_new(&s);
	for (int i = 0; i < 100; i++)
		kw_api_throttle_failed(t, "192.0.2.1", i);
	assert_int_equal(kw_api_throttle_blocked(t, "192.0.2.1", 100), 0);
	kw_api_throttle_free(&t);
}

static int create(const char *json, struct kw_api_create *c)
{
	const char *why = NULL;
	int ret = kw_api_json_create(json, strlen(json), c, &why);

	if (ret < 0)
		assert_non_null(why);
	return ret;
}

static void test_json_create(void **state)
{
	struct kw_api_create c;

	(void)state;
	assert_int_equal(create("{\"name\":\"n\",\"role\":\"Users\"}", &c), 0);
	assert_string_equal(c.name, "n");
	assert_string_equal(c.role, "Users");
	assert_null(c.description);
	assert_null(c.expires);
	kw_api_create_clear(&c);
	assert_int_equal(create(" {\"name\":\"\\u00e9\",\"description\":\"d\",\"role\":\"R\","
				"\"expires\":\"never\"}\n",
				&c),
			 0);
	assert_string_equal(c.name, "\xc3\xa9");
	assert_string_equal(c.expires, "never");
	kw_api_create_clear(&c);
	assert_int_equal(create("", &c), -EINVAL);
	assert_int_equal(create("{", &c), -EINVAL);
	assert_int_equal(create("[]", &c), -EINVAL);
	assert_int_equal(create("\"x\"", &c), -EINVAL);
	assert_int_equal(create("{\"name\":\"n\"}", &c), -EINVAL);
	assert_int_equal(create("{\"role\":\"r\"}", &c), -EINVAL);
	assert_int_equal(create("{\"name\":\"n\",\"role\":\"r\",\"x\":\"y\"}", &c), -EINVAL);
	assert_int_equal(create("{\"name\":null,\"role\":\"r\"}", &c), -EINVAL);
	assert_int_equal(create("{\"name\":\"a\\u0000b\",\"role\":\"r\"}", &c), -EINVAL);
	assert_int_equal(create("{\"name\":\"n\",\"role\":\"r\"} {}", &c), -EINVAL);
	assert_int_equal(create("{\"name\":\"\xff\",\"role\":\"r\"}", &c), -EINVAL);
	assert_int_equal(create("{\"name\":{\"a\":{\"b\":1}},\"role\":\"r\"}", &c), -EINVAL);
	assert_int_equal(create("{'name':'n','role':'r'}", &c), -EINVAL);
}

static void test_json_refresh(void **state)
{
	char *r = NULL;
	const char *why = NULL;
	static const char ok[] = "{\"refresh\":\"900000000000001$abc\"}";
	static const char *const bad[] = {
		"{}",      "{\"refresh\":1}",       "{\"refresh\":\"a\",\"b\":\"c\"}",
		"[\"a\"]", "{\"refresh\":\"a\"} x", ""
	};

	(void)state;
	assert_int_equal(kw_api_json_refresh(ok, strlen(ok), &r, &why), 0);
	assert_string_equal(r, "900000000000001$abc");
	free(r);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = NULL;
		assert_int_equal(kw_api_json_refresh(bad[i], strlen(bad[i]), &r, &why), -EINVAL);
		assert_null(r);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_throttle),
		cmocka_unit_test(test_json_create),
		cmocka_unit_test(test_json_refresh),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
