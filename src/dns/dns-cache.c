/*
 * dns-cache — answers kept for their TTL (RFC 1035 §3.2.1), negative ones for
 * their negative TTL (RFC 2308 §5), in a bounded table: at most max_entries,
 * the least recently used going first. TTLs are capped at a day, as resolvers
 * commonly do (RFC 8767 §4 suggests 7 days at most). Temporary failures are
 * not kept: the next question asks again.
 */
#include "dns/dns-private.h"

#include <stdlib.h>
#include <string.h>

struct cache_entry {
	struct cache_entry *chain;         /* bucket list */
	struct cache_entry *older, *newer; /* LRU list */
	struct dns_name key;               /* lower-cased */
	uint16_t type;
	int64_t expires_ms;
	struct dns_answer *answer;
};

struct dns_cache {
	struct cache_entry **buckets;
	size_t nbuckets, count, max;
	struct cache_entry *oldest, *newest;
};

struct dns_cache *
dns_cache_new(size_t max_entries)
{
	struct dns_cache *c = calloc(1, sizeof(*c));
	size_t nb = 16;

	if (c == NULL)
		return NULL;
	while (nb < max_entries && nb < ((size_t)1 << 24))
		nb *= 2;
	if ((c->buckets = calloc(nb, sizeof(*c->buckets))) == NULL) {
		free(c);
		return NULL;
	}
	c->nbuckets = nb;
	c->max = max_entries > 0 ? max_entries : 1;
	return c;
}

static size_t
cache_hash(const struct dns_cache *c, const struct dns_name *key, uint16_t type)
{
	uint64_t h = 1469598103934665603ull;   /* FNV-1a */

	for (size_t i = 0; i < key->len; i++)
		h = (h ^ key->wire[i]) * 1099511628211ull;
	h = (h ^ type) * 1099511628211ull;
	return (size_t)(h & (c->nbuckets - 1));
}

static void
lru_unlink(struct dns_cache *c, struct cache_entry *e)
{
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		c->oldest = e->newer;
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		c->newest = e->older;
	e->older = e->newer = NULL;
}

static void
lru_push(struct dns_cache *c, struct cache_entry *e)
{
	e->older = c->newest;
	e->newer = NULL;
	if (c->newest != NULL)
		c->newest->newer = e;
	else
		c->oldest = e;
	c->newest = e;
}

static struct cache_entry **
cache_slot(struct dns_cache *c, const struct dns_name *key, uint16_t type)
{
	struct cache_entry **pp = &c->buckets[cache_hash(c, key, type)];

	while (*pp != NULL && ((*pp)->type != type || (*pp)->key.len != key->len ||
	    memcmp((*pp)->key.wire, key->wire, key->len) != 0))
		pp = &(*pp)->chain;
	return pp;
}

static void
cache_remove(struct dns_cache *c, struct cache_entry *e)
{
	struct cache_entry **pp = cache_slot(c, &e->key, e->type);

	if (*pp == e)
		*pp = e->chain;
	lru_unlink(c, e);
	dns_answer_unref(&e->answer);
	free(e);
	c->count--;
}

void
dns_cache_free(struct dns_cache **cp)
{
	struct dns_cache *c = *cp;

	if (c == NULL)
		return;
	*cp = NULL;
	while (c->oldest != NULL)
		cache_remove(c, c->oldest);
	free(c->buckets);
	free(c);
}

struct dns_answer *
dns_cache_get(struct dns_cache *c, const struct dns_name *key, uint16_t type, int64_t now_ms)
{
	struct dns_name k = *key;
	struct cache_entry *e;

	dns_name_lower(&k);
	if ((e = *cache_slot(c, &k, type)) == NULL)
		return NULL;
	if (now_ms >= e->expires_ms) {
		cache_remove(c, e);
		return NULL;
	}
	lru_unlink(c, e);
	lru_push(c, e);
	return dns_answer_ref(e->answer);
}

void
dns_cache_put(struct dns_cache *c, const struct dns_name *key, uint16_t type,
    struct dns_answer *a, int64_t now_ms)
{
	struct cache_entry **pp, *e;
	uint32_t ttl = a->ttl < DNS_TTL_MAX ? a->ttl : DNS_TTL_MAX;
	struct dns_name k = *key;

	if ((a->status != DNS_OK && a->status != DNS_NXDOMAIN) || ttl == 0)
		return;
	dns_name_lower(&k);
	pp = cache_slot(c, &k, type);
	if ((e = *pp) != NULL) {
		dns_answer_unref(&e->answer);
		lru_unlink(c, e);
	} else {
		if ((e = calloc(1, sizeof(*e))) == NULL)
			return;
		e->key = k;
		e->type = type;
		*pp = e;
		c->count++;
	}
	e->answer = dns_answer_ref(a);
	e->expires_ms = now_ms + (int64_t)ttl * 1000;
	lru_push(c, e);
	while (c->count > c->max)
		cache_remove(c, c->oldest);
}

size_t
dns_cache_count(const struct dns_cache *c)
{
	return c->count;
}
