/*
 * rampart-log — `rampart log`: read the audit log (see auth/audit.h).
 *
 * Reads cfg->audit_log read-only, keeps the events that pass every filter given,
 * and prints them one per line: a human form by default, the raw JSON line with
 * --json. Lines that are not JSON audit events are skipped and counted on stderr
 * at the end. A missing file is an empty log (with --follow: wait for it).
 *
 * Filters (all given must match):
 *   --user ADDR     the "user" field, compared case-insensitively
 *   --ip ADDR|CIDR  "ip" inside the address or network, or a block's "network"
 *                   overlapping it (so --ip 192.0.2.7 also shows a block of
 *                   192.0.2.0/24); an "ip" that is not an address is compared as text
 *   --failures      auth results "fail", and block and lockout events
 *   --event NAME    the "event" field ("auth", "block", "unblock", "lockout", "admin")
 * Output:
 *   -n N            only the last N matching lines of what the file holds now
 *   -f, --follow    then keep printing lines as they are appended, across
 *                   rotation (rename, removal, truncation), until SIGINT/SIGTERM
 *   --json          print the raw JSON lines
 *
 * Human form, fields in this order, absent ones left out:
 *   TS EVENT [RESULT] [USER] [IP[:PORT]] [LISTENER] [PROTO] [MECH] [TLS] [REASON]
 *   [NETWORK] [until UNTIL] [ACTION] [TARGET] [by ACTOR] [session=SESSION]
 * e.g. "2026-11-21T10:00:00.123Z auth fail bob@example.org 127.0.0.2:40312 submission
 * smtp PLAIN TLSv1.3 bad-credentials session=a1b2", "... block 127.0.0.0/24 until
 * 2026-11-21T10:05:00Z", "... admin user add bob@example.org by root". Control
 * characters (C0, DEL, C1) and bidirectional overrides in values print as '?'.
 */
#ifndef RAMPART_CMD_LOG_H
#define RAMPART_CMD_LOG_H

struct config;

/* For the `rampart help` text. */
#define RAMPART_LOG_USAGE \
    "Audit log:\n" \
    "  log [--user ADDR] [--ip ADDR|CIDR] [--failures] [--event NAME]\n" \
    "      [-n N] [-f|--follow] [--json]\n" \
    "                                 show logins, blocks, lockouts and admin changes\n" \
    "                                 from the audit log; -f keeps following it\n"

/* Runs `rampart log`; argv[0] is "log". Returns the exit status: 0 done, 1 the
 * log could not be read or the output not written, 2 usage error. */
int rampart_log_main(const struct config *cfg, int argc, char **argv);

#endif
