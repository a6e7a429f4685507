/* cmd_audit.c: keywarden audit verify, audit export.
 *
 * verify walks the hash chain (lib/audit.c) and, given an anchor (a sequence number and hash
 * recorded earlier, e.g. from a previous verify or from the journal copy of an event), checks
 * that the log still reaches that event with that hash: the chain alone cannot notice that its
 * newest events were cut off, an anchor kept outside the database can. export writes the
 * events as JSON Lines for SIEM tools. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "cli.h"
#include "jsonw.h"
#include "timeutil.h"

#define HASH_LEN KW_AUDIT_HASH_LEN

static void hex(const void *data, size_t len, char *out)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++)
		snprintf(out + 2 * i, 3, "%02x", p[i]);
	out[2 * len] = '\0';
}

/* "SEQ:HEXHASH" */
static int parse_anchor(const char *text, int64_t *seq_r, char hash_hex[HASH_LEN * 2 + 1])
{
	const char *colon = strchr(text, ':');
	char *end;
	long long seq;

	if (colon == NULL || strlen(colon + 1) != HASH_LEN * 2)
		return -EINVAL;
	errno = 0;
	seq = strtoll(text, &end, 10);
	if (end != colon || text[0] < '1' || text[0] > '9' || errno != 0)
		return -EINVAL;
	for (int i = 0; i < HASH_LEN * 2; i++) {
		char c = colon[1 + i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
			return -EINVAL;
		hash_hex[i] = (char)(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
	}
	hash_hex[HASH_LEN * 2] = '\0';
	*seq_r = seq;
	return 0;
}

/* Hash of event seq as hex; -ENOENT when there is no such event. */
static int event_hash(struct kw_store *store, int64_t seq, char out[HASH_LEN * 2 + 1])
{
	uint8_t hash[KW_AUDIT_HASH_LEN];
	int ret = kw_audit_event_hash(store, seq, hash, NULL);

	if (ret == 0)
		hex(hash, HASH_LEN, out);
	return ret;
}

int kw_cmd_audit_verify(struct kw_cli *cli, int argc, char **argv)
{
	const char *anchor_text = NULL, *pos[1], *error = NULL;
	bool quiet = false;
	const struct kw_cli_opt opts[] = {
		{ "anchor", true, &anchor_text, NULL },
		{ "quiet", false, NULL, &quiet },
		{ NULL, false, NULL, NULL },
	};
	char anchor_hash[HASH_LEN * 2 + 1], head_hash[HASH_LEN * 2 + 1], have[HASH_LEN * 2 + 1];
	int64_t anchor_seq = 0, count = 0, bad_seq = 0;
	struct kw_store *store;
	int n_pos, ret, exit_code;

	if ((ret = kw_cli_parse(argc, argv, opts, pos, 0, &n_pos)) != 0)
		return ret;
	if (anchor_text != NULL && parse_anchor(anchor_text, &anchor_seq, anchor_hash) < 0) {
		fprintf(stderr, "keywarden: --anchor must be SEQ:HASH (a sequence number, a colon "
				"and 64 hex digits, as printed by 'audit verify')\n");
		return KW_EXIT_INVALID;
	}
	if ((store = kw_cli_store(cli, &exit_code)) == NULL)
		return exit_code;
	ret = kw_audit_verify(store, &count, &bad_seq, &error);
	if (ret == -EBADMSG) {
		fprintf(stderr, "keywarden: audit log BROKEN at event %lld: %s\n",
			(long long)bad_seq, error);
		printf("broken %lld\n", (long long)bad_seq);
		return KW_EXIT_AUDIT_BROKEN;
	}
	if (ret < 0)
		return kw_cli_fail(ret, error);
	if (anchor_text != NULL) {
		ret = event_hash(store, anchor_seq, have);
		if (ret == -ENOENT) {
			fprintf(stderr,
				"keywarden: audit log BROKEN at event %lld: the anchor event is "
				"missing; the log ends at event %lld (its newest events were "
				"removed)\n",
				(long long)anchor_seq, (long long)count);
			printf("broken %lld\n", (long long)anchor_seq);
			return KW_EXIT_AUDIT_BROKEN;
		}
		if (ret < 0)
			return kw_cli_fail(-EIO, "cannot read the audit log");
		if (strcmp(have, anchor_hash) != 0) {
			fprintf(stderr,
				"keywarden: audit log BROKEN at event %lld: its hash differs from "
				"the anchor (the chain was rewritten up to this event)\n",
				(long long)anchor_seq);
			printf("broken %lld\n", (long long)anchor_seq);
			return KW_EXIT_AUDIT_BROKEN;
		}
	}
	if (count == 0) {
		if (!quiet)
			printf("intact 0 events\n");
		return KW_EXIT_OK;
	}
	if (event_hash(store, count, head_hash) < 0)
		return kw_cli_fail(-EIO, "cannot read the audit log");
	/* The last line is an anchor for the next verify: keep it outside this host. */
	if (!quiet)
		printf("intact %lld events\nanchor %lld:%s\n", (long long)count, (long long)count,
		       head_hash);
	return KW_EXIT_OK;
}

/* ---- export ---- */

/* A strict JSON value check, so that an edited details column cannot break a SIEM's parser:
 * details that are not a JSON object are exported as a string instead. */
static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* A number exactly as RFC 8259 writes it: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
 * (strtod would also take hex, inf, nan, leading zeros and "1."). */
static const char *json_number(const char *p)
{
	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (is_digit(*p))
		while (is_digit(*p))
			p++;
	else
		return NULL;
	if (*p == '.') {
		if (!is_digit(*++p))
			return NULL;
		while (is_digit(*p))
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!is_digit(*p))
			return NULL;
		while (is_digit(*p))
			p++;
	}
	return p;
}

static const char *json_value(const char *p, int depth);

static const char *json_str(const char *p)
{
	if (*p++ != '"')
		return NULL;
	while (*p != '"') {
		if ((unsigned char)*p < 0x20)
			return NULL;
		if (*p == '\\') {
			p++;
			if (*p == 'u') {
				for (int i = 1; i <= 4; i++) {
					char c = p[i];
					if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
					      (c >= 'A' && c <= 'F')))
						return NULL;
				}
				p += 4;
			} else if (strchr("\"\\/bfnrt", *p) == NULL || *p == '\0') {
				return NULL;
			}
		}
		p++;
	}
	return p + 1;
}

static const char *json_value(const char *p, int depth)
{
	if (depth > 32)
		return NULL;
	p = skip_ws(p);
	if (*p == '{' || *p == '[') {
		char close = *p == '{' ? '}' : ']';
		bool object = *p == '{';
		p = skip_ws(p + 1);
		if (*p == close)
			return p + 1;
		for (;;) {
			if (object) {
				if ((p = json_str(skip_ws(p))) == NULL)
					return NULL;
				p = skip_ws(p);
				if (*p++ != ':')
					return NULL;
			}
			if ((p = json_value(p, depth + 1)) == NULL)
				return NULL;
			p = skip_ws(p);
			if (*p == close)
				return p + 1;
			if (*p++ != ',')
				return NULL;
		}
	}
	if (*p == '"')
		return json_str(p);
	if (strncmp(p, "true", 4) == 0)
		return p + 4;
	if (strncmp(p, "false", 5) == 0)
		return p + 5;
	if (strncmp(p, "null", 4) == 0)
		return p + 4;
	if (*p == '-' || (*p >= '0' && *p <= '9'))
		return json_number(p);
	return NULL;
}

static bool is_json_object(const char *s)
{
	const char *end;

	/* One event, one line: whitespace newlines would split the JSON Lines record. */
	if (strpbrk(s, "\r\n") != NULL)
		return false;
	s = skip_ws(s);
	if (*s != '{')
		return false;
	end = json_value(s, 0);
	return end != NULL && *skip_ws(end) == '\0';
}

static int parse_since(const char *text, int64_t *t_r)
{
	char buf[40];

	/* A bare date means from the start of that day (UTC). */
	if (strlen(text) == 10 && text[4] == '-' && text[7] == '-') {
		snprintf(buf, sizeof(buf), "%sT00:00:00Z", text);
		text = buf;
	}
	return kw_time_parse(text, 0, t_r);
}

/* One event as a JSON Lines record. */
static int export_event(const struct kw_audit_event *e, void *ctx)
{
	char when[KW_TIME_TEXT_MAX], hash[HASH_LEN * 2 + 1] = "";

	(void)ctx;
	kw_time_format(e->time, when);
	if (e->has_hash)
		hex(e->hash, HASH_LEN, hash);
	printf("{\"seq\":%lld,\"time\":\"%s\",\"actor\":", (long long)e->seq, when);
	kw_json_string(stdout, e->actor);
	fputs(",\"action\":", stdout);
	kw_json_string(stdout, e->action);
	fputs(",\"target\":", stdout);
	kw_json_string(stdout, e->target);
	fputs(",\"details\":", stdout);
	if (is_json_object(e->details))
		kw_json_raw(stdout, e->details); /* invalid UTF-8 and controls escaped */
	else
		kw_json_string(stdout, e->details);
	printf(",\"hash\":\"%s\"}\n", hash);
	return 0;
}

int kw_cmd_audit_export(struct kw_cli *cli, int argc, char **argv)
{
	const char *since_text = NULL, *format = "jsonl", *pos[1], *error = NULL;
	const struct kw_cli_opt opts[] = {
		{ "since", true, &since_text, NULL },
		{ "format", true, &format, NULL },
		{ NULL, false, NULL, NULL },
	};
	struct kw_store *store;
	int64_t since = 0;
	int n_pos, ret, exit_code;

	if ((ret = kw_cli_parse(argc, argv, opts, pos, 0, &n_pos)) != 0)
		return ret;
	if (strcmp(format, "jsonl") != 0) {
		fprintf(stderr, "keywarden: --format: only 'jsonl' (JSON Lines) is supported\n");
		return KW_EXIT_INVALID;
	}
	if (since_text != NULL && parse_since(since_text, &since) < 0) {
		fprintf(stderr,
			"keywarden: --since: '%s' is not a date (YYYY-MM-DD) or an RFC "
			"3339 time\n",
			since_text);
		return KW_EXIT_INVALID;
	}
	if ((store = kw_cli_store(cli, &exit_code)) == NULL)
		return exit_code;
	if ((ret = kw_audit_foreach(store, since, export_event, NULL, &error)) < 0)
		return kw_cli_fail(ret, error);
	return KW_EXIT_OK;
}
