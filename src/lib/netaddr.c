/* netaddr — see netaddr.h. */
#include "lib/netaddr.h"

#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lib/error.h"

/* RFC 4291 §2.5.5.2: the IPv4-mapped prefix ::ffff:0:0/96. */
static const uint8_t v4mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* Turns an IPv4-mapped IPv6 address into IPv4, in place. */
static void
netaddr_unmap(struct netaddr *a)
{
	if (a->family != 6 || memcmp(a->bytes, v4mapped_prefix, sizeof(v4mapped_prefix)) != 0)
		return;
	uint8_t v4[4];
	memcpy(v4, a->bytes + 12, 4);
	memset(a, 0, sizeof(*a));
	a->family = 4;
	memcpy(a->bytes, v4, 4);
}

/* Numeric text to an address without the mapped-address normalisation. */
static int
netaddr_parse_raw(const char *text, struct netaddr *a)
{
	memset(a, 0, sizeof(*a));
	/* glibc's inet_pton(AF_INET) takes dotted quads only: no "10.1", no hex or
	 * octal, no leading zeros (which other resolvers would read as octal). */
	if (inet_pton(AF_INET, text, a->bytes) == 1) {
		a->family = 4;
		return 0;
	}
	if (inet_pton(AF_INET6, text, a->bytes) == 1) {
		a->family = 6;
		return 0;
	}
	memset(a, 0, sizeof(*a));
	return -1;
}

int
netaddr_parse(const char *text, struct netaddr *a)
{
	if (netaddr_parse_raw(text, a) < 0)
		return -1;
	netaddr_unmap(a);
	return 0;
}

int
netaddr_from_sockaddr(const struct sockaddr *sa, struct netaddr *a)
{
	memset(a, 0, sizeof(*a));
	switch (sa->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;
		a->family = 4;
		memcpy(a->bytes, &sin->sin_addr, 4);
		return 0;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		a->family = 6;
		memcpy(a->bytes, &sin6->sin6_addr, 16);
		netaddr_unmap(a);
		return 0;
	}
	default:
		return -1;
	}
}

void
netaddr_format(const struct netaddr *a, char *buf, size_t size)
{
	if (size == 0)
		return;
	buf[0] = '\0';
	if (size > (size_t)INT32_MAX)
		size = INT32_MAX;
	int af = a->family == 4 ? AF_INET : a->family == 6 ? AF_INET6 : -1;
	if (af < 0 || inet_ntop(af, a->bytes, buf, (socklen_t)size) == NULL)
		buf[0] = '\0';
}

bool
netaddr_equal(const struct netaddr *a, const struct netaddr *b)
{
	if (a->family != b->family)
		return false;
	return memcmp(a->bytes, b->bytes, a->family == 4 ? 4 : 16) == 0;
}

unsigned
netaddr_bits(const struct netaddr *a)
{
	return a->family == 4 ? 32 : 128;
}

void
netaddr_mask(const struct netaddr *a, unsigned bits, struct netaddr *out)
{
	unsigned width = netaddr_bits(a);
	if (out != a)
		*out = *a;
	if (bits >= width)
		return;
	unsigned full = bits / 8, rem = bits % 8;
	if (rem != 0) {
		out->bytes[full] &= (uint8_t)(0xff << (8 - rem));
		full++;
	}
	memset(out->bytes + full, 0, sizeof(out->bytes) - full);
}

bool
netaddr_is_loopback(const struct netaddr *a)
{
	static const uint8_t v6_loopback[16] = { [15] = 1 };

	if (a->family == 4)
		return a->bytes[0] == 127;
	return a->family == 6 && memcmp(a->bytes, v6_loopback, 16) == 0;
}

/* A prefix length: 1–3 decimal digits, no sign, no leading zero, ≤ width. */
static int
cidr_parse_bits(const char *s, unsigned width, unsigned *bits_r, const char **error_r)
{
	size_t len = strlen(s);
	unsigned v = 0;

	if (len == 0) {
		*error_r = "Missing prefix length after '/'.";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9') {
			*error_r = "Prefix length is not a decimal number.";
			return -1;
		}
		if (i < 3)
			v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (len > 1 && s[0] == '0') {
		*error_r = "Prefix length has a leading zero.";
		return -1;
	}
	if (len > 3 || v > width) {
		*error_r = width == 32 ? "Prefix length out of range for IPv4 (0-32)." :
					 "Prefix length out of range for IPv6 (0-128).";
		return -1;
	}
	*bits_r = v;
	return 0;
}

int
cidr_parse(const char *text, struct cidr *c, const char **error_r)
{
	char addr[NETADDR_TEXT_MAX];
	const char *slash = strchr(text, '/');
	size_t alen = slash != NULL ? (size_t)(slash - text) : strlen(text);
	unsigned bits;

	memset(c, 0, sizeof(*c));
	if (alen == 0) {
		*error_r = "Missing IP address.";
		return -1;
	}
	if (alen >= sizeof(addr)) {
		*error_r = "Not an IP address (too long).";
		return -1;
	}
	memcpy(addr, text, alen);
	addr[alen] = '\0';
	if (netaddr_parse_raw(addr, &c->net) < 0) {
		*error_r = "Not a numeric IP address.";
		return -1;
	}
	bits = netaddr_bits(&c->net);
	if (slash != NULL && cidr_parse_bits(slash + 1, bits, &bits, error_r) < 0) {
		memset(c, 0, sizeof(*c));
		return -1;
	}
	netaddr_mask(&c->net, bits, &c->net);
	/* A prefix inside ::ffff:0:0/96 is an IPv4 prefix (see netaddr_unmap). */
	if (c->net.family == 6 && bits >= 96 &&
	    memcmp(c->net.bytes, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
		netaddr_unmap(&c->net);
		bits -= 96;
	}
	c->bits = (uint8_t)bits;
	return 0;
}

void
cidr_format(const struct cidr *c, char *buf, size_t size)
{
	char addr[NETADDR_TEXT_MAX];

	if (size == 0)
		return;
	buf[0] = '\0';
	netaddr_format(&c->net, addr, sizeof(addr));
	if (addr[0] == '\0')
		return;
	int n = snprintf(buf, size, "%s/%u", addr, (unsigned)c->bits);
	if (n < 0 || (size_t)n >= size)
		buf[0] = '\0';
}

bool
cidr_contains(const struct cidr *c, const struct netaddr *a)
{
	if (c->net.family != a->family)
		return false;
	unsigned bits = c->bits < netaddr_bits(a) ? c->bits : netaddr_bits(a);
	unsigned full = bits / 8, rem = bits % 8;
	if (memcmp(c->net.bytes, a->bytes, full) != 0)
		return false;
	if (rem == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rem));
	return (a->bytes[full] & mask) == (c->net.bytes[full] & mask);
}

static bool
cidr_list_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* The error for entry tok[0..len): printable ASCII shown, the rest as '?',
 * cut at 64 characters — it ends up in a log line. */
static int
cidr_list_fail(const char **error_r, const char *tok, size_t len, const char *why)
{
	char shown[65];
	size_t n = len < sizeof(shown) - 1 ? len : sizeof(shown) - 1;

	for (size_t i = 0; i < n; i++)
		shown[i] = tok[i] >= 0x20 && tok[i] < 0x7f ? tok[i] : '?';
	shown[n] = '\0';
	return error_fail(error_r, 0, "Address list entry '%s%s': %s", shown,
			  n < len ? "..." : "", why);
}

int
cidr_list_parse(const char *text, struct cidr_list *l, const char **error_r)
{
	struct cidr *v = NULL;
	size_t n = 0, cap = 0;
	const char *p = text;
	bool need_entry = false; /* after a comma, an entry must follow */

	l->v = NULL;
	l->n = 0;
	for (;;) {
		while (cidr_list_space(*p))
			p++;
		if (*p == '\0') {
			if (need_entry)
				goto empty_entry;
			break;
		}
		if (*p == ',')
			goto empty_entry;

		const char *tok = p;
		while (*p != '\0' && *p != ',' && !cidr_list_space(*p))
			p++;
		size_t len = (size_t)(p - tok);
		char buf[CIDR_TEXT_MAX];
		const char *why;

		if (n == CIDR_LIST_MAX) {
			free(v);
			return error_fail(error_r, 0, "More than %d entries in the address list.",
					  CIDR_LIST_MAX);
		}
		if (n == cap) {
			size_t ncap = cap == 0 ? 8 : cap * 2;
			if (ncap > CIDR_LIST_MAX)
				ncap = CIDR_LIST_MAX;
			struct cidr *nv = realloc(v, ncap * sizeof(*nv));
			if (nv == NULL) {
				free(v);
				return error_fail(error_r, 0, "Out of memory for the address list.");
			}
			v = nv;
			cap = ncap;
		}
		if (len >= sizeof(buf)) {
			free(v);
			return cidr_list_fail(error_r, tok, len, "Not an IP address (too long).");
		}
		memcpy(buf, tok, len);
		buf[len] = '\0';
		if (cidr_parse(buf, &v[n], &why) < 0) {
			free(v);
			return cidr_list_fail(error_r, tok, len, why);
		}
		n++;

		while (cidr_list_space(*p))
			p++;
		need_entry = *p == ',';
		if (need_entry)
			p++;
	}
	if (n == 0) {
		free(v);
		v = NULL;
	}
	l->v = v;
	l->n = n;
	return 0;

empty_entry:
	free(v);
	return error_fail(error_r, 0, "Empty entry in the address list.");
}

bool
cidr_list_contains(const struct cidr_list *l, const struct netaddr *a)
{
	for (size_t i = 0; i < l->n; i++) {
		if (cidr_contains(&l->v[i], a))
			return true;
	}
	return false;
}

void
cidr_list_free(struct cidr_list *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
}
