/*
 * dkim-key — the DKIM key record published at SELECTOR._domainkey.DOMAIN, RFC
 * 6376 §3.6.1 (k=ed25519 from RFC 8463 §4). Syntax only: whether the key suits a
 * signature (k= against a=, h=, s=, t=s) is judged by the verifier.
 *
 * Also the key cache (dkim.h): usable records, parsed and with their public key
 * made, kept by their exact text; least recently used out first; a linear scan
 * (at most 4096 entries; a 64-bit hash skips most compares). No globals: the
 * caller owns the cache.
 */
#include <stdlib.h>
#include <string.h>

#include "mailauth/dkim-private.h"

struct list_flags {
	const char *a, *b;      /* the names to look for */
	bool has_a, has_b;
};

static int find_names(const char *p, size_t len, void *arg)
{
	struct list_flags *f = arg;

	if (len == strlen(f->a) && memcmp(p, f->a, len) == 0)
		f->has_a = true;
	if (len == strlen(f->b) && memcmp(p, f->b, len) == 0)
		f->has_b = true;
	return 0;
}

static struct list_flags list_find(const char *list, const char *a, const char *b)
{
	struct list_flags f = { a, b, false, false };

	dkim_list_each(list, find_names, &f);
	return f;
}

int dkim_keyrec_parse(struct dkim_keyrec *k, const char *txt, size_t len, const char **error_r)
{
	struct dkim_tags tags;
	const struct dkim_tag *v, *h, *kt, *s, *t, *p;
	int ret = -1;

	memset(k, 0, sizeof(*k));
	k->type = DKIM_KEY_RSA;          /* §3.6.1 k=: "rsa" by default */
	k->sha256_ok = k->sha1_ok = true; /* h=: all algorithms by default */
	k->email_ok = true;              /* s=: "*" by default */
	if (dkim_tags_parse(&tags, txt, len, error_r) < 0)
		return -1;
	v = dkim_tags_find(&tags, "v");
	h = dkim_tags_find(&tags, "h");
	kt = dkim_tags_find(&tags, "k");
	s = dkim_tags_find(&tags, "s");
	t = dkim_tags_find(&tags, "t");
	p = dkim_tags_find(&tags, "p");

	/* §3.6.1 v=: "If specified, this tag MUST be set to "DKIM1" ... This tag
	 * MUST be the first tag in the record." */
	if (v != NULL && (v != &tags.tag[0] || strcmp(v->value, "DKIM1") != 0)) {
		*error_r = v != &tags.tag[0] ? "v= is not the first tag of the key record." :
		    "The key record's v= is not DKIM1.";
		goto out;
	}
	if (h != NULL) {
		struct list_flags f = list_find(h->value, "sha256", "sha1");

		k->sha256_ok = f.has_a;
		k->sha1_ok = f.has_b;
	}
	if (kt != NULL) {
		/* "Unrecognized key types MUST be ignored": the record is unusable. */
		if (strcmp(kt->value, "rsa") == 0)
			k->type = DKIM_KEY_RSA;
		else if (strcmp(kt->value, "ed25519") == 0)
			k->type = DKIM_KEY_ED25519;
		else {
			*error_r = "The key record's k= names an unknown key type.";
			goto out;
		}
	}
	if (s != NULL) {
		struct list_flags f = list_find(s->value, "email", "*");

		k->email_ok = f.has_a || f.has_b;
	}
	if (t != NULL) {
		/* "Unrecognized flags MUST be ignored." */
		struct list_flags f = list_find(t->value, "y", "s");

		k->testing = f.has_a;
		k->strict = f.has_b;
	}
	if (p == NULL) {
		*error_r = "The key record has no p= tag.";
		goto out;
	}
	if (p->value_len == 0) {
		k->revoked = true;       /* "An empty value means that this public key has been revoked." */
	} else if (dkim_base64_decode(p->value, p->value_len, k->p, sizeof(k->p), &k->p_len) < 0 ||
	    k->p_len == 0) {
		*error_r = "The key record's p= is not valid base64, or too long.";
		goto out;
	}
	ret = 0;
out:
	dkim_tags_clear(&tags);
	return ret;
}

/* ---------------------------------------------------------------- key cache */

#define KEY_CACHE_DEFAULT 256
#define KEY_CACHE_MAX 4096      /* bounds a lookup's scan */

struct cache_entry {
	uint64_t hash;              /* of the record text, to skip most compares */
	uint64_t used;              /* the clock at the last use, for LRU */
	char *txt;                  /* the key record, exactly as published */
	size_t len;
	struct dkim_keyflags flags;
	struct dkim_pubkey *key;
};

struct dkim_key_cache {
	size_t max, n;
	uint64_t clock, hits, misses;
	struct cache_entry *e;
};

struct dkim_key_cache *dkim_key_cache_new(size_t max)
{
	struct dkim_key_cache *c;

	if (max == 0)
		max = KEY_CACHE_DEFAULT;
	if (max > KEY_CACHE_MAX)
		max = KEY_CACHE_MAX;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if ((c->e = calloc(max, sizeof(*c->e))) == NULL) {
		free(c);
		return NULL;
	}
	c->max = max;
	return c;
}

static void entry_clear(struct cache_entry *e)
{
	dkim_pubkey_free(&e->key);
	free(e->txt);
	memset(e, 0, sizeof(*e));
}

void dkim_key_cache_free(struct dkim_key_cache **cp)
{
	struct dkim_key_cache *c = *cp;

	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n; i++)
		entry_clear(&c->e[i]);
	free(c->e);
	free(c);
	*cp = NULL;
}

size_t dkim_key_cache_count(const struct dkim_key_cache *c)
{
	return c->n;
}

void dkim_key_cache_stats(const struct dkim_key_cache *c, uint64_t *hits_r, uint64_t *misses_r)
{
	*hits_r = c->hits;
	*misses_r = c->misses;
}

/* FNV-1a, eight octets at a time (not a defence against chosen collisions,
 * which only cost compares: the text itself decides). */
static uint64_t text_hash(const char *p, size_t len)
{
	uint64_t h = 0xcbf29ce484222325u ^ len, w;
	size_t i = 0;

	for (; len - i >= 8; i += 8) {
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x100000001b3u;
		h ^= h >> 29;
	}
	for (; i < len; i++)
		h = (h ^ (unsigned char)p[i]) * 0x100000001b3u;
	return h;
}

void dkim_keyflags_of(struct dkim_keyflags *f, const struct dkim_keyrec *k)
{
	f->type = k->type;
	f->sha256_ok = k->sha256_ok;
	f->sha1_ok = k->sha1_ok;
	f->email_ok = k->email_ok;
	f->testing = k->testing;
	f->strict = k->strict;
	f->revoked = k->revoked;
}

struct dkim_pubkey *dkim_key_cache_find(struct dkim_key_cache *c, const char *txt, size_t len,
    struct dkim_keyflags *flags_r)
{
	uint64_t h = text_hash(txt, len);

	for (size_t i = 0; i < c->n; i++) {
		struct cache_entry *e = &c->e[i];

		if (e->hash == h && e->len == len && memcmp(e->txt, txt, len) == 0) {
			e->used = ++c->clock;
			c->hits++;
			*flags_r = e->flags;
			return e->key;
		}
	}
	c->misses++;
	return NULL;
}

void dkim_key_cache_add(struct dkim_key_cache *c, const char *txt, size_t len,
    const struct dkim_keyflags *flags, struct dkim_pubkey **key)
{
	struct cache_entry *e;
	char *copy = malloc(len > 0 ? len : 1);

	if (copy == NULL)
		return;                 /* not kept: the caller frees the key */
	memcpy(copy, txt, len);
	if (c->n < c->max) {
		e = &c->e[c->n++];
	} else {
		e = &c->e[0];
		for (size_t i = 1; i < c->n; i++)
			if (c->e[i].used < e->used)
				e = &c->e[i];
		entry_clear(e);
	}
	e->hash = text_hash(txt, len);
	e->used = ++c->clock;
	e->txt = copy;
	e->len = len;
	e->flags = *flags;
	e->key = *key;
	*key = NULL;
}
