/* log — see log.h. */
#include "lib/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static struct {
	char ident[64];
	bool to_stderr;
	enum log_level level;
} log_state = { "rampart", true, LOG_LEVEL_INFO };

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void
log_init(const char *ident, bool to_stderr, enum log_level level)
{
	log_set_ident(ident);
	log_state.to_stderr = to_stderr;
	log_state.level = level;
	if (!to_stderr)
		openlog(log_state.ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
log_set_ident(const char *ident)
{
	snprintf(log_state.ident, sizeof(log_state.ident), "%s", ident);
}

void
log_set_level(enum log_level level)
{
	log_state.level = level;
}

int
log_level_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(name, level_names[i]) == 0)
			return (int)i;
	return -1;
}

bool
log_enabled(enum log_level level)
{
	return level <= log_state.level;
}

void
log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char msg[2048];

	if (!log_enabled(level))
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* Peer-supplied text may appear in messages: never let it forge a line. */
	for (char *p = msg; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	if (!log_state.to_stderr) {
		syslog(prio[level], "%s", msg);
		return;
	}
	struct timespec ts;
	struct tm tm;
	char when[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ %s[%ld]: %s: %s\n", when, ts.tv_nsec / 1000000,
	    log_state.ident, (long)getpid(), level_names[level], msg);
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_ERROR, fmt, ap);
	va_end(ap);
	exit(1);
}
