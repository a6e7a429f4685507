/* store_sso.c: the store's side of what the IdP writes (see store_sso.h): the replay cache, SSO
 * users and their sessions, SSO events. On the login path: every statement goes through the
 * store's statement cache. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "store.h"
#include "store_private.h"
#include "store_sso.h"

static int step_done(struct kw_db_stmt *st)
{
	int rc = kw_db_step(st);

	kw_db_reset(st);
	return rc;
}

/* NULL binds as SQL NULL. */
static void bind_text(struct kw_db_stmt *st, int col, const char *s)
{
	if (s != NULL)
		kw_db_bind_text(st, col, s);
}

int kw_store_sso_begin(struct kw_store *store, const char **error_r)
{
	if (kw_store_begin(store) < 0)
		return kw_store_db_fail(store, error_r, "cannot start a transaction");
	return 0;
}

int kw_store_sso_commit(struct kw_store *store, const char **error_r)
{
	if (kw_store_commit(store) < 0)
		return kw_store_db_fail(store, error_r, "cannot commit");
	return 0;
}

int kw_store_sso_check(struct kw_store *store, const char *what, const char *s, size_t max,
		       bool free_text, const char **error_r)
{
	if (s == NULL)
		s = "";
	return free_text ? kw_store_check_text(store, what, s, max, false, error_r)
			 : kw_store_check_name(store, what, s, max, error_r);
}

bool kw_store_sso_email_ok(const char *email)
{
	return email != NULL && kw_store_email_ok(email) && strlen(email) <= KW_EMAIL_MAX;
}

/* ---- replay cache ---- */

int kw_store_sso_replay_purge(struct kw_store *store, int64_t now, const char **error_r)
{
	struct kw_db_stmt *st = kw_store_stmt(store, "DELETE FROM saml_replay WHERE expires <= ?1");

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "replay cache");
	kw_db_bind_int64(st, 1, now);
	if (step_done(st) != KW_DB_DONE)
		return kw_store_db_fail(store, error_r, "replay cache");
	return 0;
}

int kw_store_sso_replay_add(struct kw_store *store, const char *id, int64_t expires, int64_t now,
			    const char **error_r)
{
	/* A leftover entry that has expired (not purged yet) is taken over; a live one is a
	 * replay: then nothing is written and changes() stays 0. */
	struct kw_db_stmt *st = kw_store_stmt(
		store, "INSERT INTO saml_replay (assertion_id, expires) VALUES (?1, ?2) "
		       "ON CONFLICT (assertion_id) DO UPDATE SET expires = excluded.expires "
		       "WHERE saml_replay.expires <= ?3");

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "replay cache");
	kw_db_bind_text(st, 1, id);
	kw_db_bind_int64(st, 2, expires);
	kw_db_bind_int64(st, 3, now);
	if (step_done(st) != KW_DB_DONE)
		return kw_store_db_fail(store, error_r, "replay cache");
	if (kw_db_changes(kw_store_db(store)) == 0)
		return kw_store_fail(store, -EEXIST, error_r,
				     "replay: message id '%s' was seen before", id);
	return 0;
}

/* ---- AuthnRequests sent ---- */

int kw_store_sso_request_add(struct kw_store *store, const char *id, const char *next,
			     int64_t expires, int64_t now, const char **error_r)
{
	struct kw_db_stmt *st =
		kw_store_stmt(store, "DELETE FROM sso_authn_request WHERE expires <= ?1");

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "AuthnRequest list");
	kw_db_bind_int64(st, 1, now);
	if (step_done(st) != KW_DB_DONE)
		return kw_store_db_fail(store, error_r, "AuthnRequest list");
	st = kw_store_stmt(store, "INSERT INTO sso_authn_request (id, expires, next) "
				  "VALUES (?1, ?2, ?3)");
	if (st == NULL)
		return kw_store_db_fail(store, error_r, "AuthnRequest list");
	kw_db_bind_text(st, 1, id);
	kw_db_bind_int64(st, 2, expires);
	kw_db_bind_text(st, 3, next != NULL ? next : "");
	if (step_done(st) != KW_DB_DONE)
		return kw_store_db_fail(store, error_r, "AuthnRequest list");
	return 0;
}

int kw_store_sso_request_answer(struct kw_store *store, const char *id, int64_t now, char *next_r,
				size_t next_size, const char **error_r)
{
	/* One statement: two workers given the same Response cannot both take the request. */
	struct kw_db_stmt *st = kw_store_stmt(
		store, "UPDATE sso_authn_request SET answered = ?2 "
		       "WHERE id = ?1 AND answered IS NULL AND expires > ?2 RETURNING next");
	int rc;

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "AuthnRequest list");
	kw_db_bind_text(st, 1, id);
	kw_db_bind_int64(st, 2, now);
	rc = kw_db_step(st);
	if (rc == KW_DB_ROW) {
		const char *next = kw_db_column_text(st, 0);
		char copy[1024];

		snprintf(copy, sizeof(copy), "%s", next != NULL ? next : "");
		while (kw_db_step(st) == KW_DB_ROW)
			;
		kw_db_reset(st);
		snprintf(next_r, next_size, "%s", strlen(copy) < next_size ? copy : "");
		return 0;
	}
	kw_db_reset(st);
	if (rc != KW_DB_DONE)
		return kw_store_db_fail(store, error_r, "AuthnRequest list");
	st = kw_store_stmt(store, "SELECT answered FROM sso_authn_request "
				  "WHERE id = ?1 AND answered IS NOT NULL");
	if (st == NULL)
		return kw_store_db_fail(store, error_r, "AuthnRequest list");
	kw_db_bind_text(st, 1, id);
	rc = step_done(st);
	if (rc == KW_DB_ROW)
		return kw_store_fail(store, -EALREADY, error_r,
				     "InResponseTo '%s': that AuthnRequest was answered before",
				     id);
	if (rc != KW_DB_DONE)
		return kw_store_db_fail(store, error_r, "AuthnRequest list");
	return kw_store_fail(store, -ENOENT, error_r,
			     "InResponseTo '%s' names no AuthnRequest we sent (or it expired)", id);
}

/* ---- users ---- */

int kw_store_sso_user_create(struct kw_store *store, int64_t account_id, const char *login,
			     const char *email, int64_t role_id, const char *idp,
			     const char *name_id, int64_t now, int64_t *user_id_r,
			     const char **error_r)
{
	struct kw_db_stmt *st =
		kw_store_stmt(store, "INSERT INTO user (account_id, login, email, role_id, source, "
				     "created, sso_idp, sso_name_id, sso_last_seen, sso_state) "
				     "VALUES (?1, ?2, ?3, ?4, 'sso', ?5, ?6, ?7, ?5, 'active') "
				     "RETURNING id");

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "cannot create the SSO user");
	kw_db_bind_int64(st, 1, account_id);
	kw_db_bind_text(st, 2, login);
	bind_text(st, 3, email);
	kw_db_bind_int64(st, 4, role_id);
	kw_db_bind_int64(st, 5, now);
	kw_db_bind_text(st, 6, idp);
	kw_db_bind_text(st, 7, name_id);
	if (kw_db_step(st) != KW_DB_ROW) {
		kw_db_reset(st);
		return kw_store_db_fail(store, error_r, "cannot create the SSO user");
	}
	*user_id_r = kw_db_column_int64(st, 0);
	kw_db_reset(st);
	return 0;
}

int kw_store_sso_user_seen(struct kw_store *store, int64_t user_id,
			   const struct kw_store_sso_seen *seen, const char **error_r)
{
	struct kw_db_stmt *st = kw_store_stmt(
		store, "UPDATE user SET role_id = coalesce(?2, role_id), sso_state = ?3, "
		       "sso_idp = coalesce(?4, sso_idp), sso_name_id = coalesce(?5, sso_name_id), "
		       "sso_last_seen = ?6, "
		       "email = coalesce(?7, email) WHERE id = ?1");

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "cannot update the SSO user");
	kw_db_bind_int64(st, 1, user_id);
	if (seen->role_id != 0)
		kw_db_bind_int64(st, 2, seen->role_id);
	kw_db_bind_text(st, 3, seen->state);
	bind_text(st, 4, seen->idp);
	bind_text(st, 5, seen->name_id);
	kw_db_bind_int64(st, 6, seen->now);
	bind_text(st, 7, seen->email);
	if (step_done(st) != KW_DB_DONE)
		return kw_store_db_fail(store, error_r, "cannot update the SSO user");
	return 0;
}

int kw_store_sso_user_state(struct kw_store *store, int64_t user_id, const char *state,
			    const char **error_r)
{
	struct kw_db_stmt *st =
		kw_store_stmt(store, "UPDATE user SET sso_state = ?2 WHERE id = ?1");

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "cannot change the SSO state");
	kw_db_bind_int64(st, 1, user_id);
	kw_db_bind_text(st, 2, state);
	if (step_done(st) != KW_DB_DONE)
		return kw_store_db_fail(store, error_r, "cannot change the SSO state");
	return 0;
}

int kw_store_sso_user_find(struct kw_store *store, const char *login, const char *idp,
			   const char *name_id, int64_t *user_id_r, char *login_r,
			   const char **error_r)
{
	struct kw_db_stmt *st = kw_store_stmt(
		store, "SELECT id, login FROM user WHERE source = 'sso' AND "
		       "((CAST(?1 AS TEXT) IS NOT NULL AND login = ?1) OR "
		       "(CAST(?1 AS TEXT) IS NULL AND sso_idp = ?2 AND sso_name_id = ?3))");
	int rc;

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "SSO user lookup");
	bind_text(st, 1, login);
	bind_text(st, 2, idp);
	bind_text(st, 3, name_id);
	rc = kw_db_step(st);
	if (rc == KW_DB_DONE) {
		kw_db_reset(st);
		return kw_store_fail(store, -ENOENT, error_r, "no SSO user %s '%s'",
				     login != NULL ? "with login" : "with NameID",
				     login != NULL     ? login
				     : name_id != NULL ? name_id
						       : "");
	}
	if (rc != KW_DB_ROW) {
		kw_db_reset(st);
		return kw_store_db_fail(store, error_r, "SSO user lookup");
	}
	*user_id_r = kw_db_column_int64(st, 0);
	kw_store_copy_text(login_r, KW_LOGIN_MAX + 1, st, 1);
	kw_db_reset(st);
	return 0;
}

/* ---- sessions ---- */

int kw_store_sso_session_open(struct kw_store *store, int64_t user_id, const char *idp,
			      const char *session_index, int64_t now, const char **error_r)
{
	struct kw_db_stmt *st =
		kw_store_stmt(store, "INSERT INTO sso_session (user_id, idp, "
				     "session_index, login_time) VALUES (?1, ?2, ?3, ?4)");

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "cannot record the SSO session");
	kw_db_bind_int64(st, 1, user_id);
	kw_db_bind_text(st, 2, idp);
	if (session_index != NULL && session_index[0] != '\0')
		kw_db_bind_text(st, 3, session_index);
	kw_db_bind_int64(st, 4, now);
	if (step_done(st) != KW_DB_DONE)
		return kw_store_db_fail(store, error_r, "cannot record the SSO session");
	return 0;
}

int kw_store_sso_sessions_end(struct kw_store *store, int64_t user_id, const char *session_index,
			      int64_t now, unsigned *ended_r, const char **error_r)
{
	struct kw_db_stmt *st = kw_store_stmt(
		store, "UPDATE sso_session SET ended = ?2 WHERE user_id = ?1 "
		       "AND ended IS NULL AND (CAST(?3 AS TEXT) IS NULL OR session_index = ?3)");

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "cannot end the SSO sessions");
	kw_db_bind_int64(st, 1, user_id);
	kw_db_bind_int64(st, 2, now);
	if (session_index != NULL && session_index[0] != '\0')
		kw_db_bind_text(st, 3, session_index);
	if (step_done(st) != KW_DB_DONE)
		return kw_store_db_fail(store, error_r, "cannot end the SSO sessions");
	*ended_r = (unsigned)kw_db_changes(kw_store_db(store));
	/* and the access and refresh tokens of the sessions that ended (issue 11) */
	st = kw_store_stmt(store,
			   "UPDATE session_token SET ended = ?2 WHERE ended IS NULL AND "
			   "session_id IN (SELECT id FROM sso_session WHERE user_id = ?1 AND "
			   "ended IS NOT NULL)");
	if (st == NULL)
		return kw_store_db_fail(store, error_r, "cannot end the session tokens");
	kw_db_bind_int64(st, 1, user_id);
	kw_db_bind_int64(st, 2, now);
	if (step_done(st) != KW_DB_DONE)
		return kw_store_db_fail(store, error_r, "cannot end the session tokens");
	return 0;
}

/* ---- events ---- */

int kw_store_sso_event_add(struct kw_store *store, int64_t now, int64_t user_id, const char *kind,
			   const char *actor, const char *action, const char *target,
			   const char *details, const char **error_r)
{
	struct kw_db_stmt *st = kw_store_stmt(
		store,
		"INSERT INTO sso_event (time, user_id, kind, details) VALUES (?1, ?2, ?3, ?4)");

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "cannot record the SSO event");
	kw_db_bind_int64(st, 1, now);
	if (user_id != 0)
		kw_db_bind_int64(st, 2, user_id);
	kw_db_bind_text(st, 3, kind);
	kw_db_bind_text(st, 4, details);
	if (step_done(st) != KW_DB_DONE ||
	    kw_audit_append(store, now, actor, action, target, details) < 0)
		return kw_store_db_fail(store, error_r, "cannot record the SSO event");
	return 0;
}
