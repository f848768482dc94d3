/*
 * spool — the queue's durable store: one file per message, envelope then data.
 *
 * Only the queue process opens the spool. A message's life:
 *   spool_create()  incoming/<id> is created (O_EXCL, 0600) holding the envelope
 *                   header; the returned fd is positioned where the data starts.
 *                   The queue passes (a dup of) that fd to the front, which
 *                   appends the message bytes as received (CRLF line endings,
 *                   dot-unstuffed, without the final ".").
 *   spool_commit()  fsync(fd), rename incoming/<id> -> queue/<id>, fsync(queue/).
 *                   Only after it returns 0 may the client get 250 (DESIGN.md
 *                   "Data"): a crash at any earlier point leaves at most a file
 *                   in incoming/, which spool_clean_incoming() removes at start-up
 *                   because that client never got 250.
 *   spool_abort()   instead of commit: the transaction failed, unlink incoming/<id>.
 *   spool_load()    parse queue/<id> (strictly: a corrupt file is an error).
 *   spool_mark_rcpt() per recipient, after delivery or permanent failure.
 *   spool_remove()  when no recipient is pending any more.
 *
 * File format, version 1 (all lines end with LF alone; no line is longer than
 * SPOOL_MAX_LINE bytes):
 *
 *     RAMPART-SPOOL 1
 *     id 0006157a3b2c4d5e9f8a7b6c
 *     received 1712345678
 *     from alice@example.org
 *     body 8BITMIME
 *     smtputf8 0
 *     ret NONE
 *     envid QQ314159
 *     size 12345
 *     helo client.example.org
 *     client 192.0.2.7
 *     port 54321
 *     listener mx
 *     auth alice@example.org
 *     rcpt P notify=FAILURE,DELAY address=bob@example.org mailbox=bob@example.org orcpt=rfc822;bob@example.org
 *     rcpt D address=list@example.org mailbox=carol@example.org
 *     rcpt F address=dave@example.net
 *     <empty line>
 *     <the message bytes exactly as received>
 *
 * - The first line is the magic "RAMPART-SPOOL 1"; then one "key value" field per
 *   line, in any order, each at most once: id (must equal the file name),
 *   received (unix time), from, body (7BIT|8BITMIME), smtputf8 (0|1),
 *   ret (NONE|FULL|HDRS), size (SIZE= declared, 0 = none), helo, client, port,
 *   listener are required; envid and auth are optional (absent = NULL).
 *   Unknown keys are an error: a new field means a new version.
 * - Values are escaped so that no value can break a line or a token: bytes
 *   < 0x21, 0x7f and '%' are written %XX (upper-case hex); every other byte,
 *   UTF-8 included, is written as is. A field whose value is "" is written as
 *   the key alone ("from" for the null sender).
 * - Then one "rcpt" line per recipient, in envelope order (a recipient's index
 *   is its position). The byte after "rcpt " is its status: P (pending), D (done)
 *   or F (failed); spool_mark_rcpt() overwrites that byte in place with pwrite().
 *   Then space-separated name=value tokens: address (required), notify (a comma
 *   list of NEVER, SUCCESS, FAILURE, DELAY; absent = not given), mailbox
 *   (absent = remote recipient) and orcpt (absent = NULL); values escaped as above.
 * - At least one rcpt line, then an empty line; the message data starts right
 *   after it, at the "data offset", and runs to the end of the file.
 *
 * Errors: every function returning int returns -1 on failure with *error_r set
 * to a sentence (valid until the next spool or maildir call in the same thread) and errno
 * set to the cause: the errno of the failing system call, EBADMSG for a corrupt
 * spool file, EINVAL for an invalid id or envelope. spool_error_class() tells a
 * caller how to answer.
 */
#ifndef RAMPART_QUEUE_SPOOL_H
#define RAMPART_QUEUE_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "queue/envelope.h"

/* A spool id: 16 lower-case hex digits of the creation time in microseconds
 * since the epoch, then 8 of random: unique, fixed length (so that byte order is
 * time order) and safe as a file name. */
#define SPOOL_ID_LEN 24
#define SPOOL_MAX_LINE 16384

struct spool;

/* Opens the spool rooted at dir (created 0700 if missing, but not its parents),
 * creating incoming/ and queue/ (0700) if needed, and holds fds on them. */
int spool_open(const char *dir, struct spool **s_r, const char **error_r);
/* Closes the directory fds and frees; sets *s to NULL. NULL is fine. */
void spool_close(struct spool **s);

/* Writes a new id and its NUL into id. */
void spool_id_generate(char id[SPOOL_ID_LEN + 1]);
/* Whether id has the exact form spool_id_generate() produces. Every function
 * taking an id refuses (EINVAL) one that does not: ids become file names. */
bool spool_id_valid(const char *id);

/* Assigns a fresh e->id, creates incoming/<id> with the envelope header (e must
 * pass envelope_check() and have at least one recipient), records each
 * recipient's status_offset, and returns in *fd_r a read-write fd positioned at
 * the data offset. The caller owns the fd and closes it after commit or abort. */
int spool_create(struct spool *s, struct envelope *e, int *fd_r, const char **error_r);

/* Makes message id durable: fsync(fd), rename incoming/<id> to queue/<id>
 * (never replacing an existing file), fsync the queue/ directory. fd must be the
 * one spool_create() returned (checked). Does not close fd. On failure the file
 * stays in incoming/: the caller answers 4xx and calls spool_abort(). */
int spool_commit(struct spool *s, const char *id, int fd, const char **error_r);

/* Unlinks incoming/<id>; a missing file is not an error. */
int spool_abort(struct spool *s, const char *id, const char **error_r);

/* Loads queue/<id>: a new envelope in *e_r with each recipient's status and
 * status_offset, the data offset in *data_offset_r, and, when fd_r is not NULL,
 * a read-only fd on the file positioned at the data offset (the caller closes
 * it; maildir_deliver() reads it with pread). data_offset_r may be NULL. */
int spool_load(struct spool *s, const char *id, struct envelope **e_r,
    off_t *data_offset_r, int *fd_r, const char **error_r);

/* Records recipient index's new status in queue/<e->id> by overwriting its
 * status byte (checked to be a status byte first) and updates e->rcpts[index].
 * e must come from spool_create() or spool_load(). Not fsynced: local delivery
 * is idempotent (maildir.h), so a status lost in a crash only costs a check. */
int spool_mark_rcpt(struct spool *s, struct envelope *e, size_t index,
    enum envelope_rcpt_status status, const char **error_r);

/* Unlinks queue/<id>; a missing file is not an error. */
int spool_remove(struct spool *s, const char *id, const char **error_r);

/* Calls fn for each message id in queue/, oldest first; other names found there
 * are logged and skipped. fn returns 0 to go on, anything else to stop.
 * Returns 0 when every id was visited, 1 when fn stopped the walk, -1 on error
 * (before any call to fn). */
typedef int spool_list_fn(const char *id, void *ctx);
int spool_list(struct spool *s, spool_list_fn *fn, void *ctx, const char **error_r);

/* Start-up only, before any spool_create(): unlinks every entry in incoming/
 * (messages that never got 250). Returns how many it removed, or -1. */
int spool_clean_incoming(struct spool *s, const char **error_r);

/* How to answer a failure, from the errno a spool function left. */
enum spool_error_class {
	SPOOL_ERROR_NO_SPACE,   /* ENOSPC, EDQUOT, EIO: "452 4.3.1" at DATA */
	SPOOL_ERROR_TEMPORARY,  /* anything else a retry may fix: "451 4.3.0" */
	SPOOL_ERROR_PERMANENT,  /* EBADMSG (corrupt file), EINVAL, ENOENT, ENAMETOOLONG, EFBIG */
};
enum spool_error_class spool_error_class(int errnum);

#endif
