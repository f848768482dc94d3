/*
 * dkim-key — the DKIM key record published at SELECTOR._domainkey.DOMAIN, RFC
 * 6376 §3.6.1 (k=ed25519 from RFC 8463 §4). Syntax only: whether the key suits a
 * signature (k= against a=, h=, s=, t=s) is judged by the verifier.
 */
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
