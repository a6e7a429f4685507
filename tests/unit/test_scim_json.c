/* test_scim_json.c: the pure JSON of keywarden-ssod's SCIM receiver (ssod/scim_json.c): the
 * PatchOp shapes of Okta (no path, a value object) and Entra ID (a capitalised op, a path, a
 * string boolean), roles as strings or objects and their removal, unknown attributes ignored,
 * and the refusals (malformed, too deep, bad op, bad boolean, refused text). */
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

#include "scim.h"

static int patch(const char *body, struct kw_scim_user *u, const char **type_r)
{
	const char *why = NULL, *type = NULL;
	int ret = kw_scim_json_patch(body, strlen(body), u, &why, &type);

	if (ret < 0) {
		assert_non_null(why);
		assert_non_null(type);
	}
	if (type_r != NULL)
		*type_r = type;
	return ret;
}

static void test_okta(void **state)
{
	struct kw_scim_user u;

	(void)state;
	assert_int_equal(
		patch("{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:PatchOp\"],"
		      "\"Operations\":[{\"op\":\"replace\",\"value\":{\"active\":false}}]}",
		      &u, NULL),
		0);
	assert_int_equal(u.active, 0);
	assert_false(u.roles_sent);
	kw_scim_user_clear(&u);
	assert_int_equal(patch("{\"Operations\":[{\"op\":\"replace\",\"value\":{\"ACTIVE\":true,"
			       "\"displayName\":\"x\",\"externalId\":\"00u1\"}}]}",
			       &u, NULL),
			 0);
	assert_int_equal(u.active, 1);
	assert_string_equal(u.external_id, "00u1");
	kw_scim_user_clear(&u);
}

static void test_entra(void **state)
{
	struct kw_scim_user u;

	(void)state;
	assert_int_equal(patch("{\"Operations\":[{\"op\":\"Replace\",\"path\":\"active\","
			       "\"value\":\"False\"}]}",
			       &u, NULL),
			 0);
	assert_int_equal(u.active, 0);
	kw_scim_user_clear(&u);
	assert_int_equal(patch("{\"operations\":[{\"OP\":\"Add\",\"Path\":\"Active\","
			       "\"Value\":\"TRUE\"}]}",
			       &u, NULL),
			 0);
	assert_int_equal(u.active, 1);
	kw_scim_user_clear(&u);
}

static void test_roles(void **state)
{
	struct kw_scim_user u;

	(void)state;
	assert_int_equal(patch("{\"Operations\":[{\"op\":\"replace\",\"path\":\"roles\","
			       "\"value\":[\"eng\",{\"value\":\"staff\",\"primary\":true}]}]}",
			       &u, NULL),
			 0);
	assert_true(u.roles_sent);
	assert_int_equal(u.n_roles, 2);
	assert_string_equal(u.roles[0], "eng");
	assert_string_equal(u.roles[1], "staff");
	kw_scim_user_clear(&u);
	assert_int_equal(patch("{\"Operations\":[{\"op\":\"remove\",\"path\":\"roles\"},"
			       "{\"op\":\"remove\",\"path\":\"nickName\"}]}",
			       &u, NULL),
			 0);
	assert_true(u.roles_sent);
	assert_int_equal(u.n_roles, 0);
	assert_int_equal(u.active, -1);
	kw_scim_user_clear(&u);
}

static void test_user(void **state)
{
	const char *body =
		"{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],"
		"\"userName\":\"a@b\",\"active\":\"true\",\"name\":{\"givenName\":\"A\"},"
		"\"emails\":[{\"value\":\"a@b\"}],\"unknown\":[1,2,3]}";
	const char *why = NULL;
	struct kw_scim_user u;

	(void)state;
	assert_int_equal(kw_scim_json_user(body, strlen(body), &u, &why), 0);
	assert_string_equal(u.user_name, "a@b");
	assert_int_equal(u.active, 1);
	assert_false(u.roles_sent);
	kw_scim_user_clear(&u);
}

static void test_refused(void **state)
{
	static const char *const bad[] = {
		"",
		"{",
		"[]",
		"{\"Operations\":{}}",
		"{\"Operations\":[{\"path\":\"active\",\"value\":false}]}",
		"{\"Operations\":[{\"op\":\"move\",\"path\":\"active\",\"value\":false}]}",
		"{\"Operations\":[{\"op\":\"replace\",\"path\":\"active\",\"value\":\"no\"}]}",
		"{\"Operations\":[{\"op\":\"replace\",\"path\":\"active\",\"value\":1}]}",
		"{\"Operations\":[{\"op\":\"replace\",\"path\":\"active\"}]}",
		"{\"Operations\":[{\"op\":\"replace\",\"value\":[true]}]}",
		"{\"Operations\":[{\"op\":\"replace\",\"path\":\"roles\",\"value\":\"eng\"}]}",
		"{\"Operations\":[{\"op\":\"replace\",\"path\":\"externalId\",\"value\":"
		"\"a\\u0007\"}]}",
		"{\"Operations\":[[[[[[[[[[[[]]]]]]]]]]]]}",
		"{\"Operations\":[]} trailing",
	};
	struct kw_scim_user u;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *type = NULL;
		assert_int_equal(patch(bad[i], &u, &type), -EINVAL);
		assert_null(u.user_name);
		assert_null(u.roles);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_okta),    cmocka_unit_test(test_entra),
		cmocka_unit_test(test_roles),   cmocka_unit_test(test_user),
		cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
