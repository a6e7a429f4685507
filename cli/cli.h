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
	KW_EXIT_FAILURE = 1,      /* internal or database error */
	KW_EXIT_USAGE = 2,        /* unknown command or option, missing argument */
	KW_EXIT_INVALID = 3,      /* malformed or out-of-range value */
	KW_EXIT_NOT_FOUND = 4,    /* no such account, user, role or token */
	KW_EXIT_DENIED = 5,       /* the role rules forbid it, or the acting user is disabled */
	KW_EXIT_LIMIT = 6,        /* the account's token limit is reached */
	KW_EXIT_CONFLICT = 7,     /* already exists, already deleted */
	KW_EXIT_STATE = 8,        /* state folder, config, key or database unusable */
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
	struct kw_config *cfg;  /* loaded before any command but "help" */
	struct kw_store *store; /* opened on first use by kw_cli_store() */
	unsigned store_flags;   /* for kw_store_open(): KW_STORE_REVOKE for revocations */
	char operator_name[96]; /* "unix:LOGIN" (or "unix:UID"): who runs the command, the actor
				 * of the commands that take no --as */
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
	const char *name; /* without the leading "--" */
	bool has_value;
	const char **value; /* set for options with a value */
	bool *flag;         /* set for flags */
};
/* Parses argv[1..] (argv[0] is the verb); positional arguments are collected into pos (at most
 * max_pos). Returns 0 or KW_EXIT_USAGE after printing why. */
int kw_cli_parse(int argc, char **argv, const struct kw_cli_opt *opts, const char **pos,
		 int max_pos, int *n_pos_r);

/* Commands, by file; each is named once, with its usage, in keywarden.c's cmd_table[]. A
 * command gets argv[0] == its verb (or its group, for init and report). */
kw_cli_cmd_fn kw_cmd_init, kw_cmd_account_add;                           /* cmd_admin.c */
kw_cli_cmd_fn kw_cmd_user_add, kw_cmd_user_set, kw_cmd_user_list;        /* cmd_admin.c */
kw_cli_cmd_fn kw_cmd_token_create, kw_cmd_token_list, kw_cmd_token_show; /* cmd_token.c */
kw_cli_cmd_fn kw_cmd_token_delete;                                       /* cmd_token.c */
kw_cli_cmd_fn kw_cmd_token_check; /* cmd_check.c: through libkeywarden and the socket */
kw_cli_cmd_fn kw_cmd_sso_revoke, kw_cmd_sso_review, kw_cmd_sso_dismiss; /* cmd_sso.c */
kw_cli_cmd_fn kw_cmd_audit_verify, kw_cmd_audit_export;                 /* cmd_audit.c */
kw_cli_cmd_fn kw_cmd_notify_run; /* cmd_notify.c: runs keywarden-notify */
kw_cli_cmd_fn kw_cmd_report;     /* cmd_report.c */

#endif
