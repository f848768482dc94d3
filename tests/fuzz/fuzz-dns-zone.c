/*
 * libFuzzer target: dns-zone. The input up to the first NUL is a master file
 * (dns_zone_parse); what follows it is a list of query names, one per line,
 * each looked up as A, TXT, MX, CNAME and SPF, directly and through a view.
 * Without a NUL, a few fixed names are asked, plus the first token of every
 * line of the zone (the owner names the fuzzer wrote).
 *
 * Invariants: a failed parse has an error sentence naming a line; every
 * answer has one reference, a valid status, records only of the type asked,
 * TXT data NUL-terminated at len, and NXDOMAIN/TEMPFAIL/FORMERR have no
 * records; a view gives the same status as the zone and never NULL.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint16_t types[] = { DNS_T_A, DNS_T_TXT, DNS_T_MX, DNS_T_CNAME, DNS_T_SPF };

static void check(const struct dns_zone *z, struct dns_view *v, const char *name)
{
	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		struct dns_answer *a = dns_zone_lookup(z, name, types[t]);
		const struct dns_answer *va;

		if (a == NULL)
			continue;   /* out of memory */
		if (a->refs != 1 || a->status > DNS_FORMERR || (a->status != DNS_OK && a->n != 0))
			__builtin_trap();
		if ((a->status == DNS_TEMPFAIL || a->status == DNS_FORMERR) && a->why == NULL)
			__builtin_trap();
		for (size_t i = 0; i < a->n; i++) {
			const struct dns_rr *rr = &a->rr[i];

			if (rr->type != types[t])
				__builtin_trap();
			if ((rr->type == DNS_T_TXT || rr->type == DNS_T_SPF) &&
			    (rr->u.txt.data[rr->u.txt.len] != '\0' || rr->u.txt.nstrings == 0 ||
			     rr->u.txt.len > 65535))
				__builtin_trap();
			if (rr->type == DNS_T_MX && strlen(rr->u.mx.host) > 1021)
				__builtin_trap();
		}
		va = dns_view_lookup(v, name, types[t]);
		if (va == NULL || (va->status != a->status && va->status != DNS_TEMPFAIL))
			__builtin_trap();
		dns_answer_unref(&a);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data, *error = NULL;
	const char *nul = memchr(data, '\0', size);
	size_t zlen = nul != NULL ? (size_t)(nul - text) : size;
	struct dns_zone *z = dns_zone_parse(text, zlen, &error);
	struct dns_view *v;
	char name[1100];

	if (z == NULL) {
		if (error == NULL || strncmp(error, "line ", 5) != 0)
			__builtin_trap();
		return 0;
	}
	if ((v = dns_view_new(z)) == NULL) {
		dns_zone_free(&z);
		return 0;
	}
	check(z, v, "example.com");
	check(z, v, "a.b.example.com");
	check(z, v, "");
	if (nul != NULL) {
		const char *p = nul + 1, *end = text + size;

		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t len = (size_t)((nl != NULL ? nl : end) - p);

			if (len < sizeof(name) && memchr(p, '\0', len) == NULL) {
				memcpy(name, p, len);
				name[len] = '\0';
				check(z, v, name);
			}
			p += len + 1;
		}
	} else {
		const char *p = text, *end = text + zlen;

		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t len = 0;

			while (p + len < end && p[len] != ' ' && p[len] != '\t' && p[len] != '\n' &&
			       p[len] != '\r')
				len++;
			if (len > 0 && len < sizeof(name)) {
				memcpy(name, p, len);
				name[len] = '\0';
				check(z, v, name);
			}
			if (nl == NULL)
				break;
			p = nl + 1;
		}
	}
	dns_view_free(&v);
	dns_zone_free(&z);
	return 0;
}
