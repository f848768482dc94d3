/* keys-msg — see keys-msg.h. */
#include "keys/keys-msg.h"
#include "lib/wire.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

/* Encoded sizes: a string is its u32 length, the octets and a NUL. */
#define MIN_SELECTOR_OCTETS (4 + 2 + 4 + 2 + 1)   /* "a", "b", type */

bool
keys_name_valid(const char *s, bool lower_only)
{
	size_t len = strlen(s), label = 0;
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (i == len || c == '.') {
			if (label == 0 || label > 63)
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
		    c == '_' || (!lower_only && c >= 'A' && c <= 'Z')) {
			label++;
		} else {
			return false;
		}
	}
	return true;
}

/* ---- KEYS_SELECTORS ---- */

void
keys_selectors_encode(struct evbuffer *b, const struct keys_selector *v, size_t n)
{
	assert(n <= KEYS_SELECTORS_MAX);
	wire_put_u32(b, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		wire_put_str(b, v[i].domain);
		wire_put_str(b, v[i].selector);
		wire_put_u8(b, (uint8_t)v[i].type);
	}
}

int
keys_selectors_decode(const void *data, size_t len, struct keys_selectors *m,
    const char **error_r)
{
	struct wire_reader r;
	wire_reader_init(&r, data, len);
	m->v = NULL;
	m->n = 0;
	uint32_t n = wire_get_count(&r, KEYS_SELECTORS_MAX);
	/* No allocation for more selectors than the frame can hold. */
	if (!r.bad && n > r.left / MIN_SELECTOR_OCTETS)
		r.bad = true;
	if (!r.bad && n > 0 && (m->v = calloc(n, sizeof(*m->v))) == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	for (uint32_t i = 0; i < n && !r.bad; i++) {
		struct keys_selector *k = &m->v[i];
		k->domain = wire_get_str_nn(&r);
		k->selector = wire_get_str_nn(&r);
		uint8_t type = wire_get_u8(&r);
		if (r.bad)
			break;
		if (type > DKIM_KEY_RSA || !keys_name_valid(k->domain, true) ||
		    !keys_name_valid(k->selector, false)) {
			free(m->v);
			m->v = NULL;
			*error_r = type > DKIM_KEY_RSA ? "unknown key type" :
			    "invalid domain or selector name";
			return -1;
		}
		k->type = (enum dkim_key_type)type;
	}
	if (wire_reader_finish(&r, error_r) < 0) {
		free(m->v);
		m->v = NULL;
		return -1;
	}
	m->n = n;
	return 0;
}

/* ---- KEYS_SIGN_REQ ---- */

void
keys_sign_req_encode(struct evbuffer *b, const struct keys_sign_req *m)
{
	assert(m->n <= KEYS_SIGN_MAX);
	wire_put_u32(b, (uint32_t)m->n);
	for (size_t i = 0; i < m->n; i++) {
		wire_put_str(b, m->items[i].domain);
		wire_put_str(b, m->items[i].selector);
		wire_put_blob(b, m->items[i].digest, sizeof(m->items[i].digest));
	}
}

int
keys_sign_req_decode(const void *data, size_t len, struct keys_sign_req *m,
    const char **error_r)
{
	struct wire_reader r;
	wire_reader_init(&r, data, len);
	m->n = 0;
	uint32_t n = wire_get_count(&r, KEYS_SIGN_MAX);
	if (!r.bad && n == 0) {
		*error_r = "a signing request without items";
		return -1;
	}
	for (uint32_t i = 0; i < n && !r.bad; i++) {
		struct keys_sign_item *it = &m->items[i];
		size_t dlen;
		it->domain = wire_get_str_nn(&r);
		it->selector = wire_get_str_nn(&r);
		const void *digest = wire_get_blob(&r, &dlen);
		if (r.bad)
			break;
		if (dlen != sizeof(it->digest)) {
			*error_r = "a digest that is not 32 octets";
			return -1;
		}
		if (!keys_name_valid(it->domain, true) || !keys_name_valid(it->selector, false)) {
			*error_r = "invalid domain or selector name";
			return -1;
		}
		memcpy(it->digest, digest, sizeof(it->digest));
	}
	if (wire_reader_finish(&r, error_r) < 0)
		return -1;
	m->n = n;
	return 0;
}

/* ---- KEYS_SIGN_RES ---- */

void
keys_sign_res_encode(struct evbuffer *b, const struct keys_sign_res *m)
{
	assert(m->n <= KEYS_SIGN_MAX);
	wire_put_u32(b, (uint32_t)m->n);
	for (size_t i = 0; i < m->n; i++) {
		const struct keys_sig *s = &m->sigs[i];
		wire_put_u8(b, (uint8_t)s->status);
		wire_put_blob(b, s->sig, s->status == KEYS_OK ? s->len : 0);
	}
}

int
keys_sign_res_decode(const void *data, size_t len, struct keys_sign_res *m,
    const char **error_r)
{
	struct wire_reader r;
	wire_reader_init(&r, data, len);
	m->n = 0;
	uint32_t n = wire_get_count(&r, KEYS_SIGN_MAX);
	for (uint32_t i = 0; i < n && !r.bad; i++) {
		struct keys_sig *s = &m->sigs[i];
		uint8_t status = wire_get_u8(&r);
		size_t slen;
		const void *sig = wire_get_blob(&r, &slen);
		if (r.bad)
			break;
		if (status > KEYS_FAILED) {
			*error_r = "unknown signing status";
			return -1;
		}
		s->status = (enum keys_status)status;
		if (status == KEYS_OK ? slen == 0 || slen > KEYS_SIG_MAX : slen != 0) {
			*error_r = status == KEYS_OK ? "a signature of 0 or more than 512 octets" :
			    "a signature with a failure status";
			return -1;
		}
		s->len = slen;
		if (slen > 0)
			memcpy(s->sig, sig, slen);
	}
	if (wire_reader_finish(&r, error_r) < 0)
		return -1;
	m->n = n;
	return 0;
}
