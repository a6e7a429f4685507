/* ssod.c: keywarden-ssod, the SSO daemon. This part: `ingest FILE...`, which verifies SAML
 * Responses from files (raw XML or base64) and records the verified logins; the HTTP endpoints
 * come later and reuse saml_verify.h, sso_config.h and sso_store.h.
 *
 * Exit codes, mapped here only: 0 every file accepted, 1 a file rejected, 2 usage, 3 config or
 * state error. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "log.h"
#include "saml_verify.h"
#include "sso_config.h"
#include "sso_store.h"
#include "timeutil.h"

#define EXIT_REJECTED 1
#define EXIT_USAGE 2
#define EXIT_CONFIG 3

static void usage(FILE *f)
{
	fprintf(f, "usage: keywarden-ssod [--state-dir DIR | -c FILE] [-v] ingest FILE...\n");
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

static bool ingest_one(struct kw_saml_verifier *v, struct kw_sso_config *sso,
		       struct kw_store *store, const char *path)
{
	struct kw_saml_result *res = NULL;
	enum kw_saml_reason reason;
	enum kw_sso_sync sync;
	const struct kw_role *role;
	const char *detail, *error;
	uint8_t *buf = NULL;
	size_t len = 0;
	int64_t now = kw_now();
	int ret;

	ret = read_file(path, KW_SAML_MAX_INPUT, &buf, &len);
	if (ret < 0) {
		kw_error("%s: cannot read: %s", path, strerror(-ret));
		printf("rejected unreadable\n");
		return false;
	}
	reason = kw_saml_verify(v, buf, len, now, &res, &detail);
	free(buf);
	if (reason != KW_SAML_OK) {
		kw_notice("%s: rejected %s: %s", path, kw_saml_reason_name(reason), detail);
		printf("rejected %s\n", kw_saml_reason_name(reason));
		return false;
	}
	role = kw_sso_map_role(sso, res->roles, res->n_roles);
	{
		struct kw_sso_verified login = {
		    .account = sso->account,
		    .idp = res->issuer,
		    .login = res->login,
		    .name_id = res->name_id,
		    .assertion_id = res->assertion_id,
		    .replay_expires = res->expires,
		    .role = role,
		};
		ret = kw_sso_store_accept(store, &login, now, &sync, &error);
	}
	if (ret == -EALREADY) {
		kw_notice("%s: rejected replay: %s", path, error);
		printf("rejected %s\n", kw_saml_reason_name(KW_SAML_REPLAY));
		kw_saml_result_free(&res);
		return false;
	}
	if (ret < 0) {
		kw_error("%s: %s", path, error);
		printf("rejected store\n");
		kw_saml_result_free(&res);
		return false;
	}
	if (sync == KW_SSO_SYNC_LOCAL_USER)
		kw_warning("%s: login %s belongs to a local user; not synced from SSO", path,
			   res->login);
	kw_info("%s: accepted %s (NameID %s, assertion %s)", path, res->login, res->name_id,
		res->assertion_id);
	printf("accepted %s %s\n", res->login, role != NULL ? role->name : "-");
	kw_saml_result_free(&res);
	return true;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"state-dir", required_argument, NULL, 'S'},
	    {"config", required_argument, NULL, 'c'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct kw_config_options opts = {0};
	struct kw_config *cfg = NULL;
	struct kw_sso_config *sso = NULL;
	struct kw_saml_verifier *v = NULL;
	struct kw_store *store = NULL;
	enum kw_log_level level = KW_LOG_NOTICE;
	const char *error, *lv;
	int c, ret, status = 0;
	bool verbose = false;

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
	if (optind >= argc || strcmp(argv[optind], "ingest") != 0 || optind + 1 >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
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
	ret = kw_store_open(kw_config_database(cfg), KW_STORE_CREATE, &store, &error);
	if (ret < 0) {
		kw_error("%s: %s", kw_config_database(cfg), error);
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
	ret = kw_sso_store_ensure_account(store, sso->account, &error);
	if (ret < 0) {
		kw_error("[sso] account: %s", error);
		status = EXIT_CONFIG;
		goto out;
	}
	for (int i = optind + 1; i < argc; i++) {
		if (!ingest_one(v, sso, store, argv[i]))
			status = EXIT_REJECTED;
		fflush(stdout);
	}
out:
	kw_saml_verifier_free(&v);
	kw_sso_config_free(&sso);
	kw_store_free(&store);
	kw_config_free(&cfg);
	return status;
}
