/*
 * mta-sts-cache — which MTA-STS policy applies to a domain now (RFC 8461 §3,
 * §5.1), remembered in memory and in files.
 *
 * A lookup always asks the TXT record first (through the resolver, whose own
 * cache keeps it for its TTL), then:
 *   - one valid record whose id is that of the cached policy, which is still
 *     fresh: the cached policy (§3.1: the id says when to fetch again);
 *   - one valid record and no such policy: fetch over HTTPS; a good policy
 *     replaces the cached one (§3.3);
 *   - no record, several, an invalid one, a DNS failure, or a fetch that fails:
 *     the cached policy if it is still fresh, else none. §3.1: the absence of a
 *     usable TXT record "is not by itself sufficient to remove a sender's
 *     previously cached policy"; §10.2: an attacker who blocks the fetch must
 *     not downgrade us.
 * Lookups of a domain made while one is under way join it (a "flight"): one
 * TXT query, at most one fetch. Every result is delivered from its own event.
 *
 * Memory holds MTA_STS_CACHE_ENTRIES domains, least recently used going
 * first; a domain not in memory is read from its file on its first lookup.
 * Policies are shared, reference-counted, and never changed once made, so an
 * entry can be replaced or evicted while a callback still reads the old one.
 */
#include "queue/mta-sts.h"
#include "queue/mta-sts-private.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "dns/dns.h"
#include "lib/clock.h"
#include "lib/fdio.h"
#include "lib/log.h"

#define CACHE_BUCKETS 16384u            /* power of two, > MTA_STS_CACHE_ENTRIES */
#define DOMAIN_MAX 244                  /* 253 - strlen("_mta-sts.") */
#define WHY_MAX 600

struct pol {
	unsigned refs;
	struct mta_sts_policy p;
};

struct entry {
	char domain[DOMAIN_MAX + 1];
	struct pol *pol;                    /* NULL: no policy known */
	struct entry *hnext;
	struct entry *lprev, *lnext;        /* LRU: head most recent */
};

struct flight;

struct mta_sts_lookup {
	struct mta_sts_cache *c;
	struct mta_sts_lookup **list;       /* the flight's waiters or the cache's ready list */
	struct mta_sts_lookup *prev, *next;
	mta_sts_fn *fn;
	void *arg;
	struct event *deliver;
	struct pol *result;
	char why[WHY_MAX];
};

struct flight {
	struct mta_sts_cache *c;
	struct flight *prev, *next;
	char domain[DOMAIN_MAX + 1];
	struct dns_query *txt;
	struct mta_sts_fetch *fetch;
	struct event *timer;
	int64_t deadline_ms;
	char id[33];
	struct mta_sts_lookup *waiters;
};

struct mta_sts_cache {
	struct event_base *base;
	struct dns_resolver *dns;
	SSL_CTX *tls_ctx;
	char *dir;
	unsigned port, timeout;
	struct entry *buckets[CACHE_BUCKETS];
	struct entry *lru_head, *lru_tail;
	size_t count;
	struct flight *flights;
	struct mta_sts_lookup *ready;
	struct pol **held;                  /* delivered, kept until the next call */
	size_t nheld, capheld;
	bool *alive;                        /* during a callback: cleared if it frees us */
	mta_sts_clock_fn *clock;
	void *clock_arg;
	unsigned long fetches;
};

/* ---------------------------------------------------------------- policies */

static void
pol_unref(struct pol **pp)
{
	struct pol *p = *pp;

	if (p == NULL)
		return;
	*pp = NULL;
	if (--p->refs == 0) {
		mta_sts_policy_clear(&p->p);
		free(p);
	}
}

static struct pol *
pol_ref(struct pol *p)
{
	if (p != NULL)
		p->refs++;
	return p;
}

/* Takes over what q holds (q is left empty). */
static struct pol *
pol_new(struct mta_sts_policy *q)
{
	struct pol *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		mta_sts_policy_clear(q);
		return NULL;
	}
	p->refs = 1;
	p->p = *q;
	memset(q, 0, sizeof(*q));
	return p;
}

/* Policies delivered before: the contract keeps them valid until now. */
static void
cache_release_held(struct mta_sts_cache *c)
{
	for (size_t i = 0; i < c->nheld; i++)
		pol_unref(&c->held[i]);
	c->nheld = 0;
}

static int64_t
cache_now(struct mta_sts_cache *c)
{
	return c->clock != NULL ? c->clock(c->clock_arg) : clock_wall_ms() / 1000;
}

/* ---------------------------------------------------------------- files */

static char *
cache_path(const struct mta_sts_cache *c, const char *prefix, const char *domain)
{
	size_t n = strlen(c->dir) + strlen(prefix) + strlen(domain) + 2;
	char *path = malloc(n);

	if (path != NULL)
		snprintf(path, n, "%s/%s%s", c->dir, prefix, domain);
	return path;
}

/* The file's policy, or NULL (none, or not readable: logged). */
static struct pol *
cache_file_load(struct mta_sts_cache *c, const char *domain)
{
	char *path = cache_path(c, "", domain), *buf = NULL;
	struct mta_sts_policy p;
	const char *error = NULL;
	size_t cap = MTA_STS_POLICY_MAX + 512, len = 0;
	ssize_t n;
	int fd;

	if (path == NULL)
		return NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		if (errno != ENOENT)
			log_warn("mta-sts: %s: %s", path, strerror(errno));
		free(path);
		return NULL;
	}
	if ((buf = malloc(cap)) == NULL)
		goto out;
	while (len < cap && (n = read(fd, buf + len, cap - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_warn("mta-sts: %s: %s", path, strerror(errno));
			goto out;
		}
		len += (size_t)n;
	}
	if (len == cap) {
		log_warn("mta-sts: %s: larger than a policy; ignored", path);
		goto out;
	}
	if (mta_sts_policy_unformat(buf, len, &p, &error) < 0) {
		log_warn("mta-sts: %s: not a policy cache file (%s); ignored", path, error);
		goto out;
	}
	close(fd);
	free(buf);
	free(path);
	return pol_new(&p);
out:
	close(fd);
	free(buf);
	free(path);
	return NULL;
}

/* Writes the policy to its file (a temporary file, then rename). */
static void
cache_file_store(struct mta_sts_cache *c, const char *domain, const struct mta_sts_policy *p)
{
	char *path = cache_path(c, "", domain), *tmp = cache_path(c, ".tmp.", domain);
	size_t len = 0;
	char *text = mta_sts_policy_format(p, &len);
	int fd = -1;

	if (path == NULL || tmp == NULL || text == NULL) {
		log_warn("mta-sts: %s: out of memory to store the policy", domain);
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || fd_write_all(fd, text, len) < 0) {
		log_warn("mta-sts: %s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		unlink(tmp);
		goto out;
	}
	if (close(fd) < 0) {
		log_warn("mta-sts: %s: %s", tmp, strerror(errno));
		unlink(tmp);
		goto out;
	}
	if (rename(tmp, path) < 0) {
		log_warn("mta-sts: %s: %s", path, strerror(errno));
		unlink(tmp);
	}
out:
	free(text);
	free(tmp);
	free(path);
}

/* ---------------------------------------------------------------- memory */

static uint32_t
domain_hash(const char *d)
{
	uint32_t h = 2166136261u;

	for (; *d != '\0'; d++)
		h = (h ^ (unsigned char)*d) * 16777619u;
	return h & (CACHE_BUCKETS - 1);
}

static void
lru_unlink(struct mta_sts_cache *c, struct entry *e)
{
	if (e->lprev != NULL)
		e->lprev->lnext = e->lnext;
	else
		c->lru_head = e->lnext;
	if (e->lnext != NULL)
		e->lnext->lprev = e->lprev;
	else
		c->lru_tail = e->lprev;
	e->lprev = e->lnext = NULL;
}

static void
lru_push(struct mta_sts_cache *c, struct entry *e)
{
	e->lnext = c->lru_head;
	if (c->lru_head != NULL)
		c->lru_head->lprev = e;
	c->lru_head = e;
	if (c->lru_tail == NULL)
		c->lru_tail = e;
}

static void
entry_remove(struct mta_sts_cache *c, struct entry *e)
{
	struct entry **pp = &c->buckets[domain_hash(e->domain)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(c, e);
	pol_unref(&e->pol);
	free(e);
	c->count--;
}

/* The domain's entry, read from its file when it is not in memory; NULL only
 * when memory runs out. */
static struct entry *
entry_get(struct mta_sts_cache *c, const char *domain)
{
	uint32_t h = domain_hash(domain);
	struct entry *e;

	for (e = c->buckets[h]; e != NULL; e = e->hnext) {
		if (strcmp(e->domain, domain) == 0) {
			lru_unlink(c, e);
			lru_push(c, e);
			return e;
		}
	}
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	if (c->count >= MTA_STS_CACHE_ENTRIES)
		entry_remove(c, c->lru_tail);
	memcpy(e->domain, domain, strlen(domain) + 1);
	e->pol = cache_file_load(c, domain);
	e->hnext = c->buckets[h];
	c->buckets[h] = e;
	lru_push(c, e);
	c->count++;
	return e;
}

/* ---------------------------------------------------------------- lookups */

static void
lookup_unlink(struct mta_sts_lookup *l)
{
	if (l->list == NULL)
		return;
	if (l->prev != NULL)
		l->prev->next = l->next;
	else
		*l->list = l->next;
	if (l->next != NULL)
		l->next->prev = l->prev;
	l->prev = l->next = NULL;
	l->list = NULL;
}

static void
lookup_link(struct mta_sts_lookup *l, struct mta_sts_lookup **list)
{
	l->list = list;
	l->prev = NULL;
	l->next = *list;
	if (*list != NULL)
		(*list)->prev = l;
	*list = l;
}

static void
lookup_destroy(struct mta_sts_lookup *l)
{
	lookup_unlink(l);
	if (l->deliver != NULL)
		event_free(l->deliver);
	pol_unref(&l->result);
	free(l);
}

void
mta_sts_cancel(struct mta_sts_lookup **lp)
{
	struct mta_sts_lookup *l = *lp;

	if (l == NULL)
		return;
	*lp = NULL;
	cache_release_held(l->c);
	/* A flight left without waiters still finishes: its policy goes to the cache. */
	lookup_destroy(l);
}

static void
lookup_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct mta_sts_lookup *l = arg;
	struct mta_sts_cache *c = l->c;
	mta_sts_fn *fn = l->fn;
	void *fn_arg = l->arg;
	struct pol *p = l->result;
	char why[WHY_MAX];
	bool have_why = l->why[0] != '\0';

	memcpy(why, l->why, sizeof(why));
	l->result = NULL;
	lookup_destroy(l);
	/* Valid during the callback and until the next call into the cache after
	 * it (held is released by every call; p joins it only afterwards). */
	bool alive = true;
	c->alive = &alive;
	fn(p != NULL && p->p.mode != MTA_STS_NONE ? &p->p : NULL, have_why ? why : NULL, fn_arg);
	if (!alive) {
		pol_unref(&p);
		return;
	}
	c->alive = NULL;
	if (p == NULL)
		return;
	if (c->nheld == c->capheld) {
		size_t cap = c->capheld != 0 ? c->capheld * 2 : 16;
		struct pol **n = realloc(c->held, cap * sizeof(*n));
		if (n == NULL) {
			/* Nowhere to keep it: it can only go now. */
			pol_unref(&p);
			return;
		}
		c->held = n;
		c->capheld = cap;
	}
	c->held[c->nheld++] = p;
}

/* ---------------------------------------------------------------- flights */

static void
flight_destroy(struct flight *f)
{
	struct mta_sts_cache *c = f->c;

	while (f->waiters != NULL)
		lookup_destroy(f->waiters);
	dns_query_cancel(&f->txt);
	mta_sts_fetch_cancel(&f->fetch);
	if (f->timer != NULL)
		event_free(f->timer);
	if (f->prev != NULL)
		f->prev->next = f->next;
	else
		c->flights = f->next;
	if (f->next != NULL)
		f->next->prev = f->prev;
	free(f);
}

/* The flight is over: every waiter gets p (may be NULL) and why, and the
 * flight goes. */
static void
flight_done(struct flight *f, struct pol *p, const char *why)
{
	struct mta_sts_cache *c = f->c;

	while (f->waiters != NULL) {
		struct mta_sts_lookup *l = f->waiters;
		lookup_unlink(l);
		l->result = pol_ref(p);
		snprintf(l->why, sizeof(l->why), "%s", why != NULL ? why : "");
		lookup_link(l, &c->ready);
		event_active(l->deliver, EV_TIMEOUT, 0);
	}
	flight_destroy(f);
}

/* No new policy: the cached one while it is fresh (§5.1, §10.2), else none. */
static void
flight_fallback(struct flight *f, const char *why)
{
	struct mta_sts_cache *c = f->c;
	struct entry *e = entry_get(c, f->domain);
	char buf[WHY_MAX];

	if (e != NULL && e->pol != NULL && mta_sts_policy_fresh(&e->pol->p, cache_now(c))) {
		if (why != NULL) {
			snprintf(buf, sizeof(buf), "%s; the cached policy (id %s) is used", why,
			    e->pol->p.id);
			why = buf;
		}
		flight_done(f, e->pol, why);
		return;
	}
	flight_done(f, NULL, why);
}

static void
flight_fetched(char *body, size_t len, const char *why, void *arg)
{
	struct flight *f = arg;
	struct mta_sts_cache *c = f->c;
	struct mta_sts_policy p;
	const char *error = NULL;
	char buf[WHY_MAX];
	struct entry *e;
	struct pol *pol;

	f->fetch = NULL;
	if (body == NULL) {
		flight_fallback(f, why);
		return;
	}
	if (mta_sts_policy_parse(body, len, &p, &error) < 0) {
		free(body);
		snprintf(buf, sizeof(buf), "the policy at https://mta-sts.%s/ is not valid: %s",
		    f->domain, error);
		flight_fallback(f, buf);
		return;
	}
	free(body);
	memcpy(p.id, f->id, sizeof(f->id));
	p.fetched_at = cache_now(c);
	if ((pol = pol_new(&p)) == NULL || (e = entry_get(c, f->domain)) == NULL) {
		pol_unref(&pol);
		flight_fallback(f, "out of memory for the policy");
		return;
	}
	log_info("mta-sts: %s: policy id %s fetched: mode %s, max_age %" PRIu32 ", %zu mx",
	    f->domain, pol->p.id, mta_sts_mode_name(pol->p.mode), pol->p.max_age, pol->p.nmx);
	pol_unref(&e->pol);
	e->pol = pol;
	cache_file_store(c, f->domain, &pol->p);
	flight_done(f, pol, NULL);
}

static void
flight_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct flight *f = arg;
	char buf[WHY_MAX];

	snprintf(buf, sizeof(buf), "the MTA-STS lookup of %s took longer than %u s", f->domain,
	    f->c->timeout);
	flight_fallback(f, buf);
}

static void
flight_txt(struct dns_answer *a, void *arg)
{
	struct flight *f = arg;
	struct mta_sts_cache *c = f->c;
	const struct dns_rr *rec = NULL;
	char buf[WHY_MAX];
	unsigned nsts = 0;
	const char *error = NULL;
	struct entry *e;

	f->txt = NULL;
	if (a->status != DNS_OK && a->status != DNS_NXDOMAIN) {
		snprintf(buf, sizeof(buf), "the TXT lookup of _mta-sts.%s failed: %.300s",
		    f->domain, a->why != NULL ? a->why : dns_status_name(a->status));
		dns_answer_unref(&a);
		flight_fallback(f, buf);
		return;
	}
	/* §3.1: records that do not begin with "v=STSv1;" are discarded; the
	 * number left must be one. */
	for (size_t i = 0; a->status == DNS_OK && i < a->n; i++) {
		if (a->rr[i].type == DNS_T_TXT &&
		    mta_sts_txt_is_sts(a->rr[i].u.txt.data, a->rr[i].u.txt.len)) {
			nsts++;
			rec = &a->rr[i];
		}
	}
	if (nsts == 0) {
		dns_answer_unref(&a);
		flight_fallback(f, NULL);
		return;
	}
	if (nsts > 1 || mta_sts_txt_parse(rec->u.txt.data, rec->u.txt.len, f->id) < 0) {
		snprintf(buf, sizeof(buf), nsts > 1 ? "_mta-sts.%s has %u v=STSv1 TXT records, "
		    "not one" : "the TXT record at _mta-sts.%s is not valid", f->domain, nsts);
		dns_answer_unref(&a);
		flight_fallback(f, buf);
		return;
	}
	dns_answer_unref(&a);
	if ((e = entry_get(c, f->domain)) == NULL) {
		flight_done(f, NULL, "out of memory");
		return;
	}
	if (e->pol != NULL && strcmp(e->pol->p.id, f->id) == 0 &&
	    mta_sts_policy_fresh(&e->pol->p, cache_now(c))) {
		flight_done(f, e->pol, NULL);
		return;
	}
	int64_t left = f->deadline_ms - clock_mono_ms();
	c->fetches++;
	f->fetch = mta_sts_fetch_start(c->base, c->dns, c->tls_ctx, f->domain, c->port,
	    left > 0 ? (unsigned)left : 1, flight_fetched, f, &error);
	if (f->fetch == NULL) {
		snprintf(buf, sizeof(buf), "the policy of %s cannot be fetched: %s", f->domain, error);
		flight_fallback(f, buf);
	}
}

static struct flight *
flight_start(struct mta_sts_cache *c, const char *domain)
{
	struct flight *f = calloc(1, sizeof(*f));
	char name[DOMAIN_MAX + 16];
	struct timeval tv = { .tv_sec = c->timeout };

	if (f == NULL)
		return NULL;
	f->c = c;
	memcpy(f->domain, domain, strlen(domain) + 1);
	f->deadline_ms = clock_mono_ms() + (int64_t)c->timeout * 1000;
	snprintf(name, sizeof(name), "_mta-sts.%s", domain);
	f->next = c->flights;
	if (c->flights != NULL)
		c->flights->prev = f;
	c->flights = f;
	if ((f->timer = evtimer_new(c->base, flight_timeout, f)) == NULL ||
	    evtimer_add(f->timer, &tv) < 0 ||
	    (f->txt = dns_resolve(c->dns, name, DNS_T_TXT, flight_txt, f)) == NULL) {
		flight_destroy(f);
		return NULL;
	}
	return f;
}

/* ---------------------------------------------------------------- the API */

struct mta_sts_lookup *
mta_sts_get(struct mta_sts_cache *c, const char *domain, mta_sts_fn *fn, void *arg)
{
	struct mta_sts_lookup *l;
	char name[DOMAIN_MAX + 1];
	size_t len = strlen(domain);
	struct flight *f;
	bool ok = true;

	cache_release_held(c);
	if (len > 0 && domain[len - 1] == '.')
		len--;
	/* The name becomes a file name: a host name (letters, digits, "-" and
	 * "."), short enough that _mta-sts.<domain> is a DNS name. */
	if (len == 0 || len > DOMAIN_MAX || !mta_sts_domain_valid(domain, len))
		ok = false;
	for (size_t i = 0; ok && i < len; i++)
		name[i] = domain[i] >= 'A' && domain[i] <= 'Z' ? (char)(domain[i] - 'A' + 'a') : domain[i];
	name[ok ? len : 0] = '\0';

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	l->c = c;
	l->fn = fn;
	l->arg = arg;
	if ((l->deliver = event_new(c->base, -1, 0, lookup_deliver, l)) == NULL) {
		free(l);
		return NULL;
	}
	if (!ok) {
		snprintf(l->why, sizeof(l->why), "\"%.100s\" is not a domain MTA-STS can look up",
		    domain);
		lookup_link(l, &c->ready);
		event_active(l->deliver, EV_TIMEOUT, 0);
		return l;
	}
	for (f = c->flights; f != NULL; f = f->next)
		if (strcmp(f->domain, name) == 0)
			break;
	if (f == NULL && (f = flight_start(c, name)) == NULL) {
		lookup_destroy(l);
		return NULL;
	}
	lookup_link(l, &f->waiters);
	return l;
}

struct mta_sts_cache *
mta_sts_cache_new(struct event_base *base, struct dns_resolver *dns, SSL_CTX *tls_ctx,
    const char *cache_dir, unsigned port, unsigned timeout, const char **error_r)
{
	struct mta_sts_cache *c;
	struct stat st;

	if (mkdir(cache_dir, 0700) < 0 && errno != EEXIST) {
		*error_r = "cannot create the MTA-STS cache directory";
		return NULL;
	}
	if (stat(cache_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		*error_r = "the MTA-STS cache directory is not a directory";
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL || (c->dir = strdup(cache_dir)) == NULL) {
		free(c);
		*error_r = "out of memory";
		return NULL;
	}
	c->base = base;
	c->dns = dns;
	c->tls_ctx = tls_ctx;
	c->port = port != 0 ? port : 443;
	c->timeout = timeout != 0 ? timeout : 60;
	return c;
}

void
mta_sts_cache_free(struct mta_sts_cache **cp)
{
	struct mta_sts_cache *c = *cp;

	if (c == NULL)
		return;
	*cp = NULL;
	if (c->alive != NULL)
		*c->alive = false;
	while (c->flights != NULL)
		flight_destroy(c->flights);
	while (c->ready != NULL)
		lookup_destroy(c->ready);
	while (c->lru_head != NULL)
		entry_remove(c, c->lru_head);
	cache_release_held(c);
	free(c->held);
	free(c->dir);
	free(c);
}

void
mta_sts_cache_set_clock(struct mta_sts_cache *c, mta_sts_clock_fn *fn, void *arg)
{
	c->clock = fn;
	c->clock_arg = arg;
}

unsigned long
mta_sts_cache_fetches(const struct mta_sts_cache *c)
{
	return c->fetches;
}

size_t
mta_sts_cache_count(const struct mta_sts_cache *c)
{
	return c->count;
}
