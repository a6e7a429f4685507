/* cmd_admin.c: keywarden init, account add, user add/set/list. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "jsonw.h"
#include "text.h"
#include "timeutil.h"
#include "token.h"

/* The audit actor of commands that act as the operator, not as a keywarden user. */
int kw_cmd_init(struct kw_cli *cli, int argc, char **argv)
{
	const char *key_file = kw_config_key_file(cli->cfg);
	const char *db_file = kw_config_database(cli->cfg);
	struct kw_store *store = NULL;
	struct kw_digest_key *key = NULL;
	const char *error = NULL;
	bool have_key, have_db;
	int ret;

	if (argc > 1)
		return kw_cli_usage("'init' takes no arguments");
	if (kw_cli_check_state_dir(cli) < 0)
		return KW_EXIT_STATE;
	have_key = access(key_file, F_OK) == 0;
	/* a server's database: the store says below whether it is new (its key check) */
	have_db = !kw_store_url_is_pg(db_file) && access(db_file, F_OK) == 0;
	if (have_db && !have_key) {
		fprintf(stderr,
			"keywarden: %s exists but the key %s is missing: without it no token "
			"of this database can be checked; restore the key instead of "
			"re-initialising\n",
			db_file, key_file);
		return KW_EXIT_STATE;
	}
	if (!have_key) {
		ret = kw_digest_key_create(key_file, &error);
		if (ret < 0) {
			fprintf(stderr, "keywarden: %s: %s\n", key_file, error);
			return KW_EXIT_STATE;
		}
	}
	ret = kw_digest_key_load(key_file, &key, &error);
	if (ret < 0) {
		fprintf(stderr, "keywarden: %s: %s\n", key_file, error);
		return KW_EXIT_STATE;
	}
	ret = kw_store_open(db_file, KW_STORE_CREATE, &store, &error);
	if (ret < 0) {
		kw_digest_key_free(&key);
		fprintf(stderr, "keywarden: %s\n", error);
		return KW_EXIT_STATE;
	}
	/* Records the key's fingerprint in a new database; refuses a key that is not an
	 * existing database's. */
	ret = kw_store_key_check(store, key, &error);
	kw_digest_key_free(&key);
	if (ret < 0) {
		fprintf(stderr, "keywarden: %s\n", error);
		kw_store_free(&store);
		return KW_EXIT_STATE;
	}
	kw_store_free(&store);
	/* The WAL and shared-memory files SQLite creates follow the database's mode. */
	if (have_db && have_key)
		fprintf(stderr, "keywarden: %s is already initialised (schema version %u)\n",
			kw_config_state_dir(cli->cfg), kw_store_schema_version());
	else
		fprintf(stderr, "keywarden: initialised %s (database %s, key %s)\n",
			kw_config_state_dir(cli->cfg), kw_config_store_name(cli->cfg), key_file);
	return KW_EXIT_OK;
}

int kw_cmd_account_add(struct kw_cli *cli, int argc, char **argv)
{
	const char *limit_text = NULL, *pos[1], *error = NULL;
	const struct kw_cli_opt opts[] = {
		{ "token-limit", true, &limit_text, NULL },
		{ NULL, false, NULL, NULL },
	};
	struct kw_store *store;
	long long limit = KW_DEFAULT_TOKEN_LIMIT;
	int n_pos, ret, exit_code;

	if ((ret = kw_cli_parse(argc, argv, opts, pos, 1, &n_pos)) != 0)
		return ret;
	if (n_pos != 1)
		return kw_cli_usage("'account add' needs the account NAME");
	if (limit_text != NULL) {
		char *end;
		errno = 0;
		limit = strtoll(limit_text, &end, 10);
		/* Digits only: strtoll() would also take leading blanks and a sign. */
		if (limit_text[0] < '0' || limit_text[0] > '9' || *end != '\0' || errno != 0 ||
		    limit < 0 || limit > 100000) {
			fprintf(stderr, "keywarden: --token-limit must be a number from 0 to "
					"100000\n");
			return KW_EXIT_INVALID;
		}
	}
	if ((store = kw_cli_store(cli, &exit_code)) == NULL)
		return exit_code;
	ret = kw_store_account_add(store, cli->operator_name, pos[0], limit, &error);
	if (ret < 0)
		return kw_cli_fail(ret, error);
	fprintf(stderr, "keywarden: account '%s' added (token limit %lld)\n", pos[0], limit);
	return KW_EXIT_OK;
}

static int parse_on_off(const char *opt, const char *v, int *out)
{
	if (strcmp(v, "on") == 0)
		*out = 1;
	else if (strcmp(v, "off") == 0)
		*out = 0;
	else {
		fprintf(stderr, "keywarden: %s must be 'on' or 'off'\n", opt);
		return KW_EXIT_INVALID;
	}
	return 0;
}

int kw_cmd_user_add(struct kw_cli *cli, int argc, char **argv)
{
	const char *account = NULL, *role = NULL, *email = NULL, *pos[1], *error = NULL;
	const struct kw_cli_opt opts[] = {
		{ "account", true, &account, NULL },
		{ "role", true, &role, NULL },
		{ "email", true, &email, NULL },
		{ NULL, false, NULL, NULL },
	};
	struct kw_store *store;
	int n_pos, ret, exit_code;

	if ((ret = kw_cli_parse(argc, argv, opts, pos, 1, &n_pos)) != 0)
		return ret;
	if (n_pos != 1 || account == NULL || role == NULL)
		return kw_cli_usage("'user add' needs --account NAME, LOGIN and --role ROLE");
	if ((store = kw_cli_store(cli, &exit_code)) == NULL)
		return exit_code;
	ret = kw_store_user_add(store, cli->operator_name, account, pos[0], role, email, &error);
	if (ret < 0)
		return kw_cli_fail(ret, error);
	fprintf(stderr, "keywarden: user '%s' added to account '%s'\n", pos[0], account);
	return KW_EXIT_OK;
}

int kw_cmd_user_set(struct kw_cli *cli, int argc, char **argv)
{
	const char *role = NULL, *email = NULL, *emails = NULL, *pos[1], *error = NULL;
	bool disable = false, enable = false;
	const struct kw_cli_opt opts[] = {
		{ "role", true, &role, NULL },
		{ "email", true, &email, NULL },
		{ "expiry-emails", true, &emails, NULL },
		{ "disable", false, NULL, &disable },
		{ "enable", false, NULL, &enable },
		{ NULL, false, NULL, NULL },
	};
	struct kw_user_change change = { .enabled = -1, .expiry_emails = -1 };
	struct kw_store *store;
	int n_pos, ret, exit_code;

	if ((ret = kw_cli_parse(argc, argv, opts, pos, 1, &n_pos)) != 0)
		return ret;
	if (n_pos != 1)
		return kw_cli_usage("'user set' needs the user's LOGIN");
	if (disable && enable)
		return kw_cli_usage("--disable and --enable exclude each other");
	if (role == NULL && email == NULL && emails == NULL && !disable && !enable)
		return kw_cli_usage("'user set' needs something to change");
	change.role = role;
	change.email = email;
	if (disable || enable)
		change.enabled = enable ? 1 : 0;
	if (emails != NULL &&
	    (ret = parse_on_off("--expiry-emails", emails, &change.expiry_emails)) != 0)
		return ret;
	if (change.enabled == 0)
		cli->store_flags |= KW_STORE_REVOKE;
	if ((store = kw_cli_store(cli, &exit_code)) == NULL)
		return exit_code;
	/* disabling uses the store's reserve on a full disk (a revocation) */
	ret = kw_store_user_set(store, cli->operator_name, pos[0], &change, &error);
	if (ret == -ENOSPC && change.enabled == 0) {
		fprintf(stderr,
			"keywarden: %s; the reserve is spent: the tokens of '%s' STILL "
			"VALIDATE until you free space and disable the user again\n",
			error, pos[0]);
		return KW_EXIT_STATE;
	}
	if (ret < 0)
		return kw_cli_fail(ret, error);
	fprintf(stderr, "keywarden: user '%s' changed\n", pos[0]);
	return KW_EXIT_OK;
}

struct user_list_ctx {
	bool json;
	unsigned n;
};

static int print_user(const struct kw_user *u, void *p)
{
	struct user_list_ctx *ctx = p;
	char seen[KW_TIME_TEXT_MAX] = "-";

	if (u->sso_last_seen != 0)
		kw_time_format(u->sso_last_seen, seen);
	if (ctx->json) {
		fputs(ctx->n++ == 0 ? "\n  {" : ",\n  {", stdout);
		fputs("\"login\": ", stdout);
		kw_json_string(stdout, u->login);
		fputs(", \"account\": ", stdout);
		kw_json_string(stdout, u->account);
		fputs(", \"role\": ", stdout);
		kw_json_string(stdout, u->role.name);
		fputs(", \"email\": ", stdout);
		if (u->email[0] != '\0')
			kw_json_string(stdout, u->email);
		else
			fputs("null", stdout);
		printf(", \"source\": \"%s\", \"enabled\": %s, \"expiry_emails\": %s",
		       u->sso ? "sso" : "local", u->enabled ? "true" : "false",
		       u->expiry_emails ? "true" : "false");
		if (u->sso)
			printf(", \"sso_state\": \"%s\", \"sso_last_seen\": \"%s\"",
			       u->sso_state[0] != '\0' ? u->sso_state : "active", seen);
		fputs("}", stdout);
		return 0;
	}
	if (ctx->n++ == 0)
		printf("%-24s %-34s %-6s %-8s %s\n", "LOGIN", "ROLE", "SOURCE", "STATE", "EMAIL");
	/* padded by characters, shown safe (text.h): rows may predate the text checks */
	kw_text_pad(stdout, u->login, 24);
	fputc(' ', stdout);
	kw_text_pad(stdout, u->role.name, 34);
	printf(" %-6s %-8s ", u->sso ? "sso" : "local", u->enabled ? "enabled" : "disabled");
	kw_text_print(stdout, u->email[0] != '\0' ? u->email : "-");
	fputc('\n', stdout);
	return 0;
}

int kw_cmd_user_list(struct kw_cli *cli, int argc, char **argv)
{
	const char *account = NULL, *pos[1], *error = NULL;
	bool json = false;
	const struct kw_cli_opt opts[] = {
		{ "account", true, &account, NULL },
		{ "json", false, NULL, &json },
		{ NULL, false, NULL, NULL },
	};
	struct user_list_ctx ctx = { 0 };
	struct kw_store *store;
	int n_pos, ret, exit_code;

	if ((ret = kw_cli_parse(argc, argv, opts, pos, 0, &n_pos)) != 0)
		return ret;
	if (account == NULL)
		return kw_cli_usage("'user list' needs --account NAME");
	if ((store = kw_cli_store(cli, &exit_code)) == NULL)
		return exit_code;
	struct kw_account acct;
	if ((ret = kw_store_account_get(store, account, &acct, &error)) < 0)
		return kw_cli_fail(ret, error);
	ctx.json = json;
	if (json)
		fputs("[", stdout);
	ret = kw_store_user_list(store, account, print_user, &ctx, &error);
	if (ret < 0)
		return kw_cli_fail(ret, error);
	if (json)
		fputs(ctx.n > 0 ? "\n]\n" : "]\n", stdout);
	else if (ctx.n == 0)
		fprintf(stderr, "keywarden: account '%s' has no users\n", account);
	return KW_EXIT_OK;
}
