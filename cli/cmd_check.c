/* cmd_check.c: `keywarden token check TOKEN|- [--json]`, asks the running validator.
 *
 * Goes through libkeywarden and the validator socket, exactly as a service would, so that it
 * answers what services are told (not what the database says). The token is read from
 * standard input when given as "-", to keep it out of ps(1); the copy is wiped. Exit codes:
 * 0 valid, KW_EXIT_CHECK_* per FAIL code, KW_EXIT_CHECK_TEMP_FAIL also when the validator
 * cannot be reached (keywarden(1), EXIT STATUS). */
#include <config.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>

#include "cli.h"
#include "jsonw.h"
#include "keywarden.h"

/* A token line from standard input, LF included, is at most this long (the protocol's line). */
#define KW_CHECK_STDIN_MAX KW_PROTO_LINE_MAX

/* The one place where check statuses become exit codes. */
static int exit_for_status(enum kw_check_status status)
{
	switch (status) {
	case KW_CHECK_OK:
		return KW_EXIT_OK;
	case KW_CHECK_INVALID:
		return KW_EXIT_CHECK_INVALID;
	case KW_CHECK_EXPIRED:
		return KW_EXIT_CHECK_EXPIRED;
	case KW_CHECK_DELETED:
		return KW_EXIT_CHECK_DELETED;
	case KW_CHECK_DISABLED:
		return KW_EXIT_CHECK_DISABLED;
	case KW_CHECK_RATE_LIMITED:
		return KW_EXIT_CHECK_RATE_LIMITED;
	case KW_CHECK_TEMP_FAIL:
	default:
		return KW_EXIT_CHECK_TEMP_FAIL;
	}
}

/* Reads one line from standard input into buf (without the line end), with read(2) so that
 * no stdio buffer keeps a copy of the token. Returns 0, or KW_EXIT_USAGE after saying why. */
static int read_token(char *buf, size_t size)
{
	size_t len = 0;
	bool line_end = false;

	while (len < size - 1) {
		ssize_t n = read(STDIN_FILENO, buf + len, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (buf[len] == '\n') {
			line_end = true;
			break;
		}
		len++;
	}
	buf[len] = '\0';
	if (!line_end && len == size - 1)
		return kw_cli_usage("token check -: the line on standard input is too long");
	if (len > 0 && buf[len - 1] == '\r')
		buf[--len] = '\0';
	if (len == 0)
		return kw_cli_usage("token check -: no token on standard input");
	return 0;
}

static void print_result(const struct kw_check_result *res, bool json)
{
	const char *status = kw_check_status_name(res->status);

	if (!json) {
		printf("status: %s\n", status);
		if (res->status == KW_CHECK_OK)
			printf("token_id: %s\naccount: %s\nuser: %s\nrole: %s\nexpires: %s\n",
			       res->token_id, res->account, res->user, res->role, res->expires);
		return;
	}
	fputs("{\"status\":", stdout);
	kw_json_string(stdout, status);
	if (res->status == KW_CHECK_OK) {
		/* token_id is digits only (checked by the library) */
		printf(",\"token_id\":%s,\"account\":", res->token_id);
		kw_json_string(stdout, res->account);
		fputs(",\"user\":", stdout);
		kw_json_string(stdout, res->user);
		fputs(",\"role\":", stdout);
		kw_json_string(stdout, res->role);
		fputs(",\"expires\":", stdout);
		kw_json_string(stdout, res->expires);
	}
	fputs("}\n", stdout);
}

int kw_cmd_token_check(struct kw_cli *cli, int argc, char **argv)
{
	static char line[KW_CHECK_STDIN_MAX + 1]; /* static: kept out of the stack, wiped */
	const struct kw_check_opts check_opts = { .service = "keywarden-cli", .remote_ip = NULL };
	bool json = false;
	const struct kw_cli_opt opts[] = {
		{ .name = "json", .has_value = false, .flag = &json },
		{ .name = NULL },
	};
	struct kw_check_result res;
	struct kw_client *client;
	const char *pos[1], *token, *socket_path;
	int n_pos = 0, ret, code;

	ret = kw_cli_parse(argc, argv, opts, pos, 1, &n_pos);
	if (ret != 0)
		return ret;
	if (n_pos != 1)
		return kw_cli_usage("token check needs TOKEN, or - to read it from standard input");
	token = pos[0];
	if (strcmp(token, "-") == 0) {
		ret = read_token(line, sizeof(line));
		if (ret != 0)
			goto out;
		token = line;
	}
	socket_path = kw_config_socket(cli->cfg);
	client = kw_client_new(socket_path, 0);
	if (client == NULL) {
		fprintf(stderr, "keywarden: validator socket %s: %s\n", socket_path,
			strerror(errno));
		ret = KW_EXIT_CHECK_TEMP_FAIL;
		goto out;
	}
	code = kw_client_check(client, token, &check_opts, &res);
	if (code < 0) {
		const char *why = kw_client_error(client);
		fprintf(stderr, "keywarden: cannot ask the validator at %s: %s\n", socket_path,
			why[0] != '\0' ? why : strerror(-code));
		kw_client_free(&client);
		ret = KW_EXIT_CHECK_TEMP_FAIL;
		goto out;
	}
	kw_client_free(&client);
	print_result(&res, json);
	ret = exit_for_status(res.status);
out:
	explicit_bzero(line, sizeof(line));
	return ret;
}
