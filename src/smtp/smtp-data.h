/*
 * smtp-data — the decoder of a message body sent with DATA or BDAT.
 *
 * A resumable byte-level state machine, fed arbitrary chunks as they arrive, in
 * O(1) memory whatever the input: the state is the caller-allocated struct below.
 * Decoded message octets are appended to an evbuffer with their CRLF line endings
 * as on the wire.
 *
 * SMTP_DATA_DOT (after DATA, RFC 5321 §4.5.2): a leading "." is removed from each
 * line (dot-unstuffing) and the message ends at <CRLF>.<CRLF>. The CRLF that ended
 * the DATA command counts, so a first line "." ends an empty message.
 * SMTP_DATA_RAW (BDAT chunks, RFC 3030): no dot handling and no end detection.
 *
 * Only <CRLF>.<CRLF> ends a message. A bare LF or bare CR anywhere is an error,
 * never normalised (RFC 5321 §2.3.8): this defeats "SMTP smuggling", where
 * <LF>.<LF>, <CR>.<CR> and similar are read as the end of data by one server and
 * not by another, letting a second message hide inside the first.
 *
 * Errors are recorded, not returned: the FIRST error is kept, output stops
 * (memory stays bounded), and the decoder goes on scanning to the real
 * terminator so the session can answer after it, in step with the client. The
 * reply for each error (smtp_data_error_reply):
 *   SMTP_DATA_ERR_TOO_BIG        552 5.3.4  RFC 5321 §4.5.3.1.9, RFC 1870, RFC 3463 X.3.4
 *   SMTP_DATA_ERR_LINE_TOO_LONG  500 5.6.0  RFC 5321 §4.5.3.1.6 limit, §4.5.3.1.9 "500 Line
 *                                           too long"; X.6.0 (other media error) because it is
 *                                           the content, not a command, that is malformed
 *   SMTP_DATA_ERR_BARE_LF        550 5.6.0  RFC 5321 §2.3.8
 *   SMTP_DATA_ERR_BARE_CR        550 5.6.0  RFC 5321 §2.3.8
 *   SMTP_DATA_ERR_NUL            550 5.6.0  RFC 5322 §3.5 text and RFC 2045 §2.8 exclude NUL
 *   SMTP_DATA_ERR_INTERNAL       451 4.3.0  RFC 5321 §4.2.3 "local error in processing"
 */
#ifndef RAMPART_SMTP_DATA_H
#define RAMPART_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;

enum smtp_data_mode {
	SMTP_DATA_DOT, /* DATA */
	SMTP_DATA_RAW, /* BDAT */
};

enum smtp_data_error {
	SMTP_DATA_ERR_NONE,
	SMTP_DATA_ERR_TOO_BIG,       /* more than max_size decoded octets */
	SMTP_DATA_ERR_LINE_TOO_LONG, /* a line of more than max_line octets, CRLF included */
	SMTP_DATA_ERR_BARE_LF,
	SMTP_DATA_ERR_BARE_CR,
	SMTP_DATA_ERR_NUL,
	SMTP_DATA_ERR_INTERNAL, /* out could not grow (allocation failure) */
};

/* Caller-allocated; the fields are private: use the functions below. */
struct smtp_data_decoder {
	enum smtp_data_mode mode;
	int state;
	enum smtp_data_error error;
	uint64_t max_size;
	uint64_t size;
	uint64_t max_line;
	uint64_t line_len;
	bool eightbit;
	bool done;
};

/*
 * Prepares d for one message. max_size: the most decoded octets accepted (0: no
 * limit); max_line: the longest line in octets including its CRLF, 1000 per
 * RFC 5321 §4.5.3.1.6 (0: no limit). For BDAT, init once per message (at the first
 * chunk) and feed every chunk to the same decoder: a CRLF may straddle chunks.
 */
void smtp_data_init(struct smtp_data_decoder *d, enum smtp_data_mode mode,
		    uint64_t max_size, size_t max_line);

/*
 * Decodes in[0..len), appending message octets to out while no error is set, and
 * returns how many input octets it consumed. SMTP_DATA_RAW consumes everything.
 * SMTP_DATA_DOT stops right after the terminating <CRLF>.<CRLF> and leaves the
 * rest (pipelined commands) unconsumed; once done it consumes nothing.
 */
size_t smtp_data_feed(struct smtp_data_decoder *d, const void *in, size_t len,
		      struct evbuffer *out);

/* SMTP_DATA_DOT: whether the terminator has been seen (the message is complete). */
bool smtp_data_done(const struct smtp_data_decoder *d);

/*
 * SMTP_DATA_RAW, at BDAT LAST: a CR left pending at the end is a bare CR; a
 * message that does not end with CRLF gets one appended (counted against the
 * limits); an empty message stays empty. Marks the message done. Returns 0, or
 * -1 when an error is set (then see smtp_data_error).
 */
int smtp_data_finish_raw(struct smtp_data_decoder *d, struct evbuffer *out);

/* The first error seen, SMTP_DATA_ERR_NONE if none. */
enum smtp_data_error smtp_data_error(const struct smtp_data_decoder *d);

/* Decoded octets seen so far (dot-unstuffed; counting continues after an error). */
uint64_t smtp_data_size(const struct smtp_data_decoder *d);

/* Whether any decoded octet was above 0x7F (8-bit content, RFC 6152). */
bool smtp_data_8bit(const struct smtp_data_decoder *d);

/*
 * The reply for an error (see the table above): *code_r, *enh_r ("5.3.4") and
 * *text_r (a sentence without code). For SMTP_DATA_ERR_NONE: 250 2.0.0.
 */
void smtp_data_error_reply(enum smtp_data_error error, int *code_r, const char **enh_r,
			   const char **text_r);

#endif
