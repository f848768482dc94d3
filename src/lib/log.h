/*
 * log — the process log (not the audit log).
 *
 * One line per event: "<UTC time> <ident>[<pid>]: <level>: <message>". With
 * log_init(..., to_stderr=true) lines go to stderr (rampartd -d, tests, make run),
 * otherwise to syslog(3) under facility mail. Never pass a password, token or
 * key to these functions: callers log only names, addresses and reasons.
 */
#ifndef RAMPART_LOG_H
#define RAMPART_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* Sets the identity shown in each line ("rampartd/front") and the destination. */
void log_init(const char *ident, bool to_stderr, enum log_level level);
/* Changes only the identity (after fork, each child names its role). */
void log_set_ident(const char *ident);
void log_set_level(enum log_level level);
/* Parses "error", "warn", "info", "debug"; -1 when unknown. */
int log_level_parse(const char *name);
bool log_enabled(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_enabled(LOG_LEVEL_DEBUG)) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__); } while (0)

/* Start-up and configuration failures only — never because of peer input. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
