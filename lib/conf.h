/* conf.h: keywarden.conf and the paths every program derives from it.
 *
 * The file is INI-like: "[section]" lines, "key = value" lines, '#' or ';' comments. Every
 * program resolves its files the same way: --state-dir DIR (or KEYWARDEN_STATE_DIR) puts the
 * database, the key, the socket and an optional DIR/keywarden.conf in DIR; -c FILE names the
 * config file explicitly; otherwise /etc/keywarden/keywarden.conf (optional) and the system
 * paths apply. Unknown sections and keys are refused, naming them, so that a typo never
 * silently weakens a setting; so are numbers and booleans that do not fit the setting (one
 * table in conf.c names every setting with its type, default and range).
 *
 * A struct kw_config is owned by its loader and freed with kw_config_free(). Error texts
 * returned through error_r stay valid until the next call into this module. */
#ifndef KW_CONF_H
#define KW_CONF_H

#include <stdbool.h>
#include <stdint.h>

#include "keywarden_protocol.h" /* KW_DEFAULT_SOCKET_PATH, shared with libkeywarden */

#define KW_DEFAULT_CONFIG "/etc/keywarden/keywarden.conf"
#define KW_DEFAULT_STATE_DIR "/var/lib/keywarden"
#define KW_STATE_DIR_ENV "KEYWARDEN_STATE_DIR"
/* The store's location: sqlite:PATH or a libpq URI postgresql://... ([store] url). */
#define KW_STORE_URL_ENV "KEYWARDEN_STORE_URL"

struct kw_config;

struct kw_config_options {
	const char *state_dir;   /* --state-dir, or NULL (then KEYWARDEN_STATE_DIR) */
	const char *config_file; /* -c, or NULL */
	bool create_state_dir;   /* init: create the state folder (0700) when missing */
};

int kw_config_load(const struct kw_config_options *opts, struct kw_config **cfg_r,
		   const char **error_r);
void kw_config_free(struct kw_config **cfg);

/* Raw value, or NULL when not set. */
const char *kw_config_get(const struct kw_config *cfg, const char *section, const char *key);
/* The types of settings (conf.c's table gives each key its type, default and range). */
enum kw_setting_type {
	KW_SETTING_TEXT, /* checked by the part that reads it */
	KW_SETTING_UINT, /* a decimal number within the setting's range */
	KW_SETTING_BOOL, /* yes/no, true/false, on/off, 1/0 */
};
/* Typed getters: the value (checked when the file was loaded) or the table's default. Asking
 * for a key the table does not have, or as another type, is a bug: it aborts. */
uint64_t kw_config_uint(const struct kw_config *cfg, const char *section, const char *key);
bool kw_config_bool(const struct kw_config *cfg, const char *section, const char *key);

/* Resolved paths (never NULL). */
const char *kw_config_state_dir(const struct kw_config *cfg);
const char *kw_config_file(const struct kw_config *cfg); /* NULL when no file was read */
/* The store's location: an SQLite file's path, or a postgresql: URI (which may hold a
 * password: print kw_config_store_name() instead). */
const char *kw_config_database(const struct kw_config *cfg);
/* The store's location for messages: the path, or the URI without any password. */
const char *kw_config_store_name(const struct kw_config *cfg);
const char *kw_config_key_file(const struct kw_config *cfg);
const char *kw_config_socket(const struct kw_config *cfg);

#endif
