/* test_token.c: the token format, its checksum, the pepper key and the digests. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "token.h"

static char tmpdir[256];

static void make_token(uint64_t id, char *text, struct kw_secret *s)
{
	assert_int_equal(kw_secret_generate(s), 0);
	kw_token_format(id, s, text);
}

static void test_roundtrip(void **state)
{
	struct kw_secret s, p;
	char text[KW_TOKEN_TEXT_MAX];
	uint64_t id = 0;

	make_token(7711, text, &s);
	assert_int_equal(strncmp(text, "7711$", 5), 0);
	assert_int_equal(strlen(text), 5 + KW_SECRET_TEXT_LEN);
	assert_int_equal(kw_token_parse(text, strlen(text), &id, &p), 0);
	assert_int_equal(id, 7711);
	assert_memory_equal(s.random, p.random, sizeof(s.random));
}

static void test_forms(void **state)
{
	struct kw_secret s, p;
	char text[KW_TOKEN_TEXT_MAX], buf[256];
	uint64_t id = 0;

	make_token(42, text, &s);
	snprintf(buf, sizeof(buf), "APIKey %s", text);
	assert_int_equal(kw_token_parse(buf, strlen(buf), &id, &p), 0);
	snprintf(buf, sizeof(buf), "apikey   %s  ", text);
	assert_int_equal(kw_token_parse(buf, strlen(buf), &id, &p), 0);
	snprintf(buf, sizeof(buf), "%s", text);
	buf[2] = '_'; /* "42_secret" */
	assert_int_equal(kw_token_parse(buf, strlen(buf), &id, &p), 0);
	assert_int_equal(id, 42);
	snprintf(buf, sizeof(buf), "Bearer %s", text);
	assert_int_equal(kw_token_parse(buf, strlen(buf), &id, &p), -EINVAL);
	snprintf(buf, sizeof(buf), "APIKey%s", text);
	assert_int_equal(kw_token_parse(buf, strlen(buf), &id, &p), -EINVAL);
}

static void test_checksum_rejects(void **state)
{
	struct kw_secret s, p;
	char text[KW_TOKEN_TEXT_MAX], buf[KW_TOKEN_TEXT_MAX];
	uint64_t id;
	size_t len;

	make_token(5, text, &s);
	len = strlen(text);
	/* Every single-character change is caught by the checksum or the alphabet. */
	for (size_t i = 2; i < len; i++) {
		memcpy(buf, text, len + 1);
		buf[i] = buf[i] == 'A' ? 'B' : 'A';
		assert_int_equal(kw_token_parse(buf, len, &id, &p), -EINVAL);
	}
	/* The id is bound by the checksum: the same secret under another id is refused. */
	memcpy(buf, text, len + 1);
	buf[0] = '6';
	assert_int_equal(kw_token_parse(buf, len, &id, &p), -EINVAL);
	/* Truncated, extended, empty, id only, zero and leading-zero ids. */
	assert_int_equal(kw_token_parse(text, len - 1, &id, &p), -EINVAL);
	snprintf(buf, sizeof(buf), "%sA", text);
	assert_int_equal(kw_token_parse(buf, strlen(buf), &id, &p), -EINVAL);
	assert_int_equal(kw_token_parse("", 0, &id, &p), -EINVAL);
	assert_int_equal(kw_token_parse("5$", 2, &id, &p), -EINVAL);
	snprintf(buf, sizeof(buf), "0%s", text);
	assert_int_equal(kw_token_parse(buf, strlen(buf), &id, &p), -EINVAL);
}

static void test_id_parse(void **state)
{
	uint64_t id;

	assert_int_equal(kw_token_id_parse("7711", &id), 0);
	assert_int_equal(id, 7711);
	assert_int_equal(kw_token_id_parse("0", &id), -EINVAL);
	assert_int_equal(kw_token_id_parse("-1", &id), -EINVAL);
	assert_int_equal(kw_token_id_parse("12a", &id), -EINVAL);
	assert_int_equal(kw_token_id_parse("", &id), -EINVAL);
	assert_int_equal(kw_token_id_parse("1234567890123456", &id), -EINVAL);
	assert_int_equal(kw_token_id_parse("999999999999999", &id), 0);
}

static void test_secrets_differ(void **state)
{
	struct kw_secret a, b;

	assert_int_equal(kw_secret_generate(&a), 0);
	assert_int_equal(kw_secret_generate(&b), 0);
	assert_memory_not_equal(a.random, b.random, sizeof(a.random));
	kw_secret_wipe(&a);
	for (size_t i = 0; i < sizeof(a.random); i++)
		assert_int_equal(a.random[i], 0);
}

static void test_key_and_digest(void **state)
{
	char path[300], path2[300];
	struct kw_digest_key *k1 = NULL, *k2 = NULL;
	struct kw_secret s;
	uint8_t d1[KW_DIGEST_LEN], d2[KW_DIGEST_LEN], d3[KW_DIGEST_LEN];
	const char *error = NULL;
	struct stat st;

	snprintf(path, sizeof(path), "%s/k1", tmpdir);
	snprintf(path2, sizeof(path2), "%s/k2", tmpdir);
	assert_int_equal(kw_digest_key_create(path, &error), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, KW_KEY_LEN);
	assert_int_equal(kw_digest_key_create(path, &error), -EEXIST);
	assert_int_equal(kw_digest_key_create(path2, &error), 0);
	assert_int_equal(kw_digest_key_load(path, &k1, &error), 0);
	assert_int_equal(kw_digest_key_load(path2, &k2, &error), 0);
	assert_int_equal(kw_secret_generate(&s), 0);
	assert_int_equal(kw_token_digest(k1, 1, &s, d1), 0);
	assert_int_equal(kw_token_digest(k1, 1, &s, d2), 0);
	assert_true(kw_digest_equal(d1, d2));
	/* Another id or another key gives another digest. */
	assert_int_equal(kw_token_digest(k1, 2, &s, d3), 0);
	assert_false(kw_digest_equal(d1, d3));
	assert_int_equal(kw_token_digest(k2, 1, &s, d3), 0);
	assert_false(kw_digest_equal(d1, d3));
	/* The digest is not the secret. */
	assert_memory_not_equal(d1, s.random, KW_DIGEST_LEN);
	kw_digest_key_free(&k1);
	kw_digest_key_free(&k2);
	assert_null(k1);
	/* A key others can read is refused. */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(kw_digest_key_load(path, &k1, &error), -EPERM);
	assert_null(k1);
	/* A missing key and a key of the wrong size are refused. */
	snprintf(path2, sizeof(path2), "%s/missing", tmpdir);
	assert_true(kw_digest_key_load(path2, &k1, &error) < 0);
	snprintf(path2, sizeof(path2), "%s/short", tmpdir);
	int fd = open(path2, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "abc", 3), 3);
	close(fd);
	assert_true(kw_digest_key_load(path2, &k1, &error) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),        cmocka_unit_test(test_forms),
		cmocka_unit_test(test_checksum_rejects), cmocka_unit_test(test_id_parse),
		cmocka_unit_test(test_secrets_differ),   cmocka_unit_test(test_key_and_digest),
	};
	char tmpl[] = "/tmp/kw-unit-XXXXXX";
	int ret;

	if (mkdtemp(tmpl) == NULL)
		return 1;
	snprintf(tmpdir, sizeof(tmpdir), "%s", tmpl);
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		ret = 1;
	return ret;
}
