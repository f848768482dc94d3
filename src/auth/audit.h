/*
 * audit — the audit log: one JSON object per line for every login decision,
 * block, lockout and administrative change.
 *
 * The auth process (every SMTP AUTH, later IMAP and POP3 logins) and the admin
 * CLI append to the same file. Each event is written with a single write(2) on
 * an O_APPEND descriptor, so lines from concurrent writers never interleave.
 * `rampart log` reads the file back; contrib/fail2ban watches the one-line text
 * form of failures that audit_log_failure_line() sends to the process log.
 *
 * There is no field for a password, token or OTP: secrets cannot reach the log.
 * Strings may come from peers: they are made valid UTF-8 (bad bytes become
 * U+FFFD), capped at AUDIT_STRING_MAX bytes, and JSON escaping keeps control
 * characters and newlines out of the line.
 *
 * Line format (keys in this order; absent fields are left out):
 *   {"ts":"2026-11-21T10:00:00.123Z","event":"auth","result":"fail",
 *    "reason":"bad-credentials","user":"bob@example.org","ip":"127.0.0.2",
 *    "port":40312,"listener":"submission","proto":"smtp","mech":"PLAIN",
 *    "tls":"TLSv1.3","session":"...","network":"127.0.0.0/24",
 *    "until":"2026-11-21T10:05:00Z","action":"user add","target":"...","actor":"root"}
 */
#ifndef RAMPART_AUDIT_H
#define RAMPART_AUDIT_H

#include <stdint.h>

/* Longest string value written, in bytes (after sanitising). */
#define AUDIT_STRING_MAX 512
/* Longest user name in the text failure line, in bytes. */
#define AUDIT_TEXT_USER_MAX 128

struct audit_log;

struct audit_event {
	const char *event;     /* "auth", "block", "unblock", "lockout", "admin"; required */
	const char *result;    /* "ok" / "fail" / NULL */
	/* auth failures: "bad-credentials", "unknown-user", "locked-out", "rate-limited",
	 * "blocked", "tls-required", "mechanism-disabled", "protocol-disabled",
	 * "network-not-allowed", "account-disabled", "malformed", "cancelled",
	 * "temporary-failure"; NULL on success */
	const char *reason;
	const char *user;      /* as given by the client (may be garbage) or canonical */
	const char *ip;
	unsigned port;         /* 0 = absent */
	const char *listener;
	const char *proto;     /* "smtp", "imap", "pop3" */
	const char *mech;
	const char *tls;       /* "TLSv1.3" or NULL */
	const char *session;
	const char *network;   /* block/unblock: "127.0.0.0/24" */
	int64_t until;         /* block/lockout expiry, Unix seconds; 0 = none */
	const char *action;    /* admin: "user add", "user del", "guard unblock", ... */
	const char *target;    /* admin: the object acted on */
	const char *actor;     /* admin: who ran the CLI (login name / SUDO_USER / uid) */
};

/* Opens path for appending, creating it with mode 0600; NULL with a sentence in
 * *error_r (valid until the next failing audit call on this thread). */
struct audit_log *audit_open(const char *path, const char **error_r);
/* Closes the file and frees a; sets *a to NULL. NULL and *a == NULL are fine. */
void audit_close(struct audit_log **a);
/* Reopens the file if the path no longer names the file that is open (renamed
 * or removed by log rotation): one stat(2) when nothing changed. If reopening
 * fails, the old descriptor stays in use and a warning goes to the process log. */
void audit_reopen_if_rotated(struct audit_log *a);
/* Appends one event as a JSON object and "\n" in one write(2). "ts" (RFC 3339
 * UTC with milliseconds) comes first, then "event", then the non-NULL, non-zero
 * fields in the order of struct audit_event; "until" is written as RFC 3339 UTC.
 * Returns 0, or -1 with a sentence in *error_r (a full disk, a short write). */
int audit_write(struct audit_log *a, const struct audit_event *ev, const char **error_r);

/* Sends the stable text form of a failure to the process log (log_warn):
 *   auth failure: ip=IP port=PORT user="USER" proto=P listener=L mech=M reason=R session=S
 * The address comes first so that nothing a client chooses can move it. In USER,
 * '"', '\' and every byte that is not printable ASCII become '?', capped at
 * AUDIT_TEXT_USER_MAX bytes; the other values are tokens in which spaces, '=',
 * '"', '\' and non-printable bytes become '?'. A missing value prints as -
 * (a missing user as user=-, unquoted, so it differs from a user named "-"). */
void audit_log_failure_line(const struct audit_event *ev);

#endif
