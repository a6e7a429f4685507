/* store_sso.c: the store's side of what the IdP writes (see store_sso.h): the replay cache, SSO
 * users and their sessions, SSO events. On the login path: every statement goes through the
 * store's statement cache. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "audit.h"
#include "store.h"
#include "store_private.h"
#include "store_sso.h"

static int step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc;
}

/* NULL binds as SQL NULL. */
static void bind_text(sqlite3_stmt *st, int col, const char *s)
{
	if (s != NULL)
		sqlite3_bind_text(st, col, s, -1, SQLITE_STATIC);
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
	sqlite3_stmt *st = kw_store_stmt(store, "DELETE FROM saml_replay WHERE expires <= ?1");

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "replay cache");
	sqlite3_bind_int64(st, 1, now);
	if (step_done(st) != SQLITE_DONE)
		return kw_store_db_fail(store, error_r, "replay cache");
	return 0;
}

int kw_store_sso_replay_add(struct kw_store *store, const char *id, int64_t expires, int64_t now,
			    const char **error_r)
{
	/* A leftover entry that has expired (not purged yet) is taken over; a live one is a
	 * replay: then nothing is written and changes() stays 0. */
	sqlite3_stmt *st = kw_store_stmt(
		store, "INSERT INTO saml_replay (assertion_id, expires) VALUES (?1, ?2) "
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
		return kw_store_fail(store, -EEXIST, error_r,
				     "replay: message id '%s' was seen before", id);
	return 0;
}

/* ---- AuthnRequests sent ---- */

int kw_store_sso_request_add(struct kw_store *store, const char *id, const char *next,
			     int64_t expires, int64_t now, const char **error_r)
{
	sqlite3_stmt *st =
		kw_store_stmt(store, "DELETE FROM sso_authn_request WHERE expires <= ?1");

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "AuthnRequest list");
	sqlite3_bind_int64(st, 1, now);
	if (step_done(st) != SQLITE_DONE)
		return kw_store_db_fail(store, error_r, "AuthnRequest list");
	st = kw_store_stmt(store, "INSERT INTO sso_authn_request (id, expires, next) "
				  "VALUES (?1, ?2, ?3)");
	if (st == NULL)
		return kw_store_db_fail(store, error_r, "AuthnRequest list");
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, expires);
	sqlite3_bind_text(st, 3, next != NULL ? next : "", -1, SQLITE_STATIC);
	if (step_done(st) != SQLITE_DONE)
		return kw_store_db_fail(store, error_r, "AuthnRequest list");
	return 0;
}

int kw_store_sso_request_answer(struct kw_store *store, const char *id, int64_t now, char *next_r,
				size_t next_size, const char **error_r)
{
	/* One statement: two workers given the same Response cannot both take the request. */
	sqlite3_stmt *st = kw_store_stmt(
		store, "UPDATE sso_authn_request SET answered = ?2 "
		       "WHERE id = ?1 AND answered IS NULL AND expires > ?2 RETURNING next");
	int rc;

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "AuthnRequest list");
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *next = (const char *)sqlite3_column_text(st, 0);
		char copy[1024];

		snprintf(copy, sizeof(copy), "%s", next != NULL ? next : "");
		while (sqlite3_step(st) == SQLITE_ROW)
			;
		sqlite3_reset(st);
		snprintf(next_r, next_size, "%s", strlen(copy) < next_size ? copy : "");
		return 0;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return kw_store_db_fail(store, error_r, "AuthnRequest list");
	st = kw_store_stmt(store, "SELECT answered FROM sso_authn_request "
				  "WHERE id = ?1 AND answered IS NOT NULL");
	if (st == NULL)
		return kw_store_db_fail(store, error_r, "AuthnRequest list");
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = step_done(st);
	if (rc == SQLITE_ROW)
		return kw_store_fail(store, -EALREADY, error_r,
				     "InResponseTo '%s': that AuthnRequest was answered before",
				     id);
	if (rc != SQLITE_DONE)
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
	sqlite3_stmt *st =
		kw_store_stmt(store, "INSERT INTO user (account_id, login, email, role_id, source, "
				     "created, sso_idp, sso_name_id, sso_last_seen, sso_state) "
				     "VALUES (?1, ?2, ?3, ?4, 'sso', ?5, ?6, ?7, ?5, 'active')");

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "cannot create the SSO user");
	sqlite3_bind_int64(st, 1, account_id);
	sqlite3_bind_text(st, 2, login, -1, SQLITE_STATIC);
	bind_text(st, 3, email);
	sqlite3_bind_int64(st, 4, role_id);
	sqlite3_bind_int64(st, 5, now);
	sqlite3_bind_text(st, 6, idp, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, name_id, -1, SQLITE_STATIC);
	if (step_done(st) != SQLITE_DONE)
		return kw_store_db_fail(store, error_r, "cannot create the SSO user");
	*user_id_r = sqlite3_last_insert_rowid(kw_store_db(store));
	return 0;
}

int kw_store_sso_user_seen(struct kw_store *store, int64_t user_id,
			   const struct kw_store_sso_seen *seen, const char **error_r)
{
	sqlite3_stmt *st = kw_store_stmt(
		store, "UPDATE user SET role_id = coalesce(?2, role_id), sso_state = ?3, "
		       "sso_idp = coalesce(?4, sso_idp), sso_name_id = coalesce(?5, sso_name_id), "
		       "sso_last_seen = ?6, "
		       "email = coalesce(?7, email) WHERE id = ?1");

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "cannot update the SSO user");
	sqlite3_bind_int64(st, 1, user_id);
	if (seen->role_id != 0)
		sqlite3_bind_int64(st, 2, seen->role_id);
	sqlite3_bind_text(st, 3, seen->state, -1, SQLITE_STATIC);
	bind_text(st, 4, seen->idp);
	bind_text(st, 5, seen->name_id);
	sqlite3_bind_int64(st, 6, seen->now);
	bind_text(st, 7, seen->email);
	if (step_done(st) != SQLITE_DONE)
		return kw_store_db_fail(store, error_r, "cannot update the SSO user");
	return 0;
}

int kw_store_sso_user_state(struct kw_store *store, int64_t user_id, const char *state,
			    const char **error_r)
{
	sqlite3_stmt *st = kw_store_stmt(store, "UPDATE user SET sso_state = ?2 WHERE id = ?1");

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "cannot change the SSO state");
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
	if (step_done(st) != SQLITE_DONE)
		return kw_store_db_fail(store, error_r, "cannot change the SSO state");
	return 0;
}

int kw_store_sso_user_find(struct kw_store *store, const char *login, const char *idp,
			   const char *name_id, int64_t *user_id_r, char *login_r,
			   const char **error_r)
{
	sqlite3_stmt *st =
		kw_store_stmt(store, "SELECT id, login FROM user WHERE source = 'sso' AND "
				     "((?1 IS NOT NULL AND login = ?1) OR "
				     "(?1 IS NULL AND sso_idp = ?2 AND sso_name_id = ?3))");
	int rc;

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "SSO user lookup");
	bind_text(st, 1, login);
	bind_text(st, 2, idp);
	bind_text(st, 3, name_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return kw_store_fail(store, -ENOENT, error_r, "no SSO user %s '%s'",
				     login != NULL ? "with login" : "with NameID",
				     login != NULL     ? login
				     : name_id != NULL ? name_id
						       : "");
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return kw_store_db_fail(store, error_r, "SSO user lookup");
	}
	*user_id_r = sqlite3_column_int64(st, 0);
	kw_store_copy_text(login_r, KW_LOGIN_MAX + 1, st, 1);
	sqlite3_reset(st);
	return 0;
}

/* ---- sessions ---- */

int kw_store_sso_session_open(struct kw_store *store, int64_t user_id, const char *idp,
			      const char *session_index, int64_t now, const char **error_r)
{
	sqlite3_stmt *st =
		kw_store_stmt(store, "INSERT INTO sso_session (user_id, idp, "
				     "session_index, login_time) VALUES (?1, ?2, ?3, ?4)");

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "cannot record the SSO session");
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_text(st, 2, idp, -1, SQLITE_STATIC);
	if (session_index != NULL && session_index[0] != '\0')
		sqlite3_bind_text(st, 3, session_index, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now);
	if (step_done(st) != SQLITE_DONE)
		return kw_store_db_fail(store, error_r, "cannot record the SSO session");
	return 0;
}

int kw_store_sso_sessions_end(struct kw_store *store, int64_t user_id, const char *session_index,
			      int64_t now, unsigned *ended_r, const char **error_r)
{
	sqlite3_stmt *st =
		kw_store_stmt(store, "UPDATE sso_session SET ended = ?2 WHERE user_id = ?1 "
				     "AND ended IS NULL AND (?3 IS NULL OR session_index = ?3)");

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "cannot end the SSO sessions");
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_int64(st, 2, now);
	if (session_index != NULL && session_index[0] != '\0')
		sqlite3_bind_text(st, 3, session_index, -1, SQLITE_STATIC);
	if (step_done(st) != SQLITE_DONE)
		return kw_store_db_fail(store, error_r, "cannot end the SSO sessions");
	*ended_r = (unsigned)sqlite3_changes(kw_store_db(store));
	/* and the access and refresh tokens of the sessions that ended (issue 11) */
	st = kw_store_stmt(store,
			   "UPDATE session_token SET ended = ?2 WHERE ended IS NULL AND "
			   "session_id IN (SELECT id FROM sso_session WHERE user_id = ?1 AND "
			   "ended IS NOT NULL)");
	if (st == NULL)
		return kw_store_db_fail(store, error_r, "cannot end the session tokens");
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_int64(st, 2, now);
	if (step_done(st) != SQLITE_DONE)
		return kw_store_db_fail(store, error_r, "cannot end the session tokens");
	return 0;
}

/* ---- events ---- */

int kw_store_sso_event_add(struct kw_store *store, int64_t now, int64_t user_id, const char *kind,
			   const char *actor, const char *action, const char *target,
			   const char *details, const char **error_r)
{
	sqlite3_stmt *st = kw_store_stmt(
		store,
		"INSERT INTO sso_event (time, user_id, kind, details) VALUES (?1, ?2, ?3, ?4)");

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "cannot record the SSO event");
	sqlite3_bind_int64(st, 1, now);
	if (user_id != 0)
		sqlite3_bind_int64(st, 2, user_id);
	sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, details, -1, SQLITE_STATIC);
	if (step_done(st) != SQLITE_DONE ||
	    kw_audit_append(store, now, actor, action, target, details) < 0)
		return kw_store_db_fail(store, error_r, "cannot record the SSO event");
	return 0;
}
