/*
 * org-domain — the Organizational Domain (RFC 7489 §3.2) from the Public
 * Suffix List, and identifier alignment (§3.1) built on it.
 *
 * §3.2: find the public suffix matching the most labels of the domain, and add
 * one more label. libpsl's registrable domain is exactly that (exception and
 * wildcard rules included, the implicit "*" rule making an unknown TLD a
 * suffix). The whole list is used, private section included, as the PSL is
 * published and as OpenDMARC and others use it.
 *
 * A domain that is itself a public suffix ("co.uk", "com") has no "x+1"th label,
 * so §3.2 step 4 cannot be applied; such a domain is taken as its own
 * Organizational Domain. This matches OpenDMARC and DMARCbis (whose tree walk
 * stops at the name itself), and it means a From: in a public suffix is checked
 * against its own record (§6.6.1: public-suffix domains are not exempt).
 *
 * The list is Debian's publicsuffix package: the DAFSA (fast to load) when it
 * is there, else the text list, else libpsl's own newest or built-in copy.
 */
#include "mailauth/dmarc.h"

#include <libpsl.h>
#include <stdlib.h>
#include <string.h>

#define PSL_DIR "/usr/share/publicsuffix/"
#define DOMAIN_MAX 253   /* RFC 1035 §2.3.4, in presentation form without the dot */

struct dmarc_psl {
	psl_ctx_t *ctx;          /* NULL when only the built-in list was had */
	const psl_ctx_t *use;
};

struct dmarc_psl *dmarc_psl_load(const char *path, const char **error_r)
{
	struct dmarc_psl *psl = calloc(1, sizeof(*psl));

	if (psl == NULL) {
		*error_r = "out of memory";
		return NULL;
	}
	if (path != NULL) {
		psl->ctx = psl_load_file(path);
		if (psl->ctx == NULL) {
			free(psl);
			*error_r = "the public suffix list could not be read";
			return NULL;
		}
	} else {
		psl->ctx = psl_load_file(PSL_DIR "public_suffix_list.dafsa");
		if (psl->ctx == NULL)
			psl->ctx = psl_load_file(PSL_DIR "public_suffix_list.dat");
		if (psl->ctx == NULL)
			psl->ctx = psl_latest(NULL);
	}
	psl->use = psl->ctx;
	if (psl->use == NULL)
		psl->use = psl_builtin();
	if (psl->use == NULL) {
		free(psl);
		*error_r = "no public suffix list is available";
		return NULL;
	}
	return psl;
}

void dmarc_psl_free(struct dmarc_psl **psl)
{
	if (*psl == NULL)
		return;
	psl_free((*psl)->ctx);
	free(*psl);
	*psl = NULL;
}

/* Lower-cases domain (ASCII letters; UTF-8 as is) into buf, dropping one final
 * dot (an absolute name, RFC 1034 §3.1). Refuses empty labels and names over
 * 253 octets. */
static bool normalise(const char *domain, char *buf, size_t size)
{
	size_t len = strlen(domain);

	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (len == 0 || len > DOMAIN_MAX || len >= size)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = domain[i];
		if (c == '.' && (i == 0 || domain[i - 1] == '.' || i + 1 == len))
			return false;
		buf[i] = (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
	}
	buf[len] = '\0';
	return true;
}

const char *dmarc_org_domain(const struct dmarc_psl *psl, const char *domain, char *buf,
    size_t size)
{
	char lower[DOMAIN_MAX + 1];

	if (domain == NULL || !normalise(domain, lower, sizeof(lower)))
		return NULL;
	const char *org = psl_registrable_domain(psl->use, lower);
	if (org == NULL)
		org = lower;   /* itself a public suffix: see the top of the file */
	size_t n = strlen(org);
	if (n >= size)
		return NULL;
	memcpy(buf, org, n + 1);
	return buf;
}

bool dmarc_aligned(const struct dmarc_psl *psl, const char *from_domain,
    const char *auth_domain, bool strict)
{
	char a[DOMAIN_MAX + 1], b[DOMAIN_MAX + 1];

	if (from_domain == NULL || auth_domain == NULL)
		return false;
	if (strict) {
		/* §3.1.1, §3.1.2: "an exact match" of the FQDNs, without case (RFC 4343). */
		return normalise(from_domain, a, sizeof(a)) &&
		    normalise(auth_domain, b, sizeof(b)) && strcmp(a, b) == 0;
	}
	/* Relaxed: the Organizational Domains are the same. */
	return dmarc_org_domain(psl, from_domain, a, sizeof(a)) != NULL &&
	    dmarc_org_domain(psl, auth_domain, b, sizeof(b)) != NULL && strcmp(a, b) == 0;
}
