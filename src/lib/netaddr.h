/*
 * netaddr — IP addresses, prefixes (CIDR) and lists of prefixes.
 *
 * One binary form for a peer's address, used by the guard, the audit log and
 * settings such as trusted networks. Only numeric text is accepted (inet_pton):
 * no host names, no zone ids ("fe80::1%eth0"), no shorthand IPv4 ("10.1",
 * "0x7f.1", leading zeros). An IPv4-mapped IPv6 address (::ffff:a.b.c.d,
 * RFC 4291 §2.5.5.2) is normalised to plain IPv4 everywhere — by the parser and
 * by netaddr_from_sockaddr() — so that a dual-stack listener's view of an IPv4
 * client and the same client on an IPv4 listener are one address, and a rule
 * for 192.0.2.0/24 also covers ::ffff:192.0.2.1.
 *
 * Everything is pure and allocation-free except cidr_list_parse().
 */
#ifndef RAMPART_NETADDR_H
#define RAMPART_NETADDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sockaddr;

/* Text buffer sizes, NUL included: an address, and an address with "/128". */
#define NETADDR_TEXT_MAX INET6_ADDRSTRLEN
#define CIDR_TEXT_MAX (NETADDR_TEXT_MAX + 4)
/* Most entries cidr_list_parse() accepts in one list. */
#define CIDR_LIST_MAX 1024

struct netaddr {
	uint8_t family;    /* 4 or 6 */
	uint8_t bytes[16]; /* network byte order; IPv4 in bytes[0..3], the rest zero */
};

/*
 * Parses numeric IPv4 or IPv6 text (the whole NUL-terminated string, nothing
 * around it). ::ffff:a.b.c.d becomes IPv4. Unused bytes of *a are zeroed, so two
 * parsed addresses can be compared with netaddr_equal() or memcmp(). Returns 0,
 * or -1 (and *a is zeroed) when text is not an address.
 */
int netaddr_parse(const char *text, struct netaddr *a);

/* The address of an AF_INET or AF_INET6 sockaddr, with the same normalisation.
 * Returns -1 for any other family. */
int netaddr_from_sockaddr(const struct sockaddr *sa, struct netaddr *a);

/* Canonical text (inet_ntop; RFC 5952 for IPv6) into buf. size should be
 * NETADDR_TEXT_MAX; if the text does not fit, buf gets "" (when size > 0). */
void netaddr_format(const struct netaddr *a, char *buf, size_t size);

/* Same family and same address. */
bool netaddr_equal(const struct netaddr *a, const struct netaddr *b);

/* Width of the family: 32 or 128. */
unsigned netaddr_bits(const struct netaddr *a);

/* *out = a with every bit after the first `bits` cleared; bits beyond the
 * family's width keep the whole address. out may be a. */
void netaddr_mask(const struct netaddr *a, unsigned bits, struct netaddr *out);

/* 127.0.0.0/8 (RFC 1122 §3.2.1.3) or ::1 (RFC 4291 §2.5.3). */
bool netaddr_is_loopback(const struct netaddr *a);

struct cidr {
	struct netaddr net; /* host bits always zero */
	uint8_t bits;       /* 0..32 or 0..128 */
};

/*
 * Parses "address/bits" or a bare address (a host: /32 or /128). bits is
 * decimal without sign, spaces or leading zeros, at most the family's width.
 * Host bits set after the prefix ("192.0.2.7/24") are accepted and cleared, the
 * way routers read such text: the result is 192.0.2.0/24. An IPv4-mapped prefix
 * of at least 96 bits ("::ffff:192.0.2.0/120") becomes the IPv4 prefix
 * (192.0.2.0/24); a shorter one stays IPv6. Returns 0, or -1 with *error_r set
 * (a static sentence) and *c zeroed.
 */
int cidr_parse(const char *text, struct cidr *c, const char **error_r);

/* "net/bits", always with the length, into buf (size CIDR_TEXT_MAX; "" if it
 * does not fit). cidr_parse() of the result gives *c back. */
void cidr_format(const struct cidr *c, char *buf, size_t size);

/* Whether a lies in c. An IPv4 address is never in an IPv6 prefix or the other
 * way round (mapped addresses were normalised to IPv4 on the way in). */
bool cidr_contains(const struct cidr *c, const struct netaddr *a);

struct cidr_list {
	struct cidr *v; /* NULL when n == 0 */
	size_t n;
};

/*
 * Parses prefixes separated by a comma, white space, or both
 * ("10.0.0.0/8, 192.168.0.0/16 ::1"). "" or only white space is the empty list.
 * An empty entry (",," or a leading or trailing comma) and more than
 * CIDR_LIST_MAX entries are errors. *l is overwritten (free the old list first).
 * Returns 0, or -1 with *error_r set (naming the entry; valid until the next
 * error on this thread) and *l empty, nothing allocated.
 */
int cidr_list_parse(const char *text, struct cidr_list *l, const char **error_r);

/* Whether any prefix in l contains a. */
bool cidr_list_contains(const struct cidr_list *l, const struct netaddr *a);

/* Frees the entries and leaves *l empty; safe on an empty list. */
void cidr_list_free(struct cidr_list *l);

#endif
