/*
 * libFuzzer target: DMARC parsing. The input is, at once, a DMARC TXT record
 * (dmarc_record_parse, dmarc_record_is_dmarc), a header section
 * (dmarc_from_domain), and, NUL-terminated, a domain name
 * (dmarc_org_domain and dmarc_aligned over the Public Suffix List).
 *
 * Invariants: a parsed record started with v=DMARC1, has pct 0..100 and
 * NUL-terminated rua/ruf; failures carry a sentence; a From: domain is
 * NUL-terminated, non-empty, without ASCII capitals, dots at either end or
 * doubled; an organisational domain is a suffix of the (lower-cased) domain
 * on a label boundary, and a domain is aligned with itself both ways.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailauth/dmarc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dmarc_psl *psl;

static void check_record(const char *txt, size_t size)
{
	struct dmarc_record r;
	const char *error = NULL;

	if (dmarc_record_parse(txt, size, &r, &error) != 0) {
		if (error == NULL)
			__builtin_trap();
		return;
	}
	if (!dmarc_record_is_dmarc(txt, size))
		__builtin_trap();
	if (r.pct < 0 || r.pct > 100)
		__builtin_trap();
	if (strnlen(r.rua, sizeof(r.rua)) >= sizeof(r.rua) ||
	    strnlen(r.ruf, sizeof(r.ruf)) >= sizeof(r.ruf))
		__builtin_trap();
	if (r.p > DMARC_POLICY_REJECT || r.sp > DMARC_POLICY_REJECT)
		__builtin_trap();
}

static void check_from(const char *headers, size_t size)
{
	char domain[256];
	const char *error = NULL;
	int r;

	memset(domain, 0xa5, sizeof(domain));
	r = dmarc_from_domain(headers, size, domain, sizeof(domain), &error);
	if (r < -1 || r > 1)
		__builtin_trap();
	if (r != 1) {
		if (error == NULL || domain[0] != '\0')
			__builtin_trap();
		return;
	}
	size_t len = strnlen(domain, sizeof(domain));
	if (len == 0 || len >= sizeof(domain) || domain[0] == '.' || domain[len - 1] == '.' ||
	    strstr(domain, "..") != NULL)
		__builtin_trap();
	for (size_t i = 0; i < len; i++) {
		if ((domain[i] >= 'A' && domain[i] <= 'Z') || (unsigned char)domain[i] < 0x21)
			__builtin_trap();
	}
}

static void check_org(const char *domain)
{
	char org[300], lower[300];
	size_t dlen = strlen(domain);

	if (dmarc_org_domain(psl, domain, org, sizeof(org)) == NULL)
		return;
	if (dlen > 0 && domain[dlen - 1] == '.')
		dlen--;
	if (dlen >= sizeof(lower))
		__builtin_trap();
	for (size_t i = 0; i < dlen; i++)
		lower[i] = (domain[i] >= 'A' && domain[i] <= 'Z') ? (char)(domain[i] + 32) : domain[i];
	lower[dlen] = '\0';
	size_t olen = strlen(org);
	if (olen == 0 || olen > dlen || strcmp(lower + dlen - olen, org) != 0 ||
	    (olen < dlen && lower[dlen - olen - 1] != '.'))
		__builtin_trap();
	if (!dmarc_aligned(psl, domain, domain, true) || !dmarc_aligned(psl, domain, domain, false) ||
	    !dmarc_aligned(psl, domain, org, false))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *error = NULL;
	char *copy;

	if (psl == NULL && (psl = dmarc_psl_load(NULL, &error)) == NULL)
		__builtin_trap();
	/* exact-size copies, so that reads past the end are caught */
	copy = malloc(size > 0 ? size : 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	check_record(copy, size);
	check_from(copy, size);
	free(copy);
	if (size < 1024 && (copy = malloc(size + 1)) != NULL) {
		memcpy(copy, data, size);
		copy[size] = '\0';
		check_org(copy);
		free(copy);
	}
	return 0;
}
