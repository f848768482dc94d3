/*
 * dns-packet — reads the answer packets libunbound hands over (RFC 1035 §4.1)
 * into dns_answer records.
 *
 * Everything in a packet is checked against the packet's length before it is
 * read; compression pointers (RFC 1035 §4.1.4) must point backwards, so a
 * name is read in bounded steps; names stay within 255 octets and records
 * within their RDLENGTH.
 */
#include "dns/dns-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RCODE_NOERROR 0
#define RCODE_NXDOMAIN 3
#define T_SOA 6
#define CLASS_IN 1

struct rr_ref {             /* an answer-section record, by position */
	struct dns_name owner;
	uint16_t type;
	uint32_t ttl;
	size_t rdata, rdlen;    /* offsets into the packet */
};

static uint16_t
get16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads the (possibly compressed) name at *pos; moves *pos past it. */
static int
read_name(const unsigned char *pkt, size_t len, size_t *pos, struct dns_name *out)
{
	size_t p = *pos, o = 0;
	bool jumped = false;

	for (;;) {
		unsigned char l;

		if (p >= len)
			return -1;
		l = pkt[p];
		if ((l & 0xc0) == 0xc0) {
			size_t target;

			if (p + 1 >= len)
				return -1;
			target = (size_t)(l & 0x3f) << 8 | pkt[p + 1];
			/* Only backwards: every jump makes progress toward 0. */
			if (target >= p)
				return -1;
			if (!jumped)
				*pos = p + 2;
			jumped = true;
			p = target;
			continue;
		}
		if ((l & 0xc0) != 0)      /* RFC 6891 §5: extended label types are gone */
			return -1;
		if (l == 0) {
			out->wire[o++] = 0;
			out->len = o;
			if (!jumped)
				*pos = p + 1;
			return 0;
		}
		if (p + 1 + l > len || o + 1 + l + 1 > DNS_NAME_WIRE_MAX)
			return -1;
		memcpy(out->wire + o, pkt + p, 1 + (size_t)l);
		o += 1 + (size_t)l;
		p += 1 + (size_t)l;
	}
}

static int
name_text(const unsigned char *pkt, size_t len, size_t pos, size_t end, char **out)
{
	struct dns_name n;
	char buf[DNS_NAME_TEXT_MAX];

	if (read_name(pkt, len, &pos, &n) < 0 || pos != end)
		return -1;
	dns_name_format(&n, buf, sizeof(buf));
	return (*out = strdup(buf)) == NULL ? -2 : 0;
}

/* Decodes one record's RDATA: 0, -1 malformed, -2 out of memory. */
static int
rdata_decode(const unsigned char *pkt, size_t len, const struct rr_ref *r, struct dns_rr *rr)
{
	const unsigned char *d = pkt + r->rdata;
	size_t end = r->rdata + r->rdlen;

	rr->type = r->type;
	rr->ttl = r->ttl;
	switch (r->type) {
	case DNS_T_A:
		if (r->rdlen != 4)
			return -1;
		memcpy(&rr->u.a, d, 4);
		return 0;
	case DNS_T_AAAA:
		if (r->rdlen != 16)
			return -1;
		memcpy(&rr->u.aaaa, d, 16);
		return 0;
	case DNS_T_MX:
		if (r->rdlen < 3)
			return -1;
		rr->u.mx.pref = get16(d);
		return name_text(pkt, len, r->rdata + 2, end, &rr->u.mx.host);
	case DNS_T_CNAME:
	case DNS_T_PTR:
	case DNS_T_NS:
		return name_text(pkt, len, r->rdata, end, &rr->u.name);
	case DNS_T_TXT:
	case DNS_T_SPF: {
		size_t pos = 0, n = 0;
		unsigned strings = 0;

		if (r->rdlen == 0)
			return -1;
		if ((rr->u.txt.data = malloc(r->rdlen)) == NULL)
			return -2;
		while (pos < r->rdlen) {
			size_t sl = d[pos++];

			if (pos + sl > r->rdlen)
				return -1;
			memcpy(rr->u.txt.data + n, d + pos, sl);
			n += sl;
			pos += sl;
			strings++;
		}
		rr->u.txt.data[n] = '\0';   /* n < rdlen: each string cost a length octet */
		rr->u.txt.len = n;
		rr->u.txt.nstrings = strings;
		return 0;
	}
	case DNS_T_TLSA:
		if (r->rdlen < 3)
			return -1;
		rr->u.tlsa.usage = d[0];
		rr->u.tlsa.selector = d[1];
		rr->u.tlsa.mtype = d[2];
		if ((rr->u.tlsa.data = malloc(r->rdlen - 3 + 1)) == NULL)
			return -2;
		memcpy(rr->u.tlsa.data, d + 3, r->rdlen - 3);
		rr->u.tlsa.data[r->rdlen - 3] = 0;
		rr->u.tlsa.len = r->rdlen - 3;
		return 0;
	default:
		return -1;
	}
}

/* Reads one resource record header at *pos (RFC 1035 §4.1.3). */
static int
read_rr(const unsigned char *pkt, size_t len, size_t *pos, struct rr_ref *r, uint16_t *class_r)
{
	if (read_name(pkt, len, pos, &r->owner) < 0 || *pos + 10 > len)
		return -1;
	r->type = get16(pkt + *pos);
	*class_r = get16(pkt + *pos + 2);
	/* RFC 2181 §8: a TTL with the top bit set is taken as 0. */
	r->ttl = get32(pkt + *pos + 4);
	if (r->ttl > 0x7fffffffu)
		r->ttl = 0;
	r->rdlen = get16(pkt + *pos + 8);
	r->rdata = *pos + 10;
	if (r->rdata + r->rdlen > len)
		return -1;
	*pos = r->rdata + r->rdlen;
	return 0;
}

static struct dns_answer *
formerr(const char *what)
{
	return dns_answer_failf(DNS_FORMERR, 0, "a malformed DNS answer: %s", what);
}

struct dns_answer *
dns_packet_parse(const unsigned char *pkt, size_t len, const struct dns_name *qname,
    uint16_t qtype)
{
	struct rr_ref *rrs = NULL;
	struct dns_answer *a = NULL;
	struct dns_name cur = *qname;
	uint16_t qd, an, ns, rcode, class;
	uint32_t ttl = UINT32_MAX, neg_ttl = 0;
	size_t pos = 12, nrr = 0, count = 0;

	if (len < 12 || len > DNS_PACKET_MAX)
		return formerr("shorter than a header");
	rcode = pkt[3] & 0x0f;
	qd = get16(pkt + 4);
	an = get16(pkt + 6);
	ns = get16(pkt + 8);
	if (rcode != RCODE_NOERROR && rcode != RCODE_NXDOMAIN)
		return dns_answer_failf(DNS_TEMPFAIL, 0, "the server answered RCODE %u%s", rcode,
		    rcode == 2 ? " (SERVFAIL)" : rcode == 5 ? " (REFUSED)" : "");
	for (unsigned i = 0; i < qd; i++) {
		struct dns_name skip;

		if (read_name(pkt, len, &pos, &skip) < 0 || pos + 4 > len)
			return formerr("a bad question");
		pos += 4;
	}
	/* Every record takes at least 11 octets, which bounds the array. */
	if (an > 0 && (rrs = calloc(an < (len - pos) / 11 + 1 ? an : (len - pos) / 11 + 1,
	    sizeof(*rrs))) == NULL)
		return NULL;
	for (unsigned i = 0; i < an; i++) {
		if (read_rr(pkt, len, &pos, &rrs[nrr], &class) < 0) {
			free(rrs);
			return formerr("a bad answer record");
		}
		if (class == CLASS_IN)
			nrr++;
	}
	for (unsigned i = 0; i < ns; i++) {
		struct rr_ref soa;

		if (read_rr(pkt, len, &pos, &soa, &class) < 0) {
			free(rrs);
			return formerr("a bad authority record");
		}
		/* RFC 2308 §5: the negative TTL is min(SOA TTL, SOA MINIMUM). */
		if (soa.type == T_SOA && soa.rdlen >= 22) {
			uint32_t minimum = get32(pkt + soa.rdata + soa.rdlen - 4);

			neg_ttl = soa.ttl < minimum ? soa.ttl : minimum;
		}
	}
	/* RFC 1034 §3.6.2 / §4.3.2: follow the CNAMEs from the name asked. */
	for (unsigned hop = 0;; hop++) {
		const struct rr_ref *cname = NULL;

		count = 0;
		for (size_t i = 0; i < nrr; i++) {
			if (dns_name_cmp(&rrs[i].owner, &cur) != 0)
				continue;
			if (rrs[i].type == qtype)
				count++;
			else if (rrs[i].type == DNS_T_CNAME && cname == NULL)
				cname = &rrs[i];
		}
		if (count > 0 || cname == NULL)
			break;
		if (hop == DNS_CNAME_CHAIN_MAX) {
			free(rrs);
			return dns_answer_failf(DNS_TEMPFAIL, 0, "more than %u CNAMEs in an answer",
			    DNS_CNAME_CHAIN_MAX);
		}
		pos = cname->rdata;
		if (read_name(pkt, len, &pos, &cur) < 0 || pos != cname->rdata + cname->rdlen) {
			free(rrs);
			return formerr("a bad CNAME");
		}
		ttl = ttl < cname->ttl ? ttl : cname->ttl;
	}
	if (count == 0) {
		free(rrs);
		/* NXDOMAIN at the end of a CNAME chain is still the answer (RFC 6604). */
		return dns_answer_new(rcode == RCODE_NXDOMAIN ? DNS_NXDOMAIN : DNS_OK,
		    ttl < neg_ttl ? ttl : neg_ttl, NULL);
	}
	if ((a = dns_answer_alloc(DNS_OK, ttl, count)) == NULL) {
		free(rrs);
		return NULL;
	}
	a->n = 0;
	for (size_t i = 0; i < nrr; i++) {
		int ret;

		if (rrs[i].type != qtype || dns_name_cmp(&rrs[i].owner, &cur) != 0)
			continue;
		ret = rdata_decode(pkt, len, &rrs[i], &a->rr[a->n]);
		a->n++;   /* counted even when it failed: unref frees what was made */
		if (ret < 0) {
			dns_answer_unref(&a);
			free(rrs);
			return ret == -2 ? NULL : formerr("a bad record");
		}
		a->ttl = a->ttl < rrs[i].ttl ? a->ttl : rrs[i].ttl;
	}
	free(rrs);
	return a;
}
