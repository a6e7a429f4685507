/* store_notify.c: the ledger of expiry emails (see store.h): which tokens are due, who of
 * their account takes the mails, and the record of delivered mails (notification_sent) and of
 * unconfirmed attempts (notification_attempt), each written with its audit event in one
 * transaction. Composing and sending the mails is notify/'s. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "jsonw.h"
#include "store.h"
#include "store_private.h"
#include "store_sql.h"
#include "timeutil.h"

/* The longest unconfirmed-attempt reason kept in an audit event. */
#define REASON_MAX 512

int kw_store_notify_due(struct kw_store *store, const char *account, int64_t now, int64_t within,
			kw_notify_due_cb *cb, void *ctx, const char **error_r)
{
	struct kw_db_stmt *st = kw_store_stmt(
		store,
		"SELECT t.id, t.account_id, t.expires, t.created, t.name, r.name, a.name, "
		"iu.login, coalesce(iu.email, ''), "
		/* a revoked SSO issuer can no longer act on the token: no mail to them */
		"iu.expiry_emails = 1 AND NOT " KW_SQL_REVOKED_SSO(
			"iu") " "
			      "FROM token t JOIN account a ON a.id = t.account_id "
			      "JOIN user iu ON iu.id = t.issuer_id JOIN role r ON r.id = t.role_id "
			      "WHERE " KW_SQL_TOKEN_VALID("t", "iu",
							  "?1") " AND t.expires IS NOT NULL "
								"AND t.expires <= ?1 + ?2 AND "
								"(CAST(?3 AS TEXT) IS NULL "
								"OR a.name = ?3) ORDER BY t.id");
	struct kw_notify_due t;
	int rc, ret;

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "notify");
	kw_db_bind_int64(st, 1, now);
	kw_db_bind_int64(st, 2, within);
	if (account != NULL)
		kw_db_bind_text(st, 3, account);
	while ((rc = kw_db_step(st)) == KW_DB_ROW) {
		memset(&t, 0, sizeof(t));
		t.token_id = (uint64_t)kw_db_column_int64(st, 0);
		t.account_id = kw_db_column_int64(st, 1);
		t.expires = kw_db_column_int64(st, 2);
		t.created = kw_db_column_int64(st, 3);
		kw_store_copy_text(t.name, sizeof(t.name), st, 4);
		kw_store_copy_text(t.role, sizeof(t.role), st, 5);
		kw_store_copy_text(t.account, sizeof(t.account), st, 6);
		kw_store_copy_text(t.issuer, sizeof(t.issuer), st, 7);
		kw_store_copy_text(t.issuer_email, sizeof(t.issuer_email), st, 8);
		t.issuer_wants = kw_db_column_int(st, 9) != 0;
		if ((ret = cb(&t, ctx)) < 0) {
			kw_db_reset(st);
			return ret;
		}
	}
	ret = rc == KW_DB_DONE ? 0 : kw_store_db_fail(store, error_r, "notify");
	kw_db_reset(st);
	return ret;
}

int kw_store_notify_admins(struct kw_store *store, int64_t account_id, kw_notify_admin_cb *cb,
			   void *ctx, const char **error_r)
{
	struct kw_db_stmt *st = kw_store_stmt(
		store,
		"SELECT u.login, u.email FROM user u JOIN role r ON r.id = u.role_id "
		"WHERE u.account_id = ?1 AND r.name = " KW_SQL_ADMIN_ROLE " "
		"AND " KW_SQL_USER_ENABLED("u") " AND u.expiry_emails = 1 "
						"AND NOT " KW_SQL_REVOKED_SSO(
							"u") " "
							     "AND u.email IS NOT NULL AND u.email "
							     "<> '' ORDER BY u.login");
	char login[KW_LOGIN_MAX + 1], email[KW_EMAIL_MAX + 1];
	int rc, ret;

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "notify");
	kw_db_bind_int64(st, 1, account_id);
	while ((rc = kw_db_step(st)) == KW_DB_ROW) {
		kw_store_copy_text(login, sizeof(login), st, 0);
		kw_store_copy_text(email, sizeof(email), st, 1);
		if ((ret = cb(login, email, ctx)) < 0) {
			kw_db_reset(st);
			return ret;
		}
	}
	ret = rc == KW_DB_DONE ? 0 : kw_store_db_fail(store, error_r, "notify");
	kw_db_reset(st);
	return ret;
}

int kw_store_notify_ledger(struct kw_store *store, const struct kw_notify_mail *mail, int64_t now,
			   struct kw_notify_ledger *ledger_r, const char **error_r)
{
	/* The token is re-read with the very condition that made it due: a token deleted, or
	 * whose issuer was disabled, since the run listed it gets no mail. */
	struct kw_db_stmt *st = kw_store_stmt(
		store,
		"SELECT (SELECT count(*) FROM token t JOIN user iu ON iu.id = t.issuer_id "
		"WHERE t.id = ?1 AND " KW_SQL_TOKEN_VALID(
			"t", "iu",
			"?4") "), "
			      "(SELECT count(*) FROM notification_sent WHERE token_id = ?1 AND "
			      "threshold = ?2 "
			      "AND recipient = ?3 COLLATE NOCASE), "
			      "(SELECT coalesce(max(attempts), 0) FROM notification_attempt WHERE "
			      "token_id = ?1 AND threshold = ?2 AND recipient = ?3 COLLATE "
			      "NOCASE)");
	int ret;

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "notify ledger");
	kw_db_bind_int64(st, 1, (int64_t)mail->token_id);
	kw_db_bind_int64(st, 2, mail->threshold);
	kw_db_bind_text(st, 3, mail->recipient);
	kw_db_bind_int64(st, 4, now);
	if (kw_db_step(st) == KW_DB_ROW) {
		ledger_r->token_valid = kw_db_column_int(st, 0) == 1;
		ledger_r->sent = kw_db_column_int(st, 1) != 0;
		ledger_r->attempts = kw_db_column_int(st, 2);
		ret = 0;
	} else {
		ret = kw_store_db_fail(store, error_r, "notify ledger");
	}
	kw_db_reset(st);
	return ret;
}

/* The details of notify.sent and notify.unconfirmed events. */
static void audit_details(char *buf, size_t size, const struct kw_notify_mail *mail,
			  const char *extra)
{
	char jemail[KW_EMAIL_MAX * 6 + 3], jlogin[KW_LOGIN_MAX * 6 + 3];
	char exp_text[KW_TIME_TEXT_MAX];

	kw_json_string_buf(jemail, sizeof(jemail), mail->recipient);
	kw_json_string_buf(jlogin, sizeof(jlogin), mail->login);
	kw_time_format(mail->expires, exp_text);
	snprintf(buf, size,
		 "{\"threshold_days\":%d,\"recipient\":%s,\"login\":%s,\"as\":\"%s\","
		 "\"expires\":\"%s\"%s}",
		 mail->threshold, jemail, jlogin, mail->is_issuer ? "issuer" : "administrator",
		 exp_text, extra);
}

int kw_store_notify_record_sent(struct kw_store *store, const char *actor,
				const struct kw_notify_mail *mail, int64_t when,
				const char **error_r)
{
	char details[4096], target[32];
	struct kw_db_stmt *st;
	int ret;

	if (kw_store_begin(store) < 0)
		return kw_store_db_fail(store, error_r, "cannot start a transaction");
	st = kw_store_stmt(store,
			   "INSERT INTO notification_sent (token_id, threshold, "
			   "recipient, sent) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING");
	if (st == NULL)
		goto dbfail;
	kw_db_bind_int64(st, 1, (int64_t)mail->token_id);
	kw_db_bind_int64(st, 2, mail->threshold);
	kw_db_bind_text(st, 3, mail->recipient);
	kw_db_bind_int64(st, 4, when);
	if (kw_db_step(st) != KW_DB_DONE)
		goto dbfail;
	kw_db_reset(st);
	audit_details(details, sizeof(details), mail, "");
	snprintf(target, sizeof(target), "token:%llu", (unsigned long long)mail->token_id);
	if (kw_audit_append(store, when, actor, "notify.sent", target, details) < 0 ||
	    kw_store_commit(store) < 0)
		goto dbfail;
	return 0;
dbfail:
	ret = kw_store_db_fail(store, error_r, "cannot record the mail");
	if (st != NULL)
		kw_db_reset(st);
	kw_store_rollback(store);
	return ret;
}

int kw_store_notify_record_unconfirmed(struct kw_store *store, const char *actor,
				       const struct kw_notify_mail *mail, int64_t when,
				       const char *reason, int max_attempts, int *attempts_r,
				       const char **error_r)
{
	char details[4096 + REASON_MAX * 6], extra[REASON_MAX * 6 + 64];
	char jreason[REASON_MAX * 6 + 3], target[32];
	struct kw_db_stmt *st;
	int attempts, ret;

	if (kw_store_begin(store) < 0)
		return kw_store_db_fail(store, error_r, "cannot start a transaction");
	st = kw_store_stmt(store, "INSERT INTO notification_attempt (token_id, threshold, "
				  "recipient, attempts, first_try, last_try, last_error) "
				  "VALUES (?1, ?2, ?3, 1, ?4, ?4, ?5) "
				  "ON CONFLICT (token_id, threshold, recipient) DO UPDATE SET "
				  "attempts = notification_attempt.attempts + 1, "
				  "last_try = excluded.last_try, "
				  "last_error = excluded.last_error RETURNING attempts");
	if (st == NULL)
		goto dbfail;
	kw_db_bind_int64(st, 1, (int64_t)mail->token_id);
	kw_db_bind_int64(st, 2, mail->threshold);
	kw_db_bind_text(st, 3, mail->recipient);
	kw_db_bind_int64(st, 4, when);
	kw_db_bind_text(st, 5, reason);
	if (kw_db_step(st) != KW_DB_ROW)
		goto dbfail;
	attempts = kw_db_column_int(st, 0);
	if (kw_db_step(st) != KW_DB_DONE)
		goto dbfail;
	kw_db_reset(st);
	kw_json_string_buf(jreason, sizeof(jreason), reason);
	snprintf(extra, sizeof(extra), ",\"attempt\":%d,\"max_attempts\":%d,\"error\":%s", attempts,
		 max_attempts, jreason);
	audit_details(details, sizeof(details), mail, extra);
	snprintf(target, sizeof(target), "token:%llu", (unsigned long long)mail->token_id);
	if (kw_audit_append(store, when, actor, "notify.unconfirmed", target, details) < 0 ||
	    kw_store_commit(store) < 0)
		goto dbfail;
	*attempts_r = attempts;
	return 0;
dbfail:
	ret = kw_store_db_fail(store, error_r, "cannot record the unconfirmed attempt");
	if (st != NULL)
		kw_db_reset(st);
	kw_store_rollback(store);
	return ret;
}
