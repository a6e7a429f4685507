/* smtp.h: the transport: one mail to one recipient over SMTP (libcurl), with the waits of
 * [notify] timeout. The only part of keywarden that links libcurl.
 *
 * The outcome tells apart a mail that was surely not delivered (FAILED: the next run sends it)
 * from one whose whole message went out but whose final reply did not come (UNCONFIRMED: the
 * server may have it). [notify] timeout limits the exchange up to the end of the message;
 * the final reply then has a wait of its own (final_wait). Not thread-safe. */
#ifndef KW_NOTIFY_SMTP_H
#define KW_NOTIFY_SMTP_H

#include <stdbool.h>
#include <stddef.h>

#include "settings.h"

struct kw_smtp;

enum kw_smtp_outcome {
	KW_SMTP_DELIVERED,
	KW_SMTP_FAILED,      /* not delivered: the next run tries again */
	KW_SMTP_UNCONFIRMED, /* the whole message went out, its final reply did not: maybe
			      * delivered */
};

/* Sets up a connection handle for settings (which must outlive it); -ENOMEM. Free it with
 * kw_smtp_free(). */
int kw_smtp_open(const struct kw_notify_settings *settings, struct kw_smtp **smtp_r);
void kw_smtp_free(struct kw_smtp **smtp);
/* Sends mail (len bytes, CRLF lines, headers included) to rcpt, a plain address. Unless
 * DELIVERED, error_r says why (valid until the next call) and fatal_r whether no later mail
 * of this run can succeed either (server down, login refused, ...). */
enum kw_smtp_outcome kw_smtp_send(struct kw_smtp *smtp, const char *rcpt, const char *mail,
				  size_t len, const char **error_r, bool *fatal_r);

#endif
