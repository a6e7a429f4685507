/* audit.c: the hash chain of the audit table (see audit.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "audit.h"
#include "store_private.h"

#define HASH_LEN 32

static void put_field(EVP_MD_CTX *ctx, const void *data, size_t len)
{
	uint8_t lenbuf[8];

	for (int i = 0; i < 8; i++)
		lenbuf[i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
	EVP_DigestUpdate(ctx, lenbuf, sizeof(lenbuf));
	EVP_DigestUpdate(ctx, data, len);
}

static int chain_hash(const uint8_t prev[HASH_LEN], int64_t seq, int64_t time, const char *actor,
		      const char *action, const char *target, const char *details,
		      uint8_t out[HASH_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t num[16];
	unsigned int len = 0;
	int ok;

	if (ctx == NULL)
		return -ENOMEM;
	for (int i = 0; i < 8; i++) {
		num[i] = (uint8_t)((uint64_t)seq >> (56 - 8 * i));
		num[8 + i] = (uint8_t)((uint64_t)time >> (56 - 8 * i));
	}
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	if (ok) {
		EVP_DigestUpdate(ctx, "keywarden-audit-v1", 18);
		EVP_DigestUpdate(ctx, prev, HASH_LEN);
		EVP_DigestUpdate(ctx, num, sizeof(num));
		put_field(ctx, actor, strlen(actor));
		put_field(ctx, action, strlen(action));
		put_field(ctx, target, strlen(target));
		put_field(ctx, details, strlen(details));
		ok = EVP_DigestFinal_ex(ctx, out, &len) && len == HASH_LEN;
	}
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -EIO;
}

int kw_audit_append(struct kw_store *store, int64_t time, const char *actor, const char *action,
		    const char *target, const char *details)
{
	uint8_t prev[HASH_LEN] = {0}, hash[HASH_LEN];
	sqlite3_stmt *st;
	int64_t seq = 1;
	int rc;

	st = kw_store_stmt(store, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1");
	if (st == NULL)
		return -EIO;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		seq = sqlite3_column_int64(st, 0) + 1;
		if (sqlite3_column_bytes(st, 1) == HASH_LEN)
			memcpy(prev, sqlite3_column_blob(st, 1), HASH_LEN);
	} else if (rc != SQLITE_DONE) {
		sqlite3_reset(st);
		return -EIO;
	}
	sqlite3_reset(st);
	if (chain_hash(prev, seq, time, actor, action, target, details, hash) < 0)
		return -EIO;
	st = kw_store_stmt(store, "INSERT INTO audit (seq, time, actor, action, target, details, "
				  "hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int64(st, 2, time);
	sqlite3_bind_text(st, 3, actor, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, action, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, target, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, details, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 7, hash, HASH_LEN, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

int kw_audit_verify(struct kw_store *store, int64_t *count_r, int64_t *bad_seq_r,
		    const char **error_r)
{
	uint8_t prev[HASH_LEN] = {0}, hash[HASH_LEN];
	sqlite3_stmt *st;
	int64_t expect = 1, count = 0;
	int rc, ret = 0;

	st = kw_store_stmt(store, "SELECT seq, time, actor, action, target, details, hash "
				  "FROM audit ORDER BY seq");
	if (st == NULL)
		return kw_store_db_fail(store, error_r, "audit read");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t seq = sqlite3_column_int64(st, 0);
		const char *f[4];

		for (int i = 0; i < 4; i++) {
			f[i] = (const char *)sqlite3_column_text(st, 2 + i);
			if (f[i] == NULL)
				f[i] = "";
		}
		*bad_seq_r = seq;
		if (seq != expect) {
			ret = kw_store_fail(store, -EBADMSG, error_r,
					    "event %lld: expected sequence number %lld (an event "
					    "was deleted or inserted)",
					    (long long)seq, (long long)expect);
			goto out;
		}
		if (chain_hash(prev, seq, sqlite3_column_int64(st, 1), f[0], f[1], f[2], f[3],
			       hash) < 0) {
			ret = kw_store_fail(store, -EIO, error_r, "cannot hash");
			goto out;
		}
		if (sqlite3_column_bytes(st, 6) != HASH_LEN ||
		    CRYPTO_memcmp(hash, sqlite3_column_blob(st, 6), HASH_LEN) != 0) {
			ret = kw_store_fail(store, -EBADMSG, error_r,
					    "event %lld: hash does not match (the event or one "
					    "before it was changed, removed or reordered)",
					    (long long)seq);
			goto out;
		}
		memcpy(prev, hash, HASH_LEN);
		expect++;
		count++;
	}
	if (rc != SQLITE_DONE)
		ret = kw_store_db_fail(store, error_r, "audit read");
	*count_r = count;
out:
	sqlite3_reset(st);
	return ret;
}
