/*
 * dns-zone — the static zone's index and its answers (dns_zone_lookup).
 *
 * Owner names are kept in DNSSEC canonical order (RFC 4034 §6.1), in which the
 * names below a name directly follow it. That makes the two questions of a
 * lookup one binary search each: does the name own records, and, if not, is it
 * an empty non-terminal (an ancestor of a name that does), which exists and so
 * answers NODATA rather than NXDOMAIN (RFC 8020 §2). Wildcards ("*" owners) are
 * matched as RFC 4592 §3.3.1 says: from the closest encloser only.
 */
#include "dns/dns-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CNAME_HOPS_MAX 8    /* RFC 1034 §3.6.2 asks for a bound; 8 is ample */

struct dns_zone_node {
	struct dns_name name;   /* lower-cased */
	size_t first, count;    /* its records: recs[first .. first + count) */
	bool timeout;
};

static unsigned
label_offsets(const struct dns_name *n, uint8_t off[DNS_NAME_WIRE_MAX / 2 + 1])
{
	unsigned count = 0;

	for (size_t pos = 0; pos < n->len && n->wire[pos] != 0; pos += 1 + n->wire[pos])
		off[count++] = (uint8_t)pos;
	return count;
}

static unsigned char
lc(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* RFC 4034 §6.1: labels compared from the rightmost, as lower-case octet
 * strings; an ancestor sorts before its descendants. */
static int
canon_cmp(const struct dns_name *a, const struct dns_name *b)
{
	uint8_t oa[DNS_NAME_WIRE_MAX / 2 + 1], ob[DNS_NAME_WIRE_MAX / 2 + 1];
	unsigned na = label_offsets(a, oa), nb = label_offsets(b, ob);

	while (na > 0 && nb > 0) {
		const unsigned char *la = a->wire + oa[--na], *lb = b->wire + ob[--nb];
		size_t n = la[0] < lb[0] ? la[0] : lb[0];

		for (size_t i = 1; i <= n; i++)
			if (lc(la[i]) != lc(lb[i]))
				return lc(la[i]) < lc(lb[i]) ? -1 : 1;
		if (la[0] != lb[0])
			return la[0] < lb[0] ? -1 : 1;
	}
	return na == nb ? 0 : na < nb ? -1 : 1;
}

static int
rec_cmp(const void *x, const void *y)
{
	const struct dns_zone_rec *a = x, *b = y;
	int c = canon_cmp(&a->owner, &b->owner);

	return c != 0 ? c : a->seq < b->seq ? -1 : a->seq > b->seq ? 1 : 0;
}

int
dns_zone_index(struct dns_zone *z)
{
	size_t n = 0;

	if (z->nrecs == 0)
		return 0;
	qsort(z->recs, z->nrecs, sizeof(*z->recs), rec_cmp);
	if ((z->nodes = calloc(z->nrecs, sizeof(*z->nodes))) == NULL)
		return -1;
	for (size_t i = 0; i < z->nrecs; i++) {
		struct dns_zone_node *node;

		if (n == 0 || canon_cmp(&z->nodes[n - 1].name, &z->recs[i].owner) != 0) {
			node = &z->nodes[n++];
			node->name = z->recs[i].owner;
			dns_name_lower(&node->name);
			node->first = i;
		}
		node = &z->nodes[n - 1];
		node->count++;
		if (z->recs[i].timeout)
			node->timeout = true;
	}
	z->nnodes = n;
	return 0;
}

void
dns_zone_free(struct dns_zone **zp)
{
	struct dns_zone *z = *zp;

	if (z == NULL)
		return;
	*zp = NULL;
	for (size_t i = 0; i < z->nrecs; i++)
		if (!z->recs[i].timeout)
			dns_rr_clear(&z->recs[i].rr);
	free(z->recs);
	free(z->nodes);
	free(z);
}

/* The node named name, or NULL; *ins is where name is or would be. */
static const struct dns_zone_node *
zone_find(const struct dns_zone *z, const struct dns_name *name, size_t *ins)
{
	size_t lo = 0, hi = z->nnodes;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = canon_cmp(&z->nodes[mid].name, name);

		if (c == 0) {
			*ins = mid;
			return &z->nodes[mid];
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*ins = lo;
	return NULL;
}

static bool
is_below(const struct dns_name *child, const struct dns_name *parent)
{
	unsigned cl = dns_name_labels(child), pl = dns_name_labels(parent);
	struct dns_name s;

	if (cl <= pl)
		return false;
	dns_name_suffix(child, cl - pl, &s);
	return dns_name_cmp(&s, parent) == 0;
}

/* Whether name exists (owns records or is an empty non-terminal); its node or NULL. */
static bool
zone_exists(const struct dns_zone *z, const struct dns_name *name,
    const struct dns_zone_node **node_r)
{
	size_t ins;

	if ((*node_r = zone_find(z, name, &ins)) != NULL)
		return true;
	return ins < z->nnodes && is_below(&z->nodes[ins].name, name);
}

/* RFC 4592 §3.3.1: the wildcard at the closest encloser of a name that does
 * not exist, or NULL. */
static const struct dns_zone_node *
zone_wildcard(const struct dns_zone *z, const struct dns_name *name)
{
	unsigned labels = dns_name_labels(name);

	for (unsigned skip = 1; skip <= labels; skip++) {
		const struct dns_zone_node *node;
		struct dns_name encloser, star;
		size_t ins;

		dns_name_suffix(name, skip, &encloser);
		if (!zone_exists(z, &encloser, &node))
			continue;
		if (encloser.len + 2 > DNS_NAME_WIRE_MAX)
			return NULL;
		star.wire[0] = 1;
		star.wire[1] = '*';
		memcpy(star.wire + 2, encloser.wire, encloser.len);
		star.len = encloser.len + 2;
		return zone_find(z, &star, &ins);
	}
	return NULL;
}

static uint32_t
min_ttl(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

static struct dns_answer *
zone_records(const struct dns_zone *z, const struct dns_zone_node *node, uint16_t type,
    size_t count, uint32_t ttl)
{
	struct dns_answer *a = dns_answer_alloc(DNS_OK, ttl, count);
	size_t k = 0;

	if (a == NULL)
		return NULL;
	for (size_t i = node->first; i < node->first + node->count; i++) {
		const struct dns_zone_rec *r = &z->recs[i];

		if (r->timeout || r->rr.type != type)
			continue;
		if (dns_rr_copy(&a->rr[k], &r->rr) < 0) {
			a->n = k;
			dns_answer_unref(&a);
			return NULL;
		}
		a->ttl = min_ttl(a->ttl, r->rr.ttl);
		k++;
	}
	return a;
}

struct dns_answer *
dns_zone_lookup(const struct dns_zone *z, const char *name, uint16_t type)
{
	char text[DNS_NAME_TEXT_MAX];
	const char *error;
	struct dns_name q;
	uint32_t ttl = UINT32_MAX;

	if (dns_name_parse(name, strlen(name), NULL, &q, &error) < 0) {
		char why[128];

		snprintf(why, sizeof(why), "%s", error);
		return dns_answer_failf(DNS_FORMERR, 0, "%.200s: %s", name, why);
	}
	for (unsigned hop = 0;; hop++) {
		const struct dns_zone_node *node;
		const struct dns_zone_rec *cname = NULL;
		size_t count = 0;

		if (!zone_exists(z, &q, &node) && (node = zone_wildcard(z, &q)) == NULL)
			return dns_answer_new(DNS_NXDOMAIN, min_ttl(ttl, z->neg_ttl), NULL);
		if (node == NULL)   /* an empty non-terminal */
			return dns_answer_new(DNS_OK, min_ttl(ttl, z->neg_ttl), NULL);
		for (size_t i = node->first; i < node->first + node->count; i++) {
			const struct dns_zone_rec *r = &z->recs[i];

			if (r->timeout)
				continue;
			if (r->rr.type == type)
				count++;
			else if (r->rr.type == DNS_T_CNAME && cname == NULL)
				cname = r;
		}
		if (count > 0)
			return zone_records(z, node, type, count, ttl);
		dns_name_format(&q, text, sizeof(text));
		/* The RFC 7208 suite's TIMEOUT: types the name has no records of time out. */
		if (node->timeout)
			return dns_answer_failf(DNS_TEMPFAIL, 0, "%s: the query timed out", text);
		if (cname == NULL)
			return dns_answer_new(DNS_OK, min_ttl(ttl, z->neg_ttl), NULL);
		if (hop == CNAME_HOPS_MAX)
			return dns_answer_failf(DNS_TEMPFAIL, 0,
			    "%s: more than %u CNAMEs in a row (a loop?)", text, CNAME_HOPS_MAX);
		ttl = min_ttl(ttl, cname->rr.ttl);
		if (dns_name_parse(cname->rr.u.name, strlen(cname->rr.u.name), NULL, &q, &error) < 0)
			return dns_answer_failf(DNS_FORMERR, 0, "%s: a bad CNAME target", text);
	}
}
