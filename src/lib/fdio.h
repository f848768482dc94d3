/*
 * fdio — blocking whole-buffer writes to files (spool and Maildir), for code that
 * runs on worker threads or at start-up; sockets go through lineio instead.
 */
#ifndef RAMPART_FDIO_H
#define RAMPART_FDIO_H

#include <stddef.h>
#include <sys/types.h>

/* Writes all len bytes, retrying on EINTR and short writes; -1 with errno set. */
int fd_write_all(int fd, const void *buf, size_t len);
/* pread(2) of exactly len bytes at off; -1 with errno (EBADMSG when the file
 * is shorter). */
int fd_pread_all(int fd, void *buf, size_t len, off_t off);
/* pwrite(2) of all len bytes at off; -1 with errno. */
int fd_pwrite_all(int fd, const void *buf, size_t len, off_t off);

#endif
