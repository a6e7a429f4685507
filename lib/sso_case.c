/* sso_case.c: the rule applied and the life of a review case (see sso.h): the rule's audit
 * event, warning and case; an admin's revocation; the sweep that closes cases without live
 * tokens and opens "stale" ones; an Administrator's dismissal.
 *
 * kw_sso_decide_revoke() and kw_sso_decide_case() (sso_rule.c) say what happens; this file
 * reads the facts from the store and writes what was decided. Nothing here changes a token or a
 * user's `enabled` flag. Every change runs in one IMMEDIATE transaction with its audit event;
 * log lines are written after the commit. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "log.h"
#include "sso.h"
#include "sso_private.h"
#include "sso_rule.h"
#include "store.h"
#include "store_sso.h"

/* log.c cuts lines at 4 KiB: the token list of the log line stops before that; the audit
 * event always lists every token. */
#define LOG_LINE_BUDGET 3600

/* ---- helpers shared by lib/sso_*.c ---- */

void kw_sso_text_open(struct kw_sso_text *t)
{
	t->buf = NULL;
	t->len = 0;
	t->f = open_memstream(&t->buf, &t->len);
	if (t->f == NULL)
		abort();
}

char *kw_sso_text_close(struct kw_sso_text *t)
{
	if (fclose(t->f) != 0)
		abort();
	t->f = NULL;
	return t->buf;
}

void kw_sso_time_text(int64_t t, const char *none, char buf[KW_TIME_TEXT_MAX])
{
	if (t == 0 || t == KW_NEVER)
		snprintf(buf, KW_TIME_TEXT_MAX, "%s", none);
	else
		kw_time_format(t, buf);
}

int kw_sso_account_id(struct kw_store *store, const char *account, int64_t *id_r,
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

/* The kind of a case that is open, else KW_SSO_CASE_NONE (the schema allows no other kind). */
static enum kw_sso_case_kind open_kind(const struct kw_store_sso_case_ref *ref)
{
	enum kw_sso_case_kind kind;

	if (ref->id == 0 || ref->closed || kw_sso_case_kind_parse(ref->kind, &kind) < 0)
		return KW_SSO_CASE_NONE;
	return kind;
}

/* ---- the rule ---- */

/* The audit event's details (every token) and the log line (up to LOG_LINE_BUDGET). */
static void rule_text(const struct kw_sso_rule_event *ev, int64_t case_id,
		      enum kw_sso_case_action action, const struct kw_sso_token *tokens, size_t n,
		      const char *admin, char **details_r, char **log_r)
{
	const struct kw_user *u = ev->user;
	const char *kind = kw_sso_case_kind_name(ev->kind);
	char cmd[KW_SSO_COMMAND_MAX], exp[KW_TIME_TEXT_MAX], used[KW_TIME_TEXT_MAX];
	struct kw_sso_text js, lg;
	size_t logged = 0;

	kw_sso_text_open(&js);
	kw_sso_text_open(&lg);
	fputs("{\"rule\":\"" KW_SSO_RULE "\",\"event\":", js.f);
	kw_json_string(js.f, kind);
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
	fprintf(js.f, ",\"case_action\":\"%s\",\"tokens\":[", kw_sso_case_action_name(action));

	fprintf(lg.f,
		KW_SSO_RULE ": user '%s' (account %s): %s. Its SSO sessions and their 1-hour "
			    "access tokens ended; keywarden changed no permanent token; ",
		u->login, u->account, ev->reason);
	if (n == 0)
		fprintf(lg.f, "'%s' holds no active token.", u->login);
	else
		fprintf(lg.f, "%zu active token%s remain%s (review case %lld):", n,
			n == 1 ? "" : "s", n == 1 ? "s" : "", (long long)case_id);
	for (size_t i = 0; i < n; i++) {
		const struct kw_sso_token *t = &tokens[i];

		kw_sso_delete_command(admin, t->id, cmd, sizeof(cmd));
		kw_sso_time_text(t->expires, "never", exp);
		kw_sso_time_text(t->last_used, "never", used);
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
			fprintf(lg.f,
				"%s token %llu \"%s\" (role %s, expires %s, last used %s%s%s): %s",
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
	*details_r = kw_sso_text_close(&js);
	*log_r = kw_sso_text_close(&lg);
}

int kw_sso_rule_apply(struct kw_store *store, const struct kw_sso_rule_event *ev,
		      int64_t *case_id_r, unsigned *n_tokens_r, char **log_r, const char **error_r)
{
	const struct kw_user *u = ev->user;
	const char *kind = kw_sso_case_kind_name(ev->kind);
	struct kw_sso_token *tokens = NULL;
	struct kw_store_sso_case_ref open;
	struct kw_sso_case_facts facts = { 0 };
	enum kw_sso_case_action action;
	char admin[KW_LOGIN_MAX + 1];
	char *details = NULL, *logline = NULL;
	int64_t case_id;
	size_t n = 0;
	int ret;

	if ((ret = kw_store_sso_live_tokens(store, u->id, u->role.rank, ev->now, &tokens, &n,
					    error_r)) < 0 ||
	    (ret = kw_store_sso_admin_find(store, u->account_id, u->id, admin, error_r)) < 0 ||
	    (ret = kw_store_sso_case_open_get(store, u->id, &open, error_r)) < 0)
		goto out;
	facts.open = open_kind(&open);
	facts.live_tokens = (unsigned)n;
	case_id = open.id;
	action = kw_sso_decide_case(KW_SSO_CASE_EVENT_RULE, &facts);
	if (action == KW_SSO_CASE_UPDATE)
		ret = kw_store_sso_case_update(store, case_id, kind, ev->reason, ev->now, error_r);
	else if (action == KW_SSO_CASE_OPEN)
		ret = kw_store_sso_case_open(store, u->account_id, u->id, kind, ev->reason, ev->now,
					     &case_id, error_r);
	if (ret < 0)
		goto out;

	rule_text(ev, case_id, action, tokens, n, admin, &details, &logline);
	ret = kw_store_sso_event_add(store, ev->now, u->id, "rule", ev->actor, "sso.rule", u->login,
				     details, error_r);
	if (ret < 0)
		goto out;
	*case_id_r = case_id;
	*n_tokens_r = (unsigned)n;
	*log_r = logline;
	logline = NULL;
out:
	free(details);
	free(logline);
	free(tokens);
	return ret;
}

int kw_sso_case_seen(struct kw_store *store, int64_t user_id, int64_t now, const char **error_r)
{
	struct kw_store_sso_case_ref open;
	struct kw_sso_case_facts facts = { 0 };
	int ret;

	if ((ret = kw_store_sso_case_open_get(store, user_id, &open, error_r)) < 0)
		return ret;
	facts.open = open_kind(&open);
	if (kw_sso_decide_case(KW_SSO_CASE_EVENT_SEEN, &facts) != KW_SSO_CASE_CLOSE)
		return 0;
	return kw_store_sso_case_close(
		store, open.id, now, KW_SSO_SWEEPER, "seen again in an assertion", "sso.case_close",
		"{\"kind\":\"stale\",\"close_reason\":\"seen again in an assertion\"}", error_r);
}

/* ---- revoke (admin) ---- */

/* What revoke and restore (admins, SCIM) begin with: the reason checked, a transaction begun,
 * the user read and its SSO state as the rule's decision takes it. On failure the caller rolls
 * back (out:). */
static int change_begin(struct kw_store *store, const char *login, const char *reason,
			struct kw_user *u_r, struct kw_sso_before *before, const char **error_r)
{
	int ret;

	if ((ret = kw_store_sso_check(store, "reason", reason, KW_SSO_REASON_MAX - 100, true,
				      error_r)) < 0 ||
	    (ret = kw_store_sso_begin(store, error_r)) < 0 ||
	    (ret = kw_store_user_get(store, login, u_r, error_r)) < 0)
		return ret;
	before->sso = u_r->sso;
	before->rank = u_r->role.rank;
	if (u_r->sso && kw_sso_state_parse(u_r->sso_state, &before->state) < 0)
		return kw_store_fail(store, -EIO, error_r, "SSO user '%s' has SSO state '%s'",
				     login, u_r->sso_state);
	return 0;
}

int kw_sso_revoke(struct kw_store *store, const char *actor, const char *login, const char *reason,
		  int64_t now, struct kw_sso_result *result_r, const char **error_r)
{
	struct kw_sso_result res = { 0 };
	struct kw_sso_before before = { .exists = true, .same_account = true };
	char case_reason[KW_SSO_REASON_SIZE];
	char *logline = NULL, *details;
	struct kw_sso_decision d;
	struct kw_sso_text js;
	struct kw_user u;
	unsigned ended;
	int ret;

	if ((ret = change_begin(store, login, reason, &u, &before, error_r)) < 0)
		goto out;
	if (kw_sso_decide_revoke(&before, &d) < 0) {
		ret = kw_store_fail(store, -EINVAL, error_r,
				    "'%s' is a local user, not an SSO user: to stop its tokens, "
				    "delete them or disable the user (keywarden user set %s "
				    "--disable)",
				    login, login);
		goto out;
	}
	res.outcome = d.outcome;
	res.user_id = u.id;
	if ((ret = kw_store_sso_user_state(store, u.id, kw_sso_state_name(d.state), error_r)) < 0 ||
	    (ret = kw_store_sso_sessions_end(store, u.id, NULL, now, &ended, error_r)) < 0)
		goto out;

	kw_sso_text_open(&js);
	fputs("{\"reason\":", js.f);
	kw_json_string(js.f, reason);
	fprintf(js.f, ",\"sso_state_before\":\"%s\",\"sessions_ended\":%u}",
		kw_sso_state_name(before.state), ended);
	details = kw_sso_text_close(&js);
	ret = kw_store_sso_event_add(store, now, u.id, "revoke", actor, d.audit_action, login,
				     details, error_r);
	free(details);
	if (ret < 0)
		goto out;

	snprintf(case_reason, sizeof(case_reason), "revocation at the IdP recorded by %s: %s",
		 actor, reason);
	snprintf(u.sso_state, sizeof(u.sso_state), "%s", kw_sso_state_name(d.state));
	struct kw_sso_rule_event ev = {
		.user = &u, .kind = d.rule, .reason = case_reason, .actor = actor, .now = now
	};
	if ((ret = kw_sso_rule_apply(store, &ev, &res.case_id, &res.active_tokens, &logline,
				     error_r)) < 0 ||
	    (ret = kw_store_sso_commit(store, error_r)) < 0)
		goto out;
	kw_log_id(KW_LOG_WARNING, KW_SSO_MSGID_RULE, "%s", logline);
	*result_r = res;
out:
	free(logline);
	if (ret < 0)
		kw_store_rollback(store);
	return ret;
}

/* ---- restore (the IdP says access is back: SCIM) ---- */

int kw_sso_restore(struct kw_store *store, const char *actor, const char *login, const char *reason,
		   int64_t now, struct kw_sso_result *result_r, const char **error_r)
{
	struct kw_sso_result res = { 0 };
	struct kw_sso_before before = { .exists = true, .same_account = true };
	struct kw_sso_decision d;
	struct kw_sso_text js;
	struct kw_user u;
	char *details;
	int ret;

	if ((ret = change_begin(store, login, reason, &u, &before, error_r)) < 0)
		goto out;
	if (kw_sso_decide_restore(&before, &d) < 0) {
		ret = kw_store_fail(store, -EINVAL, error_r,
				    "'%s' is a local user, not an SSO user", login);
		goto out;
	}
	res.outcome = d.outcome;
	res.user_id = u.id;
	if (d.write_user) {
		if ((ret = kw_store_sso_user_state(store, u.id, kw_sso_state_name(d.state),
						   error_r)) < 0)
			goto out;
		kw_sso_text_open(&js);
		fputs("{\"reason\":", js.f);
		kw_json_string(js.f, reason);
		fprintf(js.f, ",\"sso_state_before\":\"%s\",\"sso_state\":\"%s\"}",
			kw_sso_state_name(before.state), kw_sso_state_name(d.state));
		details = kw_sso_text_close(&js);
		ret = kw_store_sso_event_add(store, now, u.id, "restore", actor, d.audit_action,
					     login, details, error_r);
		free(details);
		if (ret < 0)
			goto out;
	}
	if ((ret = kw_store_sso_commit(store, error_r)) < 0)
		goto out;
	if (d.write_user)
		kw_notice("SSO access of %s restored by %s: %s (permanent API tokens were not "
			  "changed by the revocation and are not changed now)",
			  login, actor, reason);
	*result_r = res;
out:
	if (ret < 0)
		kw_store_rollback(store);
	return ret;
}

/* ---- sweep ---- */

/* 1. Cases whose user holds no live token close by themselves. `enabled` does not count: a
 * disabled user's tokens validate again once the user is enabled, and nothing would reopen the
 * case then. */
static int sweep_close(struct kw_store *store, int64_t account_id, int64_t now,
		       const char **error_r)
{
	struct kw_store_sso_case_ref *refs = NULL;
	size_t n = 0;
	int ret;

	if ((ret = kw_store_sso_cases_without_tokens(store, account_id, now, &refs, &n, error_r)) <
	    0)
		return ret;
	for (size_t i = 0; i < n && ret == 0; i++) {
		char details[KW_LOGIN_MAX * 6 + 128], jl[KW_LOGIN_MAX * 6 + 3];
		struct kw_sso_case_facts facts = { .open = open_kind(&refs[i]), .live_tokens = 0 };

		if (kw_sso_decide_case(KW_SSO_CASE_EVENT_SWEEP, &facts) != KW_SSO_CASE_CLOSE)
			continue;
		kw_json_string_buf(jl, sizeof(jl), refs[i].login);
		snprintf(details, sizeof(details),
			 "{\"user\":%s,\"kind\":\"%s\",\"close_reason\":\"no active token left\"}",
			 jl, refs[i].kind);
		ret = kw_store_sso_case_close(store, refs[i].id, now, KW_SSO_SWEEPER,
					      "no active token left", "sso.case_close", details,
					      error_r);
	}
	free(refs);
	return ret;
}

/* 2. Stale SSO users holding live tokens get a case (once per absence); *logs_r: the warnings
 * to log after the commit. */
static int sweep_stale(struct kw_store *store, int64_t account_id, int64_t now, unsigned stale_days,
		       char ***logs_r, size_t *n_logs_r, const char **error_r)
{
	struct kw_store_sso_case_ref *refs = NULL;
	char **logs = NULL;
	size_t n = 0, n_logs = 0;
	int ret;

	if ((ret = kw_store_sso_stale_to_open(store, account_id, now, stale_days, &refs, &n,
					      error_r)) < 0)
		return ret;
	if (n > 0) {
		logs = calloc(n, sizeof(*logs));
		if (logs == NULL)
			abort();
	}
	for (size_t i = 0; i < n; i++) {
		char reason[KW_SSO_REASON_SIZE], seen[KW_TIME_TEXT_MAX];
		struct kw_user u;
		int64_t case_id;
		unsigned n_tok;

		if ((ret = kw_store_user_get(store, refs[i].login, &u, error_r)) < 0)
			break;
		if (u.sso_last_seen != 0)
			kw_time_format(u.sso_last_seen, seen);
		snprintf(reason, sizeof(reason),
			 "not seen in any assertion %s%s for over %u days: access may have been "
			 "revoked at the IdP",
			 u.sso_last_seen != 0 ? "since " : "", u.sso_last_seen != 0 ? seen : "ever",
			 stale_days);
		struct kw_sso_rule_event ev = { .user = &u,
						.kind = KW_SSO_CASE_STALE,
						.reason = reason,
						.actor = KW_SSO_SWEEPER,
						.now = now };
		if ((ret = kw_sso_rule_apply(store, &ev, &case_id, &n_tok, &logs[n_logs],
					     error_r)) < 0)
			break;
		n_logs++;
	}
	free(refs);
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

int kw_sso_sweep(struct kw_store *store, const char *account, int64_t now, unsigned stale_days,
		 const char **error_r)
{
	char **logs = NULL;
	size_t n_logs = 0;
	int64_t account_id;
	int ret;

	if ((ret = kw_store_sso_begin(store, error_r)) < 0)
		return ret;
	if ((ret = kw_sso_account_id(store, account, &account_id, error_r)) < 0 ||
	    (ret = sweep_close(store, account_id, now, error_r)) < 0 ||
	    (ret = sweep_stale(store, account_id, now, stale_days, &logs, &n_logs, error_r)) < 0) {
		kw_store_rollback(store);
		return ret;
	}
	if ((ret = kw_store_sso_commit(store, error_r)) < 0)
		kw_store_rollback(store);
	for (size_t i = 0; i < n_logs; i++) {
		if (ret == 0)
			kw_log_id(KW_LOG_WARNING, KW_SSO_MSGID_STALE, "%s", logs[i]);
		free(logs[i]);
	}
	free(logs);
	return ret;
}

/* ---- dismiss ---- */

/* The refusal of kw_sso_decide_dismisser() in words; 0 for KW_SSO_DISMISS_OK. */
static int dismiss_refusal(struct kw_store *store, enum kw_sso_dismiss_verdict verdict,
			   const struct kw_user *actor, int64_t case_id, const char **error_r)
{
	switch (verdict) {
	case KW_SSO_DISMISS_OK:
		break;
	case KW_SSO_DISMISS_DISABLED:
		return kw_store_fail(store, -EPERM, error_r, "user '%s' is disabled", actor->login);
	case KW_SSO_DISMISS_NOT_ADMIN:
		return kw_store_fail(store, -EPERM, error_r,
				     "only Administrators may dismiss a review case ('%s' is %s)",
				     actor->login, actor->role.name);
	case KW_SSO_DISMISS_REVOKED:
		return kw_store_fail(store, -EPERM, error_r,
				     "SSO access of '%s' was revoked: another Administrator must "
				     "dismiss the case",
				     actor->login);
	case KW_SSO_DISMISS_NOT_FOUND:
		return kw_store_fail(store, -ENOENT, error_r, "no review case %lld in account '%s'",
				     (long long)case_id, actor->account);
	case KW_SSO_DISMISS_SELF:
		return kw_store_fail(store, -EPERM, error_r,
				     "'%s' may not dismiss review case %lld, which is about '%s' "
				     "itself: another Administrator must dismiss it",
				     actor->login, (long long)case_id, actor->login);
	}
	return 0;
}

int kw_sso_dismiss(struct kw_store *store, const char *as, int64_t case_id, const char *reason,
		   int64_t now, const char **error_r)
{
	struct kw_sso_case_facts facts = { 0 };
	struct kw_sso_dismisser who = { 0 };
	struct kw_store_sso_case_ref c = { 0 };
	struct kw_user actor;
	struct kw_sso_text js;
	char *details;
	int ret;

	if ((ret = kw_store_sso_check(store, "reason", reason, KW_SSO_REASON_MAX, true, error_r)) <
		    0 ||
	    (ret = kw_store_sso_begin(store, error_r)) < 0)
		return ret;
	if ((ret = kw_store_user_get(store, as, &actor, error_r)) < 0)
		goto out;
	ret = kw_store_sso_case_get(store, case_id, &c, error_r);
	if (ret < 0 && ret != -ENOENT)
		goto out;
	who.enabled = actor.enabled;
	who.admin = kw_store_sso_is_admin(&actor);
	who.sso_revoked = actor.sso && strcmp(actor.sso_state, "revoked") == 0;
	who.same_account = ret == 0 && c.account_id == actor.account_id;
	who.case_user = ret == 0 && c.user_id == actor.id;
	if ((ret = dismiss_refusal(store, kw_sso_decide_dismisser(&who), &actor, case_id,
				   error_r)) < 0)
		goto out;
	facts.open = open_kind(&c);
	if (kw_sso_decide_case(KW_SSO_CASE_EVENT_DISMISS, &facts) != KW_SSO_CASE_CLOSE) {
		ret = kw_store_fail(store, -EALREADY, error_r, "review case %lld is already closed",
				    (long long)case_id);
		goto out;
	}
	kw_sso_text_open(&js);
	fputs("{\"user\":", js.f);
	kw_json_string(js.f, c.login);
	fprintf(js.f, ",\"kind\":\"%s\",\"reason\":", c.kind);
	kw_json_string(js.f, reason);
	fputs("}", js.f);
	details = kw_sso_text_close(&js);
	ret = kw_store_sso_case_close(store, case_id, now, as, reason, "sso.case_dismiss", details,
				      error_r);
	free(details);
	if (ret < 0 || (ret = kw_store_sso_commit(store, error_r)) < 0)
		goto out;
out:
	if (ret < 0)
		kw_store_rollback(store);
	return ret;
}
