/* siphash.c: SipHash-2-4, 128-bit output (see siphash.h), written from the paper's
 * specification: four 64-bit words of state, two rounds per 8-byte word of the message, four
 * rounds to finish each half of the output. Constant time: no branch or index depends on the
 * key or the message, only on the message's length. */
#include "config.h"

#include <string.h>

#include <openssl/crypto.h>

#include "siphash.h"

static inline uint64_t rotl(uint64_t x, unsigned b)
{
	return (x << b) | (x >> (64 - b));
}

static inline uint64_t load_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static inline void store_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

#define SIPROUND                                                                                   \
	do {                                                                                       \
		v0 += v1;                                                                          \
		v1 = rotl(v1, 13);                                                                 \
		v1 ^= v0;                                                                          \
		v0 = rotl(v0, 32);                                                                 \
		v2 += v3;                                                                          \
		v3 = rotl(v3, 16);                                                                 \
		v3 ^= v2;                                                                          \
		v0 += v3;                                                                          \
		v3 = rotl(v3, 21);                                                                 \
		v3 ^= v0;                                                                          \
		v2 += v1;                                                                          \
		v1 = rotl(v1, 17);                                                                 \
		v1 ^= v2;                                                                          \
		v2 = rotl(v2, 32);                                                                 \
	} while (0)

void kw_siphash128(const uint8_t key[KW_SIPHASH_KEY_LEN], const void *msg, size_t len,
		   uint8_t out[KW_SIPHASH_LEN])
{
	const uint8_t *p = msg, *end = p + (len & ~(size_t)7);
	uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
	uint64_t v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL;
	uint64_t v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;
	uint8_t last[8] = { 0 };
	uint64_t m;

	v1 ^= 0xee; /* the 128-bit variant */
	for (; p < end; p += 8) {
		m = load_le64(p);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	/* the last word: the 0 to 7 bytes left, and the length's low byte on top */
	memcpy(last, p, len & 7);
	m = load_le64(last) | (uint64_t)(len & 0xff) << 56;
	v3 ^= m;
	SIPROUND;
	SIPROUND;
	v0 ^= m;
	v2 ^= 0xee;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	store_le64(out, v0 ^ v1 ^ v2 ^ v3);
	v1 ^= 0xdd;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	store_le64(out + 8, v0 ^ v1 ^ v2 ^ v3);
	explicit_bzero(last, sizeof(last)); /* the message's tail: a token's last characters */
}

bool kw_siphash_equal(const uint8_t a[KW_SIPHASH_LEN], const uint8_t b[KW_SIPHASH_LEN])
{
	return CRYPTO_memcmp(a, b, KW_SIPHASH_LEN) == 0;
}
