/*
 * fuzz-smtp-reply — the SMTP client's reply parser and EHLO keyword reader on
 * arbitrary server output. The input is split on LF (a CR before it is
 * dropped, as lineio does); every line goes to the parser, and every line
 * after the first of a reply goes to the caps reader, as the client feeds
 * them. Lines are exact-size heap copies so ASan sees any read past them.
 * Checks what the header promises: codes in range, printable text within
 * its bound, NUL-terminated enhanced code, line counts within the limit.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp-reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_reply(const struct smtp_reply *r)
{
	assert(r->code >= 200 && r->code <= 599);
	assert(r->nlines >= 1 && r->nlines <= SMTP_REPLY_MAX_LINES);
	size_t tl = strnlen(r->text, sizeof(r->text));
	assert(tl <= SMTP_REPLY_MAX_TEXT);
	for (size_t i = 0; i < tl; i++)
		assert(r->text[i] >= 0x20 && r->text[i] < 0x7f);
	size_t el = strnlen(r->enhanced, sizeof(r->enhanced));
	assert(el < sizeof(r->enhanced));
	if (el > 0)
		assert(r->enhanced[0] == (char)('0' + r->code / 100));
	char buf[64];
	smtp_reply_format(r, buf, sizeof(buf));
	assert(strnlen(buf, sizeof(buf)) < sizeof(buf));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_reply_parser p;
	struct smtp_ehlo_caps caps;
	size_t start = 0;

	smtp_reply_parser_init(&p);
	smtp_ehlo_caps_init(&caps);
	while (start < size) {
		const uint8_t *lf = memchr(data + start, '\n', size - start);
		size_t end = lf != NULL ? (size_t)(lf - data) : size;
		size_t len = end - start;
		if (len > 0 && data[start + len - 1] == '\r')
			len--;
		char *line = malloc(len > 0 ? len : 1);
		if (line == NULL)
			return 0;
		memcpy(line, data + start, len);
		const char *error = NULL;
		int rc = smtp_reply_parse_line(&p, line, len, &error);
		if (rc < 0) {
			assert(error != NULL);
			smtp_ehlo_caps_init(&caps);
		} else {
			assert(error == NULL);
			if (p.reply.nlines > 1)
				smtp_ehlo_caps_line(&caps, len > 4 ? line + 4 : "", len > 4 ? len - 4 : 0);
			if (rc == 1) {
				check_reply(&p.reply);
				smtp_ehlo_caps_init(&caps);
			}
		}
		/* The caps reader also takes any line on its own. */
		smtp_ehlo_caps_line(&caps, line, len);
		free(line);
		start = end + 1;
	}
	return 0;
}
