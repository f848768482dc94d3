/*
 * dns — the one resolver interface of Rampart, and the answers it gives.
 *
 * Two resolvers implement it: libunbound, asynchronous on the process's event
 * loop and DNSSEC-aware (dns-unbound.c), and a static zone read from an RFC 1035
 * master file (dns-zone.c) for tests and offline checks. Both sit behind a cache
 * that keeps answers, negative ones included, for their TTL (dns-cache.c).
 *
 * Code that checks mail (src/mailauth/) does no I/O: it asks a dns_view, which
 * returns an answer it already has or NULL and notes the question. The pump
 * (dns_pump_*) runs such a check: step, resolve what it asked, step again, until
 * the check says it is done. A view can also be filled synchronously from a zone
 * (unit tests, conformance suites), in which case it never returns NULL.
 *
 * Names are given and returned in presentation form without the final dot,
 * letters as received (DNS compares names case-insensitively, RFC 4343).
 */
#ifndef RAMPART_DNS_H
#define RAMPART_DNS_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

/* RR types Rampart asks for (RFC 1035 §3.2.2, RFC 3596, RFC 6698). SPF (99) is
 * parsed in zone files so that the RFC 7208 suite loads, and never queried. */
enum dns_type {
	DNS_T_A = 1,
	DNS_T_NS = 2,
	DNS_T_CNAME = 5,
	DNS_T_PTR = 12,
	DNS_T_MX = 15,
	DNS_T_TXT = 16,
	DNS_T_AAAA = 28,
	DNS_T_TLSA = 52,
	DNS_T_SPF = 99,
};

enum dns_status {
	DNS_OK,        /* the name exists; n may be 0 (no data of this type: NODATA) */
	DNS_NXDOMAIN,  /* the name does not exist (RCODE 3) */
	DNS_TEMPFAIL,  /* timeout, SERVFAIL, REFUSED, network error: try again later */
	DNS_BOGUS,     /* DNSSEC validation failed (RFC 4035 §4.3): treat as TEMPFAIL */
	DNS_FORMERR,   /* the answer could not be parsed, or the name is not valid */
};

/* One resource record of the answer's type (CNAMEs are followed, not returned,
 * unless CNAME itself was asked for). */
struct dns_rr {
	uint16_t type;
	uint32_t ttl;
	union {
		struct in_addr a;
		struct in6_addr aaaa;
		struct { uint16_t pref; char *host; } mx;     /* host "" = null MX (RFC 7505) */
		char *name;                                   /* CNAME, PTR, NS */
		/* TXT (and SPF): the character-strings concatenated with nothing between
		 * them (RFC 7208 §3.3, RFC 6376 §3.6.2.2); data[len] is a NUL, but data
		 * may contain NULs itself. */
		struct { char *data; size_t len; unsigned nstrings; } txt;
		struct { uint8_t usage, selector, mtype; unsigned char *data; size_t len; } tlsa;
	} u;
};

/* An answer. Answers are shared (the cache, views and callers each hold a
 * reference) and immutable once made. */
struct dns_answer {
	unsigned refs;
	enum dns_status status;
	bool secure;          /* DNSSEC-validated (RFC 4035 §4.3 "secure"); false for zones */
	uint32_t ttl;         /* how long it may be cached: smallest RR TTL, or the
	                       * negative TTL (RFC 2308) for NXDOMAIN and NODATA */
	char *why;            /* for TEMPFAIL/BOGUS/FORMERR: a sentence for logs, else NULL */
	size_t n;
	struct dns_rr *rr;
};

/* Makes an answer with no records (for a status other than DNS_OK, or NODATA). */
struct dns_answer *dns_answer_new(enum dns_status status, uint32_t ttl, const char *why);
struct dns_answer *dns_answer_ref(struct dns_answer *a);
void dns_answer_unref(struct dns_answer **a);
const char *dns_type_name(uint16_t type);      /* "TXT"; "TYPE123" for others */
int dns_type_parse(const char *name);          /* "txt" -> 16; -1 if unknown */
const char *dns_status_name(enum dns_status s);/* "ok", "nxdomain", "tempfail"... */
/* Whether name (presentation form, no escapes, no final dot) is a usable host
 * name to ask about: 1 to 253 octets, every label 1 to 63 (RFC 1035 §2.3.4). */
bool dns_name_text_valid(const char *name);

/* ---- resolvers ---- */

struct dns_resolver;
struct dns_query;
struct dns_zone;

/* Called once per dns_resolve(), never from inside dns_resolve() itself (answers
 * from the cache or a zone are delivered on the next loop iteration). The
 * callback gets its own reference to the answer and must unref it. */
typedef void dns_answer_fn(struct dns_answer *a, void *arg);

/* libunbound on base. forward: "HOST@PORT" or "HOST" (port 53) to send every query
 * to that server (tests, a local validating resolver); NULL or "" = resolve
 * from the root, or as /etc/resolv.conf says when resolv_conf is true. trust_anchor:
 * a root key file (RFC 5011 format, e.g. /usr/share/dns/root.key) for DNSSEC
 * validation; NULL or "" = no validation (every answer insecure).
 * timeout_ms bounds every query (an unanswered one becomes TEMPFAIL).
 * Runs on base itself (ub_ctx_create_event: no thread, no helper process).
 * 127.0.0.1 forwarders work ("do-not-query-localhost: no"); with a forwarder,
 * names under "test." are asked too (libunbound would answer them NXDOMAIN
 * itself, RFC 6761 §6.2). RCODE SERVFAIL/REFUSED -> TEMPFAIL, DNSSEC bogus ->
 * DNS_BOGUS with why; TXT strings joined; CNAMEs followed (records of the type
 * asked only). */
struct dns_resolver *dns_resolver_unbound_new(struct event_base *base, const char *forward,
    bool resolv_conf, const char *trust_anchor, unsigned timeout_ms, const char **error_r);
/* A resolver that answers from zone (borrowed; must outlive the resolver),
 * through the same cache and the same deferred callbacks. */
struct dns_resolver *dns_resolver_zone_new(struct event_base *base, const struct dns_zone *zone);
/* Cancels every outstanding query (their callbacks are not called) and frees. */
void dns_resolver_free(struct dns_resolver **r);

/* Asks for name/type; returns NULL only when memory runs out (then cb is never
 * called). Answers come from the cache while their TTL lasts (at most a day;
 * NXDOMAIN and NODATA for their negative TTL; TEMPFAIL, BOGUS and FORMERR are
 * never kept). The cache holds DNS_CACHE_ENTRIES (dns-private.h) answers, the
 * least recently used going first. A name that is not valid is answered
 * DNS_FORMERR without asking. The query handle is gone once cb has run. */
struct dns_query *dns_resolve(struct dns_resolver *r, const char *name, uint16_t type,
    dns_answer_fn *cb, void *arg);
/* Before the callback has run: it never will. */
void dns_query_cancel(struct dns_query **q);

/* ---- static zones (RFC 1035 §5 master files) ---- */

/* Reads a master file: $ORIGIN, $TTL ($INCLUDE not supported); A, AAAA, MX, TXT
 * (several strings, \DDD and \X escapes), PTR, CNAME, NS, SPF, TLSA; "@", relative
 * names, omitted owner/TTL/class, parentheses across lines, ";" comments. The
 * pseudo-type TIMEOUT ("name TIMEOUT") makes every query for that name a
 * TEMPFAIL (RFC 7208 test suite's TIMEOUT), except for the types the name has
 * records of (the suite's "spftimeout": TXT answers, SPF times out). Also:
 * $ORIGIN, $TTL (also the negative TTL; 300 without it), TTL units (1h30m),
 * "*" owners matched as RFC 4592 wildcards, empty non-terminals answered NODATA
 * (RFC 8020). Strings over 255 octets, labels over 63, names over 255 are
 * errors. error_r names the line ("line 7: ..."; dns_zone_load adds the path). */
struct dns_zone *dns_zone_load(const char *path, const char **error_r);
struct dns_zone *dns_zone_parse(const char *text, size_t len, const char **error_r);
void dns_zone_free(struct dns_zone **z);
/* Answers name/type from the zone, following CNAMEs (RFC 1034 §3.6.2) up to 8 deep. */
struct dns_answer *dns_zone_lookup(const struct dns_zone *z, const char *name, uint16_t type);

/* ---- views: what a mail check asks, without I/O ---- */

struct dns_view;

/* An empty view; zone (may be NULL) answers misses at once. */
struct dns_view *dns_view_new(const struct dns_zone *zone);
void dns_view_free(struct dns_view **v);
/* The answer to name/type, or NULL when it is not known yet (the question is then
 * noted for the pump). The answer stays valid as long as the view. */
const struct dns_answer *dns_view_lookup(struct dns_view *v, const char *name, uint16_t type);
/* Lookups made through this view so far (cache hits included): the number of
 * distinct questions (name case-insensitively, type) asked, however often each
 * was asked again. A name DNS cannot carry (an empty label, a label over 63
 * octets, over 255 octets in all) is answered DNS_FORMERR at once, never NULL. */
unsigned dns_view_lookups(const struct dns_view *v);

/* At most this many distinct questions per view; further ones are answered
 * DNS_TEMPFAIL at once (a bound on what one message can make us ask). */
#define DNS_VIEW_QUESTIONS_MAX 1024
/* For the pump (and tests that fill a view by hand). The unanswered questions,
 * one per call: start with *iter = 0; false when there are no more. name_r
 * stays valid as long as the view. */
bool dns_view_question(const struct dns_view *v, size_t *iter, const char **name_r,
    uint16_t *type_r);
/* Answers name/type in the view (the view takes its own reference to a). A
 * question already answered keeps its first answer. -1 when name is not a
 * valid name or memory runs out. */
int dns_view_put(struct dns_view *v, const char *name, uint16_t type, struct dns_answer *a);

/* ---- the pump: runs a check that asks a view ---- */

/* A check step: returns 1 when done, 0 when it asked questions the view did not
 * have answers for (call again once they are answered). */
typedef int dns_step_fn(struct dns_view *v, void *arg);
typedef void dns_done_fn(void *arg);

struct dns_pump;

/* Calls step(v, arg) now; while it returns 0, resolves the questions it left
 * in v (all at once, through r) and calls it again when all are answered. Then
 * calls done(arg), never from inside dns_pump_start(). A question unanswered after
 * deadline_ms (0 = none) is answered TEMPFAIL, so done() is always reached.
 * step and done get the same arg. A step that returns 0 without leaving an
 * unanswered question cannot progress and counts as done. NULL when memory
 * runs out (nothing was called). */
struct dns_pump *dns_pump_start(struct dns_resolver *r, struct dns_view *v,
    unsigned deadline_ms, dns_step_fn *step, dns_done_fn *done, void *arg);
/* Stops a pump before done() (its queries are cancelled); after done(), frees.
 * Safe at any time, from inside step() or done() included. */
void dns_pump_free(struct dns_pump **p);

#endif
