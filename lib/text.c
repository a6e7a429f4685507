/* text.c: UTF-8 decoding, the accepted-text rule and safe display (see text.h). */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "text.h"

static bool cont(unsigned char c)
{
	return (c & 0xc0) == 0x80;
}

/* RFC 3629, table 3.7 of Unicode: the second byte's range depends on the first byte, which is
 * what excludes overlong forms, surrogates and code points above U+10FFFF. A NUL is never a
 * continuation byte, so a sequence cut by the end of the string is refused without reading
 * past it. */
int kw_text_next(const char *s, uint32_t *cp_r)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned char lo = 0x80, hi = 0xbf;
	uint32_t cp;
	int len;

	if (p[0] < 0x80) {
		*cp_r = p[0];
		return p[0] == 0 ? 0 : 1;
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		cp = p[0] & 0x0f;
		if (p[0] == 0xe0)
			lo = 0xa0; /* overlong */
		else if (p[0] == 0xed)
			hi = 0x9f; /* surrogates U+D800-U+DFFF */
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		cp = p[0] & 0x07;
		if (p[0] == 0xf0)
			lo = 0x90; /* overlong */
		else if (p[0] == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
	} else {
		goto invalid; /* a continuation byte, C0/C1 (overlong), F5-FF */
	}
	if (p[1] < lo || p[1] > hi)
		goto invalid;
	cp = (cp << 6) | (p[1] & 0x3f);
	for (int i = 2; i < len; i++) {
		if (!cont(p[i]))
			goto invalid;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	*cp_r = cp;
	return len;
invalid:
	*cp_r = KW_TEXT_REPLACEMENT;
	return -1;
}

static bool is_control(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

static bool is_bidi(uint32_t cp)
{
	return cp == 0x061c || cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
	       (cp >= 0x2066 && cp <= 0x2069);
}

static bool is_format(uint32_t cp)
{
	return cp == 0x2028 || cp == 0x2029 || cp == 0xfeff || (cp >= 0xfff9 && cp <= 0xfffb);
}

static bool is_blank_or_invisible(uint32_t cp)
{
	static const uint32_t ranges[][2] = {
		{ 0x00a0, 0x00a0 }, { 0x00ad, 0x00ad },   { 0x034f, 0x034f }, { 0x115f, 0x1160 },
		{ 0x1680, 0x1680 }, { 0x17b4, 0x17b5 },   { 0x180b, 0x180f }, { 0x2000, 0x200d },
		{ 0x202f, 0x202f }, { 0x205f, 0x2064 },   { 0x3000, 0x3000 }, { 0x3164, 0x3164 },
		{ 0xffa0, 0xffa0 }, { 0xe0000, 0xe007f },
	};

	for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++)
		if (cp >= ranges[i][0] && cp <= ranges[i][1])
			return true;
	return false;
}

bool kw_text_refused(uint32_t cp, unsigned flags)
{
	return is_control(cp) || is_bidi(cp) || is_format(cp) ||
	       ((flags & KW_TEXT_NAME) != 0 && is_blank_or_invisible(cp));
}

int kw_text_check(const char *s, size_t max_chars, unsigned flags, const char **error_r)
{
	size_t chars = 0;
	uint32_t cp;
	int len;

	while ((len = kw_text_next(s, &cp)) != 0) {
		if (len < 0) {
			*error_r = "is not valid UTF-8";
			return -EINVAL;
		}
		if (is_control(cp)) {
			*error_r = "must not contain control characters";
			return -EINVAL;
		}
		if (is_bidi(cp)) {
			*error_r = "must not contain bidirectional control characters";
			return -EINVAL;
		}
		if (kw_text_refused(cp, flags)) {
			*error_r =
				(flags & KW_TEXT_NAME) != 0
					? "must not contain line separators, blanks or invisible "
					  "characters"
					: "must not contain line separators or invisible format "
					  "characters";
			return -EINVAL;
		}
		s += len;
		chars++;
	}
	if (chars > max_chars) {
		*error_r = "is too long";
		return -E2BIG;
	}
	return 0;
}

size_t kw_text_chars(const char *s)
{
	size_t chars = 0;
	uint32_t cp;
	int len;

	while ((len = kw_text_next(s, &cp)) != 0) {
		s += len < 0 ? 1 : len;
		chars++;
	}
	return chars;
}

size_t kw_text_boundary(const char *s, size_t max_bytes)
{
	size_t pos = 0;
	uint32_t cp;
	int len;

	while ((len = kw_text_next(s + pos, &cp)) != 0) {
		size_t n = len < 0 ? 1 : (size_t)len;
		if (pos + n > max_bytes)
			break;
		pos += n;
	}
	return pos;
}

/* Writes the character at s (as kw_text_print() shows it); returns the bytes consumed, 0 at
 * the NUL. */
static size_t put_char(FILE *f, const char *s)
{
	uint32_t cp;
	int len = kw_text_next(s, &cp);

	if (len == 0)
		return 0;
	if (len < 0 || kw_text_refused(cp, 0)) {
		fputs("\xef\xbf\xbd", f); /* U+FFFD */
		return len < 0 ? 1 : (size_t)len;
	}
	fwrite(s, 1, (size_t)len, f);
	return (size_t)len;
}

void kw_text_print(FILE *f, const char *s)
{
	size_t n;

	while ((n = put_char(f, s)) != 0)
		s += n;
}

void kw_text_pad(FILE *f, const char *s, size_t width)
{
	kw_text_print(f, s);
	for (size_t chars = kw_text_chars(s); chars < width; chars++)
		fputc(' ', f);
}

void kw_text_cell(FILE *f, const char *s, size_t width)
{
	size_t chars = kw_text_chars(s), shown = 0, n;

	if (chars <= width) {
		kw_text_pad(f, s, width);
		return;
	}
	while (shown + 1 < width && (n = put_char(f, s)) != 0) {
		s += n;
		shown++;
	}
	fputc('~', f);
}

void kw_text_shell_quote(char *out, size_t size, const char *s)
{
	size_t o = 0;
	uint32_t cp;
	int len;

	if (size < 3)
		return;
	out[o++] = '\'';
	while ((len = kw_text_next(s, &cp)) != 0) {
		/* one character (an invalid byte alone), or the quote's escape; and the closing
		 * quote must still fit */
		size_t in = len < 0 ? 1 : (size_t)len, put = *s == '\'' ? 4 : in;

		if (o + put + 2 > size)
			break;
		memcpy(out + o, *s == '\'' ? "'\\''" : s, put);
		o += put;
		s += in;
	}
	out[o++] = '\'';
	out[o] = '\0';
}
