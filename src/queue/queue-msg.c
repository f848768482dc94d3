/* queue-msg — see queue-msg.h. */
#include "queue/queue-msg.h"
#include "queue/envelope.h"
#include "lib/wire.h"

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
	wire_put_str(b, m->id);
	wire_put_u64(b, m->size);
}

int
queue_ref_decode(const void *data, size_t len, struct queue_ref *m, const char **error_r)
{
	struct wire_reader r;
	wire_reader_init(&r, data, len);
	m->id = wire_get_str_nn(&r);
	m->size = wire_get_u64(&r);
	return wire_reader_finish(&r, error_r);
}
