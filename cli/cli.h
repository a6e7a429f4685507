/* cli.h: what the keywarden command's parts share: the context, exit codes, helpers.
 *
 * Exit codes are the CLI's contract with scripts (keywarden(1), EXIT STATUS); they are mapped
 * from store errors in exactly one place, kw_cli_exit_for(). */
#ifndef KW_CLI_H
#define KW_CLI_H

#include <stdbool.h>

#include "conf.h"
#include "store.h"

enum kw_exit {
	KW_EXIT_OK = 0,
	KW_EXIT_FAILURE = 1,     /* internal or database error */
	KW_EXIT_USAGE = 2,       /* unknown command or option, missing argument */
	KW_EXIT_INVALID = 3,     /* malformed or out-of-range value */
	KW_EXIT_NOT_FOUND = 4,   /* no such account, user, role or token */
	KW_EXIT_DENIED = 5,      /* the role rules forbid it, or the acting user is disabled */
	KW_EXIT_LIMIT = 6,       /* the account's token limit is reached */
	KW_EXIT_CONFLICT = 7,    /* already exists, already deleted */
	KW_EXIT_STATE = 8,       /* state folder, config, key or database unusable */
	KW_EXIT_AUDIT_BROKEN = 9, /* audit verify found a broken chain */
	/* token check: one code per protocol FAIL code */
	KW_EXIT_CHECK_INVALID = 10,
	KW_EXIT_CHECK_EXPIRED = 11,
	KW_EXIT_CHECK_DELETED = 12,
	KW_EXIT_CHECK_DISABLED = 13,
	KW_EXIT_CHECK_RATE_LIMITED = 14,
	KW_EXIT_CHECK_TEMP_FAIL = 15, /* includes: validator unreachable */
};

struct kw_cli {
	struct kw_config_options opts;
	struct kw_config *cfg;   /* loaded before any command but "help" */
	struct kw_store *store;  /* opened on first use by kw_cli_store() */
	unsigned store_flags;   /* for kw_store_open(): KW_STORE_REVOKE for revocations */
};

/* One command: `keywarden GROUP VERB args...`; argv[0] is the VERB. Returns an enum kw_exit. */
typedef int kw_cli_cmd_fn(struct kw_cli *cli, int argc, char **argv);

/* Refuses (printing why) a state folder open to other users: 0 or -EPERM. */
int kw_cli_check_state_dir(struct kw_cli *cli);
/* Opens (once) the store, after kw_cli_check_state_dir(); prints the error and returns NULL
 * on failure. */
struct kw_store *kw_cli_store(struct kw_cli *cli, int *exit_r);
/* Prints "keywarden: MESSAGE" on stderr and returns the exit code for a store error code. */
int kw_cli_fail(int code, const char *error);
int kw_cli_exit_for(int code);
/* Prints a usage error and returns KW_EXIT_USAGE. */
int kw_cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Option parsing for verbs: --name VALUE or --name=VALUE; flags without value. */
struct kw_cli_opt {
	const char *name;  /* without the leading "--" */
	bool has_value;
	const char **value; /* set for options with a value */
	bool *flag;         /* set for flags */
};
/* Parses argv[1..] (argv[0] is the verb); positional arguments are collected into pos (at most
 * max_pos). Returns 0 or KW_EXIT_USAGE after printing why. */
int kw_cli_parse(int argc, char **argv, const struct kw_cli_opt *opts, const char **pos,
		 int max_pos, int *n_pos_r);

/* Commands, by file. */
int kw_cmd_init(struct kw_cli *cli, int argc, char **argv);
int kw_cmd_account(struct kw_cli *cli, int argc, char **argv);
int kw_cmd_user(struct kw_cli *cli, int argc, char **argv);
int kw_cmd_token(struct kw_cli *cli, int argc, char **argv);
/* sso revoke, review, dismiss (cli/cmd_sso.c). */
int kw_cmd_sso(struct kw_cli *cli, int argc, char **argv);
/* audit verify/export, notify run, report (cmd_audit.c, cmd_notify.c, cmd_report.c);
 * kw_cmd_report gets argv[0] == "report", having no verb. */
int kw_cmd_audit(struct kw_cli *cli, int argc, char **argv);
int kw_cmd_notify(struct kw_cli *cli, int argc, char **argv);
int kw_cmd_report(struct kw_cli *cli, int argc, char **argv);
/* token check (cli/cmd_check.c): through libkeywarden and the validator socket. */
int kw_cmd_token_check(struct kw_cli *cli, int argc, char **argv);

#endif
