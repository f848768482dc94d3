/*
 * libFuzzer target: lib/netaddr's parsers (netaddr_parse, cidr_parse,
 * cidr_list_parse) on arbitrary text, with invariants: parsed addresses are
 * normalised (no IPv4-mapped IPv6, unused bytes zero), prefixes have no host
 * bits, and parse(format(x)) == x for every result; cidr_contains agrees with
 * netaddr_mask.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/netaddr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static void
check_addr(const struct netaddr *a)
{
	static const uint8_t zero[16];
	char buf[NETADDR_TEXT_MAX];
	struct netaddr b;

	if (a->family != 4 && a->family != 6)
		__builtin_trap();
	if (a->family == 4 && memcmp(a->bytes + 4, zero, 12) != 0)
		__builtin_trap();
	if (a->family == 6 && memcmp(a->bytes, mapped, 12) == 0)
		__builtin_trap();
	netaddr_format(a, buf, sizeof(buf));
	if (netaddr_parse(buf, &b) != 0 || memcmp(a, &b, sizeof(b)) != 0)
		__builtin_trap();
}

static void
check_cidr(const struct cidr *c)
{
	char buf[CIDR_TEXT_MAX];
	struct cidr d;
	struct netaddr m;
	const char *error;

	check_addr(&c->net);
	if (c->bits > netaddr_bits(&c->net))
		__builtin_trap();
	netaddr_mask(&c->net, c->bits, &m);
	if (memcmp(&m, &c->net, sizeof(m)) != 0)
		__builtin_trap();
	if (!cidr_contains(c, &c->net))
		__builtin_trap();
	cidr_format(c, buf, sizeof(buf));
	if (cidr_parse(buf, &d, &error) != 0 || memcmp(c, &d, sizeof(d)) != 0)
		__builtin_trap();
}

/* cidr_contains(c, a) must equal "same family and a masked to c's length is c". */
static void
check_contains(const struct cidr *c, const struct netaddr *a)
{
	struct netaddr m;
	bool want = false;

	if (a->family == c->net.family) {
		netaddr_mask(a, c->bits, &m);
		want = memcmp(&m, &c->net, sizeof(m)) == 0;
	}
	if (cidr_contains(c, a) != want)
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct netaddr a, probe;
	struct cidr c;
	struct cidr_list l;
	const char *error;
	bool have_probe = false;

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	/* A probe address taken from the raw bytes, for containment checks. */
	if (size >= 17) {
		memset(&probe, 0, sizeof(probe));
		probe.family = (data[0] & 1) ? 6 : 4;
		memcpy(probe.bytes, data + 1, probe.family == 4 ? 4 : 16);
		if (probe.family == 6 && memcmp(probe.bytes, mapped, 12) == 0)
			probe.bytes[0] = 1;
		have_probe = true;
	}

	if (netaddr_parse(text, &a) == 0) {
		check_addr(&a);
		if (netaddr_is_loopback(&a) != (a.family == 4 ? a.bytes[0] == 127 :
					       memcmp(a.bytes, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16) == 0))
			__builtin_trap();
	}
	if (cidr_parse(text, &c, &error) == 0) {
		check_cidr(&c);
		if (have_probe)
			check_contains(&c, &probe);
	} else if (error == NULL) {
		__builtin_trap();
	}
	if (cidr_list_parse(text, &l, &error) == 0) {
		if (l.n > CIDR_LIST_MAX || (l.n == 0) != (l.v == NULL))
			__builtin_trap();
		for (size_t i = 0; i < l.n; i++) {
			check_cidr(&l.v[i]);
			if (!cidr_list_contains(&l, &l.v[i].net))
				__builtin_trap();
			if (have_probe)
				check_contains(&l.v[i], &probe);
		}
		cidr_list_free(&l);
	} else if (error == NULL || l.v != NULL || l.n != 0) {
		__builtin_trap();
	}
	free(text);
	return 0;
}
