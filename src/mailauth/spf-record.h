/*
 * spf-record — the SPF record parser (RFC 7208 §4.5, §4.6, §5, §6, §12).
 *
 * Pure: record text in, terms out, or a permerror naming the offending term.
 * The whole record is checked before anything is evaluated, as §4.6 asks ("if
 * there are any syntax errors anywhere in the record, check_host() returns
 * immediately with the result permerror"): every mechanism and its arguments,
 * the macro syntax of every domain-spec (§7.1), unknown modifiers (§6: ignored,
 * but their name and macro-string must be well formed), and at most one
 * redirect= and one exp= (§6). Nothing is expanded here; see spf-macro.h.
 */
#ifndef RAMPART_MAILAUTH_SPF_RECORD_H
#define RAMPART_MAILAUTH_SPF_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mailauth/spf.h"

/* A TXT answer cannot be larger than a DNS message (RFC 1035 §4.2.2). */
#define SPF_RECORD_MAX 65535

enum spf_mech {
	SPF_MECH_ALL,
	SPF_MECH_INCLUDE,
	SPF_MECH_A,
	SPF_MECH_MX,
	SPF_MECH_PTR,
	SPF_MECH_IP4,
	SPF_MECH_IP6,
	SPF_MECH_EXISTS,
};

struct spf_term {
	uint8_t mech;               /* enum spf_mech */
	uint8_t qualifier;          /* enum spf_result: PASS, FAIL, SOFTFAIL or NEUTRAL */
	uint8_t cidr4, cidr6;       /* prefix lengths: a, mx (dual-cidr-length), ip4, ip6 */
	uint8_t addr[16];           /* ip4 (first 4 octets) and ip6 networks, host bits kept */
	const char *domain;         /* the domain-spec as written, or NULL (the current domain) */
	const char *text;           /* the whole term as written, for reasons */
};

struct spf_record {
	struct spf_term *terms;     /* the mechanisms, in order */
	size_t nterms;
	const char *redirect;       /* redirect= domain-spec, or NULL (§6.1) */
	const char *exp;            /* exp= domain-spec, or NULL (§6.2) */
	char *buf;                  /* the strings above point into it */
};

/* Whether text[0..len) is an SPF version 1 record: "v=spf1" (case-insensitive,
 * as all ABNF literals) followed by a space or the end (RFC 7208 §4.5). */
bool spf_record_is_v1(const char *text, size_t len);

/*
 * Parses an SPF record (one that spf_record_is_v1() accepts). text may hold
 * any octet, NULs included. Returns 0 and a record, or -1 with *error_r: a
 * sentence naming the offending term (printable, at most ~200 octets, valid
 * until the next error on this thread).
 */
int spf_record_parse(const char *text, size_t len, struct spf_record **rec_r,
    const char **error_r);
void spf_record_free(struct spf_record **rec);

#endif
