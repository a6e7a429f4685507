/* settings.c: [notify] of keywarden.conf and the SMTP password file (see settings.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "mail.h"
#include "secret.h"
#include "settings.h"

int kw_notify_password_read(const char *path, char *out, size_t size, const char **error_r)
{
	const char *why = NULL;
	size_t n = 0;
	int ret = kw_secret_file_read(path, out, size - 1, &n, &why);

	if (ret == -EFBIG)
		return kw_error_fail(error_r, ret,
				     "[notify] password_file %s: longer than %zu bytes", path,
				     size - 2);
	if (ret == -EPERM)
		return kw_error_fail(
			error_r, ret,
			"[notify] password_file %s %s: it must belong to this user (or root) "
			"and be readable by it only (chmod 600)",
			path, why);
	if (ret < 0)
		return kw_error_fail(error_r, ret, "[notify] password_file %s %s", path, why);
	out[n] = '\0';
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		out[--n] = '\0';
	return 0;
}

/* from: "addr" or "Display Name <addr>"; fills from_addr and domain. */
static int parse_from(struct kw_notify_settings *s, const char *from, const char **error_r)
{
	const char *lt = strchr(from, '<'), *gt = lt != NULL ? strchr(lt, '>') : NULL, *at;
	char bare[KW_EMAIL_MAX + 1];
	size_t len;

	if (lt != NULL && (gt == NULL || gt[1] != '\0'))
		return kw_error_fail(error_r, -EINVAL, "[notify] from: '%s' is not an address",
				     from);
	len = lt != NULL ? (size_t)(gt - lt - 1) : strlen(from);
	if (len > KW_EMAIL_MAX)
		return kw_error_fail(error_r, -EINVAL, "[notify] from is too long");
	snprintf(s->from_addr, sizeof(s->from_addr), "<%.*s>", (int)len,
		 lt != NULL ? lt + 1 : from);
	snprintf(bare, sizeof(bare), "%.*s", (int)len, lt != NULL ? lt + 1 : from);
	if (!kw_mail_plain_address(bare) || strpbrk(from, "\r\n") != NULL)
		return kw_error_fail(error_r, -EINVAL, "[notify] from: '%s' is not an address",
				     from);
	at = strchr(bare, '@');
	snprintf(s->domain, sizeof(s->domain), "%s", at + 1);
	s->from_header = from;
	return 0;
}

int kw_notify_settings_load(const struct kw_config *cfg, bool dry_run, struct kw_notify_settings *s,
			    const char **error_r)
{
	const char *from;
	int ret;

	memset(s, 0, sizeof(*s));
	s->url = kw_config_get(cfg, "notify", "smtp_url");
	from = kw_config_get(cfg, "notify", "from");
	s->username = kw_config_get(cfg, "notify", "username");
	s->password_file = kw_config_get(cfg, "notify", "password_file");
	s->starttls = kw_config_bool(cfg, "notify", "starttls");
	s->timeout = (long)kw_config_uint(cfg, "notify", "timeout");
	/* The final reply after the end of DATA gets a wait of its own, at least a minute: a
	 * server that is slow to answer it has probably taken the mail already, and every
	 * give-up there is an unconfirmed attempt that a later run may send again. */
	s->final_wait =
		s->timeout > KW_NOTIFY_FINAL_REPLY_MIN ? s->timeout : KW_NOTIFY_FINAL_REPLY_MIN;
	if (dry_run && from == NULL)
		from = "keywarden@localhost";
	if (!dry_run && (s->url == NULL || from == NULL))
		return kw_error_fail(
			error_r, -EINVAL,
			"notify needs [notify] smtp_url and [notify] from in keywarden.conf "
			"(see keywarden.conf(5))");
	if (s->url != NULL && strncasecmp(s->url, "smtp://", 7) != 0 &&
	    strncasecmp(s->url, "smtps://", 8) != 0)
		return kw_error_fail(error_r, -EINVAL,
				     "[notify] smtp_url must start with smtp:// or smtps://");
	if ((ret = parse_from(s, from, error_r)) < 0)
		return ret;
	/* Credentials only ever go over TLS: libcurl would send AUTH over plain TCP, the password
	 * in clear on the wire. Checked in a dry run too, where smtp_url may be missing (then
	 * only starttls = yes satisfies the rule). */
	if ((s->username != NULL || s->password_file != NULL) && !s->starttls &&
	    (s->url == NULL || strncasecmp(s->url, "smtps://", 8) != 0))
		return kw_error_fail(
			error_r, -EINVAL,
			"[notify] %s needs TLS: an smtps:// smtp_url or starttls = yes",
			s->password_file != NULL ? "password_file" : "username");
	if (s->username != NULL && s->password_file == NULL)
		return kw_error_fail(error_r, -EINVAL,
				     "[notify] username needs [notify] password_file");
	if (s->password_file != NULL && s->username == NULL)
		return kw_error_fail(error_r, -EINVAL,
				     "[notify] password_file needs [notify] username");
	if (s->password_file != NULL && !dry_run)
		return kw_notify_password_read(s->password_file, s->password, sizeof(s->password),
					       error_r);
	return 0;
}

void kw_notify_settings_wipe(struct kw_notify_settings *s)
{
	explicit_bzero(s->password, sizeof(s->password));
}
