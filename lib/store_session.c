/* store_session.c: the browser's SSO sessions (schema/007_web_sessions.sql): the cookie given
 * after an accepted Response, its check on each API request (lifetime, idle time, ended, the
 * user still allowed to act), and logout. See store.h. The cookie has the form of a token,
 * "<session id>$<secret>" (token.h: checksum, HMAC under the digest key); only the HMAC is
 * stored. Whatever ends the user's SSO sessions (kw_store_sso_sessions_end(): SLO, sso revoke,
 * a revocation or downgrade by assertion) ends the cookie's session with them. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "audit.h"
#include "store.h"
#include "store_private.h"
#include "store_sql.h"
#include "token.h"

static void hex(const uint8_t *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", in[i]);
}

int kw_store_session_start(struct kw_store *store, struct kw_digest_key *key, const char *login,
			   int64_t now, int64_t lifetime, char *cookie_r, uint64_t *id_r,
			   const char **error_r)
{
	struct kw_user u;
	struct kw_secret secret, csrf_rnd;
	uint8_t digest[KW_DIGEST_LEN];
	char csrf[KW_CSRF_TEXT_LEN + 1], details[128], target[KW_LOGIN_MAX + 8];
	sqlite3_stmt *st;
	uint64_t id;
	int ret;

	memset(&secret, 0, sizeof(secret));
	memset(digest, 0, sizeof(digest));
	if (kw_store_begin(store) < 0)
		return kw_store_db_fail(store, error_r, "cannot start a transaction");
	if ((ret = kw_store_user_get(store, login, &u, error_r)) < 0)
		goto out;
	if (!u.sso || !u.enabled || strcmp(u.sso_state, "revoked") == 0) {
		ret = kw_store_fail(store, -EPERM, error_r, "user '%s' may not sign in", login);
		goto out;
	}
	/* the SAML session the accepted Response has just opened (sso_login.c) */
	st = kw_store_stmt(store, "SELECT max(s.id) FROM sso_session s WHERE s.user_id = ?1 AND "
				  "s.ended IS NULL AND NOT EXISTS (SELECT 1 FROM sso_web_session w "
				  "WHERE w.session_id = s.id)");
	if (st == NULL)
		goto dbfail;
	sqlite3_bind_int64(st, 1, u.id);
	if (sqlite3_step(st) != SQLITE_ROW)
		goto dbfail;
	if (sqlite3_column_type(st, 0) == SQLITE_NULL) {
		sqlite3_reset(st);
		ret = kw_store_fail(store, -ENOENT, error_r, "user '%s' has no open SSO session",
				    login);
		goto out;
	}
	id = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (kw_secret_generate(&secret) < 0 || kw_secret_generate(&csrf_rnd) < 0) {
		ret = kw_store_fail(store, -EIO, error_r, "cannot read random bytes");
		goto out;
	}
	hex(csrf_rnd.random, KW_CSRF_TEXT_LEN / 2, csrf);
	kw_secret_wipe(&csrf_rnd);
	if ((ret = kw_token_digest(key, id, &secret, digest)) < 0) {
		ret = kw_store_fail(store, ret, error_r, "cannot compute the session digest");
		goto out;
	}
	st = kw_store_stmt(store, "INSERT INTO sso_web_session (session_id, cookie_digest, csrf, "
				  "last_seen, expires) VALUES (?1, ?2, ?3, ?4, ?5)");
	if (st == NULL)
		goto dbfail;
	sqlite3_bind_int64(st, 1, (int64_t)id);
	sqlite3_bind_blob(st, 2, digest, KW_DIGEST_LEN, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, csrf, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now);
	sqlite3_bind_int64(st, 5, now + lifetime);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto dbfail;
	sqlite3_reset(st);
	snprintf(details, sizeof(details), "{\"session\":%llu,\"lifetime\":%lld}",
		 (unsigned long long)id, (long long)lifetime);
	snprintf(target, sizeof(target), "user:%s", login);
	if (kw_audit_append(store, now, login, "sso.session_start", target, details) < 0 ||
	    kw_store_commit(store) < 0)
		goto dbfail;
	kw_token_format(id, &secret, cookie_r);
	*id_r = id;
	ret = 0;
	goto wipe;
dbfail:
	ret = kw_store_db_fail(store, error_r, "cannot start the session");
out:
	kw_store_rollback(store);
wipe:
	kw_secret_wipe(&secret);
	OPENSSL_cleanse(digest, sizeof(digest));
	OPENSSL_cleanse(csrf, sizeof(csrf));
	return ret;
}

int kw_store_session_auth(struct kw_store *store, struct kw_digest_key *key, const char *text,
			  size_t len, int64_t now, int64_t idle, struct kw_session_auth *auth_r,
			  const char **why_r, const char **error_r)
{
	struct kw_secret secret;
	uint8_t digest[KW_DIGEST_LEN], stored[KW_DIGEST_LEN];
	struct kw_session_auth a;
	sqlite3_stmt *st;
	uint64_t id;
	int64_t last_seen, expires;
	bool ended, usable;
	int ret, rc;

	memset(&a, 0, sizeof(a));
	memset(stored, 0, sizeof(stored));
	*why_r = "invalid";
	if (kw_token_parse(text, len, &id, &secret) < 0)
		return kw_store_fail(store, -EACCES, error_r, "malformed session cookie");
	ret = kw_token_digest(key, id, &secret, digest);
	kw_secret_wipe(&secret);
	if (ret < 0) {
		ret = kw_store_fail(store, -EIO, error_r, "cannot compute the session digest");
		goto out;
	}
	st = kw_store_stmt(store,
			   "SELECT w.cookie_digest, w.csrf, s.login_time, w.last_seen, "
			   "w.expires, s.ended IS NOT NULL, u.login, u.enabled = 1 AND "
			   "NOT " KW_SQL_REVOKED_SSO(
				   "u") " FROM sso_web_session w JOIN sso_session s "
					"ON s.id = w.session_id JOIN user u ON u.id = s.user_id "
					"WHERE s.id = ?1");
	if (st == NULL) {
		ret = kw_store_db_fail(store, error_r, "session lookup");
		goto out;
	}
	sqlite3_bind_int64(st, 1, (int64_t)id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == KW_DIGEST_LEN) {
		memcpy(stored, sqlite3_column_blob(st, 0), KW_DIGEST_LEN);
		kw_store_copy_text(a.csrf, sizeof(a.csrf), st, 1);
		a.created = sqlite3_column_int64(st, 2);
		last_seen = sqlite3_column_int64(st, 3);
		expires = sqlite3_column_int64(st, 4);
		ended = sqlite3_column_int(st, 5) != 0;
		kw_store_copy_text(a.login, sizeof(a.login), st, 6);
		usable = sqlite3_column_int(st, 7) != 0;
	} else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
		sqlite3_reset(st);
		ret = kw_store_fail(store, -EACCES, error_r, "session %llu: unknown",
				    (unsigned long long)id);
		goto out;
	} else {
		sqlite3_reset(st);
		ret = kw_store_db_fail(store, error_r, "session lookup");
		goto out;
	}
	sqlite3_reset(st);
	if (!kw_digest_equal(digest, stored)) {
		ret = kw_store_fail(store, -EACCES, error_r, "session %llu: wrong secret",
				    (unsigned long long)id);
		goto out;
	}
	*why_r = "ended";
	if (ended || !usable) {
		ret = kw_store_fail(store, -EACCES, error_r,
				    "session %llu has ended (logout, SLO or SSO revocation)%s",
				    (unsigned long long)id,
				    usable ? "" : " or its user may not act");
		goto out;
	}
	if (now >= expires || now - last_seen >= idle) {
		*why_r = "expired";
		ret = kw_store_fail(store, -EACCES, error_r, "session %llu has expired (%s)",
				    (unsigned long long)id, now >= expires ? "lifetime" : "idle");
		goto out;
	}
	st = kw_store_stmt(store, "UPDATE sso_web_session SET last_seen = ?2 WHERE session_id = ?1 "
				  "AND last_seen < ?2");
	if (st != NULL && kw_store_begin_batch(store) == 0) {
		sqlite3_bind_int64(st, 1, (int64_t)id);
		sqlite3_bind_int64(st, 2, now);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc == SQLITE_DONE)
			(void)kw_store_commit(store);
		else
			kw_store_rollback(store);
	}
	a.session_id = id;
	*auth_r = a;
	*why_r = NULL;
	ret = 0;
out:
	OPENSSL_cleanse(&a, sizeof(a));
	OPENSSL_cleanse(digest, sizeof(digest));
	OPENSSL_cleanse(stored, sizeof(stored));
	return ret;
}

int kw_store_session_end(struct kw_store *store, uint64_t id, const char *actor, int64_t now,
			 const char **error_r)
{
	char details[64], target[32];
	sqlite3_stmt *st;

	if (kw_store_begin(store) < 0)
		return kw_store_db_fail(store, error_r, "cannot start a transaction");
	st = kw_store_stmt(store, "UPDATE sso_session SET ended = ?2 WHERE id = ?1 AND "
				  "ended IS NULL");
	if (st == NULL)
		goto dbfail;
	sqlite3_bind_int64(st, 1, (int64_t)id);
	sqlite3_bind_int64(st, 2, now);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto dbfail;
	sqlite3_reset(st);
	snprintf(details, sizeof(details), "{\"reason\":\"logout\"}");
	snprintf(target, sizeof(target), "session:%llu", (unsigned long long)id);
	if (kw_audit_append(store, now, actor, "sso.session_end", target, details) < 0 ||
	    kw_store_commit(store) < 0)
		goto dbfail;
	return 0;
dbfail:
	kw_store_rollback(store);
	return kw_store_db_fail(store, error_r, "cannot end the session");
}
