/*
 * fdio — blocking whole-buffer writes to files (spool and Maildir), for code that
 * runs on worker threads or at start-up; sockets go through lineio instead.
 */
#ifndef RAMPART_FDIO_H
#define RAMPART_FDIO_H

#include <stddef.h>

/* Writes all len bytes, retrying on EINTR and short writes; -1 with errno set. */
int fd_write_all(int fd, const void *buf, size_t len);

#endif
