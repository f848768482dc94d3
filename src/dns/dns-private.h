/*
 * dns-private — what the files of src/dns share and nobody else needs: domain
 * names in wire form (RFC 1035 §3.1) with their presentation-form conversions,
 * answer construction, and record copying.
 *
 * A name is kept as its uncompressed wire form: length-prefixed labels ending in
 * the root's zero octet, at most 255 octets in all, labels at most 63 octets
 * (RFC 1035 §2.3.4). Comparison is ASCII case-insensitive (RFC 4343 §3).
 */
#ifndef RAMPART_DNS_PRIVATE_H
#define RAMPART_DNS_PRIVATE_H

#include "dns/dns.h"

#define DNS_NAME_WIRE_MAX 255
#define DNS_LABEL_MAX 63
/* Presentation form: every octet may need "\DDD", plus dots and the NUL. */
#define DNS_NAME_TEXT_MAX (DNS_NAME_WIRE_MAX * 4 + 1)
/* Answers are not kept longer than a day, whatever their TTL says. */
#define DNS_TTL_MAX 86400u

struct dns_name {
	size_t len;                              /* octets of wire used, >= 1 */
	unsigned char wire[DNS_NAME_WIRE_MAX];
};

/* Parses a presentation-form name (RFC 1035 §5.1: "\X" and "\DDD" escapes).
 * A name not ending in an unescaped "." is relative: origin is appended, or,
 * when origin is NULL, the name is taken as absolute. "" and "." are the root.
 * Returns -1 with a sentence for empty labels, long labels, long names and
 * bad escapes. */
int dns_name_parse(const char *text, size_t len, const struct dns_name *origin,
    struct dns_name *out, const char **error_r);
/* Writes the name without the final dot ("" for the root); octets other than
 * letters, digits, '-', '_' and '*' are escaped ("\.", "\\", "\DDD"). */
void dns_name_format(const struct dns_name *n, char *buf, size_t size);
/* Total order, ASCII case-insensitive; 0 when the names are equal. */
int dns_name_cmp(const struct dns_name *a, const struct dns_name *b);
/* Number of labels, not counting the root. */
unsigned dns_name_labels(const struct dns_name *n);
/* The name without its first `skip` labels (skip <= labels). */
void dns_name_suffix(const struct dns_name *n, unsigned skip, struct dns_name *out);
/* ASCII lower-case copy, as a cache or lookup key. */
void dns_name_lower(struct dns_name *n);

/* An answer with n zeroed records (the caller fills them). */
struct dns_answer *dns_answer_alloc(enum dns_status status, uint32_t ttl, size_t n);
/* A TEMPFAIL, BOGUS or FORMERR answer with a formatted sentence. */
struct dns_answer *dns_answer_failf(enum dns_status status, uint32_t ttl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Deep copy of src into dst (zeroed); -1 when memory runs out (dst cleared). */
int dns_rr_copy(struct dns_rr *dst, const struct dns_rr *src);
/* Frees what rr owns and zeroes it. */
void dns_rr_clear(struct dns_rr *rr);

#endif

/* ---- static zones: dns-zone-parse.c fills, dns-zone.c indexes and answers ---- */

#define DNS_ZONE_TEXT_MAX (64u << 20)   /* a zone file larger than this is refused */
#define DNS_ZONE_RECORDS_MAX 1000000u
#define DNS_ZONE_NEG_TTL 300u           /* negative TTL when the zone has no $TTL */

struct dns_zone_rec {
	struct dns_name owner;   /* as written (letters kept) */
	size_t seq;              /* order in the file: records keep it within a name */
	bool timeout;            /* the TIMEOUT pseudo-record; rr is then unused */
	struct dns_rr rr;
};

struct dns_zone_node;

struct dns_zone {
	struct dns_zone_rec *recs;
	size_t nrecs, cap;
	struct dns_zone_node *nodes;  /* one per owner name, in canonical order */
	size_t nnodes;
	uint32_t neg_ttl;
};

/* Sorts the records and builds the name index; -1 when memory runs out. */
int dns_zone_index(struct dns_zone *z);

/* ---- resolvers: dns-resolver.c runs the cache and the callbacks, a backend
 * (libunbound, a zone, a test's) answers what the cache does not have ---- */

/* The backend calls this exactly once per resolve() not cancelled, with its own
 * reference to the answer (which the resolver takes over). It may call it from
 * inside resolve() itself. */
typedef void dns_backend_done_fn(struct dns_answer *a, void *arg);

struct dns_backend {
	/* Starts name/type; returns a handle for cancel(), or NULL when the
	 * question could not even be asked (done is then never called). */
	void *(*resolve)(void *impl, const char *name, uint16_t type,
	    dns_backend_done_fn *done, void *arg);
	/* done() will not be called for handle. */
	void (*cancel)(void *impl, void *handle);
	void (*free)(void *impl);
};

/* A resolver over a backend; impl is freed by ops->free with the resolver
 * (also when this fails). */
struct dns_resolver *dns_resolver_new(struct event_base *base, const struct dns_backend *ops,
    void *impl);
struct event_base *dns_resolver_base(const struct dns_resolver *r);
/* Tests: the clock the cache reads (milliseconds, monotonic) and its size. */
typedef int64_t dns_clock_fn(void *arg);
void dns_resolver_set_clock(struct dns_resolver *r, dns_clock_fn *clock, void *arg);
/* Questions the backend was asked (cache misses), for tests and statistics. */
unsigned long dns_resolver_backend_calls(const struct dns_resolver *r);

/* ---- the answer cache (dns-cache.c) ---- */

#define DNS_CACHE_ENTRIES 10000u

struct dns_cache;

struct dns_cache *dns_cache_new(size_t max_entries);
void dns_cache_free(struct dns_cache **c);
/* The cached answer (a new reference) while its TTL lasts at now_ms, else NULL. */
struct dns_answer *dns_cache_get(struct dns_cache *c, const struct dns_name *key, uint16_t type,
    int64_t now_ms);
/* Keeps a (its own reference) for its TTL, capped at a day; answers that say
 * nothing durable (TEMPFAIL, BOGUS, FORMERR, TTL 0) are not kept. When full,
 * the least recently used entry goes. */
void dns_cache_put(struct dns_cache *c, const struct dns_name *key, uint16_t type,
    struct dns_answer *a, int64_t now_ms);
size_t dns_cache_count(const struct dns_cache *c);

/* ---- answer packets (dns-packet.c) ---- */

#define DNS_PACKET_MAX 65535u
#define DNS_CNAME_CHAIN_MAX 16   /* CNAMEs followed within one answer packet */

/* Turns a DNS response (RFC 1035 §4.1) to the question qname/qtype into an
 * answer: RCODE NXDOMAIN -> DNS_NXDOMAIN, SERVFAIL/REFUSED/others ->
 * DNS_TEMPFAIL, NOERROR -> DNS_OK with the records of qtype reached from qname
 * through the CNAMEs in the answer section (n = 0: NODATA). The TTL is the
 * smallest on that path, or for a negative answer the SOA's (RFC 2308 §5;
 * 0 without an SOA). A packet that cannot be parsed gives DNS_FORMERR. NULL only
 * when memory runs out. */
struct dns_answer *dns_packet_parse(const unsigned char *pkt, size_t len,
    const struct dns_name *qname, uint16_t qtype);
