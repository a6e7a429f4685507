/* test_mail.c: what an expiry mail says and to whom (notify/mail.c): recipients once per
 * address, the threshold, defanging and shell quoting of user-controlled text, the stable
 * Message-ID, the whole mail's headers and body, and that nothing overflows. */
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

#include "mail.h"

#define DAY 86400
/* 2027-01-15T12:00:00Z */
#define NOW 1800014400

static void test_threshold(void **state)
{
	(void)state;
	assert_int_equal(kw_mail_threshold(NOW + 7 * DAY, NOW), 7);
	assert_int_equal(kw_mail_threshold(NOW + DAY + 1, NOW), 7);
	assert_int_equal(kw_mail_threshold(NOW + DAY, NOW), 1);
	assert_int_equal(kw_mail_threshold(NOW + 1, NOW), 1);
}

static void test_plain_address(void **state)
{
	char long_addr[KW_EMAIL_MAX + 8];

	(void)state;
	assert_true(kw_mail_plain_address("bob@example.org"));
	assert_true(kw_mail_plain_address("b.o+b@sub.example.org"));
	const char *bad[] = { "",
			      "bob",
			      "@example.org",
			      "bob@",
			      "bob @example.org",
			      "<bob@example.org>",
			      "bob@example.org,eve@example.org",
			      "bob@example.org\r\nBcc: eve@example.org",
			      "bob\"@example.org",
			      "bob@[127.0.0.1]",
			      "bob;@example.org" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(kw_mail_plain_address(bad[i]));
	memset(long_addr, 'a', sizeof(long_addr));
	memcpy(long_addr + sizeof(long_addr) - 13, "@example.org", 13);
	assert_false(kw_mail_plain_address(long_addr));
}

static void test_recipients(void **state)
{
	struct kw_mail_recipients l = { 0 };

	(void)state;
	assert_int_equal(kw_mail_recipients_add(&l, "bob@example.org", "bob", false), 0);
	assert_int_equal(kw_mail_recipients_add(&l, "", "erin", true), 0);
	assert_int_equal(kw_mail_recipients_add(&l, "not an address", "mallory", false), -EINVAL);
	/* Same address in another case: one mail, which now also goes to the issuer. */
	assert_int_equal(kw_mail_recipients_add(&l, "BOB@Example.org", "robert", true), 0);
	assert_int_equal(kw_mail_recipients_add(&l, "alice@example.org", "al\nice", false), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.list[0].email, "bob@example.org");
	assert_string_equal(l.list[0].login, "bob");
	assert_true(l.list[0].is_issuer);
	assert_string_equal(l.list[1].email, "alice@example.org");
	assert_string_equal(l.list[1].login, "al?ice"); /* sanitized */
	assert_false(l.list[1].is_issuer);
	for (int i = 0; i < 20; i++) { /* grows */
		char addr[32];
		snprintf(addr, sizeof(addr), "u%d@example.org", i);
		assert_int_equal(kw_mail_recipients_add(&l, addr, "u", false), 0);
	}
	assert_int_equal(l.n, 22);
	kw_mail_recipients_free(&l);
	assert_null(l.list);
	assert_int_equal(l.n, 0);
}

static void test_defang(void **state)
{
	char out[64], tiny[8];

	(void)state;
	kw_mail_defang(out, sizeof(out), "see https://evil.example/x and WWW.evil.example");
	assert_string_equal(out, "see https[:]//evil.example/x and WWW[.]evil.example");
	kw_mail_defang(out, sizeof(out), "plain text: no link");
	assert_string_equal(out, "plain text: no link");
	kw_mail_defang(out, sizeof(out), "www.www.");
	assert_string_equal(out, "www[.]www[.]");
	/* Cut short, never in the middle of a replacement, always terminated. */
	kw_mail_defang(tiny, sizeof(tiny), "ab://cd");
	assert_string_equal(tiny, "ab[:]//");
	kw_mail_defang(tiny, sizeof(tiny), "abc://d");
	assert_string_equal(tiny, "abc");
}

static void test_message_id(void **state)
{
	char a[KW_MAIL_MSGID_MAX], b[KW_MAIL_MSGID_MAX], c[KW_MAIL_MSGID_MAX];

	(void)state;
	kw_mail_message_id(a, sizeof(a), "example.org", 42, 7, "bob@example.org");
	kw_mail_message_id(b, sizeof(b), "example.org", 42, 7, "Bob@Example.ORG");
	kw_mail_message_id(c, sizeof(c), "example.org", 42, 1, "bob@example.org");
	assert_string_equal(a, b); /* every attempt, whatever the address's case */
	assert_string_not_equal(a, c);
	assert_int_equal(strncmp(a, "<keywarden.42.7.", 16), 0);
	assert_non_null(strstr(a, "@example.org>"));
}

static void due_token(struct kw_notify_due *t)
{
	memset(t, 0, sizeof(*t));
	t->token_id = 7711;
	t->account_id = 1;
	t->created = NOW - 100 * DAY;
	t->expires = NOW + 6 * DAY;
	snprintf(t->name, sizeof(t->name), "Renew now: https://evil.example/kw WWW.evil.example");
	snprintf(t->role, sizeof(t->role), "Users");
	snprintf(t->account, sizeof(t->account), "acme");
	snprintf(t->issuer, sizeof(t->issuer), "o'brien");
	snprintf(t->issuer_email, sizeof(t->issuer_email), "ob@example.org");
	t->issuer_wants = true;
}

static void test_compose(void **state)
{
	struct kw_notify_due t;
	struct kw_mail_recipient r = { "ob@example.org", "o'brien", true };
	char *mail = malloc(KW_MAIL_MAX);
	int len;

	(void)state;
	assert_non_null(mail);
	due_token(&t);
	len = kw_mail_compose(mail, KW_MAIL_MAX, "keywarden <kw@example.org>", "example.org", &t, 7,
			      &r, NOW);
	assert_true(len > 0);
	assert_int_equal((size_t)len, strlen(mail));
	assert_int_equal(
		strncmp(mail, "From: keywarden <kw@example.org>\r\nTo: <ob@example.org>\r\n", 56),
		0);
	assert_non_null(
		strstr(mail, "Subject: keywarden: API token 7711 expires within 7 days\r\n"));
	assert_non_null(strstr(mail, "Date: Fri, 15 Jan 2027 12:00:00 +0000\r\n"));
	assert_non_null(strstr(mail, "X-Keywarden-Token: 7711\r\nX-Keywarden-Threshold: 7\r\n"));
	assert_non_null(strstr(mail, "Message-ID: <keywarden.7711.7."));
	assert_non_null(strstr(mail, "\r\n\r\nThe API token below expires within 7 days, on "
				     "2027-01-21T12:00:00Z.\r\n"));
	assert_non_null(strstr(mail, "  name:       Renew now: https[:]//evil.example/kw "
				     "WWW[.]evil.example\r\n"));
	/* The replacement lives as long as the old one did: 106 days after the old expiry. */
	assert_non_null(strstr(mail, "  keywarden token create --as 'o'\\''brien' --name 'Renew "
				     "now: https[:]//evil.example/kw WWW[.]evil.example' --role "
				     "'Users' --expires 2027-05-07\r\n"));
	assert_non_null(strstr(mail, "  keywarden token delete --as 'o'\\''brien' 7711\r\n"));
	assert_non_null(strstr(mail, "You receive it as the token's issuer."));
	assert_non_null(strstr(mail, "  keywarden user set 'o'\\''brien' --expiry-emails off\r\n"));
	assert_null(strstr(mail, "://"));
	assert_null(strstr(mail, "www."));
	/* Every line ends in CRLF; no bare LF. */
	for (const char *p = strchr(mail, '\n'); p != NULL; p = strchr(p + 1, '\n'))
		assert_int_equal(p[-1], '\r');

	/* 1-day mail to an Administrator; a short lifetime still suggests 30 days. */
	r.is_issuer = false;
	snprintf(r.login, sizeof(r.login), "alice");
	t.created = NOW - DAY;
	len = kw_mail_compose(mail, KW_MAIL_MAX, "kw@example.org", "example.org", &t, 1, &r, NOW);
	assert_true(len > 0);
	assert_non_null(strstr(mail, "expires within 1 day\r\n"));
	assert_non_null(strstr(mail, "X-Keywarden-Threshold: 1\r\n"));
	assert_non_null(strstr(mail, "--expires 2027-02-20\r\n"));
	assert_non_null(strstr(mail, "You receive it as an Administrator of its account."));
	assert_non_null(strstr(mail, "keywarden user set 'alice' --expiry-emails off"));

	/* Too small a buffer: -ENOSPC, no overflow. */
	assert_int_equal(
		kw_mail_compose(mail, 100, "kw@example.org", "example.org", &t, 7, &r, NOW),
		-ENOSPC);
	free(mail);
}

/* Fields at the store's limits, all made of characters that defanging doubles, still fit. */
static void test_compose_limits(void **state)
{
	struct kw_notify_due t;
	struct kw_mail_recipient r;
	char *mail = malloc(KW_MAIL_MAX);

	(void)state;
	assert_non_null(mail);
	due_token(&t);
	for (size_t i = 0; i + 4 <= KW_TOKEN_NAME_MAX; i += 4)
		memcpy(t.name + i, "www.", 4);
	t.name[KW_TOKEN_NAME_MAX] = '\0';
	memset(t.issuer, '\'', KW_LOGIN_MAX);
	t.issuer[KW_LOGIN_MAX] = '\0';
	memset(t.role, 'r', KW_ROLE_MAX);
	t.role[KW_ROLE_MAX] = '\0';
	memset(t.account, 'a', KW_ACCOUNT_MAX);
	t.account[KW_ACCOUNT_MAX] = '\0';
	memset(&r, 0, sizeof(r));
	memset(r.email, 'e', KW_EMAIL_MAX - 12);
	memcpy(r.email + KW_EMAIL_MAX - 12, "@example.org", 13);
	memset(r.login, '\'', KW_LOGIN_MAX);
	assert_true(kw_mail_compose(mail, KW_MAIL_MAX, r.email, "example.org", &t, 7, &r, NOW) > 0);
	assert_null(strstr(mail, "www."));
	free(mail);
}

static void test_sanitize(void **state)
{
	struct kw_notify_due t;

	(void)state;
	due_token(&t);
	snprintf(t.name, sizeof(t.name), "a\r\nBcc: eve@example.org");
	snprintf(t.issuer, sizeof(t.issuer), "bob\x7f");
	snprintf(t.account, sizeof(t.account), "ac\tme");
	kw_mail_sanitize_due(&t);
	assert_string_equal(t.name, "a??Bcc: eve@example.org");
	assert_string_equal(t.issuer, "bob?");
	assert_string_equal(t.account, "ac?me");
	assert_string_equal(t.role, "Users");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threshold),      cmocka_unit_test(test_plain_address),
		cmocka_unit_test(test_recipients),     cmocka_unit_test(test_defang),
		cmocka_unit_test(test_message_id),     cmocka_unit_test(test_compose),
		cmocka_unit_test(test_compose_limits), cmocka_unit_test(test_sanitize),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
