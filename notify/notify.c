/* notify.c: keywarden-notify, the token expiry emails: one run sends the mails due now, over
 * SMTP, and records them (keywarden-notify(8); started hourly by keywarden-notify.timer).
 *
 * Which mails: for every token that validates (not deleted, not expired, issuer enabled) and
 * expires within 7 days, one "7-day" mail per recipient; within 1 day, one "1-day" mail
 * instead (when both are due because the timer was down, only the 1-day mail goes out, and
 * the 7-day one is never sent afterwards). Recipients: the issuer and every enabled
 * Administrator of the token's account, each only with an email address and expiry emails
 * on; one mail per distinct address. Recipients never include a revoked SSO user, not as the
 * issuer, not as an Administrator. The token itself stays valid (SSO revocation does not
 * revoke API tokens), so its Administrators still get the mail. (The store's
 * kw_store_notify_due() and kw_store_notify_admins() hold these rules.)
 *
 * The guarantee: AT-LEAST-ONCE per (token, threshold, recipient), with a bound. A mail is
 * recorded as sent, with its audit event, in one transaction *after* the server accepted it
 * (its final 250 after the end of DATA); nothing is recorded before, so a failed or
 * interrupted delivery is retried by the next run. A mail is sent more than once when (a)
 * the process dies, or the database refuses the write, between the server's acceptance and
 * the commit, or (b) the exchange fails after the whole message went out — no final reply
 * within its wait, or the connection broke while waiting for it — when the server may well
 * have delivered it. The final reply has a wait of its own, longer than the rest of the
 * exchange, and case (b) is recorded as an unconfirmed attempt (audit event
 * notify.unconfirmed); after MAX_UNCONFIRMED of them the mail is not sent again and a warning
 * names its Message-ID. So a mail goes out at most MAX_UNCONFIRMED times unless (a) happens.
 * We chose this over claiming rows before sending (at-most-once) because a lost warning lets
 * a production token lapse unnoticed, while a rare duplicate costs a reader a second look; a
 * duplicate also carries the same Message-ID, so most mail programs show it once. Concurrent
 * runs are serialised by an exclusive lock on a file next to the database, so two runs never
 * send the same mail; within a run, each mail's ledger (and its token) is re-read right
 * before it is sent.
 *
 * The parts: settings.c ([notify] and the password file), the store (the ledger), mail.c
 * (what a mail says, pure) and smtp.c (the transport). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "mail.h"
#include "settings.h"
#include "smtp.h"
#include "store.h"
#include "timeutil.h"

#define PROGRAM "keywarden-notify"
/* The actor of the audit events. */
#define NOTIFY_ACTOR "keywarden-notify"
#define DAY 86400
/* journald MESSAGE_IDs of this program's lines: stable, SIEM rules match on them. */
#define MSGID_SENT "3f0c2a7e9d1b4e6f8a5c7b2d1e0f9a84"
#define MSGID_FAILED "b82e6d4c1a9f47e3905d3c6a2f1e8b75"
/* Given up: MAX_UNCONFIRMED unconfirmed attempts of one mail, it is not sent again. */
#define MSGID_UNCONFIRMED "719aca8c3c744d8f92899a34961b32fd"
#define MAX_UNCONFIRMED 3

/* Exit codes: the numbers keywarden(1) uses for the same outcomes, so that `keywarden notify
 * run`, which runs this program, keeps its contract. */
enum notify_exit {
	EXIT_OK = 0,
	EXIT_FAILED = 1, /* a mail failed or was unconfirmed, or a database error */
	EXIT_USAGE = 2,
	EXIT_STATE = 8, /* [notify], the config, the database or the lock unusable */
};

static const char usage_text[] =
	"usage: " PROGRAM " [--state-dir DIR | -c FILE] [--dry-run] [--account NAME]\n"
	"\n"
	"Sends the token expiry emails due now, once each (see keywarden-notify(8)).\n"
	"  --dry-run        print the mails that would be sent; send and record nothing\n"
	"  --account NAME   only the tokens of this account\n";

struct run {
	struct kw_store *store;
	const struct kw_notify_settings *settings;
	struct kw_smtp *smtp; /* NULL in a dry run */
	bool dry_run, stop;
	int64_t now;
	unsigned sent, failed, already, planned, gave_up;
	char *mail; /* KW_MAIL_MAX bytes, allocated on first use */
};

struct due_list {
	struct kw_notify_due *rows;
	size_t n, cap;
};

static int add_due(const struct kw_notify_due *token, void *ctx)
{
	struct due_list *l = ctx;

	if (l->n == l->cap) {
		size_t cap = l->cap == 0 ? 16 : l->cap * 2;
		struct kw_notify_due *grown = realloc(l->rows, cap * sizeof(*grown));

		if (grown == NULL)
			abort();
		l->rows = grown;
		l->cap = cap;
	}
	l->rows[l->n] = *token;
	kw_mail_sanitize_due(&l->rows[l->n]);
	l->n++;
	return 0;
}

static void add_recipient(struct kw_mail_recipients *list, const char *email, const char *login,
			  bool is_issuer)
{
	if (kw_mail_recipients_add(list, email, login, is_issuer) < 0)
		kw_warning("user '%s' has an unusable email address: no expiry mail for them",
			   login);
}

static int add_admin(const char *login, const char *email, void *ctx)
{
	add_recipient(ctx, email, login, false);
	return 0;
}

static int lock_run(const struct kw_config *cfg, int *fd_r)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s.notify-lock", kw_config_database(cfg));
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, PROGRAM ": cannot open the lock file %s: %s\n", path,
			strerror(errno));
		return -errno;
	}
	/* Waits for a concurrent run: when it is done, its mails are recorded and skipped. */
	if (flock(fd, LOCK_EX) < 0) {
		fprintf(stderr, PROGRAM ": cannot lock %s: %s\n", path, strerror(errno));
		close(fd);
		return -errno;
	}
	*fd_r = fd;
	return 0;
}

/* Records an unconfirmed attempt and logs it: an error while the mail will be sent again, a
 * warning naming its Message-ID when it will not. */
static void report_unconfirmed(struct run *run, const struct kw_notify_mail *m, const char *reason,
			       bool fatal)
{
	char msgid[KW_MAIL_MSGID_MAX];
	const char *error = NULL;
	int attempts = 0;
	int ret = kw_store_notify_record_unconfirmed(run->store, NOTIFY_ACTOR, m, kw_now(), reason,
						     MAX_UNCONFIRMED, &attempts, &error);

	kw_mail_message_id(msgid, sizeof(msgid), run->settings->domain, m->token_id, m->threshold,
			   m->recipient);
	if (ret < 0)
		kw_log_id(KW_LOG_ERROR, MSGID_FAILED,
			  "token %llu: %d-day expiry mail to %s, Message-ID %s, unconfirmed (%s) "
			  "and the attempt not recorded (%s): it will be sent again",
			  (unsigned long long)m->token_id, m->threshold, m->recipient, msgid,
			  reason, error);
	else if (attempts >= MAX_UNCONFIRMED)
		kw_log_id(KW_LOG_WARNING, MSGID_UNCONFIRMED,
			  "token %llu: %d-day expiry mail to %s, Message-ID %s, sent %d times "
			  "without the server confirming it (last: %s); it may have been "
			  "delivered: not sending it again",
			  (unsigned long long)m->token_id, m->threshold, m->recipient, msgid,
			  attempts, reason);
	else
		kw_log_id(KW_LOG_ERROR, MSGID_FAILED,
			  "token %llu: %d-day expiry mail to %s, Message-ID %s, unconfirmed: %s; "
			  "it may have been delivered, the next run sends it again (attempt %d "
			  "of %d)%s",
			  (unsigned long long)m->token_id, m->threshold, m->recipient, msgid,
			  reason, attempts, MAX_UNCONFIRMED, fatal ? "; giving up this run" : "");
}

/* One mail: checked against the ledger right before it is sent, then sent and recorded.
 * Negative only on a database error that ends the run. */
static int notify_one(struct run *run, const struct kw_notify_due *t, int threshold,
		      const struct kw_mail_recipient *r, const char **error_r)
{
	const struct kw_notify_mail m = {
		.token_id = t->token_id,
		.threshold = threshold,
		.recipient = r->email,
		.login = r->login,
		.is_issuer = r->is_issuer,
		.expires = t->expires,
	};
	struct kw_notify_ledger ledger;
	enum kw_smtp_outcome how;
	const char *reason = NULL, *error = NULL;
	bool fatal = false;
	int ret, len;

	if ((ret = kw_store_notify_ledger(run->store, &m, run->now, &ledger, error_r)) < 0)
		return ret;
	if (!ledger.token_valid || ledger.sent) {
		run->already++;
		return 0;
	}
	if (ledger.attempts >= MAX_UNCONFIRMED) {
		/* Logged (warning) when the last attempt was made. */
		run->gave_up++;
		return 0;
	}
	if (run->dry_run) {
		printf("would send: token %llu %d-day notice to %s (%s)",
		       (unsigned long long)t->token_id, threshold, r->email,
		       r->is_issuer ? "issuer" : "administrator");
		if (ledger.attempts > 0)
			printf(", after %d unconfirmed attempt%s", ledger.attempts,
			       ledger.attempts == 1 ? "" : "s");
		putchar('\n');
		run->planned++;
		return 0;
	}
	if (run->mail == NULL && (run->mail = malloc(KW_MAIL_MAX)) == NULL)
		abort();
	len = kw_mail_compose(run->mail, KW_MAIL_MAX, run->settings->from_header,
			      run->settings->domain, t, threshold, r, run->now);
	if (len < 0) {
		kw_error("token %llu: the mail does not fit in %d bytes",
			 (unsigned long long)t->token_id, KW_MAIL_MAX);
		run->failed++;
		return 0;
	}
	how = kw_smtp_send(run->smtp, r->email, run->mail, (size_t)len, &reason, &fatal);
	if (how == KW_SMTP_FAILED) {
		/* Not recorded: the next run tries again. */
		kw_log_id(KW_LOG_ERROR, MSGID_FAILED,
			  "token %llu: %d-day expiry mail to %s not delivered: %s%s",
			  (unsigned long long)t->token_id, threshold, r->email, reason,
			  fatal ? "; giving up this run" : "");
		run->failed++;
		run->stop = fatal;
		return 0;
	}
	if (how == KW_SMTP_UNCONFIRMED) {
		run->failed++;
		run->stop = fatal;
		report_unconfirmed(run, &m, reason, fatal);
		return 0;
	}
	if (kw_store_notify_record_sent(run->store, NOTIFY_ACTOR, &m, kw_now(), &error) < 0) {
		/* Delivered but not recorded: the next run will send it again (at least once). */
		kw_log_id(KW_LOG_ERROR, MSGID_FAILED,
			  "token %llu: %d-day expiry mail to %s delivered but not recorded (%s): "
			  "it will be sent again",
			  (unsigned long long)t->token_id, threshold, r->email, error);
		run->failed++;
		return 0;
	}
	kw_log_id(KW_LOG_NOTICE, MSGID_SENT, "token %llu: %d-day expiry mail sent to %s",
		  (unsigned long long)t->token_id, threshold, r->email);
	run->sent++;
	return 0;
}

static int notify_token(struct run *run, const struct kw_notify_due *t, const char **error_r)
{
	struct kw_mail_recipients rcpts = { 0 };
	int threshold = kw_mail_threshold(t->expires, run->now);
	int ret;

	if (t->issuer_wants)
		add_recipient(&rcpts, t->issuer_email, t->issuer, true);
	ret = kw_store_notify_admins(run->store, t->account_id, add_admin, &rcpts, error_r);
	for (size_t i = 0; ret == 0 && i < rcpts.n && !run->stop; i++)
		ret = notify_one(run, t, threshold, &rcpts.list[i], error_r);
	kw_mail_recipients_free(&rcpts);
	return ret;
}

/* The run, once settings and the store are ready; returns an exit code. */
static int notify_run(struct run *run, const char *account)
{
	struct due_list due = { 0 };
	const char *error = NULL;
	int ret;

	run->now = kw_now();
	ret = kw_store_notify_due(run->store, account, run->now, 7 * DAY, add_due, &due, &error);
	if (ret == 0 && !run->dry_run && due.n > 0 && kw_smtp_open(run->settings, &run->smtp) < 0) {
		fprintf(stderr, PROGRAM ": cannot set up libcurl\n");
		free(due.rows);
		return EXIT_FAILED;
	}
	for (size_t i = 0; ret == 0 && i < due.n && !run->stop; i++)
		ret = notify_token(run, &due.rows[i], &error);
	free(due.rows);
	if (ret < 0) {
		fprintf(stderr, PROGRAM ": %s\n", error);
		return EXIT_FAILED;
	}
	if (run->dry_run)
		fprintf(stderr,
			PROGRAM ": dry run: %u mail%s would be sent, %u already sent, %u given up "
				"unconfirmed\n",
			run->planned, run->planned == 1 ? "" : "s", run->already, run->gave_up);
	else
		fprintf(stderr,
			PROGRAM ": %u sent, %u failed, %u already sent, %u given up "
				"unconfirmed%s\n",
			run->sent, run->failed, run->already, run->gave_up,
			run->failed > 0 ? " (failed mails are retried on the next run)" : "");
	return run->failed > 0 ? EXIT_FAILED : EXIT_OK;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "state-dir", required_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'c' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "account", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct kw_config_options opts = { 0 };
	struct kw_notify_settings settings;
	struct kw_config *cfg = NULL;
	struct run run = { 0 };
	const char *account = NULL, *error = NULL;
	int c, ret, lock_fd = -1;

	kw_log_init(PROGRAM, KW_LOG_WARNING, false);
	while ((c = getopt_long(argc, argv, "c:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			opts.state_dir = optarg;
			break;
		case 'c':
			opts.config_file = optarg;
			break;
		case 'n':
			run.dry_run = true;
			break;
		case 'a':
			account = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return EXIT_OK;
		case 'V':
			printf(PROGRAM " %s\n", PACKAGE_VERSION);
			return EXIT_OK;
		default:
			fputs(usage_text, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, PROGRAM ": unexpected argument '%s'\n%s", argv[optind], usage_text);
		return EXIT_USAGE;
	}
	memset(&settings, 0, sizeof(settings));
	if (kw_config_load(&opts, &cfg, &error) < 0 ||
	    kw_notify_settings_load(cfg, run.dry_run, &settings, &error) < 0) {
		fprintf(stderr, PROGRAM ": %s\n", error);
		ret = EXIT_STATE;
		goto out;
	}
	if (kw_store_open(kw_config_database(cfg), 0, &run.store, &error) < 0) {
		fprintf(stderr, PROGRAM ": %s\n", error);
		ret = EXIT_STATE;
		goto out;
	}
	/* One run at a time: on one host a lock file beside the SQLite database; across the
	 * hosts of a PostgreSQL store, a lock on the server held by this run's connection. */
	if (!run.dry_run && kw_store_url_is_pg(kw_config_database(cfg))) {
		if (kw_store_notify_lock(run.store, &error) < 0) {
			fprintf(stderr, PROGRAM ": %s\n", error);
			ret = EXIT_STATE;
			goto out;
		}
	} else if (!run.dry_run && lock_run(cfg, &lock_fd) < 0) {
		ret = EXIT_STATE;
		goto out;
	}
	run.settings = &settings;
	ret = notify_run(&run, account);
out:
	kw_smtp_free(&run.smtp);
	kw_notify_settings_wipe(&settings);
	free(run.mail);
	if (lock_fd >= 0)
		close(lock_fd); /* releases the lock */
	kw_store_free(&run.store);
	kw_config_free(&cfg);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, PROGRAM ": cannot write to standard output\n");
		if (ret == EXIT_OK)
			ret = EXIT_FAILED;
	}
	return ret;
}
