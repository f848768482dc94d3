/* guard — see guard.h. */
#include "auth/guard.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/*
 * The tables. Entries live in fixed-size chunks, so a pointer to an entry stays
 * valid while others are inserted; chunks are added as the table fills, up to
 * cap entries, and then the least recently used entry is reused. Two LRU lists:
 * KEEP (blocked, locked or known: what we would rather not forget) and PLAIN;
 * eviction takes PLAIN's oldest first. An entry used by the current call is
 * pinned (pin == the call's serial) so that a later insert in the same call
 * cannot evict it.
 */
#define NIL UINT32_MAX
#define CHUNK_ENTRIES 256u

enum list { LIST_PLAIN, LIST_KEEP };

struct slot { /* at the start of every entry */
	uint32_t chain;      /* next in the hash bucket */
	uint32_t prev, next; /* LRU list; head = most recently used */
	uint32_t pin;
	uint8_t list;
};

struct table {
	unsigned char **chunks;
	size_t esize, key_off, klen;
	uint32_t cap;   /* max_entries */
	uint32_t alloc; /* slots in chunks */
	uint32_t used;  /* slots 0..used-1 hold entries */
	uint32_t *buckets;
	uint32_t nbuckets; /* power of two, or 0 */
	uint32_t head[2], tail[2];
	unsigned char hkey[crypto_shorthash_KEYBYTES];
};

/* [family, bits, 16 address bytes]: a tier key, i.e. a struct cidr. */
#define TIER_KEY_LEN 18
#define USER_HASH_LEN 16

struct bucket {
	/* One token is window_ms units; refilling adds capacity units per ms, so a
	 * bucket gains its capacity per window in exact integers. */
	int64_t units;
	int64_t last_ms;
};

struct tier_entry {
	struct slot s;
	uint8_t key[TIER_KEY_LEN];
	uint8_t tier; /* 0 host, 1, 2 */
	uint8_t level;
	uint32_t over;
	struct bucket attempts, failures;
	int64_t block_until; /* 0: not blocked */
	int64_t last_until;  /* end of the latest block, for level decay */
};

struct account_entry {
	struct slot s;
	uint8_t key[USER_HASH_LEN];
	uint8_t level;
	struct bucket bucket;
	int64_t lock_until;
	int64_t last_until;
};

struct pair_entry {
	struct slot s;
	uint8_t key[USER_HASH_LEN + TIER_KEY_LEN];
	uint8_t fp_next;
	int64_t known_until;    /* 0: never known */
	int64_t reported_until; /* the expiry the caller was last told (or loaded) */
	struct {
		uint8_t fp[GUARD_FINGERPRINT_SIZE];
		int64_t at_ms; /* 0: empty */
	} fps[GUARD_FINGERPRINTS];
};

struct guard {
	struct guard_config cfg;
	struct table tiers, accounts, pairs;
	unsigned char ukey[crypto_generichash_KEYBYTES];
	uint32_t serial;
	uint64_t attempt_cap[3], failure_cap[3];
};

static const unsigned tier_bits_v4[3] = GUARD_V4_TIER_BITS;
static const unsigned tier_bits_v6[3] = GUARD_V6_TIER_BITS;
static const unsigned tier_mult[3] = { 1, GUARD_TIER2_MULT, GUARD_TIER3_MULT };

/* ---- tables ---- */

static void
table_init(struct table *t, size_t esize, size_t key_off, size_t klen, uint32_t cap)
{
	memset(t, 0, sizeof(*t));
	t->esize = esize;
	t->key_off = key_off;
	t->klen = klen;
	t->cap = cap;
	t->head[0] = t->head[1] = t->tail[0] = t->tail[1] = NIL;
	randombytes_buf(t->hkey, sizeof(t->hkey));
}

static void
table_free(struct table *t, bool wipe)
{
	if (t->chunks != NULL) {
		for (uint32_t i = 0; i < t->alloc / CHUNK_ENTRIES; i++) {
			if (wipe)
				sodium_memzero(t->chunks[i], CHUNK_ENTRIES * t->esize);
			free(t->chunks[i]);
		}
	}
	free(t->chunks);
	free(t->buckets);
	sodium_memzero(t->hkey, sizeof(t->hkey));
	t->chunks = NULL;
	t->buckets = NULL;
}

static inline struct slot *
table_at(const struct table *t, uint32_t i)
{
	return (struct slot *)(void *)(t->chunks[i / CHUNK_ENTRIES] + (size_t)(i % CHUNK_ENTRIES) * t->esize);
}

static inline const uint8_t *
table_key(const struct table *t, const struct slot *s)
{
	return (const uint8_t *)s + t->key_off;
}

static uint32_t
table_bucket(const struct table *t, const uint8_t *key)
{
	unsigned char h[crypto_shorthash_BYTES];
	uint64_t v;

	crypto_shorthash(h, key, t->klen, t->hkey);
	memcpy(&v, h, sizeof(v));
	return (uint32_t)(v & (t->nbuckets - 1));
}

static uint32_t
table_find(const struct table *t, const uint8_t *key)
{
	if (t->nbuckets == 0)
		return NIL;
	for (uint32_t i = t->buckets[table_bucket(t, key)]; i != NIL; i = table_at(t, i)->chain) {
		if (memcmp(table_key(t, table_at(t, i)), key, t->klen) == 0)
			return i;
	}
	return NIL;
}

static void
lru_unlink(struct table *t, uint32_t i)
{
	struct slot *s = table_at(t, i);

	if (s->prev != NIL)
		table_at(t, s->prev)->next = s->next;
	else
		t->head[s->list] = s->next;
	if (s->next != NIL)
		table_at(t, s->next)->prev = s->prev;
	else
		t->tail[s->list] = s->prev;
}

static void
lru_push(struct table *t, uint32_t i, enum list l)
{
	struct slot *s = table_at(t, i);

	s->list = (uint8_t)l;
	s->prev = NIL;
	s->next = t->head[l];
	if (s->next != NIL)
		table_at(t, s->next)->prev = i;
	else
		t->tail[l] = i;
	t->head[l] = i;
}

/* Marks entry i most recently used, on the KEEP or PLAIN list, and pins it. */
static void
table_touch(struct table *t, uint32_t i, bool keep, uint32_t serial)
{
	lru_unlink(t, i);
	lru_push(t, i, keep ? LIST_KEEP : LIST_PLAIN);
	table_at(t, i)->pin = serial;
}

/* Grows the bucket array to a power of two ≥ alloc and rehashes; on failure
 * keeps the old one (longer chains, still correct). */
static void
table_rehash(struct table *t)
{
	uint32_t n = t->nbuckets == 0 ? 64 : t->nbuckets;
	while (n < t->alloc)
		n *= 2;
	if (n == t->nbuckets)
		return;
	uint32_t *b = malloc((size_t)n * sizeof(*b));
	if (b == NULL)
		return;
	memset(b, 0xff, (size_t)n * sizeof(*b)); /* NIL */
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = n;
	for (uint32_t i = 0; i < t->used; i++) {
		struct slot *s = table_at(t, i);
		uint32_t h = table_bucket(t, table_key(t, s));
		s->chain = b[h];
		b[h] = i;
	}
}

/* Adds a chunk of slots, if the bound allows and memory is there. */
static bool
table_grow(struct table *t)
{
	if (t->alloc >= t->cap)
		return false;
	uint32_t nchunks = t->alloc / CHUNK_ENTRIES;
	unsigned char **c = realloc(t->chunks, (size_t)(nchunks + 1) * sizeof(*c));
	if (c == NULL)
		return false;
	t->chunks = c;
	c[nchunks] = calloc(CHUNK_ENTRIES, t->esize);
	if (c[nchunks] == NULL)
		return false;
	t->alloc += CHUNK_ENTRIES;
	if (t->nbuckets < t->alloc || t->nbuckets == 0)
		table_rehash(t);
	return t->nbuckets != 0;
}

/* The least recently used entry of list l not pinned by this call, or NIL. */
static uint32_t
table_victim(const struct table *t, enum list l, uint32_t serial)
{
	for (uint32_t i = t->tail[l]; i != NIL; i = table_at(t, i)->prev) {
		if (table_at(t, i)->pin != serial)
			return i;
	}
	return NIL;
}

static void
table_unchain(struct table *t, uint32_t i)
{
	struct slot *s = table_at(t, i);
	uint32_t *p = &t->buckets[table_bucket(t, table_key(t, s))];

	while (*p != i) {
		assert(*p != NIL);
		p = &table_at(t, *p)->chain;
	}
	*p = s->chain;
}

/* A new zeroed entry for key (not present), pinned and most recently used on
 * the PLAIN list; evicts when the table is full. NIL only if nothing could be
 * allocated at all. */
static uint32_t
table_insert(struct table *t, const uint8_t *key, uint32_t serial)
{
	uint32_t i;

	if (t->used < t->cap && (t->used < t->alloc || table_grow(t)) && t->nbuckets != 0) {
		i = t->used++;
	} else {
		if (t->nbuckets == 0)
			return NIL;
		i = table_victim(t, LIST_PLAIN, serial);
		if (i == NIL)
			i = table_victim(t, LIST_KEEP, serial);
		if (i == NIL)
			return NIL;
		table_unchain(t, i);
		lru_unlink(t, i);
	}
	struct slot *s = table_at(t, i);
	memset(s, 0, t->esize);
	memcpy((uint8_t *)s + t->key_off, key, t->klen);
	uint32_t h = table_bucket(t, key);
	s->chain = t->buckets[h];
	t->buckets[h] = i;
	lru_push(t, i, LIST_PLAIN);
	s->pin = serial;
	return i;
}

/* ---- buckets and back-off ---- */

static void
bucket_fill(struct bucket *b, int64_t now, uint64_t cap, int64_t window)
{
	b->units = (int64_t)cap * window;
	b->last_ms = now;
}

static void
bucket_refill(struct bucket *b, int64_t now, uint64_t cap, int64_t window)
{
	int64_t full = (int64_t)cap * window;

	if (now <= b->last_ms)
		return; /* a clock going backwards refills nothing */
	int64_t elapsed = now - b->last_ms;
	if (elapsed >= window || full - b->units <= elapsed * (int64_t)cap)
		b->units = full;
	else
		b->units += elapsed * (int64_t)cap;
	b->last_ms = now;
}

static bool
bucket_take(struct bucket *b, int64_t window)
{
	if (b->units < window)
		return false;
	b->units -= window;
	return true;
}

/* base × 2^(level-1), capped at max (level ≥ 1). */
static int64_t
backoff(int64_t base, unsigned level, int64_t max)
{
	int64_t d = base;
	for (unsigned k = 1; k < level && d > 0 && d < max; k++)
		d *= 2;
	return d < max ? d : max;
}

static uint32_t
clamp_ms(int64_t ms)
{
	return ms <= 0 ? 0 : ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

/* ---- keys ---- */

static void
tier_key(const struct netaddr *a, unsigned tier, uint8_t key[TIER_KEY_LEN])
{
	unsigned bits = a->family == 4 ? tier_bits_v4[tier] : tier_bits_v6[tier];
	struct netaddr m;

	netaddr_mask(a, bits, &m);
	memset(key, 0, TIER_KEY_LEN);
	key[0] = m.family;
	key[1] = (uint8_t)bits;
	memcpy(key + 2, m.bytes, 16);
}

static void
tier_key_cidr(const uint8_t key[TIER_KEY_LEN], struct cidr *c)
{
	memset(c, 0, sizeof(*c));
	c->net.family = key[0];
	c->bits = key[1];
	memcpy(c->net.bytes, key + 2, 16);
}

/* Which tier a prefix length is for its family, or -1. */
static int
tier_of(const struct cidr *c)
{
	const unsigned *bits = c->net.family == 4 ? tier_bits_v4 : tier_bits_v6;

	if (c->net.family != 4 && c->net.family != 6)
		return -1;
	for (int i = 0; i < 3; i++) {
		if (bits[i] == c->bits)
			return i;
	}
	return -1;
}

static void
user_hash(const struct guard *g, const char *user, uint8_t out[USER_HASH_LEN])
{
	crypto_generichash(out, USER_HASH_LEN, (const unsigned char *)user, strlen(user),
			   g->ukey, sizeof(g->ukey));
}

static void
pair_key(const uint8_t uh[USER_HASH_LEN], const uint8_t host[TIER_KEY_LEN],
	 uint8_t key[USER_HASH_LEN + TIER_KEY_LEN])
{
	memcpy(key, uh, USER_HASH_LEN);
	memcpy(key + USER_HASH_LEN, host, TIER_KEY_LEN);
}

/* ---- events ---- */

static void
event_add(struct guard_events *ev, enum guard_event_type type, const struct cidr *key,
	  const char *user, int64_t until, unsigned level)
{
	assert(ev->n < GUARD_EVENTS_MAX);
	struct guard_event *e = &ev->v[ev->n++];

	memset(e, 0, sizeof(*e));
	e->type = type;
	e->key = *key;
	if (user != NULL) {
		size_t len = strlen(user);
		if (len > GUARD_USER_MAX)
			len = GUARD_USER_MAX;
		memcpy(e->user, user, len);
	}
	e->until_ms = until;
	e->level = level;
}

/* ---- tier entries ---- */

static struct tier_entry *
tier_at(const struct guard *g, uint32_t i)
{
	return (struct tier_entry *)(void *)table_at(&g->tiers, i);
}

static bool
tier_keep(const struct guard *g, const struct tier_entry *e, int64_t now)
{
	return e->block_until > now ||
	       (e->level > 0 && now - e->last_until < g->cfg.block_max_ms);
}

static void
tier_refresh(struct guard *g, struct tier_entry *e, int64_t now)
{
	bucket_fill(&e->attempts, now, g->attempt_cap[e->tier], g->cfg.window_ms);
	bucket_fill(&e->failures, now, g->failure_cap[e->tier], g->cfg.window_ms);
	e->over = 0;
}

/* The entry for a tier key, created if absent; an expired block is cleared
 * (buckets refilled, level kept). NULL only when out of memory. */
static struct tier_entry *
tier_get(struct guard *g, int64_t now, const uint8_t key[TIER_KEY_LEN], unsigned tier)
{
	uint32_t i = table_find(&g->tiers, key);
	struct tier_entry *e;

	if (i == NIL) {
		i = table_insert(&g->tiers, key, g->serial);
		if (i == NIL)
			return NULL;
		e = tier_at(g, i);
		e->tier = (uint8_t)tier;
		tier_refresh(g, e, now);
	} else {
		e = tier_at(g, i);
		if (e->block_until != 0 && e->block_until <= now) {
			e->block_until = 0;
			tier_refresh(g, e, now);
		}
	}
	table_touch(&g->tiers, i, tier_keep(g, e, now), g->serial);
	return e;
}

static void
tier_touch(struct guard *g, struct tier_entry *e, int64_t now)
{
	uint32_t i = table_find(&g->tiers, e->key);
	table_touch(&g->tiers, i, tier_keep(g, e, now), g->serial);
}

static void
tier_block(struct guard *g, struct tier_entry *e, int64_t now, struct guard_events *ev)
{
	struct cidr key;

	/* Quiet for block_max_ms since the last block ended: a fresh start. */
	if (e->level > 0 && now - e->last_until >= g->cfg.block_max_ms)
		e->level = 0;
	if (e->level < UINT8_MAX)
		e->level++;
	e->block_until = now + backoff(g->cfg.block_ms, e->level, g->cfg.block_max_ms);
	e->last_until = e->block_until;
	tier_key_cidr(e->key, &key);
	event_add(ev, GUARD_EV_BLOCK, &key, NULL, e->block_until, e->level);
	tier_touch(g, e, now);
}

/* ---- accounts and pairs ---- */

static struct account_entry *
account_at(const struct guard *g, uint32_t i)
{
	return (struct account_entry *)(void *)table_at(&g->accounts, i);
}

static bool
account_keep(const struct guard *g, const struct account_entry *a, int64_t now)
{
	return a->lock_until > now ||
	       (a->level > 0 && now - a->last_until < g->cfg.lockout_max_ms);
}

/* The account of user hash uh (created only if create), an expired lock
 * cleared. */
static struct account_entry *
account_get(struct guard *g, int64_t now, const uint8_t uh[USER_HASH_LEN], bool create)
{
	uint32_t i = table_find(&g->accounts, uh);
	struct account_entry *a;

	if (i == NIL) {
		if (!create)
			return NULL;
		i = table_insert(&g->accounts, uh, g->serial);
		if (i == NIL)
			return NULL;
		a = account_at(g, i);
		bucket_fill(&a->bucket, now, g->cfg.lockout_failures, g->cfg.window_ms);
	} else {
		a = account_at(g, i);
		if (a->lock_until != 0 && a->lock_until <= now) {
			a->lock_until = 0;
			bucket_fill(&a->bucket, now, g->cfg.lockout_failures, g->cfg.window_ms);
		}
	}
	table_touch(&g->accounts, i, account_keep(g, a, now), g->serial);
	return a;
}

static struct pair_entry *
pair_at(const struct guard *g, uint32_t i)
{
	return (struct pair_entry *)(void *)table_at(&g->pairs, i);
}

static struct pair_entry *
pair_get(struct guard *g, int64_t now, const uint8_t uh[USER_HASH_LEN],
	 const uint8_t host[TIER_KEY_LEN], bool create)
{
	uint8_t key[USER_HASH_LEN + TIER_KEY_LEN];
	uint32_t i;

	pair_key(uh, host, key);
	i = table_find(&g->pairs, key);
	if (i == NIL) {
		if (!create)
			return NULL;
		i = table_insert(&g->pairs, key, g->serial);
		if (i == NIL)
			return NULL;
	}
	struct pair_entry *p = pair_at(g, i);
	table_touch(&g->pairs, i, p->known_until > now, g->serial);
	return p;
}

static void
pair_touch(struct guard *g, struct pair_entry *p, int64_t now)
{
	uint32_t i = table_find(&g->pairs, p->key);
	table_touch(&g->pairs, i, p->known_until > now, g->serial);
}

/* Whether fingerprint fp already failed for this pair within window_ms; if so
 * its time is refreshed, so a phone retrying an old password for hours stays
 * one failure. */
static bool
pair_repeat(const struct guard *g, struct pair_entry *p, int64_t now, const uint8_t *fp)
{
	for (unsigned i = 0; i < GUARD_FINGERPRINTS; i++) {
		if (p->fps[i].at_ms != 0 && now - p->fps[i].at_ms < g->cfg.window_ms &&
		    sodium_memcmp(p->fps[i].fp, fp, GUARD_FINGERPRINT_SIZE) == 0) {
			if (now > p->fps[i].at_ms)
				p->fps[i].at_ms = now;
			return true;
		}
	}
	return false;
}

static void
pair_remember(struct pair_entry *p, int64_t now, const uint8_t *fp)
{
	unsigned i = p->fp_next % GUARD_FINGERPRINTS;

	memcpy(p->fps[i].fp, fp, GUARD_FINGERPRINT_SIZE);
	p->fps[i].at_ms = now;
	p->fp_next = (uint8_t)((i + 1) % GUARD_FINGERPRINTS);
}

/* ---- API ---- */

struct guard *
guard_new(const struct guard_config *cfg)
{
	assert(cfg->window_ms > 0 && cfg->attempts > 0 && cfg->failures > 0);
	assert(cfg->tarpit_base_ms >= 0 && cfg->tarpit_max_ms >= 0);
	assert(cfg->block_ms > 0 && cfg->block_max_ms > 0);
	assert(cfg->lockout_failures > 0 && cfg->lockout_ms > 0 && cfg->lockout_max_ms > 0);
	assert(cfg->known_ttl_ms > 0 && cfg->failure_delay_ms >= 0);
	assert(cfg->max_entries >= 4 && cfg->max_entries <= UINT32_MAX / 2);
	/* Bucket units (capacity × window) must fit in int64_t. */
	assert((uint64_t)cfg->attempts * GUARD_TIER3_MULT <= (uint64_t)INT64_MAX / (uint64_t)cfg->window_ms);
	assert((uint64_t)cfg->failures * GUARD_TIER3_MULT <= (uint64_t)INT64_MAX / (uint64_t)cfg->window_ms);
	assert((uint64_t)cfg->lockout_failures <= (uint64_t)INT64_MAX / (uint64_t)cfg->window_ms);

	if (sodium_init() < 0)
		return NULL;
	struct guard *g = calloc(1, sizeof(*g));
	if (g == NULL)
		return NULL;
	g->cfg = *cfg;
	for (unsigned t = 0; t < 3; t++) {
		g->attempt_cap[t] = (uint64_t)cfg->attempts * tier_mult[t];
		g->failure_cap[t] = (uint64_t)cfg->failures * tier_mult[t];
	}
	table_init(&g->tiers, sizeof(struct tier_entry), offsetof(struct tier_entry, key),
		   TIER_KEY_LEN, cfg->max_entries);
	table_init(&g->accounts, sizeof(struct account_entry), offsetof(struct account_entry, key),
		   USER_HASH_LEN, cfg->max_entries);
	table_init(&g->pairs, sizeof(struct pair_entry), offsetof(struct pair_entry, key),
		   USER_HASH_LEN + TIER_KEY_LEN, cfg->max_entries);
	randombytes_buf(g->ukey, sizeof(g->ukey));
	return g;
}

void
guard_free(struct guard **gp)
{
	struct guard *g = *gp;

	if (g == NULL)
		return;
	*gp = NULL;
	table_free(&g->tiers, false);
	table_free(&g->accounts, false);
	table_free(&g->pairs, true); /* fingerprints are derived from passwords */
	sodium_memzero(g->ukey, sizeof(g->ukey));
	free(g);
}

void
guard_host_key(const struct netaddr *a, struct cidr *key)
{
	uint8_t k[TIER_KEY_LEN];

	tier_key(a, 0, k);
	tier_key_cidr(k, key);
}

/* The entries of the tiers that apply (3, or only the host when known), all
 * looked up before any is used: inserting may evict, but never a pinned one. */
static unsigned
tiers_get(struct guard *g, int64_t now, const uint8_t keys[3][TIER_KEY_LEN], bool known,
	  struct tier_entry *t[3])
{
	unsigned n = known ? 1 : 3;

	for (unsigned i = 0; i < n; i++)
		t[i] = tier_get(g, now, keys[i], i);
	return n;
}

void
guard_check(struct guard *g, int64_t now, const struct netaddr *addr, const char *user,
	    struct guard_decision *d, struct guard_events *ev)
{
	uint8_t keys[3][TIER_KEY_LEN], uh[USER_HASH_LEN];
	struct tier_entry *t[3];
	bool known = false, limited = false, blocked = false;
	int64_t delay = 0;

	assert(addr->family == 4 || addr->family == 6);
	g->serial++;
	ev->n = 0;
	memset(d, 0, sizeof(*d));
	for (unsigned i = 0; i < 3; i++)
		tier_key(addr, i, keys[i]);
	if (user != NULL) {
		user_hash(g, user, uh);
		struct pair_entry *p = pair_get(g, now, uh, keys[0], false);
		known = p != NULL && p->known_until > now;
	}
	d->known = known;
	unsigned n = tiers_get(g, now, keys, known, t);

	/* 1. A blocked host, or a blocked prefix unless known: no tokens taken. */
	for (unsigned i = 0; i < n; i++) {
		if (t[i] != NULL && t[i]->block_until > now) {
			d->verdict = GUARD_BLOCKED;
			d->delay_ms = clamp_ms(g->cfg.tarpit_max_ms);
			return;
		}
	}

	/* 2. One attempt token from each tier; any tier without one tarpits. */
	for (unsigned i = 0; i < n; i++) {
		if (t[i] == NULL)
			continue;
		bucket_refill(&t[i]->attempts, now, g->attempt_cap[t[i]->tier], g->cfg.window_ms);
		if (t[i]->attempts.units >= g->cfg.window_ms) {
			t[i]->over = 0;
			continue;
		}
		limited = true;
		if (t[i]->over < UINT32_MAX)
			t[i]->over++;
		int64_t tp = backoff(g->cfg.tarpit_base_ms, t[i]->over, g->cfg.tarpit_max_ms);
		if (tp > delay)
			delay = tp;
		if (t[i]->over >= g->failure_cap[t[i]->tier]) {
			tier_block(g, t[i], now, ev);
			blocked = true;
		}
	}
	if (limited) {
		d->verdict = blocked ? GUARD_BLOCKED : GUARD_RATE_LIMITED;
		d->delay_ms = clamp_ms(blocked ? g->cfg.tarpit_max_ms : delay);
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		if (t[i] != NULL)
			bucket_take(&t[i]->attempts, g->cfg.window_ms);
	}

	/* 3. The account's lock, for addresses that are not known for it. */
	if (user != NULL && !known) {
		struct account_entry *a = account_get(g, now, uh, false);
		if (a != NULL && a->lock_until > now) {
			d->verdict = GUARD_LOCKED_OUT;
			d->delay_ms = clamp_ms(g->cfg.failure_delay_ms);
			return;
		}
	}
	d->verdict = GUARD_ALLOW;
}

void
guard_failure(struct guard *g, int64_t now, const struct netaddr *addr, const char *user,
	      bool user_exists, const uint8_t *fingerprint, struct guard_events *ev)
{
	uint8_t keys[3][TIER_KEY_LEN], uh[USER_HASH_LEN];
	struct tier_entry *t[3];
	bool known = false;

	assert(addr->family == 4 || addr->family == 6);
	g->serial++;
	ev->n = 0;
	for (unsigned i = 0; i < 3; i++)
		tier_key(addr, i, keys[i]);
	if (user != NULL) {
		user_hash(g, user, uh);
		struct pair_entry *p = pair_get(g, now, uh, keys[0], false);
		known = p != NULL && p->known_until > now;
		if (fingerprint != NULL) {
			if (p != NULL && pair_repeat(g, p, now, fingerprint))
				return; /* counted when it first failed */
			if (p == NULL)
				p = pair_get(g, now, uh, keys[0], true);
			if (p != NULL) {
				pair_remember(p, now, fingerprint);
				pair_touch(g, p, now);
			}
		}
	}

	unsigned n = tiers_get(g, now, keys, known, t);
	for (unsigned i = 0; i < n; i++) {
		/* A failure finishing while its tier got blocked extends nothing. */
		if (t[i] == NULL || t[i]->block_until > now)
			continue;
		bucket_refill(&t[i]->failures, now, g->failure_cap[t[i]->tier], g->cfg.window_ms);
		bucket_take(&t[i]->failures, g->cfg.window_ms);
		if (t[i]->failures.units < g->cfg.window_ms)
			tier_block(g, t[i], now, ev);
	}

	if (user == NULL || !user_exists || known)
		return;
	struct account_entry *a = account_get(g, now, uh, true);
	if (a == NULL || a->lock_until > now)
		return;
	bucket_refill(&a->bucket, now, g->cfg.lockout_failures, g->cfg.window_ms);
	bucket_take(&a->bucket, g->cfg.window_ms);
	if (a->bucket.units >= g->cfg.window_ms)
		return;
	if (a->level > 0 && now - a->last_until >= g->cfg.lockout_max_ms)
		a->level = 0;
	if (a->level < UINT8_MAX)
		a->level++;
	a->lock_until = now + backoff(g->cfg.lockout_ms, a->level, g->cfg.lockout_max_ms);
	a->last_until = a->lock_until;
	struct cidr host;
	tier_key_cidr(keys[0], &host);
	event_add(ev, GUARD_EV_LOCKOUT, &host, user, a->lock_until, a->level);
	table_touch(&g->accounts, table_find(&g->accounts, a->key), true, g->serial);
}

void
guard_success(struct guard *g, int64_t now, const struct netaddr *addr, const char *user,
	      struct guard_events *ev)
{
	uint8_t host[TIER_KEY_LEN], uh[USER_HASH_LEN];

	assert(addr->family == 4 || addr->family == 6);
	assert(user != NULL);
	g->serial++;
	ev->n = 0;
	tier_key(addr, 0, host);
	user_hash(g, user, uh);
	struct pair_entry *p = pair_get(g, now, uh, host, true);
	if (p != NULL) {
		p->known_until = now + g->cfg.known_ttl_ms;
		if (p->reported_until == 0 ||
		    p->known_until - p->reported_until >= GUARD_KNOWN_REFRESH_MS) {
			struct cidr key;
			tier_key_cidr(host, &key);
			event_add(ev, GUARD_EV_KNOWN, &key, user, p->known_until, 0);
			p->reported_until = p->known_until;
		}
		pair_touch(g, p, now);
	}
	uint32_t i = table_find(&g->tiers, host);
	if (i != NIL) {
		/* A success gives its attempt token back: the budget is for guessing,
		 * and a busy client (a webmail host, an office behind NAT) logging in
		 * all day must not end up tarpitted. */
		struct tier_entry *e = tier_at(g, i);
		int64_t full = (int64_t)g->attempt_cap[e->tier] * g->cfg.window_ms;
		e->attempts.units = e->attempts.units + g->cfg.window_ms > full ? full :
		    e->attempts.units + g->cfg.window_ms;
		e->over = 0;
	}
}

int
guard_unblock(struct guard *g, int64_t now, const struct cidr *key)
{
	int lifted = 0;

	for (uint32_t i = 0; i < g->tiers.used; i++) {
		struct tier_entry *e = tier_at(g, i);
		struct cidr c;

		tier_key_cidr(e->key, &c);
		if (c.bits < key->bits || !cidr_contains(key, &c.net))
			continue;
		if (e->block_until > now)
			lifted++;
		if (e->block_until != 0 || e->level != 0) {
			e->block_until = 0;
			e->last_until = 0;
			e->level = 0;
			tier_refresh(g, e, now);
			table_touch(&g->tiers, i, false, e->s.pin);
		}
	}
	return lifted;
}

int
guard_unlock(struct guard *g, int64_t now, const char *user)
{
	uint8_t uh[USER_HASH_LEN];

	user_hash(g, user, uh);
	uint32_t i = table_find(&g->accounts, uh);
	if (i == NIL)
		return 0;
	struct account_entry *a = account_at(g, i);
	int was = a->lock_until > now;
	a->lock_until = 0;
	a->last_until = 0;
	a->level = 0;
	bucket_fill(&a->bucket, now, g->cfg.lockout_failures, g->cfg.window_ms);
	table_touch(&g->accounts, i, false, a->s.pin);
	return was;
}

int
guard_load_block(struct guard *g, int64_t now, const struct cidr *key, int64_t until_ms,
		 unsigned level)
{
	int tier = tier_of(key);
	uint8_t k[TIER_KEY_LEN];

	if (tier < 0)
		return -1;
	if (until_ms <= now)
		return 0;
	if (until_ms - now > g->cfg.block_max_ms)
		until_ms = now + g->cfg.block_max_ms;
	g->serial++;
	tier_key(&key->net, (unsigned)tier, k);
	struct tier_entry *e = tier_get(g, now, k, (unsigned)tier);
	if (e == NULL)
		return -1;
	if (until_ms > e->block_until)
		e->block_until = until_ms;
	if (e->block_until > e->last_until)
		e->last_until = e->block_until;
	level = level < 1 ? 1 : level > UINT8_MAX ? UINT8_MAX : level;
	if (level > e->level)
		e->level = (uint8_t)level;
	tier_touch(g, e, now);
	return 0;
}

int
guard_load_known(struct guard *g, int64_t now, const char *user, const struct cidr *host_key,
		 int64_t until_ms)
{
	uint8_t host[TIER_KEY_LEN], uh[USER_HASH_LEN];

	if (tier_of(host_key) != 0)
		return -1;
	if (until_ms <= now)
		return 0;
	if (until_ms - now > g->cfg.known_ttl_ms)
		until_ms = now + g->cfg.known_ttl_ms;
	g->serial++;
	tier_key(&host_key->net, 0, host);
	user_hash(g, user, uh);
	struct pair_entry *p = pair_get(g, now, uh, host, true);
	if (p == NULL)
		return -1;
	if (until_ms > p->known_until)
		p->known_until = until_ms;
	/* What was loaded is what the caller has stored. */
	if (until_ms > p->reported_until)
		p->reported_until = until_ms;
	pair_touch(g, p, now);
	return 0;
}

void
guard_blocks_foreach(struct guard *g, int64_t now, guard_block_cb *cb, void *ctx)
{
	for (uint32_t i = 0; i < g->tiers.used; i++) {
		const struct tier_entry *e = tier_at(g, i);
		struct cidr c;

		if (e->block_until <= now)
			continue;
		tier_key_cidr(e->key, &c);
		if (cb(&c, e->block_until, e->level, ctx) != 0)
			return;
	}
}

const char *
guard_verdict_reason(enum guard_verdict v)
{
	switch (v) {
	case GUARD_ALLOW:
		return "allowed";
	case GUARD_RATE_LIMITED:
		return "rate-limited";
	case GUARD_BLOCKED:
		return "blocked";
	case GUARD_LOCKED_OUT:
		return "locked-out";
	}
	return "unknown";
}

static size_t
table_bytes(const struct table *t, uint32_t alloc, uint32_t nbuckets)
{
	uint32_t nchunks = (alloc + CHUNK_ENTRIES - 1) / CHUNK_ENTRIES;
	return (size_t)nchunks * CHUNK_ENTRIES * t->esize + (size_t)nchunks * sizeof(void *) +
	       (size_t)nbuckets * sizeof(uint32_t);
}

static uint32_t
table_max_buckets(const struct table *t)
{
	uint32_t chunks = (t->cap + CHUNK_ENTRIES - 1) / CHUNK_ENTRIES;
	uint32_t n = 64;
	while (n < chunks * CHUNK_ENTRIES)
		n *= 2;
	return n;
}

void
guard_stats(const struct guard *g, struct guard_stats *st)
{
	const struct table *t[3] = { &g->tiers, &g->accounts, &g->pairs };

	memset(st, 0, sizeof(*st));
	st->tiers = g->tiers.used;
	st->accounts = g->accounts.used;
	st->pairs = g->pairs.used;
	st->capacity = g->cfg.max_entries;
	st->bytes = st->bytes_max = sizeof(*g);
	for (unsigned i = 0; i < 3; i++) {
		st->bytes += table_bytes(t[i], t[i]->alloc, t[i]->nbuckets);
		st->bytes_max += table_bytes(t[i], t[i]->cap, table_max_buckets(t[i]));
	}
}
