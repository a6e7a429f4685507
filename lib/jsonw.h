/* jsonw.h: a small JSON writer for CLI output and audit details; escapes every string.
 * Whatever the input, the output is valid JSON in valid UTF-8: invalid UTF-8 becomes \ufffd,
 * controls and the characters text.h refuses become \u escapes. */
#ifndef KW_JSONW_H
#define KW_JSONW_H

#include <stddef.h>
#include <stdio.h>

/* Writes s as a JSON string literal (with quotes) to f. */
void kw_json_string(FILE *f, const char *s);
/* Same into buf; returns the length written, or -1 when buf is too small: then buf holds the
 * string cut short, still quoted and NUL-terminated (when size >= 3). */
int kw_json_string_buf(char *buf, size_t size, const char *s);
/* Writes json, a JSON text already checked to be valid apart from its non-ASCII bytes (which
 * valid JSON holds only inside strings), with those bytes treated as kw_json_string() treats
 * them: for stored JSON such as audit details. */
void kw_json_raw(FILE *f, const char *json);

#endif
