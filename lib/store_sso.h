/* store_sso.h: the store's side of SSO, for lib/sso_*.c: every query of the SSO users, their
 * sessions, the replay cache, SSO events, review cases and the review, as named functions.
 * The callers never see SQL; the conditions they rely on ("live token", "revoked SSO user",
 * the admin role) are the store's (store_sql.h).
 *
 * store_sso.c holds what the IdP writes (replay cache, users, sessions, events) and uses the
 * statement cache; store_sso_case.c holds the cases and the review, whose rarer statements are
 * prepared and finalized each time so as not to fill the cache.
 *
 * Every function returns 0 or a negative errno-style code with human detail in error_r, as
 * store.h says (-EIO, -EBUSY for a database failure). The writes run inside the caller's
 * transaction (kw_store_sso_begin()); none opens one, except kw_store_sso_review_read(), which
 * reads in one read transaction of its own. Not thread-safe: one struct kw_store per thread. */
#ifndef KW_STORE_SSO_H
#define KW_STORE_SSO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sso.h"
#include "store.h"

/* ---- transactions and input (store_sso.c) ---- */

/* BEGIN IMMEDIATE and COMMIT, with the error text; the caller rolls back with
 * kw_store_rollback() on failure. */
int kw_store_sso_begin(struct kw_store *store, const char **error_r);
int kw_store_sso_commit(struct kw_store *store, const char **error_r);

/* A value SSO stores. NULL reads as empty (refused). free_text: length and no control
 * characters (kw_store_check_text); else a name such as a login or an account (also no blank,
 * no '='; kw_store_check_name). -EINVAL with the reason. */
int kw_store_sso_check(struct kw_store *store, const char *what, const char *s, size_t max,
		       bool free_text, const char **error_r);
/* Whether an email address from an assertion may be stored (plausible, not too long); SSO
 * ignores one that may not rather than refusing the login. */
bool kw_store_sso_email_ok(const char *email);

/* ---- replay cache (store_sso.c) ---- */

/* Deletes the entries that expired at `now`. */
int kw_store_sso_replay_purge(struct kw_store *store, int64_t now, const char **error_r);
/* Keeps message id `id` until `expires`. An entry that expired (not purged yet) is taken over;
 * -EEXIST when a live one is there (a replay: nothing written). */
int kw_store_sso_replay_add(struct kw_store *store, const char *id, int64_t expires, int64_t now,
			    const char **error_r);

/* ---- AuthnRequests sent (store_sso.c) ---- */

/* These two run as statements of their own (each atomic), outside any transaction: several
 * threads or processes may share the table. */
/* Keeps the ID of an AuthnRequest sent at `now` until `expires`, with the path `next` (""
 * for none) to return to; purges the entries that expired. */
int kw_store_sso_request_add(struct kw_store *store, const char *id, const char *next,
			     int64_t expires, int64_t now, const char **error_r);
/* Marks the request `id` answered at `now` and copies its `next` to next_r (next_size bytes).
 * -ENOENT: no such request was sent (or it expired); -EALREADY: it was answered before. */
int kw_store_sso_request_answer(struct kw_store *store, const char *id, int64_t now, char *next_r,
				size_t next_size, const char **error_r);

/* ---- SSO users and sessions (store_sso.c) ---- */

/* Creates an SSO user (source sso, state active, seen and created at now). email: NULL for
 * none. name_id: as the IdP names the user. */
int kw_store_sso_user_create(struct kw_store *store, int64_t account_id, const char *login,
			     const char *email, int64_t role_id, const char *idp,
			     const char *name_id, int64_t now, int64_t *user_id_r,
			     const char **error_r);

/* What an assertion updates on a known SSO user: IdP, NameID and last seen always. */
struct kw_store_sso_seen {
	int64_t role_id;     /* 0: the role on record stays */
	const char *state;   /* the SSO state afterwards */
	const char *idp;     /* NULL: unchanged */
	const char *name_id; /* NULL: unchanged (SCIM knows no NameID) */
	const char *email;   /* NULL: unchanged */
	int64_t now;
};
int kw_store_sso_user_seen(struct kw_store *store, int64_t user_id,
			   const struct kw_store_sso_seen *seen, const char **error_r);
/* Sets the user's SSO state alone (an admin's revocation). */
int kw_store_sso_user_state(struct kw_store *store, int64_t user_id, const char *state,
			    const char **error_r);
/* The SSO user with `login` when login is not NULL, else the one with (idp, name_id): its id and
 * login (KW_LOGIN_MAX + 1 bytes). -ENOENT: none (local users are never found). */
int kw_store_sso_user_find(struct kw_store *store, const char *login, const char *idp,
			   const char *name_id, int64_t *user_id_r, char *login_r,
			   const char **error_r);

/* Records a login as an open SSO session; session_index NULL or "": none. */
int kw_store_sso_session_open(struct kw_store *store, int64_t user_id, const char *idp,
			      const char *session_index, int64_t now, const char **error_r);
/* Ends the user's open sessions (those of session_index only, when not NULL or "") at now;
 * *ended_r: how many. */
int kw_store_sso_sessions_end(struct kw_store *store, int64_t user_id, const char *session_index,
			      int64_t now, unsigned *ended_r, const char **error_r);

/* Appends an SSO event (sso_event: kind, user_id 0 for none) and its audit event (actor,
 * action, target) with the same JSON details, in the caller's transaction. */
int kw_store_sso_event_add(struct kw_store *store, int64_t now, int64_t user_id, const char *kind,
			   const char *actor, const char *action, const char *target,
			   const char *details, const char **error_r);

/* ---- the rule's review cases (store_sso_case.c) ---- */

/* Whether the user holds the role that manages every token of its account. */
bool kw_store_sso_is_admin(const struct kw_user *user);

/* The user's live tokens (neither deleted nor expired at now, whether the user is enabled or
 * not), by id; above_user_role compares with user_rank. The caller frees *tokens_r. */
int kw_store_sso_live_tokens(struct kw_store *store, int64_t user_id, int user_rank, int64_t now,
			     struct kw_sso_token **tokens_r, size_t *n_r, const char **error_r);
/* An enabled Administrator of the account who may run the delete commands: not exclude_user,
 * not an SSO user whose access is revoked; local users first. Else KW_SSO_ADMIN_PLACEHOLDER. */
int kw_store_sso_admin_find(struct kw_store *store, int64_t account_id, int64_t exclude_user,
			    char admin_r[KW_LOGIN_MAX + 1], const char **error_r);

/* A review case as the rule and the sweep see it. */
struct kw_store_sso_case_ref {
	int64_t id; /* 0: none */
	int64_t account_id;
	int64_t user_id;
	bool closed;
	char login[KW_LOGIN_MAX + 1]; /* the user the case is about */
	char kind[16];
};

/* The user's open case (at most one); ref_r->id is 0 when it has none. */
int kw_store_sso_case_open_get(struct kw_store *store, int64_t user_id,
			       struct kw_store_sso_case_ref *ref_r, const char **error_r);
/* Any case by id. -ENOENT: none (the caller words the message). */
int kw_store_sso_case_get(struct kw_store *store, int64_t case_id,
			  struct kw_store_sso_case_ref *ref_r, const char **error_r);
/* Opens a case for the user (the caller made sure none is open). */
int kw_store_sso_case_open(struct kw_store *store, int64_t account_id, int64_t user_id,
			   const char *kind, const char *reason, int64_t now, int64_t *case_id_r,
			   const char **error_r);
/* The open case takes the new kind and reason; one more event. */
int kw_store_sso_case_update(struct kw_store *store, int64_t case_id, const char *kind,
			     const char *reason, int64_t now, const char **error_r);
/* Closes the case if it is open (closed_by, close_reason at now) and appends its audit event
 * (actor closed_by, target "sso_case:ID", action, details). */
int kw_store_sso_case_close(struct kw_store *store, int64_t case_id, int64_t now,
			    const char *closed_by, const char *close_reason, const char *action,
			    const char *details, const char **error_r);

/* The sweep's two questions, of `account_id` (0: all), at now. The caller frees *refs_r.
 * Open cases whose user holds no live token (a disabled user's tokens count): id, login, kind.
 */
int kw_store_sso_cases_without_tokens(struct kw_store *store, int64_t account_id, int64_t now,
				      struct kw_store_sso_case_ref **refs_r, size_t *n_r,
				      const char **error_r);
/* Enabled SSO users, not revoked, unseen for stale_days, holding a live token, with no open
 * case and no stale case opened since they were last seen: user_id, account_id, login (id 0). */
int kw_store_sso_stale_to_open(struct kw_store *store, int64_t account_id, int64_t now,
			       unsigned stale_days, struct kw_store_sso_case_ref **refs_r,
			       size_t *n_r, const char **error_r);

/* Fills r->cases (open cases with the user's live tokens and an admin for the commands) and
 * r->stale (SSO users, not revoked, unseen for r->stale_days) of account_id (0: all) as of
 * r->now, in one read transaction so that both agree. On failure r holds what was read; the
 * caller frees it with kw_sso_review_free(). */
int kw_store_sso_review_read(struct kw_store *store, int64_t account_id, struct kw_sso_review *r,
			     const char **error_r);

#endif
