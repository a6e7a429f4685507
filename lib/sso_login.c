/* sso_login.c: what the IdP writes through ssod (see sso.h): the replay cache, logins (the SSO
 * user created or updated, its session, and the rule when access ended or shrank) and logouts.
 *
 * kw_sso_decide_login() (sso_rule.c) says what an assertion leads to; this file reads the facts
 * it needs from the store and writes what it decided. Nothing here changes a token or a user's
 * `enabled` flag: that is the rule. Every change runs in one IMMEDIATE transaction with its
 * audit event; log lines about a change are written after its commit, so that a change that
 * rolls back is never logged as done. */
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

/* ---- replay cache ---- */

int kw_sso_replay_record(struct kw_store *store, const char *id, int64_t expires, int64_t now,
			 const char **error_r)
{
	/* Process-wide: every program of keywarden is single-threaded. */
	static int64_t last_purge;
	int ret;

	if (now - last_purge >= KW_SSO_REPLAY_PURGE_INTERVAL || now < last_purge) {
		if ((ret = kw_store_sso_replay_purge(store, now, error_r)) < 0)
			return ret;
		last_purge = now;
	}
	/* An entry the program might purge at once would make the check worthless. */
	if (expires <= now)
		expires = now + 1;
	return kw_store_sso_replay_add(store, id, expires, now, error_r);
}

/* ---- login ---- */

static int check_assertion(struct kw_store *store, const struct kw_sso_assertion *a,
			   const char **error_r)
{
	int ret;

	if ((ret = kw_store_sso_check(store, "account", a->account, KW_ACCOUNT_MAX, false,
				      error_r)) < 0 ||
	    (ret = kw_store_sso_check(store, "IdP", a->idp, 1024, true, error_r)) < 0 ||
	    (ret = kw_store_sso_check(store, "login", a->login, KW_LOGIN_MAX, false, error_r)) <
		    0 ||
	    (!a->scim && (ret = kw_store_sso_check(store, "assertion id", a->assertion_id, 256,
						   true, error_r)) < 0) ||
	    (a->name_id != NULL &&
	     (ret = kw_store_sso_check(store, "NameID", a->name_id, 1024, true, error_r)) < 0) ||
	    (a->session_index != NULL && a->session_index[0] != '\0' &&
	     (ret = kw_store_sso_check(store, "session index", a->session_index, 256, true,
				       error_r)) < 0))
		return ret;
	return 0;
}

/* What one login works with, inside its transaction. */
struct login {
	const struct kw_sso_assertion *a;
	int64_t now;
	const char *name_id;
	const char *email; /* NULL: none or not storable */
	struct kw_account acct;
	struct kw_role role; /* when a->role != NULL */
	struct kw_user user; /* when before.exists */
	struct kw_sso_before before;
	struct kw_sso_decision d;
};

/* Reads what the decision needs and decides. */
static int login_decide(struct kw_store *store, struct login *l, const char **error_r)
{
	const struct kw_sso_assertion *a = l->a;
	struct kw_sso_claim claim = { .has_role = a->role != NULL };
	int ret;

	if ((!a->scim && (ret = kw_sso_replay_record(store, a->assertion_id, a->replay_expires,
						     l->now, error_r)) < 0) ||
	    (ret = kw_store_account_get(store, a->account, &l->acct, error_r)) < 0 ||
	    (claim.has_role && (ret = kw_store_role_get(store, a->role, &l->role, error_r)) < 0))
		return ret;
	claim.rank = l->role.rank;
	ret = kw_store_user_get(store, a->login, &l->user, error_r);
	if (ret < 0 && ret != -ENOENT)
		return ret;
	l->before.exists = ret == 0;
	if (l->before.exists) {
		l->before.sso = l->user.sso;
		l->before.same_account = l->user.account_id == l->acct.id;
		l->before.rank = l->user.role.rank;
		if (l->user.sso && kw_sso_state_parse(l->user.sso_state, &l->before.state) < 0)
			return kw_store_fail(store, -EIO, error_r,
					     "SSO user '%s' has SSO state '%s'", a->login,
					     l->user.sso_state);
	}
	ret = kw_sso_decide_login(&l->before, &claim, &l->d);
	if (ret == -EPERM)
		return kw_store_fail(store, -EPERM, error_r,
				     "login '%s' belongs to a local user: SSO never takes it over",
				     a->login);
	if (ret == -EACCES)
		return kw_store_fail(store, -EACCES, error_r,
				     "SSO user '%s' belongs to account '%s', not to '%s'", a->login,
				     l->user.account, l->acct.name);
	return ret;
}

/* Writes the user, its session and the stale case as decided; *user_id_r: 0 when ignored. */
static int login_write(struct kw_store *store, const struct login *l, int64_t *user_id_r,
		       const char **error_r)
{
	const struct kw_sso_assertion *a = l->a;
	int64_t user_id = l->before.exists ? l->user.id : 0;
	int ret = 0;

	if (l->d.write_user && !l->before.exists) {
		ret = kw_store_sso_user_create(store, l->acct.id, a->login, l->email, l->role.id,
					       a->idp, l->name_id, l->now, &user_id, error_r);
	} else if (l->d.write_user) {
		struct kw_store_sso_seen seen = {
			.role_id = l->d.take_role ? l->role.id : 0,
			.state = kw_sso_state_name(l->d.state),
			.idp = a->idp,
			.name_id = a->scim ? NULL : l->name_id,
			.email = l->email,
			.now = l->now,
		};
		ret = kw_store_sso_user_seen(store, user_id, &seen, error_r);
	}
	/* access ended or shrank: the user's sessions end (and with them the browser's, issue
	 * 11); the one this assertion opens, if any, carries the new role */
	if (ret == 0 && l->d.rule != KW_SSO_CASE_NONE && user_id != 0) {
		unsigned ended;
		ret = kw_store_sso_sessions_end(store, user_id, NULL, l->now, &ended, error_r);
	}
	if (ret == 0 && l->d.open_session && !a->scim)
		ret = kw_store_sso_session_open(store, user_id, a->idp, a->session_index, l->now,
						error_r);
	if (ret == 0 && l->d.seen_again)
		ret = kw_sso_case_seen(store, user_id, l->now, error_r);
	if (ret == 0)
		*user_id_r = user_id;
	return ret;
}

/* The sso_event and audit event of the login. */
static int login_event(struct kw_store *store, const struct login *l, int64_t user_id,
		       const char **error_r)
{
	const struct kw_sso_assertion *a = l->a;
	struct kw_sso_text js;
	char *details;
	int ret;

	kw_sso_text_open(&js);
	fputs("{\"account\":", js.f);
	kw_json_string(js.f, l->acct.name);
	fputs(",\"idp\":", js.f);
	kw_json_string(js.f, a->idp);
	fputs(",\"name_id\":", js.f);
	kw_json_string(js.f, l->name_id);
	fputs(",\"role\":", js.f);
	if (a->role != NULL)
		kw_json_string(js.f, l->role.name);
	else
		fputs("null", js.f);
	if (l->before.exists) {
		fputs(",\"old_role\":", js.f);
		kw_json_string(js.f, l->user.role.name);
	}
	fputs(",\"session_index\":", js.f);
	if (a->session_index != NULL && a->session_index[0] != '\0')
		kw_json_string(js.f, a->session_index);
	else
		fputs("null", js.f);
	fputs(",\"assertion_id\":", js.f);
	if (a->scim)
		fputs("null,\"via\":\"scim\"", js.f);
	else
		kw_json_string(js.f, a->assertion_id);
	fprintf(js.f, ",\"outcome\":\"%s\"}", kw_sso_outcome_name(l->d.outcome));
	details = kw_sso_text_close(&js);
	ret = kw_store_sso_event_add(store, l->now, user_id, a->scim ? "scim" : "login",
				     a->scim ? "scim" : KW_SSO_ACTOR, l->d.audit_action, a->login,
				     details, error_r);
	free(details);
	return ret;
}

/* The rule, when the decision says it applies: the case's reason states why. */
static int login_rule(struct kw_store *store, const struct login *l, struct kw_sso_result *res,
		      char **log_r, const char **error_r)
{
	const struct kw_sso_assertion *a = l->a;
	char reason[KW_SSO_REASON_SIZE];
	struct kw_user after;
	struct kw_sso_rule_event ev = { .user = &after,
					.kind = l->d.rule,
					.reason = reason,
					.actor = a->scim ? "scim" : KW_SSO_ACTOR,
					.now = l->now };
	const char *maps = a->scim ? "map" : "maps";
	char who[1200];
	int ret;

	if (a->scim)
		snprintf(who, sizeof(who), "the roles that IdP %s sent by SCIM", a->idp);
	else
		snprintf(who, sizeof(who), "the assertion of IdP %s", a->idp);
	if (l->d.rule == KW_SSO_CASE_REVOKED) {
		snprintf(reason, sizeof(reason),
			 "SSO access ended: %s %s to no role any more (role on record: %s)", who,
			 maps, l->user.role.name);
	} else {
		snprintf(reason, sizeof(reason),
			 "SSO access shrank: %s %s to role %s, lower than %s", who, maps,
			 l->role.name, l->user.role.name);
		ev.old_role = l->user.role.name;
	}
	if ((ret = kw_store_user_get(store, a->login, &after, error_r)) < 0)
		return ret;
	return kw_sso_rule_apply(store, &ev, &res->case_id, &res->active_tokens, log_r, error_r);
}

int kw_sso_login(struct kw_store *store, const struct kw_sso_assertion *a, int64_t now,
		 struct kw_sso_result *result_r, const char **error_r)
{
	struct kw_sso_result res = { 0 };
	struct login l = {
		.a = a,
		.now = now,
		.name_id = a->name_id != NULL ? a->name_id : a->login,
		.email = kw_store_sso_email_ok(a->email) ? a->email : NULL,
	};
	char *logline = NULL;
	int ret;

	if ((ret = check_assertion(store, a, error_r)) < 0 ||
	    (ret = kw_store_sso_begin(store, error_r)) < 0)
		return ret;
	if ((ret = login_decide(store, &l, error_r)) < 0 ||
	    (ret = login_write(store, &l, &res.user_id, error_r)) < 0 ||
	    (ret = login_event(store, &l, res.user_id, error_r)) < 0 ||
	    (l.d.rule != KW_SSO_CASE_NONE &&
	     (ret = login_rule(store, &l, &res, &logline, error_r)) < 0) ||
	    (ret = kw_store_sso_commit(store, error_r)) < 0)
		goto out;
	res.outcome = l.d.outcome;
	if (logline != NULL)
		kw_log_id(KW_LOG_WARNING, KW_SSO_MSGID_RULE, "%s", logline);
	*result_r = res;
out:
	free(logline);
	if (ret < 0)
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
	struct kw_sso_text js;
	int64_t user_id;
	unsigned ended;
	char *details;
	int ret;

	if ((ret = kw_store_sso_check(store, "IdP", l->idp, 1024, true, error_r)) < 0 ||
	    (by_login && (ret = kw_store_sso_check(store, "login", l->login, KW_LOGIN_MAX, false,
						   error_r)) < 0) ||
	    (!by_login &&
	     (ret = kw_store_sso_check(store, "NameID", l->name_id, 1024, true, error_r)) < 0) ||
	    (l->request_id != NULL && (ret = kw_store_sso_check(store, "request id", l->request_id,
								256, true, error_r)) < 0))
		return ret;
	if ((ret = kw_store_sso_begin(store, error_r)) < 0)
		return ret;
	if ((l->request_id != NULL &&
	     (ret = kw_sso_replay_record(store, l->request_id, l->replay_expires, now, error_r)) <
		     0) ||
	    (ret = kw_store_sso_user_find(store, by_login ? l->login : NULL, l->idp, l->name_id,
					  &user_id, login, error_r)) < 0 ||
	    (ret = kw_store_sso_sessions_end(store, user_id, one_session ? l->session_index : NULL,
					     now, &ended, error_r)) < 0)
		goto out;

	kw_sso_text_open(&js);
	fputs("{\"idp\":", js.f);
	kw_json_string(js.f, l->idp);
	fputs(",\"session_index\":", js.f);
	if (one_session)
		kw_json_string(js.f, l->session_index);
	else
		fputs("null", js.f);
	fprintf(js.f, ",\"sessions_ended\":%u,\"tokens\":\"not affected: " KW_SSO_RULE "\"}",
		ended);
	details = kw_sso_text_close(&js);
	ret = kw_store_sso_event_add(store, now, user_id, "logout", KW_SSO_ACTOR, "sso.logout",
				     login, details, error_r);
	free(details);
	if (ret < 0 || (ret = kw_store_sso_commit(store, error_r)) < 0)
		goto out;
	kw_log_id(KW_LOG_NOTICE, KW_SSO_MSGID_LOGOUT,
		  "SSO logout of '%s' (IdP %s): %u session%s ended; permanent API tokens are not "
		  "affected (" KW_SSO_RULE ")",
		  login, l->idp, ended, ended == 1 ? "" : "s");
	*ended_r = ended;
out:
	if (ret < 0)
		kw_store_rollback(store);
	return ret;
}
