/* xml_prescan.c: the linear pre-parse scan of raw XML (see xml_prescan.h). Every loop moves
 * forward through the input, and every search (memchr, find) starts where the previous one
 * ended, so the whole scan is linear in the input. */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "xml_prescan.h"

struct scan {
	const uint8_t *p;
	size_t len, i;
	const struct kw_xml_prescan_limits *lim;
	unsigned depth, elements, attributes_all;
	const char *why;
};

static int bad(struct scan *s, int code, const char *why)
{
	s->why = why;
	return code;
}

static bool is_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool starts(const struct scan *s, const char *lit)
{
	size_t n = strlen(lit);

	return s->len - s->i >= n && memcmp(s->p + s->i, lit, n) == 0;
}

/* The offset of lit at or after from, or len when absent. */
static size_t find(const struct scan *s, size_t from, const char *lit)
{
	size_t n = strlen(lit);

	while (from < s->len) {
		const uint8_t *q = memchr(s->p + from, lit[0], s->len - from);

		if (q == NULL)
			break;
		from = (size_t)(q - s->p);
		if (s->len - from < n)
			break;
		if (memcmp(q, lit, n) == 0)
			return from;
		from++;
	}
	return s->len;
}

/* A reference at s->i ('&'): a character reference or one of XML's five entities; anything
 * else is an entity no declaration can have made (there is no DTD). Leaves s->i past it. */
static int reference(struct scan *s)
{
	static const char *const known[] = { "lt", "gt", "amp", "apos", "quot" };
	size_t start = s->i + 1, k = start;

	while (k < s->len && k - start <= 16 && s->p[k] != ';')
		k++;
	if (k >= s->len || s->p[k] != ';' || k == start)
		return bad(s, -EINVAL, "a malformed reference");
	if (s->p[start] == '#') {
		for (size_t m = start + 1; m < k; m++) {
			uint8_t c = s->p[m];
			if (!(c >= '0' && c <= '9') && !(c >= 'a' && c <= 'f') &&
			    !(c >= 'A' && c <= 'F') && !(m == start + 1 && c == 'x'))
				return bad(s, -EINVAL, "a malformed character reference");
		}
	} else {
		bool ok = false;
		for (size_t m = 0; m < sizeof(known) / sizeof(known[0]); m++)
			ok = ok || (strlen(known[m]) == k - start &&
				    memcmp(s->p + start, known[m], k - start) == 0);
		if (!ok)
			return bad(s, -EINVAL, "an undeclared entity reference");
	}
	s->i = k + 1;
	return 0;
}

/* A quoted attribute value at s->i (the quote); leaves s->i past the closing quote. */
static int attribute_value(struct scan *s)
{
	uint8_t q = s->p[s->i];
	const uint8_t *end;
	size_t stop;

	if (q != '"' && q != '\'')
		return bad(s, -EINVAL, "an attribute value without quotes");
	end = memchr(s->p + s->i + 1, q, s->len - s->i - 1);
	if (end == NULL)
		return bad(s, -EINVAL, "an unterminated attribute value");
	stop = (size_t)(end - s->p);
	s->i++;
	while (s->i < stop) {
		uint8_t c = s->p[s->i];
		if (c == '<')
			return bad(s, -EINVAL, "'<' in an attribute value");
		if (c == '&') {
			int ret = reference(s);
			if (ret < 0)
				return ret;
			if (s->i > stop)
				return bad(s, -EINVAL, "a reference across a quote");
			continue;
		}
		s->i++;
	}
	s->i = stop + 1;
	return 0;
}

/* A start tag at s->i ('<' followed by a name): counts it and its attributes. */
static int start_tag(struct scan *s)
{
	unsigned attributes = 0;
	int ret;

	if (++s->elements > s->lim->max_elements)
		return bad(s, -E2BIG, "too many elements");
	if (s->depth > s->lim->max_depth)
		return bad(s, -E2BIG, "nested too deep");
	s->i++;
	while (s->i < s->len && !is_space(s->p[s->i]) && s->p[s->i] != '>' && s->p[s->i] != '/')
		s->i++;
	for (;;) {
		while (s->i < s->len && is_space(s->p[s->i]))
			s->i++;
		if (s->i >= s->len)
			break;
		if (s->p[s->i] == '>') {
			s->i++;
			s->depth++;
			return 0;
		}
		if (s->p[s->i] == '/') {
			if (s->i + 1 >= s->len || s->p[s->i + 1] != '>')
				return bad(s, -EINVAL, "a '/' in a tag");
			s->i += 2;
			return 0;
		}
		/* an attribute (or a namespace declaration): name = "value" */
		if (++attributes > s->lim->max_attributes)
			return bad(s, -E2BIG, "too many attributes on one element");
		if (++s->attributes_all > s->lim->max_attributes_all)
			return bad(s, -E2BIG, "too many attributes");
		while (s->i < s->len && !is_space(s->p[s->i]) && s->p[s->i] != '=' &&
		       s->p[s->i] != '>' && s->p[s->i] != '/' && s->p[s->i] != '<' &&
		       s->p[s->i] != '"' && s->p[s->i] != '\'')
			s->i++;
		while (s->i < s->len && is_space(s->p[s->i]))
			s->i++;
		if (s->i >= s->len || s->p[s->i] != '=')
			return bad(s, -EINVAL, "an attribute without a value");
		s->i++;
		while (s->i < s->len && is_space(s->p[s->i]))
			s->i++;
		if (s->i >= s->len)
			break;
		ret = attribute_value(s);
		if (ret < 0)
			return ret;
	}
	return bad(s, -EINVAL, "an unterminated tag");
}

/* The XML declaration at s->i ("<?xml "), up to end ("?>"): only UTF-8 may be declared, so
 * that every byte that looks like markup to this scan is markup to libxml2. */
static int declaration(struct scan *s, size_t end)
{
	size_t e = s->i;
	uint8_t q;
	const uint8_t *v, *close;

	while ((e = find(s, e, "encoding")) < end) {
		size_t k = e + 8;
		/* "encoding" as the pseudo-attribute's name, not inside another's value */
		if (!is_space(s->p[e - 1])) {
			e = k;
			continue;
		}
		while (k < end && is_space(s->p[k]))
			k++;
		if (k >= end || s->p[k] != '=')
			return bad(s, -EINVAL, "a malformed XML declaration");
		k++;
		while (k < end && is_space(s->p[k]))
			k++;
		if (k >= end || (s->p[k] != '"' && s->p[k] != '\''))
			return bad(s, -EINVAL, "a malformed XML declaration");
		q = s->p[k];
		v = s->p + k + 1;
		close = memchr(v, q, end - k - 1);
		if (close == NULL)
			return bad(s, -EINVAL, "a malformed XML declaration");
		if (!((close - v == 5 && strncasecmp((const char *)v, "UTF-8", 5) == 0) ||
		      (close - v == 4 && strncasecmp((const char *)v, "UTF8", 4) == 0)))
			return bad(s, -EINVAL, "an encoding other than UTF-8");
		break;
	}
	return 0;
}

int kw_xml_prescan(const uint8_t *xml, size_t len, bool fragment,
		   const struct kw_xml_prescan_limits *limits, const char **why_r)
{
	struct scan s = { .p = xml, .len = len, .lim = limits };
	int ret = 0;

	if (memchr(xml, '\0', len) != NULL) {
		ret = bad(&s, -EINVAL, "a NUL byte (only UTF-8 is accepted)");
		goto out;
	}
	if (!fragment) {
		/* UTF-8 only: a document starts with '<' after an optional BOM and blanks
		 * (UTF-16 and UTF-32 have NUL bytes, EBCDIC has no '<') */
		if (len >= 3 && memcmp(xml, "\xef\xbb\xbf", 3) == 0)
			s.i = 3;
		while (s.i < len && is_space(xml[s.i]))
			s.i++;
		if (s.i >= len || xml[s.i] != '<') {
			ret = bad(&s, -EINVAL, "not UTF-8 XML");
			goto out;
		}
		if (starts(&s, "<?xml") && s.i + 5 < len && is_space(xml[s.i + 5])) {
			size_t end = find(&s, s.i, "?>");
			if (end >= len) {
				ret = bad(&s, -EINVAL, "an unterminated XML declaration");
				goto out;
			}
			ret = declaration(&s, end);
			if (ret < 0)
				goto out;
			s.i = end + 2;
		}
	}
	while (s.i < len) {
		const uint8_t *lt = memchr(xml + s.i, '<', len - s.i), *amp;
		size_t text_end = lt != NULL ? (size_t)(lt - xml) : len, end;

		/* character data up to the next '<': only its references matter */
		while ((amp = memchr(xml + s.i, '&', text_end - s.i)) != NULL) {
			s.i = (size_t)(amp - xml);
			ret = reference(&s);
			if (ret < 0)
				goto out;
			if (s.i > text_end) {
				ret = bad(&s, -EINVAL, "a malformed reference");
				goto out;
			}
		}
		if (lt == NULL)
			break;
		s.i = text_end;
		if (starts(&s, "<!--")) {
			end = find(&s, s.i + 4, "-->");
			if (end >= len) {
				ret = bad(&s, -EINVAL, "an unterminated comment");
				goto out;
			}
			s.i = end + 3;
		} else if (starts(&s, "<![CDATA[")) {
			end = find(&s, s.i + 9, "]]>");
			if (end >= len) {
				ret = bad(&s, -EINVAL, "an unterminated CDATA section");
				goto out;
			}
			s.i = end + 3;
		} else if (starts(&s, "<!")) {
			/* <!DOCTYPE, <!ENTITY, <!ELEMENT, ...: no DTD, so no entities, ever */
			ret = bad(&s, -EPROTO, "a DOCTYPE or markup declaration");
			goto out;
		} else if (starts(&s, "<?")) {
			end = find(&s, s.i + 2, "?>");
			if (end >= len) {
				ret = bad(&s, -EINVAL, "an unterminated processing instruction");
				goto out;
			}
			s.i = end + 2;
		} else if (starts(&s, "</")) {
			const uint8_t *gt = memchr(xml + s.i, '>', len - s.i);
			if (gt == NULL || s.depth == 0) {
				ret = bad(&s, -EINVAL, "a stray or unterminated end tag");
				goto out;
			}
			s.depth--;
			s.i = (size_t)(gt - xml) + 1;
		} else {
			ret = start_tag(&s);
			if (ret < 0)
				goto out;
		}
	}
out:
	*why_r = ret < 0 ? s.why : "";
	return ret;
}
