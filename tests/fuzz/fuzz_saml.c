/* fuzz_saml.c: libFuzzer target over SAML Response parsing and verification.
 *
 * The verifier is set up once like the corpus row valid_response.xml (its IdP certificate
 * pinned, the SP key for encrypted assertions, SHA-1 and legacy encryption allowed, the clock
 * at that row's instant), so that mutated inputs reach every check, decryption included. Seed
 * corpus: tests/saml/corpus/python3-saml/responses. KW_SAML_CORPUS is the folder of that
 * corpus, given at build time. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "saml_verify.h"
#include "timeutil.h"

#ifndef KW_SAML_CORPUS
#error "build with -DKW_SAML_CORPUS=\"<srcdir>/tests/saml/corpus/python3-saml\""
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct kw_saml_verifier *verifier;
static int64_t fuzz_now;

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_saml: %s: %s\n", what, detail);
	exit(1);
}

/* Writes IdP metadata for the corpus certificate into a private temporary folder. */
static void write_metadata(char *path, size_t size)
{
	char dir[] = "/tmp/kw-fuzz-saml-XXXXXX", line[256], cert[8192] = "";
	FILE *in, *out;
	int inside = 0;

	if (mkdtemp(dir) == NULL)
		die("mkdtemp", "failed");
	snprintf(path, size, "%s/idp-metadata.xml", dir);
	in = fopen(KW_SAML_CORPUS "/keys/idp_feide_afe71c28.pem", "r");
	if (in == NULL)
		die("cannot read", KW_SAML_CORPUS "/keys/idp_feide_afe71c28.pem");
	while (fgets(line, sizeof(line), in) != NULL) {
		if (strncmp(line, "-----BEGIN", 10) == 0)
			inside = 1;
		else if (strncmp(line, "-----END", 8) == 0)
			inside = 0;
		else if (inside && strlen(cert) + strlen(line) < sizeof(cert))
			strncat(cert, line, sizeof(cert) - strlen(cert) - 1);
	}
	fclose(in);
	out = fopen(path, "w");
	if (out == NULL)
		die("cannot write", path);
	fprintf(out,
		"<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" "
		"xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" "
		"entityID=\"http://idp.example.com/\">"
		"<md:IDPSSODescriptor protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:"
		"protocol\"><md:KeyDescriptor use=\"signing\"><ds:KeyInfo><ds:X509Data>"
		"<ds:X509Certificate>%s</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"
		"</md:KeyDescriptor></md:IDPSSODescriptor></md:EntityDescriptor>\n",
		cert);
	fclose(out);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct kw_saml_settings s = {
		.sp_entity_id = "http://stuff.com/endpoints/metadata.php",
		.acs_url = "https://pitbulk.no-ip.org/newonelogin/demo1/index.php?acs",
		.clock_skew = 300,
		.allow_sha1 = true,
		.allow_legacy_encryption = true,
		.role_attribute = "eduPersonAffiliation",
	};
	char meta[512];
	const char *error;

	kw_log_init("fuzz_saml", KW_LOG_ERROR, false);
	if (kw_saml_global_init(&error) < 0)
		die("init", error);
	write_metadata(meta, sizeof(meta));
	if (kw_saml_verifier_new(&s, meta, KW_SAML_CORPUS "/keys/sp_key.pem", &verifier, &error) <
	    0)
		die("verifier", error);
	unlink(meta);
	if (kw_time_parse("2014-02-19T01:37:06Z", 0, &fuzz_now) < 0)
		die("time", "parse");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kw_saml_result *res = NULL;
	const char *detail;

	if (verifier == NULL)
		LLVMFuzzerInitialize(NULL, NULL);
	if (kw_saml_verify(verifier, data, size, fuzz_now, &res, &detail) == KW_SAML_OK) {
		/* An accepted Response always carries a login and an assertion ID. */
		if (res->login[0] == '\0' || res->assertion_id[0] == '\0')
			abort();
		kw_saml_result_free(&res);
	}
	return 0;
}

/* For the TAP driver (fuzz_saml_main.c): the verdict of the last input, by reason name. */
const char *kw_fuzz_saml_verdict(const uint8_t *data, size_t size);
const char *kw_fuzz_saml_verdict(const uint8_t *data, size_t size)
{
	struct kw_saml_result *res = NULL;
	enum kw_saml_reason r;
	const char *detail;

	if (verifier == NULL)
		LLVMFuzzerInitialize(NULL, NULL);
	r = kw_saml_verify(verifier, data, size, fuzz_now, &res, &detail);
	kw_saml_result_free(&res);
	return kw_saml_reason_name(r);
}
