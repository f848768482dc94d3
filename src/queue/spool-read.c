/*
 * spool-read — reading spool files: the header (envelope, recipients and their
 * status offsets, data-end), the trailer after the data, and whole messages for
 * delivery. Every line is checked against the format (spool.h) and a file that
 * does not parse is refused as corrupt (EBADMSG), never guessed at.
 */
#include "lib/error.h"
#include "lib/fdio.h"
#include "queue/queue-msg.h"
#include "queue/spool-private.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The next line of f into buf (SPOOL_MAX_LINE + 1 bytes; LF replaced by NUL)
 * and its file offset. -1 and errno on failure: EBADMSG for a line too long,
 * unterminated (the file ends mid-line) or holding a NUL. */
static int
read_line(FILE *f, char *buf, off_t *off_r)
{
	off_t start = ftello(f);
	if (fgets(buf, SPOOL_MAX_LINE + 1, f) == NULL) {
		if (!ferror(f))
			errno = EBADMSG;
		return -1;
	}
	size_t len = (size_t)(ftello(f) - start);
	if (len == 0 || buf[len - 1] != '\n' || strlen(buf) != len) {
		errno = EBADMSG;
		return -1;
	}
	buf[len - 1] = '\0';
	*off_r = start;
	return 0;
}

static int
hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decodes an escaped value into *out (freeing the old one). Strict: bytes
 * put_escaped() escapes may not appear raw, others may not be escaped, never a
 * NUL. NULL on success, else why. */
static const char *
unescape(const char *s, char **out)
{
	size_t len = strlen(s);
	char *v = malloc(len + 1), *o = v;
	if (v == NULL)
		return "out of memory";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%') {
			int hi = len - i < 3 ? -1 : hexval(s[i + 1]), lo = hi < 0 ? -1 : hexval(s[i + 2]);
			if (lo < 0)
				goto bad;
			c = (unsigned char)(hi << 4 | lo);
			if (c == 0 || !spool_needs_escape(c))
				goto bad;
			i += 2;
		} else if (spool_needs_escape(c)) {
			goto bad;
		}
		*o++ = (char)c;
	}
	*o = '\0';
	free(*out);
	*out = v;
	return NULL;
bad:
	free(v);
	return "badly escaped value";
}

/* Strict decimal: digits only, no leading zero, at most max. */
static bool
parse_u64(const char *s, uint64_t max, uint64_t *v_r)
{
	uint64_t v = 0;
	if (s[0] == '\0' || (s[0] == '0' && s[1] != '\0'))
		return false;
	for (; *s != '\0'; s++) {
		uint64_t d = (uint64_t)(*s - '0');
		if (*s < '0' || *s > '9' || d > max || v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*v_r = v;
	return true;
}

static int
name_index(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

#define NAMES(a) (a), (sizeof(a) / sizeof((a)[0]))

static const char *const field_keys[] = {
	"id", "received", "from", "body", "smtputf8", "ret", "envid", "size",
	"helo", "client", "port", "listener", "auth",
};
enum { F_ID, F_RECEIVED, F_FROM, F_BODY, F_SMTPUTF8, F_RET, F_ENVID, F_SIZE,
	F_HELO, F_CLIENT, F_PORT, F_LISTENER, F_AUTH, F_COUNT };
#define F_REQUIRED (((1u << F_COUNT) - 1) & ~(1u << F_ENVID) & ~(1u << F_AUTH))

/* One "key value" line into e. NULL on success, else why it is wrong. */
static const char *
parse_field(struct envelope *e, int key, const char *value)
{
	uint64_t v = 0;
	int i = 0;
	bool ok;

	switch (key) {
	case F_ID: return unescape(value, &e->id);
	case F_FROM: return unescape(value, &e->mail_from);
	case F_ENVID: return unescape(value, &e->envid);
	case F_HELO: return unescape(value, &e->helo);
	case F_CLIENT: return unescape(value, &e->client_addr);
	case F_LISTENER: return unescape(value, &e->listener);
	case F_AUTH: return unescape(value, &e->auth_user);
	case F_RECEIVED:
		ok = parse_u64(value, INT64_MAX, &v);
		e->received_at = (int64_t)v;
		break;
	case F_SMTPUTF8:
		ok = parse_u64(value, 1, &v);
		e->smtputf8 = v == 1;
		break;
	case F_SIZE:
		ok = parse_u64(value, UINT64_MAX, &e->size_declared);
		break;
	case F_PORT:
		ok = parse_u64(value, UINT16_MAX, &v);
		e->client_port = (uint16_t)v;
		break;
	case F_BODY:
		ok = (i = name_index(NAMES(body_names), value)) >= 0;
		e->body = (enum envelope_body)i;
		break;
	default: /* F_RET */
		ok = (i = name_index(NAMES(ret_names), value)) >= 0;
		e->ret = (enum envelope_ret)i;
		break;
	}
	return ok ? NULL : "bad number or name";
}

/* "NAME[,NAME]..." with no empty or repeated name. */
static const char *
parse_notify(char *v, unsigned *notify_r)
{
	for (;;) {
		char *comma = strchr(v, ',');
		if (comma != NULL)
			*comma = '\0';
		int b = name_index(NAMES(notify_names), v);
		if (b < 0 || (*notify_r & (1u << b)) != 0)
			return "bad notify value";
		*notify_r |= 1u << b;
		if (comma == NULL)
			return NULL;
		v = comma + 1;
	}
}

/* "rcpt S token..." (line starts with "rcpt "). NULL on success. */
static const char *
parse_rcpt(struct envelope *e, char *line, off_t off)
{
	static const char *const names[] = { "address", "mailbox", "orcpt", "notify" };
	const char *st = line[5] == '\0' ? NULL : memchr(status_chars, line[5], sizeof(status_chars));
	if (st == NULL || (line[6] != '\0' && line[6] != ' '))
		return "bad recipient status";
	if (envelope_add_rcpt(e, "", NULL, NULL, 0) < 0)
		return "too many recipients";
	struct envelope_rcpt *rc = &e->rcpts[e->rcpt_count - 1];
	rc->status = (enum envelope_rcpt_status)(st - status_chars);
	rc->status_offset = off + 5;
	bool seen[4] = { false, false, false, false };
	/* Tokens are separated by exactly one space; none is empty. */
	for (char *p = line + 6; *p == ' ';) {
		char *tok = p + 1, *end = strchr(tok, ' '), *eq;
		if (end != NULL)
			*end = '\0';
		if ((eq = strchr(tok, '=')) == NULL)
			return "bad recipient token";
		*eq = '\0';
		int k = name_index(NAMES(names), tok);
		if (k < 0 || seen[k])
			return "unknown or repeated recipient token";
		seen[k] = true;
		const char *why = k == 3 ? parse_notify(eq + 1, &rc->notify) :
		    unescape(eq + 1, k == 0 ? &rc->address : k == 1 ? &rc->mailbox : &rc->orcpt);
		if (why != NULL)
			return why;
		if (end == NULL)
			break;
		*end = ' ';
		p = end;
	}
	return seen[0] ? NULL : "recipient without address";
}

/* What parse_header() found besides the envelope. */

/* "data-end " and exactly 16 lower-case hex digits. */
static bool
parse_data_end(const char *line, uint64_t *v_r)
{
	uint64_t v = 0;
	if (strncmp(line, DATA_END_KEY, sizeof(DATA_END_KEY) - 1) != 0)
		return false;
	line += sizeof(DATA_END_KEY) - 1;
	if (strlen(line) != DATA_END_DIGITS || strspn(line, "0123456789abcdef") != DATA_END_DIGITS)
		return false;
	for (size_t i = 0; i < DATA_END_DIGITS; i++)
		v = v << 4 | (uint64_t)(line[i] <= '9' ? line[i] - '0' : line[i] - 'a' + 10);
	*v_r = v;
	return true;
}

/* The header of spool file f into e. -1 with *why and *err_r (EBADMSG for a
 * corrupt file, ENOMEM, or a read error's errno) on failure. */
static int
parse_header(FILE *f, char *line, struct envelope *e, struct header_info *hi,
    const char **why, int *err_r)
{
	unsigned seen = 0;
	off_t off;

	hi->data_end = 0;
	if (read_line(f, line, &off) < 0)
		goto read_error;
	*why = "not a Rampart spool file (bad magic)";
	if (strcmp(line, SPOOL_MAGIC_V1) == 0)
		hi->version = 1;
	else if (strcmp(line, SPOOL_MAGIC_V2) == 0)
		hi->version = 2;
	else
		goto bad;
	if (hi->version == 2) {
		if (read_line(f, line, &off) < 0)
			goto read_error;
		*why = "bad or misplaced data-end";
		if (off + (off_t)sizeof(DATA_END_KEY) - 1 != SPOOL_DATA_END_AT ||
		    !parse_data_end(line, &hi->data_end))
			goto bad;
	}
	for (;;) {
		if (read_line(f, line, &off) < 0)
			goto read_error;
		if (line[0] == '\0')
			break;
		if (strncmp(line, "rcpt ", 5) == 0) {
			if ((*why = parse_rcpt(e, line, off)) != NULL)
				goto bad;
			continue;
		}
		char *sp = strchr(line, ' ');
		if (sp != NULL)
			*sp = '\0';
		int key = name_index(NAMES(field_keys), line);
		*why = "unknown, repeated or misplaced field";
		if (key < 0 || (seen & (1u << key)) != 0 || e->rcpt_count > 0)
			goto bad;
		seen |= 1u << key;
		*why = "empty value after a space";
		if ((sp != NULL && sp[1] == '\0') ||
		    (*why = parse_field(e, key, sp == NULL ? "" : sp + 1)) != NULL)
			goto bad;
	}
	*why = "required field missing";
	if ((seen & F_REQUIRED) != F_REQUIRED)
		goto bad;
	*why = "no recipients";
	if (e->rcpt_count == 0 || envelope_check(e, why) < 0)
		goto bad;
	hi->data_offset = off + 1;
	return 0;
read_error:
	*err_r = errno;
	*why = errno == EBADMSG ? "line too long, unterminated or holding a NUL" : strerror(errno);
	return -1;
bad:
	*err_r = strcmp(*why, "out of memory") == 0 ? ENOMEM : EBADMSG;
	return -1;
}

/* See spool-private.h. */
int
spool_read_header(int dir_fd, const char *id, const struct stat *expect, struct envelope **e_r,
    struct header_info *hi, const char **why, int *err_r)
{
	struct stat st;
	char *line = NULL;
	struct envelope *e = NULL;
	int rc = -1;

	*e_r = NULL;
	int fd = openat(dir_fd, id, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	FILE *f = fd < 0 ? NULL : fdopen(fd, "r");
	if (f == NULL) {
		*err_r = errno;
		*why = strerror(errno);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (expect != NULL && (st.st_dev != expect->st_dev || st.st_ino != expect->st_ino))) {
		*err_r = EBADMSG, *why = "not a regular file, or not the one expected";
		goto out;
	}
	*err_r = ENOMEM, *why = "out of memory";
	if ((line = malloc(SPOOL_MAX_LINE + 1)) == NULL || (e = envelope_new()) == NULL ||
	    parse_header(f, line, e, hi, why, err_r) < 0)
		goto out;
	if (strcmp(e->id, id) != 0) {
		*err_r = EBADMSG, *why = "id field does not match the file name";
		goto out;
	}
	*e_r = e;
	e = NULL;
	rc = 0;
out:
	free(line);
	envelope_free(&e);
	fclose(f);
	return rc;
}



/* The trailer (len bytes in buf, one byte more allocated) into m. NULL on
 * success, else why it is corrupt. */
static const char *
parse_trailer(char *buf, size_t len, struct spool_message *m)
{
	static const char *const keys[] = { "folder", "added" };
	bool seen[2] = { false, false };
	const char *why;

	buf[len] = '\0';
	for (char *p = buf;;) {
		char *nl = memchr(p, '\n', len - (size_t)(p - buf));
		if (nl == NULL)
			return "trailer line unterminated";
		*nl = '\0';
		if (strlen(p) != (size_t)(nl - p))
			return "NUL in the trailer";
		if (strcmp(p, "end") == 0) {
			if (nl + 1 != buf + len)
				return "bytes after the end of the trailer";
			break;
		}
		char *sp = strchr(p, ' ');
		if (sp == NULL || sp[1] == '\0')
			return "trailer line without a value";
		*sp = '\0';
		int k = name_index(NAMES(keys), p);
		if (k < 0 || seen[k])
			return "unknown or repeated trailer line";
		seen[k] = true;
		if ((why = unescape(sp + 1, k == 0 ? &m->folder : &m->added)) != NULL)
			return why;
		p = nl + 1;
	}
	m->added_len = strlen(m->added);
	const char *error;
	if (m->added_len > 0 && queue_added_check(m->added, m->added_len, &error) < 0)
		return error;
	if (seen[0] && (m->folder[0] == '\0' || !queue_folder_valid(m->folder)))
		return "unknown folder";
	return NULL;
}

void
spool_message_free(struct spool_message **mp)
{
	struct spool_message *m = mp == NULL ? NULL : *mp;
	if (m == NULL)
		return;
	*mp = NULL;
	envelope_free(&m->envelope);
	free(m->added);
	free(m->folder);
	free(m);
}


int
spool_load_message(struct spool *s, const char *id, struct spool_message **m_r,
    int *fd_r, const char **error_r)
{
	return spool_load_message_in(s, SPOOL_QUEUED, id, m_r, fd_r, error_r);
}

int
spool_load_message_in(struct spool *s, enum spool_place place, const char *id,
    struct spool_message **m_r, int *fd_r, const char **error_r)
{
	const char *dname;
	int dfd = spool_place_fd(s, place, &dname);
	struct spool_message *m = NULL;
	struct header_info hi;
	struct stat st;
	const char *why = "out of memory";
	char *trailer = NULL;
	int err = ENOMEM, fd = -1;

	*m_r = NULL;
	if (fd_r != NULL)
		*fd_r = -1;
	if (!spool_id_valid(id))
		return error_fail(error_r, EINVAL, "invalid spool id");
	/* The descriptor handed out, and the one whose size bounds the data. */
	if ((fd = openat(dfd, id, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)) < 0 ||
	    fstat(fd, &st) < 0) {
		err = errno;
		if (fd >= 0)
			close(fd);
		return error_fail(error_r, err, "cannot open %s/%s: %s", dname, id, strerror(err));
	}
	if ((m = calloc(1, sizeof(*m))) == NULL || (m->added = strdup("")) == NULL ||
	    (m->folder = strdup("")) == NULL)
		goto out;
	if (spool_read_header(dfd, id, &st, &m->envelope, &hi, &why, &err) < 0)
		goto out;
	m->version = hi.version;
	m->data_offset = hi.data_offset;
	m->data_end = st.st_size;
	if (hi.version == 2) {
		/* Committed files only: data-end was written before the rename. */
		err = EBADMSG;
		why = "data-end is zero (never committed), before the data or past the end of the file";
		if (hi.data_end < (uint64_t)hi.data_offset || hi.data_end > (uint64_t)st.st_size)
			goto out;
		m->data_end = (off_t)hi.data_end;
		size_t tlen = (size_t)(st.st_size - m->data_end);
		why = "trailer missing or too long";
		if (tlen < sizeof(TRAILER_END) - 1 || tlen > SPOOL_TRAILER_MAX)
			goto out;
		if ((trailer = malloc(tlen + 1)) == NULL) {
			err = ENOMEM, why = "out of memory";
			goto out;
		}
		if (fd_pread_all(fd, trailer, tlen, m->data_end) < 0) {
			err = errno, why = err == EBADMSG ? "the file shrank" : strerror(err);
			goto out;
		}
		if ((why = parse_trailer(trailer, tlen, m)) != NULL) {
			err = strcmp(why, "out of memory") == 0 ? ENOMEM : EBADMSG;
			goto out;
		}
	}
	if (fd_r != NULL && lseek(fd, m->data_offset, SEEK_SET) < 0) {
		err = errno, why = strerror(err);
		goto out;
	}
	free(trailer);
	if (fd_r != NULL)
		*fd_r = fd;
	else
		close(fd);
	*m_r = m;
	return 0;
out:
	free(trailer);
	spool_message_free(&m);
	close(fd);
	return error_fail(error_r, err, "cannot load spool file %s/%s: %s", dname, id, why);
}

int
spool_load(struct spool *s, const char *id, struct envelope **e_r,
    off_t *data_offset_r, int *fd_r, const char **error_r)
{
	struct spool_message *m;

	*e_r = NULL;
	if (spool_load_message(s, id, &m, fd_r, error_r) < 0)
		return -1;
	*e_r = m->envelope;
	m->envelope = NULL;
	if (data_offset_r != NULL)
		*data_offset_r = m->data_offset;
	spool_message_free(&m);
	return 0;
}
