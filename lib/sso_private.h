/* sso_private.h: what lib/sso_login.c, lib/sso_case.c and lib/sso_review.c share; not for
 * callers outside lib/sso_*.c (they use sso.h). */
#ifndef KW_SSO_PRIVATE_H
#define KW_SSO_PRIVATE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sso.h"
#include "sso_rule.h"
#include "timeutil.h"

/* A growing text buffer over open_memstream(); daemons may abort on out-of-memory (STYLE.md). */
struct kw_sso_text {
	char *buf;
	size_t len;
	FILE *f;
};

void kw_sso_text_open(struct kw_sso_text *t);
/* Closes the stream; the caller frees the returned text. */
char *kw_sso_text_close(struct kw_sso_text *t);

/* A time for logs and audit details; `none` for 0 and KW_NEVER. */
void kw_sso_time_text(int64_t t, const char *none, char buf[KW_TIME_TEXT_MAX]);

/* The account's id, 0 when account is NULL (all accounts). */
int kw_sso_account_id(struct kw_store *store, const char *account, int64_t *id_r,
		      const char **error_r);

/* One application of the rule. */
struct kw_sso_rule_event {
	const struct kw_user *user; /* as it is after the change */
	enum kw_sso_case_kind kind;
	const char *reason;   /* the case's reason, one sentence */
	const char *old_role; /* NULL when unchanged */
	const char *actor;
	int64_t now;
};

/* Inside the caller's transaction: opens or updates the user's review case, appends the one
 * audit event that states the rule and lists the live tokens with their delete commands, and
 * returns (in *log_r, the caller frees) the line to log after the commit. */
int kw_sso_rule_apply(struct kw_store *store, const struct kw_sso_rule_event *ev,
		      int64_t *case_id_r, unsigned *n_tokens_r, char **log_r, const char **error_r);

/* Inside the caller's transaction: the user was seen again in an assertion; closes its stale
 * case, if it has one. */
int kw_sso_case_seen(struct kw_store *store, int64_t user_id, int64_t now, const char **error_r);

#endif
