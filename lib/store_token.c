/* store_token.c: creating, listing, showing and deleting tokens under the product page's rules,
 * and the two queries of the validator (lookup, last use). See store.h. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "audit.h"
#include "jsonw.h"
#include "store.h"
#include "store_private.h"
#include "store_sql.h"
#include "timeutil.h"

static const char *const status_names[] = {
	[KW_TOKEN_ACTIVE] = "active",
	[KW_TOKEN_EXPIRED] = "expired",
	[KW_TOKEN_DELETED] = "deleted",
	[KW_TOKEN_DISABLED] = "disabled",
};

enum kw_token_status kw_token_status_of(int64_t expires, int64_t deleted, bool issuer_enabled,
					int64_t now)
{
	if (deleted != 0)
		return KW_TOKEN_DELETED;
	if (!issuer_enabled)
		return KW_TOKEN_DISABLED;
	if (now >= expires)
		return KW_TOKEN_EXPIRED;
	return KW_TOKEN_ACTIVE;
}

const char *kw_token_status_name(enum kw_token_status status)
{
	return status_names[status];
}

int kw_token_status_parse(const char *name, enum kw_token_status *status_r)
{
	for (size_t i = 0; i < sizeof(status_names) / sizeof(status_names[0]); i++) {
		if (strcmp(name, status_names[i]) == 0) {
			*status_r = (enum kw_token_status)i;
			return 0;
		}
	}
	return -EINVAL;
}

static const uint8_t zero_digest[KW_DIGEST_LEN];

static bool is_admin(const struct kw_user *u)
{
	return strcmp(u->role.name, KW_ADMIN_ROLE) == 0;
}

/* The acting user: must exist, be enabled, and not have had its SSO access revoked. */
static int get_actor(struct kw_store *store, const char *as, struct kw_user *u,
		     const char **error_r)
{
	int ret = kw_store_user_get(store, as, u, error_r);

	const struct kw_role *cap = kw_store_role_cap(store);

	if (ret < 0)
		return ret;
	if (!u->enabled)
		return kw_store_fail(store, -EPERM, error_r, "user '%s' is disabled", as);
	/* acting through a token of a lower role: that role counts for every rule */
	if (cap != NULL && cap->rank < u->role.rank)
		u->role = *cap;
	/* SSO revocation leaves the tokens alone (the rule), but the user acts no more. */
	if (u->sso && strcmp(u->sso_state, "revoked") == 0)
		return kw_store_fail(
			store, -EPERM, error_r,
			"the SSO access of user '%s' was revoked: it may no longer act", as);
	return 0;
}

static int count_account_tokens(struct kw_store *store, int64_t account_id, int64_t now,
				int64_t *live_r, int64_t *expired_r)
{
	struct kw_db_stmt *st = kw_store_stmt(
		store,
		"SELECT count(*), coalesce(sum(CASE WHEN expires <= ?2 THEN 1 ELSE 0 END), 0) "
		"FROM token WHERE account_id = ?1 AND deleted IS NULL");

	if (st == NULL)
		return -EIO;
	kw_db_bind_int64(st, 1, account_id);
	kw_db_bind_int64(st, 2, now);
	if (kw_db_step(st) != KW_DB_ROW)
		return -EIO;
	*live_r = kw_db_column_int64(st, 0);
	*expired_r = kw_db_column_int64(st, 1);
	kw_db_reset(st);
	return 0;
}

int kw_store_token_create(struct kw_store *store, struct kw_digest_key *key, const char *as,
			  const char *name, const char *description, const char *role,
			  int64_t expires, uint64_t *id_r, char *text_r, const char **error_r)
{
	struct kw_user issuer;
	struct kw_account acct;
	struct kw_role r;
	struct kw_secret secret;
	uint8_t digest[KW_DIGEST_LEN];
	char jname[KW_TOKEN_NAME_MAX * 6 + 3], jrole[KW_ROLE_MAX * 6 + 3];
	char jacct[KW_ACCOUNT_MAX * 6 + 3], exp_text[KW_TIME_TEXT_MAX];
	char details[sizeof(jname) + sizeof(jrole) + sizeof(jacct) + 64];
	int64_t now = kw_now(), live, expired;
	struct kw_db_stmt *st;
	uint64_t id;
	int ret;

	if ((ret = kw_store_check_text(store, "token name", name, KW_TOKEN_NAME_CHARS, false,
				       error_r)) < 0 ||
	    (ret = kw_store_check_text(store, "description", description, KW_TOKEN_DESC_CHARS, true,
				       error_r)) < 0)
		return ret;
	if (expires <= now)
		return kw_store_fail(store, -EINVAL, error_r, "the expiry must lie in the future");
	if (kw_store_begin(store) < 0)
		return kw_store_db_fail(store, error_r, "cannot start a transaction");
	if ((ret = get_actor(store, as, &issuer, error_r)) < 0 ||
	    (ret = kw_store_role_get(store, role, &r, error_r)) < 0)
		goto out;
	if (r.rank > issuer.role.rank) {
		ret = kw_store_fail(store, -EPERM, error_r,
				    "role '%s' is above the issuer's role '%s': a token's role can "
				    "be at most its issuer's",
				    r.name, issuer.role.name);
		goto out;
	}
	if ((ret = kw_store_account_get(store, issuer.account, &acct, error_r)) < 0)
		goto out;
	if (count_account_tokens(store, acct.id, now, &live, &expired) < 0)
		goto dbfail;
	if (live >= acct.token_limit) {
		ret = kw_store_fail(
			store, -EDQUOT, error_r,
			"account '%s' already holds %lld tokens, its limit; %lld of them "
			"%s expired and could be deleted to make room",
			acct.name, (long long)live, (long long)expired,
			expired == 1 ? "is" : "are");
		goto out;
	}
	/* The id comes from the insert; the digest binds it, so it is set right after. */
	st = kw_store_stmt(store, "INSERT INTO token (account_id, issuer_id, name, description, "
				  "role_id, digest, created, expires) "
				  "VALUES (?1, ?2, ?3, ?4, ?5, ?8, ?6, ?7) RETURNING id");
	if (st == NULL)
		goto dbfail;
	kw_db_bind_int64(st, 1, acct.id);
	kw_db_bind_int64(st, 2, issuer.id);
	kw_db_bind_text(st, 3, name);
	kw_db_bind_text(st, 4, description);
	kw_db_bind_int64(st, 5, r.id);
	kw_db_bind_int64(st, 6, now);
	if (expires != KW_NEVER)
		kw_db_bind_int64(st, 7, expires);
	kw_db_bind_blob(st, 8, zero_digest, KW_DIGEST_LEN); /* until the id is known */
	if (kw_db_step(st) != KW_DB_ROW)
		goto dbfail;
	id = (uint64_t)kw_db_column_int64(st, 0);
	kw_db_reset(st);
	if (id > KW_TOKEN_ID_MAX) {
		ret = kw_store_fail(store, -EIO, error_r, "token ids exhausted");
		goto out;
	}
	if (kw_secret_generate(&secret) < 0) {
		ret = kw_store_fail(store, -EIO, error_r, "cannot read random bytes");
		goto out;
	}
	ret = kw_token_digest(key, id, &secret, digest);
	if (ret < 0) {
		kw_secret_wipe(&secret);
		ret = kw_store_fail(store, ret, error_r, "cannot compute the token digest");
		goto out;
	}
	st = kw_store_stmt(store, "UPDATE token SET digest = ?2 WHERE id = ?1");
	if (st == NULL) {
		kw_secret_wipe(&secret);
		goto dbfail;
	}
	kw_db_bind_int64(st, 1, (int64_t)id);
	kw_db_bind_blob(st, 2, digest, KW_DIGEST_LEN);
	if (kw_db_step(st) != KW_DB_DONE) {
		kw_secret_wipe(&secret);
		goto dbfail;
	}
	kw_db_reset(st);
	kw_json_string_buf(jname, sizeof(jname), name);
	kw_json_string_buf(jrole, sizeof(jrole), r.name);
	kw_json_string_buf(jacct, sizeof(jacct), acct.name);
	if (expires == KW_NEVER)
		snprintf(exp_text, sizeof(exp_text), "never");
	else
		kw_time_format(expires, exp_text);
	snprintf(details, sizeof(details),
		 "{\"account\":%s,\"name\":%s,\"role\":%s,\"expires\":\"%s\"}", jacct, jname, jrole,
		 exp_text);
	char target[32];
	snprintf(target, sizeof(target), "token:%llu", (unsigned long long)id);
	if (kw_audit_append(store, now, as, "token.create", target, details) < 0 ||
	    kw_store_commit(store) < 0) {
		kw_secret_wipe(&secret);
		goto dbfail;
	}
	kw_token_format(id, &secret, text_r);
	kw_secret_wipe(&secret);
	OPENSSL_cleanse(digest, sizeof(digest));
	*id_r = id;
	return 0;
dbfail:
	ret = kw_store_db_fail(store, error_r, "cannot create token");
out:
	OPENSSL_cleanse(digest, sizeof(digest));
	kw_store_rollback(store);
	return ret;
}

#define TOKEN_COLUMNS                                                                              \
	"t.id, a.name, t.name, t.description, iu.login, r.id, r.rank, r.name, t.created, "         \
	"t.expires, t.last_used, t.last_ip, t.deleted, du.login, iu.enabled "
#define TOKEN_FROM                                                                                 \
	"FROM token t JOIN account a ON a.id = t.account_id JOIN user iu ON iu.id = t.issuer_id "  \
	"JOIN role r ON r.id = t.role_id LEFT JOIN user du ON du.id = t.deleted_by "

static void read_token(struct kw_db_stmt *st, int64_t now, struct kw_token_info *t)
{
	memset(t, 0, sizeof(*t));
	t->id = (uint64_t)kw_db_column_int64(st, 0);
	kw_store_copy_text(t->account, sizeof(t->account), st, 1);
	kw_store_copy_text(t->name, sizeof(t->name), st, 2);
	kw_store_copy_text(t->description, sizeof(t->description), st, 3);
	kw_store_copy_text(t->issuer, sizeof(t->issuer), st, 4);
	t->role.id = kw_db_column_int64(st, 5);
	t->role.rank = kw_db_column_int(st, 6);
	kw_store_copy_text(t->role.name, sizeof(t->role.name), st, 7);
	t->created = kw_db_column_int64(st, 8);
	t->expires = kw_db_column_null(st, 9) ? KW_NEVER : kw_db_column_int64(st, 9);
	t->last_used = kw_db_column_int64(st, 10);
	kw_store_copy_text(t->last_ip, sizeof(t->last_ip), st, 11);
	t->deleted = kw_db_column_int64(st, 12);
	kw_store_copy_text(t->deleted_by, sizeof(t->deleted_by), st, 13);
	t->issuer_enabled = kw_db_column_int(st, 14) != 0;
	t->status = kw_token_status_of(t->expires, t->deleted, t->issuer_enabled, now);
}

int kw_store_token_list(struct kw_store *store, const char *as,
			const struct kw_token_filter *filter, int64_t now, kw_token_cb *cb,
			void *ctx, const char **error_r)
{
	struct kw_user actor, by;
	struct kw_role role;
	struct kw_token_info t;
	struct kw_db_stmt *st;
	int ret, rc;

	if ((ret = get_actor(store, as, &actor, error_r)) < 0)
		return ret;
	if (filter->issued_by != NULL) {
		if ((ret = kw_store_user_get(store, filter->issued_by, &by, error_r)) < 0)
			return ret;
		if (by.account_id != actor.account_id)
			return kw_store_fail(store, -ENOENT, error_r, "unknown user '%s'",
					     filter->issued_by);
	}
	if (filter->role != NULL &&
	    (ret = kw_store_role_get(store, filter->role, &role, error_r)) < 0)
		return ret;
	st = kw_store_stmt(store,
			   "SELECT " TOKEN_COLUMNS TOKEN_FROM
			   "WHERE t.account_id = ?1 AND (CAST(?2 AS BIGINT) IS NULL OR "
			   "t.issuer_id = ?2) AND (CAST(?3 AS BIGINT) IS NULL OR t.role_id = ?3) "
			   "ORDER BY t.id");
	if (st == NULL)
		return kw_store_db_fail(store, error_r, "token list");
	kw_db_bind_int64(st, 1, actor.account_id);
	/* Everyone but Administrators sees only their own tokens. */
	if (!is_admin(&actor)) {
		if (filter->issued_by != NULL && by.id != actor.id)
			return kw_store_fail(
				store, -EPERM, error_r,
				"only Administrators may list tokens issued by others");
		kw_db_bind_int64(st, 2, actor.id);
	} else if (filter->issued_by != NULL) {
		kw_db_bind_int64(st, 2, by.id);
	}
	if (filter->role != NULL)
		kw_db_bind_int64(st, 3, role.id);
	while ((rc = kw_db_step(st)) == KW_DB_ROW) {
		read_token(st, now, &t);
		if (filter->status >= 0 && (int)t.status != filter->status)
			continue;
		if ((ret = cb(&t, ctx)) < 0) {
			kw_db_reset(st);
			return ret;
		}
	}
	kw_db_reset(st);
	return rc == KW_DB_DONE ? 0 : kw_store_db_fail(store, error_r, "token list");
}

/* A token the actor may see, or -ENOENT/-EPERM. Tokens of other accounts are "not found". */
static int visible_token(struct kw_store *store, const struct kw_user *actor, uint64_t id,
			 int64_t now, struct kw_token_info *t, const char *verb,
			 const char **error_r)
{
	struct kw_db_stmt *st = kw_store_stmt(store, "SELECT " TOKEN_COLUMNS TOKEN_FROM
						     "WHERE t.id = ?1 AND t.account_id = ?2");
	int rc;

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "token lookup");
	kw_db_bind_int64(st, 1, (int64_t)id);
	kw_db_bind_int64(st, 2, actor->account_id);
	rc = kw_db_step(st);
	if (rc == KW_DB_DONE)
		return kw_store_fail(store, -ENOENT, error_r, "no token %llu in account '%s'",
				     (unsigned long long)id, actor->account);
	if (rc != KW_DB_ROW)
		return kw_store_db_fail(store, error_r, "token lookup");
	read_token(st, now, t);
	kw_db_reset(st);
	if (!is_admin(actor) && strcmp(t->issuer, actor->login) != 0)
		return kw_store_fail(store, -EPERM, error_r,
				     "token %llu was issued by another user: only Administrators "
				     "may %s it",
				     (unsigned long long)id, verb);
	return 0;
}

int kw_store_token_get(struct kw_store *store, const char *as, uint64_t id, int64_t now,
		       struct kw_token_info *info_r, const char **error_r)
{
	struct kw_user actor;
	int ret;

	if ((ret = get_actor(store, as, &actor, error_r)) < 0)
		return ret;
	return visible_token(store, &actor, id, now, info_r, "see", error_r);
}

static int token_delete(struct kw_store *store, const char *as, uint64_t id, const char **error_r)
{
	struct kw_user actor;
	struct kw_token_info t;
	char jname[KW_TOKEN_NAME_MAX * 6 + 3], jissuer[KW_LOGIN_MAX * 6 + 3];
	char details[sizeof(jname) + sizeof(jissuer) + 64];
	char target[32];
	int64_t now = kw_now();
	struct kw_db_stmt *st;
	int ret;

	if (kw_store_begin(store) < 0)
		return kw_store_db_fail(store, error_r, "cannot start a transaction");
	if ((ret = get_actor(store, as, &actor, error_r)) < 0 ||
	    (ret = visible_token(store, &actor, id, now, &t, "delete", error_r)) < 0)
		goto out;
	if (t.deleted != 0) {
		ret = kw_store_fail(store, -EALREADY, error_r, "token %llu is already deleted",
				    (unsigned long long)id);
		goto out;
	}
	st = kw_store_stmt(store, "UPDATE token SET deleted = ?2, deleted_by = ?3 "
				  "WHERE id = ?1 AND deleted IS NULL");
	if (st == NULL)
		goto dbfail;
	kw_db_bind_int64(st, 1, (int64_t)id);
	kw_db_bind_int64(st, 2, now);
	kw_db_bind_int64(st, 3, actor.id);
	if (kw_db_step(st) != KW_DB_DONE)
		goto dbfail;
	kw_json_string_buf(jname, sizeof(jname), t.name);
	kw_json_string_buf(jissuer, sizeof(jissuer), t.issuer);
	snprintf(details, sizeof(details), "{\"name\":%s,\"issuer\":%s,\"status_before\":\"%s\"}",
		 jname, jissuer, kw_token_status_name(t.status));
	snprintf(target, sizeof(target), "token:%llu", (unsigned long long)id);
	if (kw_audit_append(store, now, as, "token.delete", target, details) < 0 ||
	    kw_store_commit(store) < 0)
		goto dbfail;
	return 0;
dbfail:
	ret = kw_store_db_fail(store, error_r, "cannot delete token");
out:
	kw_store_rollback(store);
	return ret;
}

int kw_store_token_delete(struct kw_store *store, const char *as, uint64_t id, const char **error_r)
{
	int ret = token_delete(store, as, id, error_r);

	/* a revocation: a full disk must not keep the token valid (store.h, the reserve) */
	while (ret == -ENOSPC && kw_store_reserve_release(store) == 0)
		ret = token_delete(store, as, id, error_r);
	return ret;
}

int kw_store_token_authenticate(struct kw_store *store, struct kw_digest_key *key, const char *text,
				size_t len, int64_t now, const char *ip,
				struct kw_token_auth *auth_r, const char **why_r,
				const char **error_r)
{
	struct kw_token_check row;
	struct kw_secret secret;
	struct kw_user user;
	struct kw_role role;
	uint8_t digest[KW_DIGEST_LEN];
	uint64_t id;
	int ret;

	memset(&row, 0, sizeof(row));
	*why_r = "invalid";
	if (kw_token_parse(text, len, &id, &secret) < 0)
		return kw_store_fail(store, -EACCES, error_r, "malformed token");
	ret = kw_token_digest(key, id, &secret, digest);
	kw_secret_wipe(&secret);
	if (ret < 0) {
		ret = kw_store_fail(store, -EIO, error_r, "cannot compute the token digest");
		goto out;
	}
	ret = kw_store_token_lookup(store, id, &row);
	if (ret == -ENOENT || (ret == 0 && !kw_digest_equal(digest, row.digest))) {
		ret = kw_store_fail(store, -EACCES, error_r, "token %llu: unknown or wrong secret",
				    (unsigned long long)id);
		goto out;
	}
	if (ret < 0) {
		ret = kw_store_db_fail(store, error_r, "token lookup");
		goto out;
	}
	switch (kw_token_status_of(row.expires, row.deleted ? 1 : 0, row.issuer_enabled, now)) {
	case KW_TOKEN_ACTIVE:
		break;
	case KW_TOKEN_EXPIRED:
		*why_r = "expired";
		ret = kw_store_fail(store, -EACCES, error_r, "token %llu has expired",
				    (unsigned long long)id);
		goto out;
	case KW_TOKEN_DELETED:
		*why_r = "deleted";
		ret = kw_store_fail(store, -EACCES, error_r, "token %llu is deleted",
				    (unsigned long long)id);
		goto out;
	case KW_TOKEN_DISABLED:
		*why_r = "disabled";
		ret = kw_store_fail(store, -EACCES, error_r, "the issuer of token %llu is disabled",
				    (unsigned long long)id);
		goto out;
	}
	if ((ret = kw_store_user_get(store, row.user, &user, error_r)) < 0 ||
	    (ret = kw_store_role_get(store, row.role, &role, error_r)) < 0)
		goto out;
	if (user.sso && strcmp(user.sso_state, "revoked") == 0) {
		/* the token still validates for services (the rule), but its user acts no more */
		*why_r = "revoked";
		ret = kw_store_fail(store, -EACCES, error_r,
				    "the SSO access of user '%s' (token %llu) was revoked",
				    user.login, (unsigned long long)id);
		goto out;
	}
	if (kw_store_begin_batch(store) == 0) {
		if (kw_store_token_touch(store, id, now, ip) == 0)
			(void)kw_store_commit(store);
		else
			kw_store_rollback(store);
	}
	memset(auth_r, 0, sizeof(*auth_r));
	auth_r->token_id = id;
	snprintf(auth_r->login, sizeof(auth_r->login), "%s", user.login);
	snprintf(auth_r->account, sizeof(auth_r->account), "%s", user.account);
	auth_r->user_role = user.role;
	auth_r->role = role.rank < user.role.rank ? role : user.role;
	*why_r = NULL;
	ret = 0;
out:
	OPENSSL_cleanse(digest, sizeof(digest));
	OPENSSL_cleanse(&row, sizeof(row));
	return ret;
}

int kw_store_token_lookup(struct kw_store *store, uint64_t id, struct kw_token_check *check_r)
{
	struct kw_db_stmt *st = kw_store_stmt(
		store, "SELECT t.digest, t.expires, t.deleted IS NOT NULL, u.enabled, a.name, "
		       "u.login, r.name FROM token t JOIN user u ON u.id = t.issuer_id "
		       "JOIN account a ON a.id = t.account_id JOIN role r ON r.id = t.role_id "
		       "WHERE t.id = ?1");
	int rc;

	if (id > KW_SESSION_TOKEN_ID_BASE)
		return kw_store_access_token_lookup(store, id, check_r);
	if (st == NULL)
		return -EIO;
	kw_db_bind_int64(st, 1, (int64_t)id);
	rc = kw_db_step(st);
	if (rc == KW_DB_DONE) {
		kw_db_reset(st);
		return -ENOENT;
	}
	if (rc != KW_DB_ROW || kw_db_column_bytes(st, 0) != KW_DIGEST_LEN) {
		kw_db_reset(st);
		return -EIO;
	}
	memset(check_r, 0, sizeof(*check_r));
	check_r->id = id;
	memcpy(check_r->digest, kw_db_column_blob(st, 0), KW_DIGEST_LEN);
	check_r->expires = kw_db_column_null(st, 1) ? KW_NEVER : kw_db_column_int64(st, 1);
	check_r->deleted = kw_db_column_int(st, 2) != 0;
	check_r->issuer_enabled = kw_db_column_int(st, 3) != 0;
	kw_store_copy_text(check_r->account, sizeof(check_r->account), st, 4);
	kw_store_copy_text(check_r->user, sizeof(check_r->user), st, 5);
	kw_store_copy_text(check_r->role, sizeof(check_r->role), st, 6);
	kw_db_reset(st);
	return 0;
}

int kw_store_token_touch(struct kw_store *store, uint64_t id, int64_t when, const char *ip)
{
	struct kw_db_stmt *st = kw_store_stmt(
		store, "UPDATE token SET last_used = ?2, last_ip = coalesce(?3, last_ip) "
		       "WHERE id = ?1 AND (last_used IS NULL OR last_used <= ?2)");
	int rc;

	if (st == NULL)
		return -EIO;
	kw_db_bind_int64(st, 1, (int64_t)id);
	kw_db_bind_int64(st, 2, when);
	if (ip != NULL && ip[0] != '\0')
		kw_db_bind_text(st, 3, ip);
	rc = kw_db_step(st);
	kw_db_reset(st);
	return rc == KW_DB_DONE ? 0 : -EIO;
}
