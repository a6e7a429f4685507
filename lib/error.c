/* error.c: the per-thread error-message buffer (see error.h). */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

static _Thread_local char error_text[KW_ERROR_MAX];

static const char *format(const char *fmt, va_list ap)
{
	char tmp[KW_ERROR_MAX]; /* an argument may be error_text itself */

	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	memcpy(error_text, tmp, sizeof(error_text));
	return error_text;
}

const char *kw_error_format(const char *fmt, ...)
{
	const char *text;
	va_list ap;

	va_start(ap, fmt);
	text = format(fmt, ap);
	va_end(ap);
	return text;
}

int kw_error_fail(const char **error_r, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	*error_r = format(fmt, ap);
	va_end(ap);
	return code;
}
