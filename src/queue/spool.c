/* spool — see spool.h for the life of a message and the file format. */
#include "lib/error.h"
#include "lib/fdio.h"
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

#define SPOOL_MAGIC "RAMPART-SPOOL 1"

/* The longest line the writer can produce (a recipient with three values of
 * ENVELOPE_MAX_STR bytes, each escaped to three times its size) must load. */
_Static_assert(SPOOL_MAX_LINE > 3 * 3 * ENVELOPE_MAX_STR + 64, "SPOOL_MAX_LINE too small");

struct spool {
	int incoming_fd;
	int queue_fd;
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
	s->incoming_fd = s->queue_fd = -1;
	int root = open_subdir(AT_FDCWD, dir, error_r);
	if (root >= 0 && (s->incoming_fd = open_subdir(root, "incoming", error_r)) >= 0)
		s->queue_fd = open_subdir(root, "queue", error_r);
	int err = errno;
	if (root >= 0)
		close(root);
	if (s->queue_fd < 0) {
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
put_escaped(FILE *f, const char *prefix, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	fputs(prefix, f);
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (needs_escape(*p))
			fprintf(f, "%%%c%c", hex[*p >> 4], hex[*p & 0xf]);
		else
			fputc(*p, f);
	}
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
	fprintf(f, "%s\n", SPOOL_MAGIC);
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

int
spool_commit(struct spool *s, const char *id, int fd, const char **error_r)
{
	struct stat fst, nst;

	if (!spool_id_valid(id))
		return error_fail(error_r, EINVAL, "invalid spool id");
	if (fstat(fd, &fst) < 0 || fstatat(s->incoming_fd, id, &nst, AT_SYMLINK_NOFOLLOW) < 0)
		return error_fail(error_r, errno, "cannot find incoming/%s: %s", id, strerror(errno));
	if (fst.st_dev != nst.st_dev || fst.st_ino != nst.st_ino)
		return error_fail(error_r, EINVAL, "the fd given is not the spool file incoming/%s", id);
	/* The data must be on disk before the name that makes it a message. */
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
		int err = errno;
		/* Not durable, so the client will get 4xx: take the message back out of
		 * queue/ so that it is not delivered as well (best effort). */
		renameat(s->queue_fd, id, s->incoming_fd, id);
		return error_fail(error_r, err, "cannot fsync spool directory queue/: %s", strerror(err));
	}
	return 0;
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

/* The header of spool file f into e. -1 with *why and *err_r (EBADMSG for a
 * corrupt file, ENOMEM, or a read error's errno) on failure. */
static int
parse_header(FILE *f, char *line, struct envelope *e, off_t *data_offset_r,
    const char **why, int *err_r)
{
	unsigned seen = 0;
	off_t off;

	if (read_line(f, line, &off) < 0)
		goto read_error;
	*why = "not a Rampart spool file (bad magic)";
	if (strcmp(line, SPOOL_MAGIC) != 0)
		goto bad;
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
	*data_offset_r = off + 1;
	return 0;
read_error:
	*err_r = errno;
	*why = errno == EBADMSG ? "line too long, unterminated or holding a NUL" : strerror(errno);
	return -1;
bad:
	*err_r = strcmp(*why, "out of memory") == 0 ? ENOMEM : EBADMSG;
	return -1;
}

int
spool_load(struct spool *s, const char *id, struct envelope **e_r,
    off_t *data_offset_r, int *fd_r, const char **error_r)
{
	struct envelope *e = NULL;
	struct stat st;
	const char *why = "out of memory";
	char *line = NULL;
	off_t data_offset = 0;
	int err = ENOMEM;

	*e_r = NULL;
	if (fd_r != NULL)
		*fd_r = -1;
	if (!spool_id_valid(id))
		return error_fail(error_r, EINVAL, "invalid spool id");
	int fd = openat(s->queue_fd, id, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	FILE *f = fd < 0 ? NULL : fdopen(fd, "r");
	if (f == NULL) {
		err = errno;
		if (fd >= 0)
			close(fd);
		return error_fail(error_r, err, "cannot open queue/%s: %s", id, strerror(err));
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		err = EBADMSG, why = "not a regular file";
		goto out;
	}
	if ((line = malloc(SPOOL_MAX_LINE + 1)) == NULL || (e = envelope_new()) == NULL ||
	    parse_header(f, line, e, &data_offset, &why, &err) < 0)
		goto out;
	if (strcmp(e->id, id) != 0) {
		err = EBADMSG, why = "id field does not match the file name";
		goto out;
	}
	/* A descriptor of its own (fclose closes fd), at the data. */
	if (fd_r != NULL && ((*fd_r = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0 ||
	    lseek(*fd_r, data_offset, SEEK_SET) < 0)) {
		err = errno, why = strerror(err);
		if (*fd_r >= 0)
			close(*fd_r);
		*fd_r = -1;
		goto out;
	}
	free(line);
	fclose(f);
	if (data_offset_r != NULL)
		*data_offset_r = data_offset;
	*e_r = e;
	return 0;
out:
	free(line);
	envelope_free(&e);
	fclose(f);
	return error_fail(error_r, err, "cannot load spool file queue/%s: %s", id, why);
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
is_any_entry(const struct dirent *d)
{
	return strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0;
}

static int
cmp_entries(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int
spool_list(struct spool *s, spool_list_fn *fn, void *ctx, const char **error_r)
{
	struct dirent **names;
	int ret = 0;

	/* Ids start with the creation time in fixed-width hex: byte order is age. */
	int n = scandirat(s->queue_fd, ".", &names, is_id_entry, cmp_entries);
	if (n < 0)
		return error_fail(error_r, errno, "cannot read spool directory queue/: %s", strerror(errno));
	for (int i = 0; i < n; i++) {
		if (ret == 0 && fn(names[i]->d_name, ctx) != 0)
			ret = 1;
		free(names[i]);
	}
	free(names);
	return ret;
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
