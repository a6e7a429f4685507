/* test_text.c: the accepted-text rule of lib/text.c (UTF-8, controls, bidirectional controls,
 * limits in characters), table cells cut and padded by characters, and lib/jsonw.c's promise
 * of valid JSON whatever the input. */
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

#include "jsonw.h"
#include "text.h"

static int check(const char *s, size_t max, unsigned flags)
{
	const char *why = NULL;
	int ret = kw_text_check(s, max, flags, &why);

	if (ret < 0)
		assert_non_null(why);
	return ret;
}

static void refused(const char *s, unsigned flags)
{
	if (check(s, 1000, flags) != -EINVAL)
		fail_msg("accepted %zu bytes that must be refused (first byte 0x%02x)", strlen(s),
			 (unsigned char)s[0]);
}

static void accepted(const char *s, unsigned flags)
{
	if (check(s, 1000, flags) != 0)
		fail_msg("refused %zu bytes that must be accepted (first byte 0x%02x)", strlen(s),
			 (unsigned char)s[0]);
}

static void test_valid_utf8(void **state)
{
	(void)state;
	accepted("", 0);
	accepted("plain ASCII ~!@#$%^&*()", 0);
	accepted("caf\xc3\xa9", 0);                      /* U+00E9, 2 bytes */
	accepted("\xc2\xa1", 0);                         /* U+00A1, the first 2-byte non-C1 */
	accepted("\xdf\xbf", 0);                         /* U+07FF, the last 2-byte */
	accepted("\xe0\xa0\x80", 0);                     /* U+0800, the first 3-byte */
	accepted("\xed\x9f\xbf", 0);                     /* U+D7FF, just below the surrogates */
	accepted("\xee\x80\x80", 0);                     /* U+E000, just above them */
	accepted("\xe6\x97\xa5\xe6\x9c\xac", 0);         /* 日本 */
	accepted("\xef\xbf\xbd", 0);                     /* U+FFFD itself */
	accepted("\xf0\x90\x80\x80", 0);                 /* U+10000, the first 4-byte */
	accepted("\xf0\x9f\x94\x91", 0);                 /* U+1F511 key */
	accepted("\xf4\x8f\xbf\xbf", 0);                 /* U+10FFFF, the last code point */
	accepted("\xe2\x80\x8d", 0);                     /* ZWJ: emoji sequences need it */
	accepted("\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d", 0); /* Hebrew: right-to-left text is fine */
}

static void test_invalid_utf8(void **state)
{
	(void)state;
	refused("\xff", 0);
	refused("\xfe", 0);
	refused("a\x80", 0); /* lone continuation */
	refused("\xbf", 0);
	refused("\xc0\xaf", 0);                 /* overlong '/' */
	refused("\xc1\xbf", 0);                 /* overlong */
	refused("\xe0\x80\xaf", 0);             /* overlong '/', 3 bytes */
	refused("\xe0\x9f\xbf", 0);             /* overlong U+07FF */
	refused("\xf0\x80\x80\xaf", 0);         /* overlong '/', 4 bytes */
	refused("\xf0\x8f\xbf\xbf", 0);         /* overlong U+FFFF */
	refused("\xed\xa0\x80", 0);             /* U+D800, a surrogate */
	refused("\xed\xbf\xbf", 0);             /* U+DFFF */
	refused("\xed\xa0\xbd\xed\xb4\x91", 0); /* CESU-8 pair */
	refused("\xf4\x90\x80\x80", 0);         /* U+110000 */
	refused("\xf5\x80\x80\x80", 0);
	refused("\xf8\x88\x80\x80\x80", 0); /* 5-byte form */
	refused("\xc3", 0);                 /* cut at the end */
	refused("\xe2\x80", 0);
	refused("\xf0\x9f\x94", 0);
	refused("\xe2\x80x", 0); /* cut by an ASCII byte */
	refused("abc\xc3(", 0);
}

static void test_controls(void **state)
{
	char s[4];

	(void)state;
	for (unsigned c = 1; c < 0x20; c++) {
		snprintf(s, sizeof(s), "a%cb", (char)c);
		refused(s, 0);
	}
	refused("a\x7f", 0);
	refused("\xc2\x80", 0); /* U+0080 */
	refused("\xc2\x85", 0); /* NEL */
	refused("x\xc2\x9b"
		"31m",
		0);              /* U+009B, CSI */
	refused("\xc2\x9f", 0);  /* U+009F */
	refused("\x9b", 0);      /* a raw 0x9B: not UTF-8 at all */
	accepted("\xc2\xa0", 0); /* U+00A0 is not a control (but not in a name) */
}

static void test_bidi_and_format(void **state)
{
	static const char *const bidi[] = {
		"\xd8\x9c",     /* U+061C ALM */
		"\xe2\x80\x8e", /* U+200E LRM */
		"\xe2\x80\x8f", /* U+200F RLM */
		"\xe2\x80\xaa", /* U+202A LRE */
		"\xe2\x80\xab", /* U+202B RLE */
		"\xe2\x80\xac", /* U+202C PDF */
		"\xe2\x80\xad", /* U+202D LRO */
		"\xe2\x80\xae", /* U+202E RLO */
		"\xe2\x81\xa6", /* U+2066 LRI */
		"\xe2\x81\xa7", /* U+2067 RLI */
		"\xe2\x81\xa8", /* U+2068 FSI */
		"\xe2\x81\xa9", /* U+2069 PDI */
		"\xe2\x80\xa8", /* U+2028 LINE SEPARATOR */
		"\xe2\x80\xa9", /* U+2029 PARAGRAPH SEPARATOR */
		"\xef\xbb\xbf", /* U+FEFF BOM */
		"\xef\xbf\xb9", /* U+FFF9 */
		"\xef\xbf\xbb", /* U+FFFB */
	};
	char s[32];

	(void)state;
	for (size_t i = 0; i < sizeof(bidi) / sizeof(bidi[0]); i++) {
		snprintf(s, sizeof(s), "ab%scd", bidi[i]);
		refused(s, 0);
		refused(s, KW_TEXT_NAME);
	}
	/* neighbours that are fine */
	accepted("\xe2\x80\xa7", 0); /* U+2027 */
	accepted("\xe2\x80\xaf", 0); /* U+202F (a blank: refused in names only) */
	accepted("\xe2\x81\xaa", 0); /* U+206A */
	accepted("\xef\xbf\xbc", 0); /* U+FFFC */
}

static void test_names(void **state)
{
	static const char *const bad[] = {
		"\xc2\xa0",         /* U+00A0 NBSP */
		"\xc2\xad",         /* U+00AD soft hyphen */
		"\xe2\x80\x80",     /* U+2000 */
		"\xe2\x80\x8b",     /* U+200B zero width space */
		"\xe2\x80\x8d",     /* U+200D ZWJ */
		"\xe2\x80\xaf",     /* U+202F */
		"\xe2\x81\xa0",     /* U+2060 word joiner */
		"\xe3\x80\x80",     /* U+3000 ideographic space */
		"\xf3\xa0\x80\x81", /* U+E0001 language tag */
		"\xf3\xa0\x81\xbf", /* U+E007F cancel tag */
	};
	char s[32];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(s, sizeof(s), "al%sice", bad[i]);
		refused(s, KW_TEXT_NAME);
	}
	accepted("j\xc3\xbcrgen", KW_TEXT_NAME);
	accepted("\xe7\x94\xb0\xe4\xb8\xad", KW_TEXT_NAME);
	accepted("\xf0\x9f\x94\x91", KW_TEXT_NAME);
}

static void test_limits_in_characters(void **state)
{
	char s[4 * 101 + 1] = "";
	const char *why;

	(void)state;
	for (int i = 0; i < 100; i++)
		strcat(s, "\xf0\x9f\x94\x91");
	assert_int_equal(strlen(s), 400);
	assert_int_equal(kw_text_chars(s), 100);
	assert_int_equal(kw_text_check(s, 100, 0, &why), 0);
	strcat(s, "\xf0\x9f\x94\x91");
	assert_int_equal(kw_text_chars(s), 101);
	assert_int_equal(kw_text_check(s, 100, 0, &why), -E2BIG);
	assert_int_equal(kw_text_check("", 0, 0, &why), 0);
	assert_int_equal(kw_text_check("a", 0, 0, &why), -E2BIG);
	assert_int_equal(kw_text_check("\xc3\xa9\xc3\xa9", 2, 0, &why), 0);
	assert_int_equal(kw_text_check("\xc3\xa9\xc3\xa9"
				       "a",
				       2, 0, &why),
			 -E2BIG);
	/* bad bytes are refused as such even when the text is also too long */
	assert_int_equal(kw_text_check("aaaa\xff", 2, 0, &why), -EINVAL);
	/* an invalid byte counts as one character */
	assert_int_equal(kw_text_chars("a\xff\xc3\xa9"), 3);
	assert_int_equal(kw_text_chars(""), 0);
}

static void test_next(void **state)
{
	uint32_t cp;

	(void)state;
	assert_int_equal(kw_text_next("", &cp), 0);
	assert_int_equal(kw_text_next("A", &cp), 1);
	assert_int_equal(cp, 'A');
	assert_int_equal(kw_text_next("\xc3\xa9", &cp), 2);
	assert_int_equal(cp, 0xe9);
	assert_int_equal(kw_text_next("\xe2\x80\xae", &cp), 3);
	assert_int_equal(cp, 0x202e);
	assert_int_equal(kw_text_next("\xf0\x9f\x94\x91", &cp), 4);
	assert_int_equal(cp, 0x1f511);
	assert_int_equal(kw_text_next("\xed\xa0\x80", &cp), -1);
	assert_int_equal(cp, KW_TEXT_REPLACEMENT);
}

static void test_boundary(void **state)
{
	const char *s = "ab\xf0\x9f\x94\x91"
			"c"; /* a b KEY c: 7 bytes */

	(void)state;
	assert_int_equal(kw_text_boundary(s, 0), 0);
	assert_int_equal(kw_text_boundary(s, 2), 2);
	assert_int_equal(kw_text_boundary(s, 3), 2);
	assert_int_equal(kw_text_boundary(s, 5), 2);
	assert_int_equal(kw_text_boundary(s, 6), 6);
	assert_int_equal(kw_text_boundary(s, 7), 7);
	assert_int_equal(kw_text_boundary(s, 100), 7);
	assert_int_equal(kw_text_boundary("a\xff"
					  "b",
					  2),
			 2); /* an invalid byte is one */
}

/* What f received, as a string the caller frees. */
static char *capture(void (*fn)(FILE *, const char *, size_t), const char *s, size_t width)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	assert_non_null(f);
	fn(f, s, width);
	fclose(f);
	return buf;
}

static void print_adapter(FILE *f, const char *s, size_t width)
{
	(void)width;
	kw_text_print(f, s);
}

static void expect_out(void (*fn)(FILE *, const char *, size_t), const char *s, size_t width,
		       const char *want)
{
	char *got = capture(fn, s, width);

	assert_string_equal(got, want);
	free(got);
}

static void test_display(void **state)
{
	(void)state;
	/* refused characters and invalid bytes show as U+FFFD, one per character or byte */
	expect_out(print_adapter, "a\x1b[2Jb", 0, "a\xef\xbf\xbd[2Jb");
	expect_out(print_adapter,
		   "a\x9b"
		   "31m",
		   0,
		   "a\xef\xbf\xbd"
		   "31m");
	expect_out(print_adapter,
		   "a\xc2\x9b"
		   "31m",
		   0,
		   "a\xef\xbf\xbd"
		   "31m");
	expect_out(print_adapter, "evil\xe2\x80\xaetxt.exe", 0, "evil\xef\xbf\xbdtxt.exe");
	expect_out(print_adapter, "\xc0\xaf", 0, "\xef\xbf\xbd\xef\xbf\xbd");
	expect_out(print_adapter, "caf\xc3\xa9 \xf0\x9f\x94\x91", 0,
		   "caf\xc3\xa9 \xf0\x9f\x94\x91");
	/* cells: padded and cut by characters */
	expect_out(kw_text_cell, "ab", 4, "ab  ");
	expect_out(kw_text_cell, "\xc3\xa9\xc3\xa9", 4, "\xc3\xa9\xc3\xa9  ");
	expect_out(kw_text_cell, "abcd", 4, "abcd");
	expect_out(kw_text_cell, "abcde", 4, "abc~");
	expect_out(kw_text_cell,
		   "\xf0\x9f\x94\x91\xf0\x9f\x94\x91\xf0\x9f\x94\x91\xf0\x9f\x94\x91"
		   "\xf0\x9f\x94\x91",
		   4, "\xf0\x9f\x94\x91\xf0\x9f\x94\x91\xf0\x9f\x94\x91~");
	expect_out(kw_text_cell, "\xe2\x80\xae\xe2\x80\xae", 3, "\xef\xbf\xbd\xef\xbf\xbd ");
	expect_out(kw_text_cell, "\xff\xff\xff\xff", 3, "\xef\xbf\xbd\xef\xbf\xbd~");
	expect_out(kw_text_pad, "\xc3\xa9", 3, "\xc3\xa9  ");
	expect_out(kw_text_pad, "abcd", 2, "abcd");
}

/* A strict enough JSON string check: quoted, valid UTF-8, no raw control or refused character,
 * only the escapes JSON knows. */
static void assert_json_string(const char *j)
{
	const char *why;
	size_t len = strlen(j);

	assert_true(len >= 2 && j[0] == '"' && j[len - 1] == '"');
	if (kw_text_check(j, SIZE_MAX, 0, &why) != 0)
		fail_msg("JSON output is not safe text: %s", why);
	for (size_t i = 1; i + 1 < len; i++) {
		if (j[i] == '"')
			fail_msg("raw quote at %zu", i);
		if (j[i] == '\\') {
			i++;
			assert_non_null(strchr("\"\\/bfnrtu", j[i]));
			if (j[i] == 'u')
				i += 4;
		}
	}
}

static void json_case(const char *in, const char *want)
{
	char *buf = NULL, small[16];
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);
	int n;

	assert_non_null(f);
	kw_json_string(f, in);
	fclose(f);
	assert_json_string(buf);
	if (want != NULL)
		assert_string_equal(buf, want);
	{
		size_t cap = strlen(in) * 6 + 3;
		char *b = malloc(cap);
		assert_non_null(b);
		n = kw_json_string_buf(b, cap, in);
		assert_int_equal(n, (int)strlen(buf));
		assert_string_equal(b, buf);
		free(b);
	}
	/* cut short: still a closed string, never half an escape or a character */
	kw_json_string_buf(small, sizeof(small), in);
	assert_json_string(small);
	free(buf);
}

static void test_json(void **state)
{
	(void)state;
	json_case("plain", "\"plain\"");
	json_case("q\"b\\n\nt\t", "\"q\\\"b\\\\n\\nt\\t\"");
	json_case("\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"");
	json_case("\xff", "\"\\ufffd\"");
	json_case("a\x9b"
		  "b",
		  "\"a\\ufffdb\"");
	json_case("\xc0\xaf", "\"\\ufffd\\ufffd\"");
	json_case("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");
	json_case("\xc2\x9b", "\"\\u009b\"");
	json_case("\xe2\x80\xae", "\"\\u202e\"");
	json_case("\xe2\x80\xa8", "\"\\u2028\"");
	json_case("\xf3\xa0\x80\x81", "\"\\udb40\\udc01\"");
	json_case("caf\xc3\xa9 \xf0\x9f\x94\x91", "\"caf\xc3\xa9 \xf0\x9f\x94\x91\"");
	json_case("\xf0\x9f\x94\x91\xf0\x9f\x94\x91\xf0\x9f\x94\x91\xf0\x9f\x94\x91", NULL);
	json_case("\xe2\x80\xae\xe2\x80\xae\xe2\x80\xae\xe2\x80\xae", NULL);
	json_case("\xc3", "\"\\ufffd\"");
}

static void test_json_raw(void **state)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	(void)state;
	assert_non_null(f);
	kw_json_raw(f, "{\"name\":\"a\x9b\xe2\x80\xae\xc3\xa9\",\"n\":1}");
	fclose(f);
	assert_string_equal(buf, "{\"name\":\"a\\ufffd\\u202e\xc3\xa9\",\"n\":1}");
	free(buf);
}

/* A second decoder, written the other way round (decode the bits, then refuse what is
 * overlong, a surrogate or too large), to compare kw_text_next() with on every sequence of up
 * to three bytes and on the four-byte ones that matter. Returns the length or -1. */
static int reference_next(const unsigned char *p, uint32_t *cp_r)
{
	static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
	int len;
	uint32_t cp;

	if (p[0] < 0x80)
		len = 1, cp = p[0];
	else if ((p[0] & 0xe0) == 0xc0)
		len = 2, cp = p[0] & 0x1f;
	else if ((p[0] & 0xf0) == 0xe0)
		len = 3, cp = p[0] & 0x0f;
	else if ((p[0] & 0xf8) == 0xf0)
		len = 4, cp = p[0] & 0x07;
	else
		return -1;
	for (int i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if (cp < min[len] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return -1;
	*cp_r = cp;
	return len;
}

static void compare(const unsigned char *b)
{
	uint32_t a = 0, r = 0;
	int la = kw_text_next((const char *)b, &a), lr = reference_next(b, &r);

	if (b[0] == 0)
		return;
	if (la != lr || (la > 0 && a != r))
		fail_msg("%02x %02x %02x %02x: kw_text_next %d U+%04X, reference %d U+%04X", b[0],
			 b[1], b[2], b[3], la, (unsigned)a, lr, (unsigned)r);
}

static void test_shell_quote(void **state)
{
	char out[64], tiny[8];

	(void)state;
	kw_text_shell_quote(out, sizeof(out), "build-bot");
	assert_string_equal(out, "'build-bot'");
	kw_text_shell_quote(out, sizeof(out), "erin's $(id) `x`");
	assert_string_equal(out, "'erin'\\''s $(id) `x`'");
	kw_text_shell_quote(tiny, sizeof(tiny), "abcdefgh");
	assert_int_equal(tiny[0], '\'');
	assert_int_equal(tiny[strlen(tiny) - 1], '\'');
	assert_true(strlen(tiny) < sizeof(tiny));
	/* never cut inside a character: "'" + "é" (2 bytes) + "'" fits 5, not a half "é" */
	kw_text_shell_quote(tiny, 5, "\xc3\xa9\xc3\xa9");
	assert_string_equal(tiny, "'\xc3\xa9'");
}

static void test_exhaustive(void **state)
{
	static const unsigned char tails[] = {
		0x00, 0x41, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0
	};
	unsigned char b[5] = { 0 };
	char *out = NULL;
	size_t size = 0;
	FILE *f;

	(void)state;
	for (unsigned x = 0; x < 1u << 24; x++) {
		b[0] = (unsigned char)(x >> 16), b[1] = (unsigned char)(x >> 8),
		b[2] = (unsigned char)x;
		b[3] = 0x80;
		compare(b);
	}
	for (unsigned x = 0xf0 << 8; x < 0x100 << 8; x++)
		for (size_t i = 0; i < sizeof(tails); i++)
			for (size_t j = 0; j < sizeof(tails); j++) {
				b[0] = (unsigned char)(x >> 8), b[1] = (unsigned char)x;
				b[2] = tails[i], b[3] = tails[j];
				compare(b);
			}
	/* every two-byte input: the JSON string is valid, the display is safe */
	for (unsigned x = 0x0101; x < 0x10000; x++) {
		b[0] = (unsigned char)(x >> 8), b[1] = (unsigned char)x, b[2] = 0;
		if (b[1] == 0)
			continue;
		f = open_memstream(&out, &size);
		assert_non_null(f);
		kw_json_string(f, (const char *)b);
		fclose(f);
		assert_json_string(out);
		free(out);
		out = capture(kw_text_cell, (const char *)b, 3);
		assert_true(kw_text_check(out, 3, 0, &(const char *){ NULL }) == 0);
		free(out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_utf8),  cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_controls),    cmocka_unit_test(test_bidi_and_format),
		cmocka_unit_test(test_names),       cmocka_unit_test(test_limits_in_characters),
		cmocka_unit_test(test_next),        cmocka_unit_test(test_boundary),
		cmocka_unit_test(test_display),     cmocka_unit_test(test_json),
		cmocka_unit_test(test_json_raw),    cmocka_unit_test(test_exhaustive),
		cmocka_unit_test(test_shell_quote),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
