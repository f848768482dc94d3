/*
 * maildir — local delivery into <mail_dir>/<domain>/<local>/Maildir.
 *
 * The queue process calls these for each local recipient of a spooled message.
 * A delivery writes tmp/<unique>, fsyncs it, links it to new/<unique>,S=<size>,
 * unlinks tmp/<unique> and fsyncs new/ (the Maildir protocol, with fsync so that
 * "delivered" survives a crash). <size> is the message size with CRLF line ends
 * (RFC822.SIZE, as Dovecot writes it) so IMAP can answer without opening the file;
 * the file itself has LF line ends, which mutt and Dovecot expect.
 *
 * Exactly once: <unique> is derived only from the message and the recipient
 * (maildir_unique_name), never from the time of delivery, so a repeated delivery
 * of the same message to the same recipient finds its earlier copy:
 *   - in new/ under the same name (same bytes, same size): link() says EEXIST;
 *   - anywhere in new/ or cur/ under "<unique>,..." (a client may have moved it
 *     to cur/ and added ":2,<flags>"): maildir_contains().
 * The queue marks the recipient done in the spool only after delivery returns;
 * after a crash between the two it delivers again with maybe_delivered = true.
 *
 * Folders follow Maildir++ (the layout of Courier and Dovecot): folder "Junk" of
 * a Maildir is the Maildir "<maildir>/.Junk" with an empty "maildirfolder" file
 * in it, created on demand like the Maildir itself, with the same guarantees.
 *
 * Errors: -1 with *error_r (valid until the next maildir or spool call in the same thread)
 * and errno set to the cause; maildir_error_is_temporary(errno) says whether to
 * retry later (ENOSPC, EDQUOT, EIO, EAGAIN, EACCES... — anything an operator
 * can fix) or to fail the recipient (EINVAL for a refused address or name,
 * ENAMETOOLONG, EFBIG).
 */
#ifndef RAMPART_QUEUE_MAILDIR_H
#define RAMPART_QUEUE_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Longest <unique> accepted: leaves room for ",S=<20 digits>" and ":2,<flags>"
 * within NAME_MAX (255). */
#define MAILDIR_UNIQUE_MAX 200

/* Writes "<mail_dir>/<domain>/<local>/Maildir" into buf, splitting the mailbox
 * address at its last '@'. Refuses (EINVAL), as defence in depth against path
 * tricks in directory data, a local part or domain that is empty, holds '/' or a
 * control character (< 0x20, 0x7f), or starts with '.' (so also ".."); ENAMETOOLONG
 * when buf is too small. No case folding: pass the canonical mailbox. */
int maildir_path(const char *mail_dir, const char *mailbox_address, char *buf,
    size_t size, const char **error_r);

/* Writes "<received_at>.<spool_id>_<rcpt_index>.<host>" into buf, where <host>
 * is hostname with every byte other than letters, digits, '.', '-' and '_'
 * written as \ooo octal: the Maildir specification asks this for '/' (\057) and
 * ':' (\072); ',' (the size separator) and the rest follow for safety. spool_id
 * must be letters and digits. -1 when it is not, when buf is too small or when
 * the name would exceed MAILDIR_UNIQUE_MAX. */
int maildir_unique_name(char *buf, size_t size, int64_t received_at, const char *spool_id,
    size_t rcpt_index, const char *hostname);

/* The longest folder name accepted. */
#define MAILDIR_FOLDER_MAX 64

/* Creates the Maildir and its missing parents (0700), and tmp/, new/, cur/.
 * Each directory created is made durable by fsyncing its parent. */
int maildir_create(const char *maildir, const char **error_r);

/* Writes into buf the directory holding folder: maildir itself for NULL or ""
 * (INBOX), else "<maildir>/.<folder>". Refuses (EINVAL) a folder name that is not
 * 1 to MAILDIR_FOLDER_MAX ASCII letters, digits, '-' and '_' (the name reaches
 * the file system: no '.', so neither a hierarchy nor a way out); ENAMETOOLONG
 * when buf is too small. */
int maildir_folder_path(const char *maildir, const char *folder, char *buf, size_t size,
    const char **error_r);

/* maildir_create(maildir), then for a folder (not NULL or ""): its directory
 * (0700), the empty "maildirfolder" marker file (0600) and tmp/, new/, cur/, in
 * that order (so a folder with cur/ has its marker), each made durable. */
int maildir_create_folder(const char *maildir, const char *folder, const char **error_r);

/* What a delivery writes. */
struct maildir_source {
	int fd;                 /* read with pread: the fd's position is not used */
	off_t offset;           /* the bytes [offset, end) of fd ... */
	off_t end;              /* ... or, when end < 0, to the end of the file */
	const char *prepend;    /* header lines written before them (CRLF), or NULL */
};

/* Delivers src's prepend then its bytes, converting CRLF to LF, into folder
 * (NULL or "" = INBOX; see maildir_folder_path()) of maildir, created as needed
 * (maildir_create_folder()), as new/<unique>,S=<size>. The prepend (e.g.
 * "Return-Path: <a@b>\r\nDelivered-To: u@d\r\n", then fields added at the
 * front) must be the same on every attempt for the same unique (no delivery
 * time in it). When maybe_delivered, new/ and cur/ of the folder are searched
 * for <unique> first (costs a directory scan; pass it when an earlier attempt
 * may have succeeded: the message was loaded after a restart or a spool mark
 * failed). A source shorter than end is an error (EIO). Returns 0 when
 * delivered now, 1 when this unique had already been delivered (nothing
 * written), -1 on error (nothing left in tmp/). */
int maildir_deliver_to(const char *maildir, const char *folder,
    const struct maildir_source *src, const char *unique, bool maybe_delivered,
    const char **error_r);

/* maildir_deliver_to() into INBOX of the bytes of src_fd from offset to its end. */
int maildir_deliver(const char *maildir, int src_fd, off_t offset, const char *prepend,
    const char *unique, bool maybe_delivered, const char **error_r);

/* 1 when new/ or cur/ of maildir holds a file whose name starts with
 * "<unique>,", 0 when not (or when the Maildir does not exist), -1 on error. */
int maildir_contains(const char *maildir, const char *unique, const char **error_r);

/* Whether a failure with this errno may succeed later (defer) rather than never
 * (bounce). */
bool maildir_error_is_temporary(int errnum);

#endif
