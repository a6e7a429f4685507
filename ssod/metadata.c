/* metadata.c: the SP metadata keywarden-ssod serves at GET /saml/metadata (see metadata.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "metadata.h"

#define BINDING_POST "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"

static const char *const enc_methods[] = {
	"http://www.w3.org/2009/xmlenc11#aes256-gcm",
	"http://www.w3.org/2009/xmlenc11#aes128-gcm",
	"http://www.w3.org/2009/xmlenc11#rsa-oaep",
	"http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
};

void kw_ssod_markup_escape(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&#39;", f); /* &apos; is not HTML 4 */
			break;
		default:
			fputc(*s, f);
		}
	}
}

/* The base64 DER of the PEM certificate in path; caller frees. */
static char *cert_base64(const char *path)
{
	FILE *f = fopen(path, "re");
	unsigned char *der = NULL;
	char *b64;
	X509 *x;
	int len;

	if (f == NULL)
		return NULL;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL)
		return NULL;
	len = i2d_X509(x, &der);
	X509_free(x);
	if (len <= 0)
		return NULL;
	b64 = malloc((size_t)(len + 2) / 3 * 4 + 1);
	if (b64 == NULL)
		abort();
	EVP_EncodeBlock((unsigned char *)b64, der, len);
	OPENSSL_free(der);
	return b64;
}

int kw_ssod_metadata(const struct kw_sso_config *sso, char **xml_r, size_t *len_r,
		     const char **error_r)
{
	char *cert = NULL, *buf = NULL;
	size_t len = 0;
	FILE *f;

	if (sso->sp_cert != NULL) {
		cert = cert_base64(sso->sp_cert);
		if (cert == NULL) {
			*error_r = "[sso] sp_cert: cannot read the certificate";
			return -EINVAL;
		}
	}
	f = open_memstream(&buf, &len);
	if (f == NULL)
		abort();
	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	      "<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" "
	      "xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" entityID=\"",
	      f);
	kw_ssod_markup_escape(f, sso->saml.sp_entity_id);
	fputs("\">\n  <md:SPSSODescriptor AuthnRequestsSigned=\"false\" "
	      "WantAssertionsSigned=\"true\" "
	      "protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">\n",
	      f);
	if (cert != NULL) {
		static const char *const uses[] = { "signing", "encryption" };
		for (size_t i = 0; i < 2; i++) {
			fprintf(f,
				"    <md:KeyDescriptor use=\"%s\"><ds:KeyInfo><ds:X509Data>"
				"<ds:X509Certificate>%s</ds:X509Certificate></ds:X509Data>"
				"</ds:KeyInfo>",
				uses[i], cert);
			/* what the IdP should encrypt with, best first (saml_verify.c does these
			 * and, with allow_legacy_encryption, the CBC modes and rsa-1_5) */
			if (i == 1) {
				fputs("\n", f);
				for (size_t k = 0; k < sizeof(enc_methods) / sizeof(enc_methods[0]);
				     k++)
					fprintf(f,
						"      <md:EncryptionMethod Algorithm=\"%s\"/>\n",
						enc_methods[k]);
				fputs("    ", f);
			}
			fputs("</md:KeyDescriptor>\n", f);
		}
	}
	if (sso->slo_url != NULL) {
		fputs("    <md:SingleLogoutService Binding=\"" BINDING_POST "\" Location=\"", f);
		kw_ssod_markup_escape(f, sso->slo_url);
		fputs("\"/>\n", f);
	}
	for (unsigned i = 0; i < KW_SSO_NAMEID_COUNT; i++) {
		if ((sso->nameid_formats & (1u << i)) != 0)
			fprintf(f, "    <md:NameIDFormat>%s</md:NameIDFormat>\n",
				kw_sso_nameid_uri(i));
	}
	fputs("    <md:AssertionConsumerService Binding=\"" BINDING_POST "\" Location=\"", f);
	kw_ssod_markup_escape(f, sso->saml.acs_url);
	fputs("\" index=\"0\" isDefault=\"true\"/>\n  </md:SPSSODescriptor>\n"
	      "</md:EntityDescriptor>\n",
	      f);
	if (fclose(f) != 0)
		abort();
	free(cert);
	*xml_r = buf;
	*len_r = len;
	return 0;
}
