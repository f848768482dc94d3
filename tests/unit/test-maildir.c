/*
 * Unit tests for maildir: path refusals, unique names, delivery (content with
 * CRLF -> LF and the prepend, the S= size, exactly-once on repeated delivery,
 * detection after a move to cur/), Maildir++ folders (names, layout, marker,
 * a half-created folder), delivery of a byte range, and error reporting. Each
 * test runs in its own temporary directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue/maildir.h"
#include "test-tmpdir.h"

struct fixture {
	char dir[64];
	char maildir[256];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *error;
	char root[128];
	snprintf(f->dir, sizeof(f->dir), "/tmp/rampart-maildir-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(root, sizeof(root), "%s/mail", f->dir);
	assert_int_equal(maildir_path(root, "bob@example.org", f->maildir, sizeof(f->maildir),
	    &error), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	test_rm_tree(f->dir);
	free(f);
	return 0;
}

/* A spool-like source file: junk header, then data at the returned offset. */
static int
make_source(struct fixture *f, const char *data, size_t len, off_t *offset_r)
{
	char path[256];
	static const char junk[] = "RAMPART-SPOOL 1\nnot the message\n\n";
	snprintf(path, sizeof(path), "%s/source", f->dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, junk, sizeof(junk) - 1), (ssize_t)sizeof(junk) - 1);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	*offset_r = sizeof(junk) - 1;
	return fd;
}

/* The names in <maildir>/<sub>; returns how many, the first in name (if any). */
static int
list_dir(struct fixture *f, const char *sub, char *name, size_t size)
{
	char path[512];
	struct dirent *d;
	int n = 0;
	snprintf(path, sizeof(path), "%s/%s", f->maildir, sub);
	DIR *dir = opendir(path);
	assert_non_null(dir);
	while ((d = readdir(dir)) != NULL) {
		if (d->d_name[0] == '.')
			continue;
		if (n++ == 0 && name != NULL)
			snprintf(name, size, "%s", d->d_name);
	}
	closedir(dir);
	return n;
}

static char *
read_file(const char *path, size_t *len_r)
{
	struct stat st;
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	char *buf = malloc((size_t)st.st_size + 1);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	buf[st.st_size] = '\0';
	close(fd);
	*len_r = (size_t)st.st_size;
	return buf;
}

static void
test_path(void **state)
{
	(void)state;
	char buf[256];
	const char *error;

	assert_int_equal(maildir_path("/var/mail", "bob@example.org", buf, sizeof(buf), &error), 0);
	assert_string_equal(buf, "/var/mail/example.org/bob/Maildir");
	/* The last '@' splits. */
	assert_int_equal(maildir_path("/m", "\"a@b\"@example.org", buf, sizeof(buf), &error), 0);
	assert_string_equal(buf, "/m/example.org/\"a@b\"/Maildir");
	assert_int_equal(maildir_path("/m", "j\xc3\xb6rg@b\xc3\xbc.example", buf, sizeof(buf), &error), 0);

	static const char *const refused[] = {
		"bob", "@example.org", "bob@", "../x@example.org", "bob@..", "bob@.",
		".bob@example.org", "bob@.example.org", "a/b@example.org", "bob@example.org/x",
		"bob@a/../../etc", "b\nob@example.org", "bob@exa\rmple.org", "bob\x7f@example.org",
		"bob@example.org\x01", "..@example.org", "",
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		error = NULL;
		if (maildir_path("/m", refused[i], buf, sizeof(buf), &error) == 0)
			fail_msg("accepted \"%s\" as %s", refused[i], buf);
		assert_int_equal(errno, EINVAL);
		assert_non_null(error);
		assert_false(maildir_error_is_temporary(errno));
	}
	assert_int_equal(maildir_path("", "bob@example.org", buf, sizeof(buf), &error), -1);
	assert_int_equal(maildir_path("/var/mail", "bob@example.org", buf, 33, &error), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	assert_int_equal(maildir_path("/var/mail", "bob@example.org", buf, 34, &error), 0);
}

static void
test_unique_name(void **state)
{
	(void)state;
	char buf[MAILDIR_UNIQUE_MAX + 1];
	assert_int_equal(maildir_unique_name(buf, sizeof(buf), 1712345678,
	    "0006157a3b2c4d5e9f8a7b6c", 3, "mx.example.org"), 0);
	assert_string_equal(buf, "1712345678.0006157a3b2c4d5e9f8a7b6c_3.mx.example.org");
	assert_int_equal(maildir_unique_name(buf, sizeof(buf), 1, "abc", 0, "a/b:c,d\\e f"), 0);
	assert_string_equal(buf, "1.abc_0.a\\057b\\072c\\054d\\134e\\040f");
	assert_int_equal(maildir_unique_name(buf, 10, 1, "abc", 0, "host"), -1);
	assert_int_equal(maildir_unique_name(buf, sizeof(buf), 1, "a/c", 0, "host"), -1);
	assert_int_equal(maildir_unique_name(buf, sizeof(buf), 1, "", 0, "host"), -1);
	char host[MAILDIR_UNIQUE_MAX];
	memset(host, 'h', sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	assert_int_equal(maildir_unique_name(buf, sizeof(buf), 1, "abc", 0, host), -1);
}

static void
test_deliver(void **state)
{
	struct fixture *f = *state;
	static const char data[] =
	    "Subject: hi\r\nFrom: <alice@example.org>\r\n\r\nline one\r\nbare\rCR\r\nbare LF\n"
	    "end\r\n";
	static const char expect[] =
	    "Return-Path: <alice@example.org>\nDelivered-To: bob@example.org\n"
	    "Subject: hi\nFrom: <alice@example.org>\n\nline one\nbare\rCR\nbare LF\nend\n";
	static const char prepend[] =
	    "Return-Path: <alice@example.org>\r\nDelivered-To: bob@example.org\r\n";
	const char *error;
	char unique[MAILDIR_UNIQUE_MAX + 1], name[256], path[768];
	off_t offset;
	int src = make_source(f, data, sizeof(data) - 1, &offset);
	/* The fd's position must not matter. */
	lseek(src, 3, SEEK_SET);

	assert_int_equal(maildir_unique_name(unique, sizeof(unique), 1712345678,
	    "0006157a3b2c4d5e9f8a7b6c", 0, "mx.example.org"), 0);
	assert_int_equal(maildir_contains(f->maildir, unique, &error), 0);
	assert_int_equal(maildir_deliver(f->maildir, src, offset, prepend, unique, false, &error), 0);
	assert_int_equal(list_dir(f, "tmp", NULL, 0), 0);
	assert_int_equal(list_dir(f, "cur", NULL, 0), 0);
	assert_int_equal(list_dir(f, "new", name, sizeof(name)), 1);
	/* S= is the size with CRLF line ends: every LF counts two. */
	size_t lfs = 0;
	for (const char *p = expect; *p != '\0'; p++)
		lfs += *p == '\n';
	char want[300];
	snprintf(want, sizeof(want), "%s,S=%zu", unique, sizeof(expect) - 1 + lfs);
	assert_string_equal(name, want);
	snprintf(path, sizeof(path), "%s/new/%s", f->maildir, name);
	size_t len;
	char *got = read_file(path, &len);
	assert_int_equal(len, sizeof(expect) - 1);
	assert_memory_equal(got, expect, len);
	free(got);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(f->maildir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);

	/* Again (a crash before the spool was marked): 1, no second file. */
	assert_int_equal(maildir_deliver(f->maildir, src, offset, prepend, unique, false, &error), 1);
	assert_int_equal(maildir_deliver(f->maildir, src, offset, prepend, unique, true, &error), 1);
	assert_int_equal(list_dir(f, "new", NULL, 0), 1);
	assert_int_equal(list_dir(f, "tmp", NULL, 0), 0);
	assert_int_equal(maildir_contains(f->maildir, unique, &error), 1);

	/* A client moved it to cur/ and flagged it seen: still found. */
	char cur[768];
	snprintf(cur, sizeof(cur), "%s/cur/%s:2,S", f->maildir, name);
	assert_int_equal(rename(path, cur), 0);
	assert_int_equal(maildir_contains(f->maildir, unique, &error), 1);
	assert_int_equal(maildir_deliver(f->maildir, src, offset, prepend, unique, true, &error), 1);
	assert_int_equal(list_dir(f, "new", NULL, 0), 0);
	assert_int_equal(list_dir(f, "cur", NULL, 0), 1);

	/* A prefix of another unique does not count; a leftover in tmp/ is replaced. */
	char other[MAILDIR_UNIQUE_MAX + 1];
	snprintf(other, sizeof(other), "%.*s", (int)strlen(unique) - 1, unique);
	assert_int_equal(maildir_contains(f->maildir, other, &error), 0);
	snprintf(path, sizeof(path), "%s/tmp/%s", f->maildir, other);
	close(open(path, O_WRONLY | O_CREAT, 0600));
	assert_int_equal(maildir_deliver(f->maildir, src, offset, NULL, other, true, &error), 0);
	assert_int_equal(list_dir(f, "tmp", NULL, 0), 0);
	assert_int_equal(list_dir(f, "new", name, sizeof(name)), 1);
	snprintf(path, sizeof(path), "%s/new/%s", f->maildir, name);
	got = read_file(path, &len);
	assert_int_equal(len, sizeof(expect) - 1 - (sizeof(prepend) - 1 - 2));
	assert_memory_equal(got, expect + sizeof(prepend) - 1 - 2, len);
	free(got);
	close(src);
}

/* CRLF split across read boundaries, a large message, a final lone CR. */
static void
test_deliver_large(void **state)
{
	struct fixture *f = *state;
	const char *error;
	size_t n = 300000, k = 0, lf_len = 0;
	char *data = malloc(n), *expect = malloc(n), name[256], path[768];
	while (k + 2 <= n - 1) {
		size_t line = (k * 7) % 97;
		for (size_t i = 0; i < line && k + 2 < n - 1; i++) {
			data[k++] = (char)('a' + i % 26);
			expect[lf_len++] = (char)('a' + i % 26);
		}
		data[k++] = '\r';
		data[k++] = '\n';
		expect[lf_len++] = '\n';
	}
	data[k++] = '\r';
	expect[lf_len++] = '\r';
	off_t offset;
	int src = make_source(f, data, k, &offset);
	assert_int_equal(maildir_deliver(f->maildir, src, offset, NULL, "big", false, &error), 0);
	assert_int_equal(list_dir(f, "new", name, sizeof(name)), 1);
	char want[64];
	snprintf(want, sizeof(want), "big,S=%zu", k);
	assert_string_equal(name, want);
	snprintf(path, sizeof(path), "%s/new/%s", f->maildir, name);
	size_t len;
	char *got = read_file(path, &len);
	assert_int_equal(len, lf_len);
	assert_memory_equal(got, expect, len);
	free(got);
	free(data);
	free(expect);
	close(src);
}

static void
test_errors(void **state)
{
	struct fixture *f = *state;
	const char *error;
	char path[512];
	off_t offset;
	int src = make_source(f, "x\r\n", 3, &offset);

	/* Bad unique names. */
	static const char *const bad[] = { "", ".hidden", "a/b", "a:2,S", "a,S=3", "a\nb" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(maildir_deliver(f->maildir, src, offset, NULL, bad[i], false, &error), -1);
		assert_int_equal(errno, EINVAL);
		assert_int_equal(maildir_contains(f->maildir, bad[i], &error), -1);
	}

	/* A path component is a file: ENOTDIR, temporary (an operator can fix it). */
	snprintf(path, sizeof(path), "%s/file", f->dir);
	close(open(path, O_WRONLY | O_CREAT, 0600));
	snprintf(path, sizeof(path), "%s/file/d/u/Maildir", f->dir);
	assert_int_equal(maildir_deliver(path, src, offset, NULL, "u1", false, &error), -1);
	assert_int_equal(errno, ENOTDIR);
	assert_true(maildir_error_is_temporary(errno));
	assert_non_null(strstr(error, "file"));
	assert_int_equal(maildir_contains(path, "u1", &error), -1);

	/* A write that fails (EFBIG via RLIMIT_FSIZE, even for root): -1, the
	 * cause kept, nothing left in tmp/ or new/. */
	assert_int_equal(maildir_create(f->maildir, &error), 0);
	char *big = malloc(100000);
	memset(big, 'x', 100000);
	close(src);
	src = make_source(f, big, 100000, &offset);
	free(big);
	struct rlimit old, tiny = { 4096, 4096 };
	getrlimit(RLIMIT_FSIZE, &old);
	tiny.rlim_max = old.rlim_max;
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &tiny), 0);
	int r = maildir_deliver(f->maildir, src, offset, NULL, "u2", false, &error);
	int err = errno;
	setrlimit(RLIMIT_FSIZE, &old);
	assert_int_equal(r, -1);
	assert_int_equal(err, EFBIG);
	assert_false(maildir_error_is_temporary(err));
	assert_int_equal(list_dir(f, "tmp", NULL, 0), 0);
	assert_int_equal(list_dir(f, "new", NULL, 0), 0);

	/* A bad source fd. */
	assert_int_equal(maildir_deliver(f->maildir, -1, 0, NULL, "u3", false, &error), -1);
	assert_int_equal(errno, EBADF);
	assert_int_equal(list_dir(f, "tmp", NULL, 0), 0);
	close(src);

	assert_true(maildir_error_is_temporary(ENOSPC));
	assert_true(maildir_error_is_temporary(EDQUOT));
	assert_true(maildir_error_is_temporary(EIO));
	assert_true(maildir_error_is_temporary(EAGAIN));
	assert_false(maildir_error_is_temporary(EINVAL));
}

static void
test_folder_path(void **state)
{
	(void)state;
	char buf[256];
	const char *error;

	assert_int_equal(maildir_folder_path("/m/d/u/Maildir", NULL, buf, sizeof(buf), &error), 0);
	assert_string_equal(buf, "/m/d/u/Maildir");
	assert_int_equal(maildir_folder_path("/m/d/u/Maildir", "", buf, sizeof(buf), &error), 0);
	assert_string_equal(buf, "/m/d/u/Maildir");
	assert_int_equal(maildir_folder_path("/m/d/u/Maildir", "Junk", buf, sizeof(buf), &error), 0);
	assert_string_equal(buf, "/m/d/u/Maildir/.Junk");
	assert_int_equal(maildir_folder_path("/M", "a-b_C9", buf, sizeof(buf), &error), 0);
	assert_string_equal(buf, "/M/.a-b_C9");
	char longest[MAILDIR_FOLDER_MAX + 2];
	memset(longest, 'j', sizeof(longest));
	longest[MAILDIR_FOLDER_MAX] = '\0';
	assert_int_equal(maildir_folder_path("/M", longest, buf, sizeof(buf), &error), 0);
	longest[MAILDIR_FOLDER_MAX] = 'j';
	longest[MAILDIR_FOLDER_MAX + 1] = '\0';
	const char *const refused[] = {
		".", "..", ".Junk", "Junk.Spam", "../Junk", "a/b", "Junk/", "/etc", "Ju nk",
		"Junk\n", "J\xc3\xbcnk", "tmp/../..", "Junk:2", longest,
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		error = NULL;
		if (maildir_folder_path("/M", refused[i], buf, sizeof(buf), &error) == 0)
			fail_msg("accepted folder \"%s\" as %s", refused[i], buf);
		assert_int_equal(errno, EINVAL);
		assert_non_null(error);
		assert_int_equal(maildir_create_folder("/nonexistent/M", refused[i], &error), -1);
		assert_int_equal(errno, EINVAL);
	}
	assert_int_equal(maildir_folder_path("/M", "Junk", buf, 8, &error), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	assert_int_equal(maildir_folder_path("/M", "Junk", buf, 9, &error), 0);
}

static void
assert_mode(const char *path, mode_t type, mode_t mode)
{
	struct stat st;
	if (stat(path, &st) < 0)
		fail_msg("%s: %s", path, strerror(errno));
	assert_int_equal(st.st_mode & S_IFMT, type);
	assert_int_equal(st.st_mode & 0777, mode);
}

/* Delivery into a folder: Maildir++ layout created on demand, only the byte
 * range, the same exactly-once guarantees as INBOX. */
static void
test_deliver_folder(void **state)
{
	struct fixture *f = *state;
	static const char data[] = "Subject: spam?\r\n\r\nbuy\r\n";
	static const char trailer[] = "added X-Not:%20this\nend\n";
	static const char prepend[] =
	    "Return-Path: <a@b.example>\r\nDelivered-To: bob@example.org\r\n"
	    "Authentication-Results: mx.example.org; dmarc=fail\r\n";
	static const char expect[] =
	    "Return-Path: <a@b.example>\nDelivered-To: bob@example.org\n"
	    "Authentication-Results: mx.example.org; dmarc=fail\n"
	    "Subject: spam?\n\nbuy\n";
	const char *error;
	char path[1024], name[256], junk[512];
	off_t offset;
	int src = make_source(f, data, sizeof(data) - 1, &offset);
	assert_int_equal(write(src, trailer, sizeof(trailer) - 1), (ssize_t)sizeof(trailer) - 1);
	const struct maildir_source range = { src, offset, offset + (off_t)sizeof(data) - 1, prepend };

	assert_int_equal(maildir_deliver_to(f->maildir, "Junk", &range, "u1", false, &error), 0);
	/* INBOX exists (Maildir++ needs it) and holds nothing. */
	assert_int_equal(list_dir(f, "new", NULL, 0), 0);
	assert_int_equal(list_dir(f, "tmp", NULL, 0), 0);
	assert_mode(f->maildir, S_IFDIR, 0700);
	snprintf(junk, sizeof(junk), "%s/.Junk", f->maildir);
	assert_mode(junk, S_IFDIR, 0700);
	const char *const subs[] = { "tmp", "new", "cur" };
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", junk, subs[i]);
		assert_mode(path, S_IFDIR, 0700);
	}
	snprintf(path, sizeof(path), "%s/maildirfolder", junk);
	assert_mode(path, S_IFREG, 0600);
	size_t len;
	char *got = read_file(path, &len);
	assert_int_equal(len, 0);
	free(got);
	assert_int_equal(list_dir(f, ".Junk/tmp", NULL, 0), 0);
	assert_int_equal(list_dir(f, ".Junk/new", name, sizeof(name)), 1);
	size_t lfs = 0;
	for (const char *p = expect; *p != '\0'; p++)
		lfs += *p == '\n';
	char want[300];
	snprintf(want, sizeof(want), "u1,S=%zu", sizeof(expect) - 1 + lfs);
	assert_string_equal(name, want);
	snprintf(path, sizeof(path), "%s/new/%s", junk, name);
	got = read_file(path, &len);
	assert_int_equal(len, sizeof(expect) - 1);
	assert_memory_equal(got, expect, len);
	free(got);

	/* Again: found in the folder, whichever way it is asked. */
	assert_int_equal(maildir_deliver_to(f->maildir, "Junk", &range, "u1", false, &error), 1);
	assert_int_equal(maildir_deliver_to(f->maildir, "Junk", &range, "u1", true, &error), 1);
	assert_int_equal(maildir_contains(junk, "u1", &error), 1);
	assert_int_equal(maildir_contains(f->maildir, "u1", &error), 0);
	assert_int_equal(list_dir(f, ".Junk/new", NULL, 0), 1);

	/* The same range into INBOX ("" and NULL alike). */
	assert_int_equal(maildir_deliver_to(f->maildir, "", &range, "u2", false, &error), 0);
	assert_int_equal(maildir_deliver_to(f->maildir, NULL, &range, "u2", true, &error), 1);
	assert_int_equal(list_dir(f, "new", name, sizeof(name)), 1);
	snprintf(want, sizeof(want), "u2,S=%zu", sizeof(expect) - 1 + lfs);
	assert_string_equal(name, want);
	snprintf(path, sizeof(path), "%s/new/%s", f->maildir, name);
	got = read_file(path, &len);
	assert_int_equal(len, sizeof(expect) - 1);
	assert_memory_equal(got, expect, len);
	free(got);

	/* A range reaching past the end of the source: EIO, nothing left behind. */
	const struct maildir_source past = { src, offset, offset + 4096, NULL };
	assert_int_equal(maildir_deliver_to(f->maildir, "Junk", &past, "u3", false, &error), -1);
	assert_int_equal(errno, EIO);
	assert_true(maildir_error_is_temporary(EIO));
	assert_int_equal(list_dir(f, ".Junk/tmp", NULL, 0), 0);
	assert_int_equal(list_dir(f, ".Junk/new", NULL, 0), 1);
	/* An empty range: the prepend alone. */
	const struct maildir_source none = { src, offset, offset, "X: y\r\n" };
	assert_int_equal(maildir_deliver_to(f->maildir, "Junk", &none, "u4", false, &error), 0);
	snprintf(path, sizeof(path), "%s/new/u4,S=6", junk);
	got = read_file(path, &len);
	assert_int_equal(len, 5);
	assert_memory_equal(got, "X: y\n", 5);
	free(got);
	close(src);
}

/* A folder whose creation was interrupted (directory, no marker, no cur/) is
 * completed by the next delivery; a folder name that is refused never touches
 * the file system. */
static void
test_folder_half_created(void **state)
{
	struct fixture *f = *state;
	const char *error;
	char path[768];
	off_t offset;
	int src = make_source(f, "x\r\n", 3, &offset);

	assert_int_equal(maildir_create(f->maildir, &error), 0);
	snprintf(path, sizeof(path), "%s/.Junk", f->maildir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/.Junk/new", f->maildir);
	assert_int_equal(mkdir(path, 0700), 0);
	const struct maildir_source all = { src, offset, -1, NULL };
	assert_int_equal(maildir_deliver_to(f->maildir, "Junk", &all, "h1", false, &error), 0);
	snprintf(path, sizeof(path), "%s/.Junk/maildirfolder", f->maildir);
	assert_mode(path, S_IFREG, 0600);
	assert_int_equal(list_dir(f, ".Junk/new", NULL, 0), 1);
	/* Idempotent creation. */
	assert_int_equal(maildir_create_folder(f->maildir, "Junk", &error), 0);
	assert_int_equal(maildir_create_folder(f->maildir, NULL, &error), 0);

	assert_int_equal(maildir_deliver_to(f->maildir, "../../x", &all, "h2", false, &error), -1);
	assert_int_equal(errno, EINVAL);
	assert_false(maildir_error_is_temporary(errno));
	snprintf(path, sizeof(path), "%s/x", f->dir);
	struct stat st;
	assert_int_equal(stat(path, &st), -1);
	close(src);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path),
		cmocka_unit_test(test_unique_name),
		cmocka_unit_test_setup_teardown(test_deliver, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test(test_folder_path),
		cmocka_unit_test_setup_teardown(test_deliver_folder, setup, teardown),
		cmocka_unit_test_setup_teardown(test_folder_half_created, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
