/* login.c: SP-initiated sign-in, the AuthnRequest and where the browser goes (see login.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <zlib.h>

#include "error.h"
#include "login.h"
#include "metadata.h"
#include "sso_apply.h"
#include "store_sso.h"
#include "timeutil.h"

#define SIGALG_RSA_SHA256 "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"

bool kw_ssod_next_ok(const char *next)
{
	size_t n;

	if (next == NULL || next[0] != '/')
		return false;
	/* "//host" and "/\host" are another host to a browser */
	if (next[1] == '/' || next[1] == '\\')
		return false;
	n = strlen(next);
	if (n > KW_SSOD_NEXT_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)next[i];
		/* no blanks, controls, non-ASCII or backslashes (which browsers turn into '/') */
		if (c <= 0x20 || c >= 0x7f || c == '\\')
			return false;
	}
	return true;
}

/* Percent-encodes every byte but the unreserved ones (RFC 3986). */
static void url_encode(FILE *f, const unsigned char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			fputc(c, f);
		} else {
			fputc('%', f);
			fputc(hex[c >> 4], f);
			fputc(hex[c & 15], f);
		}
	}
}

static char *base64(const unsigned char *in, size_t len)
{
	char *out = malloc((len + 2) / 3 * 4 + 1);

	if (out == NULL)
		abort();
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	return out;
}

/* Raw DEFLATE (RFC 1951), as the HTTP-Redirect binding wants; caller frees. */
static int deflate_raw(const char *in, size_t len, unsigned char **out_r, size_t *len_r)
{
	z_stream z;
	unsigned char *out;
	uLong bound;

	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	bound = deflateBound(&z, (uLong)len);
	out = malloc(bound);
	if (out == NULL)
		abort();
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)bound;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
		deflateEnd(&z);
		free(out);
		return -EIO;
	}
	*len_r = z.total_out;
	deflateEnd(&z);
	*out_r = out;
	return 0;
}

/* The RSA-SHA256 signature of text with the PEM key in path, base64; caller frees. */
static int sign_query(const char *path, const char *text, char **sig_r, const char **error_r)
{
	FILE *f = fopen(path, "re");
	EVP_PKEY *key = NULL;
	EVP_MD_CTX *md = NULL;
	unsigned char *sig = NULL;
	size_t sig_len = 0;
	int ret = 0;

	if (f == NULL)
		return kw_error_fail(error_r, -EIO, "[sso] sp_key: cannot read %s", path);
	key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	md = EVP_MD_CTX_new();
	if (key == NULL || md == NULL ||
	    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) <= 0 ||
	    EVP_DigestSign(md, NULL, &sig_len, (const unsigned char *)text, strlen(text)) <= 0) {
		ret = kw_error_fail(error_r, -EIO, "[sso] sp_key: cannot sign with %s", path);
		goto out;
	}
	sig = malloc(sig_len);
	if (sig == NULL)
		abort();
	if (EVP_DigestSign(md, sig, &sig_len, (const unsigned char *)text, strlen(text)) <= 0) {
		ret = kw_error_fail(error_r, -EIO, "[sso] sp_key: cannot sign with %s", path);
		goto out;
	}
	*sig_r = base64(sig, sig_len);
out:
	free(sig);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key); /* frees (and wipes) the private key */
	return ret;
}

int kw_ssod_authn_request(struct kw_ssod *d, const char *next, int64_t now, char **location_r,
			  const char **error_r)
{
	const char *sso_url = kw_saml_verifier_sso_url(d->v);
	unsigned char rnd[20], *deflated = NULL;
	char id[2 + 2 * sizeof(rnd) + 1], instant[32], *xml = NULL, *b64 = NULL, *query = NULL;
	char *sig = NULL, *loc = NULL;
	size_t xml_len = 0, deflated_len = 0, query_len = 0, loc_len = 0;
	unsigned first = 0;
	FILE *f;
	int ret;

	if (sso_url == NULL)
		return kw_error_fail(error_r, -ENOENT,
				     "the IdP's metadata names no SingleSignOnService with the "
				     "HTTP-Redirect binding");
	if (next != NULL && next[0] != '\0' && !kw_ssod_next_ok(next))
		return kw_error_fail(error_r, -EINVAL, "next is not a path on this site");
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return kw_error_fail(error_r, -EIO, "no random bytes for the request ID");
	id[0] = '_';
	id[1] = 'k';
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(id + 2 + 2 * i, 3, "%02x", rnd[i]);
	kw_time_format(now, instant);
	while (first < KW_SSO_NAMEID_COUNT && (d->sso->nameid_first & (1u << first)) == 0)
		first++;

	f = open_memstream(&xml, &xml_len);
	if (f == NULL)
		abort();
	fprintf(f,
		"<samlp:AuthnRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" "
		"xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"%s\" Version=\"2.0\" "
		"IssueInstant=\"%s\" Destination=\"",
		id, instant);
	kw_ssod_markup_escape(f, sso_url);
	fputs("\" ProtocolBinding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\" "
	      "AssertionConsumerServiceURL=\"",
	      f);
	kw_ssod_markup_escape(f, d->sso->saml.acs_url);
	fputs("\"><saml:Issuer>", f);
	kw_ssod_markup_escape(f, d->sso->saml.sp_entity_id);
	fputs("</saml:Issuer>", f);
	if (first < KW_SSO_NAMEID_COUNT)
		fprintf(f, "<samlp:NameIDPolicy Format=\"%s\" AllowCreate=\"true\"/>",
			kw_sso_nameid_uri(first));
	fputs("</samlp:AuthnRequest>", f);
	if (fclose(f) != 0)
		abort();

	ret = deflate_raw(xml, xml_len, &deflated, &deflated_len);
	if (ret < 0) {
		ret = kw_error_fail(error_r, ret, "cannot deflate the AuthnRequest");
		goto out;
	}
	b64 = base64(deflated, deflated_len);
	f = open_memstream(&query, &query_len);
	if (f == NULL)
		abort();
	fputs("SAMLRequest=", f);
	url_encode(f, (const unsigned char *)b64, strlen(b64));
	if (kw_saml_verifier_wants_signed_requests(d->v)) {
		fputs("&SigAlg=", f);
		url_encode(f, (const unsigned char *)SIGALG_RSA_SHA256, strlen(SIGALG_RSA_SHA256));
	}
	if (fclose(f) != 0)
		abort();
	if (kw_saml_verifier_wants_signed_requests(d->v)) {
		if (d->sso->sp_key == NULL) {
			ret = kw_error_fail(error_r, -EINVAL,
					    "the IdP wants signed AuthnRequests, and [sso] sp_key "
					    "is not set");
			goto out;
		}
		ret = sign_query(d->sso->sp_key, query, &sig, error_r);
		if (ret < 0)
			goto out;
	}
	ret = kw_store_sso_request_add(d->store, id, next != NULL ? next : "",
				       now + (int64_t)d->sso->request_lifetime, now, error_r);
	if (ret < 0)
		goto out;
	f = open_memstream(&loc, &loc_len);
	if (f == NULL)
		abort();
	fprintf(f, "%s%c%s", sso_url, strchr(sso_url, '?') != NULL ? '&' : '?', query);
	if (sig != NULL) {
		fputs("&Signature=", f);
		url_encode(f, (const unsigned char *)sig, strlen(sig));
	}
	if (fclose(f) != 0)
		abort();
	*location_r = loc;
out:
	free(sig);
	free(query);
	free(b64);
	free(deflated);
	free(xml);
	return ret;
}
