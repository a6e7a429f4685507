/* conf.c: parse keywarden.conf and resolve the state paths (see conf.h). */
#include "config.h"

#include "conf.h"
#include "db.h"
#include "store.h"
#include "error.h"
#include "xalloc.h"
#include "keywarden_protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_MAX_BYTES (256 * 1024)
#define CONFIG_MAX_LINE 4096

struct entry {
	char *section, *key, *value;
};

struct kw_config {
	struct entry *entries;
	size_t n_entries;
	char *state_dir, *file, *database, *key_file, *socket;
	char *store_name; /* database without a password (kw_config_store_name()) */
};

/* Every setting of every program, once: its section and key, its type, and for numbers and
 * booleans its default and range. The parser refuses a key that is not here and a number or
 * boolean that does not fit, naming it, so that a typo never silently weakens a setting; the
 * typed getters take their defaults from here. Text settings are checked by the part that
 * reads them (addresses, lists, role maps). A default marked DERIVED is computed by that part
 * (see its comment). */
// clang-format off
#define U(sec, key, def, min, max) { sec, key, KW_SETTING_UINT, def, min, max }
#define B(sec, key, def) { sec, key, KW_SETTING_BOOL, def, 0, 1 }
#define T(sec, key) { sec, key, KW_SETTING_TEXT, 0, 0, 0 }
// clang-format on
#define DERIVED 0

static const struct setting {
	const char *section, *key;
	enum kw_setting_type type;
	uint64_t def, min, max;
} settings[] = {
	T("store", "database"),
	T("store", "url"),
	B("store", "unverified_tls", false),
	T("store", "key_file"),
	T("store", "state_dir"),
	T("log", "level"),
	T("validator", "socket"),
	T("validator", "socket_mode"),
	T("validator", "socket_group"),
	T("validator", "allow_uids"),
	T("validator", "allow_gids"),
	U("validator", "idle_timeout", 60, 1, 86400),
	U("validator", "max_connections", 1024, 1, 1000000),
	U("validator", "max_line", KW_PROTO_LINE_MAX, KW_PROTO_LINE_MIN, KW_PROTO_LINE_LIMIT),
	U("validator", "last_use_flush", 2, 1, 60),
	U("validator", "rate_limit_failures", 100, 0, 1000000),
	U("validator", "rate_limit_window", 10, 1, 86400),
	U("validator", "rate_limit_block", 60, 1, 86400),
	U("validator", "cache_size", 65536, 16, 16777216),
	U("validator", "line_timeout", 10, 1, 3600),
	U("validator", "lease_ms", 3000, 100, 60000), /* PostgreSQL: lib/store_lease.c */
	U("validator", "busy_poll_us", 50, 0, 1000),  /* validator/daemon_server.c */
	/* DERIVED: a quarter of max_connections (at least 1) */
	U("validator", "max_connections_per_uid", DERIVED, 1, 1000000),
	/* the HTTP check endpoint (doc/http-authz.md) */
	T("validator", "http_listen"),
	T("validator", "trusted_proxies"),
	U("validator", "http_max_request", 8192, 1024, 65536), /* bytes of a request head */
	U("validator", "http_max_headers", 64, 1, 1000),       /* header lines */
	T("sso", "account"),
	T("sso", "sp_entity_id"),
	T("sso", "acs_url"),
	T("sso", "slo_url"),
	T("sso", "idp_metadata"),
	T("sso", "sp_key"),
	T("sso", "sp_cert"),
	T("sso", "listen"),
	T("sso", "login_attribute"),
	T("sso", "role_attribute"),
	T("sso", "email_attribute"),
	T("sso", "role_map"),
	/* SP-initiated sign-in and the IdP's metadata (issue 17) */
	T("sso", "nameid_format"), /* DERIVED: "persistent, emailAddress" (sso_config.c) */
	B("sso", "allow_unsolicited", true),
	U("sso", "request_lifetime", 600, 60, 86400),
	T("sso", "idp_entity_id"),
	T("sso", "idp_metadata_cert"),
	U("sso", "clock_skew", 180, 0, 3600),
	B("sso", "allow_sha1", false),
	B("sso", "allow_legacy_encryption", false),
	B("sso", "allow_missing_recipient", false),
	U("sso", "stale_days", 30, 1, 36500),
	U("sso", "max_body", 256 * 1024, 1024, 16 * 1024 * 1024),
	U("sso", "max_connections", 64, 1, 1000),
	U("sso", "timeout", 10, 1, 3600),
	/* the REST API of keywarden-ssod (ssod/api.h) */
	U("api", "max_body", 16 * 1024, 256, 1024 * 1024),
	U("api", "auth_failures", 10, 0, 1000000),
	U("api", "auth_window", 60, 1, 86400),
	U("api", "auth_block", 60, 1, 86400),
	U("api", "access_lifetime", 3600, 60, 86400),
	U("api", "refresh_lifetime", 86400, 300, 30 * 86400),
	T("scim", "bearer_token_file"),
	/* the browser's SSO sessions and sudo mode of the REST API (ssod/api.h) */
	U("sso", "session_lifetime", 8 * 3600, 300, 30 * 86400),
	U("sso", "session_idle", 1800, 60, 86400),
	U("sso", "reauth_minutes", 10, 0, 1440),
	T("notify", "smtp_url"),
	T("notify", "from"),
	T("notify", "username"),
	T("notify", "password_file"),
	B("notify", "starttls", false),
	U("notify", "timeout", 30, 1, 600),
};
#undef U
#undef B
#undef T

static const struct setting *setting_find(const char *section, const char *key)
{
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
		if (strcmp(settings[i].section, section) == 0 && strcmp(settings[i].key, key) == 0)
			return &settings[i];
	}
	return NULL;
}

/* The table's entry for a getter; a key missing from it, or of another type, is a bug in
 * the caller, not a user's error. */
static const struct setting *setting_get(const char *section, const char *key,
					 enum kw_setting_type type)
{
	const struct setting *st = setting_find(section, key);

	if (st == NULL || st->type != type) {
		fprintf(stderr, "keywarden: BUG: [%s] %s is not a setting of this type\n", section,
			key);
		abort();
	}
	return st;
}

static int parse_uint(const struct setting *st, const char *v, uint64_t *v_r, const char **error_r)
{
	unsigned long long n;
	char *end;

	errno = 0;
	n = strtoull(v, &end, 10);
	if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno != 0 || n < st->min || n > st->max)
		return kw_error_fail(error_r, -EINVAL,
				     "[%s] %s: '%s' is not a number between %llu and %llu",
				     st->section, st->key, v, (unsigned long long)st->min,
				     (unsigned long long)st->max);
	*v_r = n;
	return 0;
}

static int parse_bool(const struct setting *st, const char *v, bool *v_r, const char **error_r)
{
	static const char *const yes[] = { "yes", "true", "on", "1" }, *const no[] = { "no",
										       "false",
										       "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (strcmp(v, yes[i]) == 0 || strcmp(v, no[i]) == 0) {
			*v_r = strcmp(v, yes[i]) == 0;
			return 0;
		}
	}
	return kw_error_fail(error_r, -EINVAL, "[%s] %s: '%s' is not yes or no", st->section,
			     st->key, v);
}

/* At load: the value fits its setting's type and range. */
static int setting_check(const struct setting *st, const char *v, const char **error_r)
{
	uint64_t n;
	bool b;

	switch (st->type) {
	case KW_SETTING_UINT:
		return parse_uint(st, v, &n, error_r);
	case KW_SETTING_BOOL:
		return parse_bool(st, v, &b, error_r);
	case KW_SETTING_TEXT:
		break;
	}
	return 0;
}

static char *path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	if (p == NULL)
		abort();
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		*--e = '\0';
	return s;
}

static int parse_file(struct kw_config *cfg, const char *path, const char **error_r)
{
	char line[CONFIG_MAX_LINE + 2], section[64] = "";
	unsigned lineno = 0;
	size_t total = 0;
	struct stat st;
	FILE *f;
	int fd, ret = 0;

	/* O_NONBLOCK: a FIFO in its place must not hang every program before fstat() refuses
	 * it (it changes nothing for a regular file). */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		ret = -errno;
		*error_r = kw_error_format("cannot read config file %s: %s", path, strerror(errno));
		return ret;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		*error_r = kw_error_format("config file %s is not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	f = fdopen(fd, "r");
	if (f == NULL)
		abort();
	if (st.st_size > CONFIG_MAX_BYTES) {
		*error_r = kw_error_format("%s: config file larger than %d bytes", path,
					   CONFIG_MAX_BYTES);
		ret = -EFBIG;
		goto out;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *s, *eq, *key, *value;
		const struct setting *set;
		size_t len = strlen(line);

		lineno++;
		total += len;
		if (len > CONFIG_MAX_LINE || total > CONFIG_MAX_BYTES) {
			*error_r = kw_error_format("%s:%u: line too long", path, lineno);
			ret = -EINVAL;
			goto out;
		}
		s = trim(line);
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *e = strchr(s, ']');
			if (e == NULL || e[1] != '\0' || e - s - 1 <= 0 ||
			    (size_t)(e - s - 1) >= sizeof(section)) {
				*error_r = kw_error_format("%s:%u: malformed section header", path,
							   lineno);
				ret = -EINVAL;
				goto out;
			}
			*e = '\0';
			snprintf(section, sizeof(section), "%s", trim(s + 1));
			continue;
		}
		eq = strchr(s, '=');
		if (eq == NULL) {
			*error_r = kw_error_format("%s:%u: expected 'key = value'", path, lineno);
			ret = -EINVAL;
			goto out;
		}
		*eq = '\0';
		key = trim(s);
		value = trim(eq + 1);
		if (section[0] == '\0') {
			*error_r = kw_error_format("%s:%u: key '%s' outside of a [section]", path,
						   lineno, key);
			ret = -EINVAL;
			goto out;
		}
		if ((set = setting_find(section, key)) == NULL) {
			*error_r = kw_error_format("%s:%u: unknown key '%s' in [%s]", path, lineno,
						   key, section);
			ret = -EINVAL;
			goto out;
		}
		if ((ret = setting_check(set, value, error_r)) < 0) {
			*error_r = kw_error_format("%s:%u: %s", path, lineno, *error_r);
			goto out;
		}
		if (kw_config_get(cfg, section, key) != NULL) {
			*error_r = kw_error_format("%s:%u: [%s] %s is set twice", path, lineno,
						   section, key);
			ret = -EINVAL;
			goto out;
		}
		struct entry *n = realloc(cfg->entries, (cfg->n_entries + 1) * sizeof(*n));
		if (n == NULL)
			abort();
		cfg->entries = n;
		n[cfg->n_entries].section = kw_strdup(section);
		n[cfg->n_entries].key = kw_strdup(key);
		n[cfg->n_entries].value = kw_strdup(value);
		cfg->n_entries++;
	}
	if (ferror(f)) {
		*error_r = kw_error_format("cannot read config file %s", path);
		ret = -EIO;
	}
out:
	fclose(f);
	return ret;
}

static int check_dir(const char *dir, bool create, const char **error_r)
{
	struct stat st;

	if (stat(dir, &st) < 0) {
		if (errno == ENOENT && create) {
			if (mkdir(dir, 0700) == 0)
				return 0;
		}
		*error_r = kw_error_format("state folder %s: %s", dir, strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		*error_r = kw_error_format("state folder %s is not a directory", dir);
		return -ENOTDIR;
	}
	if (access(dir, R_OK | X_OK) < 0) {
		*error_r = kw_error_format("state folder %s: %s", dir, strerror(errno));
		return -errno;
	}
	return 0;
}

int kw_config_load(const struct kw_config_options *opts, struct kw_config **cfg_r,
		   const char **error_r)
{
	struct kw_config *cfg = calloc(1, sizeof(*cfg));
	const char *state_dir = opts->state_dir, *v;
	int ret;

	if (cfg == NULL)
		abort();
	if (state_dir == NULL)
		state_dir = getenv(KW_STATE_DIR_ENV);
	if (state_dir != NULL && state_dir[0] == '\0') {
		*error_r = kw_error_format("the state folder name is empty");
		ret = -EINVAL;
		goto fail;
	}
	if (state_dir != NULL) {
		ret = check_dir(state_dir, opts->create_state_dir, error_r);
		if (ret < 0)
			goto fail;
	}
	if (opts->config_file != NULL) {
		cfg->file = kw_strdup(opts->config_file);
	} else if (state_dir != NULL) {
		char *p = path_join(state_dir, "keywarden.conf");
		if (access(p, F_OK) == 0)
			cfg->file = p;
		else
			free(p);
	} else if (access(KW_DEFAULT_CONFIG, F_OK) == 0) {
		cfg->file = kw_strdup(KW_DEFAULT_CONFIG);
	}
	if (cfg->file != NULL) {
		ret = parse_file(cfg, cfg->file, error_r);
		if (ret < 0)
			goto fail;
	}
	if (state_dir == NULL && (v = kw_config_get(cfg, "store", "state_dir")) != NULL) {
		state_dir = v;
		ret = check_dir(state_dir, opts->create_state_dir, error_r);
		if (ret < 0)
			goto fail;
	}
	cfg->state_dir = kw_strdup(state_dir != NULL ? state_dir : KW_DEFAULT_STATE_DIR);
	/* the store: KEYWARDEN_STORE_URL, [store] url, [store] database, the state folder's */
	v = getenv(KW_STORE_URL_ENV);
	if (v == NULL || v[0] == '\0')
		v = kw_config_get(cfg, "store", "url");
	if (v != NULL) {
		if (strncmp(v, "sqlite:", 7) == 0 && v[7] != '\0') {
			v += 7;
		} else if (!kw_store_url_is_pg(v)) {
			*error_r = kw_error_format("the store URL must start with sqlite: or "
						   "postgresql:");
			ret = -EINVAL;
			goto fail;
		}
	} else {
		v = kw_config_get(cfg, "store", "database");
	}
	cfg->database = v != NULL ? kw_strdup(v) : path_join(cfg->state_dir, "keywarden.db");
	if (!kw_store_url_is_pg(cfg->database)) {
		cfg->store_name = kw_strdup(cfg->database);
	} else if ((ret = kw_db_pg_url_check(cfg->database,
					     kw_config_bool(cfg, "store", "unverified_tls"),
					     &cfg->store_name, error_r)) < 0) {
		goto fail;
	}
	v = kw_config_get(cfg, "store", "key_file");
	cfg->key_file = v != NULL ? kw_strdup(v) : path_join(cfg->state_dir, "keywarden.key");
	v = kw_config_get(cfg, "validator", "socket");
	if (v != NULL)
		cfg->socket = kw_strdup(v);
	else if (state_dir != NULL)
		cfg->socket = path_join(state_dir, "validator.sock");
	else
		cfg->socket = kw_strdup(KW_DEFAULT_SOCKET_PATH);
	*cfg_r = cfg;
	return 0;
fail:
	kw_config_free(&cfg);
	return ret;
}

void kw_config_free(struct kw_config **cfgp)
{
	struct kw_config *cfg = *cfgp;

	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->n_entries; i++) {
		free(cfg->entries[i].section);
		free(cfg->entries[i].key);
		free(cfg->entries[i].value);
	}
	free(cfg->entries);
	free(cfg->state_dir);
	free(cfg->store_name);
	free(cfg->file);
	free(cfg->database);
	free(cfg->key_file);
	free(cfg->socket);
	free(cfg);
	*cfgp = NULL;
}

const char *kw_config_get(const struct kw_config *cfg, const char *section, const char *key)
{
	for (size_t i = 0; i < cfg->n_entries; i++) {
		if (strcmp(cfg->entries[i].section, section) == 0 &&
		    strcmp(cfg->entries[i].key, key) == 0)
			return cfg->entries[i].value;
	}
	return NULL;
}

uint64_t kw_config_uint(const struct kw_config *cfg, const char *section, const char *key)
{
	const struct setting *st = setting_get(section, key, KW_SETTING_UINT);
	const char *v = kw_config_get(cfg, section, key);
	const char *error = NULL;
	uint64_t n = st->def;

	if (v != NULL && parse_uint(st, v, &n, &error) < 0)
		abort(); /* checked at load */
	return n;
}

bool kw_config_bool(const struct kw_config *cfg, const char *section, const char *key)
{
	const struct setting *st = setting_get(section, key, KW_SETTING_BOOL);
	const char *v = kw_config_get(cfg, section, key);
	const char *error = NULL;
	bool b = st->def != 0;

	if (v != NULL && parse_bool(st, v, &b, &error) < 0)
		abort(); /* checked at load */
	return b;
}

const char *kw_config_state_dir(const struct kw_config *cfg)
{
	return cfg->state_dir;
}
const char *kw_config_file(const struct kw_config *cfg)
{
	return cfg->file;
}
const char *kw_config_store_name(const struct kw_config *cfg)
{
	return cfg->store_name;
}

const char *kw_config_database(const struct kw_config *cfg)
{
	return cfg->database;
}
const char *kw_config_key_file(const struct kw_config *cfg)
{
	return cfg->key_file;
}
const char *kw_config_socket(const struct kw_config *cfg)
{
	return cfg->socket;
}
