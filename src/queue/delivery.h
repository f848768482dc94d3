/*
 * delivery — one delivery attempt of one spooled message to local Maildirs.
 *
 * Runs on a queue worker thread and touches only its job and the files: loads
 * the spool file, delivers every PENDING recipient that has a local mailbox
 * (Return-Path: and Delivered-To:, then the fields the front added, prepended
 * to the message data; into the folder the front chose, INBOX or Junk), marks
 * each one DONE in the spool file (one whose Maildir cannot take it for good
 * is listed in failures, still PENDING: the caller marks it FAILED once the
 * bounce is durable), and leaves the loaded message and an open fd in
 * the job for the rest of the attempt (relaying the remote recipients,
 * bounces): the caller removes the file once nothing is pending. Maildir file names are
 * derived from (received time, spool id, recipient index, host), so a retry
 * after a crash finds an earlier copy (check_existing) and does not deliver twice.
 * Remote recipients stay pending: relaying out belongs to the relay (relay.h).
 */
#ifndef RAMPART_DELIVERY_H
#define RAMPART_DELIVERY_H

#include <stdbool.h>

#include "queue/spool.h"

enum delivery_outcome {
	DELIVERY_DONE,       /* local recipients handled (some may have failed for
	                      * now: error says why); msg and fd are set */
	DELIVERY_RETRY,      /* the message could not be loaded now; error says why */
	DELIVERY_GONE,       /* the spool file vanished or is unreadable (logged) */
};

/* A local recipient that failed for good in this attempt. */
struct delivery_failure {
	size_t index;           /* into the envelope's recipients */
	char why[200];
};
#define DELIVERY_MAX_FAILURES 64

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
	bool local_temp;        /* a local recipient failed temporarily */
	char error[256];
	struct spool_message *msg;   /* DELIVERY_DONE: the caller frees */
	int fd;                      /* DELIVERY_DONE: read-only, at the data; caller closes */
	struct delivery_failure failures[DELIVERY_MAX_FAILURES];
	size_t nfailures;            /* recipients that failed for good, still PENDING: the
	                              * caller marks them FAILED once the bounce is durable */
};

void delivery_run(struct delivery_job *job);

#endif
