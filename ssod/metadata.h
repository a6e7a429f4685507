/* metadata.h: the SAML SP metadata (an EntityDescriptor) keywarden-ssod serves at
 * GET /saml/metadata for IdP admins to import: entity id, the ACS and SLO endpoints (HTTP-POST
 * binding) and, when [sso] sp_cert is set, that certificate as signing and encryption key. */
#ifndef KW_SSO_METADATA_H
#define KW_SSO_METADATA_H

#include <stddef.h>
#include <stdio.h>

#include "sso_config.h"

/* Writes s to f escaped for XML and HTML text and for double- or single-quoted attributes. */
void kw_ssod_markup_escape(FILE *f, const char *s);

/* *xml_r (NUL-terminated, *len_r bytes) is the caller's to free. */
int kw_ssod_metadata(const struct kw_sso_config *sso, char **xml_r, size_t *len_r,
		     const char **error_r);

#endif
