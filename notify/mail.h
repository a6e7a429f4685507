/* mail.h: what an expiry mail says and to whom, written as pure functions (no I/O, no clock,
 * no database) so that tests/unit/test_mail.c can pin every line of it.
 *
 * Text that users control (token names, logins, account names) is defanged in the mail, so
 * that no mail program makes a link of it: "://" becomes "[:]//" and "www." becomes "www[.]".
 * Values in the suggested commands are shell-quoted. Values from the database that go into a
 * header or the body are first sanitized (kw_mail_sanitize): the store refuses control
 * characters, but an edited database must not turn into header injection. */
#ifndef KW_MAIL_H
#define KW_MAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Room for any mail kw_mail_compose() writes from fields within the store's limits. */
#define KW_MAIL_MAX 16384
/* Room for a Message-ID. */
#define KW_MAIL_MSGID_MAX (KW_EMAIL_MAX + 64)

struct kw_mail_recipient {
	char email[KW_EMAIL_MAX + 1];
	char login[KW_LOGIN_MAX + 1]; /* sanitized */
	bool is_issuer;               /* else an Administrator of the token's account */
};

/* A list of distinct addresses (compared without regard to case). Owned by its user, who
 * frees it with kw_mail_recipients_free(); starts zeroed. */
struct kw_mail_recipients {
	struct kw_mail_recipient *list;
	size_t n, cap;
};

/* 1 when the token expires within a day of now, else 7: when both mails are due at once (the
 * timer was down), only the 1-day mail goes out. */
int kw_mail_threshold(int64_t expires, int64_t now);
/* Replaces every control character of s with '?', in place. */
void kw_mail_sanitize(char *s);
/* Sanitizes the user-controlled texts of a due token, in place. */
void kw_mail_sanitize_due(struct kw_notify_due *token);
/* A bare address that can go into an envelope and a header: one '@' with text on both
 * sides, no blanks, controls or specials, at most KW_EMAIL_MAX bytes. */
bool kw_mail_plain_address(const char *address);
/* Adds a recipient, once per address: a second entry for the same address only marks it as
 * the issuer's when it is. An empty address adds nothing (0); an unusable one adds nothing
 * and returns -EINVAL (the caller says so). Aborts when out of memory. */
int kw_mail_recipients_add(struct kw_mail_recipients *list, const char *email, const char *login,
			   bool is_issuer);
void kw_mail_recipients_free(struct kw_mail_recipients *list);
/* s defanged ("://" -> "[:]//", "www." -> "www[.]" in any case); cut short to fit size. At
 * most doubles the length: KW_MAIL_DEFANGED_SIZE(max) always fits. */
#define KW_MAIL_DEFANGED_SIZE(max) (2 * (max) + 1)
void kw_mail_defang(char *out, size_t size, const char *s);
/* The Message-ID, the same for every attempt of one (token, threshold, recipient): a
 * duplicate shows up once in most mail programs, and the id can be looked up in a mail
 * server's log. */
void kw_mail_message_id(char *buf, size_t size, const char *domain, uint64_t token_id,
			int threshold, const char *recipient);
/* The whole mail (headers and body, CRLF line ends) into buf: its length, or -ENOSPC when it
 * does not fit. from_header is [notify] from as configured, domain its address's domain;
 * token is sanitized (kw_mail_sanitize_due). */
int kw_mail_compose(char *buf, size_t size, const char *from_header, const char *domain,
		    const struct kw_notify_due *token, int threshold,
		    const struct kw_mail_recipient *rcpt, int64_t now);

#endif
