/*
 * smtp-data — DATA / BDAT body decoder (RFC 5321 §4.5.2, §2.3.8; RFC 3030).
 *
 * One pass over each chunk. Octets that go to the output unchanged are flushed
 * as runs of the input; the only octets ever withheld are a "." at the start of
 * a line and, after it, a CR that may begin the terminator. Because output stops
 * at the first error and everything before the offending octet is flushed, the
 * output is the same however the input is split.
 */
#include "smtp/smtp-data.h"

#include <assert.h>
#include <string.h>

#include <event2/buffer.h>

enum data_state {
	ST_BOL,    /* at the start of a line: after DATA's CRLF or a CRLF */
	ST_TEXT,   /* inside a line */
	ST_CR,     /* after a CR (emitted) that needs its LF */
	ST_DOT,    /* DOT mode: after a "." (withheld) at the start of a line */
	ST_DOT_CR, /* DOT mode: after <CRLF>.<CR> (both withheld) */
};

struct feed {
	struct smtp_data_decoder *d;
	const unsigned char *p;
	size_t run; /* start of the input octets not yet flushed */
	struct evbuffer *out;
};

/* Emits p[run..upto) unless an error is set; either way they are dealt with. */
static void flush(struct feed *f, size_t upto)
{
	if (f->d->error == SMTP_DATA_ERR_NONE && upto > f->run &&
	    evbuffer_add(f->out, f->p + f->run, upto - f->run) != 0)
		f->d->error = SMTP_DATA_ERR_INTERNAL;
	f->run = upto;
}

/* Records the first error, found at input offset at: what precedes it is output. */
static void set_error(struct feed *f, size_t at, enum smtp_data_error error)
{
	if (f->d->error != SMTP_DATA_ERR_NONE)
		return;
	flush(f, at);
	if (f->d->error == SMTP_DATA_ERR_NONE)
		f->d->error = error;
}

/*
 * Accounts for n decoded octets starting at input offset at (the caller resets
 * line_len after a line's LF). The first octet past max_size, or past max_line in the current line,
 * sets the error (TOO_BIG first when both are crossed by the same octet).
 */
static void count(struct feed *f, size_t at, uint64_t n)
{
	struct smtp_data_decoder *d = f->d;
	uint64_t size_room = UINT64_MAX, line_room = UINT64_MAX;

	if (d->max_size != 0)
		size_room = d->size >= d->max_size ? 0 : d->max_size - d->size;
	if (d->max_line != 0)
		line_room = d->line_len >= d->max_line ? 0 : d->max_line - d->line_len;
	if (n > size_room && size_room <= line_room)
		set_error(f, at + size_room, SMTP_DATA_ERR_TOO_BIG); /* RFC 1870 */
	else if (n > line_room)
		set_error(f, at + line_room, SMTP_DATA_ERR_LINE_TOO_LONG); /* RFC 5321 §4.5.3.1.6 */
	d->size += n;
	d->line_len += n;
}

void smtp_data_init(struct smtp_data_decoder *d, enum smtp_data_mode mode,
		    uint64_t max_size, size_t max_line)
{
	memset(d, 0, sizeof(*d));
	d->mode = mode;
	/* RFC 5321 §4.5.2: the CRLF ending the DATA command precedes the first line. */
	d->state = ST_BOL;
	d->error = SMTP_DATA_ERR_NONE;
	d->max_size = max_size;
	d->max_line = max_line;
}

static bool is_plain(unsigned char ch)
{
	return ch != '\r' && ch != '\n' && ch != '\0';
}

size_t smtp_data_feed(struct smtp_data_decoder *d, const void *in, size_t len,
		      struct evbuffer *out)
{
	struct feed f = { d, in, 0, out };

	if (d->done)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = f.p[i];

		switch ((enum data_state)d->state) {
		case ST_BOL:
			if (ch == '.' && d->mode == SMTP_DATA_DOT) {
				/* RFC 5321 §4.5.2: the first "." of a line is never data —
				 * either transparency stuffing or the terminator. */
				flush(&f, i);
				f.run = i + 1;
				d->state = ST_DOT;
				continue;
			}
			break;
		case ST_DOT:
			if (ch == '\r') {
				f.run = i + 1;
				d->state = ST_DOT_CR;
				continue;
			}
			break; /* the dot was stuffing; ch is text (an LF is bare) */
		case ST_DOT_CR:
			if (ch == '\n') {
				/* <CRLF>.<CRLF>: the only end of the message. */
				flush(&f, i);
				d->done = true;
				return i + 1;
			}
			/* <CRLF>.<CR> then not LF: smuggling shape, never an end. */
			set_error(&f, i, SMTP_DATA_ERR_BARE_CR);
			count(&f, i, 1);
			break;
		case ST_CR:
			if (ch == '\n') {
				count(&f, i, 1);
				d->line_len = 0;
				d->state = ST_BOL;
				continue;
			}
			set_error(&f, i, SMTP_DATA_ERR_BARE_CR); /* RFC 5321 §2.3.8 */
			break;
		case ST_TEXT:
			break;
		}

		/* ch is text, inside a line or at its start. */
		if (ch == '\r') {
			count(&f, i, 1);
			d->state = ST_CR;
			continue;
		}
		if (ch == '\n')
			set_error(&f, i, SMTP_DATA_ERR_BARE_LF); /* RFC 5321 §2.3.8 */
		else if (ch == '\0')
			set_error(&f, i, SMTP_DATA_ERR_NUL);
		if (!is_plain(ch)) {
			count(&f, i, 1);
		} else {
			/* A run of ordinary octets is accounted for at once. */
			size_t j = i;

			while (j < len && is_plain(f.p[j])) {
				if (f.p[j] >= 0x80)
					d->eightbit = true;
				j++;
			}
			count(&f, i, j - i);
			i = j - 1;
		}
		d->state = ST_TEXT;
	}
	flush(&f, len);
	return len;
}

bool smtp_data_done(const struct smtp_data_decoder *d)
{
	return d->done;
}

int smtp_data_finish_raw(struct smtp_data_decoder *d, struct evbuffer *out)
{
	assert(d->mode == SMTP_DATA_RAW);
	if (!d->done) {
		if (d->state == ST_CR) {
			if (d->error == SMTP_DATA_ERR_NONE)
				d->error = SMTP_DATA_ERR_BARE_CR;
		} else if (d->state == ST_TEXT) {
			/* RFC 3030 §3: the message must end with CRLF; supply it. */
			(void)smtp_data_feed(d, "\r\n", 2, out);
		}
		d->done = true;
	}
	return d->error == SMTP_DATA_ERR_NONE ? 0 : -1;
}

enum smtp_data_error smtp_data_error(const struct smtp_data_decoder *d)
{
	return d->error;
}

uint64_t smtp_data_size(const struct smtp_data_decoder *d)
{
	return d->size;
}

bool smtp_data_8bit(const struct smtp_data_decoder *d)
{
	return d->eightbit;
}

void smtp_data_error_reply(enum smtp_data_error error, int *code_r, const char **enh_r,
			   const char **text_r)
{
	switch (error) {
	case SMTP_DATA_ERR_NONE:
		*code_r = 250;
		*enh_r = "2.0.0";
		*text_r = "message accepted";
		return;
	case SMTP_DATA_ERR_TOO_BIG:
		*code_r = 552;
		*enh_r = "5.3.4";
		*text_r = "message size exceeds fixed maximum message size";
		return;
	case SMTP_DATA_ERR_LINE_TOO_LONG:
		*code_r = 500;
		*enh_r = "5.6.0";
		*text_r = "line too long (RFC 5321 §4.5.3.1.6)";
		return;
	case SMTP_DATA_ERR_BARE_LF:
	case SMTP_DATA_ERR_BARE_CR:
		*code_r = 550;
		*enh_r = "5.6.0";
		*text_r = "bare CR or LF not allowed, RFC 5321 §2.3.8";
		return;
	case SMTP_DATA_ERR_NUL:
		*code_r = 550;
		*enh_r = "5.6.0";
		*text_r = "NUL byte not allowed in message";
		return;
	case SMTP_DATA_ERR_INTERNAL:
		break;
	}
	*code_r = 451;
	*enh_r = "4.3.0";
	*text_r = "local error in processing";
}
