/* cmd_notify.c: keywarden notify run — the expiry emails, sent over SMTP with libcurl.
 *
 * Which mails: for every active token (not deleted, not expired, issuer enabled) that expires
 * within 7 days, one "7-day" mail per recipient; within 1 day, one "1-day" mail instead (when
 * both are due because the timer was down, only the 1-day mail goes out, and the 7-day one is
 * never sent afterwards). Recipients: the issuer and every enabled Administrator of the
 * token's account, each only with an email address and expiry emails on; one mail per
 * distinct address.
 *
 * Recipients never include a revoked SSO user (source 'sso', sso_state 'revoked'): not as the
 * issuer, not as an Administrator. The token itself stays valid (SSO revocation does not
 * revoke API tokens), so its Administrators still get the mail.
 *
 * The guarantee: AT-LEAST-ONCE per (token, threshold, recipient), with a bound. A row of
 * notification_sent and its audit event are written in one transaction *after* the server
 * accepted the mail (its final 250 after the end of DATA); nothing is recorded before, so a
 * failed or interrupted delivery is retried by the next run. A mail is sent more than once
 * when (a) the process dies, or the database refuses the write, between the server's
 * acceptance and the commit, or (b) the exchange fails after the whole message went out —
 * no final reply within its wait, or the connection broke while waiting for it — when the
 * server may well have delivered it. The final reply has a wait of its own, longer than the
 * rest of the exchange (max([notify] timeout, FINAL_REPLY_MIN seconds)), and case (b) is
 * recorded as an unconfirmed attempt (notification_attempt, audit event notify.unconfirmed);
 * after MAX_UNCONFIRMED of them the mail is not sent again and a warning names its
 * Message-ID. So a mail goes out at most MAX_UNCONFIRMED times unless (a) happens. We chose
 * this over claiming rows before sending (at-most-once) because a lost warning lets a
 * production token lapse unnoticed, while a rare duplicate costs a reader a second look; a
 * duplicate also carries the same Message-ID, so most mail programs show it once.
 * Concurrent runs are serialised by an exclusive lock on a file next to the database, so two
 * runs never send the same mail; within a run, each mail is checked against
 * notification_sent and notification_attempt (and the token re-read) right before it is
 * sent.
 *
 * Text that users control (token names, logins, account names) is defanged in the mail, so
 * that no mail program makes a link of it: "://" becomes "[:]//" and "www." becomes "www[.]".
 * Logins in the suggested commands are shell-quoted like every other value there. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "audit.h"
#include "cli.h"
#include "jsonw.h"
#include "log.h"
#include "timeutil.h"

int kw_cmd_notify(struct kw_cli *cli, int argc, char **argv);

#define DAY 86400
#define NOTIFY_ACTOR "keywarden-notify"
/* journald MESSAGE_IDs of this command's lines: stable, SIEM rules match on them. */
#define MSGID_SENT "3f0c2a7e9d1b4e6f8a5c7b2d1e0f9a84"
#define MSGID_FAILED "b82e6d4c1a9f47e3905d3c6a2f1e8b75"
/* Given up: MAX_UNCONFIRMED unconfirmed attempts of one mail, it is not sent again. */
#define MSGID_UNCONFIRMED "719aca8c3c744d8f92899a34961b32fd"
#define MAX_UNCONFIRMED 3
#define FINAL_REPLY_MIN 60
#define PASSWORD_MAX 1024
#define MAIL_MAX 16384

struct smtp_conf {
	const char *url;
	const char *from_header;	  /* as configured: "addr" or "Name <addr>" */
	char from_addr[KW_EMAIL_MAX + 3]; /* "<addr>" for MAIL FROM */
	char domain[KW_EMAIL_MAX + 1];	  /* for Message-ID */
	bool starttls;
	const char *username;
	char password[PASSWORD_MAX + 1];
	long timeout;	 /* [notify] timeout: everything up to the end of the message */
	long final_wait; /* the wait for the final reply after the end of the message */
};

struct due_token {
	int64_t id, account_id, expires, created;
	int threshold;
	char name[KW_TOKEN_NAME_MAX + 1];
	char role[KW_ROLE_MAX + 1];
	char account[KW_ACCOUNT_MAX + 1];
	char issuer[KW_LOGIN_MAX + 1];
	char issuer_email[KW_EMAIL_MAX + 1];
	bool issuer_wants;
};

struct recipient {
	char email[KW_EMAIL_MAX + 1];
	char login[KW_LOGIN_MAX + 1];
	bool is_issuer;
};

struct run_stats {
	unsigned sent, failed, already, planned, gave_up;
};

static void copy_col(char *dst, size_t size, sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	snprintf(dst, size, "%s", t != NULL ? (const char *)t : "");
}

/* Values from the database go into headers and the body: anything that could end a header
 * line or forge one is replaced (the store refuses control characters, but an edited
 * database must not turn into header injection). */
static void sanitize(char *s)
{
	for (unsigned char *p = (unsigned char *)s; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			*p = '?';
	}
}

static bool plain_address(const char *a)
{
	const char *at = strchr(a, '@');

	if (at == NULL || at == a || at[1] == '\0' || strlen(a) > KW_EMAIL_MAX)
		return false;
	for (const unsigned char *p = (const unsigned char *)a; *p != '\0'; p++) {
		if (*p <= 0x20 || *p == 0x7f || strchr("<>,;\"\\()[]", *p) != NULL)
			return false;
	}
	return true;
}

/* ---- configuration ---- */

static int read_password_file(const char *path, char *out, size_t size)
{
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "keywarden: [notify] password_file %s: %s\n", path,
			strerror(errno));
		return KW_EXIT_STATE;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "keywarden: [notify] password_file %s is not a regular file\n",
			path);
		close(fd);
		return KW_EXIT_STATE;
	}
	if ((st.st_mode & 077) != 0 || (st.st_uid != geteuid() && st.st_uid != 0)) {
		fprintf(stderr,
			"keywarden: [notify] password_file %s must belong to this user (or root) "
			"and be readable by it only (chmod 600)\n",
			path);
		close(fd);
		return KW_EXIT_STATE;
	}
	n = read(fd, out, size - 1);
	close(fd);
	if (n < 0) {
		fprintf(stderr, "keywarden: [notify] password_file %s: %s\n", path,
			strerror(errno));
		return KW_EXIT_STATE;
	}
	out[n] = '\0';
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		out[--n] = '\0';
	return 0;
}

static int load_smtp_conf(struct kw_cli *cli, bool dry_run, struct smtp_conf *c)
{
	const char *pwfile, *error = NULL, *from, *lt, *gt, *at;
	uint64_t timeout;
	size_t len;

	memset(c, 0, sizeof(*c));
	c->url = kw_config_get(cli->cfg, "notify", "smtp_url");
	from = kw_config_get(cli->cfg, "notify", "from");
	c->username = kw_config_get(cli->cfg, "notify", "username");
	pwfile = kw_config_get(cli->cfg, "notify", "password_file");
	if (kw_config_get_bool(cli->cfg, "notify", "starttls", false, &c->starttls, &error) < 0 ||
	    kw_config_get_uint(cli->cfg, "notify", "timeout", 30, 1, 600, &timeout, &error) < 0) {
		fprintf(stderr, "keywarden: %s\n", error);
		return KW_EXIT_STATE;
	}
	c->timeout = (long)timeout;
	/* The final reply after the end of DATA gets a wait of its own, at least a minute: a
	 * server that is slow to answer it has probably taken the mail already, and every
	 * give-up there is an unconfirmed attempt that a later run may send again. */
	c->final_wait = c->timeout > FINAL_REPLY_MIN ? c->timeout : FINAL_REPLY_MIN;
	if (dry_run && from == NULL)
		from = "keywarden@localhost";
	if (!dry_run && (c->url == NULL || from == NULL)) {
		fprintf(stderr, "keywarden: notify needs [notify] smtp_url and [notify] from in "
				"keywarden.conf (see keywarden.conf(5))\n");
		return KW_EXIT_STATE;
	}
	if (c->url != NULL && strncasecmp(c->url, "smtp://", 7) != 0 &&
	    strncasecmp(c->url, "smtps://", 8) != 0) {
		fprintf(stderr,
			"keywarden: [notify] smtp_url must start with smtp:// or smtps://\n");
		return KW_EXIT_STATE;
	}
	/* from: "addr" or "Display Name <addr>" */
	lt = strchr(from, '<');
	gt = lt != NULL ? strchr(lt, '>') : NULL;
	if (lt != NULL && (gt == NULL || gt[1] != '\0')) {
		fprintf(stderr, "keywarden: [notify] from: '%s' is not an address\n", from);
		return KW_EXIT_STATE;
	}
	len = lt != NULL ? (size_t)(gt - lt - 1) : strlen(from);
	if (len > KW_EMAIL_MAX) {
		fprintf(stderr, "keywarden: [notify] from is too long\n");
		return KW_EXIT_STATE;
	}
	snprintf(c->from_addr, sizeof(c->from_addr), "<%.*s>", (int)len,
		 lt != NULL ? lt + 1 : from);
	{
		char bare[KW_EMAIL_MAX + 1];
		snprintf(bare, sizeof(bare), "%.*s", (int)len, lt != NULL ? lt + 1 : from);
		if (!plain_address(bare) || strpbrk(from, "\r\n") != NULL) {
			fprintf(stderr, "keywarden: [notify] from: '%s' is not an address\n", from);
			return KW_EXIT_STATE;
		}
		at = strchr(bare, '@');
		snprintf(c->domain, sizeof(c->domain), "%s", at + 1);
	}
	c->from_header = from;
	/* Credentials only ever go over TLS: libcurl would send AUTH over plain TCP, the password
	 * in clear on the wire. Checked in a dry run too, where smtp_url may be missing (then
	 * only starttls = yes satisfies the rule). */
	if ((c->username != NULL || pwfile != NULL) && !c->starttls &&
	    (c->url == NULL || strncasecmp(c->url, "smtps://", 8) != 0)) {
		fprintf(stderr,
			"keywarden: [notify] %s needs TLS: an smtps:// smtp_url or "
			"starttls = yes\n",
			pwfile != NULL ? "password_file" : "username");
		return KW_EXIT_STATE;
	}
	if (c->username != NULL && pwfile == NULL) {
		fprintf(stderr, "keywarden: [notify] username needs [notify] password_file\n");
		return KW_EXIT_STATE;
	}
	if (pwfile != NULL && c->username == NULL) {
		fprintf(stderr, "keywarden: [notify] password_file needs [notify] username\n");
		return KW_EXIT_STATE;
	}
	if (pwfile != NULL && !dry_run)
		return read_password_file(pwfile, c->password, sizeof(c->password));
	return 0;
}

/* ---- the due tokens and their recipients ---- */

/* SQL: the user U's SSO access was revoked (keywarden sso revoke, or the IdP). */
#define REVOKED_SSO(u) "(" u ".source = 'sso' AND coalesce(" u ".sso_state, '') = 'revoked')"

static int collect_due(struct kw_store *store, const char *account, int64_t now,
		       struct due_token **rows_r, size_t *n_r)
{
	sqlite3_stmt *st = NULL;
	struct due_token *rows = NULL;
	size_t n = 0, cap = 0;
	int rc;

	if (sqlite3_prepare_v2(
		kw_store_db(store),
		"SELECT t.id, t.account_id, t.expires, t.created, t.name, r.name, a.name, "
		"iu.login, coalesce(iu.email, ''), "
		/* a revoked SSO issuer can no longer act on the token: no mail to them */
		"iu.expiry_emails = 1 AND NOT " REVOKED_SSO("iu") " "
		"FROM token t JOIN account a ON a.id = t.account_id "
		"JOIN user iu ON iu.id = t.issuer_id JOIN role r ON r.id = t.role_id "
		"WHERE t.deleted IS NULL AND t.expires IS NOT NULL AND t.expires > ?1 "
		"AND t.expires <= ?1 + ?2 AND iu.enabled = 1 AND (?3 IS NULL OR a.name = ?3) "
		"ORDER BY t.id",
		-1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int64(st, 2, 7 * DAY);
	if (account != NULL)
		sqlite3_bind_text(st, 3, account, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct due_token *t;
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			rows = realloc(rows, cap * sizeof(*rows));
			if (rows == NULL)
				abort();
		}
		t = &rows[n++];
		memset(t, 0, sizeof(*t));
		t->id = sqlite3_column_int64(st, 0);
		t->account_id = sqlite3_column_int64(st, 1);
		t->expires = sqlite3_column_int64(st, 2);
		t->created = sqlite3_column_int64(st, 3);
		copy_col(t->name, sizeof(t->name), st, 4);
		copy_col(t->role, sizeof(t->role), st, 5);
		copy_col(t->account, sizeof(t->account), st, 6);
		copy_col(t->issuer, sizeof(t->issuer), st, 7);
		copy_col(t->issuer_email, sizeof(t->issuer_email), st, 8);
		t->issuer_wants = sqlite3_column_int(st, 9) != 0;
		/* Both due (the timer was down): only the 1-day mail. */
		t->threshold = t->expires - now <= DAY ? 1 : 7;
		sanitize(t->name);
		sanitize(t->role);
		sanitize(t->account);
		sanitize(t->issuer);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(rows);
		return -EIO;
	}
	*rows_r = rows;
	*n_r = n;
	return 0;
}

static void add_recipient(struct recipient **list, size_t *n, size_t *cap, const char *email,
			  const char *login, bool is_issuer)
{
	if (email[0] == '\0')
		return;
	for (size_t i = 0; i < *n; i++) {
		if (strcasecmp((*list)[i].email, email) == 0) {
			(*list)[i].is_issuer |= is_issuer;
			return;
		}
	}
	if (!plain_address(email)) {
		kw_warning("user '%s' has an unusable email address: no expiry mail for them",
			   login);
		return;
	}
	if (*n == *cap) {
		*cap = *cap == 0 ? 8 : *cap * 2;
		*list = realloc(*list, *cap * sizeof(**list));
		if (*list == NULL)
			abort();
	}
	snprintf((*list)[*n].email, sizeof((*list)[*n].email), "%s", email);
	snprintf((*list)[*n].login, sizeof((*list)[*n].login), "%s", login);
	sanitize((*list)[*n].login);
	(*list)[*n].is_issuer = is_issuer;
	(*n)++;
}

static int collect_recipients(struct kw_store *store, const struct due_token *t,
			      struct recipient **list_r, size_t *n_r)
{
	struct recipient *list = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st = NULL;
	int rc;

	if (t->issuer_wants)
		add_recipient(&list, &n, &cap, t->issuer_email, t->issuer, true);
	if (sqlite3_prepare_v2(
		kw_store_db(store),
		"SELECT u.login, u.email FROM user u JOIN role r ON r.id = u.role_id "
		"WHERE u.account_id = ?1 AND r.name = 'Administrators' "
		"AND u.enabled = 1 AND u.expiry_emails = 1 AND NOT " REVOKED_SSO("u") " "
		"AND u.email IS NOT NULL "
		"AND u.email <> '' ORDER BY u.login",
		-1, &st, NULL) != SQLITE_OK) {
		free(list);
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, t->account_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		add_recipient(&list, &n, &cap, (const char *)sqlite3_column_text(st, 1),
			      (const char *)sqlite3_column_text(st, 0), false);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(list);
		return -EIO;
	}
	*list_r = list;
	*n_r = n;
	return 0;
}

enum due_state {
	DUE_NOT = 0,	 /* recorded as sent, or the token is gone or expired */
	DUE_YES = 1,
	DUE_GAVE_UP = 2, /* MAX_UNCONFIRMED unconfirmed attempts: not sent again */
};

/* Right before sending: whether the mail is still due (token still live and not expired, not
 * yet recorded, not given up), and how many unconfirmed attempts it had; negative on a
 * database error. */
static int still_due(struct kw_store *store, const struct due_token *t, const char *email,
		     int64_t now, int *attempts_r)
{
	sqlite3_stmt *st = NULL;
	int rc, ret;

	*attempts_r = 0;
	if (sqlite3_prepare_v2(
		kw_store_db(store),
		"SELECT (SELECT count(*) FROM token WHERE id = ?1 AND deleted IS NULL "
		"AND expires > ?4), (SELECT count(*) FROM notification_sent WHERE "
		"token_id = ?1 AND threshold = ?2 AND recipient = ?3 COLLATE NOCASE), "
		"(SELECT coalesce(max(attempts), 0) FROM notification_attempt WHERE "
		"token_id = ?1 AND threshold = ?2 AND recipient = ?3 COLLATE NOCASE)",
		-1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, t->id);
	sqlite3_bind_int(st, 2, t->threshold);
	sqlite3_bind_text(st, 3, email, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*attempts_r = sqlite3_column_int(st, 2);
		if (sqlite3_column_int(st, 0) != 1 || sqlite3_column_int(st, 1) != 0)
			ret = DUE_NOT;
		else if (*attempts_r >= MAX_UNCONFIRMED)
			ret = DUE_GAVE_UP;
		else
			ret = DUE_YES;
	} else {
		ret = -EIO;
	}
	sqlite3_finalize(st);
	return ret;
}

static void audit_details(char *buf, size_t size, const struct due_token *t,
			  const struct recipient *r, const char *extra)
{
	char jemail[KW_EMAIL_MAX * 6 + 3], jlogin[KW_LOGIN_MAX * 6 + 3];
	char exp_text[KW_TIME_TEXT_MAX];

	kw_json_string_buf(jemail, sizeof(jemail), r->email);
	kw_json_string_buf(jlogin, sizeof(jlogin), r->login);
	kw_time_format(t->expires, exp_text);
	snprintf(buf, size,
		 "{\"threshold_days\":%d,\"recipient\":%s,\"login\":%s,\"as\":\"%s\","
		 "\"expires\":\"%s\"%s}",
		 t->threshold, jemail, jlogin, r->is_issuer ? "issuer" : "administrator", exp_text,
		 extra);
}

/* An unconfirmed attempt: the whole message went out but the server's final reply did not
 * come (in time). Counts it, with its audit event, in one transaction; returns the count of
 * unconfirmed attempts of this mail so far, or negative on a database error. */
static int record_attempt(struct kw_store *store, const struct due_token *t,
			  const struct recipient *r, int64_t when, const char *error)
{
	char details[4096], extra[CURL_ERROR_SIZE * 6 + 64], jerror[CURL_ERROR_SIZE * 6 + 3];
	char target[32];
	sqlite3_stmt *st = NULL;
	int ret = -EIO, attempts;

	if (kw_store_begin(store) < 0)
		return -EIO;
	if (sqlite3_prepare_v2(kw_store_db(store),
			       "INSERT INTO notification_attempt (token_id, threshold, recipient, "
			       "attempts, first_try, last_try, last_error) "
			       "VALUES (?1, ?2, ?3, 1, ?4, ?4, ?5) "
			       "ON CONFLICT (token_id, threshold, recipient) DO UPDATE SET "
			       "attempts = attempts + 1, last_try = excluded.last_try, "
			       "last_error = excluded.last_error RETURNING attempts",
			       -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int64(st, 1, t->id);
	sqlite3_bind_int(st, 2, t->threshold);
	sqlite3_bind_text(st, 3, r->email, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, when);
	sqlite3_bind_text(st, 5, error, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW)
		goto out;
	attempts = sqlite3_column_int(st, 0);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto out;
	kw_json_string_buf(jerror, sizeof(jerror), error);
	snprintf(extra, sizeof(extra), ",\"attempt\":%d,\"max_attempts\":%d,\"error\":%s",
		 attempts, MAX_UNCONFIRMED, jerror);
	audit_details(details, sizeof(details), t, r, extra);
	snprintf(target, sizeof(target), "token:%lld", (long long)t->id);
	if (kw_audit_append(store, when, NOTIFY_ACTOR, "notify.unconfirmed", target, details) < 0)
		goto out;
	if (kw_store_commit(store) < 0)
		goto out;
	ret = attempts;
out:
	sqlite3_finalize(st);
	if (ret < 0)
		kw_store_rollback(store);
	return ret;
}

/* Records a delivered mail and its audit event in one transaction. */
static int record_sent(struct kw_store *store, const struct due_token *t, const struct recipient *r,
		       int64_t when)
{
	char details[4096], target[32];
	sqlite3_stmt *st = NULL;
	int ret = -EIO;

	if (kw_store_begin(store) < 0)
		return -EIO;
	if (sqlite3_prepare_v2(kw_store_db(store),
			       "INSERT OR IGNORE INTO notification_sent (token_id, threshold, "
			       "recipient, sent) VALUES (?1, ?2, ?3, ?4)",
			       -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int64(st, 1, t->id);
	sqlite3_bind_int(st, 2, t->threshold);
	sqlite3_bind_text(st, 3, r->email, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, when);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto out;
	audit_details(details, sizeof(details), t, r, "");
	snprintf(target, sizeof(target), "token:%lld", (long long)t->id);
	if (kw_audit_append(store, when, NOTIFY_ACTOR, "notify.sent", target, details) < 0)
		goto out;
	if (kw_store_commit(store) < 0)
		goto out;
	ret = 0;
out:
	sqlite3_finalize(st);
	if (ret < 0)
		kw_store_rollback(store);
	return ret;
}

/* ---- the mail ---- */

static void shell_quote(char *out, size_t size, const char *s)
{
	size_t o = 0;

	if (size < 3)
		return;
	out[o++] = '\'';
	for (; *s != '\0' && o + 6 < size; s++) {
		if (*s == '\'') {
			memcpy(out + o, "'\\''", 4);
			o += 4;
		} else {
			out[o++] = *s;
		}
	}
	out[o++] = '\'';
	out[o] = '\0';
}

/* For user-controlled text in the mail: no mail program may turn it into a link (the mail
 * promises to hold none). "://" becomes "[:]//" and "www." becomes "www[.]" (in any case). At
 * most doubles the length; truncates to fit SIZE. */
#define DEFANGED_SIZE(max) (2 * (max) + 1)
static void defang(char *out, size_t size, const char *s)
{
	size_t o = 0;

	if (size == 0)
		return;
	while (*s != '\0') {
		char piece[8];
		size_t skip;

		if (strncmp(s, "://", 3) == 0) {
			snprintf(piece, sizeof(piece), "[:]//");
			skip = 3;
		} else if (strncasecmp(s, "www.", 4) == 0) {
			snprintf(piece, sizeof(piece), "%.3s[.]", s);
			skip = 4;
		} else {
			piece[0] = *s;
			piece[1] = '\0';
			skip = 1;
		}
		if (o + strlen(piece) >= size)
			break;
		memcpy(out + o, piece, strlen(piece));
		o += strlen(piece);
		s += skip;
	}
	out[o] = '\0';
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)(*s >= 'A' && *s <= 'Z' ? *s + 32 : *s);
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* The Message-ID, the same for every attempt of one (token, threshold, recipient). */
static void message_id(char *buf, size_t size, const struct smtp_conf *c,
		       const struct due_token *t, const struct recipient *r)
{
	snprintf(buf, size, "<keywarden.%lld.%d.%016llx@%s>", (long long)t->id, t->threshold,
		 (unsigned long long)fnv1a(r->email), c->domain);
}

static int compose(char *buf, size_t size, const struct smtp_conf *c, const struct due_token *t,
		   const struct recipient *r, int64_t now)
{
	char date[64], expires[KW_TIME_TEXT_MAX], new_exp[16], msgid[KW_EMAIL_MAX + 64];
	/* user-controlled text, defanged (d_), and shell-quoted for the commands (q_) */
	char d_name[DEFANGED_SIZE(KW_TOKEN_NAME_MAX)], q_name[sizeof(d_name) * 4 + 3];
	char d_role[DEFANGED_SIZE(KW_ROLE_MAX)], q_role[sizeof(d_role) * 4 + 3];
	char d_issuer[DEFANGED_SIZE(KW_LOGIN_MAX)], q_issuer[sizeof(d_issuer) * 4 + 3];
	char d_login[DEFANGED_SIZE(KW_LOGIN_MAX)], q_login[sizeof(d_login) * 4 + 3];
	char d_account[DEFANGED_SIZE(KW_ACCOUNT_MAX)];
	time_t tt = (time_t)now, nt;
	struct tm tm;
	int64_t lifetime = t->expires - t->created;
	int n;

	gmtime_r(&tt, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	kw_time_format(t->expires, expires);
	/* Suggest a replacement that lives as long as the old one did (at least 30 days). */
	if (lifetime < 30 * DAY)
		lifetime = 30 * DAY;
	nt = (time_t)(t->expires + lifetime);
	gmtime_r(&nt, &tm);
	strftime(new_exp, sizeof(new_exp), "%Y-%m-%d", &tm);
	message_id(msgid, sizeof(msgid), c, t, r);
	defang(d_name, sizeof(d_name), t->name);
	defang(d_role, sizeof(d_role), t->role);
	defang(d_issuer, sizeof(d_issuer), t->issuer);
	defang(d_login, sizeof(d_login), r->login);
	defang(d_account, sizeof(d_account), t->account);
	shell_quote(q_issuer, sizeof(q_issuer), d_issuer);
	shell_quote(q_name, sizeof(q_name), d_name);
	shell_quote(q_role, sizeof(q_role), d_role);
	shell_quote(q_login, sizeof(q_login), d_login);
	n = snprintf(
	    buf, size,
	    "From: %s\r\n"
	    "To: <%s>\r\n"
	    "Subject: keywarden: API token %lld expires within %s\r\n"
	    "Date: %s\r\n"
	    "Message-ID: %s\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n"
	    "Auto-Submitted: auto-generated\r\n"
	    "X-Keywarden-Token: %lld\r\n"
	    "X-Keywarden-Threshold: %d\r\n"
	    "\r\n"
	    "The API token below expires within %s, on %s.\r\n"
	    "From that moment on, every service that uses it will refuse it.\r\n"
	    "\r\n"
	    "  token id:   %lld\r\n"
	    "  name:       %s\r\n"
	    "  role:       %s\r\n"
	    "  issued by:  %s\r\n"
	    "  account:    %s\r\n"
	    "  expires:    %s\r\n"
	    "\r\n"
	    "To replace it, the issuer runs on the keywarden host:\r\n"
	    "\r\n"
	    "  keywarden token create --as %s --name %s --role %s --expires %s\r\n"
	    "\r\n"
	    "puts the new token where the old one is used, and then deletes the old one:\r\n"
	    "\r\n"
	    "  keywarden token delete --as %s %lld\r\n"
	    "\r\n"
	    "This mail has no links on purpose: keywarden never sends any. Treat a mail about\r\n"
	    "your tokens that asks you to click a link or to send a token as phishing.\r\n"
	    "\r\n"
	    "You receive it as %s. To stop these mails:\r\n"
	    "  keywarden user set %s --expiry-emails off\r\n",
	    c->from_header, r->email, (long long)t->id, t->threshold == 1 ? "1 day" : "7 days",
	    date, msgid, (long long)t->id, t->threshold, t->threshold == 1 ? "1 day" : "7 days",
	    expires, (long long)t->id, d_name, d_role, d_issuer, d_account, expires, q_issuer,
	    q_name, q_role, new_exp, q_issuer, (long long)t->id,
	    r->is_issuer ? "the token's issuer" : "an Administrator of its account", q_login);
	return n < 0 || (size_t)n >= size ? -ENOSPC : n;
}

static int64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct upload {
	const char *data;
	size_t len, pos;
	int64_t deadline; /* monotonic ms: [notify] timeout, until the message is all read */
	bool too_slow;	  /* the progress callback ended the exchange at the deadline */
};

static size_t read_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct upload *u = userdata;
	size_t room = size * nmemb, left = u->len - u->pos;

	if (left > room)
		left = room;
	memcpy(ptr, u->data + u->pos, left);
	u->pos += left;
	return left;
}

/* [notify] timeout limits the exchange up to the end of the message; aborting here (before
 * the message is complete) makes libcurl drop the connection without ending DATA, so the
 * server discards what it got. After that only the final reply's wait applies. */
static int progress_cb(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct upload *u = userdata;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	if (u->pos < u->len && monotonic_ms() > u->deadline) {
		u->too_slow = true;
		return 1;
	}
	return 0;
}

enum delivery {
	DELIVERED,
	FAILED,	     /* not delivered: the next run tries again */
	UNCONFIRMED, /* the whole message went out, the final reply did not come: maybe delivered */
};

/* errbuf gets the error; *fatal is set when no later mail of this run can succeed either. */
static enum delivery deliver(CURL *curl, const struct smtp_conf *c, const char *rcpt,
			     const char *mail, size_t len, char *errbuf, bool *fatal)
{
	struct curl_slist *rcpts = NULL;
	struct upload u = {mail, len, 0, monotonic_ms() + c->timeout * 1000, false};
	char to[KW_EMAIL_MAX + 3];
	CURLcode rc;

	snprintf(to, sizeof(to), "<%s>", rcpt);
	rcpts = curl_slist_append(rcpts, to);
	if (rcpts == NULL)
		abort();
	errbuf[0] = '\0';
	curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpts);
	curl_easy_setopt(curl, CURLOPT_READDATA, &u);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &u);
	curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
	rc = curl_easy_perform(curl);
	curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, NULL);
	curl_easy_setopt(curl, CURLOPT_READDATA, NULL);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, NULL);
	curl_slist_free_all(rcpts);
	if (rc == CURLE_OK)
		return DELIVERED;
	if (rc == CURLE_ABORTED_BY_CALLBACK && u.too_slow) {
		snprintf(errbuf, CURL_ERROR_SIZE,
			 "the message was not through within [notify] timeout (%ld s)",
			 c->timeout);
		*fatal = true;
		return FAILED;
	}
	if (errbuf[0] == '\0')
		snprintf(errbuf, CURL_ERROR_SIZE, "%s", curl_easy_strerror(rc));
	*fatal = rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
		 rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_LOGIN_DENIED ||
		 rc == CURLE_USE_SSL_FAILED || rc == CURLE_SSL_CONNECT_ERROR ||
		 rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT;
	/* The whole message was handed over (DATA is only read after the server's 354), and the
	 * exchange broke while waiting for the final reply: the server may have taken it. */
	if (u.pos == u.len && (rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_RECV_ERROR))
		return UNCONFIRMED;
	return FAILED;
}

static CURL *curl_setup(const struct smtp_conf *c, char *errbuf)
{
	CURL *curl = curl_easy_init();

	if (curl == NULL)
		return NULL;
	curl_easy_setopt(curl, CURLOPT_URL, c->url);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
#else
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS, (long)(CURLPROTO_SMTP | CURLPROTO_SMTPS));
#endif
	curl_easy_setopt(curl, CURLOPT_MAIL_FROM, c->from_addr);
	curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	/* Timeouts: up to the end of the message, [notify] timeout (progress_cb); every reply,
	 * the final one included, may take final_wait; the whole exchange at most the sum. */
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, progress_cb);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, c->timeout + c->final_wait);
	curl_easy_setopt(curl, CURLOPT_SERVER_RESPONSE_TIMEOUT, c->final_wait);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, c->timeout < 10 ? c->timeout : 10L);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	if (c->starttls)
		curl_easy_setopt(curl, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	if (c->username != NULL) {
		curl_easy_setopt(curl, CURLOPT_USERNAME, c->username);
		curl_easy_setopt(curl, CURLOPT_PASSWORD, c->password);
	}
	return curl;
}

/* ---- the run ---- */

static int lock_run(struct kw_cli *cli, int *fd_r)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s.notify-lock", kw_config_database(cli->cfg));
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "keywarden: cannot open the lock file %s: %s\n", path,
			strerror(errno));
		return KW_EXIT_STATE;
	}
	/* Waits for a concurrent run: when it is done, its mails are recorded and skipped. */
	if (flock(fd, LOCK_EX) < 0) {
		fprintf(stderr, "keywarden: cannot lock %s: %s\n", path, strerror(errno));
		close(fd);
		return KW_EXIT_STATE;
	}
	*fd_r = fd;
	return 0;
}

/* Records an unconfirmed attempt and logs it: an error while the mail will be sent again, a
 * warning naming its Message-ID when it will not. */
static void report_unconfirmed(struct kw_store *store, const struct smtp_conf *c,
			       const struct due_token *t, const struct recipient *r,
			       const char *error, bool fatal)
{
	char msgid[KW_EMAIL_MAX + 64];
	int attempts = record_attempt(store, t, r, kw_now(), error);

	message_id(msgid, sizeof(msgid), c, t, r);
	if (attempts < 0)
		kw_log_id(KW_LOG_ERROR, MSGID_FAILED,
			  "token %lld: %d-day expiry mail to %s, Message-ID %s, unconfirmed (%s) "
			  "and the attempt not recorded (%s): it will be sent again",
			  (long long)t->id, t->threshold, r->email, msgid, error,
			  sqlite3_errmsg(kw_store_db(store)));
	else if (attempts >= MAX_UNCONFIRMED)
		kw_log_id(KW_LOG_WARNING, MSGID_UNCONFIRMED,
			  "token %lld: %d-day expiry mail to %s, Message-ID %s, sent %d times "
			  "without the server confirming it (last: %s); it may have been "
			  "delivered: not sending it again",
			  (long long)t->id, t->threshold, r->email, msgid, attempts, error);
	else
		kw_log_id(KW_LOG_ERROR, MSGID_FAILED,
			  "token %lld: %d-day expiry mail to %s, Message-ID %s, unconfirmed: %s; "
			  "it may have been delivered, the next run sends it again (attempt %d "
			  "of %d)%s",
			  (long long)t->id, t->threshold, r->email, msgid, error, attempts,
			  MAX_UNCONFIRMED, fatal ? "; giving up this run" : "");
}

static int notify_token(struct kw_store *store, CURL *curl, const struct smtp_conf *c,
			const struct due_token *t, int64_t now, bool dry_run, char *errbuf,
			struct run_stats *stats, bool *stop)
{
	struct recipient *rcpts = NULL;
	size_t n_rcpts = 0;
	char *mail = NULL;
	int ret = 0;

	if (collect_recipients(store, t, &rcpts, &n_rcpts) < 0)
		return -EIO;
	for (size_t i = 0; i < n_rcpts && !*stop; i++) {
		const struct recipient *r = &rcpts[i];
		int attempts, due = still_due(store, t, r->email, now, &attempts);
		bool fatal = false;
		enum delivery how;
		int len;

		if (due < 0) {
			ret = -EIO;
			break;
		}
		if (due == DUE_NOT) {
			stats->already++;
			continue;
		}
		if (due == DUE_GAVE_UP) {
			/* Logged (warning) when the last attempt was made. */
			stats->gave_up++;
			continue;
		}
		if (dry_run) {
			printf("would send: token %lld %d-day notice to %s (%s)",
			       (long long)t->id, t->threshold, r->email,
			       r->is_issuer ? "issuer" : "administrator");
			if (attempts > 0)
				printf(", after %d unconfirmed attempt%s", attempts,
				       attempts == 1 ? "" : "s");
			putchar('\n');
			stats->planned++;
			continue;
		}
		if (mail == NULL && (mail = malloc(MAIL_MAX)) == NULL)
			abort();
		if ((len = compose(mail, MAIL_MAX, c, t, r, now)) < 0) {
			kw_error("token %lld: the mail does not fit in %d bytes", (long long)t->id,
				 MAIL_MAX);
			stats->failed++;
			continue;
		}
		how = deliver(curl, c, r->email, mail, (size_t)len, errbuf, &fatal);
		if (how == FAILED) {
			/* Not recorded: the next run tries again. */
			kw_log_id(KW_LOG_ERROR, MSGID_FAILED,
				  "token %lld: %d-day expiry mail to %s not delivered: %s%s",
				  (long long)t->id, t->threshold, r->email, errbuf,
				  fatal ? "; giving up this run" : "");
			stats->failed++;
			*stop = fatal;
			continue;
		}
		if (how == UNCONFIRMED) {
			stats->failed++;
			*stop = fatal;
			report_unconfirmed(store, c, t, r, errbuf, fatal);
			continue;
		}
		if (record_sent(store, t, r, kw_now()) < 0) {
			/* Delivered but not recorded: the next run will send it again (at least
			 * once). */
			kw_log_id(KW_LOG_ERROR, MSGID_FAILED,
				  "token %lld: %d-day expiry mail to %s delivered but not recorded "
				  "(%s): it will be sent again",
				  (long long)t->id, t->threshold, r->email,
				  sqlite3_errmsg(kw_store_db(store)));
			stats->failed++;
			continue;
		}
		kw_log_id(KW_LOG_NOTICE, MSGID_SENT, "token %lld: %d-day expiry mail sent to %s",
			  (long long)t->id, t->threshold, r->email);
		stats->sent++;
	}
	free(mail);
	free(rcpts);
	return ret;
}

static int notify_run(struct kw_cli *cli, int argc, char **argv)
{
	const char *account = NULL, *pos[1];
	bool dry_run = false, stop = false;
	const struct kw_cli_opt opts[] = {
	    {"dry-run", false, NULL, &dry_run},
	    {"account", true, &account, NULL},
	    {NULL, false, NULL, NULL},
	};
	char errbuf[CURL_ERROR_SIZE + 1];
	struct smtp_conf conf;
	struct run_stats stats = {0};
	struct due_token *due = NULL;
	struct kw_store *store;
	CURL *curl = NULL;
	size_t n_due = 0;
	int64_t now;
	int n_pos, ret, exit_code, lock_fd = -1;

	if ((ret = kw_cli_parse(argc, argv, opts, pos, 0, &n_pos)) != 0)
		return ret;
	if ((ret = load_smtp_conf(cli, dry_run, &conf)) != 0)
		goto out;
	if ((store = kw_cli_store(cli, &exit_code)) == NULL) {
		ret = exit_code;
		goto out;
	}
	if (!dry_run && (ret = lock_run(cli, &lock_fd)) != 0)
		goto out;
	now = kw_now();
	if (collect_due(store, account, now, &due, &n_due) < 0) {
		ret = kw_cli_fail(-EIO, sqlite3_errmsg(kw_store_db(store)));
		goto out;
	}
	if (!dry_run && n_due > 0) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
		    (curl = curl_setup(&conf, errbuf)) == NULL) {
			ret = kw_cli_fail(-ENOMEM, "cannot set up libcurl");
			goto out;
		}
	}
	for (size_t i = 0; i < n_due && !stop; i++) {
		if (notify_token(store, curl, &conf, &due[i], now, dry_run, errbuf, &stats, &stop) <
		    0) {
			ret = kw_cli_fail(-EIO, sqlite3_errmsg(kw_store_db(store)));
			goto out;
		}
	}
	if (dry_run)
		fprintf(stderr,
			"keywarden: notify (dry run): %u mail%s would be sent, %u already "
			"sent, %u given up unconfirmed\n",
			stats.planned, stats.planned == 1 ? "" : "s", stats.already,
			stats.gave_up);
	else
		fprintf(stderr,
			"keywarden: notify: %u sent, %u failed, %u already sent, %u given up "
			"unconfirmed%s\n",
			stats.sent, stats.failed, stats.already, stats.gave_up,
			stats.failed > 0 ? " (failed mails are retried on the next run)" : "");
	ret = stats.failed > 0 ? KW_EXIT_FAILURE : KW_EXIT_OK;
out:
	if (curl != NULL) {
		curl_easy_cleanup(curl);
		curl_global_cleanup();
	}
	explicit_bzero(conf.password, sizeof(conf.password));
	free(due);
	if (lock_fd >= 0)
		close(lock_fd); /* releases the lock */
	return ret;
}

int kw_cmd_notify(struct kw_cli *cli, int argc, char **argv)
{
	if (strcmp(argv[0], "run") == 0)
		return notify_run(cli, argc, argv);
	return kw_cli_usage("unknown command 'notify %s'", argv[0]);
}
