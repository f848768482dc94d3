/*
 * smtp-client-setup — the SMTP client's session set-up: the greeting, EHLO
 * (HELO when EHLO is refused), STARTTLS and the check of the certificate,
 * EHLO again, AUTH PLAIN or LOGIN over TLS only, and then `ready`.
 */
#include "smtp/smtp-client-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <sodium.h>

#include "lib/log.h"
#include "net/lineio.h"
#include "net/tls-client.h"

/* RFC 4954 §4 allows AUTH lines of 12288 octets; credentials are far shorter. */
#define CLIENT_AUTH_MAX 1024

static void
client_ready(struct smtp_client *c)
{
	c->state = CS_IDLE;
	evtimer_del(c->timer);
	lineio_set_timeout(c->io, (int)client_command_timeout(c));
	log_debug("smtp-client %s: ready (tls=%d verified=%d auth=%d)", c->label,
	    c->info.tls, c->info.tls_verified, c->info.authenticated);
	c->cb.ready(c, c->cb_arg);
}

static void
client_ehlo(struct smtp_client *c)
{
	smtp_ehlo_caps_init(&c->caps_new);
	client_send_line(c, "EHLO", "EHLO %s", c->helo);
	c->state = CS_EHLO;
	client_expect(c, client_command_timeout(c));
}

/* base64 (RFC 4648 §4) of s[0..len) followed by CRLF, sent as a secret. */
static void
client_send_base64(struct smtp_client *c, const char *prefix, const unsigned char *s, size_t len)
{
	size_t plen = strlen(prefix);
	size_t b64len = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	size_t total = plen + b64len + 2;
	char *line = malloc(total);
	if (line == NULL)
		return;  /* no reply: the deadline ends the session */
	memcpy(line, prefix, plen);
	sodium_bin2base64(line + plen, b64len, s, len, sodium_base64_VARIANT_ORIGINAL);
	size_t n = plen + strlen(line + plen);
	memcpy(line + n, "\r\n", 2);
	lineio_write_secret(c->io, line, n + 2);
	sodium_memzero(line, total);
	free(line);
}

/* RFC 4616 §2: [authzid] NUL authcid NUL passwd, in base64 after prefix:
 * "AUTH PLAIN " for the initial response (RFC 4954 §4), or "" when the
 * server asks for it with a 334. */
static void
client_auth_plain(struct smtp_client *c, const char *prefix)
{
	size_t len = 1 + c->auth_user_len + 1 + c->auth_password_len;
	unsigned char *raw = malloc(len);
	if (raw == NULL) {
		client_end(c, SMTP_CLIENT_AUTH_FAILED, NULL, "out of memory");
		return;
	}
	raw[0] = '\0';
	memcpy(raw + 1, c->auth_user, c->auth_user_len);
	raw[1 + c->auth_user_len] = '\0';
	memcpy(raw + 2 + c->auth_user_len, c->auth_password, c->auth_password_len);
	log_debug("smtp-client %s: > %s", c->label, prefix[0] != '\0' ? "AUTH PLAIN" :
	    "(AUTH PLAIN response)");
	client_send_base64(c, prefix, raw, len);
	sodium_memzero(raw, len);
	free(raw);
}

static void
client_auth(struct smtp_client *c)
{
	char why[CLIENT_WHY_MAX];
	if (c->auth_user == NULL) {
		client_ready(c);
		return;
	}
	if (!c->info.tls) {
		/* Credentials never travel in clear text. */
		snprintf(why, sizeof(why), "credentials are set for %s but the session is not "
		    "encrypted: not sending them in clear text", c->label);
		client_end(c, SMTP_CLIENT_AUTH_FAILED, NULL, why);
		return;
	}
	if (c->auth_user_len > CLIENT_AUTH_MAX || c->auth_password_len > CLIENT_AUTH_MAX) {
		client_end(c, SMTP_CLIENT_AUTH_FAILED, NULL, "the credentials are too long");
		return;
	}
	if (c->info.caps.auth_plain) {
		c->auth_login = false;
		client_auth_plain(c, "AUTH PLAIN ");
	} else if (c->info.caps.auth_login) {
		c->auth_login = true;
		client_send_line(c, "AUTH LOGIN", "AUTH LOGIN");
	} else {
		snprintf(why, sizeof(why), "%s offers neither AUTH PLAIN nor AUTH LOGIN", c->label);
		client_end(c, SMTP_CLIENT_AUTH_FAILED, NULL, why);
		return;
	}
	if (c->state == CS_CLOSED)
		return;
	c->state = CS_AUTH;
	client_expect(c, client_command_timeout(c));
}

static void
client_auth_reply(struct smtp_client *c, const struct smtp_reply *r)
{
	char why[CLIENT_WHY_MAX], fmt[CLIENT_FMT_MAX];
	if (r->code == 334 && c->state != CS_AUTH_PASS) {
		/* RFC 4954 §4: a challenge. LOGIN asks for the name, then the
		 * password; PLAIN may ask for its response (sent already as the
		 * initial response) again. */
		if (c->auth_login && c->state == CS_AUTH) {
			log_debug("smtp-client %s: > (AUTH LOGIN user name)", c->label);
			client_send_base64(c, "", (const unsigned char *)c->auth_user,
			    c->auth_user_len);
			c->state = CS_AUTH_USER;
		} else if (c->auth_login) {
			log_debug("smtp-client %s: > (AUTH LOGIN password)", c->label);
			client_send_base64(c, "", (const unsigned char *)c->auth_password,
			    c->auth_password_len);
			c->state = CS_AUTH_PASS;
		} else {
			client_auth_plain(c, "");
			if (c->state == CS_CLOSED)
				return;
			c->state = CS_AUTH_PASS;
		}
		client_expect(c, client_command_timeout(c));
		return;
	}
	if (r->code == 235 && (c->state == CS_AUTH_PASS || (c->state == CS_AUTH && !c->auth_login))) {
		c->info.authenticated = true;
		client_ready(c);
		return;
	}
	snprintf(why, sizeof(why), "AUTH %s refused by %s: %s", c->auth_login ? "LOGIN" : "PLAIN",
	    c->label, smtp_reply_format(r, fmt, sizeof(fmt)));
	client_end(c, SMTP_CLIENT_AUTH_FAILED, r, why);
}

static void
client_on_tls_done(struct lineio *io, void *ctx)
{
	struct smtp_client *c = ctx;
	int bits;
	client_hold(c);
	evtimer_del(c->timer);
	c->info.tls = true;
	lineio_tls_info(c->io, &c->info.tls_version, &c->info.tls_cipher, &bits);
	c->info.tls_verified = tls_client_verified(c->ssl, &c->info.dane, &c->info.verify_error);
	log_debug("smtp-client %s: TLS %s %s verified=%d dane=%d%s%s", c->label,
	    c->info.tls_version, c->info.tls_cipher, c->info.tls_verified, c->info.dane,
	    c->info.verify_error != NULL ? ": " : "",
	    c->info.verify_error != NULL ? c->info.verify_error : "");
	if (c->p.verify_required && !c->info.tls_verified) {
		char why[CLIENT_WHY_MAX];
		snprintf(why, sizeof(why), "the certificate of %s did not verify: %s", c->label,
		    c->info.verify_error != NULL ? c->info.verify_error : "unknown reason");
		client_end(c, SMTP_CLIENT_TLS_UNVERIFIED, NULL, why);
	} else {
		/* RFC 3207 §4.2: forget what was learnt before TLS, EHLO again. */
		smtp_reply_parser_init(&c->parser);
		memset(&c->info.caps, 0, sizeof(c->info.caps));
		client_ehlo(c);
	}
	client_release(c);
}

static void
client_starttls(struct smtp_client *c)
{
	SSL *ssl = c->p.tls_new != NULL ? c->p.tls_new(c->p.tls_arg) : NULL;
	if (ssl == NULL) {
		client_end(c, SMTP_CLIENT_TLS_FAILED, NULL, "could not set up TLS");
		return;
	}
	if (lineio_starttls_client(c->io, ssl, client_on_tls_done) < 0) {
		client_end(c, SMTP_CLIENT_TLS_FAILED, NULL, "could not start TLS");
		return;
	}
	c->ssl = ssl;
	c->state = CS_HANDSHAKE;
	client_expect(c, client_command_timeout(c));
}

/* After EHLO or HELO: STARTTLS if wanted and offered, then AUTH. */
static void
client_after_ehlo(struct smtp_client *c)
{
	char why[CLIENT_WHY_MAX];
	if (!c->info.tls && c->p.starttls && c->info.caps.starttls && !c->tls_tried) {
		c->tls_tried = true;
		client_send_line(c, "STARTTLS", "STARTTLS");
		c->state = CS_STARTTLS;
		client_expect(c, client_command_timeout(c));
		return;
	}
	if (!c->info.tls && c->p.tls_required) {
		snprintf(why, sizeof(why), "%s does not offer STARTTLS, which is required",
		    c->label);
		client_end(c, SMTP_CLIENT_TLS_MISSING, NULL, why);
		return;
	}
	client_auth(c);
}

static void
client_greeting_name(struct smtp_client *c, const struct smtp_reply *r)
{
	size_t n = strcspn(r->text, " ");
	if (n >= sizeof(c->info.greeting_name))
		n = sizeof(c->info.greeting_name) - 1;
	memcpy(c->info.greeting_name, r->text, n);
	c->info.greeting_name[n] = '\0';
}

/* A reply during the set-up (c->state GREETING to AUTH_PASS). */
void
setup_reply(struct smtp_client *c, const struct smtp_reply *r)
{
	char why[CLIENT_WHY_MAX], fmt[CLIENT_FMT_MAX];
	smtp_reply_format(r, fmt, sizeof(fmt));
	switch (c->state) {
	case CS_GREETING:
		if (r->code == 220) {
			client_greeting_name(c, r);
			client_ehlo(c);
			return;
		}
		snprintf(why, sizeof(why), "greeting refused: %s", fmt);
		client_end(c, SMTP_CLIENT_GREETING, r, why);
		return;
	case CS_EHLO:
		if (r->code == 250) {
			c->info.caps = c->caps_new;
			client_after_ehlo(c);
		} else if (smtp_reply_class(r) == 5) {
			/* RFC 5321 §4.1.1.1: a server without EHLO; HELO then. */
			memset(&c->info.caps, 0, sizeof(c->info.caps));
			client_send_line(c, "HELO", "HELO %s", c->helo);
			c->state = CS_HELO;
			client_expect(c, client_command_timeout(c));
		} else {
			snprintf(why, sizeof(why), "EHLO refused: %s", fmt);
			client_end(c, SMTP_CLIENT_GREETING, r, why);
		}
		return;
	case CS_HELO:
		if (r->code == 250) {
			client_after_ehlo(c);
			return;
		}
		snprintf(why, sizeof(why), "HELO refused: %s", fmt);
		client_end(c, SMTP_CLIENT_GREETING, r, why);
		return;
	case CS_STARTTLS:
		if (r->code == 220) {
			client_starttls(c);
		} else if (c->p.tls_required) {
			snprintf(why, sizeof(why), "STARTTLS refused: %s", fmt);
			client_end(c, SMTP_CLIENT_TLS_FAILED, r, why);
		} else {
			/* RFC 3207 §4: the session goes on in clear text. */
			log_info("smtp-client %s: STARTTLS refused (%s); going on without TLS",
			    c->label, fmt);
			client_auth(c);
		}
		return;
	case CS_AUTH:
	case CS_AUTH_USER:
	case CS_AUTH_PASS:
		client_auth_reply(c, r);
		return;
	default:
		break;
	}
}
