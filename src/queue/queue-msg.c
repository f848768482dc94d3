/* queue-msg — see queue-msg.h. */
#include "queue/queue-msg.h"
#include "queue/envelope.h"
#include "lib/wire.h"

#include <assert.h>
#include <string.h>

#include <event2/buffer.h>

/* RFC 5322 §2.1.1: at most 998 characters on a line, excluding the CRLF. */
#define LINE_MAX_OCTETS 998

void
queue_open_req_encode(struct evbuffer *b, const struct envelope *e)
{
	envelope_wire_put(b, e);
}

int
queue_open_req_decode(const void *data, size_t len, struct envelope **e_r, const char **error_r)
{
	struct wire_reader r;
	wire_reader_init(&r, data, len);
	*e_r = NULL;
	if (envelope_wire_get(&r, e_r) < 0 || wire_reader_finish(&r, error_r) < 0) {
		envelope_free(e_r);
		*error_r = "malformed envelope";
		return -1;
	}
	return 0;
}

void
queue_result_encode(struct evbuffer *b, const struct queue_result *m)
{
	wire_put_u8(b, (uint8_t)m->status);
	wire_put_str(b, m->id);
}

int
queue_result_decode(const void *data, size_t len, struct queue_result *m, const char **error_r)
{
	struct wire_reader r;
	wire_reader_init(&r, data, len);
	uint8_t status = wire_get_u8(&r);
	if (status > QUEUE_NO_SPACE)
		r.bad = true;
	m->status = (enum queue_status)status;
	m->id = wire_get_str_nn(&r);
	return wire_reader_finish(&r, error_r);
}

void
queue_ref_encode(struct evbuffer *b, const struct queue_ref *m)
{
	size_t alen = m->added == NULL ? 0 : m->added_len;
	assert(alen < UINT32_MAX);
	wire_put_str(b, m->id);
	wire_put_u64(b, m->size);
	/* As a wire string (length with the NUL, bytes, NUL), so that the decoded
	 * text is NUL-terminated in the frame; the decoder refuses an inner NUL. */
	wire_put_u32(b, (uint32_t)(alen + 1));
	if (alen > 0)
		evbuffer_add(b, m->added, alen);
	evbuffer_add(b, "", 1);
	wire_put_str(b, m->folder == NULL ? "" : m->folder);
	wire_put_str(b, m->sign_domain == NULL ? "" : m->sign_domain);
}

int
queue_ref_decode(const void *data, size_t len, struct queue_ref *m, const char **error_r)
{
	struct wire_reader r;
	wire_reader_init(&r, data, len);
	m->id = wire_get_str_nn(&r);
	m->size = wire_get_u64(&r);
	m->added = wire_get_str_nn(&r);
	m->added_len = strlen(m->added);
	m->folder = wire_get_str_nn(&r);
	m->sign_domain = wire_get_str_nn(&r);
	if (wire_reader_finish(&r, error_r) < 0)
		return -1;
	if (m->sign_domain[0] != '\0' && !queue_sign_domain_valid(m->sign_domain)) {
		*error_r = "signing domain is not a domain name";
		return -1;
	}
	if (queue_added_check(m->added, m->added_len, error_r) < 0)
		return -1;
	if (!queue_folder_valid(m->folder)) {
		*error_r = "unknown folder";
		return -1;
	}
	return 0;
}

bool
queue_sign_domain_valid(const char *d)
{
	size_t len = strlen(d);
	if (len == 0 || len > 253 || d[0] == '.' || d[len - 1] == '.')
		return false;
	for (const char *p = d; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
			return false;
		if (c == '.' && p[1] == '.')
			return false;
	}
	return true;
}

/* RFC 5322 §3.6.8: ftext = %d33-57 / %d59-126 (printable US-ASCII but ':'). */
static bool
is_ftext(unsigned char c)
{
	return c >= 33 && c <= 126 && c != ':';
}

int
queue_added_check(const char *added, size_t len, const char **error_r)
{
	const unsigned char *p = (const unsigned char *)added;
	size_t i = 0;

	if (len > QUEUE_ADDED_MAX) {
		*error_r = "added header text too long";
		return -1;
	}
	while (i < len) {
		/* One line: [i, eol) then CRLF. */
		size_t eol = i;
		bool blank = true;
		while (eol < len && p[eol] != '\r' && p[eol] != '\n') {
			unsigned char c = p[eol];
			if ((c < 0x20 && c != '\t') || c == 0x7f) {
				*error_r = "control character in added header text";
				return -1;
			}
			blank = blank && (c == ' ' || c == '\t');
			eol++;
		}
		if (eol + 1 >= len || p[eol] != '\r' || p[eol + 1] != '\n') {
			*error_r = "added header line not ending with CRLF";
			return -1;
		}
		if (eol - i > LINE_MAX_OCTETS) {
			*error_r = "added header line longer than 998 octets";
			return -1;
		}
		if (p[i] == ' ' || p[i] == '\t') {
			/* RFC 5322 §2.2.3: folding continues the field above. */
			if (i == 0 || blank) {
				*error_r = "bad continuation line in added header text";
				return -1;
			}
		} else {
			size_t k = i;
			while (k < eol && is_ftext(p[k]))
				k++;
			if (k == i || k == eol || p[k] != ':') {
				*error_r = "added header line is not \"name: value\"";
				return -1;
			}
		}
		i = eol + 2;
	}
	return 0;
}

bool
queue_folder_valid(const char *folder)
{
	return folder != NULL && (folder[0] == '\0' || strcmp(folder, "Junk") == 0);
}
