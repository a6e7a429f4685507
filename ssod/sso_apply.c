/* sso_apply.c: one SAML message from bytes to the store (see sso_apply.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "login.h"
#include "sso_apply.h"
#include "store_sso.h"
#include "text.h"

int kw_ssod_http_status(enum kw_saml_reason reason)
{
	switch (reason) {
	case KW_SAML_OK:
		return 200;
	case KW_SAML_XML:
	case KW_SAML_DTD:
	case KW_SAML_LIMIT:
	case KW_SAML_STRUCTURE:
		return 400; /* malformed: not a message we could even look at */
	case KW_SAML_REPLAY:
		return 409;
	default:
		return 403; /* well-formed, but not trusted or not for us */
	}
}

static void set_reason(struct kw_ssod_outcome *o, enum kw_saml_reason r, const char *detail)
{
	o->status = kw_ssod_http_status(r);
	o->reason = kw_saml_reason_name(r);
	o->detail = detail;
}

/* Maps a lib/sso.h error to the outcome. -EINVAL: the verified message carries a value
 * keywarden cannot store (a login with a blank or '=', a value too long): `invalid` is the
 * reason class of the value it came from. */
static void store_error(struct kw_ssod_outcome *o, int ret, const char *error,
			enum kw_saml_reason invalid)
{
	o->detail = error != NULL ? error : strerror(-ret);
	switch (ret) {
	case -EEXIST:
		set_reason(o, KW_SAML_REPLAY, o->detail);
		break;
	case -EINVAL:
		set_reason(o, invalid, o->detail);
		break;
	case -EPERM:
		o->status = 403;
		o->reason = "local_user";
		break;
	case -EACCES:
		o->status = 403;
		o->reason = "other_account";
		break;
	case -ENOENT:
		o->status = 404;
		o->reason = "unknown_user";
		break;
	case -EBUSY:
		o->status = 503;
		o->reason = "busy";
		break;
	default:
		o->status = 500;
		o->reason = "store";
		break;
	}
}

/* The NameID and the login come from the IdP and go to the store, the log and the HTTP
 * answer: text.h's rule (valid UTF-8, no controls, no bidirectional controls) is checked here,
 * before any of them sees the bytes; lengths and the rest of the name rule are the store's. */
static bool text_ok(const char *s, const char **why_r)
{
	return s == NULL || kw_text_check(s, SIZE_MAX, 0, why_r) == 0;
}

/* [sso] nameid_format: a transient NameID (a new one at each sign-in) names no one, so it is
 * refused unless login_attribute names the login; a NameID without Format (or unspecified)
 * is taken as it is; any other format must be listed. */
static enum kw_saml_reason check_nameid_format(const struct kw_ssod *d,
					       const struct kw_saml_result *res,
					       const char **detail_r)
{
	const char *f = res->name_id_format;
	unsigned bit;

	if (f[0] == '\0')
		return KW_SAML_OK;
	bit = kw_sso_nameid_of_uri(f);
	if (bit == KW_SSO_NAMEID_UNSPECIFIED)
		return KW_SAML_OK;
	if (bit == KW_SSO_NAMEID_TRANSIENT) {
		if (d->sso->saml.login_attribute != NULL)
			return KW_SAML_OK;
		*detail_r = "a transient NameID changes at each sign-in and cannot name a user: "
			    "set [sso] login_attribute to the attribute that holds the login, or "
			    "have the IdP send a persistent or emailAddress NameID";
		return KW_SAML_NAMEID;
	}
	if ((d->sso->nameid_formats & bit) == 0) {
		*detail_r = kw_error_format("NameID Format %s is not in [sso] nameid_format", f);
		return KW_SAML_NAMEID;
	}
	return KW_SAML_OK;
}

/* InResponseTo must name an AuthnRequest we sent and nobody answered yet (the store keeps
 * them: any worker, any process); an unsolicited Response is taken unless allow_unsolicited
 * is off. next_r: where the request said to go afterwards. */
static int check_in_response_to(struct kw_ssod *d, const struct kw_saml_result *res, int64_t now,
				char *next_r, size_t next_size, const char **detail_r)
{
	const char *error = NULL;
	int ret;

	next_r[0] = '\0';
	if (d->ingest)
		return 0;
	if (res->in_response_to[0] == '\0') {
		if (d->sso->allow_unsolicited)
			return 0;
		*detail_r = "an unsolicited (IdP-initiated) Response, and [sso] allow_unsolicited "
			    "is off: sign in at /saml/login";
		return -ENOENT;
	}
	ret = kw_store_sso_request_answer(d->store, res->in_response_to, now, next_r, next_size,
					  &error);
	if (ret == 0 && !kw_ssod_next_ok(next_r))
		next_r[0] = '\0';
	if (ret < 0)
		*detail_r = error;
	return ret;
}

static void reset(struct kw_ssod_outcome *o)
{
	memset(o, 0, sizeof(*o));
	o->status = 500;
	o->reason = "store";
	o->detail = "";
}

void kw_ssod_login(struct kw_ssod *d, const uint8_t *data, size_t len, int64_t now,
		   struct kw_ssod_outcome *o)
{
	struct kw_saml_result *res = NULL;
	struct kw_sso_result sr;
	const struct kw_role *role;
	enum kw_saml_reason r;
	const char *detail, *error = NULL;
	int ret;

	reset(o);
	r = kw_saml_verify(d->v, data, len, now, &res, &detail);
	if (r != KW_SAML_OK) {
		set_reason(o, r, detail);
		return;
	}
	if (!text_ok(res->name_id, &detail) || !text_ok(res->name_id_format, &detail))
		r = KW_SAML_NAMEID;
	else if (!text_ok(res->login, &detail)) /* the NameID, or login_attribute's value */
		r = d->sso->saml.login_attribute != NULL ? KW_SAML_ATTRIBUTE : KW_SAML_NAMEID;
	else if (!text_ok(res->in_response_to, &detail)) /* to the store and the log */
		r = KW_SAML_IN_RESPONSE_TO;
	if (r != KW_SAML_OK) {
		set_reason(o, r, detail);
		kw_saml_result_free(&res);
		return;
	}
	r = check_nameid_format(d, res, &detail);
	if (r != KW_SAML_OK) {
		set_reason(o, r, detail);
		kw_saml_result_free(&res);
		return;
	}
	ret = check_in_response_to(d, res, now, o->next, sizeof(o->next), &detail);
	if (ret < 0) {
		if (ret == -ENOENT)
			set_reason(o, KW_SAML_IN_RESPONSE_TO, detail);
		else if (ret == -EALREADY)
			set_reason(o, KW_SAML_REPLAY, detail);
		else
			store_error(o, ret, detail, KW_SAML_IN_RESPONSE_TO);
		o->next[0] = '\0';
		kw_saml_result_free(&res);
		return;
	}
	role = kw_sso_map_role(d->sso, res->roles, res->n_roles);
	snprintf(o->login, sizeof(o->login), "%s", res->login);
	snprintf(o->role, sizeof(o->role), "%s", role != NULL ? role->name : "");
	{
		struct kw_sso_assertion a = {
			.account = d->sso->account,
			.idp = res->issuer,
			.login = res->login,
			.name_id = res->name_id,
			.email = res->email,
			.role = role != NULL ? role->name : NULL,
			.session_index = res->session_index[0] != '\0' ? res->session_index : NULL,
			.assertion_id = res->assertion_id,
			/* the verifier's expiry is NotOnOrAfter plus the clock skew already */
			.replay_expires = res->expires,
		};
		ret = kw_sso_login(d->store, &a, now, &sr, &error);
	}
	kw_saml_result_free(&res);
	if (ret < 0) {
		/* the login is the NameID, or the value of login_attribute */
		store_error(o, ret, error,
			    d->sso->saml.login_attribute != NULL ? KW_SAML_ATTRIBUTE
								 : KW_SAML_NAMEID);
		return;
	}
	o->status = 200;
	o->reason = "ok";
	o->detail = kw_sso_outcome_name(sr.outcome);
	o->sso = sr.outcome;
	o->case_id = sr.case_id;
	o->active_tokens = sr.active_tokens;
}

void kw_ssod_logout(struct kw_ssod *d, const uint8_t *data, size_t len, int64_t now,
		    struct kw_ssod_outcome *o)
{
	struct kw_saml_logout *res = NULL;
	enum kw_saml_reason r;
	const char *detail, *error = NULL;
	int ret;

	reset(o);
	r = kw_saml_verify_logout(d->v, data, len, now, &res, &detail);
	if (r != KW_SAML_OK) {
		set_reason(o, r, detail);
		return;
	}
	if (!text_ok(res->name_id, &detail)) {
		set_reason(o, KW_SAML_NAMEID, detail);
		kw_saml_logout_free(&res);
		return;
	}
	snprintf(o->login, sizeof(o->login), "%s", res->name_id);
	{
		/* Several SessionIndex values: every session of the user ends (the safe side). */
		struct kw_sso_logout_request l = {
			.idp = res->issuer,
			.name_id = res->name_id,
			.session_index = res->n_session_index == 1 ? res->session_index : NULL,
			.request_id = res->request_id,
			.replay_expires = res->expires,
		};
		ret = kw_sso_logout(d->store, &l, now, &o->sessions_ended, &error);
	}
	kw_saml_logout_free(&res);
	if (ret < 0) {
		store_error(o, ret, error, KW_SAML_NAMEID);
		return;
	}
	o->status = 200;
	o->reason = "ok";
	o->detail = "logged out";
}
