/* log.h: the one logging module of keywarden's programs.
 *
 * Lines go to standard error (foreground) or to syslog/journald (under systemd). A line names
 * the program and its level; callers never pass secrets. Not thread-safe by design: every
 * program of keywarden is single-threaded. */
#ifndef KW_LOG_H
#define KW_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum kw_log_level {
	KW_LOG_ERROR = 3,
	KW_LOG_WARNING = 4,
	KW_LOG_NOTICE = 5,
	KW_LOG_INFO = 6,
	KW_LOG_DEBUG = 7,
};

enum kw_log_target {
	KW_LOG_TARGET_STDERR,
	KW_LOG_TARGET_SYSLOG,
	KW_LOG_TARGET_JOURNAL,
};

/* Chooses the target: the journal when stderr is connected to it (JOURNAL_STREAM) or when
 * force_syslog is set under systemd, stderr otherwise. */
void kw_log_init(const char *ident, enum kw_log_level max_level, bool force_syslog);
void kw_log_set_level(enum kw_log_level max_level);
bool kw_log_enabled(enum kw_log_level level);
int kw_log_parse_level(const char *name, enum kw_log_level *level_r);

void kw_log(enum kw_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kw_logv(enum kw_log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* Logs with a stable message id (a 128-bit hex id as journald's MESSAGE_ID wants). */
void kw_log_id(enum kw_log_level level, const char *message_id, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define kw_error(...) kw_log(KW_LOG_ERROR, __VA_ARGS__)
#define kw_warning(...) kw_log(KW_LOG_WARNING, __VA_ARGS__)
#define kw_notice(...) kw_log(KW_LOG_NOTICE, __VA_ARGS__)
#define kw_info(...) kw_log(KW_LOG_INFO, __VA_ARGS__)
#define kw_debug(...)                                                                              \
	do {                                                                                       \
		if (kw_log_enabled(KW_LOG_DEBUG))                                                  \
			kw_log(KW_LOG_DEBUG, __VA_ARGS__);                                         \
	} while (0)

#endif
