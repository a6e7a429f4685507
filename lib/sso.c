/* sso.c: SSO users in the store, logins and logouts, and the rule "SSO revocation does not
 * revoke API tokens" with its review list (see sso.h).
 *
 * Nothing here changes a token or a user's `enabled` flag: that is the rule. Every change runs
 * in one IMMEDIATE transaction with its audit event; log lines about a change are written
 * after its commit, so that a change that rolls back is never logged as done.
 *
 * The login path uses the store's statement cache; the rarer statements (rule, review, sweep,
 * dismiss) are prepared and finalized here, so as not to fill the cache. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "jsonw.h"
#include "log.h"
#include "sso.h"
#include "store_private.h"
#include "store.h"
#include "timeutil.h"

#define ADMIN_ROLE "Administrators"
#define DAY 86400
/* log.c cuts lines at 4 KiB: the token list of the log line stops before that; the audit
 * event always lists every token. */
#define LOG_LINE_BUDGET 3600

static const char *const outcome_names[] = {
	[KW_SSO_CREATED] = "created",
	[KW_SSO_UPDATED] = "updated",
	[KW_SSO_UPGRADED] = "upgraded",
	[KW_SSO_DOWNGRADED] = "downgraded",
	[KW_SSO_REVOKED] = "revoked",
	[KW_SSO_STILL_REVOKED] = "still_revoked",
	[KW_SSO_IGNORED] = "ignored",
};

const char *kw_sso_outcome_name(enum kw_sso_outcome outcome)
{
	return outcome_names[outcome];
}

/* ---- small helpers ---- */

/* An uncached statement; the caller finalizes it. */
static sqlite3_stmt *prep(struct kw_store *store, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(kw_store_db(store), sql, -1, &st, NULL) != SQLITE_OK) {
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

static int step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc;
}

/* NULL reads as empty; blanks_ok: free text, else a name (see kw_store_check_name). */
static int check_text(struct kw_store *store, const char *what, const char *s, size_t max,
		      bool blanks_ok, const char **error_r)
{
	if (s == NULL)
		s = "";
	return blanks_ok ? kw_store_check_text(store, what, s, max, false, error_r)
			 : kw_store_check_name(store, what, s, max, error_r);
}


static void time_text(int64_t t, const char *none, char buf[KW_TIME_TEXT_MAX])
{
	if (t == 0 || t == KW_NEVER)
		snprintf(buf, KW_TIME_TEXT_MAX, "%s", none);
	else
		kw_time_format(t, buf);
}

/* A growing text buffer; daemons may abort on out-of-memory (STYLE.md). */
struct text {
	char *buf;
	size_t len;
	FILE *f;
};

static void text_open(struct text *t)
{
	t->buf = NULL;
	t->len = 0;
	t->f = open_memstream(&t->buf, &t->len);
	if (t->f == NULL)
		abort();
}

/* Closes the stream; the caller frees the returned text. */
static char *text_close(struct text *t)
{
	if (fclose(t->f) != 0)
		abort();
	t->f = NULL;
	return t->buf;
}

void kw_sso_delete_command(const char *admin, uint64_t token_id, char *buf, size_t size)
{
	bool plain = admin[0] != '\0';
	size_t n;

	for (const char *p = admin; *p != '\0'; p++) {
		if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@._+-:",
			   *p) == NULL)
			plain = false;
	}
	n = (size_t)snprintf(buf, size, "keywarden token delete --as ");
	if (plain) {
		n += (size_t)snprintf(buf + (n < size ? n : size), n < size ? size - n : 0, "%s",
				      admin);
	} else {
		/* single quotes; a quote inside becomes '\'' */
		if (n + 1 < size)
			buf[n++] = '\'';
		for (const char *p = admin; *p != '\0' && n + 5 < size; p++) {
			if (*p == '\'') {
				memcpy(buf + n, "'\\''", 4);
				n += 4;
			} else {
				buf[n++] = *p;
			}
		}
		if (n + 1 < size)
			buf[n++] = '\'';
		if (n < size)
			buf[n] = '\0';
	}
	if (n < size)
		snprintf(buf + n, size - n, " %llu", (unsigned long long)token_id);
}

void kw_sso_token_notice(const struct kw_user *u, uint64_t token_id, FILE *err)
{
	char cmd[KW_SSO_COMMAND_MAX];

	if (!u->sso)
		return;
	kw_sso_delete_command(KW_SSO_ADMIN_PLACEHOLDER, token_id, cmd, sizeof(cmd));
	fprintf(err,
		"keywarden: notice: '%s' signs in through SSO. " KW_SSO_RULE
		": if the identity provider revokes or reduces this user's access, token %llu stays "
		"active until someone deletes it (%s).\n",
		u->login, (unsigned long long)token_id, cmd);
}

/* ---- tokens and admins ---- */

/* The active tokens of a user: not deleted, not expired at now. Whether the user is enabled
 * does not count: a disabled user's tokens validate again as soon as the user is enabled, so
 * they stay on the case (and keep it open) until they are deleted. */
static int load_active_tokens(struct kw_store *store, int64_t user_id, int user_rank,
			      int64_t now, struct kw_sso_token **tokens_r, size_t *n_r)
{
	sqlite3_stmt *st = prep(store, "SELECT t.id, t.name, r.id, r.rank, r.name, t.created, "
				       "t.expires, t.last_used, t.last_ip FROM token t "
				       "JOIN role r ON r.id = t.role_id "
				       "WHERE t.issuer_id = ?1 AND t.deleted IS NULL "
				       "AND (t.expires IS NULL OR t.expires > ?2) ORDER BY t.id");
	struct kw_sso_token *tokens = NULL, *t;
	size_t n = 0, cap = 0;
	int rc;

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_int64(st, 2, now);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap == 0 ? 8 : cap * 2;
			tokens = realloc(tokens, cap * sizeof(*tokens));
			if (tokens == NULL)
				abort();
		}
		t = &tokens[n++];
		memset(t, 0, sizeof(*t));
		t->id = (uint64_t)sqlite3_column_int64(st, 0);
		kw_store_copy_text(t->name, sizeof(t->name), st, 1);
		t->role.id = sqlite3_column_int64(st, 2);
		t->role.rank = sqlite3_column_int(st, 3);
		kw_store_copy_text(t->role.name, sizeof(t->role.name), st, 4);
		t->created = sqlite3_column_int64(st, 5);
		t->expires = sqlite3_column_type(st, 6) == SQLITE_NULL ? KW_NEVER
								       : sqlite3_column_int64(st, 6);
		t->last_used = sqlite3_column_int64(st, 7);
		kw_store_copy_text(t->last_ip, sizeof(t->last_ip), st, 8);
		t->above_user_role = t->role.rank > user_rank;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(tokens);
		return -EIO;
	}
	*tokens_r = tokens;
	*n_r = n;
	return 0;
}

/* An enabled Administrator of the account who may run the delete command: not the user the
 * case is about, not an SSO user whose access is revoked; local users first. Else the
 * placeholder. */
static int find_admin(struct kw_store *store, int64_t account_id, int64_t exclude_user,
		      char admin[KW_LOGIN_MAX + 1])
{
	sqlite3_stmt *st = prep(store, "SELECT u.login FROM user u JOIN role r ON r.id = u.role_id "
				       "WHERE u.account_id = ?1 AND u.id != ?2 AND u.enabled = 1 "
				       "AND r.name = '" ADMIN_ROLE "' "
				       "AND coalesce(u.sso_state, 'active') != 'revoked' "
				       "ORDER BY u.source = 'sso', u.id LIMIT 1");
	int rc;

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, account_id);
	sqlite3_bind_int64(st, 2, exclude_user);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		kw_store_copy_text(admin, KW_LOGIN_MAX + 1, st, 0);
	else
		snprintf(admin, KW_LOGIN_MAX + 1, "%s", KW_SSO_ADMIN_PLACEHOLDER);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}

static int insert_event(struct kw_store *store, int64_t now, int64_t user_id, const char *kind,
			const char *details)
{
	sqlite3_stmt *st = kw_store_stmt(
		store, "INSERT INTO sso_event (time, user_id, kind, details) VALUES (?1, ?2, ?3, ?4)");

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, now);
	if (user_id != 0)
		sqlite3_bind_int64(st, 2, user_id);
	sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, details, -1, SQLITE_STATIC);
	return step_done(st) == SQLITE_DONE ? 0 : -EIO;
}

/* ---- the rule ---- */

struct rule_event {
	const struct kw_user *user; /* as it is after the change */
	const char *kind;           /* revoked | downgraded | stale | idp_revoked */
	const char *reason;         /* the case's reason, one sentence */
	const char *old_role;       /* NULL when unchanged */
	const char *actor;
	int64_t now;
};

/* Inside the caller's transaction: opens or updates the user's case, appends the one audit
 * event that states the rule and lists the active tokens with their delete commands, and
 * returns (in *log_r, caller frees) the log line to write after the commit. */
static int apply_rule(struct kw_store *store, const struct rule_event *ev, int64_t *case_id_r,
		      unsigned *n_tokens_r, char **log_r, const char **error_r)
{
	const struct kw_user *u = ev->user;
	struct kw_sso_token *tokens = NULL;
	char admin[KW_LOGIN_MAX + 1], cmd[KW_SSO_COMMAND_MAX], exp[KW_TIME_TEXT_MAX];
	char used[KW_TIME_TEXT_MAX], target[KW_LOGIN_MAX + 8];
	const char *case_action = "none";
	struct text js, lg;
	sqlite3_stmt *st = NULL;
	int64_t case_id = 0;
	size_t n = 0, logged = 0;
	char *details;
	int ret, rc;

	if (load_active_tokens(store, u->id, u->role.rank, ev->now, &tokens, &n) < 0 ||
	    find_admin(store, u->account_id, u->id, admin) < 0)
		goto dbfail;
	st = prep(store, "SELECT id FROM sso_case WHERE user_id = ?1 AND closed IS NULL");
	if (st == NULL)
		goto dbfail;
	sqlite3_bind_int64(st, 1, u->id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		case_id = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		goto dbfail;
	sqlite3_finalize(st);
	st = NULL;
	if (case_id != 0) {
		/* one open case per user: a new event updates it */
		st = prep(store, "UPDATE sso_case SET kind = ?2, reason = ?3, updated = ?4, "
				 "events = events + 1 WHERE id = ?1");
		if (st == NULL)
			goto dbfail;
		sqlite3_bind_int64(st, 1, case_id);
		case_action = "updated";
	} else if (n > 0) {
		st = prep(store, "INSERT INTO sso_case (account_id, user_id, kind, reason, opened, "
				 "updated) VALUES (?1, ?5, ?2, ?3, ?4, ?4)");
		if (st == NULL)
			goto dbfail;
		sqlite3_bind_int64(st, 1, u->account_id);
		sqlite3_bind_int64(st, 5, u->id);
		case_action = "opened";
	}
	if (st != NULL) {
		sqlite3_bind_text(st, 2, ev->kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, ev->reason, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, ev->now);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto dbfail;
		if (case_id == 0)
			case_id = sqlite3_last_insert_rowid(kw_store_db(store));
		sqlite3_finalize(st);
		st = NULL;
	}

	text_open(&js);
	text_open(&lg);
	fputs("{\"rule\":\"" KW_SSO_RULE "\",\"event\":", js.f);
	kw_json_string(js.f, ev->kind);
	fputs(",\"account\":", js.f);
	kw_json_string(js.f, u->account);
	fputs(",\"user\":", js.f);
	kw_json_string(js.f, u->login);
	fputs(",\"reason\":", js.f);
	kw_json_string(js.f, ev->reason);
	fputs(",\"role\":", js.f);
	kw_json_string(js.f, u->role.name);
	if (ev->old_role != NULL) {
		fputs(",\"old_role\":", js.f);
		kw_json_string(js.f, ev->old_role);
	}
	fputs(",\"tokens_changed\":0,\"case\":", js.f);
	if (case_id != 0)
		fprintf(js.f, "%lld", (long long)case_id);
	else
		fputs("null", js.f);
	fprintf(js.f, ",\"case_action\":\"%s\",\"tokens\":[", case_action);

	fprintf(lg.f, KW_SSO_RULE ": user '%s' (account %s): %s. keywarden changed no token; ",
		u->login, u->account, ev->reason);
	if (n == 0)
		fprintf(lg.f, "'%s' holds no active token.", u->login);
	else
		fprintf(lg.f, "%zu active token%s remain%s (review case %lld):", n,
			n == 1 ? "" : "s", n == 1 ? "s" : "", (long long)case_id);
	for (size_t i = 0; i < n; i++) {
		const struct kw_sso_token *t = &tokens[i];

		kw_sso_delete_command(admin, t->id, cmd, sizeof(cmd));
		time_text(t->expires, "never", exp);
		time_text(t->last_used, "never", used);
		fprintf(js.f, "%s{\"id\":%llu,\"name\":", i == 0 ? "" : ",",
			(unsigned long long)t->id);
		kw_json_string(js.f, t->name);
		fputs(",\"role\":", js.f);
		kw_json_string(js.f, t->role.name);
		fprintf(js.f, ",\"expires\":\"%s\",\"last_used\":", exp);
		if (t->last_used != 0)
			fprintf(js.f, "\"%s\"", used);
		else
			fputs("null", js.f);
		fprintf(js.f, ",\"above_user_role\":%s,\"delete\":",
			t->above_user_role ? "true" : "false");
		kw_json_string(js.f, cmd);
		fputs("}", js.f);
		if (fflush(lg.f) != 0)
			abort();
		if (lg.len < LOG_LINE_BUDGET) {
			fprintf(lg.f, "%s token %llu \"%s\" (role %s, expires %s, last used %s%s%s): %s",
				i == 0 ? "" : ";", (unsigned long long)t->id, t->name, t->role.name,
				exp, used, t->last_ip[0] != '\0' ? " from " : "", t->last_ip, cmd);
			logged++;
		}
	}
	fputs("]}", js.f);
	if (logged < n)
		fprintf(lg.f, "; and %zu more: see 'keywarden sso review'", n - logged);
	else if (n > 0)
		fputs(".", lg.f);
	details = text_close(&js);
	*log_r = text_close(&lg);

	snprintf(target, sizeof(target), "%s", u->login);
	ret = insert_event(store, ev->now, u->id, "rule", details);
	if (ret == 0)
		ret = kw_audit_append(store, ev->now, ev->actor, "sso.rule", target, details);
	free(details);
	free(tokens);
	if (ret < 0) {
		free(*log_r);
		*log_r = NULL;
		return kw_store_db_fail(store, error_r, "cannot record the SSO rule");
	}
	*case_id_r = case_id;
	*n_tokens_r = (unsigned)n;
	return 0;
dbfail:
	sqlite3_finalize(st);
	free(tokens);
	return kw_store_db_fail(store, error_r, "cannot apply the SSO rule");
}

/* Closes the user's open case when it is a stale one: the user was seen again. */
static int close_stale_case(struct kw_store *store, const struct kw_user *u, int64_t now)
{
	sqlite3_stmt *st = prep(store, "SELECT id FROM sso_case WHERE user_id = ?1 AND "
				       "closed IS NULL AND kind = 'stale'");
	char target[32], details[128];
	int64_t id = 0;
	int rc, ret = 0;

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, u->id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? 0 : -EIO;
	st = prep(store, "UPDATE sso_case SET closed = ?2, closed_by = '" KW_SSO_SWEEPER "', "
			 "close_reason = 'seen again in an assertion' WHERE id = ?1");
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now);
	if (sqlite3_step(st) != SQLITE_DONE)
		ret = -EIO;
	sqlite3_finalize(st);
	snprintf(target, sizeof(target), "sso_case:%lld", (long long)id);
	snprintf(details, sizeof(details),
		 "{\"kind\":\"stale\",\"close_reason\":\"seen again in an assertion\"}");
	if (ret == 0)
		ret = kw_audit_append(store, now, KW_SSO_SWEEPER, "sso.case_close", target, details);
	return ret;
}

/* ---- replay cache ---- */

int kw_sso_replay_record(struct kw_store *store, const char *id, int64_t expires, int64_t now,
			 const char **error_r)
{
	/* Process-wide: every program of keywarden is single-threaded. */
	static int64_t last_purge;
	sqlite3_stmt *st;

	if (now - last_purge >= KW_SSO_REPLAY_PURGE_INTERVAL || now < last_purge) {
		st = kw_store_stmt(store, "DELETE FROM saml_replay WHERE expires <= ?1");
		if (st == NULL)
			return kw_store_db_fail(store, error_r, "replay cache");
		sqlite3_bind_int64(st, 1, now);
		if (step_done(st) != SQLITE_DONE)
			return kw_store_db_fail(store, error_r, "replay cache");
		last_purge = now;
	}
	/* An entry the program might purge at once would make the check worthless. */
	if (expires <= now)
		expires = now + 1;
	/* A leftover entry that has expired (not purged yet) is taken over; a live one is a
	 * replay: then nothing is written and changes() stays 0. */
	st = kw_store_stmt(store, "INSERT INTO saml_replay (assertion_id, expires) VALUES (?1, ?2) "
				  "ON CONFLICT (assertion_id) DO UPDATE SET expires = excluded.expires "
				  "WHERE saml_replay.expires <= ?3");
	if (st == NULL)
		return kw_store_db_fail(store, error_r, "replay cache");
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, expires);
	sqlite3_bind_int64(st, 3, now);
	if (step_done(st) != SQLITE_DONE)
		return kw_store_db_fail(store, error_r, "replay cache");
	if (sqlite3_changes(kw_store_db(store)) == 0)
		return kw_store_fail(store, -EEXIST, error_r, "replay: message id '%s' was seen before",
				     id);
	return 0;
}

/* ---- login ---- */

static int check_assertion(struct kw_store *store, const struct kw_sso_assertion *a,
			   const char **error_r)
{
	int ret;

	if ((ret = check_text(store, "account", a->account, KW_ACCOUNT_MAX, false, error_r)) < 0 ||
	    (ret = check_text(store, "IdP", a->idp, 1024, true, error_r)) < 0 ||
	    (ret = check_text(store, "login", a->login, KW_LOGIN_MAX, false, error_r)) < 0 ||
	    (ret = check_text(store, "assertion id", a->assertion_id, 256, true, error_r)) < 0 ||
	    (a->name_id != NULL &&
	     (ret = check_text(store, "NameID", a->name_id, 1024, true, error_r)) < 0) ||
	    (a->session_index != NULL && a->session_index[0] != '\0' &&
	     (ret = check_text(store, "session index", a->session_index, 256, true, error_r)) <
		     0))
		return ret;
	return 0;
}

int kw_sso_login(struct kw_store *store, const struct kw_sso_assertion *a, int64_t now,
		 struct kw_sso_result *result_r, const char **error_r)
{
	struct kw_sso_result res = {0};
	struct kw_account acct;
	struct kw_role role;
	struct kw_user u;
	const char *name_id = a->name_id != NULL ? a->name_id : a->login;
	const char *email = a->email != NULL && kw_store_email_ok(a->email) && strlen(a->email) <= KW_EMAIL_MAX ? a->email : NULL;
	const char *state = "active", *kind = NULL, *action = "sso.login";
	char reason[KW_SSO_REASON_MAX + 1], old_role[KW_ROLE_MAX + 1] = "";
	char *logline = NULL;
	bool have_role = a->role != NULL, found = false;
	sqlite3_stmt *st;
	struct text js;
	char *details;
	int ret;

	if ((ret = check_assertion(store, a, error_r)) < 0)
		return ret;
	if (kw_store_begin(store) < 0)
		return kw_store_db_fail(store, error_r, "cannot start a transaction");
	if ((ret = kw_sso_replay_record(store, a->assertion_id, a->replay_expires, now, error_r)) < 0 ||
	    (ret = kw_store_account_get(store, a->account, &acct, error_r)) < 0 ||
	    (have_role && (ret = kw_store_role_get(store, a->role, &role, error_r)) < 0))
		goto out;
	ret = kw_store_user_get(store, a->login, &u, error_r);
	if (ret == 0)
		found = true;
	else if (ret != -ENOENT)
		goto out;
	if (found && !u.sso) {
		ret = kw_store_fail(store, -EPERM, error_r,
				    "login '%s' belongs to a local user: SSO never takes it over",
				    a->login);
		goto out;
	}
	if (found && u.account_id != acct.id) {
		ret = kw_store_fail(store, -EACCES, error_r,
				    "SSO user '%s' belongs to account '%s', not to '%s'", a->login,
				    u.account, acct.name);
		goto out;
	}

	if (!found && !have_role) {
		res.outcome = KW_SSO_IGNORED;
		action = "sso.login_ignored";
	} else if (!found) {
		res.outcome = KW_SSO_CREATED;
		action = "sso.user_create";
		st = kw_store_stmt(store,
				   "INSERT INTO user (account_id, login, email, role_id, source, "
				   "created, sso_idp, sso_name_id, sso_last_seen, sso_state) "
				   "VALUES (?1, ?2, ?3, ?4, 'sso', ?5, ?6, ?7, ?5, 'active')");
		if (st == NULL)
			goto dbfail;
		sqlite3_bind_int64(st, 1, acct.id);
		sqlite3_bind_text(st, 2, a->login, -1, SQLITE_STATIC);
		if (email != NULL)
			sqlite3_bind_text(st, 3, email, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, role.id);
		sqlite3_bind_int64(st, 5, now);
		sqlite3_bind_text(st, 6, a->idp, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 7, name_id, -1, SQLITE_STATIC);
		if (step_done(st) != SQLITE_DONE)
			goto dbfail;
		res.user_id = sqlite3_last_insert_rowid(kw_store_db(store));
	} else {
		bool revoked = strcmp(u.sso_state, "revoked") == 0;

		res.user_id = u.id;
		snprintf(old_role, sizeof(old_role), "%s", u.role.name);
		state = u.sso_state[0] != '\0' ? u.sso_state : "active";
		if (!have_role && revoked) {
			res.outcome = KW_SSO_STILL_REVOKED;
		} else if (!have_role) {
			/* The role on record stays: it is what the tokens were issued under, and the
			 * user is not disabled (that would stop the tokens, which the rule forbids). */
			res.outcome = KW_SSO_REVOKED;
			state = kind = "revoked";
			snprintf(reason, sizeof(reason),
				 "SSO access ended: the assertion of IdP %s maps to no role any more "
				 "(role on record: %s)",
				 a->idp, u.role.name);
		} else if (role.rank < u.role.rank) {
			res.outcome = KW_SSO_DOWNGRADED;
			state = kind = "downgraded";
			snprintf(reason, sizeof(reason),
				 "SSO access shrank: the assertion of IdP %s maps to role %s, lower "
				 "than %s",
				 a->idp, role.name, u.role.name);
		} else if (revoked || role.rank > u.role.rank) {
			res.outcome = KW_SSO_UPGRADED;
			state = "active";
		} else {
			res.outcome = KW_SSO_UPDATED;
		}
		st = kw_store_stmt(store,
				   "UPDATE user SET role_id = coalesce(?2, role_id), sso_state = ?3, "
				   "sso_idp = ?4, sso_name_id = ?5, sso_last_seen = ?6, "
				   "email = coalesce(?7, email) WHERE id = ?1");
		if (st == NULL)
			goto dbfail;
		sqlite3_bind_int64(st, 1, u.id);
		if (have_role)
			sqlite3_bind_int64(st, 2, role.id);
		sqlite3_bind_text(st, 3, state, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, a->idp, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, name_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, now);
		if (email != NULL)
			sqlite3_bind_text(st, 7, email, -1, SQLITE_STATIC);
		if (step_done(st) != SQLITE_DONE)
			goto dbfail;
	}
	if (have_role) {
		st = kw_store_stmt(store, "INSERT INTO sso_session (user_id, idp, session_index, "
					  "login_time) VALUES (?1, ?2, ?3, ?4)");
		if (st == NULL)
			goto dbfail;
		sqlite3_bind_int64(st, 1, res.user_id);
		sqlite3_bind_text(st, 2, a->idp, -1, SQLITE_STATIC);
		if (a->session_index != NULL && a->session_index[0] != '\0')
			sqlite3_bind_text(st, 3, a->session_index, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, now);
		if (step_done(st) != SQLITE_DONE)
			goto dbfail;
	}
	if (found && kind == NULL && res.outcome != KW_SSO_STILL_REVOKED &&
	    close_stale_case(store, &u, now) < 0)
		goto dbfail;

	text_open(&js);
	fputs("{\"account\":", js.f);
	kw_json_string(js.f, acct.name);
	fputs(",\"idp\":", js.f);
	kw_json_string(js.f, a->idp);
	fputs(",\"name_id\":", js.f);
	kw_json_string(js.f, name_id);
	fputs(",\"role\":", js.f);
	if (have_role)
		kw_json_string(js.f, role.name);
	else
		fputs("null", js.f);
	if (old_role[0] != '\0') {
		fputs(",\"old_role\":", js.f);
		kw_json_string(js.f, old_role);
	}
	fputs(",\"session_index\":", js.f);
	if (a->session_index != NULL && a->session_index[0] != '\0')
		kw_json_string(js.f, a->session_index);
	else
		fputs("null", js.f);
	fputs(",\"assertion_id\":", js.f);
	kw_json_string(js.f, a->assertion_id);
	fprintf(js.f, ",\"outcome\":\"%s\"}", kw_sso_outcome_name(res.outcome));
	details = text_close(&js);
	ret = insert_event(store, now, res.user_id, "login", details);
	if (ret == 0)
		ret = kw_audit_append(store, now, KW_SSO_ACTOR, action, a->login, details);
	free(details);
	if (ret < 0)
		goto dbfail;

	if (kind != NULL) {
		struct kw_user after;
		struct rule_event ev = {
			.user = &after, .kind = kind, .reason = reason, .actor = KW_SSO_ACTOR,
			.old_role = res.outcome == KW_SSO_DOWNGRADED ? old_role : NULL, .now = now};

		if ((ret = kw_store_user_get(store, a->login, &after, error_r)) < 0 ||
		    (ret = apply_rule(store, &ev, &res.case_id, &res.active_tokens, &logline,
				      error_r)) < 0)
			goto out;
	}
	if (kw_store_commit(store) < 0)
		goto dbfail;
	if (logline != NULL)
		kw_log_id(KW_LOG_WARNING, KW_SSO_MSGID_RULE, "%s", logline);
	free(logline);
	*result_r = res;
	return 0;
dbfail:
	ret = kw_store_db_fail(store, error_r, "cannot record the SSO login");
out:
	free(logline);
	kw_store_rollback(store);
	return ret;
}

/* ---- logout ---- */

int kw_sso_logout(struct kw_store *store, const struct kw_sso_logout_request *l, int64_t now,
		  unsigned *ended_r, const char **error_r)
{
	const bool by_login = l->login != NULL && l->login[0] != '\0';
	const bool one_session = l->session_index != NULL && l->session_index[0] != '\0';
	char login[KW_LOGIN_MAX + 1];
	struct text js;
	sqlite3_stmt *st;
	int64_t user_id;
	unsigned ended;
	char *details;
	int ret, rc;

	if ((ret = check_text(store, "IdP", l->idp, 1024, true, error_r)) < 0 ||
	    (by_login && (ret = check_text(store, "login", l->login, KW_LOGIN_MAX, false,
					   error_r)) < 0) ||
	    (!by_login &&
	     (ret = check_text(store, "NameID", l->name_id, 1024, true, error_r)) < 0) ||
	    (l->request_id != NULL &&
	     (ret = check_text(store, "request id", l->request_id, 256, true, error_r)) < 0))
		return ret;
	if (kw_store_begin(store) < 0)
		return kw_store_db_fail(store, error_r, "cannot start a transaction");
	if (l->request_id != NULL &&
	    (ret = kw_sso_replay_record(store, l->request_id, l->replay_expires, now, error_r)) < 0)
		goto out;
	st = kw_store_stmt(store, "SELECT id, login FROM user WHERE source = 'sso' AND "
				  "((?1 IS NOT NULL AND login = ?1) OR "
				  "(?1 IS NULL AND sso_idp = ?2 AND sso_name_id = ?3))");
	if (st == NULL)
		goto dbfail;
	if (by_login)
		sqlite3_bind_text(st, 1, l->login, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, l->idp, -1, SQLITE_STATIC);
	if (l->name_id != NULL)
		sqlite3_bind_text(st, 3, l->name_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		ret = kw_store_fail(store, -ENOENT, error_r, "no SSO user %s '%s'",
				    by_login ? "with login" : "with NameID",
				    by_login ? l->login : l->name_id);
		goto out;
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		goto dbfail;
	}
	user_id = sqlite3_column_int64(st, 0);
	kw_store_copy_text(login, sizeof(login), st, 1);
	sqlite3_reset(st);
	st = kw_store_stmt(store, "UPDATE sso_session SET ended = ?2 WHERE user_id = ?1 AND "
				  "ended IS NULL AND (?3 IS NULL OR session_index = ?3)");
	if (st == NULL)
		goto dbfail;
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_int64(st, 2, now);
	if (one_session)
		sqlite3_bind_text(st, 3, l->session_index, -1, SQLITE_STATIC);
	if (step_done(st) != SQLITE_DONE)
		goto dbfail;
	ended = (unsigned)sqlite3_changes(kw_store_db(store));

	text_open(&js);
	fputs("{\"idp\":", js.f);
	kw_json_string(js.f, l->idp);
	fputs(",\"session_index\":", js.f);
	if (one_session)
		kw_json_string(js.f, l->session_index);
	else
		fputs("null", js.f);
	fprintf(js.f, ",\"sessions_ended\":%u,\"tokens\":\"not affected: " KW_SSO_RULE "\"}",
		ended);
	details = text_close(&js);
	ret = insert_event(store, now, user_id, "logout", details);
	if (ret == 0)
		ret = kw_audit_append(store, now, KW_SSO_ACTOR, "sso.logout", login, details);
	free(details);
	if (ret < 0 || kw_store_commit(store) < 0)
		goto dbfail;
	kw_log_id(KW_LOG_NOTICE, KW_SSO_MSGID_LOGOUT,
		  "SSO logout of '%s' (IdP %s): %u session%s ended; permanent API tokens are not "
		  "affected (" KW_SSO_RULE ")",
		  login, l->idp, ended, ended == 1 ? "" : "s");
	*ended_r = ended;
	return 0;
dbfail:
	ret = kw_store_db_fail(store, error_r, "cannot record the SSO logout");
out:
	kw_store_rollback(store);
	return ret;
}

/* ---- revoke (admin) ---- */

int kw_sso_revoke(struct kw_store *store, const char *actor, const char *login,
		  const char *reason, int64_t now, struct kw_sso_result *result_r,
		  const char **error_r)
{
	struct kw_sso_result res = {.outcome = KW_SSO_REVOKED};
	char case_reason[KW_SSO_REASON_MAX + 1];
	char *logline = NULL, *details;
	struct kw_user u;
	struct text js;
	sqlite3_stmt *st;
	int ret;

	if ((ret = check_text(store, "reason", reason, KW_SSO_REASON_MAX - 100, true, error_r)) <
	    0)
		return ret;
	if (kw_store_begin(store) < 0)
		return kw_store_db_fail(store, error_r, "cannot start a transaction");
	if ((ret = kw_store_user_get(store, login, &u, error_r)) < 0)
		goto out;
	if (!u.sso) {
		ret = kw_store_fail(store, -EINVAL, error_r,
				    "'%s' is a local user, not an SSO user: to stop its tokens, "
				    "delete them or disable the user (keywarden user set %s "
				    "--disable)",
				    login, login);
		goto out;
	}
	res.user_id = u.id;
	st = kw_store_stmt(store, "UPDATE user SET sso_state = 'revoked' WHERE id = ?1");
	if (st == NULL)
		goto dbfail;
	sqlite3_bind_int64(st, 1, u.id);
	if (step_done(st) != SQLITE_DONE)
		goto dbfail;
	st = kw_store_stmt(store, "UPDATE sso_session SET ended = ?2 WHERE user_id = ?1 AND "
				  "ended IS NULL AND (?3 IS NULL OR session_index = ?3)");
	if (st == NULL)
		goto dbfail;
	sqlite3_bind_int64(st, 1, u.id);
	sqlite3_bind_int64(st, 2, now);
	if (step_done(st) != SQLITE_DONE)
		goto dbfail;

	text_open(&js);
	fputs("{\"reason\":", js.f);
	kw_json_string(js.f, reason);
	fprintf(js.f, ",\"sso_state_before\":\"%s\",\"sessions_ended\":%d}",
		u.sso_state[0] != '\0' ? u.sso_state : "active",
		sqlite3_changes(kw_store_db(store)));
	details = text_close(&js);
	ret = insert_event(store, now, u.id, "revoke", details);
	if (ret == 0)
		ret = kw_audit_append(store, now, actor, "sso.revoke", login, details);
	free(details);
	if (ret < 0)
		goto dbfail;

	snprintf(case_reason, sizeof(case_reason), "revocation at the IdP recorded by %s: %s",
		 actor, reason);
	snprintf(u.sso_state, sizeof(u.sso_state), "revoked");
	struct rule_event ev = {.user = &u, .kind = "idp_revoked", .reason = case_reason,
				.old_role = NULL, .actor = actor, .now = now};
	if ((ret = apply_rule(store, &ev, &res.case_id, &res.active_tokens, &logline, error_r)) <
	    0)
		goto out;
	if (kw_store_commit(store) < 0)
		goto dbfail;
	kw_log_id(KW_LOG_WARNING, KW_SSO_MSGID_RULE, "%s", logline);
	free(logline);
	*result_r = res;
	return 0;
dbfail:
	ret = kw_store_db_fail(store, error_r, "cannot record the revocation");
out:
	free(logline);
	kw_store_rollback(store);
	return ret;
}

/* ---- sweep ---- */

struct id_login {
	int64_t id;
	char login[KW_LOGIN_MAX + 1];
	char kind[16];
};

static int collect_ids(sqlite3_stmt *st, struct id_login **rows_r, size_t *n_r)
{
	struct id_login *rows = NULL;
	size_t n = 0, cap = 0;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap == 0 ? 8 : cap * 2;
			rows = realloc(rows, cap * sizeof(*rows));
			if (rows == NULL)
				abort();
		}
		rows[n].id = sqlite3_column_int64(st, 0);
		kw_store_copy_text(rows[n].login, sizeof(rows[n].login), st, 1);
		kw_store_copy_text(rows[n].kind, sizeof(rows[n].kind), st, 2);
		n++;
	}
	if (rc != SQLITE_DONE) {
		free(rows);
		return -EIO;
	}
	*rows_r = rows;
	*n_r = n;
	return 0;
}

#define ACTIVE_TOKEN_OF(u)                                                                         \
	"EXISTS (SELECT 1 FROM token t WHERE t.issuer_id = " u ".id AND t.deleted IS NULL AND "    \
	"(t.expires IS NULL OR t.expires > ?2))"

static int sweep_locked(struct kw_store *store, int64_t account_id, int64_t now,
			unsigned stale_days, char ***logs_r, size_t *n_logs_r,
			const char **error_r)
{
	struct id_login *rows = NULL;
	char **logs = NULL;
	size_t n = 0, n_logs = 0;
	sqlite3_stmt *st;
	int ret = 0;

	/* 1. cases whose user holds no active token close by themselves. `enabled` does not
	 * count: a disabled user's tokens validate again once the user is enabled, and nothing
	 * would reopen the case then. */
	st = prep(store, "SELECT c.id, u.login, c.kind FROM sso_case c JOIN user u "
			 "ON u.id = c.user_id WHERE c.closed IS NULL AND (?1 = 0 OR "
			 "c.account_id = ?1) AND NOT " ACTIVE_TOKEN_OF("u"));
	if (st == NULL)
		return kw_store_db_fail(store, error_r, "review sweep");
	sqlite3_bind_int64(st, 1, account_id);
	sqlite3_bind_int64(st, 2, now);
	ret = collect_ids(st, &rows, &n);
	sqlite3_finalize(st);
	if (ret < 0)
		return kw_store_db_fail(store, error_r, "review sweep");
	for (size_t i = 0; i < n && ret == 0; i++) {
		char target[32], details[KW_LOGIN_MAX * 6 + 128], jl[KW_LOGIN_MAX * 6 + 3];

		st = prep(store, "UPDATE sso_case SET closed = ?2, closed_by = '" KW_SSO_SWEEPER
				 "', close_reason = 'no active token left' WHERE id = ?1");
		if (st == NULL) {
			ret = -EIO;
			break;
		}
		sqlite3_bind_int64(st, 1, rows[i].id);
		sqlite3_bind_int64(st, 2, now);
		if (sqlite3_step(st) != SQLITE_DONE)
			ret = -EIO;
		sqlite3_finalize(st);
		kw_json_string_buf(jl, sizeof(jl), rows[i].login);
		snprintf(target, sizeof(target), "sso_case:%lld", (long long)rows[i].id);
		snprintf(details, sizeof(details),
			 "{\"user\":%s,\"kind\":\"%s\",\"close_reason\":\"no active token left\"}",
			 jl, rows[i].kind);
		if (ret == 0 &&
		    kw_audit_append(store, now, KW_SSO_SWEEPER, "sso.case_close", target, details) <
			    0)
			ret = -EIO;
	}
	free(rows);
	rows = NULL;
	if (ret < 0)
		return kw_store_db_fail(store, error_r, "cannot close review cases");

	/* 2. stale SSO users holding active tokens get a case (once per absence) */
	st = prep(store,
		  "SELECT u.id, u.login, '' FROM user u WHERE u.source = 'sso' "
		  "AND coalesce(u.sso_state, 'active') != 'revoked' AND u.enabled = 1 "
		  "AND coalesce(u.sso_last_seen, u.created) <= ?3 AND (?1 = 0 OR u.account_id = ?1) "
		  "AND " ACTIVE_TOKEN_OF("u") " AND NOT EXISTS (SELECT 1 FROM sso_case c WHERE "
		  "c.user_id = u.id AND (c.closed IS NULL OR (c.kind = 'stale' AND "
		  "c.opened >= coalesce(u.sso_last_seen, u.created)))) ORDER BY u.id");
	if (st == NULL)
		return kw_store_db_fail(store, error_r, "review sweep");
	sqlite3_bind_int64(st, 1, account_id);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_int64(st, 3, now - (int64_t)stale_days * DAY);
	ret = collect_ids(st, &rows, &n);
	sqlite3_finalize(st);
	if (ret < 0)
		return kw_store_db_fail(store, error_r, "review sweep");
	if (n > 0) {
		logs = calloc(n, sizeof(*logs));
		if (logs == NULL)
			abort();
	}
	for (size_t i = 0; i < n; i++) {
		char reason[KW_SSO_REASON_MAX + 1], seen[KW_TIME_TEXT_MAX];
		struct kw_user u;
		int64_t case_id;
		unsigned n_tok;

		if ((ret = kw_store_user_get(store, rows[i].login, &u, error_r)) < 0)
			break;
		if (u.sso_last_seen != 0)
			kw_time_format(u.sso_last_seen, seen);
		snprintf(reason, sizeof(reason),
			 "not seen in any assertion %s%s for over %u days: access may have been "
			 "revoked at the IdP",
			 u.sso_last_seen != 0 ? "since " : "", u.sso_last_seen != 0 ? seen : "ever",
			 stale_days);
		struct rule_event ev = {.user = &u, .kind = "stale", .reason = reason,
					.actor = KW_SSO_SWEEPER, .now = now};
		if ((ret = apply_rule(store, &ev, &case_id, &n_tok, &logs[n_logs], error_r)) < 0)
			break;
		n_logs++;
	}
	free(rows);
	if (ret < 0) {
		for (size_t i = 0; i < n_logs; i++)
			free(logs[i]);
		free(logs);
		return ret;
	}
	*logs_r = logs;
	*n_logs_r = n_logs;
	return 0;
}

static int resolve_account(struct kw_store *store, const char *account, int64_t *id_r,
			   const char **error_r)
{
	struct kw_account acct;
	int ret;

	*id_r = 0;
	if (account == NULL)
		return 0;
	if ((ret = kw_store_account_get(store, account, &acct, error_r)) < 0)
		return ret;
	*id_r = acct.id;
	return 0;
}

int kw_sso_sweep(struct kw_store *store, const char *account, int64_t now, unsigned stale_days,
		 const char **error_r)
{
	char **logs = NULL;
	size_t n_logs = 0;
	int64_t account_id;
	int ret;

	if (kw_store_begin(store) < 0)
		return kw_store_db_fail(store, error_r, "cannot start a transaction");
	if ((ret = resolve_account(store, account, &account_id, error_r)) < 0 ||
	    (ret = sweep_locked(store, account_id, now, stale_days, &logs, &n_logs, error_r)) <
		    0) {
		kw_store_rollback(store);
		return ret;
	}
	if (kw_store_commit(store) < 0) {
		ret = kw_store_db_fail(store, error_r, "cannot commit the review sweep");
		kw_store_rollback(store);
	}
	for (size_t i = 0; i < n_logs; i++) {
		if (ret == 0)
			kw_log_id(KW_LOG_WARNING, KW_SSO_MSGID_STALE, "%s", logs[i]);
		free(logs[i]);
	}
	free(logs);
	return ret;
}

/* ---- dismiss ---- */

int kw_sso_dismiss(struct kw_store *store, const char *as, int64_t case_id, const char *reason,
		   int64_t now, const char **error_r)
{
	char target[32], login[KW_LOGIN_MAX + 1], kind[16];
	int64_t account_id, closed, case_user;
	struct kw_user actor;
	sqlite3_stmt *st = NULL;
	struct text js;
	char *details;
	int ret, rc;

	if ((ret = check_text(store, "reason", reason, KW_SSO_REASON_MAX, true, error_r)) < 0)
		return ret;
	if (kw_store_begin(store) < 0)
		return kw_store_db_fail(store, error_r, "cannot start a transaction");
	if ((ret = kw_store_user_get(store, as, &actor, error_r)) < 0)
		goto out;
	if (!actor.enabled) {
		ret = kw_store_fail(store, -EPERM, error_r, "user '%s' is disabled", as);
		goto out;
	}
	if (strcmp(actor.role.name, ADMIN_ROLE) != 0) {
		ret = kw_store_fail(store, -EPERM, error_r,
				    "only Administrators may dismiss a review case ('%s' is %s)", as,
				    actor.role.name);
		goto out;
	}
	if (actor.sso && strcmp(actor.sso_state, "revoked") == 0) {
		ret = kw_store_fail(store, -EPERM, error_r,
				    "SSO access of '%s' was revoked: another Administrator must "
				    "dismiss the case",
				    as);
		goto out;
	}
	st = prep(store, "SELECT c.account_id, coalesce(c.closed, 0), u.login, c.kind, u.id FROM "
			 "sso_case c JOIN user u ON u.id = c.user_id WHERE c.id = ?1");
	if (st == NULL)
		goto dbfail;
	sqlite3_bind_int64(st, 1, case_id);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		goto dbfail;
	if (rc == SQLITE_DONE || sqlite3_column_int64(st, 0) != actor.account_id) {
		/* cases of other accounts are "not found", like their tokens */
		ret = kw_store_fail(store, -ENOENT, error_r, "no review case %lld in account '%s'",
				    (long long)case_id, actor.account);
		goto out;
	}
	account_id = sqlite3_column_int64(st, 0);
	closed = sqlite3_column_int64(st, 1);
	kw_store_copy_text(login, sizeof(login), st, 2);
	kw_store_copy_text(kind, sizeof(kind), st, 3);
	case_user = sqlite3_column_int64(st, 4);
	sqlite3_finalize(st);
	st = NULL;
	(void)account_id;
	if (case_user == actor.id) {
		ret = kw_store_fail(store, -EPERM, error_r,
				    "'%s' may not dismiss review case %lld, which is about '%s' "
				    "itself: another Administrator must dismiss it",
				    as, (long long)case_id, as);
		goto out;
	}
	if (closed != 0) {
		ret = kw_store_fail(store, -EALREADY, error_r, "review case %lld is already closed",
				    (long long)case_id);
		goto out;
	}
	st = prep(store, "UPDATE sso_case SET closed = ?2, closed_by = ?3, close_reason = ?4 "
			 "WHERE id = ?1 AND closed IS NULL");
	if (st == NULL)
		goto dbfail;
	sqlite3_bind_int64(st, 1, case_id);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_text(st, 3, as, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, reason, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto dbfail;
	sqlite3_finalize(st);
	st = NULL;
	text_open(&js);
	fputs("{\"user\":", js.f);
	kw_json_string(js.f, login);
	fprintf(js.f, ",\"kind\":\"%s\",\"reason\":", kind);
	kw_json_string(js.f, reason);
	fputs("}", js.f);
	details = text_close(&js);
	snprintf(target, sizeof(target), "sso_case:%lld", (long long)case_id);
	ret = kw_audit_append(store, now, as, "sso.case_dismiss", target, details);
	free(details);
	if (ret < 0 || kw_store_commit(store) < 0)
		goto dbfail;
	return 0;
dbfail:
	ret = kw_store_db_fail(store, error_r, "cannot dismiss the review case");
out:
	sqlite3_finalize(st);
	kw_store_rollback(store);
	return ret;
}

/* ---- review ---- */

void kw_sso_review_free(struct kw_sso_review **reviewp)
{
	struct kw_sso_review *r = *reviewp;

	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n_cases; i++)
		free(r->cases[i].tokens);
	free(r->cases);
	free(r->stale);
	free(r);
	*reviewp = NULL;
}

static int read_cases(struct kw_store *store, int64_t account_id, struct kw_sso_review *r)
{
	sqlite3_stmt *st = prep(store, "SELECT c.id, a.name, u.login, c.kind, c.reason, c.opened, "
				       "c.updated, c.events, r.name, coalesce(u.sso_state, ''), "
				       "coalesce(u.sso_last_seen, 0), u.id, u.account_id, r.rank, "
				       "u.enabled "
				       "FROM sso_case c JOIN user u ON u.id = c.user_id "
				       "JOIN account a ON a.id = c.account_id "
				       "JOIN role r ON r.id = u.role_id WHERE c.closed IS NULL "
				       "AND (?1 = 0 OR c.account_id = ?1) ORDER BY c.id");
	struct { int64_t user_id, account_id; int rank; } *keys = NULL;
	size_t cap = 0;
	int rc;

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, account_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct kw_sso_case *c;

		if (r->n_cases == cap) {
			cap = cap == 0 ? 8 : cap * 2;
			r->cases = realloc(r->cases, cap * sizeof(*r->cases));
			keys = realloc(keys, cap * sizeof(*keys));
			if (r->cases == NULL || keys == NULL)
				abort();
		}
		c = &r->cases[r->n_cases];
		memset(c, 0, sizeof(*c));
		c->id = sqlite3_column_int64(st, 0);
		kw_store_copy_text(c->account, sizeof(c->account), st, 1);
		kw_store_copy_text(c->login, sizeof(c->login), st, 2);
		kw_store_copy_text(c->kind, sizeof(c->kind), st, 3);
		kw_store_copy_text(c->reason, sizeof(c->reason), st, 4);
		c->opened = sqlite3_column_int64(st, 5);
		c->updated = sqlite3_column_int64(st, 6);
		c->events = (unsigned)sqlite3_column_int(st, 7);
		kw_store_copy_text(c->role, sizeof(c->role), st, 8);
		kw_store_copy_text(c->sso_state, sizeof(c->sso_state), st, 9);
		c->last_seen = sqlite3_column_int64(st, 10);
		keys[r->n_cases].user_id = sqlite3_column_int64(st, 11);
		keys[r->n_cases].account_id = sqlite3_column_int64(st, 12);
		keys[r->n_cases].rank = sqlite3_column_int(st, 13);
		c->user_enabled = sqlite3_column_int(st, 14) != 0;
		r->n_cases++;
	}
	sqlite3_finalize(st);
	for (size_t i = 0; rc == SQLITE_DONE && i < r->n_cases; i++) {
		struct kw_sso_case *c = &r->cases[i];
		if (load_active_tokens(store, keys[i].user_id, keys[i].rank, r->now, &c->tokens,
				       &c->n_tokens) < 0 ||
		    find_admin(store, keys[i].account_id, keys[i].user_id, c->admin) < 0)
			rc = SQLITE_ERROR;
	}
	free(keys);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

static int read_stale(struct kw_store *store, int64_t account_id, struct kw_sso_review *r)
{
	sqlite3_stmt *st = prep(
		store, "SELECT a.name, u.login, r.name, coalesce(u.sso_last_seen, 0), "
		       "coalesce((SELECT c.id FROM sso_case c WHERE c.user_id = u.id AND "
		       "c.closed IS NULL), 0), "
		       "(SELECT count(*) FROM token t WHERE t.issuer_id = u.id AND u.enabled = 1 "
		       "AND t.deleted IS NULL AND (t.expires IS NULL OR t.expires > ?2)) "
		       "FROM user u JOIN account a ON a.id = u.account_id "
		       "JOIN role r ON r.id = u.role_id WHERE u.source = 'sso' "
		       "AND coalesce(u.sso_state, 'active') != 'revoked' "
		       "AND coalesce(u.sso_last_seen, u.created) <= ?3 "
		       "AND (?1 = 0 OR u.account_id = ?1) ORDER BY a.name, u.login");
	size_t cap = 0;
	int rc;

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, account_id);
	sqlite3_bind_int64(st, 2, r->now);
	sqlite3_bind_int64(st, 3, r->now - (int64_t)r->stale_days * DAY);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct kw_sso_stale_user *s;

		if (r->n_stale == cap) {
			cap = cap == 0 ? 8 : cap * 2;
			r->stale = realloc(r->stale, cap * sizeof(*r->stale));
			if (r->stale == NULL)
				abort();
		}
		s = &r->stale[r->n_stale++];
		memset(s, 0, sizeof(*s));
		kw_store_copy_text(s->account, sizeof(s->account), st, 0);
		kw_store_copy_text(s->login, sizeof(s->login), st, 1);
		kw_store_copy_text(s->role, sizeof(s->role), st, 2);
		s->last_seen = sqlite3_column_int64(st, 3);
		s->case_id = sqlite3_column_int64(st, 4);
		s->active_tokens = (unsigned)sqlite3_column_int(st, 5);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

int kw_sso_review(struct kw_store *store, const char *account, int64_t now, unsigned stale_days,
		  struct kw_sso_review **review_r, const char **error_r)
{
	struct kw_sso_review *r;
	int64_t account_id;
	int ret;

	if ((ret = resolve_account(store, account, &account_id, error_r)) < 0 ||
	    (ret = kw_sso_sweep(store, account, now, stale_days, error_r)) < 0)
		return ret;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		abort();
	r->now = now;
	r->stale_days = stale_days;
	/* one read transaction, so that cases and stale users agree */
	if (sqlite3_exec(kw_store_db(store), "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		kw_sso_review_free(&r);
		return kw_store_db_fail(store, error_r, "review");
	}
	if (read_cases(store, account_id, r) < 0 || read_stale(store, account_id, r) < 0) {
		ret = kw_store_db_fail(store, error_r, "review");
		kw_store_rollback(store);
		kw_sso_review_free(&r);
		return ret;
	}
	kw_store_rollback(store); /* nothing written: ends the read transaction */
	*review_r = r;
	return 0;
}
