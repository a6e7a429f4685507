/* test_xml_prescan.c: the linear scan of raw XML that keywarden-ssod runs before libxml2
 * (ssod/xml_prescan.h): what it counts, that markup inside quoted values, comments, CDATA and
 * processing instructions is not counted, and what it refuses. */
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

#include "xml_prescan.h"

static const struct kw_xml_prescan_limits limits = {
	.max_depth = 3,
	.max_elements = 10,
	.max_attributes = 4,
	.max_attributes_all = 8,
};

static int scan(const char *xml, bool fragment)
{
	const char *why = NULL;
	int ret = kw_xml_prescan((const uint8_t *)xml, strlen(xml), fragment, &limits, &why);

	assert_non_null(why);
	assert_true(ret == 0 || why[0] != '\0');
	return ret;
}

static void test_accepts(void **state)
{
	static const char *const ok[] = {
		"<r/>",
		"\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<r a='1' b=\"2\"/>",
		"<?xml version='1.0' encoding='utf-8' standalone='yes'?><r/>",
		"<?xml version=\"1.0\"?><r a = \"x\"\n\tb='y' ></r>",
		"<r a=\"&lt;&gt;&amp;&apos;&quot;&#10;&#x1F600;\">t &amp; u</r>",
		/* markup-like text where XML has none: not counted */
		"<r a=\"x/>y\" b='\">' ><!-- <e a='1' b='2' c='3' d='4' e='5'> --></r>",
		"<r><![CDATA[<e a='1' b='2' c='3' d='4' e='5'> & </e>]]></r>",
		"<r><?pi <e a='1' b='2' c='3' d='4' e='5'> ?></r>",
		"<r a='1' b='2' c='3' d='4'/>",                /* the per-element limit itself */
		"<a><b><c><d/></c></b></a>",                   /* depth 3 */
		"<r><e/><e/><e/><e/><e/><e/><e/><e/><e/></r>", /* 10 elements */
		"<r a='1' b='2' c='3' d='4'><e a='1' b='2' c='3' d='4'/></r>", /* 8 in all */
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		int ret = scan(ok[i], false);
		if (ret != 0)
			fail_msg("refused: %s", ok[i]);
	}
	assert_int_equal(scan("text <a x='1'/> <b/> more", true), 0);
}

static void test_limits(void **state)
{
	assert_int_equal(scan("<r a='1' b='2' c='3' d='4' e='5'/>", false), -E2BIG);
	assert_int_equal(scan("<r xmlns='u' xmlns:a='u' xmlns:b='u' xmlns:c='u' a:x='1'/>", false),
			 -E2BIG);
	assert_int_equal(scan("<r a='1' b='2' c='3'><e a='1' b='2' c='3'/><e a='1' b='2' "
			      "c='3'/></r>",
			      false),
			 -E2BIG);
	assert_int_equal(scan("<a><b><c><d><e/></d></c></b></a>", false), -E2BIG);
	assert_int_equal(scan("<r><e/><e/><e/><e/><e/><e/><e/><e/><e/><e/></r>", false), -E2BIG);
	assert_int_equal(scan("<e a='1' b='2' c='3' d='4' f='5'/>", true), -E2BIG);
}

static void test_refuses(void **state)
{
	assert_int_equal(scan("<!DOCTYPE r><r/>", false), -EPROTO);
	assert_int_equal(scan("<r><!ENTITY x 'y'></r>", false), -EPROTO);
	assert_int_equal(scan("<r>&x;</r>", false), -EINVAL);
	assert_int_equal(scan("<r a='&x;'/>", false), -EINVAL);
	assert_int_equal(scan("<r>&amp</r>", false), -EINVAL);
	assert_int_equal(scan("<r a='<'/>", false), -EINVAL);
	assert_int_equal(scan("<r a/>", false), -EINVAL);
	assert_int_equal(scan("<r a=b/>", false), -EINVAL);
	assert_int_equal(scan("<r a='b/>", false), -EINVAL);
	assert_int_equal(scan("<r a='b'", false), -EINVAL);
	assert_int_equal(scan("<r><!-- x </r>", false), -EINVAL);
	assert_int_equal(scan("<r><![CDATA[ x </r>", false), -EINVAL);
	assert_int_equal(scan("<r><? x </r>", false), -EINVAL);
	assert_int_equal(scan("</r>", false), -EINVAL);
	assert_int_equal(scan("hello", false), -EINVAL);
	assert_int_equal(scan("<?xml version='1.0' encoding='UTF-16'?><r/>", false), -EINVAL);
	assert_int_equal(scan("<?xml version='1.0' encoding='ISO-2022-JP'?><r/>", false), -EINVAL);
	/* UTF-16: NUL bytes (and a BOM that is not '<') */
	{
		static const uint8_t utf16[] = { 0xff, 0xfe, '<', 0, 'r', 0, '/', 0, '>', 0 };
		const char *why;
		assert_int_equal(kw_xml_prescan(utf16, sizeof(utf16), false, &limits, &why),
				 -EINVAL);
		assert_int_equal(kw_xml_prescan(utf16 + 2, sizeof(utf16) - 2, false, &limits, &why),
				 -EINVAL);
	}
}

/* The repro at full size, and many references: refused or accepted in one pass (a
 * quadratic scan would make this test take minutes). */
static void test_large(void **state)
{
	static const struct kw_xml_prescan_limits big = {
		.max_depth = 48,
		.max_elements = 20000,
		.max_attributes = 64,
		.max_attributes_all = 10000,
	};
	size_t cap = 25000 * 12 + 64, n = 0;
	char *xml = malloc(cap);
	const char *why;

	assert_non_null(xml);
	n += (size_t)snprintf(xml + n, cap - n, "<r");
	for (int i = 0; i < 25000; i++)
		n += (size_t)snprintf(xml + n, cap - n, " a%d=\"\"", i);
	n += (size_t)snprintf(xml + n, cap - n, "/>");
	assert_int_equal(kw_xml_prescan((uint8_t *)xml, n, false, &big, &why), -E2BIG);
	assert_string_equal(why, "too many attributes on one element");
	n = (size_t)snprintf(xml, cap, "<r>");
	while (n + 10 < cap)
		n += (size_t)snprintf(xml + n, cap - n, "&amp;");
	n += (size_t)snprintf(xml + n, cap - n, "</r>");
	assert_int_equal(kw_xml_prescan((uint8_t *)xml, n, false, &big, &why), 0);
	free(xml);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepts),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_refuses),
		cmocka_unit_test(test_large),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
