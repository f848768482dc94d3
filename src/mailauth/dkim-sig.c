/*
 * dkim-sig — the DKIM-Signature header field, RFC 6376 §3.5: every syntax and
 * consistency rule that can be checked without the key. Whatever fails here is
 * a permerror for that signature (RFC 8601 §2.7.1).
 */
#include <string.h>

#include "mailauth/dkim-private.h"

const char *dkim_alg_name(enum dkim_alg alg)
{
	switch (alg) {
	case DKIM_ALG_RSA_SHA256:
		return "rsa-sha256";
	case DKIM_ALG_RSA_SHA1:
		return "rsa-sha1";
	case DKIM_ALG_ED25519_SHA256:
		return "ed25519-sha256";
	}
	return "?";
}

void dkim_sig_clear(struct dkim_sig *sig)
{
	dkim_tags_clear(&sig->tags);
	sig->a = sig->d = sig->s = sig->i = sig->i_domain = NULL;
	sig->nh = 0;
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* A decimal of up to maxdigits digits; larger values saturate (l= may have 76
 * digits, §3.5, and no body is that long). */
static int parse_decimal(const char *s, size_t maxdigits, uint64_t *v_r)
{
	uint64_t v = 0;
	size_t n = 0;

	for (; s[n] != '\0'; n++) {
		unsigned d = (unsigned)(s[n] - '0');

		if (d > 9 || n == maxdigits)
			return -1;
		v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
	}
	if (n == 0)
		return -1;
	*v_r = v;
	return 0;
}

/* Calls fn for each element of a colon-separated list, trimmed of whitespace
 * (h=, q=, and the key record's h=, s=, t= all allow FWS around ':'). */
int dkim_list_each(const char *s, int (*fn)(const char *p, size_t len, void *arg), void *arg)
{
	for (;;) {
		const char *colon = strchr(s, ':');
		const char *e = colon != NULL ? colon : s + strlen(s);
		const char *b = s;

		while (b < e && is_ws(*b))
			b++;
		while (e > b && is_ws(e[-1]))
			e--;
		if (fn(b, (size_t)(e - b), arg) < 0)
			return -1;
		if (colon == NULL)
			return 0;
		s = colon + 1;
	}
}

static int add_h(const char *p, size_t len, void *arg)
{
	struct dkim_sig *sig = arg;

	if (len == 0 || sig->nh == DKIM_SIG_H_MAX)
		return -1;
	/* RFC 5322 §3.6.8 field-name: printable US-ASCII except ':' (no WSP). */
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)p[i] < 0x21 || (unsigned char)p[i] > 0x7e)
			return -1;
	sig->h[sig->nh].p = p;
	sig->h[sig->nh].len = len;
	sig->nh++;
	return 0;
}

static int find_dns_txt(const char *p, size_t len, void *arg)
{
	bool *found = arg;

	/* §3.5 q=: "dns/txt" is the only method; "dns" alone was the draft's. */
	if (dkim_name_eq(p, len, "dns/txt", 7))
		*found = true;
	return 0;
}

static int parse_c(struct dkim_sig *sig, const char *c)
{
	const char *slash = strchr(c, '/');
	size_t hl = slash != NULL ? (size_t)(slash - c) : strlen(c);

	/* §3.5 c=: "simple" when absent; a header algorithm alone means a
	 * simple body. */
	if (hl == 6 && memcmp(c, "simple", 6) == 0)
		sig->relaxed_header = false;
	else if (hl == 7 && memcmp(c, "relaxed", 7) == 0)
		sig->relaxed_header = true;
	else
		return -1;
	if (slash == NULL)
		return 0;
	if (strcmp(slash + 1, "simple") == 0)
		sig->relaxed_body = false;
	else if (strcmp(slash + 1, "relaxed") == 0)
		sig->relaxed_body = true;
	else
		return -1;
	return 0;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;   /* §2.11 says upper case; lower case is harmless */
	return -1;
}

/* §2.11 dkim-quoted-printable: FWS dropped, "=XX" an octet, other characters as
 * they are (';' cannot occur in a tag value, '=' only in "=XX"). Octets below
 * 0x21 and DEL are refused once decoded: an identity is shown in logs and
 * Authentication-Results. */
static int qp_decode(const char *s, char *out, size_t max)
{
	size_t o = 0;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (is_ws(*s))
			continue;
		if (c == '=') {
			int hi = hex_digit(s[1]), lo = hi < 0 ? -1 : hex_digit(s[2]);

			if (lo < 0)
				return -1;
			c = (unsigned char)(hi << 4 | lo);
			s += 2;
		}
		if (c < 0x21 || c == 0x7f || o + 1 >= max)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

/* §3.5 i=: [Local-part] "@" domain-name, the domain equal to d= or below it. */
static int check_i(struct dkim_sig *sig, const char *raw, const char **error_r)
{
	const char *at, *i = sig->i_buf;
	size_t dl = strlen(sig->d), il;

	if (qp_decode(raw, sig->i_buf, sizeof(sig->i_buf)) < 0) {
		*error_r = "i= is not valid dkim-quoted-printable, or too long.";
		return -1;
	}
	at = strrchr(i, '@');
	if (at == NULL) {
		*error_r = "i= has no '@'.";
		return -1;
	}
	il = strlen(at + 1);
	if (!dkim_domain_valid(at + 1, il)) {
		*error_r = "The domain of i= is not a valid domain name.";
		return -1;
	}
	if (!(il == dl || (il > dl && at[1 + il - dl - 1] == '.')) ||
	    !dkim_name_eq(at + 1 + il - dl, dl, sig->d, dl)) {
		*error_r = "The domain of i= is not d= or a subdomain of it.";
		return -1;
	}
	sig->i = i;
	sig->i_domain = at + 1;
	return 0;
}

int dkim_sig_parse(struct dkim_sig *sig, const char *value, size_t len, const char **error_r)
{
	const struct dkim_tag *v, *a, *b, *bh, *c, *d, *h, *i, *l, *q, *s, *t, *x;

	memset(sig, 0, sizeof(*sig));
	if (dkim_tags_parse(&sig->tags, value, len, error_r) < 0)
		return -1;
	v = dkim_tags_find(&sig->tags, "v");
	a = dkim_tags_find(&sig->tags, "a");
	b = dkim_tags_find(&sig->tags, "b");
	bh = dkim_tags_find(&sig->tags, "bh");
	c = dkim_tags_find(&sig->tags, "c");
	d = dkim_tags_find(&sig->tags, "d");
	h = dkim_tags_find(&sig->tags, "h");
	i = dkim_tags_find(&sig->tags, "i");
	l = dkim_tags_find(&sig->tags, "l");
	q = dkim_tags_find(&sig->tags, "q");
	s = dkim_tags_find(&sig->tags, "s");
	t = dkim_tags_find(&sig->tags, "t");
	x = dkim_tags_find(&sig->tags, "x");

	/* d=, s= and a= first, so that a result can name them even when a later
	 * rule fails. */
	if (d == NULL || !dkim_domain_valid(d->value, d->value_len)) {
		*error_r = d == NULL ? "The signature has no d= tag." : "d= is not a valid domain name.";
		return -1;
	}
	sig->d = d->value;
	if (s == NULL || !dkim_domain_valid(s->value, s->value_len)) {
		*error_r = s == NULL ? "The signature has no s= tag." : "s= is not a valid selector.";
		return -1;
	}
	sig->s = s->value;
	if (a == NULL) {
		*error_r = "The signature has no a= tag.";
		return -1;
	}
	if (strcmp(a->value, "rsa-sha256") == 0)
		sig->alg = DKIM_ALG_RSA_SHA256;
	else if (strcmp(a->value, "ed25519-sha256") == 0)
		sig->alg = DKIM_ALG_ED25519_SHA256;   /* RFC 8463 §3 */
	else if (strcmp(a->value, "rsa-sha1") == 0)
		sig->alg = DKIM_ALG_RSA_SHA1;
	else {
		*error_r = "a= names an unknown algorithm.";
		return -1;
	}
	sig->a = a->value;
	sig->i_domain = sig->d;

	/* §3.5 v=: "MUST have the value "1"" (and is required). */
	if (v == NULL || strcmp(v->value, "1") != 0) {
		*error_r = v == NULL ? "The signature has no v= tag." : "v= is not 1.";
		return -1;
	}
	if (b == NULL || bh == NULL || h == NULL) {
		*error_r = b == NULL ? "The signature has no b= tag." :
		    bh == NULL ? "The signature has no bh= tag." : "The signature has no h= tag.";
		return -1;
	}
	if (dkim_base64_decode(b->value, b->value_len, sig->b, sizeof(sig->b), &sig->b_len) < 0 ||
	    sig->b_len == 0) {
		*error_r = sig->b_len == 0 && b->value_len == 0 ? "b= is empty." :
		    "b= is not valid base64, or too long.";
		return -1;
	}
	sig->b_raw_start = b->raw_start;
	sig->b_raw_end = b->raw_end;
	if (dkim_base64_decode(bh->value, bh->value_len, sig->bh, sizeof(sig->bh),
	    &sig->bh_len) < 0 || sig->bh_len == 0) {
		*error_r = "bh= is not a valid base64 digest.";
		return -1;
	}
	if (c != NULL && parse_c(sig, c->value) < 0) {
		*error_r = "c= names an unknown canonicalization.";
		return -1;
	}
	if (dkim_list_each(h->value, add_h, sig) < 0) {
		*error_r = sig->nh == DKIM_SIG_H_MAX ? "h= lists too many fields." :
		    "h= has an empty or invalid field name.";
		return -1;
	}
	/* §5.4: "The From header field MUST be signed". */
	{
		bool from = false;

		for (size_t k = 0; k < sig->nh && !from; k++)
			from = dkim_name_eq(sig->h[k].p, sig->h[k].len, "from", 4);
		if (!from) {
			*error_r = "h= does not include From.";
			return -1;
		}
	}
	if (i != NULL && check_i(sig, i->value, error_r) < 0)
		return -1;
	if (l != NULL) {
		if (parse_decimal(l->value, 76, &sig->l) < 0) {
			*error_r = "l= is not a decimal number.";
			return -1;
		}
		sig->has_l = true;
	}
	if (q != NULL) {
		bool found = false;

		dkim_list_each(q->value, find_dns_txt, &found);
		if (!found) {
			*error_r = "q= offers no known query method (dns/txt).";
			return -1;
		}
	}
	/* §3.5 t=, x=: "1*12DIGIT"; allowing 20 costs nothing. */
	if (t != NULL) {
		if (parse_decimal(t->value, 20, &sig->t) < 0) {
			*error_r = "t= is not a decimal number.";
			return -1;
		}
		sig->has_t = true;
	}
	if (x != NULL) {
		if (parse_decimal(x->value, 20, &sig->x) < 0) {
			*error_r = "x= is not a decimal number.";
			return -1;
		}
		sig->has_x = true;
		/* §3.5 x=: "MUST be greater than the value of the t= tag"; an
		 * equal value is accepted, as dkimpy does. */
		if (sig->has_t && sig->x < sig->t) {
			*error_r = "x= is before t=.";
			return -1;
		}
	}
	return 0;
}
