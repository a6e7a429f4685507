/* test_secret.c: kw_secret_file_read() and its checks (lib/secret.h), and the durability
 * settings of a store's commits (synchronous FULL, NORMAL only inside a batch). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secret.h"
#include "store.h"
#include <sqlite3.h>

#include "store_private.h"

static char tmpdir[256];

static void path_of(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", tmpdir, name);
}

static void write_file(const char *path, const char *data, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void test_reads_private_file(void **state)
{
	char path[300], buf[64];
	const char *error = NULL;
	size_t len = 0;

	(void)state;
	path_of(path, sizeof(path), "ok");
	write_file(path, "hunter2\n", 0600);
	assert_int_equal(kw_secret_file_read(path, buf, sizeof(buf), &len, &error), 0);
	assert_int_equal(len, 8);
	assert_memory_equal(buf, "hunter2\n", 8);
	assert_int_equal(kw_secret_file_check(path, NULL, &error), 0);
	chmod(path, 0400);
	assert_int_equal(kw_secret_file_read(path, buf, sizeof(buf), &len, &error), 0);
	/* Exactly the buffer's size is fine, one byte more is not. */
	assert_int_equal(kw_secret_file_read(path, buf, 8, &len, &error), 0);
	assert_int_equal(kw_secret_file_read(path, buf, 7, &len, &error), -EFBIG);
	assert_string_equal(error, "is larger than expected");
	for (size_t i = 0; i < 7; i++)
		assert_int_equal(buf[i], 0); /* wiped on failure */
}

static void test_refuses_open_modes(void **state)
{
	static const mode_t modes[] = { 0640, 0604, 0660, 0644, 0602 };
	char path[300], buf[64];
	const char *error = NULL;
	size_t len = 0;

	(void)state;
	path_of(path, sizeof(path), "modes");
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		write_file(path, "x", modes[i]);
		assert_int_equal(kw_secret_file_read(path, buf, sizeof(buf), &len, &error), -EPERM);
		assert_string_equal(
			error, "is readable or writable by others (want mode 0600: chmod 600)");
		assert_int_equal(kw_secret_file_check(path, NULL, &error), -EPERM);
	}
}

static void test_refuses_other_owner(void **state)
{
	char path[300], buf[64];
	const char *error = NULL;
	size_t len = 0;

	(void)state;
	if (geteuid() != 0)
		skip(); /* only root can give a file away */
	path_of(path, sizeof(path), "owner");
	write_file(path, "x", 0600);
	assert_int_equal(chown(path, 65534, 65534), 0);
	assert_int_equal(kw_secret_file_read(path, buf, sizeof(buf), &len, &error), -EPERM);
	assert_string_equal(error, "belongs to another user (want this user or root)");
}

static void test_refuses_non_files(void **state)
{
	char path[300], link[300], buf[64];
	const char *error = NULL;
	size_t len = 0;

	(void)state;
	/* A FIFO: open() without O_NONBLOCK would wait here for a writer forever. */
	path_of(path, sizeof(path), "fifo");
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(kw_secret_file_read(path, buf, sizeof(buf), &len, &error), -EINVAL);
	assert_string_equal(error, "is not a regular file");
	path_of(path, sizeof(path), "target");
	write_file(path, "x", 0600);
	path_of(link, sizeof(link), "link");
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(kw_secret_file_read(link, buf, sizeof(buf), &len, &error), -ELOOP);
	assert_string_equal(error, "is a symbolic link");
	assert_int_equal(kw_secret_file_read(tmpdir, buf, sizeof(buf), &len, &error), -EINVAL);
	assert_int_equal(kw_secret_file_read("/dev/null", buf, sizeof(buf), &len, &error), -EINVAL);
	path_of(path, sizeof(path), "missing");
	assert_int_equal(kw_secret_file_read(path, buf, sizeof(buf), &len, &error), -ENOENT);
	assert_string_equal(error, "is missing");
}

static void test_private_folder(void **state)
{
	char path[300];
	const char *error = NULL;

	(void)state;
	path_of(path, sizeof(path), "dir");
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(kw_secret_dir_check(path, &error), 0);
	chmod(path, 0750);
	assert_int_equal(kw_secret_dir_check(path, &error), -EPERM);
	assert_string_equal(error, "is open to other users (want mode 0700: chmod 700)");
	chmod(path, 0701);
	assert_int_equal(kw_secret_dir_check(path, &error), -EPERM);
	path_of(path, sizeof(path), "ok");
	assert_int_equal(kw_secret_dir_check(path, &error), -ENOTDIR);
}

static int pragma_synchronous(struct kw_store *store)
{
	sqlite3_stmt *st;
	int v;

	assert_int_equal(
		sqlite3_prepare_v2(kw_store_sqlite(store), "PRAGMA synchronous", -1, &st, NULL),
		SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void test_commits_wait_for_the_disk(void **state)
{
	struct kw_store *store = NULL;
	const char *error = NULL;
	char path[300];

	(void)state;
	path_of(path, sizeof(path), "sync.db");
	assert_int_equal(kw_store_open(path, KW_STORE_CREATE, &store, &error), 0);
	assert_int_equal(pragma_synchronous(store), 2); /* FULL */
	assert_int_equal(kw_store_begin_batch(store), 0);
	assert_int_equal(pragma_synchronous(store), 1); /* NORMAL, for this batch only */
	assert_int_equal(kw_store_commit(store), 0);
	assert_int_equal(pragma_synchronous(store), 2);
	assert_int_equal(kw_store_begin_batch(store), 0);
	kw_store_rollback(store);
	assert_int_equal(pragma_synchronous(store), 2);
	assert_int_equal(kw_store_begin(store), 0);
	assert_int_equal(pragma_synchronous(store), 2);
	assert_int_equal(kw_store_commit(store), 0);
	kw_store_free(&store);
	assert_int_equal(kw_store_open(path, 0, &store, &error), 0);
	assert_int_equal(pragma_synchronous(store), 2);
	kw_store_free(&store);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reads_private_file),
		cmocka_unit_test(test_refuses_open_modes),
		cmocka_unit_test(test_refuses_other_owner),
		cmocka_unit_test(test_refuses_non_files),
		cmocka_unit_test(test_private_folder),
		cmocka_unit_test(test_commits_wait_for_the_disk),
	};
	char tmpl[] = "/tmp/kw-unit-XXXXXX";
	char cmd[300];
	int ret;

	if (mkdtemp(tmpl) == NULL)
		return 1;
	snprintf(tmpdir, sizeof(tmpdir), "%s", tmpl);
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		ret = 1;
	return ret;
}
