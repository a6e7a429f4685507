/* store_scim.c: the store's side of SCIM (see store_scim.h): the IdP's externalId of SSO
 * users, in table scim_user. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "store.h"
#include "store_private.h"
#include "store_scim.h"
#include "store_sso.h"
#include "text.h"

int kw_store_scim_external_id_get(struct kw_store *store, int64_t user_id, char *buf, size_t size,
				  const char **error_r)
{
	struct kw_db_stmt *st =
		kw_store_stmt(store, "SELECT external_id FROM scim_user WHERE user_id = ?1");
	int rc;

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "cannot read the externalId");
	kw_db_bind_int64(st, 1, user_id);
	rc = kw_db_step(st);
	if (rc == KW_DB_ROW)
		snprintf(buf, size, "%s", kw_db_column_text(st, 0));
	else if (rc == KW_DB_DONE)
		buf[0] = '\0';
	kw_db_reset(st);
	if (rc != KW_DB_ROW && rc != KW_DB_DONE)
		return kw_store_db_fail(store, error_r, "cannot read the externalId");
	return 0;
}

int kw_store_scim_external_id_find(struct kw_store *store, int64_t account_id,
				   const char *external_id, int64_t *user_id_r,
				   const char **error_r)
{
	struct kw_db_stmt *st = kw_store_stmt(
		store, "SELECT s.user_id FROM scim_user s JOIN user u ON u.id = s.user_id "
		       "WHERE s.external_id = ?1 AND u.account_id = ?2 ORDER BY s.user_id LIMIT 1");
	int rc;

	if (st == NULL)
		return kw_store_db_fail(store, error_r, "cannot look up the externalId");
	kw_db_bind_text(st, 1, external_id);
	kw_db_bind_int64(st, 2, account_id);
	rc = kw_db_step(st);
	if (rc == KW_DB_ROW)
		*user_id_r = kw_db_column_int64(st, 0);
	kw_db_reset(st);
	if (rc == KW_DB_DONE)
		return kw_store_fail(store, -ENOENT, error_r, "no user has this externalId");
	if (rc != KW_DB_ROW)
		return kw_store_db_fail(store, error_r, "cannot look up the externalId");
	return 0;
}

int kw_store_scim_external_id_set(struct kw_store *store, const char *actor, int64_t user_id,
				  const char *login, const char *external_id, int64_t now,
				  const char **error_r)
{
	char old[KW_TEXT_SIZE(KW_SCIM_EXTERNAL_ID_MAX)], *details = NULL;
	size_t len = 0;
	struct kw_db_stmt *st;
	FILE *f;
	int ret, rc;

	if ((ret = kw_store_sso_check(store, "externalId", external_id, KW_SCIM_EXTERNAL_ID_MAX,
				      true, error_r)) < 0 ||
	    (ret = kw_store_sso_begin(store, error_r)) < 0)
		return ret;
	if ((ret = kw_store_scim_external_id_get(store, user_id, old, sizeof(old), error_r)) < 0)
		goto out;
	if (strcmp(old, external_id) == 0) {
		ret = kw_store_sso_commit(store, error_r);
		goto out;
	}
	st = kw_store_stmt(store, "INSERT INTO scim_user (user_id, external_id, updated) "
				  "VALUES (?1, ?2, ?3) ON CONFLICT(user_id) DO UPDATE SET "
				  "external_id = excluded.external_id, updated = excluded.updated");
	if (st == NULL) {
		ret = kw_store_db_fail(store, error_r, "cannot keep the externalId");
		goto out;
	}
	kw_db_bind_int64(st, 1, user_id);
	kw_db_bind_text(st, 2, external_id);
	kw_db_bind_int64(st, 3, now);
	rc = kw_db_step(st);
	kw_db_reset(st);
	if (rc != KW_DB_DONE) {
		ret = kw_store_db_fail(store, error_r, "cannot keep the externalId");
		goto out;
	}
	f = open_memstream(&details, &len);
	if (f == NULL)
		abort();
	fputs("{\"external_id\":", f);
	kw_json_string(f, external_id);
	fputs(",\"before\":", f);
	kw_json_string(f, old);
	fputs("}", f);
	fclose(f);
	if ((ret = kw_store_sso_event_add(store, now, user_id, "scim", actor, "scim.external_id",
					  login, details, error_r)) < 0 ||
	    (ret = kw_store_sso_commit(store, error_r)) < 0)
		goto out;
out:
	free(details);
	if (ret < 0)
		kw_store_rollback(store);
	return ret;
}
