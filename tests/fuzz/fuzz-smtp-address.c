/* libFuzzer target: RFC 5321/6531 path and mailbox parsing. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "smtp/smtp-address.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_address a;
	enum smtp_address_error why;
	const char *error;
	size_t used;
	unsigned flags = size > 0 ? data[0] & 7 : 0;

	if (smtp_address_parse_path((const char *)data, size, flags, &a, &used, &why, &error) == 0) {
		/* Invariants: NUL-terminated outputs within their bounds, consumed ≤ size. */
		if (used > size || strlen(a.mailbox) > SMTP_ADDRESS_MAILBOX_MAX ||
		    strlen(a.local) > SMTP_ADDRESS_LOCAL_MAX || strlen(a.domain) > SMTP_ADDRESS_DOMAIN_MAX)
			__builtin_trap();
	}
	smtp_address_parse_mailbox((const char *)data, size, flags, &a, &why, &error);
	smtp_address_utf8_valid((const char *)data, size);
	return 0;
}
