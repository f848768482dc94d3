/*
 * clock — the two clocks Rampart reads, in milliseconds, and the one time
 * format it prints (RFC 3339 §5.6, UTC).
 *
 * Wall time is for what is persisted or shown (guard blocks, familiar
 * addresses, audit lines); monotonic time is for rates and intervals within a
 * process (the hashing lanes' token bucket).
 */
#ifndef RAMPART_CLOCK_H
#define RAMPART_CLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Large enough for "2026-11-21T10:00:00.123Z" and its NUL. */
#define CLOCK_TEXT_MAX 40

int64_t clock_wall_ms(void);
int64_t clock_mono_ms(void);
/* "2026-11-21T10:00:00Z", or "2026-11-21T10:00:00.123Z" with millis. */
void clock_format(int64_t wall_ms, bool millis, char *buf, size_t size);

#endif
