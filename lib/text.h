/* text.h: what text keywarden accepts, and how it shows text it did not check.
 *
 * Accepted text is valid UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above
 * U+10FFFF, no cut sequences) without characters that change how a terminal, a log viewer or
 * a JSON consumer reads the bytes around them:
 *   - C0 controls U+0000-U+001F, DEL U+007F, C1 controls U+0080-U+009F (U+009B is a CSI);
 *   - bidirectional controls U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069 (they make
 *     a name read differently from what it is: "Trojan Source");
 *   - U+2028 and U+2029 (line and paragraph separators: they end a line in some log viewers
 *     and a string in JavaScript), U+FEFF (byte order mark, invisible) and U+FFF9-U+FFFB
 *     (interlinear annotations, which hide text).
 * Names (KW_TEXT_NAME: logins, account names) also refuse what would make two names look
 * alike: Unicode blanks (U+00A0, U+1680, U+2000-U+200A, U+202F, U+205F, U+3000), invisible
 * characters (U+00AD, U+034F, U+115F, U+1160, U+17B4, U+17B5, U+180B-U+180F, U+200B-U+200D,
 * U+2060-U+2064, U+3164, U+FFA0) and tag characters U+E0000-U+E007F.
 *
 * Lengths are counted in characters (Unicode code points); a character takes one to four
 * bytes. Output helpers never write an invalid or unsafe sequence: they show each refused
 * character and each byte of invalid UTF-8 as U+FFFD, for data stored before these checks.
 *
 * Pure functions, thread-safe, no allocation. */
#ifndef KW_TEXT_H
#define KW_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Bytes that hold `chars` characters of UTF-8 and the terminating NUL. */
#define KW_TEXT_SIZE(chars) ((chars)*4 + 1)
#define KW_TEXT_REPLACEMENT 0xFFFD

enum kw_text_flags {
	KW_TEXT_NAME = 1 << 0, /* also refuse Unicode blanks, invisible and tag characters */
};

/* Checks s (NUL-terminated). 0: acceptable (the empty string is: callers decide);
 * -EINVAL: not valid UTF-8 or holds a refused character, *error_r says which kind (a static
 * string, never the bytes themselves); -E2BIG: more than max_chars characters. */
int kw_text_check(const char *s, size_t max_chars, unsigned flags, const char **error_r);

/* The number of characters of s; each byte of invalid UTF-8 counts as one. */
size_t kw_text_chars(const char *s);

/* Decodes the character at s: returns its length in bytes (1-4) and *cp_r, 0 at the NUL, or
 * -1 when s does not start a valid sequence (then *cp_r = U+FFFD and one byte is consumed). */
int kw_text_next(const char *s, uint32_t *cp_r);

/* True when the code point is one kw_text_check() refuses (with these flags). */
bool kw_text_refused(uint32_t cp, unsigned flags);

/* The largest length <= max_bytes (and <= strlen(s)) that does not end inside a character. */
size_t kw_text_boundary(const char *s, size_t max_bytes);

/* Writes s, every refused character and invalid byte shown as U+FFFD. */
void kw_text_print(FILE *f, const char *s);

/* Writes s as kw_text_print() does, then spaces up to `width` characters (never cuts). */
void kw_text_pad(FILE *f, const char *s, size_t width);

/* Writes s as a table cell of exactly `width` characters (width >= 2): shown as by
 * kw_text_print(), cut on a character boundary with '~' as the last character when longer,
 * padded with spaces when shorter. */
void kw_text_cell(FILE *f, const char *s, size_t width);
/* s as one shell word: "'text'", every ' written as '\'' (so that a command shown to an admin
 * can be pasted as is); cut short to fit size (at least 3), never inside a character. */
void kw_text_shell_quote(char *out, size_t size, const char *s);

#endif
