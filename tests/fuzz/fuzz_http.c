/* fuzz_http.c: libFuzzer target for the HTTP request head parser of the validator's check
 * endpoint (validator/http.c). Built and run by tests/validator/fuzz.sh with clang
 * -fsanitize=fuzzer,address,undefined. Checks the parser's promises: no read beyond the
 * buffer, fields inside the head, a head length within the input, every prefix of a complete
 * head incomplete or refused the same way (never another request), and the helpers safe on
 * whatever the parser returns. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

static void inside(const char *buf, size_t len, const struct kw_proto_field *f)
{
	if (f->s == NULL)
		return;
	if (f->s < buf || f->s + f->len > buf + len)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly size bytes, so that ASan sees any overread. */
	char *buf = malloc(size ? size : 1);
	struct kw_http_request req, again;
	const char *what = NULL;
	int ret;

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	ret = kw_http_parse(buf, size, 16, &req, &what);
	if (ret == 0) {
		struct kw_proto_field scheme, cred;
		char out[65];

		if (req.head_len == 0 || req.head_len > size)
			abort();
		inside(buf, req.head_len, &req.path);
		inside(buf, req.head_len, &req.query);
		inside(buf, req.head_len, &req.authorization);
		inside(buf, req.head_len, &req.min_role);
		inside(buf, req.head_len, &req.forwarded_for);
		inside(buf, req.head_len, &req.real_ip);
		if (req.n_headers > 16 || memchr(buf, '\0', req.head_len) != NULL)
			abort();
		/* The head alone parses to the same request; a strict prefix is incomplete. */
		if (kw_http_parse(buf, req.head_len, 16, &again, NULL) != 0 ||
		    again.head_len != req.head_len)
			abort();
		if (kw_http_parse(buf, req.head_len - 1, 16, &again, NULL) == 0)
			abort();
		(void)kw_http_path_is_authz(&req.path);
		(void)kw_http_query_param(&req.query, "min_role", out, sizeof(out));
		if (req.authorization.s != NULL &&
		    kw_http_auth_split(&req.authorization, &scheme, &cred) == 0) {
			inside(buf, req.head_len, &scheme);
			inside(buf, req.head_len, &cred);
		}
	} else if (what == NULL) {
		abort();
	} else if (ret != -EAGAIN && ret != -EPROTO && ret != -E2BIG && ret != -ENOSYS &&
		   ret != -EPROTONOSUPPORT) {
		abort();
	}
	free(buf);
	return 0;
}
