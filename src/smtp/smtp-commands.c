/*
 * smtp-commands — the SMTP command table and one handler per command
 * (RFC 5321 §4.1.1, with PIPELINING RFC 2920, SIZE RFC 1870, 8BITMIME RFC 6152,
 * ENHANCEDSTATUSCODES RFC 2034/3463, SMTPUTF8 RFC 6531, CHUNKING RFC 3030,
 * DSN RFC 3461, STARTTLS RFC 3207).
 */
#include "smtp/smtp-session-private.h"
#include "auth/auth-msg.h"
#include "lib/config.h"
#include "lib/ipc-call.h"
#include "lib/log.h"
#include "net/lineio.h"
#include "queue/envelope.h"
#include "sasl/sasl.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

enum {
	CMD_NEED_HELO = 1 << 0,   /* after EHLO/HELO (RFC 5321 §4.1.4) */
	CMD_NEED_MAIL = 1 << 1,   /* inside a transaction */
	CMD_NO_ARGS   = 1 << 2,   /* takes no argument */
};

struct smtp_command_def {
	enum smtp_verb verb;
	void (*handler)(struct smtp_session *s, const struct smtp_command *cmd);
	unsigned flags;
};

unsigned
smtp_extensions(const struct smtp_session *s)
{
	if (!s->esmtp)
		return 0;
	return SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_SMTPUTF8 | SMTP_EXT_DSN;
}

static bool
starttls_available(struct smtp_session *s)
{
	return s->srv->tls != NULL && !smtp_session_tls(s);
}

static void
cmd_ehlo(struct smtp_session *s, const struct smtp_command *cmd)
{
	/* RFC 5321 §4.1.4: EHLO resets any transaction, like RSET. */
	smtp_txn_reset(s);
	if (cmd->arg_len == 0 || cmd->arg_len >= sizeof(s->helo)) {
		smtp_reply(s, 501, "5.5.4", "Syntax: %s hostname", cmd->verb == SMTP_VERB_EHLO ? "EHLO" : "HELO");
		smtp_count_error(s);
		return;
	}
	for (size_t i = 0; i < cmd->arg_len; i++) {
		unsigned char c = (unsigned char)cmd->arg[i];
		if (c <= 0x20 || c == 0x7f) {
			smtp_reply(s, 501, "5.5.4", "Invalid domain name");
			smtp_count_error(s);
			return;
		}
	}
	memcpy(s->helo, cmd->arg, cmd->arg_len);
	s->helo[cmd->arg_len] = '\0';
	const struct config *cfg = s->srv->cfg;
	if (cmd->verb == SMTP_VERB_HELO) {
		s->esmtp = false;
		smtp_reply(s, 250, NULL, "%s", cfg->hostname);
		return;
	}
	s->esmtp = true;
	lineio_printf(s->io, "250-%s\r\n", cfg->hostname);
	lineio_printf(s->io, "250-PIPELINING\r\n");
	lineio_printf(s->io, "250-SIZE %" PRId64 "\r\n", cfg->message_size_limit);
	lineio_printf(s->io, "250-8BITMIME\r\n");
	lineio_printf(s->io, "250-ENHANCEDSTATUSCODES\r\n");
	lineio_printf(s->io, "250-SMTPUTF8\r\n");
	lineio_printf(s->io, "250-CHUNKING\r\n");
	if (starttls_available(s))
		lineio_printf(s->io, "250-STARTTLS\r\n");
	/* RFC 4954 §3; never before TLS (RFC 8314 §3, and the mechanisms we have
	 * reveal the password). */
	if (smtp_auth_offered(s) && sasl_mech_list(true)[0] != '\0')
		lineio_printf(s->io, "250-AUTH %s\r\n", sasl_mech_list(true));
	lineio_printf(s->io, "250 DSN\r\n");
}

static void
cmd_starttls(struct smtp_session *s, const struct smtp_command *cmd)
{
	if (smtp_session_tls(s)) {
		smtp_reply(s, 503, "5.5.1", "TLS already active");
		smtp_count_error(s);
		return;
	}
	if (s->srv->tls == NULL) {
		smtp_reply(s, 502, "5.5.1", "STARTTLS not available");
		smtp_count_error(s);
		return;
	}
	if (lineio_starttls(s->io, s->srv->tls, "220 2.0.0 Ready to start TLS\r\n") < 0) {
		smtp_close(s, 454, "4.7.0", "TLS not available due to temporary reason");
		return;
	}
	/* RFC 3207 §4.2: the session starts over; the client must EHLO again. */
	smtp_session_reset_after_tls(s);
	log_info("smtp %s: STARTTLS", s->sid);
}

/* MAIL arguments kept while auth checks the sender. */
struct mail_pending {
	struct smtp_mail_args args;
};

static void
mail_accept(struct smtp_session *s, void *arg)
{
	struct mail_pending *p = arg;
	const struct smtp_mail_args *args = &p->args;
	struct smtp_txn *t = smtp_txn_begin(s);
	if (t == NULL) {
		smtp_reply(s, 451, "4.3.0", "Local error in processing");
		free(p);
		return;
	}
	struct envelope *e = t->env;
	t->mail_smtputf8 = args->smtputf8;
	e->smtputf8 = args->smtputf8;
	e->body = args->body == SMTP_BODY_8BITMIME ? ENVELOPE_BODY_8BITMIME : ENVELOPE_BODY_7BIT;
	e->ret = args->ret == SMTP_RET_FULL ? ENVELOPE_RET_FULL :
	    args->ret == SMTP_RET_HDRS ? ENVELOPE_RET_HDRS : ENVELOPE_RET_NONE;
	e->size_declared = args->size_set ? args->size : 0;
	e->client_port = (uint16_t)s->port;
	e->received_at = (int64_t)time(NULL);
	if (envelope_set_str(&e->mail_from, args->from.null_path ? "" : args->from.mailbox) < 0 ||
	    envelope_set_str(&e->envid, args->envid[0] != '\0' ? args->envid : NULL) < 0 ||
	    envelope_set_str(&e->helo, s->helo) < 0 ||
	    envelope_set_str(&e->client_addr, s->addr) < 0 ||
	    envelope_set_str(&e->listener, s->srv->listener->name) < 0 ||
	    envelope_set_str(&e->auth_user, s->user[0] != '\0' ? s->user : NULL) < 0) {
		smtp_txn_reset(s);
		smtp_reply(s, 451, "4.3.0", "Local error in processing");
		free(p);
		return;
	}
	free(p);
	smtp_reply(s, 250, "2.1.0", "Ok");
}

static void
cmd_mail(struct smtp_session *s, const struct smtp_command *cmd)
{
	int code;
	const char *enh, *error;

	if (s->txn != NULL) {
		smtp_reply(s, 503, "5.5.1", "Nested MAIL command");
		smtp_count_error(s);
		return;
	}
	if (cmd->name_len + 1 + cmd->arg_len > SMTP_CMD_MAX_MAIL) {
		smtp_reply(s, 500, "5.5.2", "Line too long");
		smtp_count_error(s);
		return;
	}
	if (s->srv->listener->role != LISTENER_ROLE_MX && s->user[0] == '\0') {
		/* RFC 4954 §6 / RFC 6409 §4.3: submission takes mail from users only. */
		smtp_reply(s, 530, "5.7.0", "Authentication required");
		smtp_count_error(s);
		return;
	}
	struct mail_pending *p = calloc(1, sizeof(*p));
	if (p == NULL) {
		smtp_reply(s, 451, "4.3.0", "Local error in processing");
		return;
	}
	if (smtp_parse_mail(cmd->arg, cmd->arg_len, smtp_extensions(s), &p->args, &code, &enh,
	    &error) < 0) {
		free(p);
		smtp_reply(s, code, enh, "%s", error);
		smtp_count_error(s);
		return;
	}
	const struct config *cfg = s->srv->cfg;
	if (p->args.size_set && p->args.size > (uint64_t)cfg->message_size_limit) {
		free(p);
		/* RFC 1870 §6.2 */
		smtp_reply(s, 552, "5.3.4", "Message size exceeds fixed maximum message size");
		return;
	}
	if (s->user[0] != '\0' && !p->args.from.null_path) {
		/* Accountability: the user must own the envelope sender. */
		smtp_sender_check_mail(s, p->args.from.mailbox, mail_accept, p);
		return;
	}
	mail_accept(s, p);
}

/* What RCPT asked the auth process, kept until the answer comes. */
struct rcpt_pending {
	struct smtp_session *s;
	char address[SMTP_ADDRESS_MAILBOX_MAX + 1];
	char orcpt[SMTP_ORCPT_MAX * 2 + 2];
	unsigned notify;
};

static bool
txn_has_mailbox(const struct envelope *e, const char *mailbox)
{
	for (size_t i = 0; i < e->rcpt_count; i++)
		if (e->rcpts[i].mailbox != NULL && strcmp(e->rcpts[i].mailbox, mailbox) == 0)
			return true;
	return false;
}

static unsigned
notify_to_envelope(unsigned n)
{
	return (n & SMTP_NOTIFY_NEVER ? ENVELOPE_NOTIFY_NEVER : 0) |
	    (n & SMTP_NOTIFY_SUCCESS ? ENVELOPE_NOTIFY_SUCCESS : 0) |
	    (n & SMTP_NOTIFY_FAILURE ? ENVELOPE_NOTIFY_FAILURE : 0) |
	    (n & SMTP_NOTIFY_DELAY ? ENVELOPE_NOTIFY_DELAY : 0);
}

static void rcpt_finish(struct smtp_session *s, const struct rcpt_pending *p,
    const struct auth_rcpt_res *res);

static void
rcpt_on_reply(struct ipc_frame *f, void *arg)
{
	struct rcpt_pending *p = arg;
	struct smtp_session *s = p->s;
	const char *error = "auth unavailable";
	smtp_resume(s);
	struct auth_rcpt_res *res = f != NULL ? malloc(sizeof(*res)) : NULL;
	if (res == NULL || auth_rcpt_res_decode(f->data, f->len, res, &error) < 0) {
		log_error("smtp %s: recipient look-up failed: %s", s->sid, error);
		smtp_reply(s, 451, "4.3.0", "Temporary failure, try again later");
		free(res);
		free(p);
		return;
	}
	rcpt_finish(s, p, res);
	free(res);
	free(p);
}

static void
rcpt_finish(struct smtp_session *s, const struct rcpt_pending *p, const struct auth_rcpt_res *res)
{
	switch (res->status) {
	case AUTH_RCPT_OK:
		break;
	case AUTH_RCPT_NOT_LOCAL:
		if (s->user[0] != '\0') {
			/* Authenticated: relay (the queue holds it for outbound delivery). */
			if (envelope_add_rcpt(s->txn->env, p->address, NULL,
			    p->orcpt[0] != '\0' ? p->orcpt : NULL, p->notify) < 0) {
				smtp_reply(s, 452, "4.5.3", "Too many recipients");
				return;
			}
			s->txn->rcpt_cmds++;
			smtp_reply(s, 250, "2.1.5", "Ok");
			return;
		}
		/* Not ours and the client is not authenticated: no open relay. */
		smtp_reply(s, 554, "5.7.1", "<%s>: Relay access denied", p->address);
		smtp_count_error(s);
		return;
	case AUTH_RCPT_NO_SUCH_USER:
		/* RFC 3463: 5.1.1 bad destination mailbox address. */
		smtp_reply(s, 550, "5.1.1", "<%s>: Recipient address rejected: no such user",
		    p->address);
		smtp_count_error(s);
		return;
	case AUTH_RCPT_TEMPFAIL:
		smtp_reply(s, 451, "4.3.0", "Temporary failure, try again later");
		return;
	}
	struct envelope *e = s->txn->env;
	for (uint32_t i = 0; i < res->nmailboxes; i++) {
		if (txn_has_mailbox(e, res->mailboxes[i]))
			continue;   /* one copy per mailbox */
		if (envelope_add_rcpt(e, p->address, res->mailboxes[i],
		    p->orcpt[0] != '\0' ? p->orcpt : NULL, p->notify) < 0) {
			smtp_reply(s, 452, "4.5.3", "Too many recipients");
			return;
		}
	}
	s->txn->rcpt_cmds++;
	smtp_reply(s, 250, "2.1.5", "Ok");
}

static void
cmd_rcpt(struct smtp_session *s, const struct smtp_command *cmd)
{
	struct smtp_rcpt_args args;
	int code;
	const char *enh, *error;
	struct smtp_txn *t = s->txn;

	if (cmd->name_len + 1 + cmd->arg_len > SMTP_CMD_MAX_RCPT) {
		smtp_reply(s, 500, "5.5.2", "Line too long");
		smtp_count_error(s);
		return;
	}
	if (t->rcpt_cmds >= (unsigned)s->srv->cfg->max_recipients) {
		/* RFC 5321 §4.5.3.1.10 */
		smtp_reply(s, 452, "4.5.3", "Too many recipients");
		return;
	}
	unsigned ext = smtp_extensions(s);
	if (!t->mail_smtputf8)
		ext &= ~(unsigned)SMTP_EXT_SMTPUTF8;   /* RFC 6531 §3.4: UTF-8 needs SMTPUTF8 */
	if (smtp_parse_rcpt(cmd->arg, cmd->arg_len, ext, &args, &code, &enh, &error) < 0) {
		smtp_reply(s, code, enh, "%s", error);
		smtp_count_error(s);
		return;
	}
	struct rcpt_pending *p = calloc(1, sizeof(*p));
	if (p == NULL) {
		smtp_reply(s, 451, "4.3.0", "Local error in processing");
		return;
	}
	p->s = s;
	p->notify = notify_to_envelope(args.notify);
	if (args.orcpt_type[0] != '\0')
		snprintf(p->orcpt, sizeof(p->orcpt), "%s;%s", args.orcpt_type, args.orcpt_addr);
	/* RFC 5321 §4.1.1.3: a bare <Postmaster> goes as "postmaster"; auth resolves it. */
	snprintf(p->address, sizeof(p->address), "%s",
	    args.to.postmaster ? "postmaster" : args.to.mailbox);

	struct auth_rcpt_req req = { p->address };
	struct evbuffer *b = evbuffer_new();
	struct ipc_call *c = NULL;
	if (b != NULL) {
		auth_rcpt_req_encode(b, &req);
		c = ipc_call_start(s->srv->auth, AUTH_RCPT_REQ, b, rcpt_on_reply, p);
		evbuffer_free(b);
	}
	if (c == NULL) {
		rcpt_on_reply(NULL, p);
		return;
	}
	smtp_wait(s, c);
}

static void
cmd_data(struct smtp_session *s, const struct smtp_command *cmd)
{
	if (s->txn->env->rcpt_count == 0) {
		smtp_reply(s, 554, "5.5.1", "No valid recipients");
		smtp_count_error(s);
		return;
	}
	if (s->txn->bdat) {
		/* RFC 3030 §3: DATA and BDAT may not be mixed in one transaction. */
		smtp_reply(s, 503, "5.5.1", "DATA after BDAT");
		smtp_count_error(s);
		return;
	}
	smtp_data_begin(s);
}

static void
cmd_bdat(struct smtp_session *s, const struct smtp_command *cmd)
{
	uint64_t size;
	bool last;
	const char *error;
	if (smtp_parse_bdat(cmd->arg, cmd->arg_len, &size, &last, &error) < 0) {
		/* The chunk size is unknown, so the stream cannot be followed: close. */
		smtp_close(s, 501, "5.5.4", error);
		return;
	}
	struct smtp_owed_reply refusal = { 0, NULL, NULL };
	if (s->txn == NULL)
		refusal = (struct smtp_owed_reply){ 503, "5.5.1", "MAIL first" };
	else if (s->txn->env->rcpt_count == 0)
		refusal = (struct smtp_owed_reply){ 554, "5.5.1", "No valid recipients" };
	smtp_bdat_begin(s, size, last, &refusal);
}

static void
cmd_rset(struct smtp_session *s, const struct smtp_command *cmd)
{
	smtp_txn_reset(s);
	smtp_reply(s, 250, "2.0.0", "Ok");
}

static void
cmd_noop(struct smtp_session *s, const struct smtp_command *cmd)
{
	smtp_reply(s, 250, "2.0.0", "Ok");
}

static void
cmd_quit(struct smtp_session *s, const struct smtp_command *cmd)
{
	smtp_close(s, 221, "2.0.0", "Bye");
}

static void
cmd_help(struct smtp_session *s, const struct smtp_command *cmd)
{
	smtp_reply(s, 214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY STARTTLS");
}

static void
cmd_vrfy(struct smtp_session *s, const struct smtp_command *cmd)
{
	/* RFC 5321 §3.5.3: 252 — never confirm or deny a user (no harvesting). */
	smtp_reply(s, 252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery");
}

static void
cmd_expn(struct smtp_session *s, const struct smtp_command *cmd)
{
	smtp_reply(s, 502, "5.5.1", "EXPN not available");
}

static const struct smtp_command_def smtp_commands[] = {
	{ SMTP_VERB_EHLO, cmd_ehlo, 0 },
	{ SMTP_VERB_HELO, cmd_ehlo, 0 },
	{ SMTP_VERB_STARTTLS, cmd_starttls, CMD_NEED_HELO | CMD_NO_ARGS },
	{ SMTP_VERB_MAIL, cmd_mail, CMD_NEED_HELO },
	{ SMTP_VERB_RCPT, cmd_rcpt, CMD_NEED_HELO | CMD_NEED_MAIL },
	{ SMTP_VERB_DATA, cmd_data, CMD_NEED_HELO | CMD_NEED_MAIL | CMD_NO_ARGS },
	{ SMTP_VERB_BDAT, cmd_bdat, 0 },   /* checks its state itself: the chunk must be read */
	{ SMTP_VERB_RSET, cmd_rset, CMD_NO_ARGS },
	{ SMTP_VERB_NOOP, cmd_noop, 0 },
	{ SMTP_VERB_QUIT, cmd_quit, CMD_NO_ARGS },
	{ SMTP_VERB_HELP, cmd_help, 0 },
	{ SMTP_VERB_VRFY, cmd_vrfy, 0 },
	{ SMTP_VERB_EXPN, cmd_expn, 0 },
	{ SMTP_VERB_AUTH, smtp_cmd_auth, CMD_NEED_HELO },
};

void
smtp_dispatch(struct smtp_session *s, const char *line, size_t len)
{
	struct smtp_command cmd;
	const char *error;

	if (smtp_parse_command(line, len, &cmd, &error) < 0) {
		smtp_reply(s, 500, "5.5.2", "Syntax error: %s", error);
		smtp_count_error(s);
		return;
	}
	if (cmd.verb == SMTP_VERB_UNKNOWN) {
		/* RFC 5321 §4.2.4 / RFC 3463: 5.5.1 invalid command. */
		smtp_reply(s, 500, "5.5.1", "Command unrecognized");
		smtp_count_error(s);
		return;
	}
	const struct smtp_command_def *def = NULL;
	for (size_t i = 0; i < sizeof(smtp_commands) / sizeof(smtp_commands[0]); i++)
		if (smtp_commands[i].verb == cmd.verb)
			def = &smtp_commands[i];
	if (def == NULL) {
		smtp_reply(s, 502, "5.5.1", "Command not implemented");
		smtp_count_error(s);
		return;
	}
	if (cmd.verb != SMTP_VERB_BDAT && cmd.verb != SMTP_VERB_MAIL &&
	    cmd.verb != SMTP_VERB_RCPT && len > SMTP_CMD_MAX) {
		smtp_reply(s, 500, "5.5.2", "Line too long");
		smtp_count_error(s);
		return;
	}
	if ((def->flags & CMD_NO_ARGS) && cmd.arg_len > 0) {
		smtp_reply(s, 501, "5.5.4", "Syntax error: no parameters allowed");
		smtp_count_error(s);
		return;
	}
	if ((def->flags & CMD_NEED_HELO) && s->helo[0] == '\0') {
		smtp_reply(s, 503, "5.5.1", "Send EHLO or HELO first");
		smtp_count_error(s);
		return;
	}
	if ((def->flags & CMD_NEED_MAIL) && s->txn == NULL) {
		smtp_reply(s, 503, "5.5.1", "Need MAIL command first");
		smtp_count_error(s);
		return;
	}
	def->handler(s, &cmd);
}
