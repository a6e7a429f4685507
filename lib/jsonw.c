/* jsonw.c: JSON string escaping (see jsonw.h).
 *
 * The output is always valid JSON in valid UTF-8, whatever the input: data stored before the
 * text checks of text.h may hold invalid UTF-8 or controls, and a SIEM's parser drops a line
 * it cannot read. Each byte of invalid UTF-8 becomes \ufffd; controls and the characters
 * text.h refuses are written as \u escapes, so that a terminal or a log viewer showing the
 * JSON cannot be steered by them. */
#include "config.h"

#include <string.h>

#include "jsonw.h"
#include "text.h"

/* Longest escape of one character: a surrogate pair, "\ud83d\ude00". */
#define ESC_MAX 13

/* Escapes the character at s into out (NUL-terminated); returns the bytes of s consumed, 0 at
 * the NUL. At most 6 bytes of output per byte consumed (kw_json_string_buf()'s callers size
 * their buffers so). */
static size_t escape_char(const char *s, char out[ESC_MAX], size_t *out_len)
{
	uint32_t cp;
	int len = kw_text_next(s, &cp);
	int n;

	if (len == 0)
		return 0;
	if (len < 0) {
		*out_len = (size_t)snprintf(out, ESC_MAX, "\\ufffd");
		return 1;
	}
	switch (cp) {
	case '"':
		n = snprintf(out, ESC_MAX, "\\\"");
		break;
	case '\\':
		n = snprintf(out, ESC_MAX, "\\\\");
		break;
	case '\n':
		n = snprintf(out, ESC_MAX, "\\n");
		break;
	case '\r':
		n = snprintf(out, ESC_MAX, "\\r");
		break;
	case '\t':
		n = snprintf(out, ESC_MAX, "\\t");
		break;
	default:
		if (!kw_text_refused(cp, KW_TEXT_NAME)) {
			memcpy(out, s, (size_t)len);
			out[len] = '\0';
			n = len;
		} else if (cp < 0x10000) {
			n = snprintf(out, ESC_MAX, "\\u%04x", (unsigned)cp);
		} else {
			cp -= 0x10000;
			n = snprintf(out, ESC_MAX, "\\u%04x\\u%04x",
				     (unsigned)(0xd800 + (cp >> 10)),
				     (unsigned)(0xdc00 + (cp & 0x3ff)));
		}
		break;
	}
	*out_len = (size_t)n;
	return (size_t)len;
}

void kw_json_string(FILE *f, const char *s)
{
	char esc[ESC_MAX];
	size_t in, out;

	fputc('"', f);
	while ((in = escape_char(s, esc, &out)) != 0) {
		fwrite(esc, 1, out, f);
		s += in;
	}
	fputc('"', f);
}

int kw_json_string_buf(char *buf, size_t size, const char *s)
{
	size_t pos = 0, in, n;
	char esc[ESC_MAX];
	int ret = 0;

	if (size < 3) {
		if (size > 0)
			buf[0] = '\0';
		return -1;
	}
	buf[pos++] = '"';
	while ((in = escape_char(s, esc, &n)) != 0) {
		if (pos + n + 2 > size) {
			ret = -1; /* cut, but still a closed, terminated string literal */
			break;
		}
		memcpy(buf + pos, esc, n);
		pos += n;
		s += in;
	}
	buf[pos++] = '"';
	buf[pos] = '\0';
	return ret < 0 ? ret : (int)pos;
}

void kw_json_raw(FILE *f, const char *json)
{
	char esc[ESC_MAX];
	size_t in, out;

	while (*json != '\0') {
		if ((unsigned char)*json < 0x80) {
			fputc(*json++, f);
			continue;
		}
		in = escape_char(json, esc, &out);
		fwrite(esc, 1, out, f);
		json += in;
	}
}
