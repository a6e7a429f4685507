/* client.c: a service of the package check (tests/package/check.sh), built against the
 * installed libkeywarden-dev with pkg-config: reads a token on standard input, asks the
 * installed validator through the installed libkeywarden1, and prints "STATUS USER ROLE".
 * Exit 0 when valid, 1 when the validator said no, 2 when it could not ask. */
#include <keywarden.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
	char token[4096];
	struct kw_client *client;
	struct kw_check_result res;
	struct kw_check_opts opts = { .service = "package-check" };
	int ret;

	if (fgets(token, sizeof(token), stdin) == NULL)
		return 2;
	token[strcspn(token, "\n")] = '\0';
	client = kw_client_new(NULL, 0);
	if (client == NULL)
		return 2;
	ret = kw_client_check(client, token, &opts, &res);
	if (ret < 0) {
		fprintf(stderr, "check failed (%d): %s\n", ret, kw_client_error(client));
		kw_client_free(&client);
		return 2;
	}
	printf("%s %s %s\n", kw_check_status_name(res.status), res.user, res.role);
	kw_client_free(&client);
	return res.status == KW_CHECK_OK ? 0 : 1;
}
