/* jsonw.c: JSON string escaping (see jsonw.h). */
#include "config.h"

#include <string.h>

#include "jsonw.h"

static size_t escape_one(unsigned char c, char out[8])
{
	switch (c) {
	case '"':
		return (size_t)snprintf(out, 8, "\\\"");
	case '\\':
		return (size_t)snprintf(out, 8, "\\\\");
	case '\n':
		return (size_t)snprintf(out, 8, "\\n");
	case '\r':
		return (size_t)snprintf(out, 8, "\\r");
	case '\t':
		return (size_t)snprintf(out, 8, "\\t");
	default:
		if (c < 0x20 || c == 0x7f)
			return (size_t)snprintf(out, 8, "\\u%04x", c);
		out[0] = (char)c;
		out[1] = '\0';
		return 1;
	}
}

void kw_json_string(FILE *f, const char *s)
{
	char esc[8];

	fputc('"', f);
	for (; *s != '\0'; s++) {
		size_t n = escape_one((unsigned char)*s, esc);
		fwrite(esc, 1, n, f);
	}
	fputc('"', f);
}

int kw_json_string_buf(char *buf, size_t size, const char *s)
{
	size_t pos = 0;
	char esc[8];
	int ret = 0;

	if (size < 3) {
		if (size > 0)
			buf[0] = '\0';
		return -1;
	}
	buf[pos++] = '"';
	for (; *s != '\0'; s++) {
		size_t n = escape_one((unsigned char)*s, esc);
		if (pos + n + 2 > size) {
			ret = -1; /* cut, but still a closed, terminated string literal */
			break;
		}
		memcpy(buf + pos, esc, n);
		pos += n;
	}
	buf[pos++] = '"';
	buf[pos] = '\0';
	return ret < 0 ? ret : (int)pos;
}
