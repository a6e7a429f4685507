/* cmd_notify.c: keywarden notify run — a thin front that runs keywarden-notify(8), the mail
 * program (notify/), with the same state folder or config file and the verb's arguments.
 *
 * The mail program is apart so that only it links libcurl; this front keeps the command that
 * operators and scripts know. It execs, so the exit code and every line are the program's.
 * KEYWARDEN_NOTIFY_PROGRAM names another program file (the tests use the build tree's). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#ifndef KW_NOTIFY_PROGRAM
#define KW_NOTIFY_PROGRAM "/usr/sbin/keywarden-notify"
#endif
#define KW_NOTIFY_PROGRAM_ENV "KEYWARDEN_NOTIFY_PROGRAM"

int kw_cmd_notify_run(struct kw_cli *cli, int argc, char **argv)
{
	const char *program = getenv(KW_NOTIFY_PROGRAM_ENV);
	char **args = calloc((size_t)argc + 4, sizeof(*args));
	int n = 0;

	if (args == NULL)
		abort();
	if (program == NULL || program[0] == '\0')
		program = KW_NOTIFY_PROGRAM;
	args[n++] = (char *)"keywarden-notify";
	if (cli->opts.state_dir != NULL) {
		args[n++] = (char *)"--state-dir";
		args[n++] = (char *)cli->opts.state_dir;
	}
	if (cli->opts.config_file != NULL) {
		args[n++] = (char *)"-c";
		args[n++] = (char *)cli->opts.config_file;
	}
	/* The verb's own arguments (--dry-run, --account NAME), checked by the program. */
	for (int i = 1; i < argc; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	fflush(stdout);
	execv(program, args);
	fprintf(stderr, "keywarden: cannot run %s: %s\n", program, strerror(errno));
	free(args);
	return KW_EXIT_FAILURE;
}
