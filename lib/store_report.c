/* store_report.c: the queries of `keywarden report` (see store.h, "reports for auditors"):
 * the token sections over the tokens that still validate, and the accounts near their limit.
 * The caller words and prints them; which rows belong to a section is decided here. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "store.h"
#include "store_private.h"
#include "store_sql.h"

#define DAY 86400

/* The common columns of every section; ?1 = now, ?2 = account name or NULL,
 * ?3 = stale_days, ?4 = unused_days, ?5 = expiring_days (in seconds). */
#define SELECT_TOKENS                                                                              \
	"SELECT t.id, a.name, t.name, iu.login, r.name, t.created, t.expires, t.last_used, "       \
	"ir.name, iu.source, coalesce(iu.sso_state, ''), coalesce(iu.sso_last_seen, 0) "           \
	"FROM token t JOIN account a ON a.id = t.account_id JOIN user iu ON iu.id = t.issuer_id "  \
	"JOIN role r ON r.id = t.role_id JOIN role ir ON ir.id = iu.role_id "                      \
	"WHERE " KW_SQL_TOKEN_VALID("t", "iu",                                                     \
				    "?1") " AND (CAST(?2 AS TEXT) IS NULL OR a.name = ?2) AND "
#define ORDER " ORDER BY a.name, t.id"

/* One statement per section, each a literal so that the statement cache keeps it. */
static const char *const section_sql[KW_REPORT_SECTIONS] = {
	[KW_REPORT_NEVER_EXPIRES] = SELECT_TOKENS "t.expires IS NULL" ORDER,
	[KW_REPORT_SSO_ACCESS_CHANGED] =
		SELECT_TOKENS "iu.source = 'sso' AND (iu.sso_state IN ('revoked', 'downgraded') "
			      "OR iu.sso_last_seen IS NULL OR iu.sso_last_seen < ?1 - ?3)" ORDER,
	[KW_REPORT_ROLE_ABOVE_ISSUER] = SELECT_TOKENS "r.rank > ir.rank" ORDER,
	[KW_REPORT_UNUSED] = SELECT_TOKENS "(t.last_used IS NULL OR t.last_used < ?1 - ?4)" ORDER,
	[KW_REPORT_EXPIRING_SOON] =
		SELECT_TOKENS "t.expires IS NOT NULL AND t.expires <= ?1 + ?5" ORDER,
};

static void read_row(struct kw_db_stmt *st, struct kw_report_token *r)
{
	memset(r, 0, sizeof(*r));
	r->id = (uint64_t)kw_db_column_int64(st, 0);
	kw_store_copy_text(r->account, sizeof(r->account), st, 1);
	kw_store_copy_text(r->name, sizeof(r->name), st, 2);
	kw_store_copy_text(r->issuer, sizeof(r->issuer), st, 3);
	kw_store_copy_text(r->role, sizeof(r->role), st, 4);
	r->created = kw_db_column_int64(st, 5);
	r->expires = kw_db_column_null(st, 6) ? KW_NEVER : kw_db_column_int64(st, 6);
	r->last_used = kw_db_column_int64(st, 7);
	kw_store_copy_text(r->issuer_role, sizeof(r->issuer_role), st, 8);
	r->issuer_sso = !kw_db_column_null(st, 9) && strcmp(kw_db_column_text(st, 9), "sso") == 0;
	kw_store_copy_text(r->sso_state, sizeof(r->sso_state), st, 10);
	r->sso_last_seen = kw_db_column_int64(st, 11);
}

int kw_store_report_tokens(struct kw_store *store, enum kw_report_section section,
			   const struct kw_report_params *params, kw_report_token_cb *cb, void *ctx,
			   const char **error_r)
{
	struct kw_report_token r;
	struct kw_db_stmt *st;
	int rc, ret;

	if ((unsigned)section >= KW_REPORT_SECTIONS)
		return kw_store_fail(store, -EINVAL, error_r, "no report section %d", (int)section);
	if ((st = kw_store_stmt(store, section_sql[section])) == NULL)
		return kw_store_db_fail(store, error_r, "report");
	kw_db_bind_int64(st, 1, params->now);
	if (params->account != NULL)
		kw_db_bind_text(st, 2, params->account);
	kw_db_bind_int64(st, 3, params->stale_days * DAY);
	kw_db_bind_int64(st, 4, params->unused_days * DAY);
	kw_db_bind_int64(st, 5, params->expiring_days * DAY);
	while ((rc = kw_db_step(st)) == KW_DB_ROW) {
		read_row(st, &r);
		if ((ret = cb(&r, ctx)) < 0) {
			kw_db_reset(st);
			return ret;
		}
	}
	ret = rc == KW_DB_DONE ? 0 : kw_store_db_fail(store, error_r, "report");
	kw_db_reset(st);
	return ret;
}

int kw_store_report_accounts(struct kw_store *store, const char *account, unsigned percent,
			     kw_report_account_cb *cb, void *ctx, const char **error_r)
{
	/* Tokens that count against the limit: every token not deleted (as at creation). */
	struct kw_db_stmt *st = kw_store_stmt(
		store, "SELECT a.name, a.token_limit, count(t.id) FROM account a "
		       "LEFT JOIN token t ON t.account_id = a.id AND t.deleted IS NULL "
		       "WHERE CAST(?1 AS TEXT) IS NULL OR a.name = ?1 GROUP BY a.id "
		       "HAVING count(t.id) * 100 >= a.token_limit * ?2 ORDER BY a.name");
	struct kw_report_account r;
	int rc, ret;

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "report");
	if (account != NULL)
		kw_db_bind_text(st, 1, account);
	kw_db_bind_int64(st, 2, percent);
	while ((rc = kw_db_step(st)) == KW_DB_ROW) {
		memset(&r, 0, sizeof(r));
		kw_store_copy_text(r.name, sizeof(r.name), st, 0);
		r.token_limit = kw_db_column_int64(st, 1);
		r.tokens = kw_db_column_int64(st, 2);
		if ((ret = cb(&r, ctx)) < 0) {
			kw_db_reset(st);
			return ret;
		}
	}
	ret = rc == KW_DB_DONE ? 0 : kw_store_db_fail(store, error_r, "report");
	kw_db_reset(st);
	return ret;
}
