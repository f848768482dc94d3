/* keyring-state — the state files of keyring.h: when a key signs. */
#include "keys/keyring.h"
#include "lib/error.h"
#include "lib/fdio.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TIME_DIGITS_MAX 12      /* like DKIM's t= (RFC 6376 §3.5) */

/* Whether line [p, end) starts with word followed by a space or tab. */
static bool
keyword_is(const char *p, const char *end, const char *word, const char **rest_r)
{
	size_t len = strlen(word);
	if ((size_t)(end - p) <= len || memcmp(p, word, len) != 0 ||
	    (p[len] != ' ' && p[len] != '\t'))
		return false;
	*rest_r = p + len;
	return true;
}

int
keyring_state_parse(const char *text, size_t len, time_t *not_before_r,
    time_t *retire_at_r, const char **error_r)
{
	const char *p = text, *end = text + len;
	unsigned line = 0;
	*not_before_r = 0;
	*retire_at_r = 0;
	if (len > KEYRING_STATE_MAX)
		return error_fail(error_r, EINVAL, "longer than %d octets", KEYRING_STATE_MAX);
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *next = eol != NULL ? eol + 1 : end;
		if (eol == NULL)
			eol = end;
		if (eol > p && eol[-1] == '\r')
			eol--;
		line++;
		const char *rest;
		time_t *slot = NULL;
		while (p < eol && (*p == ' ' || *p == '\t'))
			p++;
		if (p == eol || *p == '#') {
			p = next;
			continue;
		}
		if (keyword_is(p, eol, "not-before", &rest))
			slot = not_before_r;
		else if (keyword_is(p, eol, "retire-at", &rest))
			slot = retire_at_r;
		else
			return error_fail(error_r, EINVAL, "line %u: not \"not-before TIME\" or "
			    "\"retire-at TIME\"", line);
		if (*slot != 0)
			return error_fail(error_r, EINVAL, "line %u: %s given twice", line,
			    slot == not_before_r ? "not-before" : "retire-at");
		while (rest < eol && (*rest == ' ' || *rest == '\t'))
			rest++;
		const char *digits = rest;
		int64_t v = 0;
		while (rest < eol && *rest >= '0' && *rest <= '9') {
			if (rest - digits < TIME_DIGITS_MAX)
				v = v * 10 + (*rest - '0');
			rest++;
		}
		size_t ndigits = (size_t)(rest - digits);
		while (rest < eol && (*rest == ' ' || *rest == '\t'))
			rest++;
		if (ndigits == 0 || ndigits > TIME_DIGITS_MAX || rest != eol || v == 0)
			return error_fail(error_r, EINVAL, "line %u: the time is not a number of "
			    "seconds since 1970 (1 to %d digits, not 0)", line, TIME_DIGITS_MAX);
		*slot = (time_t)v;
		p = next;
	}
	return 0;
}

int
keyring_state_read(const char *path, time_t *not_before_r, time_t *retire_at_r,
    const char **error_r)
{
	char buf[KEYRING_STATE_MAX + 1];
	size_t got = 0;
	*not_before_r = 0;
	*retire_at_r = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return error_fail(error_r, errno, "cannot open %s: %s", path, strerror(errno));
	}
	for (;;) {
		ssize_t r = read(fd, buf + got, sizeof(buf) - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			return error_fail(error_r, e, "cannot read %s: %s", path, strerror(e));
		}
		got += (size_t)r;
		if (r == 0 || got == sizeof(buf))
			break;
	}
	close(fd);
	if (memchr(buf, '\0', got) != NULL)
		return error_fail(error_r, EINVAL, "%s holds a NUL octet", path);
	/* A file longer than the limit is refused by the parser (got is limit + 1). */
	return keyring_state_parse(buf, got, not_before_r, retire_at_r, error_r);
}

int
keyring_state_write(const char *path, time_t not_before, time_t retire_at,
    const char *comment, const char **error_r)
{
	char text[512], tmp[4096];
	int len = 0;
	if (comment != NULL)
		len += snprintf(text + len, sizeof(text) - (size_t)len, "# %s\n", comment);
	if (not_before != 0 && len < (int)sizeof(text))
		len += snprintf(text + len, sizeof(text) - (size_t)len, "not-before %lld\n",
		    (long long)not_before);
	if (retire_at != 0 && len < (int)sizeof(text))
		len += snprintf(text + len, sizeof(text) - (size_t)len, "retire-at %lld\n",
		    (long long)retire_at);
	if (len >= (int)sizeof(text) || strchr(comment != NULL ? comment : "", '\n') != NULL)
		return error_fail(error_r, EINVAL, "the state text is too long or malformed");
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return error_fail(error_r, ENAMETOOLONG, "the path %s is too long", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return error_fail(error_r, errno, "cannot create %s: %s", tmp, strerror(errno));
	if (fd_write_all(fd, text, (size_t)len) < 0 || fsync(fd) < 0) {
		int e = errno;
		close(fd);
		unlink(tmp);
		return error_fail(error_r, e, "cannot write %s: %s", tmp, strerror(e));
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return error_fail(error_r, e, "cannot write %s: %s", path, strerror(e));
	}
	/* The rename itself must survive a crash: a rotation's old key must not
	 * come back without its retire-at. */
	char *dir = strdup(tmp);
	int dfd = dir != NULL ? open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	free(dir);
	if (dfd < 0 || fsync(dfd) < 0) {
		int e = errno;
		if (dfd >= 0)
			close(dfd);
		return error_fail(error_r, e, "cannot sync the directory of %s: %s", path,
		    strerror(e));
	}
	close(dfd);
	return 0;
}
