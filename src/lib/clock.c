/* clock — see clock.h. */
#include "lib/clock.h"

#include <stdio.h>
#include <time.h>

static int64_t
read_ms(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
clock_wall_ms(void)
{
	return read_ms(CLOCK_REALTIME);
}

int64_t
clock_mono_ms(void)
{
	return read_ms(CLOCK_MONOTONIC);
}

void
clock_format(int64_t wall_ms, bool millis, char *buf, size_t size)
{
	time_t t = (time_t)(wall_ms / 1000);
	struct tm tm;
	if (gmtime_r(&t, &tm) == NULL) {
		snprintf(buf, size, "1970-01-01T00:00:00Z");
		return;
	}
	size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	if (millis)
		snprintf(buf + n, size - n, ".%03dZ", (int)(wall_ms % 1000));
	else
		snprintf(buf + n, size - n, "Z");
}
