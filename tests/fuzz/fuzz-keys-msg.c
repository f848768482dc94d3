/*
 * libFuzzer target: the keys-msg decoders (the first byte picks one) on
 * arbitrary frames, with invariants: whatever decodes keeps every promised
 * bound (counts, names valid, digest and signature lengths, statuses and key
 * types in range) and encodes back to exactly the same octets.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "keys/keys-msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
same_bytes(struct evbuffer *b, const uint8_t *p, size_t n)
{
	if (evbuffer_get_length(b) != n || (n > 0 && memcmp(evbuffer_pullup(b, -1), p, n) != 0))
		__builtin_trap();
	evbuffer_drain(b, n);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	/* An exact-size copy: a read past the frame is a read past the allocation. */
	size_t n = size - 1;
	uint8_t *p = malloc(n > 0 ? n : 1);
	if (p == NULL)
		return 0;
	memcpy(p, data + 1, n);
	struct evbuffer *b = evbuffer_new();
	const char *error = NULL;
	switch (data[0] % 3) {
	case 0: {
		struct keys_selectors m;
		if (keys_selectors_decode(p, n, &m, &error) == 0) {
			if (m.n > KEYS_SELECTORS_MAX || (m.n == 0) != (m.v == NULL))
				__builtin_trap();
			for (size_t i = 0; i < m.n; i++)
				if (!keys_name_valid(m.v[i].domain, true) ||
				    !keys_name_valid(m.v[i].selector, false) ||
				    (m.v[i].type != DKIM_KEY_ED25519 && m.v[i].type != DKIM_KEY_RSA))
					__builtin_trap();
			keys_selectors_encode(b, m.v, m.n);
			same_bytes(b, p, n);
		} else if (m.v != NULL || error == NULL) {
			__builtin_trap();
		}
		free(m.v);
		break;
	}
	case 1: {
		struct keys_sign_req m;
		if (keys_sign_req_decode(p, n, &m, &error) == 0) {
			if (m.n == 0 || m.n > KEYS_SIGN_MAX)
				__builtin_trap();
			for (size_t i = 0; i < m.n; i++)
				if (!keys_name_valid(m.items[i].domain, true) ||
				    !keys_name_valid(m.items[i].selector, false))
					__builtin_trap();
			keys_sign_req_encode(b, &m);
			same_bytes(b, p, n);
		} else if (error == NULL) {
			__builtin_trap();
		}
		break;
	}
	case 2: {
		struct keys_sign_res m;
		if (keys_sign_res_decode(p, n, &m, &error) == 0) {
			if (m.n > KEYS_SIGN_MAX)
				__builtin_trap();
			for (size_t i = 0; i < m.n; i++) {
				const struct keys_sig *s = &m.sigs[i];
				if (s->status > KEYS_FAILED || (s->status == KEYS_OK ?
				    s->len == 0 || s->len > KEYS_SIG_MAX : s->len != 0))
					__builtin_trap();
			}
			keys_sign_res_encode(b, &m);
			same_bytes(b, p, n);
		} else if (error == NULL) {
			__builtin_trap();
		}
		break;
	}
	}
	evbuffer_free(b);
	free(p);
	return 0;
}
