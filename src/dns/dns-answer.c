/*
 * dns-answer — the shared, immutable answers of dns.h: making them, counting
 * their references, copying and freeing their records, and the names of types
 * and statuses used in logs and the CLI.
 */
#include "dns/dns-private.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct dns_answer *
dns_answer_alloc(enum dns_status status, uint32_t ttl, size_t n)
{
	struct dns_answer *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return NULL;
	if (n > 0 && (a->rr = calloc(n, sizeof(*a->rr))) == NULL) {
		free(a);
		return NULL;
	}
	a->refs = 1;
	a->status = status;
	a->ttl = ttl;
	a->n = n;
	return a;
}

struct dns_answer *
dns_answer_new(enum dns_status status, uint32_t ttl, const char *why)
{
	struct dns_answer *a = dns_answer_alloc(status, ttl, 0);

	if (a != NULL && why != NULL && (a->why = strdup(why)) == NULL)
		dns_answer_unref(&a);
	return a;
}

struct dns_answer *
dns_answer_failf(enum dns_status status, uint32_t ttl, const char *fmt, ...)
{
	char buf[DNS_NAME_TEXT_MAX + 256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return dns_answer_new(status, ttl, buf);
}

struct dns_answer *
dns_answer_ref(struct dns_answer *a)
{
	assert(a != NULL && a->refs > 0);
	a->refs++;
	return a;
}

void
dns_answer_unref(struct dns_answer **ap)
{
	struct dns_answer *a = *ap;

	if (a == NULL)
		return;
	*ap = NULL;
	assert(a->refs > 0);
	if (--a->refs > 0)
		return;
	for (size_t i = 0; i < a->n; i++)
		dns_rr_clear(&a->rr[i]);
	free(a->rr);
	free(a->why);
	free(a);
}

void
dns_rr_clear(struct dns_rr *rr)
{
	switch (rr->type) {
	case DNS_T_MX:
		free(rr->u.mx.host);
		break;
	case DNS_T_CNAME:
	case DNS_T_PTR:
	case DNS_T_NS:
		free(rr->u.name);
		break;
	case DNS_T_TXT:
	case DNS_T_SPF:
		free(rr->u.txt.data);
		break;
	case DNS_T_TLSA:
		free(rr->u.tlsa.data);
		break;
	default:
		break;
	}
	memset(rr, 0, sizeof(*rr));
}

static void *
memdup0(const void *p, size_t len)
{
	char *d = malloc(len + 1);

	if (d == NULL)
		return NULL;
	if (len > 0)
		memcpy(d, p, len);
	d[len] = '\0';
	return d;
}

int
dns_rr_copy(struct dns_rr *dst, const struct dns_rr *src)
{
	*dst = *src;
	switch (src->type) {
	case DNS_T_MX:
		dst->u.mx.host = strdup(src->u.mx.host);
		if (dst->u.mx.host != NULL)
			return 0;
		break;
	case DNS_T_CNAME:
	case DNS_T_PTR:
	case DNS_T_NS:
		dst->u.name = strdup(src->u.name);
		if (dst->u.name != NULL)
			return 0;
		break;
	case DNS_T_TXT:
	case DNS_T_SPF:
		dst->u.txt.data = memdup0(src->u.txt.data, src->u.txt.len);
		if (dst->u.txt.data != NULL)
			return 0;
		break;
	case DNS_T_TLSA:
		dst->u.tlsa.data = memdup0(src->u.tlsa.data, src->u.tlsa.len);
		if (dst->u.tlsa.data != NULL)
			return 0;
		break;
	default:
		return 0;
	}
	memset(dst, 0, sizeof(*dst));
	return -1;
}

static const struct {
	uint16_t type;
	const char *name;
} dns_types[] = {
	{ DNS_T_A, "A" }, { DNS_T_NS, "NS" }, { DNS_T_CNAME, "CNAME" },
	{ DNS_T_PTR, "PTR" }, { DNS_T_MX, "MX" }, { DNS_T_TXT, "TXT" },
	{ DNS_T_AAAA, "AAAA" }, { DNS_T_TLSA, "TLSA" }, { DNS_T_SPF, "SPF" },
};

const char *
dns_type_name(uint16_t type)
{
	static _Thread_local char buf[16];

	for (size_t i = 0; i < sizeof(dns_types) / sizeof(dns_types[0]); i++)
		if (dns_types[i].type == type)
			return dns_types[i].name;
	/* RFC 3597 §5: the generic presentation of an unknown type. */
	snprintf(buf, sizeof(buf), "TYPE%u", (unsigned)type);
	return buf;
}

int
dns_type_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(dns_types) / sizeof(dns_types[0]); i++)
		if (strcasecmp(dns_types[i].name, name) == 0)
			return dns_types[i].type;
	return -1;
}

const char *
dns_status_name(enum dns_status s)
{
	switch (s) {
	case DNS_OK:
		return "ok";
	case DNS_NXDOMAIN:
		return "nxdomain";
	case DNS_TEMPFAIL:
		return "tempfail";
	case DNS_BOGUS:
		return "bogus";
	case DNS_FORMERR:
		return "formerr";
	}
	return "unknown";
}
