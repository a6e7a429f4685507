/* mail.c: the expiry mail's recipients and text (see mail.h). Pure: every input is an
 * argument, so the unit test pins the output. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mail.h"
#include "text.h"
#include "timeutil.h"

#define DAY 86400

int kw_mail_threshold(int64_t expires, int64_t now)
{
	return expires - now <= DAY ? 1 : 7;
}

void kw_mail_sanitize(char *s)
{
	for (unsigned char *p = (unsigned char *)s; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			*p = '?';
	}
}

void kw_mail_sanitize_due(struct kw_notify_due *t)
{
	kw_mail_sanitize(t->name);
	kw_mail_sanitize(t->role);
	kw_mail_sanitize(t->account);
	kw_mail_sanitize(t->issuer);
}

bool kw_mail_plain_address(const char *a)
{
	const char *at = strchr(a, '@');

	if (at == NULL || at == a || at[1] == '\0' || strlen(a) > KW_EMAIL_MAX)
		return false;
	for (const unsigned char *p = (const unsigned char *)a; *p != '\0'; p++) {
		if (*p <= 0x20 || *p == 0x7f || strchr("<>,;\"\\()[]", *p) != NULL)
			return false;
	}
	return true;
}

int kw_mail_recipients_add(struct kw_mail_recipients *l, const char *email, const char *login,
			   bool is_issuer)
{
	struct kw_mail_recipient *r;

	if (email[0] == '\0')
		return 0;
	for (size_t i = 0; i < l->n; i++) {
		if (strcasecmp(l->list[i].email, email) == 0) {
			l->list[i].is_issuer |= is_issuer;
			return 0;
		}
	}
	if (!kw_mail_plain_address(email))
		return -EINVAL;
	if (l->n == l->cap) {
		size_t cap = l->cap == 0 ? 8 : l->cap * 2;
		struct kw_mail_recipient *grown = realloc(l->list, cap * sizeof(*grown));

		if (grown == NULL)
			abort();
		l->list = grown;
		l->cap = cap;
	}
	r = &l->list[l->n++];
	snprintf(r->email, sizeof(r->email), "%s", email);
	snprintf(r->login, sizeof(r->login), "%s", login);
	kw_mail_sanitize(r->login);
	r->is_issuer = is_issuer;
	return 0;
}

void kw_mail_recipients_free(struct kw_mail_recipients *l)
{
	free(l->list);
	memset(l, 0, sizeof(*l));
}

void kw_mail_defang(char *out, size_t size, const char *s)
{
	size_t o = 0;

	if (size == 0)
		return;
	while (*s != '\0') {
		char piece[8];
		size_t skip;

		if (strncmp(s, "://", 3) == 0) {
			snprintf(piece, sizeof(piece), "[:]//");
			skip = 3;
		} else if (strncasecmp(s, "www.", 4) == 0) {
			snprintf(piece, sizeof(piece), "%.3s[.]", s);
			skip = 4;
		} else {
			piece[0] = *s;
			piece[1] = '\0';
			skip = 1;
		}
		if (o + strlen(piece) >= size)
			break;
		memcpy(out + o, piece, strlen(piece));
		o += strlen(piece);
		s += skip;
	}
	out[o] = '\0';
}

/* FNV-1a over the address in lower case: stable across runs and versions. */
static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)(*s >= 'A' && *s <= 'Z' ? *s + 32 : *s);
		h *= 0x100000001b3ULL;
	}
	return h;
}

void kw_mail_message_id(char *buf, size_t size, const char *domain, uint64_t token_id,
			int threshold, const char *recipient)
{
	snprintf(buf, size, "<keywarden.%llu.%d.%016llx@%s>", (unsigned long long)token_id,
		 threshold, (unsigned long long)fnv1a(recipient), domain);
}

int kw_mail_compose(char *buf, size_t size, const char *from_header, const char *domain,
		    const struct kw_notify_due *t, int threshold, const struct kw_mail_recipient *r,
		    int64_t now)
{
	char date[64], expires[KW_TIME_TEXT_MAX], new_exp[16], msgid[KW_MAIL_MSGID_MAX];
	/* user-controlled text, defanged (d_), and shell-quoted for the commands (q_) */
	char d_name[KW_MAIL_DEFANGED_SIZE(KW_TOKEN_NAME_MAX)], q_name[sizeof(d_name) * 4 + 3];
	char d_role[KW_MAIL_DEFANGED_SIZE(KW_ROLE_MAX)], q_role[sizeof(d_role) * 4 + 3];
	char d_issuer[KW_MAIL_DEFANGED_SIZE(KW_LOGIN_MAX)], q_issuer[sizeof(d_issuer) * 4 + 3];
	char d_login[KW_MAIL_DEFANGED_SIZE(KW_LOGIN_MAX)], q_login[sizeof(d_login) * 4 + 3];
	char d_account[KW_MAIL_DEFANGED_SIZE(KW_ACCOUNT_MAX)];
	time_t tt = (time_t)now, nt;
	struct tm tm;
	int64_t lifetime = t->expires - t->created;
	int n;

	gmtime_r(&tt, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	kw_time_format(t->expires, expires);
	/* Suggest a replacement that lives as long as the old one did (at least 30 days). */
	if (lifetime < 30 * DAY)
		lifetime = 30 * DAY;
	nt = (time_t)(t->expires + lifetime);
	gmtime_r(&nt, &tm);
	strftime(new_exp, sizeof(new_exp), "%Y-%m-%d", &tm);
	kw_mail_message_id(msgid, sizeof(msgid), domain, t->token_id, threshold, r->email);
	kw_mail_defang(d_name, sizeof(d_name), t->name);
	kw_mail_defang(d_role, sizeof(d_role), t->role);
	kw_mail_defang(d_issuer, sizeof(d_issuer), t->issuer);
	kw_mail_defang(d_login, sizeof(d_login), r->login);
	kw_mail_defang(d_account, sizeof(d_account), t->account);
	kw_text_shell_quote(q_issuer, sizeof(q_issuer), d_issuer);
	kw_text_shell_quote(q_name, sizeof(q_name), d_name);
	kw_text_shell_quote(q_role, sizeof(q_role), d_role);
	kw_text_shell_quote(q_login, sizeof(q_login), d_login);
	n = snprintf(
		buf, size,
		"From: %s\r\n"
		"To: <%s>\r\n"
		"Subject: keywarden: API token %lld expires within %s\r\n"
		"Date: %s\r\n"
		"Message-ID: %s\r\n"
		"MIME-Version: 1.0\r\n"
		"Content-Type: text/plain; charset=utf-8\r\n"
		"Content-Transfer-Encoding: 8bit\r\n"
		"Auto-Submitted: auto-generated\r\n"
		"X-Keywarden-Token: %lld\r\n"
		"X-Keywarden-Threshold: %d\r\n"
		"\r\n"
		"The API token below expires within %s, on %s.\r\n"
		"From that moment on, every service that uses it will refuse it.\r\n"
		"\r\n"
		"  token id:   %lld\r\n"
		"  name:       %s\r\n"
		"  role:       %s\r\n"
		"  issued by:  %s\r\n"
		"  account:    %s\r\n"
		"  expires:    %s\r\n"
		"\r\n"
		"To replace it, the issuer runs on the keywarden host:\r\n"
		"\r\n"
		"  keywarden token create --as %s --name %s --role %s --expires %s\r\n"
		"\r\n"
		"puts the new token where the old one is used, and then deletes the old one:\r\n"
		"\r\n"
		"  keywarden token delete --as %s %lld\r\n"
		"\r\n"
		"This mail has no links on purpose: keywarden never sends any. Treat a mail "
		"about\r\n"
		"your tokens that asks you to click a link or to send a token as phishing.\r\n"
		"\r\n"
		"You receive it as %s. To stop these mails:\r\n"
		"  keywarden user set %s --expiry-emails off\r\n",
		from_header, r->email, (long long)t->token_id, threshold == 1 ? "1 day" : "7 days",
		date, msgid, (long long)t->token_id, threshold, threshold == 1 ? "1 day" : "7 days",
		expires, (long long)t->token_id, d_name, d_role, d_issuer, d_account, expires,
		q_issuer, q_name, q_role, new_exp, q_issuer, (long long)t->token_id,
		r->is_issuer ? "the token's issuer" : "an Administrator of its account", q_login);
	return n < 0 || (size_t)n >= size ? -ENOSPC : n;
}
