/*
 * spool — the spool's directories and files: ids, creating a message in
 * incoming/, committing it to queue/ (trailer, data-end, fsyncs, rename),
 * recipient status updates, listing, hold and release. Reading is in
 * spool-read.c; see spool.h for the life of a message and the file format.
 */
#include "lib/error.h"
#include "lib/fdio.h"
#include "queue/queue-msg.h"
#include "queue/spool-private.h"

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



/* Values never hold a space, CR, LF or NUL once escaped; UTF-8 passes through. */
static void
put_escaped_n(FILE *f, const char *prefix, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	fputs(prefix, f);
	for (const unsigned char *p = (const unsigned char *)s; p < (const unsigned char *)s + len; p++) {
		if (spool_needs_escape(*p))
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
	if (fd_pwrite_all(fd, trailer, tlen, data_end) < 0 ||
	    fd_pwrite_all(fd, digits, DATA_END_DIGITS, SPOOL_DATA_END_AT) < 0) {
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
	if (spool_read_header(s->incoming_fd, id, &fst, &e, &hi, &why, &err) < 0)
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
	int tfd = spool_place_fd(s, to, &tname);
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
	int ffd = spool_place_fd(s, from, &fname), tfd = spool_place_fd(s, to, &tname);

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
