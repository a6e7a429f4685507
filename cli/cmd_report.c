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

#define DAY 86400
#define UNUSED_DAYS 90
#define NEAR_LIMIT_PERCENT 80

/* The sections in the order of the report (what each holds: store.h, kw_report_section). */
struct section {
	const char *key, *title;
};

static const struct section sections[KW_REPORT_SECTIONS] = {
	[KW_REPORT_NEVER_EXPIRES] = { "never_expires", "Tokens that never expire" },
	[KW_REPORT_SSO_ACCESS_CHANGED] = { "sso_access_changed",
					   "Tokens of SSO users whose access was revoked or "
					   "downgraded, or who were not seen "
					   "recently" },
	[KW_REPORT_ROLE_ABOVE_ISSUER] = { "role_above_issuer",
					  "Tokens whose role exceeds their issuer's current role" },
	[KW_REPORT_UNUSED] = { "unused", "Tokens never used or unused for 90 days" },
	[KW_REPORT_EXPIRING_SOON] = { "expiring_soon", "Tokens that expire within 7 days" },
};

/* One section being printed. */
struct section_run {
	size_t section;
	int64_t now, stale_days;
	bool json;
	unsigned n;
};

/* Why the row is in the section, in words. */
static void reason(size_t section, const struct kw_report_token *r, int64_t now, int64_t stale_days,
		   char *buf, size_t size)
{
	char t[KW_TIME_TEXT_MAX];

	switch (section) {
	case KW_REPORT_NEVER_EXPIRES:
		snprintf(buf, size, "created %s, no expiry", (kw_time_format(r->created, t), t));
		break;
	case KW_REPORT_SSO_ACCESS_CHANGED:
		if (strcmp(r->sso_state, "revoked") == 0 || strcmp(r->sso_state, "downgraded") == 0)
			snprintf(buf, size, "SSO access %s", r->sso_state);
		else if (r->sso_last_seen == 0)
			snprintf(buf, size, "never seen through SSO");
		else
			snprintf(buf, size, "not seen through SSO for %lld days (more than %lld)",
				 (long long)((now - r->sso_last_seen) / DAY),
				 (long long)stale_days);
		break;
	case KW_REPORT_ROLE_ABOVE_ISSUER:
		snprintf(buf, size, "token role %s, issuer now %s", r->role, r->issuer_role);
		break;
	case KW_REPORT_UNUSED:
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
static int section_end(int ret, bool json, unsigned n, unsigned *total)
{
	if (ret < 0)
		return ret;
	if (json)
		fputs(n > 0 ? "\n  ]" : "]", stdout);
	else if (n == 0)
		printf("  none\n");
	*total += n;
	return 0;
}

static int print_token(const struct kw_report_token *r, void *ctx)
{
	struct section_run *run = ctx;
	unsigned n = run->n;
	bool json = run->json;
	char why[256];

	reason(run->section, r, run->now, run->stale_days, why, sizeof(why));
	if (json) {
		printf("%s\n    {\"id\": %lld, \"account\": ", n == 0 ? "" : ",", (long long)r->id);
		kw_json_string(stdout, r->account);
		fputs(", \"name\": ", stdout);
		kw_json_string(stdout, r->name);
		fputs(", \"issued_by\": ", stdout);
		kw_json_string(stdout, r->issuer);
		fputs(", \"role\": ", stdout);
		kw_json_string(stdout, r->role);
		fputs(", \"issuer_role\": ", stdout);
		kw_json_string(stdout, r->issuer_role);
		json_opt_time("expires", r->expires, "\"never\"");
		json_opt_time("last_used", r->last_used, "null");
		if (r->issuer_sso) {
			printf(", \"sso_state\": \"%s\"",
			       r->sso_state[0] != '\0' ? r->sso_state : "active");
			json_opt_time("sso_last_seen", r->sso_last_seen, "null");
		}
		fputs(", \"reason\": ", stdout);
		kw_json_string(stdout, why);
		fputs("}", stdout);
	} else {
		if (n == 0)
			printf("  %-8s %-16s %-24s %-16s %-24s %s\n", "ID", "ACCOUNT", "NAME",
			       "ISSUED BY", "ROLE", "WHY");
		/* padded by characters, shown safe (text.h) */
		printf("  %-8lld ", (long long)r->id);
		kw_text_pad(stdout, r->account, 16);
		fputc(' ', stdout);
		kw_text_pad(stdout, r->name, 24);
		fputc(' ', stdout);
		kw_text_pad(stdout, r->issuer, 16);
		fputc(' ', stdout);
		kw_text_pad(stdout, r->role, 24);
		fputc(' ', stdout);
		kw_text_print(stdout, why);
		fputc('\n', stdout);
	}
	run->n++;
	return 0;
}

static int run_section(struct kw_store *store, size_t i, const char *account, int64_t now,
		       int64_t stale_days, bool json, unsigned *total, const char **error_r)
{
	const struct kw_report_params params = {
		.now = now,
		.account = account,
		.stale_days = stale_days,
		.unused_days = UNUSED_DAYS,
		.expiring_days = 7,
	};
	struct section_run run = { i, now, stale_days, json, 0 };
	int ret;

	if (json)
		printf("%s\n  \"%s\": [", i == 0 ? "" : ",", sections[i].key);
	else
		printf("\n%s\n", sections[i].title);
	ret = kw_store_report_tokens(store, (enum kw_report_section)i, &params, print_token, &run,
				     error_r);
	return section_end(ret, json, run.n, total);
}

struct accounts_run {
	bool json;
	unsigned n;
};

static int print_account(const struct kw_report_account *a, void *ctx)
{
	struct accounts_run *run = ctx;
	const char *name = a->name;
	long long limit = a->token_limit, count = a->tokens;
	long long pct = limit > 0 ? count * 100 / limit : 100;
	unsigned n = run->n;

	if (run->json) {
		printf("%s\n    {\"account\": ", n == 0 ? "" : ",");
		kw_json_string(stdout, name);
		printf(", \"tokens\": %lld, \"token_limit\": %lld, \"percent\": %lld}", count,
		       limit, pct);
	} else {
		if (n == 0)
			printf("  %-16s %8s %8s %8s\n", "ACCOUNT", "TOKENS", "LIMIT", "USED");
		fputs("  ", stdout);
		kw_text_pad(stdout, name, 16);
		printf(" %8lld %8lld %7lld%%\n", count, limit, pct);
	}
	run->n++;
	return 0;
}

static int run_accounts(struct kw_store *store, const char *account, bool json, unsigned *total,
			const char **error_r)
{
	struct accounts_run run = { json, 0 };
	int ret;

	if (json)
		fputs(",\n  \"accounts_near_limit\": [", stdout);
	else
		printf("\nAccounts at 80%% or more of their token limit\n");
	ret = kw_store_report_accounts(store, account, NEAR_LIMIT_PERCENT, print_account, &run,
				       error_r);
	return section_end(ret, json, run.n, total);
}

int kw_cmd_report(struct kw_cli *cli, int argc, char **argv)
{
	const char *account = NULL, *pos[1], *error = NULL;
	bool json = false;
	const struct kw_cli_opt opts[] = {
		{ "account", true, &account, NULL },
		{ "json", false, NULL, &json },
		{ NULL, false, NULL, NULL },
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
	stale_days = kw_config_uint(cli->cfg, "sso", "stale_days");
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
	for (size_t i = 0; i < KW_REPORT_SECTIONS; i++) {
		ret = run_section(store, i, account, now, (int64_t)stale_days, json, &total,
				  &error);
		if (ret < 0)
			return kw_cli_fail(ret, error);
	}
	if ((ret = run_accounts(store, account, json, &total, &error)) < 0)
		return kw_cli_fail(ret, error);
	if (json)
		printf("\n  },\n  \"findings\": %u\n}\n", total);
	else
		printf("\n%u finding%s\n", total, total == 1 ? "" : "s");
	return KW_EXIT_OK;
}
