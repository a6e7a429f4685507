/* dlsyms.c: dlopen()s a shared object the way a PAM host or a service does and checks which
 * symbols it offers: "+NAME" must resolve, "-NAME" must not. Used by tests/pam/exports.sh.
 *
 *   dlsyms FILE [+NAME | -NAME]...
 *
 * Prints one line per symbol ("present NAME" / "absent NAME" / "WRONG ...") and exits 0 when
 * every expectation held, 1 otherwise, 2 when FILE cannot be loaded. */
#include <config.h>

#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	void *h;
	int bad = 0;

	if (argc < 2)
		return 2;
	h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		printf("dlopen failed: %s\n", dlerror());
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		const char *name = argv[i] + 1;
		int want = argv[i][0] == '+';
		int have = dlsym(h, name) != NULL;

		if (want == have) {
			printf("%s %s\n", have ? "present" : "absent", name);
		} else {
			printf("WRONG %s is %s\n", name, have ? "exported" : "missing");
			bad = 1;
		}
	}
	dlclose(h);
	return bad;
}
