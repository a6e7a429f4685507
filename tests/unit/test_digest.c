/* test_digest.c: kw_token_digest() is HMAC-SHA-256 exactly (RFC 2104), as OpenSSL's EVP_MAC
 * computes it, for many keys, ids and secrets: the validator's fast path (precomputed SHA-256
 * states, lib/token.c) must never change a stored digest's meaning. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "token.h"

static void reference(const uint8_t key[KW_KEY_LEN], uint64_t id, const struct kw_secret *secret,
		      uint8_t out[KW_DIGEST_LEN])
{
	uint8_t msg[3 + 8 + KW_SECRET_RANDOM_LEN];
	size_t outlen = 0;

	memcpy(msg, "kw1", 3);
	for (int i = 0; i < 8; i++)
		msg[3 + i] = (uint8_t)(id >> (56 - 8 * i));
	memcpy(msg + 11, secret->random, KW_SECRET_RANDOM_LEN);
	assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, KW_KEY_LEN, msg,
				  sizeof(msg), out, KW_DIGEST_LEN, &outlen));
	assert_int_equal(outlen, KW_DIGEST_LEN);
}

static void test_digest_is_hmac_sha256(void **state)
{
	(void)state;
	char dir[] = "/tmp/kw-digest.XXXXXX", path[64];
	const char *error = NULL;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/key", dir);
	for (int k = 0; k < 20; k++) {
		uint8_t key[KW_KEY_LEN], got[KW_DIGEST_LEN], want[KW_DIGEST_LEN];
		struct kw_digest_key *dk = NULL;
		int fd;

		if (k == 0)
			memset(key, 0, sizeof(key));
		else if (k == 1)
			memset(key, 0xff, sizeof(key));
		else
			assert_int_equal(RAND_bytes(key, sizeof(key)), 1);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, key, sizeof(key)), (ssize_t)sizeof(key));
		close(fd);
		assert_int_equal(kw_digest_key_load(path, &dk, &error), 0);
		for (int i = 0; i < 50; i++) {
			struct kw_secret s;
			uint64_t id = i == 0 ? 1 : i == 1 ? KW_TOKEN_ID_MAX : (uint64_t)rand() + 1;

			assert_int_equal(RAND_bytes(s.random, sizeof(s.random)), 1);
			assert_int_equal(kw_token_digest(dk, id, &s, got), 0);
			reference(key, id, &s, want);
			assert_memory_equal(got, want, KW_DIGEST_LEN);
			/* Twice with the same key: the precomputed states are not consumed. */
			assert_int_equal(kw_token_digest(dk, id, &s, got), 0);
			assert_memory_equal(got, want, KW_DIGEST_LEN);
		}
		kw_digest_key_free(&dk);
		assert_null(dk);
	}
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_digest_is_hmac_sha256),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
