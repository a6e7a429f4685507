/* test_sso_rule.c: the rule's decisions (lib/sso_rule.c), every transition: what an assertion
 * does to a user (by previous SSO state and role rank), what an admin's revocation does, what
 * each event does to the user's review case, who may dismiss one; and the words of the rule
 * (names, the delete command). Pure functions: no store, no I/O. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "sso.h"
#include "sso_rule.h"

#define LOW 10
#define MID 20
#define HIGH 30

static const struct kw_sso_before nobody = { .exists = false };

static struct kw_sso_before sso_user(enum kw_sso_state state, int rank)
{
	struct kw_sso_before b = {
		.exists = true, .sso = true, .same_account = true, .state = state, .rank = rank
	};
	return b;
}

static struct kw_sso_claim role(int rank)
{
	struct kw_sso_claim c = { .has_role = true, .rank = rank };
	return c;
}

static const struct kw_sso_claim no_role = { .has_role = false };

/* What every decision for an existing user shares: the user is written (IdP, NameID, last
 * seen), never disabled, its tokens never touched (nothing here could), audited as sso.login. */
static struct kw_sso_decision login(const struct kw_sso_before *b, const struct kw_sso_claim *c)
{
	struct kw_sso_decision d;

	memset(&d, 0xa5, sizeof(d));
	assert_int_equal(kw_sso_decide_login(b, c, &d), 0);
	assert_false(d.end_sessions);
	if (b->exists) {
		assert_true(d.write_user);
		assert_string_equal(d.audit_action, "sso.login");
		/* a role maps: it is taken and the login opens a session; else neither */
		assert_int_equal(d.take_role, c->has_role);
		assert_int_equal(d.open_session, c->has_role);
	}
	return d;
}

static void assert_no_rule(const struct kw_sso_decision *d)
{
	assert_int_equal(d->rule, KW_SSO_CASE_NONE);
}

/* ---- assertions for unknown logins ---- */

static void test_login_unknown_with_role_creates(void **state)
{
	struct kw_sso_claim c = role(MID);
	struct kw_sso_decision d = login(&nobody, &c);

	(void)state;
	assert_int_equal(d.outcome, KW_SSO_CREATED);
	assert_int_equal(d.state, KW_SSO_STATE_ACTIVE);
	assert_true(d.write_user);
	assert_true(d.take_role);
	assert_true(d.open_session);
	assert_false(d.seen_again);
	assert_no_rule(&d);
	assert_string_equal(d.audit_action, "sso.user_create");
}

static void test_login_unknown_without_role_ignored(void **state)
{
	struct kw_sso_decision d = login(&nobody, &no_role);

	(void)state;
	assert_int_equal(d.outcome, KW_SSO_IGNORED);
	assert_false(d.write_user);
	assert_false(d.take_role);
	assert_false(d.open_session);
	assert_false(d.seen_again);
	assert_no_rule(&d);
	assert_string_equal(d.audit_action, "sso.login_ignored");
}

/* ---- logins SSO never takes over ---- */

static void test_login_local_user_refused(void **state)
{
	struct kw_sso_before b = sso_user(KW_SSO_STATE_ACTIVE, HIGH);
	struct kw_sso_claim c = role(HIGH);
	struct kw_sso_decision d = { .outcome = KW_SSO_UPDATED };

	(void)state;
	b.sso = false;
	assert_int_equal(kw_sso_decide_login(&b, &c, &d), -EPERM);
	assert_int_equal(kw_sso_decide_login(&b, &no_role, &d), -EPERM);
	b.same_account = false; /* local wins over account */
	assert_int_equal(kw_sso_decide_login(&b, &c, &d), -EPERM);
	assert_int_equal(d.outcome, KW_SSO_UPDATED); /* untouched on refusal */
}

static void test_login_other_account_refused(void **state)
{
	struct kw_sso_before b = sso_user(KW_SSO_STATE_ACTIVE, MID);
	struct kw_sso_claim c = role(MID);
	struct kw_sso_decision d;

	(void)state;
	b.same_account = false;
	assert_int_equal(kw_sso_decide_login(&b, &c, &d), -EACCES);
	assert_int_equal(kw_sso_decide_login(&b, &no_role, &d), -EACCES);
	b.state = KW_SSO_STATE_REVOKED;
	assert_int_equal(kw_sso_decide_login(&b, &c, &d), -EACCES);
}

/* ---- an active user ---- */

static void test_login_active_same_role_updates(void **state)
{
	struct kw_sso_before b = sso_user(KW_SSO_STATE_ACTIVE, MID);
	struct kw_sso_claim c = role(MID);
	struct kw_sso_decision d = login(&b, &c);

	(void)state;
	assert_int_equal(d.outcome, KW_SSO_UPDATED);
	assert_int_equal(d.state, KW_SSO_STATE_ACTIVE);
	assert_true(d.seen_again);
	assert_no_rule(&d);
}

static void test_login_active_higher_role_upgrades(void **state)
{
	struct kw_sso_before b = sso_user(KW_SSO_STATE_ACTIVE, MID);
	struct kw_sso_claim c = role(HIGH);
	struct kw_sso_decision d = login(&b, &c);

	(void)state;
	assert_int_equal(d.outcome, KW_SSO_UPGRADED);
	assert_int_equal(d.state, KW_SSO_STATE_ACTIVE);
	assert_true(d.seen_again);
	assert_no_rule(&d);
}

static void test_login_active_lower_role_downgrades(void **state)
{
	struct kw_sso_before b = sso_user(KW_SSO_STATE_ACTIVE, MID);
	struct kw_sso_claim c = role(LOW);
	struct kw_sso_decision d = login(&b, &c);

	(void)state;
	assert_int_equal(d.outcome, KW_SSO_DOWNGRADED);
	assert_int_equal(d.state, KW_SSO_STATE_DOWNGRADED);
	assert_int_equal(d.rule, KW_SSO_CASE_DOWNGRADED);
	assert_false(d.seen_again); /* the rule's case takes over a stale one */
}

static void test_login_active_no_role_revokes(void **state)
{
	struct kw_sso_before b = sso_user(KW_SSO_STATE_ACTIVE, MID);
	struct kw_sso_decision d = login(&b, &no_role);

	(void)state;
	assert_int_equal(d.outcome, KW_SSO_REVOKED);
	assert_int_equal(d.state, KW_SSO_STATE_REVOKED);
	assert_int_equal(d.rule, KW_SSO_CASE_REVOKED);
	assert_false(d.take_role); /* the role on record stays: the tokens' role */
	assert_false(d.seen_again);
}

/* ---- a downgraded user ---- */

static void test_login_downgraded_same_role_stays_downgraded(void **state)
{
	struct kw_sso_before b = sso_user(KW_SSO_STATE_DOWNGRADED, LOW);
	struct kw_sso_claim c = role(LOW);
	struct kw_sso_decision d = login(&b, &c);

	(void)state;
	assert_int_equal(d.outcome, KW_SSO_UPDATED);
	assert_int_equal(d.state, KW_SSO_STATE_DOWNGRADED);
	assert_true(d.seen_again);
	assert_no_rule(&d);
}

static void test_login_downgraded_higher_role_upgrades(void **state)
{
	struct kw_sso_before b = sso_user(KW_SSO_STATE_DOWNGRADED, LOW);
	struct kw_sso_claim c = role(MID);
	struct kw_sso_decision d = login(&b, &c);

	(void)state;
	assert_int_equal(d.outcome, KW_SSO_UPGRADED);
	assert_int_equal(d.state, KW_SSO_STATE_ACTIVE);
	assert_true(d.seen_again);
	assert_no_rule(&d);
}

static void test_login_downgraded_lower_role_downgrades_again(void **state)
{
	struct kw_sso_before b = sso_user(KW_SSO_STATE_DOWNGRADED, MID);
	struct kw_sso_claim c = role(LOW);
	struct kw_sso_decision d = login(&b, &c);

	(void)state;
	assert_int_equal(d.outcome, KW_SSO_DOWNGRADED);
	assert_int_equal(d.state, KW_SSO_STATE_DOWNGRADED);
	assert_int_equal(d.rule, KW_SSO_CASE_DOWNGRADED);
	assert_false(d.seen_again);
}

static void test_login_downgraded_no_role_revokes(void **state)
{
	struct kw_sso_before b = sso_user(KW_SSO_STATE_DOWNGRADED, LOW);
	struct kw_sso_decision d = login(&b, &no_role);

	(void)state;
	assert_int_equal(d.outcome, KW_SSO_REVOKED);
	assert_int_equal(d.state, KW_SSO_STATE_REVOKED);
	assert_int_equal(d.rule, KW_SSO_CASE_REVOKED);
	assert_false(d.seen_again);
}

/* ---- a revoked user ---- */

static void test_login_revoked_no_role_still_revoked(void **state)
{
	struct kw_sso_before b = sso_user(KW_SSO_STATE_REVOKED, MID);
	struct kw_sso_decision d = login(&b, &no_role);

	(void)state;
	assert_int_equal(d.outcome, KW_SSO_STILL_REVOKED);
	assert_int_equal(d.state, KW_SSO_STATE_REVOKED);
	assert_no_rule(&d); /* no second rule event */
	assert_false(d.seen_again);
}

static void test_login_revoked_same_role_restores(void **state)
{
	struct kw_sso_before b = sso_user(KW_SSO_STATE_REVOKED, MID);
	struct kw_sso_claim c = role(MID);
	struct kw_sso_decision d = login(&b, &c);

	(void)state;
	assert_int_equal(d.outcome, KW_SSO_UPGRADED); /* access back */
	assert_int_equal(d.state, KW_SSO_STATE_ACTIVE);
	assert_true(d.seen_again);
	assert_no_rule(&d); /* the revoked case stays open: its tokens are still there */
}

static void test_login_revoked_higher_role_restores(void **state)
{
	struct kw_sso_before b = sso_user(KW_SSO_STATE_REVOKED, MID);
	struct kw_sso_claim c = role(HIGH);
	struct kw_sso_decision d = login(&b, &c);

	(void)state;
	assert_int_equal(d.outcome, KW_SSO_UPGRADED);
	assert_int_equal(d.state, KW_SSO_STATE_ACTIVE);
	assert_true(d.seen_again);
	assert_no_rule(&d);
}

static void test_login_revoked_lower_role_downgrades(void **state)
{
	struct kw_sso_before b = sso_user(KW_SSO_STATE_REVOKED, MID);
	struct kw_sso_claim c = role(LOW);
	struct kw_sso_decision d = login(&b, &c);

	(void)state;
	assert_int_equal(d.outcome, KW_SSO_DOWNGRADED);
	assert_int_equal(d.state, KW_SSO_STATE_DOWNGRADED);
	assert_int_equal(d.rule, KW_SSO_CASE_DOWNGRADED);
	assert_false(d.seen_again);
}

/* ---- an admin's revocation ---- */

/* SCIM active:true: a revoked user is active again, with its role on record; others stay. */
static void test_restore(void **state)
{
	const enum kw_sso_state states[] = { KW_SSO_STATE_ACTIVE, KW_SSO_STATE_DOWNGRADED,
					     KW_SSO_STATE_REVOKED };
	struct kw_sso_before local = { .exists = true, .sso = false, .same_account = true };
	struct kw_sso_decision d;

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		struct kw_sso_before b = sso_user(states[i], MID);

		assert_int_equal(kw_sso_decide_restore(&b, &d), 0);
		assert_false(d.take_role);
		assert_false(d.open_session);
		assert_false(d.end_sessions);
		assert_int_equal(d.rule, KW_SSO_CASE_NONE);
		assert_string_equal(d.audit_action, "sso.restore");
		if (states[i] == KW_SSO_STATE_REVOKED) {
			assert_int_equal(d.outcome, KW_SSO_UPGRADED);
			assert_int_equal(d.state, KW_SSO_STATE_ACTIVE);
			assert_true(d.write_user);
		} else {
			assert_int_equal(d.outcome, KW_SSO_UPDATED);
			assert_int_equal(d.state, states[i]);
			assert_false(d.write_user);
		}
	}
	assert_int_equal(kw_sso_decide_restore(&local, &d), -EINVAL);
	assert_int_equal(kw_sso_decide_restore(&nobody, &d), -ENOENT);
}

static void test_revoke_every_state(void **state)
{
	const enum kw_sso_state states[] = { KW_SSO_STATE_ACTIVE, KW_SSO_STATE_DOWNGRADED,
					     KW_SSO_STATE_REVOKED };

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		struct kw_sso_before b = sso_user(states[i], MID);
		struct kw_sso_decision d;

		assert_int_equal(kw_sso_decide_revoke(&b, &d), 0);
		assert_int_equal(d.outcome, KW_SSO_REVOKED);
		assert_int_equal(d.state, KW_SSO_STATE_REVOKED);
		assert_int_equal(d.rule, KW_SSO_CASE_IDP_REVOKED);
		assert_true(d.end_sessions);
		assert_false(d.take_role);
		assert_false(d.open_session);
		assert_false(d.seen_again);
		assert_string_equal(d.audit_action, "sso.revoke");
	}
}

static void test_revoke_refused(void **state)
{
	struct kw_sso_before b = sso_user(KW_SSO_STATE_ACTIVE, MID);
	struct kw_sso_decision d;

	(void)state;
	assert_int_equal(kw_sso_decide_revoke(&nobody, &d), -ENOENT);
	b.sso = false;
	assert_int_equal(kw_sso_decide_revoke(&b, &d), -EINVAL);
}

/* ---- review cases ---- */

static enum kw_sso_case_action on_case(enum kw_sso_case_event ev, enum kw_sso_case_kind open,
				       unsigned live_tokens)
{
	struct kw_sso_case_facts f = { .open = open, .live_tokens = live_tokens };

	return kw_sso_decide_case(ev, &f);
}

static const enum kw_sso_case_kind open_kinds[] = { KW_SSO_CASE_REVOKED, KW_SSO_CASE_DOWNGRADED,
						    KW_SSO_CASE_IDP_REVOKED, KW_SSO_CASE_STALE };

static void test_case_rule(void **state)
{
	(void)state;
	/* no case: one opens when there is something to review */
	assert_int_equal(on_case(KW_SSO_CASE_EVENT_RULE, KW_SSO_CASE_NONE, 0), KW_SSO_CASE_KEEP);
	assert_int_equal(on_case(KW_SSO_CASE_EVENT_RULE, KW_SSO_CASE_NONE, 1), KW_SSO_CASE_OPEN);
	assert_int_equal(on_case(KW_SSO_CASE_EVENT_RULE, KW_SSO_CASE_NONE, 50), KW_SSO_CASE_OPEN);
	/* one open case per user: a new event updates it, tokens or not */
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(on_case(KW_SSO_CASE_EVENT_RULE, open_kinds[i], 0),
				 KW_SSO_CASE_UPDATE);
		assert_int_equal(on_case(KW_SSO_CASE_EVENT_RULE, open_kinds[i], 3),
				 KW_SSO_CASE_UPDATE);
	}
}

static void test_case_seen_again(void **state)
{
	(void)state;
	assert_int_equal(on_case(KW_SSO_CASE_EVENT_SEEN, KW_SSO_CASE_NONE, 0), KW_SSO_CASE_KEEP);
	assert_int_equal(on_case(KW_SSO_CASE_EVENT_SEEN, KW_SSO_CASE_NONE, 2), KW_SSO_CASE_KEEP);
	/* only a stale case closes: seeing the user answers it */
	assert_int_equal(on_case(KW_SSO_CASE_EVENT_SEEN, KW_SSO_CASE_STALE, 2), KW_SSO_CASE_CLOSE);
	assert_int_equal(on_case(KW_SSO_CASE_EVENT_SEEN, KW_SSO_CASE_STALE, 0), KW_SSO_CASE_CLOSE);
	/* the others stay until the tokens are gone or an admin dismisses them */
	assert_int_equal(on_case(KW_SSO_CASE_EVENT_SEEN, KW_SSO_CASE_REVOKED, 2), KW_SSO_CASE_KEEP);
	assert_int_equal(on_case(KW_SSO_CASE_EVENT_SEEN, KW_SSO_CASE_DOWNGRADED, 2),
			 KW_SSO_CASE_KEEP);
	assert_int_equal(on_case(KW_SSO_CASE_EVENT_SEEN, KW_SSO_CASE_IDP_REVOKED, 2),
			 KW_SSO_CASE_KEEP);
}

static void test_case_sweep(void **state)
{
	(void)state;
	assert_int_equal(on_case(KW_SSO_CASE_EVENT_SWEEP, KW_SSO_CASE_NONE, 0), KW_SSO_CASE_KEEP);
	assert_int_equal(on_case(KW_SSO_CASE_EVENT_SWEEP, KW_SSO_CASE_NONE, 4), KW_SSO_CASE_KEEP);
	for (size_t i = 0; i < 4; i++) {
		/* no live token left: the case closes by itself */
		assert_int_equal(on_case(KW_SSO_CASE_EVENT_SWEEP, open_kinds[i], 0),
				 KW_SSO_CASE_CLOSE);
		assert_int_equal(on_case(KW_SSO_CASE_EVENT_SWEEP, open_kinds[i], 1),
				 KW_SSO_CASE_KEEP);
	}
}

static void test_case_dismiss(void **state)
{
	(void)state;
	assert_int_equal(on_case(KW_SSO_CASE_EVENT_DISMISS, KW_SSO_CASE_NONE, 0),
			 KW_SSO_CASE_KEEP); /* already closed */
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(on_case(KW_SSO_CASE_EVENT_DISMISS, open_kinds[i], 0),
				 KW_SSO_CASE_CLOSE);
		assert_int_equal(on_case(KW_SSO_CASE_EVENT_DISMISS, open_kinds[i], 7),
				 KW_SSO_CASE_CLOSE);
	}
}

/* Who may dismiss: every refusal, in the order the decision checks them. */
static void test_dismisser(void **state)
{
	const struct kw_sso_dismisser admin = { .enabled = true,
						.admin = true,
						.same_account = true };
	struct kw_sso_dismisser w;

	(void)state;
	assert_int_equal(kw_sso_decide_dismisser(&admin), KW_SSO_DISMISS_OK);
	w = admin;
	w.enabled = false;
	assert_int_equal(kw_sso_decide_dismisser(&w), KW_SSO_DISMISS_DISABLED);
	w = admin;
	w.admin = false;
	assert_int_equal(kw_sso_decide_dismisser(&w), KW_SSO_DISMISS_NOT_ADMIN);
	w = admin;
	w.sso_revoked = true;
	assert_int_equal(kw_sso_decide_dismisser(&w), KW_SSO_DISMISS_REVOKED);
	w = admin;
	w.same_account = false; /* another account's case, or none */
	assert_int_equal(kw_sso_decide_dismisser(&w), KW_SSO_DISMISS_NOT_FOUND);
	w = admin;
	w.case_user = true;
	assert_int_equal(kw_sso_decide_dismisser(&w), KW_SSO_DISMISS_SELF);
	/* the first refusal wins: who the actor is comes before which case */
	w.enabled = false;
	w.admin = false;
	w.same_account = false;
	assert_int_equal(kw_sso_decide_dismisser(&w), KW_SSO_DISMISS_DISABLED);
	w.enabled = true;
	assert_int_equal(kw_sso_decide_dismisser(&w), KW_SSO_DISMISS_NOT_ADMIN);
	w.admin = true;
	w.sso_revoked = true;
	assert_int_equal(kw_sso_decide_dismisser(&w), KW_SSO_DISMISS_REVOKED);
	w.sso_revoked = false;
	assert_int_equal(kw_sso_decide_dismisser(&w), KW_SSO_DISMISS_NOT_FOUND);
}

/* The decisions agree with each other: every login outcome that applies the rule leaves a
 * state the next identical assertion keeps without a second rule event. */
static void test_login_settles(void **state)
{
	const enum kw_sso_state states[] = { KW_SSO_STATE_ACTIVE, KW_SSO_STATE_DOWNGRADED,
					     KW_SSO_STATE_REVOKED };
	const struct kw_sso_claim claims[] = { { .has_role = false },
					       { .has_role = true, .rank = LOW },
					       { .has_role = true, .rank = MID },
					       { .has_role = true, .rank = HIGH } };

	(void)state;
	for (size_t s = 0; s < 3; s++) {
		for (size_t c = 0; c < 4; c++) {
			struct kw_sso_before b = sso_user(states[s], MID);
			struct kw_sso_decision d = login(&b, &claims[c]), again;

			b.state = d.state;
			if (d.take_role)
				b.rank = claims[c].rank;
			again = login(&b, &claims[c]);
			assert_int_equal(again.rule, KW_SSO_CASE_NONE);
			assert_int_equal(again.state, d.state);
			assert_true(again.outcome == KW_SSO_UPDATED ||
				    again.outcome == KW_SSO_STILL_REVOKED);
		}
	}
}

/* ---- names and words ---- */

static void test_names(void **state)
{
	enum kw_sso_state st;
	enum kw_sso_case_kind k;

	(void)state;
	assert_string_equal(kw_sso_outcome_name(KW_SSO_CREATED), "created");
	assert_string_equal(kw_sso_outcome_name(KW_SSO_STILL_REVOKED), "still_revoked");
	assert_string_equal(kw_sso_outcome_name(KW_SSO_IGNORED), "ignored");
	for (int i = KW_SSO_STATE_ACTIVE; i <= KW_SSO_STATE_REVOKED; i++) {
		assert_int_equal(kw_sso_state_parse(kw_sso_state_name(i), &st), 0);
		assert_int_equal(st, i);
	}
	assert_int_equal(kw_sso_state_parse("", &st), 0);
	assert_int_equal(st, KW_SSO_STATE_ACTIVE);
	assert_int_equal(kw_sso_state_parse(NULL, &st), 0);
	assert_int_equal(st, KW_SSO_STATE_ACTIVE);
	assert_int_equal(kw_sso_state_parse("gone", &st), -EINVAL);
	for (int i = KW_SSO_CASE_NONE; i <= KW_SSO_CASE_STALE; i++) {
		assert_int_equal(kw_sso_case_kind_parse(kw_sso_case_kind_name(i), &k), 0);
		assert_int_equal(k, i);
	}
	assert_string_equal(kw_sso_case_kind_name(KW_SSO_CASE_IDP_REVOKED), "idp_revoked");
	assert_int_equal(kw_sso_case_kind_parse("closed", &k), -EINVAL);
	assert_string_equal(kw_sso_case_action_name(KW_SSO_CASE_KEEP), "none");
	assert_string_equal(kw_sso_case_action_name(KW_SSO_CASE_OPEN), "opened");
	assert_string_equal(kw_sso_case_action_name(KW_SSO_CASE_UPDATE), "updated");
}

static void test_delete_command(void **state)
{
	char buf[KW_SSO_COMMAND_MAX], small[40];

	(void)state;
	kw_sso_delete_command("root", 7711, buf, sizeof(buf));
	assert_string_equal(buf, "keywarden token delete --as root 7711");
	kw_sso_delete_command("alice@example.org", 1, buf, sizeof(buf));
	assert_string_equal(buf, "keywarden token delete --as alice@example.org 1");
	kw_sso_delete_command("o'hara smith", 2, buf, sizeof(buf));
	assert_string_equal(buf, "keywarden token delete --as 'o'\\''hara smith' 2");
	kw_sso_delete_command("", 3, buf, sizeof(buf));
	assert_string_equal(buf, "keywarden token delete --as '' 3");
	/* cut short, still terminated */
	kw_sso_delete_command("a-very-long-administrator-login", 4, small, sizeof(small));
	assert_true(strlen(small) < sizeof(small));
	assert_int_equal(strncmp(small, "keywarden token delete --as ", 28), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_login_unknown_with_role_creates),
		cmocka_unit_test(test_login_unknown_without_role_ignored),
		cmocka_unit_test(test_login_local_user_refused),
		cmocka_unit_test(test_login_other_account_refused),
		cmocka_unit_test(test_login_active_same_role_updates),
		cmocka_unit_test(test_login_active_higher_role_upgrades),
		cmocka_unit_test(test_login_active_lower_role_downgrades),
		cmocka_unit_test(test_login_active_no_role_revokes),
		cmocka_unit_test(test_login_downgraded_same_role_stays_downgraded),
		cmocka_unit_test(test_login_downgraded_higher_role_upgrades),
		cmocka_unit_test(test_login_downgraded_lower_role_downgrades_again),
		cmocka_unit_test(test_login_downgraded_no_role_revokes),
		cmocka_unit_test(test_login_revoked_no_role_still_revoked),
		cmocka_unit_test(test_login_revoked_same_role_restores),
		cmocka_unit_test(test_login_revoked_higher_role_restores),
		cmocka_unit_test(test_login_revoked_lower_role_downgrades),
		cmocka_unit_test(test_revoke_every_state),
		cmocka_unit_test(test_revoke_refused),
		cmocka_unit_test(test_restore),
		cmocka_unit_test(test_case_rule),
		cmocka_unit_test(test_case_seen_again),
		cmocka_unit_test(test_case_sweep),
		cmocka_unit_test(test_case_dismiss),
		cmocka_unit_test(test_dismisser),
		cmocka_unit_test(test_login_settles),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_delete_command),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
