/* store_private.h: helpers shared by the store's own files (store.c, tokens.c, audit.c). */
#ifndef KW_STORE_PRIVATE_H
#define KW_STORE_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include "store.h"

#define KW_APPLICATION_ID 0x6b77646e /* "kwdn" in the SQLite header */

int kw_store_db_fail(struct kw_store *store, const char **error_r, const char *what);
void kw_store_copy_text(char *dst, size_t size, sqlite3_stmt *st, int col);
/* Text fields: length, no control characters. */
int kw_store_check_text(struct kw_store *store, const char *what, const char *s, size_t max,
			bool allow_empty, const char **error_r);
/* Logins and account names: as text, not empty, and without blanks or '=' (they travel in
 * protocol fields and key=value log lines). */
int kw_store_check_name(struct kw_store *store, const char *what, const char *s, size_t max,
			const char **error_r);
/* The database file's path (the reserve lives beside it). */
const char *kw_store_path(const struct kw_store *store);
/* store_reserve.c: creates or completes the reserve beside a database opened for writing;
 * warns when the disk has no room for it. */
void kw_store_reserve_ensure(struct kw_store *store);
/* The plausibility rule for email addresses: one '@' with text on both sides, nothing that
 * would break a mail header. */
bool kw_store_email_ok(const char *email);

#endif
