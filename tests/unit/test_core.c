/* test_core.c: role ranks, config parsing and paths, time parsing, the store's migrations. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "keywarden_protocol.h"
#include "store.h"
#include <sqlite3.h>

#include "store_private.h" /* test set-up only: SQL straight to the database */
#include "timeutil.h"

static char tmpdir[256];

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static struct kw_store *open_store(const char *name)
{
	char path[300];
	struct kw_store *store = NULL;
	const char *error = NULL;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	assert_int_equal(kw_store_open(path, KW_STORE_CREATE, &store, &error), 0);
	return store;
}

static void test_role_ranks(void **state)
{
	struct kw_store *store = open_store("roles.db");
	const char *order[] = { "Administrators", "Engineers", "Purge and Prefetch only (API+Web)",
				"Purge and Prefetch only (API)", "Users" };
	struct kw_role prev, r;
	const char *error = NULL;

	const char *header[] = { KW_PROTO_ROLE_NAMES }; /* what the PAM module and messages use */

	assert_int_equal(sizeof(header) / sizeof(header[0]), 5);
	for (size_t i = 0; i < 5; i++)
		assert_string_equal(header[i], order[i]);
	assert_int_equal(kw_store_role_get(store, order[0], &prev, &error), 0);
	for (size_t i = 1; i < 5; i++) {
		assert_int_equal(kw_store_role_get(store, order[i], &r, &error), 0);
		assert_true(r.rank < prev.rank);
		prev = r;
	}
	assert_int_equal(kw_store_role_get(store, "users", &r, &error), 0);
	assert_string_equal(r.name, "Users");
	assert_int_equal(kw_store_role_get(store, "Root", &r, &error), -ENOENT);
	assert_non_null(strstr(error, "unknown role"));
	assert_non_null(strstr(error, "(roles: Administrators, Engineers, Purge and Prefetch only "
				      "(API+Web), Purge and Prefetch only (API), Users)"));
	kw_store_free(&store);
	assert_null(store);
}

static void test_config_paths(void **state)
{
	struct kw_config_options opts = { 0 };
	struct kw_config *cfg = NULL;
	const char *error = NULL;
	char dir[300], conf[320], expect[340];

	snprintf(dir, sizeof(dir), "%s/state", tmpdir);
	opts.state_dir = dir;
	/* A missing state folder is an error, unless we are asked to create it. */
	assert_true(kw_config_load(&opts, &cfg, &error) < 0);
	assert_non_null(strstr(error, dir));
	opts.create_state_dir = true;
	assert_int_equal(kw_config_load(&opts, &cfg, &error), 0);
	snprintf(expect, sizeof(expect), "%s/keywarden.db", dir);
	assert_string_equal(kw_config_database(cfg), expect);
	snprintf(expect, sizeof(expect), "%s/validator.sock", dir);
	assert_string_equal(kw_config_socket(cfg), expect);
	assert_null(kw_config_file(cfg));
	kw_config_free(&cfg);

	snprintf(conf, sizeof(conf), "%s/keywarden.conf", dir);
	write_file(conf, "# comment\n[validator]\nidle_timeout = 30\n; other\n[sso]\n"
			 "allow_sha1 = yes\n[store]\ndatabase = /x/y.db\n");
	assert_int_equal(kw_config_load(&opts, &cfg, &error), 0);
	assert_string_equal(kw_config_database(cfg), "/x/y.db");
	assert_int_equal(kw_config_uint(cfg, "validator", "idle_timeout"), 30);
	/* absent: the table's default */
	assert_int_equal(kw_config_uint(cfg, "validator", "max_line"), 8192);
	assert_int_equal(kw_config_uint(cfg, "sso", "stale_days"), 30);
	assert_true(kw_config_bool(cfg, "sso", "allow_sha1"));
	assert_false(kw_config_bool(cfg, "notify", "starttls"));
	kw_config_free(&cfg);

	/* Unknown keys, keys outside sections, malformed lines and duplicates are refused,
	 * naming what is wrong. */
	const char *bad[][2] = {
		{ "[validator]\nidle_timout = 3\n", "idle_timout" },
		{ "idle_timeout = 3\n", "outside" },
		{ "[validator\n", "section" },
		{ "[validator]\nidle_timeout\n", "key = value" },
		{ "[validator]\nidle_timeout = 1\nidle_timeout = 2\n", "twice" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_file(conf, bad[i][0]);
		assert_int_equal(kw_config_load(&opts, &cfg, &error), -EINVAL);
		assert_non_null(strstr(error, bad[i][1]));
		assert_null(cfg);
	}
	/* Numbers and booleans are checked at load, for every program, against the table. */
	const char *bad_values[][2] = {
		{ "[sso]\nallow_sha1 = maybe\n", "[sso] allow_sha1: 'maybe' is not yes or no" },
		{ "[validator]\nidle_timeout = 0\n", "between 1 and 86400" },
		{ "[validator]\nidle_timeout = 86401\n", "between 1 and 86400" },
		{ "[validator]\nidle_timeout = 0x10\n", "'0x10' is not a number" },
		{ "[validator]\nidle_timeout = -1\n", "'-1' is not a number" },
		{ "[validator]\nidle_timeout = 5 \n", NULL }, /* trimmed: accepted */
		{ "[notify]\ntimeout = 601\n", "[notify] timeout" },
		{ "[sso]\nmax_connections = 1001\n", "[sso] max_connections" },
	};
	for (size_t i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
		write_file(conf, bad_values[i][0]);
		if (bad_values[i][1] == NULL) {
			assert_int_equal(kw_config_load(&opts, &cfg, &error), 0);
			kw_config_free(&cfg);
			continue;
		}
		assert_int_equal(kw_config_load(&opts, &cfg, &error), -EINVAL);
		assert_non_null(strstr(error, bad_values[i][1]));
		assert_non_null(strstr(error, "keywarden.conf:2:"));
		assert_null(cfg);
	}
	/* A FIFO in place of the file is refused, not waited on. */
	unlink(conf);
	assert_int_equal(mkfifo(conf, 0600), 0);
	assert_int_equal(kw_config_load(&opts, &cfg, &error), -EINVAL);
	assert_non_null(strstr(error, "not a regular file"));
	unlink(conf);
}

static void test_time_parse(void **state)
{
	int64_t t;
	char buf[KW_TIME_TEXT_MAX];

	assert_int_equal(kw_time_parse("2027-01-31", 1, &t), 0);
	kw_time_format(t, buf);
	assert_string_equal(buf, "2027-01-31T23:59:59Z");
	assert_int_equal(kw_time_parse("2027-01-31", 0, &t), -EINVAL);
	assert_int_equal(kw_time_parse("2027-01-31T10:00:00+02:00", 0, &t), 0);
	kw_time_format(t, buf);
	assert_string_equal(buf, "2027-01-31T08:00:00Z");
	assert_int_equal(kw_time_parse("2027-01-31T10:00:00.123Z", 0, &t), 0);
	assert_int_equal(kw_time_parse("1970-01-01T00:00:00Z", 0, &t), 0);
	assert_int_equal(t, 0);
	const char *bad[] = { "2027-02-30",
			      "2027-13-01",
			      "2027-1-01",
			      "27-01-01",
			      "2027-01-01x",
			      "2027-01-01T25:00:00Z",
			      "2027-01-01T10:00:00",
			      "tomorrow",
			      "",
			      "2027-01-01T10:00:00+2:00" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(kw_time_parse(bad[i], 1, &t), -EINVAL);
	assert_int_equal(kw_time_parse("2028-02-29", 1, &t), 0);
	assert_int_equal(kw_time_parse("2027-02-29", 1, &t), -EINVAL);
}

static void test_store_version(void **state)
{
	struct kw_store *store = open_store("version.db");
	char path[300];
	const char *error = NULL;
	struct stat st;

	assert_int_equal(
		sqlite3_exec(kw_store_sqlite(store), "PRAGMA user_version = 999", NULL, NULL, NULL),
		SQLITE_OK);
	kw_store_free(&store);
	snprintf(path, sizeof(path), "%s/version.db", tmpdir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* A database newer than the program is refused with a clear error. */
	assert_int_equal(kw_store_open(path, 0, &store, &error), -EPROTO);
	assert_non_null(strstr(error, "newer"));
	assert_null(store);
	/* A file that is not a database is refused. */
	snprintf(path, sizeof(path), "%s/junk.db", tmpdir);
	write_file(path, "this is not a database, not even close, but long enough to look like "
			 "one to a careless reader of headers...................................");
	assert_true(kw_store_open(path, 0, &store, &error) < 0);
	/* A missing database is refused without being created. */
	snprintf(path, sizeof(path), "%s/none.db", tmpdir);
	assert_int_equal(kw_store_open(path, 0, &store, &error), -ENOENT);
	assert_int_equal(access(path, F_OK), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_role_ranks),
		cmocka_unit_test(test_config_paths),
		cmocka_unit_test(test_time_parse),
		cmocka_unit_test(test_store_version),
	};
	char tmpl[] = "/tmp/kw-unit-XXXXXX", cmd[300];
	int ret;

	if (mkdtemp(tmpl) == NULL)
		return 1;
	snprintf(tmpdir, sizeof(tmpdir), "%s", tmpl);
	unsetenv("KEYWARDEN_STATE_DIR");
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		ret = 1;
	return ret;
}
