/*
 * libFuzzer target: DKIM canonicalisation (RFC 6376 §3.4) and the header section
 * collector. The first two octets seed the chunk sizes; the rest is a message.
 *
 * The header collector is fed whole and in chunks: both must keep the same
 * section, take the same number of octets and find the same fields. Each field
 * with a colon is canonicalised (relaxed) and must come out as "name:value\r\n"
 * with a lower-case name and an unfolded value with no WSP run and no WSP at
 * either end. The rest (the body) is canonicalised simple and relaxed, whole, in
 * chunks and one octet at a time; the three outputs must be identical, and
 * identical to a naive line-by-line implementation of §3.4.3/§3.4.4. Any
 * difference abort()s.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailauth/dkim-private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void sink(void *arg, const void *p, size_t len)
{
	dkim_buf_add(arg, p, len);
}

static size_t next_chunk(unsigned *seed, size_t left)
{
	size_t n;

	*seed = *seed * 1103515245u + 12345u;
	n = 1 + (*seed >> 16) % 37;
	return n < left ? n : left;
}

static void body_by(bool relaxed, const uint8_t *in, size_t len, int mode, unsigned seed,
    struct dkim_buf *out)
{
	struct dkim_body_canon *c = malloc(sizeof(*c));
	size_t off = 0;

	if (c == NULL)
		abort();
	memset(out, 0, sizeof(*out));
	dkim_body_canon_init(c, relaxed, sink, out);
	while (off < len) {
		size_t n = mode == 0 ? len - off : mode == 1 ? 1 : next_chunk(&seed, len - off);

		dkim_body_canon_feed(c, in + off, n);
		off += n;
	}
	dkim_body_canon_finish(c);
	if (c->total != out->len)
		abort();
	free(c);
}

/* §3.4.3 / §3.4.4 applied line by line to the whole body. */
static void reference(bool relaxed, const uint8_t *in, size_t len, struct dkim_buf *out)
{
	struct dkim_buf line = { 0 };
	size_t keep = 0;
	bool open = false;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i <= len; i++) {
		bool crlf = i < len && in[i] == '\r' && i + 1 < len && in[i + 1] == '\n';

		if (i < len && in[i] != '\n' && !crlf) {
			dkim_buf_add(&line, &in[i], 1);
			open = true;
			continue;
		}
		if (i == len && !open)
			break;
		if (crlf)
			i++;
		if (relaxed) {
			size_t w = 0;

			for (size_t r = 0; r < line.len; r++) {
				bool ws = line.p[r] == ' ' || line.p[r] == '\t';

				if (ws && w > 0 && line.p[w - 1] == ' ')
					continue;
				line.p[w++] = ws ? ' ' : line.p[r];
			}
			while (w > 0 && line.p[w - 1] == ' ')
				w--;
			line.len = w;
		}
		dkim_buf_add(out, line.p, line.len);
		dkim_buf_add(out, "\r\n", 2);
		if (line.len > 0)
			keep = out->len;
		line.len = 0;
		open = false;
	}
	out->len = keep;
	if (!relaxed && out->len == 0)
		dkim_buf_add(out, "\r\n", 2);
	dkim_buf_free(&line);
}

static bool same(const struct dkim_buf *a, const struct dkim_buf *b)
{
	return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

static size_t collect(struct dkim_header *h, const uint8_t *in, size_t len, unsigned seed)
{
	size_t off = 0;

	dkim_header_init(h);
	while (off < len && !h->done) {
		size_t n = seed == 0 ? len - off : next_chunk(&seed, len - off);
		size_t took = dkim_header_feed(h, in + off, n);

		if (took > n || (took < n && !h->done))
			abort();
		off += took;
	}
	dkim_header_finish(h);
	return off;
}

static void check_field(const char *f, size_t len)
{
	struct dkim_buf out = { 0 };
	const char *colon;
	size_t v;

	dkim_canon_header(&out, true, f, len);
	if (out.failed || out.len < 2 || memcmp(out.p + out.len - 2, "\r\n", 2) != 0)
		abort();
	if (memchr(f, ':', len) == NULL) {
		dkim_buf_free(&out);
		return;
	}
	if ((colon = memchr(out.p, ':', out.len)) == NULL)
		abort();
	for (const char *p = out.p; p < colon; p++)
		if (*p >= 'A' && *p <= 'Z')
			abort();
	v = (size_t)(colon + 1 - out.p);
	if (v + 2 < out.len && out.p[v] == ' ')
		abort();
	for (size_t i = v; i + 2 < out.len; i++) {
		char c = out.p[i];

		if (c == '\t' || (c == ' ' && (i + 3 == out.len || out.p[i + 1] == ' ')))
			abort();
		if (c == '\r' && out.p[i + 1] == '\n')
			abort();     /* unfolded */
	}
	dkim_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dkim_header a, b;
	struct dkim_buf whole, other;
	unsigned seed;
	size_t na, nb;

	if (size < 2 || size > 100000)
		return 0;
	seed = (unsigned)data[0] << 8 | data[1];
	data += 2;
	size -= 2;

	na = collect(&a, data, size, 0);
	nb = collect(&b, data, size, seed | 1);
	if (na != nb || a.len != b.len || (a.len > 0 && memcmp(a.buf, b.buf, a.len) != 0) ||
	    a.nfields != b.nfields || a.overflow != b.overflow)
		abort();
	for (size_t f = 0; f < a.nfields; f++) {
		if (a.fields[f].off != b.fields[f].off || a.fields[f].len != b.fields[f].len ||
		    a.fields[f].name_len != b.fields[f].name_len)
			abort();
		check_field(a.buf + a.fields[f].off, a.fields[f].len);
	}
	dkim_header_free(&a);
	dkim_header_free(&b);

	for (int r = 0; r < 2; r++) {
		struct dkim_buf ref;

		body_by(r, data + na, size - na, 0, 0, &whole);
		body_by(r, data + na, size - na, 2, seed, &other);
		if (!same(&whole, &other))
			abort();
		dkim_buf_free(&other);
		if (size - na <= 4096) {
			body_by(r, data + na, size - na, 1, 0, &other);
			if (!same(&whole, &other))
				abort();
			dkim_buf_free(&other);
		}
		reference(r, data + na, size - na, &ref);
		if (!same(&whole, &ref))
			abort();
		dkim_buf_free(&ref);
		dkim_buf_free(&whole);
	}
	return 0;
}
