/* sso_rule.h: the rule of DESIGN.md (SSO) as pure decisions, and the words that state it.
 *
 * Given what the store knows of a user before an event and what the event says (an assertion, an
 * admin's revocation), kw_sso_decide_login() and kw_sso_decide_revoke() say which outcome
 * follows: the user created, updated, upgraded (also: access back after a revocation),
 * downgraded, revoked or left revoked, and whether the rule applies (a review case of which
 * kind). kw_sso_decide_case() says what an event does to the user's review case: opened,
 * updated, closed or left alone; kw_sso_decide_dismisser() who may dismiss one. No I/O and no store here: lib/sso_login.c and lib/sso_case.c
 * read the facts, ask, then write what was decided; tests/unit/test_sso_rule.c covers every
 * transition. Thread-safe (no state). */
#ifndef KW_SSO_RULE_H
#define KW_SSO_RULE_H

#include <stdbool.h>

#include "sso.h"

/* A user's SSO state (the user.sso_state column). */
enum kw_sso_state {
	KW_SSO_STATE_ACTIVE,
	KW_SSO_STATE_DOWNGRADED,
	KW_SSO_STATE_REVOKED,
};

const char *kw_sso_state_name(enum kw_sso_state state);
/* NULL and "" read as active (the state of an SSO user before any change); -EINVAL otherwise. */
int kw_sso_state_parse(const char *name, enum kw_sso_state *state_r);

/* The kind of a review case (the sso_case.kind column), or none. */
enum kw_sso_case_kind {
	KW_SSO_CASE_NONE,
	KW_SSO_CASE_REVOKED,     /* the assertion maps to no role any more */
	KW_SSO_CASE_DOWNGRADED,  /* the assertion maps to a lower role */
	KW_SSO_CASE_IDP_REVOKED, /* an admin recorded a revocation known at the IdP */
	KW_SSO_CASE_STALE,       /* not seen in any assertion for stale_days */
};

/* "revoked", "downgraded", "idp_revoked", "stale"; "" for KW_SSO_CASE_NONE. */
const char *kw_sso_case_kind_name(enum kw_sso_case_kind kind);
/* NULL and "" read as KW_SSO_CASE_NONE; -EINVAL for an unknown name. */
int kw_sso_case_kind_parse(const char *name, enum kw_sso_case_kind *kind_r);

/* What the store knows of the user that holds the login, before the event. */
struct kw_sso_before {
	bool exists;       /* a user holds the login; the fields below only count then */
	bool sso;          /* its source is sso (else local) */
	bool same_account; /* it belongs to the event's account */
	enum kw_sso_state state;
	int rank; /* rank of its role on record */
};

/* What an accepted assertion says of the user's access. */
struct kw_sso_claim {
	bool has_role; /* false: no role maps (access ended) */
	int rank;      /* rank of the mapped role, when has_role */
};

/* What the store is to do. */
struct kw_sso_decision {
	enum kw_sso_outcome outcome;
	enum kw_sso_state state; /* the user's SSO state afterwards */
	bool write_user;         /* create the user (when it does not exist) or update it */
	bool take_role;          /* the user gets the mapped role (else the role on record stays) */
	bool open_session;       /* the login is recorded as an SSO session */
	bool end_sessions;       /* every open SSO session of the user ends */
	bool seen_again;         /* the user was seen: its stale case, if any, closes */
	enum kw_sso_case_kind
		rule;             /* KW_SSO_CASE_NONE, else the rule applies with this case kind */
	const char *audit_action; /* sso.user_create, sso.login, sso.login_ignored, sso.revoke */
};

/* An accepted assertion. Returns 0 and writes *decision_r, or refuses: -EPERM when the login
 * belongs to a local user, -EACCES when it belongs to an SSO user of another account (SSO never
 * takes either over). A revoked user keeps the role on record (the one its tokens were issued
 * under) and is never disabled (that would stop its tokens, which the rule forbids). */
int kw_sso_decide_login(const struct kw_sso_before *before, const struct kw_sso_claim *claim,
			struct kw_sso_decision *decision_r);

/* An admin records that the IdP revoked the user. -ENOENT when no user holds the login,
 * -EINVAL for a local user (its tokens stop only by deleting them or disabling the user). */
int kw_sso_decide_revoke(const struct kw_sso_before *before, struct kw_sso_decision *decision_r);

/* The IdP says (SCIM active:true) that the user's access is back: a revoked user becomes active
 * again (KW_SSO_UPGRADED, audit sso.restore; its role on record stays, the open case stays: its
 * tokens are still there); an active or downgraded user is left as it is (KW_SSO_UPDATED,
 * write_user false). -ENOENT when no user holds the login, -EINVAL for a local user. */
int kw_sso_decide_restore(const struct kw_sso_before *before, struct kw_sso_decision *decision_r);

/* What can happen to a user's review case. */
enum kw_sso_case_event {
	KW_SSO_CASE_EVENT_RULE,    /* the rule applied (access ended, shrank, revoked, stale) */
	KW_SSO_CASE_EVENT_SEEN,    /* the user was seen again in an assertion */
	KW_SSO_CASE_EVENT_SWEEP,   /* the sweep looks at the user's live tokens */
	KW_SSO_CASE_EVENT_DISMISS, /* an Administrator dismisses the case */
};

enum kw_sso_case_action {
	KW_SSO_CASE_KEEP,   /* nothing changes (no case, or the open one stays as it is) */
	KW_SSO_CASE_OPEN,   /* a new case */
	KW_SSO_CASE_UPDATE, /* the open case takes the new kind and reason, one more event */
	KW_SSO_CASE_CLOSE,  /* the open case closes */
};

/* "none", "opened", "updated", "closed": as the audit event's case_action says. */
const char *kw_sso_case_action_name(enum kw_sso_case_action action);

/* The user's case before the event. */
struct kw_sso_case_facts {
	enum kw_sso_case_kind open; /* kind of the user's open case; KW_SSO_CASE_NONE: none */
	unsigned live_tokens;       /* tokens of the user neither deleted nor expired */
};

/* One open case per user: the rule updates it, else opens one when the user holds a live token
 * (nothing to review otherwise). Seeing the user again closes a stale case only. The sweep
 * closes a case whose user holds no live token (a disabled user's tokens count: enabling the
 * user brings them back). A dismissal closes an open case (KW_SSO_CASE_KEEP: it was closed). */
enum kw_sso_case_action kw_sso_decide_case(enum kw_sso_case_event event,
					   const struct kw_sso_case_facts *facts);

/* Who may dismiss a review case, as the store knows them. */
struct kw_sso_dismisser {
	bool enabled;      /* enabled locally */
	bool admin;        /* holds the Administrators role */
	bool sso_revoked;  /* an SSO user whose SSO access is revoked */
	bool same_account; /* the case exists and is of the dismisser's account */
	bool case_user;    /* the case is about the dismisser itself */
};

enum kw_sso_dismiss_verdict {
	KW_SSO_DISMISS_OK,
	KW_SSO_DISMISS_DISABLED,
	KW_SSO_DISMISS_NOT_ADMIN,
	KW_SSO_DISMISS_REVOKED,
	KW_SSO_DISMISS_NOT_FOUND, /* no such case in the dismisser's account (other accounts' cases
				   * are "not found", like their tokens) */
	KW_SSO_DISMISS_SELF,
};

/* An enabled Administrator whose SSO access is not revoked may dismiss the cases of its account,
 * except the one about itself: another Administrator must. The first refusal in that order. */
enum kw_sso_dismiss_verdict kw_sso_decide_dismisser(const struct kw_sso_dismisser *who);

#endif
