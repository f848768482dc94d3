/*
 * libFuzzer target: header-from. The first two octets seed the chunk sizes; the
 * rest is a message, fed to the scanner in those chunks and again whole (both
 * runs must agree on everything), then the From: value is parsed. The rest is
 * also parsed directly as a From: value, to reach the parser without needing
 * the fuzzer to find "From:" first.
 *
 * Invariants: consumed ≤ size; a value NUL-terminated within
 * HEADER_FROM_VALUE_MAX with no NUL, CR or LF in it; on a successful parse
 * 1 ≤ n ≤ HEADER_FROM_MAX_MAILBOXES and every address NUL-terminated within its
 * array, free of controls, with exactly one '@' outside quotes, neither first
 * nor last.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/header-from.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_mailboxes(const char *value)
{
	struct header_mailboxes mb;
	const char *error = NULL;

	memset(&mb, 0xa5, sizeof(mb)); /* no terminator unless the parser writes one */
	if (header_from_parse(value, &mb, &error) != 0) {
		if (error == NULL)
			__builtin_trap();
		return;
	}
	if (mb.n < 1 || mb.n > HEADER_FROM_MAX_MAILBOXES)
		__builtin_trap();
	for (unsigned i = 0; i < mb.n; i++) {
		const char *a = mb.addr[i];
		size_t len = strnlen(a, sizeof(mb.addr[i]));
		size_t at = 0, ats = 0;
		bool quoted = false;

		if (len >= sizeof(mb.addr[i]) || len > 254)
			__builtin_trap();
		for (size_t j = 0; j < len; j++) {
			unsigned char ch = (unsigned char)a[j];

			if (ch < 32 || ch == 127)
				__builtin_trap();
			if (quoted && ch == '\\') {
				j++; /* quoted-pair */
				continue;
			}
			if (ch == '"')
				quoted = !quoted;
			else if (ch == '@' && !quoted) {
				ats++;
				at = j;
			}
		}
		if (quoted || ats != 1 || at == 0 || at + 1 >= len)
			__builtin_trap();
	}
}

struct outcome {
	size_t consumed;
	unsigned count;
	bool too_long, overflow, bad_octet, check;
};

static void scan(const char *msg, size_t len, unsigned seed, struct header_from_scan *s,
		 struct outcome *o)
{
	const char *error;
	size_t off = 0;

	memset(o, 0, sizeof(*o)); /* padding too: the outcomes are memcmp'd */
	header_from_scan_init(s);
	while (off < len && !header_from_scan_done(s)) {
		size_t want = len - off, n;

		if (seed != 0) {
			seed = seed * 1103515245u + 12345u;
			want = 1 + (seed >> 16) % 17;
			if (want > len - off)
				want = len - off;
		}
		n = header_from_scan_feed(s, msg + off, want);
		if (n > want || (n < want && !header_from_scan_done(s)))
			__builtin_trap();
		off += n;
	}
	header_from_scan_finish(s);
	o->consumed = off;
	o->count = header_from_scan_count(s);
	o->too_long = header_from_scan_too_long(s);
	o->overflow = header_from_scan_overflow(s);
	o->bad_octet = header_from_scan_bad_octet(s);
	o->check = header_from_scan_check(s, &error) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct header_from_scan a, b;
	struct outcome oa, ob;
	const char *msg;
	const char *va, *vb;
	unsigned seed;
	size_t len, vlen;
	char *copy;

	if (size < 2)
		return 0;
	seed = ((unsigned)data[0] << 8 | data[1]) | 1u;
	msg = (const char *)data + 2;
	len = size - 2;

	scan(msg, len, seed, &a, &oa);
	scan(msg, len, 0, &b, &ob);
	va = header_from_scan_value(&a);
	vb = header_from_scan_value(&b);
	if (memcmp(&oa, &ob, sizeof(oa)) != 0 || strcmp(va, vb) != 0 || oa.consumed > len)
		__builtin_trap();
	vlen = strnlen(va, HEADER_FROM_VALUE_MAX + 1);
	if (vlen > HEADER_FROM_VALUE_MAX || memchr(va, '\r', vlen) != NULL ||
	    memchr(va, '\n', vlen) != NULL)
		__builtin_trap();
	if (oa.check && oa.count != 1)
		__builtin_trap();
	check_mailboxes(va);

	copy = malloc(len + 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, msg, len);
	copy[len] = '\0';
	check_mailboxes(copy);
	free(copy);
	return 0;
}
