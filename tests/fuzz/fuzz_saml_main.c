/* fuzz_saml_main.c: runs the SAML fuzz target without libFuzzer, as a TAP test: every seed
 * of the corpus once (each must come back, and valid_response.xml must be accepted so that
 * the harness is known to reach the deep checks), then a fixed number of deterministic
 * mutations of the seeds (byte flips, truncations, splices). A crash or a sanitizer report
 * ends the program and fails the test. Usage: fuzz_saml_main [SEED_DIR] [MUTATIONS]. */
#include "config.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef KW_SAML_CORPUS
#error "build with -DKW_SAML_CORPUS"
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *kw_fuzz_saml_verdict(const uint8_t *data, size_t size);

struct seed {
	char *name;
	uint8_t *data;
	size_t size;
};

static struct seed seeds[256];
static size_t n_seeds;

static void load_dir(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL && n_seeds < 256) {
		char path[4096], name[512];
		FILE *f;
		long len;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		snprintf(name, sizeof(name), "%s%s", prefix, e->d_name);
		if (e->d_type == DT_DIR) {
			char sub[512];
			snprintf(sub, sizeof(sub), "%s/", name);
			load_dir(path, sub);
			continue;
		}
		f = fopen(path, "rb");
		if (f == NULL)
			continue;
		fseek(f, 0, SEEK_END);
		len = ftell(f);
		fseek(f, 0, SEEK_SET);
		seeds[n_seeds].data = malloc((size_t)len + 1);
		if (seeds[n_seeds].data == NULL ||
		    fread(seeds[n_seeds].data, 1, (size_t)len, f) != (size_t)len) {
			fclose(f);
			continue;
		}
		fclose(f);
		seeds[n_seeds].size = (size_t)len;
		seeds[n_seeds].name = strdup(name);
		n_seeds++;
	}
	closedir(d);
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : KW_SAML_CORPUS "/responses";
	long mutations = argc > 2 ? atol(argv[2]) : 3000;
	unsigned n = 0;
	int accepted_valid = 0;

	LLVMFuzzerInitialize(&argc, &argv);
	load_dir(dir, "");
	printf("1..%zu\n", n_seeds + 2);
	for (size_t i = 0; i < n_seeds; i++) {
		const char *v = kw_fuzz_saml_verdict(seeds[i].data, seeds[i].size);
		if (strcmp(seeds[i].name, "valid_response.xml") == 0 && strcmp(v, "ok") == 0)
			accepted_valid = 1;
		printf("ok %u - seed %s: %s\n", ++n, seeds[i].name, v);
		fflush(stdout);
	}
	printf("%s %u - valid_response.xml is accepted through the fuzz harness\n",
	       accepted_valid ? "ok" : "not ok", ++n);
	for (long m = 0; m < mutations && n_seeds > 0; m++) {
		struct seed *s = &seeds[next_rand() % n_seeds], *o = &seeds[next_rand() % n_seeds];
		size_t size = s->size;
		uint8_t *buf = malloc(size + o->size + 1);

		if (buf == NULL)
			abort();
		memcpy(buf, s->data, size);
		switch (next_rand() % 4) {
		case 0: /* flip bytes */
			for (int k = 0; k < 4 && size > 0; k++)
				buf[next_rand() % size] ^= (uint8_t)(1u << (next_rand() % 8));
			break;
		case 1: /* truncate */
			size = size > 0 ? next_rand() % size : 0;
			break;
		case 2: { /* splice the tail of another seed */
			size_t at = size > 0 ? next_rand() % size : 0;
			size_t from = o->size > 0 ? next_rand() % o->size : 0;
			memcpy(buf + at, o->data + from, o->size - from);
			size = at + o->size - from;
			break;
		}
		default: /* overwrite a byte with markup */
			if (size > 0)
				buf[next_rand() % size] = "<>&\"'=/!-"[next_rand() % 9];
			break;
		}
		LLVMFuzzerTestOneInput(buf, size);
		free(buf);
	}
	printf("ok %u - %ld mutated inputs verified without a crash\n", ++n, mutations);
	for (size_t i = 0; i < n_seeds; i++) {
		free(seeds[i].data);
		free(seeds[i].name);
	}
	return 0;
}
