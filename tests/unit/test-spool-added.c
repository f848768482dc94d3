/*
 * Unit tests for what a commit carries besides the message (issue 4): header
 * fields to put on top (our Authentication-Results) and the folder (Junk when
 * DMARC says quarantine).
 *
 * - queue_added_check / queue_folder_valid, and QUEUE_COMMIT_REQ encode/decode
 *   (round trip, every truncation, every byte mutation, limits);
 * - spool version 2: commit with and without added/folder (exact file bytes),
 *   load back, refusals at commit (size mismatch, bad fields, twice);
 * - delivery: Return-Path and Delivered-To, then the added fields, then exactly
 *   the bytes [data offset, data-end); Junk created in Maildir++ layout with its
 *   marker; `rampart queue list` shows the data size and folder;
 * - version-1 files (already on disk at an upgrade) load and deliver;
 * - corrupt data-end or trailer refused, and never delivered;
 * - crash simulation: an uncommitted file (data-end zero, or a commit cut
 *   before its rename) is cleaned up at start and never delivered.
 * Each spool test runs in its own temporary directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "queue/delivery.h"
#include "queue/envelope.h"
#include "queue/queue-admin.h"
#include "queue/queue-msg.h"
#include "queue/spool.h"
#include "test-tmpdir.h"

/* ------------------------------------------------------------ fixtures */

struct fixture {
	char dir[64];
	char spool_dir[96];
	char mail_dir[96];
	struct spool *s;
};

static const char message[] =
    "Received: from client.example (client.example [192.0.2.7])\r\n\tby mx.example.org\r\n"
    "Subject: test\r\nFrom: <alice@example.net>\r\n\r\nHello.\r\nbare\rCR\r\n";
/* What Maildir gets for message (LF line ends; the bare CR kept). */
static const char message_lf[] =
    "Received: from client.example (client.example [192.0.2.7])\n\tby mx.example.org\n"
    "Subject: test\nFrom: <alice@example.net>\n\nHello.\nbare\rCR\n";

static const char ar[] =
    "Authentication-Results: mx.example.org;\r\n"
    "\tspf=fail smtp.mailfrom=example.net;\r\n"
    "\tdkim=none;\r\n"
    "\tdmarc=fail (p=quarantine) header.from=example.net\r\n";
static const char ar_lf[] =
    "Authentication-Results: mx.example.org;\n"
    "\tspf=fail smtp.mailfrom=example.net;\n"
    "\tdkim=none;\n"
    "\tdmarc=fail (p=quarantine) header.from=example.net\n";

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *error;
	snprintf(f->dir, sizeof(f->dir), "/tmp/rampart-added-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->spool_dir, sizeof(f->spool_dir), "%s/spool", f->dir);
	snprintf(f->mail_dir, sizeof(f->mail_dir), "%s/mail", f->dir);
	assert_int_equal(spool_open(f->spool_dir, &f->s, &error), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	spool_close(&f->s);
	test_rm_tree(f->dir);
	free(f);
	return 0;
}

static struct envelope *
make_envelope(void)
{
	struct envelope *e = envelope_new();
	assert_non_null(e);
	envelope_set_str(&e->mail_from, "alice@example.net");
	envelope_set_str(&e->helo, "client.example");
	envelope_set_str(&e->client_addr, "192.0.2.7");
	e->client_port = 54321;
	envelope_set_str(&e->listener, "mx");
	e->received_at = 1712345678;
	envelope_add_rcpt(e, "bob@example.org", "bob@example.org", NULL, 0);
	return e;
}

/* Creates a message, writes message into it; returns the fd (not committed). */
static int
spool_start(struct fixture *f, struct envelope *e)
{
	const char *error;
	int fd;
	assert_int_equal(spool_create(f->s, e, &fd, &error), 0);
	assert_int_equal(write(fd, message, sizeof(message) - 1), (ssize_t)sizeof(message) - 1);
	return fd;
}

static char *
read_path(const char *path, size_t *len_r)
{
	struct stat st;
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		fail_msg("%s: %s", path, strerror(errno));
	assert_int_equal(fstat(fd, &st), 0);
	char *buf = malloc((size_t)st.st_size + 1);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	buf[st.st_size] = '\0';
	close(fd);
	*len_r = (size_t)st.st_size;
	return buf;
}

static void
write_path(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static char *
spool_path(struct fixture *f, const char *sub, const char *id)
{
	/* Two in turn, so that rename(spool_path(), spool_path()) works. */
	static char paths[2][256];
	static unsigned turn;
	char *path = paths[turn++ % 2];
	snprintf(path, sizeof(paths[0]), "%s/%s/%s", f->spool_dir, sub, id);
	return path;
}

/* The files in <mail>/example.org/bob/Maildir/<sub>; the first one read into
 * *data_r (when there is one and data_r is not NULL). */
static int
maildir_files(struct fixture *f, const char *sub, char **data_r, size_t *len_r)
{
	char path[512], first[256] = "";
	struct dirent *d;
	int n = 0;
	snprintf(path, sizeof(path), "%s/example.org/bob/Maildir/%s", f->mail_dir, sub);
	DIR *dir = opendir(path);
	if (dir == NULL)
		return -1;
	while ((d = readdir(dir)) != NULL) {
		if (d->d_name[0] == '.')
			continue;
		if (n++ == 0)
			snprintf(first, sizeof(first), "%s", d->d_name);
	}
	closedir(dir);
	if (n > 0 && data_r != NULL) {
		char file[800];
		snprintf(file, sizeof(file), "%s/%s", path, first);
		*data_r = read_path(file, len_r);
	}
	return n;
}

static enum delivery_outcome
deliver(struct fixture *f, const char *id)
{
	struct delivery_job job = { .spool = f->s, .mail_dir = f->mail_dir,
		.hostname = "mx.example.org", .check_existing = true };
	snprintf(job.id, sizeof(job.id), "%s", id);
	delivery_run(&job);
	if (job.outcome == DELIVERY_DONE) {
		/* The attempt would go on with the remote recipients; none here. */
		assert_int_equal(envelope_pending_count(job.msg->envelope), 0);
		close(job.fd);
		spool_message_free(&job.msg);
		/* ... and then removes the file, as queue-attempt.c does. */
		const char *error;
		assert_int_equal(spool_remove(f->s, id, &error), 0);
	}
	return job.outcome;
}

/* Valid header text of exactly len octets (len % 100 == 0 or >= 4): a field
 * "X: xxx" folded into lines of 100 octets. */
static char *
make_added(size_t len)
{
	char *p = malloc(len + 1);
	for (size_t at = 0; at < len;) {
		size_t line = len - at >= 100 ? 100 : len - at;
		assert_true(line >= 4);
		memset(p + at, 'x', line - 2);
		if (at == 0)
			memcpy(p, "X: ", 3);
		else
			p[at] = ' ';
		memcpy(p + at + line - 2, "\r\n", 2);
		at += line;
	}
	p[len] = '\0';
	return p;
}

/* ------------------------------------------------------------ checks */

static void
test_added_check(void **state)
{
	(void)state;
	const char *error;
	static const char *const good[] = {
		"",
		"A: b\r\n",
		"A:b\r\n",
		"A:\r\n",
		"X-Long-Name.With_Odd!Chars~: v\r\n",
		"A: b\r\n c\r\n\td\r\nE: f\r\n",
		"A: caf\xc3\xa9 \t x\r\n",
		"Authentication-Results: mx.example.org; none\r\n",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (queue_added_check(good[i], strlen(good[i]), &error) < 0)
			fail_msg("refused \"%s\": %s", good[i], error);
	assert_int_equal(queue_added_check(ar, sizeof(ar) - 1, &error), 0);
	static const char *const bad[] = {
		"A: b",                  /* no CRLF */
		"A: b\n",                /* LF alone */
		"A: b\r",
		"A: b\r\r\n",
		"A: b\n\r\n",
		"A: b\rc\r\n",           /* bare CR */
		"A: b\r\n\r\n",          /* an empty line: the end of a header */
		"\r\n",
		" A: b\r\n",             /* continuation first */
		"\tA: b\r\n",
		"A: b\r\n \r\n",         /* white space only */
		"A: b\r\n \t \r\n",
		": b\r\n",               /* empty name */
		"A b: c\r\n",            /* space in a name */
		"A\r\n",                 /* no colon */
		"A: b\r\nC\r\n",
		"A\x01: b\r\n",
		"\xc3\xa9: b\r\n",       /* 8-bit name */
		"A: b\x7f\r\n",
		"A: b\x1b[0m\r\n",
		"A: b\x0b\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		error = NULL;
		if (queue_added_check(bad[i], strlen(bad[i]), &error) == 0)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_non_null(error);
	}
	/* An inner NUL (the length says where the text ends). */
	assert_int_equal(queue_added_check("A: b\0c\r\n", 8, &error), -1);

	/* 998 octets before CRLF is the limit (RFC 5322 §2.1.1). */
	char line[1001 + 2];
	memset(line, 'v', sizeof(line));
	memcpy(line, "A: ", 3);
	memcpy(line + 998, "\r\n", 2);
	assert_int_equal(queue_added_check(line, 1000, &error), 0);
	memcpy(line + 998, "v\r\n", 3);
	assert_int_equal(queue_added_check(line, 1001, &error), -1);

	/* QUEUE_ADDED_MAX exactly; one more is refused. */
	char *big = make_added(QUEUE_ADDED_MAX);
	assert_int_equal(queue_added_check(big, QUEUE_ADDED_MAX, &error), 0);
	free(big);
	big = make_added(QUEUE_ADDED_MAX + 4);
	assert_int_equal(queue_added_check(big, QUEUE_ADDED_MAX + 4, &error), -1);
	free(big);

	assert_true(queue_folder_valid(""));
	assert_true(queue_folder_valid("Junk"));
	static const char *const folders[] = {
		"junk", "JUNK", "Junk ", " Junk", ".Junk", "Junk/", "../Junk", "INBOX", "Spam",
		"Junk\n", "Jun", "Junkk", ".", "..",
	};
	for (size_t i = 0; i < sizeof(folders) / sizeof(folders[0]); i++)
		assert_false(queue_folder_valid(folders[i]));
	assert_false(queue_folder_valid(NULL));
}

/* The encoded frame of m, as a heap copy of its exact size. */
static uint8_t *
encode_ref(const struct queue_ref *m, size_t *len_r)
{
	struct evbuffer *b = evbuffer_new();
	queue_ref_encode(b, m);
	*len_r = evbuffer_get_length(b);
	uint8_t *p = malloc(*len_r);
	evbuffer_remove(b, p, *len_r);
	evbuffer_free(b);
	return p;
}

static void
test_ref_codec(void **state)
{
	(void)state;
	struct queue_ref m, d;
	const char *error;
	size_t len;

	/* What the front sends today (designated initialisers, the rest zero). */
	m = (struct queue_ref){ .id = "0006157a3b2c4d5e9f8a7b6c", .size = 4242 };
	uint8_t *p = encode_ref(&m, &len);
	assert_int_equal(queue_ref_decode(p, len, &d, &error), 0);
	assert_string_equal(d.id, m.id);
	assert_int_equal(d.size, 4242);
	assert_string_equal(d.added, "");
	assert_int_equal(d.added_len, 0);
	assert_string_equal(d.folder, "");
	free(p);

	/* With fields and Junk. added need not be NUL-terminated when encoded. */
	char *copy = malloc(sizeof(ar) - 1);
	memcpy(copy, ar, sizeof(ar) - 1);
	m = (struct queue_ref){ .id = "0006157a3b2c4d5e9f8a7b6c", .size = UINT64_MAX,
		.added = copy, .added_len = sizeof(ar) - 1, .folder = "Junk" };
	p = encode_ref(&m, &len);
	free(copy);
	assert_int_equal(queue_ref_decode(p, len, &d, &error), 0);
	assert_int_equal(d.size, UINT64_MAX);
	assert_int_equal(d.added_len, sizeof(ar) - 1);
	assert_memory_equal(d.added, ar, sizeof(ar));     /* with its NUL */
	assert_string_equal(d.folder, "Junk");

	/* Every truncation and every extension is refused, reading only what it
	 * is given (exact-size copies for ASan). */
	for (size_t n = 0; n < len; n++) {
		uint8_t *t = malloc(n == 0 ? 1 : n);
		memcpy(t, p, n);
		assert_int_equal(queue_ref_decode(t, n, &d, &error), -1);
		free(t);
	}
	uint8_t *longer = malloc(len + 1);
	memcpy(longer, p, len);
	longer[len] = 0;
	assert_int_equal(queue_ref_decode(longer, len + 1, &d, &error), -1);
	free(longer);

	/* Every byte mutation: refused, or a result that obeys every rule. */
	for (size_t i = 0; i < len; i++) {
		uint8_t saved = p[i];
		static const uint8_t values[] = { 0, '\r', '\n', ' ', ':', 'x', 0x7f, 0xff };
		for (size_t v = 0; v < sizeof(values); v++) {
			p[i] = values[v];
			if (queue_ref_decode(p, len, &d, &error) == 0) {
				assert_int_equal(queue_added_check(d.added, d.added_len, &error), 0);
				assert_int_equal(strlen(d.added), d.added_len);
				assert_true(queue_folder_valid(d.folder));
			}
		}
		p[i] = saved;
	}
	free(p);

	/* A bad added or folder: refused, but the id is still known (so the queue
	 * can release the transaction). */
	m = (struct queue_ref){ .id = "0006157a3b2c4d5e9f8a7b6c", .size = 1,
		.added = "A: b\n", .added_len = 5 };
	p = encode_ref(&m, &len);
	assert_int_equal(queue_ref_decode(p, len, &d, &error), -1);
	assert_string_equal(d.id, m.id);
	free(p);
	m = (struct queue_ref){ .id = "0006157a3b2c4d5e9f8a7b6c", .size = 1, .folder = "../x" };
	p = encode_ref(&m, &len);
	assert_int_equal(queue_ref_decode(p, len, &d, &error), -1);
	assert_string_equal(d.id, m.id);
	free(p);
	m = (struct queue_ref){ .id = "0006157a3b2c4d5e9f8a7b6c", .added = "A: b\0c\r\n",
		.added_len = 8 };
	p = encode_ref(&m, &len);
	assert_int_equal(queue_ref_decode(p, len, &d, &error), -1);
	free(p);

	/* QUEUE_ADDED_MAX passes the wire; more does not. */
	char *big = make_added(QUEUE_ADDED_MAX);
	m = (struct queue_ref){ .id = "x", .added = big, .added_len = QUEUE_ADDED_MAX };
	p = encode_ref(&m, &len);
	assert_int_equal(queue_ref_decode(p, len, &d, &error), 0);
	assert_int_equal(d.added_len, QUEUE_ADDED_MAX);
	assert_memory_equal(d.added, big, QUEUE_ADDED_MAX);
	free(p);
	free(big);
	big = make_added(QUEUE_ADDED_MAX + 4);
	m = (struct queue_ref){ .id = "x", .added = big, .added_len = QUEUE_ADDED_MAX + 4 };
	p = encode_ref(&m, &len);
	assert_int_equal(queue_ref_decode(p, len, &d, &error), -1);
	assert_string_equal(d.id, "x");
	free(p);
	free(big);
}

/* ------------------------------------------------------------ spool v2 */

static void
test_commit_plain(void **state)
{
	struct fixture *f = *state;
	struct envelope *e = make_envelope();
	struct spool_message *m = NULL;
	const char *error;
	int fd = spool_start(f, e), lfd;

	/* What today's front sends: a size, nothing added, INBOX. */
	const struct spool_commit_info info = { .data_size = sizeof(message) - 1 };
	assert_int_equal(spool_commit_with(f->s, e->id, fd, &info, &error), 0);
	close(fd);
	assert_int_equal(spool_load_message(f->s, e->id, &m, &lfd, &error), 0);
	assert_int_equal(m->data_end - m->data_offset, (off_t)sizeof(message) - 1);
	assert_string_equal(m->added, "");
	assert_string_equal(m->folder, "");
	size_t len;
	char *file = read_path(spool_path(f, "queue", e->id), &len);
	assert_int_equal(len, (size_t)m->data_end + 4);
	assert_memory_equal(file + m->data_offset, message, sizeof(message) - 1);
	assert_string_equal(file + m->data_end, "end\n");
	free(file);
	close(lfd);
	spool_message_free(&m);

	/* Delivered exactly as before issue 4: trace fields, then the message. */
	assert_int_equal(deliver(f, e->id), DELIVERY_DONE);
	char *got;
	assert_int_equal(maildir_files(f, "new", &got, &len), 1);
	char expect[1024];
	int n = snprintf(expect, sizeof(expect),
	    "Return-Path: <alice@example.net>\nDelivered-To: bob@example.org\n%s", message_lf);
	assert_int_equal(len, (size_t)n);
	assert_memory_equal(got, expect, len);
	free(got);
	struct stat st;
	char junk[256];
	snprintf(junk, sizeof(junk), "%s/example.org/bob/Maildir/.Junk", f->mail_dir);
	assert_int_equal(stat(junk, &st), -1);      /* no folder made for nothing */
	assert_int_equal(stat(spool_path(f, "queue", e->id), &st), -1);
	envelope_free(&e);
}

static void
test_commit_added_junk(void **state)
{
	struct fixture *f = *state;
	struct envelope *e = make_envelope();
	struct spool_message *m = NULL;
	const char *error;
	int fd = spool_start(f, e), lfd;
	off_t data_offset = lseek(fd, 0, SEEK_CUR) - (off_t)sizeof(message) + 1;

	const struct spool_commit_info info = { .data_size = sizeof(message) - 1,
		.added = ar, .added_len = sizeof(ar) - 1, .folder = "Junk" };
	assert_int_equal(spool_commit_with(f->s, e->id, fd, &info, &error), 0);
	close(fd);

	/* The file: data-end in place, the message untouched, the trailer after. */
	size_t len;
	char *file = read_path(spool_path(f, "queue", e->id), &len);
	off_t data_end = data_offset + (off_t)sizeof(message) - 1;
	char hex[17];
	snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)data_end);
	assert_memory_equal(file, "RAMPART-SPOOL 2\ndata-end ", SPOOL_DATA_END_AT);
	assert_memory_equal(file + SPOOL_DATA_END_AT, hex, 16);
	assert_memory_equal(file + data_offset, message, sizeof(message) - 1);
	assert_string_equal(file + data_end,
	    "folder Junk\n"
	    "added Authentication-Results:%20mx.example.org;%0D%0A%09spf=fail%20"
	    "smtp.mailfrom=example.net;%0D%0A%09dkim=none;%0D%0A%09dmarc=fail%20"
	    "(p=quarantine)%20header.from=example.net%0D%0A\n"
	    "end\n");
	free(file);

	assert_int_equal(spool_load_message(f->s, e->id, &m, &lfd, &error), 0);
	assert_int_equal(m->version, 2);
	assert_int_equal(m->data_offset, data_offset);
	assert_int_equal(m->data_end, data_end);
	assert_int_equal(m->added_len, sizeof(ar) - 1);
	assert_string_equal(m->added, ar);
	assert_string_equal(m->folder, "Junk");
	assert_int_equal(lseek(lfd, 0, SEEK_CUR), data_offset);
	close(lfd);
	spool_message_free(&m);

	/* The old loader still gives the envelope and the data offset. */
	struct envelope *l = NULL;
	off_t off;
	assert_int_equal(spool_load(f->s, e->id, &l, &off, NULL, &error), 0);
	assert_int_equal(off, data_offset);
	assert_string_equal(l->id, e->id);
	envelope_free(&l);

	/* `rampart queue list`: the size of the data alone, and the folder. */
	char *out = NULL;
	size_t outlen = 0;
	FILE *mem = open_memstream(&out, &outlen);
	assert_int_equal(queue_admin_list(f->spool_dir, mem, &error), 0);
	fclose(mem);
	char want[256];
	snprintf(want, sizeof(want), "%9zu  <alice@example.net>  to folder Junk\n", sizeof(message) - 1);
	if (strstr(out, want) == NULL)
		fail_msg("queue list:\n%s\nlacks: %s", out, want);
	assert_non_null(strstr(out, "1 message in the queue"));
	free(out);

	/* Delivery: into .Junk (Maildir++, with its marker), the fields first. */
	assert_int_equal(deliver(f, e->id), DELIVERY_DONE);
	assert_int_equal(maildir_files(f, "new", NULL, NULL), 0);
	char *got;
	assert_int_equal(maildir_files(f, ".Junk/new", &got, &len), 1);
	char expect[2048];
	int n = snprintf(expect, sizeof(expect),
	    "Return-Path: <alice@example.net>\nDelivered-To: bob@example.org\n%s%s", ar_lf, message_lf);
	assert_int_equal(len, (size_t)n);
	assert_memory_equal(got, expect, len);
	free(got);
	assert_int_equal(maildir_files(f, ".Junk/cur", NULL, NULL), 0);
	assert_int_equal(maildir_files(f, ".Junk/tmp", NULL, NULL), 0);
	char marker[256];
	struct stat st;
	snprintf(marker, sizeof(marker), "%s/example.org/bob/Maildir/.Junk/maildirfolder", f->mail_dir);
	assert_int_equal(stat(marker, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, 0);
	snprintf(marker, sizeof(marker), "%s/example.org/bob/Maildir/.Junk", f->mail_dir);
	assert_int_equal(stat(marker, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(stat(spool_path(f, "queue", e->id), &st), -1);
	envelope_free(&e);
}

/* The largest added text goes through the spool and into the Maildir whole. */
static void
test_commit_added_max(void **state)
{
	struct fixture *f = *state;
	struct envelope *e = make_envelope();
	struct spool_message *m = NULL;
	const char *error;
	char *big = malloc(QUEUE_ADDED_MAX);
	/* Lines "X-N: %%% ...\r\n" of 80 octets, the worst case for escaping
	 * ('%' takes three bytes), the last one shorter. */
	size_t n = 0, lines = 0;
	for (; n < QUEUE_ADDED_MAX; lines++) {
		size_t line = QUEUE_ADDED_MAX - n >= 160 ? 80 : QUEUE_ADDED_MAX - n;
		memset(big + n, '%', line - 2);
		memcpy(big + n, "X-N:", 4);
		memcpy(big + n + line - 2, "\r\n", 2);
		n += line;
	}
	assert_int_equal(queue_added_check(big, QUEUE_ADDED_MAX, &error), 0);
	int fd = spool_start(f, e);
	const struct spool_commit_info info = { .data_size = sizeof(message) - 1,
		.added = big, .added_len = QUEUE_ADDED_MAX };
	assert_int_equal(spool_commit_with(f->s, e->id, fd, &info, &error), 0);
	close(fd);
	assert_int_equal(spool_load_message(f->s, e->id, &m, NULL, &error), 0);
	assert_int_equal(m->added_len, QUEUE_ADDED_MAX);
	assert_memory_equal(m->added, big, QUEUE_ADDED_MAX);
	assert_string_equal(m->folder, "");
	spool_message_free(&m);
	assert_int_equal(deliver(f, e->id), DELIVERY_DONE);
	char *got;
	size_t len;
	assert_int_equal(maildir_files(f, "new", &got, &len), 1);
	/* Each CRLF became LF. */
	assert_int_equal(len, strlen("Return-Path: <alice@example.net>\nDelivered-To: bob@example.org\n") +
	    QUEUE_ADDED_MAX - lines + sizeof(message_lf) - 1);
	assert_memory_equal(got + len - (sizeof(message_lf) - 1), message_lf, sizeof(message_lf) - 1);
	free(got);
	free(big);
	envelope_free(&e);
}

static void
test_commit_refused(void **state)
{
	struct fixture *f = *state;
	struct envelope *e = make_envelope();
	const char *error;
	struct stat st;
	int fd = spool_start(f, e);

	/* The front says it wrote something else than the file holds. */
	struct spool_commit_info info = { .data_size = sizeof(message) - 2 };
	assert_int_equal(spool_commit_with(f->s, e->id, fd, &info, &error), -1);
	assert_int_equal(errno, EBADMSG);
	assert_non_null(strstr(error, e->id));
	info.data_size = sizeof(message);
	assert_int_equal(spool_commit_with(f->s, e->id, fd, &info, &error), -1);
	assert_int_equal(errno, EBADMSG);
	/* Bad fields, bad folder. */
	info = (struct spool_commit_info){ .data_size = sizeof(message) - 1,
		.added = "A: b\n", .added_len = 5 };
	assert_int_equal(spool_commit_with(f->s, e->id, fd, &info, &error), -1);
	assert_int_equal(errno, EINVAL);
	info = (struct spool_commit_info){ .data_size = sizeof(message) - 1, .folder = "../../x" };
	assert_int_equal(spool_commit_with(f->s, e->id, fd, &info, &error), -1);
	assert_int_equal(errno, EINVAL);
	/* None of that touched the file: still uncommitted, in incoming/. */
	assert_int_equal(stat(spool_path(f, "incoming", e->id), &st), 0);
	assert_int_equal(st.st_size, lseek(fd, 0, SEEK_END));
	char digits[16];
	assert_int_equal(pread(fd, digits, 16, SPOOL_DATA_END_AT), 16);
	assert_memory_equal(digits, "0000000000000000", 16);
	assert_int_equal(stat(spool_path(f, "queue", e->id), &st), -1);

	/* Now right; then a second commit of the same file is refused. */
	info = (struct spool_commit_info){ .data_size = sizeof(message) - 1, .folder = "Junk" };
	assert_int_equal(spool_commit_with(f->s, e->id, fd, &info, &error), 0);
	assert_int_equal(spool_commit_with(f->s, e->id, fd, &info, &error), -1);
	assert_int_equal(errno, ENOENT);
	close(fd);

	/* A file in incoming/ whose data-end is already set (a commit that failed
	 * at its rename) cannot be committed again. */
	struct envelope *e2 = make_envelope();
	fd = spool_start(f, e2);
	assert_int_equal(pwrite(fd, "00000000000000ff", 16, SPOOL_DATA_END_AT), 16);
	assert_int_equal(spool_commit(f->s, e2->id, fd, &error), -1);
	assert_int_equal(errno, EINVAL);
	/* Neither can a version-1 file there (only spool_create makes files). */
	char *file;
	size_t len;
	file = read_path(spool_path(f, "incoming", e2->id), &len);
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(pwrite(fd, "RAMPART-SPOOL 1\n", 16, 0), 16);
	assert_int_equal(pwrite(fd, file + 42, len - 42, 16), (ssize_t)(len - 42));
	free(file);
	assert_int_equal(spool_commit(f->s, e2->id, fd, &error), -1);
	assert_int_equal(spool_abort(f->s, e2->id, &error), 0);
	close(fd);
	envelope_free(&e2);
	envelope_free(&e);
}

/* ------------------------------------------------------------ version 1 */

#define ID "0006157a3b2c4d5e9f8a7b6c"
#define ENVELOPE_LINES "id " ID "\nreceived 1712345678\nfrom alice@example.net\n" \
	"body 7BIT\nsmtputf8 0\nret NONE\nsize 0\nhelo h\nclient 192.0.2.7\nport 25\n" \
	"listener mx\nrcpt P address=bob@example.org mailbox=bob@example.org\n\n"
#define V1 "RAMPART-SPOOL 1\n" ENVELOPE_LINES
/* A version-2 head with data-end as given (16 hex digits). */
#define V2(de) "RAMPART-SPOOL 2\ndata-end " de "\n" ENVELOPE_LINES

static void
test_version1(void **state)
{
	struct fixture *f = *state;
	struct spool_message *m = NULL;
	const char *error;
	char text[1024];
	int lfd;

	/* Spooled before the upgrade: the data runs to the end of the file, and
	 * "end\n" at its end is message data, not a trailer. */
	int n = snprintf(text, sizeof(text), "%s%send\n", V1, message);
	write_path(spool_path(f, "queue", ID), text, (size_t)n);
	assert_int_equal(spool_load_message(f->s, ID, &m, &lfd, &error), 0);
	assert_int_equal(m->version, 1);
	assert_int_equal(m->data_offset, sizeof(V1) - 1);
	assert_int_equal(m->data_end, n);
	assert_string_equal(m->added, "");
	assert_string_equal(m->folder, "");
	close(lfd);
	spool_message_free(&m);

	char *out = NULL;
	size_t outlen = 0;
	FILE *mem = open_memstream(&out, &outlen);
	assert_int_equal(queue_admin_list(f->spool_dir, mem, &error), 0);
	fclose(mem);
	char want[128];
	snprintf(want, sizeof(want), "%9zu  <alice@example.net>\n", sizeof(message) - 1 + 4);
	assert_non_null(strstr(out, want));
	free(out);

	assert_int_equal(deliver(f, ID), DELIVERY_DONE);
	char *got;
	size_t len;
	assert_int_equal(maildir_files(f, "new", &got, &len), 1);
	char expect[1024];
	n = snprintf(expect, sizeof(expect),
	    "Return-Path: <alice@example.net>\nDelivered-To: bob@example.org\n%send\n", message_lf);
	assert_int_equal(len, (size_t)n);
	assert_memory_equal(got, expect, len);
	free(got);
}

/* ------------------------------------------------------------ corruption */

/* Writes head + message + tail as queue/ID; expects the load to refuse it
 * (EBADMSG) and the delivery to leave it alone, delivering nothing. */
static void
assert_refused(struct fixture *f, const char *head, const char *tail, size_t tail_len)
{
	char text[4096];
	struct spool_message *m = NULL;
	const char *error = NULL;
	size_t n = strlen(head);
	memcpy(text, head, n);
	memcpy(text + n, message, sizeof(message) - 1);
	n += sizeof(message) - 1;
	memcpy(text + n, tail, tail_len);
	n += tail_len;
	write_path(spool_path(f, "queue", ID), text, n);
	int fd = 12345;
	if (spool_load_message(f->s, ID, &m, &fd, &error) == 0)
		fail_msg("accepted:\n%s...%.*s", head, (int)tail_len, tail);
	assert_int_equal(errno, EBADMSG);
	assert_null(m);
	assert_int_equal(fd, -1);
	assert_non_null(error);
	assert_int_equal(deliver(f, ID), DELIVERY_GONE);
	assert_true(maildir_files(f, "new", NULL, NULL) <= 0);
	assert_true(maildir_files(f, ".Junk/new", NULL, NULL) <= 0);
	struct stat st;
	assert_int_equal(stat(spool_path(f, "queue", ID), &st), 0);   /* left for the operator */
}

#define S(x) x, sizeof(x) - 1

static void
test_corrupt(void **state)
{
	struct fixture *f = *state;
	char good_de[17], de[17];
	/* data-end of a V2 head followed by message. */
	size_t data_end = sizeof(V2("0000000000000000")) - 1 + sizeof(message) - 1;
	snprintf(good_de, sizeof(good_de), "%016zx", data_end);

	/* The valid file first, so that each case below fails for its reason. */
	char head[1024];
	snprintf(head, sizeof(head), "RAMPART-SPOOL 2\ndata-end %s\n%s", good_de, ENVELOPE_LINES);
	char text[4096];
	int n = snprintf(text, sizeof(text), "%s%sfolder Junk\nadded A:%%20b%%0D%%0A\nend\n", head, message);
	write_path(spool_path(f, "queue", ID), text, (size_t)n);
	struct spool_message *m = NULL;
	const char *error;
	assert_int_equal(spool_load_message(f->s, ID, &m, NULL, &error), 0);
	assert_string_equal(m->added, "A: b\r\n");
	assert_string_equal(m->folder, "Junk");
	assert_int_equal(m->data_end, data_end);
	spool_message_free(&m);

	/* data-end: zero (never committed), before the data, past the end, not
	 * where the trailer is, badly written. */
	static const char *const bad_de[] = { "0000000000000000", "0000000000000001",
		"00000000000000ff", "ffffffffffffffff", "8000000000000000" };
	for (size_t i = 0; i < sizeof(bad_de) / sizeof(bad_de[0]); i++) {
		snprintf(head, sizeof(head), "RAMPART-SPOOL 2\ndata-end %s\n%s", bad_de[i], ENVELOPE_LINES);
		assert_refused(f, head, S("end\n"));
	}
	snprintf(de, sizeof(de), "%016zx", data_end + 1);
	snprintf(head, sizeof(head), "RAMPART-SPOOL 2\ndata-end %s\n%s", de, ENVELOPE_LINES);
	assert_refused(f, head, S("end\n"));       /* trailer "nd\n" */
	snprintf(de, sizeof(de), "%016zx", data_end - 1);
	snprintf(head, sizeof(head), "RAMPART-SPOOL 2\ndata-end %s\n%s", de, ENVELOPE_LINES);
	assert_refused(f, head, S("end\n"));       /* trailer "\nend\n" */
	/* prefix + the first digits of the right value + suffix. */
	static const struct { const char *prefix; int digits; const char *suffix; } bad_forms[] = {
		{ "data-end ", 15, "" }, { "data-end ", 16, "0" }, { "data-end  ", 15, "" },
		{ "data-end\t", 16, "" }, { "data-end ", 16, " " }, { "data_end ", 16, "" },
		{ "data-end 0x", 14, "" }, { "data-end +", 15, "" }, { "Data-End ", 16, "" },
	};
	for (size_t i = 0; i < sizeof(bad_forms) / sizeof(bad_forms[0]); i++) {
		snprintf(head, sizeof(head), "RAMPART-SPOOL 2\n%s%.*s%s\n%s", bad_forms[i].prefix,
		    bad_forms[i].digits, good_de, bad_forms[i].suffix, ENVELOPE_LINES);
		assert_refused(f, head, S("end\n"));
	}
	/* Upper-case hex. */
	snprintf(head, sizeof(head), "RAMPART-SPOOL 2\ndata-end %s\n%s", "00000000000000AB", ENVELOPE_LINES);
	assert_refused(f, head, S("end\n"));
	/* Missing, or not the second line. */
	snprintf(head, sizeof(head), "RAMPART-SPOOL 2\n%s", ENVELOPE_LINES);
	assert_refused(f, head, S("end\n"));
	snprintf(head, sizeof(head), "RAMPART-SPOOL 2\nid " ID "\ndata-end %s\n%s", good_de,
	    &ENVELOPE_LINES[strlen("id " ID "\n")]);
	assert_refused(f, head, S("end\n"));
	/* In a version-1 file, data-end is an unknown field. */
	snprintf(head, sizeof(head), "RAMPART-SPOOL 1\ndata-end %s\n%s", good_de, ENVELOPE_LINES);
	assert_refused(f, head, S("end\n"));

	/* The trailer. */
	snprintf(head, sizeof(head), "RAMPART-SPOOL 2\ndata-end %s\n%s", good_de, ENVELOPE_LINES);
	static const struct { const char *t; size_t len; } bad_trailers[] = {
		{ S("") }, { S("end") }, { S("en") }, { S("end\n\n") }, { S("end\nend\n") },
		{ S("end\r\n") }, { S("END\n") }, { S(" end\n") }, { S("end \n") },
		{ S("\nend\n") }, { S("folder Junk\n") }, { S("folder Junk\nend") },
		{ S("folder Junk\nfolder Junk\nend\n") }, { S("folder Spam\nend\n") },
		{ S("folder junk\nend\n") }, { S("folder ..%2FJunk\nend\n") }, { S("folder\nend\n") },
		{ S("folder \nend\n") }, { S("folder  Junk\nend\n") }, { S("colour red\nend\n") },
		{ S("added\nend\n") }, { S("added \nend\n") }, { S("added A:%20b\nend\n") },
		{ S("added A:%20b%0A\nend\n") }, { S("added A: b%0D%0A\nend\n") },
		{ S("added A:%20b%0d%0a\nend\n") }, { S("added A:%20b%0D%0A%0D%0A\nend\n") },
		{ S("added %20A:%20b%0D%0A\nend\n") }, { S("added A:%20b%00%0D%0A\nend\n") },
		{ S("added A:%20b%0D%0A\nadded A:%20b%0D%0A\nend\n") }, { S("added A%3A%20b%0D%0A\nend\n") },
		{ S("end\nfolder Junk\n") }, { S("fol\0der Junk\nend\n") }, { S("end\0\n") },
		{ S("folder Junk\nend\nx") },
	};
	for (size_t i = 0; i < sizeof(bad_trailers) / sizeof(bad_trailers[0]); i++)
		assert_refused(f, head, bad_trailers[i].t, bad_trailers[i].len);
	/* Too long a trailer (beyond SPOOL_TRAILER_MAX): refused before reading it. */
	n = snprintf(text, sizeof(text), "%s%sadded ", head, message);
	size_t whole_len = (size_t)n + SPOOL_TRAILER_MAX + 16;
	char *whole = malloc(whole_len);
	memcpy(whole, text, (size_t)n);
	memset(whole + n, 'x', whole_len - (size_t)n);
	memcpy(whole + whole_len - 4, "end\n", 4);
	write_path(spool_path(f, "queue", ID), whole, whole_len);
	assert_int_equal(spool_load_message(f->s, ID, &m, NULL, &error), -1);
	assert_int_equal(errno, EBADMSG);
	assert_non_null(strstr(error, "too long"));
	free(whole);

	/* The valid order the other way round, and nothing but "end", load. */
	n = snprintf(text, sizeof(text), "%s%sadded A:%%20b%%0D%%0A\nfolder Junk\nend\n", head, message);
	write_path(spool_path(f, "queue", ID), text, (size_t)n);
	assert_int_equal(spool_load_message(f->s, ID, &m, NULL, &error), 0);
	spool_message_free(&m);
	n = snprintf(text, sizeof(text), "%s%send\n", head, message);
	write_path(spool_path(f, "queue", ID), text, (size_t)n);
	assert_int_equal(spool_load_message(f->s, ID, &m, NULL, &error), 0);
	assert_string_equal(m->added, "");
	spool_message_free(&m);
}

/* Every truncation of a committed file with a trailer is refused; every byte
 * mutation of its envelope and trailer is refused or yields a message that
 * obeys every rule. */
static void
test_truncate_and_mutate(void **state)
{
	struct fixture *f = *state;
	struct envelope *e = make_envelope();
	struct spool_message *m = NULL;
	const char *error;
	int fd = spool_start(f, e);
	const struct spool_commit_info info = { .data_size = sizeof(message) - 1,
		.added = ar, .added_len = sizeof(ar) - 1, .folder = "Junk" };
	assert_int_equal(spool_commit_with(f->s, e->id, fd, &info, &error), 0);
	close(fd);
	assert_int_equal(spool_load_message(f->s, e->id, &m, NULL, &error), 0);
	off_t data_offset = m->data_offset, data_end = m->data_end;
	spool_message_free(&m);
	size_t total;
	char *text = read_path(spool_path(f, "queue", e->id), &total);
	for (size_t n = 0; n < total; n++) {
		write_path(spool_path(f, "queue", e->id), text, n);
		assert_int_equal(spool_load_message(f->s, e->id, &m, NULL, &error), -1);
		assert_int_equal(errno, EBADMSG);
	}
	static const char values[] = { '\0', '\n', ' ', '%', 'x', '0', 'J', (char)0xff };
	for (size_t i = 0; i < total; i++) {
		if (i == (size_t)data_offset)
			i = (size_t)data_end;   /* the data itself is opaque */
		char saved = text[i];
		for (size_t v = 0; v < sizeof(values); v++) {
			text[i] = values[v];
			write_path(spool_path(f, "queue", e->id), text, total);
			if (spool_load_message(f->s, e->id, &m, NULL, &error) == 0) {
				assert_int_equal(envelope_check(m->envelope, &error), 0);
				assert_int_equal(queue_added_check(m->added, m->added_len, &error), 0);
				assert_true(queue_folder_valid(m->folder));
				assert_true(m->data_offset <= m->data_end && m->data_end < (off_t)total);
				spool_message_free(&m);
			} else {
				assert_null(m);
			}
		}
		text[i] = saved;
	}
	free(text);
	envelope_free(&e);
}

/* ------------------------------------------------------------ crashes */

static int
count_id(const char *id, void *ctx)
{
	(void)id;
	(*(int *)ctx)++;
	return 0;
}

/* A crash before the rename leaves the file in incoming/ only, whatever was
 * written: start-up removes it and nothing is ever delivered. */
static void
test_crash(void **state)
{
	struct fixture *f = *state;
	struct envelope *e1 = make_envelope(), *e2 = make_envelope();
	const char *error;

	/* 1: the data is written, no commit began (data-end zero). */
	int fd1 = spool_start(f, e1);
	/* 2: a commit wrote its trailer and data-end, then the process died before
	 * the rename (simulated: the same writes by hand). */
	int fd2 = spool_start(f, e2);
	off_t end = lseek(fd2, 0, SEEK_END);
	char de[17];
	snprintf(de, sizeof(de), "%016llx", (unsigned long long)end);
	assert_int_equal(pwrite(fd2, "folder Junk\nend\n", 16, end), 16);
	assert_int_equal(pwrite(fd2, de, 16, SPOOL_DATA_END_AT), 16);
	close(fd1);
	close(fd2);
	spool_close(&f->s);

	/* Restart: what the queue process does first. */
	assert_int_equal(spool_open(f->spool_dir, &f->s, &error), 0);
	assert_int_equal(spool_clean_incoming(f->s, &error), 2);
	struct stat st;
	assert_int_equal(stat(spool_path(f, "incoming", e1->id), &st), -1);
	assert_int_equal(stat(spool_path(f, "incoming", e2->id), &st), -1);
	int count = 0;
	assert_int_equal(spool_list(f->s, count_id, &count, &error), 0);
	assert_int_equal(count, 0);
	assert_int_equal(deliver(f, e1->id), DELIVERY_GONE);
	assert_int_equal(deliver(f, e2->id), DELIVERY_GONE);
	assert_int_equal(maildir_files(f, "new", NULL, NULL), -1);

	/* 3: a file in queue/ with data-end zero cannot come from a commit (the
	 * fsync precedes the rename); should one appear, it is refused and never
	 * delivered, not taken to run to the end of the file. */
	struct envelope *e3 = make_envelope();
	int fd3 = spool_start(f, e3);
	close(fd3);
	assert_int_equal(rename(spool_path(f, "incoming", e3->id), spool_path(f, "queue", e3->id)), 0);
	struct spool_message *m = NULL;
	assert_int_equal(spool_load_message(f->s, e3->id, &m, NULL, &error), -1);
	assert_int_equal(errno, EBADMSG);
	assert_non_null(strstr(error, "never committed"));
	assert_int_equal(deliver(f, e3->id), DELIVERY_GONE);
	assert_int_equal(maildir_files(f, "new", NULL, NULL), -1);

	envelope_free(&e1);
	envelope_free(&e2);
	envelope_free(&e3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_added_check),
		cmocka_unit_test(test_ref_codec),
		cmocka_unit_test_setup_teardown(test_commit_plain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_added_junk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_added_max, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_version1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncate_and_mutate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
