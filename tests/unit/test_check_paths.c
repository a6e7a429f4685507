/* test_check_paths.c: a CHECK does the same secret work whatever the token id (issue 10,
 * item 5), proved by structure rather than by timing.
 *
 * The program links the validator's checker (daemon_check.c) with the linker's --wrap of
 * kw_token_digest(), kw_digest_equal(), kw_siphash128() and kw_siphash_equal(), so that every
 * call the checker makes is counted and its arguments seen. For a known token checked the
 * first time, a known id with a wrong secret, an unknown id (first from the database, then
 * from the cache's negative entry) and a deleted token, a CHECK must make exactly one memo
 * and one constant-time compare of it, one HMAC digest and one constant-time compare of that
 * digest. An unknown id used to return before either (1.13 us against 1.72 us), which told
 * real ids from unknown ones. Only the text that already matched its row's digest skips the
 * digest (its memo: one memo, one compare, no digest). The timings themselves are printed by
 * tests/bench/bench_check, never asserted. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "siphash.h"
#include "store.h"
#include "token.h"

static unsigned n_digest, n_equal, n_memo, n_memo_equal;
static const uint8_t *last_digest_out, *last_equal_a, *last_equal_b;
static const uint8_t *last_memo_out, *last_memo_equal_a;

void __real_kw_siphash128(const uint8_t key[KW_SIPHASH_KEY_LEN], const void *msg, size_t len,
			  uint8_t out[KW_SIPHASH_LEN]);
bool __real_kw_siphash_equal(const uint8_t a[KW_SIPHASH_LEN], const uint8_t b[KW_SIPHASH_LEN]);
void __wrap_kw_siphash128(const uint8_t key[KW_SIPHASH_KEY_LEN], const void *msg, size_t len,
			  uint8_t out[KW_SIPHASH_LEN]);
bool __wrap_kw_siphash_equal(const uint8_t a[KW_SIPHASH_LEN], const uint8_t b[KW_SIPHASH_LEN]);

void __wrap_kw_siphash128(const uint8_t key[KW_SIPHASH_KEY_LEN], const void *msg, size_t len,
			  uint8_t out[KW_SIPHASH_LEN])
{
	n_memo++;
	last_memo_out = out;
	__real_kw_siphash128(key, msg, len, out);
}

bool __wrap_kw_siphash_equal(const uint8_t a[KW_SIPHASH_LEN], const uint8_t b[KW_SIPHASH_LEN])
{
	n_memo_equal++;
	last_memo_equal_a = a;
	return __real_kw_siphash_equal(a, b);
}

int __real_kw_token_digest(struct kw_digest_key *key, uint64_t id, const struct kw_secret *secret,
			   uint8_t digest[KW_DIGEST_LEN]);
bool __real_kw_digest_equal(const uint8_t a[KW_DIGEST_LEN], const uint8_t b[KW_DIGEST_LEN]);
int __wrap_kw_token_digest(struct kw_digest_key *key, uint64_t id, const struct kw_secret *secret,
			   uint8_t digest[KW_DIGEST_LEN]);
bool __wrap_kw_digest_equal(const uint8_t a[KW_DIGEST_LEN], const uint8_t b[KW_DIGEST_LEN]);

int __wrap_kw_token_digest(struct kw_digest_key *key, uint64_t id, const struct kw_secret *secret,
			   uint8_t digest[KW_DIGEST_LEN])
{
	n_digest++;
	last_digest_out = digest;
	return __real_kw_token_digest(key, id, secret, digest);
}

bool __wrap_kw_digest_equal(const uint8_t a[KW_DIGEST_LEN], const uint8_t b[KW_DIGEST_LEN])
{
	n_equal++;
	last_equal_a = a;
	last_equal_b = b;
	return __real_kw_digest_equal(a, b);
}

struct fixture {
	char dir[64];
	struct kw_digest_key *key;
	struct kw_checker *checker;
	char good[KW_TOKEN_TEXT_MAX], deleted[KW_TOKEN_TEXT_MAX];
	char wrong[KW_TOKEN_TEXT_MAX], unknown[KW_TOKEN_TEXT_MAX];
};

static int setup(void **state)
{
	static struct fixture f;
	char path[128], keypath[128];
	struct kw_store *store = NULL;
	struct kw_secret secret;
	const char *error = NULL;
	uint64_t id_good, id_deleted;

	memset(&f, 0, sizeof(f));
	snprintf(f.dir, sizeof(f.dir), "/tmp/kw-check-paths.XXXXXX");
	assert_non_null(mkdtemp(f.dir));
	snprintf(keypath, sizeof(keypath), "%s/keywarden.key", f.dir);
	snprintf(path, sizeof(path), "%s/keywarden.db", f.dir);
	assert_int_equal(kw_digest_key_create(keypath, &error), 0);
	assert_int_equal(kw_digest_key_load(keypath, &f.key, &error), 0);
	assert_int_equal(kw_store_open(path, KW_STORE_CREATE, &store, &error), 0);
	assert_int_equal(kw_store_account_add(store, "root", "acme", 50, &error), 0);
	assert_int_equal(
		kw_store_user_add(store, "root", "acme", "alice", "Engineers", NULL, &error), 0);
	assert_int_equal(kw_store_token_create(store, f.key, "alice", "good", "", "Engineers",
					       KW_NEVER, &id_good, f.good, &error),
			 0);
	assert_int_equal(kw_store_token_create(store, f.key, "alice", "gone", "", "Engineers",
					       KW_NEVER, &id_deleted, f.deleted, &error),
			 0);
	assert_int_equal(kw_store_token_delete(store, "alice", id_deleted, &error), 0);
	kw_store_free(&store);
	/* Well-formed tokens (right checksum) that no row matches: a real id with another
	 * secret, and an id that does not exist. */
	assert_int_equal(kw_secret_generate(&secret), 0);
	kw_token_format(id_good, &secret, f.wrong);
	kw_token_format(424242, &secret, f.unknown);
	kw_secret_wipe(&secret);
	assert_int_equal(kw_checker_new(path, f.key, 64, &f.checker, &error), 0);
	kw_checker_sync(f.checker);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	kw_checker_free(&f->checker);
	kw_digest_key_free(&f->key);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void check_counted(struct fixture *f, const char *text, bool want_ok,
			  enum kw_proto_code want_code)
{
	struct kw_check_answer res;

	n_digest = n_equal = n_memo = n_memo_equal = 0;
	last_digest_out = last_equal_a = last_equal_b = last_memo_out = last_memo_equal_a = NULL;
	kw_checker_check(f->checker, text, strlen(text), NULL, 0, &res);
	assert_int_equal(res.ok, want_ok);
	if (!want_ok)
		assert_int_equal(res.code, want_code);
	/* the memo of the text, compared once, whatever follows */
	assert_int_equal(n_memo, 1);
	assert_int_equal(n_memo_equal, 1);
	assert_ptr_equal(last_memo_equal_a, last_memo_out);
}

/* One CHECK of a text that is not its row's memo: one memo and its compare, one digest, one
 * compare of that digest. */
static void check_once(struct fixture *f, const char *text, bool want_ok,
		       enum kw_proto_code want_code)
{
	check_counted(f, text, want_ok, want_code);
	assert_int_equal(n_digest, 1);
	assert_int_equal(n_equal, 1);
	assert_ptr_equal(last_equal_a, last_digest_out);
	assert_non_null(last_equal_b);
}

/* One CHECK of the text that last matched its row's digest: the memo alone. */
static void check_memo(struct fixture *f, const char *text, bool want_ok,
		       enum kw_proto_code want_code)
{
	check_counted(f, text, want_ok, want_code);
	assert_int_equal(n_digest, 0);
	assert_int_equal(n_equal, 0);
}

/* The other separator: the same token, another text (no memo of it yet). */
static void underscore(char *out, const char *text)
{
	strcpy(out, text);
	*strchr(out, '$') = '_';
}

static void test_good(void **state)
{
	check_once(*state, ((struct fixture *)*state)->good, true, 0); /* the first time */
}

static void test_wrong_secret(void **state)
{
	check_once(*state, ((struct fixture *)*state)->wrong, false, KW_PROTO_CODE_INVALID);
}

static void test_unknown_id(void **state)
{
	struct fixture *f = *state;

	check_once(f, f->unknown, false, KW_PROTO_CODE_INVALID); /* from the database */
	check_once(f, f->unknown, false, KW_PROTO_CODE_INVALID); /* from the cache */
}

static void test_deleted(void **state)
{
	check_once(*state, ((struct fixture *)*state)->deleted, false, KW_PROTO_CODE_DELETED);
}

/* The unknown id is compared with something that no digest equals by accident: not a fixed
 * pattern, and not the real token's digest. */
static void test_decoy(void **state)
{
	struct fixture *f = *state;
	static const uint8_t zero[KW_DIGEST_LEN];
	uint8_t decoy[KW_DIGEST_LEN];

	char other[KW_TOKEN_TEXT_MAX];

	check_once(f, f->unknown, false, KW_PROTO_CODE_INVALID);
	memcpy(decoy, last_equal_b, sizeof(decoy));
	assert_memory_not_equal(decoy, zero, sizeof(decoy));
	underscore(other, f->good); /* not the memo's text: compared with the real digest */
	check_once(f, other, true, 0);
	assert_memory_not_equal(decoy, last_equal_b, sizeof(decoy));
}

/* The memo: only the very text that matched skips the digest; a wrong secret, an unknown id
 * and the other form of the same token still cost it, after the memo was set. */
static void test_memo(void **state)
{
	struct fixture *f = *state;
	char other[KW_TOKEN_TEXT_MAX], spaced[KW_TOKEN_TEXT_MAX + 16];

	underscore(other, f->good);
	check_once(f, f->good, true, 0); /* the '$' text: the memo now holds it */
	check_memo(f, f->good, true, 0); /* and it skips the digest */
	check_memo(f, f->good, true, 0);
	check_once(f, f->wrong, false, KW_PROTO_CODE_INVALID);
	check_once(f, f->unknown, false, KW_PROTO_CODE_INVALID);
	check_memo(f, f->good, true, 0); /* a wrong secret did not clear it */
	check_once(f, other, true, 0);   /* the '_' text: digest, and the memo moves to it */
	check_memo(f, other, true, 0);
	check_once(f, f->good, true, 0);
	snprintf(spaced, sizeof(spaced), " APIKey %s ", f->good); /* the same token text */
	check_memo(f, spaced, true, 0);
	/* test_deleted's check matched the deleted token's digest: its memo tells no status */
	check_memo(f, f->deleted, false, KW_PROTO_CODE_DELETED);
}

/* A malformed token (bad checksum) is refused before any digest: it tells nothing about ids. */
static void test_malformed(void **state)
{
	struct fixture *f = *state;
	struct kw_check_answer res;

	n_digest = n_equal = 0;
	kw_checker_check(f->checker, "12$garbage", 10, NULL, 0, &res);
	assert_false(res.ok);
	assert_int_equal(res.code, KW_PROTO_CODE_INVALID);
	assert_int_equal(n_digest, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),       cmocka_unit_test(test_wrong_secret),
		cmocka_unit_test(test_unknown_id), cmocka_unit_test(test_deleted),
		cmocka_unit_test(test_decoy),      cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_memo),
	};

	kw_log_init("test_check_paths", KW_LOG_WARNING, false);
	return cmocka_run_group_tests(tests, setup, teardown);
}
