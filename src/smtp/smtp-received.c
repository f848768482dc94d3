/*
 * smtp-received — the Received: trace header a server adds to every message
 * (RFC 5321 §4.4), with the protocol keyword of RFC 3848 / RFC 6531 §3.7.3
 * (ESMTP, ESMTPS, UTF8SMTPS, ...) and the TLS version and cipher in a comment.
 */
#include "smtp/smtp-session-private.h"
#include "lib/config.h"
#include "net/lineio.h"
#include "queue/envelope.h"

#include <stdio.h>
#include <time.h>

#include <event2/buffer.h>

/* Header text may carry only what we vouch for: keep the HELO argument printable. */
static void
sanitize(char *out, size_t size, const char *in)
{
	size_t i = 0;
	for (; *in != '\0' && i + 1 < size; in++) {
		unsigned char c = (unsigned char)*in;
		out[i++] = (c < 0x21 || c > 0x7e || c == '(' || c == ')' || c == '\\') ? '?' : (char)c;
	}
	out[i] = '\0';
}

void
smtp_received_header(struct smtp_session *s, struct evbuffer *out)
{
	const struct smtp_txn *t = s->txn;
	const struct envelope *e = t->env;
	char helo[256], date[64];
	const char *version, *cipher;
	int bits;
	bool tls = lineio_tls_info(s->io, &version, &cipher, &bits);

	/* RFC 3848 §2 and RFC 6531 §3.7.3: S for TLS, A for an authenticated client. */
	bool authed = s->user[0] != '\0';
	char proto[16];
	snprintf(proto, sizeof(proto), "%s%s%s%s", e->smtputf8 ? "UTF8SMTP" : s->esmtp ? "ESMTP" : "SMTP",
	    tls ? "S" : "", authed ? "A" : "", "");

	sanitize(helo, sizeof(helo), s->helo);
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);

	if (authed && !s->srv->cfg->received_auth_client)
		/* Submitters' privacy: no client name or address (RFC 5321 §4.4
		 * makes the from clause optional for this reason among others). */
		evbuffer_add_printf(out, "Received: by %s (Rampart) with %s id %s\r\n",
		    s->srv->cfg->hostname, proto, t->id);
	else
		evbuffer_add_printf(out, "Received: from %s ([%s])\r\n\tby %s (Rampart) with %s id %s\r\n",
		    helo, s->addr, s->srv->cfg->hostname, proto, t->id);
	if (tls)
		evbuffer_add_printf(out, "\t(using %s with cipher %s (%d/%d bits))\r\n",
		    version, cipher, bits, bits);
	/* "for" names the recipient only when there is exactly one (privacy of Bcc). */
	if (t->rcpt_cmds == 1 && e->rcpt_count >= 1)
		evbuffer_add_printf(out, "\tfor <%s>; %s\r\n", e->rcpts[0].address, date);
	else
		evbuffer_add_printf(out, "\t; %s\r\n", date);
}
