/* token.c: token text, checksum, pepper key and HMAC digests (see token.h). The key file is
 * read through secret.h. */
#include "config.h"

/* kw_token_digest() computes HMAC-SHA-256 from two precomputed SHA-256 states through the
 * low-level SHA256_* functions, deprecated in OpenSSL 3 but kept: EVP_MAC costs three times as
 * much per digest (provider dispatch, a context duplicated with malloc and free), and the
 * validator pays it on every CHECK (doc/benchmarks.md). The token checksum likewise. Both work
 * on the stack or on read-only key state, so ssod's worker threads may share a key. */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "error.h"
#include "secret.h"
#include "token.h"

#define HMAC_BLOCK 64 /* SHA-256's block: the key is padded to it */

/* HMAC-SHA-256 (RFC 2104) with the key absorbed: SHA-256 states after one block of
 * key XOR ipad and key XOR opad. Secret (key-derived); wiped when freed. Read-only after load. */
struct kw_digest_key {
	SHA256_CTX inner, outer;
	char fingerprint[2 * KW_KEY_FINGERPRINT_LEN + 1];
};

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int kw_secret_generate(struct kw_secret *secret)
{
	size_t off = 0;

	while (off < sizeof(secret->random)) {
		ssize_t n = getrandom(secret->random + off, sizeof(secret->random) - off, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -EIO;
		}
		off += (size_t)n;
	}
	return 0;
}

void kw_secret_wipe(struct kw_secret *secret)
{
	OPENSSL_cleanse(secret, sizeof(*secret));
}

static void checksum(uint64_t id, const struct kw_secret *secret, uint8_t out[KW_SECRET_CHECK_LEN])
{
	/* SHA-256 through the low-level functions, as for the digest (top of this file): the
	 * validator computes it for every token it is shown. On the stack: ssod's workers parse
	 * tokens at the same time (its REST API). */
	SHA256_CTX ctx;
	uint8_t idbuf[8];
	uint8_t md[SHA256_DIGEST_LENGTH];

	for (int i = 0; i < 8; i++)
		idbuf[i] = (uint8_t)(id >> (56 - 8 * i));
	if (!SHA256_Init(&ctx) || !SHA256_Update(&ctx, "keywarden-v1", 12) ||
	    !SHA256_Update(&ctx, idbuf, sizeof(idbuf)) ||
	    !SHA256_Update(&ctx, secret->random, KW_SECRET_RANDOM_LEN) || !SHA256_Final(md, &ctx))
		memset(md, 0, sizeof(md)); /* cannot happen with a working libcrypto */
	memcpy(out, md, KW_SECRET_CHECK_LEN);
	OPENSSL_cleanse(md, sizeof(md));
	OPENSSL_cleanse(&ctx, sizeof(ctx));
}

void kw_token_format(uint64_t id, const struct kw_secret *secret, char *text)
{
	uint8_t raw[KW_SECRET_RANDOM_LEN + KW_SECRET_CHECK_LEN];
	int n = snprintf(text, KW_TOKEN_TEXT_MAX, "%llu$", (unsigned long long)id);
	char *p = text + n;

	memcpy(raw, secret->random, KW_SECRET_RANDOM_LEN);
	checksum(id, secret, raw + KW_SECRET_RANDOM_LEN);
	/* 36 bytes = 12 groups of 3 bytes -> 48 characters, no padding needed. */
	for (size_t i = 0; i < sizeof(raw); i += 3) {
		uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
		*p++ = b64url[(v >> 18) & 63];
		*p++ = b64url[(v >> 12) & 63];
		*p++ = b64url[(v >> 6) & 63];
		*p++ = b64url[v & 63];
	}
	*p = '\0';
	OPENSSL_cleanse(raw, sizeof(raw));
}

/* Base64url digit values plus one (0: not a digit): a table rather than comparisons, because
 * the validator decodes every secret it is shown, and branches on random digits mispredict. */
static const uint8_t b64url_plus1[256] = {
	['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,
	['H'] = 8,  ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14,
	['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21,
	['V'] = 22, ['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28,
	['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35,
	['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42,
	['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49,
	['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
	['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['-'] = 63,
	['_'] = 64,
};

static int b64url_value(unsigned char c)
{
	return (int)b64url_plus1[c] - 1;
}

static int parse_id(const char *p, size_t len, uint64_t *id_r)
{
	uint64_t id = 0;

	if (len == 0 || len > 15 || p[0] == '0')
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -EINVAL;
		id = id * 10 + (uint64_t)(p[i] - '0');
	}
	if (id == 0 || id > KW_TOKEN_ID_MAX)
		return -EINVAL;
	*id_r = id;
	return 0;
}

int kw_token_id_parse(const char *text, uint64_t *id_r)
{
	return parse_id(text, strlen(text), id_r);
}

int kw_token_locate(const char *text, size_t len, uint64_t *id_r, const char **token_r,
		    size_t *token_len_r)
{
	const char *p = text, *end = text + len, *sep;
	uint64_t id;

	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (end - p > 7 && strncasecmp(p, "apikey", 6) == 0 && (p[6] == ' ' || p[6] == '\t')) {
		p += 7;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
	}
	for (sep = p; sep < end && *sep >= '0' && *sep <= '9'; sep++)
		;
	if (sep == end || (*sep != '$' && *sep != '_'))
		return -EINVAL;
	if (parse_id(p, (size_t)(sep - p), &id) < 0)
		return -EINVAL;
	if (end - (sep + 1) != KW_SECRET_TEXT_LEN)
		return -EINVAL;
	*id_r = id;
	*token_r = p;
	*token_len_r = (size_t)(end - p);
	return 0;
}

int kw_token_parse(const char *text, size_t len, uint64_t *id_r, struct kw_secret *secret_r)
{
	uint8_t raw[KW_SECRET_RANDOM_LEN + KW_SECRET_CHECK_LEN];
	uint8_t want[KW_SECRET_CHECK_LEN];
	struct kw_secret secret;
	const char *p;
	size_t tlen;
	uint64_t id;
	int ret = -EINVAL;

	if (kw_token_locate(text, len, &id, &p, &tlen) < 0)
		return -EINVAL;
	p += tlen - KW_SECRET_TEXT_LEN;
	for (size_t i = 0, o = 0; i < KW_SECRET_TEXT_LEN; i += 4, o += 3) {
		int a = b64url_value((unsigned char)p[i]),
		    b = b64url_value((unsigned char)p[i + 1]);
		int c = b64url_value((unsigned char)p[i + 2]),
		    d = b64url_value((unsigned char)p[i + 3]);
		if ((a | b | c | d) < 0)
			goto out;
		uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
		raw[o] = (uint8_t)(v >> 16);
		raw[o + 1] = (uint8_t)(v >> 8);
		raw[o + 2] = (uint8_t)v;
	}
	memcpy(secret.random, raw, KW_SECRET_RANDOM_LEN);
	checksum(id, &secret, want);
	if (CRYPTO_memcmp(want, raw + KW_SECRET_RANDOM_LEN, KW_SECRET_CHECK_LEN) != 0)
		goto out;
	*id_r = id;
	*secret_r = secret;
	ret = 0;
out:
	OPENSSL_cleanse(raw, sizeof(raw));
	kw_secret_wipe(&secret);
	return ret;
}

static int write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int kw_digest_key_create(const char *path, const char **error_r)
{
	uint8_t key[KW_KEY_LEN];
	struct kw_secret rnd;
	int fd, ret;

	if (kw_secret_generate(&rnd) < 0) {
		*error_r = "cannot read random bytes from the kernel";
		return -EIO;
	}
	memcpy(key, rnd.random, sizeof(key));
	kw_secret_wipe(&rnd);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		*error_r = errno == EEXIST ? "key file already exists" : "cannot create key file";
		goto out;
	}
	ret = write_all(fd, key, sizeof(key));
	if (ret == 0 && fsync(fd) < 0)
		ret = -errno;
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	if (ret < 0) {
		*error_r = "cannot write key file";
		unlink(path);
	}
out:
	OPENSSL_cleanse(key, sizeof(key));
	return ret;
}

/* HMAC-SHA-256 of the concatenation of up to three parts (NULL, 0 for none), from a copy of
 * the keyed states: no allocation, no key schedule, and the key stays read-only. */
static int hmac(const struct kw_digest_key *key, const void *a, size_t a_len, const void *b,
		size_t b_len, const void *c, size_t c_len, uint8_t out[KW_DIGEST_LEN])
{
	uint8_t inner[SHA256_DIGEST_LENGTH];
	SHA256_CTX ctx = key->inner;
	int ok = SHA256_Update(&ctx, a, a_len) && (b == NULL || SHA256_Update(&ctx, b, b_len)) &&
		 (c == NULL || SHA256_Update(&ctx, c, c_len)) && SHA256_Final(inner, &ctx);

	ctx = key->outer;
	ok = ok && SHA256_Update(&ctx, inner, sizeof(inner)) && SHA256_Final(out, &ctx);
	OPENSSL_cleanse(&ctx, sizeof(ctx));
	OPENSSL_cleanse(inner, sizeof(inner));
	return ok ? 0 : -EIO;
}

int kw_digest_key_load(const char *path, struct kw_digest_key **key_r, const char **error_r)
{
	static const char fp_label[] = "keywarden key fingerprint v1";
	uint8_t key[KW_KEY_LEN], fp[KW_DIGEST_LEN], pad[HMAC_BLOCK];
	struct kw_digest_key *dk = NULL;
	const char *why = NULL;
	size_t len = 0;
	int ret;

	_Static_assert(KW_KEY_LEN <= HMAC_BLOCK, "the key fits one SHA-256 block");

	ret = kw_secret_file_read(path, key, sizeof(key), &len, &why);
	if (ret == -ENOENT)
		why = "is missing (run 'keywarden init')";
	if (ret == 0 && len != KW_KEY_LEN) {
		why = "has the wrong size";
		ret = -EINVAL;
	}
	if (ret < 0) {
		*error_r = kw_error_format("key file %s", why);
		goto out;
	}
	ret = -EIO;
	dk = calloc(1, sizeof(*dk));
	if (dk == NULL) {
		*error_r = "cannot set up HMAC";
		goto out;
	}
	memset(pad, 0x36, sizeof(pad));
	for (size_t i = 0; i < KW_KEY_LEN; i++)
		pad[i] ^= key[i];
	if (!SHA256_Init(&dk->inner) || !SHA256_Update(&dk->inner, pad, sizeof(pad))) {
		*error_r = "cannot set up HMAC";
		goto out;
	}
	memset(pad, 0x5c, sizeof(pad));
	for (size_t i = 0; i < KW_KEY_LEN; i++)
		pad[i] ^= key[i];
	if (!SHA256_Init(&dk->outer) || !SHA256_Update(&dk->outer, pad, sizeof(pad)) ||
	    hmac(dk, fp_label, sizeof(fp_label) - 1, NULL, 0, NULL, 0, fp) < 0) {
		*error_r = "cannot set up HMAC";
		goto out;
	}
	for (size_t i = 0; i < KW_KEY_FINGERPRINT_LEN; i++)
		snprintf(dk->fingerprint + 2 * i, 3, "%02x", fp[i]);
	*key_r = dk;
	dk = NULL;
	ret = 0;
out:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(pad, sizeof(pad));
	kw_digest_key_free(&dk);
	return ret;
}

const char *kw_digest_key_fingerprint(const struct kw_digest_key *key)
{
	return key->fingerprint;
}

void kw_digest_key_free(struct kw_digest_key **key)
{
	if (*key == NULL)
		return;
	OPENSSL_cleanse(*key, sizeof(**key));
	free(*key);
	*key = NULL;
}

int kw_token_digest(struct kw_digest_key *key, uint64_t id, const struct kw_secret *secret,
		    uint8_t digest[KW_DIGEST_LEN])
{
	uint8_t idbuf[8];

	for (int i = 0; i < 8; i++)
		idbuf[i] = (uint8_t)(id >> (56 - 8 * i));
	return hmac(key, "kw1", 3, idbuf, sizeof(idbuf), secret->random, sizeof(secret->random),
		    digest);
}

bool kw_digest_equal(const uint8_t a[KW_DIGEST_LEN], const uint8_t b[KW_DIGEST_LEN])
{
	return CRYPTO_memcmp(a, b, KW_DIGEST_LEN) == 0;
}
