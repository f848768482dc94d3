/* libFuzzer target: SMTP command line parsing (verb, MAIL, RCPT, BDAT arguments). */
#include <stddef.h>
#include <stdint.h>

#include "smtp/smtp-parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_command cmd;
	struct smtp_mail_args mail;
	struct smtp_rcpt_args rcpt;
	const char *error, *enh;
	int code;
	uint64_t chunk;
	bool last;
	unsigned ext = size > 0 ? data[0] : 0;

	if (smtp_parse_command((const char *)data, size, &cmd, &error) == 0) {
		switch (cmd.verb) {
		case SMTP_VERB_MAIL:
			smtp_parse_mail(cmd.arg, cmd.arg_len, ext, &mail, &code, &enh, &error);
			break;
		case SMTP_VERB_RCPT:
			smtp_parse_rcpt(cmd.arg, cmd.arg_len, ext, &rcpt, &code, &enh, &error);
			break;
		case SMTP_VERB_BDAT:
			smtp_parse_bdat(cmd.arg, cmd.arg_len, &chunk, &last, &error);
			break;
		default:
			break;
		}
	}
	/* The argument parsers also take raw input directly. */
	smtp_parse_mail((const char *)data, size, ext, &mail, &code, &enh, &error);
	smtp_parse_rcpt((const char *)data, size, ext, &rcpt, &code, &enh, &error);
	return 0;
}
