/* saml_verify.c: strict verification of one SAML 2.0 Response with libxml2 and xmlsec1.
 *
 * The order of work: decode; scan the raw XML for what would make its parse expensive
 * (xml_prescan.h); parse with a hardened parser; walk the whole tree once
 * (limits, DTD leftovers, where Assertions and Signatures may sit, IDs); register the IDs of
 * the Response and of the Assertion only; verify the Response signature (over the ciphertext
 * when the Assertion is encrypted); decrypt; verify the Assertion signature; then read every
 * value from the verified Assertion node and check it. Signature keys come only from the
 * pinned IdP metadata: the keys manager's getKey callback ignores <KeyInfo> entirely. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/tree.h>
#include <libxml/valid.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <xmlsec/crypto.h>
#include <xmlsec/errors.h>
#include <xmlsec/keys.h>
#include <xmlsec/keysmngr.h>
#include <xmlsec/openssl/app.h>
#include <xmlsec/openssl/crypto.h>
#include <xmlsec/openssl/evp.h>
#include <xmlsec/transforms.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/xmlenc.h>
#include <xmlsec/xmlsec.h>

#include "error.h"
#include "log.h"
#include "saml_verify.h"
#include "timeutil.h"
#include "xalloc.h"
#include "xml_prescan.h"

#define NS_SAMLP "urn:oasis:names:tc:SAML:2.0:protocol"
#define NS_SAML "urn:oasis:names:tc:SAML:2.0:assertion"
#define NS_MD "urn:oasis:names:tc:SAML:2.0:metadata"
#define NS_DSIG "http://www.w3.org/2000/09/xmldsig#"
#define NS_XENC "http://www.w3.org/2001/04/xmlenc#"
#define STATUS_SUCCESS "urn:oasis:names:tc:SAML:2.0:status:Success"
#define CM_BEARER "urn:oasis:names:tc:SAML:2.0:cm:bearer"
#define NAMEID_ENTITY "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
#define MAX_IDS 64

#define ALG_EXC_C14N "http://www.w3.org/2001/10/xml-exc-c14n#"
#define ALG_ENVELOPED "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
#define ALG_RSA_SHA1 "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
#define ALG_RSA_SHA256 "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
#define ALG_RSA_SHA384 "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
#define ALG_RSA_SHA512 "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
#define ALG_SHA1 "http://www.w3.org/2000/09/xmldsig#sha1"
#define ALG_SHA256 "http://www.w3.org/2001/04/xmlenc#sha256"
#define ALG_SHA384 "http://www.w3.org/2001/04/xmldsig-more#sha384"
#define ALG_SHA512 "http://www.w3.org/2001/04/xmlenc#sha512"
#define ALG_RSA_OAEP "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
#define ALG_RSA_OAEP11 "http://www.w3.org/2009/xmlenc11#rsa-oaep"
#define ALG_RSA_1_5 "http://www.w3.org/2001/04/xmlenc#rsa-1_5"
#define NS_XENC11 "http://www.w3.org/2009/xmlenc11#"
#define ALG_MGF1_PREFIX "http://www.w3.org/2009/xmlenc11#mgf1"
#define ALG_AES128_GCM "http://www.w3.org/2009/xmlenc11#aes128-gcm"
#define ALG_AES192_GCM "http://www.w3.org/2009/xmlenc11#aes192-gcm"
#define ALG_AES256_GCM "http://www.w3.org/2009/xmlenc11#aes256-gcm"
#define ALG_AES128_CBC "http://www.w3.org/2001/04/xmlenc#aes128-cbc"
#define ALG_AES192_CBC "http://www.w3.org/2001/04/xmlenc#aes192-cbc"
#define ALG_AES256_CBC "http://www.w3.org/2001/04/xmlenc#aes256-cbc"

struct kw_saml_verifier {
	struct kw_saml_settings s;
	char *sp_entity_id, *acs_url, *slo_url, *login_attribute, *role_attribute;
	char *email_attribute;
	char *idp_entity_id;
	char *sso_url; /* SingleSignOnService, HTTP-Redirect binding; NULL when none */
	bool want_signed_requests;
	xmlSecKeysMngrPtr mngr;
	xmlSecKeyPtr keys[KW_SAML_MAX_KEYS]; /* borrowed from mngr's store */
	unsigned n_keys;
	xmlSecKeyPtr sp_key; /* owned; NULL without sp_key */
	char detail[320];
};

/* One verification's state. */
struct job {
	struct kw_saml_verifier *v;
	xmlDocPtr doc;
	int64_t now;
	int nodes;
	xmlChar *ids[MAX_IDS]; /* copies: decryption frees nodes */
	int n_ids;
};

static const char *const reason_names[KW_SAML_REASON_COUNT] = {
	[KW_SAML_OK] = "ok",
	[KW_SAML_XML] = "xml",
	[KW_SAML_DTD] = "dtd",
	[KW_SAML_LIMIT] = "limit",
	[KW_SAML_STRUCTURE] = "structure",
	[KW_SAML_WRAPPING] = "wrapping",
	[KW_SAML_REFERENCE] = "reference",
	[KW_SAML_ALGORITHM] = "algorithm",
	[KW_SAML_SIGNATURE] = "signature",
	[KW_SAML_DECRYPTION] = "decryption",
	[KW_SAML_STATUS] = "status",
	[KW_SAML_ISSUER] = "issuer",
	[KW_SAML_DESTINATION] = "destination",
	[KW_SAML_AUDIENCE] = "audience",
	[KW_SAML_RECIPIENT] = "recipient",
	[KW_SAML_SUBJECTCONFIRMATION] = "subjectconfirmation",
	[KW_SAML_TIME] = "time",
	[KW_SAML_CONDITIONS] = "conditions",
	[KW_SAML_NAMEID] = "nameid",
	[KW_SAML_ATTRIBUTE] = "attribute",
	[KW_SAML_REPLAY] = "replay",
	[KW_SAML_IN_RESPONSE_TO] = "inresponseto",
};

const char *kw_saml_reason_name(enum kw_saml_reason reason)
{
	if ((unsigned)reason >= KW_SAML_REASON_COUNT)
		return "unknown";
	return reason_names[reason];
}

static enum kw_saml_reason fail(struct job *j, enum kw_saml_reason r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static enum kw_saml_reason fail(struct job *j, enum kw_saml_reason r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(j->v->detail, sizeof(j->v->detail), fmt, ap);
	va_end(ap);
	return r;
}

/* ---- quiet libraries, no network ---- */

static void quiet_generic(void *ctx, const char *msg, ...)
{
}

static void quiet_structured(void *ctx, xmlErrorPtr err)
{
}

static void xmlsec_error(const char *file, int line, const char *func, const char *object,
			 const char *subject, int reason, const char *msg)
{
	kw_debug("xmlsec: %s: %s: %s", func != NULL ? func : "", subject != NULL ? subject : "",
		 msg != NULL ? msg : "");
}

static xmlParserInputPtr no_entity_loader(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
	return NULL; /* nothing is ever fetched: no file, no network */
}

int kw_saml_global_init(const char **error_r)
{
	xmlInitParser();
	xmlSetExternalEntityLoader(no_entity_loader);
	xmlSetGenericErrorFunc(NULL, quiet_generic);
	xmlSetStructuredErrorFunc(NULL, quiet_structured);
	/* the same for threads started later (keywarden-ssod's workers): libxml2 keeps these
	 * per thread */
	xmlThrDefSetGenericErrorFunc(NULL, quiet_generic);
	xmlThrDefSetStructuredErrorFunc(NULL, quiet_structured);
	if (xmlSecInit() < 0 || xmlSecCheckVersion() != 1) {
		*error_r = "cannot initialise xmlsec1";
		return -EIO;
	}
	if (xmlSecOpenSSLAppInit(NULL) < 0 || xmlSecOpenSSLInit() < 0) {
		*error_r = "cannot initialise xmlsec1-openssl";
		return -EIO;
	}
	xmlSecErrorsSetCallback(xmlsec_error);
	return 0;
}

void kw_saml_global_deinit(void)
{
	xmlSecOpenSSLShutdown();
	xmlSecOpenSSLAppShutdown();
	xmlSecShutdown();
	xmlCleanupParser();
}

/* ---- tree helpers ---- */

static bool is_el(const xmlNode *n, const char *ns, const char *name)
{
	return n != NULL && n->type == XML_ELEMENT_NODE && n->ns != NULL &&
	       strcmp((const char *)n->ns->href, ns) == 0 &&
	       strcmp((const char *)n->name, name) == 0;
}

static xmlNodePtr next_el(xmlNodePtr n)
{
	for (; n != NULL; n = n->next) {
		if (n->type == XML_ELEMENT_NODE)
			return n;
	}
	return NULL;
}

static xmlNodePtr first_el(xmlNodePtr parent)
{
	return next_el(parent->children);
}

/* Counts the element children parent/ns:name and returns the first. */
static xmlNodePtr child(xmlNodePtr parent, const char *ns, const char *name, int *count_r)
{
	xmlNodePtr first = NULL;
	int count = 0;

	for (xmlNodePtr c = first_el(parent); c != NULL; c = next_el(c->next)) {
		if (is_el(c, ns, name)) {
			if (first == NULL)
				first = c;
			count++;
		}
	}
	if (count_r != NULL)
		*count_r = count;
	return first;
}

/* The value of an un-namespaced attribute, or NULL. Without a DTD and without entity
 * substitution an attribute holds one text node at most. */
static const char *attr(xmlNodePtr n, const char *name)
{
	xmlAttrPtr a = xmlHasNsProp(n, (const xmlChar *)name, NULL);

	if (a == NULL || a->type != XML_ATTRIBUTE_NODE)
		return NULL;
	if (a->children == NULL)
		return "";
	if (a->children->type != XML_TEXT_NODE || a->children->next != NULL)
		return NULL;
	return (const char *)a->children->content;
}

/* The whole text content of a leaf element: text and CDATA concatenated, comments and
 * processing instructions skipped; NULL when it has element children. Caller frees. */
static char *whole_text(xmlNodePtr n)
{
	size_t len = 0, off = 0;
	char *s;

	for (xmlNodePtr c = n->children; c != NULL; c = c->next) {
		if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE)
			len += strlen((const char *)c->content);
		else if (c->type != XML_COMMENT_NODE && c->type != XML_PI_NODE)
			return NULL;
	}
	s = malloc(len + 1);
	if (s == NULL)
		abort();
	for (xmlNodePtr c = n->children; c != NULL; c = c->next) {
		if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
			size_t l = strlen((const char *)c->content);
			memcpy(s + off, c->content, l);
			off += l;
		}
	}
	s[off] = '\0';
	return s;
}

static bool text_equals(xmlNodePtr n, const char *want)
{
	char *t = whole_text(n);
	bool eq = t != NULL && strcmp(t, want) == 0;

	free(t);
	return eq;
}

static bool has_control(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	}
	return false;
}

/* ---- input ---- */

/* Base64: a digit's value plus one; B64_BLANK for blanks between groups (skipped); 0 for
 * anything else. */
#define B64_BLANK 0x80
static const uint8_t b64_table[256] = {
	['A'] = 1,          ['B'] = 2,          ['C'] = 3,          ['D'] = 4,  ['E'] = 5,
	['F'] = 6,          ['G'] = 7,          ['H'] = 8,          ['I'] = 9,  ['J'] = 10,
	['K'] = 11,         ['L'] = 12,         ['M'] = 13,         ['N'] = 14, ['O'] = 15,
	['P'] = 16,         ['Q'] = 17,         ['R'] = 18,         ['S'] = 19, ['T'] = 20,
	['U'] = 21,         ['V'] = 22,         ['W'] = 23,         ['X'] = 24, ['Y'] = 25,
	['Z'] = 26,         ['a'] = 27,         ['b'] = 28,         ['c'] = 29, ['d'] = 30,
	['e'] = 31,         ['f'] = 32,         ['g'] = 33,         ['h'] = 34, ['i'] = 35,
	['j'] = 36,         ['k'] = 37,         ['l'] = 38,         ['m'] = 39, ['n'] = 40,
	['o'] = 41,         ['p'] = 42,         ['q'] = 43,         ['r'] = 44, ['s'] = 45,
	['t'] = 46,         ['u'] = 47,         ['v'] = 48,         ['w'] = 49, ['x'] = 50,
	['y'] = 51,         ['z'] = 52,         ['0'] = 53,         ['1'] = 54, ['2'] = 55,
	['3'] = 56,         ['4'] = 57,         ['5'] = 58,         ['6'] = 59, ['7'] = 60,
	['8'] = 61,         ['9'] = 62,         ['+'] = 63,         ['/'] = 64, [' '] = B64_BLANK,
	['\t'] = B64_BLANK, ['\r'] = B64_BLANK, ['\n'] = B64_BLANK,
};

static int b64_decode(const uint8_t *in, size_t len, uint8_t **out_r, size_t *out_len_r)
{
	uint8_t *out = malloc(len / 4 * 3 + 3);
	uint32_t acc = 0;
	size_t n = 0, o = 0, pad = 0, i = 0;

	if (out == NULL)
		abort();
	/* Fast path: whole groups of four digits, as most of a Response is. Each table entry
	 * minus one is the digit's value, and anything but a digit leaves bits above 63. */
fast:
	while (i + 4 <= len) {
		uint32_t a = b64_table[in[i]] - 1u, b = b64_table[in[i + 1]] - 1u,
			 c = b64_table[in[i + 2]] - 1u, d = b64_table[in[i + 3]] - 1u;
		if ((a | b | c | d) & ~63u)
			break;
		uint32_t v = a << 18 | b << 12 | c << 6 | d;
		out[o++] = (uint8_t)(v >> 16);
		out[o++] = (uint8_t)(v >> 8);
		out[o++] = (uint8_t)v;
		i += 4;
	}
	/* The rest, digit by digit: blanks between groups, padding at the end. */
	for (; i < len; i++) {
		uint32_t v = b64_table[in[i]];

		if (v == B64_BLANK)
			continue;
		if (in[i] == '=') {
			pad++;
			v = 0;
		} else if (pad > 0 || v == 0) {
			goto bad;
		} else {
			v--;
		}
		acc = (acc << 6) | v;
		if (++n % 4 == 0) {
			out[o++] = (uint8_t)(acc >> 16);
			out[o++] = (uint8_t)(acc >> 8);
			out[o++] = (uint8_t)acc;
			acc = 0;
			if (pad == 0) {
				i++;
				goto fast; /* back to whole groups after a line break */
			}
		}
	}
	if ((o == 0 && n == 0) || n % 4 != 0 || pad > 2)
		goto bad;
	*out_r = out;
	*out_len_r = o - pad;
	return 0;
bad:
	free(out);
	return -EINVAL;
}

static void on_internal_subset(void *ctx, const xmlChar *name, const xmlChar *external_id,
			       const xmlChar *system_id)
{
	xmlParserCtxtPtr p = ctx;

	*(int *)p->_private = 1;
	xmlStopParser(p); /* a DOCTYPE ends the parse before any declaration is read */
}

/* Parses XML with no DTD, no entity substitution, no network. */
static xmlDocPtr parse_hardened(const char *buf, size_t len, enum kw_saml_reason *why_r)
{
	xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
	int saw_dtd = 0;
	xmlDocPtr doc;

	if (ctxt == NULL)
		abort();
	ctxt->_private = &saw_dtd;
	ctxt->sax->internalSubset = on_internal_subset;
	ctxt->sax->externalSubset = NULL;
	doc = xmlCtxtReadMemory(ctxt, buf, (int)len, "saml.xml", NULL,
				XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (doc != NULL && (saw_dtd || doc->intSubset != NULL || doc->extSubset != NULL)) {
		xmlFreeDoc(doc);
		doc = NULL;
		saw_dtd = 1;
	}
	*why_r = saw_dtd ? KW_SAML_DTD : KW_SAML_XML;
	xmlFreeParserCtxt(ctxt);
	return doc;
}

/* The linear scan of raw XML before libxml2 parses it (the document, or a decrypted
 * Assertion or NameID: anyone can encrypt to sp_cert, so that plaintext is no less hostile). */
static enum kw_saml_reason prescan(struct job *j, const uint8_t *xml, size_t len, bool fragment,
				   const char *what)
{
	static const struct kw_xml_prescan_limits limits = {
		.max_depth = KW_SAML_MAX_DEPTH,
		.max_elements = KW_SAML_MAX_NODES,
		.max_attributes = KW_SAML_MAX_ATTRIBUTES,
		.max_attributes_all = KW_SAML_MAX_ATTRIBUTES_ALL,
	};
	const char *why;

	switch (kw_xml_prescan(xml, len, fragment, &limits, &why)) {
	case 0:
		return KW_SAML_OK;
	case -E2BIG:
		return fail(j, KW_SAML_LIMIT,
			    "%s: %s (at most %d attributes on an element, %d in all, %d elements, "
			    "depth %d; refused before parsing)",
			    what, why, KW_SAML_MAX_ATTRIBUTES, KW_SAML_MAX_ATTRIBUTES_ALL,
			    KW_SAML_MAX_NODES, KW_SAML_MAX_DEPTH);
	case -EPROTO:
		return fail(j, KW_SAML_DTD, "%s: %s", what, why);
	default:
		return fail(j, KW_SAML_XML, "%s: %s", what, why);
	}
}

/* ---- the tree walk ---- */

static enum kw_saml_reason note_id(struct job *j, const xmlChar *value)
{
	for (int i = 0; i < j->n_ids; i++) {
		if (xmlStrEqual(j->ids[i], value))
			return fail(j, KW_SAML_WRAPPING, "duplicate ID \"%s\"",
				    (const char *)value);
	}
	if (j->n_ids >= MAX_IDS)
		return fail(j, KW_SAML_LIMIT, "more than %d IDs", MAX_IDS);
	j->ids[j->n_ids] = xmlStrdup(value);
	if (j->ids[j->n_ids] == NULL)
		abort();
	j->n_ids++;
	return KW_SAML_OK;
}

/* Walks the one node n (depth: its own depth, the root's is 0) and its subtree, never n's
 * following siblings: limits, no entity references or DTD nodes, Assertions only as children
 * of the Response root, Signatures only as children of the Response or of that Assertion,
 * every ID-like attribute unique, no xml:id. Called on the root, and again on a subtree that
 * decryption has put into the already walked tree (the siblings were walked then). */
static enum kw_saml_reason walk(struct job *j, xmlNodePtr n, int depth, xmlNodePtr root)
{
	enum kw_saml_reason r;

	if (depth > KW_SAML_MAX_DEPTH)
		return fail(j, KW_SAML_LIMIT, "nested deeper than %d", KW_SAML_MAX_DEPTH);
	if (++j->nodes > KW_SAML_MAX_NODES)
		return fail(j, KW_SAML_LIMIT, "more than %d nodes", KW_SAML_MAX_NODES);
	switch (n->type) {
	case XML_ELEMENT_NODE:
		break;
	case XML_TEXT_NODE:
	case XML_CDATA_SECTION_NODE:
	case XML_COMMENT_NODE:
	case XML_PI_NODE:
		return KW_SAML_OK;
	case XML_ENTITY_REF_NODE:
	case XML_ENTITY_NODE:
	case XML_DTD_NODE:
	case XML_ENTITY_DECL:
		return fail(j, KW_SAML_DTD, "entity reference or DTD node");
	default:
		return fail(j, KW_SAML_XML, "unexpected node type %d", (int)n->type);
	}
	if (is_el(n, NS_SAML, "Assertion") || is_el(n, NS_SAML, "EncryptedAssertion")) {
		if (n->parent != root)
			return fail(j, KW_SAML_WRAPPING, "%s outside the Response's children",
				    n->name);
	}
	if (is_el(n, NS_DSIG, "Signature")) {
		xmlNodePtr p = n->parent;
		if (p != root && !(is_el(p, NS_SAML, "Assertion") && p->parent == root))
			return fail(j, KW_SAML_WRAPPING, "Signature inside <%s>",
				    p != NULL ? (const char *)p->name : "?");
	}
	for (xmlAttrPtr a = n->properties; a != NULL; a = a->next) {
		const char *an = (const char *)a->name;
		if (a->ns != NULL && xmlStrEqual(a->ns->href, (const xmlChar *)XML_XML_NAMESPACE) &&
		    strcmp(an, "id") == 0)
			return fail(j, KW_SAML_WRAPPING, "xml:id attribute");
		/* A ds:Signature's Id is never registered (register_id() registers the
		 * Response's and the Assertion's only), so nothing can reference it; pysaml2
		 * names every Signature it makes Id="Signature1", twice in a double-signed
		 * Response. */
		if (a->ns == NULL && strcmp(an, "Id") == 0 && is_el(n, NS_DSIG, "Signature"))
			continue;
		if (a->ns == NULL &&
		    (strcmp(an, "ID") == 0 || strcmp(an, "Id") == 0 || strcmp(an, "id") == 0)) {
			const char *value = attr(n, an);
			if (value == NULL)
				return fail(j, KW_SAML_XML, "odd ID attribute");
			r = note_id(j, (const xmlChar *)value);
			if (r != KW_SAML_OK)
				return r;
		}
	}
	for (xmlNodePtr c = n->children; c != NULL; c = c->next) {
		r = walk(j, c, depth + 1, root);
		if (r != KW_SAML_OK)
			return r;
	}
	return KW_SAML_OK;
}

/* Registers el's ID attribute as the document's only way to reference el. */
static enum kw_saml_reason register_id(struct job *j, xmlNodePtr el)
{
	xmlAttrPtr a = xmlHasNsProp(el, (const xmlChar *)"ID", NULL);
	const char *id = attr(el, "ID");

	if (a == NULL || id == NULL || id[0] == '\0')
		return fail(j, KW_SAML_STRUCTURE, "<%s> without ID", el->name);
	if (xmlGetID(j->doc, (const xmlChar *)id) != NULL)
		return fail(j, KW_SAML_WRAPPING, "ID \"%s\" registered twice", id);
	if (xmlAddID(NULL, j->doc, (const xmlChar *)id, a) == NULL)
		return fail(j, KW_SAML_STRUCTURE, "cannot register ID");
	return KW_SAML_OK;
}

/* ---- signatures ---- */

struct key_choice {
	struct kw_saml_verifier *v;
	unsigned index;
	bool lent;
};

/* The keys manager's getKey: ignores <KeyInfo> (keyInfoNode) and returns a copy of the pinned
 * key chosen by the caller, if it suits the signature method. */
static xmlSecKeyPtr pinned_get_key(xmlNodePtr key_info_node, xmlSecKeyInfoCtxPtr ctx)
{
	struct key_choice *choice = ctx->userData;
	xmlSecKeyPtr key;

	if (choice == NULL || choice->index >= choice->v->n_keys)
		return NULL;
	key = choice->v->keys[choice->index];
	if (!xmlSecKeyMatch(key, NULL, &ctx->keyReq))
		return NULL;
	/* Lent, not copied: verify_signature() takes it back from the context before the
	 * context is destroyed, so the pinned key is never re-derived per message. */
	choice->lent = true;
	return key;
}

static bool sig_alg_ok(const struct kw_saml_verifier *v, const char *alg)
{
	return strcmp(alg, ALG_RSA_SHA256) == 0 || strcmp(alg, ALG_RSA_SHA384) == 0 ||
	       strcmp(alg, ALG_RSA_SHA512) == 0 ||
	       (v->s.allow_sha1 && strcmp(alg, ALG_RSA_SHA1) == 0);
}

static bool digest_alg_ok(const struct kw_saml_verifier *v, const char *alg)
{
	return strcmp(alg, ALG_SHA256) == 0 || strcmp(alg, ALG_SHA384) == 0 ||
	       strcmp(alg, ALG_SHA512) == 0 || (v->s.allow_sha1 && strcmp(alg, ALG_SHA1) == 0);
}

static int enable_dsig_transforms(const struct kw_saml_verifier *v, xmlSecDSigCtxPtr ctx)
{
	int ret = 0;

	ret |= xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformExclC14NId);
	ret |= xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformRsaSha256Id);
	ret |= xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformRsaSha384Id);
	ret |= xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformRsaSha512Id);
	ret |= xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformEnvelopedId);
	ret |= xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformExclC14NId);
	ret |= xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformSha256Id);
	ret |= xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformSha384Id);
	ret |= xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformSha512Id);
	if (v->s.allow_sha1) {
		ret |= xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformRsaSha1Id);
		ret |= xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformSha1Id);
	}
	ctx->enabledReferenceUris = xmlSecTransformUriTypeSameDocument;
	return ret < 0 ? -1 : 0;
}

/* Checks the shape of sig (a child of signed) and verifies it with the pinned keys. */
static enum kw_saml_reason verify_signature(struct job *j, xmlNodePtr sig, xmlNodePtr signed_el)
{
	struct kw_saml_verifier *v = j->v;
	xmlNodePtr si, sv, ref, c, transforms, dm;
	const char *id = attr(signed_el, "ID"), *alg, *uri;
	xmlAttrPtr id_attr;
	int count;

	si = first_el(sig);
	if (!is_el(si, NS_DSIG, "SignedInfo"))
		return fail(j, KW_SAML_SIGNATURE, "Signature without SignedInfo first");
	sv = next_el(si->next);
	if (!is_el(sv, NS_DSIG, "SignatureValue"))
		return fail(j, KW_SAML_SIGNATURE, "Signature without SignatureValue");
	c = next_el(sv->next);
	if (c != NULL && is_el(c, NS_DSIG, "KeyInfo"))
		c = next_el(c->next);
	if (c != NULL)
		return fail(j, KW_SAML_WRAPPING, "unexpected <%s> in Signature", c->name);

	c = first_el(si);
	if (!is_el(c, NS_DSIG, "CanonicalizationMethod"))
		return fail(j, KW_SAML_SIGNATURE, "SignedInfo without CanonicalizationMethod");
	alg = attr(c, "Algorithm");
	if (alg == NULL || strcmp(alg, ALG_EXC_C14N) != 0)
		return fail(j, KW_SAML_ALGORITHM, "canonicalization %s not allowed",
			    alg != NULL ? alg : "(none)");
	c = next_el(c->next);
	if (!is_el(c, NS_DSIG, "SignatureMethod"))
		return fail(j, KW_SAML_SIGNATURE, "SignedInfo without SignatureMethod");
	alg = attr(c, "Algorithm");
	if (alg == NULL || !sig_alg_ok(v, alg))
		return fail(j, KW_SAML_ALGORITHM, "signature method %s not allowed",
			    alg != NULL ? alg : "(none)");
	ref = child(si, NS_DSIG, "Reference", &count);
	if (count != 1)
		return fail(j, KW_SAML_REFERENCE, "%d References in SignedInfo", count);
	for (c = first_el(si); c != NULL; c = next_el(c->next)) {
		if (!is_el(c, NS_DSIG, "CanonicalizationMethod") &&
		    !is_el(c, NS_DSIG, "SignatureMethod") && !is_el(c, NS_DSIG, "Reference"))
			return fail(j, KW_SAML_SIGNATURE, "unexpected <%s> in SignedInfo", c->name);
	}
	uri = attr(ref, "URI");
	if (uri == NULL || uri[0] != '#' || id == NULL || strcmp(uri + 1, id) != 0)
		return fail(j, KW_SAML_REFERENCE, "Reference URI \"%s\" is not #ID of <%s>",
			    uri != NULL ? uri : "(none)", signed_el->name);
	id_attr = xmlGetID(j->doc, (const xmlChar *)id);
	if (id_attr == NULL || id_attr->parent != signed_el)
		return fail(j, KW_SAML_WRAPPING, "ID does not lead to the signed element");

	transforms = first_el(ref);
	dm = transforms;
	if (is_el(transforms, NS_DSIG, "Transforms")) {
		count = 0;
		for (c = first_el(transforms); c != NULL; c = next_el(c->next)) {
			if (!is_el(c, NS_DSIG, "Transform"))
				return fail(j, KW_SAML_SIGNATURE, "unexpected <%s> in Transforms",
					    c->name);
			alg = attr(c, "Algorithm");
			if (alg == NULL ||
			    (strcmp(alg, ALG_ENVELOPED) != 0 && strcmp(alg, ALG_EXC_C14N) != 0))
				return fail(j, KW_SAML_ALGORITHM, "transform %s not allowed",
					    alg != NULL ? alg : "(none)");
			if (++count > 2)
				return fail(j, KW_SAML_ALGORITHM, "more than two transforms");
		}
		dm = next_el(transforms->next);
	}
	if (!is_el(dm, NS_DSIG, "DigestMethod"))
		return fail(j, KW_SAML_SIGNATURE, "Reference without DigestMethod");
	alg = attr(dm, "Algorithm");
	if (alg == NULL || !digest_alg_ok(v, alg))
		return fail(j, KW_SAML_ALGORITHM, "digest %s not allowed",
			    alg != NULL ? alg : "(none)");

	for (unsigned i = 0; i < v->n_keys; i++) {
		struct key_choice choice = { v, i, false };
		xmlSecDSigCtxPtr ctx = xmlSecDSigCtxCreate(v->mngr);
		bool ok;

		if (ctx == NULL)
			abort();
		ctx->keyInfoReadCtx.userData = &choice;
		if (enable_dsig_transforms(v, ctx) < 0) {
			xmlSecDSigCtxDestroy(ctx);
			return fail(j, KW_SAML_SIGNATURE, "xmlsec transform setup failed");
		}
		ok = xmlSecDSigCtxVerify(ctx, sig) == 0 && ctx->status == xmlSecDSigStatusSucceeded;
		if (choice.lent && ctx->signKey == v->keys[i])
			ctx->signKey = NULL; /* the pinned key stays the keys manager's */
		xmlSecDSigCtxDestroy(ctx);
		if (ok)
			return KW_SAML_OK;
	}
	return fail(j, KW_SAML_SIGNATURE, "%s signature does not verify with a pinned key",
		    signed_el->name);
}

/* ---- decryption ---- */

static enum kw_saml_reason data_alg(struct job *j, const char *alg, xmlSecTransformId *t_r)
{
	bool legacy = j->v->s.allow_legacy_encryption;

	if (strcmp(alg, ALG_AES128_GCM) == 0)
		*t_r = xmlSecTransformAes128GcmId;
	else if (strcmp(alg, ALG_AES192_GCM) == 0)
		*t_r = xmlSecTransformAes192GcmId;
	else if (strcmp(alg, ALG_AES256_GCM) == 0)
		*t_r = xmlSecTransformAes256GcmId;
	else if (legacy && strcmp(alg, ALG_AES128_CBC) == 0)
		*t_r = xmlSecTransformAes128CbcId;
	else if (legacy && strcmp(alg, ALG_AES192_CBC) == 0)
		*t_r = xmlSecTransformAes192CbcId;
	else if (legacy && strcmp(alg, ALG_AES256_CBC) == 0)
		*t_r = xmlSecTransformAes256CbcId;
	else
		return fail(j, KW_SAML_ALGORITHM, "encryption %s not allowed", alg);
	return KW_SAML_OK;
}

/* Decrypts the EncryptedData of enc (EncryptedAssertion or EncryptedID), parses the plaintext
 * in the context of enc's parent, and replaces enc by the one element ns:want it must hold. */
/* An EncryptedData or EncryptedKey must carry exactly one CipherData holding exactly one
 * CipherValue and nothing else. */
static enum kw_saml_reason check_cipher_data(struct job *j, xmlNodePtr e)
{
	xmlNodePtr cd, cv;
	int count;

	cd = child(e, NS_XENC, "CipherData", &count);
	if (count != 1)
		return fail(j, KW_SAML_DECRYPTION, "%d CipherData in %s", count, e->name);
	cv = child(cd, NS_XENC, "CipherValue", &count);
	if (count != 1 || first_el(cd) != cv || next_el(cv->next) != NULL)
		return fail(j, KW_SAML_DECRYPTION, "%s: CipherData is not one inline CipherValue",
			    e->name);
	return KW_SAML_OK;
}

/* The digest of an OAEP DigestMethod URI or of an xmlenc11 MGF1 URI suffix; SHA-1 is
 * accepted here whatever allow_sha1 says (OAEP's use of it is not a signature). */
static const EVP_MD *oaep_md(const char *alg)
{
	static const struct {
		const char *uri, *mgf;
		const EVP_MD *(*md)(void);
	} mds[] = {
		{ ALG_SHA1, "sha1", EVP_sha1 },
		{ "http://www.w3.org/2001/04/xmldsig-more#sha224", "sha224", EVP_sha224 },
		{ ALG_SHA256, "sha256", EVP_sha256 },
		{ ALG_SHA384, "sha384", EVP_sha384 },
		{ ALG_SHA512, "sha512", EVP_sha512 },
	};

	for (size_t i = 0; i < sizeof(mds) / sizeof(mds[0]); i++) {
		if (strcmp(alg, mds[i].uri) == 0)
			return mds[i].md();
		if (strncmp(alg, ALG_MGF1_PREFIX, strlen(ALG_MGF1_PREFIX)) == 0 &&
		    strcmp(alg + strlen(ALG_MGF1_PREFIX), mds[i].mgf) == 0)
			return mds[i].md();
	}
	return NULL;
}

/* RSA-OAEP key transport done with OpenSSL (xmlsec1 1.2 knows neither xmlenc11#rsa-oaep nor a
 * DigestMethod other than SHA-1): em is the EncryptedKey's EncryptionMethod, alg its
 * Algorithm. The session key goes to key_r (key_size bytes), its length to *len_r. */
static enum kw_saml_reason oaep_unwrap(struct job *j, xmlNodePtr ek, xmlNodePtr em, const char *alg,
				       uint8_t *key_r, size_t key_size, size_t *len_r)
{
	const EVP_MD *md = EVP_sha1(), *mgf = EVP_sha1();
	uint8_t *ct = NULL, *label = NULL, *out = NULL;
	size_t ct_len = 0, label_len = 0, out_len = 0;
	EVP_PKEY *pkey = xmlSecOpenSSLKeyDataRsaGetEvp(xmlSecKeyGetValue(j->v->sp_key));
	EVP_PKEY_CTX *ctx = NULL;
	enum kw_saml_reason r = KW_SAML_OK;
	char *text = NULL;

	for (xmlNodePtr c = first_el(em); c != NULL; c = next_el(c->next)) {
		const char *a = attr(c, "Algorithm");
		if (is_el(c, NS_DSIG, "DigestMethod")) {
			md = a != NULL ? oaep_md(a) : NULL;
			if (md == NULL) {
				r = fail(j, KW_SAML_ALGORITHM, "OAEP digest %s not done",
					 a != NULL ? a : "(none)");
				goto out;
			}
		} else if (is_el(c, NS_XENC11, "MGF")) {
			mgf = a != NULL && strcmp(alg, ALG_RSA_OAEP11) == 0 ? oaep_md(a) : NULL;
			if (mgf == NULL ||
			    strncmp(a, ALG_MGF1_PREFIX, strlen(ALG_MGF1_PREFIX)) != 0) {
				r = fail(j, KW_SAML_ALGORITHM, "mask generation %s not done",
					 a != NULL ? a : "(none)");
				goto out;
			}
		} else if (is_el(c, NS_XENC, "OAEPparams") && label == NULL) {
			text = whole_text(c);
			if (text == NULL ||
			    (text[0] != '\0' && b64_decode((const uint8_t *)text, strlen(text),
							   &label, &label_len) < 0)) {
				r = fail(j, KW_SAML_DECRYPTION, "OAEPparams is not base64");
				goto out;
			}
			free(text);
			text = NULL;
		} else if (!is_el(c, NS_XENC, "KeySize")) {
			r = fail(j, KW_SAML_STRUCTURE, "unexpected <%s> in EncryptionMethod",
				 c->name);
			goto out;
		}
	}
	text = whole_text(
		child(child(ek, NS_XENC, "CipherData", NULL), NS_XENC, "CipherValue", NULL));
	if (text == NULL || b64_decode((const uint8_t *)text, strlen(text), &ct, &ct_len) < 0) {
		r = fail(j, KW_SAML_DECRYPTION, "EncryptedKey CipherValue is not base64");
		goto out;
	}
	ctx = pkey != NULL ? EVP_PKEY_CTX_new(pkey, NULL) : NULL;
	if (ctx == NULL || EVP_PKEY_decrypt_init(ctx) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, mgf) <= 0) {
		r = fail(j, KW_SAML_DECRYPTION, "OpenSSL RSA-OAEP setup failed");
		goto out;
	}
	if (label_len > 0) {
		/* the context takes a copy made by OpenSSL's allocator, and frees it */
		void *l = OPENSSL_memdup(label, label_len);
		if (l == NULL || EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, l, (int)label_len) <= 0) {
			OPENSSL_free(l);
			r = fail(j, KW_SAML_DECRYPTION, "OpenSSL RSA-OAEP setup failed");
			goto out;
		}
	}
	if (EVP_PKEY_decrypt(ctx, NULL, &out_len, ct, ct_len) <= 0) {
		r = fail(j, KW_SAML_DECRYPTION, "cannot decrypt the EncryptedKey with sp_key");
		goto out;
	}
	out = malloc(out_len);
	if (out == NULL)
		abort();
	if (EVP_PKEY_decrypt(ctx, out, &out_len, ct, ct_len) <= 0 || out_len > key_size) {
		r = fail(
			j, KW_SAML_DECRYPTION,
			"cannot decrypt the EncryptedKey with sp_key (%s, digest %s, MGF1 with %s)",
			alg, EVP_MD_get0_name(md), EVP_MD_get0_name(mgf));
		goto out;
	}
	memcpy(key_r, out, out_len);
	*len_r = out_len;
out:
	if (out != NULL)
		OPENSSL_clear_free(out, out_len);
	EVP_PKEY_CTX_free(ctx);
	free(label);
	free(ct);
	free(text);
	return r;
}

static enum kw_saml_reason decrypt_element(struct job *j, xmlNodePtr enc, const char *want,
					   xmlNodePtr *el_r)
{
	struct kw_saml_verifier *v = j->v;
	enum kw_saml_reason r = KW_SAML_OK;
	xmlNodePtr ed, ek = NULL, em, c, list = NULL, el = NULL;
	xmlSecEncCtxPtr kctx = NULL, dctx = NULL;
	xmlSecTransformId data_t = NULL, key_t = NULL;
	bool oaep = false;
	xmlSecBufferPtr buf;
	xmlSecKeyPtr session = NULL;
	const char *alg;
	int count;

	if (v->sp_key == NULL)
		return fail(j, KW_SAML_DECRYPTION, "%s but no [sso] sp_key", enc->name);
	ed = child(enc, NS_XENC, "EncryptedData", &count);
	if (count != 1)
		return fail(j, KW_SAML_STRUCTURE, "%d EncryptedData in %s", count, enc->name);
	for (c = first_el(enc); c != NULL; c = next_el(c->next)) {
		if (!is_el(c, NS_XENC, "EncryptedData") && !is_el(c, NS_XENC, "EncryptedKey"))
			return fail(j, KW_SAML_STRUCTURE, "unexpected <%s> in %s", c->name,
				    enc->name);
	}
	em = child(ed, NS_XENC, "EncryptionMethod", NULL);
	alg = em != NULL ? attr(em, "Algorithm") : NULL;
	if (alg == NULL)
		return fail(j, KW_SAML_DECRYPTION, "EncryptedData without EncryptionMethod");
	r = data_alg(j, alg, &data_t);
	if (r != KW_SAML_OK)
		return r;
	c = child(ed, NS_DSIG, "KeyInfo", NULL);
	if (c != NULL)
		ek = child(c, NS_XENC, "EncryptedKey", NULL);
	if (ek == NULL)
		ek = child(enc, NS_XENC, "EncryptedKey", NULL);
	if (ek == NULL)
		return fail(j, KW_SAML_DECRYPTION, "no EncryptedKey");
	em = child(ek, NS_XENC, "EncryptionMethod", NULL);
	alg = em != NULL ? attr(em, "Algorithm") : NULL;
	if (alg == NULL)
		return fail(j, KW_SAML_DECRYPTION, "EncryptedKey without EncryptionMethod");
	if (strcmp(alg, ALG_RSA_OAEP) == 0 || strcmp(alg, ALG_RSA_OAEP11) == 0)
		oaep = true; /* OpenSSL: oaep_unwrap() */
	else if (v->s.allow_legacy_encryption && strcmp(alg, ALG_RSA_1_5) == 0)
		key_t = xmlSecTransformRsaPkcs1Id;
	else
		return fail(j, KW_SAML_ALGORITHM, "key transport %s not allowed", alg);
	/* Inline ciphertext only: no CipherReference (something to fetch), and nothing that
	 * sends xmlsec1 down its error paths (which leak on a CipherData without CipherValue). */
	r = check_cipher_data(j, ek);
	if (r == KW_SAML_OK)
		r = check_cipher_data(j, ed);
	if (r != KW_SAML_OK)
		return r;

	if (oaep) {
		uint8_t raw[64];
		size_t raw_len = 0;

		r = oaep_unwrap(j, ek, em, alg, raw, sizeof(raw), &raw_len);
		if (r != KW_SAML_OK)
			return r;
		session = xmlSecKeyReadMemory(xmlSecKeyDataAesId, raw, raw_len);
		OPENSSL_cleanse(raw, sizeof(raw));
		if (session == NULL)
			return fail(j, KW_SAML_DECRYPTION, "bad session key");
		goto data;
	}
	kctx = xmlSecEncCtxCreate(NULL);
	if (kctx == NULL)
		abort();
	kctx->mode = xmlEncCtxModeEncryptedKey;
	kctx->encKey = xmlSecKeyDuplicate(v->sp_key);
	if (kctx->encKey == NULL ||
	    xmlSecPtrListAdd(&kctx->transformCtx.enabledTransforms, (void *)key_t) < 0 ||
	    xmlSecPtrListAdd(&kctx->transformCtx.enabledTransforms, (void *)xmlSecTransformSha1Id) <
		    0) {
		r = fail(j, KW_SAML_DECRYPTION, "xmlsec setup failed");
		goto out;
	}
	buf = xmlSecEncCtxDecryptToBuffer(kctx, ek);
	if (buf == NULL) {
		r = fail(j, KW_SAML_DECRYPTION, "cannot decrypt the EncryptedKey with sp_key");
		goto out;
	}
	session = xmlSecKeyReadMemory(xmlSecKeyDataAesId, xmlSecBufferGetData(buf),
				      xmlSecBufferGetSize(buf));
	if (session == NULL) {
		r = fail(j, KW_SAML_DECRYPTION, "bad session key");
		goto out;
	}
data:
	dctx = xmlSecEncCtxCreate(NULL);
	if (dctx == NULL)
		abort();
	dctx->encKey = session;
	session = NULL;
	if (xmlSecPtrListAdd(&dctx->transformCtx.enabledTransforms, (void *)data_t) < 0) {
		r = fail(j, KW_SAML_DECRYPTION, "xmlsec setup failed");
		goto out;
	}
	buf = xmlSecEncCtxDecryptToBuffer(dctx, ed);
	if (buf == NULL) {
		r = fail(j, KW_SAML_DECRYPTION, "cannot decrypt %s", enc->name);
		goto out;
	}
	r = prescan(j, xmlSecBufferGetData(buf), xmlSecBufferGetSize(buf), true,
		    "decrypted content not parsed");
	if (r != KW_SAML_OK)
		goto out;
	if (xmlParseInNodeContext(enc->parent, (const char *)xmlSecBufferGetData(buf),
				  (int)xmlSecBufferGetSize(buf),
				  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING,
				  &list) != XML_ERR_OK) {
		r = fail(j, KW_SAML_DECRYPTION, "decrypted %s is not well-formed", enc->name);
		goto out;
	}
	for (c = list; c != NULL; c = c->next) {
		if (c->type == XML_ELEMENT_NODE) {
			if (el != NULL || !is_el(c, NS_SAML, want)) {
				r = fail(j, KW_SAML_STRUCTURE, "%s does not hold exactly one %s",
					 enc->name, want);
				goto out;
			}
			el = c;
		} else if (c->type != XML_TEXT_NODE || !xmlIsBlankNode(c)) {
			r = fail(j, KW_SAML_STRUCTURE, "unexpected content in %s", enc->name);
			goto out;
		}
	}
	if (el == NULL) {
		r = fail(j, KW_SAML_STRUCTURE, "%s holds no %s", enc->name, want);
		goto out;
	}
	/* Detach el from the parsed list, free the rest, put el where enc was. */
	while (list != NULL) {
		c = list;
		list = list->next;
		c->next = c->prev = NULL;
		if (c != el)
			xmlFreeNode(c);
	}
	xmlReplaceNode(enc, el);
	xmlFreeNode(enc);
	*el_r = el;
out:
	if (list != NULL)
		xmlFreeNodeList(list);
	if (session != NULL)
		xmlSecKeyDestroy(session);
	if (kctx != NULL)
		xmlSecEncCtxDestroy(kctx);
	if (dctx != NULL)
		xmlSecEncCtxDestroy(dctx);
	return r;
}

/* ---- the SAML checks ---- */

static enum kw_saml_reason parse_time(struct job *j, xmlNodePtr n, const char *name, bool need,
				      int64_t *t_r)
{
	const char *s = attr(n, name);

	if (s == NULL) {
		if (need)
			return fail(j, KW_SAML_STRUCTURE, "<%s> without %s", n->name, name);
		*t_r = 0;
		return KW_SAML_OK;
	}
	if (kw_time_parse(s, 0, t_r) < 0)
		return fail(j, KW_SAML_TIME, "%s=\"%s\" is not a time", name, s);
	return KW_SAML_OK;
}

static enum kw_saml_reason check_issuer(struct job *j, xmlNodePtr issuer)
{
	const char *format = attr(issuer, "Format");

	if (format != NULL && strcmp(format, NAMEID_ENTITY) != 0)
		return fail(j, KW_SAML_ISSUER, "Issuer Format %s", format);
	if (!text_equals(issuer, j->v->idp_entity_id))
		return fail(j, KW_SAML_ISSUER, "Issuer is not the pinned IdP");
	return KW_SAML_OK;
}

static enum kw_saml_reason check_version(struct job *j, xmlNodePtr n)
{
	const char *version = attr(n, "Version");

	if (version == NULL || strcmp(version, "2.0") != 0)
		return fail(j, KW_SAML_STRUCTURE, "<%s> Version is not 2.0", n->name);
	if (attr(n, "IssueInstant") == NULL)
		return fail(j, KW_SAML_STRUCTURE, "<%s> without IssueInstant", n->name);
	return KW_SAML_OK;
}

/* One bearer SubjectConfirmation; *expires_r its NotOnOrAfter. signed_response: the Response
 * element's own signature has been verified (so its Destination is the IdP's). */
static enum kw_saml_reason check_confirmation(struct job *j, xmlNodePtr sc, const char *irt,
					      bool signed_response, int64_t *expires_r,
					      const char **sc_irt_r)
{
	int64_t skew = j->v->s.clock_skew, nb, noa;
	const char *method = attr(sc, "Method"), *recipient, *sc_irt;
	enum kw_saml_reason r;
	xmlNodePtr data;
	int count;

	if (method == NULL || strcmp(method, CM_BEARER) != 0)
		return fail(j, KW_SAML_SUBJECTCONFIRMATION, "no bearer SubjectConfirmation");
	data = child(sc, NS_SAML, "SubjectConfirmationData", &count);
	if (count != 1)
		return fail(j, KW_SAML_SUBJECTCONFIRMATION, "%d SubjectConfirmationData", count);
	recipient = attr(data, "Recipient");
	/* The profile wants a Recipient; python3-saml and lasso accept none. Without one, the
	 * Response's Destination (checked to be the ACS URL) stands in for it when the Response's
	 * own signature covers it. On an unsigned Response, Destination is the sender's to choose
	 * (and encrypting to our public key is anyone's to do): an Assertion without Recipient
	 * could be re-wrapped for our ACS URL by whoever holds it, so that is accepted only with
	 * allow_missing_recipient, as those SPs do. */
	if (recipient == NULL && (signed_response || j->v->s.allow_missing_recipient) &&
	    attr(sc->parent->parent->parent, "Destination") != NULL)
		recipient = j->v->acs_url;
	if (recipient == NULL || strcmp(recipient, j->v->acs_url) != 0)
		return fail(j, KW_SAML_RECIPIENT, "Recipient \"%s\" is not the ACS URL",
			    recipient != NULL ? recipient : "(none)");
	sc_irt = attr(data, "InResponseTo");
	if (sc_irt != NULL && irt != NULL && strcmp(sc_irt, irt) != 0)
		return fail(j, KW_SAML_SUBJECTCONFIRMATION, "InResponseTo differs");
	r = parse_time(j, data, "NotOnOrAfter", true, &noa);
	if (r != KW_SAML_OK)
		return r;
	r = parse_time(j, data, "NotBefore", false, &nb);
	if (r != KW_SAML_OK)
		return r;
	if (j->now >= noa + skew)
		return fail(j, KW_SAML_TIME, "SubjectConfirmationData NotOnOrAfter passed");
	if (attr(data, "NotBefore") != NULL && j->now + skew < nb)
		return fail(j, KW_SAML_TIME, "SubjectConfirmationData NotBefore in the future");
	*expires_r = noa;
	*sc_irt_r = sc_irt;
	return KW_SAML_OK;
}

static enum kw_saml_reason check_conditions(struct job *j, xmlNodePtr cond, int64_t *expires_r)
{
	int64_t skew = j->v->s.clock_skew, nb, noa;
	enum kw_saml_reason r;
	int audiences = 0;

	r = parse_time(j, cond, "NotBefore", false, &nb);
	if (r == KW_SAML_OK)
		r = parse_time(j, cond, "NotOnOrAfter", false, &noa);
	if (r != KW_SAML_OK)
		return r;
	if (attr(cond, "NotBefore") != NULL && j->now + skew < nb)
		return fail(j, KW_SAML_TIME, "Conditions NotBefore in the future");
	if (attr(cond, "NotOnOrAfter") != NULL) {
		if (j->now >= noa + skew)
			return fail(j, KW_SAML_TIME, "Conditions NotOnOrAfter passed");
		*expires_r = noa;
	}
	for (xmlNodePtr c = first_el(cond); c != NULL; c = next_el(c->next)) {
		if (is_el(c, NS_SAML, "AudienceRestriction")) {
			bool found = false;
			for (xmlNodePtr a = first_el(c); a != NULL; a = next_el(a->next)) {
				if (!is_el(a, NS_SAML, "Audience"))
					return fail(j, KW_SAML_STRUCTURE,
						    "<%s> in AudienceRestriction", a->name);
				if (text_equals(a, j->v->sp_entity_id))
					found = true;
			}
			if (!found)
				return fail(j, KW_SAML_AUDIENCE, "the SP is not an Audience");
			audiences++;
		} else if (!is_el(c, NS_SAML, "OneTimeUse") &&
			   !is_el(c, NS_SAML, "ProxyRestriction")) {
			return fail(j, KW_SAML_CONDITIONS, "unknown condition <%s>", c->name);
		}
	}
	if (audiences == 0)
		return fail(j, KW_SAML_AUDIENCE, "no AudienceRestriction");
	return KW_SAML_OK;
}

static void push_value(char ***list, size_t *n, char *value)
{
	char **l = realloc(*list, (*n + 1) * sizeof(*l));

	if (l == NULL)
		abort();
	l[(*n)++] = value;
	*list = l;
}

static enum kw_saml_reason read_attributes(struct job *j, xmlNodePtr a_el,
					   struct kw_saml_result *res)
{
	const struct kw_saml_verifier *v = j->v;
	const char *names[256];
	size_t n_names = 0;
	bool login_seen = false;

	for (xmlNodePtr st = first_el(a_el); st != NULL; st = next_el(st->next)) {
		if (!is_el(st, NS_SAML, "AttributeStatement"))
			continue;
		for (xmlNodePtr at = first_el(st); at != NULL; at = next_el(at->next)) {
			const char *name;
			bool is_login, is_role, is_email;

			if (is_el(at, NS_SAML, "EncryptedAttribute"))
				return fail(j, KW_SAML_ATTRIBUTE, "EncryptedAttribute");
			if (!is_el(at, NS_SAML, "Attribute"))
				return fail(j, KW_SAML_STRUCTURE, "<%s> in AttributeStatement",
					    at->name);
			name = attr(at, "Name");
			if (name == NULL)
				return fail(j, KW_SAML_ATTRIBUTE, "Attribute without Name");
			for (size_t i = 0; i < n_names; i++) {
				if (strcmp(names[i], name) == 0)
					return fail(j, KW_SAML_ATTRIBUTE,
						    "Attribute %s given twice", name);
			}
			if (n_names >= sizeof(names) / sizeof(names[0]))
				return fail(j, KW_SAML_LIMIT, "too many attributes");
			names[n_names++] = name;
			is_login =
				v->login_attribute != NULL && strcmp(name, v->login_attribute) == 0;
			is_role = v->role_attribute != NULL && strcmp(name, v->role_attribute) == 0;
			is_email =
				v->email_attribute != NULL && strcmp(name, v->email_attribute) == 0;
			if (!is_login && !is_role && !is_email)
				continue;
			for (xmlNodePtr val = first_el(at); val != NULL; val = next_el(val->next)) {
				char *t;
				if (!is_el(val, NS_SAML, "AttributeValue"))
					return fail(j, KW_SAML_STRUCTURE, "<%s> in Attribute",
						    val->name);
				t = whole_text(val);
				if (t == NULL || has_control(t)) {
					free(t);
					return fail(j, KW_SAML_ATTRIBUTE,
						    "value of %s is not plain text", name);
				}
				if (is_login) {
					if (login_seen) {
						free(t);
						return fail(j, KW_SAML_ATTRIBUTE,
							    "%s has several values", name);
					}
					login_seen = true;
					free(res->login);
					res->login = is_role ? kw_strdup_or_empty(t) : t;
				}
				if (is_email && res->email[0] == '\0') {
					free(res->email);
					res->email = kw_strdup_or_empty(t);
				}
				if (is_role)
					push_value(&res->roles, &res->n_roles, t);
				else if (!is_login)
					free(t);
			}
		}
	}
	if (v->login_attribute != NULL && !login_seen)
		return fail(j, KW_SAML_ATTRIBUTE, "no %s attribute", v->login_attribute);
	return KW_SAML_OK;
}

/* Everything after the signatures: a verified Assertion a, its Response root;
 * signed_response: root's own signature has been verified. */
static enum kw_saml_reason check_assertion(struct job *j, xmlNodePtr root, xmlNodePtr a,
					   bool signed_response, struct kw_saml_result *res)
{
	const struct kw_saml_verifier *v = j->v;
	xmlNodePtr c, subject = NULL, cond = NULL, name_id = NULL, authn = NULL;
	int64_t sc_expires = 0, cond_expires = 0;
	enum kw_saml_reason r, first_sc = KW_SAML_OK;
	const char *irt = attr(root, "InResponseTo"), *q, *sc_irt = NULL;
	char first_detail[sizeof(j->v->detail)] = "";
	int stage = 0, n_authn = 0;
	bool confirmed = false;

	/* Schema order: Issuer, Signature?, Subject?, Conditions?, Advice?, statements*. */
	for (c = first_el(a); c != NULL; c = next_el(c->next)) {
		int s;
		if (is_el(c, NS_SAML, "Issuer"))
			s = 1;
		else if (is_el(c, NS_DSIG, "Signature"))
			s = 2;
		else if (is_el(c, NS_SAML, "Subject"))
			s = 3, subject = c;
		else if (is_el(c, NS_SAML, "Conditions"))
			s = 4, cond = c;
		else if (is_el(c, NS_SAML, "Advice"))
			s = 5;
		else if (is_el(c, NS_SAML, "AuthnStatement"))
			s = 6, authn = c, n_authn++;
		else if (is_el(c, NS_SAML, "AttributeStatement") ||
			 is_el(c, NS_SAML, "AuthzDecisionStatement") ||
			 is_el(c, NS_SAML, "Statement"))
			s = 6;
		else
			return fail(j, KW_SAML_STRUCTURE, "unexpected <%s> in Assertion", c->name);
		if (s < stage || (s == stage && s < 6) || (stage == 0 && s != 1))
			return fail(j, KW_SAML_STRUCTURE, "Assertion children out of order at <%s>",
				    c->name);
		stage = s;
	}
	r = check_issuer(j, first_el(a));
	if (r != KW_SAML_OK)
		return r;
	if (subject == NULL)
		return fail(j, KW_SAML_STRUCTURE, "Assertion without Subject");
	if (cond == NULL)
		return fail(j, KW_SAML_STRUCTURE, "Assertion without Conditions");
	if (n_authn != 1)
		return fail(j, KW_SAML_STRUCTURE, "%d AuthnStatements", n_authn);

	/* Subject: (NameID | EncryptedID)?, SubjectConfirmation*. */
	c = first_el(subject);
	if (is_el(c, NS_SAML, "EncryptedID")) {
		r = decrypt_element(j, c, "NameID", &name_id);
		if (r != KW_SAML_OK)
			return r;
		/* The plaintext is new input: limits, no DTD nodes, no IDs, as everywhere. */
		r = walk(j, name_id, 3, root);
		if (r != KW_SAML_OK)
			return r;
		c = next_el(name_id->next);
	} else if (is_el(c, NS_SAML, "NameID")) {
		name_id = c;
		c = next_el(c->next);
	}
	for (; c != NULL; c = next_el(c->next)) {
		int64_t e = 0;
		if (!is_el(c, NS_SAML, "SubjectConfirmation"))
			return fail(j, KW_SAML_STRUCTURE, "unexpected <%s> in Subject", c->name);
		if (confirmed)
			continue;
		const char *this_irt = NULL;
		r = check_confirmation(j, c, irt, signed_response, &e, &this_irt);
		if (r == KW_SAML_OK) {
			confirmed = true;
			sc_expires = e;
			sc_irt = this_irt;
		} else if (first_sc == KW_SAML_OK) {
			first_sc = r;
			memcpy(first_detail, j->v->detail, sizeof(first_detail));
		}
	}
	if (!confirmed) {
		if (first_sc == KW_SAML_OK)
			return fail(j, KW_SAML_SUBJECTCONFIRMATION, "no SubjectConfirmation");
		memcpy(j->v->detail, first_detail, sizeof(first_detail));
		return first_sc;
	}
	if (name_id == NULL)
		return fail(j, KW_SAML_NAMEID, "no NameID");
	res->name_id = whole_text(name_id);
	if (res->name_id == NULL || res->name_id[0] == '\0' || has_control(res->name_id) ||
	    strlen(res->name_id) > 255)
		return fail(j, KW_SAML_NAMEID, "NameID is empty, not text or too long");
	q = attr(name_id, "SPNameQualifier");
	if (q != NULL && strcmp(q, v->sp_entity_id) != 0)
		return fail(j, KW_SAML_NAMEID, "SPNameQualifier is not the SP");
	q = attr(name_id, "Format");
	if (q != NULL && (has_control(q) || strlen(q) > 255))
		return fail(j, KW_SAML_NAMEID, "NameID Format is not a URI");
	res->name_id_format = kw_strdup_or_empty(q);
	/* InResponseTo: the Response's, else that of the bearer SubjectConfirmationData
	 * (check_confirmation() has refused the two when they differ). */
	res->in_response_to = kw_strdup_or_empty(irt != NULL ? irt : sc_irt);
	if (has_control(res->in_response_to) || strlen(res->in_response_to) > 255)
		return fail(j, KW_SAML_SUBJECTCONFIRMATION, "InResponseTo is not an ID");

	r = check_conditions(j, cond, &cond_expires);
	if (r != KW_SAML_OK)
		return r;
	if (attr(authn, "SessionNotOnOrAfter") != NULL) {
		int64_t snoa;
		r = parse_time(j, authn, "SessionNotOnOrAfter", true, &snoa);
		if (r != KW_SAML_OK)
			return r;
		if (j->now >= snoa + v->s.clock_skew)
			return fail(j, KW_SAML_TIME, "SessionNotOnOrAfter passed");
	}
	res->session_index = kw_strdup_or_empty(attr(authn, "SessionIndex"));

	res->login = kw_strdup_or_empty(res->name_id);
	res->email = kw_strdup_or_empty("");
	r = read_attributes(j, a, res);
	if (r != KW_SAML_OK)
		return r;
	if (res->login[0] == '\0' || strlen(res->login) > 255 || has_control(res->login))
		return fail(j, KW_SAML_ATTRIBUTE, "login is empty or too long");
	res->expires = (sc_expires > cond_expires ? sc_expires : cond_expires) + v->s.clock_skew;
	res->issuer = kw_strdup_or_empty(v->idp_entity_id);
	res->assertion_id = kw_strdup_or_empty(attr(a, "ID"));
	return KW_SAML_OK;
}

static enum kw_saml_reason check_response(struct job *j, xmlNodePtr root, bool signed_response)
{
	const char *dest = attr(root, "Destination"), *value;
	xmlNodePtr status, code, issuer;
	enum kw_saml_reason r;
	int count;

	issuer = child(root, NS_SAML, "Issuer", &count);
	if (count > 1)
		return fail(j, KW_SAML_STRUCTURE, "%d Issuers on the Response", count);
	if (issuer != NULL) {
		r = check_issuer(j, issuer);
		if (r != KW_SAML_OK)
			return r;
	}
	status = child(root, NS_SAMLP, "Status", &count);
	if (count != 1)
		return fail(j, KW_SAML_STATUS, "%d Status elements", count);
	code = child(status, NS_SAMLP, "StatusCode", &count);
	value = code != NULL ? attr(code, "Value") : NULL;
	if (count != 1 || value == NULL || strcmp(value, STATUS_SUCCESS) != 0)
		return fail(j, KW_SAML_STATUS, "Status is not Success");
	if (dest == NULL) {
		/* SAML bindings 3.5.5.2: a signed Response must name its Destination. */
		if (signed_response)
			return fail(j, KW_SAML_DESTINATION, "signed Response without Destination");
	} else if (strcmp(dest, j->v->acs_url) != 0) {
		return fail(j, KW_SAML_DESTINATION, "Destination \"%s\" is not the ACS URL", dest);
	}
	return KW_SAML_OK;
}

/* The common front of both verifications: size limit, base64 or raw XML, the hardened parse,
 * top-level nodes, no DTD-declared IDs, and the whole-document walk. On KW_SAML_OK j->doc
 * holds the document; on failure j->doc may hold it too (the caller frees it either way). */
static enum kw_saml_reason load_document(struct job *j, const uint8_t *data, size_t len,
					 const char *root_name)
{
	enum kw_saml_reason r;
	xmlNodePtr root, c;
	uint8_t *decoded = NULL;
	const uint8_t *xml = data;
	size_t xml_len = len, i = 0;

	if (len > KW_SAML_MAX_INPUT)
		return fail(j, KW_SAML_LIMIT, "larger than %d bytes", KW_SAML_MAX_INPUT);
	while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
		i++;
	if (i == len)
		return fail(j, KW_SAML_XML, "empty");
	if (data[i] != '<' && !(len - i >= 3 && memcmp(data + i, "\xef\xbb\xbf", 3) == 0)) {
		if (b64_decode(data + i, len - i, &decoded, &xml_len) < 0)
			return fail(j, KW_SAML_XML, "neither XML nor base64");
		xml = decoded;
	}
	r = prescan(j, xml, xml_len, false, "not parsed");
	if (r != KW_SAML_OK) {
		free(decoded);
		return r;
	}
	j->doc = parse_hardened((const char *)xml, xml_len, &r);
	free(decoded);
	if (j->doc == NULL)
		return fail(j, r, r == KW_SAML_DTD ? "DOCTYPE refused" : "not well-formed XML");

	root = xmlDocGetRootElement(j->doc);
	if (!is_el(root, NS_SAMLP, root_name))
		return fail(j, KW_SAML_STRUCTURE, "root is not samlp:%s", root_name);
	/* Whole-document walk: the only place Assertions and Signatures may be. */
	for (c = j->doc->children; c != NULL; c = c->next) {
		if (c->type != XML_ELEMENT_NODE && c->type != XML_COMMENT_NODE &&
		    c->type != XML_PI_NODE)
			return fail(j, KW_SAML_DTD, "unexpected top-level node");
	}
	if (j->doc->ids != NULL)
		return fail(j, KW_SAML_WRAPPING, "IDs declared by the document");
	return walk(j, root, 0, root);
}

/* Frees what a verification job holds: the registered IDs and the document. */
static void job_release(struct job *j)
{
	for (int k = 0; k < j->n_ids; k++)
		xmlFree(j->ids[k]);
	xmlFreeDoc(j->doc);
}

enum kw_saml_reason kw_saml_verify(struct kw_saml_verifier *v, const uint8_t *data, size_t len,
				   int64_t now, struct kw_saml_result **result_r,
				   const char **detail_r)
{
	struct job j = { .v = v, .now = now };
	struct kw_saml_result *res = NULL;
	enum kw_saml_reason r;
	xmlNodePtr root, a = NULL, c, rsig, asig;
	bool resp_ok = false, assert_ok = false;
	int count;

	v->detail[0] = '\0';
	*detail_r = v->detail;
	r = load_document(&j, data, len, "Response");
	if (r != KW_SAML_OK)
		goto out;
	root = xmlDocGetRootElement(j.doc);
	count = 0;
	for (c = first_el(root); c != NULL; c = next_el(c->next)) {
		if (is_el(c, NS_SAML, "Assertion") || is_el(c, NS_SAML, "EncryptedAssertion")) {
			a = c;
			count++;
		}
	}
	if (count != 1) {
		r = fail(&j, KW_SAML_STRUCTURE, "%d assertions, not exactly one", count);
		goto out;
	}
	r = check_version(&j, root);
	if (r == KW_SAML_OK)
		r = register_id(&j, root);
	if (r != KW_SAML_OK)
		goto out;

	rsig = child(root, NS_DSIG, "Signature", &count);
	if (count > 1) {
		r = fail(&j, KW_SAML_WRAPPING, "%d Signatures on the Response", count);
		goto out;
	}
	if (rsig != NULL) {
		r = verify_signature(&j, rsig, root);
		if (r != KW_SAML_OK)
			goto out;
		resp_ok = true;
	}
	if (is_el(a, NS_SAML, "EncryptedAssertion")) {
		xmlNodePtr plain;
		r = decrypt_element(&j, a, "Assertion", &plain);
		if (r != KW_SAML_OK)
			goto out;
		a = plain;
		/* The plaintext is new input: walk it like the rest. */
		r = walk(&j, a, 1, root);
		if (r != KW_SAML_OK)
			goto out;
	}
	r = check_version(&j, a);
	if (r == KW_SAML_OK)
		r = register_id(&j, a);
	if (r != KW_SAML_OK)
		goto out;
	asig = child(a, NS_DSIG, "Signature", &count);
	if (count > 1) {
		r = fail(&j, KW_SAML_WRAPPING, "%d Signatures on the Assertion", count);
		goto out;
	}
	if (asig != NULL) {
		r = verify_signature(&j, asig, a);
		if (r != KW_SAML_OK)
			goto out;
		assert_ok = true;
	}
	if (!resp_ok && !assert_ok) {
		r = fail(&j, KW_SAML_SIGNATURE, "neither the Response nor the Assertion is signed");
		goto out;
	}

	r = check_response(&j, root, resp_ok);
	if (r != KW_SAML_OK)
		goto out;
	res = calloc(1, sizeof(*res));
	if (res == NULL)
		abort();
	r = check_assertion(&j, root, a, resp_ok, res);
	if (r != KW_SAML_OK)
		goto out;
	*result_r = res;
	res = NULL;
out:
	kw_saml_result_free(&res);
	job_release(&j);
	return r;
}

void kw_saml_result_free(struct kw_saml_result **rp)
{
	struct kw_saml_result *r = *rp;

	if (r == NULL)
		return;
	free(r->login);
	free(r->name_id);
	free(r->issuer);
	free(r->assertion_id);
	free(r->session_index);
	free(r->email);
	free(r->name_id_format);
	free(r->in_response_to);
	for (size_t i = 0; i < r->n_roles; i++)
		free(r->roles[i]);
	free(r->roles);
	free(r);
	*rp = NULL;
}

/* ---- LogoutRequest (single logout, HTTP-POST binding) ---- */

/* Everything of a LogoutRequest after its signature: a verified root. */
static enum kw_saml_reason check_logout(struct job *j, xmlNodePtr root, struct kw_saml_logout *res)
{
	const struct kw_saml_verifier *v = j->v;
	int64_t skew = v->s.clock_skew, issued, noa = 0;
	const char *dest = attr(root, "Destination"), *q;
	xmlNodePtr c, name_id = NULL;
	enum kw_saml_reason r;
	int stage = 0;

	/* Schema order: Issuer, Signature?, Extensions?, (BaseID | NameID | EncryptedID),
	 * SessionIndex*. */
	for (c = first_el(root); c != NULL; c = next_el(c->next)) {
		int s;
		if (is_el(c, NS_SAML, "Issuer"))
			s = 1;
		else if (is_el(c, NS_DSIG, "Signature"))
			s = 2;
		else if (is_el(c, NS_SAMLP, "Extensions"))
			s = 3;
		else if (is_el(c, NS_SAML, "NameID") || is_el(c, NS_SAML, "EncryptedID"))
			s = 4;
		else if (is_el(c, NS_SAMLP, "SessionIndex"))
			s = 5;
		else
			return fail(j, KW_SAML_STRUCTURE, "unexpected <%s> in LogoutRequest",
				    c->name);
		if (s < stage || (s == stage && s < 5) || (stage == 0 && s != 1))
			return fail(j, KW_SAML_STRUCTURE,
				    "LogoutRequest children out of order at <%s>", c->name);
		stage = s;
		if (s == 4) {
			name_id = c;
		} else if (s == 5) {
			char *t = whole_text(c);
			if (t == NULL || t[0] == '\0' || has_control(t) || strlen(t) > 255) {
				free(t);
				return fail(j, KW_SAML_STRUCTURE, "SessionIndex is not plain text");
			}
			if (res->n_session_index++ == 0)
				res->session_index = t;
			else
				free(t);
		}
	}
	r = check_issuer(j, first_el(root));
	if (r != KW_SAML_OK)
		return r;
	/* SAML bindings 3.5.5.2: a signed message names its Destination. */
	if (dest == NULL)
		return fail(j, KW_SAML_DESTINATION, "signed LogoutRequest without Destination");
	if (v->slo_url == NULL || strcmp(dest, v->slo_url) != 0)
		return fail(j, KW_SAML_DESTINATION, "Destination \"%s\" is not the SLO URL", dest);
	r = parse_time(j, root, "IssueInstant", true, &issued);
	if (r == KW_SAML_OK)
		r = parse_time(j, root, "NotOnOrAfter", false, &noa);
	if (r != KW_SAML_OK)
		return r;
	if (issued > j->now + skew)
		return fail(j, KW_SAML_TIME, "IssueInstant in the future");
	if (j->now >= issued + KW_SAML_LOGOUT_MAX_AGE + skew)
		return fail(j, KW_SAML_TIME, "IssueInstant older than %d s",
			    KW_SAML_LOGOUT_MAX_AGE);
	if (attr(root, "NotOnOrAfter") != NULL && j->now >= noa + skew)
		return fail(j, KW_SAML_TIME, "NotOnOrAfter passed");
	if (name_id == NULL)
		return fail(j, KW_SAML_NAMEID, "no NameID (BaseID is not supported)");
	if (is_el(name_id, NS_SAML, "EncryptedID")) {
		xmlNodePtr plain;
		r = decrypt_element(j, name_id, "NameID", &plain);
		if (r != KW_SAML_OK)
			return r;
		name_id = plain;
		r = walk(j, name_id, 1, root);
		if (r != KW_SAML_OK)
			return r;
	}
	res->name_id = whole_text(name_id);
	if (res->name_id == NULL || res->name_id[0] == '\0' || has_control(res->name_id) ||
	    strlen(res->name_id) > 255)
		return fail(j, KW_SAML_NAMEID, "NameID is empty, not text or too long");
	q = attr(name_id, "SPNameQualifier");
	if (q != NULL && strcmp(q, v->sp_entity_id) != 0)
		return fail(j, KW_SAML_NAMEID, "SPNameQualifier is not the SP");
	if (res->session_index == NULL)
		res->session_index = kw_strdup_or_empty("");
	/* Keep the ID until the message could no longer pass the time checks. */
	res->expires = issued + KW_SAML_LOGOUT_MAX_AGE + skew;
	if (attr(root, "NotOnOrAfter") != NULL && noa + skew > res->expires)
		res->expires = noa + skew;
	res->issuer = kw_strdup_or_empty(v->idp_entity_id);
	res->request_id = kw_strdup_or_empty(attr(root, "ID"));
	return KW_SAML_OK;
}

enum kw_saml_reason kw_saml_verify_logout(struct kw_saml_verifier *v, const uint8_t *data,
					  size_t len, int64_t now, struct kw_saml_logout **result_r,
					  const char **detail_r)
{
	struct job j = { .v = v, .now = now };
	struct kw_saml_logout *res = NULL;
	enum kw_saml_reason r;
	xmlNodePtr root, sig, c;
	int count;

	v->detail[0] = '\0';
	*detail_r = v->detail;
	r = load_document(&j, data, len, "LogoutRequest");
	if (r != KW_SAML_OK)
		goto out;
	root = xmlDocGetRootElement(j.doc);
	for (c = first_el(root); c != NULL; c = next_el(c->next)) {
		if (is_el(c, NS_SAML, "Assertion") || is_el(c, NS_SAML, "EncryptedAssertion")) {
			r = fail(&j, KW_SAML_STRUCTURE, "an assertion in a LogoutRequest");
			goto out;
		}
	}
	r = check_version(&j, root);
	if (r == KW_SAML_OK)
		r = register_id(&j, root);
	if (r != KW_SAML_OK)
		goto out;
	/* The HTTP-POST binding carries the signature in the message: it must be there, on the
	 * LogoutRequest itself, and verify with a pinned key, exactly as for a Response. */
	sig = child(root, NS_DSIG, "Signature", &count);
	if (count > 1) {
		r = fail(&j, KW_SAML_WRAPPING, "%d Signatures on the LogoutRequest", count);
		goto out;
	}
	if (sig == NULL) {
		r = fail(&j, KW_SAML_SIGNATURE, "the LogoutRequest is not signed");
		goto out;
	}
	r = verify_signature(&j, sig, root);
	if (r != KW_SAML_OK)
		goto out;
	res = calloc(1, sizeof(*res));
	if (res == NULL)
		abort();
	r = check_logout(&j, root, res);
	if (r != KW_SAML_OK)
		goto out;
	*result_r = res;
	res = NULL;
out:
	kw_saml_logout_free(&res);
	job_release(&j);
	return r;
}

void kw_saml_logout_free(struct kw_saml_logout **rp)
{
	struct kw_saml_logout *r = *rp;

	if (r == NULL)
		return;
	free(r->name_id);
	free(r->issuer);
	free(r->request_id);
	free(r->session_index);
	free(r);
	*rp = NULL;
}

/* ---- configuration: pinned IdP keys and the SP key ---- */

static int pin_certificate(struct kw_saml_verifier *v, xmlNodePtr cert_el, const char *path,
			   const char **error_r)
{
	char *text = whole_text(cert_el);
	uint8_t *der = NULL;
	const uint8_t *p;
	size_t der_len;
	X509 *x = NULL;
	EVP_PKEY *pkey = NULL;
	xmlSecKeyDataPtr data = NULL;
	xmlSecKeyPtr key = NULL;
	int ret = 0;

	if (text == NULL || b64_decode((const uint8_t *)text, strlen(text), &der, &der_len) < 0) {
		ret = kw_error_fail(error_r, -EINVAL, "%s: X509Certificate is not base64", path);
		goto out;
	}
	p = der;
	x = d2i_X509(NULL, &p, (long)der_len);
	if (x == NULL || p != der + der_len) {
		ret = kw_error_fail(error_r, -EINVAL,
				    "%s: X509Certificate is not a DER certificate", path);
		goto out;
	}
	pkey = X509_get_pubkey(x);
	if (pkey == NULL || EVP_PKEY_base_id(pkey) != EVP_PKEY_RSA || EVP_PKEY_bits(pkey) < 1024) {
		ret = kw_error_fail(error_r, -EINVAL,
				    "%s: certificate key is not RSA of 1024 bits or more", path);
		goto out;
	}
	if (v->n_keys >= KW_SAML_MAX_KEYS) {
		ret = kw_error_fail(error_r, -EINVAL, "%s: more than %d signing certificates", path,
				    KW_SAML_MAX_KEYS);
		goto out;
	}
	data = xmlSecOpenSSLEvpKeyAdopt(pkey);
	if (data == NULL)
		goto xmlsec_fail;
	pkey = NULL;
	key = xmlSecKeyCreate();
	if (key == NULL || xmlSecKeySetValue(key, data) < 0)
		goto xmlsec_fail;
	data = NULL;
	if (xmlSecOpenSSLAppDefaultKeysMngrAdoptKey(v->mngr, key) < 0)
		goto xmlsec_fail;
	v->keys[v->n_keys++] = key;
	key = NULL;
	goto out;
xmlsec_fail:
	ret = kw_error_fail(error_r, -EINVAL, "%s: xmlsec1 cannot use the certificate key", path);
out:
	if (key != NULL)
		xmlSecKeyDestroy(key);
	if (data != NULL)
		xmlSecKeyDataDestroy(data);
	EVP_PKEY_free(pkey);
	X509_free(x);
	free(der);
	free(text);
	return ret;
}

#define BINDING_REDIRECT "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"

/* The metadata file's own signature (root, an EntityDescriptor or EntitiesDescriptor), checked
 * with the key of the PEM certificate cert_path: one Signature, its one Reference to the root's
 * ID, the algorithms allowed for Responses. */
static int check_metadata_signature(struct kw_saml_verifier *v, xmlDocPtr doc, xmlNodePtr root,
				    const char *path, const char *cert_path, const char **error_r)
{
	xmlSecDSigCtxPtr ctx = NULL;
	xmlSecKeyPtr key = NULL;
	xmlNodePtr sig, si, ref, sm;
	const char *id = attr(root, "ID"), *uri, *alg;
	xmlAttrPtr id_attr = xmlHasNsProp(root, (const xmlChar *)"ID", NULL);
	int count, ret = 0;

	sig = child(root, NS_DSIG, "Signature", &count);
	if (count != 1)
		return kw_error_fail(error_r, -EINVAL,
				     "%s: %d Signatures on the metadata, need one "
				     "([sso] idp_metadata_cert is set)",
				     path, count);
	if (id == NULL || id[0] == '\0' || id_attr == NULL)
		return kw_error_fail(error_r, -EINVAL, "%s: signed metadata without ID", path);
	si = first_el(sig);
	ref = is_el(si, NS_DSIG, "SignedInfo") ? child(si, NS_DSIG, "Reference", &count) : NULL;
	uri = ref != NULL ? attr(ref, "URI") : NULL;
	if (ref == NULL || count != 1 || uri == NULL || uri[0] != '#' || strcmp(uri + 1, id) != 0)
		return kw_error_fail(error_r, -EINVAL,
				     "%s: the metadata signature has not one Reference to #%s",
				     path, id);
	sm = child(si, NS_DSIG, "SignatureMethod", NULL);
	alg = sm != NULL ? attr(sm, "Algorithm") : NULL;
	if (alg == NULL || !sig_alg_ok(v, alg))
		return kw_error_fail(error_r, -EINVAL,
				     "%s: algorithm: metadata signature method %s not allowed",
				     path, alg != NULL ? alg : "(none)");
	if (xmlAddID(NULL, doc, (const xmlChar *)id, id_attr) == NULL)
		return kw_error_fail(error_r, -EINVAL, "%s: cannot register the metadata ID", path);
	key = xmlSecOpenSSLAppKeyLoad(cert_path, xmlSecKeyDataFormatCertPem, NULL, NULL, NULL);
	if (key == NULL)
		return kw_error_fail(error_r, -EINVAL,
				     "[sso] idp_metadata_cert: %s is not a PEM certificate",
				     cert_path);
	ctx = xmlSecDSigCtxCreate(NULL);
	if (ctx == NULL)
		abort();
	ctx->signKey = key;
	key = NULL;
	if (enable_dsig_transforms(v, ctx) < 0 || xmlSecDSigCtxVerify(ctx, sig) < 0 ||
	    ctx->status != xmlSecDSigStatusSucceeded)
		ret = kw_error_fail(error_r, -EINVAL,
				    "%s: the metadata signature does not verify with the key of "
				    "[sso] idp_metadata_cert %s",
				    path, cert_path);
	xmlSecDSigCtxDestroy(ctx);
	return ret;
}

/* The EntityDescriptor of the IdP in root: root itself, or, in an EntitiesDescriptor (nested
 * ones too), the one whose entityID is want (or the only one with an IDPSSODescriptor). */
static xmlNodePtr find_entity(xmlNodePtr root, const char *want, int *found)
{
	xmlNodePtr hit = NULL;

	if (is_el(root, NS_MD, "EntityDescriptor")) {
		const char *e = attr(root, "entityID");
		if (want != NULL ? (e != NULL && strcmp(e, want) == 0)
				 : child(root, NS_MD, "IDPSSODescriptor", NULL) != NULL) {
			(*found)++;
			return root;
		}
		return NULL;
	}
	if (!is_el(root, NS_MD, "EntitiesDescriptor"))
		return NULL;
	for (xmlNodePtr c = first_el(root); c != NULL; c = next_el(c->next)) {
		xmlNodePtr h = find_entity(c, want, found);
		if (h != NULL && hit == NULL)
			hit = h;
	}
	return hit;
}

static int load_metadata(struct kw_saml_verifier *v, const char *path, const char **error_r)
{
	enum kw_saml_reason why;
	xmlDocPtr doc = NULL;
	xmlNodePtr root, idp, ent;
	FILE *f;
	char *buf = NULL;
	size_t len;
	const char *entity, *want;
	int ret = 0, count, found = 0;

	f = fopen(path, "re");
	if (f == NULL)
		return kw_error_fail(error_r, -EINVAL, "cannot read %s: %s", path, strerror(errno));
	buf = malloc(16 * 1024 * 1024 + 1);
	if (buf == NULL)
		abort();
	/* a federation's EntitiesDescriptor runs to megabytes */
	len = fread(buf, 1, 16 * 1024 * 1024 + 1, f);
	fclose(f);
	if (len > 16 * 1024 * 1024) {
		ret = kw_error_fail(error_r, -EINVAL, "%s: larger than 16 MiB", path);
		goto out;
	}
	doc = parse_hardened(buf, len, &why);
	if (doc == NULL) {
		ret = kw_error_fail(error_r, -EINVAL, "%s: not well-formed XML without DOCTYPE",
				    path);
		goto out;
	}
	root = xmlDocGetRootElement(doc);
	if (!is_el(root, NS_MD, "EntityDescriptor") && !is_el(root, NS_MD, "EntitiesDescriptor")) {
		ret = kw_error_fail(
			error_r, -EINVAL,
			"%s: root is neither md:EntityDescriptor nor md:EntitiesDescriptor", path);
		goto out;
	}
	if (v->s.idp_metadata_cert != NULL) {
		ret = check_metadata_signature(v, doc, root, path, v->s.idp_metadata_cert, error_r);
		if (ret < 0)
			goto out;
	}
	want = v->s.idp_entity_id;
	ent = find_entity(root, want, &found);
	if (ent == NULL) {
		ret = want != NULL
			      ? kw_error_fail(error_r, -EINVAL,
					      "%s: no EntityDescriptor with entityID \"%s\" "
					      "([sso] idp_entity_id)",
					      path, want)
			      : kw_error_fail(error_r, -EINVAL,
					      "%s: no EntityDescriptor with an IDPSSODescriptor",
					      path);
		goto out;
	}
	if (found > 1) {
		ret = kw_error_fail(
			error_r, -EINVAL,
			"%s: %d identity providers; set [sso] idp_entity_id to choose one", path,
			found);
		goto out;
	}
	entity = attr(ent, "entityID");
	if (entity == NULL || entity[0] == '\0') {
		ret = kw_error_fail(error_r, -EINVAL, "%s: EntityDescriptor without entityID",
				    path);
		goto out;
	}
	v->idp_entity_id = kw_strdup_or_empty(entity);
	idp = child(ent, NS_MD, "IDPSSODescriptor", &count);
	if (count != 1) {
		ret = kw_error_fail(error_r, -EINVAL, "%s: %d IDPSSODescriptor elements, need one",
				    path, count);
		goto out;
	}
	{
		const char *w = attr(idp, "WantAuthnRequestsSigned");
		v->want_signed_requests =
			w != NULL && (strcmp(w, "true") == 0 || strcmp(w, "1") == 0);
	}
	for (xmlNodePtr kd = first_el(idp); kd != NULL; kd = next_el(kd->next)) {
		const char *use;
		xmlNodePtr ki, xd;
		if (is_el(kd, NS_MD, "SingleSignOnService") && v->sso_url == NULL) {
			const char *b = attr(kd, "Binding"), *loc = attr(kd, "Location");
			if (b != NULL && strcmp(b, BINDING_REDIRECT) == 0 && loc != NULL &&
			    (strncmp(loc, "https://", 8) == 0 || strncmp(loc, "http://", 7) == 0) &&
			    !has_control(loc) && strchr(loc, '#') == NULL)
				v->sso_url = kw_strdup_or_empty(loc);
			continue;
		}
		if (!is_el(kd, NS_MD, "KeyDescriptor"))
			continue;
		use = attr(kd, "use");
		if (use != NULL && strcmp(use, "signing") != 0)
			continue;
		ki = child(kd, NS_DSIG, "KeyInfo", NULL);
		xd = ki != NULL ? child(ki, NS_DSIG, "X509Data", NULL) : NULL;
		if (xd == NULL)
			continue;
		for (xmlNodePtr c = first_el(xd); c != NULL; c = next_el(c->next)) {
			if (!is_el(c, NS_DSIG, "X509Certificate"))
				continue;
			ret = pin_certificate(v, c, path, error_r);
			if (ret < 0)
				goto out;
		}
	}
	if (v->n_keys == 0)
		ret = kw_error_fail(error_r, -EINVAL,
				    "%s: no signing certificate in the IDPSSODescriptor", path);
out:
	xmlFreeDoc(doc);
	free(buf);
	return ret;
}

int kw_saml_verifier_new(const struct kw_saml_settings *settings, const char *idp_metadata_path,
			 const char *sp_key_path, struct kw_saml_verifier **v_r,
			 const char **error_r)
{
	struct kw_saml_verifier *v = calloc(1, sizeof(*v));
	int ret;

	if (v == NULL)
		abort();
	v->s = *settings;
	v->sp_entity_id = kw_strdup_or_empty(settings->sp_entity_id);
	v->acs_url = kw_strdup_or_empty(settings->acs_url);
	v->slo_url = settings->slo_url != NULL ? kw_strdup_or_empty(settings->slo_url) : NULL;
	v->login_attribute = settings->login_attribute != NULL
				     ? kw_strdup_or_empty(settings->login_attribute)
				     : NULL;
	v->role_attribute = settings->role_attribute != NULL
				    ? kw_strdup_or_empty(settings->role_attribute)
				    : NULL;
	v->email_attribute = settings->email_attribute != NULL
				     ? kw_strdup_or_empty(settings->email_attribute)
				     : NULL;
	v->mngr = xmlSecKeysMngrCreate();
	if (v->mngr == NULL || xmlSecOpenSSLAppDefaultKeysMngrInit(v->mngr) < 0) {
		ret = kw_error_fail(error_r, -EINVAL, "cannot create the xmlsec1 keys manager");
		goto fail;
	}
	/* Keys come from the pinned list only; <KeyInfo> in a message is never read. */
	v->mngr->getKey = pinned_get_key;
	ret = load_metadata(v, idp_metadata_path, error_r);
	if (ret < 0)
		goto fail;
	if (sp_key_path != NULL) {
		v->sp_key = xmlSecOpenSSLAppKeyLoad(sp_key_path, xmlSecKeyDataFormatPem, NULL, NULL,
						    NULL);
		if (v->sp_key == NULL || xmlSecKeyGetValue(v->sp_key) == NULL ||
		    !xmlSecKeyDataCheckId(xmlSecKeyGetValue(v->sp_key),
					  xmlSecOpenSSLKeyDataRsaId) ||
		    (xmlSecKeyGetType(v->sp_key) & xmlSecKeyDataTypePrivate) == 0) {
			ret = kw_error_fail(error_r, -EINVAL, "%s: not a PEM RSA private key",
					    sp_key_path);
			goto fail;
		}
	}
	*v_r = v;
	return 0;
fail:
	kw_saml_verifier_free(&v);
	return ret;
}

void kw_saml_verifier_free(struct kw_saml_verifier **vp)
{
	struct kw_saml_verifier *v = *vp;

	if (v == NULL)
		return;
	if (v->mngr != NULL)
		xmlSecKeysMngrDestroy(v->mngr);
	if (v->sp_key != NULL)
		xmlSecKeyDestroy(v->sp_key);
	free(v->sp_entity_id);
	free(v->acs_url);
	free(v->slo_url);
	free(v->login_attribute);
	free(v->role_attribute);
	free(v->email_attribute);
	free(v->idp_entity_id);
	free(v->sso_url);
	free(v);
	*vp = NULL;
}

const char *kw_saml_verifier_idp_entity_id(const struct kw_saml_verifier *v)
{
	return v->idp_entity_id;
}

unsigned kw_saml_verifier_key_count(const struct kw_saml_verifier *v)
{
	return v->n_keys;
}

const char *kw_saml_verifier_sso_url(const struct kw_saml_verifier *v)
{
	return v->sso_url;
}

bool kw_saml_verifier_wants_signed_requests(const struct kw_saml_verifier *v)
{
	return v->want_signed_requests;
}
