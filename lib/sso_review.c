/* sso_review.c: the review list of the rule, read only (see sso.h): the open cases with the
 * live tokens and delete commands they name, and the SSO users unseen for stale_days. It runs
 * the sweep first, so that what it shows is current; everything else here only reads. */
#include "config.h"

#include <stdlib.h>

#include "sso.h"
#include "sso_private.h"
#include "store.h"
#include "store_sso.h"

void kw_sso_review_free(struct kw_sso_review **reviewp)
{
	struct kw_sso_review *r = *reviewp;

	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n_cases; i++)
		free(r->cases[i].tokens);
	free(r->cases);
	free(r->stale);
	free(r);
	*reviewp = NULL;
}

int kw_sso_review(struct kw_store *store, const char *account, int64_t now, unsigned stale_days,
		  struct kw_sso_review **review_r, const char **error_r)
{
	struct kw_sso_review *r;
	int64_t account_id;
	int ret;

	if ((ret = kw_sso_account_id(store, account, &account_id, error_r)) < 0 ||
	    (ret = kw_sso_sweep(store, account, now, stale_days, error_r)) < 0)
		return ret;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		abort();
	r->now = now;
	r->stale_days = stale_days;
	if ((ret = kw_store_sso_review_read(store, account_id, r, error_r)) < 0) {
		kw_sso_review_free(&r);
		return ret;
	}
	*review_r = r;
	return 0;
}
