/* fuzz_token.c: libFuzzer target for the token parser (kw_token_parse in lib/token.c), the
 * first thing the validator does with a client's credential. Built and run by
 * tests/validator/fuzz.sh. Checks: no overread; a parsed token round-trips through
 * kw_token_format to the same id and secret. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size ? size : 1);
	char again[KW_TOKEN_TEXT_MAX];
	struct kw_secret secret, secret2;
	uint64_t id, id2;

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	if (kw_token_parse(text, size, &id, &secret) == 0) {
		if (id == 0 || id > KW_TOKEN_ID_MAX)
			abort();
		kw_token_format(id, &secret, again);
		if (kw_token_parse(again, strlen(again), &id2, &secret2) != 0 || id2 != id ||
		    memcmp(secret.random, secret2.random, sizeof(secret.random)) != 0)
			abort();
	}
	free(text);
	return 0;
}
