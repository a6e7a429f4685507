/* test_store_queries.c: the store's query functions for reports, the audit log and the
 * notify ledger (lib/store_report.c, store_audit.c, store_notify.c), through store.h and
 * audit.h only, as any caller (and a second backend) sees them. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "store.h"
#include "timeutil.h"

#define DAY 86400

static char tmpdir[256];

struct fixture {
	struct kw_store *store;
	int64_t now;
	uint64_t soon, never;
};

static int setup(void **state)
{
	static struct fixture f;
	struct kw_digest_key *key = NULL;
	const char *error = NULL;
	char path[300], text[KW_TOKEN_TEXT_MAX];
	struct kw_user_change off = { NULL, NULL, -1, 0 }, disable = { NULL, NULL, 0, -1 };

	memset(&f, 0, sizeof(f));
	snprintf(path, sizeof(path), "%s/keywarden.key", tmpdir);
	assert_int_equal(kw_digest_key_create(path, &error), 0);
	assert_int_equal(kw_digest_key_load(path, &key, &error), 0);
	snprintf(path, sizeof(path), "%s/queries.db", tmpdir);
	assert_int_equal(kw_store_open(path, KW_STORE_CREATE, &f.store, &error), 0);
	assert_int_equal(kw_store_account_add(f.store, "op", "acme", 2, &error), 0);
	assert_int_equal(kw_store_account_add(f.store, "op", "beta", 50, &error), 0);
	assert_int_equal(kw_store_user_add(f.store, "op", "acme", "bob", "Engineers",
					   "bob@example.org", &error),
			 0);
	assert_int_equal(kw_store_user_add(f.store, "op", "acme", "zoe", "Administrators",
					   "zoe@example.org", &error),
			 0);
	assert_int_equal(kw_store_user_add(f.store, "op", "acme", "carl", "Administrators",
					   "carl@example.org", &error),
			 0);
	assert_int_equal(kw_store_user_add(f.store, "op", "acme", "dora", "Administrators",
					   "dora@example.org", &error),
			 0);
	assert_int_equal(
		kw_store_user_add(f.store, "op", "acme", "nomail", "Administrators", NULL, &error),
		0);
	assert_int_equal(kw_store_user_set(f.store, "op", "carl", &off, &error), 0);
	assert_int_equal(kw_store_user_set(f.store, "op", "dora", &disable, &error), 0);
	f.now = kw_now();
	assert_int_equal(kw_store_token_create(f.store, key, "bob", "soon", "", "Users",
					       f.now + 3 * DAY, &f.soon, text, &error),
			 0);
	assert_int_equal(kw_store_token_create(f.store, key, "bob", "never", "", "Users", KW_NEVER,
					       &f.never, text, &error),
			 0);
	kw_digest_key_free(&key);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	kw_store_free(&f->store);
	return 0;
}

struct collected {
	unsigned n;
	uint64_t ids[8];
	char names[8][KW_LOGIN_MAX + 1];
	struct kw_notify_due due;
	struct kw_report_token token;
	struct kw_report_account account;
};

static int on_due(const struct kw_notify_due *t, void *ctx)
{
	struct collected *c = ctx;

	c->due = *t;
	c->ids[c->n++] = t->token_id;
	return 0;
}

static int on_admin(const char *login, const char *email, void *ctx)
{
	struct collected *c = ctx;

	assert_non_null(strchr(email, '@'));
	snprintf(c->names[c->n++], sizeof(c->names[0]), "%s", login);
	return 0;
}

static int on_token(const struct kw_report_token *t, void *ctx)
{
	struct collected *c = ctx;

	c->token = *t;
	c->ids[c->n++] = t->id;
	return 0;
}

static int on_account(const struct kw_report_account *a, void *ctx)
{
	struct collected *c = ctx;

	c->account = *a;
	c->n++;
	return 0;
}

static int stop_early(const struct kw_audit_event *e, void *ctx)
{
	(void)e;
	(*(unsigned *)ctx)++;
	return -ECANCELED;
}

static int count_events(const struct kw_audit_event *e, void *ctx)
{
	assert_true(e->has_hash);
	assert_non_null(e->actor);
	assert_non_null(e->details);
	(*(unsigned *)ctx)++;
	return 0;
}

static void test_notify_due(void **state)
{
	struct fixture *f = *state;
	struct collected c = { 0 };
	const char *error = NULL;

	assert_int_equal(kw_store_notify_due(f->store, NULL, f->now, 7 * DAY, on_due, &c, &error),
			 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.ids[0], f->soon);
	assert_string_equal(c.due.issuer, "bob");
	assert_string_equal(c.due.issuer_email, "bob@example.org");
	assert_string_equal(c.due.account, "acme");
	assert_string_equal(c.due.role, "Users");
	assert_true(c.due.issuer_wants);
	memset(&c, 0, sizeof(c));
	assert_int_equal(kw_store_notify_due(f->store, NULL, f->now, DAY, on_due, &c, &error), 0);
	assert_int_equal(c.n, 0);
	assert_int_equal(kw_store_notify_due(f->store, "beta", f->now, 7 * DAY, on_due, &c, &error),
			 0);
	assert_int_equal(c.n, 0);
	/* Expired by then: not due. */
	assert_int_equal(
		kw_store_notify_due(f->store, NULL, f->now + 4 * DAY, 7 * DAY, on_due, &c, &error),
		0);
	assert_int_equal(c.n, 0);

	/* Administrators who take mails: not opted out, not disabled, with an address. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(kw_store_notify_admins(f->store, c.due.account_id, on_admin, &c, &error),
			 0);
	assert_int_equal(c.n, 0); /* account id 0: none */
	assert_int_equal(kw_store_notify_due(f->store, NULL, f->now, 7 * DAY, on_due, &c, &error),
			 0);
	c.n = 0;
	assert_int_equal(kw_store_notify_admins(f->store, c.due.account_id, on_admin, &c, &error),
			 0);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.names[0], "zoe");
}

static void test_notify_ledger(void **state)
{
	struct fixture *f = *state;
	struct kw_notify_mail m = { f->soon, 7, "Zoe@Example.org", "zoe", false, f->now + 3 * DAY };
	struct kw_notify_ledger l;
	struct kw_user_change disable = { NULL, NULL, 0, -1 }, enable = { NULL, NULL, 1, -1 };
	struct collected c = { 0 };
	const char *error = NULL;
	unsigned before = 0, after = 0;
	int attempts = 0;

	assert_int_equal(kw_audit_foreach(f->store, 0, count_events, &before, &error), 0);
	assert_int_equal(kw_store_notify_ledger(f->store, &m, f->now, &l, &error), 0);
	assert_true(l.token_valid);
	assert_false(l.sent);
	assert_int_equal(l.attempts, 0);
	for (int i = 1; i <= 2; i++) {
		assert_int_equal(kw_store_notify_record_unconfirmed(f->store, "test", &m, f->now,
								    "no final reply", 3, &attempts,
								    &error),
				 0);
		assert_int_equal(attempts, i);
	}
	m.recipient = "zoe@example.org"; /* the ledger ignores the address's case */
	assert_int_equal(kw_store_notify_ledger(f->store, &m, f->now, &l, &error), 0);
	assert_int_equal(l.attempts, 2);
	assert_false(l.sent);
	assert_int_equal(kw_store_notify_record_sent(f->store, "test", &m, f->now, &error), 0);
	assert_int_equal(kw_store_notify_ledger(f->store, &m, f->now, &l, &error), 0);
	assert_true(l.sent);
	/* Another threshold is another mail. */
	m.threshold = 1;
	assert_int_equal(kw_store_notify_ledger(f->store, &m, f->now, &l, &error), 0);
	assert_false(l.sent);
	assert_int_equal(l.attempts, 0);
	/* Each record wrote its audit event; the chain holds. */
	assert_int_equal(kw_audit_foreach(f->store, 0, count_events, &after, &error), 0);
	assert_int_equal(after, before + 3);

	/* The issuer disabled: the token no longer validates, nothing is due. */
	assert_int_equal(kw_store_user_set(f->store, "op", "bob", &disable, &error), 0);
	assert_int_equal(kw_store_notify_ledger(f->store, &m, f->now, &l, &error), 0);
	assert_false(l.token_valid);
	assert_int_equal(kw_store_notify_due(f->store, NULL, f->now, 7 * DAY, on_due, &c, &error),
			 0);
	assert_int_equal(c.n, 0);
	assert_int_equal(kw_store_user_set(f->store, "op", "bob", &enable, &error), 0);
	/* Expired: no longer valid either. */
	assert_int_equal(kw_store_notify_ledger(f->store, &m, f->now + 3 * DAY, &l, &error), 0);
	assert_false(l.token_valid);
}

static void test_report(void **state)
{
	struct fixture *f = *state;
	struct kw_report_params p = { f->now, NULL, 30, 90, 7 };
	struct collected c = { 0 };
	const char *error = NULL;

	assert_int_equal(
		kw_store_report_tokens(f->store, KW_REPORT_NEVER_EXPIRES, &p, on_token, &c, &error),
		0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.ids[0], f->never);
	assert_int_equal(c.token.expires, KW_NEVER);
	assert_int_equal(c.token.last_used, 0);
	assert_false(c.token.issuer_sso);
	assert_string_equal(c.token.issuer_role, "Engineers");
	memset(&c, 0, sizeof(c));
	assert_int_equal(
		kw_store_report_tokens(f->store, KW_REPORT_EXPIRING_SOON, &p, on_token, &c, &error),
		0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.ids[0], f->soon);
	memset(&c, 0, sizeof(c));
	assert_int_equal(
		kw_store_report_tokens(f->store, KW_REPORT_UNUSED, &p, on_token, &c, &error), 0);
	assert_int_equal(c.n, 2);
	memset(&c, 0, sizeof(c));
	assert_int_equal(kw_store_report_tokens(f->store, KW_REPORT_ROLE_ABOVE_ISSUER, &p, on_token,
						&c, &error),
			 0);
	assert_int_equal(c.n, 0);
	p.account = "beta";
	assert_int_equal(
		kw_store_report_tokens(f->store, KW_REPORT_UNUSED, &p, on_token, &c, &error), 0);
	assert_int_equal(c.n, 0);
	assert_int_equal(
		kw_store_report_tokens(f->store, KW_REPORT_SECTIONS, &p, on_token, &c, &error),
		-EINVAL);

	/* acme holds 2 of 2 tokens, beta 0 of 50. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(kw_store_report_accounts(f->store, NULL, 80, on_account, &c, &error), 0);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.account.name, "acme");
	assert_int_equal(c.account.tokens, 2);
	assert_int_equal(c.account.token_limit, 2);
	memset(&c, 0, sizeof(c));
	assert_int_equal(kw_store_report_accounts(f->store, "beta", 0, on_account, &c, &error), 0);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.account.name, "beta");
}

static void test_audit_queries(void **state)
{
	struct fixture *f = *state;
	uint8_t hash[KW_AUDIT_HASH_LEN], zero[KW_AUDIT_HASH_LEN] = { 0 };
	const char *error = NULL;
	int64_t count = 0, bad = 0;
	unsigned n = 0;

	assert_int_equal(kw_audit_verify(f->store, &count, &bad, &error), 0);
	assert_true(count > 0);
	assert_int_equal(kw_audit_event_hash(f->store, count, hash, &error), 0);
	assert_memory_not_equal(hash, zero, sizeof(hash));
	assert_int_equal(kw_audit_event_hash(f->store, count + 1, hash, &error), -ENOENT);
	/* Since the future: nothing; a callback's error stops the walk and is returned. */
	assert_int_equal(kw_audit_foreach(f->store, f->now + DAY, count_events, &n, &error), 0);
	assert_int_equal(n, 0);
	assert_int_equal(kw_audit_foreach(f->store, 0, stop_early, &n, &error), -ECANCELED);
	assert_int_equal(n, 1);
	/* The store is usable after a stopped walk. */
	n = 0;
	assert_int_equal(kw_audit_foreach(f->store, 0, count_events, &n, &error), 0);
	assert_int_equal((int64_t)n, count);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_notify_due),
		cmocka_unit_test(test_notify_ledger),
		cmocka_unit_test(test_report),
		cmocka_unit_test(test_audit_queries),
	};
	char tmpl[] = "/tmp/kw-unit-XXXXXX", cmd[300];
	int ret;

	if (mkdtemp(tmpl) == NULL)
		return 1;
	snprintf(tmpdir, sizeof(tmpdir), "%s", tmpl);
	unsetenv("KEYWARDEN_STATE_DIR");
	ret = cmocka_run_group_tests(tests, setup, teardown);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		ret = 1;
	return ret;
}
