/* audit — see audit.h. */
#include "auth/audit.h"
#include "lib/clock.h"

#include "lib/error.h"
#include "lib/log.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

struct audit_log {
	char *path;
	int fd;
	dev_t dev;             /* identity of the open file, for rotation */
	ino_t ino;
};

/* Longest token (ip, listener, mech, ...) in the text failure line. */
#define TEXT_TOKEN_MAX 128

static int
open_file(const char *path, struct stat *st, const char **error_r)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0)
		return error_fail(error_r, errno, "Cannot open the audit log %s: %s", path,
		    strerror(errno));
	if (fstat(fd, st) < 0) {
		int err = errno;
		close(fd);
		return error_fail(error_r, err, "Cannot stat the audit log %s: %s", path,
		    strerror(err));
	}
	return fd;
}

struct audit_log *
audit_open(const char *path, const char **error_r)
{
	struct stat st;
	int fd = open_file(path, &st, error_r);
	if (fd < 0)
		return NULL;
	struct audit_log *a = calloc(1, sizeof(*a));
	if (a == NULL || (a->path = strdup(path)) == NULL) {
		free(a);
		close(fd);
		error_fail(error_r, ENOMEM, "Out of memory opening the audit log");
		return NULL;
	}
	a->fd = fd;
	a->dev = st.st_dev;
	a->ino = st.st_ino;
	return a;
}

void
audit_close(struct audit_log **ap)
{
	struct audit_log *a = *ap;
	if (a == NULL)
		return;
	*ap = NULL;
	close(a->fd);
	free(a->path);
	free(a);
}

void
audit_reopen_if_rotated(struct audit_log *a)
{
	struct stat st;
	if (stat(a->path, &st) == 0 && st.st_dev == a->dev && st.st_ino == a->ino)
		return;
	const char *error;
	int fd = open_file(a->path, &st, &error);
	if (fd < 0) {
		log_warn("%s; still writing to the previous file.", error);
		return;
	}
	close(a->fd);
	a->fd = fd;
	a->dev = st.st_dev;
	a->ino = st.st_ino;
}

/* ---------------------------------------------------------------- formatting */

/* Length of the well-formed UTF-8 sequence at s (at most len bytes), or 0 when the
 * bytes there are not one (RFC 3629 §4: no overlongs, no surrogates, ≤ U+10FFFF). */
static size_t
utf8_sequence(const unsigned char *s, size_t len)
{
	unsigned char c = s[0];
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf;   /* allowed range of the second byte */

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (len < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/* Copies s into out (AUDIT_STRING_MAX + 1 bytes) as valid UTF-8, every byte that
 * does not start a well-formed sequence replaced by U+FFFD, cut at a character
 * boundary so that at most AUDIT_STRING_MAX bytes remain. */
static void
sanitise_utf8(const char *s, char *out)
{
	static const char replacement[] = "\xef\xbf\xbd";
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s), o = 0;

	for (size_t i = 0; i < len;) {
		size_t n = utf8_sequence(p + i, len - i);
		const char *src = n > 0 ? s + i : replacement;
		size_t srclen = n > 0 ? n : 3;
		if (o + srclen > AUDIT_STRING_MAX)
			break;
		memcpy(out + o, src, srclen);
		o += srclen;
		i += n > 0 ? n : 1;
	}
	out[o] = '\0';
}

static int
add_string(json_t *obj, const char *key, const char *value)
{
	char clean[AUDIT_STRING_MAX + 1];
	if (value == NULL)
		return 0;
	sanitise_utf8(value, clean);
	return json_object_set_new(obj, key, json_string(clean));
}

/* The event as one compact JSON line with its "\n"; NULL when out of memory. */
static char *
audit_format(const struct audit_event *ev, size_t *len_r)
{
	char ts[CLOCK_TEXT_MAX], until[CLOCK_TEXT_MAX];
	int r = 0;

	clock_format(clock_wall_ms(), true, ts, sizeof(ts));

	/* jansson keeps keys in insertion order (since 2.8): this is the line's order. */
	json_t *obj = json_object();
	if (obj == NULL)
		return NULL;
	r |= json_object_set_new(obj, "ts", json_string(ts));
	r |= add_string(obj, "event", ev->event);
	r |= add_string(obj, "result", ev->result);
	r |= add_string(obj, "reason", ev->reason);
	r |= add_string(obj, "user", ev->user);
	r |= add_string(obj, "ip", ev->ip);
	if (ev->port != 0)
		r |= json_object_set_new(obj, "port", json_integer(ev->port));
	r |= add_string(obj, "listener", ev->listener);
	r |= add_string(obj, "proto", ev->proto);
	r |= add_string(obj, "mech", ev->mech);
	r |= add_string(obj, "tls", ev->tls);
	r |= add_string(obj, "session", ev->session);
	r |= add_string(obj, "network", ev->network);
	if (ev->until != 0) {
		clock_format(ev->until * 1000, false, until, sizeof(until));
		r |= json_object_set_new(obj, "until", json_string(until));
	}
	r |= add_string(obj, "action", ev->action);
	r |= add_string(obj, "target", ev->target);
	r |= add_string(obj, "actor", ev->actor);
	if (r != 0) {
		json_decref(obj);
		return NULL;
	}
	/* Compact: no newline inside; control characters are escaped as \uXXXX, and so
	 * is everything outside ASCII, so that `cat` or `less` on the file can never
	 * meet a C1 control or a bidirectional override. */
	char *text = json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(obj);
	if (text == NULL)
		return NULL;
	size_t len = strlen(text);
	char *line = realloc(text, len + 2);
	if (line == NULL) {
		free(text);
		return NULL;
	}
	line[len] = '\n';
	line[len + 1] = '\0';
	*len_r = len + 1;
	return line;
}

int
audit_write(struct audit_log *a, const struct audit_event *ev, const char **error_r)
{
	assert(ev->event != NULL);
	size_t len = 0;
	char *line = audit_format(ev, &len);
	if (line == NULL)
		return error_fail(error_r, ENOMEM, "Out of memory formatting an audit event");

	/* One write(2) on an O_APPEND descriptor: the kernel appends it whole, so lines of
	 * the daemon and of the CLI never interleave. Only an interrupted call is retried;
	 * a short write (a full disk) is not completed, because a second write could
	 * land after another writer's line. */
	ssize_t n;
	do
		n = write(a->fd, line, len);
	while (n < 0 && errno == EINTR);
	int err = errno;
	free(line);
	if (n < 0)
		return error_fail(error_r, err, "Cannot write to the audit log %s: %s", a->path,
		    strerror(err));
	if ((size_t)n != len)
		return error_fail(error_r, ENOSPC, "Short write to the audit log %s (%zd of %zu "
		    "bytes)", a->path, n, len);
	return 0;
}

/* ---------------------------------------------------------------- text line */

/* Copies s into out (size bytes) with every byte that is not printable ASCII, and
 * each byte of reject, replaced by '?'; at most size - 1 bytes. */
static void
sanitise_text(const char *s, const char *reject, char *out, size_t size)
{
	size_t o = 0;
	for (; *s != '\0' && o + 1 < size; s++) {
		unsigned char c = (unsigned char)*s;
		out[o++] = c < 0x20 || c > 0x7e || strchr(reject, c) != NULL ? '?' : (char)c;
	}
	out[o] = '\0';
}

/* A value of the text line: "-" when missing, else with no space, '=', quote,
 * backslash or non-printable byte, so that it cannot pose as another field. */
static void
text_token(const char *s, char *out, size_t size)
{
	if (s == NULL || s[0] == '\0')
		snprintf(out, size, "-");
	else
		sanitise_text(s, " =\"\\", out, size);
}

void
audit_log_failure_line(const struct audit_event *ev)
{
	char ip[TEXT_TOKEN_MAX + 1], port[16], name[AUDIT_TEXT_USER_MAX + 1],
	    user[AUDIT_TEXT_USER_MAX + 3], proto[TEXT_TOKEN_MAX + 1], listener[TEXT_TOKEN_MAX + 1],
	    mech[TEXT_TOKEN_MAX + 1], reason[TEXT_TOKEN_MAX + 1], session[TEXT_TOKEN_MAX + 1];

	text_token(ev->ip, ip, sizeof(ip));
	if (ev->port != 0)
		snprintf(port, sizeof(port), "%u", ev->port);
	else
		snprintf(port, sizeof(port), "-");
	if (ev->user != NULL) {
		/* Quoted, so it may hold spaces; it cannot close the quotes early. */
		sanitise_text(ev->user, "\"\\", name, sizeof(name));
		snprintf(user, sizeof(user), "\"%s\"", name);
	} else {
		snprintf(user, sizeof(user), "-");
	}
	text_token(ev->proto, proto, sizeof(proto));
	text_token(ev->listener, listener, sizeof(listener));
	text_token(ev->mech, mech, sizeof(mech));
	text_token(ev->reason, reason, sizeof(reason));
	text_token(ev->session, session, sizeof(session));
	log_warn("auth failure: ip=%s port=%s user=%s proto=%s listener=%s mech=%s reason=%s "
	    "session=%s", ip, port, user, proto, listener, mech, reason, session);
}
