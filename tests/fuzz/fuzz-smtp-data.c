/* libFuzzer target: the DATA/BDAT decoder. The first byte picks the mode and the
 * chunk size; output must be the same however the input is split. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <event2/buffer.h>

#include "smtp/smtp-data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
run(const uint8_t *in, size_t len, enum smtp_data_mode mode, size_t chunk, struct evbuffer *out,
    struct smtp_data_decoder *d)
{
	smtp_data_init(d, mode, 4096, 200);
	size_t pos = 0;
	while (pos < len && !smtp_data_done(d)) {
		size_t n = len - pos < chunk ? len - pos : chunk;
		size_t used = smtp_data_feed(d, in + pos, n, out);
		if (used > n)
			__builtin_trap();
		pos += used;
		if (used < n)
			break;   /* terminator seen: the rest is pipelined input */
	}
	if (mode == SMTP_DATA_RAW)
		smtp_data_finish_raw(d, out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	enum smtp_data_mode mode = data[0] & 1 ? SMTP_DATA_RAW : SMTP_DATA_DOT;
	size_t chunk = (size_t)(data[0] >> 1) + 1;
	struct evbuffer *whole = evbuffer_new(), *split = evbuffer_new();
	struct smtp_data_decoder d1, d2;
	run(data + 1, size - 1, mode, size, whole, &d1);
	run(data + 1, size - 1, mode, chunk, split, &d2);
	size_t n = evbuffer_get_length(whole);
	if (n != evbuffer_get_length(split) || smtp_data_error(&d1) != smtp_data_error(&d2) ||
	    smtp_data_done(&d1) != smtp_data_done(&d2) ||
	    (n > 0 && memcmp(evbuffer_pullup(whole, -1), evbuffer_pullup(split, -1), n) != 0))
		__builtin_trap();
	/* Bounded output whatever the input: max_size plus a final CRLF. */
	if (n > 4096 + 2)
		__builtin_trap();
	evbuffer_free(whole);
	evbuffer_free(split);
	return 0;
}
