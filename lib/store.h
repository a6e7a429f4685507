/* store.h: the store of accounts, roles, users and tokens, the rules of the product page that
 * guard it, and every query that the programs need (reports, the notify ledger, the audit log
 * in audit.h, SSO in sso.h). The only door to the database: callers never see SQL, a
 * statement or a connection, so that a second backend (PostgreSQL) can implement this header
 * without touching a caller. The SQLite backend lives in lib/store*.c, behind
 * store_private.h; its shared SQL conditions (live token, admin role, revoked SSO user) are
 * written once, in store_sql.h.
 *
 * kw_store_open() applies the migrations of schema/ atomically, turns on WAL and foreign keys,
 * and refuses a database newer than the program. Commits wait for the disk (synchronous =
 * FULL) unless begun with kw_store_begin_batch(). Every change below runs in one IMMEDIATE
 * transaction together with its audit event (audit.h), so that a change and its event are both
 * present or both absent whatever the moment a process dies.
 *
 * Iterators (kw_store_*_list, kw_store_report_*, kw_store_notify_due, ...) call cb once per
 * row; the row is valid during the call only. A negative return from cb stops the walk and
 * is returned as is. cb must not call the store (the walk holds a statement open).
 *
 * Errors: 0 or a negative errno-style code; human detail through error_r, valid until the next
 * call on the same store:
 *   -EINVAL  bad value (empty or over-long name, past date, ...)
 *   -ENOENT  no such account, user, role or token
 *   -EEXIST  already exists
 *   -EPERM   the acting user may not do this (role rules, disabled user)
 *   -EDQUOT  the account's token limit is reached
 *   -EPROTO  the database is newer than this program, not a keywarden database, empty
 *            (only KW_STORE_CREATE makes one), or not private (folder 0700, file 0600)
 *   -EBUSY   the database stayed locked by another process (retry later)
 *   -ENOSPC  the disk of the database is full (a revocation: and the reserve is spent)
 *   -EKEYREJECTED  the digest key is not the database's (kw_store_key_check())
 *   -EIO     any other database failure
 * Not thread-safe: one struct kw_store per thread. */
#ifndef KW_STORE_H
#define KW_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "token.h"

#define KW_ACCOUNT_MAX 64
#define KW_LOGIN_MAX 255
#define KW_EMAIL_MAX 254
#define KW_ROLE_MAX 64
/* Token names and descriptions are limited in characters; the _MAX sizes are their bytes. */
#define KW_TOKEN_NAME_CHARS 100
#define KW_TOKEN_DESC_CHARS 1000
#define KW_TOKEN_NAME_MAX (KW_TOKEN_NAME_CHARS * 4)
#define KW_TOKEN_DESC_MAX (KW_TOKEN_DESC_CHARS * 4)
#define KW_DEFAULT_TOKEN_LIMIT 50
#define KW_EXPIRY_SOON (7 * 86400)
#define KW_NEVER INT64_MAX /* expires: never */

enum kw_store_flags {
	KW_STORE_CREATE = 1 << 0,   /* create the file (mode 0600) when missing */
	KW_STORE_READONLY = 1 << 1, /* reports and listings */
	/* opened to revoke: when the disk is too full even to open the database (no room for
	 * its shared-memory file), release slices of the reserve (kw_store_reserve_release()) */
	KW_STORE_REVOKE = 1 << 2,
};

struct kw_store;

struct kw_role {
	int64_t id;
	int rank; /* higher is more */
	char name[KW_ROLE_MAX + 1];
};

struct kw_account {
	int64_t id;
	int64_t token_limit;
	char name[KW_ACCOUNT_MAX + 1];
};

struct kw_user {
	int64_t id;
	int64_t account_id;
	char account[KW_ACCOUNT_MAX + 1];
	char login[KW_LOGIN_MAX + 1];
	char email[KW_EMAIL_MAX + 1]; /* "" when unset */
	struct kw_role role;
	bool enabled;
	bool expiry_emails;
	bool sso;              /* source = sso */
	char sso_state[16];    /* "" for local users */
	int64_t sso_last_seen; /* 0 when never */
};

enum kw_token_status {
	KW_TOKEN_ACTIVE,
	KW_TOKEN_EXPIRED,
	KW_TOKEN_DELETED,
	KW_TOKEN_DISABLED, /* issuer disabled locally */
};

struct kw_token_info {
	uint64_t id;
	char account[KW_ACCOUNT_MAX + 1];
	char name[KW_TOKEN_NAME_MAX + 1];
	char description[KW_TOKEN_DESC_MAX + 1];
	char issuer[KW_LOGIN_MAX + 1];
	struct kw_role role;
	int64_t created;
	int64_t expires;   /* KW_NEVER when it never expires */
	int64_t last_used; /* 0 when never used */
	char last_ip[64];
	int64_t deleted; /* 0 when not deleted */
	char deleted_by[KW_LOGIN_MAX + 1];
	bool issuer_enabled;
	enum kw_token_status status; /* as of the time passed to the query */
};

/* What the validator needs to answer a CHECK. */
struct kw_token_check {
	uint64_t id;
	uint8_t digest[KW_DIGEST_LEN];
	int64_t expires; /* KW_NEVER when it never expires */
	bool deleted;
	bool issuer_enabled;
	char account[KW_ACCOUNT_MAX + 1];
	char user[KW_LOGIN_MAX + 1];
	char role[KW_ROLE_MAX + 1];
	bool access; /* a 1-hour access token (kind=access), not a permanent one */
};

struct kw_token_filter {
	const char *issued_by; /* login, or NULL */
	const char *role;      /* role name, or NULL */
	int status;            /* -1 for any, else enum kw_token_status */
};

typedef int kw_token_cb(const struct kw_token_info *token, void *ctx);
typedef int kw_user_cb(const struct kw_user *user, void *ctx);

/* Whether store's connection to its database server is lost (it then answers every call
 * with an error: open a new store); never for an SQLite file. */
bool kw_store_lost(struct kw_store *store);
/* Whether a store location (kw_config_database()) names a PostgreSQL server (postgresql:
 * or postgres:) rather than an SQLite file. */
bool kw_store_url_is_pg(const char *where);
int kw_store_open(const char *path, unsigned flags, struct kw_store **store_r,
		  const char **error_r);
void kw_store_free(struct kw_store **store);
/* Schema version of this program (number of migrations). */
unsigned kw_store_schema_version(void);

/* Transactions for callers that group several changes (the store's own functions open and
 * close theirs; they must not be called inside one). */
int kw_store_begin(struct kw_store *store);
int kw_store_commit(struct kw_store *store);
void kw_store_rollback(struct kw_store *store);
/* As kw_store_begin(), for writes that nobody is told about and that append no audit event
 * (the validator's last uses): the commit does not wait for the disk, so an OS crash may take
 * it back. Ends with kw_store_commit() or kw_store_rollback(). */
int kw_store_begin_batch(struct kw_store *store);

/* The revocation reserve (store_reserve.c): a file of KW_STORE_RESERVE_SIZE bytes beside the
 * database ("<database>-reserve"), made by kw_store_open() for writing whenever it is missing
 * or short and the disk has room. The revocations (kw_store_token_delete(), and
 * kw_store_user_set() when it disables) release it a slice at a time and try again when the
 * disk is full, so that a full disk cannot keep a token valid; they return -ENOSPC only when
 * the reserve is spent. Other changes may fail on a full disk. */
#define KW_STORE_RESERVE_SIZE (2 * 1024 * 1024)
#define KW_STORE_RESERVE_SLICE (256 * 1024)

/* The digest key (store_key.c): the database records the fingerprint of its key
 * (kw_digest_key_fingerprint()). Returns 0 when key is that key, or records it when the
 * database has none yet (made before the fingerprint existed; a read-only store records
 * nothing); -EKEYREJECTED, with an error naming both fingerprints, for any other key. */
int kw_store_key_check(struct kw_store *store, const struct kw_digest_key *key,
		       const char **error_r);
/* Sets the store's error text (valid until the next call on the store) and returns code; for
 * the lib/ modules layered on the store (sso_*.c), which report through the same error_r. */
int kw_store_fail(struct kw_store *store, int code, const char **error_r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Who acts, for the calls that follow on this store until the next kw_store_act() (NULL:
 * nobody in particular, as the CLI's --as). role_cap: the acting user acts with at most this
 * role (a token's role when it authenticates a request: the lower of that and the user's
 * current role counts for every rule), or NULL. audit_context: JSON object members, without
 * braces, added to the details of every audit event appended meanwhile (how the change came:
 * '"via":"api","credential":"token:12"'), or NULL; at most KW_STORE_AUDIT_CONTEXT_MAX - 1
 * bytes. Errors: -ENOENT unknown role, -EINVAL context too long. */
#define KW_STORE_AUDIT_CONTEXT_MAX 512
struct kw_store_acting {
	const char *role_cap;
	const char *audit_context;
};
int kw_store_act(struct kw_store *store, const struct kw_store_acting *acting,
		 const char **error_r);

int kw_store_role_get(struct kw_store *store, const char *name, struct kw_role *role_r,
		      const char **error_r);
/* Comma-separated role names, highest first, for messages. */
const char *kw_store_role_names(void);

int kw_store_account_add(struct kw_store *store, const char *actor, const char *name,
			 int64_t token_limit, const char **error_r);
int kw_store_account_get(struct kw_store *store, const char *name, struct kw_account *acct_r,
			 const char **error_r);

int kw_store_user_add(struct kw_store *store, const char *actor, const char *account,
		      const char *login, const char *role, const char *email, const char **error_r);
int kw_store_user_get(struct kw_store *store, const char *login, struct kw_user *user_r,
		      const char **error_r);
struct kw_user_change {
	const char *role;  /* NULL: unchanged */
	const char *email; /* NULL: unchanged, "": cleared */
	int enabled;       /* -1: unchanged */
	int expiry_emails; /* -1: unchanged */
};
int kw_store_user_set(struct kw_store *store, const char *actor, const char *login,
		      const struct kw_user_change *change, const char **error_r);
int kw_store_user_list(struct kw_store *store, const char *account, kw_user_cb *cb, void *ctx,
		       const char **error_r);

/* Creates a token for issuer `as` after the product page's rules; on success writes the token
 * text (shown once, never stored) into text_r (KW_TOKEN_TEXT_MAX bytes) and its id. */
int kw_store_token_create(struct kw_store *store, struct kw_digest_key *key, const char *as,
			  const char *name, const char *description, const char *role,
			  int64_t expires, uint64_t *id_r, char *text_r, const char **error_r);
/* Lists the tokens that `as` may see (all of the account for Administrators, else their own),
 * filtered; status evaluated at `now`. */
int kw_store_token_list(struct kw_store *store, const char *as,
			const struct kw_token_filter *filter, int64_t now, kw_token_cb *cb,
			void *ctx, const char **error_r);
int kw_store_token_get(struct kw_store *store, const char *as, uint64_t id, int64_t now,
		       struct kw_token_info *info_r, const char **error_r);
/* Soft delete, under the role rules; a deleted token cannot be deleted again. */
int kw_store_token_delete(struct kw_store *store, const char *as, uint64_t id,
			  const char **error_r);

/* Who a request's `Authorization: APIKey <token>` (text, len: as kw_token_parse() takes it)
 * lets act: the token is active (not deleted, not expired), its issuer enabled and not an SSO
 * user whose access was revoked. Records its last use (at now, from ip, which may be NULL).
 * -EACCES when the token does not let anyone act; *why_r (never NULL then) names the reason in
 * the validator's words (invalid, expired, deleted, disabled, revoked), never the secret.
 * -EIO/-EBUSY on a database failure. */
struct kw_token_auth {
	uint64_t token_id;
	char login[KW_LOGIN_MAX + 1];
	char account[KW_ACCOUNT_MAX + 1];
	struct kw_role role;      /* the lower of the token's role and the user's */
	struct kw_role user_role; /* the user's current role */
	int64_t signed_in;        /* an access token's: the sign-in of its session; else 0 */
};
int kw_store_token_authenticate(struct kw_store *store, struct kw_digest_key *key, const char *text,
				size_t len, int64_t now, const char *ip,
				struct kw_token_auth *auth_r, const char **why_r,
				const char **error_r);

/* ---- the browser's SSO sessions (store_session.c, schema/007_web_sessions.sql) ---- */
#define KW_CSRF_TEXT_LEN 64 /* hex */
struct kw_session_auth {
	uint64_t session_id;
	char login[KW_LOGIN_MAX + 1];
	int64_t created; /* the sign-in */
	char csrf[KW_CSRF_TEXT_LEN + 1];
};
/* Gives the SSO session that an accepted Response has just opened for `login` a cookie: writes
 * its text "<id>$<secret>" (KW_TOKEN_TEXT_MAX bytes; only its HMAC is stored) and id, with a
 * lifetime of `lifetime` seconds; audited (sso.session_start). -EPERM when the user may not
 * act (not an SSO user, disabled, revoked), -ENOENT when no SSO session is open. */
int kw_store_session_start(struct kw_store *store, struct kw_digest_key *key, const char *login,
			   int64_t now, int64_t lifetime, char *cookie_r, uint64_t *id_r,
			   const char **error_r);
/* Who a session cookie lets act: the session is open (not ended by logout, SLO or an SSO
 * revocation), within its lifetime and unused for less than `idle` seconds, its user enabled
 * and not revoked; records the use. -EACCES otherwise, *why_r "invalid", "ended" or "expired"
 * (never the secret); -EIO/-EBUSY. */
int kw_store_session_auth(struct kw_store *store, struct kw_digest_key *key, const char *text,
			  size_t len, int64_t now, int64_t idle, struct kw_session_auth *auth_r,
			  const char **why_r, const char **error_r);
/* Logout: ends session id and its access and refresh tokens (audited as sso.session_end by
 * actor). */
int kw_store_session_end(struct kw_store *store, uint64_t id, const char *actor, int64_t now,
			 const char **error_r);

/* ---- the 1-hour access / 24-hour refresh tokens (store_session.c) ----
 * Wire form <id>$<secret> as for permanent tokens, with ids from KW_SESSION_TOKEN_ID_BASE up:
 * kw_store_token_lookup() answers the validator for an access token too (access = true);
 * refresh tokens never validate there. They carry the user's role at issue time, do not count
 * toward the account's limit, and end with the session they came from. */
#define KW_SESSION_TOKEN_ID_BASE 900000000000000ULL
struct kw_session_pair {
	char access[KW_TOKEN_TEXT_MAX], refresh[KW_TOKEN_TEXT_MAX]; /* the caller wipes them */
	int64_t access_expires, refresh_expires;
	uint64_t family;
};
/* Issues a new pair (a new family) to the user of session session_id (an open session);
 * audited (session_token.issue). -EACCES when the session has ended. */
int kw_store_session_tokens_issue(struct kw_store *store, struct kw_digest_key *key,
				  uint64_t session_id, int64_t now, int64_t access_life,
				  int64_t refresh_life, struct kw_session_pair *pair_r,
				  const char **error_r);
/* Exchanges a refresh token for a new pair of the same family and retires it. A refresh token
 * used a second time ends its whole family (reuse detection; audited session_token.reuse).
 * -EACCES (why_r: "invalid", "expired", "ended", "reused") when it cannot be exchanged. */
int kw_store_session_tokens_refresh(struct kw_store *store, struct kw_digest_key *key,
				    const char *text, size_t len, int64_t now, int64_t access_life,
				    int64_t refresh_life, struct kw_session_pair *pair_r,
				    const char **why_r, const char **error_r);
/* Who an access token (Authorization: Bearer) lets act: as kw_store_token_authenticate(), with
 * auth_r->role the lower of the role at issue and the user's current role. *family_r: its
 * family, for logout. */
int kw_store_access_token_auth(struct kw_store *store, struct kw_digest_key *key, const char *text,
			       size_t len, int64_t now, struct kw_token_auth *auth_r,
			       uint64_t *family_r, const char **why_r, const char **error_r);
/* Ends a family of tokens (logout with a Bearer token); audited (session_token.end). */
int kw_store_session_tokens_end(struct kw_store *store, uint64_t family, const char *actor,
				int64_t now, const char **error_r);

/* Validator: the row for a CHECK, or -ENOENT. No transaction of its own (reads). */
int kw_store_token_lookup(struct kw_store *store, uint64_t id, struct kw_token_check *check_r);
/* Validator: record last use; call inside kw_store_begin()/commit(). ip may be NULL. */
int kw_store_token_touch(struct kw_store *store, uint64_t id, int64_t when, const char *ip);

enum kw_token_status kw_token_status_of(int64_t expires, int64_t deleted, bool issuer_enabled,
					int64_t now);
const char *kw_token_status_name(enum kw_token_status status);
int kw_token_status_parse(const char *name, enum kw_token_status *status_r);

/* ---- reports for auditors (store_report.c) ---- */

/* The token sections of `keywarden report`. Each holds only tokens that validate at `now`
 * (not deleted, not expired, issuer enabled). */
enum kw_report_section {
	KW_REPORT_NEVER_EXPIRES,      /* no expiry */
	KW_REPORT_SSO_ACCESS_CHANGED, /* issuer: an SSO user revoked or downgraded, or not seen
				       * through SSO for stale_days (or never) */
	KW_REPORT_ROLE_ABOVE_ISSUER,  /* the token's role ranks above its issuer's current role */
	KW_REPORT_UNUSED,             /* never used, or not for unused_days */
	KW_REPORT_EXPIRING_SOON,      /* expires within expiring_days */
	KW_REPORT_SECTIONS            /* how many */
};

struct kw_report_params {
	int64_t now;
	const char *account; /* NULL: every account */
	int64_t stale_days, unused_days, expiring_days;
};

struct kw_report_token {
	uint64_t id;
	char account[KW_ACCOUNT_MAX + 1];
	char name[KW_TOKEN_NAME_MAX + 1];
	char issuer[KW_LOGIN_MAX + 1];
	char role[KW_ROLE_MAX + 1];
	char issuer_role[KW_ROLE_MAX + 1]; /* the issuer's current role */
	int64_t created;
	int64_t expires;       /* KW_NEVER when it never expires */
	int64_t last_used;     /* 0 when never used */
	bool issuer_sso;       /* the issuer's source is SSO */
	char sso_state[16];    /* "" when unset */
	int64_t sso_last_seen; /* 0 when never */
};

struct kw_report_account {
	char name[KW_ACCOUNT_MAX + 1];
	int64_t token_limit;
	int64_t tokens; /* not deleted: what counts against the limit at creation */
};

typedef int kw_report_token_cb(const struct kw_report_token *token, void *ctx);
typedef int kw_report_account_cb(const struct kw_report_account *account, void *ctx);

/* The tokens of one section, by account name then id. */
int kw_store_report_tokens(struct kw_store *store, enum kw_report_section section,
			   const struct kw_report_params *params, kw_report_token_cb *cb, void *ctx,
			   const char **error_r);
/* Accounts (one, or all when account is NULL) that hold at least percent% of their token
 * limit, by name. */
int kw_store_report_accounts(struct kw_store *store, const char *account, unsigned percent,
			     kw_report_account_cb *cb, void *ctx, const char **error_r);

/* ---- the ledger of expiry emails (store_notify.c) ---- */

/* A token whose expiry mails may be due. */
struct kw_notify_due {
	uint64_t token_id;
	int64_t account_id;
	int64_t created;
	int64_t expires;
	char name[KW_TOKEN_NAME_MAX + 1];
	char role[KW_ROLE_MAX + 1];
	char account[KW_ACCOUNT_MAX + 1];
	char issuer[KW_LOGIN_MAX + 1];
	char issuer_email[KW_EMAIL_MAX + 1]; /* "" when unset */
	bool issuer_wants; /* expiry emails on, and not an SSO user whose access was revoked */
};

/* One mail: a (token, threshold, recipient) of the ledger, and what its audit event says. */
struct kw_notify_mail {
	uint64_t token_id;
	int threshold;         /* days before the expiry: 7 or 1 */
	const char *recipient; /* email address; the ledger compares it without regard to case */
	const char *login;     /* the recipient's login */
	bool is_issuer;        /* else an Administrator of the token's account */
	int64_t expires;       /* the token's expiry */
};

/* Where one mail stands. */
struct kw_notify_ledger {
	bool token_valid; /* the token still validates: not deleted, not expired, issuer enabled */
	bool sent;        /* recorded as delivered */
	int attempts;     /* unconfirmed attempts so far */
};

typedef int kw_notify_due_cb(const struct kw_notify_due *token, void *ctx);
typedef int kw_notify_admin_cb(const char *login, const char *email, void *ctx);

/* The tokens that validate at `now` and expire within `within` seconds from it, of one
 * account (or all when account is NULL), by id. */
int kw_store_notify_due(struct kw_store *store, const char *account, int64_t now, int64_t within,
			kw_notify_due_cb *cb, void *ctx, const char **error_r);
/* The Administrators of an account who take expiry mails: enabled, expiry emails on, with an
 * address, not SSO users whose access was revoked; by login. */
int kw_store_notify_admins(struct kw_store *store, int64_t account_id, kw_notify_admin_cb *cb,
			   void *ctx, const char **error_r);
/* Waits until no other notify run holds the store's run lock, then holds it until the store
 * is freed: PostgreSQL only (a lock on the server, shared by every host); an SQLite store's
 * runs lock a file beside the database instead (keywarden-notify). */
int kw_store_notify_lock(struct kw_store *store, const char **error_r);
/* Reads where a mail stands at `now` (no transaction: call it right before sending). */
int kw_store_notify_ledger(struct kw_store *store, const struct kw_notify_mail *mail, int64_t now,
			   struct kw_notify_ledger *ledger_r, const char **error_r);
/* Records a delivered mail with its audit event (notify.sent) in one transaction; recording
 * it twice is not an error. */
int kw_store_notify_record_sent(struct kw_store *store, const char *actor,
				const struct kw_notify_mail *mail, int64_t when,
				const char **error_r);
/* Counts an unconfirmed attempt (the message went out, the final reply did not come) with its
 * audit event (notify.unconfirmed, naming reason and max_attempts) in one transaction;
 * attempts_r is the count so far, this one included. */
int kw_store_notify_record_unconfirmed(struct kw_store *store, const char *actor,
				       const struct kw_notify_mail *mail, int64_t when,
				       const char *reason, int max_attempts, int *attempts_r,
				       const char **error_r);

#endif
