/* cmd_report.c: keywarden report — risky tokens, for compliance auditors.
 *
 * Sections, each over the tokens that still validate (not deleted, not expired, issuer
 * enabled), optionally of one account:
 *   never_expires         no expiry
 *   sso_access_changed    issuer is an SSO user whose access was revoked or downgraded, or
 *                         who has not been seen for [sso] stale_days (default 30)
 *   role_above_issuer     the token's role ranks above its issuer's current role
 *   unused                never used, or not used for 90 days
 *   expiring_soon         expires within 7 days
 *   accounts_near_limit   accounts holding at least 80% of their token limit
 * The report only reads; the operator runs it (no --as), like 'account add'. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "jsonw.h"
#include "text.h"
#include "timeutil.h"

int kw_cmd_report(struct kw_cli *cli, int argc, char **argv);

#define DAY 86400
#define UNUSED_DAYS 90

/* The common columns; ?1 = now, ?2 = account name or NULL. */
#define SELECT_TOKENS                                                                              \
	"SELECT t.id, a.name, t.name, iu.login, r.name, t.created, t.expires, t.last_used, "       \
	"ir.name, iu.source, coalesce(iu.sso_state, ''), coalesce(iu.sso_last_seen, 0) "           \
	"FROM token t JOIN account a ON a.id = t.account_id JOIN user iu ON iu.id = t.issuer_id "  \
	"JOIN role r ON r.id = t.role_id JOIN role ir ON ir.id = iu.role_id "                      \
	"WHERE t.deleted IS NULL AND iu.enabled = 1 AND (t.expires IS NULL OR t.expires > ?1) "    \
	"AND (?2 IS NULL OR a.name = ?2) AND "

struct section {
	const char *key, *title, *where;
};

static const struct section sections[] = {
    {"never_expires", "Tokens that never expire", "t.expires IS NULL"},
    {"sso_access_changed",
     "Tokens of SSO users whose access was revoked or downgraded, or who were not seen "
     "recently",
     "iu.source = 'sso' AND (iu.sso_state IN ('revoked', 'downgraded') OR "
     "iu.sso_last_seen IS NULL OR iu.sso_last_seen < ?1 - ?3)"},
    {"role_above_issuer", "Tokens whose role exceeds their issuer's current role",
     "r.rank > ir.rank"},
    {"unused", "Tokens never used or unused for 90 days",
     "(t.last_used IS NULL OR t.last_used < ?1 - ?4)"},
    {"expiring_soon", "Tokens that expire within 7 days",
     "t.expires IS NOT NULL AND t.expires <= ?1 + ?5"},
};

struct row {
	int64_t id, created, expires, last_used, sso_last_seen;
	char account[KW_ACCOUNT_MAX + 1], name[KW_TOKEN_NAME_MAX + 1], issuer[KW_LOGIN_MAX + 1];
	char role[KW_ROLE_MAX + 1], issuer_role[KW_ROLE_MAX + 1], source[8], sso_state[16];
};

static void copy_col(char *dst, size_t size, sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	snprintf(dst, size, "%s", t != NULL ? (const char *)t : "");
}

static void read_row(sqlite3_stmt *st, struct row *r)
{
	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(st, 0);
	copy_col(r->account, sizeof(r->account), st, 1);
	copy_col(r->name, sizeof(r->name), st, 2);
	copy_col(r->issuer, sizeof(r->issuer), st, 3);
	copy_col(r->role, sizeof(r->role), st, 4);
	r->created = sqlite3_column_int64(st, 5);
	r->expires =
	    sqlite3_column_type(st, 6) == SQLITE_NULL ? KW_NEVER : sqlite3_column_int64(st, 6);
	r->last_used = sqlite3_column_int64(st, 7);
	copy_col(r->issuer_role, sizeof(r->issuer_role), st, 8);
	copy_col(r->source, sizeof(r->source), st, 9);
	copy_col(r->sso_state, sizeof(r->sso_state), st, 10);
	r->sso_last_seen = sqlite3_column_int64(st, 11);
}

/* Why the row is in the section, in words. */
static void reason(size_t section, const struct row *r, int64_t now, int64_t stale_days, char *buf,
		   size_t size)
{
	char t[KW_TIME_TEXT_MAX];

	switch (section) {
	case 0:
		snprintf(buf, size, "created %s, no expiry", (kw_time_format(r->created, t), t));
		break;
	case 1:
		if (strcmp(r->sso_state, "revoked") == 0 || strcmp(r->sso_state, "downgraded") == 0)
			snprintf(buf, size, "SSO access %s", r->sso_state);
		else if (r->sso_last_seen == 0)
			snprintf(buf, size, "never seen through SSO");
		else
			snprintf(buf, size, "not seen through SSO for %lld days (more than %lld)",
				 (long long)((now - r->sso_last_seen) / DAY),
				 (long long)stale_days);
		break;
	case 2:
		snprintf(buf, size, "token role %s, issuer now %s", r->role, r->issuer_role);
		break;
	case 3:
		if (r->last_used == 0)
			snprintf(buf, size, "never used (created %s)",
				 (kw_time_format(r->created, t), t));
		else
			snprintf(buf, size, "last used %s, %lld days ago",
				 (kw_time_format(r->last_used, t), t),
				 (long long)((now - r->last_used) / DAY));
		break;
	default:
		kw_time_format(r->expires, t);
		snprintf(buf, size, "expires %s", t);
		break;
	}
}

static void json_opt_time(const char *key, int64_t t, const char *none)
{
	char buf[KW_TIME_TEXT_MAX];

	printf(", \"%s\": ", key);
	if (t == 0 || t == KW_NEVER) {
		printf("%s", none);
		return;
	}
	kw_time_format(t, buf);
	printf("\"%s\"", buf);
}

/* Ends a report section: closes its JSON array or says "none", and adds its rows to *total. */
static int section_end(int rc, bool json, unsigned n, unsigned *total)
{
	if (rc != SQLITE_DONE)
		return -EIO;
	if (json)
		fputs(n > 0 ? "\n  ]" : "]", stdout);
	else if (n == 0)
		printf("  none\n");
	*total += n;
	return 0;
}

static int run_section(struct kw_store *store, size_t i, const char *account, int64_t now,
		       int64_t stale_days, bool json, unsigned *total)
{
	char sql[2048], why[256];
	sqlite3_stmt *st = NULL;
	struct row r;
	unsigned n = 0;
	int rc;

	snprintf(sql, sizeof(sql), "%s%s ORDER BY a.name, t.id", SELECT_TOKENS, sections[i].where);
	if (sqlite3_prepare_v2(kw_store_db(store), sql, -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, now);
	if (account != NULL)
		sqlite3_bind_text(st, 2, account, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, stale_days * DAY);
	sqlite3_bind_int64(st, 4, (int64_t)UNUSED_DAYS * DAY);
	sqlite3_bind_int64(st, 5, (int64_t)7 * DAY);
	if (json)
		printf("%s\n  \"%s\": [", i == 0 ? "" : ",", sections[i].key);
	else
		printf("\n%s\n", sections[i].title);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		read_row(st, &r);
		reason(i, &r, now, stale_days, why, sizeof(why));
		if (json) {
			printf("%s\n    {\"id\": %lld, \"account\": ", n == 0 ? "" : ",",
			       (long long)r.id);
			kw_json_string(stdout, r.account);
			fputs(", \"name\": ", stdout);
			kw_json_string(stdout, r.name);
			fputs(", \"issued_by\": ", stdout);
			kw_json_string(stdout, r.issuer);
			fputs(", \"role\": ", stdout);
			kw_json_string(stdout, r.role);
			fputs(", \"issuer_role\": ", stdout);
			kw_json_string(stdout, r.issuer_role);
			json_opt_time("expires", r.expires, "\"never\"");
			json_opt_time("last_used", r.last_used, "null");
			if (strcmp(r.source, "sso") == 0) {
				printf(", \"sso_state\": \"%s\"",
				       r.sso_state[0] != '\0' ? r.sso_state : "active");
				json_opt_time("sso_last_seen", r.sso_last_seen, "null");
			}
			fputs(", \"reason\": ", stdout);
			kw_json_string(stdout, why);
			fputs("}", stdout);
		} else {
			if (n == 0)
				printf("  %-8s %-16s %-24s %-16s %-24s %s\n", "ID", "ACCOUNT",
				       "NAME", "ISSUED BY", "ROLE", "WHY");
			/* padded by characters, shown safe (text.h) */
			printf("  %-8lld ", (long long)r.id);
			kw_text_pad(stdout, r.account, 16);
			fputc(' ', stdout);
			kw_text_pad(stdout, r.name, 24);
			fputc(' ', stdout);
			kw_text_pad(stdout, r.issuer, 16);
			fputc(' ', stdout);
			kw_text_pad(stdout, r.role, 24);
			fputc(' ', stdout);
			kw_text_print(stdout, why);
			fputc('\n', stdout);
		}
		n++;
	}
	sqlite3_finalize(st);
	return section_end(rc, json, n, total);
}

static int run_accounts(struct kw_store *store, const char *account, bool json, unsigned *total)
{
	sqlite3_stmt *st = NULL;
	unsigned n = 0;
	int rc;

	/* Tokens that count against the limit: every token not deleted (as at creation). */
	if (sqlite3_prepare_v2(kw_store_db(store),
			       "SELECT a.name, a.token_limit, count(t.id) FROM account a "
			       "LEFT JOIN token t ON t.account_id = a.id AND t.deleted IS NULL "
			       "WHERE ?1 IS NULL OR a.name = ?1 GROUP BY a.id "
			       "HAVING count(t.id) * 5 >= a.token_limit * 4 ORDER BY a.name",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	if (account != NULL)
		sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC);
	if (json)
		fputs(",\n  \"accounts_near_limit\": [", stdout);
	else
		printf("\nAccounts at 80%% or more of their token limit\n");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		long long limit = sqlite3_column_int64(st, 1), count = sqlite3_column_int64(st, 2);
		long long pct = limit > 0 ? count * 100 / limit : 100;

		if (json) {
			printf("%s\n    {\"account\": ", n == 0 ? "" : ",");
			kw_json_string(stdout, name != NULL ? name : "");
			printf(", \"tokens\": %lld, \"token_limit\": %lld, \"percent\": %lld}",
			       count, limit, pct);
		} else {
			if (n == 0)
				printf("  %-16s %8s %8s %8s\n", "ACCOUNT", "TOKENS", "LIMIT",
				       "USED");
			fputs("  ", stdout);
			kw_text_pad(stdout, name != NULL ? name : "", 16);
			printf(" %8lld %8lld %7lld%%\n", count, limit, pct);
		}
		n++;
	}
	sqlite3_finalize(st);
	return section_end(rc, json, n, total);
}

int kw_cmd_report(struct kw_cli *cli, int argc, char **argv)
{
	const char *account = NULL, *pos[1], *error = NULL;
	bool json = false;
	const struct kw_cli_opt opts[] = {
	    {"account", true, &account, NULL},
	    {"json", false, NULL, &json},
	    {NULL, false, NULL, NULL},
	};
	char now_text[KW_TIME_TEXT_MAX];
	struct kw_account acct;
	struct kw_store *store;
	uint64_t stale_days;
	unsigned total = 0;
	int64_t now = kw_now();
	int n_pos, ret, exit_code;

	if ((ret = kw_cli_parse(argc, argv, opts, pos, 0, &n_pos)) != 0)
		return ret;
	if (kw_config_get_uint(cli->cfg, "sso", "stale_days", 30, 1, 36500, &stale_days, &error) <
	    0) {
		fprintf(stderr, "keywarden: %s\n", error);
		return KW_EXIT_STATE;
	}
	if ((store = kw_cli_store(cli, &exit_code)) == NULL)
		return exit_code;
	if (account != NULL && (ret = kw_store_account_get(store, account, &acct, &error)) < 0)
		return kw_cli_fail(ret, error);
	kw_time_format(now, now_text);
	if (json) {
		printf("{\n  \"generated\": \"%s\", \"account\": ", now_text);
		if (account != NULL)
			kw_json_string(stdout, account);
		else
			fputs("null", stdout);
		printf(", \"stale_days\": %llu, \"unused_days\": %d, \"sections\": {",
		       (unsigned long long)stale_days, UNUSED_DAYS);
	} else {
		printf("keywarden report, %s, %s%s\n", now_text, account != NULL ? "account " : "",
		       account != NULL ? account : "all accounts");
	}
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		if (run_section(store, i, account, now, (int64_t)stale_days, json, &total) < 0)
			return kw_cli_fail(-EIO, sqlite3_errmsg(kw_store_db(store)));
	}
	if (run_accounts(store, account, json, &total) < 0)
		return kw_cli_fail(-EIO, sqlite3_errmsg(kw_store_db(store)));
	if (json)
		printf("\n  },\n  \"findings\": %u\n}\n", total);
	else
		printf("\n%u finding%s\n", total, total == 1 ? "" : "s");
	return KW_EXIT_OK;
}
