/* spool — see spool.h for the life of a message and the file format. */
#include "lib/error.h"
#include "lib/fdio.h"
#include "queue/queue-msg.h"
#include "queue/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "lib/log.h"

#define SPOOL_MAGIC_V1 "RAMPART-SPOOL 1"
#define SPOOL_MAGIC_V2 "RAMPART-SPOOL 2"
#define DATA_END_KEY "data-end "
#define DATA_END_DIGITS 16
#define TRAILER_END "end\n"

/* The longest line the writer can produce (a recipient with three values of
 * ENVELOPE_MAX_STR bytes, each escaped to three times its size) must load. */
_Static_assert(SPOOL_MAX_LINE > 3 * 3 * ENVELOPE_MAX_STR + 64, "SPOOL_MAX_LINE too small");
/* data-end sits at a fixed place: right after the magic, on the second line. */
_Static_assert(SPOOL_DATA_END_AT == sizeof(SPOOL_MAGIC_V2 "\n" DATA_END_KEY) - 1,
    "SPOOL_DATA_END_AT does not match the format");
/* The longest trailer the writer can produce must load. */
_Static_assert(SPOOL_TRAILER_MAX >= 3 * QUEUE_ADDED_MAX + sizeof("added \nfolder Junk\n" TRAILER_END),
    "SPOOL_TRAILER_MAX too small");

struct spool {
	int incoming_fd;
	int queue_fd;
	int hold_fd;       /* hold/: messages the operator put aside (spool_hold) */
};


enum spool_error_class
spool_error_class(int errnum)
{
	switch (errnum) {
	case ENOSPC: case EDQUOT: case EIO:
		return SPOOL_ERROR_NO_SPACE;
	case EBADMSG: case EINVAL: case ENOENT: case ENAMETOOLONG: case EFBIG:
		return SPOOL_ERROR_PERMANENT;
	default:
		return SPOOL_ERROR_TEMPORARY;
	}
}

/* ---- ids ---- */

void
spool_id_generate(char id[SPOOL_ID_LEN + 1])
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	snprintf(id, SPOOL_ID_LEN + 1, "%016" PRIx64 "%08" PRIx32, us, randombytes_random());
}

bool
spool_id_valid(const char *id)
{
	return id != NULL && strspn(id, "0123456789abcdef") == SPOOL_ID_LEN &&
	    id[SPOOL_ID_LEN] == '\0';
}

/* ---- open / close ---- */

static int
open_subdir(int parent, const char *name, const char **error_r)
{
	if (mkdirat(parent, name, 0700) < 0 && errno != EEXIST)
		return error_fail(error_r, errno, "cannot create spool directory %s: %s", name, strerror(errno));
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return error_fail(error_r, errno, "cannot open spool directory %s: %s", name, strerror(errno));
	return fd;
}

int
spool_open(const char *dir, struct spool **s_r, const char **error_r)
{
	*s_r = NULL;
	if (sodium_init() < 0)
		return error_fail(error_r, EAGAIN, "libsodium failed to initialise");
	struct spool *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return error_fail(error_r, ENOMEM, "out of memory");
	s->incoming_fd = s->queue_fd = s->hold_fd = -1;
	int root = open_subdir(AT_FDCWD, dir, error_r);
	if (root >= 0 && (s->incoming_fd = open_subdir(root, "incoming", error_r)) >= 0 &&
	    (s->queue_fd = open_subdir(root, "queue", error_r)) >= 0)
		s->hold_fd = open_subdir(root, "hold", error_r);
	int err = errno;
	if (root >= 0)
		close(root);
	if (s->hold_fd < 0) {
		spool_close(&s);
		errno = err;
		return -1;
	}
	*s_r = s;
	return 0;
}

void
spool_close(struct spool **sp)
{
	struct spool *s = sp == NULL ? NULL : *sp;
	if (s == NULL)
		return;
	*sp = NULL;
	if (s->incoming_fd >= 0)
		close(s->incoming_fd);
	if (s->queue_fd >= 0)
		close(s->queue_fd);
	if (s->hold_fd >= 0)
		close(s->hold_fd);
	free(s);
}

/* ---- writing ---- */

static const char *const body_names[] = { "7BIT", "8BITMIME" };
static const char *const ret_names[] = { "NONE", "FULL", "HDRS" };
static const char *const notify_names[] = { "NEVER", "SUCCESS", "FAILURE", "DELAY" };
static const char status_chars[3] = { 'P', 'D', 'F' };

static bool
needs_escape(unsigned char c)
{
	return c < 0x21 || c == 0x7f || c == '%';
}

/* Values never hold a space, CR, LF or NUL once escaped; UTF-8 passes through. */
static void
put_escaped_n(FILE *f, const char *prefix, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	fputs(prefix, f);
	for (const unsigned char *p = (const unsigned char *)s; p < (const unsigned char *)s + len; p++) {
		if (needs_escape(*p))
			fprintf(f, "%%%c%c", hex[*p >> 4], hex[*p & 0xf]);
		else
			fputc(*p, f);
	}
}

static void
put_escaped(FILE *f, const char *prefix, const char *s)
{
	put_escaped_n(f, prefix, s, strlen(s));
}

/* "key value\n", "key\n" for "", nothing for NULL. */
static void
put_field(FILE *f, const char *key, const char *value)
{
	if (value == NULL)
		return;
	fputs(key, f);
	if (value[0] != '\0')
		put_escaped(f, " ", value);
	fputc('\n', f);
}

/* The header into a new buffer, filling each recipient's status_offset. */
static int
build_header(struct envelope *e, const char *id, char **buf_r, size_t *len_r)
{
	FILE *f = open_memstream(buf_r, len_r);
	if (f == NULL)
		return -1;
	/* data-end is zero until spool_commit_with() knows where the data ends. */
	fprintf(f, "%s\n%s%0*d\n", SPOOL_MAGIC_V2, DATA_END_KEY, DATA_END_DIGITS, 0);
	put_field(f, "id", id);
	fprintf(f, "received %" PRId64 "\n", e->received_at);
	put_field(f, "from", e->mail_from);
	fprintf(f, "body %s\nsmtputf8 %d\nret %s\n", body_names[e->body],
	    e->smtputf8 ? 1 : 0, ret_names[e->ret]);
	put_field(f, "envid", e->envid);
	fprintf(f, "size %" PRIu64 "\n", e->size_declared);
	put_field(f, "helo", e->helo);
	put_field(f, "client", e->client_addr);
	fprintf(f, "port %u\n", (unsigned)e->client_port);
	put_field(f, "listener", e->listener);
	put_field(f, "auth", e->auth_user);
	for (size_t i = 0; i < e->rcpt_count; i++) {
		struct envelope_rcpt *rc = &e->rcpts[i];
		long at = ftell(f);
		rc->status_offset = at < 0 ? -1 : (off_t)at + 5;
		fprintf(f, "rcpt %c", status_chars[rc->status]);
		const char *sep = " notify=";
		for (unsigned b = 0; b < 4; b++) {
			if ((rc->notify & (1u << b)) != 0) {
				fprintf(f, "%s%s", sep, notify_names[b]);
				sep = ",";
			}
		}
		put_escaped(f, " address=", rc->address);
		if (rc->mailbox != NULL)
			put_escaped(f, " mailbox=", rc->mailbox);
		if (rc->orcpt != NULL)
			put_escaped(f, " orcpt=", rc->orcpt);
		fputc('\n', f);
	}
	fputc('\n', f);
	bool bad = ferror(f) != 0;
	if (fclose(f) != 0 || bad) {
		free(*buf_r);
		*buf_r = NULL;
		return -1;
	}
	return 0;
}

int
spool_create(struct spool *s, struct envelope *e, int *fd_r, const char **error_r)
{
	char id[SPOOL_ID_LEN + 1], *hdr = NULL, *copy = NULL;
	size_t hdr_len = 0;
	int fd = -1, err;
	const char *what;

	*fd_r = -1;
	if (envelope_check(e, error_r) < 0)
		return error_fail(error_r, EINVAL, "cannot spool an invalid envelope: %s", *error_r);
	if (e->rcpt_count == 0)
		return error_fail(error_r, EINVAL, "cannot spool a message without recipients");
	for (int tries = 0; fd < 0; tries++) {
		spool_id_generate(id);
		fd = openat(s->incoming_fd, id, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0 && (errno != EEXIST || tries >= 10))
			return error_fail(error_r, errno, "cannot create spool file incoming/%s: %s",
			    id, strerror(errno));
	}
	if (build_header(e, id, &hdr, &hdr_len) < 0) {
		err = ENOMEM, what = "build the header of";
		goto out;
	}
	if (fd_write_all(fd, hdr, hdr_len) < 0) {
		err = errno, what = "write";
		goto out;
	}
	if ((copy = strdup(id)) == NULL) {
		err = ENOMEM, what = "record the id of";
		goto out;
	}
	free(hdr);
	free(e->id);
	e->id = copy;
	*fd_r = fd;
	return 0;
out:
	free(hdr);
	unlinkat(s->incoming_fd, id, 0);
	close(fd);
	for (size_t i = 0; i < e->rcpt_count; i++)
		e->rcpts[i].status_offset = -1;
	return error_fail(error_r, err, "cannot %s spool file incoming/%s: %s", what, id, strerror(err));
}

static int
unlink_id(int dfd, const char *dir, const char *id, const char **error_r)
{
	if (!spool_id_valid(id))
		return error_fail(error_r, EINVAL, "invalid spool id");
	if (unlinkat(dfd, id, 0) < 0 && errno != ENOENT)
		return error_fail(error_r, errno, "cannot remove %s/%s: %s", dir, id, strerror(errno));
	return 0;
}

int
spool_abort(struct spool *s, const char *id, const char **error_r)
{
	return unlink_id(s->incoming_fd, "incoming", id, error_r);
}

int
spool_remove(struct spool *s, const char *id, const char **error_r)
{
	return unlink_id(s->queue_fd, "queue", id, error_r);
}

int
spool_remove_held(struct spool *s, const char *id, const char **error_r)
{
	return unlink_id(s->hold_fd, "hold", id, error_r);
}

/* ---- reading ---- */

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
			if (c == 0 || !needs_escape(c))
				goto bad;
			i += 2;
		} else if (needs_escape(c)) {
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
struct header_info {
	unsigned version;
	off_t data_offset;
	uint64_t data_end;          /* as written (version 2; 0 = not committed) */
};

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

/* Reads the header of dir_fd/id into a new *e_r through a descriptor of its own
 * (so that no other descriptor's position moves); when expect is not NULL, the
 * file must be the one it describes. Errors as parse_header(). */
static int
read_header(int dir_fd, const char *id, const struct stat *expect, struct envelope **e_r,
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

/* pread of exactly len bytes at off; -1 with errno (EBADMSG when the file is
 * shorter). */
static int
pread_all(int fd, void *buf, size_t len, off_t off)
{
	for (size_t done = 0; done < len;) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, off + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EBADMSG;
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

static int
pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	for (size_t done = 0; done < len;) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, off + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
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

/* The directory of a place, and its name in sentences. */
static int
place_fd(const struct spool *s, enum spool_place place, const char **name_r)
{
	*name_r = place == SPOOL_HELD ? "hold" : "queue";
	return place == SPOOL_HELD ? s->hold_fd : s->queue_fd;
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
	int dfd = place_fd(s, place, &dname);
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
	if (read_header(dfd, id, &st, &m->envelope, &hi, &why, &err) < 0)
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
		if (pread_all(fd, trailer, tlen, m->data_end) < 0) {
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

/* ---- commit ---- */

/* The trailer for info into a new buffer. */
static int
build_trailer(const struct spool_commit_info *info, char **buf_r, size_t *len_r)
{
	FILE *f = open_memstream(buf_r, len_r);
	if (f == NULL)
		return -1;
	if (info != NULL && info->folder != NULL && info->folder[0] != '\0')
		put_field(f, "folder", info->folder);
	if (info != NULL && info->added != NULL && info->added_len > 0) {
		put_escaped_n(f, "added ", info->added, info->added_len);
		fputc('\n', f);
	}
	fputs(TRAILER_END, f);
	bool bad = ferror(f) != 0;
	if (fclose(f) != 0 || bad) {
		free(*buf_r);
		*buf_r = NULL;
		return -1;
	}
	return 0;
}

/* The file is whole: trailer after the data, then data-end in place. */
static int
commit_write(int fd, const struct stat *fst, off_t data_offset,
    const struct spool_commit_info *info, const char **what, int *err_r)
{
	char *trailer = NULL, digits[DATA_END_DIGITS + 1];
	size_t tlen = 0;

	uint64_t have = (uint64_t)(fst->st_size - data_offset);
	if (info != NULL && info->data_size != have) {
		*err_r = EBADMSG, *what = "size of the data differs from what the front reported";
		return -1;
	}
	off_t data_end = fst->st_size;
	if (build_trailer(info, &trailer, &tlen) < 0) {
		*err_r = ENOMEM, *what = "out of memory";
		return -1;
	}
	snprintf(digits, sizeof(digits), "%016" PRIx64, (uint64_t)data_end);
	if (pwrite_all(fd, trailer, tlen, data_end) < 0 ||
	    pwrite_all(fd, digits, DATA_END_DIGITS, SPOOL_DATA_END_AT) < 0) {
		*err_r = errno, *what = strerror(errno);
		free(trailer);
		return -1;
	}
	free(trailer);
	return 0;
}

int
spool_commit_with(struct spool *s, const char *id, int fd,
    const struct spool_commit_info *info, const char **error_r)
{
	struct stat fst, nst;
	struct envelope *e = NULL;
	struct header_info hi;
	const char *why;
	int err;

	if (!spool_id_valid(id))
		return error_fail(error_r, EINVAL, "invalid spool id");
	if (info != NULL && ((info->added != NULL &&
	    queue_added_check(info->added, info->added_len, &why) < 0) ||
	    (info->folder != NULL && !queue_folder_valid(info->folder))))
		return error_fail(error_r, EINVAL, "cannot commit %s: %s", id,
		    info->folder != NULL && !queue_folder_valid(info->folder) ? "unknown folder" : why);
	if (fstat(fd, &fst) < 0 || fstatat(s->incoming_fd, id, &nst, AT_SYMLINK_NOFOLLOW) < 0)
		return error_fail(error_r, errno, "cannot find incoming/%s: %s", id, strerror(errno));
	if (fst.st_dev != nst.st_dev || fst.st_ino != nst.st_ino)
		return error_fail(error_r, EINVAL, "the fd given is not the spool file incoming/%s", id);
	/* The header as it is on disk now: where the data starts, and that it was
	 * never committed (a file that is not ours is refused, not repaired). */
	if (read_header(s->incoming_fd, id, &fst, &e, &hi, &why, &err) < 0)
		return error_fail(error_r, err, "cannot commit incoming/%s: %s", id, why);
	envelope_free(&e);
	if (hi.version != 2 || hi.data_end != 0)
		return error_fail(error_r, EINVAL, "cannot commit incoming/%s: committed before", id);
	if (fstat(fd, &fst) < 0)
		return error_fail(error_r, errno, "cannot stat incoming/%s: %s", id, strerror(errno));
	if (fst.st_size < hi.data_offset)
		return error_fail(error_r, EBADMSG, "cannot commit incoming/%s: file truncated", id);
	if (commit_write(fd, &fst, hi.data_offset, info, &why, &err) < 0)
		return error_fail(error_r, err, "cannot commit incoming/%s: %s", id, why);
	/* The data, trailer and data-end must be on disk before the name that
	 * makes it a message: a file in queue/ always has its data-end. */
	if (fsync(fd) < 0)
		return error_fail(error_r, errno, "cannot fsync spool file %s: %s", id, strerror(errno));
	if (renameat2(s->incoming_fd, id, s->queue_fd, id, RENAME_NOREPLACE) < 0) {
		if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
			return error_fail(error_r, errno, "cannot move spool file %s into queue/: %s",
			    id, strerror(errno));
		/* A file system without RENAME_NOREPLACE: link() never replaces either. */
		if (linkat(s->incoming_fd, id, s->queue_fd, id, 0) < 0)
			return error_fail(error_r, errno, "cannot link spool file %s into queue/: %s",
			    id, strerror(errno));
		unlinkat(s->incoming_fd, id, 0);
	}
	if (fsync(s->queue_fd) < 0) {
		err = errno;
		/* Not durable, so the client will get 4xx: take the message back out of
		 * queue/ so that it is not delivered as well (best effort). */
		renameat(s->queue_fd, id, s->incoming_fd, id);
		return error_fail(error_r, err, "cannot fsync spool directory queue/: %s", strerror(err));
	}
	return 0;
}

int
spool_commit(struct spool *s, const char *id, int fd, const char **error_r)
{
	return spool_commit_with(s, id, fd, NULL, error_r);
}

int
spool_mark_rcpt(struct spool *s, struct envelope *e, size_t index,
    enum envelope_rcpt_status status, const char **error_r)
{
	char was[7];
	int err = EBADMSG;

	if (!spool_id_valid(e->id))
		return error_fail(error_r, EINVAL, "invalid spool id");
	if (index >= e->rcpt_count || e->rcpts[index].status_offset < 6 ||
	    (unsigned)status >= sizeof(status_chars))
		return error_fail(error_r, EINVAL, "invalid recipient %zu for queue/%s", index, e->id);
	off_t at = e->rcpts[index].status_offset;
	int fd = openat(s->queue_fd, e->id, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return error_fail(error_r, errno, "cannot open queue/%s: %s", e->id, strerror(errno));
	/* Never overwrite a byte that is not a status byte (defence against an
	 * offset that does not belong to this file). */
	ssize_t n = pread(fd, was, sizeof(was), at - 6);
	if (n != (ssize_t)sizeof(was) || memcmp(was, "\nrcpt ", 6) != 0 ||
	    memchr(status_chars, was[6], sizeof(status_chars)) == NULL) {
		err = n < 0 ? errno : EBADMSG;
		close(fd);
		return error_fail(error_r, err, "queue/%s has no status byte for recipient %zu", e->id, index);
	}
	if ((n = pwrite(fd, &status_chars[status], 1, at)) != 1 || close(fd) < 0) {
		err = n != 1 && n >= 0 ? EIO : errno;
		if (n != 1)
			close(fd);
		return error_fail(error_r, err, "cannot update queue/%s: %s", e->id, strerror(err));
	}
	e->rcpts[index].status = status;
	return 0;
}

/* ---- directory walks ---- */

static int
is_id_entry(const struct dirent *d)
{
	if (spool_id_valid(d->d_name))
		return 1;
	if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0)
		log_warn("spool: ignoring queue/%s: not a spool id", d->d_name);
	return 0;
}

static int
is_held_entry(const struct dirent *d)
{
	if (spool_id_valid(d->d_name))
		return 1;
	if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0)
		log_warn("spool: ignoring hold/%s: not a spool id", d->d_name);
	return 0;
}

static int
is_any_entry(const struct dirent *d)
{
	return strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0;
}

static int
cmp_entries(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* The ids in one directory, oldest first (see spool_list()). */
static int
list_dir(int dfd, const char *dname, int (*filter)(const struct dirent *),
    spool_list_fn *fn, void *ctx, const char **error_r)
{
	struct dirent **names;
	int ret = 0;

	/* Ids start with the creation time in fixed-width hex: byte order is age. */
	int n = scandirat(dfd, ".", &names, filter, cmp_entries);
	if (n < 0)
		return error_fail(error_r, errno, "cannot read spool directory %s/: %s", dname,
		    strerror(errno));
	for (int i = 0; i < n; i++) {
		if (ret == 0 && fn(names[i]->d_name, ctx) != 0)
			ret = 1;
		free(names[i]);
	}
	free(names);
	return ret;
}

int
spool_list(struct spool *s, spool_list_fn *fn, void *ctx, const char **error_r)
{
	return list_dir(s->queue_fd, "queue", is_id_entry, fn, ctx, error_r);
}

int
spool_list_held(struct spool *s, spool_list_fn *fn, void *ctx, const char **error_r)
{
	return list_dir(s->hold_fd, "hold", is_held_entry, fn, ctx, error_r);
}

/* ---- hold and release ---- */

int
spool_locate(struct spool *s, const char *id, enum spool_place *place_r,
    const char **error_r)
{
	struct stat st;
	if (!spool_id_valid(id))
		return error_fail(error_r, EINVAL, "invalid spool id");
	if (fstatat(s->queue_fd, id, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		*place_r = SPOOL_QUEUED;
		return 0;
	}
	if (errno == ENOENT && fstatat(s->hold_fd, id, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		*place_r = SPOOL_HELD;
		return 0;
	}
	if (errno == ENOENT)
		return error_fail(error_r, ENOENT, "no message %s in the spool", id);
	return error_fail(error_r, errno, "cannot look for %s: %s", id, strerror(errno));
}

/* Why moving id out of from failed with err (ENOENT: where is it then?). */
static int
move_failed(struct spool *s, const char *id, enum spool_place to, int err,
    const char **error_r)
{
	const char *tname;
	struct stat st;
	int tfd = place_fd(s, to, &tname);
	if (err == ENOENT && fstatat(tfd, id, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return error_fail(error_r, EALREADY, "message %s is %s", id,
		    to == SPOOL_HELD ? "already held" : "not held");
	if (err == ENOENT)
		return error_fail(error_r, ENOENT, "no message %s in the spool", id);
	if (err == EEXIST)
		return error_fail(error_r, EEXIST, "message %s is in both queue/ and hold/; "
		    "remove one copy by hand", id);
	return error_fail(error_r, err, "cannot move %s into %s/: %s", id, tname, strerror(err));
}

/* Renames from/<id> to to/<id> (never replacing), then fsyncs both directories,
 * the new name first, so that after a crash the message is in one place. */
static int
move_between(struct spool *s, const char *id, enum spool_place from, enum spool_place to,
    const char **error_r)
{
	const char *fname, *tname;
	int ffd = place_fd(s, from, &fname), tfd = place_fd(s, to, &tname);

	if (!spool_id_valid(id))
		return error_fail(error_r, EINVAL, "invalid spool id");
	if (renameat2(ffd, id, tfd, id, RENAME_NOREPLACE) < 0) {
		if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
			return move_failed(s, id, to, errno, error_r);
		/* A file system without RENAME_NOREPLACE: link() never replaces either. */
		if (linkat(ffd, id, tfd, id, 0) < 0)
			return move_failed(s, id, to, errno, error_r);
		if (unlinkat(ffd, id, 0) < 0) {
			int err = errno;
			unlinkat(tfd, id, 0);
			return move_failed(s, id, to, err, error_r);
		}
	}
	if (fsync(tfd) < 0 || fsync(ffd) < 0) {
		int err = errno;
		/* Not durable: put it back so that the caller's failure is the truth
		 * (best effort, as in spool_commit_with()). */
		renameat(tfd, id, ffd, id);
		return error_fail(error_r, err, "cannot fsync spool directories %s/ and %s/: %s",
		    fname, tname, strerror(err));
	}
	return 0;
}

int
spool_hold(struct spool *s, const char *id, const char **error_r)
{
	return move_between(s, id, SPOOL_QUEUED, SPOOL_HELD, error_r);
}

int
spool_release(struct spool *s, const char *id, const char **error_r)
{
	return move_between(s, id, SPOOL_HELD, SPOOL_QUEUED, error_r);
}

int
spool_clean_incoming(struct spool *s, const char **error_r)
{
	struct dirent **names;
	int removed = 0;

	int n = scandirat(s->incoming_fd, ".", &names, is_any_entry, NULL);
	if (n < 0)
		return error_fail(error_r, errno, "cannot read spool directory incoming/: %s", strerror(errno));
	for (int i = 0; i < n; i++) {
		if (unlinkat(s->incoming_fd, names[i]->d_name, 0) < 0)
			log_warn("spool: cannot remove incoming/%s: %s", names[i]->d_name, strerror(errno));
		else
			removed++;
		free(names[i]);
	}
	free(names);
	return removed;
}
