/* log.c: levels and targets for every program's log lines (see log.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "log.h"

static const char *log_ident = "keywarden";
static enum kw_log_level log_max = KW_LOG_INFO;
static enum kw_log_target log_target = KW_LOG_TARGET_STDERR;

static const char *const level_names[] = {
	[KW_LOG_ERROR] = "error", [KW_LOG_WARNING] = "warning", [KW_LOG_NOTICE] = "notice",
	[KW_LOG_INFO] = "info",   [KW_LOG_DEBUG] = "debug",
};

void kw_log_init(const char *ident, enum kw_log_level max_level, bool force_syslog)
{
	log_ident = ident;
	log_max = max_level;
	if (getenv("JOURNAL_STREAM") != NULL)
		log_target = KW_LOG_TARGET_JOURNAL;
	else if (force_syslog)
		log_target = KW_LOG_TARGET_SYSLOG;
	else
		log_target = KW_LOG_TARGET_STDERR;
	if (log_target == KW_LOG_TARGET_SYSLOG)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_AUTHPRIV);
}

void kw_log_set_level(enum kw_log_level max_level)
{
	log_max = max_level;
}

bool kw_log_enabled(enum kw_log_level level)
{
	return level <= log_max;
}

int kw_log_parse_level(const char *name, enum kw_log_level *level_r)
{
	for (int i = KW_LOG_ERROR; i <= KW_LOG_DEBUG; i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*level_r = (enum kw_log_level)i;
			return 0;
		}
	}
	return -1;
}

static void log_emit(enum kw_log_level level, const char *message_id, const char *fmt, va_list ap)
{
	char buf[4096];

	if (!kw_log_enabled(level))
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	/* One event, one line: a newline in a value must not forge a second log line. */
	for (char *p = buf; *p != '\0'; p++) {
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	}
	switch (log_target) {
	case KW_LOG_TARGET_JOURNAL:
		if (message_id != NULL)
			sd_journal_send("MESSAGE=%s", buf, "PRIORITY=%d", (int)level,
					"MESSAGE_ID=%s", message_id, "SYSLOG_IDENTIFIER=%s",
					log_ident, NULL);
		else
			sd_journal_send("MESSAGE=%s", buf, "PRIORITY=%d", (int)level,
					"SYSLOG_IDENTIFIER=%s", log_ident, NULL);
		break;
	case KW_LOG_TARGET_SYSLOG:
		syslog((int)level, "%s", buf);
		break;
	case KW_LOG_TARGET_STDERR:
		if (message_id != NULL)
			fprintf(stderr, "%s: %s: %s [%s]\n", log_ident, level_names[level], buf,
				message_id);
		else
			fprintf(stderr, "%s: %s: %s\n", log_ident, level_names[level], buf);
		break;
	}
}

void kw_logv(enum kw_log_level level, const char *fmt, va_list ap)
{
	log_emit(level, NULL, fmt, ap);
}

void kw_log(enum kw_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(level, NULL, fmt, ap);
	va_end(ap);
}

void kw_log_id(enum kw_log_level level, const char *message_id, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(level, message_id, fmt, ap);
	va_end(ap);
}
