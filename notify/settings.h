/* settings.h: the [notify] section of keywarden.conf (see keywarden.conf(5)), checked once,
 * and the SMTP password read from its own file.
 *
 * The rules: smtp_url is smtp:// or smtps://; from is "addr" or "Display Name <addr>";
 * username and password_file go together, and only over TLS (an smtps:// URL or starttls =
 * yes), since libcurl would otherwise send AUTH in clear. A dry run needs neither smtp_url nor
 * from, and does not read the password, but the credential rules still apply. */
#ifndef KW_NOTIFY_SETTINGS_H
#define KW_NOTIFY_SETTINGS_H

#include <stdbool.h>

#include "conf.h"
#include "store.h"

#define KW_NOTIFY_PASSWORD_MAX 1024
/* The least wait for the server's final reply after the end of the message, in seconds. */
#define KW_NOTIFY_FINAL_REPLY_MIN 60

/* Strings point into the struct kw_config they were loaded from: keep it while in use. */
struct kw_notify_settings {
	const char *url;                  /* NULL only in a dry run */
	const char *from_header;          /* as configured: "addr" or "Name <addr>" */
	char from_addr[KW_EMAIL_MAX + 3]; /* "<addr>" for MAIL FROM */
	char domain[KW_EMAIL_MAX + 1];    /* for the Message-ID */
	bool starttls;
	const char *username;
	const char *password_file;
	char password[KW_NOTIFY_PASSWORD_MAX + 1]; /* secret: wiped by kw_notify_settings_wipe() */
	long timeout;    /* [notify] timeout: everything up to the end of the message, seconds */
	long final_wait; /* the wait for the final reply after the end of the message, seconds */
};

/* Loads and checks [notify]; reads the password unless dry_run. -EINVAL with error_r saying
 * what is wrong (valid until the next call). */
int kw_notify_settings_load(const struct kw_config *cfg, bool dry_run,
			    struct kw_notify_settings *settings_r, const char **error_r);
/* Wipes the password. */
void kw_notify_settings_wipe(struct kw_notify_settings *settings);
/* The password file's first line, from a regular file of this user (or root) that no one else
 * may read; the line end is dropped. -EINVAL/-errno with error_r. */
int kw_notify_password_read(const char *path, char *out, size_t size, const char **error_r);

#endif
