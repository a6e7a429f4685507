/* xml_prescan.h: a linear pass over raw XML bytes that refuses, before libxml2 sees them,
 * documents whose parse would be expensive or dangerous: too many attributes on one element
 * (libxml2 2.9's duplicate-attribute check is quadratic in them), too many attributes or
 * elements in all, nesting too deep, and any DOCTYPE or markup declaration.
 *
 * It is not a parser: it only tokenises as XML does (tags, quoted attribute values, comments,
 * CDATA sections, processing instructions, character and entity references) and refuses what
 * it cannot tokenise (a NUL byte, an unterminated construct, an attribute without a quoted
 * value, an encoding other than UTF-8), so that what it counts is what libxml2 will see. A
 * document it accepts is still parsed and checked by libxml2 and saml_verify.c.
 *
 * Pure and thread-safe: no state, no allocation. */
#ifndef KW_XML_PRESCAN_H
#define KW_XML_PRESCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kw_xml_prescan_limits {
	unsigned max_depth;          /* elements nested in the outermost (its level is 0) */
	unsigned max_elements;       /* elements in all */
	unsigned max_attributes;     /* attributes (namespace declarations included) of one
					element */
	unsigned max_attributes_all; /* attributes in all */
};

/* Scans xml[0..len). fragment: element content (no XML declaration, several top-level
 * nodes), as a decrypted EncryptedAssertion holds; otherwise a document (an optional UTF-8 BOM
 * and XML declaration, whose encoding must be UTF-8 when given).
 * Returns 0 (acceptable), -E2BIG (a limit), -EPROTO (a DOCTYPE or a markup declaration) or
 * -EINVAL (not tokenisable, or an undeclared entity); *why_r says what, in static text. */
int kw_xml_prescan(const uint8_t *xml, size_t len, bool fragment,
		   const struct kw_xml_prescan_limits *limits, const char **why_r);

#endif
