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
	struct kw_db_stmt *st;
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
	kw_db_bind_int64(st, 1, u.id);
	if (kw_db_step(st) != KW_DB_ROW)
		goto dbfail;
	if (kw_db_column_null(st, 0)) {
		kw_db_reset(st);
		ret = kw_store_fail(store, -ENOENT, error_r, "user '%s' has no open SSO session",
				    login);
		goto out;
	}
	id = (uint64_t)kw_db_column_int64(st, 0);
	kw_db_reset(st);
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
	kw_db_bind_int64(st, 1, (int64_t)id);
	kw_db_bind_blob(st, 2, digest, KW_DIGEST_LEN);
	kw_db_bind_text(st, 3, csrf);
	kw_db_bind_int64(st, 4, now);
	kw_db_bind_int64(st, 5, now + lifetime);
	if (kw_db_step(st) != KW_DB_DONE)
		goto dbfail;
	kw_db_reset(st);
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
	struct kw_db_stmt *st;
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
	kw_db_bind_int64(st, 1, (int64_t)id);
	rc = kw_db_step(st);
	if (rc == KW_DB_ROW && kw_db_column_bytes(st, 0) == KW_DIGEST_LEN) {
		memcpy(stored, kw_db_column_blob(st, 0), KW_DIGEST_LEN);
		kw_store_copy_text(a.csrf, sizeof(a.csrf), st, 1);
		a.created = kw_db_column_int64(st, 2);
		last_seen = kw_db_column_int64(st, 3);
		expires = kw_db_column_int64(st, 4);
		ended = kw_db_column_int(st, 5) != 0;
		kw_store_copy_text(a.login, sizeof(a.login), st, 6);
		usable = kw_db_column_int(st, 7) != 0;
	} else if (rc == KW_DB_ROW || rc == KW_DB_DONE) {
		kw_db_reset(st);
		ret = kw_store_fail(store, -EACCES, error_r, "session %llu: unknown",
				    (unsigned long long)id);
		goto out;
	} else {
		kw_db_reset(st);
		ret = kw_store_db_fail(store, error_r, "session lookup");
		goto out;
	}
	kw_db_reset(st);
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
		kw_db_bind_int64(st, 1, (int64_t)id);
		kw_db_bind_int64(st, 2, now);
		rc = kw_db_step(st);
		kw_db_reset(st);
		if (rc == KW_DB_DONE)
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
	struct kw_db_stmt *st;

	if (kw_store_begin(store) < 0)
		return kw_store_db_fail(store, error_r, "cannot start a transaction");
	st = kw_store_stmt(store, "UPDATE sso_session SET ended = ?2 WHERE id = ?1 AND "
				  "ended IS NULL");
	if (st == NULL)
		goto dbfail;
	kw_db_bind_int64(st, 1, (int64_t)id);
	kw_db_bind_int64(st, 2, now);
	if (kw_db_step(st) != KW_DB_DONE)
		goto dbfail;
	kw_db_reset(st);
	st = kw_store_stmt(store, "UPDATE session_token SET ended = ?2 WHERE session_id = ?1 "
				  "AND ended IS NULL");
	if (st == NULL)
		goto dbfail;
	kw_db_bind_int64(st, 1, (int64_t)id);
	kw_db_bind_int64(st, 2, now);
	if (kw_db_step(st) != KW_DB_DONE)
		goto dbfail;
	kw_db_reset(st);
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

/* ---- the 1-hour access / 24-hour refresh tokens ---- */

/* One new token of a family (family 0: it starts one, its own id), inside the caller's
 * transaction: its text into text_r. */
static int new_token(struct kw_store *store, struct kw_digest_key *key, const char *kind,
		     uint64_t *family, uint64_t session_id, int64_t user_id, int64_t role_id,
		     int64_t now, int64_t expires, char *text_r)
{
	struct kw_secret secret;
	uint8_t digest[KW_DIGEST_LEN];
	struct kw_db_stmt *st = kw_store_stmt(
		store,
		"INSERT INTO session_token (kind, family, session_id, user_id, role_id, "
		"digest, created, expires) VALUES (?1, ?2, ?3, ?4, ?5, ?8, ?6, ?7) RETURNING id");
	static const uint8_t zeros[KW_DIGEST_LEN]; /* the digest, until the id is known */
	uint64_t rowid, wire;
	int ret;

	if (st == NULL)
		return -EIO;
	kw_db_bind_text(st, 1, kind);
	kw_db_bind_int64(st, 2, (int64_t)*family);
	kw_db_bind_int64(st, 3, (int64_t)session_id);
	kw_db_bind_int64(st, 4, user_id);
	kw_db_bind_int64(st, 5, role_id);
	kw_db_bind_int64(st, 6, now);
	kw_db_bind_int64(st, 7, expires);
	kw_db_bind_blob(st, 8, zeros, sizeof(zeros));
	ret = kw_db_step(st);
	rowid = ret == KW_DB_ROW ? (uint64_t)kw_db_column_int64(st, 0) : 0;
	kw_db_reset(st);
	if (ret != KW_DB_ROW)
		return -EIO;
	wire = KW_SESSION_TOKEN_ID_BASE + rowid;
	if (wire > KW_TOKEN_ID_MAX || kw_secret_generate(&secret) < 0)
		return -EIO;
	ret = kw_token_digest(key, wire, &secret, digest);
	if (ret == 0) {
		if (*family == 0)
			*family = rowid;
		st = kw_store_stmt(store, "UPDATE session_token SET digest = ?2, family = ?3 "
					  "WHERE id = ?1");
		if (st == NULL) {
			ret = -EIO;
		} else {
			kw_db_bind_int64(st, 1, (int64_t)rowid);
			kw_db_bind_blob(st, 2, digest, KW_DIGEST_LEN);
			kw_db_bind_int64(st, 3, (int64_t)*family);
			ret = kw_db_step(st) == KW_DB_DONE ? 0 : -EIO;
			kw_db_reset(st);
		}
	}
	if (ret == 0)
		kw_token_format(wire, &secret, text_r);
	kw_secret_wipe(&secret);
	OPENSSL_cleanse(digest, sizeof(digest));
	return ret;
}

/* The pair of a family, and its audit event. */
static int new_pair(struct kw_store *store, struct kw_digest_key *key, uint64_t family,
		    uint64_t session_id, int64_t user_id, int64_t role_id, const char *login,
		    const char *action, int64_t now, int64_t access_life, int64_t refresh_life,
		    struct kw_session_pair *p)
{
	char details[160], target[KW_LOGIN_MAX + 8];

	memset(p, 0, sizeof(*p));
	p->family = family;
	p->refresh_expires = now + refresh_life;
	p->access_expires = now + access_life;
	if (new_token(store, key, "refresh", &p->family, session_id, user_id, role_id, now,
		      p->refresh_expires, p->refresh) < 0 ||
	    new_token(store, key, "access", &p->family, session_id, user_id, role_id, now,
		      p->access_expires, p->access) < 0) {
		OPENSSL_cleanse(p, sizeof(*p));
		return -EIO;
	}
	snprintf(details, sizeof(details), "{\"family\":%llu,\"session\":%llu}",
		 (unsigned long long)p->family, (unsigned long long)session_id);
	snprintf(target, sizeof(target), "user:%s", login);
	if (kw_audit_append(store, now, login, action, target, details) < 0) {
		OPENSSL_cleanse(p, sizeof(*p));
		return -EIO;
	}
	return 0;
}

/* The open session's user, if that user may act. */
static int session_user(struct kw_store *store, uint64_t session_id, struct kw_user *u,
			const char **error_r)
{
	struct kw_db_stmt *st = kw_store_stmt(
		store, "SELECT u.login FROM sso_session s JOIN user u ON u.id = s.user_id "
		       "WHERE s.id = ?1 AND s.ended IS NULL");
	char login[KW_LOGIN_MAX + 1];
	int rc;

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "session lookup");
	kw_db_bind_int64(st, 1, (int64_t)session_id);
	rc = kw_db_step(st);
	if (rc != KW_DB_ROW) {
		kw_db_reset(st);
		return rc == KW_DB_DONE
			       ? kw_store_fail(store, -EACCES, error_r, "session %llu has ended",
					       (unsigned long long)session_id)
			       : kw_store_db_fail(store, error_r, "session lookup");
	}
	kw_store_copy_text(login, sizeof(login), st, 0);
	kw_db_reset(st);
	rc = kw_store_user_get(store, login, u, error_r);
	if (rc < 0)
		return rc;
	if (!u->enabled || (u->sso && strcmp(u->sso_state, "revoked") == 0))
		return kw_store_fail(store, -EACCES, error_r, "user '%s' may not act", login);
	return 0;
}

int kw_store_session_tokens_issue(struct kw_store *store, struct kw_digest_key *key,
				  uint64_t session_id, int64_t now, int64_t access_life,
				  int64_t refresh_life, struct kw_session_pair *pair_r,
				  const char **error_r)
{
	struct kw_user u;
	int ret;

	if (kw_store_begin(store) < 0)
		return kw_store_db_fail(store, error_r, "cannot start a transaction");
	if ((ret = session_user(store, session_id, &u, error_r)) < 0)
		goto out;
	if (new_pair(store, key, 0, session_id, u.id, u.role.id, u.login, "session_token.issue",
		     now, access_life, refresh_life, pair_r) < 0 ||
	    kw_store_commit(store) < 0) {
		ret = kw_store_db_fail(store, error_r, "cannot issue tokens");
		OPENSSL_cleanse(pair_r, sizeof(*pair_r));
		goto out;
	}
	return 0;
out:
	kw_store_rollback(store);
	return ret;
}

/* Ends the family's tokens still open, inside the caller's transaction. */
static int end_family(struct kw_store *store, uint64_t family, int64_t now)
{
	struct kw_db_stmt *st = kw_store_stmt(store, "UPDATE session_token SET ended = ?2 WHERE "
						     "family = ?1 AND ended IS NULL");
	int rc;

	if (st == NULL)
		return -EIO;
	kw_db_bind_int64(st, 1, (int64_t)family);
	kw_db_bind_int64(st, 2, now);
	rc = kw_db_step(st);
	kw_db_reset(st);
	return rc == KW_DB_DONE ? 0 : -EIO;
}

struct srow {
	char kind[16];
	uint64_t family, session_id;
	int64_t expires, used, ended;
	uint8_t digest[KW_DIGEST_LEN];
};

/* The row of wire id `wire`: -ENOENT when none (or not a session token's id). */
static int read_row(struct kw_store *store, uint64_t wire, struct srow *r)
{
	struct kw_db_stmt *st;
	int rc;

	if (wire <= KW_SESSION_TOKEN_ID_BASE)
		return -ENOENT;
	st = kw_store_stmt(store, "SELECT kind, family, session_id, expires, "
				  "coalesce(used, 0), coalesce(ended, 0), digest FROM "
				  "session_token WHERE id = ?1");
	if (st == NULL)
		return -EIO;
	kw_db_bind_int64(st, 1, (int64_t)(wire - KW_SESSION_TOKEN_ID_BASE));
	rc = kw_db_step(st);
	if (rc != KW_DB_ROW || kw_db_column_bytes(st, 6) != KW_DIGEST_LEN) {
		kw_db_reset(st);
		return rc == KW_DB_ROW || rc == KW_DB_DONE ? -ENOENT : -EIO;
	}
	kw_store_copy_text(r->kind, sizeof(r->kind), st, 0);
	r->family = (uint64_t)kw_db_column_int64(st, 1);
	r->session_id = (uint64_t)kw_db_column_int64(st, 2);
	r->expires = kw_db_column_int64(st, 3);
	r->used = kw_db_column_int64(st, 4);
	r->ended = kw_db_column_int64(st, 5);
	memcpy(r->digest, kw_db_column_blob(st, 6), KW_DIGEST_LEN);
	kw_db_reset(st);
	return 0;
}

/* Parses text, computes its digest and reads its row of that kind: 0, -EACCES (invalid), -EIO. */
static int find_token(struct kw_store *store, struct kw_digest_key *key, const char *text,
		      size_t len, const char *kind, uint64_t *wire_r, struct srow *r,
		      const char **error_r)
{
	struct kw_secret secret;
	uint8_t digest[KW_DIGEST_LEN];
	uint64_t wire;
	int ret;

	if (kw_token_parse(text, len, &wire, &secret) < 0)
		return kw_store_fail(store, -EACCES, error_r, "malformed %s token", kind);
	ret = kw_token_digest(key, wire, &secret, digest);
	kw_secret_wipe(&secret);
	if (ret == 0)
		ret = read_row(store, wire, r);
	if (ret == -EIO)
		ret = kw_store_db_fail(store, error_r, "token lookup");
	else if (ret < 0 || strcmp(r->kind, kind) != 0 || !kw_digest_equal(digest, r->digest))
		ret = kw_store_fail(store, -EACCES, error_r,
				    "%s token %llu: unknown or wrong secret", kind,
				    (unsigned long long)wire);
	OPENSSL_cleanse(digest, sizeof(digest));
	*wire_r = wire;
	return ret;
}

int kw_store_session_tokens_refresh(struct kw_store *store, struct kw_digest_key *key,
				    const char *text, size_t len, int64_t now, int64_t access_life,
				    int64_t refresh_life, struct kw_session_pair *pair_r,
				    const char **why_r, const char **error_r)
{
	struct srow r;
	struct kw_user u;
	struct kw_db_stmt *st;
	uint64_t wire;
	int ret;

	*why_r = "invalid";
	memset(&r, 0, sizeof(r));
	if (kw_store_begin(store) < 0)
		return kw_store_db_fail(store, error_r, "cannot start a transaction");
	if ((ret = find_token(store, key, text, len, "refresh", &wire, &r, error_r)) < 0)
		goto out;
	if (r.used != 0) {
		/* a retired refresh token again: stolen or replayed; its family ends */
		char details[64], target[40];

		*why_r = "reused";
		snprintf(details, sizeof(details), "{\"family\":%llu}",
			 (unsigned long long)r.family);
		snprintf(target, sizeof(target), "token:%llu", (unsigned long long)wire);
		if (end_family(store, r.family, now) < 0 ||
		    kw_audit_append(store, now, "keywarden-ssod", "session_token.reuse", target,
				    details) < 0 ||
		    kw_store_commit(store) < 0) {
			ret = kw_store_db_fail(store, error_r, "cannot end the token family");
			goto out;
		}
		return kw_store_fail(store, -EACCES, error_r,
				     "refresh token %llu was used before: its family has ended",
				     (unsigned long long)wire);
	}
	if (r.ended != 0 || r.expires <= now) {
		*why_r = r.ended != 0 ? "ended" : "expired";
		ret = kw_store_fail(store, -EACCES, error_r, "refresh token %llu has %s",
				    (unsigned long long)wire, *why_r);
		goto out;
	}
	if ((ret = session_user(store, r.session_id, &u, error_r)) < 0) {
		*why_r = "ended";
		goto out;
	}
	st = kw_store_stmt(store, "UPDATE session_token SET used = ?2 WHERE id = ?1");
	if (st == NULL)
		goto dbfail;
	kw_db_bind_int64(st, 1, (int64_t)(wire - KW_SESSION_TOKEN_ID_BASE));
	kw_db_bind_int64(st, 2, now);
	ret = kw_db_step(st);
	kw_db_reset(st);
	if (ret != KW_DB_DONE)
		goto dbfail;
	if (new_pair(store, key, r.family, r.session_id, u.id, u.role.id, u.login,
		     "session_token.refresh", now, access_life, refresh_life, pair_r) < 0 ||
	    kw_store_commit(store) < 0) {
		OPENSSL_cleanse(pair_r, sizeof(*pair_r));
		goto dbfail;
	}
	*why_r = NULL;
	OPENSSL_cleanse(&r, sizeof(r));
	return 0;
dbfail:
	ret = kw_store_db_fail(store, error_r, "cannot refresh");
out:
	OPENSSL_cleanse(&r, sizeof(r));
	kw_store_rollback(store);
	return ret;
}

int kw_store_access_token_auth(struct kw_store *store, struct kw_digest_key *key, const char *text,
			       size_t len, int64_t now, struct kw_token_auth *auth_r,
			       uint64_t *family_r, const char **why_r, const char **error_r)
{
	struct kw_token_check row;
	struct kw_user u;
	struct kw_role role;
	struct srow r;
	struct kw_db_stmt *st;
	uint64_t wire;
	int ret;

	*why_r = "invalid";
	memset(&r, 0, sizeof(r));
	if ((ret = find_token(store, key, text, len, "access", &wire, &r, error_r)) < 0)
		goto out;
	if ((ret = kw_store_access_token_lookup(store, wire, &row)) < 0) {
		ret = kw_store_db_fail(store, error_r, "token lookup");
		goto out;
	}
	if (r.ended != 0 || r.expires <= now || !row.issuer_enabled) {
		*why_r = r.ended != 0 ? "ended" : r.expires <= now ? "expired" : "disabled";
		ret = kw_store_fail(store, -EACCES, error_r, "access token %llu: %s",
				    (unsigned long long)wire, *why_r);
		goto out;
	}
	if ((ret = kw_store_user_get(store, row.user, &u, error_r)) < 0 ||
	    (ret = kw_store_role_get(store, row.role, &role, error_r)) < 0)
		goto out;
	if (u.sso && strcmp(u.sso_state, "revoked") == 0) {
		*why_r = "revoked";
		ret = kw_store_fail(store, -EACCES, error_r, "access token %llu: user revoked",
				    (unsigned long long)wire);
		goto out;
	}
	memset(auth_r, 0, sizeof(*auth_r));
	st = kw_store_stmt(store, "SELECT login_time FROM sso_session WHERE id = ?1");
	if (st == NULL) {
		ret = kw_store_db_fail(store, error_r, "session lookup");
		goto out;
	}
	kw_db_bind_int64(st, 1, (int64_t)r.session_id);
	if (kw_db_step(st) == KW_DB_ROW)
		auth_r->signed_in = kw_db_column_int64(st, 0);
	kw_db_reset(st);
	auth_r->token_id = wire;
	snprintf(auth_r->login, sizeof(auth_r->login), "%s", u.login);
	snprintf(auth_r->account, sizeof(auth_r->account), "%s", u.account);
	auth_r->user_role = u.role;
	auth_r->role = role.rank < u.role.rank ? role : u.role;
	*family_r = r.family;
	*why_r = NULL;
	ret = 0;
out:
	OPENSSL_cleanse(&r, sizeof(r));
	return ret;
}

int kw_store_session_tokens_end(struct kw_store *store, uint64_t family, const char *actor,
				int64_t now, const char **error_r)
{
	char details[64], target[48];

	if (kw_store_begin(store) < 0)
		return kw_store_db_fail(store, error_r, "cannot start a transaction");
	snprintf(details, sizeof(details), "{\"reason\":\"logout\"}");
	snprintf(target, sizeof(target), "family:%llu", (unsigned long long)family);
	if (end_family(store, family, now) < 0 ||
	    kw_audit_append(store, now, actor, "session_token.end", target, details) < 0 ||
	    kw_store_commit(store) < 0) {
		kw_store_rollback(store);
		return kw_store_db_fail(store, error_r, "cannot end the tokens");
	}
	return 0;
}

int kw_store_access_token_lookup(struct kw_store *store, uint64_t wire,
				 struct kw_token_check *check_r)
{
	struct kw_db_stmt *st;
	int rc;

	if (wire <= KW_SESSION_TOKEN_ID_BASE)
		return -ENOENT;
	st = kw_store_stmt(store, "SELECT st.digest, st.expires, st.ended IS NOT NULL, "
				  "u.enabled, a.name, u.login, r.name FROM session_token st "
				  "JOIN user u ON u.id = st.user_id JOIN account a ON "
				  "a.id = u.account_id JOIN role r ON r.id = st.role_id "
				  "WHERE st.id = ?1 AND st.kind = 'access'");
	if (st == NULL)
		return -EIO;
	kw_db_bind_int64(st, 1, (int64_t)(wire - KW_SESSION_TOKEN_ID_BASE));
	rc = kw_db_step(st);
	if (rc != KW_DB_ROW || kw_db_column_bytes(st, 0) != KW_DIGEST_LEN) {
		kw_db_reset(st);
		return rc == KW_DB_ROW || rc == KW_DB_DONE ? -ENOENT : -EIO;
	}
	memset(check_r, 0, sizeof(*check_r));
	check_r->id = wire;
	memcpy(check_r->digest, kw_db_column_blob(st, 0), KW_DIGEST_LEN);
	check_r->expires = kw_db_column_int64(st, 1);
	check_r->deleted = kw_db_column_int(st, 2) != 0;
	check_r->issuer_enabled = kw_db_column_int(st, 3) != 0;
	kw_store_copy_text(check_r->account, sizeof(check_r->account), st, 4);
	kw_store_copy_text(check_r->user, sizeof(check_r->user), st, 5);
	kw_store_copy_text(check_r->role, sizeof(check_r->role), st, 6);
	check_r->access = true;
	kw_db_reset(st);
	return 0;
}
