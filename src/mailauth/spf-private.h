/*
 * spf-private — what spf.c (the check, its frames and results) and spf-eval.c
 * (the mechanisms) share.
 *
 * A check is resumable rather than re-run: a stack of frames, one per
 * check_host() in progress (the top one, then one per include: being
 * evaluated), each with its record and the index of its current term. A
 * step evaluates terms until one needs an answer the view does not have yet,
 * and leaves the state where it was. The term in progress is evaluated again
 * from its start on the next step: it asks the same questions (now answered,
 * so the view answers them at once) and counts its DNS term and its void
 * lookups only when it completes, so that every limit is counted once.
 */
#ifndef RAMPART_MAILAUTH_SPF_PRIVATE_H
#define RAMPART_MAILAUTH_SPF_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include "mailauth/spf.h"
#include "mailauth/spf-macro.h"
#include "mailauth/spf-record.h"

/* RFC 7208 §4.6.4 */
#define SPF_TERMS_LIMIT 10  /* include, a, mx, ptr, exists, redirect */
#define SPF_VOID_LIMIT 2    /* answers with no records, or NXDOMAIN */
#define SPF_MX_LIMIT 10     /* MX names looked up per "mx" */
#define SPF_PTR_LIMIT 10    /* PTR names validated */
/* The top check_host() and one per include:, which all count against the
 * terms limit; redirect= replaces its frame. */
#define SPF_DEPTH_MAX (SPF_TERMS_LIMIT + 1)
#define SPF_REASON_MAX 256

struct spf_frame {
	char domain[SPF_DOMAIN_MAX + 1];   /* <domain> of this check_host() */
	struct spf_record *rec;            /* NULL until its TXT answer is in */
	size_t term;                       /* the term being evaluated */
	bool redirected;                   /* reached by redirect=: "none" is permerror */
};

enum spf_state { SPF_ST_START, SPF_ST_RUN, SPF_ST_EXP, SPF_ST_DONE };

struct spf_check {
	/* The inputs (RFC 7208 §4.1) and the values of the macro letters (§7.3). */
	int family;                        /* 4 or 6 (IPv4-mapped addresses are 4) */
	uint8_t ip[16];
	char *identity;                    /* <sender>, "postmaster@..." when needed */
	char *local, *domain, *domain_lc, *helo, *receiver;
	char ip_dotted[72];                /* %{i}: dotted quad, or 32 dotted nibbles */
	char ip_text[48];                  /* %{c} */
	char timestamp[24];                /* %{t}, fixed when the check is made */

	enum spf_state state;
	struct spf_frame frames[SPF_DEPTH_MAX];
	unsigned depth;
	unsigned terms, voids;             /* counted against the §4.6.4 limits */
	bool term_counted;                 /* the term in progress was counted */

	/* The validated names of the client (§5.5), for "ptr" and %{p}. */
	bool ptr_done;
	unsigned nptr, ptr_voids;
	char *ptr_names[SPF_PTR_LIMIT];

	enum spf_result result;
	char reason[SPF_REASON_MAX];
	char *explanation;
};

enum spf_eval {
	SPF_EV_PENDING,   /* waiting for an answer */
	SPF_EV_MATCH,
	SPF_EV_NOMATCH,
	SPF_EV_PUSHED,    /* include: a frame was pushed */
	SPF_EV_FINISHED,  /* the check has its result (an error, spf_finish) */
};

/* Sets the final result (temperror, permerror, or any result at the top). */
void spf_finish(struct spf_check *c, enum spf_result r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Evaluates term t of frame f (spf-eval.c). */
enum spf_eval spf_eval_term(struct spf_check *c, struct dns_view *v, struct spf_frame *f,
    const struct spf_term *t);

/*
 * Expands a domain-spec for frame f into out[SPF_MACRO_OUT] (%{p} looks up the
 * client's names first). Returns 1 done, 0 pending, -1 when the check finished.
 */
int spf_expand_domain(struct spf_check *c, struct dns_view *v, const struct spf_frame *f,
    const char *spec, enum spf_macro_kind kind, char *out);

/* Counts one void lookup; false (and the check is finished) past the limit. */
bool spf_count_void(struct spf_check *c);

/* Copies name (at most SPF_DOMAIN_MAX octets: callers give valid names or
 * expansions already cut to that) into f->domain. */
void spf_frame_set_domain(struct spf_frame *f, const char *name);

/* Whether name can be asked of DNS: 1 to 253 octets, labels of 1 to 63. */
bool spf_name_valid(const char *name);

/* dns_view_lookup() of a name as SPF made it (raw octets: a "\\" in it is an
 * octet, not the escape of the presentation form dns.h takes). */
const struct dns_answer *spf_lookup(struct dns_view *v, const char *name, uint16_t type);

/* The answer is a DNS error (§4.4, §2.6.6: temperror). */
bool spf_answer_failed(const struct dns_answer *a);
/* No records of the type, or NXDOMAIN: a void lookup (§4.6.4). */
bool spf_answer_void(const struct dns_answer *a);

#endif
