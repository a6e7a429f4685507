/* token.c: token text, checksum, pepper key and HMAC digests (see token.h). The key file is
 * read through secret.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "secret.h"
#include "token.h"

struct kw_digest_key {
	EVP_MAC_CTX *keyed; /* HMAC context with the key set; duplicated per digest */
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

/* The checksum's digest: fetched once for the process, and one context per thread, reused for
 * every token (the validator checks this before any lookup). Per thread because
 * keywarden-ssod's workers parse tokens at the same time (its REST API); a thread's context is
 * freed when the thread ends. */
static pthread_once_t checksum_once = PTHREAD_ONCE_INIT;
static pthread_key_t checksum_key;
static EVP_MD *sha256;

static void checksum_ctx_free(void *ctx)
{
	EVP_MD_CTX_free(ctx);
}

static void checksum_init(void)
{
	sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (pthread_key_create(&checksum_key, checksum_ctx_free) != 0)
		abort();
}

static void checksum(uint64_t id, const struct kw_secret *secret, uint8_t out[KW_SECRET_CHECK_LEN])
{
	EVP_MD_CTX *ctx;
	uint8_t idbuf[8];
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	pthread_once(&checksum_once, checksum_init);
	ctx = pthread_getspecific(checksum_key);
	if (ctx == NULL && (ctx = EVP_MD_CTX_new()) != NULL &&
	    pthread_setspecific(checksum_key, ctx) != 0) {
		EVP_MD_CTX_free(ctx);
		ctx = NULL;
	}
	for (int i = 0; i < 8; i++)
		idbuf[i] = (uint8_t)(id >> (56 - 8 * i));
	if (sha256 == NULL || ctx == NULL || !EVP_DigestInit_ex2(ctx, sha256, NULL) ||
	    !EVP_DigestUpdate(ctx, "keywarden-v1", 12) ||
	    !EVP_DigestUpdate(ctx, idbuf, sizeof(idbuf)) ||
	    !EVP_DigestUpdate(ctx, secret->random, KW_SECRET_RANDOM_LEN) ||
	    !EVP_DigestFinal_ex(ctx, md, &mdlen))
		memset(md, 0, sizeof(md)); /* cannot happen with a working libcrypto */
	memcpy(out, md, KW_SECRET_CHECK_LEN);
	OPENSSL_cleanse(md, sizeof(md));
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

static int b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
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

int kw_token_parse(const char *text, size_t len, uint64_t *id_r, struct kw_secret *secret_r)
{
	uint8_t raw[KW_SECRET_RANDOM_LEN + KW_SECRET_CHECK_LEN];
	uint8_t want[KW_SECRET_CHECK_LEN];
	struct kw_secret secret;
	const char *p = text, *end = text + len, *sep;
	uint64_t id;
	int ret = -EINVAL;

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
	p = sep + 1;
	if (end - p != KW_SECRET_TEXT_LEN)
		return -EINVAL;
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

int kw_digest_key_load(const char *path, struct kw_digest_key **key_r, const char **error_r)
{
	static const char fp_label[] = "keywarden key fingerprint v1";
	static char error_buf[128];
	uint8_t key[KW_KEY_LEN], fp[KW_DIGEST_LEN];
	struct kw_digest_key *dk = NULL;
	OSSL_PARAM params[2];
	EVP_MAC *mac = NULL;
	const char *why = NULL;
	size_t len = 0, fplen = 0;
	int ret;

	ret = kw_secret_file_read(path, key, sizeof(key), &len, &why);
	if (ret == -ENOENT)
		why = "is missing (run 'keywarden init')";
	if (ret == 0 && len != KW_KEY_LEN) {
		why = "has the wrong size";
		ret = -EINVAL;
	}
	if (ret < 0) {
		snprintf(error_buf, sizeof(error_buf), "key file %s", why);
		*error_r = error_buf;
		goto out;
	}
	ret = -EIO;
	mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	dk = calloc(1, sizeof(*dk));
	if (mac == NULL || dk == NULL || (dk->keyed = EVP_MAC_CTX_new(mac)) == NULL) {
		*error_r = "cannot set up HMAC";
		goto out;
	}
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (!EVP_MAC_init(dk->keyed, key, KW_KEY_LEN, params) ||
	    !EVP_MAC_update(dk->keyed, (const uint8_t *)fp_label, sizeof(fp_label) - 1) ||
	    !EVP_MAC_final(dk->keyed, fp, &fplen, sizeof(fp)) || fplen != sizeof(fp)) {
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
	EVP_MAC_free(mac);
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
	EVP_MAC_CTX_free((*key)->keyed);
	free(*key);
	*key = NULL;
}

int kw_token_digest(struct kw_digest_key *key, uint64_t id, const struct kw_secret *secret,
		    uint8_t digest[KW_DIGEST_LEN])
{
	uint8_t idbuf[8];
	size_t outlen = 0;
	int ok;

	for (int i = 0; i < 8; i++)
		idbuf[i] = (uint8_t)(id >> (56 - 8 * i));
	/* Re-initialising with a NULL key restarts HMAC from the precomputed key state: no
	 * allocation and no key schedule per digest, which is what the validator's CHECK path
	 * pays. This is why a key must not be shared between threads. */
	ok = EVP_MAC_init(key->keyed, NULL, 0, NULL) &&
	     EVP_MAC_update(key->keyed, (const uint8_t *)"kw1", 3) &&
	     EVP_MAC_update(key->keyed, idbuf, sizeof(idbuf)) &&
	     EVP_MAC_update(key->keyed, secret->random, sizeof(secret->random)) &&
	     EVP_MAC_final(key->keyed, digest, &outlen, KW_DIGEST_LEN);
	return ok && outlen == KW_DIGEST_LEN ? 0 : -EIO;
}

bool kw_digest_equal(const uint8_t a[KW_DIGEST_LEN], const uint8_t b[KW_DIGEST_LEN])
{
	return CRYPTO_memcmp(a, b, KW_DIGEST_LEN) == 0;
}
