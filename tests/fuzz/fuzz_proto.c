/* fuzz_proto.c: libFuzzer target for the validator's request line parser (validator/proto.c).
 * Built and run by tests/validator/fuzz.sh with clang -fsanitize=fuzzer,address,undefined.
 * Checks the parser's promises: no read beyond the line, and fields that lie inside it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

static void inside(const uint8_t *data, size_t size, const struct kw_proto_field *f)
{
	if (f->s == NULL)
		return;
	if ((const uint8_t *)f->s < data || (const uint8_t *)f->s + f->len > data + size)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly size bytes, so that ASan sees any overread. */
	char *line = malloc(size ? size : 1);
	struct kw_proto_request req;
	const char *what = NULL;

	if (line == NULL)
		return 0;
	memcpy(line, data, size);
	if (kw_proto_parse(line, size, &req, &what) == 0) {
		inside((const uint8_t *)line, size, &req.service);
		inside((const uint8_t *)line, size, &req.remote_ip);
		inside((const uint8_t *)line, size, &req.token);
		if (req.verb == KW_PROTO_VERB_CHECK && (req.id == 0 || req.token.s == NULL))
			abort();
		if (memchr(line, '\r', size) != NULL || memchr(line, '\0', size) != NULL)
			abort();
	} else if (what == NULL) {
		abort();
	}
	free(line);
	return 0;
}
