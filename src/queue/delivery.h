/*
 * delivery — one delivery attempt of one spooled message to local Maildirs.
 *
 * Runs on a queue worker thread and touches only its job and the files: loads
 * the spool file, delivers every PENDING recipient that has a local mailbox
 * (Return-Path: and Delivered-To:, then the fields the front added, prepended
 * to the message data; into the folder the front chose, INBOX or Junk), marks
 * each one DONE in the spool file, and removes the file once nothing is pending. Maildir file names are
 * derived from (received time, spool id, recipient index, host), so a retry
 * after a crash finds an earlier copy (check_existing) and does not deliver twice.
 * Remote recipients stay pending: relaying out belongs to the outbound queue.
 */
#ifndef RAMPART_DELIVERY_H
#define RAMPART_DELIVERY_H

#include <stdbool.h>

#include "queue/spool.h"

enum delivery_outcome {
	DELIVERY_COMPLETE,   /* nothing pending any more; the spool file is gone */
	DELIVERY_RETRY,      /* something failed temporarily; error says what */
	DELIVERY_GONE,       /* the spool file vanished or is unreadable (logged) */
};

struct delivery_job {
	/* in */
	char id[SPOOL_ID_LEN + 1];
	struct spool *spool;
	const char *mail_dir;
	const char *hostname;
	bool check_existing;    /* look for an earlier copy before delivering */
	/* out */
	enum delivery_outcome outcome;
	unsigned delivered;
	char error[256];
};

void delivery_run(struct delivery_job *job);

#endif
