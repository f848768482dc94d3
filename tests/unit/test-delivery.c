/*
 * Unit tests for delivery (local Maildir delivery of one spooled message): a
 * recipient delivered is DONE in the spool file; one that can never be
 * delivered is reported in failures but stays PENDING, so that the queue marks
 * it FAILED only once its bounce is durable (a crash in between repeats the
 * bounce rather than losing it); a second attempt finds the first copy.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue/delivery.h"
#include "queue/envelope.h"
#include "queue/spool.h"
#include "test-tmpdir.h"

static const char message[] = "Subject: local\r\nFrom: <carol@remote.test>\r\n\r\nHi.\r\n";

static unsigned
count_new(const char *mail_dir, const char *domain, const char *local)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s/%s/Maildir/new", mail_dir, domain, local);
	DIR *d = opendir(path);
	unsigned n = 0;
	if (d == NULL)
		return 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void
test_permanent_failure_stays_pending_for_the_caller(void **state)
{
	(void)state;
	char dir[64], spool_dir[128], mail_dir[128];
	const char *error;
	struct spool *s;
	snprintf(dir, sizeof(dir), "/tmp/rampart-delivery-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(spool_dir, sizeof(spool_dir), "%s/spool", dir);
	snprintf(mail_dir, sizeof(mail_dir), "%s/mail", dir);
	assert_int_equal(mkdir(mail_dir, 0700), 0);
	assert_int_equal(spool_open(spool_dir, &s, &error), 0);

	struct envelope *e = envelope_new();
	assert_non_null(e);
	envelope_set_str(&e->mail_from, "carol@remote.test");
	envelope_set_str(&e->helo, "mx.remote.test");
	envelope_set_str(&e->client_addr, "192.0.2.1");
	envelope_set_str(&e->listener, "mx");
	e->received_at = 1712345678;
	envelope_add_rcpt(e, "alice@example.test", "alice@example.test", NULL, 0);
	/* A mailbox name no Maildir path may be made of: a permanent failure. */
	envelope_add_rcpt(e, "odd@example.test", ".odd@example.test", NULL, 0);
	envelope_add_rcpt(e, "dave@remote.test", NULL, NULL, 0);   /* the relay's */
	int fd;
	assert_int_equal(spool_create(s, e, &fd, &error), 0);
	assert_int_equal(write(fd, message, sizeof(message) - 1), (ssize_t)(sizeof(message) - 1));
	assert_int_equal(spool_commit(s, e->id, fd, &error), 0);
	close(fd);

	struct delivery_job job = { .spool = s, .mail_dir = mail_dir, .hostname = "mx.example.test" };
	snprintf(job.id, sizeof(job.id), "%s", e->id);
	delivery_run(&job);
	assert_int_equal(job.outcome, DELIVERY_DONE);
	assert_int_equal(job.delivered, 1);
	assert_false(job.local_temp);
	assert_int_equal(job.nfailures, 1);
	assert_int_equal(job.failures[0].index, 1);
	assert_non_null(strstr(job.failures[0].why, "Maildir path"));
	assert_int_equal(count_new(mail_dir, "example.test", "alice"), 1);
	/* What the file says now: DONE, still PENDING (not yet FAILED), PENDING. */
	struct spool_message *m;
	int fd2;
	assert_int_equal(spool_load_message(s, e->id, &m, &fd2, &error), 0);
	assert_int_equal(m->envelope->rcpts[0].status, ENVELOPE_RCPT_DONE);
	assert_int_equal(m->envelope->rcpts[1].status, ENVELOPE_RCPT_PENDING);
	assert_int_equal(m->envelope->rcpts[2].status, ENVELOPE_RCPT_PENDING);
	spool_message_free(&m);
	close(fd2);
	close(job.fd);
	spool_message_free(&job.msg);

	/* Again (as after a crash before the bounce): reported again, no second copy. */
	job.check_existing = true;
	delivery_run(&job);
	assert_int_equal(job.outcome, DELIVERY_DONE);
	assert_int_equal(job.delivered, 0);
	assert_int_equal(job.nfailures, 1);
	assert_int_equal(count_new(mail_dir, "example.test", "alice"), 1);
	close(job.fd);
	spool_message_free(&job.msg);

	envelope_free(&e);
	spool_close(&s);
	test_rm_tree(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_permanent_failure_stays_pending_for_the_caller),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
