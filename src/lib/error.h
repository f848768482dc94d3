/*
 * error — the "return -1 with a sentence and an errno" helper of CONVENTIONS §8,
 * for modules that run on worker threads. The sentence lives in a thread-local
 * buffer until the next error_fail() on the same thread, so callers use or copy
 * it before their next call into such a module.
 */
#ifndef RAMPART_ERROR_H
#define RAMPART_ERROR_H

/* Formats the sentence into *error_r, sets errno = err (captured by the caller
 * before any clean-up could change it) and returns -1. */
int error_fail(const char **error_r, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
