/* error — see error.h. */
#include "lib/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

static _Thread_local char error_buf[512];

int
error_fail(const char **error_r, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(error_buf, sizeof(error_buf), fmt, ap);
	va_end(ap);
	*error_r = error_buf;
	errno = err;
	return -1;
}
