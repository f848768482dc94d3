/*
 * spf-macro — SPF macro strings (RFC 7208 §7): their syntax and their expansion.
 *
 * Pure: the values of the macro letters come in a context the caller fills
 * (the "p" letter needs DNS, so the caller works it out first when
 * spf_macro_uses_p() says it is needed). Expansion output is bounded: a
 * domain name keeps only its right-hand side, truncated at label boundaries to
 * 253 octets as §7.3 says; an explanation is cut at SPF_EXPLANATION_MAX.
 */
#ifndef RAMPART_MAILAUTH_SPF_MACRO_H
#define RAMPART_MAILAUTH_SPF_MACRO_H

#include <stdbool.h>
#include <stddef.h>

/* A domain name in presentation form without the final dot (RFC 7208 §7.3). */
#define SPF_DOMAIN_MAX 253
/* Longest explanation kept (it ends up in an SMTP reply, RFC 5321 §4.5.3.1.5). */
#define SPF_EXPLANATION_MAX 512
/* Size of the buffer spf_macro_expand() writes into. */
#define SPF_MACRO_OUT 1024

enum spf_macro_kind {
	SPF_MACRO_DOMAIN,     /* a domain-spec: c, r, t not allowed; must end well (§7.1) */
	SPF_MACRO_MODIFIER,   /* an unknown modifier's value: any macro-string but c, r, t */
	SPF_MACRO_EXPLAIN,    /* explanation text: c, r, t allowed, spaces allowed (§6.2) */
};

/* The values of the macro letters (§7.3); all non-NULL. i is the dotted form
 * (nibbles for IPv6), c the readable one; v is "in-addr" or "ip6". */
struct spf_macro_ctx {
	const char *s, *l, *o, *d, *i, *p, *h, *c, *r, *t, *v;
};

/* Checks text[0..len) against the ABNF of its kind (§7.1, §12). Returns 0, or
 * -1 with *error_r (a static sentence). */
int spf_macro_check(const char *text, size_t len, enum spf_macro_kind kind,
    const char **error_r);

/* Whether a checked macro string uses the "p" letter (either case). */
bool spf_macro_uses_p(const char *text);

/*
 * Expands a checked macro string into out[SPF_MACRO_OUT]. SPF_MACRO_DOMAIN: a final dot is
 * removed and a result longer than 253 octets loses labels from the left
 * (§7.3); any length of input is handled in bounded space. SPF_MACRO_EXPLAIN:
 * cut at SPF_EXPLANATION_MAX. Returns the length written (NUL-terminated).
 */
size_t spf_macro_expand(const char *text, enum spf_macro_kind kind,
    const struct spf_macro_ctx *ctx, char *out);

#endif
