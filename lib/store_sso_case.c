/* store_sso_case.c: the store's side of the rule's review (see store_sso.h): review cases, the
 * live tokens and the admin that a case names, the sweep's questions and the review list.
 * These statements run far less often than a login: each is prepared and finalized here, so as
 * not to fill the store's statement cache. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "store.h"
#include "store_private.h"
#include "store_sql.h"
#include "store_sso.h"

#define DAY 86400

/* An SSO user unseen (or, never seen, created) at or before `since` whose access is not revoked:
 * access may have been revoked at the IdP. */
/* clang-format off */
#define STALE_SSO_USER(u, since)                                                                   \
	"(" u ".source = 'sso' AND NOT " KW_SQL_REVOKED_SSO(u) " AND "                             \
	"coalesce(" u ".sso_last_seen, " u ".created) <= " since ")"
/* clang-format on */

/* User u holds a live token (at ?2). */
#define HOLDS_LIVE_TOKEN(u)                                                                        \
	"EXISTS (SELECT 1 FROM token t WHERE t.issuer_id = " u                                     \
	".id AND " KW_SQL_TOKEN_LIVE("t", "?2") ")"

/* An uncached statement; the caller finalizes it. */
static struct kw_db_stmt *prep(struct kw_store *store, const char *sql)
{
	struct kw_db_stmt *st = NULL;

	if (kw_db_prepare(kw_store_db(store), sql, false, &st) < 0)
		return NULL;
	return st;
}

/* Runs a write and finalizes it. */
static int run(struct kw_db_stmt *st)
{
	int rc = kw_db_step(st);

	kw_db_finalize(st);
	return rc == KW_DB_DONE ? 0 : -EIO;
}

/* Grows an array by doubling; daemons may abort on out-of-memory (STYLE.md). */
static void *grow(void *p, size_t n, size_t *cap, size_t size)
{
	if (n < *cap)
		return p;
	*cap = *cap == 0 ? 8 : *cap * 2;
	p = realloc(p, *cap * size);
	if (p == NULL)
		abort();
	return p;
}

bool kw_store_sso_is_admin(const struct kw_user *user)
{
	return strcmp(user->role.name, KW_ADMIN_ROLE) == 0;
}

/* ---- what a case names ---- */

/* Without error text: the review reports its own failure. */
static int live_tokens(struct kw_store *store, int64_t user_id, int user_rank, int64_t now,
		       struct kw_sso_token **tokens_r, size_t *n_r)
{
	struct kw_db_stmt *st =
		prep(store, "SELECT t.id, t.name, r.id, r.rank, r.name, t.created, "
			    "t.expires, t.last_used, t.last_ip FROM token t "
			    "JOIN role r ON r.id = t.role_id WHERE t.issuer_id = ?1 "
			    "AND " KW_SQL_TOKEN_LIVE("t", "?2") " ORDER BY t.id");
	struct kw_sso_token *tokens = NULL, *t;
	size_t n = 0, cap = 0;
	int rc;

	if (st == NULL)
		return -EIO;
	kw_db_bind_int64(st, 1, user_id);
	kw_db_bind_int64(st, 2, now);
	while ((rc = kw_db_step(st)) == KW_DB_ROW) {
		tokens = grow(tokens, n, &cap, sizeof(*tokens));
		t = &tokens[n++];
		memset(t, 0, sizeof(*t));
		t->id = (uint64_t)kw_db_column_int64(st, 0);
		kw_store_copy_text(t->name, sizeof(t->name), st, 1);
		t->role.id = kw_db_column_int64(st, 2);
		t->role.rank = kw_db_column_int(st, 3);
		kw_store_copy_text(t->role.name, sizeof(t->role.name), st, 4);
		t->created = kw_db_column_int64(st, 5);
		t->expires = kw_db_column_null(st, 6) ? KW_NEVER : kw_db_column_int64(st, 6);
		t->last_used = kw_db_column_int64(st, 7);
		kw_store_copy_text(t->last_ip, sizeof(t->last_ip), st, 8);
		t->above_user_role = t->role.rank > user_rank;
	}
	kw_db_finalize(st);
	if (rc != KW_DB_DONE) {
		free(tokens);
		return -EIO;
	}
	*tokens_r = tokens;
	*n_r = n;
	return 0;
}

int kw_store_sso_live_tokens(struct kw_store *store, int64_t user_id, int user_rank, int64_t now,
			     struct kw_sso_token **tokens_r, size_t *n_r, const char **error_r)
{
	if (live_tokens(store, user_id, user_rank, now, tokens_r, n_r) < 0)
		return kw_store_db_fail(store, error_r, "live tokens");
	return 0;
}

static int admin_find(struct kw_store *store, int64_t account_id, int64_t exclude_user,
		      char admin[KW_LOGIN_MAX + 1])
{
	struct kw_db_stmt *st =
		prep(store, "SELECT u.login FROM user u JOIN role r ON r.id = u.role_id "
			    "WHERE u.account_id = ?1 AND u.id != ?2 AND " KW_SQL_USER_ENABLED(
				    "u") " AND r.name = " KW_SQL_ADMIN_ROLE
					 " AND NOT " KW_SQL_REVOKED_SSO(
						 "u") " ORDER BY u.source = 'sso', u.id LIMIT 1");
	int rc;

	if (st == NULL)
		return -EIO;
	kw_db_bind_int64(st, 1, account_id);
	kw_db_bind_int64(st, 2, exclude_user);
	rc = kw_db_step(st);
	if (rc == KW_DB_ROW)
		kw_store_copy_text(admin, KW_LOGIN_MAX + 1, st, 0);
	else
		snprintf(admin, KW_LOGIN_MAX + 1, "%s", KW_SSO_ADMIN_PLACEHOLDER);
	kw_db_finalize(st);
	return rc == KW_DB_ROW || rc == KW_DB_DONE ? 0 : -EIO;
}

int kw_store_sso_admin_find(struct kw_store *store, int64_t account_id, int64_t exclude_user,
			    char admin_r[KW_LOGIN_MAX + 1], const char **error_r)
{
	if (admin_find(store, account_id, exclude_user, admin_r) < 0)
		return kw_store_db_fail(store, error_r, "Administrator lookup");
	return 0;
}

/* ---- cases ---- */

#define CASE_COLUMNS                                                                               \
	"c.id, c.account_id, c.user_id, c.closed IS NOT NULL, u.login, c.kind "                    \
	"FROM sso_case c JOIN user u ON u.id = c.user_id "

static void read_ref(struct kw_db_stmt *st, struct kw_store_sso_case_ref *ref)
{
	memset(ref, 0, sizeof(*ref));
	ref->id = kw_db_column_int64(st, 0);
	ref->account_id = kw_db_column_int64(st, 1);
	ref->user_id = kw_db_column_int64(st, 2);
	ref->closed = kw_db_column_int(st, 3) != 0;
	kw_store_copy_text(ref->login, sizeof(ref->login), st, 4);
	kw_store_copy_text(ref->kind, sizeof(ref->kind), st, 5);
}

/* One case of the query bound to ?1; -ENOENT when none. */
static int case_one(struct kw_store *store, const char *sql, int64_t key,
		    struct kw_store_sso_case_ref *ref_r, const char **error_r)
{
	struct kw_db_stmt *st = prep(store, sql);
	int rc;

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "review case lookup");
	kw_db_bind_int64(st, 1, key);
	rc = kw_db_step(st);
	if (rc == KW_DB_ROW)
		read_ref(st, ref_r);
	kw_db_finalize(st);
	if (rc == KW_DB_DONE)
		return -ENOENT;
	if (rc != KW_DB_ROW)
		return kw_store_db_fail(store, error_r, "review case lookup");
	return 0;
}

int kw_store_sso_case_open_get(struct kw_store *store, int64_t user_id,
			       struct kw_store_sso_case_ref *ref_r, const char **error_r)
{
	int ret =
		case_one(store, "SELECT " CASE_COLUMNS "WHERE c.user_id = ?1 AND c.closed IS NULL",
			 user_id, ref_r, error_r);

	if (ret == -ENOENT) {
		memset(ref_r, 0, sizeof(*ref_r));
		return 0;
	}
	return ret;
}

int kw_store_sso_case_get(struct kw_store *store, int64_t case_id,
			  struct kw_store_sso_case_ref *ref_r, const char **error_r)
{
	return case_one(store, "SELECT " CASE_COLUMNS "WHERE c.id = ?1", case_id, ref_r, error_r);
}

int kw_store_sso_case_open(struct kw_store *store, int64_t account_id, int64_t user_id,
			   const char *kind, const char *reason, int64_t now, int64_t *case_id_r,
			   const char **error_r)
{
	struct kw_db_stmt *st =
		prep(store, "INSERT INTO sso_case (account_id, user_id, kind, reason, "
			    "opened, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?5) RETURNING id");

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "cannot open the review case");
	kw_db_bind_int64(st, 1, account_id);
	kw_db_bind_int64(st, 2, user_id);
	kw_db_bind_text(st, 3, kind);
	kw_db_bind_text(st, 4, reason);
	kw_db_bind_int64(st, 5, now);
	if (kw_db_step(st) != KW_DB_ROW) {
		kw_db_finalize(st);
		return kw_store_db_fail(store, error_r, "cannot open the review case");
	}
	*case_id_r = kw_db_column_int64(st, 0);
	kw_db_finalize(st);
	return 0;
}

int kw_store_sso_case_update(struct kw_store *store, int64_t case_id, const char *kind,
			     const char *reason, int64_t now, const char **error_r)
{
	struct kw_db_stmt *st =
		prep(store, "UPDATE sso_case SET kind = ?2, reason = ?3, updated = ?4, "
			    "events = events + 1 WHERE id = ?1");

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "cannot update the review case");
	kw_db_bind_int64(st, 1, case_id);
	kw_db_bind_text(st, 2, kind);
	kw_db_bind_text(st, 3, reason);
	kw_db_bind_int64(st, 4, now);
	if (run(st) < 0)
		return kw_store_db_fail(store, error_r, "cannot update the review case");
	return 0;
}

int kw_store_sso_case_close(struct kw_store *store, int64_t case_id, int64_t now,
			    const char *closed_by, const char *close_reason, const char *action,
			    const char *details, const char **error_r)
{
	struct kw_db_stmt *st = prep(store, "UPDATE sso_case SET closed = ?2, closed_by = ?3, "
					    "close_reason = ?4 WHERE id = ?1 AND closed IS NULL");
	char target[32];

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "cannot close the review case");
	kw_db_bind_int64(st, 1, case_id);
	kw_db_bind_int64(st, 2, now);
	kw_db_bind_text(st, 3, closed_by);
	kw_db_bind_text(st, 4, close_reason);
	snprintf(target, sizeof(target), "sso_case:%lld", (long long)case_id);
	if (run(st) < 0 || kw_audit_append(store, now, closed_by, action, target, details) < 0)
		return kw_store_db_fail(store, error_r, "cannot close the review case");
	return 0;
}

/* ---- the sweep's questions ---- */

/* Reads every row of st (columns of read_ref()) and finalizes it. */
static int collect_refs(struct kw_store *store, struct kw_db_stmt *st,
			struct kw_store_sso_case_ref **refs_r, size_t *n_r, const char **error_r)
{
	struct kw_store_sso_case_ref *refs = NULL;
	size_t n = 0, cap = 0;
	int rc;

	while ((rc = kw_db_step(st)) == KW_DB_ROW) {
		refs = grow(refs, n, &cap, sizeof(*refs));
		read_ref(st, &refs[n++]);
	}
	kw_db_finalize(st);
	if (rc != KW_DB_DONE) {
		free(refs);
		return kw_store_db_fail(store, error_r, "review sweep");
	}
	*refs_r = refs;
	*n_r = n;
	return 0;
}

int kw_store_sso_cases_without_tokens(struct kw_store *store, int64_t account_id, int64_t now,
				      struct kw_store_sso_case_ref **refs_r, size_t *n_r,
				      const char **error_r)
{
	struct kw_db_stmt *st = prep(
		store,
		"SELECT " CASE_COLUMNS "WHERE c.closed IS NULL AND "
		"(?1 = 0 OR c.account_id = ?1) AND NOT " HOLDS_LIVE_TOKEN("u") " ORDER BY c.id");

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "review sweep");
	kw_db_bind_int64(st, 1, account_id);
	kw_db_bind_int64(st, 2, now);
	return collect_refs(store, st, refs_r, n_r, error_r);
}

int kw_store_sso_stale_to_open(struct kw_store *store, int64_t account_id, int64_t now,
			       unsigned stale_days, struct kw_store_sso_case_ref **refs_r,
			       size_t *n_r, const char **error_r)
{
	struct kw_db_stmt *st =
		prep(store, "SELECT 0, u.account_id, u.id, 0, u.login, '' FROM user u "
			    "WHERE " STALE_SSO_USER("u", "?3") " AND " KW_SQL_USER_ENABLED(
				    "u") " AND (?1 = 0 OR u.account_id = ?1) "
					 "AND " HOLDS_LIVE_TOKEN("u") " AND NOT EXISTS (SELECT "
								      "1 FROM sso_case c WHERE "
								      "c.user_id = u.id AND "
								      "(c.closed IS NULL OR "
								      "(c.kind = 'stale' AND "
								      "c.opened >= "
								      "coalesce(u.sso_last_"
								      "seen, u.created)))) "
								      "ORDER BY u.id");

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "review sweep");
	kw_db_bind_int64(st, 1, account_id);
	kw_db_bind_int64(st, 2, now);
	kw_db_bind_int64(st, 3, now - (int64_t)stale_days * DAY);
	return collect_refs(store, st, refs_r, n_r, error_r);
}

/* ---- the review list ---- */

static int read_cases(struct kw_store *store, int64_t account_id, struct kw_sso_review *r)
{
	struct kw_db_stmt *st =
		prep(store, "SELECT c.id, a.name, u.login, c.kind, c.reason, c.opened, "
			    "c.updated, c.events, r.name, coalesce(u.sso_state, ''), "
			    "coalesce(u.sso_last_seen, 0), u.id, u.account_id, r.rank, "
			    "u.enabled "
			    "FROM sso_case c JOIN user u ON u.id = c.user_id "
			    "JOIN account a ON a.id = c.account_id "
			    "JOIN role r ON r.id = u.role_id WHERE c.closed IS NULL "
			    "AND (?1 = 0 OR c.account_id = ?1) ORDER BY c.id");
	struct {
		int64_t user_id, account_id;
		int rank;
	} *keys = NULL;
	size_t cap = 0, key_cap = 0;
	int rc;

	if (st == NULL)
		return -EIO;
	kw_db_bind_int64(st, 1, account_id);
	while ((rc = kw_db_step(st)) == KW_DB_ROW) {
		struct kw_sso_case *c;

		r->cases = grow(r->cases, r->n_cases, &cap, sizeof(*r->cases));
		keys = grow(keys, r->n_cases, &key_cap, sizeof(*keys));
		c = &r->cases[r->n_cases];
		memset(c, 0, sizeof(*c));
		c->id = kw_db_column_int64(st, 0);
		kw_store_copy_text(c->account, sizeof(c->account), st, 1);
		kw_store_copy_text(c->login, sizeof(c->login), st, 2);
		kw_store_copy_text(c->kind, sizeof(c->kind), st, 3);
		kw_store_copy_text(c->reason, sizeof(c->reason), st, 4);
		c->opened = kw_db_column_int64(st, 5);
		c->updated = kw_db_column_int64(st, 6);
		c->events = (unsigned)kw_db_column_int(st, 7);
		kw_store_copy_text(c->role, sizeof(c->role), st, 8);
		kw_store_copy_text(c->sso_state, sizeof(c->sso_state), st, 9);
		c->last_seen = kw_db_column_int64(st, 10);
		keys[r->n_cases].user_id = kw_db_column_int64(st, 11);
		keys[r->n_cases].account_id = kw_db_column_int64(st, 12);
		keys[r->n_cases].rank = kw_db_column_int(st, 13);
		c->user_enabled = kw_db_column_int(st, 14) != 0;
		r->n_cases++;
	}
	kw_db_finalize(st);
	for (size_t i = 0; rc == KW_DB_DONE && i < r->n_cases; i++) {
		struct kw_sso_case *c = &r->cases[i];

		if (live_tokens(store, keys[i].user_id, keys[i].rank, r->now, &c->tokens,
				&c->n_tokens) < 0 ||
		    admin_find(store, keys[i].account_id, keys[i].user_id, c->admin) < 0)
			rc = KW_DB_ERROR;
	}
	free(keys);
	return rc == KW_DB_DONE ? 0 : -EIO;
}

static int read_stale(struct kw_store *store, int64_t account_id, struct kw_sso_review *r)
{
	struct kw_db_stmt *st = prep(
		store,
		"SELECT a.name, u.login, r.name, coalesce(u.sso_last_seen, 0), "
		"coalesce((SELECT c.id FROM sso_case c WHERE c.user_id = u.id AND "
		"c.closed IS NULL), 0), "
		"(SELECT count(*) FROM token t WHERE t.issuer_id = u.id AND " KW_SQL_TOKEN_VALID(
			"t", "u", "?2") ") "
					"FROM user u JOIN account a ON a.id = u.account_id "
					"JOIN role r ON r.id = u.role_id WHERE " STALE_SSO_USER(
						"u", "?3") " AND (?1 = 0 OR u.account_id = ?1) "
							   "ORDER BY a.name, u.login");
	size_t cap = 0;
	int rc;

	if (st == NULL)
		return -EIO;
	kw_db_bind_int64(st, 1, account_id);
	kw_db_bind_int64(st, 2, r->now);
	kw_db_bind_int64(st, 3, r->now - (int64_t)r->stale_days * DAY);
	while ((rc = kw_db_step(st)) == KW_DB_ROW) {
		struct kw_sso_stale_user *s;

		r->stale = grow(r->stale, r->n_stale, &cap, sizeof(*r->stale));
		s = &r->stale[r->n_stale++];
		memset(s, 0, sizeof(*s));
		kw_store_copy_text(s->account, sizeof(s->account), st, 0);
		kw_store_copy_text(s->login, sizeof(s->login), st, 1);
		kw_store_copy_text(s->role, sizeof(s->role), st, 2);
		s->last_seen = kw_db_column_int64(st, 3);
		s->case_id = kw_db_column_int64(st, 4);
		s->active_tokens = (unsigned)kw_db_column_int(st, 5);
	}
	kw_db_finalize(st);
	return rc == KW_DB_DONE ? 0 : -EIO;
}

int kw_store_sso_review_read(struct kw_store *store, int64_t account_id, struct kw_sso_review *r,
			     const char **error_r)
{
	int ret = 0;

	/* one read transaction, so that cases and stale users agree */
	if (kw_db_begin(kw_store_db(store), false) < 0)
		return kw_store_db_fail(store, error_r, "review");
	if (read_cases(store, account_id, r) < 0 || read_stale(store, account_id, r) < 0)
		ret = kw_store_db_fail(store, error_r, "review");
	kw_store_rollback(store); /* nothing written: ends the read transaction */
	return ret;
}
