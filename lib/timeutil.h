/* timeutil.h: instants as Unix seconds (UTC), RFC 3339 text, and the CLI's --expires forms. */
#ifndef KW_TIMEUTIL_H
#define KW_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

#define KW_TIME_TEXT_MAX 32

/* Current time in seconds. */
int64_t kw_now(void);
/* Milliseconds on the monotonic clock (for deadlines and intervals: it never jumps). */
int64_t kw_monotonic_ms(void);
/* Microseconds on the monotonic clock. */
int64_t kw_monotonic_us(void);
/* "2027-01-31T23:59:59Z" into buf (at least KW_TIME_TEXT_MAX bytes). */
void kw_time_format(int64_t t, char *buf);
/* Parses RFC 3339 ("2027-01-31T23:59:59Z", "...+02:00", fractional seconds ignored) or, when
 * allow_date, "YYYY-MM-DD" meaning the last second of that day, UTC. -EINVAL when malformed or
 * out of range (years 1970..9999). */
int kw_time_parse(const char *text, int allow_date, int64_t *t_r);

#endif
