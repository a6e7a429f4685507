/* test_http.c: unit tests of the HTTP request head parser of the check endpoint
 * (validator/http.c): the request shapes of nginx auth_request, Envoy ext_authz and Traefik
 * forwardAuth, pipelining, and the malformed heads it must refuse. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http.h"

static int parse(const char *s, struct kw_http_request *req)
{
	const char *what = NULL;
	int ret = kw_http_parse(s, strlen(s), 64 /* the default */, req, &what);

	if (ret != 0 && ret != -EAGAIN)
		assert_non_null(what);
	return ret;
}

static void assert_field(const struct kw_proto_field *f, const char *want)
{
	if (want == NULL) {
		assert_null(f->s);
		return;
	}
	assert_non_null(f->s);
	assert_int_equal(f->len, strlen(want));
	assert_memory_equal(f->s, want, f->len);
}

static void test_nginx_subrequest(void **state)
{
	(void)state;
	const char *s = "GET /authz?min_role=Engineers HTTP/1.0\r\n"
			"Host: keywarden\r\n"
			"Connection: close\r\n"
			"X-Forwarded-For: 203.0.113.7\r\n"
			"Authorization: APIKey 7711$abc\r\n"
			"\r\n";
	struct kw_http_request req;

	assert_int_equal(parse(s, &req), 0);
	assert_int_equal(req.method, KW_HTTP_GET);
	assert_int_equal(req.minor, 0);
	assert_field(&req.path, "/authz");
	assert_field(&req.query, "min_role=Engineers");
	assert_field(&req.authorization, "APIKey 7711$abc");
	assert_field(&req.forwarded_for, "203.0.113.7");
	assert_false(req.keep_alive);
	assert_int_equal(req.head_len, strlen(s));
	assert_true(kw_http_path_is_authz(&req.path));
}

static void test_envoy_shape(void **state)
{
	(void)state;
	/* ext_authz HTTP service: the original method and path under path_prefix, body not
	 * sent (Content-Length: 0), keep-alive by default in HTTP/1.1. */
	const char *s = "POST /authz/api/v1/items HTTP/1.1\r\n"
			"host: api.example\r\n"
			"authorization: apikey 7711_abc\r\n"
			"x-forwarded-for: 198.51.100.2, 10.0.0.5\r\n"
			"content-length: 0\r\n"
			"\r\n";
	struct kw_http_request req;

	assert_int_equal(parse(s, &req), 0);
	assert_int_equal(req.method, KW_HTTP_POST);
	assert_true(req.keep_alive);
	assert_int_equal(req.body_len, 0);
	assert_field(&req.authorization, "apikey 7711_abc");
	assert_true(kw_http_path_is_authz(&req.path));
}

static void test_traefik_shape(void **state)
{
	(void)state;
	const char *s = "GET /authz HTTP/1.1\r\n"
			"Host: 127.0.0.1:8181\r\n"
			"User-Agent: Go-http-client/1.1\r\n"
			"Authorization: APIKey 7711$abc\r\n"
			"X-Forwarded-Method: DELETE\r\n"
			"X-Forwarded-Uri: /x\r\n"
			"X-Keywarden-Min-Role:   Administrators  \r\n"
			"Accept-Encoding: gzip\r\n"
			"\r\n";
	struct kw_http_request req;

	assert_int_equal(parse(s, &req), 0);
	assert_field(&req.min_role, "Administrators");
	assert_null(req.query.s);
	assert_int_equal(req.n_headers, 7);
}

static void test_pipelined_and_partial(void **state)
{
	(void)state;
	const char *two = "HEAD /authz HTTP/1.1\r\nHost: a\r\n\r\n"
			  "GET /authz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
	struct kw_http_request req;
	size_t first = strlen("HEAD /authz HTTP/1.1\r\nHost: a\r\n\r\n");

	assert_int_equal(kw_http_parse(two, strlen(two), 64, &req, NULL), 0);
	assert_int_equal(req.method, KW_HTTP_HEAD);
	assert_int_equal(req.head_len, first);
	assert_true(req.keep_alive);
	assert_int_equal(kw_http_parse(two + first, strlen(two) - first, 64, &req, NULL), 0);
	assert_false(req.keep_alive);
	/* Every strict prefix of a request is incomplete, never an error. */
	for (size_t n = 0; n < first; n++)
		assert_int_equal(kw_http_parse(two, n, 64, &req, NULL), -EAGAIN);
	/* Leading empty lines are skipped. */
	assert_int_equal(parse("\r\n\r\nGET /authz HTTP/1.0\r\n\r\n", &req), 0);
	assert_int_equal(req.head_len, strlen("\r\n\r\nGET /authz HTTP/1.0\r\n\r\n"));
}

static void test_refused(void **state)
{
	(void)state;
	struct kw_http_request req;
	static const struct {
		const char *head;
		int ret;
	} cases[] = {
		{ "GET /authz HTTP/1.1\nHost: a\n\n", -EPROTO },             /* bare LF */
		{ "GET /authz HTTP/1.1\r\nHost: a\rb\r\n\r\n", -EPROTO },    /* bare CR */
		{ "GET /authz HTTP/1.1\r\nHost: a\r\n x\r\n\r\n", -EPROTO }, /* obs-fold */
		{ "GET /authz HTTP/1.1\r\nHost : a\r\n\r\n", -EPROTO }, /* blank before colon */
		{ "GET /authz HTTP/1.1\r\n\r\n", -EPROTO },             /* no Host */
		{ "GET /authz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", -EPROTO },
		{ "GET /authz HTTP/1.1\r\nHost: a\r\nAuthorization: APIKey 1$a\r\n"
		  "Authorization: APIKey 2$b\r\n\r\n",
		  -EPROTO },
		{ "POST /authz HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
		  "Transfer-Encoding: chunked\r\n\r\n",
		  -EPROTO },
		{ "POST /authz HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: "
		  "1\r\n\r\n",
		  -EPROTO },
		{ "POST /authz HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", -EPROTO },
		{ "POST /authz HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999\r\n\r\n",
		  -EPROTO },
		{ "GET /authz HTTP/1.1\r\nHost: a\r\nX-A: \x01\r\n\r\n", -EPROTO },
		{ "GET  /authz HTTP/1.1\r\nHost: a\r\n\r\n", -EPROTO },
		{ "GET http://a/authz HTTP/1.1\r\nHost: a\r\n\r\n", -EPROTO },
		{ "GET /authz HTTP/2.0\r\nHost: a\r\n\r\n", -EPROTONOSUPPORT },
		{ "GET /authz HTTP/1.1x\r\nHost: a\r\n\r\n", -EPROTO },
		{ "DELETE /authz HTTP/1.1\r\nHost: a\r\n\r\n", -ENOSYS },
		{ "G(T /authz HTTP/1.1\r\nHost: a\r\n\r\n", -EPROTO },
		{ "GET /authz HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4\r\n"
		  "X-Forwarded-For: 5.6.7.8\r\n\r\n",
		  -EPROTO },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ret = parse(cases[i].head, &req);
		if (ret != cases[i].ret)
			fail_msg("case %zu: got %d, want %d", i, ret, cases[i].ret);
	}
	/* NUL inside the head. */
	static const char nul[] = "GET /authz HTTP/1.1\r\nHost: a\0b\r\n\r\n";
	assert_int_equal(kw_http_parse(nul, sizeof(nul) - 1, 64, &req, NULL), -EPROTO);
}

static void test_header_count(void **state)
{
	(void)state;
	char buf[4096];
	size_t len = 0;
	struct kw_http_request req;

	len += (size_t)snprintf(buf + len, sizeof(buf) - len, "GET /authz HTTP/1.1\r\nHost: a\r\n");
	for (int i = 0; i < 10; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "X-%d: v\r\n", i);
	len += (size_t)snprintf(buf + len, sizeof(buf) - len, "\r\n");
	assert_int_equal(kw_http_parse(buf, len, 11, &req, NULL), 0);
	assert_int_equal(kw_http_parse(buf, len, 10, &req, NULL), -E2BIG);
	/* Too many lines is told before the head is complete. */
	assert_int_equal(kw_http_parse(buf, len - 2, 5, &req, NULL), -E2BIG);
}

static void test_helpers(void **state)
{
	(void)state;
	struct kw_proto_field q = { "a=1&min_role=Purge+and+Prefetch%20only%20%28API%29&b", 0 };
	struct kw_proto_field scheme, cred, v;
	char out[64];

	q.len = strlen(q.s);
	assert_int_equal(kw_http_query_param(&q, "min_role", out, sizeof(out)), 0);
	assert_string_equal(out, "Purge and Prefetch only (API)");
	assert_int_equal(kw_http_query_param(&q, "role", out, sizeof(out)), -ENOENT);
	assert_int_equal(kw_http_query_param(&q, "b", out, sizeof(out)), -ENOENT);
	q.s = "min_role=%4";
	q.len = strlen(q.s);
	assert_int_equal(kw_http_query_param(&q, "min_role", out, sizeof(out)), -EINVAL);
	q.s = "min_role=%0a";
	q.len = strlen(q.s);
	assert_int_equal(kw_http_query_param(&q, "min_role", out, sizeof(out)), -EINVAL);
	assert_int_equal(kw_http_query_param(&q, "min_role", out, 2), -EINVAL);

	v.s = "  Bearer   abc.def  ";
	v.len = strlen(v.s);
	assert_int_equal(kw_http_auth_split(&v, &scheme, &cred), 0);
	assert_true(kw_http_field_is(&scheme, "bearer"));
	assert_field(&cred, "abc.def");
	v.s = "APIKey";
	v.len = strlen(v.s);
	assert_int_equal(kw_http_auth_split(&v, &scheme, &cred), -EINVAL);

	struct kw_proto_field p = { "/authz", 6 };
	assert_true(kw_http_path_is_authz(&p));
	p.s = "/authz/x";
	p.len = 8;
	assert_true(kw_http_path_is_authz(&p));
	p.s = "/authzx";
	p.len = 7;
	assert_false(kw_http_path_is_authz(&p));
	p.s = "/auth";
	p.len = 5;
	assert_false(kw_http_path_is_authz(&p));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nginx_subrequest),
		cmocka_unit_test(test_envoy_shape),
		cmocka_unit_test(test_traefik_shape),
		cmocka_unit_test(test_pipelined_and_partial),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_header_count),
		cmocka_unit_test(test_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
