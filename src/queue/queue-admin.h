/*
 * queue-admin — what `rampart queue ...` shows of the spool, read directly from
 * the files (the daemon need not run; reading never changes anything).
 */
#ifndef RAMPART_QUEUE_ADMIN_H
#define RAMPART_QUEUE_ADMIN_H

#include <stdio.h>

/*
 * Writes one block per queued message, oldest first: id, age, size of the
 * message data, sender, "to folder Junk" when it goes to a folder, then one line per recipient with its state (pending, delivered, failed) and,
 * when it differs, the mailbox it goes to. Unreadable files are listed as such.
 * Ends with a count. Returns 0, or -1 when the spool cannot be opened.
 */
int queue_admin_list(const char *spool_dir, FILE *out, const char **error_r);

#endif
