/*
 * libFuzzer target: dns-packet. The first octet picks the type asked (A,
 * AAAA, MX, TXT, PTR, CNAME, NS, TLSA); the rest is a DNS response packet,
 * read as the answer to the name in its own question section (when that can be
 * read) and to a fixed name.
 *
 * Invariants: an answer or NULL (memory), one reference, a valid status, no
 * records unless DNS_OK, only records of the type asked, TXT and TLSA data
 * within the packet's size and NUL-terminated, names NUL-terminated.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns-private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint16_t types[] = { DNS_T_A, DNS_T_AAAA, DNS_T_MX, DNS_T_TXT, DNS_T_PTR,
				  DNS_T_CNAME, DNS_T_NS, DNS_T_TLSA };

static void check(const unsigned char *pkt, size_t len, const struct dns_name *q, uint16_t type)
{
	struct dns_answer *a = dns_packet_parse(pkt, len, q, type);

	if (a == NULL)
		return;
	if (a->refs != 1 || a->status > DNS_FORMERR || (a->status != DNS_OK && a->n != 0))
		__builtin_trap();
	for (size_t i = 0; i < a->n; i++) {
		const struct dns_rr *rr = &a->rr[i];

		if (rr->type != type)
			__builtin_trap();
		switch (type) {
		case DNS_T_TXT:
			if (rr->u.txt.len >= len || rr->u.txt.data[rr->u.txt.len] != '\0')
				__builtin_trap();
			break;
		case DNS_T_TLSA:
			if (rr->u.tlsa.len >= len)
				__builtin_trap();
			break;
		case DNS_T_MX:
			if (strlen(rr->u.mx.host) >= DNS_NAME_TEXT_MAX)
				__builtin_trap();
			break;
		case DNS_T_PTR:
		case DNS_T_CNAME:
		case DNS_T_NS:
			if (strlen(rr->u.name) >= DNS_NAME_TEXT_MAX)
				__builtin_trap();
			break;
		default:
			break;
		}
	}
	dns_answer_unref(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_name fixed, own;
	const char *error;
	uint16_t type;
	unsigned char *pkt;
	size_t len;

	if (size < 1)
		return 0;
	type = types[data[0] % (sizeof(types) / sizeof(types[0]))];
	len = size - 1;
	/* An exact-size copy: ASan sees any read past the packet. */
	if ((pkt = malloc(len > 0 ? len : 1)) == NULL)
		return 0;
	memcpy(pkt, data + 1, len);
	if (dns_name_parse("a.test", 6, NULL, &fixed, &error) != 0)
		__builtin_trap();
	check(pkt, len, &fixed, type);
	/* The question's own name, if it is a plain uncompressed one. */
	if (len > 12) {
		size_t pos = 12, o = 0;

		while (pos < len && pkt[pos] != 0 && pkt[pos] < 64 && o + 1 + pkt[pos] + 1 <=
		       DNS_NAME_WIRE_MAX && pos + 1 + pkt[pos] <= len) {
			memcpy(own.wire + o, pkt + pos, 1 + (size_t)pkt[pos]);
			o += 1 + (size_t)pkt[pos];
			pos += 1 + (size_t)pkt[pos];
		}
		own.wire[o++] = 0;
		own.len = o;
		check(pkt, len, &own, type);
	}
	free(pkt);
	return 0;
}
