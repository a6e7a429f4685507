/* keywarden.c: the admin command's entry point: global options, dispatch, and the helpers
 * every command shares (store opening, error-to-exit-code mapping, option parsing). */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "cli.h"
#include "log.h"
#include "text.h"
#include "secret.h"

/* Every command, once: its group, its verb (NULL for a command without one), the rest of its
 * synopsis for the usage text, and the function that runs it. */
struct cmd {
	const char *group, *verb, *synopsis;
	kw_cli_cmd_fn *fn;
};

static const struct cmd cmd_table[] = {
	{ "init", NULL, "", kw_cmd_init },
	{ "account", "add", "NAME [--token-limit N]", kw_cmd_account_add },
	{ "user", "add", "--account NAME LOGIN --role ROLE [--email ADDR]", kw_cmd_user_add },
	{ "user", "set",
	  "LOGIN [--role ROLE] [--email ADDR] [--disable | --enable]\n"
	  "                 [--expiry-emails on|off]",
	  kw_cmd_user_set },
	{ "user", "list", "--account NAME [--json]", kw_cmd_user_list },
	{ "token", "create",
	  "--as LOGIN --name NAME [--description TEXT] --role ROLE\n"
	  "               [--expires never|YYYY-MM-DD|RFC3339-TIME]",
	  kw_cmd_token_create },
	{ "token", "list",
	  "--as LOGIN [--issued-by LOGIN] [--role ROLE]\n"
	  "             [--status active|expired|deleted|disabled] [--json]",
	  kw_cmd_token_list },
	{ "token", "show", "--as LOGIN ID [--json]", kw_cmd_token_show },
	{ "token", "delete", "--as LOGIN ID", kw_cmd_token_delete },
	{ "token", "check", "TOKEN|- [--json]", kw_cmd_token_check },
	{ "audit", "verify", "[--anchor SEQ:HASH] [--quiet]", kw_cmd_audit_verify },
	{ "audit", "export", "[--since TIME] [--format jsonl]", kw_cmd_audit_export },
	{ "notify", "run", "[--dry-run] [--account NAME]", kw_cmd_notify_run },
	{ "report", NULL, "[--account NAME] [--json]", kw_cmd_report },
	{ "sso", "revoke", "LOGIN --reason TEXT", kw_cmd_sso_revoke },
	{ "sso", "review", "[--account NAME] [--json]", kw_cmd_sso_review },
	{ "sso", "dismiss", "CASE_ID --as ADMIN --reason TEXT", kw_cmd_sso_dismiss },
};
#define N_CMDS (sizeof(cmd_table) / sizeof(cmd_table[0]))

static void usage(FILE *f)
{
	fputs("usage: keywarden [--state-dir DIR | -c FILE] COMMAND ...\n\n", f);
	for (size_t i = 0; i < N_CMDS; i++) {
		const struct cmd *c = &cmd_table[i];

		fprintf(f, "  %s%s%s%s%s\n", c->group, c->verb != NULL ? " " : "",
			c->verb != NULL ? c->verb : "", c->synopsis[0] != '\0' ? " " : "",
			c->synopsis);
	}
	fputs("\nThe state folder (--state-dir, or $KEYWARDEN_STATE_DIR) holds the database, the "
	      "key,\nthe validator socket and an optional keywarden.conf. See keywarden(1).\n",
	      f);
}

/* The command that argv names: *group_r is set when the group exists (so that an unknown verb
 * can be told from an unknown command). */
static const struct cmd *cmd_find(int argc, char **argv, bool *group_r)
{
	*group_r = false;
	for (size_t i = 0; i < N_CMDS; i++) {
		const struct cmd *c = &cmd_table[i];

		if (strcmp(c->group, argv[0]) != 0)
			continue;
		*group_r = true;
		if (c->verb == NULL || (argc > 1 && strcmp(c->verb, argv[1]) == 0))
			return c;
	}
	return NULL;
}

int kw_cli_exit_for(int code)
{
	switch (code) {
	case 0:
		return KW_EXIT_OK;
	case -EINVAL:
	case -ERANGE:
		return KW_EXIT_INVALID;
	case -ENOENT:
		return KW_EXIT_NOT_FOUND;
	case -EPERM:
	case -EACCES:
		return KW_EXIT_DENIED;
	case -EDQUOT:
		return KW_EXIT_LIMIT;
	case -EEXIST:
	case -EALREADY:
		return KW_EXIT_CONFLICT;
	case -EPROTO:
	case -ENOTDIR:
	case -ENOSPC:       /* the disk of the database is full */
	case -EKEYREJECTED: /* the key is not the database's */
		return KW_EXIT_STATE;
	default:
		return KW_EXIT_FAILURE;
	}
}

int kw_cli_fail(int code, const char *error)
{
	/* Errors may quote what the user or the database gave: shown safe (text.h). */
	fputs("keywarden: ", stderr);
	kw_text_print(stderr, error != NULL ? error : strerror(-code));
	fputc('\n', stderr);
	return kw_cli_exit_for(code);
}

int kw_cli_usage(const char *fmt, ...)
{
	va_list ap;

	fputs("keywarden: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see 'keywarden --help')\n", stderr);
	return KW_EXIT_USAGE;
}

struct kw_store *kw_cli_store(struct kw_cli *cli, int *exit_r)
{
	const char *error = NULL;
	int ret;

	if (cli->store != NULL)
		return cli->store;
	/* A missing or unusable state is its own kind of failure. */
	*exit_r = KW_EXIT_STATE;
	if (kw_cli_check_state_dir(cli) < 0)
		return NULL;
	ret = kw_store_open(kw_config_database(cli->cfg), cli->store_flags, &cli->store, &error);
	if (ret < 0) {
		fprintf(stderr, "keywarden: %s\n", error);
		return NULL;
	}
	return cli->store;
}

int kw_cli_check_state_dir(struct kw_cli *cli)
{
	const char *dir = kw_config_state_dir(cli->cfg), *why = NULL;
	int ret;

	/* The key and the database live there: nobody else may list, replace or read them.
	 * A missing folder (-c with paths elsewhere) is left to the key's and the store's own
	 * checks. */
	ret = kw_secret_dir_check(dir, &why);
	if (ret < 0 && ret != -ENOENT) {
		fprintf(stderr, "keywarden: state folder %s %s\n", dir, why);
		return -EPERM;
	}
	return 0;
}

int kw_cli_parse(int argc, char **argv, const struct kw_cli_opt *opts, const char **pos,
		 int max_pos, int *n_pos_r)
{
	int n_pos = 0;

	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *eq;
		const struct kw_cli_opt *o = NULL;
		size_t namelen;

		if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
			if (strcmp(arg, "--") == 0 && i + 1 < argc)
				arg = argv[++i];
			if (n_pos >= max_pos)
				return kw_cli_usage("unexpected argument '%s'", arg);
			pos[n_pos++] = arg;
			continue;
		}
		eq = strchr(arg + 2, '=');
		namelen = eq != NULL ? (size_t)(eq - arg - 2) : strlen(arg + 2);
		for (const struct kw_cli_opt *c = opts; c->name != NULL; c++) {
			if (strlen(c->name) == namelen && strncmp(c->name, arg + 2, namelen) == 0)
				o = c;
		}
		if (o == NULL)
			return kw_cli_usage("unknown option '%.*s' for '%s'", (int)namelen + 2, arg,
					    argv[0]);
		if (!o->has_value) {
			if (eq != NULL)
				return kw_cli_usage("option --%s takes no value", o->name);
			*o->flag = true;
			continue;
		}
		if (eq != NULL) {
			*o->value = eq + 1;
		} else {
			if (i + 1 >= argc)
				return kw_cli_usage("option --%s needs a value", o->name);
			*o->value = argv[++i];
		}
	}
	*n_pos_r = n_pos;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "state-dir", required_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct kw_cli cli = { 0 };
	const char *error = NULL;
	const struct cmd *c;
	struct passwd *pw;
	bool known_group;
	const char *cmd;
	int opt, ret;

	kw_log_init("keywarden", KW_LOG_WARNING, false);
	/* '+': stop at the command, whose own options follow it. */
	while ((opt = getopt_long(argc, argv, "+c:hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			cli.opts.state_dir = optarg;
			break;
		case 'c':
			cli.opts.config_file = optarg;
			break;
		case 'h':
			usage(stdout);
			return KW_EXIT_OK;
		case 'V':
			printf("keywarden %s\n", PACKAGE_VERSION);
			return KW_EXIT_OK;
		default:
			usage(stderr);
			return KW_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return KW_EXIT_USAGE;
	}
	cmd = argv[optind];
	if (strcmp(cmd, "help") == 0) {
		usage(stdout);
		return KW_EXIT_OK;
	}
	argc -= optind;
	argv += optind;
	c = cmd_find(argc, argv, &known_group);
	if (c == NULL && !known_group)
		return kw_cli_usage("unknown command '%s'", cmd);
	if (c == NULL && argc < 2)
		return kw_cli_usage("'%s' needs a subcommand", cmd);
	if (c == NULL)
		return kw_cli_usage("unknown command '%s %s'", cmd, argv[1]);
	cli.opts.create_state_dir = c->fn == kw_cmd_init;
	ret = kw_config_load(&cli.opts, &cli.cfg, &error);
	if (ret < 0) {
		fprintf(stderr, "keywarden: %s\n", error);
		return KW_EXIT_STATE;
	}
	/* Every event this command appends names the Unix user who ran it. */
	pw = getpwuid(getuid());
	kw_audit_set_origin(getuid(), pw != NULL ? pw->pw_name : NULL);
	if (pw != NULL)
		snprintf(cli.operator_name, sizeof(cli.operator_name), "unix:%s", pw->pw_name);
	else
		snprintf(cli.operator_name, sizeof(cli.operator_name), "unix:%u",
			 (unsigned)getuid());
	/* A command gets argv[0] == its verb, or its group when it has none. */
	ret = c->verb != NULL ? c->fn(&cli, argc - 1, argv + 1) : c->fn(&cli, argc, argv);
	kw_store_free(&cli.store);
	kw_config_free(&cli.cfg);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "keywarden: cannot write to standard output\n");
		if (ret == KW_EXIT_OK)
			ret = KW_EXIT_FAILURE;
	}
	return ret;
}
