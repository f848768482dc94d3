/* delivery — see delivery.h. */
#include "queue/delivery.h"
#include "queue/envelope.h"
#include "queue/maildir.h"
#include "lib/log.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Return-Path: and Delivered-To: with two addresses of at most ENVELOPE_MAX_STR. */
#define MAX_TRACE (2 * ENVELOPE_MAX_STR + 64)

/* A recipient that cannot be delivered, ever: it stays PENDING in the spool
 * until the caller has its bounce durable and marks it FAILED (a crash in
 * between repeats the bounce instead of losing it). Beyond the list's size it
 * is simply retried, and listed by a later attempt. */
static void
delivery_failed(struct delivery_job *job, size_t index, const char *why)
{
	if (job->nfailures == DELIVERY_MAX_FAILURES)
		return;
	struct delivery_failure *f = &job->failures[job->nfailures++];
	f->index = index;
	snprintf(f->why, sizeof(f->why), "%s", why);
}

void
delivery_run(struct delivery_job *job)
{
	struct spool_message *msg = NULL;
	struct envelope *e;
	char *prepend = NULL;
	int fd = -1;
	const char *error;
	bool temp_failure = false, spool_write_failed = false;

	job->delivered = 0;
	job->error[0] = '\0';
	job->local_temp = false;
	job->nfailures = 0;
	job->msg = NULL;
	job->fd = -1;
	if (spool_load_message(job->spool, job->id, &msg, &fd, &error) < 0) {
		if (errno == ENOENT) {
			job->outcome = DELIVERY_GONE;
			return;
		}
		if (spool_error_class(errno) == SPOOL_ERROR_PERMANENT) {
			/* Kept in place for the operator (rampart queue list shows it). */
			log_error("queue: %s cannot be read and is left alone: %s", job->id, error);
			job->outcome = DELIVERY_GONE;
			return;
		}
		snprintf(job->error, sizeof(job->error), "loading: %s", error);
		job->outcome = DELIVERY_RETRY;
		return;
	}
	e = msg->envelope;
	/* The trace fields, then the fields the front added (RFC 8601 §5: on top
	 * of the message as received), then the message bytes. */
	size_t prepend_size = MAX_TRACE + msg->added_len + 1;
	if ((prepend = malloc(prepend_size)) == NULL) {
		snprintf(job->error, sizeof(job->error), "out of memory");
		job->outcome = DELIVERY_RETRY;
		close(fd);
		spool_message_free(&msg);
		return;
	}
	for (size_t i = 0; i < e->rcpt_count; i++) {
		struct envelope_rcpt *r = &e->rcpts[i];
		char maildir[PATH_MAX], unique[MAILDIR_UNIQUE_MAX + 1];
		if (r->status != ENVELOPE_RCPT_PENDING)
			continue;
		if (r->mailbox == NULL)
			continue;   /* remote: the relay's */
		error = NULL;
		if (maildir_path(job->mail_dir, r->mailbox, maildir, sizeof(maildir), &error) < 0 ||
		    maildir_unique_name(unique, sizeof(unique), e->received_at, e->id, i,
		    job->hostname) < 0) {
			log_error("queue: %s: recipient %s: %s", job->id, r->mailbox,
			    error != NULL ? error : "bad Maildir name");
			delivery_failed(job, i, error != NULL ? error : "bad Maildir name");
			continue;
		}
		/* RFC 5321 §4.4: the final delivery adds Return-Path with the reverse-path. */
		int n = snprintf(prepend, MAX_TRACE, "Return-Path: <%s>\r\nDelivered-To: %s\r\n",
		    e->mail_from, r->mailbox);
		assert(n > 0 && n < MAX_TRACE);   /* envelope_check() bounds both */
		memcpy(prepend + n, msg->added, msg->added_len + 1);
		const struct maildir_source src = { fd, msg->data_offset, msg->data_end, prepend };
		int rc = maildir_deliver_to(maildir, msg->folder, &src, unique,
		    job->check_existing || spool_write_failed, &error);
		if (rc < 0) {
			int err = errno;
			snprintf(job->error, sizeof(job->error), "%s: %s", r->mailbox, error);
			if (maildir_error_is_temporary(err)) {
				temp_failure = true;
			} else {
				log_error("queue: %s: delivery to %s failed permanently: %s", job->id,
				    r->mailbox, error);
				delivery_failed(job, i, error);
			}
			continue;
		}
		log_info("queue: %s: delivered to %s%s%s%s", job->id, r->mailbox,
		    msg->folder[0] != '\0' ? " folder " : "", msg->folder,
		    rc == 1 ? " (already there)" : "");
		job->delivered++;
		if (spool_mark_rcpt(job->spool, e, i, ENVELOPE_RCPT_DONE, &error) < 0) {
			/* The next attempt looks for the copy before delivering again. */
			spool_write_failed = true;
			log_warn("queue: %s: cannot record delivery: %s", job->id, error);
		}
	}
	free(prepend);
	if (spool_write_failed && job->error[0] == '\0')
		snprintf(job->error, sizeof(job->error), "spool update failed");
	job->local_temp = temp_failure || spool_write_failed;
	job->msg = msg;
	job->fd = fd;
	job->outcome = DELIVERY_DONE;
}
