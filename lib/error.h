/* error.h: the one buffer for human error messages handed out through error_r.
 *
 * A function that fails with a detail formats it here and returns it through error_r; the text
 * stays valid until the same thread formats the next one, so callers print or copy it at once
 * (objects with a longer-lived error, like struct kw_store, keep their own). One buffer per
 * thread: safe in ssod's workers. The format may name an earlier message of this buffer as an
 * argument ("%s: %s", path, error): it is formatted aside first. */
#ifndef KW_ERROR_H
#define KW_ERROR_H

#define KW_ERROR_MAX 1024

/* Formats the message and returns it. */
const char *kw_error_format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Formats the message into *error_r and returns code (for "return kw_error_fail(...)"). */
int kw_error_fail(const char **error_r, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
