/* wire — see wire.h. */
#include "lib/wire.h"

#include <string.h>

#include <event2/buffer.h>

void
wire_put_u8(struct evbuffer *b, uint8_t v)
{
	evbuffer_add(b, &v, 1);
}

void
wire_put_u32(struct evbuffer *b, uint32_t v)
{
	uint8_t x[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	evbuffer_add(b, x, sizeof(x));
}

void
wire_put_u64(struct evbuffer *b, uint64_t v)
{
	wire_put_u32(b, (uint32_t)v);
	wire_put_u32(b, (uint32_t)(v >> 32));
}

void
wire_put_str(struct evbuffer *b, const char *s)
{
	if (s == NULL) {
		wire_put_u32(b, 0);
		return;
	}
	size_t len = strlen(s) + 1;
	wire_put_u32(b, (uint32_t)len);
	evbuffer_add(b, s, len);
}

void
wire_put_blob(struct evbuffer *b, const void *data, size_t len)
{
	wire_put_u32(b, (uint32_t)len);
	if (len > 0)
		evbuffer_add(b, data, len);
}

void
wire_reader_init(struct wire_reader *r, const void *data, size_t len)
{
	r->p = data;
	r->left = len;
	r->bad = false;
}

static const uint8_t *
wire_take(struct wire_reader *r, size_t n)
{
	if (r->bad || r->left < n) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *p = r->p;
	r->p += n;
	r->left -= n;
	return p;
}

uint8_t
wire_get_u8(struct wire_reader *r)
{
	const uint8_t *p = wire_take(r, 1);
	return p == NULL ? 0 : p[0];
}

uint32_t
wire_get_u32(struct wire_reader *r)
{
	const uint8_t *p = wire_take(r, 4);
	if (p == NULL)
		return 0;
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t
wire_get_u64(struct wire_reader *r)
{
	uint64_t lo = wire_get_u32(r);
	uint64_t hi = wire_get_u32(r);
	return lo | hi << 32;
}

const char *
wire_get_str(struct wire_reader *r)
{
	uint32_t len = wire_get_u32(r);
	if (len == 0)
		return NULL;
	const uint8_t *p = wire_take(r, len);
	if (p == NULL)
		return NULL;
	if (p[len - 1] != '\0' || memchr(p, '\0', len - 1) != NULL) {
		r->bad = true;
		return NULL;
	}
	return (const char *)p;
}

const char *
wire_get_str_nn(struct wire_reader *r)
{
	const char *s = wire_get_str(r);
	if (s == NULL)
		r->bad = true;
	return s == NULL ? "" : s;
}

const void *
wire_get_blob(struct wire_reader *r, size_t *len_r)
{
	uint32_t len = wire_get_u32(r);
	const uint8_t *p = wire_take(r, len);
	*len_r = p == NULL ? 0 : len;
	return p;
}

uint32_t
wire_get_count(struct wire_reader *r, uint32_t max)
{
	uint32_t n = wire_get_u32(r);
	if (n > max) {
		r->bad = true;
		return 0;
	}
	return n;
}

int
wire_reader_finish(struct wire_reader *r, const char **error_r)
{
	if (r->bad) {
		*error_r = "malformed or truncated message";
		return -1;
	}
	if (r->left != 0) {
		*error_r = "trailing bytes after message";
		return -1;
	}
	return 0;
}
