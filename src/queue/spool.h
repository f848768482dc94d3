/*
 * spool — the queue's durable store: one file per message, envelope then data.
 *
 * Only the queue process opens the spool. A message's life:
 *   spool_create()  incoming/<id> is created (O_EXCL, 0600) holding the envelope
 *                   header, its data-end still zero; the returned fd is
 *                   positioned where the data starts. The queue passes (a dup of)
 *                   that fd to the front, which appends the message bytes as
 *                   received (CRLF line endings, dot-unstuffed, without the
 *                   final ".").
 *   spool_commit_with()  (or spool_commit(): nothing added) checks that the file
 *                   holds exactly the data the front reports, writes the trailer
 *                   (fields to add, folder) after the data and the data-end in
 *                   place, then fsync(fd), rename incoming/<id> -> queue/<id>,
 *                   fsync(queue/). Only after it returns 0 may the client get 250
 *                   (DESIGN.md "Data"): a crash at any earlier point leaves at
 *                   most a file in incoming/ (with data-end zero or not), which
 *                   spool_clean_incoming() removes at start-up because that
 *                   client never got 250. Since the file is fsynced before the
 *                   rename, a file in queue/ always has its data-end and trailer.
 *   spool_abort()   instead of commit: the transaction failed, unlink incoming/<id>.
 *   spool_load_message()  parse queue/<id> (strictly: a corrupt file is an error);
 *                   spool_load() when only the envelope is wanted.
 *   spool_mark_rcpt() per recipient, after delivery or permanent failure.
 *   spool_remove()  when no recipient is pending any more.
 *   spool_hold()    the operator puts a message aside (rampart queue hold):
 *                   queue/<id> -> hold/<id>; nothing in hold/ is delivered, and
 *                   spool_list() does not see it. spool_release() moves it back.
 *
 * File format, version 2 (all lines end with LF alone; no envelope line is
 * longer than SPOOL_MAX_LINE bytes):
 *
 *     RAMPART-SPOOL 2
 *     data-end 0000000000003a5f
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
 *     <the message bytes exactly as received>       (data offset .. data-end)
 *     folder Junk                                    (the trailer)
 *     added Authentication-Results:%20mx.example.org;%20spf=pass%0D%0A
 *     end
 *
 * - The first line is the magic "RAMPART-SPOOL 2". The second is always
 *   "data-end " and 16 lower-case hex digits (fixed width, so that it sits at
 *   byte SPOOL_DATA_END_AT and spool_commit_with() can overwrite it in place with
 *   pwrite() without moving anything): the file offset one past the last byte
 *   of the message data. spool_create() writes it as zeros; a file in queue/
 *   with a data-end of zero, before the data offset or past the end of the
 *   file is corrupt.
 * - Then one "key value" field per line, in any order, each at most once: id
 *   (must equal the file name), received (unix time), from, body
 *   (7BIT|8BITMIME), smtputf8 (0|1), ret (NONE|FULL|HDRS), size (SIZE= declared,
 *   0 = none), helo, client, port, listener are required; envid and auth are
 *   optional (absent = NULL). Unknown keys are an error: a new field means a new
 *   version.
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
 *   after it, at the "data offset", and runs to data-end.
 * - The trailer runs from data-end to the end of the file: optional "folder"
 *   (a name queue_folder_valid() accepts, never "") and "added" (header text
 *   that queue_added_check() accepts, never "") lines, each at most once and
 *   escaped as above, then the line "end", which must be the last bytes of the
 *   file (a trailer cut short is refused). At most SPOOL_TRAILER_MAX bytes.
 *   Absent folder = INBOX, absent added = nothing to add.
 *
 * Version 1 (files spooled before the upgrade) is version 2 without the
 * data-end line and without the trailer: magic "RAMPART-SPOOL 1", and the data
 * runs to the end of the file. spool_load_message() reads both; spool_create()
 * writes version 2 only.
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
#include <stdint.h>
#include <sys/types.h>

#include "queue/envelope.h"

/* A spool id: 16 lower-case hex digits of the creation time in microseconds
 * since the epoch, then 8 of random: unique, fixed length (so that byte order is
 * time order) and safe as a file name. */
#define SPOOL_ID_LEN 24
#define SPOOL_MAX_LINE 16384
/* Where the 16 hex digits of data-end start (after "RAMPART-SPOOL 2\ndata-end "). */
#define SPOOL_DATA_END_AT 25
/* The longest trailer: added escaped at up to three bytes per byte, and room
 * for the keywords and the folder. */
#define SPOOL_TRAILER_MAX (3 * 64 * 1024 + 1024)

struct spool;

/* Opens the spool rooted at dir (created 0700 if missing, but not its parents),
 * creating incoming/, queue/ and hold/ (0700) if needed, and holds fds on them. */
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

/* What the front reports at the end of the data (QUEUE_COMMIT_REQ). */
struct spool_commit_info {
	uint64_t data_size;     /* bytes written at the data offset: the file must
	                         * hold exactly that many after the envelope */
	const char *added;      /* header text to put above the message on delivery
	                         * (queue_added_check()); NULL or added_len 0 = none */
	size_t added_len;
	const char *folder;     /* NULL or "" = INBOX, else queue_folder_valid() */
};

/* Makes message id durable. Checks that fd is the one spool_create() returned
 * and that incoming/<id> is a version-2 file not committed before; checks the
 * size the front reported (EBADMSG when the file holds another) and info's
 * added and folder (EINVAL); writes the trailer at data-end and data-end itself
 * (SPOOL_DATA_END_AT), then fsync(fd), renames incoming/<id> to queue/<id>
 * (never replacing an existing file) and fsyncs the queue/ directory. info NULL
 * = the data is everything after the data offset and nothing is added. Does not
 * close fd. On failure the file stays in incoming/: the caller answers 4xx and
 * calls spool_abort() (a failed commit is not retried). */
int spool_commit_with(struct spool *s, const char *id, int fd,
    const struct spool_commit_info *info, const char **error_r);
/* spool_commit_with(s, id, fd, NULL, error_r). */
int spool_commit(struct spool *s, const char *id, int fd, const char **error_r);

/* Unlinks incoming/<id>; a missing file is not an error. */
int spool_abort(struct spool *s, const char *id, const char **error_r);

/* A message loaded from queue/. */
struct spool_message {
	struct envelope *envelope;  /* each recipient's status and status_offset set */
	unsigned version;           /* of the file: 1 or 2 */
	off_t data_offset;          /* the message data is [data_offset, data_end) */
	off_t data_end;             /* version 1: the size of the file */
	char *added;                /* NUL-terminated; "" when nothing is added */
	size_t added_len;
	char *folder;               /* "" = INBOX, or "Junk" */
};

/* Loads queue/<id> (either version) into a new *m_r and, when fd_r is not NULL,
 * opens a read-only fd on the file positioned at the data offset (the caller
 * closes it; readers must stop at data_end: maildir_deliver_to() does). */
int spool_load_message(struct spool *s, const char *id, struct spool_message **m_r,
    int *fd_r, const char **error_r);
/* Frees the message and its envelope; sets *m to NULL. NULL is fine. */
void spool_message_free(struct spool_message **m);

/* spool_load_message() for callers that want only the envelope (*e_r) and the
 * data offset (data_offset_r may be NULL). The data does NOT run to the end of
 * the file any more (version 2): to read it, use spool_load_message(). */
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

/* ---- held messages (rampart queue hold|release) ----
 * A held message is the same file in hold/ instead of queue/; the format does
 * not change. Only the queue process (or the CLI while rampartd is not running)
 * moves files, and the queue process never while a delivery attempt has the
 * message open (spool_mark_rcpt() works on queue/ only). */

/* Where a message file is. */
enum spool_place {
	SPOOL_QUEUED,   /* queue/: delivered by the queue process */
	SPOOL_HELD,     /* hold/: put aside by the operator */
};

/* Moves queue/<id> to hold/<id> (never replacing a file there), then fsyncs
 * hold/ and queue/; if an fsync fails the file is moved back (best effort) and
 * -1 returned. Errors: ENOENT (in neither directory), EALREADY (already held),
 * EEXIST (in both: left for the operator), EINVAL (invalid id), else the
 * system call's errno. */
int spool_hold(struct spool *s, const char *id, const char **error_r);
/* The reverse: hold/<id> back to queue/<id>. EALREADY when it is not held. */
int spool_release(struct spool *s, const char *id, const char **error_r);
/* spool_list() for hold/ (names that are not ids are logged and skipped). */
int spool_list_held(struct spool *s, spool_list_fn *fn, void *ctx, const char **error_r);
/* spool_load_message() of the file in queue/ (SPOOL_QUEUED) or hold/ (SPOOL_HELD). */
int spool_load_message_in(struct spool *s, enum spool_place place, const char *id,
    struct spool_message **m_r, int *fd_r, const char **error_r);
/* Unlinks hold/<id>; a missing file is not an error. */
int spool_remove_held(struct spool *s, const char *id, const char **error_r);
/* Where message id is: 0 with *place_r (queue/ is looked at first), or -1 with
 * errno ENOENT when it is in neither directory (incoming/ is not looked at). */
int spool_locate(struct spool *s, const char *id, enum spool_place *place_r,
    const char **error_r);

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
