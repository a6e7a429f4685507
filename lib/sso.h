/* sso.h: what SSO does to the store, after the SAML checks (ssod/) have accepted a message:
 * syncing SSO users, recording logins and logouts, and the rule of DESIGN.md (SSO):
 *
 *     SSO revocation does not revoke API tokens.
 *
 * When SSO access of a user ends (the assertion maps to no role: "revoked"; an admin records a
 * revocation known at the IdP: "idp_revoked") or shrinks (a lower role: "downgraded"),
 * keywarden changes no token and does not disable the user (a disabled issuer's tokens stop
 * validating, which the rule forbids). Instead, in the transaction of the change, it appends ONE
 * audit event "sso.rule" that states the rule and lists every active token of that user with
 * the command that deletes it, and opens (or updates) the user's case in the review list; after
 * the commit it logs the same text at warning level with message id KW_SSO_MSGID_RULE. A
 * revoked user keeps the role on record (the role the tokens were issued under); a downgraded
 * user gets the lower role. SSO users not seen in any assertion for [sso] stale_days appear in
 * the review as "access may have been revoked at the IdP"; those holding active tokens get a
 * case of kind "stale" (message id KW_SSO_MSGID_STALE).
 *
 * Cases close by themselves when the user holds no active token any more (evaluated by
 * kw_sso_sweep(), which kw_sso_review() runs first), or when an Administrator other than the
 * case's user dismisses them. Here an active token is one not deleted and not expired, whether
 * its user is enabled or not: disabling the user does not close the case, since enabling it
 * again brings the tokens back.
 *
 * Every function that changes the store runs its own IMMEDIATE transaction (do not call them
 * inside kw_store_begin()) and returns 0 or a negative errno-style code with error_r as in
 * store.h. Not thread-safe: one struct kw_store per thread.
 *
 * Where it lives, by lifecycle: sso_login.c (what the IdP writes: replay cache, login, logout),
 * sso_case.c (the rule applied, revoke, sweep, dismiss), sso_review.c (the read-only review);
 * sso_rule.h decides, without I/O, which outcome an event leads to; their SQL is the store's
 * (store_sso.h). */
#ifndef KW_SSO_H
#define KW_SSO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store.h"

/* The rule, word for word, as logs, audit events and notices state it. */
#define KW_SSO_RULE "SSO revocation does not revoke API tokens"
/* journald MESSAGE_IDs: stable, never change them (alerting rules match on them). */
#define KW_SSO_MSGID_RULE "117387bb7edf4efc86b66f03874b06b0"   /* access ended or shrank */
#define KW_SSO_MSGID_STALE "2b7d18aeb6a1418f8bd526c1ecb7e11d"  /* not seen for stale_days */
#define KW_SSO_MSGID_LOGOUT "51b0864ad3e8486bbd74a53d5e572258" /* LogoutRequest recorded */
/* Audit actor of kw_sso_login() and kw_sso_logout(), and closer of cases that close by
 * themselves. */
#define KW_SSO_ACTOR "keywarden-ssod"
#define KW_SSO_SWEEPER "keywarden"
/* A reason is limited in characters (KW_SSO_REASON_MAX); KW_SSO_REASON_SIZE is its buffer. */
#define KW_SSO_REASON_MAX 1000
#define KW_SSO_REASON_SIZE (KW_SSO_REASON_MAX * 4 + 1)
/* The placeholder of delete commands when the account has no usable Administrator. */
#define KW_SSO_ADMIN_PLACEHOLDER "ADMIN"
#define KW_SSO_COMMAND_MAX (KW_LOGIN_MAX * 4 + 64)

/* One accepted, verified assertion, as ssod mapped it. Strings are the caller's. */
struct kw_sso_assertion {
	const char *account;       /* [sso] account; must exist */
	const char *idp;           /* IdP entity id */
	const char *login;         /* the mapped login */
	const char *name_id;       /* NameID (NULL: same as login) */
	const char *email;         /* NULL or "": unchanged / none; ignored when malformed */
	const char *role;          /* mapped role name; NULL: no role maps (access ended) */
	const char *session_index; /* NULL when the AuthnStatement has none */
	const char *assertion_id;  /* the replay cache key (NULL when scim) */
	int64_t replay_expires;    /* keep the id until then (NotOnOrAfter + clock skew) */
	/* told by the IdP's SCIM client (roles sent in a User), not a sign-in: no replay id, no
	 * SSO session opened; actor "scim"; the rule's reason says SCIM */
	bool scim;
};

enum kw_sso_outcome {
	KW_SSO_CREATED,       /* a new SSO user with the mapped role */
	KW_SSO_UPDATED,       /* same role as before */
	KW_SSO_UPGRADED,      /* a higher role, or access back after a revocation */
	KW_SSO_DOWNGRADED,    /* a lower role: the rule applied */
	KW_SSO_REVOKED,       /* no role maps any more: the rule applied */
	KW_SSO_STILL_REVOKED, /* no role maps, already revoked: last seen updated, no new event */
	KW_SSO_IGNORED,       /* unknown login and no role maps: nobody created */
};

struct kw_sso_result {
	enum kw_sso_outcome outcome;
	int64_t user_id;        /* 0 for KW_SSO_IGNORED */
	int64_t case_id;        /* the case opened or updated by the rule, else 0 */
	unsigned active_tokens; /* the user's active tokens when the rule applied */
};

const char *kw_sso_outcome_name(enum kw_sso_outcome outcome);

/* The effect of one accepted assertion, in one transaction: the replay-cache entry (expired
 * entries are purged), the user created or updated (source sso, mapped role, IdP, NameID,
 * last seen), the login recorded in sso_session (when a role maps) and sso_event, the audit
 * event, and the rule when access ended or shrank. Errors: -EEXIST when the assertion id is in
 * the replay cache ("replay"; nothing changes), -EPERM when the login belongs to a local user,
 * -EACCES when it belongs to an SSO user of another account (neither is ever taken over;
 * nothing changes), -ENOENT unknown account or role, -EINVAL bad input (such as a login with a
 * blank or '='), -EIO/-EBUSY. */
int kw_sso_login(struct kw_store *store, const struct kw_sso_assertion *a, int64_t now,
		 struct kw_sso_result *result_r, const char **error_r);

/* Seconds between two purges of expired replay-cache entries. */
#define KW_SSO_REPLAY_PURGE_INTERVAL 60

/* Records a message id (assertion or LogoutRequest) in the replay cache until `expires`, inside
 * the caller's transaction; kw_sso_login() and kw_sso_logout() call it first. -EEXIST when the
 * id is there and has not expired (a replay); an expired leftover is taken over. Purges expired
 * entries at most every KW_SSO_REPLAY_PURGE_INTERVAL seconds. */
int kw_sso_replay_record(struct kw_store *store, const char *id, int64_t expires, int64_t now,
			 const char **error_r);

/* One accepted LogoutRequest. The user is found by login when set, else by (idp, name_id). */
struct kw_sso_logout_request {
	const char *idp;
	const char *name_id;
	const char *login;         /* NULL: by (idp, name_id) */
	const char *session_index; /* NULL: every open session of the user */
	const char *request_id;    /* NULL: no replay check; else kept like an assertion id */
	int64_t replay_expires;
};

/* Ends the user's open SSO sessions (those of session_index only, when given), records an
 * sso_event and an audit event, and logs (notice, KW_SSO_MSGID_LOGOUT) that permanent API
 * tokens are not affected. Tokens and the user's role are left alone. *ended_r: sessions
 * ended. Errors: -EEXIST replay, -ENOENT unknown user, -EINVAL, -EIO. */
int kw_sso_logout(struct kw_store *store, const struct kw_sso_logout_request *l, int64_t now,
		  unsigned *ended_r, const char **error_r);

/* An admin (actor: an audit name such as "unix:root") records that the IdP revoked `login`:
 * sso_state becomes revoked, open SSO sessions end, and the rule applies (case kind
 * idp_revoked). -EINVAL for a local user (use keywarden user set --disable) or an empty
 * reason, -ENOENT unknown user. */
int kw_sso_revoke(struct kw_store *store, const char *actor, const char *login, const char *reason,
		  int64_t now, struct kw_sso_result *result_r, const char **error_r);

/* The IdP says the user's SSO access is back (SCIM active:true; actor such as "scim:IDP"): a
 * revoked SSO user becomes active again (sso_state active, role on record kept, an sso_event
 * "restore" and audit event sso.restore); its open review case stays (its tokens are still
 * there; the sweep closes it). An active or downgraded user is left alone (KW_SSO_UPDATED, no
 * event). -EINVAL for a local user or an empty reason, -ENOENT unknown user. */
int kw_sso_restore(struct kw_store *store, const char *actor, const char *login, const char *reason,
		   int64_t now, struct kw_sso_result *result_r, const char **error_r);

/* Closes the open cases (of `account`, or of all when NULL) whose user holds no active token
 * (none that is not deleted and not expired; a disabled user's tokens count),
 * and opens "stale" cases for SSO users (not revoked) unseen for stale_days who hold active
 * tokens, unless a stale case was opened since they were last seen. Each close and open is
 * audited. Cheap; call it after a token delete to close cases at once. */
int kw_sso_sweep(struct kw_store *store, const char *account, int64_t now, unsigned stale_days,
		 const char **error_r);

/* An Administrator (`as`, enabled, of the case's account, not an SSO user whose access is
 * revoked, not the user the case is about) closes a case with a reason; audited as
 * sso.case_dismiss. -EPERM otherwise,
 * -ENOENT unknown case, -EALREADY closed already, -EINVAL empty reason. */
int kw_sso_dismiss(struct kw_store *store, const char *as, int64_t case_id, const char *reason,
		   int64_t now, const char **error_r);

/* ---- the review list ---- */

struct kw_sso_token {
	uint64_t id;
	char name[KW_TOKEN_NAME_MAX + 1];
	struct kw_role role;
	int64_t created;
	int64_t expires;   /* KW_NEVER when it never expires */
	int64_t last_used; /* 0 when never */
	char last_ip[64];
	bool above_user_role; /* the token's role exceeds its issuer's current role */
};

struct kw_sso_case {
	int64_t id;
	char account[KW_ACCOUNT_MAX + 1];
	char login[KW_LOGIN_MAX + 1];
	char kind[16]; /* revoked | downgraded | stale | idp_revoked */
	char reason[KW_SSO_REASON_SIZE];
	int64_t opened, updated;
	unsigned events;
	char role[KW_ROLE_MAX + 1]; /* the user's current role */
	char sso_state[16];
	bool user_enabled; /* false: the tokens below validate again once the user is enabled */
	int64_t last_seen; /* 0 when never */
	char admin[KW_LOGIN_MAX + 1]; /* for the delete commands; KW_SSO_ADMIN_PLACEHOLDER */
	struct kw_sso_token *tokens;  /* the user's active tokens (also when it is disabled) */
	size_t n_tokens;
};

struct kw_sso_stale_user {
	char account[KW_ACCOUNT_MAX + 1];
	char login[KW_LOGIN_MAX + 1];
	char role[KW_ROLE_MAX + 1];
	int64_t last_seen; /* 0 when never seen (then created counts) */
	int64_t case_id;   /* its open case, or 0 */
	unsigned active_tokens;
};

struct kw_sso_review {
	int64_t now;
	unsigned stale_days;
	struct kw_sso_case *cases; /* open cases, by id */
	size_t n_cases;
	struct kw_sso_stale_user *stale; /* SSO users (not revoked) unseen for stale_days */
	size_t n_stale;
};

/* Runs kw_sso_sweep(), then reads the open cases and the stale users of `account` (NULL:
 * all). The caller frees *review_r with kw_sso_review_free(). -ENOENT unknown account. */
int kw_sso_review(struct kw_store *store, const char *account, int64_t now, unsigned stale_days,
		  struct kw_sso_review **review_r, const char **error_r);
void kw_sso_review_free(struct kw_sso_review **review);

/* "keywarden token delete --as ADMIN ID", with admin quoted for the shell when needed. */
void kw_sso_delete_command(const char *admin, uint64_t token_id, char *buf, size_t size);

/* For `keywarden token create`: when u is an SSO user, prints the rule as a notice on err,
 * naming the command that deletes token_id. Does nothing for local users. */
void kw_sso_token_notice(const struct kw_user *u, uint64_t token_id, FILE *err);

#endif
