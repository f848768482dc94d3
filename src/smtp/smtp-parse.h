/*
 * smtp-parse — SMTP command lines and their arguments, as a pure parser.
 *
 * The session's line I/O hands over one line without its CRLF, at most 512 octets
 * (RFC 5321 §4.5.3.1.4). smtp_parse_command() splits it into a verb and the
 * argument text; smtp_parse_mail(), smtp_parse_rcpt() and smtp_parse_bdat() parse
 * the arguments of those verbs. Nothing here allocates or does I/O; every function
 * reads only the len octets it is given (no NUL termination assumed) and writes
 * only into caller-supplied fixed-size storage.
 *
 * MAIL and RCPT failures come with the reply to send: a code (RFC 5321 §4.2.3), an
 * enhanced status code (RFC 3463) and a sentence, e.g.
 *   501 5.5.4  syntax error in the command or its parameters
 *   501 5.1.7  bad sender address syntax       (MAIL)
 *   501 5.1.3  bad recipient address syntax    (RCPT)
 *   553 5.6.7  non-ASCII address without SMTPUTF8 (RFC 6531 §3.5)
 *   555 5.5.4  parameter unknown, or of an extension not offered (RFC 5321 §4.1.1.11)
 */
#ifndef RAMPART_SMTP_PARSE_H
#define RAMPART_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp/smtp-address.h"

enum smtp_verb {
	SMTP_VERB_UNKNOWN,
	SMTP_VERB_EHLO,
	SMTP_VERB_HELO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_BDAT,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_HELP,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
};

struct smtp_command {
	enum smtp_verb verb;
	const char *name; /* the verb as sent, name_len octets inside the line */
	size_t name_len;
	/* The text after the verb and one SP, arg_len octets inside the line (so
	 * NUL-terminated only if the line was); "" with arg_len 0 when none. */
	const char *arg;
	size_t arg_len;
};

/*
 * Splits line[0..len) into verb and argument. The verb is matched exactly and
 * case-insensitively ("MAILX" is SMTP_VERB_UNKNOWN, not MAIL); an unknown verb
 * still returns 0 so the session can answer 500 5.5.1 and count it. Returns -1
 * with a sentence (answer 500 5.5.2) for an empty line, a line starting with a
 * space, a NUL, CR or LF anywhere, or a non-ASCII or control octet in the verb.
 */
int smtp_parse_command(const char *line, size_t len, struct smtp_command *cmd,
		       const char **error_r);

/* The canonical upper-case name of a verb ("UNKNOWN" for SMTP_VERB_UNKNOWN). */
const char *smtp_verb_name(enum smtp_verb verb);

/* Extensions the server advertised in EHLO: parameters of others get 555. */
enum smtp_ext {
	SMTP_EXT_SIZE = 1 << 0,     /* RFC 1870: SIZE= */
	SMTP_EXT_8BITMIME = 1 << 1, /* RFC 6152: BODY= */
	SMTP_EXT_SMTPUTF8 = 1 << 2, /* RFC 6531: SMTPUTF8, UTF-8 addresses */
	SMTP_EXT_DSN = 1 << 3,      /* RFC 3461: RET= ENVID= NOTIFY= ORCPT= */
	SMTP_EXT_AUTH = 1 << 4,     /* RFC 4954 §5: AUTH= */
};

/* RFC 3461 §4.4 and §4.2 value limits; RFC 4954's AUTH= is bounded by the line. */
#define SMTP_ENVID_MAX 100
#define SMTP_ORCPT_MAX 500
#define SMTP_AUTH_PARAM_MAX 500

enum smtp_body { SMTP_BODY_UNSPEC, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME };
enum smtp_ret { SMTP_RET_UNSPEC, SMTP_RET_FULL, SMTP_RET_HDRS };

struct smtp_mail_args {
	struct smtp_address from; /* reverse-path; from.null_path for "<>" */
	bool size_set;
	uint64_t size;            /* SIZE= (RFC 1870); the caller compares it to its limit */
	enum smtp_body body;      /* BODY= (RFC 6152) */
	bool smtputf8;            /* SMTPUTF8 (RFC 6531 §3.4) */
	enum smtp_ret ret;        /* RET= (RFC 3461 §4.3) */
	/* ENVID= and AUTH= are kept raw: validated xtext, not decoded, so they can be
	 * passed on unchanged when relaying. "" when absent. smtp_xtext_decode() gives
	 * the text (for a DSN's Original-Envelope-Id, or the AUTH identity). */
	char envid[SMTP_ENVID_MAX + 1];
	char auth[SMTP_AUTH_PARAM_MAX + 1]; /* "<>" is a valid value (RFC 4954 §5) */
};

/*
 * Parses the argument of MAIL: "FROM:" reverse-path *(SP esmtp-param)
 * (RFC 5321 §4.1.1.2). "FROM:" is case-insensitive and one space after the colon
 * is tolerated (many clients send it), as are extra spaces between and after
 * parameters. ext (enum smtp_ext) says what was advertised. Returns 0, or -1 with
 * the reply in *code_r, *enh_r ("5.5.4") and *error_r. A duplicate parameter is a
 * syntax error (501 5.5.4).
 */
int smtp_parse_mail(const char *arg, size_t len, unsigned ext, struct smtp_mail_args *out,
		    int *code_r, const char **enh_r, const char **error_r);

/* NOTIFY= bits (RFC 3461 §4.1); 0 means no NOTIFY parameter. */
enum smtp_notify {
	SMTP_NOTIFY_NEVER = 1 << 0,
	SMTP_NOTIFY_SUCCESS = 1 << 1,
	SMTP_NOTIFY_FAILURE = 1 << 2,
	SMTP_NOTIFY_DELAY = 1 << 3,
};

struct smtp_rcpt_args {
	struct smtp_address to; /* to.postmaster for "<Postmaster>" without domain */
	unsigned notify;        /* enum smtp_notify; NEVER is never combined */
	/* ORCPT=addr-type;xtext (RFC 3461 §4.2), kept raw like ENVID: orcpt_type is
	 * the addr-type atom as sent ("rfc822"), orcpt_addr the validated xtext, not
	 * decoded, as RFC 3461 does not constrain it to the addr-type's syntax. Both
	 * "" when absent. */
	char orcpt_type[SMTP_ORCPT_MAX + 1];
	char orcpt_addr[SMTP_ORCPT_MAX + 1];
};

/*
 * Parses the argument of RCPT: "TO:" forward-path *(SP esmtp-param)
 * (RFC 5321 §4.1.1.3), with the same tolerance and replies as smtp_parse_mail.
 * ext: as for MAIL, except that SMTP_EXT_SMTPUTF8 must be set only when this
 * transaction's MAIL FROM carried SMTPUTF8 (RFC 6531 §3.4): it is what allows a
 * non-ASCII recipient.
 */
int smtp_parse_rcpt(const char *arg, size_t len, unsigned ext, struct smtp_rcpt_args *out,
		    int *code_r, const char **enh_r, const char **error_r);

/*
 * Parses the argument of BDAT: chunk-size [SP "LAST"] (RFC 3030 §3), digits
 * only, no sign, no other spaces; a size beyond uint64_t is an error. "LAST" is
 * case-insensitive. Returns 0 or -1 with a sentence (answer 501 5.5.4).
 */
int smtp_parse_bdat(const char *arg, size_t len, uint64_t *size_r, bool *last_r,
		    const char **error_r);

/*
 * xtext (RFC 3461 §4): octets "!".."~" except "+" and "=", and "+" followed by
 * two upper-case hexadecimal digits.
 */
bool smtp_xtext_valid(const char *s, size_t len);

/*
 * Decodes xtext s[0..len) into out (outsize octets, NUL-terminated) and sets
 * *outlen_r to the decoded length. Returns -1 when s is not valid xtext, when it
 * encodes a NUL ("+00"), or when out is too small (outsize must exceed the decoded
 * length; len + 1 is always enough).
 */
int smtp_xtext_decode(const char *s, size_t len, char *out, size_t outsize, size_t *outlen_r);

#endif
