/*
 * Unit tests for spool: ids, the create -> write -> commit -> load -> mark ->
 * reload cycle, the file format (exact bytes of version 2, strict parsing of
 * corrupt files in version 1 and 2, every truncation and byte mutation),
 * listing, cleaning, error reporting, and holding (hold/, release, list_held). Each test runs in its own temporary
 * directory. What a commit adds (trailer, folder) is in test-spool-added.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue/spool.h"
#include "test-tmpdir.h"

struct fixture {
	char dir[64];
	struct spool *s;
};

static const char message[] = "Subject: test\r\nFrom: <alice@example.org>\r\n\r\nHello.\r\n";

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *error;
	snprintf(f->dir, sizeof(f->dir), "/tmp/rampart-spool-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	char path[128];
	snprintf(path, sizeof(path), "%s/spool", f->dir);
	assert_int_equal(spool_open(path, &f->s, &error), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	spool_close(&f->s);
	assert_null(f->s);
	chmod(f->dir, 0700);
	test_rm_tree(f->dir);
	free(f);
	return 0;
}

static struct envelope *
make_envelope(void)
{
	struct envelope *e = envelope_new();
	assert_non_null(e);
	envelope_set_str(&e->mail_from, "");   /* null sender */
	e->body = ENVELOPE_BODY_8BITMIME;
	e->smtputf8 = true;
	e->ret = ENVELOPE_RET_FULL;
	envelope_set_str(&e->envid, "id with space%and percent");
	e->size_declared = 4096;
	envelope_set_str(&e->helo, "[192.0.2.7]");
	envelope_set_str(&e->client_addr, "192.0.2.7");
	e->client_port = 65535;
	envelope_set_str(&e->listener, "mx");
	e->received_at = 1712345678;
	envelope_add_rcpt(e, "bob@example.org", "bob@example.org", "rfc822;bob@example.org",
	    ENVELOPE_NOTIFY_FAILURE | ENVELOPE_NOTIFY_DELAY);
	envelope_add_rcpt(e, "list@example.org", "carol@example.org", NULL, 0);
	envelope_add_rcpt(e, "list@example.org", "d\xc3\xa9ve@example.org", NULL, ENVELOPE_NOTIFY_NEVER);
	envelope_add_rcpt(e, "\"odd local\"@example.net", NULL, "", ENVELOPE_NOTIFY_SUCCESS);
	return e;
}

static void
write_message(int fd)
{
	assert_int_equal(write(fd, message, sizeof(message) - 1), (ssize_t)(sizeof(message) - 1));
}

/* Creates, writes and commits a message; returns its envelope. */
static struct envelope *
spool_one(struct spool *s)
{
	struct envelope *e = make_envelope();
	const char *error;
	int fd;
	assert_int_equal(spool_create(s, e, &fd, &error), 0);
	write_message(fd);
	assert_int_equal(spool_commit(s, e->id, fd, &error), 0);
	close(fd);
	return e;
}

static bool
exists(struct fixture *f, const char *sub, const char *id)
{
	char path[256];
	struct stat st;
	snprintf(path, sizeof(path), "%s/spool/%s/%s", f->dir, sub, id);
	return stat(path, &st) == 0;
}

static void
test_ids(void **state)
{
	(void)state;
	char prev[SPOOL_ID_LEN + 1] = "", id[SPOOL_ID_LEN + 1];
	for (int i = 0; i < 1000; i++) {
		spool_id_generate(id);
		assert_int_equal(strlen(id), SPOOL_ID_LEN);
		assert_true(spool_id_valid(id));
		assert_string_not_equal(id, prev);
		/* The time part never goes backwards. */
		assert_true(strncmp(prev, id, 16) <= 0);
		memcpy(prev, id, sizeof(id));
	}
	assert_false(spool_id_valid(NULL));
	assert_false(spool_id_valid(""));
	assert_false(spool_id_valid("0006157a3b2c4d5e9f8a7b6"));
	assert_false(spool_id_valid("0006157a3b2c4d5e9f8a7b6c0"));
	assert_false(spool_id_valid("0006157A3B2C4D5E9F8A7B6C"));
	assert_false(spool_id_valid("../../../../etc/passwd.."));
}

static void
test_cycle(void **state)
{
	struct fixture *f = *state;
	struct envelope *e = make_envelope(), *l = NULL;
	const char *error;
	off_t data_offset;
	int fd, lfd;
	char buf[256];

	assert_int_equal(spool_create(f->s, e, &fd, &error), 0);
	assert_true(spool_id_valid(e->id));
	assert_true(exists(f, "incoming", e->id));
	off_t start = lseek(fd, 0, SEEK_CUR);
	/* Not committed yet: data-end is zero, at its fixed place. */
	assert_int_equal(pread(fd, buf, 16, SPOOL_DATA_END_AT), 16);
	assert_memory_equal(buf, "0000000000000000", 16);
	write_message(fd);
	assert_false(exists(f, "queue", e->id));
	assert_int_equal(spool_commit(f->s, e->id, fd, &error), 0);
	close(fd);
	assert_false(exists(f, "incoming", e->id));
	assert_true(exists(f, "queue", e->id));

	assert_int_equal(spool_load(f->s, e->id, &l, &data_offset, &lfd, &error), 0);
	assert_int_equal(data_offset, start);
	assert_string_equal(l->id, e->id);
	assert_string_equal(l->mail_from, "");
	assert_int_equal(l->body, ENVELOPE_BODY_8BITMIME);
	assert_true(l->smtputf8);
	assert_int_equal(l->ret, ENVELOPE_RET_FULL);
	assert_string_equal(l->envid, "id with space%and percent");
	assert_int_equal(l->size_declared, 4096);
	assert_string_equal(l->helo, "[192.0.2.7]");
	assert_string_equal(l->client_addr, "192.0.2.7");
	assert_int_equal(l->client_port, 65535);
	assert_string_equal(l->listener, "mx");
	assert_null(l->auth_user);
	assert_int_equal(l->received_at, 1712345678);
	assert_int_equal(l->rcpt_count, 4);
	for (size_t i = 0; i < 4; i++) {
		assert_string_equal(l->rcpts[i].address, e->rcpts[i].address);
		assert_int_equal(l->rcpts[i].notify, e->rcpts[i].notify);
		assert_int_equal(l->rcpts[i].status, ENVELOPE_RCPT_PENDING);
		assert_int_equal(l->rcpts[i].status_offset, e->rcpts[i].status_offset);
	}
	assert_string_equal(l->rcpts[0].orcpt, "rfc822;bob@example.org");
	assert_string_equal(l->rcpts[2].mailbox, "d\xc3\xa9ve@example.org");
	assert_null(l->rcpts[3].mailbox);
	assert_string_equal(l->rcpts[3].orcpt, "");
	assert_null(l->rcpts[1].orcpt);
	/* The fd is positioned at the data, which is exactly what was written, then
	 * the trailer (nothing added: "end" alone). */
	ssize_t n = read(lfd, buf, sizeof(buf));
	assert_int_equal(n, (ssize_t)(sizeof(message) - 1 + 4));
	assert_memory_equal(buf, message, sizeof(message) - 1);
	assert_memory_equal(buf + sizeof(message) - 1, "end\n", 4);
	close(lfd);
	struct spool_message *m = NULL;
	assert_int_equal(spool_load_message(f->s, e->id, &m, &lfd, &error), 0);
	assert_int_equal(m->version, 2);
	assert_int_equal(m->data_offset, start);
	assert_int_equal(m->data_end, start + (off_t)sizeof(message) - 1);
	assert_string_equal(m->added, "");
	assert_int_equal(m->added_len, 0);
	assert_string_equal(m->folder, "");
	assert_string_equal(m->envelope->id, e->id);
	assert_int_equal(lseek(lfd, 0, SEEK_CUR), start);
	close(lfd);
	spool_message_free(&m);
	assert_null(m);
	spool_message_free(&m);

	/* Mark with the loaded envelope, then reload: the statuses stuck. */
	assert_int_equal(spool_mark_rcpt(f->s, l, 1, ENVELOPE_RCPT_DONE, &error), 0);
	assert_int_equal(spool_mark_rcpt(f->s, l, 3, ENVELOPE_RCPT_FAILED, &error), 0);
	/* ...and with the envelope spool_create filled in. */
	assert_int_equal(spool_mark_rcpt(f->s, e, 0, ENVELOPE_RCPT_DONE, &error), 0);
	assert_int_equal(envelope_pending_count(l), 2);
	envelope_free(&l);
	assert_int_equal(spool_load(f->s, e->id, &l, NULL, NULL, &error), 0);
	assert_int_equal(l->rcpts[0].status, ENVELOPE_RCPT_DONE);
	assert_int_equal(l->rcpts[1].status, ENVELOPE_RCPT_DONE);
	assert_int_equal(l->rcpts[2].status, ENVELOPE_RCPT_PENDING);
	assert_int_equal(l->rcpts[3].status, ENVELOPE_RCPT_FAILED);

	/* Bad index, bad offset: refused, nothing written. */
	assert_int_equal(spool_mark_rcpt(f->s, l, 4, ENVELOPE_RCPT_DONE, &error), -1);
	assert_int_equal(errno, EINVAL);
	l->rcpts[2].status_offset += 1;
	assert_int_equal(spool_mark_rcpt(f->s, l, 2, ENVELOPE_RCPT_DONE, &error), -1);
	assert_int_equal(errno, EBADMSG);
	envelope_free(&l);
	assert_int_equal(spool_load(f->s, e->id, &l, NULL, NULL, &error), 0);
	assert_int_equal(l->rcpts[2].status, ENVELOPE_RCPT_PENDING);
	envelope_free(&l);

	assert_int_equal(spool_remove(f->s, e->id, &error), 0);
	assert_false(exists(f, "queue", e->id));
	assert_int_equal(spool_remove(f->s, e->id, &error), 0);
	assert_int_equal(spool_load(f->s, e->id, &l, NULL, NULL, &error), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(spool_error_class(errno), SPOOL_ERROR_PERMANENT);
	envelope_free(&e);
}

/* The file format is what spool.h documents, byte for byte. */
static void
test_format(void **state)
{
	struct fixture *f = *state;
	struct envelope *e = make_envelope();
	char path[256], buf[2048], expect[2048];
	envelope_set_str(&e->auth_user, "alice@example.org");
	envelope_set_str(&e->mail_from, "a%b@example.org");
	e->rcpt_count = 2;
	struct envelope *c = spool_one(f->s);
	envelope_free(&c);
	const char *error;
	int fd;
	assert_int_equal(spool_create(f->s, e, &fd, &error), 0);
	write_message(fd);
	assert_int_equal(spool_commit(f->s, e->id, fd, &error), 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/spool/queue/%s", f->dir, e->id);
	int rfd = open(path, O_RDONLY);
	ssize_t n = read(rfd, buf, sizeof(buf) - 1);
	close(rfd);
	assert_true(n > 0);
	buf[n] = '\0';
	snprintf(expect, sizeof(expect),
	    "RAMPART-SPOOL 2\ndata-end %016zx\nid %s\nreceived 1712345678\nfrom a%%25b@example.org\n"
	    "body 8BITMIME\nsmtputf8 1\nret FULL\nenvid id%%20with%%20space%%25and%%20percent\n"
	    "size 4096\nhelo [192.0.2.7]\nclient 192.0.2.7\nport 65535\nlistener mx\n"
	    "auth alice@example.org\n"
	    "rcpt P notify=FAILURE,DELAY address=bob@example.org mailbox=bob@example.org "
	    "orcpt=rfc822;bob@example.org\n"
	    "rcpt P address=list@example.org mailbox=carol@example.org\n\n%send\n",
	    (size_t)n - 4, e->id, message);
	assert_string_equal(buf, expect);
	assert_int_equal(e->rcpts[1].status_offset, strstr(buf, "rcpt P address=list") - buf + 5);
	e->rcpt_count = 4;
	envelope_free(&e);
}

/* Writes text as queue/<id> and expects spool_load to refuse it as corrupt. */
static void
assert_corrupt(struct fixture *f, const char *id, const char *text, size_t len)
{
	char path[256];
	struct envelope *e = NULL;
	const char *error = NULL;
	snprintf(path, sizeof(path), "%s/spool/queue/%s", f->dir, id);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	int r = spool_load(f->s, id, &e, NULL, NULL, &error);
	if (r == 0)
		fail_msg("accepted corrupt spool file:\n%.*s", (int)len, text);
	assert_null(e);
	assert_non_null(error);
	assert_true(errno == EBADMSG);
	assert_int_equal(spool_error_class(errno), SPOOL_ERROR_PERMANENT);
}

#define ID "0006157a3b2c4d5e9f8a7b6c"
#define HEAD "RAMPART-SPOOL 1\nid " ID "\nreceived 1\nfrom\nbody 7BIT\nsmtputf8 0\n" \
	"ret NONE\nsize 0\nhelo h\nclient c\nport 25\nlistener mx\n"

static void
test_corrupt(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = {
		"",
		"RAMPART-SPOOL 2\n",
		"RAMPART-SPOOL 1",
		HEAD,                                            /* no rcpt, no end */
		HEAD "\n",                                       /* no rcpt */
		HEAD "rcpt P address=a@b\n",                     /* no empty line */
		HEAD "rcpt P address=a@b",
		HEAD "rcpt X address=a@b\n\n",
		HEAD "rcpt  address=a@b\n\n",
		HEAD "rcpt P\n\n",
		HEAD "rcpt P \n\n",
		HEAD "rcpt P address=a@b \n\n",
		HEAD "rcpt P  address=a@b\n\n",
		HEAD "rcpt P address=\n\n",
		HEAD "rcpt P mailbox=a@b\n\n",
		HEAD "rcpt P address=a@b address=a@b\n\n",
		HEAD "rcpt P address=a@b colour=red\n\n",
		HEAD "rcpt P address=a@b mailbox=\n\n",
		HEAD "rcpt P address=a%zz@b\n\n",
		HEAD "rcpt P address=a%4\n\n",
		HEAD "rcpt P address=a%\n\n",
		HEAD "rcpt P address=%41@b\n\n",                 /* escaped needlessly */
		HEAD "rcpt P address=a%0a@b\n\n",                /* lower-case hex */
		HEAD "rcpt P address=a%00@b\n\n",
		HEAD "rcpt P address=a%0D@b\n\n",                /* CR in a value */
		HEAD "rcpt P address=a\r@b\n\n",
		HEAD "rcpt P address=a@b notify=\n\n",
		HEAD "rcpt P address=a@b notify=NEVER,SUCCESS\n\n",
		HEAD "rcpt P address=a@b notify=DELAY,DELAY\n\n",
		HEAD "rcpt P address=a@b notify=FAILURE,\n\n",
		HEAD "rcpt P address=a@b notify=sometimes\n\n",
		HEAD "rcpt P address=a@b\nauth x\n\n",           /* field after rcpt */
		HEAD "auth \nrcpt P address=a@b\n\n",
		HEAD "from x\nrcpt P address=a@b\n\n",           /* repeated */
		HEAD "colour red\nrcpt P address=a@b\n\n",
		"RAMPART-SPOOL 1\nid " ID "\nreceived 1\nfrom\nbody 7BIT\nsmtputf8 0\n"
		    "ret NONE\nsize 0\nhelo h\nclient c\nport 25\nrcpt P address=a@b\n\n",
		"RAMPART-SPOOL 1\nid 0006157a3b2c4d5e9f8a7b6d\nreceived 1\nfrom\nbody 7BIT\n"
		    "smtputf8 0\nret NONE\nsize 0\nhelo h\nclient c\nport 25\nlistener mx\n"
		    "rcpt P address=a@b\n\n",                    /* id mismatch */
		"RAMPART-SPOOL 1\nid " ID "\nreceived 01\nfrom\nbody 7BIT\nsmtputf8 0\n"
		    "ret NONE\nsize 0\nhelo h\nclient c\nport 25\nlistener mx\nrcpt P address=a@b\n\n",
		"RAMPART-SPOOL 1\nid " ID "\nreceived 1\nfrom\nbody 7BIT\nsmtputf8 2\n"
		    "ret NONE\nsize 0\nhelo h\nclient c\nport 25\nlistener mx\nrcpt P address=a@b\n\n",
		"RAMPART-SPOOL 1\nid " ID "\nreceived 1\nfrom\nbody 7BIT\nsmtputf8 0\n"
		    "ret NONE\nsize 0\nhelo h\nclient c\nport 65536\nlistener mx\nrcpt P address=a@b\n\n",
		"RAMPART-SPOOL 1\nid " ID "\nreceived 1\nfrom\nbody 7BIT\nsmtputf8 0\n"
		    "ret NONE\nsize 18446744073709551616\nhelo h\nclient c\nport 25\nlistener mx\n"
		    "rcpt P address=a@b\n\n",
		"RAMPART-SPOOL 1\nid " ID "\nreceived 1\nfrom\nbody BINARYMIME\nsmtputf8 0\n"
		    "ret NONE\nsize 0\nhelo h\nclient c\nport 25\nlistener mx\nrcpt P address=a@b\n\n",
		"RAMPART-SPOOL 1\nid " ID "\nreceived -1\nfrom\nbody 7BIT\nsmtputf8 0\n"
		    "ret NONE\nsize 0\nhelo h\nclient c\nport 25\nlistener mx\nrcpt P address=a@b\n\n",
		"RAMPART-SPOOL 1\r\nid " ID "\nreceived 1\nfrom\nbody 7BIT\nsmtputf8 0\n"
		    "ret NONE\nsize 0\nhelo h\nclient c\nport 25\nlistener mx\nrcpt P address=a@b\n\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_corrupt(f, ID, bad[i], strlen(bad[i]));

	/* A NUL inside a line. */
	static const char nul[] = HEAD "rcpt P address=a\0b\n\n";
	assert_corrupt(f, ID, nul, sizeof(nul) - 1);

	/* A line longer than SPOOL_MAX_LINE. */
	size_t biglen = sizeof(HEAD) + SPOOL_MAX_LINE + 64;
	char *big = malloc(biglen);
	int n = snprintf(big, biglen, HEAD "rcpt P address=");
	memset(big + n, 'a', SPOOL_MAX_LINE);
	memcpy(big + n + SPOOL_MAX_LINE, "@b\n\n", 4);
	assert_corrupt(f, ID, big, (size_t)n + SPOOL_MAX_LINE + 4);
	free(big);

	/* The minimal valid file loads (so the cases above fail for their reason). */
	static const char good[] = HEAD "rcpt P address=a@b\n\n";
	char path[256];
	struct envelope *e = NULL;
	const char *error;
	off_t off;
	snprintf(path, sizeof(path), "%s/spool/queue/%s", f->dir, ID);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_int_equal(write(fd, good, sizeof(good) - 1), (ssize_t)sizeof(good) - 1);
	close(fd);
	assert_int_equal(spool_load(f->s, ID, &e, &off, NULL, &error), 0);
	assert_int_equal(off, sizeof(good) - 1);
	envelope_free(&e);
	assert_int_equal(spool_load(f->s, "../queue/" ID, &e, &off, NULL, &error), -1);
	assert_int_equal(errno, EINVAL);
}

/* Every truncation of a real header is refused; every byte mutation is either
 * refused or yields an envelope that passes envelope_check. */
static void
test_truncate_and_mutate(void **state)
{
	struct fixture *f = *state;
	struct envelope *e = spool_one(f->s), *l = NULL;
	const char *error;
	char path[256];
	off_t data_offset;
	assert_int_equal(spool_load(f->s, e->id, &l, &data_offset, NULL, &error), 0);
	envelope_free(&l);
	snprintf(path, sizeof(path), "%s/spool/queue/%s", f->dir, e->id);
	char *text = malloc((size_t)data_offset + sizeof(message) + 8);
	int fd = open(path, O_RDONLY);
	ssize_t total = read(fd, text, (size_t)data_offset + sizeof(message) + 8);
	close(fd);
	assert_int_equal(total, data_offset + (off_t)sizeof(message) - 1 + 4);
	/* Version 2 knows where the data ends: any truncation at all is refused. */
	for (off_t n = 0; n < total; n++)
		assert_corrupt(f, e->id, text, (size_t)n);

	static const char values[] = { '\0', '\n', ' ', '%', 'x', '0', (char)0xff };
	for (off_t i = 0; i < total; i++) {
		if (i == data_offset)
			i = total - 4;      /* the data itself is opaque */
		char saved = text[i];
		for (size_t v = 0; v < sizeof(values); v++) {
			text[i] = values[v];
			fd = open(path, O_WRONLY | O_TRUNC);
			assert_int_equal(write(fd, text, (size_t)total), total);
			close(fd);
			if (spool_load(f->s, e->id, &l, NULL, NULL, &error) == 0) {
				assert_int_equal(envelope_check(l, &error), 0);
				envelope_free(&l);
			} else {
				assert_non_null(error);
			}
		}
		text[i] = saved;
	}
	free(text);
	envelope_free(&e);
}

static int
collect(const char *id, void *ctx)
{
	char (*ids)[8][SPOOL_ID_LEN + 1] = ctx;
	for (size_t i = 0; i < 8; i++) {
		if ((*ids)[i][0] == '\0') {
			memcpy((*ids)[i], id, SPOOL_ID_LEN + 1);
			return i == 1 ? 7 : 0;   /* stop after two when asked (see below) */
		}
	}
	return -1;
}

static void
test_list_and_clean(void **state)
{
	struct fixture *f = *state;
	struct envelope *e[3], *pending[2];
	const char *error;
	int fds[2];
	char ids[8][SPOOL_ID_LEN + 1];

	for (size_t i = 0; i < 3; i++) {
		e[i] = spool_one(f->s);
		usleep(2);
	}
	for (size_t i = 0; i < 2; i++) {
		pending[i] = make_envelope();
		assert_int_equal(spool_create(f->s, pending[i], &fds[i], &error), 0);
		write_message(fds[i]);
	}
	/* A stranger in queue/ is skipped. */
	char path[256];
	snprintf(path, sizeof(path), "%s/spool/queue/README", f->dir);
	close(open(path, O_WRONLY | O_CREAT, 0600));

	memset(ids, 0, sizeof(ids));
	assert_int_equal(spool_list(f->s, collect, &ids, &error), 1);   /* stopped */
	assert_string_equal(ids[0], e[0]->id);
	assert_string_equal(ids[1], e[1]->id);
	assert_string_equal(ids[2], "");
	memset(ids, 0, sizeof(ids));
	strcpy(ids[0], "x");
	strcpy(ids[1], "x");
	assert_int_equal(spool_list(f->s, collect, &ids, &error), 0);
	assert_string_equal(ids[2], e[0]->id);
	assert_string_equal(ids[3], e[1]->id);
	assert_string_equal(ids[4], e[2]->id);
	assert_string_equal(ids[5], "");

	/* Start-up: the two messages that never got 250 go, the rest stays. */
	assert_int_equal(spool_clean_incoming(f->s, &error), 2);
	assert_false(exists(f, "incoming", pending[0]->id));
	assert_false(exists(f, "incoming", pending[1]->id));
	assert_int_equal(spool_clean_incoming(f->s, &error), 0);
	for (size_t i = 0; i < 3; i++)
		assert_true(exists(f, "queue", e[i]->id));
	/* Committing a cleaned message fails. */
	assert_int_equal(spool_commit(f->s, pending[0]->id, fds[0], &error), -1);
	assert_int_equal(errno, ENOENT);
	for (size_t i = 0; i < 2; i++) {
		close(fds[i]);
		envelope_free(&pending[i]);
	}
	for (size_t i = 0; i < 3; i++)
		envelope_free(&e[i]);
}

static void
test_abort_and_errors(void **state)
{
	struct fixture *f = *state;
	struct envelope *e = make_envelope(), *o = make_envelope();
	const char *error;
	int fd, ofd;

	/* Abort. */
	assert_int_equal(spool_create(f->s, e, &fd, &error), 0);
	assert_int_equal(spool_abort(f->s, e->id, &error), 0);
	assert_false(exists(f, "incoming", e->id));
	assert_int_equal(spool_abort(f->s, e->id, &error), 0);
	close(fd);

	/* The fd must be the message's own. */
	assert_int_equal(spool_create(f->s, e, &fd, &error), 0);
	assert_int_equal(spool_create(f->s, o, &ofd, &error), 0);
	assert_int_equal(spool_commit(f->s, e->id, ofd, &error), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(spool_commit(f->s, "nope", fd, &error), -1);
	assert_int_equal(errno, EINVAL);

	/* queue/ has gone: commit fails, reports why, and the file stays in
	 * incoming/ for spool_abort. */
	char path[256];
	snprintf(path, sizeof(path), "%s/spool/queue", f->dir);
	assert_int_equal(rmdir(path), 0);
	assert_int_equal(spool_commit(f->s, e->id, fd, &error), -1);
	assert_int_equal(errno, ENOENT);
	assert_non_null(strstr(error, e->id));
	assert_true(exists(f, "incoming", e->id));
	assert_int_equal(spool_abort(f->s, e->id, &error), 0);
	close(fd);
	close(ofd);
	assert_int_equal(spool_abort(f->s, o->id, &error), 0);

	/* Not allowed to write there: only meaningful when not root. */
	assert_int_equal(mkdir(path, 0700), 0);
	struct spool *s2;
	snprintf(path, sizeof(path), "%s/spool", f->dir);
	assert_int_equal(spool_open(path, &s2, &error), 0);
	if (geteuid() != 0) {
		snprintf(path, sizeof(path), "%s/spool/queue", f->dir);
		assert_int_equal(spool_create(s2, e, &fd, &error), 0);
		assert_int_equal(chmod(path, 0500), 0);
		assert_int_equal(spool_commit(s2, e->id, fd, &error), -1);
		assert_int_equal(errno, EACCES);
		assert_int_equal(spool_error_class(EACCES), SPOOL_ERROR_TEMPORARY);
		assert_int_equal(chmod(path, 0700), 0);
		assert_true(exists(f, "incoming", e->id));
		assert_int_equal(spool_abort(s2, e->id, &error), 0);
		close(fd);
	}

	/* A write that fails (EFBIG from RLIMIT_FSIZE, even for root): nothing
	 * left in incoming/, the cause reported. */
	struct rlimit old, tiny = { 16, 16 };
	getrlimit(RLIMIT_FSIZE, &old);
	tiny.rlim_max = old.rlim_max;
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &tiny), 0);
	int r = spool_create(s2, e, &fd, &error);
	int err = errno;
	setrlimit(RLIMIT_FSIZE, &old);
	assert_int_equal(r, -1);
	assert_int_equal(err, EFBIG);
	assert_int_equal(fd, -1);
	assert_int_equal(spool_clean_incoming(s2, &error), 0);
	spool_close(&s2);

	/* An invalid envelope or none without recipients is refused. */
	o->rcpt_count = 0;
	assert_int_equal(spool_create(f->s, o, &fd, &error), -1);
	assert_int_equal(errno, EINVAL);
	o->rcpt_count = 4;
	o->helo[0] = '\n';
	assert_int_equal(spool_create(f->s, o, &fd, &error), -1);

	/* Opening a spool on a file. */
	snprintf(path, sizeof(path), "%s/file", f->dir);
	close(open(path, O_WRONLY | O_CREAT, 0600));
	assert_int_equal(spool_open(path, &s2, &error), -1);
	assert_null(s2);
	assert_int_equal(errno, ENOTDIR);

	assert_int_equal(spool_error_class(ENOSPC), SPOOL_ERROR_NO_SPACE);
	assert_int_equal(spool_error_class(EDQUOT), SPOOL_ERROR_NO_SPACE);
	assert_int_equal(spool_error_class(EIO), SPOOL_ERROR_NO_SPACE);
	assert_int_equal(spool_error_class(EAGAIN), SPOOL_ERROR_TEMPORARY);
	assert_int_equal(spool_error_class(EBADMSG), SPOOL_ERROR_PERMANENT);
	envelope_free(&e);
	envelope_free(&o);
}

/* ---- hold/ (rampart queue hold|release) ---- */

struct id_list {
	char ids[8][SPOOL_ID_LEN + 1];
	size_t n;
};

static int
collect_all(const char *id, void *ctx)
{
	struct id_list *l = ctx;
	assert_true(l->n < 8);
	memcpy(l->ids[l->n++], id, SPOOL_ID_LEN + 1);
	return 0;
}

/* The whole file sub/id into a new buffer. */
static char *
slurp(struct fixture *f, const char *sub, const char *id, size_t *len_r)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/spool/%s/%s", f->dir, sub, id);
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	char *buf = malloc(65536);
	assert_non_null(buf);
	*len_r = fread(buf, 1, 65536, fp);
	fclose(fp);
	return buf;
}

static void
test_hold_and_release(void **state)
{
	struct fixture *f = *state;
	struct envelope *e[3], *le = NULL;
	struct spool_message *m = NULL;
	enum spool_place place;
	struct id_list l;
	const char *error;
	char path[256];
	struct stat st;
	int fd;

	/* spool_open made hold/, private like the others. */
	snprintf(path, sizeof(path), "%s/spool/hold", f->dir);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);

	for (size_t i = 0; i < 3; i++) {
		e[i] = spool_one(f->s);
		usleep(2);
	}
	size_t before_len, after_len;
	char *before = slurp(f, "queue", e[1]->id, &before_len);

	/* Hold: the file moves, byte for byte, and only hold/ lists it. */
	assert_int_equal(spool_hold(f->s, e[1]->id, &error), 0);
	assert_false(exists(f, "queue", e[1]->id));
	assert_true(exists(f, "hold", e[1]->id));
	char *after = slurp(f, "hold", e[1]->id, &after_len);
	assert_int_equal(after_len, before_len);
	assert_memory_equal(after, before, before_len);
	free(after);
	memset(&l, 0, sizeof(l));
	assert_int_equal(spool_list(f->s, collect_all, &l, &error), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.ids[0], e[0]->id);
	assert_string_equal(l.ids[1], e[2]->id);
	memset(&l, 0, sizeof(l));
	assert_int_equal(spool_list_held(f->s, collect_all, &l, &error), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.ids[0], e[1]->id);

	/* Where it is; loading it from the right place only. */
	assert_int_equal(spool_locate(f->s, e[1]->id, &place, &error), 0);
	assert_int_equal(place, SPOOL_HELD);
	assert_int_equal(spool_locate(f->s, e[0]->id, &place, &error), 0);
	assert_int_equal(place, SPOOL_QUEUED);
	assert_int_equal(spool_load_message(f->s, e[1]->id, &m, NULL, &error), -1);
	assert_int_equal(errno, ENOENT);
	assert_non_null(strstr(error, "queue/"));
	assert_null(m);
	assert_int_equal(spool_load_message_in(f->s, SPOOL_QUEUED, e[1]->id, &m, NULL, &error), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(spool_load_message_in(f->s, SPOOL_HELD, e[1]->id, &m, &fd, &error), 0);
	assert_string_equal(m->envelope->id, e[1]->id);
	assert_int_equal(m->envelope->rcpt_count, 4);
	assert_int_equal(m->data_end - m->data_offset, (off_t)(sizeof(message) - 1));
	char data[sizeof(message)];
	assert_int_equal(read(fd, data, sizeof(message) - 1), (ssize_t)(sizeof(message) - 1));
	assert_memory_equal(data, message, sizeof(message) - 1);
	close(fd);
	spool_message_free(&m);
	assert_int_equal(spool_load_message_in(f->s, SPOOL_HELD, e[0]->id, &m, NULL, &error), -1);
	assert_int_equal(errno, ENOENT);
	assert_non_null(strstr(error, "hold/"));
	/* Recipient marks work on queue/ only: a held message is not delivered. */
	assert_int_equal(spool_mark_rcpt(f->s, e[1], 0, ENVELOPE_RCPT_DONE, &error), -1);
	assert_int_equal(errno, ENOENT);

	/* Held across a reopen (the daemon restarting). */
	spool_close(&f->s);
	snprintf(path, sizeof(path), "%s/spool", f->dir);
	assert_int_equal(spool_open(path, &f->s, &error), 0);
	memset(&l, 0, sizeof(l));
	assert_int_equal(spool_list_held(f->s, collect_all, &l, &error), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.ids[0], e[1]->id);

	/* Refusals, each with its errno, and nothing moved. */
	assert_int_equal(spool_hold(f->s, e[1]->id, &error), -1);
	assert_int_equal(errno, EALREADY);
	assert_non_null(strstr(error, "already held"));
	assert_int_equal(spool_release(f->s, e[0]->id, &error), -1);
	assert_int_equal(errno, EALREADY);
	assert_non_null(strstr(error, "not held"));
	assert_int_equal(spool_hold(f->s, "0006157a3b2c4d5e9f8a7b6c", &error), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(spool_release(f->s, "0006157a3b2c4d5e9f8a7b6c", &error), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(spool_locate(f->s, "0006157a3b2c4d5e9f8a7b6c", &place, &error), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(spool_hold(f->s, "../queue/x", &error), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(spool_release(f->s, "", &error), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(spool_locate(f->s, "0006157A3B2C4D5E9F8A7B6C", &place, &error), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(spool_remove_held(f->s, "..", &error), -1);
	assert_int_equal(errno, EINVAL);
	assert_true(exists(f, "queue", e[0]->id));
	assert_true(exists(f, "hold", e[1]->id));

	/* In both places (a hand-made mess): never replaced, both kept. */
	char qpath[256], hpath[256];
	snprintf(qpath, sizeof(qpath), "%s/spool/queue/%s", f->dir, e[0]->id);
	snprintf(hpath, sizeof(hpath), "%s/spool/hold/%s", f->dir, e[0]->id);
	assert_int_equal(link(qpath, hpath), 0);
	assert_int_equal(spool_hold(f->s, e[0]->id, &error), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(spool_release(f->s, e[0]->id, &error), -1);
	assert_int_equal(errno, EEXIST);
	assert_true(exists(f, "queue", e[0]->id));
	assert_true(exists(f, "hold", e[0]->id));
	assert_int_equal(spool_remove_held(f->s, e[0]->id, &error), 0);
	assert_false(exists(f, "hold", e[0]->id));
	assert_true(exists(f, "queue", e[0]->id));
	assert_int_equal(spool_remove_held(f->s, e[0]->id, &error), 0);   /* missing: fine */

	/* A stranger in hold/ is skipped. */
	snprintf(path, sizeof(path), "%s/spool/hold/README", f->dir);
	close(open(path, O_WRONLY | O_CREAT, 0600));
	memset(&l, 0, sizeof(l));
	assert_int_equal(spool_list_held(f->s, collect_all, &l, &error), 0);
	assert_int_equal(l.n, 1);

	/* Release: back in queue/, unchanged, in age order, deliverable again. */
	assert_int_equal(spool_release(f->s, e[1]->id, &error), 0);
	assert_false(exists(f, "hold", e[1]->id));
	after = slurp(f, "queue", e[1]->id, &after_len);
	assert_int_equal(after_len, before_len);
	assert_memory_equal(after, before, before_len);
	free(after);
	free(before);
	memset(&l, 0, sizeof(l));
	assert_int_equal(spool_list(f->s, collect_all, &l, &error), 0);
	assert_int_equal(l.n, 3);
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(l.ids[i], e[i]->id);
	assert_int_equal(spool_load(f->s, e[1]->id, &le, NULL, NULL, &error), 0);
	assert_int_equal(spool_mark_rcpt(f->s, le, 0, ENVELOPE_RCPT_DONE, &error), 0);
	envelope_free(&le);
	memset(&l, 0, sizeof(l));
	assert_int_equal(spool_list_held(f->s, collect_all, &l, &error), 0);
	assert_int_equal(l.n, 0);

	/* A held message can be removed for good. */
	assert_int_equal(spool_hold(f->s, e[2]->id, &error), 0);
	assert_int_equal(spool_remove_held(f->s, e[2]->id, &error), 0);
	assert_false(exists(f, "hold", e[2]->id));
	assert_int_equal(spool_locate(f->s, e[2]->id, &place, &error), -1);
	assert_int_equal(errno, ENOENT);
	unlink(path);

	/* hold/ unreadable: listing it fails and says so (not as root). */
	if (geteuid() != 0) {
		snprintf(path, sizeof(path), "%s/spool/hold", f->dir);
		assert_int_equal(chmod(path, 0300), 0);
		assert_int_equal(spool_list_held(f->s, collect_all, &l, &error), -1);
		assert_non_null(strstr(error, "hold/"));
		assert_int_equal(chmod(path, 0700), 0);
	}
	for (size_t i = 0; i < 3; i++)
		envelope_free(&e[i]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids),
		cmocka_unit_test_setup_teardown(test_cycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_format, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncate_and_mutate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_and_clean, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_and_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hold_and_release, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
