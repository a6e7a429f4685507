/* api_json.c: the JSON of the REST API (api.h), read and written with json-c: the strict parse
 * of a token creation, the token object (the fields of `keywarden token list --json`), lists,
 * errors and /me. No secret passes through json-c: the one answer that holds a new token's
 * secret is completed in api.c, outside json-c's buffers, so that it can be wiped. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "api.h"
#include "timeutil.h"

#define CREATE_DEPTH 2 /* an object of strings */

static char *dup_text(json_object *o, size_t *len_r)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								  JSON_C_TO_STRING_NOSLASHESCAPE);
	char *copy = strdup(s != NULL ? s : "null");

	if (copy == NULL)
		abort();
	*len_r = strlen(copy);
	json_object_put(o);
	return copy;
}

static void add_string(json_object *o, const char *key, const char *value)
{
	json_object_object_add(o, key, json_object_new_string(value));
}

static void add_time(json_object *o, const char *key, int64_t t, const char *none)
{
	char buf[KW_TIME_TEXT_MAX];

	if (t == 0 || t == KW_NEVER) {
		json_object_object_add(o, key, none != NULL ? json_object_new_string(none) : NULL);
		return;
	}
	kw_time_format(t, buf);
	add_string(o, key, buf);
}

static json_object *token_object(const struct kw_token_info *t, int64_t now)
{
	json_object *o = json_object_new_object();
	bool soon = t->status == KW_TOKEN_ACTIVE && t->expires != KW_NEVER &&
		    t->expires - now <= KW_EXPIRY_SOON;

	if (o == NULL)
		abort();
	json_object_object_add(o, "id", json_object_new_int64((int64_t)t->id));
	add_string(o, "name", t->name);
	add_string(o, "description", t->description);
	add_string(o, "issued_by", t->issuer);
	add_string(o, "role", t->role.name);
	add_time(o, "created", t->created, NULL);
	add_time(o, "last_used", t->last_used, NULL);
	json_object_object_add(o, "last_ip",
			       t->last_ip[0] != '\0' ? json_object_new_string(t->last_ip) : NULL);
	add_time(o, "expires", t->expires, "never");
	add_string(o, "status", kw_token_status_name(t->status));
	json_object_object_add(o, "expires_soon", json_object_new_boolean(soon));
	if (t->deleted != 0) {
		add_time(o, "deleted", t->deleted, NULL);
		add_string(o, "deleted_by", t->deleted_by);
	}
	return o;
}

char *kw_api_json_token(const struct kw_token_info *t, int64_t now, size_t *len_r)
{
	return dup_text(token_object(t, now), len_r);
}

struct kw_api_json_list {
	json_object *array;
};

int kw_api_json_list_add(struct kw_api_json_list **list, const struct kw_token_info *t, int64_t now)
{
	if (*list == NULL) {
		*list = calloc(1, sizeof(**list));
		if (*list == NULL || ((*list)->array = json_object_new_array()) == NULL)
			abort();
	}
	if (json_object_array_add((*list)->array, token_object(t, now)) != 0)
		return -ENOMEM;
	return 0;
}

char *kw_api_json_list_end(struct kw_api_json_list **list, size_t *len_r)
{
	json_object *array = *list != NULL ? (*list)->array : json_object_new_array();

	if (array == NULL)
		abort();
	free(*list);
	*list = NULL;
	return dup_text(array, len_r);
}

char *kw_api_json_error(const char *code, const char *message, size_t *len_r)
{
	json_object *o = json_object_new_object();

	if (o == NULL)
		abort();
	add_string(o, "error", code);
	add_string(o, "message", message);
	return dup_text(o, len_r);
}

char *kw_api_json_me(const struct kw_token_auth *auth, const char *auth_kind, const char *csrf,
		     size_t *len_r)
{
	json_object *o = json_object_new_object();

	if (o == NULL)
		abort();
	add_string(o, "login", auth->login);
	add_string(o, "account", auth->account);
	add_string(o, "role", auth->role.name);
	add_string(o, "user_role", auth->user_role.name);
	add_string(o, "auth", auth_kind);
	if (auth->token_id != 0)
		json_object_object_add(o, "token_id",
				       json_object_new_int64((int64_t)auth->token_id));
	if (csrf != NULL)
		add_string(o, "csrf_token", csrf);
	return dup_text(o, len_r);
}

void kw_api_create_clear(struct kw_api_create *c)
{
	free(c->name);
	free(c->description);
	free(c->role);
	free(c->expires);
	memset(c, 0, sizeof(*c));
}

int kw_api_json_create(const char *body, size_t len, struct kw_api_create *c, const char **why_r)
{
	static const char *const members[] = { "name", "description", "role", "expires" };
	json_tokener *tok = json_tokener_new_ex(CREATE_DEPTH);
	json_object *o = NULL;
	size_t end;
	int ret = -EINVAL;

	memset(c, 0, sizeof(*c));
	if (tok == NULL)
		abort();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	if (len > 0)
		o = json_tokener_parse_ex(tok, body, (int)len);
	if (o == NULL) {
		*why_r = len == 0 ? "the body is empty"
			 : json_tokener_get_error(tok) == json_tokener_error_depth
				 ? "the JSON is nested too deep"
				 : "the body is not valid JSON in UTF-8";
		goto out;
	}
	end = json_tokener_get_parse_end(tok);
	for (; end < len; end++) {
		if (strchr(" \t\r\n", body[end]) == NULL) {
			*why_r = "text after the JSON value";
			goto out;
		}
	}
	if (!json_object_is_type(o, json_type_object)) {
		*why_r = "the body is not a JSON object";
		goto out;
	}
	json_object_object_foreach(o, key, val)
	{
		char **slot = NULL;
		const char *s;

		for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
			if (strcmp(key, members[i]) == 0)
				slot = i == 0   ? &c->name
				       : i == 1 ? &c->description
				       : i == 2 ? &c->role
						: &c->expires;
		}
		if (slot == NULL) {
			*why_r = "an unknown member (allowed: name, description, role, expires)";
			goto out;
		}
		if (!json_object_is_type(val, json_type_string)) {
			*why_r = "name, description, role and expires must be strings";
			goto out;
		}
		s = json_object_get_string(val);
		if (strlen(s) != (size_t)json_object_get_string_len(val)) {
			*why_r = "a string holds a NUL character";
			goto out;
		}
		free(*slot);
		*slot = strdup(s);
		if (*slot == NULL)
			abort();
	}
	if (c->name == NULL || c->role == NULL) {
		*why_r = "name and role are required";
		goto out;
	}
	ret = 0;
out:
	if (ret < 0)
		kw_api_create_clear(c);
	json_object_put(o);
	json_tokener_free(tok);
	return ret;
}

int kw_api_json_refresh(const char *body, size_t len, char **refresh_r, const char **why_r)
{
	json_tokener *tok = json_tokener_new_ex(CREATE_DEPTH);
	json_object *o = NULL, *v = NULL;
	int ret = -EINVAL;

	if (tok == NULL)
		abort();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	if (len > 0)
		o = json_tokener_parse_ex(tok, body, (int)len);
	if (o == NULL || json_tokener_get_parse_end(tok) != len ||
	    !json_object_is_type(o, json_type_object) || json_object_object_length(o) != 1 ||
	    !json_object_object_get_ex(o, "refresh", &v) ||
	    !json_object_is_type(v, json_type_string)) {
		*why_r = "send {\"refresh\": \"<refresh token>\"}";
		goto out;
	}
	*refresh_r = strdup(json_object_get_string(v));
	if (*refresh_r == NULL)
		abort();
	ret = 0;
out:
	json_object_put(o);
	json_tokener_free(tok);
	return ret;
}
