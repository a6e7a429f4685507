/* pam_keywarden.c: pam_keywarden.so, accepts a keywarden API token as the password.
 *
 * auth asks keywarden-validator (through the client code of libkeywarden, linked in and
 * hidden) whether the token given as PAM_AUTHTOK is valid, belongs to PAM_USER (unless
 * any_user) and carries at least min_role; account asks again with the token kept from auth.
 * The module loads into hosts such as sshd: it links libc and libpam only, exports pam_sm_*
 * only, never aborts, and fails closed: anything but a clear "valid" from the validator is a
 * failure. A validator that libkeywarden does not trust (socket folder, socket owner, peer uid;
 * server_uid= pins the uid) counts as unreachable and is logged as such.
 * Outcomes become PAM codes in exactly one place, pam_code(). The token is never logged; the copy kept for the account phase is wiped when PAM frees it. See
 * pam_keywarden(8). */
#include <config.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#define PAM_SM_AUTH
#define PAM_SM_ACCOUNT
#include <security/pam_ext.h>
#include <security/pam_modules.h>

#include "keywarden.h"

#define KW_PAM_DATA "pam_keywarden_token"
#define KW_PAM_PROMPT "API token: "
#define KW_PAM_TIMEOUT_MS 5000

/* Role ranks, highest first; min_role names one of them. */
static const char *const role_ranks[] = { KW_PROTO_ROLE_NAMES };
#define N_ROLES ((int)(sizeof(role_ranks) / sizeof(role_ranks[0])))

struct cfg {
	const char *socket;  /* NULL: the library's default */
	const char *service; /* NULL: PAM_SERVICE */
	int min_role;        /* index into role_ranks, -1: any role */
	bool has_server_uid; /* server_uid=: the validator must run as exactly this uid */
	uid_t server_uid;
	bool any_user;
	bool debug;
};

enum phase { PHASE_AUTH, PHASE_ACCOUNT };

/* What happened; pam_code() turns it into a PAM code. The first entries follow
 * enum kw_check_status. */
enum verdict {
	V_OK,
	V_INVALID,
	V_EXPIRED,
	V_DELETED,
	V_DISABLED,
	V_RATE_LIMITED,
	V_TEMP_FAIL,
	V_UNREACHABLE,  /* the validator could not be asked, or answered garbage */
	V_WRONG_USER,   /* the token's issuer is not PAM_USER */
	V_ROLE_TOO_LOW, /* below min_role, or a role the module does not know */
	V_CONFIG,       /* bad module arguments */
	V_NO_USER,      /* PAM_USER unavailable */
	V_NO_TOKEN,     /* the conversation gave no token */
	V_NOT_OURS,     /* account: auth did not go through this module */
	V_SYSTEM,       /* out of memory, PAM item errors */
	V_N
};

/* The one place where outcomes become PAM codes. */
static int pam_code(enum phase phase, enum verdict v)
{
	static const int codes[V_N][2] = {
		/*                   auth                  account */
		[V_OK] = { PAM_SUCCESS, PAM_SUCCESS },
		[V_INVALID] = { PAM_AUTH_ERR, PAM_PERM_DENIED },
		[V_EXPIRED] = { PAM_AUTH_ERR, PAM_ACCT_EXPIRED },
		[V_DELETED] = { PAM_AUTH_ERR, PAM_PERM_DENIED },
		[V_DISABLED] = { PAM_AUTH_ERR, PAM_PERM_DENIED },
		[V_RATE_LIMITED] = { PAM_MAXTRIES, PAM_PERM_DENIED },
		[V_TEMP_FAIL] = { PAM_AUTHINFO_UNAVAIL, PAM_AUTHINFO_UNAVAIL },
		[V_UNREACHABLE] = { PAM_AUTHINFO_UNAVAIL, PAM_AUTHINFO_UNAVAIL },
		[V_WRONG_USER] = { PAM_AUTH_ERR, PAM_PERM_DENIED },
		[V_ROLE_TOO_LOW] = { PAM_AUTH_ERR, PAM_PERM_DENIED },
		[V_CONFIG] = { PAM_SERVICE_ERR, PAM_SERVICE_ERR },
		[V_NO_USER] = { PAM_USER_UNKNOWN, PAM_USER_UNKNOWN },
		[V_NO_TOKEN] = { PAM_AUTH_ERR, PAM_PERM_DENIED },
		[V_NOT_OURS] = { PAM_AUTH_ERR, PAM_IGNORE },
		[V_SYSTEM] = { PAM_SYSTEM_ERR, PAM_SYSTEM_ERR },
	};

	if ((unsigned)v >= V_N)
		return PAM_SYSTEM_ERR;
	return codes[v][phase == PHASE_AUTH ? 0 : 1];
}

static int role_rank(const char *role)
{
	for (int i = 0; i < N_ROLES; i++)
		if (strcmp(role, role_ranks[i]) == 0)
			return i;
	return -1;
}

/* server_uid=: a decimal uid or a user name, looked up now (NSS). 0 or -EINVAL. */
static int parse_uid(const char *s, uid_t *uid_r)
{
	size_t size = 4096;
	struct passwd pw, *found = NULL;
	char *buf;
	int r;

	if (s[0] >= '0' && s[0] <= '9') {
		char *end;
		unsigned long long v;

		errno = 0;
		v = strtoull(s, &end, 10);
		if (errno != 0 || *end != '\0' || v >= (unsigned long long)(uid_t)-1)
			return -EINVAL;
		*uid_r = (uid_t)v;
		return 0;
	}
	for (;;) {
		buf = malloc(size);
		if (buf == NULL)
			return -EINVAL;
		r = getpwnam_r(s, &pw, buf, size, &found);
		if (r == ERANGE && size < 1024 * 1024) {
			free(buf);
			size *= 4;
			continue;
		}
		break;
	}
	if (r == 0 && found != NULL)
		*uid_r = pw.pw_uid;
	free(buf);
	return r == 0 && found != NULL ? 0 : -EINVAL;
}

/* Parses the module arguments into cfg; logs and returns -EINVAL on an unknown or bad one, so
 * that a typo never silently weakens the check. */
static int parse_cfg(pam_handle_t *pamh, int argc, const char **argv, struct cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->min_role = -1;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "debug") == 0) {
			cfg->debug = true;
		} else if (strcmp(a, "any_user") == 0) {
			cfg->any_user = true;
		} else if (strncmp(a, "socket=", 7) == 0) {
			cfg->socket = a + 7;
			if (cfg->socket[0] != '/') {
				pam_syslog(pamh, LOG_ERR,
					   "config error: socket= needs an absolute path");
				return -EINVAL;
			}
		} else if (strncmp(a, "server_uid=", 11) == 0) {
			if (parse_uid(a + 11, &cfg->server_uid) < 0) {
				pam_syslog(pamh, LOG_ERR,
					   "config error: server_uid=%s is not a uid or a user",
					   a + 11);
				return -EINVAL;
			}
			cfg->has_server_uid = true;
		} else if (strncmp(a, "service=", 8) == 0) {
			cfg->service = a + 8;
			if (cfg->service[0] == '\0' || strpbrk(cfg->service, "\t\r\n") != NULL) {
				pam_syslog(pamh, LOG_ERR, "config error: bad service=");
				return -EINVAL;
			}
		} else if (strncmp(a, "min_role=", 9) == 0) {
			cfg->min_role = role_rank(a + 9);
			if (cfg->min_role < 0) {
				pam_syslog(pamh, LOG_ERR,
					   "config error: min_role=%s is not a role (write "
					   "[min_role=NAME] when NAME has spaces)",
					   a + 9);
				return -EINVAL;
			}
		} else if (strcmp(a, "use_first_pass") == 0 || strcmp(a, "try_first_pass") == 0) {
			/* handled by pam_get_authtok() */
		} else {
			pam_syslog(pamh, LOG_ERR, "config error: unknown argument \"%s\"", a);
			return -EINVAL;
		}
	}
	if (cfg->debug) {
		char uid[32] = "(default rule)";

		if (cfg->has_server_uid)
			snprintf(uid, sizeof(uid), "%u", (unsigned)cfg->server_uid);
		pam_syslog(pamh, LOG_DEBUG,
			   "socket=%s server_uid=%s service=%s min_role=%s any_user=%d",
			   cfg->socket ? cfg->socket : KW_DEFAULT_SOCKET_PATH, uid,
			   cfg->service ? cfg->service : "(PAM_SERVICE)",
			   cfg->min_role >= 0 ? role_ranks[cfg->min_role] : "(any)", cfg->any_user);
	}
	return 0;
}

/* What the account phase needs from auth. Freed (and wiped) by PAM through free_data(). */
struct kw_pam_data {
	char token_id[KW_TOKEN_ID_SIZE];
	size_t token_len;
	char *token;
};

static void free_data(pam_handle_t *pamh, void *data, int error_status)
{
	struct kw_pam_data *d = data;

	if (d == NULL)
		return;
	if (d->token != NULL) {
		explicit_bzero(d->token, d->token_len);
		free(d->token);
	}
	explicit_bzero(d, sizeof(*d));
	free(d);
}

static const char *item_str(pam_handle_t *pamh, int item)
{
	const void *v = NULL;

	if (pam_get_item(pamh, item, &v) != PAM_SUCCESS || v == NULL)
		return NULL;
	return v;
}

/* Asks the validator about token and applies the module's rules. res is filled for logging. */
static enum verdict check_token(pam_handle_t *pamh, const struct cfg *cfg, const char *user,
				const char *token, struct kw_check_result *res)
{
	struct kw_check_opts opts = { NULL, NULL };
	struct kw_client *client;
	const char *rhost = item_str(pamh, PAM_RHOST);
	unsigned char addr[16];
	int ret, rank;

	memset(res, 0, sizeof(*res));
	res->status = KW_CHECK_TEMP_FAIL;
	opts.service = cfg->service != NULL ? cfg->service : item_str(pamh, PAM_SERVICE);
	if (opts.service != NULL && strpbrk(opts.service, "\t\r\n") != NULL)
		opts.service = NULL;
	/* remote_ip= is an address; PAM_RHOST may be a host name */
	if (rhost != NULL &&
	    (inet_pton(AF_INET, rhost, addr) == 1 || inet_pton(AF_INET6, rhost, addr) == 1))
		opts.remote_ip = rhost;

	client = kw_client_new(cfg->socket, KW_PAM_TIMEOUT_MS);
	if (client == NULL) {
		pam_syslog(pamh, LOG_ERR, "cannot create a validator client: %s",
			   strerrorname_np(errno) ? strerrorname_np(errno) : "?");
		return V_SYSTEM;
	}
	if (cfg->has_server_uid)
		kw_client_set_server_uid(client, cfg->server_uid);
	ret = kw_client_check(client, token, &opts, res);
	if (ret < 0) {
		const char *e = strerrorname_np(-ret);
		const char *why = kw_client_error(client);
		const char *path = cfg->socket ? cfg->socket : KW_DEFAULT_SOCKET_PATH;

		if (why[0] != '\0')
			pam_syslog(pamh, LOG_ERR,
				   "validator at %s is not trusted (%s: %s): failing closed for "
				   "user %s",
				   path, e ? e : "?", why, user);
		else
			pam_syslog(pamh, LOG_ERR,
				   "validator at %s unreachable or broken (%s): failing closed for "
				   "user %s",
				   path, e ? e : "?", user);
		kw_client_free(&client);
		return V_UNREACHABLE;
	}
	kw_client_free(&client);
	switch (res->status) {
	case KW_CHECK_OK:
		break;
	case KW_CHECK_INVALID:
		return V_INVALID;
	case KW_CHECK_EXPIRED:
		return V_EXPIRED;
	case KW_CHECK_DELETED:
		return V_DELETED;
	case KW_CHECK_DISABLED:
		return V_DISABLED;
	case KW_CHECK_RATE_LIMITED:
		return V_RATE_LIMITED;
	case KW_CHECK_TEMP_FAIL:
	default:
		return V_TEMP_FAIL;
	}
	if (!cfg->any_user && strcmp(res->user, user) != 0)
		return V_WRONG_USER;
	if (cfg->min_role >= 0) {
		rank = role_rank(res->role);
		if (rank < 0 || rank > cfg->min_role)
			return V_ROLE_TOO_LOW;
	}
	return V_OK;
}

/* Logs the outcome (never the token) and returns its PAM code. */
static int finish(pam_handle_t *pamh, const struct cfg *cfg, enum phase phase, enum verdict v,
		  const char *user, const struct kw_check_result *res)
{
	const char *what = phase == PHASE_AUTH ? "auth" : "account";
	const char *rhost = item_str(pamh, PAM_RHOST);
	int code = pam_code(phase, v);

	if (user == NULL)
		user = "?";
	if (rhost == NULL)
		rhost = "";
	switch (v) {
	case V_OK:
		pam_syslog(pamh, LOG_INFO,
			   "%s: token %s (account %s, role %s) accepted for %s rhost=%s", what,
			   res->token_id, res->account, res->role, user, rhost);
		break;
	case V_WRONG_USER:
		pam_syslog(pamh, LOG_NOTICE, "%s: token %s belongs to %s, not to %s rhost=%s", what,
			   res->token_id, res->user, user, rhost);
		break;
	case V_ROLE_TOO_LOW:
		pam_syslog(pamh, LOG_NOTICE,
			   "%s: token %s has role %s, below min_role %s, user %s rhost=%s", what,
			   res->token_id, res->role,
			   cfg->min_role >= 0 ? role_ranks[cfg->min_role] : "?", user, rhost);
		break;
	case V_INVALID:
	case V_EXPIRED:
	case V_DELETED:
	case V_DISABLED:
	case V_RATE_LIMITED:
	case V_TEMP_FAIL:
		pam_syslog(pamh, LOG_NOTICE, "%s: token refused (%s) for %s rhost=%s", what,
			   kw_check_status_name(res->status), user, rhost);
		break;
	case V_NOT_OURS:
		if (cfg->debug)
			pam_syslog(pamh, LOG_DEBUG, "account: no token from auth for %s, ignoring",
				   user);
		break;
	default:
		break; /* logged where it happened */
	}
	if (cfg->debug)
		pam_syslog(pamh, LOG_DEBUG, "%s: returning %s", what, pam_strerror(pamh, code));
	return code;
}

PAM_EXTERN int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct kw_check_result res;
	struct kw_pam_data *d;
	const char *user = NULL, *token = NULL;
	struct cfg cfg;
	enum verdict v;

	memset(&res, 0, sizeof(res));
	pam_set_data(pamh, KW_PAM_DATA, NULL, NULL); /* nothing stale for account */
	if (parse_cfg(pamh, argc, argv, &cfg) < 0) {
		cfg.debug = false;
		return finish(pamh, &cfg, PHASE_AUTH, V_CONFIG, NULL, &res);
	}
	if (pam_get_user(pamh, &user, NULL) != PAM_SUCCESS || user == NULL || user[0] == '\0') {
		pam_syslog(pamh, LOG_NOTICE, "auth: no user name");
		return finish(pamh, &cfg, PHASE_AUTH, V_NO_USER, NULL, &res);
	}
	if (pam_get_authtok(pamh, PAM_AUTHTOK, &token, KW_PAM_PROMPT) != PAM_SUCCESS ||
	    token == NULL) {
		pam_syslog(pamh, LOG_NOTICE, "auth: no token from the conversation for %s", user);
		return finish(pamh, &cfg, PHASE_AUTH, V_NO_TOKEN, user, &res);
	}
	v = check_token(pamh, &cfg, user, token, &res);
	if (v == V_OK) {
		d = calloc(1, sizeof(*d));
		if (d != NULL) {
			d->token_len = strlen(token);
			d->token = strdup(token);
			memcpy(d->token_id, res.token_id, sizeof(d->token_id));
		}
		if (d == NULL || d->token == NULL ||
		    pam_set_data(pamh, KW_PAM_DATA, d, free_data) != PAM_SUCCESS) {
			free_data(pamh, d, 0);
			pam_syslog(pamh, LOG_ERR, "auth: cannot keep the token for account");
			v = V_SYSTEM;
		}
	}
	return finish(pamh, &cfg, PHASE_AUTH, v, user, &res);
}

PAM_EXTERN int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return PAM_SUCCESS;
}

PAM_EXTERN int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct kw_check_result res;
	const struct kw_pam_data *d = NULL;
	const void *data = NULL;
	const char *user = NULL;
	struct cfg cfg;
	enum verdict v;

	memset(&res, 0, sizeof(res));
	if (parse_cfg(pamh, argc, argv, &cfg) < 0) {
		cfg.debug = false;
		return finish(pamh, &cfg, PHASE_ACCOUNT, V_CONFIG, NULL, &res);
	}
	if (pam_get_user(pamh, &user, NULL) != PAM_SUCCESS || user == NULL || user[0] == '\0') {
		pam_syslog(pamh, LOG_NOTICE, "account: no user name");
		return finish(pamh, &cfg, PHASE_ACCOUNT, V_NO_USER, NULL, &res);
	}
	if (pam_get_data(pamh, KW_PAM_DATA, &data) != PAM_SUCCESS || data == NULL)
		return finish(pamh, &cfg, PHASE_ACCOUNT, V_NOT_OURS, user, &res);
	d = data;
	v = check_token(pamh, &cfg, user, d->token, &res);
	if (v == V_OK && strcmp(res.token_id, d->token_id) != 0)
		v = V_INVALID; /* cannot happen with an honest validator */
	return finish(pamh, &cfg, PHASE_ACCOUNT, v, user, &res);
}
