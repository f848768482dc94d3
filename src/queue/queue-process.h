/*
 * queue-process — owns the spool and delivers what is in it.
 *
 * Fronts open a spool file per transaction (QUEUE_OPEN_REQ; the file's
 * descriptor goes back to them), write the message into it, and ask for a
 * commit; the commit (fsync, rename into queue/, fsync of the directory) runs on
 * a worker thread, and only its success lets the front answer 250. Committed
 * messages are delivered to local Maildirs by the same workers; a temporary
 * failure is retried with exponential backoff (queue_retry_min doubling up to
 * queue_retry_max). At start-up, leftovers in incoming/ (never acknowledged) are
 * removed and everything in queue/ is delivered, checking each Maildir first so
 * that a crash between delivery and bookkeeping never delivers twice.
 */
#ifndef RAMPART_QUEUE_PROCESS_H
#define RAMPART_QUEUE_PROCESS_H

struct config;

int queue_process_main(const struct config *cfg, int ctl_fd);

#endif
