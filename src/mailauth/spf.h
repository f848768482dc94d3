/*
 * spf — the Sender Policy Framework check, check_host() of RFC 7208 §4.
 *
 * A check is made for one identity (the MAIL FROM address, or the HELO name)
 * and run by stepping it against a dns_view (dns.h) until it is done; it does no
 * I/O. Everything of RFC 7208 is here: all mechanisms (§5) and modifiers (§6),
 * macros with transformers (§7), the limits of 10 DNS-querying terms and 2 void
 * lookups (§4.6.4), exp= (§6.2), several records (§4.5: permerror), syntax errors
 * (permerror) and DNS failures (temperror).
 */
#ifndef RAMPART_MAILAUTH_SPF_H
#define RAMPART_MAILAUTH_SPF_H

#include "dns/dns.h"

/* RFC 7208 §2.6, with the names RFC 8601 §2.7.2 uses in Authentication-Results. */
enum spf_result {
	SPF_RESULT_NONE,
	SPF_RESULT_NEUTRAL,
	SPF_RESULT_PASS,
	SPF_RESULT_FAIL,
	SPF_RESULT_SOFTFAIL,
	SPF_RESULT_TEMPERROR,
	SPF_RESULT_PERMERROR,
};
const char *spf_result_name(enum spf_result r);    /* "pass", "permerror", ... */

struct spf_check;

/*
 * A check of the MAIL FROM identity (RFC 7208 §2.4): sender is the reverse-path
 * without angle brackets; "" (the null path) checks "postmaster@HELO" instead.
 * A sender without "@" is treated as "postmaster@sender" (§4.3).
 * ip: the client's address, IPv4 or IPv6 text (an IPv4-mapped IPv6 address is
 * checked as IPv4, §5). helo: the EHLO/HELO argument. receiver: this host's name
 * (the %{r} macro). Returns NULL with *error_r only for an unparseable ip.
 */
struct spf_check *spf_check_new_mailfrom(const char *ip, const char *helo, const char *sender,
    const char *receiver, const char **error_r);
/* A check of the HELO identity (RFC 7208 §2.3): "postmaster@helo". */
struct spf_check *spf_check_new_helo(const char *ip, const char *helo, const char *receiver,
    const char **error_r);

/* A dns_step_fn (arg is the struct spf_check *): 1 done, 0 waiting for answers.
 * The check resumes where it waited (what it computed is kept) and counts every
 * limit once however often it is stepped; once done, it stays done (1). */
int spf_check_step(struct dns_view *v, void *check);

/* After the last step: */
enum spf_result spf_check_result(const struct spf_check *c);
/* The domain whose policy was evaluated (the identity's domain), lower case. */
const char *spf_check_domain(const struct spf_check *c);
/* The identity checked ("alice@example.org", or "postmaster@helo.example"). */
const char *spf_check_identity(const struct spf_check *c);
/* FAIL only: the explanation (exp=, RFC 7208 §6.2, expanded; printable ASCII, at
 * most 512 octets), or the default "domain of DOMAIN does not designate IP as
 * permitted sender"; else NULL. */
const char *spf_check_explanation(const struct spf_check *c);
/* A short sentence for logs and A-R comments (printable ASCII, under 256
 * octets): the mechanism that matched ("matched ip4:192.0.2.0/24"), or what was
 * wrong ("more than 2 void DNS lookups (RFC 7208 section 4.6.4)"). */
const char *spf_check_reason(const struct spf_check *c);
void spf_check_free(struct spf_check **c);

#endif
