/* cmd_token.c: keywarden token create, list, show, delete (check is in cmd_check.c). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cli.h"
#include "jsonw.h"
#include "sso.h"
#include "text.h"
#include "timeutil.h"
#include "token.h"

static int load_key(struct kw_cli *cli, struct kw_digest_key **key_r)
{
	const char *error = NULL;
	int ret = kw_digest_key_load(kw_config_key_file(cli->cfg), key_r, &error);

	if (ret < 0) {
		fprintf(stderr, "keywarden: %s: %s\n", kw_config_key_file(cli->cfg), error);
		return KW_EXIT_STATE;
	}
	if ((ret = kw_store_key_check(cli->store, *key_r, &error)) < 0) {
		kw_digest_key_free(key_r);
		return kw_cli_fail(ret, error);
	}
	return 0;
}

static int parse_expires(const char *text, int64_t *expires_r)
{
	int64_t t;

	if (text == NULL || strcmp(text, "never") == 0) {
		*expires_r = KW_NEVER;
		return 0;
	}
	if (kw_time_parse(text, 1, &t) < 0) {
		fprintf(stderr,
			"keywarden: --expires: '%s' is not 'never', a date (YYYY-MM-DD) "
			"or an RFC 3339 time\n",
			text);
		return KW_EXIT_INVALID;
	}
	if (t <= kw_now()) {
		fprintf(stderr, "keywarden: --expires: %s lies in the past\n", text);
		return KW_EXIT_INVALID;
	}
	*expires_r = t;
	return 0;
}

int kw_cmd_token_create(struct kw_cli *cli, int argc, char **argv)
{
	const char *as = NULL, *name = NULL, *desc = "", *role = NULL, *expires_text = NULL;
	const char *pos[1], *error = NULL;
	const struct kw_cli_opt opts[] = {
		{ "as", true, &as, NULL },
		{ "name", true, &name, NULL },
		{ "description", true, &desc, NULL },
		{ "role", true, &role, NULL },
		{ "expires", true, &expires_text, NULL },
		{ NULL, false, NULL, NULL },
	};
	struct kw_digest_key *key = NULL;
	struct kw_store *store;
	char text[KW_TOKEN_TEXT_MAX];
	int64_t expires;
	uint64_t id;
	int n_pos, ret, exit_code;

	if ((ret = kw_cli_parse(argc, argv, opts, pos, 0, &n_pos)) != 0)
		return ret;
	if (as == NULL || name == NULL || role == NULL)
		return kw_cli_usage("'token create' needs --as LOGIN, --name NAME and --role ROLE");
	if ((ret = parse_expires(expires_text, &expires)) != 0)
		return ret;
	if ((store = kw_cli_store(cli, &exit_code)) == NULL)
		return exit_code;
	if ((ret = load_key(cli, &key)) != 0)
		return ret;
	ret = kw_store_token_create(store, key, as, name, desc, role, expires, &id, text, &error);
	kw_digest_key_free(&key);
	if (ret < 0)
		return kw_cli_fail(ret, error);
	/* The token alone on stdout, so that scripts can capture it; the rest on stderr. */
	printf("%s\n", text);
	OPENSSL_cleanse(text, sizeof(text));
	fprintf(stderr,
		"keywarden: token %llu created. Copy it now: it is not stored and "
		"cannot be shown again.\n",
		(unsigned long long)id);
	/* SSO users learn here that revoking them at the IdP will not revoke this token. */
	struct kw_user issuer;
	if (kw_store_user_get(store, as, &issuer, NULL) == 0)
		kw_sso_token_notice(&issuer, id, stderr);
	return KW_EXIT_OK;
}

struct list_ctx {
	bool json;
	int64_t now;
	unsigned n;
	struct kw_token_info *rows;
	size_t n_rows, cap;
};

static bool expires_soon(const struct kw_token_info *t, int64_t now)
{
	return t->status == KW_TOKEN_ACTIVE && t->expires != KW_NEVER &&
	       t->expires - now <= KW_EXPIRY_SOON;
}

static void time_or(int64_t t, const char *none, char *buf)
{
	if (t == 0 || t == KW_NEVER)
		snprintf(buf, KW_TIME_TEXT_MAX, "%s", none);
	else
		kw_time_format(t, buf);
}

static void json_token(const struct kw_token_info *t, int64_t now)
{
	char created[KW_TIME_TEXT_MAX], used[KW_TIME_TEXT_MAX], expires[KW_TIME_TEXT_MAX];
	char deleted[KW_TIME_TEXT_MAX];

	kw_time_format(t->created, created);
	time_or(t->expires, "never", expires);
	printf("{\"id\": %llu, \"name\": ", (unsigned long long)t->id);
	kw_json_string(stdout, t->name);
	fputs(", \"description\": ", stdout);
	kw_json_string(stdout, t->description);
	fputs(", \"issued_by\": ", stdout);
	kw_json_string(stdout, t->issuer);
	fputs(", \"role\": ", stdout);
	kw_json_string(stdout, t->role.name);
	printf(", \"created\": \"%s\", \"last_used\": ", created);
	if (t->last_used != 0) {
		kw_time_format(t->last_used, used);
		printf("\"%s\"", used);
	} else {
		fputs("null", stdout);
	}
	fputs(", \"last_ip\": ", stdout);
	if (t->last_ip[0] != '\0')
		kw_json_string(stdout, t->last_ip);
	else
		fputs("null", stdout);
	printf(", \"expires\": \"%s\", \"status\": \"%s\", \"expires_soon\": %s", expires,
	       kw_token_status_name(t->status), expires_soon(t, now) ? "true" : "false");
	if (t->deleted != 0) {
		kw_time_format(t->deleted, deleted);
		printf(", \"deleted\": \"%s\", \"deleted_by\": ", deleted);
		kw_json_string(stdout, t->deleted_by);
	}
	fputs("}", stdout);
}

static int collect_token(const struct kw_token_info *t, void *p)
{
	struct list_ctx *ctx = p;

	if (ctx->n_rows == ctx->cap) {
		size_t cap = ctx->cap == 0 ? 16 : ctx->cap * 2;
		struct kw_token_info *rows = realloc(ctx->rows, cap * sizeof(*rows));
		if (rows == NULL)
			return -ENOMEM;
		ctx->rows = rows;
		ctx->cap = cap;
	}
	ctx->rows[ctx->n_rows++] = *t;
	return 0;
}

/* Prints s cut to width characters ('~' marks a cut), padded, controls shown as U+FFFD. */
static void cell(const char *s, int width)
{
	kw_text_cell(stdout, s, (size_t)width);
	fputs("  ", stdout);
}

/* The rest of a line of token show: the value shown safe (text.h). */
static void value(const char *s)
{
	kw_text_print(stdout, s);
	fputc('\n', stdout);
}

static void field(const char *label, const char *s)
{
	printf("%-13s", label);
	value(s);
}

static void print_table(const struct list_ctx *ctx)
{
	unsigned soon = 0;

	for (size_t i = 0; i < ctx->n_rows; i++)
		soon += expires_soon(&ctx->rows[i], ctx->now);
	if (soon > 0)
		printf("! %u token%s expire%s within 7 days\n", soon, soon == 1 ? "" : "s",
		       soon == 1 ? "s" : "");
	printf("  %-6s  %-20s  %-24s  %-16s  %-24s  %-20s  %-20s  %-20s  %s\n", "ID", "NAME",
	       "DESCRIPTION", "ISSUED BY", "ROLE", "CREATED", "LAST USAGE", "EXPIRES", "STATUS");
	for (size_t i = 0; i < ctx->n_rows; i++) {
		const struct kw_token_info *t = &ctx->rows[i];
		char created[KW_TIME_TEXT_MAX], used[KW_TIME_TEXT_MAX], expires[KW_TIME_TEXT_MAX];
		char id[24];

		kw_time_format(t->created, created);
		time_or(t->last_used, "never", used);
		time_or(t->expires, "never", expires);
		snprintf(id, sizeof(id), "%llu", (unsigned long long)t->id);
		fputs(expires_soon(t, ctx->now) ? "! " : "  ", stdout);
		cell(id, 6);
		cell(t->name, 20);
		cell(t->description[0] != '\0' ? t->description : "-", 24);
		cell(t->issuer, 16);
		cell(t->role.name, 24);
		cell(created, 20);
		cell(used, 20);
		cell(expires, 20);
		printf("%s\n", kw_token_status_name(t->status));
	}
}

int kw_cmd_token_list(struct kw_cli *cli, int argc, char **argv)
{
	const char *as = NULL, *issued_by = NULL, *role = NULL, *status = NULL, *pos[1];
	const char *error = NULL;
	bool json = false;
	const struct kw_cli_opt opts[] = {
		{ "as", true, &as, NULL },      { "issued-by", true, &issued_by, NULL },
		{ "role", true, &role, NULL },  { "status", true, &status, NULL },
		{ "json", false, NULL, &json }, { NULL, false, NULL, NULL },
	};
	struct kw_token_filter filter = { .status = -1 };
	struct list_ctx ctx = { .now = kw_now() };
	struct kw_store *store;
	int n_pos, ret, exit_code;

	if ((ret = kw_cli_parse(argc, argv, opts, pos, 0, &n_pos)) != 0)
		return ret;
	if (as == NULL)
		return kw_cli_usage("'token list' needs --as LOGIN");
	if (status != NULL) {
		enum kw_token_status st;
		if (kw_token_status_parse(status, &st) < 0) {
			fprintf(stderr, "keywarden: --status must be active, expired, deleted or "
					"disabled\n");
			return KW_EXIT_INVALID;
		}
		filter.status = (int)st;
	}
	filter.issued_by = issued_by;
	filter.role = role;
	if ((store = kw_cli_store(cli, &exit_code)) == NULL)
		return exit_code;
	ret = kw_store_token_list(store, as, &filter, ctx.now, collect_token, &ctx, &error);
	if (ret < 0) {
		free(ctx.rows);
		return ret == -ENOMEM ? kw_cli_fail(ret, "out of memory") : kw_cli_fail(ret, error);
	}
	if (json) {
		fputs("[", stdout);
		for (size_t i = 0; i < ctx.n_rows; i++) {
			fputs(i == 0 ? "\n  " : ",\n  ", stdout);
			json_token(&ctx.rows[i], ctx.now);
		}
		fputs(ctx.n_rows > 0 ? "\n]\n" : "]\n", stdout);
	} else if (ctx.n_rows == 0) {
		fprintf(stderr, "keywarden: no tokens match\n");
	} else {
		print_table(&ctx);
	}
	free(ctx.rows);
	return KW_EXIT_OK;
}

static int parse_id_arg(const char *text, uint64_t *id_r)
{
	if (kw_token_id_parse(text, id_r) < 0) {
		fprintf(stderr, "keywarden: '%s' is not a token id (a number such as 7711)\n",
			text);
		return KW_EXIT_INVALID;
	}
	return 0;
}

int kw_cmd_token_show(struct kw_cli *cli, int argc, char **argv)
{
	const char *as = NULL, *pos[1], *error = NULL;
	bool json = false;
	const struct kw_cli_opt opts[] = {
		{ "as", true, &as, NULL },
		{ "json", false, NULL, &json },
		{ NULL, false, NULL, NULL },
	};
	struct kw_token_info t;
	struct kw_store *store;
	char created[KW_TIME_TEXT_MAX], used[KW_TIME_TEXT_MAX], expires[KW_TIME_TEXT_MAX];
	int64_t now = kw_now();
	uint64_t id;
	int n_pos, ret, exit_code;

	if ((ret = kw_cli_parse(argc, argv, opts, pos, 1, &n_pos)) != 0)
		return ret;
	if (as == NULL || n_pos != 1)
		return kw_cli_usage("'token show' needs --as LOGIN and the token ID");
	if ((ret = parse_id_arg(pos[0], &id)) != 0)
		return ret;
	if ((store = kw_cli_store(cli, &exit_code)) == NULL)
		return exit_code;
	ret = kw_store_token_get(store, as, id, now, &t, &error);
	if (ret < 0)
		return kw_cli_fail(ret, error);
	if (json) {
		json_token(&t, now);
		fputs("\n", stdout);
		return KW_EXIT_OK;
	}
	kw_time_format(t.created, created);
	time_or(t.last_used, "never", used);
	time_or(t.expires, "never", expires);
	printf("id:          %llu\n", (unsigned long long)t.id);
	field("name:", t.name);
	field("description:", t.description);
	field("issued by:", t.issuer);
	field("role:", t.role.name);
	printf("created:     %s\nlast usage:  %s%s", created, used,
	       t.last_ip[0] != '\0' ? " from " : "");
	value(t.last_ip);
	printf("expires:     %s%s\nstatus:      %s\n", expires,
	       expires_soon(&t, now) ? " (within 7 days!)" : "", kw_token_status_name(t.status));
	if (t.deleted != 0) {
		char deleted[KW_TIME_TEXT_MAX];
		kw_time_format(t.deleted, deleted);
		printf("deleted:     %s by ", deleted);
		value(t.deleted_by);
	}
	return KW_EXIT_OK;
}

int kw_cmd_token_delete(struct kw_cli *cli, int argc, char **argv)
{
	const char *as = NULL, *pos[1], *error = NULL;
	const struct kw_cli_opt opts[] = {
		{ "as", true, &as, NULL },
		{ NULL, false, NULL, NULL },
	};
	struct kw_store *store;
	uint64_t id;
	int n_pos, ret, exit_code;

	if ((ret = kw_cli_parse(argc, argv, opts, pos, 1, &n_pos)) != 0)
		return ret;
	if (as == NULL || n_pos != 1)
		return kw_cli_usage("'token delete' needs --as LOGIN and the token ID");
	if ((ret = parse_id_arg(pos[0], &id)) != 0)
		return ret;
	cli->store_flags |= KW_STORE_REVOKE;
	if ((store = kw_cli_store(cli, &exit_code)) == NULL)
		return exit_code;
	ret = kw_store_token_delete(store, as, id, &error); /* uses the reserve on a full disk */
	if (ret == -ENOSPC) {
		fprintf(stderr,
			"keywarden: %s; the reserve is spent: token %llu STILL VALIDATES "
			"until you free space and delete it again\n",
			error, (unsigned long long)id);
		return KW_EXIT_STATE;
	}
	if (ret < 0)
		return kw_cli_fail(ret, error);
	fprintf(stderr, "keywarden: token %llu deleted; it no longer validates\n",
		(unsigned long long)id);
	return KW_EXIT_OK;
}
