/*
 * smtp-auth — SMTP AUTH (RFC 4954) on submission listeners.
 *
 * The session runs the SASL exchange (src/sasl) and sends the credentials to
 * the auth process, which decides; the front never sees a stored hash and
 * keeps no credentials once the request is sent (the SASL buffers are wiped).
 * Rules:
 *   - no AUTH on the mx role (503), none advertised or accepted before TLS
 *     (538 5.7.11, RFC 4954 §6) unless the listener's allow_plaintext_auth
 *     is set AND the client is on loopback (testing only, logged loudly);
 *   - one successful AUTH per session (503, RFC 4954 §4), none inside a mail
 *     transaction (503);
 *   - a failure is answered 535 5.7.8 after the delay auth asks for, with the
 *     input paused meanwhile; after auth_max_failures, 421 and close;
 *   - a refusal decided here (TLS, unknown mechanism, cancel, bad base64)
 *     still reaches the audit log through AUTH_LOGIN_REPORT.
 */
#include "smtp/smtp-session-private.h"
#include "auth/auth-msg.h"
#include "lib/config.h"
#include "lib/ipc-call.h"
#include "lib/log.h"
#include "lib/netaddr.h"
#include "net/lineio.h"
#include "sasl/sasl.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <sodium.h>

static bool
client_is_loopback(const struct smtp_session *s)
{
	struct netaddr a;
	return netaddr_parse(s->addr, &a) == 0 && netaddr_is_loopback(&a);
}

/* TLS is up, or the testing exception applies. */
static bool
transport_ok(struct smtp_session *s)
{
	return smtp_session_tls(s) ||
	    (s->srv->listener->allow_plaintext_auth && client_is_loopback(s));
}

bool
smtp_auth_offered(struct smtp_session *s)
{
	return s->srv->listener->role != LISTENER_ROLE_MX && transport_ok(s);
}

/* ---- replies held back ---- */

static void
on_hold_over(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;
	struct smtp_owed_reply r = s->held;
	s->holding = false;
	if (s->state == SMTP_STATE_CLOSING)
		return;
	if (s->auth_failures >= (unsigned)s->srv->cfg->auth_max_failures && r.code == 535) {
		smtp_reply(s, r.code, r.enh, "%s", r.text);
		smtp_close(s, 421, "4.7.0", "Too many failed authentication attempts");
		return;
	}
	smtp_reply(s, r.code, r.enh, "%s", r.text);
	smtp_resume(s);
}

void
smtp_reply_later(struct smtp_session *s, unsigned delay_ms, int code, const char *enh,
    const char *text)
{
	s->held = (struct smtp_owed_reply){ code, enh, text };
	if (s->hold == NULL)
		s->hold = evtimer_new(s->srv->base, on_hold_over, s);
	if (s->hold == NULL || delay_ms == 0) {
		on_hold_over(-1, 0, s);
		return;
	}
	struct timeval tv = { delay_ms / 1000, (delay_ms % 1000) * 1000 };
	s->holding = true;
	lineio_pause(s->io, true);
	evtimer_add(s->hold, &tv);
}

/* ---- the exchange ---- */

static void
login_fill(struct smtp_session *s, struct auth_login_req *req, const char *mech)
{
	const char *version = "", *cipher;
	int bits;
	if (!lineio_tls_info(s->io, &version, &cipher, &bits))
		version = "";
	*req = (struct auth_login_req){
		.protocol = AUTH_PROTO_SMTP, .listener = s->srv->listener->name,
		.mech = mech, .ip = s->addr, .port = s->port, .tls = version,
		.session = s->sid, .authzid = "", .authcid = "", .secret = "", .secret_len = 0,
	};
}

/* Tells auth about a refusal decided here, for the audit log. */
static void
report(struct smtp_session *s, const char *mech, const char *user, enum auth_fail_reason why)
{
	struct auth_login_report rep;
	login_fill(s, &rep.login, mech != NULL ? mech : "");
	rep.login.authcid = user != NULL ? user : "";
	rep.reason = why;
	struct evbuffer *b = evbuffer_new();
	struct ipc_channel *ch = ipc_client_channel(s->srv->auth);
	if (b != NULL && ch != NULL) {
		auth_login_report_encode(b, &rep);
		ipc_send_buf(ch, AUTH_LOGIN_REPORT, 0, b, -1);
	}
	if (b != NULL)
		evbuffer_free(b);
}

static void
exchange_end(struct smtp_session *s)
{
	sasl_exchange_free(&s->sasl);
	if (s->sasl_line != NULL) {
		sodium_memzero(s->sasl_line, SASL_RESPONSE_MAX + 1);
		free(s->sasl_line);
		s->sasl_line = NULL;
	}
	/* The command line held an initial response: wipe it too. */
	sodium_memzero(s->line, sizeof(s->line));
	if (s->state == SMTP_STATE_AUTH)
		s->state = SMTP_STATE_COMMAND;
}

static void
exchange_failed(struct smtp_session *s, enum sasl_fail why)
{
	const char *mech = s->sasl != NULL ? sasl_mech_name(sasl_exchange_mech(s->sasl)) : NULL;
	exchange_end(s);
	switch (why) {
	case SASL_FAIL_CANCELLED:
		/* RFC 4954 §4: the client cancelled the exchange. */
		smtp_reply(s, 501, "5.7.0", "Authentication cancelled");
		report(s, mech, NULL, AUTH_REASON_CANCELLED);
		break;
	case SASL_FAIL_TOO_LONG:
		smtp_reply(s, 500, "5.5.6", "Authentication exchange line is too long");
		report(s, mech, NULL, AUTH_REASON_MALFORMED);
		break;
	case SASL_FAIL_BAD_BASE64:
		/* RFC 4954 §4: 501 when the response cannot be BASE64 decoded. */
		smtp_reply(s, 501, "5.5.2", "Cannot decode response");
		report(s, mech, NULL, AUTH_REASON_MALFORMED);
		break;
	case SASL_FAIL_MALFORMED:
	case SASL_FAIL_NONE:
	default:
		smtp_reply(s, 501, "5.5.2", "Malformed authentication response");
		report(s, mech, NULL, AUTH_REASON_MALFORMED);
		break;
	}
	smtp_count_error(s);
}

static void
on_login_reply(struct ipc_frame *f, void *arg)
{
	struct smtp_session *s = arg;
	struct auth_login_res res = { AUTH_LOGIN_TEMPFAIL, AUTH_REASON_TEMPORARY, 0, "" };
	const char *error = "auth unavailable";
	s->call = NULL;
	if (f == NULL || auth_login_res_decode(f->data, f->len, &res, &error) < 0) {
		log_error("smtp %s: login: %s", s->sid, error);
		res.status = AUTH_LOGIN_TEMPFAIL;
	}
	switch (res.status) {
	case AUTH_LOGIN_OK:
		snprintf(s->user, sizeof(s->user), "%s", res.user);
		log_info("smtp %s: %s authenticated as %s", s->sid, s->addr, s->user);
		/* RFC 4954 §6 */
		smtp_reply(s, 235, "2.7.0", "Authentication successful");
		smtp_resume(s);
		break;
	case AUTH_LOGIN_FAIL:
		s->auth_failures++;
		log_info("smtp %s: authentication failed from %s (%s)", s->sid, s->addr,
		    auth_fail_reason_name(res.reason));
		/* RFC 4954 §6: 535 5.7.8, whatever the reason (no account oracle). */
		smtp_reply_later(s, res.delay_ms, 535, "5.7.8",
		    "Authentication credentials invalid");
		break;
	case AUTH_LOGIN_TEMPFAIL:
		/* RFC 4954 §6 */
		smtp_reply(s, 454, "4.7.0", "Temporary authentication failure");
		smtp_resume(s);
		break;
	}
}

static void
exchange_done(struct smtp_session *s)
{
	const struct sasl_credentials *cr = sasl_exchange_credentials(s->sasl);
	struct auth_login_req req;
	login_fill(s, &req, sasl_mech_name(sasl_exchange_mech(s->sasl)));
	req.authzid = cr->authzid;
	req.authcid = cr->authcid;
	req.secret = cr->secret;
	req.secret_len = cr->secret_len;
	struct evbuffer *b = evbuffer_new();
	struct ipc_call *c = NULL;
	if (b != NULL) {
		auth_login_req_encode(b, &req);   /* ipc wipes the payload after sending */
		c = ipc_call_start(s->srv->auth, AUTH_LOGIN_REQ, b, on_login_reply, s);
		evbuffer_free(b);
	}
	exchange_end(s);
	if (c == NULL) {
		smtp_reply(s, 454, "4.7.0", "Temporary authentication failure");
		return;
	}
	smtp_wait(s, c);
}

static void
exchange_step(struct smtp_session *s, const char *in, size_t len, bool initial)
{
	const char *challenge;
	enum sasl_fail why;
	switch (sasl_exchange_step(s->sasl, in, len, initial, &challenge, &why)) {
	case SASL_CONTINUE:
		if (s->sasl_line == NULL && (s->sasl_line = malloc(SASL_RESPONSE_MAX + 1)) == NULL) {
			exchange_end(s);
			smtp_reply(s, 454, "4.7.0", "Temporary authentication failure");
			return;
		}
		s->state = SMTP_STATE_AUTH;
		lineio_printf(s->io, "334 %s\r\n", challenge);
		return;
	case SASL_DONE:
		exchange_done(s);
		return;
	case SASL_FORWARD:   /* no mechanism offered here forwards yet */
	case SASL_FAIL:
		exchange_failed(s, why);
		return;
	}
}

void
smtp_auth_response(struct smtp_session *s, const char *line, size_t len, bool too_long)
{
	if (too_long) {
		exchange_failed(s, SASL_FAIL_TOO_LONG);
		return;
	}
	exchange_step(s, line, len, false);
}

void
smtp_cmd_auth(struct smtp_session *s, const struct smtp_command *cmd)
{
	const struct config_listener *l = s->srv->listener;
	if (l->role == LISTENER_ROLE_MX) {
		smtp_reply(s, 503, "5.5.1", "Authentication not enabled on this port");
		smtp_count_error(s);
		return;
	}
	if (s->user[0] != '\0') {
		/* RFC 4954 §4: AUTH after a successful AUTH. */
		smtp_reply(s, 503, "5.5.1", "Already authenticated");
		smtp_count_error(s);
		return;
	}
	if (s->txn != NULL) {
		/* RFC 4954 §4: not during a mail transaction. */
		smtp_reply(s, 503, "5.5.1", "AUTH not permitted during a mail transaction");
		smtp_count_error(s);
		return;
	}
	const char *arg = cmd->arg, *end = cmd->arg + cmd->arg_len;
	const char *sp = memchr(arg, ' ', cmd->arg_len);
	size_t mlen = sp != NULL ? (size_t)(sp - arg) : cmd->arg_len;
	const struct sasl_mech *m = mlen > 0 ? sasl_mech_find(arg, mlen) : NULL;
	if (!transport_ok(s) && (m == NULL || sasl_mech_plaintext(m))) {
		/* RFC 4954 §6 and RFC 8314 §3: never take a password in clear text. */
		smtp_reply(s, 538, "5.7.11", "Encryption required for requested authentication mechanism");
		report(s, m != NULL ? sasl_mech_name(m) : NULL, NULL, AUTH_REASON_TLS_REQUIRED);
		smtp_count_error(s);
		return;
	}
	if (mlen == 0) {
		smtp_reply(s, 501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
		smtp_count_error(s);
		return;
	}
	if (m == NULL) {
		/* RFC 4954 §4 */
		smtp_reply(s, 504, "5.5.4", "Unrecognized authentication type");
		report(s, NULL, NULL, AUTH_REASON_MECH_DISABLED);
		smtp_count_error(s);
		return;
	}
	const char *ir = sp != NULL ? sp + 1 : NULL;
	size_t irlen = ir != NULL ? (size_t)(end - ir) : 0;
	if (ir != NULL && irlen == 0) {
		smtp_reply(s, 501, "5.5.2", "Syntax: AUTH mechanism [initial-response]");
		smtp_count_error(s);
		return;
	}
	s->sasl = sasl_exchange_new(m);
	if (s->sasl == NULL) {
		smtp_reply(s, 454, "4.7.0", "Temporary authentication failure");
		return;
	}
	exchange_step(s, ir, irlen, true);
}

void
smtp_auth_reset(struct smtp_session *s)
{
	exchange_end(s);
	s->user[0] = '\0';
	if (s->hold != NULL) {
		event_free(s->hold);
		s->hold = NULL;
	}
	s->holding = false;
}
