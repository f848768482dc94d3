/*
 * mailauth — the whole check of one incoming message, and what it concludes.
 *
 * SPF for the MAIL FROM identity (or HELO, for the null sender: RFC 7208 §2.4),
 * every DKIM signature, then DMARC on their results (RFC 7489 §4.2), and the
 * Authentication-Results field that reports all three (RFC 8601). No I/O: the
 * message is fed as it arrives, and the check is then stepped against a
 * dns_view like each of its parts; SPF and DKIM ask their questions in the
 * same rounds, DMARC once both are known.
 */
#ifndef RAMPART_MAILAUTH_H
#define RAMPART_MAILAUTH_H

#include <stddef.h>
#include <time.h>

#include "dns/dns.h"
#include "mailauth/dkim.h"
#include "mailauth/dmarc.h"
#include "mailauth/spf.h"

struct mailauth_params {
	const char *ip;            /* the client's address, text */
	const char *helo;          /* its EHLO/HELO name */
	const char *mail_from;     /* reverse-path, "" = null sender */
	const char *authserv_id;   /* ours (RFC 8601 §2.5), also SPF's %{r} */
	time_t now;                /* for DKIM x= */
	const struct dmarc_psl *psl;
	int dmarc_sample;          /* 0..99 for pct; -1 = random */
	struct dkim_key_cache *keys; /* DKIM public keys kept across messages (dkim.h);
	                            * NULL = none; one per process, outliving the check */
};

/* What DMARC asks to be done with the message (after pct sampling). */
enum mailauth_verdict {
	MAILAUTH_ACCEPT,
	MAILAUTH_QUARANTINE,
	MAILAUTH_REJECT,
};

struct mailauth;

/* NULL with *error_r when the parameters cannot be used (an unparseable ip). */
struct mailauth *mailauth_new(const struct mailauth_params *p, const char **error_r);
/* The message as received (CRLF line ends, dot-unstuffed), in any pieces. */
void mailauth_feed(struct mailauth *m, const void *data, size_t len);
/* The end of the message. */
void mailauth_finish(struct mailauth *m);
/* A dns_step_fn (arg is the struct mailauth *): 1 once every result is known. */
int mailauth_step(struct dns_view *v, void *m);

enum mailauth_verdict mailauth_verdict(const struct mailauth *m);
/* The Authentication-Results field, CRLF-terminated (malloc'd). */
char *mailauth_auth_results(const struct mailauth *m);
/* One line for the process log: "spf=pass dkim=pass (example.org) dmarc=pass (p=reject)". */
const char *mailauth_summary(struct mailauth *m);
/* The policy domain of a DMARC failure, for the refusal text ("" otherwise). */
const char *mailauth_dmarc_domain(const struct mailauth *m);
void mailauth_free(struct mailauth **m);

#endif
