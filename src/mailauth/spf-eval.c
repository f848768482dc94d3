/*
 * spf-eval — the mechanisms of RFC 7208 §5 against a dns_view, and the
 * client's validated names (§5.5) that "ptr" and the %{p} macro use.
 *
 * Each evaluation asks every question it needs before giving up on the ones
 * not answered yet (the pump resolves them in one round), and counts its DNS
 * term and void lookups only once it has every answer (see spf-private.h).
 * An invalid target name (an empty or too long label, RFC 1035 §2.3.4) is
 * never asked: it cannot exist, so it does not match and is not a void lookup.
 */
#include "mailauth/spf-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool
spf_name_valid(const char *name)
{
	return dns_name_text_valid(name);   /* SPF_DOMAIN_MAX is 253 too */
}

void
spf_frame_set_domain(struct spf_frame *f, const char *name)
{
	size_t n = strnlen(name, SPF_DOMAIN_MAX);

	memcpy(f->domain, name, n);
	f->domain[n] = '\0';
}

const struct dns_answer *
spf_lookup(struct dns_view *v, const char *name, uint16_t type)
{
	char escaped[2 * SPF_DOMAIN_MAX + 1];
	size_t n = 0;

	if (strchr(name, '\\') == NULL)
		return dns_view_lookup(v, name, type);
	for (const char *p = name; *p != '\0' && n + 2 < sizeof(escaped); p++) {
		if (*p == '\\')
			escaped[n++] = '\\';
		escaped[n++] = *p;
	}
	escaped[n] = '\0';
	return dns_view_lookup(v, escaped, type);
}

bool
spf_answer_failed(const struct dns_answer *a)
{
	return a->status == DNS_TEMPFAIL || a->status == DNS_BOGUS || a->status == DNS_FORMERR;
}

bool
spf_answer_void(const struct dns_answer *a)
{
	return a->status == DNS_NXDOMAIN || (a->status == DNS_OK && a->n == 0);
}

bool
spf_count_void(struct spf_check *c)
{
	if (++c->voids <= SPF_VOID_LIMIT)
		return true;
	spf_finish(c, SPF_RESULT_PERMERROR, "more than %d void DNS lookups (RFC 7208 section 4.6.4)",
	    SPF_VOID_LIMIT);
	return false;
}

static uint16_t
addr_type(const struct spf_check *c)
{
	return c->family == 4 ? DNS_T_A : DNS_T_AAAA;
}

/* Whether the client is in addr/bits (addr of the client's family). */
static bool
prefix_match(const struct spf_check *c, const uint8_t *addr, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;

	if (memcmp(c->ip, addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (c->ip[full] & mask) == (addr[full] & mask);
}

/* Whether an A or AAAA answer holds an address in the client's prefix. */
static bool
answer_match(const struct spf_check *c, const struct dns_answer *a, unsigned bits)
{
	for (size_t i = 0; i < a->n; i++) {
		const struct dns_rr *rr = &a->rr[i];
		if (rr->type == DNS_T_A && c->family == 4 &&
		    prefix_match(c, (const uint8_t *)&rr->u.a, bits))
			return true;
		if (rr->type == DNS_T_AAAA && c->family == 6 &&
		    prefix_match(c, rr->u.aaaa.s6_addr, bits))
			return true;
	}
	return false;
}

/* ---------------------------------------------------------------- ptr, %{p} */

/* The reverse name of the client: in-addr.arpa (RFC 1035 §3.5) or ip6.arpa
 * (RFC 3596 §2.5). */
static void
reverse_name(const struct spf_check *c, char *buf, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	if (c->family == 4) {
		snprintf(buf, size, "%u.%u.%u.%u.in-addr.arpa", c->ip[3], c->ip[2], c->ip[1],
		    c->ip[0]);
		return;
	}
	for (int i = 15; i >= 0 && n + 4 < size; i--) {
		buf[n++] = hex[c->ip[i] & 15];
		buf[n++] = '.';
		buf[n++] = hex[c->ip[i] >> 4];
		buf[n++] = '.';
	}
	snprintf(buf + n, size - n, "ip6.arpa");
}

/*
 * §5.5: the PTR names of the client (the first SPF_PTR_LIMIT, §4.6.4), each
 * kept when one of its addresses is the client. A DNS error on the PTR lookup
 * means no names; on a name's address lookup, that name is skipped (§5.5).
 * Returns 1 when c->ptr_names is filled, 0 when answers are missing.
 */
static int
ptr_validate(struct spf_check *c, struct dns_view *v)
{
	char rev[80];
	const struct dns_answer *ptr, *addr[SPF_PTR_LIMIT];
	const char *names[SPF_PTR_LIMIT];
	size_t n = 0;
	bool missing = false;

	if (c->ptr_done)
		return 1;
	reverse_name(c, rev, sizeof(rev));
	if ((ptr = dns_view_lookup(v, rev, DNS_T_PTR)) == NULL)
		return 0;
	if (spf_answer_void(ptr))
		c->ptr_voids++;
	for (size_t i = 0; ptr->status == DNS_OK && i < ptr->n && n < SPF_PTR_LIMIT; i++) {
		if (ptr->rr[i].type != DNS_T_PTR || !spf_name_valid(ptr->rr[i].u.name))
			continue;
		names[n] = ptr->rr[i].u.name;
		if ((addr[n] = dns_view_lookup(v, names[n], addr_type(c))) == NULL)
			missing = true;
		n++;
	}
	if (missing)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (spf_answer_void(addr[i]))
			c->ptr_voids++;
		if (addr[i]->status != DNS_OK || !answer_match(c, addr[i], c->family == 4 ? 32 : 128))
			continue;
		if ((c->ptr_names[c->nptr] = strdup(names[i])) != NULL)
			c->nptr++;
	}
	c->ptr_done = true;
	return 1;
}

/* name is domain or below it (case-insensitively). */
static bool
name_within(const char *name, const char *domain)
{
	size_t ln = strlen(name), ld = strlen(domain);

	if (ln == ld)
		return strcasecmp(name, domain) == 0;
	return ln > ld && name[ln - ld - 1] == '.' && strcasecmp(name + ln - ld, domain) == 0;
}

/* §7.3 "p": the validated name that is <domain>, else one below it, else any. */
static const char *
p_value(const struct spf_check *c, const char *domain)
{
	for (unsigned i = 0; i < c->nptr; i++)
		if (strcasecmp(c->ptr_names[i], domain) == 0)
			return c->ptr_names[i];
	for (unsigned i = 0; i < c->nptr; i++)
		if (name_within(c->ptr_names[i], domain))
			return c->ptr_names[i];
	return c->nptr > 0 ? c->ptr_names[0] : "unknown";
}

int
spf_expand_domain(struct spf_check *c, struct dns_view *v, const struct spf_frame *f,
    const char *spec, enum spf_macro_kind kind, char *out)
{
	const char *p = "unknown";

	if (spf_macro_uses_p(spec)) {
		if (ptr_validate(c, v) == 0)
			return 0;
		p = p_value(c, f->domain);
	}
	struct spf_macro_ctx ctx = {
		.s = c->identity, .l = c->local, .o = c->domain, .d = f->domain,
		.i = c->ip_dotted, .p = p, .h = c->helo, .c = c->ip_text, .r = c->receiver,
		.t = c->timestamp, .v = c->family == 4 ? "in-addr" : "ip6",
	};
	spf_macro_expand(spec, kind, &ctx, out);
	return 1;
}

/* ---------------------------------------------------------------- mechanisms */

static enum spf_eval
dns_failed(struct spf_check *c, const char *name, uint16_t type, const struct dns_answer *a)
{
	spf_finish(c, SPF_RESULT_TEMPERROR, "DNS error looking up %s %.200s: %s",
	    dns_type_name(type), name, a->why != NULL ? a->why : dns_status_name(a->status));
	return SPF_EV_FINISHED;
}

/* "a" (§5.3) and "exists" (§5.7: an A query whatever the client's family). */
static enum spf_eval
eval_a(struct spf_check *c, struct dns_view *v, const struct spf_term *t, const char *target)
{
	bool exists = t->mech == SPF_MECH_EXISTS;
	uint16_t type = exists ? DNS_T_A : addr_type(c);
	const struct dns_answer *a;

	if (!spf_name_valid(target))
		return SPF_EV_NOMATCH;
	if ((a = spf_lookup(v, target, type)) == NULL)
		return SPF_EV_PENDING;
	if (spf_answer_failed(a))
		return dns_failed(c, target, type, a);
	if (spf_answer_void(a))
		return spf_count_void(c) ? SPF_EV_NOMATCH : SPF_EV_FINISHED;
	if (exists)
		return SPF_EV_MATCH;
	return answer_match(c, a, c->family == 4 ? t->cidr4 : t->cidr6) ? SPF_EV_MATCH :
	    SPF_EV_NOMATCH;
}

/* "mx" (§5.4): the addresses of every MX name, at most SPF_MX_LIMIT names. */
static enum spf_eval
eval_mx(struct spf_check *c, struct dns_view *v, const struct spf_term *t, const char *target)
{
	const struct dns_answer *mx, *addr[SPF_MX_LIMIT];
	const char *hosts[SPF_MX_LIMIT];
	size_t n = 0;
	bool missing = false;

	if (!spf_name_valid(target))
		return SPF_EV_NOMATCH;
	if ((mx = spf_lookup(v, target, DNS_T_MX)) == NULL)
		return SPF_EV_PENDING;
	if (spf_answer_failed(mx))
		return dns_failed(c, target, DNS_T_MX, mx);
	if (spf_answer_void(mx))
		return spf_count_void(c) ? SPF_EV_NOMATCH : SPF_EV_FINISHED;
	for (size_t i = 0; i < mx->n; i++)
		if (mx->rr[i].type == DNS_T_MX && mx->rr[i].u.mx.host[0] != '\0')  /* null MX: RFC 7505 */
			n++;
	if (n > SPF_MX_LIMIT) {
		spf_finish(c, SPF_RESULT_PERMERROR, "more than %d MX names at %.200s "
		    "(RFC 7208 section 4.6.4)", SPF_MX_LIMIT, target);
		return SPF_EV_FINISHED;
	}
	n = 0;
	for (size_t i = 0; i < mx->n; i++) {
		const char *host = mx->rr[i].u.mx.host;
		if (mx->rr[i].type != DNS_T_MX || host[0] == '\0')
			continue;
		hosts[n] = host;
		addr[n] = spf_name_valid(host) ? dns_view_lookup(v, host, addr_type(c)) : NULL;
		if (addr[n] == NULL && spf_name_valid(host))
			missing = true;
		n++;
	}
	if (missing)
		return SPF_EV_PENDING;
	for (size_t i = 0; i < n; i++) {
		if (addr[i] == NULL)
			continue;
		if (spf_answer_failed(addr[i]))
			return dns_failed(c, hosts[i], addr_type(c), addr[i]);
		if (spf_answer_void(addr[i]) && !spf_count_void(c))
			return SPF_EV_FINISHED;
	}
	for (size_t i = 0; i < n; i++)
		if (addr[i] != NULL && answer_match(c, addr[i], c->family == 4 ? t->cidr4 : t->cidr6))
			return SPF_EV_MATCH;
	return SPF_EV_NOMATCH;
}

/* "ptr" (§5.5): a validated name that is the target or below it. */
static enum spf_eval
eval_ptr(struct spf_check *c, struct dns_view *v, const char *target)
{
	if (ptr_validate(c, v) == 0)
		return SPF_EV_PENDING;
	for (unsigned i = 0; i < c->ptr_voids; i++)
		if (!spf_count_void(c))
			return SPF_EV_FINISHED;
	for (unsigned i = 0; i < c->nptr; i++)
		if (name_within(c->ptr_names[i], target))
			return SPF_EV_MATCH;
	return SPF_EV_NOMATCH;
}

/* "include" (§5.2): check_host() on the target, in a new frame. */
static enum spf_eval
eval_include(struct spf_check *c, const char *target)
{
	if (c->depth == SPF_DEPTH_MAX) {   /* the terms limit comes first; belt and braces */
		spf_finish(c, SPF_RESULT_PERMERROR, "include: nested too deep");
		return SPF_EV_FINISHED;
	}
	struct spf_frame *f = &c->frames[c->depth++];
	spf_record_free(&f->rec);
	memset(f, 0, sizeof(*f));
	spf_frame_set_domain(f, target);
	c->term_counted = false;
	return SPF_EV_PUSHED;
}

enum spf_eval
spf_eval_term(struct spf_check *c, struct dns_view *v, struct spf_frame *f,
    const struct spf_term *t)
{
	char target[SPF_MACRO_OUT];

	switch (t->mech) {
	case SPF_MECH_ALL:
		return SPF_EV_MATCH;
	case SPF_MECH_IP4:
		return c->family == 4 && prefix_match(c, t->addr, t->cidr4) ? SPF_EV_MATCH :
		    SPF_EV_NOMATCH;
	case SPF_MECH_IP6:
		return c->family == 6 && prefix_match(c, t->addr, t->cidr6) ? SPF_EV_MATCH :
		    SPF_EV_NOMATCH;
	default:
		break;
	}
	/* §4.6.4: the terms that query DNS count, once, before they query. */
	if (!c->term_counted) {
		c->term_counted = true;
		if (++c->terms > SPF_TERMS_LIMIT) {
			spf_finish(c, SPF_RESULT_PERMERROR, "more than %d DNS-querying terms "
			    "(RFC 7208 section 4.6.4) at %.100s", SPF_TERMS_LIMIT, t->text);
			return SPF_EV_FINISHED;
		}
	}
	if (t->domain == NULL)
		snprintf(target, sizeof(target), "%s", f->domain);
	else if (spf_expand_domain(c, v, f, t->domain, SPF_MACRO_DOMAIN, target) == 0)
		return SPF_EV_PENDING;
	switch (t->mech) {
	case SPF_MECH_INCLUDE:
		return eval_include(c, target);
	case SPF_MECH_A:
	case SPF_MECH_EXISTS:
		return eval_a(c, v, t, target);
	case SPF_MECH_MX:
		return eval_mx(c, v, t, target);
	case SPF_MECH_PTR:
		return eval_ptr(c, v, target);
	default:
		return SPF_EV_NOMATCH;
	}
}
