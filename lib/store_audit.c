/* store_audit.c: the hash chain of the audit table (see audit.h), and the copy of every committed
 * event that goes to journald/syslog.
 *
 * The journal copy is made after the commit, never before: kw_audit_append() runs inside the
 * caller's transaction, so it only queues the event; the connection's end hook (db.h: on
 * SQLite the WAL hook, called once a commit is durable in the WAL, which kw_store_open()
 * always turns on; on PostgreSQL once COMMIT has returned) sends the queue, and a rollback
 * drops it. A change that rolls back, or a process that dies before COMMIT,
 * thus never shows up in the journal. The journal line carries the event's sequence number
 * and chain hash, which makes the journal (forwarded off the host) an anchor against which a
 * truncated or recomputed chain can be caught (keywarden audit verify --anchor).
 *
 * The queue is per thread (a store belongs to one thread); kw_audit_set_origin() is
 * process-wide and set before any thread starts. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "audit.h"
#include "jsonw.h"
#include "store_private.h"

#define HASH_LEN KW_AUDIT_HASH_LEN
/* journald MESSAGE_ID of audit events: stable, never change it (SIEM rules match on it). */
#define AUDIT_MESSAGE_ID "6b7764e1a4d94c0b9a1e5f3c2d8b7a60"
#define JOURNAL_SOCKET "/run/systemd/journal/socket"

struct pending_event {
	struct pending_event *next;
	struct kw_db *db;
	int64_t seq, time;
	char hash_hex[HASH_LEN * 2 + 1];
	char *actor, *action, *target, *details;
};

/* Per thread: each of ssod's workers commits on its own store, and the hooks that flush the
 * queue run in the thread that commits. */
static _Thread_local struct pending_event *pending;

static void pending_free(struct pending_event *e)
{
	free(e->actor);
	free(e->action);
	free(e->target);
	free(e->details);
	free(e);
}

static void emit_event(const struct pending_event *e)
{
	char seq[24];
	int ret;

	snprintf(seq, sizeof(seq), "%lld", (long long)e->seq);
	/* Straight to the journal whatever the program's own log target: the audit stream is
	 * not a diagnostic that a log level may hide. Fields are the event's, so that a SIEM
	 * needs no parsing; MESSAGE repeats them for syslog readers. sd_journal_send() reports
	 * success when there is no journald at all, hence the check of its socket. */
	ret = -ENOENT;
	if (access(JOURNAL_SOCKET, F_OK) == 0)
		ret = sd_journal_send(
			"MESSAGE=audit seq=%s action=%s actor=%s target=%s details=%s hash=%s", seq,
			e->action, e->actor, e->target, e->details, e->hash_hex,
			"MESSAGE_ID=" AUDIT_MESSAGE_ID, "PRIORITY=%d", LOG_NOTICE,
			"SYSLOG_IDENTIFIER=keywarden-audit", "KEYWARDEN_AUDIT_SEQ=%s", seq,
			"KEYWARDEN_AUDIT_ACTION=%s", e->action, "KEYWARDEN_AUDIT_ACTOR=%s",
			e->actor, "KEYWARDEN_AUDIT_TARGET=%s", e->target, "KEYWARDEN_AUDIT_HASH=%s",
			e->hash_hex, NULL);
	if (ret < 0) /* no journald: plain syslog, the message id in the text */
		syslog(LOG_AUTHPRIV | LOG_NOTICE,
		       "audit seq=%s action=%s actor=%s target=%s details=%s hash=%s [%s]", seq,
		       e->action, e->actor, e->target, e->details, e->hash_hex, AUDIT_MESSAGE_ID);
}

/* Takes the queued events of db off the queue; emits them when committed. */
static void flush_pending(struct kw_db *db, bool committed)
{
	struct pending_event **pp = &pending, *e;

	while ((e = *pp) != NULL) {
		if (e->db != db) {
			pp = &e->next;
			continue;
		}
		*pp = e->next;
		if (committed)
			emit_event(e);
		pending_free(e);
	}
}

static void transaction_ended(void *ctx, bool committed)
{
	flush_pending(ctx, committed);
}

static char *dup_or_null(const char *s)
{
	return strdup(s != NULL ? s : "");
}

/* Queues the event for the journal once its transaction commits. Best effort: an event
 * that cannot be queued (out of memory) is still in the database, which is the record. */
static void queue_event(struct kw_db *db, int64_t seq, int64_t time, const char *actor,
			const char *action, const char *target, const char *details,
			const uint8_t hash[HASH_LEN])
{
	struct pending_event *e = calloc(1, sizeof(*e)), **pp;

	if (e == NULL)
		return;
	e->db = db;
	e->seq = seq;
	e->time = time;
	for (int i = 0; i < HASH_LEN; i++)
		snprintf(e->hash_hex + 2 * i, 3, "%02x", hash[i]);
	e->actor = dup_or_null(actor);
	e->action = dup_or_null(action);
	e->target = dup_or_null(target);
	e->details = dup_or_null(details);
	if (e->actor == NULL || e->action == NULL || e->target == NULL || e->details == NULL) {
		pending_free(e);
		return;
	}
	if (!kw_db_in_transaction(db)) {
		/* No transaction around the append: it has already committed. */
		emit_event(e);
		pending_free(e);
		return;
	}
	for (pp = &pending; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = e;
	/* Idempotent: (re)installing the same hooks on every append is cheap and keeps the
	 * store's code unaware of them. */
	kw_db_set_end_hook(db, transaction_ended, db);
}

static void put_field(EVP_MD_CTX *ctx, const void *data, size_t len)
{
	uint8_t lenbuf[8];

	for (int i = 0; i < 8; i++)
		lenbuf[i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
	EVP_DigestUpdate(ctx, lenbuf, sizeof(lenbuf));
	EVP_DigestUpdate(ctx, data, len);
}

static int chain_hash(const uint8_t prev[HASH_LEN], int64_t seq, int64_t time, const char *actor,
		      const char *action, const char *target, const char *details,
		      uint8_t out[HASH_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t num[16];
	unsigned int len = 0;
	int ok;

	if (ctx == NULL)
		return -ENOMEM;
	for (int i = 0; i < 8; i++) {
		num[i] = (uint8_t)((uint64_t)seq >> (56 - 8 * i));
		num[8 + i] = (uint8_t)((uint64_t)time >> (56 - 8 * i));
	}
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	if (ok) {
		EVP_DigestUpdate(ctx, "keywarden-audit-v1", 18);
		EVP_DigestUpdate(ctx, prev, HASH_LEN);
		EVP_DigestUpdate(ctx, num, sizeof(num));
		put_field(ctx, actor, strlen(actor));
		put_field(ctx, action, strlen(action));
		put_field(ctx, target, strlen(target));
		put_field(ctx, details, strlen(details));
		ok = EVP_DigestFinal_ex(ctx, out, &len) && len == HASH_LEN;
	}
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -EIO;
}

/* "\"unix_uid\":0,\"unix_user\":\"root\"" when set: who ran the program (see audit.h). */
static char *origin;

void kw_audit_set_origin(uid_t uid, const char *user)
{
	char juser[6 * 64 + 3], buf[sizeof(juser) + 48];

	if (user == NULL)
		snprintf(juser, sizeof(juser), "null");
	else
		kw_json_string_buf(juser, sizeof(juser), user);
	snprintf(buf, sizeof(buf), "\"unix_uid\":%u,\"unix_user\":%s", (unsigned)uid, juser);
	free(origin);
	origin = strdup(buf);
}

static int append(struct kw_store *store, int64_t time, const char *actor, const char *action,
		  const char *target, const char *details);

int kw_audit_append(struct kw_store *store, int64_t time, const char *actor, const char *action,
		    const char *target, const char *details)
{
	size_t len = strlen(details);
	const char *ctx = kw_store_audit_context(store);
	char *merged;
	int ret;

	if ((origin == NULL && ctx[0] == '\0') || len < 2 || details[0] != '{' ||
	    details[len - 1] != '}')
		return append(store, time, actor, action, target, details);
	merged = malloc(len + (origin != NULL ? strlen(origin) : 0) + strlen(ctx) + 3);
	if (merged == NULL)
		return -ENOMEM;
	memcpy(merged, details, len - 1);
	sprintf(merged + len - 1, "%s%s%s%s}", len > 2 && ctx[0] != '\0' ? "," : "", ctx,
		origin != NULL && (len > 2 || ctx[0] != '\0') ? "," : "",
		origin != NULL ? origin : "");
	ret = append(store, time, actor, action, target, merged);
	free(merged);
	return ret;
}

static int append(struct kw_store *store, int64_t time, const char *actor, const char *action,
		  const char *target, const char *details)
{
	uint8_t prev[HASH_LEN] = { 0 }, hash[HASH_LEN];
	struct kw_db_stmt *st;
	int64_t seq = 1;
	int rc;

	st = kw_store_stmt(store, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1");
	if (st == NULL)
		return -EIO;
	rc = kw_db_step(st);
	if (rc == KW_DB_ROW) {
		seq = kw_db_column_int64(st, 0) + 1;
		if (kw_db_column_bytes(st, 1) == HASH_LEN)
			memcpy(prev, kw_db_column_blob(st, 1), HASH_LEN);
	} else if (rc != KW_DB_DONE) {
		kw_db_reset(st);
		return -EIO;
	}
	kw_db_reset(st);
	if (chain_hash(prev, seq, time, actor, action, target, details, hash) < 0)
		return -EIO;
	st = kw_store_stmt(store, "INSERT INTO audit (seq, time, actor, action, target, details, "
				  "hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
	if (st == NULL)
		return -EIO;
	kw_db_bind_int64(st, 1, seq);
	kw_db_bind_int64(st, 2, time);
	kw_db_bind_text(st, 3, actor);
	kw_db_bind_text(st, 4, action);
	kw_db_bind_text(st, 5, target);
	kw_db_bind_text(st, 6, details);
	kw_db_bind_blob(st, 7, hash, HASH_LEN);
	rc = kw_db_step(st);
	kw_db_reset(st);
	if (rc != KW_DB_DONE)
		return -EIO;
	queue_event(kw_store_db(store), seq, time, actor, action, target, details, hash);
	return 0;
}

int kw_audit_verify(struct kw_store *store, int64_t *count_r, int64_t *bad_seq_r,
		    const char **error_r)
{
	uint8_t prev[HASH_LEN] = { 0 }, hash[HASH_LEN];
	struct kw_db_stmt *st;
	int64_t expect = 1, count = 0;
	int rc, ret = 0;

	st = kw_store_stmt(store, "SELECT seq, time, actor, action, target, details, hash "
				  "FROM audit ORDER BY seq");
	if (st == NULL)
		return kw_store_db_fail(store, error_r, "audit read");
	while ((rc = kw_db_step(st)) == KW_DB_ROW) {
		int64_t seq = kw_db_column_int64(st, 0);
		const char *f[4];

		for (int i = 0; i < 4; i++) {
			f[i] = kw_db_column_text(st, 2 + i);
			if (f[i] == NULL)
				f[i] = "";
		}
		*bad_seq_r = seq;
		if (seq != expect) {
			ret = kw_store_fail(store, -EBADMSG, error_r,
					    "event %lld: expected sequence number %lld (an event "
					    "was deleted or inserted)",
					    (long long)seq, (long long)expect);
			goto out;
		}
		if (chain_hash(prev, seq, kw_db_column_int64(st, 1), f[0], f[1], f[2], f[3], hash) <
		    0) {
			ret = kw_store_fail(store, -EIO, error_r, "cannot hash");
			goto out;
		}
		if (kw_db_column_bytes(st, 6) != HASH_LEN ||
		    CRYPTO_memcmp(hash, kw_db_column_blob(st, 6), HASH_LEN) != 0) {
			ret = kw_store_fail(store, -EBADMSG, error_r,
					    "event %lld: hash does not match (the event or one "
					    "before it was changed, removed or reordered)",
					    (long long)seq);
			goto out;
		}
		memcpy(prev, hash, HASH_LEN);
		expect++;
		count++;
	}
	if (rc != KW_DB_DONE)
		ret = kw_store_db_fail(store, error_r, "audit read");
	*count_r = count;
out:
	kw_db_reset(st);
	return ret;
}

int kw_audit_event_hash(struct kw_store *store, int64_t seq, uint8_t hash_r[KW_AUDIT_HASH_LEN],
			const char **error_r)
{
	struct kw_db_stmt *st = kw_store_stmt(store, "SELECT hash FROM audit WHERE seq = ?1");
	int rc, ret;

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "audit read");
	kw_db_bind_int64(st, 1, seq);
	rc = kw_db_step(st);
	if (rc == KW_DB_ROW && kw_db_column_bytes(st, 0) == KW_AUDIT_HASH_LEN) {
		memcpy(hash_r, kw_db_column_blob(st, 0), KW_AUDIT_HASH_LEN);
		ret = 0;
	} else if (rc == KW_DB_DONE) {
		ret = kw_store_fail(store, -ENOENT, error_r, "no audit event %lld", (long long)seq);
	} else if (rc == KW_DB_ROW) {
		ret = kw_store_fail(store, -EIO, error_r,
				    "audit event %lld: its hash is unreadable", (long long)seq);
	} else {
		ret = kw_store_db_fail(store, error_r, "audit read");
	}
	kw_db_reset(st);
	return ret;
}

static const char *col_text(struct kw_db_stmt *st, int col)
{
	const char *t = kw_db_column_text(st, col);

	return t != NULL ? t : "";
}

int kw_audit_foreach(struct kw_store *store, int64_t since, kw_audit_event_cb *cb, void *ctx,
		     const char **error_r)
{
	struct kw_db_stmt *st =
		kw_store_stmt(store, "SELECT seq, time, actor, action, target, details, "
				     "hash FROM audit WHERE time >= ?1 ORDER BY seq");
	struct kw_audit_event e;
	int rc, ret;

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "audit read");
	kw_db_bind_int64(st, 1, since);
	while ((rc = kw_db_step(st)) == KW_DB_ROW) {
		memset(&e, 0, sizeof(e));
		e.seq = kw_db_column_int64(st, 0);
		e.time = kw_db_column_int64(st, 1);
		e.actor = col_text(st, 2);
		e.action = col_text(st, 3);
		e.target = col_text(st, 4);
		e.details = col_text(st, 5);
		e.has_hash = kw_db_column_bytes(st, 6) == KW_AUDIT_HASH_LEN;
		if (e.has_hash)
			memcpy(e.hash, kw_db_column_blob(st, 6), KW_AUDIT_HASH_LEN);
		if ((ret = cb(&e, ctx)) < 0) {
			kw_db_reset(st);
			return ret;
		}
	}
	ret = rc == KW_DB_DONE ? 0 : kw_store_db_fail(store, error_r, "audit read");
	kw_db_reset(st);
	return ret;
}
