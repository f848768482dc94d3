/* route — see route.h. */
#include "queue/route.h"
#include "dns/dns.h"
#include "lib/log.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <sodium.h>

/* One outstanding DNS question of a lookup. */
struct route_q {
	struct route_lookup *l;
	struct dns_query *q;
	size_t host;                 /* index into l->r->hosts, or SIZE_MAX for the MX */
	uint16_t type;
};

/* What the answers for one host said, besides its addresses. */
struct host_state {
	bool a_secure, aaaa_secure, aaaa_asked;
	bool tlsa_asked;
	bool any_temp, any_answer;
	char why[128];
};

struct route_lookup {
	struct dns_resolver *dns;
	char *domain, *smarthost, *myname;
	unsigned port;
	bool ipv6, dane;
	struct route *r;
	struct route_q qs[1 + 3 * ROUTE_MAX_HOSTS];
	size_t nqs, pending;
	struct host_state hs[ROUTE_MAX_HOSTS];
	struct event *defer;         /* delivers a result decided without DNS */
	route_fn *cb;
	void *arg;
};

static void route_fail(struct route *r, enum route_status st, const char *enhanced,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
route_fail(struct route *r, enum route_status st, const char *enhanced, const char *fmt, ...)
{
	va_list ap;
	r->status = st;
	snprintf(r->enhanced, sizeof(r->enhanced), "%s", enhanced);
	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
}

static void
lookup_finish(struct route_lookup *l)
{
	struct route *r = l->r;
	route_fn *cb = l->cb;
	void *arg = l->arg;
	l->r = NULL;
	route_cancel(&l);
	cb(r, arg);
}

static void on_answer(struct dns_answer *a, void *arg);

static int
ask(struct route_lookup *l, const char *name, uint16_t type, size_t host)
{
	struct route_q *rq = &l->qs[l->nqs];
	*rq = (struct route_q){ .l = l, .host = host, .type = type };
	l->nqs++;
	l->pending++;
	rq->q = dns_resolve(l->dns, name, type, on_answer, rq);
	if (rq->q == NULL) {
		l->pending--;
		return -1;
	}
	return 0;
}

static void
add_addr(struct route_host *h, uint16_t type, const struct dns_rr *rr, unsigned port)
{
	if (h->naddrs == ROUTE_MAX_ADDRS)
		return;
	struct route_addr *ra = &h->addrs[h->naddrs];
	memset(ra, 0, sizeof(*ra));
	if (type == DNS_T_A) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ra->ss;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		in->sin_addr = rr->u.a;
		ra->len = sizeof(*in);
		inet_ntop(AF_INET, &in->sin_addr, ra->text, sizeof(ra->text));
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ra->ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		in6->sin6_addr = rr->u.aaaa;
		ra->len = sizeof(*in6);
		inet_ntop(AF_INET6, &in6->sin6_addr, ra->text, sizeof(ra->text));
	}
	h->naddrs++;
}

/* IPv6 addresses first (they were added in answer order, either family first). */
static void
order_addrs(struct route_host *h)
{
	struct route_addr tmp[ROUTE_MAX_ADDRS];
	size_t n = 0;
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < h->naddrs; i++)
			if ((h->addrs[i].ss.ss_family == AF_INET6) == (pass == 0))
				tmp[n++] = h->addrs[i];
	memcpy(h->addrs, tmp, n * sizeof(tmp[0]));
}

static void
take_tlsa(struct route_host *h, const struct dns_answer *a)
{
	for (size_t i = 0; i < a->n && h->ntlsa < ROUTE_MAX_TLSA; i++) {
		const struct dns_rr *rr = &a->rr[i];
		if (rr->type != DNS_T_TLSA)
			continue;
		unsigned char *copy = malloc(rr->u.tlsa.len > 0 ? rr->u.tlsa.len : 1);
		if (copy == NULL)
			continue;
		memcpy(copy, rr->u.tlsa.data, rr->u.tlsa.len);
		h->tlsa[h->ntlsa++] = (struct tls_tlsa){ rr->u.tlsa.usage, rr->u.tlsa.selector,
		    rr->u.tlsa.mtype, copy, rr->u.tlsa.len };
	}
}

/* Every host's answers are in: keep the hosts that can be tried. */
static void
hosts_done(struct route_lookup *l)
{
	struct route *r = l->r;
	size_t kept = 0;
	bool temp = false;
	const char *last_why = "";
	for (size_t i = 0; i < r->nhosts; i++) {
		struct route_host *h = &r->hosts[i];
		struct host_state *hs = &l->hs[i];
		h->secure = r->mx_secure && hs->a_secure && (!hs->aaaa_asked || hs->aaaa_secure);
		if (!h->secure || h->tlsa_state != ROUTE_TLSA_USABLE) {
			/* RFC 7672 §2.2.2: TLSA records count only over secure addresses. */
			if (h->tlsa_state == ROUTE_TLSA_USABLE) {
				for (size_t k = 0; k < h->ntlsa; k++)
					free((void *)h->tlsa[k].data);
				h->ntlsa = 0;
				h->tlsa_state = ROUTE_TLSA_NONE;
			}
		}
		if (h->tlsa_state == ROUTE_TLSA_BOGUS) {
			log_warn("route: %s: TLSA answer for %s failed DNSSEC validation: host skipped",
			    l->domain, h->name);
			temp = true;
			last_why = "its TLSA records failed DNSSEC validation";
		}
		if (h->naddrs == 0 || h->tlsa_state == ROUTE_TLSA_BOGUS) {
			temp = temp || hs->any_temp;
			if (hs->why[0] != '\0')
				last_why = hs->why;
			free(h->name);
			for (size_t k = 0; k < h->ntlsa; k++)
				free((void *)h->tlsa[k].data);
			continue;
		}
		order_addrs(h);
		if (kept != i)
			r->hosts[kept] = *h;
		kept++;
	}
	r->nhosts = kept;
	if (kept == 0) {
		if (temp)
			route_fail(r, ROUTE_TEMPFAIL, "4.4.3", "no host for %s could be resolved: %s",
			    l->domain, last_why);
		else
			route_fail(r, ROUTE_PERMFAIL, "5.4.4", "no host for %s has an address (%s)",
			    l->domain, last_why);
	} else {
		r->status = ROUTE_OK;
	}
	lookup_finish(l);
}

static void
ask_host(struct route_lookup *l, size_t i, bool want_tlsa)
{
	struct route_host *h = &l->r->hosts[i];
	if (ask(l, h->name, DNS_T_A, i) < 0)
		l->hs[i].any_temp = true;
	if (l->ipv6) {
		l->hs[i].aaaa_asked = true;
		if (ask(l, h->name, DNS_T_AAAA, i) < 0)
			l->hs[i].any_temp = true;
	}
	if (want_tlsa && l->dane) {
		char owner[300];
		snprintf(owner, sizeof(owner), "_%u._tcp.%s", l->port, h->name);
		l->hs[i].tlsa_asked = true;
		ask(l, owner, DNS_T_TLSA, i);
	}
}

static int
pref_cmp(const void *a, const void *b)
{
	const struct route_host *x = a, *y = b;
	return x->pref < y->pref ? -1 : x->pref > y->pref;
}

static void
mx_done(struct route_lookup *l, struct dns_answer *a)
{
	struct route *r = l->r;
	switch (a->status) {
	case DNS_NXDOMAIN:
		/* RFC 5321 §5.1 and RFC 3463 5.1.2: the domain does not exist. */
		route_fail(r, ROUTE_PERMFAIL, "5.1.2", "%s does not exist (NXDOMAIN)",
		    l->domain);
		lookup_finish(l);
		return;
	case DNS_OK:
		break;
	default:
		route_fail(r, ROUTE_TEMPFAIL, "4.4.3", "MX lookup for %s failed: %s", l->domain,
		    a->why != NULL ? a->why : dns_status_name(a->status));
		lookup_finish(l);
		return;
	}
	r->mx_secure = a->secure;
	size_t n = 0;
	bool null_mx = false;
	for (size_t i = 0; i < a->n; i++) {
		const struct dns_rr *rr = &a->rr[i];
		if (rr->type != DNS_T_MX)
			continue;
		if (rr->u.mx.host[0] == '\0') {
			null_mx = true;
			continue;
		}
		if (n == ROUTE_MAX_HOSTS || !dns_name_text_valid(rr->u.mx.host))
			continue;
		r->hosts[n].name = strdup(rr->u.mx.host);
		r->hosts[n].pref = rr->u.mx.pref;
		if (r->hosts[n].name != NULL)
			n++;
	}
	if (null_mx && n == 0) {
		/* RFC 7505 §3: "a domain that advertises a null MX MUST NOT" get mail;
		 * §4.2: 556 5.1.10 (RFC 7504). */
		route_fail(r, ROUTE_PERMFAIL, "5.1.10", "%s accepts no mail (null MX, RFC 7505)",
		    l->domain);
		lookup_finish(l);
		return;
	}
	bool implicit = n == 0;
	if (implicit) {
		/* RFC 5321 §5.1: no MX records: the domain is its own mail host. */
		r->hosts[0].name = strdup(l->domain);
		r->hosts[0].pref = 0;
		if (r->hosts[0].name == NULL) {
			route_fail(r, ROUTE_TEMPFAIL, "4.3.0", "out of memory routing %s", l->domain);
			lookup_finish(l);
			return;
		}
		n = 1;
	}
	/* Lowest preference first; equal preferences in random order (§5.1). */
	for (size_t i = n; i > 1; i--) {
		size_t j = randombytes_uniform((uint32_t)i);
		struct route_host t = r->hosts[i - 1];
		r->hosts[i - 1] = r->hosts[j];
		r->hosts[j] = t;
	}
	qsort(r->hosts, n, sizeof(r->hosts[0]), pref_cmp);
	/* §5.1: if we are one of the hosts, only better ones may take the mail. */
	for (size_t i = 0; i < n && l->myname != NULL; i++) {
		if (strcasecmp(r->hosts[i].name, l->myname) != 0)
			continue;
		unsigned mine = r->hosts[i].pref;
		size_t k = i;
		while (k > 0 && r->hosts[k - 1].pref >= mine)
			k--;
		for (size_t j = k; j < n; j++)
			free(r->hosts[j].name);
		n = k;
		break;
	}
	r->nhosts = n;
	if (n == 0) {
		route_fail(r, ROUTE_PERMFAIL, "5.4.6", "mail for %s would loop back to %s", l->domain,
		    l->myname);
		lookup_finish(l);
		return;
	}
	for (size_t i = 0; i < n; i++)
		ask_host(l, i, r->mx_secure);
	if (l->pending == 0)
		hosts_done(l);
}

static void
host_answer(struct route_lookup *l, struct route_q *rq, struct dns_answer *a)
{
	struct route_host *h = &l->r->hosts[rq->host];
	struct host_state *hs = &l->hs[rq->host];
	if (rq->type == DNS_T_TLSA) {
		if (a->status == DNS_BOGUS)
			h->tlsa_state = ROUTE_TLSA_BOGUS;
		else if (a->status == DNS_OK && a->secure && a->n > 0) {
			take_tlsa(h, a);
			h->tlsa_state = h->ntlsa > 0 ? ROUTE_TLSA_USABLE : ROUTE_TLSA_NONE;
		}
		/* Insecure, NXDOMAIN, NODATA, TEMPFAIL: no DANE for this host. A
		 * TEMPFAIL on a secure path is, strictly, RFC 7672 §2.1.1's "cannot
		 * determine": treat as bogus so we never downgrade silently. */
		if (a->status == DNS_TEMPFAIL && l->r->mx_secure)
			h->tlsa_state = ROUTE_TLSA_BOGUS;
		return;
	}
	if (a->status == DNS_OK) {
		hs->any_answer = true;
		if (rq->type == DNS_T_A)
			hs->a_secure = a->secure;
		else
			hs->aaaa_secure = a->secure;
		for (size_t i = 0; i < a->n; i++)
			if (a->rr[i].type == rq->type)
				add_addr(h, rq->type, &a->rr[i], l->port);
		return;
	}
	if (a->status != DNS_NXDOMAIN)
		hs->any_temp = true;
	snprintf(hs->why, sizeof(hs->why), "%s %s: %s", h->name, dns_type_name(rq->type),
	    a->why != NULL ? a->why : dns_status_name(a->status));
}

static void
on_answer(struct dns_answer *a, void *arg)
{
	struct route_q *rq = arg;
	struct route_lookup *l = rq->l;
	rq->q = NULL;
	l->pending--;
	if (rq->host == SIZE_MAX)
		mx_done(l, a);
	else {
		host_answer(l, rq, a);
		if (l->pending == 0)
			hosts_done(l);
	}
	dns_answer_unref(&a);
}

static void
on_defer(evutil_socket_t fd, short what, void *arg)
{
	lookup_finish(arg);
}

/* A smarthost given as an IP address needs no DNS. */
static bool
literal_host(struct route_lookup *l)
{
	struct route_host *h = &l->r->hosts[0];
	struct dns_rr rr;
	const char *s = l->smarthost;
	char buf[64];
	size_t len = strlen(s);
	if (len >= 2 && s[0] == '[' && s[len - 1] == ']' && len - 2 < sizeof(buf)) {
		memcpy(buf, s + 1, len - 2);
		buf[len - 2] = '\0';
		s = buf;
	}
	if (inet_pton(AF_INET, s, &rr.u.a) == 1)
		add_addr(h, DNS_T_A, &rr, l->port);
	else if (inet_pton(AF_INET6, s, &rr.u.aaaa) == 1)
		add_addr(h, DNS_T_AAAA, &rr, l->port);
	else
		return false;
	return true;
}

struct route_lookup *
route_resolve(struct dns_resolver *dns, const char *domain, const struct route_params *p,
    route_fn *cb, void *arg)
{
	struct route_lookup *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return NULL;
	l->dns = dns;
	l->cb = cb;
	l->arg = arg;
	l->port = p->port;
	l->ipv6 = p->ipv6;
	l->dane = p->dane;
	l->domain = strdup(domain);
	l->smarthost = p->smarthost != NULL && p->smarthost[0] != '\0' ? strdup(p->smarthost) : NULL;
	l->myname = p->myname != NULL ? strdup(p->myname) : NULL;
	l->r = calloc(1, sizeof(*l->r));
	if (l->domain == NULL || l->r == NULL || (p->smarthost != NULL && p->smarthost[0] != '\0' &&
	    l->smarthost == NULL)) {
		route_cancel(&l);
		return NULL;
	}
	if (l->smarthost != NULL) {
		struct route *r = l->r;
		r->hosts[0].name = strdup(l->smarthost);
		r->nhosts = 1;
		if (r->hosts[0].name == NULL) {
			route_cancel(&l);
			return NULL;
		}
		if (literal_host(l)) {
			r->status = ROUTE_OK;
			l->defer = evtimer_new(p->base, on_defer, l);
			if (l->defer == NULL) {
				route_cancel(&l);
				return NULL;
			}
			struct timeval tv = { 0, 0 };
			evtimer_add(l->defer, &tv);
			return l;
		}
		ask_host(l, 0, false);
		return l;
	}
	if (ask(l, domain, DNS_T_MX, SIZE_MAX) < 0) {
		route_cancel(&l);
		return NULL;
	}
	return l;
}

void
route_cancel(struct route_lookup **lp)
{
	struct route_lookup *l = *lp;
	if (l == NULL)
		return;
	*lp = NULL;
	for (size_t i = 0; i < l->nqs; i++)
		if (l->qs[i].q != NULL)
			dns_query_cancel(&l->qs[i].q);
	if (l->defer != NULL)
		event_free(l->defer);
	route_free(&l->r);
	free(l->domain);
	free(l->smarthost);
	free(l->myname);
	free(l);
}

void
route_free(struct route **rp)
{
	struct route *r = *rp;
	if (r == NULL)
		return;
	*rp = NULL;
	for (size_t i = 0; i < r->nhosts; i++) {
		free(r->hosts[i].name);
		for (size_t k = 0; k < r->hosts[i].ntlsa; k++)
			free((void *)r->hosts[i].tlsa[k].data);
	}
	free(r);
}
