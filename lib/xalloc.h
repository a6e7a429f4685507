/* xalloc.h: allocation helpers for the programs (the CLI and the daemons), which end on
 * out-of-memory (STYLE.md). Never for libkeywarden or the PAM module, which must not abort
 * their host. */
#ifndef KW_XALLOC_H
#define KW_XALLOC_H

#include <stdlib.h>
#include <string.h>

/* A copy of s that the caller frees; NULL for NULL. */
static inline char *kw_strdup(const char *s)
{
	char *d;

	if (s == NULL)
		return NULL;
	d = strdup(s);
	if (d == NULL)
		abort();
	return d;
}

/* A copy of s, or of "" for NULL (for results whose fields are never NULL). */
static inline char *kw_strdup_or_empty(const char *s)
{
	return kw_strdup(s != NULL ? s : "");
}

#endif
