/* sso_rule.c: the rule "SSO revocation does not revoke API tokens" as pure decisions (see
 * sso_rule.h), and the words that state it: outcome names, the delete command, the notice of
 * `keywarden token create`. Nothing here reads or writes the store. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "sso.h"
#include "sso_rule.h"
#include "text.h"

static const char *const outcome_names[] = {
	[KW_SSO_CREATED] = "created",   [KW_SSO_UPDATED] = "updated",
	[KW_SSO_UPGRADED] = "upgraded", [KW_SSO_DOWNGRADED] = "downgraded",
	[KW_SSO_REVOKED] = "revoked",   [KW_SSO_STILL_REVOKED] = "still_revoked",
	[KW_SSO_IGNORED] = "ignored",
};

const char *kw_sso_outcome_name(enum kw_sso_outcome outcome)
{
	return outcome_names[outcome];
}

static const char *const state_names[] = {
	[KW_SSO_STATE_ACTIVE] = "active",
	[KW_SSO_STATE_DOWNGRADED] = "downgraded",
	[KW_SSO_STATE_REVOKED] = "revoked",
};

const char *kw_sso_state_name(enum kw_sso_state state)
{
	return state_names[state];
}

int kw_sso_state_parse(const char *name, enum kw_sso_state *state_r)
{
	if (name == NULL || name[0] == '\0') {
		*state_r = KW_SSO_STATE_ACTIVE;
		return 0;
	}
	for (size_t i = 0; i < sizeof(state_names) / sizeof(state_names[0]); i++) {
		if (strcmp(name, state_names[i]) == 0) {
			*state_r = (enum kw_sso_state)i;
			return 0;
		}
	}
	return -EINVAL;
}

static const char *const kind_names[] = {
	[KW_SSO_CASE_NONE] = "",
	[KW_SSO_CASE_REVOKED] = "revoked",
	[KW_SSO_CASE_DOWNGRADED] = "downgraded",
	[KW_SSO_CASE_IDP_REVOKED] = "idp_revoked",
	[KW_SSO_CASE_STALE] = "stale",
};

const char *kw_sso_case_kind_name(enum kw_sso_case_kind kind)
{
	return kind_names[kind];
}

int kw_sso_case_kind_parse(const char *name, enum kw_sso_case_kind *kind_r)
{
	if (name == NULL)
		name = "";
	for (size_t i = 0; i < sizeof(kind_names) / sizeof(kind_names[0]); i++) {
		if (strcmp(name, kind_names[i]) == 0) {
			*kind_r = (enum kw_sso_case_kind)i;
			return 0;
		}
	}
	return -EINVAL;
}

static const char *const action_names[] = {
	[KW_SSO_CASE_KEEP] = "none",
	[KW_SSO_CASE_OPEN] = "opened",
	[KW_SSO_CASE_UPDATE] = "updated",
	[KW_SSO_CASE_CLOSE] = "closed",
};

const char *kw_sso_case_action_name(enum kw_sso_case_action action)
{
	return action_names[action];
}

/* ---- decisions ---- */

int kw_sso_decide_login(const struct kw_sso_before *b, const struct kw_sso_claim *c,
			struct kw_sso_decision *decision_r)
{
	struct kw_sso_decision d = { .state = KW_SSO_STATE_ACTIVE,
				     .rule = KW_SSO_CASE_NONE,
				     .audit_action = "sso.login" };

	if (b->exists && !b->sso)
		return -EPERM;
	if (b->exists && !b->same_account)
		return -EACCES;
	if (!b->exists) {
		if (c->has_role) {
			d.outcome = KW_SSO_CREATED;
			d.write_user = d.take_role = d.open_session = true;
			d.audit_action = "sso.user_create";
		} else {
			/* nobody to create: the attempt is recorded, nothing else */
			d.outcome = KW_SSO_IGNORED;
			d.audit_action = "sso.login_ignored";
		}
		*decision_r = d;
		return 0;
	}

	d.write_user = true; /* IdP, NameID, last seen */
	d.state = b->state;
	if (!c->has_role && b->state == KW_SSO_STATE_REVOKED) {
		d.outcome = KW_SSO_STILL_REVOKED;
	} else if (!c->has_role) {
		d.outcome = KW_SSO_REVOKED;
		d.state = KW_SSO_STATE_REVOKED;
		d.rule = KW_SSO_CASE_REVOKED;
	} else if (c->rank < b->rank) {
		d.outcome = KW_SSO_DOWNGRADED;
		d.state = KW_SSO_STATE_DOWNGRADED;
		d.rule = KW_SSO_CASE_DOWNGRADED;
	} else if (b->state == KW_SSO_STATE_REVOKED || c->rank > b->rank) {
		d.outcome = KW_SSO_UPGRADED;
		d.state = KW_SSO_STATE_ACTIVE;
	} else {
		/* same role: a downgraded user stays downgraded */
		d.outcome = KW_SSO_UPDATED;
	}
	d.take_role = d.open_session = c->has_role;
	d.seen_again = d.rule == KW_SSO_CASE_NONE && d.outcome != KW_SSO_STILL_REVOKED;
	*decision_r = d;
	return 0;
}

int kw_sso_decide_revoke(const struct kw_sso_before *b, struct kw_sso_decision *decision_r)
{
	struct kw_sso_decision d = { .outcome = KW_SSO_REVOKED,
				     .state = KW_SSO_STATE_REVOKED,
				     .write_user = true,
				     .end_sessions = true,
				     .rule = KW_SSO_CASE_IDP_REVOKED,
				     .audit_action = "sso.revoke" };

	if (!b->exists)
		return -ENOENT;
	if (!b->sso)
		return -EINVAL;
	*decision_r = d;
	return 0;
}

int kw_sso_decide_restore(const struct kw_sso_before *b, struct kw_sso_decision *decision_r)
{
	struct kw_sso_decision d = { .outcome = KW_SSO_UPDATED,
				     .state = b->state,
				     .audit_action = "sso.restore" };

	if (!b->exists)
		return -ENOENT;
	if (!b->sso)
		return -EINVAL;
	if (b->state == KW_SSO_STATE_REVOKED) {
		d.outcome = KW_SSO_UPGRADED;
		d.state = KW_SSO_STATE_ACTIVE;
		d.write_user = true;
	}
	*decision_r = d;
	return 0;
}

enum kw_sso_case_action kw_sso_decide_case(enum kw_sso_case_event event,
					   const struct kw_sso_case_facts *f)
{
	bool open = f->open != KW_SSO_CASE_NONE;

	switch (event) {
	case KW_SSO_CASE_EVENT_RULE:
		if (open)
			return KW_SSO_CASE_UPDATE;
		return f->live_tokens > 0 ? KW_SSO_CASE_OPEN : KW_SSO_CASE_KEEP;
	case KW_SSO_CASE_EVENT_SEEN:
		return f->open == KW_SSO_CASE_STALE ? KW_SSO_CASE_CLOSE : KW_SSO_CASE_KEEP;
	case KW_SSO_CASE_EVENT_SWEEP:
		return open && f->live_tokens == 0 ? KW_SSO_CASE_CLOSE : KW_SSO_CASE_KEEP;
	case KW_SSO_CASE_EVENT_DISMISS:
		return open ? KW_SSO_CASE_CLOSE : KW_SSO_CASE_KEEP;
	}
	return KW_SSO_CASE_KEEP;
}

enum kw_sso_dismiss_verdict kw_sso_decide_dismisser(const struct kw_sso_dismisser *who)
{
	if (!who->enabled)
		return KW_SSO_DISMISS_DISABLED;
	if (!who->admin)
		return KW_SSO_DISMISS_NOT_ADMIN;
	if (who->sso_revoked)
		return KW_SSO_DISMISS_REVOKED;
	if (!who->same_account)
		return KW_SSO_DISMISS_NOT_FOUND;
	if (who->case_user)
		return KW_SSO_DISMISS_SELF;
	return KW_SSO_DISMISS_OK;
}

/* ---- the rule's words ---- */

void kw_sso_delete_command(const char *admin, uint64_t token_id, char *buf, size_t size)
{
	char quoted[KW_SSO_COMMAND_MAX];
	bool plain = admin[0] != '\0';

	for (const char *p = admin; *p != '\0'; p++) {
		if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@._+-:",
			   *p) == NULL)
			plain = false;
	}
	/* a plain login stays bare (as admins type it), anything else is one quoted word */
	if (!plain)
		kw_text_shell_quote(quoted, sizeof(quoted), admin);
	snprintf(buf, size, "keywarden token delete --as %s %llu", plain ? admin : quoted,
		 (unsigned long long)token_id);
}

void kw_sso_token_notice(const struct kw_user *u, uint64_t token_id, FILE *err)
{
	char cmd[KW_SSO_COMMAND_MAX];

	if (!u->sso)
		return;
	kw_sso_delete_command(KW_SSO_ADMIN_PLACEHOLDER, token_id, cmd, sizeof(cmd));
	fprintf(err,
		"keywarden: notice: '%s' signs in through SSO. " KW_SSO_RULE
		": if the identity provider revokes or reduces this user's access, token %llu "
		"stays "
		"active until someone deletes it (%s).\n",
		u->login, (unsigned long long)token_id, cmd);
}
