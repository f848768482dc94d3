/* relay-secret — see relay-secret.h. */
#include "queue/relay-secret.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

int
relay_secret_load(const char *path, char **secret_r, const char **error_r)
{
	*secret_r = NULL;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		*error_r = errno == ELOOP ? "is a symbolic link" : "cannot be opened";
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		*error_r = "is not a regular file";
		close(fd);
		return -1;
	}
	if ((st.st_mode & (S_IRWXO | S_IWGRP)) != 0) {
		*error_r = "must not be accessible to others (chmod 600)";
		close(fd);
		return -1;
	}
	/* One octet more than allowed, to tell "too long" from "exactly the limit". */
	char *buf = sodium_init() < 0 ? NULL : sodium_malloc(RELAY_SECRET_MAX + 2);
	if (buf == NULL) {
		*error_r = "out of memory";
		close(fd);
		return -1;
	}
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, RELAY_SECRET_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = "cannot be read";
			goto fail;
		}
		if (n == 0 || (len += (size_t)n) > RELAY_SECRET_MAX)
			break;
	}
	close(fd);
	fd = -1;
	if (len > RELAY_SECRET_MAX) {
		*error_r = "is too long (at most 1024 octets)";
		goto fail;
	}
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	buf[len] = '\0';
	if (len == 0) {
		*error_r = "is empty";
		goto fail;
	}
	for (size_t i = 0; i < len; i++)
		if (buf[i] == '\0' || buf[i] == '\r' || buf[i] == '\n') {
			*error_r = "must hold the password on one line";
			goto fail;
		}
	*secret_r = buf;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	sodium_free(buf);   /* wipes */
	return -1;
}

void
relay_secret_free(char **secret)
{
	if (*secret != NULL)
		sodium_free(*secret);
	*secret = NULL;
}
