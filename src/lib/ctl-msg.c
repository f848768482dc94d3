/* ctl-msg — see ctl-msg.h. */
#include "lib/ctl-msg.h"
#include "lib/wire.h"

const char *
proc_kind_name(enum proc_kind kind)
{
	switch (kind) {
	case PROC_PARENT: return "parent";
	case PROC_AUTH: return "auth";
	case PROC_QUEUE: return "queue";
	case PROC_FRONT: return "front";
	case PROC_KEYS: return "keys";
	}
	return "?";
}

void
ctl_peer_encode(struct evbuffer *b, const struct ctl_peer *m)
{
	wire_put_u8(b, (uint8_t)m->kind);
	wire_put_u32(b, m->index);
	wire_put_u32(b, m->generation);
}

int
ctl_peer_decode(const void *data, size_t len, struct ctl_peer *m, const char **error_r)
{
	struct wire_reader r;
	wire_reader_init(&r, data, len);
	uint8_t kind = wire_get_u8(&r);
	m->index = wire_get_u32(&r);
	m->generation = wire_get_u32(&r);
	if (kind > PROC_KEYS)
		r.bad = true;
	m->kind = (enum proc_kind)kind;
	return wire_reader_finish(&r, error_r);
}

void
ctl_stop_encode(struct evbuffer *b, const struct ctl_stop *m)
{
	wire_put_u32(b, m->grace_seconds);
	wire_put_u8(b, m->drain);
}

int
ctl_stop_decode(const void *data, size_t len, struct ctl_stop *m, const char **error_r)
{
	struct wire_reader r;
	wire_reader_init(&r, data, len);
	m->grace_seconds = wire_get_u32(&r);
	m->drain = wire_get_u8(&r);
	if (m->drain > 1)
		r.bad = true;
	return wire_reader_finish(&r, error_r);
}
