/*
 * dkim-verify — verifying every DKIM-Signature of a message (RFC 6376 §6), as it
 * streams in, with keys fetched through a dns_view.
 *
 * Feeding: the header section is kept (dkim-header.c); when it ends, up to
 * DKIM_MAX_SIGNATURES DKIM-Signature fields are parsed and one body hash is set
 * up for each distinct (body canonicalisation, l=) among the SHA-256 ones; the
 * body then streams through at most two canonicalisers (simple, relaxed) into
 * those hashes, and is not kept.
 *
 * Stepping: per signature, SELECTOR._domainkey.DOMAIN TXT is asked of the view;
 * a signature's result, once known, is kept, so re-running the step is cheap.
 *
 * Several TXT records at the key's name: RFC 6376 §3.6.2.2 says the result is
 * then undefined, and §6.1.2 lets a verifier "cycle through the key records".
 * We try, in the order given, up to KEY_RECORDS_MAX records that parse as key
 * records; the signature passes if one of them verifies it, and otherwise gets
 * the result of the first one that parsed (or, when none parsed, a permerror
 * saying why the first did not).
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailauth/dkim-private.h"

#define KEY_RECORDS_MAX 4
#define KEY_NAME_MAX 253     /* RFC 1035 §2.3.4, in presentation form */

struct body_hash {
	bool relaxed, has_l;
	uint64_t l, hashed;
	EVP_MD_CTX *md;
	unsigned char digest[32];
};

struct vsig {
	struct dkim_sig sig;
	bool parsed, done, hh_ready;
	size_t field;               /* its index among the header fields */
	int bh;                     /* its body hash, -1 for none */
	unsigned char hh[32];       /* the header hash, §3.7 */
	struct dkim_result res;
	char identity[256];         /* "@" d= when there is no i= */
	char b12[13];
	char reason[200];
};

struct dkim_verify {
	time_t now;
	struct dkim_key_cache *keys;    /* NULL: keys made and freed per check */
	struct dkim_header hdr;
	bool body_started, finished, failed;
	size_t nsig, ignored;
	struct vsig *sigs[DKIM_MAX_SIGNATURES];
	size_t nbh;
	struct body_hash bh[DKIM_MAX_SIGNATURES];
	struct dkim_body_canon *canon[2];  /* [0] simple, [1] relaxed */
};

const char *dkim_status_name(enum dkim_status s)
{
	switch (s) {
	case DKIM_STATUS_PASS:
		return "pass";
	case DKIM_STATUS_FAIL:
		return "fail";
	case DKIM_STATUS_NEUTRAL:
		return "neutral";
	case DKIM_STATUS_POLICY:
		return "policy";
	case DKIM_STATUS_TEMPERROR:
		return "temperror";
	case DKIM_STATUS_PERMERROR:
		return "permerror";
	}
	return "permerror";
}

struct dkim_verify *dkim_verify_new(time_t now)
{
	return dkim_verify_new_cached(now, NULL);
}

struct dkim_verify *dkim_verify_new_cached(time_t now, struct dkim_key_cache *cache)
{
	struct dkim_verify *v = calloc(1, sizeof(*v));

	if (v == NULL)
		return NULL;
	v->now = now;
	v->keys = cache;
	dkim_header_init(&v->hdr);
	return v;
}

void dkim_verify_free(struct dkim_verify **vp)
{
	struct dkim_verify *v = *vp;

	if (v == NULL)
		return;
	for (size_t i = 0; i < v->nsig; i++) {
		dkim_sig_clear(&v->sigs[i]->sig);
		free(v->sigs[i]);
	}
	for (size_t i = 0; i < v->nbh; i++)
		EVP_MD_CTX_free(v->bh[i].md);
	free(v->canon[0]);
	free(v->canon[1]);
	dkim_header_free(&v->hdr);
	free(v);
	*vp = NULL;
}

static void set_result(struct vsig *s, enum dkim_status st, const char *reason)
{
	s->done = true;
	s->res.status = st;
	snprintf(s->reason, sizeof(s->reason), "%s", st == DKIM_STATUS_PASS ? "" : reason);
	s->res.reason = s->reason;
}

static void body_sink(struct dkim_verify *v, bool relaxed, const void *data, size_t len)
{
	for (size_t i = 0; i < v->nbh; i++) {
		struct body_hash *b = &v->bh[i];
		size_t n = len;

		if (b->relaxed != relaxed)
			continue;
		if (b->has_l && b->l - b->hashed < n)
			n = (size_t)(b->l - b->hashed);   /* §3.5 l=: only that much is hashed */
		if (n > 0 && EVP_DigestUpdate(b->md, data, n) != 1)
			v->failed = true;
		b->hashed += n;
	}
}

static void sink_simple(void *arg, const void *data, size_t len)
{
	body_sink(arg, false, data, len);
}

static void sink_relaxed(void *arg, const void *data, size_t len)
{
	body_sink(arg, true, data, len);
}

/* The body hash for sig, shared with earlier signatures of the same kind. */
static int body_hash_for(struct dkim_verify *v, const struct dkim_sig *sig)
{
	struct body_hash *b;
	int r = sig->relaxed_body ? 1 : 0;

	for (size_t i = 0; i < v->nbh; i++) {
		b = &v->bh[i];
		if (b->relaxed == sig->relaxed_body && b->has_l == sig->has_l &&
		    (!sig->has_l || b->l == sig->l))
			return (int)i;
	}
	if (v->canon[r] == NULL) {
		if ((v->canon[r] = malloc(sizeof(*v->canon[r]))) == NULL)
			return -1;
		dkim_body_canon_init(v->canon[r], sig->relaxed_body, r ? sink_relaxed : sink_simple, v);
	}
	b = &v->bh[v->nbh];
	memset(b, 0, sizeof(*b));
	b->relaxed = sig->relaxed_body;
	b->has_l = sig->has_l;
	b->l = sig->l;
	if ((b->md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(b->md, dkim_crypto_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(b->md);
		return -1;
	}
	return (int)v->nbh++;
}

/* Fills what a result shows of a signature, as far as it parsed. */
static void describe(struct vsig *s)
{
	const struct dkim_tag *b = dkim_tags_find(&s->sig.tags, "b");
	size_t n = 0;

	s->res.domain = s->sig.d != NULL ? s->sig.d : "";
	s->res.selector = s->sig.s != NULL ? s->sig.s : "";
	s->res.algorithm = s->sig.a != NULL ? s->sig.a : "";
	if (s->sig.i != NULL)
		s->res.identity = s->sig.i;
	else {
		if (s->sig.d != NULL)
			snprintf(s->identity, sizeof(s->identity), "@%s", s->sig.d);
		s->res.identity = s->identity;
	}
	/* RFC 6008 header.b: the leading characters of b=, whitespace removed. */
	for (const char *p = b != NULL ? b->value : ""; *p != '\0' && n < 12; p++)
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			s->b12[n++] = *p;
	s->b12[n] = '\0';
	s->res.b = s->b12;
	s->res.reason = "Not verified yet.";
	s->res.status = DKIM_STATUS_TEMPERROR;
}

/* The header section has ended: find and parse the signatures. */
static void start_body(struct dkim_verify *v)
{
	struct dkim_header *h = &v->hdr;

	v->body_started = true;
	dkim_header_finish(h);
	if (h->failed)
		v->failed = true;
	for (size_t f = 0; f < h->nfields; f++) {
		const struct dkim_field *fl = &h->fields[f];
		const char *colon;
		struct vsig *s;
		const char *error = NULL;

		if (!dkim_name_eq(h->buf + fl->off, fl->name_len, "DKIM-Signature", 14))
			continue;
		if (v->nsig == DKIM_MAX_SIGNATURES) {
			v->ignored++;
			continue;
		}
		if ((s = calloc(1, sizeof(*s))) == NULL) {
			v->failed = true;
			break;
		}
		v->sigs[v->nsig++] = s;
		s->field = f;
		s->bh = -1;
		colon = memchr(h->buf + fl->off, ':', fl->len);
		assert(colon != NULL);
		/* The value: after the ':', without the final CRLF. */
		if (dkim_sig_parse(&s->sig, colon + 1,
		    fl->len - (size_t)(colon + 1 - (h->buf + fl->off)) - 2, &error) == 0)
			s->parsed = true;
		describe(s);
		if (!s->parsed) {
			set_result(s, DKIM_STATUS_PERMERROR, error);
			continue;
		}
		if (h->overflow) {
			set_result(s, DKIM_STATUS_PERMERROR,
			    "The header section is longer than Rampart keeps (256 KiB).");
			continue;
		}
		if (s->sig.alg != DKIM_ALG_RSA_SHA1 && (s->bh = body_hash_for(v, &s->sig)) < 0)
			v->failed = true;
	}
}

void dkim_verify_feed(struct dkim_verify *v, const void *data, size_t len)
{
	size_t n = 0;

	if (v->finished)
		return;
	if (!v->body_started) {
		n = dkim_header_feed(&v->hdr, data, len);
		if (!v->hdr.done)
			return;
		start_body(v);
	}
	for (int r = 0; r < 2; r++)
		if (v->canon[r] != NULL)
			dkim_body_canon_feed(v->canon[r], (const char *)data + n, len - n);
}

void dkim_verify_finish(struct dkim_verify *v)
{
	if (v->finished)
		return;
	if (!v->body_started)
		start_body(v);
	for (int r = 0; r < 2; r++)
		if (v->canon[r] != NULL)
			dkim_body_canon_finish(v->canon[r]);
	for (size_t i = 0; i < v->nbh; i++)
		if (EVP_DigestFinal_ex(v->bh[i].md, v->bh[i].digest, NULL) != 1)
			v->failed = true;
	v->finished = true;
}

/* The header hash of s, computed once. */
static int header_hash(struct dkim_verify *v, struct vsig *s)
{
	const struct dkim_field *fl = &v->hdr.fields[s->field];
	const char *field = v->hdr.buf + fl->off;
	size_t voff = (size_t)((const char *)memchr(field, ':', fl->len) + 1 - field);
	size_t bs = voff + s->sig.b_raw_start, be = voff + s->sig.b_raw_end;
	const char *error;
	char *copy;
	int ret;

	if (s->hh_ready)
		return 0;
	/* §3.7: the field as it is, with the b= value (and the FWS around it)
	 * deleted. */
	if ((copy = malloc(fl->len)) == NULL)
		return -1;
	memcpy(copy, field, bs);
	memcpy(copy + bs, field + be, fl->len - be);
	ret = dkim_header_hash(&v->hdr, s->sig.h, s->sig.nh, s->sig.relaxed_header, copy,
	    fl->len - (be - bs), s->hh, &error);
	free(copy);
	if (ret == 0)
		s->hh_ready = true;
	return ret;
}

/* Judges s against one key record. With a key cache, a record seen before
 * (the same text) is neither parsed nor made into a key again. */
static enum dkim_status check_key(struct dkim_verify *v, struct vsig *s, const char *txt,
    size_t len, bool *parsed_r, bool *testing_r, const char **reason_r)
{
	struct dkim_keyrec *k = NULL;
	struct dkim_keyflags f;
	const struct dkim_body_canon *canon;
	const struct body_hash *b = &v->bh[s->bh];
	enum dkim_status st = DKIM_STATUS_PERMERROR;
	struct dkim_pubkey *pk = NULL, *owned = NULL;
	bool want_ed = s->sig.alg == DKIM_ALG_ED25519_SHA256;

	*parsed_r = false;
	if (v->keys == NULL || (pk = dkim_key_cache_find(v->keys, txt, len, &f)) == NULL) {
		if ((k = malloc(sizeof(*k))) == NULL) {
			*reason_r = "Out of memory.";
			return DKIM_STATUS_TEMPERROR;
		}
		if (dkim_keyrec_parse(k, txt, len, reason_r) < 0)
			goto out;
		dkim_keyflags_of(&f, k);
	}
	*parsed_r = true;
	*testing_r = f.testing;
	canon = v->canon[b->relaxed ? 1 : 0];
	if (f.revoked) {
		*reason_r = "The key has been revoked (empty p=).";
		st = DKIM_STATUS_FAIL;
	} else if ((f.type == DKIM_KEY_ED25519) != want_ed) {
		*reason_r = "The key type (k=) does not match the algorithm (a=).";
	} else if (!f.sha256_ok) {
		*reason_r = "The key does not allow SHA-256 (h=).";
	} else if (!f.email_ok) {
		*reason_r = "The key is not for email (s=).";
	} else if (f.strict && !dkim_name_eq(s->sig.i_domain, strlen(s->sig.i_domain),
	    s->sig.d, strlen(s->sig.d))) {
		*reason_r = "The key does not allow an i= domain below d= (t=s).";
	} else if (pk == NULL &&
	    (pk = owned = dkim_pubkey_new(f.type, k->p, k->p_len, reason_r)) == NULL) {
		/* reason_r says why */
	} else if (b->has_l && b->l > canon->total) {
		*reason_r = "l= is longer than the body.";
	} else if (s->sig.bh_len != 32 || memcmp(s->sig.bh, b->digest, 32) != 0) {
		*reason_r = "The body hash does not match (bh=).";
		st = DKIM_STATUS_FAIL;
	} else if (header_hash(v, s) < 0) {
		*reason_r = "Out of memory.";
		st = DKIM_STATUS_TEMPERROR;
	} else if (dkim_pubkey_verify(pk, s->hh, s->sig.b, s->sig.b_len, reason_r) < 0) {
		st = DKIM_STATUS_FAIL;
	} else if (b->has_l && b->l < canon->total) {
		/* dkim.h: content could have been appended after l= octets. */
		*reason_r = "The signature covers only part of the body (l=).";
		st = DKIM_STATUS_POLICY;
	} else {
		*reason_r = "";
		st = DKIM_STATUS_PASS;
	}
	/* A key made here is kept whatever this signature's result (it is the
	 * record's key either way). */
	if (owned != NULL && v->keys != NULL)
		dkim_key_cache_add(v->keys, txt, len, &f, &owned);
out:
	dkim_pubkey_free(&owned);
	free(k);
	return st;
}

/* 1 when s has a result, 0 when its key is not known yet. */
static int verify_one(struct dkim_verify *v, struct vsig *s, struct dns_view *view)
{
	const struct dns_answer *a;
	char name[KEY_NAME_MAX + 2];
	enum dkim_status first_st = DKIM_STATUS_PERMERROR;
	const char *first_reason = NULL;
	char why[sizeof(s->reason)];
	bool any_parsed = false, first_testing = false;
	size_t tried = 0;

	if (s->done)
		return 1;
	if (v->failed) {
		set_result(s, DKIM_STATUS_TEMPERROR, "Out of memory.");
		return 1;
	}
	/* §3.5 x=: "Signatures MAY be considered invalid if the verification
	 * time at the Verifier is past the expiration date." */
	if (s->sig.has_x && v->now >= 0 && (uint64_t)v->now > s->sig.x) {
		set_result(s, DKIM_STATUS_PERMERROR, "The signature has expired (x=).");
		return 1;
	}
	if (s->sig.alg == DKIM_ALG_RSA_SHA1) {
		/* RFC 8301 §3.1: "Verifiers MUST NOT consider signatures using SHA-1
		 * ... valid" — a policy decision, reported as such. */
		set_result(s, DKIM_STATUS_POLICY, "rsa-sha1 is not accepted (RFC 8301).");
		return 1;
	}
	if ((size_t)snprintf(name, sizeof(name), "%s._domainkey.%s", s->sig.s, s->sig.d) >
	    KEY_NAME_MAX) {
		set_result(s, DKIM_STATUS_PERMERROR, "The key's DNS name is too long.");
		return 1;
	}
	if ((a = dns_view_lookup(view, name, DNS_T_TXT)) == NULL)
		return 0;
	switch (a->status) {
	case DNS_OK:
		break;
	case DNS_NXDOMAIN:
		/* §6.1.2: "If the query ... fails because the corresponding key
		 * record does not exist, the Verifier MUST immediately return
		 * PERMFAIL (no key for signature)." */
		set_result(s, DKIM_STATUS_PERMERROR, "No key for the signature (NXDOMAIN).");
		return 1;
	case DNS_TEMPFAIL:
	case DNS_BOGUS:
		set_result(s, DKIM_STATUS_TEMPERROR, "The key lookup failed temporarily.");
		return 1;
	default:
		set_result(s, DKIM_STATUS_PERMERROR, "The key lookup failed.");
		return 1;
	}
	for (size_t i = 0; i < a->n && tried < KEY_RECORDS_MAX; i++) {
		const char *reason = NULL;
		enum dkim_status st;
		bool parsed, testing = false;

		if (a->rr[i].type != DNS_T_TXT)
			continue;
		tried++;
		st = check_key(v, s, a->rr[i].u.txt.data, a->rr[i].u.txt.len, &parsed, &testing,
		    &reason);
		if (st == DKIM_STATUS_PASS) {
			s->res.testing = testing;
			set_result(s, st, "");
			return 1;
		}
		if (parsed && !any_parsed) {
			any_parsed = true;
			first_st = st;
			first_reason = reason;
			first_testing = testing;
		} else if (first_reason == NULL) {
			first_reason = reason;
		}
	}
	if (tried == 0) {
		set_result(s, DKIM_STATUS_PERMERROR, "No key for the signature (no TXT record).");
	} else if (!any_parsed) {
		snprintf(why, sizeof(why), "The key record does not parse: %s", first_reason);
		set_result(s, DKIM_STATUS_PERMERROR, why);
	} else {
		s->res.testing = first_testing;
		set_result(s, first_st, first_reason);
	}
	return 1;
}

int dkim_verify_step(struct dns_view *view, void *arg)
{
	struct dkim_verify *v = arg;
	int done = 1;

	assert(v->finished);
	for (size_t i = 0; i < v->nsig; i++)
		if (verify_one(v, v->sigs[i], view) == 0)
			done = 0;
	return done;
}

size_t dkim_verify_count(const struct dkim_verify *v)
{
	return v->nsig;
}

size_t dkim_verify_ignored(const struct dkim_verify *v)
{
	return v->ignored;
}

const struct dkim_result *dkim_verify_result(const struct dkim_verify *v, size_t i)
{
	assert(i < v->nsig);
	return &v->sigs[i]->res;
}

const char *dkim_verify_headers(const struct dkim_verify *v, size_t *len_r)
{
	*len_r = v->hdr.len;
	return v->hdr.buf != NULL ? v->hdr.buf : "";
}
