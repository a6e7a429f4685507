/* cmd_sso.c: keywarden sso revoke, review, dismiss: the admin side of the rule "SSO revocation
 * does not revoke API tokens" (lib/sso.h). None of these commands changes a token: tokens
 * are only ever deleted by `keywarden token delete`. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "jsonw.h"
#include "sso.h"
#include "timeutil.h"

#define STALE_NOTE "access may have been revoked at the IdP"

/* The audit actor of commands that act as the operator, not as a keywarden user. */
static void time_or(int64_t t, const char *none, char *buf)
{
	if (t == 0 || t == KW_NEVER)
		snprintf(buf, KW_TIME_TEXT_MAX, "%s", none);
	else
		kw_time_format(t, buf);
}

static void json_time_or_null(int64_t t)
{
	char buf[KW_TIME_TEXT_MAX];

	if (t == 0) {
		fputs("null", stdout);
		return;
	}
	time_or(t, "never", buf);
	printf("\"%s\"", buf);
}

int kw_cmd_sso_revoke(struct kw_cli *cli, int argc, char **argv)
{
	const char *reason = NULL, *pos[1], *error = NULL;
	const struct kw_cli_opt opts[] = {
		{ "reason", true, &reason, NULL },
		{ NULL, false, NULL, NULL },
	};
	struct kw_sso_result res;
	struct kw_store *store;
	int n_pos, ret, exit_code;

	if ((ret = kw_cli_parse(argc, argv, opts, pos, 1, &n_pos)) != 0)
		return ret;
	if (n_pos != 1 || reason == NULL)
		return kw_cli_usage("'sso revoke' needs the LOGIN and --reason TEXT");
	if ((store = kw_cli_store(cli, &exit_code)) == NULL)
		return exit_code;
	ret = kw_sso_revoke(store, cli->operator_name, pos[0], reason, kw_now(), &res, &error);
	if (ret < 0)
		return kw_cli_fail(ret, error);
	if (res.case_id != 0)
		fprintf(stderr,
			"keywarden: recorded the revocation of '%s'; no token was changed. Review "
			"case %lld lists %u active token%s: 'keywarden sso review'\n",
			pos[0], (long long)res.case_id, res.active_tokens,
			res.active_tokens == 1 ? "" : "s");
	else
		fprintf(stderr,
			"keywarden: recorded the revocation of '%s'; it holds no active token\n",
			pos[0]);
	return KW_EXIT_OK;
}

static void json_review(const struct kw_sso_review *r)
{
	char now[KW_TIME_TEXT_MAX], cmd[KW_SSO_COMMAND_MAX];

	kw_time_format(r->now, now);
	printf("{\"rule\": \"" KW_SSO_RULE "\", \"now\": \"%s\", \"stale_days\": %u, "
	       "\"cases\": [",
	       now, r->stale_days);
	for (size_t i = 0; i < r->n_cases; i++) {
		const struct kw_sso_case *c = &r->cases[i];

		printf("%s\n  {\"id\": %lld, \"account\": ", i == 0 ? "" : ",", (long long)c->id);
		kw_json_string(stdout, c->account);
		fputs(", \"user\": ", stdout);
		kw_json_string(stdout, c->login);
		printf(", \"kind\": \"%s\", \"reason\": ", c->kind);
		kw_json_string(stdout, c->reason);
		fputs(", \"opened\": ", stdout);
		json_time_or_null(c->opened);
		fputs(", \"updated\": ", stdout);
		json_time_or_null(c->updated);
		printf(", \"events\": %u, \"role\": ", c->events);
		kw_json_string(stdout, c->role);
		printf(", \"sso_state\": \"%s\", \"enabled\": %s, \"last_seen\": ",
		       c->sso_state[0] != '\0' ? c->sso_state : "active",
		       c->user_enabled ? "true" : "false");
		json_time_or_null(c->last_seen);
		fputs(", \"admin\": ", stdout);
		kw_json_string(stdout, c->admin);
		fputs(", \"tokens\": [", stdout);
		for (size_t j = 0; j < c->n_tokens; j++) {
			const struct kw_sso_token *t = &c->tokens[j];

			printf("%s\n    {\"id\": %llu, \"name\": ", j == 0 ? "" : ",",
			       (unsigned long long)t->id);
			kw_json_string(stdout, t->name);
			fputs(", \"role\": ", stdout);
			kw_json_string(stdout, t->role.name);
			fputs(", \"created\": ", stdout);
			json_time_or_null(t->created);
			fputs(", \"expires\": ", stdout);
			json_time_or_null(t->expires);
			fputs(", \"last_used\": ", stdout);
			json_time_or_null(t->last_used);
			fputs(", \"last_ip\": ", stdout);
			if (t->last_ip[0] != '\0')
				kw_json_string(stdout, t->last_ip);
			else
				fputs("null", stdout);
			kw_sso_delete_command(c->admin, t->id, cmd, sizeof(cmd));
			printf(", \"above_user_role\": %s, \"delete\": ",
			       t->above_user_role ? "true" : "false");
			kw_json_string(stdout, cmd);
			fputs("}", stdout);
		}
		fputs(c->n_tokens > 0 ? "\n  ]}" : "]}", stdout);
	}
	fputs(r->n_cases > 0 ? "\n], \"stale\": [" : "], \"stale\": [", stdout);
	for (size_t i = 0; i < r->n_stale; i++) {
		const struct kw_sso_stale_user *s = &r->stale[i];

		fputs(i == 0 ? "\n  {\"account\": " : ",\n  {\"account\": ", stdout);
		kw_json_string(stdout, s->account);
		fputs(", \"user\": ", stdout);
		kw_json_string(stdout, s->login);
		fputs(", \"role\": ", stdout);
		kw_json_string(stdout, s->role);
		fputs(", \"last_seen\": ", stdout);
		json_time_or_null(s->last_seen);
		printf(", \"active_tokens\": %u, \"case\": ", s->active_tokens);
		if (s->case_id != 0)
			printf("%lld", (long long)s->case_id);
		else
			fputs("null", stdout);
		fputs(", \"note\": \"" STALE_NOTE "\"}", stdout);
	}
	fputs(r->n_stale > 0 ? "\n]}\n" : "]}\n", stdout);
}

static void text_review(const struct kw_sso_review *r)
{
	char t1[KW_TIME_TEXT_MAX], t2[KW_TIME_TEXT_MAX], cmd[KW_SSO_COMMAND_MAX];

	if (r->n_cases > 0)
		printf(KW_SSO_RULE ": delete each token below that must stop working, or dismiss "
				   "the case (keywarden sso dismiss CASE_ID --as ADMIN --reason "
				   "TEXT).\n");
	for (size_t i = 0; i < r->n_cases; i++) {
		const struct kw_sso_case *c = &r->cases[i];

		time_or(c->opened, "-", t1);
		printf("\ncase %lld  %s/%s  %s  opened %s", (long long)c->id, c->account, c->login,
		       c->kind, t1);
		if (c->events > 1) {
			time_or(c->updated, "-", t2);
			printf(", updated %s (%u events)", t2, c->events);
		}
		time_or(c->last_seen, "never", t2);
		printf("\n  %s\n  user role %s, SSO state %s, last seen %s\n", c->reason, c->role,
		       c->sso_state[0] != '\0' ? c->sso_state : "active", t2);
		if (!c->user_enabled && c->n_tokens > 0)
			printf("  the user is disabled: these tokens validate again once it is "
			       "enabled\n");
		if (c->n_tokens == 0)
			printf("  no active token left (the case closes at the next review)\n");
		for (size_t j = 0; j < c->n_tokens; j++) {
			const struct kw_sso_token *t = &c->tokens[j];

			time_or(t->expires, "never", t1);
			time_or(t->last_used, "never", t2);
			printf("  token %llu \"%s\"  role %s%s  expires %s  last used %s%s%s\n",
			       (unsigned long long)t->id, t->name, t->role.name,
			       t->above_user_role ? " (above the user's role)" : "", t1, t2,
			       t->last_ip[0] != '\0' ? " from " : "", t->last_ip);
			kw_sso_delete_command(c->admin, t->id, cmd, sizeof(cmd));
			printf("    %s\n", cmd);
		}
	}
	if (r->n_stale > 0)
		printf("%sSSO users not seen in any assertion for %u days: " STALE_NOTE "\n",
		       r->n_cases > 0 ? "\n" : "", r->stale_days);
	for (size_t i = 0; i < r->n_stale; i++) {
		const struct kw_sso_stale_user *s = &r->stale[i];

		time_or(s->last_seen, "never", t1);
		printf("  %s/%s  %s  last seen %s  %u active token%s", s->account, s->login,
		       s->role, t1, s->active_tokens, s->active_tokens == 1 ? "" : "s");
		if (s->case_id != 0)
			printf("  case %lld", (long long)s->case_id);
		fputs("\n", stdout);
	}
}

int kw_cmd_sso_review(struct kw_cli *cli, int argc, char **argv)
{
	const char *account = NULL, *pos[1], *error = NULL;
	bool json = false;
	const struct kw_cli_opt opts[] = {
		{ "account", true, &account, NULL },
		{ "json", false, NULL, &json },
		{ NULL, false, NULL, NULL },
	};
	struct kw_sso_review *review = NULL;
	struct kw_store *store;
	uint64_t stale_days;
	int n_pos, ret, exit_code;

	if ((ret = kw_cli_parse(argc, argv, opts, pos, 0, &n_pos)) != 0)
		return ret;
	stale_days = kw_config_uint(cli->cfg, "sso", "stale_days");
	if ((store = kw_cli_store(cli, &exit_code)) == NULL)
		return exit_code;
	ret = kw_sso_review(store, account, kw_now(), (unsigned)stale_days, &review, &error);
	if (ret < 0)
		return kw_cli_fail(ret, error);
	if (json)
		json_review(review);
	else if (review->n_cases == 0 && review->n_stale == 0)
		fprintf(stderr, "keywarden: no open review case and no stale SSO user\n");
	else
		text_review(review);
	kw_sso_review_free(&review);
	return KW_EXIT_OK;
}

int kw_cmd_sso_dismiss(struct kw_cli *cli, int argc, char **argv)
{
	const char *as = NULL, *reason = NULL, *pos[1], *error = NULL;
	const struct kw_cli_opt opts[] = {
		{ "as", true, &as, NULL },
		{ "reason", true, &reason, NULL },
		{ NULL, false, NULL, NULL },
	};
	struct kw_store *store;
	long long case_id;
	char *end;
	int n_pos, ret, exit_code;

	if ((ret = kw_cli_parse(argc, argv, opts, pos, 1, &n_pos)) != 0)
		return ret;
	if (n_pos != 1 || as == NULL || reason == NULL)
		return kw_cli_usage(
			"'sso dismiss' needs the CASE_ID, --as ADMIN and --reason TEXT");
	errno = 0;
	case_id = strtoll(pos[0], &end, 10);
	if (errno != 0 || end == pos[0] || *end != '\0' || case_id <= 0 || pos[0][0] == '+') {
		fprintf(stderr,
			"keywarden: '%s' is not a review case id (a number, as 'keywarden "
			"sso review' shows it)\n",
			pos[0]);
		return KW_EXIT_INVALID;
	}
	if ((store = kw_cli_store(cli, &exit_code)) == NULL)
		return exit_code;
	ret = kw_sso_dismiss(store, as, (int64_t)case_id, reason, kw_now(), &error);
	if (ret < 0)
		return kw_cli_fail(ret, error);
	fprintf(stderr, "keywarden: review case %lld dismissed; its tokens were not changed\n",
		case_id);
	return KW_EXIT_OK;
}
