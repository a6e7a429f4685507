/* smtp.c: SMTP over libcurl (see smtp.h). */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "smtp.h"
#include "timeutil.h"

struct kw_smtp {
	CURL *curl;
	const struct kw_notify_settings *settings;
	char errbuf[CURL_ERROR_SIZE + 1];
};

struct upload {
	const char *data;
	size_t len, pos;
	int64_t deadline; /* monotonic ms: [notify] timeout, until the message is all read */
	bool too_slow;    /* the progress callback ended the exchange at the deadline */
};

static size_t read_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct upload *u = userdata;
	size_t room = size * nmemb, left = u->len - u->pos;

	if (left > room)
		left = room;
	memcpy(ptr, u->data + u->pos, left);
	u->pos += left;
	return left;
}

/* [notify] timeout limits the exchange up to the end of the message; aborting here (before
 * the message is complete) makes libcurl drop the connection without ending DATA, so the
 * server discards what it got. After that only the final reply's wait applies. */
static int progress_cb(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct upload *u = userdata;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	if (u->pos < u->len && kw_monotonic_ms() > u->deadline) {
		u->too_slow = true;
		return 1;
	}
	return 0;
}

enum kw_smtp_outcome kw_smtp_send(struct kw_smtp *smtp, const char *rcpt, const char *mail,
				  size_t len, const char **error_r, bool *fatal)
{
	const struct kw_notify_settings *c = smtp->settings;
	CURL *curl = smtp->curl;
	char *errbuf = smtp->errbuf;
	struct curl_slist *rcpts = NULL;
	struct upload u = { mail, len, 0, kw_monotonic_ms() + c->timeout * 1000, false };
	char to[KW_EMAIL_MAX + 3];
	CURLcode rc;

	snprintf(to, sizeof(to), "<%s>", rcpt);
	rcpts = curl_slist_append(rcpts, to);
	if (rcpts == NULL)
		abort();
	errbuf[0] = '\0';
	curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpts);
	curl_easy_setopt(curl, CURLOPT_READDATA, &u);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &u);
	curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
	rc = curl_easy_perform(curl);
	curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, NULL);
	curl_easy_setopt(curl, CURLOPT_READDATA, NULL);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, NULL);
	curl_slist_free_all(rcpts);
	*error_r = errbuf;
	*fatal = false;
	if (rc == CURLE_OK)
		return KW_SMTP_DELIVERED;
	if (rc == CURLE_ABORTED_BY_CALLBACK && u.too_slow) {
		snprintf(errbuf, CURL_ERROR_SIZE,
			 "the message was not through within [notify] timeout (%ld s)", c->timeout);
		*fatal = true;
		return KW_SMTP_FAILED;
	}
	if (errbuf[0] == '\0')
		snprintf(errbuf, CURL_ERROR_SIZE, "%s", curl_easy_strerror(rc));
	*fatal = rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
		 rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_LOGIN_DENIED ||
		 rc == CURLE_USE_SSL_FAILED || rc == CURLE_SSL_CONNECT_ERROR ||
		 rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT;
	/* The whole message was handed over (DATA is only read after the server's 354), and the
	 * exchange broke while waiting for the final reply: the server may have taken it. */
	if (u.pos == u.len && (rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_RECV_ERROR))
		return KW_SMTP_UNCONFIRMED;
	return KW_SMTP_FAILED;
}

int kw_smtp_open(const struct kw_notify_settings *c, struct kw_smtp **smtp_r)
{
	struct kw_smtp *smtp;
	CURL *curl;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -ENOMEM;
	if ((curl = curl_easy_init()) == NULL) {
		curl_global_cleanup();
		return -ENOMEM;
	}
	if ((smtp = calloc(1, sizeof(*smtp))) == NULL)
		abort();
	smtp->curl = curl;
	smtp->settings = c;
	curl_easy_setopt(curl, CURLOPT_URL, c->url);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
#else
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS, (long)(CURLPROTO_SMTP | CURLPROTO_SMTPS));
#endif
	curl_easy_setopt(curl, CURLOPT_MAIL_FROM, c->from_addr);
	curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	/* Timeouts: up to the end of the message, [notify] timeout (progress_cb); every reply,
	 * the final one included, may take final_wait; the whole exchange at most the sum. */
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, progress_cb);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, c->timeout + c->final_wait);
	curl_easy_setopt(curl, CURLOPT_SERVER_RESPONSE_TIMEOUT, c->final_wait);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, c->timeout < 10 ? c->timeout : 10L);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, smtp->errbuf);
	if (c->starttls)
		curl_easy_setopt(curl, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	if (c->username != NULL) {
		curl_easy_setopt(curl, CURLOPT_USERNAME, c->username);
		curl_easy_setopt(curl, CURLOPT_PASSWORD, c->password);
	}
	*smtp_r = smtp;
	return 0;
}

void kw_smtp_free(struct kw_smtp **smtpp)
{
	struct kw_smtp *smtp = *smtpp;

	if (smtp == NULL)
		return;
	curl_easy_cleanup(smtp->curl);
	curl_global_cleanup();
	free(smtp);
	*smtpp = NULL;
}
