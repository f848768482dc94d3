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

const char *
auth_protocol_name(enum auth_protocol p)
{
	switch (p) {
	case AUTH_PROTO_SMTP:
		return "smtp";
	case AUTH_PROTO_IMAP:
		return "imap";
	case AUTH_PROTO_POP3:
		return "pop3";
	}
	return "?";
}

const char *
auth_fail_reason_name(enum auth_fail_reason r)
{
	static const char *const names[AUTH_REASON_COUNT] = {
		[AUTH_REASON_NONE] = NULL,
		[AUTH_REASON_BAD_CREDENTIALS] = "bad-credentials",
		[AUTH_REASON_UNKNOWN_USER] = "unknown-user",
		[AUTH_REASON_LOCKED_OUT] = "locked-out",
		[AUTH_REASON_RATE_LIMITED] = "rate-limited",
		[AUTH_REASON_BLOCKED] = "blocked",
		[AUTH_REASON_TLS_REQUIRED] = "tls-required",
		[AUTH_REASON_MECH_DISABLED] = "mechanism-disabled",
		[AUTH_REASON_PROTOCOL_DISABLED] = "protocol-disabled",
		[AUTH_REASON_NETWORK_NOT_ALLOWED] = "network-not-allowed",
		[AUTH_REASON_ACCOUNT_DISABLED] = "account-disabled",
		[AUTH_REASON_MALFORMED] = "malformed",
		[AUTH_REASON_CANCELLED] = "cancelled",
		[AUTH_REASON_TEMPORARY] = "temporary-failure",
	};
	return r < AUTH_REASON_COUNT ? names[r] : NULL;
}

static void
login_put(struct evbuffer *b, const struct auth_login_req *m)
{
	wire_put_u8(b, (uint8_t)m->protocol);
	wire_put_str(b, m->listener);
	wire_put_str(b, m->mech);
	wire_put_str(b, m->ip);
	wire_put_u32(b, m->port);
	wire_put_str(b, m->tls);
	wire_put_str(b, m->session);
	wire_put_str(b, m->authzid);
	wire_put_str(b, m->authcid);
	wire_put_blob(b, m->secret, m->secret_len);
}

static void
login_get(struct wire_reader *r, struct auth_login_req *m)
{
	uint8_t proto = wire_get_u8(r);
	if (proto > AUTH_PROTO_POP3)
		r->bad = true;
	m->protocol = (enum auth_protocol)proto;
	m->listener = wire_get_str_nn(r);
	m->mech = wire_get_str_nn(r);
	m->ip = wire_get_str_nn(r);
	m->port = wire_get_u32(r);
	m->tls = wire_get_str_nn(r);
	m->session = wire_get_str_nn(r);
	m->authzid = wire_get_str_nn(r);
	m->authcid = wire_get_str_nn(r);
	m->secret = wire_get_blob(r, &m->secret_len);
	if (m->secret_len > AUTH_SECRET_MAX)
		r->bad = true;
}

void
auth_login_req_encode(struct evbuffer *b, const struct auth_login_req *m)
{
	login_put(b, m);
}

int
auth_login_req_decode(const void *data, size_t len, struct auth_login_req *m,
    const char **error_r)
{
	struct wire_reader r;
	wire_reader_init(&r, data, len);
	login_get(&r, m);
	return wire_reader_finish(&r, error_r);
}

void
auth_login_res_encode(struct evbuffer *b, const struct auth_login_res *m)
{
	wire_put_u8(b, (uint8_t)m->status);
	wire_put_u8(b, (uint8_t)m->reason);
	wire_put_u32(b, m->delay_ms);
	wire_put_str(b, m->user);
}

int
auth_login_res_decode(const void *data, size_t len, struct auth_login_res *m,
    const char **error_r)
{
	struct wire_reader r;
	wire_reader_init(&r, data, len);
	uint8_t status = wire_get_u8(&r);
	uint8_t reason = wire_get_u8(&r);
	if (status > AUTH_LOGIN_TEMPFAIL || reason >= AUTH_REASON_COUNT)
		r.bad = true;
	m->status = (enum auth_login_status)status;
	m->reason = (enum auth_fail_reason)reason;
	m->delay_ms = wire_get_u32(&r);
	m->user = wire_get_str_nn(&r);
	return wire_reader_finish(&r, error_r);
}

void
auth_login_report_encode(struct evbuffer *b, const struct auth_login_report *m)
{
	struct auth_login_req l = m->login;
	l.secret = "";
	l.secret_len = 0;
	login_put(b, &l);
	wire_put_u8(b, (uint8_t)m->reason);
}

int
auth_login_report_decode(const void *data, size_t len, struct auth_login_report *m,
    const char **error_r)
{
	struct wire_reader r;
	wire_reader_init(&r, data, len);
	login_get(&r, &m->login);
	uint8_t reason = wire_get_u8(&r);
	if (reason >= AUTH_REASON_COUNT || m->login.secret_len != 0)
		r.bad = true;
	m->reason = (enum auth_fail_reason)reason;
	return wire_reader_finish(&r, error_r);
}

void
auth_sender_req_encode(struct evbuffer *b, const struct auth_sender_req *m)
{
	wire_put_str(b, m->user);
	wire_put_str(b, m->address);
}

int
auth_sender_req_decode(const void *data, size_t len, struct auth_sender_req *m,
    const char **error_r)
{
	struct wire_reader r;
	wire_reader_init(&r, data, len);
	m->user = wire_get_str_nn(&r);
	m->address = wire_get_str_nn(&r);
	return wire_reader_finish(&r, error_r);
}

void
auth_sender_res_encode(struct evbuffer *b, const struct auth_sender_res *m)
{
	wire_put_u8(b, (uint8_t)m->status);
}

int
auth_sender_res_decode(const void *data, size_t len, struct auth_sender_res *m,
    const char **error_r)
{
	struct wire_reader r;
	wire_reader_init(&r, data, len);
	uint8_t status = wire_get_u8(&r);
	if (status > AUTH_SENDER_TEMPFAIL)
		r.bad = true;
	m->status = (enum auth_sender_status)status;
	return wire_reader_finish(&r, error_r);
}
