/* token.h: the token format and its digests.
 *
 * Wire form: <id>$<secret> (also <id>_<secret>, optionally behind "APIKey "). The id is a
 * decimal integer, the public handle of the token. The secret is 48 characters of base64url:
 * 32 bytes from the OS CSPRNG followed by a 4-byte checksum (the first bytes of
 * SHA-256("keywarden-v1" || id || random)), so that a mistyped, truncated or invented token is
 * refused before any lookup, and a leaked one can be recognised by a scanner.
 *
 * Only HMAC-SHA-256(pepper, id || random) is ever stored. Secrets live in struct kw_secret,
 * which callers wipe with kw_secret_wipe(). */
#ifndef KW_TOKEN_H
#define KW_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KW_SECRET_RANDOM_LEN 32
#define KW_SECRET_CHECK_LEN 4
#define KW_SECRET_TEXT_LEN 48 /* base64url of 36 bytes, no padding */
#define KW_DIGEST_LEN 32
#define KW_KEY_LEN 32
#define KW_TOKEN_ID_MAX 999999999999999ULL /* 15 digits */
/* Longest token text we print: 15 digits, '$', the secret, NUL. */
#define KW_TOKEN_TEXT_MAX (15 + 1 + KW_SECRET_TEXT_LEN + 1)

struct kw_secret {
	uint8_t random[KW_SECRET_RANDOM_LEN];
};

struct kw_digest_key;

/* Fills a secret from the OS CSPRNG. Returns 0 or -EIO. */
int kw_secret_generate(struct kw_secret *secret);
void kw_secret_wipe(struct kw_secret *secret);

/* Writes the wire form of (id, secret) into text (at least KW_TOKEN_TEXT_MAX bytes). */
void kw_token_format(uint64_t id, const struct kw_secret *secret, char *text);

/* Parses a token as a service receives it: bare, or "APIKey <token>" (scheme
 * case-insensitive, surrounding blanks allowed), with '$' or '_' after the id. Checks the
 * checksum. Returns 0, or -EINVAL for anything malformed; never looks at a database. */
int kw_token_parse(const char *text, size_t len, uint64_t *id_r, struct kw_secret *secret_r);

/* The first, cheap part of kw_token_parse(): the token's own text within text (blanks and the
 * "APIKey" scheme stripped: "<id>$<secret>" or "<id>_<secret>") and its id, when the id parses
 * and the secret has the right length. Its digits and checksum are not checked. Returns 0 or
 * -EINVAL. */
int kw_token_locate(const char *text, size_t len, uint64_t *id_r, const char **token_r,
		    size_t *token_len_r);

/* Parses a public token id ("7711"): 1..KW_TOKEN_ID_MAX, digits only. */
int kw_token_id_parse(const char *text, uint64_t *id_r);

/* The pepper key: kw_digest_key_create() writes a new random key file (mode 0600, fails if it
 * exists); kw_digest_key_load() reads one through kw_secret_file_read() (secret.h: no FIFO,
 * no symbolic link, owned by this user or root, mode 0600) and refuses any other size. The
 * returned key is owned by the caller: kw_digest_key_free(). error_r: a constant, or a buffer
 * of this module valid until the next load. */
int kw_digest_key_create(const char *path, const char **error_r);
int kw_digest_key_load(const char *path, struct kw_digest_key **key_r, const char **error_r);
/* The key's public name: the first KW_KEY_FINGERPRINT_LEN bytes of
 * HMAC-SHA-256(key, "keywarden key fingerprint v1") in lowercase hex. It tells keys apart and
 * reveals nothing of them; the database records it (kw_store_key_check(), store.h). */
#define KW_KEY_FINGERPRINT_LEN 16
const char *kw_digest_key_fingerprint(const struct kw_digest_key *key);
void kw_digest_key_free(struct kw_digest_key **key);

/* digest = HMAC-SHA-256(key, "kw1" || id as 8 bytes big-endian || random). The key is only
 * read: threads may share it. */
int kw_token_digest(struct kw_digest_key *key, uint64_t id, const struct kw_secret *secret,
		    uint8_t digest[KW_DIGEST_LEN]);

/* Constant-time equality of two digests. */
bool kw_digest_equal(const uint8_t a[KW_DIGEST_LEN], const uint8_t b[KW_DIGEST_LEN]);

#endif
