/* scim_json.c: the JSON that SCIM clients send (json-c, as the REST API): User resources and
 * PatchOps, read with attribute names and ops in any letter case, booleans as JSON or as the
 * strings "True"/"False" that Entra ID sends, bounded in depth; unknown attributes are ignored
 * as RFC 7644 asks. Pure: no store, no I/O. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "scim.h"
#include "text.h"

#define SCIM_DEPTH 8
#define SCIM_TEXT_MAX 256
#define SCIM_ROLES_MAX 64

static void clear_roles(struct kw_scim_user *u)
{
	for (size_t i = 0; i < u->n_roles; i++)
		free(u->roles[i]);
	free(u->roles);
	u->roles = NULL;
	u->n_roles = 0;
	u->roles_sent = false;
}

void kw_scim_user_clear(struct kw_scim_user *u)
{
	clear_roles(u);
	free(u->user_name);
	free(u->external_id);
	u->user_name = NULL;
	u->external_id = NULL;
	u->active = -1;
}

static json_object *parse(const char *body, size_t len, const char **why_r)
{
	json_tokener *tok;
	json_object *o = NULL;

	if (body == NULL || len == 0) {
		*why_r = "empty body";
		return NULL;
	}
	if (len > INT32_MAX || memchr(body, '\0', len) != NULL) {
		*why_r = "not JSON text";
		return NULL;
	}
	tok = json_tokener_new_ex(SCIM_DEPTH);
	if (tok == NULL)
		abort();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, body, (int)len);
	if (o == NULL || json_tokener_get_parse_end(tok) != len) {
		*why_r = json_tokener_get_error(tok) == json_tokener_error_depth
				 ? "JSON nested too deep"
				 : "malformed JSON";
		json_object_put(o);
		o = NULL;
	} else if (!json_object_is_type(o, json_type_object)) {
		*why_r = "not a JSON object";
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

/* A boolean as JSON or as a string "true"/"false" in any case; -EINVAL otherwise. */
static int boolean(json_object *v, int *b_r)
{
	if (json_object_is_type(v, json_type_boolean)) {
		*b_r = json_object_get_boolean(v) ? 1 : 0;
		return 0;
	}
	if (json_object_is_type(v, json_type_string)) {
		const char *s = json_object_get_string(v);
		if (strcasecmp(s, "true") == 0)
			*b_r = 1;
		else if (strcasecmp(s, "false") == 0)
			*b_r = 0;
		else
			return -EINVAL;
		return 0;
	}
	return -EINVAL;
}

static int text(json_object *v, char **s_r, const char **why_r)
{
	const char *error;

	if (!json_object_is_type(v, json_type_string)) {
		*why_r = "a string attribute is not a string";
		return -EINVAL;
	}
	if (kw_text_check(json_object_get_string(v), SCIM_TEXT_MAX, 0, &error) < 0) {
		*why_r = "a string attribute holds refused characters or is too long";
		return -EINVAL;
	}
	free(*s_r);
	*s_r = strdup(json_object_get_string(v));
	if (*s_r == NULL)
		abort();
	return 0;
}

/* roles or groups: an array of strings or of objects with a string "value"; replaces what was
 * sent before in the same body. */
static int roles(json_object *v, struct kw_scim_user *u, const char **why_r)
{
	size_t n;

	if (!json_object_is_type(v, json_type_array))
		v = NULL;
	if (v == NULL || (n = json_object_array_length(v)) > SCIM_ROLES_MAX) {
		*why_r = "roles is not an array (of at most 64)";
		return -EINVAL;
	}
	clear_roles(u);
	u->roles = calloc(n + 1, sizeof(*u->roles));
	if (u->roles == NULL)
		abort();
	u->n_roles = 0;
	u->roles_sent = true;
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(v, i);

		if (json_object_is_type(e, json_type_object)) {
			json_object *val = NULL;
			json_object_object_foreach(e, k, x)
			{
				if (strcasecmp(k, "value") == 0)
					val = x;
			}
			e = val;
		}
		if (e == NULL || text(e, &u->roles[u->n_roles], why_r) < 0) {
			*why_r = "a role is neither a string nor an object with a string value";
			return -EINVAL;
		}
		u->n_roles++;
	}
	return 0;
}

/* One attribute of a User (name in any case); unknown ones are ignored. */
static int attribute(const char *name, json_object *v, struct kw_scim_user *u, const char **why_r)
{
	if (strcasecmp(name, "active") == 0) {
		if (boolean(v, &u->active) < 0) {
			*why_r = "active is not a boolean";
			return -EINVAL;
		}
		return 0;
	}
	if (strcasecmp(name, "userName") == 0)
		return text(v, &u->user_name, why_r);
	if (strcasecmp(name, "externalId") == 0)
		return text(v, &u->external_id, why_r);
	if (strcasecmp(name, "roles") == 0 || strcasecmp(name, "groups") == 0)
		return roles(v, u, why_r);
	return 0;
}

static int attributes(json_object *o, struct kw_scim_user *u, const char **why_r)
{
	json_object_object_foreach(o, name, v)
	{
		int ret = attribute(name, v, u, why_r);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int kw_scim_json_user(const char *body, size_t len, struct kw_scim_user *u, const char **why_r)
{
	json_object *o = parse(body, len, why_r);
	int ret;

	memset(u, 0, sizeof(*u));
	u->active = -1;
	if (o == NULL)
		return -EINVAL;
	ret = attributes(o, u, why_r);
	json_object_put(o);
	if (ret < 0)
		kw_scim_user_clear(u);
	return ret;
}

static json_object *member(json_object *o, const char *name)
{
	json_object_object_foreach(o, k, v)
	{
		if (strcasecmp(k, name) == 0)
			return v;
	}
	return NULL;
}

int kw_scim_json_patch(const char *body, size_t len, struct kw_scim_user *u, const char **why_r,
		       const char **scim_type_r)
{
	json_object *o = parse(body, len, why_r), *ops;
	int ret = -EINVAL;

	memset(u, 0, sizeof(*u));
	u->active = -1;
	*scim_type_r = "invalidSyntax";
	if (o == NULL)
		return -EINVAL;
	ops = member(o, "Operations");
	if (ops == NULL || !json_object_is_type(ops, json_type_array)) {
		*why_r = "a PatchOp needs an Operations array";
		goto out;
	}
	for (size_t i = 0; i < json_object_array_length(ops); i++) {
		json_object *op = json_object_array_get_idx(ops, i), *kind, *path, *value;
		const char *k;

		if (!json_object_is_type(op, json_type_object) ||
		    (kind = member(op, "op")) == NULL ||
		    !json_object_is_type(kind, json_type_string)) {
			*why_r = "an operation without op";
			goto out;
		}
		k = json_object_get_string(kind);
		path = member(op, "path");
		value = member(op, "value");
		if (strcasecmp(k, "remove") == 0) {
			/* of what keywarden keeps, only roles can be removed: access ends */
			if (path != NULL && json_object_is_type(path, json_type_string) &&
			    (strcasecmp(json_object_get_string(path), "roles") == 0 ||
			     strcasecmp(json_object_get_string(path), "groups") == 0)) {
				clear_roles(u);
				u->roles_sent = true;
			}
			continue;
		}
		if (strcasecmp(k, "add") != 0 && strcasecmp(k, "replace") != 0) {
			*why_r = "op is not add, replace or remove";
			goto out;
		}
		if (value == NULL) {
			*why_r = "an operation without value";
			*scim_type_r = "invalidValue";
			goto out;
		}
		if (path != NULL) {
			if (!json_object_is_type(path, json_type_string)) {
				*why_r = "path is not a string";
				*scim_type_r = "invalidPath";
				goto out;
			}
			if (attribute(json_object_get_string(path), value, u, why_r) < 0) {
				*scim_type_r = "invalidValue";
				goto out;
			}
		} else if (!json_object_is_type(value, json_type_object)) {
			*why_r = "an operation without path needs an object value";
			*scim_type_r = "invalidValue";
			goto out;
		} else if (attributes(value, u, why_r) < 0) {
			*scim_type_r = "invalidValue";
			goto out;
		}
	}
	ret = 0;
out:
	json_object_put(o);
	if (ret < 0)
		kw_scim_user_clear(u);
	return ret;
}
