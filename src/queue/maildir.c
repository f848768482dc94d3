/* maildir — see maildir.h. */
#include "lib/error.h"
#include "lib/fdio.h"
#include "queue/maildir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


bool
maildir_error_is_temporary(int errnum)
{
	/* Like Postfix's local(8): only what no operator action can fix bounces;
	 * a full disk, a quota, permissions, I/O errors all defer. */
	return errnum != EINVAL && errnum != ENAMETOOLONG && errnum != EFBIG;
}

/* ---- names ---- */

/* A local part or domain that is safe as one path component. */
static bool
component_ok(const char *s, size_t len)
{
	if (len == 0 || s[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '/' || c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

int
maildir_path(const char *mail_dir, const char *mailbox_address, char *buf, size_t size,
    const char **error_r)
{
	const char *at = strrchr(mailbox_address, '@');

	if (mail_dir[0] == '\0')
		return error_fail(error_r, EINVAL, "no mail directory configured");
	if (at == NULL || !component_ok(mailbox_address, (size_t)(at - mailbox_address)) ||
	    !component_ok(at + 1, strlen(at + 1)))
		return error_fail(error_r, EINVAL, "refusing mailbox address \"%s\" as a Maildir path",
		    mailbox_address);
	int n = snprintf(buf, size, "%s/%s/%.*s/Maildir", mail_dir, at + 1,
	    (int)(at - mailbox_address), mailbox_address);
	if (n < 0 || (size_t)n >= size)
		return error_fail(error_r, ENAMETOOLONG, "Maildir path for \"%s\" is too long",
		    mailbox_address);
	return 0;
}

static bool
alnum(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

int
maildir_unique_name(char *buf, size_t size, int64_t received_at, const char *spool_id,
    size_t rcpt_index, const char *hostname)
{
	if (spool_id[0] == '\0')
		return -1;
	for (const char *p = spool_id; *p != '\0'; p++)
		if (!alnum((unsigned char)*p))
			return -1;
	int n = snprintf(buf, size, "%" PRId64 ".%s_%zu.", received_at, spool_id, rcpt_index);
	if (n < 0 || (size_t)n >= size || n > MAILDIR_UNIQUE_MAX)
		return -1;
	size_t len = (size_t)n;
	for (const unsigned char *p = (const unsigned char *)hostname; *p != '\0'; p++) {
		bool plain = alnum(*p) || *p == '.' || *p == '-' || *p == '_';
		size_t need = plain ? 1 : 4;
		if (len + need >= size || len + need > MAILDIR_UNIQUE_MAX)
			return -1;
		if (plain)
			buf[len++] = (char)*p;
		else
			len += (size_t)snprintf(buf + len, 5, "\\%03o", *p);
	}
	buf[len] = '\0';
	return 0;
}

/* A name maildir_unique_name() could have made: no '/', ':' or ',' (the
 * separators of Maildir names), no control characters, not hidden. */
static bool
unique_ok(const char *u)
{
	size_t len = strlen(u);
	if (len == 0 || len > MAILDIR_UNIQUE_MAX || u[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)u[i];
		if (c == '/' || c == ':' || c == ',' || c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

/* ---- directories ---- */

static int
fsync_parent(const char *path)
{
	char parent[PATH_MAX];
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		snprintf(parent, sizeof(parent), ".");
	else if (slash == path)
		snprintf(parent, sizeof(parent), "/");
	else
		snprintf(parent, sizeof(parent), "%.*s", (int)(slash - path), path);
	int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int r = fsync(fd);
	int err = errno;
	close(fd);
	errno = err;
	return r;
}

/* mkdir 0700 unless it exists as a directory; a new entry is made durable. */
static int
mkdir_durable(const char *path)
{
	struct stat st;
	if (mkdir(path, 0700) == 0)
		return fsync_parent(path);
	if (errno != EEXIST)
		return -1;
	if (stat(path, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

static const char *const subdirs[] = { "tmp", "new", "cur" };
enum { MD_TMP, MD_NEW, MD_CUR };

int
maildir_create(const char *maildir, const char **error_r)
{
	char path[PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s", maildir);

	if (n <= 0 || (size_t)n + 5 >= sizeof(path))
		return error_fail(error_r, n <= 0 ? EINVAL : ENAMETOOLONG, "bad Maildir path");
	/* Every prefix ending before a '/', then the whole path. */
	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		if (mkdir_durable(path) < 0)
			return error_fail(error_r, errno, "cannot create directory %s: %s", path, strerror(errno));
		*p = saved;
		if (saved == '\0')
			break;
	}
	for (size_t i = 0; i < 3; i++) {
		snprintf(path + n, sizeof(path) - (size_t)n, "/%s", subdirs[i]);
		if (mkdir_durable(path) < 0)
			return error_fail(error_r, errno, "cannot create directory %s: %s", path, strerror(errno));
	}
	return 0;
}

/* A Maildir++ folder name that is safe as one path component after the '.'. */
static bool
folder_ok(const char *folder)
{
	size_t len = strlen(folder);
	if (len == 0 || len > MAILDIR_FOLDER_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!alnum((unsigned char)folder[i]) && folder[i] != '-' && folder[i] != '_')
			return false;
	return true;
}

int
maildir_folder_path(const char *maildir, const char *folder, char *buf, size_t size,
    const char **error_r)
{
	int n;
	if (folder == NULL || folder[0] == '\0') {
		n = snprintf(buf, size, "%s", maildir);
	} else {
		if (!folder_ok(folder))
			return error_fail(error_r, EINVAL, "refusing folder name \"%s\"", folder);
		/* Maildir++: the folder is a Maildir named '.' + name inside the INBOX one. */
		n = snprintf(buf, size, "%s/.%s", maildir, folder);
	}
	if (n < 0 || (size_t)n >= size)
		return error_fail(error_r, ENAMETOOLONG, "Maildir folder path too long");
	return 0;
}

int
maildir_create_folder(const char *maildir, const char *folder, const char **error_r)
{
	char path[PATH_MAX];

	if (maildir_folder_path(maildir, folder, path, sizeof(path), error_r) < 0 ||
	    maildir_create(maildir, error_r) < 0)
		return -1;
	if (folder == NULL || folder[0] == '\0')
		return 0;
	size_t n = strlen(path);
	if (n + sizeof("/maildirfolder") > sizeof(path))
		return error_fail(error_r, ENAMETOOLONG, "Maildir folder path too long");
	if (mkdir_durable(path) < 0)
		return error_fail(error_r, errno, "cannot create directory %s: %s", path, strerror(errno));
	/* The marker first: a folder whose cur/ exists (what md_open() looks for)
	 * always has it. Dovecot and Courier tell a folder by it. */
	snprintf(path + n, sizeof(path) - n, "/maildirfolder");
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || close(fd) < 0 || fsync_parent(path) < 0)
		return error_fail(error_r, errno, "cannot create %s: %s", path, strerror(errno));
	for (size_t i = 0; i < 3; i++) {
		snprintf(path + n, sizeof(path) - n, "/%s", subdirs[i]);
		if (mkdir_durable(path) < 0)
			return error_fail(error_r, errno, "cannot create directory %s: %s", path, strerror(errno));
	}
	return 0;
}

struct md {
	int dir;
	int sub[3];
};

static void
md_close(struct md *m)
{
	if (m->dir >= 0)
		close(m->dir);
	for (size_t i = 0; i < 3; i++)
		if (m->sub[i] >= 0)
			close(m->sub[i]);
	m->dir = m->sub[0] = m->sub[1] = m->sub[2] = -1;
}

/* 1 when the Maildir and its tmp/ new/ cur/ are open, 0 when one of them does
 * not exist, -1 on error. */
static int
md_open(const char *maildir, struct md *m, const char **error_r)
{
	m->dir = m->sub[0] = m->sub[1] = m->sub[2] = -1;
	m->dir = open(maildir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (size_t i = 0; i < 3 && m->dir >= 0; i++) {
		m->sub[i] = openat(m->dir, subdirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (m->sub[i] < 0)
			break;
	}
	if (m->dir >= 0 && m->sub[2] >= 0)
		return 1;
	int err = errno;
	md_close(m);
	if (err == ENOENT)
		return 0;
	return error_fail(error_r, err, "cannot open Maildir %s: %s", maildir, strerror(err));
}

/* 1 when new/ or cur/ has "<unique>,...", 0 when not, -1 and errno on error.
 * new/ first: a file only ever moves from new/ to cur/, so it cannot slip past. */
static int
md_contains(const struct md *m, const char *unique)
{
	size_t ulen = strlen(unique);
	const int which[2] = { MD_NEW, MD_CUR };

	for (size_t i = 0; i < 2; i++) {
		struct dirent *d;
		int fd = openat(m->sub[which[i]], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *dir = fd < 0 ? NULL : fdopendir(fd);
		if (dir == NULL) {
			int err = errno;
			if (fd >= 0)
				close(fd);
			errno = err;
			return -1;
		}
		int found = 0;
		for (;;) {
			errno = 0;
			if ((d = readdir(dir)) == NULL)
				break;
			if (strncmp(d->d_name, unique, ulen) == 0 && d->d_name[ulen] == ',') {
				found = 1;
				break;
			}
		}
		int err = errno;
		closedir(dir);
		if (found || err != 0) {
			errno = err;
			return found ? 1 : -1;
		}
	}
	return 0;
}

int
maildir_contains(const char *maildir, const char *unique, const char **error_r)
{
	struct md m;

	if (!unique_ok(unique))
		return error_fail(error_r, EINVAL, "invalid Maildir unique name");
	int r = md_open(maildir, &m, error_r);
	if (r <= 0)
		return r;
	r = md_contains(&m, unique);
	int err = errno;
	md_close(&m);
	if (r < 0)
		return error_fail(error_r, err, "cannot search Maildir %s: %s", maildir, strerror(err));
	return r;
}

/* ---- delivery ---- */

/* Copies bytes to a file turning CRLF into LF, counting what the CRLF size is. */
struct lf_copy {
	int fd;
	bool cr;                /* the last byte seen was a CR not yet written */
	uint64_t bytes, lfs;    /* written; CRLF size = bytes + lfs */
	size_t len;
	char out[32768];
	char in[32768];
};

static int
copy_byte(struct lf_copy *c, char ch)
{
	if (c->len == sizeof(c->out)) {
		if (fd_write_all(c->fd, c->out, c->len) < 0)
			return -1;
		c->len = 0;
	}
	c->out[c->len++] = ch;
	c->bytes++;
	c->lfs += ch == '\n';
	return 0;
}

static int
copy_put(struct lf_copy *c, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (c->cr) {
			c->cr = false;
			if (p[i] != '\n' && copy_byte(c, '\r') < 0)
				return -1;
		}
		if (p[i] == '\r')
			c->cr = true;
		else if (copy_byte(c, p[i]) < 0)
			return -1;
	}
	return 0;
}

/* The prepend, then the source's bytes, then flush. -1 and errno. */
static int
copy_message(struct lf_copy *c, const struct maildir_source *src)
{
	off_t offset = src->offset;
	if (src->prepend != NULL && copy_put(c, src->prepend, strlen(src->prepend)) < 0)
		return -1;
	while (src->end < 0 || offset < src->end) {
		size_t want = sizeof(c->in);
		if (src->end >= 0 && (uint64_t)(src->end - offset) < want)
			want = (size_t)(src->end - offset);
		ssize_t n = pread(src->fd, c->in, want, offset);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			if (src->end < 0)
				break;
			errno = EIO;    /* the source is shorter than it said */
			return -1;
		}
		offset += n;
		if (copy_put(c, c->in, (size_t)n) < 0)
			return -1;
	}
	if (c->cr && copy_byte(c, '\r') < 0)
		return -1;
	return fd_write_all(c->fd, c->out, c->len);
}

int
maildir_deliver(const char *maildir, int src_fd, off_t offset, const char *prepend,
    const char *unique, bool maybe_delivered, const char **error_r)
{
	const struct maildir_source src = { src_fd, offset, -1, prepend };
	return maildir_deliver_to(maildir, NULL, &src, unique, maybe_delivered, error_r);
}

int
maildir_deliver_to(const char *maildir_top, const char *folder,
    const struct maildir_source *src, const char *unique, bool maybe_delivered,
    const char **error_r)
{
	struct md m;
	struct lf_copy *c = NULL;
	char name[NAME_MAX + 1], maildir[PATH_MAX];
	const char *what = "";
	int r, err = 0;

	if (!unique_ok(unique))
		return error_fail(error_r, EINVAL, "invalid Maildir unique name");
	if (maildir_folder_path(maildir_top, folder, maildir, sizeof(maildir), error_r) < 0)
		return -1;
	if ((r = md_open(maildir, &m, error_r)) == 0) {
		if (maildir_create_folder(maildir_top, folder, error_r) < 0)
			return -1;
		if ((r = md_open(maildir, &m, error_r)) == 0)
			return error_fail(error_r, ENOENT, "Maildir %s vanished", maildir);
	}
	if (r < 0)
		return -1;
	if (maybe_delivered && (r = md_contains(&m, unique)) != 0) {
		if (r < 0) {
			err = errno, what = "search for an earlier delivery";
			goto out;
		}
		/* A crash between link() into new/ and the unlink of tmp/ leaves the
		 * temporary copy behind: it is not needed any more. */
		unlinkat(m.sub[MD_TMP], unique, 0);
		/* Make sure the earlier delivery is durable before saying so. */
		if (fsync(m.sub[MD_NEW]) < 0) {
			err = errno, what = "fsync new/";
			goto out;
		}
		md_close(&m);
		return 1;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		err = ENOMEM, what = "allocate a buffer";
		goto out;
	}
	/* A tmp/ file of this name is a leftover of an interrupted attempt. */
	unlinkat(m.sub[MD_TMP], unique, 0);
	c->fd = openat(m.sub[MD_TMP], unique, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (c->fd < 0) {
		err = errno, what = "create a file in tmp/";
		goto out;
	}
	if (copy_message(c, src) < 0) {
		err = errno, what = "write the message";
		goto out_unlink;
	}
	if (fsync(c->fd) < 0) {
		err = errno, what = "fsync the message";
		goto out_unlink;
	}
	r = close(c->fd);
	c->fd = -1;
	if (r < 0) {
		err = errno, what = "write the message";
		goto out_unlink;
	}
	snprintf(name, sizeof(name), "%s,S=%" PRIu64, unique, c->bytes + c->lfs);
	r = linkat(m.sub[MD_TMP], unique, m.sub[MD_NEW], name, 0);
	if (r < 0 && (errno == EPERM || errno == EOPNOTSUPP || errno == ENOSYS))
		/* File systems without hard links: a rename that never replaces. */
		r = renameat2(m.sub[MD_TMP], unique, m.sub[MD_NEW], name, RENAME_NOREPLACE);
	if (r < 0 && errno != EEXIST) {
		err = errno, what = "move the message into new/";
		goto out_unlink;
	}
	bool already = r < 0; /* EEXIST: this very message was delivered before */
	unlinkat(m.sub[MD_TMP], unique, 0);
	if (fsync(m.sub[MD_NEW]) < 0) {
		err = errno, what = "fsync new/";
		goto out;
	}
	free(c);
	md_close(&m);
	return already ? 1 : 0;
out_unlink:
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	unlinkat(m.sub[MD_TMP], unique, 0);
out:
	if (c != NULL && c->fd >= 0)
		close(c->fd);
	free(c);
	md_close(&m);
	return error_fail(error_r, err, "cannot deliver to %s: cannot %s: %s", maildir, what, strerror(err));
}
