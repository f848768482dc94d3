/*
 * route — where mail for a domain goes, resolved asynchronously through dns.h.
 *
 * Direct delivery (RFC 5321 §5.1): the domain's MX records, lowest preference
 * first and equal preferences in random order; no MX record (NODATA) means the
 * domain itself is the only host ("implicit MX"); NXDOMAIN is a permanent
 * failure (5.1.2); a null MX (RFC 7505 §3: one record, preference 0, host ".")
 * says the domain takes no mail (permanent, 5.1.10). Hosts named like us are
 * dropped with every host of the same or a higher preference (§5.1: otherwise
 * mail would loop back to us). Each host's IPv6 (when enabled) and IPv4
 * addresses are looked up; IPv6 first.
 *
 * DANE (RFC 7672 §2.2): when the MX answer (or for an implicit MX, the
 * address answer) was DNSSEC-secure, the TLSA records at _PORT._tcp.HOST are
 * looked up too and kept when that answer is secure and the host's address
 * answers are secure; a bogus TLSA answer makes the host unusable (RFC 7672
 * §2.1.1: it must not get mail until that is fixed).
 *
 * Smarthost: one host, its addresses (or the literal IP address), no MX and no
 * DANE lookup.
 */
#ifndef RAMPART_ROUTE_H
#define RAMPART_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "net/tls-client.h"

struct dns_resolver;
struct event_base;

#define ROUTE_MAX_HOSTS 10          /* MX hosts tried per delivery */
#define ROUTE_MAX_ADDRS 8           /* addresses per host */
#define ROUTE_MAX_TLSA 16

struct route_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[64];                  /* numeric, for logs */
};

enum route_tlsa { ROUTE_TLSA_NONE, ROUTE_TLSA_USABLE, ROUTE_TLSA_BOGUS };

struct route_host {
	char *name;                     /* MX host, the domain (implicit MX) or the smarthost */
	unsigned pref;
	struct route_addr addrs[ROUTE_MAX_ADDRS];
	size_t naddrs;
	bool secure;                    /* MX and address answers were DNSSEC-secure */
	enum route_tlsa tlsa_state;
	struct tls_tlsa tlsa[ROUTE_MAX_TLSA];  /* data owned by the route */
	size_t ntlsa;
	bool temp;                      /* an address lookup failed temporarily */
};

enum route_status { ROUTE_OK, ROUTE_TEMPFAIL, ROUTE_PERMFAIL };

struct route {
	enum route_status status;
	char why[256];                  /* for TEMPFAIL/PERMFAIL, a sentence */
	char enhanced[16];              /* RFC 3463 status for a failure ("5.1.2") */
	bool mx_secure;                 /* the MX answer was DNSSEC-secure */
	struct route_host hosts[ROUTE_MAX_HOSTS];   /* only hosts with addresses */
	size_t nhosts;
};

struct route_params {
	struct event_base *base;
	const char *smarthost;          /* NULL or "" = MX delivery */
	unsigned port;                  /* for the TLSA owner name and connections */
	bool ipv6;
	bool dane;
	const char *myname;             /* our host name (MX loop check) */
};

/* r is the callee's; free it with route_free(). */
typedef void route_fn(struct route *r, void *arg);
struct route_lookup;
/* Starts resolving domain (or the smarthost); cb runs later on the loop, exactly
 * once, unless cancelled. NULL when out of memory. */
struct route_lookup *route_resolve(struct dns_resolver *dns, const char *domain,
    const struct route_params *p, route_fn *cb, void *arg);
void route_cancel(struct route_lookup **l);
void route_free(struct route **r);

#endif
