/*
 * sasl — the server side of SASL exchanges (RFC 4422), shared by SMTP AUTH
 * (RFC 4954), IMAP AUTHENTICATE (RFC 9051 §6.2.2) and POP3 AUTH (RFC 5034).
 *
 * Pure: no I/O, no directory, no password check. The protocol session looks up
 * the mechanism the client named, creates an exchange and feeds it each client
 * response exactly as it came off the wire (base64 text without CRLF). The
 * exchange answers with a challenge to send, with credentials to forward to the
 * auth process, or with a failure reason that the session turns into its
 * protocol's reply. Whether the password is right, and whether authcid may act as
 * authzid, is for the auth process to decide.
 *
 * Mechanisms, in the order they are advertised: PLAIN (RFC 4616) and LOGIN
 * (draft-murchison-sasl-login-00). Both reveal the password
 * (sasl_mech_plaintext): offer and accept them only under TLS (RFC 4616 §6; an
 * SMTP server refuses them without TLS with 538 5.7.11, RFC 4954 §6).
 *
 * Mapping failures to SMTP replies is the session's job (RFC 4954 §4, §6):
 *   SASL_FAIL_CANCELLED   501 5.7.0  the client sent "*"
 *   SASL_FAIL_BAD_BASE64  501 5.5.2  undecodable response
 *   SASL_FAIL_MALFORMED   501 5.5.2  decoded, but not the mechanism's syntax
 *   SASL_FAIL_TOO_LONG    500 5.5.6  "Authentication Exchange line is too long"
 * After SASL_DONE the credentials go to the auth process: 235 2.7.0 or
 * 535 5.7.8 comes from its answer.
 *
 * Secrets: every buffer that held a decoded response is wiped (sodium_memzero)
 * as soon as the step that decoded it returns; the mechanism's state (where the
 * credentials live) is wiped when the exchange fails and when it is freed.
 * Nothing here logs, and no failure reason or sentence carries client data.
 */
#ifndef RAMPART_SASL_H
#define RAMPART_SASL_H

#include <stdbool.h>
#include <stddef.h>

/* RFC 4954 §4: a server must accept AUTH lines (and responses) of up to 12288
 * octets. The limit applies to the base64 text of one response (the initial
 * response included); anything longer fails with SASL_FAIL_TOO_LONG. */
#define SASL_RESPONSE_MAX 12288
/* The longest base64 challenge an exchange produces (without "334 " or CRLF). */
#define SASL_CHALLENGE_MAX 4096

enum sasl_status {
	SASL_CONTINUE, /* send the challenge, then read another response */
	SASL_DONE,     /* credentials ready: sasl_exchange_credentials */
	SASL_FAIL,     /* the exchange is over: see enum sasl_fail */
	/*
	 * Reserved for mechanisms whose exchange needs the auth process in the
	 * middle (SCRAM-SHA-256's server proof, OAUTHBEARER's token check); PLAIN and
	 * LOGIN never return it. Send sasl_exchange_forward_blob() to the auth
	 * process and feed its answer to sasl_exchange_answer(), which returns the
	 * next status as sasl_exchange_step does.
	 */
	SASL_FORWARD,
};

enum sasl_fail {
	SASL_FAIL_NONE,
	SASL_FAIL_CANCELLED,  /* a response of "*" (RFC 4954 §4): 501 5.7.0 */
	SASL_FAIL_BAD_BASE64, /* not canonical RFC 4648 §4 base64: 501 5.5.2 */
	SASL_FAIL_MALFORMED,  /* decoded message violates the mechanism's syntax */
	SASL_FAIL_TOO_LONG,   /* base64 text over SASL_RESPONSE_MAX: 500 5.5.6 */
};

struct sasl_mech;     /* a mechanism definition (static, never freed) */
struct sasl_exchange; /* one authentication exchange */

/*
 * The mechanism called name[0..len) (no NUL needed), compared ASCII
 * case-insensitively (RFC 4422 §3.1 names are upper-case; protocol keywords are
 * case-insensitive); NULL if unknown.
 */
const struct sasl_mech *sasl_mech_find(const char *name, size_t len);

/* The registered, upper-case name ("PLAIN"). */
const char *sasl_mech_name(const struct sasl_mech *m);

/* Whether the mechanism reveals the password to an eavesdropper (needs TLS). */
bool sasl_mech_plaintext(const struct sasl_mech *m);

/*
 * The space-separated names of the mechanisms, in table order ("PLAIN LOGIN"),
 * for an EHLO "AUTH" keyword (RFC 4954 §3) or IMAP/POP3 capabilities. When
 * plaintext_ok is false the mechanisms that reveal the password are left out,
 * which today leaves "": then advertise no AUTH at all. Static string.
 */
const char *sasl_mech_list(bool plaintext_ok);

/* A sentence naming the failure, for logs and error_r; never holds client data. */
const char *sasl_fail_reason(enum sasl_fail fail);

/* Starts an exchange for m; NULL when out of memory. */
struct sasl_exchange *sasl_exchange_new(const struct sasl_mech *m);

/* The exchange's mechanism. */
const struct sasl_mech *sasl_exchange_mech(const struct sasl_exchange *x);

/*
 * One step. The first call has initial=true and carries the initial response of
 * the AUTH command, if any: in[0..len) as given, "=" meaning an empty initial
 * response (RFC 4954 §4), len 0 (in may be NULL) meaning none was given. Every
 * later call has initial=false and carries a response line as sent (no CRLF):
 * "*" cancels (RFC 4954 §4), "" is an empty response.
 *
 * Returns SASL_CONTINUE with *challenge_r a NUL-terminated base64 challenge to
 * send after "334 " (possibly "", valid until the next call or free);
 * SASL_DONE; SASL_FORWARD (see above); or SASL_FAIL with *fail_r set.
 * *challenge_r is NULL and *fail_r SASL_FAIL_NONE whenever they do not apply.
 *
 * Calling it after SASL_DONE or SASL_FAIL, while a SASL_FORWARD is pending, or
 * with initial true on any but the first call (or false on the first) is a
 * programmer error: it asserts.
 */
enum sasl_status sasl_exchange_step(struct sasl_exchange *x, const char *in, size_t len,
				    bool initial, const char **challenge_r,
				    enum sasl_fail *fail_r);

/* After SASL_FORWARD: the blob to send to the auth process, valid until the next
 * call or free. */
const void *sasl_exchange_forward_blob(const struct sasl_exchange *x, size_t *len_r);

/* After SASL_FORWARD: the auth process's answer. Results as sasl_exchange_step;
 * after SASL_CONTINUE the next client response goes to sasl_exchange_step with
 * initial=false. Asserts when no SASL_FORWARD is pending. */
enum sasl_status sasl_exchange_answer(struct sasl_exchange *x, const void *data, size_t len,
				      const char **challenge_r, enum sasl_fail *fail_r);

/*
 * After SASL_DONE: who authenticates (authcid), as whom (authzid, "" when absent,
 * RFC 4422 §3.4.1), and the secret (PLAIN and LOGIN: the password; no NUL inside,
 * NUL-terminated). All NUL-terminated, valid until free. A mechanism whose
 * decision the auth process already made through SASL_FORWARD sets secret NULL
 * and secret_len 0. NULL before SASL_DONE and after SASL_FAIL.
 */
struct sasl_credentials {
	const char *authzid;
	const char *authcid;
	const char *secret;
	size_t secret_len;
};
const struct sasl_credentials *sasl_exchange_credentials(const struct sasl_exchange *x);

/* Wipes every buffer that held a secret (sodium_memzero), frees the exchange and
 * sets *x to NULL. NULL or *x NULL is fine. */
void sasl_exchange_free(struct sasl_exchange **x);

#endif
