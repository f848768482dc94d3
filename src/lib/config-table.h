/*
 * config-table — the one table that declares every setting (private to config.c
 * and its tests). Each row: name, type, default (as it would be written in the
 * file), where the value lands in the snapshot, bounds, and a one-line
 * description. The parser, the -o overrides and the generated documentation
 * all read this table; nothing else names a setting.
 */
#ifndef RAMPART_CONFIG_TABLE_H
#define RAMPART_CONFIG_TABLE_H

#include <stddef.h>
#include <stdint.h>

enum setting_type {
	SETTING_STRING,
	SETTING_INT,
	SETTING_BOOL,
	SETTING_SIZE,      /* bytes; K/M/G suffixes, powers of 1024 */
	SETTING_DURATION,  /* seconds; s/m/h/d suffixes */
	SETTING_MILLIS,    /* milliseconds; ms/s/m/h/d suffixes, bare number = ms */
	SETTING_ROLE,      /* listener role: mx, submission, submissions */
};

struct setting {
	const char *name;
	enum setting_type type;
	const char *def;
	size_t offset;     /* into struct config or struct config_listener */
	int64_t min, max;  /* for numeric types */
	const char *description;
};

extern const struct setting config_settings[];
extern const size_t config_settings_count;
extern const struct setting listener_settings[];
extern const size_t listener_settings_count;

const struct setting *setting_find(const struct setting *table, size_t n, const char *name);
/* Parses text as the setting's type into *value (strings are not parsed). */
int setting_parse_number(const struct setting *s, const char *text, int64_t *value_r,
    const char **error_r);

#endif
