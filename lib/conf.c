/* conf.c: parse keywarden.conf and resolve the state paths (see conf.h). */
#include "config.h"

#include "conf.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
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
};

/* Every key a program of keywarden understands, by section. */
static const char *const known_keys[] = {
	"store.database", "store.key_file", "store.state_dir",
	"log.level",
	"validator.socket", "validator.socket_mode", "validator.socket_group",
	"validator.allow_uids", "validator.allow_gids", "validator.idle_timeout",
	"validator.max_connections", "validator.max_line", "validator.last_use_flush",
	"validator.rate_limit_failures", "validator.rate_limit_window",
	"validator.rate_limit_block", "validator.cache_size",
	"validator.max_connections_per_uid", "validator.line_timeout",
	"validator.http_listen", "validator.trusted_proxies", "validator.http_max_request",
	"validator.http_max_headers",
	"sso.account", "sso.sp_entity_id", "sso.acs_url", "sso.idp_metadata", "sso.sp_key",
	"sso.sp_cert", "sso.clock_skew", "sso.login_attribute", "sso.role_attribute",
	"sso.role_map", "sso.allow_sha1", "sso.allow_legacy_encryption",
	"sso.allow_missing_recipient", "sso.listen",
	"sso.stale_days", "sso.max_body", "sso.max_connections", "sso.slo_url",
	"sso.email_attribute", "sso.timeout",
	"notify.smtp_url", "notify.from", "notify.starttls", "notify.username",
	"notify.password_file", "notify.timeout",
	NULL,
};

static char error_buf[512];

static const char *set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *set_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(error_buf, sizeof(error_buf), fmt, ap);
	va_end(ap);
	return error_buf;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);
	if (d == NULL)
		abort(); /* programs, not libraries: out of memory ends them */
	return d;
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

static bool is_known(const char *section, const char *key)
{
	char name[256];

	snprintf(name, sizeof(name), "%s.%s", section, key);
	for (size_t i = 0; known_keys[i] != NULL; i++) {
		if (strcmp(known_keys[i], name) == 0)
			return true;
	}
	return false;
}

static int parse_file(struct kw_config *cfg, const char *path, const char **error_r)
{
	char line[CONFIG_MAX_LINE + 2], section[64] = "";
	unsigned lineno = 0;
	size_t total = 0;
	struct stat st;
	FILE *f;
	int ret = 0;

	f = fopen(path, "re");
	if (f == NULL) {
		*error_r = set_error("cannot read config file %s: %s", path, strerror(errno));
		return -errno;
	}
	if (fstat(fileno(f), &st) == 0 && st.st_size > CONFIG_MAX_BYTES) {
		*error_r = set_error("%s: config file larger than %d bytes", path,
				     CONFIG_MAX_BYTES);
		ret = -EFBIG;
		goto out;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *s, *eq, *key, *value;
		size_t len = strlen(line);

		lineno++;
		total += len;
		if (len > CONFIG_MAX_LINE || total > CONFIG_MAX_BYTES) {
			*error_r = set_error("%s:%u: line too long", path, lineno);
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
				*error_r = set_error("%s:%u: malformed section header", path,
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
			*error_r = set_error("%s:%u: expected 'key = value'", path, lineno);
			ret = -EINVAL;
			goto out;
		}
		*eq = '\0';
		key = trim(s);
		value = trim(eq + 1);
		if (section[0] == '\0') {
			*error_r = set_error("%s:%u: key '%s' outside of a [section]", path, lineno,
					     key);
			ret = -EINVAL;
			goto out;
		}
		if (!is_known(section, key)) {
			*error_r = set_error("%s:%u: unknown key '%s' in [%s]", path, lineno, key,
					     section);
			ret = -EINVAL;
			goto out;
		}
		if (kw_config_get(cfg, section, key) != NULL) {
			*error_r = set_error("%s:%u: [%s] %s is set twice", path, lineno, section,
					     key);
			ret = -EINVAL;
			goto out;
		}
		struct entry *n = realloc(cfg->entries, (cfg->n_entries + 1) * sizeof(*n));
		if (n == NULL)
			abort();
		cfg->entries = n;
		n[cfg->n_entries].section = xstrdup(section);
		n[cfg->n_entries].key = xstrdup(key);
		n[cfg->n_entries].value = xstrdup(value);
		cfg->n_entries++;
	}
	if (ferror(f)) {
		*error_r = set_error("cannot read config file %s", path);
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
		*error_r = set_error("state folder %s: %s", dir, strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		*error_r = set_error("state folder %s is not a directory", dir);
		return -ENOTDIR;
	}
	if (access(dir, R_OK | X_OK) < 0) {
		*error_r = set_error("state folder %s: %s", dir, strerror(errno));
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
		*error_r = set_error("the state folder name is empty");
		ret = -EINVAL;
		goto fail;
	}
	if (state_dir != NULL) {
		ret = check_dir(state_dir, opts->create_state_dir, error_r);
		if (ret < 0)
			goto fail;
	}
	if (opts->config_file != NULL) {
		cfg->file = xstrdup(opts->config_file);
	} else if (state_dir != NULL) {
		char *p = path_join(state_dir, "keywarden.conf");
		if (access(p, F_OK) == 0)
			cfg->file = p;
		else
			free(p);
	} else if (access(KW_DEFAULT_CONFIG, F_OK) == 0) {
		cfg->file = xstrdup(KW_DEFAULT_CONFIG);
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
	cfg->state_dir = xstrdup(state_dir != NULL ? state_dir : KW_DEFAULT_STATE_DIR);
	v = kw_config_get(cfg, "store", "database");
	cfg->database = v != NULL ? xstrdup(v) : path_join(cfg->state_dir, "keywarden.db");
	v = kw_config_get(cfg, "store", "key_file");
	cfg->key_file = v != NULL ? xstrdup(v) : path_join(cfg->state_dir, "keywarden.key");
	v = kw_config_get(cfg, "validator", "socket");
	if (v != NULL)
		cfg->socket = xstrdup(v);
	else if (state_dir != NULL)
		cfg->socket = path_join(state_dir, "validator.sock");
	else
		cfg->socket = xstrdup(KW_DEFAULT_SOCKET_PATH);
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

int kw_config_get_uint(const struct kw_config *cfg, const char *section, const char *key,
		       uint64_t def, uint64_t min, uint64_t max, uint64_t *v_r,
		       const char **error_r)
{
	const char *v = kw_config_get(cfg, section, key);
	unsigned long long n;
	char *end;

	if (v == NULL) {
		*v_r = def;
		return 0;
	}
	errno = 0;
	n = strtoull(v, &end, 0);
	if (v[0] == '\0' || v[0] == '-' || *end != '\0' || errno != 0 || n < min || n > max) {
		*error_r = set_error("[%s] %s: '%s' is not a number between %llu and %llu",
				     section, key, v, (unsigned long long)min,
				     (unsigned long long)max);
		return -EINVAL;
	}
	*v_r = n;
	return 0;
}

int kw_config_get_bool(const struct kw_config *cfg, const char *section, const char *key,
		       bool def, bool *v_r, const char **error_r)
{
	const char *v = kw_config_get(cfg, section, key);

	if (v == NULL) {
		*v_r = def;
	} else if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 || strcmp(v, "on") == 0 ||
		   strcmp(v, "1") == 0) {
		*v_r = true;
	} else if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0 || strcmp(v, "off") == 0 ||
		   strcmp(v, "0") == 0) {
		*v_r = false;
	} else {
		*error_r = set_error("[%s] %s: '%s' is not yes or no", section, key, v);
		return -EINVAL;
	}
	return 0;
}

const char *kw_config_state_dir(const struct kw_config *cfg)
{
	return cfg->state_dir;
}
const char *kw_config_file(const struct kw_config *cfg)
{
	return cfg->file;
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
