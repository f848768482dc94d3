/*
 * queue-admin — what `rampart queue ...` shows of the spool and does to it,
 * directly on the files.
 *
 * Reading (list, show) never changes anything and is safe while rampartd runs.
 * The changes (hold, release, remove) are for when rampartd is NOT running —
 * the CLI asks the daemon first (queue-ctl.h) — and each takes the spool lock
 * (queue_ctl_lock_spool()) for its duration, so it fails with EBUSY instead of
 * moving files under a running queue process.
 *
 * Every function returns 0, or -1 with a sentence in *error_r (valid until the
 * next call of this module or of the spool in the same thread) and errno set:
 * ENOENT when the message is in neither queue/ nor hold/, EALREADY for hold of a
 * held message or release of one that is not held, EBUSY when the spool lock is
 * held by someone else, EINVAL for an invalid id, else the cause.
 */
#ifndef RAMPART_QUEUE_ADMIN_H
#define RAMPART_QUEUE_ADMIN_H

#include <stdbool.h>
#include <stdio.h>

/* How much of a message's header section `show` prints. */
#define QUEUE_ADMIN_HEADER_MAX (64 * 1024)

/*
 * Writes one block per message: those in queue/ oldest first, then the held
 * ones (hold/) oldest first. A block's first line is
 *     ID  AGE  SIZE  <SENDER>[  to folder NAME][  held]
 * (AGE as 42s, 17m, 5h or 3d; SIZE the bytes of message data), then one line
 * per recipient: its state (pending, delivered, failed), its address and
 * " (remote)" or, when it differs, " (to MAILBOX)". Unreadable files are listed
 * as such. Ends with "N messages in the queue", plus " (M held)" when M > 0.
 * Returns 0, or -1 when the spool cannot be opened.
 */
int queue_admin_list(const char *spool_dir, FILE *out, const char **error_r);

/*
 * Writes everything the files say about message id: where it is (queued or
 * held), the envelope (sender, received, client, helo, auth user, listener,
 * body, SMTPUTF8, ret and envid, declared and real size), each recipient with
 * its state, mailbox or "remote", NOTIFY and ORCPT, the trailer's folder and
 * added fields (in full when short, else name and length), then the message's
 * header section (at most QUEUE_ADMIN_HEADER_MAX bytes; control characters
 * other than TAB shown as \xNN).
 */
int queue_admin_show(const char *spool_dir, const char *id, FILE *out, const char **error_r);

/* Where id is: 0 with *held_r (true: in hold/), or -1 (ENOENT: nowhere). */
int queue_admin_locate(const char *spool_dir, const char *id, bool *held_r,
    const char **error_r);

/* Offline changes (rampartd not running; see above). hold: queue/ -> hold/;
 * release: hold/ -> queue/ (delivered when rampartd starts); remove: unlinks
 * the file from queue/ or hold/ without any bounce. */
int queue_admin_hold(const char *spool_dir, const char *id, const char **error_r);
int queue_admin_release(const char *spool_dir, const char *id, const char **error_r);
int queue_admin_remove(const char *spool_dir, const char *id, const char **error_r);

#endif
