/* auth-msg — see auth-msg.h. */
#include "auth/auth-msg.h"
#include "lib/wire.h"

void
auth_rcpt_req_encode(struct evbuffer *b, const struct auth_rcpt_req *m)
{
	wire_put_str(b, m->address);
}

int
auth_rcpt_req_decode(const void *data, size_t len, struct auth_rcpt_req *m, const char **error_r)
{
	struct wire_reader r;
	wire_reader_init(&r, data, len);
	m->address = wire_get_str_nn(&r);
	return wire_reader_finish(&r, error_r);
}

void
auth_rcpt_res_encode(struct evbuffer *b, const struct auth_rcpt_res *m)
{
	wire_put_u8(b, (uint8_t)m->status);
	wire_put_u32(b, m->nmailboxes);
	for (uint32_t i = 0; i < m->nmailboxes; i++)
		wire_put_str(b, m->mailboxes[i]);
}

int
auth_rcpt_res_decode(const void *data, size_t len, struct auth_rcpt_res *m, const char **error_r)
{
	struct wire_reader r;
	wire_reader_init(&r, data, len);
	uint8_t status = wire_get_u8(&r);
	if (status > AUTH_RCPT_TEMPFAIL)
		r.bad = true;
	m->status = (enum auth_rcpt_status)status;
	m->nmailboxes = wire_get_count(&r, AUTH_MAX_MAILBOXES);
	for (uint32_t i = 0; i < m->nmailboxes; i++)
		m->mailboxes[i] = wire_get_str_nn(&r);
	return wire_reader_finish(&r, error_r);
}
