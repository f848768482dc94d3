/*
 * header-from — find and parse the From: field of a submitted message, so the
 * submission server can check that the authenticated user owns the author's
 * address (the author, RFC 5322 §3.6.2).
 *
 * Two pure pieces, no I/O and no heap:
 *
 * 1. A resumable scanner. The SMTP session feeds it the message bytes it spools
 *    (after dot-unstuffing), in chunks of any size, until the scanner says the
 *    header section is over. Lines end at LF; a CR just before the LF is part of
 *    the line end (bare-LF clients are tolerated). Field names compare without
 *    case and may have WSP before the colon (RFC 5322 §4.5.2 obs-from). A
 *    field is its name line plus the continuation lines that start with SP or
 *    HTAB; the header section ends at the first empty line (RFC 5322 §2.1), at
 *    the end of the message, or, as a limit, after HEADER_FROM_SECTION_MAX octets.
 *    Every From: field is counted; the body of the first is kept, unfolded.
 *    Lines that are not fields are skipped, not treated as the end.
 *
 * 2. A parser for that body: RFC 5322 §3.4 address-list (mailboxes and groups),
 *    with comments (§3.2.2), quoted strings (§3.2.4), obs-phrase display names
 *    ("Alice Q. Smith"), obs-route angle addresses (§4.4) and RFC 6532 UTF-8. Each
 *    addr-spec is then checked and normalised by smtp-address as an RFC 5321
 *    Mailbox, so it compares equal to the same address given in MAIL FROM.
 *
 * This is a security check (who may send as whom): whatever could make the
 * address we return differ from the one a mail reader shows is refused rather
 * than guessed at. Deliberately refused, though RFC 5322 allows it: CFWS inside
 * an addr-spec ("alice (x) @ example.org"), obs-local-part ("a.\"b\"@x"),
 * quoted strings or literals that RFC 5321 would not accept, empty list elements
 * ("a@x,,b@y"), local parts over 64 octets, and any control character (NUL, CR,
 * LF, DEL) or invalid UTF-8 anywhere in the value, comments included.
 */
#ifndef RAMPART_HEADER_FROM_H
#define RAMPART_HEADER_FROM_H

#include <stdbool.h>
#include <stddef.h>

/* Octets of unfolded From: body kept; a longer body is flagged too_long. */
#define HEADER_FROM_VALUE_MAX 4096
/* Octets of header section scanned (empty line included) before giving up. */
#define HEADER_FROM_SECTION_MAX (1024 * 1024)

/* Private state: allocate it (on the stack is fine, ~4.2 KB), use the functions. */
struct header_from_scan {
	size_t octets;          /* header-section octets consumed so far */
	unsigned state;         /* enum scan_state in header-from.c */
	unsigned name_pos;      /* octets of "from" matched in the field name */
	unsigned from_count;    /* From: fields seen */
	bool pending_cr;        /* last octet was a CR; is the next one LF? */
	bool capturing;         /* the current field is the first From: */
	bool body_started;      /* a non-WSP octet of the From: body was kept */
	bool done;
	bool too_long;          /* From: body over HEADER_FROM_VALUE_MAX */
	bool overflow;          /* header section over HEADER_FROM_SECTION_MAX */
	bool bad_octet;         /* NUL or a CR not before LF in the header section */
	bool value_bad;         /* ... and one of them is in the kept From: body */
	size_t value_len;
	char value[HEADER_FROM_VALUE_MAX + 1];
};

/* Prepares s for a new message. */
void header_from_scan_init(struct header_from_scan *s);

/*
 * Feeds the next len octets of the message. Returns how many were consumed: all
 * of them, or fewer once the header section has ended (the octets up to and
 * including the LF of the empty line); header_from_scan_done() is then true and
 * further calls consume nothing.
 */
size_t header_from_scan_feed(struct header_from_scan *s, const char *data, size_t len);

/* Call at the end of the message: a message may be all header and no empty line.
 * Ends the scan (done becomes true). Harmless when already done. */
void header_from_scan_finish(struct header_from_scan *s);

bool header_from_scan_done(const struct header_from_scan *s);

/* Number of From: fields seen (RFC 5322 §3.6: exactly one is allowed). */
unsigned header_from_scan_count(const struct header_from_scan *s);

/* The first From: body was longer than HEADER_FROM_VALUE_MAX. */
bool header_from_scan_too_long(const struct header_from_scan *s);

/* The header section passed HEADER_FROM_SECTION_MAX without ending; a later
 * From: field may have gone unseen. */
bool header_from_scan_overflow(const struct header_from_scan *s);

/* The header section holds a NUL or a CR not followed by LF. Readers disagree
 * on where such lines end, so a From: field could hide there. */
bool header_from_scan_bad_octet(const struct header_from_scan *s);

/*
 * The unfolded body of the first From: field (RFC 5322 §2.2.3: each CRLF or LF
 * before WSP removed, the WSP kept), without the WSP after the colon,
 * NUL-terminated. "" when there was no From: field, when it was too long, or when
 * it held a NUL: a truncated body must never reach header_from_parse.
 */
const char *header_from_scan_value(const struct header_from_scan *s);

/*
 * The verdict of the scan for the ownership check: 0 when it is done, ended
 * within the limit, saw no NUL or bare CR, and found exactly one From: field
 * whose body was kept whole; else -1 with *error_r a sentence for the reply.
 */
int header_from_scan_check(const struct header_from_scan *s, const char **error_r);

#define HEADER_FROM_MAX_MAILBOXES 32

/*
 * addr[i] is "local@domain" as smtp-address normalises a Mailbox: the local
 * part as written, unquoted if its quoted form is a plain Dot-string, quotes
 * kept if it needs them; the domain lower-cased (ASCII only; UTF-8 kept as
 * bytes); an address literal kept ("[192.0.2.1]"). At most 254 octets + NUL.
 */
struct header_mailboxes {
	unsigned n;
	char addr[HEADER_FROM_MAX_MAILBOXES][256];
};

/*
 * Parses value (NUL-terminated, normally header_from_scan_value()) as an RFC
 * 5322 §3.4 address-list; group members count as mailboxes. Returns 0 with
 * out->n ≥ 1, or -1 with *error_r a sentence when the value holds no mailbox,
 * more than HEADER_FROM_MAX_MAILBOXES, or anything malformed; out is then
 * unspecified. The caller must check every out->addr[i].
 */
int header_from_parse(const char *value, struct header_mailboxes *out, const char **error_r);

#endif
