/* siphash.h: SipHash-2-4 with a 128-bit output (Aumasson and Bernstein, "SipHash: a fast
 * short-input PRF", 2012), a keyed pseudorandom function. The validator keys it with random
 * bytes of its own to remember which token texts it has already verified
 * (validator/daemon_check.c); tests/unit/test_siphash.c checks it against OpenSSL's. */
#ifndef KW_SIPHASH_H
#define KW_SIPHASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KW_SIPHASH_KEY_LEN 16
#define KW_SIPHASH_LEN 16

void kw_siphash128(const uint8_t key[KW_SIPHASH_KEY_LEN], const void *msg, size_t len,
		   uint8_t out[KW_SIPHASH_LEN]);
/* Compares two outputs in constant time. */
bool kw_siphash_equal(const uint8_t a[KW_SIPHASH_LEN], const uint8_t b[KW_SIPHASH_LEN]);

#endif
