/* test_siphash.c: kw_siphash128() is SipHash-2-4 with a 128-bit output exactly: the paper's
 * first test vector, and OpenSSL's SIPHASH MAC for many keys and every message length up to
 * 100 bytes (the validator's memo of verified tokens, validator/daemon_check.c, relies on it
 * being a keyed pseudorandom function, not merely a hash). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "siphash.h"

static void reference(const uint8_t key[16], const uint8_t *msg, size_t len, uint8_t out[16])
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
	EVP_MAC_CTX *ctx;
	size_t size = 16, outlen = 0;
	OSSL_PARAM params[] = { OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
				OSSL_PARAM_construct_end() };

	assert_non_null(mac);
	ctx = EVP_MAC_CTX_new(mac);
	assert_non_null(ctx);
	assert_int_equal(EVP_MAC_init(ctx, key, 16, params), 1);
	assert_int_equal(EVP_MAC_update(ctx, msg, len), 1);
	assert_int_equal(EVP_MAC_final(ctx, out, &outlen, 16), 1);
	assert_int_equal(outlen, 16);
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
}

/* The 128-bit vectors of the reference implementation: key 00..0f, messages 00..(n-1). */
static void test_paper_vectors(void **state)
{
	(void)state;
	static const uint8_t empty[16] = { 0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25, 0xa8, 0xe6,
					   0x6d, 0xf6, 0x72, 0x14, 0xc7, 0x55, 0x02, 0x93 };
	uint8_t key[16], msg[64], got[16], want[16];

	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	kw_siphash128(key, msg, 0, got);
	assert_memory_equal(got, empty, 16);
	for (size_t n = 0; n < sizeof(msg); n++) {
		kw_siphash128(key, msg, n, got);
		reference(key, msg, n, want);
		assert_memory_equal(got, want, 16);
	}
}

static void test_random_keys_and_lengths(void **state)
{
	(void)state;
	uint8_t key[16], msg[100], got[16], want[16], other[16];

	for (int k = 0; k < 50; k++) {
		assert_int_equal(RAND_bytes(key, sizeof(key)), 1);
		assert_int_equal(RAND_bytes(msg, sizeof(msg)), 1);
		for (size_t n = 0; n <= sizeof(msg); n++) {
			kw_siphash128(key, msg, n, got);
			reference(key, msg, n, want);
			assert_memory_equal(got, want, 16);
		}
		/* another key, same message: another output */
		key[0] ^= 1;
		kw_siphash128(key, msg, sizeof(msg), other);
		assert_memory_not_equal(got, other, 16);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paper_vectors),
		cmocka_unit_test(test_random_keys_and_lengths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
