/*
 * dsn — delivery status notifications (RFC 3464) that Rampart sends back to a
 * message's envelope sender: bounces (action failed), delay notices (delayed)
 * and, for NOTIFY=SUCCESS, relayed/delivered notices (RFC 3461 §6.2).
 *
 * dsn_compose() builds the whole notification message (CRLF lines) from the
 * original envelope, the reports per recipient and the original message; the
 * queue spools it with the null reverse-path (RFC 5321 §4.5.5, RFC 3461 §6.2:
 * a notification is never sent about a notification, so no loop can start).
 *
 * The message (RFC 3462/6522 multipart/report; report-type=delivery-status):
 *   From: "Mail Delivery System" <MAILER-DAEMON@reporting_mta>
 *   To: <the envelope sender>
 *   Subject: Undelivered Mail Returned to Sender | Delayed Mail (still being
 *            retried) | Successful Mail Delivery Report (by the worst action)
 *   Date:, Message-ID: <...@reporting_mta>, MIME-Version: 1.0,
 *   Auto-Submitted: auto-replied (RFC 3834 §5)
 *   part 1 text/plain: a human explanation naming each recipient and the remote
 *          reply ("<bob@remote.test>: host mx.remote.test said: 550 5.1.1 ..."),
 *          grouped failed / delayed / successful, at most 100 named per group
 *   part 2 message/delivery-status (RFC 3464 §2.2, §2.3, in the grammar's
 *          order): per-message fields Original-Envelope-Id (ENVID decoded from
 *          xtext, when given), Reporting-MTA: dns; reporting_mta, Arrival-Date
 *          (when received_at is set); then per recipient Original-Recipient
 *          ("type; address", ORCPT decoded from xtext, when given and well
 *          formed), Final-Recipient: rfc822; address, Action, Status,
 *          Remote-MTA: dns; host (when known), Diagnostic-Code: smtp; reply
 *          (when a remote reply is known; else "X-Rampart; explanation" when
 *          there is one), Last-Attempt-Date (when known), Will-Retry-Until
 *          (delayed only, when retry_until is set)
 *   part 3 text/rfc822-headers (the header section of prepend + original, up
 *          to and including its empty line, at most 64 KiB) — or, when the
 *          envelope asked RET=FULL and prepend + message are at most
 *          DSN_RETURN_MAX octets, message/rfc822 with the whole message
 *          (RFC 3461 §4.3); a FULL request over the limit falls back to the
 *          headers. Lines are returned CRLF-terminated and cut at 998 octets;
 *          NUL and bare CR octets are dropped (RFC 2045 §2.7, §2.8).
 *   8-bit or SMTPUTF8 content in the returned part is sent as it is, with the
 *   part (and the top level) marked Content-Transfer-Encoding: 8bit.
 *   When the envelope had SMTPUTF8 (RFC 6533): report-type and part 2 are
 *   global-delivery-status, part 3 is message/global-headers (or
 *   message/global), UTF-8 in addresses and replies is kept (valid UTF-8
 *   only) and a non-ASCII recipient is reported as "utf-8; address".
 *   Without SMTPUTF8, 8-bit octets in addresses and replies become '?'.
 *   Dates are RFC 5322 §3.3 date-times in UTC ("+0000"). Header and status
 *   fields are folded at 78 columns (RFC 5322 §2.2.3); no line passes 998.
 */
#ifndef RAMPART_DSN_H
#define RAMPART_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "queue/envelope.h"

#define DSN_RETURN_MAX (256 * 1024)   /* largest message returned whole */

enum dsn_action { DSN_FAILED, DSN_DELAYED, DSN_DELIVERED, DSN_RELAYED, DSN_EXPANDED };

struct dsn_rcpt {
	const char *address;          /* Final-Recipient (rfc822) */
	const char *orcpt;            /* Original-Recipient "type;xtext" or NULL */
	enum dsn_action action;
	const char *status;           /* "5.1.1" (from the remote enhanced code, or ours) */
	const char *remote_mta;       /* host name or NULL */
	const char *diagnostic;       /* "550 5.1.1 no such user" (remote reply) or NULL */
	const char *explanation;      /* our words when there is no remote reply, or NULL */
	int64_t last_attempt;         /* unix time, 0 = unknown */
};

struct dsn_params {
	const char *reporting_mta;    /* our host name */
	const struct envelope *env;   /* the original envelope (from, envid, ret, received_at) */
	const struct dsn_rcpt *rcpts;
	size_t nrcpts;
	int64_t now;                  /* Date: and the Message-ID's time */
	int64_t retry_until;          /* for delayed notices */
	/* The original message: fd bytes [offset, end), CRLF lines (the spooled
	 * data), with `prepend` (fields added on our side, may be NULL) above it. */
	int fd;
	off_t offset, end;
	const char *prepend;
	size_t prepend_len;
};

/* The notification, malloc'd in *msg_r (*len_r octets, CRLF lines, no NUL
 * inside, followed by a NUL not counted in *len_r), or -1 with a sentence and
 * errno (lib/error.h; reading the original failed, out of memory, or EINVAL:
 * the envelope's sender is the null reverse-path "" — a notification is never
 * sent to it, RFC 3461 §6.2 — or nrcpts is 0, or offset/end are invalid).
 * Every value from the envelope or a remote reply is made safe first: CR, LF
 * and TAB become spaces and other control characters are dropped, so nothing
 * reaches a header or status field that could start a new line; long values
 * are cut (addresses at 512 octets, replies at 1200, with "..."). Reads the
 * original with pread() (the fd's offset is unchanged); the boundary is random
 * and checked not to occur in any part. */
int dsn_compose(const struct dsn_params *p, char **msg_r, size_t *len_r, const char **error_r);

/* Whether a composed notification has 8-bit octets, so that it must be sent
 * with BODY=8BITMIME (RFC 6152); a notification about an SMTPUTF8 message is
 * itself sent with SMTPUTF8 when its addresses need it (RFC 6533 §4). */
bool dsn_has_8bit(const char *msg, size_t len);

/* The Status to report for a remote reply: its enhanced code when it has one
 * whose class matches the reply code, else 2.0.0 / 4.0.0 / 5.0.0 by the reply's
 * class (RFC 3463 §3). buf
 * holds at least 16 octets; returns buf. */
const char *dsn_status_of_reply(unsigned code, const char *enhanced, char *buf);

#endif
