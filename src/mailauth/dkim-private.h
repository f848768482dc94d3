/*
 * dkim-private — the pieces of DKIM that dkim-verify.c and dkim-sign.c share, and
 * that the unit tests and fuzz targets reach directly: the tag-list parser (RFC
 * 6376 §3.2), canonicalisation (§3.4), the header section collector, the
 * DKIM-Signature (§3.5) and key record (§3.6.1) parsers, and the OpenSSL calls.
 * Not part of the public interface (dkim.h).
 *
 * Line ends: the MX path always gives CRLF. A bare LF in input is taken as CRLF
 * (as dkimpy and most verifiers do for LF-only files), a CR not followed by LF is
 * an ordinary octet. Both the header collector and the body canonicaliser follow
 * that rule, so a message fed with LF line ends verifies as its CRLF form does.
 */
#ifndef RAMPART_MAILAUTH_DKIM_PRIVATE_H
#define RAMPART_MAILAUTH_DKIM_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "mailauth/dkim.h"

/* ---- growable byte buffer (dkim-tags.c) ---- */

struct dkim_buf {
	char *p;
	size_t len, cap;
	bool failed;       /* an allocation failed; contents are incomplete */
};
void dkim_buf_add(struct dkim_buf *b, const void *data, size_t len);
/* Makes room for more octets after len; false (and failed set) when it cannot. */
bool dkim_buf_reserve(struct dkim_buf *b, size_t more);
void dkim_buf_free(struct dkim_buf *b);

/* ---- tag lists, RFC 6376 §3.2 (dkim-tags.c) ---- */

#define DKIM_TAGS_MAX 64            /* tags in one list; more: error */
#define DKIM_TAGS_TEXT_MAX 65536    /* octets of one list; more: error */

struct dkim_tag {
	const char *name;       /* NUL-terminated copy */
	const char *value;      /* NUL-terminated copy, surrounding whitespace removed */
	size_t value_len;
	size_t raw_start;       /* offsets in the parsed text of everything after '=' */
	size_t raw_end;         /* up to the ';' or the end (the value with its FWS) */
};

struct dkim_tags {
	char *buf;              /* owns name and value strings */
	size_t n;
	struct dkim_tag tag[DKIM_TAGS_MAX];
};

/* Parses text as a tag-list: names ALPHA *(ALPHA / DIGIT / "_"), case-sensitive;
 * values of VALCHAR and whitespace (octets >= 0x80 are accepted for RFC 6532/8616
 * text); whitespace (SP, TAB, CR, LF) around names, '=' and values; a trailing ';'.
 * An empty text (or only whitespace) is an empty list. Duplicate names, an empty
 * tag-spec (";;"), a missing '=' or a control octet are errors. t is overwritten;
 * clear it with dkim_tags_clear() either way. */
int dkim_tags_parse(struct dkim_tags *t, const char *text, size_t len, const char **error_r);
const struct dkim_tag *dkim_tags_find(const struct dkim_tags *t, const char *name);
void dkim_tags_clear(struct dkim_tags *t);

/* Base64 (RFC 4648 §4, padding required), whitespace (SP, TAB, CR, LF)
 * anywhere ignored, as b=, bh= and p= allow FWS. -1 when invalid or longer than max. */
int dkim_base64_decode(const char *s, size_t len, unsigned char *out, size_t max, size_t *len_r);
/* NUL-terminated base64 of data in a malloc'd string (NULL: out of memory). */
char *dkim_base64_encode(const unsigned char *data, size_t len);

/* A domain name as d= and s= need: dot-separated labels of letters, digits, '-'
 * and '_' (selectors and some domains use '_'), 1-63 octets each, 253 in all. */
bool dkim_domain_valid(const char *s, size_t len);
/* Calls fn for each element of a ':'-separated list, with the whitespace around
 * it removed (h=, q=; the key record's h=, s=, t=); stops at fn's first -1. */
int dkim_list_each(const char *s, int (*fn)(const char *p, size_t len, void *arg), void *arg);
/* ASCII case-insensitive equality of two counted strings. */
static inline bool dkim_name_eq(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];

		if (x >= 'A' && x <= 'Z')
			x += 'a' - 'A';
		if (y >= 'A' && y <= 'Z')
			y += 'a' - 'A';
		if (x != y)
			return false;
	}
	return true;
}

/* ---- canonicalisation, RFC 6376 §3.4 (dkim-canon.c) ---- */

/* Appends field (one whole header field: name, ':', value with any folding,
 * CRLF-terminated) to out, canonicalised simple (§3.4.1: unchanged) or relaxed
 * (§3.4.2). A field without ':' is taken as all name. */
void dkim_canon_header(struct dkim_buf *out, bool relaxed, const char *field, size_t len);

typedef void dkim_canon_sink_fn(void *arg, const void *data, size_t len);

#define DKIM_CANON_OUT 16384

/* The body canonicaliser (§3.4.3 simple, §3.4.4 relaxed): streaming, any split,
 * bounded state. Trailing empty lines are counted, not kept, and written out
 * only when a non-empty line follows. Output goes to sink in chunks of up to
 * DKIM_CANON_OUT octets. */
struct dkim_body_canon {
	bool relaxed;
	bool pending_cr;        /* a CR ended the last piece; an LF may follow */
	bool pending_sp;        /* relaxed: WSP seen in the line, not written yet */
	bool line_open;         /* the current line has content */
	bool finished;
	uint64_t empty_lines;   /* empty lines seen and not written yet */
	uint64_t total;         /* canonical octets written to the sink */
	dkim_canon_sink_fn *sink;
	void *arg;
	size_t outlen;
	unsigned char out[DKIM_CANON_OUT];
};
void dkim_body_canon_init(struct dkim_body_canon *c, bool relaxed, dkim_canon_sink_fn *sink,
    void *arg);
void dkim_body_canon_feed(struct dkim_body_canon *c, const void *data, size_t len);
/* Adds the final CRLF (or the lone CRLF of an empty simple body) and flushes. */
void dkim_body_canon_finish(struct dkim_body_canon *c);
/* Which vector code classifies 64-octet chunks: 0 none (not x86-64), 1 SSE2,
 * 2 AVX2, 3 AVX-512BW. level -1 only asks; 1 to 3 selects one (for tests; -1
 * back when the machine lacks it); 0 selects the best the machine has, as at
 * start. Returns the level in use. */
int dkim_canon_simd(int level);

/* ---- the header section (dkim-header.c) ---- */

struct dkim_field {
	size_t off, len;        /* in the collected buffer; len includes the final CRLF */
	size_t name_len;        /* octets of the name (before any WSP and ':'); 0: no ':' */
};

/* Collects the header section of a message, with every line end made CRLF, up to
 * DKIM_MAX_HEADER_OCTETS (then overflow is set and the rest is only scanned for
 * the empty line that ends the section). */
struct dkim_header {
	char *buf;
	size_t len, cap;
	size_t line_start;      /* where the line being collected starts */
	int state;
	bool overflow;          /* longer than DKIM_MAX_HEADER_OCTETS */
	bool failed;            /* out of memory */
	bool done;              /* the empty line was seen, or finish was called */
	struct dkim_field *fields;
	size_t nfields;
};
void dkim_header_init(struct dkim_header *h);
/* Takes octets until the header section ends; returns how many it took (the rest
 * is body). Once done, returns 0. */
size_t dkim_header_feed(struct dkim_header *h, const void *data, size_t len);
/* Ends the section (a message with no body), and indexes the fields. */
void dkim_header_finish(struct dkim_header *h);
void dkim_header_free(struct dkim_header *h);

struct dkim_name {
	const char *p;
	size_t len;
};

/* RFC 6376 §3.7 and §5.4.2: the SHA-256 over the fields named in names (for each
 * name, instances taken from the bottom up; a name listed more often than it
 * occurs adds nothing), then sigfield (the DKIM-Signature field with the b= value
 * removed, CRLF-terminated) canonicalised without its final CRLF. */
int dkim_header_hash(const struct dkim_header *h, const struct dkim_name *names, size_t n,
    bool relaxed, const char *sigfield, size_t siglen, unsigned char digest[32],
    const char **error_r);

/* ---- DKIM-Signature, RFC 6376 §3.5 (dkim-sig.c) ---- */

enum dkim_alg { DKIM_ALG_RSA_SHA256, DKIM_ALG_RSA_SHA1, DKIM_ALG_ED25519_SHA256 };

#define DKIM_SIG_H_MAX 128          /* names in h=; more: permerror */
#define DKIM_SIG_B_MAX 1024         /* decoded b= octets (RSA up to 8192 bits) */

struct dkim_sig {
	struct dkim_tags tags;      /* owns the strings below */
	enum dkim_alg alg;
	const char *a, *d, *s;      /* NULL until checked, so a failed parse keeps what was valid */
	const char *i;              /* NULL when absent; else i_buf, decoded (§2.11) */
	const char *i_domain;       /* the domain of i= (or d=) */
	bool relaxed_header, relaxed_body;
	struct dkim_name h[DKIM_SIG_H_MAX];
	size_t nh;
	bool has_l, has_t, has_x;
	uint64_t l, t, x;
	unsigned char bh[64];
	size_t bh_len;
	unsigned char b[DKIM_SIG_B_MAX];
	size_t b_len;
	size_t b_raw_start, b_raw_end;  /* the b= value with its FWS, offsets in the parsed text */
	char i_buf[320];            /* i= decoded: a local part and a domain name */
};

/* Parses the value of a DKIM-Signature field (after the ':', folding included).
 * Every rule of §3.5 that needs no key: v=1; a=, b=, bh=, d=, h=, s= present;
 * h= includes From; i= within d=; x= not before t=; q= offers dns/txt; unknown
 * tags ignored. sig is overwritten; clear it with dkim_sig_clear() either way. */
int dkim_sig_parse(struct dkim_sig *sig, const char *value, size_t len, const char **error_r);
void dkim_sig_clear(struct dkim_sig *sig);
const char *dkim_alg_name(enum dkim_alg alg);

/* ---- key records, RFC 6376 §3.6.1 (dkim-key.c) ---- */

#define DKIM_KEYREC_P_MAX 4096      /* decoded p= octets */

struct dkim_keyrec {
	enum dkim_key_type type;    /* k=; rsa when absent */
	bool sha256_ok, sha1_ok;    /* h=; both when absent */
	bool email_ok;              /* s= includes "email" or "*" (or is absent) */
	bool testing, strict;       /* t=y, t=s */
	bool revoked;               /* p= empty */
	unsigned char p[DKIM_KEYREC_P_MAX];
	size_t p_len;
};

/* Parses a key record (the TXT strings concatenated, §3.6.2.2): v=DKIM1 only as
 * the first tag; k= rsa or ed25519 (others: error); p= required. */
int dkim_keyrec_parse(struct dkim_keyrec *k, const char *txt, size_t len, const char **error_r);

/* ---- OpenSSL (dkim-crypto.c) ---- */

/* The SHA-256 implementation, fetched once. */
const EVP_MD *dkim_crypto_sha256(void);
/* An RSA public key from p=: SubjectPublicKeyInfo or PKCS#1 RSAPublicKey DER,
 * 1024 to 8192 bits. */
EVP_PKEY *dkim_crypto_rsa_pubkey(const unsigned char *p, size_t len, const char **error_r);

/* A public key with its verification context made once (dkim-crypto.c): what
 * the key cache keeps. Used by one thread at a time. p= is RSA as
 * dkim_crypto_rsa_pubkey() takes it, or Ed25519's 32 raw octets (RFC 8463 §4). */
struct dkim_pubkey;
struct dkim_pubkey *dkim_pubkey_new(enum dkim_key_type type, const unsigned char *p,
    size_t len, const char **error_r);
/* 0 when sig is a valid signature by k over the SHA-256 digest (RSASSA-PKCS1-v1_5
 * with SHA-256 DigestInfo, or Ed25519 over the 32 octets, RFC 8463 §3). */
int dkim_pubkey_verify(struct dkim_pubkey *k, const unsigned char digest[32],
    const unsigned char *sig, size_t siglen, const char **error_r);
void dkim_pubkey_free(struct dkim_pubkey **k);

/* ---- the key cache (dkim-key.c) ---- */

/* What the verifier needs of a parsed key record besides p=. */
struct dkim_keyflags {
	enum dkim_key_type type;
	bool sha256_ok, sha1_ok, email_ok, testing, strict, revoked;
};
void dkim_keyflags_of(struct dkim_keyflags *f, const struct dkim_keyrec *k);

/* The key of the record whose text is exactly txt (and its flags in *flags_r),
 * or NULL. Owned by the cache; valid until the next call on it. */
struct dkim_pubkey *dkim_key_cache_find(struct dkim_key_cache *c, const char *txt, size_t len,
    struct dkim_keyflags *flags_r);
/* Keeps *key (made from the record txt, with flags) and sets *key to NULL;
 * the least recently used entry makes room. Out of memory: *key is left to
 * the caller. Only records that parsed and gave a key are added. */
void dkim_key_cache_add(struct dkim_key_cache *c, const char *txt, size_t len,
    const struct dkim_keyflags *flags, struct dkim_pubkey **key);

#endif
