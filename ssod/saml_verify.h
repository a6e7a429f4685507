/* saml_verify.h: strict verification of one SAML 2.0 Response (Web Browser SSO profile) or
 * one LogoutRequest (single logout).
 *
 * A pure unit: bytes, settings and a clock go in; a verdict, a reason class and the login and
 * attributes of the verified Assertion come out. No store, no network, no global clock. The
 * replay cache and the user sync are the caller's (lib/sso.h), so that the ingest
 * command, the HTTP part and the benchmark share this code.
 *
 * What is checked (see keywarden-ssod(8)): a linear scan of the raw XML before it is parsed
 * (xml_prescan.h: attributes per element and in all, elements, depth, no DTD); a hardened
 * parse (no DTD, no entities, no network, limits on size, depth and nodes); exactly one Assertion or EncryptedAssertion, as a child of
 * the Response; a signature on the Response or on the Assertion, verified with a key pinned
 * from the IdP metadata only, never one carried in the message; exactly one Reference, to the
 * signed element's own ID; only enveloped and exclusive-c14n transforms; RSA-SHA-256/384/512
 * (SHA-1 only when allowed); IDs registered only on the Response and the Assertion, duplicates
 * refused; Status, Issuer, Destination, Audience, bearer SubjectConfirmation, time windows
 * with clock skew; values read only from the verified Assertion, as whole text without
 * comments.
 *
 * Thread-safety: a struct kw_saml_verifier may be used by one thread at a time;
 * kw_saml_global_init() must have run once before. */
#ifndef KW_SAML_VERIFY_H
#define KW_SAML_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KW_SAML_MAX_INPUT (256 * 1024) /* bytes of a Response (XML or base64) */
#define KW_SAML_MAX_DEPTH 48
#define KW_SAML_MAX_NODES 20000
/* Checked on the raw XML before libxml2 parses it (xml_prescan.h), with the depth above and
 * KW_SAML_MAX_NODES elements: attributes of one element (namespace declarations included) and
 * of the whole document (or of a decrypted Assertion). */
#define KW_SAML_MAX_ATTRIBUTES 64
#define KW_SAML_MAX_ATTRIBUTES_ALL 10000
#define KW_SAML_MAX_KEYS 8 /* pinned IdP certificates (rollover) */
/* A LogoutRequest is accepted this long after its IssueInstant (plus the clock skew). */
#define KW_SAML_LOGOUT_MAX_AGE 300

enum kw_saml_reason {
	KW_SAML_OK = 0,
	KW_SAML_XML,        /* not well-formed, not base64, wrong root */
	KW_SAML_DTD,        /* a DOCTYPE or an entity reference */
	KW_SAML_LIMIT,      /* too large, too deep, too many nodes */
	KW_SAML_STRUCTURE,  /* missing/duplicated elements, bad Version/ID, two assertions */
	KW_SAML_WRAPPING,   /* misplaced Assertion or Signature, duplicate IDs */
	KW_SAML_REFERENCE,  /* not exactly one Reference to the signed element's ID */
	KW_SAML_ALGORITHM,  /* a transform, digest, signature or encryption not allowed */
	KW_SAML_SIGNATURE,  /* unsigned, or no pinned key verifies it */
	KW_SAML_DECRYPTION, /* an encrypted element that cannot be decrypted */
	KW_SAML_STATUS,     /* Status not Success */
	KW_SAML_ISSUER,
	KW_SAML_DESTINATION,
	KW_SAML_AUDIENCE,
	KW_SAML_RECIPIENT,
	KW_SAML_SUBJECTCONFIRMATION,
	KW_SAML_TIME,
	KW_SAML_CONDITIONS, /* an unknown Condition */
	KW_SAML_NAMEID,
	KW_SAML_ATTRIBUTE,
	KW_SAML_REPLAY, /* set by the replay cache, never by kw_saml_verify() */
	/* set by the caller: InResponseTo names no AuthnRequest we sent, or an unsolicited
	 * Response when those are not allowed */
	KW_SAML_IN_RESPONSE_TO,
	KW_SAML_REASON_COUNT
};

struct kw_saml_settings {
	const char *sp_entity_id;
	const char *acs_url;
	const char *slo_url;         /* NULL: every LogoutRequest is refused (destination) */
	const char *login_attribute; /* NULL: the NameID */
	const char *role_attribute;  /* NULL: no roles */
	const char *email_attribute; /* NULL: no email address is taken from assertions */
	int64_t clock_skew;          /* seconds */
	bool allow_sha1;
	bool allow_legacy_encryption;
	bool allow_missing_recipient; /* an unsigned Destination may stand in for Recipient */
	/* idp_metadata may be an EntitiesDescriptor: the EntityDescriptor with this entityID is
	 * the IdP (NULL: the file must hold one IdP) */
	const char *idp_entity_id;
	/* PEM certificate whose key must have signed the metadata file (NULL: not checked) */
	const char *idp_metadata_cert;
};

/* The verified facts of one accepted Response. Strings are NUL-terminated and never NULL
 * (empty when absent). */
struct kw_saml_result {
	char *login;
	char *name_id;
	char *issuer;
	char *assertion_id;
	char *session_index;
	int64_t expires;      /* keep the assertion ID in the replay cache until then */
	char *email;          /* first value of email_attribute, "" when none */
	char *name_id_format; /* the NameID's Format, "" when it has none */
	/* the Response's InResponseTo (or that of its SubjectConfirmationData), "" when the
	 * Response is unsolicited; which request it answers is the caller's to check */
	char *in_response_to;
	char **roles; /* values of role_attribute */
	size_t n_roles;
};

struct kw_saml_verifier;

/* Once per process: libxml2 and xmlsec1 with network and external entities off. */
int kw_saml_global_init(const char **error_r);
void kw_saml_global_deinit(void);

/* Pins the IdP: entity ID and signing certificates from the EntityDescriptor in
 * idp_metadata_path; sp_key_path (PEM, may be NULL) decrypts EncryptedAssertion/EncryptedID.
 * Copies settings. error_r names the file and what is wrong. Free with
 * kw_saml_verifier_free(). */
int kw_saml_verifier_new(const struct kw_saml_settings *settings, const char *idp_metadata_path,
			 const char *sp_key_path, struct kw_saml_verifier **v_r,
			 const char **error_r);
void kw_saml_verifier_free(struct kw_saml_verifier **v);
const char *kw_saml_verifier_idp_entity_id(const struct kw_saml_verifier *v);
unsigned kw_saml_verifier_key_count(const struct kw_saml_verifier *v);
/* The IdP's SingleSignOnService for the HTTP-Redirect binding, or NULL when its metadata names
 * none; and whether its metadata says WantAuthnRequestsSigned. */
const char *kw_saml_verifier_sso_url(const struct kw_saml_verifier *v);
bool kw_saml_verifier_wants_signed_requests(const struct kw_saml_verifier *v);

/* Verifies data (raw XML, or base64 of it as the HTTP-POST binding carries it) at instant now.
 * Returns KW_SAML_OK and *result_r (free with kw_saml_result_free()), or a reason with detail
 * in *detail_r (static or owned by v, valid until the next call). */
enum kw_saml_reason kw_saml_verify(struct kw_saml_verifier *v, const uint8_t *data, size_t len,
				   int64_t now, struct kw_saml_result **result_r,
				   const char **detail_r);
void kw_saml_result_free(struct kw_saml_result **r);

/* The verified facts of one accepted LogoutRequest; strings never NULL. */
struct kw_saml_logout {
	char *name_id;
	char *issuer;
	char *request_id;
	char *session_index; /* the first SessionIndex, "" when none */
	unsigned n_session_index;
	int64_t expires; /* keep the request ID in the replay cache until then */
};

/* Verifies a LogoutRequest (raw XML or base64, as the HTTP-POST binding carries it) with the
 * same hardened parse and strict signature code as kw_saml_verify(): the LogoutRequest itself
 * must be signed by a pinned key; Issuer, Destination (= slo_url), IssueInstant (no older
 * than KW_SAML_LOGOUT_MAX_AGE), NotOnOrAfter and the NameID (or EncryptedID) are checked.
 * Free *result_r with kw_saml_logout_free(). */
enum kw_saml_reason kw_saml_verify_logout(struct kw_saml_verifier *v, const uint8_t *data,
					  size_t len, int64_t now, struct kw_saml_logout **result_r,
					  const char **detail_r);
void kw_saml_logout_free(struct kw_saml_logout **r);

const char *kw_saml_reason_name(enum kw_saml_reason reason);

#endif
