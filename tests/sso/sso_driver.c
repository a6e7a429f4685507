/* sso_driver.c: stands in for keywarden-ssod's SAML path in the SSO sync tests, until the HTTP
 * listener (issue 5) feeds lib/sso.h with real, verified Responses. It applies what an
 * accepted assertion or LogoutRequest would, through the very functions ssod will call:
 *
 *   sso_driver login ACCOUNT LOGIN ROLE|- IDP SESSION|- ASSERTION_ID [EMAIL]
 *   sso_driver logout LOGIN IDP SESSION|- [REQUEST_ID]
 *
 * The state folder comes from KEYWARDEN_STATE_DIR (or --state-dir DIR first). Logs go to
 * stderr as keywarden-ssod's would; one result line goes to stdout. Exit: 0, 7 replay,
 * 5 refused, 4 not found, 3 invalid, 1 other. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "log.h"
#include "sso.h"
#include "store.h"
#include "timeutil.h"

static int exit_for(int ret)
{
	switch (ret) {
	case -EEXIST:
		return 7;
	case -EPERM:
	case -EACCES:
		return 5;
	case -ENOENT:
		return 4;
	case -EINVAL:
		return 3;
	default:
		return 1;
	}
}

static const char *dash_null(const char *s)
{
	return strcmp(s, "-") == 0 ? NULL : s;
}

int main(int argc, char **argv)
{
	struct kw_config_options opts = { 0 };
	struct kw_config *cfg = NULL;
	struct kw_store *store = NULL;
	const char *error = NULL;
	int64_t now = kw_now();
	int ret;

	kw_log_init("keywarden-ssod", KW_LOG_INFO, false);
	if (argc > 2 && strcmp(argv[1], "--state-dir") == 0) {
		opts.state_dir = argv[2];
		argc -= 2;
		argv += 2;
	}
	if (argc < 2 || (strcmp(argv[1], "login") == 0 && argc != 8 && argc != 9) ||
	    (strcmp(argv[1], "logout") == 0 && argc != 5 && argc != 6)) {
		fprintf(stderr, "usage: sso_driver login ACCOUNT LOGIN ROLE|- IDP SESSION|- "
				"ASSERTION_ID [EMAIL]\n       sso_driver logout LOGIN IDP "
				"SESSION|- [REQUEST_ID]\n");
		return 2;
	}
	if ((ret = kw_config_load(&opts, &cfg, &error)) < 0 ||
	    (ret = kw_store_open(kw_config_database(cfg), 0, &store, &error)) < 0) {
		fprintf(stderr, "sso_driver: %s\n", error);
		kw_config_free(&cfg);
		return 1;
	}
	if (strcmp(argv[1], "login") == 0) {
		struct kw_sso_assertion a = {
			.account = argv[2],
			.login = argv[3],
			.role = dash_null(argv[4]),
			.idp = argv[5],
			.session_index = dash_null(argv[6]),
			.assertion_id = argv[7],
			.email = argc == 9 ? argv[8] : NULL,
			.replay_expires = now + 300,
		};
		struct kw_sso_result res;

		ret = kw_sso_login(store, &a, now, &res, &error);
		if (ret == 0)
			printf("outcome=%s user_id=%lld case=%lld active_tokens=%u\n",
			       kw_sso_outcome_name(res.outcome), (long long)res.user_id,
			       (long long)res.case_id, res.active_tokens);
	} else if (strcmp(argv[1], "logout") == 0) {
		struct kw_sso_logout_request l = {
			.login = argv[2],
			.idp = argv[3],
			.session_index = dash_null(argv[4]),
			.request_id = argc == 6 ? argv[5] : NULL,
			.replay_expires = now + 300,
		};
		unsigned ended = 0;

		ret = kw_sso_logout(store, &l, now, &ended, &error);
		if (ret == 0)
			printf("sessions_ended=%u\n", ended);
	} else {
		fprintf(stderr, "sso_driver: unknown command '%s'\n", argv[1]);
		ret = -EINVAL;
	}
	if (ret < 0)
		fprintf(stderr, "sso_driver: %s\n", error != NULL ? error : strerror(-ret));
	kw_store_free(&store);
	kw_config_free(&cfg);
	return ret < 0 ? exit_for(ret) : 0;
}
