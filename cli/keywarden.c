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
#include "secret.h"

static const char usage_text[] =
	"usage: keywarden [--state-dir DIR | -c FILE] COMMAND ...\n"
	"\n"
	"  init\n"
	"  account add NAME [--token-limit N]\n"
	"  user add --account NAME LOGIN --role ROLE [--email ADDR]\n"
	"  user set LOGIN [--role ROLE] [--email ADDR] [--disable | --enable]\n"
	"                 [--expiry-emails on|off]\n"
	"  user list --account NAME [--json]\n"
	"  token create --as LOGIN --name NAME [--description TEXT] --role ROLE\n"
	"               [--expires never|YYYY-MM-DD|RFC3339-TIME]\n"
	"  token list --as LOGIN [--issued-by LOGIN] [--role ROLE]\n"
	"             [--status active|expired|deleted|disabled] [--json]\n"
	"  token show --as LOGIN ID [--json]\n"
	"  token delete --as LOGIN ID\n"
	"  token check TOKEN|- [--json]\n"
	"  audit verify [--anchor SEQ:HASH] [--quiet]\n"
	"  audit export [--since TIME] [--format jsonl]\n"
	"  notify run [--dry-run] [--account NAME]\n"
	"  report [--account NAME] [--json]\n"
	"  sso revoke LOGIN --reason TEXT\n"
	"  sso review [--account NAME] [--json]\n"
	"  sso dismiss CASE_ID --as ADMIN --reason TEXT\n"
	"\n"
	"The state folder (--state-dir, or $KEYWARDEN_STATE_DIR) holds the database, the key,\n"
	"the validator socket and an optional keywarden.conf. See keywarden(1).\n";

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
	fprintf(stderr, "keywarden: %s\n", error != NULL ? error : strerror(-code));
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
		{"state-dir", required_argument, NULL, 's'},
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct kw_cli cli = {0};
	const char *error = NULL;
	const char *cmd;
	int c, ret;

	kw_log_init("keywarden", KW_LOG_WARNING, false);
	/* '+': stop at the command, whose own options follow it. */
	while ((c = getopt_long(argc, argv, "+c:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			cli.opts.state_dir = optarg;
			break;
		case 'c':
			cli.opts.config_file = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return KW_EXIT_OK;
		case 'V':
			printf("keywarden %s\n", PACKAGE_VERSION);
			return KW_EXIT_OK;
		default:
			fputs(usage_text, stderr);
			return KW_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fputs(usage_text, stderr);
		return KW_EXIT_USAGE;
	}
	cmd = argv[optind];
	if (strcmp(cmd, "help") == 0) {
		fputs(usage_text, stdout);
		return KW_EXIT_OK;
	}
	if (strcmp(cmd, "init") != 0 && strcmp(cmd, "account") != 0 &&
	    strcmp(cmd, "user") != 0 && strcmp(cmd, "token") != 0 && strcmp(cmd, "audit") != 0 &&
	    strcmp(cmd, "notify") != 0 && strcmp(cmd, "report") != 0 &&
	    strcmp(cmd, "sso") != 0)
		return kw_cli_usage("unknown command '%s'", cmd);
	cli.opts.create_state_dir = strcmp(cmd, "init") == 0;
	ret = kw_config_load(&cli.opts, &cli.cfg, &error);
	if (ret < 0) {
		fprintf(stderr, "keywarden: %s\n", error);
		return KW_EXIT_STATE;
	}
	argc -= optind;
	argv += optind;
	/* Every event this command appends names the Unix user who ran it. */
	struct passwd *pw = getpwuid(getuid());
	kw_audit_set_origin(getuid(), pw != NULL ? pw->pw_name : NULL);
	if (strcmp(cmd, "init") == 0)
		ret = kw_cmd_init(&cli, argc, argv);
	else if (strcmp(cmd, "report") == 0)
		ret = kw_cmd_report(&cli, argc, argv);
	else if (argc < 2)
		ret = kw_cli_usage("'%s' needs a subcommand", cmd);
	else if (strcmp(cmd, "account") == 0)
		ret = kw_cmd_account(&cli, argc - 1, argv + 1);
	else if (strcmp(cmd, "user") == 0)
		ret = kw_cmd_user(&cli, argc - 1, argv + 1);
	else if (strcmp(cmd, "audit") == 0)
		ret = kw_cmd_audit(&cli, argc - 1, argv + 1);
	else if (strcmp(cmd, "notify") == 0)
		ret = kw_cmd_notify(&cli, argc - 1, argv + 1);
	else if (strcmp(cmd, "sso") == 0)
		ret = kw_cmd_sso(&cli, argc - 1, argv + 1);
	else
		ret = kw_cmd_token(&cli, argc - 1, argv + 1);
	kw_store_free(&cli.store);
	kw_config_free(&cli.cfg);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "keywarden: cannot write to standard output\n");
		if (ret == KW_EXIT_OK)
			ret = KW_EXIT_FAILURE;
	}
	return ret;
}
