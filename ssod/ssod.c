/* ssod.c: keywarden-ssod, the SSO daemon. Without a command it serves HTTP (http.h: the ACS,
 * SLO, metadata and health endpoints) until SIGTERM; `ingest FILE...` verifies SAML Responses
 * from files (raw XML or base64) instead. Both apply a message through sso_apply.h, so that a
 * Response has the same effect (lib/sso.h, with the rule "SSO revocation does not revoke API
 * tokens") whichever way it arrives.
 *
 * Exit codes, mapped here only: 0 success (every file accepted; or a clean stop), 1 a file
 * rejected, 2 usage, 3 config or state error (or the listener cannot start). */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "scim.h"
#include "conf.h"
#include "log.h"
#include "saml_verify.h"
#include "sso_config.h"
#include "http.h"
#include "sso_apply.h"
#include "timeutil.h"

#define EXIT_REJECTED 1
#define EXIT_USAGE 2
#define EXIT_CONFIG 3

static void usage(FILE *f)
{
	fprintf(f,
		"usage: keywarden-ssod [--state-dir DIR | -c FILE] [-v]              (serve HTTP)\n"
		"       keywarden-ssod [--state-dir DIR | -c FILE] [-v] ingest FILE...\n");
}

/* Reads at most max + 1 bytes so that an oversize file is recognised without reading it all. */
static int read_file(const char *path, size_t max, uint8_t **buf_r, size_t *len_r)
{
	FILE *f = fopen(path, "rbe");
	uint8_t *buf;
	size_t len;

	if (f == NULL)
		return -errno;
	buf = malloc(max + 1);
	if (buf == NULL)
		abort();
	len = fread(buf, 1, max + 1, f);
	if (ferror(f)) {
		fclose(f);
		free(buf);
		return -EIO;
	}
	fclose(f);
	*buf_r = buf;
	*len_r = len;
	return 0;
}

static bool ingest_one(struct kw_ssod *d, const char *path)
{
	struct kw_ssod_outcome o;
	uint8_t *buf = NULL;
	size_t len = 0;
	int ret;

	ret = read_file(path, KW_SAML_MAX_INPUT, &buf, &len);
	if (ret < 0) {
		kw_error("%s: cannot read: %s", path, strerror(-ret));
		printf("rejected unreadable\n");
		return false;
	}
	/* the very path of POST /saml/acs (sso_apply.h) */
	kw_ssod_login(d, buf, len, kw_now(), &o);
	free(buf);
	if (o.status != 200) {
		kw_notice("%s: rejected %s%s%s: %s", path, o.reason,
			  o.login[0] != '\0' ? " login " : "", o.login, o.detail);
		printf("rejected %s\n", o.reason);
		return false;
	}
	kw_info("%s: accepted %s role %s (%s)", path, o.login, o.role[0] != '\0' ? o.role : "-",
		kw_sso_outcome_name(o.sso));
	printf("accepted %s %s\n", o.login, o.role[0] != '\0' ? o.role : "-");
	return true;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "state-dir", required_argument, NULL, 'S' },
		{ "config", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct kw_config_options opts = { 0 };
	struct kw_config *cfg = NULL;
	struct kw_sso_config *sso = NULL;
	struct kw_saml_verifier *v = NULL;
	struct kw_store *store = NULL;
	enum kw_log_level level = KW_LOG_NOTICE;
	const char *error, *lv;
	int c, ret, status = 0;
	bool verbose = false, ingest;
	struct kw_ssod d = { 0 };
	struct kw_account acct;
	struct kw_api_settings api;
	struct kw_scim_settings scim = { 0 };
	struct kw_digest_key *key = NULL;

	while ((c = getopt_long(argc, argv, "+c:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'S':
			opts.state_dir = optarg;
			break;
		case 'c':
			opts.config_file = optarg;
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc && (strcmp(argv[optind], "ingest") != 0 || optind + 1 >= argc)) {
		usage(stderr);
		return EXIT_USAGE;
	}
	ingest = optind < argc;
	kw_log_init("keywarden-ssod", level, false);
	ret = kw_config_load(&opts, &cfg, &error);
	if (ret < 0) {
		kw_error("%s", error);
		return EXIT_CONFIG;
	}
	lv = kw_config_get(cfg, "log", "level");
	if (lv != NULL && kw_log_parse_level(lv, &level) < 0) {
		kw_error("[log] level: unknown level \"%s\"", lv);
		status = EXIT_CONFIG;
		goto out;
	}
	kw_log_set_level(verbose ? KW_LOG_DEBUG : level);
	ret = kw_store_open(kw_config_database(cfg), 0, &store, &error);
	if (ret < 0) {
		kw_error("%s: %s", kw_config_store_name(cfg), error);
		status = EXIT_CONFIG;
		goto out;
	}
	ret = kw_sso_config_load(cfg, store, &sso, &error);
	if (ret < 0) {
		kw_error("%s", error);
		status = EXIT_CONFIG;
		goto out;
	}
	if (kw_saml_global_init(&error) < 0) {
		kw_error("%s", error);
		status = EXIT_CONFIG;
		goto out;
	}
	ret = kw_saml_verifier_new(&sso->saml, sso->idp_metadata, sso->sp_key, &v, &error);
	if (ret < 0) {
		/* The verifier names files; say which key led to them. */
		kw_error("[sso] idp_metadata/sp_key: %s", error);
		status = EXIT_CONFIG;
		goto out;
	}
	ret = kw_store_account_get(store, sso->account, &acct, &error);
	if (ret < 0) {
		kw_error("[sso] account: %s (create it first: keywarden account add %s)", error,
			 sso->account);
		status = EXIT_CONFIG;
		goto out;
	}
	d.sso = sso;
	d.v = v;
	d.store = store;
	d.ingest = ingest;
	if (!ingest) {
		/* the REST API (api.h) digests tokens: the database's key, or no start */
		kw_api_settings_load(cfg, &api);
		d.api = &api;
		if (kw_digest_key_load(api.key_file, &key, &error) < 0) {
			kw_error("%s: %s", api.key_file, error);
			status = EXIT_CONFIG;
			goto out;
		}
		ret = kw_store_key_check(store, key, &error);
		kw_digest_key_free(&key);
		if (ret < 0) {
			kw_error("%s", error);
			status = EXIT_CONFIG;
			goto out;
		}
		/* SCIM (scim.h): only when [scim] bearer_token_file is set */
		if (kw_scim_settings_load(cfg, &scim, &error) < 0) {
			kw_error("[scim] bearer_token_file: %s", error);
			status = EXIT_CONFIG;
			goto out;
		}
		d.scim = &scim;
		ret = kw_ssod_serve(&d, kw_config_database(cfg), &error);
		if (ret < 0) {
			kw_error("%s", error);
			status = EXIT_CONFIG;
		}
		goto out;
	}
	for (int i = optind + 1; i < argc; i++) {
		if (!ingest_one(&d, argv[i]))
			status = EXIT_REJECTED;
		fflush(stdout);
	}
out:
	kw_scim_settings_clear(&scim);
	kw_saml_verifier_free(&v);
	kw_sso_config_free(&sso);
	kw_store_free(&store);
	kw_config_free(&cfg);
	return status;
}
