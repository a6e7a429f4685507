/* api_http.c: the REST API's side of libmicrohttpd (api.h): what a worker needs of a request,
 * copied out of the connection by the HTTP thread, and an answer of the API written as an HTTP
 * response. http.c routes /api/ here and runs the rest on its workers. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_http.h"
#include "xalloc.h"

/* The client's address without its port ("unix" for a Unix socket): the throttle's key. */
static void client_of(const char *peer, char *out, size_t size)
{
	const char *colon = strrchr(peer, ':');
	size_t n = colon != NULL ? (size_t)(colon - peer) : strlen(peer);

	if (n >= 2 && peer[0] == '[' && peer[n - 1] == ']') {
		peer++;
		n -= 2;
	}
	snprintf(out, size, "%.*s", (int)n, peer);
}

static enum MHD_Result add_param(void *cls, enum MHD_ValueKind kind, const char *key,
				 const char *value)
{
	struct kw_api_request *a = cls;

	if (a->n_params == KW_API_MAX_PARAMS) {
		a->too_many_params = true;
		return MHD_NO;
	}
	a->params[a->n_params].name = kw_strdup(key);
	a->params[a->n_params++].value = kw_strdup(value != NULL ? value : "");
	return MHD_YES;
}

struct kw_api_request *kw_api_http_request(struct MHD_Connection *c, const char *url,
					   const char *method, const char *peer)
{
	struct kw_api_request *a = calloc(1, sizeof(*a));

	if (a == NULL)
		abort();
	client_of(peer, a->ip, sizeof(a->ip));
	snprintf(a->method, sizeof(a->method), "%s",
		 strlen(method) < sizeof(a->method) ? method : "?");
	a->path = kw_strdup(url);
	a->authorization = kw_strdup(
		MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION));
	a->content_type = kw_strdup(
		MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE));
	a->cookie =
		kw_strdup(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_COOKIE));
	a->csrf = kw_strdup(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-CSRF-Token"));
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_param, a);
	return a;
}

unsigned long long kw_api_http_length(struct MHD_Connection *c)
{
	const char *cl =
		MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	unsigned long long n;
	char *end;

	if (cl == NULL)
		return 0;
	errno = 0;
	n = strtoull(cl, &end, 10);
	return errno != 0 || end == cl ? ULLONG_MAX : n;
}

enum MHD_Result kw_api_http_queue(struct MHD_Connection *c, const struct kw_api_answer *a,
				  unsigned retry_after)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(
		a->body != NULL ? a->len : 0, a->body != NULL ? a->body : (void *)"",
		MHD_RESPMEM_MUST_COPY);
	char num[16];
	enum MHD_Result ret;

	if (resp == NULL)
		return MHD_NO;
	if (a->body != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
					a->scim                   ? "application/scim+json"
					: a->content_type != NULL ? a->content_type
								  : "application/json");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
				a->cacheable ? "max-age=3600" : "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	/* the pages (page.c) load their stylesheet and script from this site only; forms post
	 * here only */
	MHD_add_response_header(
		resp, "Content-Security-Policy",
		a->page ? "default-src 'none'; style-src 'self'; script-src 'self'; "
			  "img-src 'self'; form-action 'self'; base-uri 'none'; "
			  "frame-ancestors 'none'"
			: "default-src 'none'; frame-ancestors 'none'");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	if (a->www_authenticate)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					a->scim ? "Bearer realm=\"keywarden-scim\""
						: "APIKey realm=\"keywarden\"");
	if (a->allow[0] != '\0')
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, a->allow);
	if (a->set_cookie[0] != '\0')
		MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, a->set_cookie);
	if (a->location[0] != '\0')
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, a->location);
	if (retry_after > 0) {
		snprintf(num, sizeof(num), "%u", retry_after);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, num);
	}
	/* a body not read to its end, or a client to slow down: no further request */
	if (a->status == MHD_HTTP_CONTENT_TOO_LARGE || a->status == MHD_HTTP_TOO_MANY_REQUESTS)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	ret = MHD_queue_response(c, (unsigned)a->status, resp);
	MHD_destroy_response(resp);
	return ret;
}
