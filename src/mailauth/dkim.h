/*
 * dkim — DomainKeys Identified Mail: verifying every signature of a message and
 * signing one (RFC 6376, RFC 8301 algorithm updates, RFC 8463 ed25519-sha256).
 *
 * No I/O: a message is fed in pieces as it arrives (CRLF line ends, after SMTP
 * dot-unstuffing, any split); keys are fetched through a dns_view (dns.h) by
 * stepping the verifier like any other check. Body hashes are computed once, on
 * the fly, for each distinct (canonicalisation, l=, hash) among the signatures.
 *
 * Verification policy (RFC 6376 §6, RFC 8301): rsa-sha1 signatures get the
 * result "policy"; RSA keys under 1024 bits "permerror"; l= is honoured only
 * when the unsigned remainder of the body is empty (otherwise "policy": content
 * could have been appended; an l= longer than the body is "permerror"); h= must
 * include From; i= is decoded (dkim-quoted-printable, §2.11); over-signed (listed more
 * times than present) fields count as absent, as §5.4.2 says. Keys: v=, k=, h=,
 * s= (must allow "email" or "*"), t=y (testing: reported) and t=s (i= domain
 * must equal d=), p= empty (revoked: "fail", §3.6.1).
 *
 * Line ends: CRLF as the MX path gives; a bare LF is taken as CRLF (dkimpy and
 * most verifiers do the same for LF files), a CR not before an LF is content.
 *
 * Several TXT records at a key's name (RFC 6376 §3.6.2.2: "undefined"): up to
 * four that parse as key records are tried in DNS order (§6.1.2 allows cycling);
 * one that verifies gives "pass", else the first that parsed decides the result
 * (or, when none parsed, "permerror"). NXDOMAIN or no TXT record: "permerror"
 * (no key); a temporary DNS failure: "temperror". t= in the future is not held
 * against a signature; x= in the past is ("permerror").
 *
 * Signing: ed25519-sha256 or rsa-sha256 (from the key), relaxed/relaxed by
 * default, and From, To, Subject, Date, Message-ID signed one time more than
 * they occur (over-signing, so none can be added). The private key may live in
 * another process: dkim_sign_digest() gives the SHA-256 digest to sign and
 * dkim_sign_header() takes the signature back.
 */
#ifndef RAMPART_MAILAUTH_DKIM_H
#define RAMPART_MAILAUTH_DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "dns/dns.h"

/* Per signature; names as in RFC 8601 §2.7.1. */
enum dkim_status {
	DKIM_STATUS_PASS,
	DKIM_STATUS_FAIL,
	DKIM_STATUS_NEUTRAL,    /* e.g. signature syntax errors are permerror; neutral: unused */
	DKIM_STATUS_POLICY,     /* valid, but not acceptable here (rsa-sha1, l= with more body) */
	DKIM_STATUS_TEMPERROR,  /* key lookup failed temporarily */
	DKIM_STATUS_PERMERROR,  /* bad signature or key record, key missing, too small, expired */
};
const char *dkim_status_name(enum dkim_status s);   /* "pass", "permerror", ... */

/* Limits that peer input can hit. */
#define DKIM_MAX_SIGNATURES 8          /* more are ignored (reported once in logs) */
#define DKIM_MAX_HEADER_OCTETS (256 * 1024) /* header section kept; beyond: permerror */

/* The strings live as long as the struct dkim_verify. */
struct dkim_result {
	enum dkim_status status;
	const char *domain;      /* d= ("" when the signature did not parse; a
	                          * permerror still shows d= and s= when they
	                          * themselves were valid) */
	const char *selector;    /* s= */
	const char *identity;    /* i= or "@" d= */
	const char *algorithm;   /* a= */
	const char *b;           /* the first 12 characters of b= (header.b, RFC 6008) */
	const char *reason;      /* a short sentence: why not pass, "" for pass */
	bool testing;            /* the key says t=y */
};

struct dkim_verify;

/* now: the time against which x= is checked. No key cache: every key record is
 * made into a key anew. */
struct dkim_verify *dkim_verify_new(time_t now);

/* A bounded cache of key records that parsed and gave a public key (the record's
 * tags, and the key with its OpenSSL verification context ready), keyed by the
 * exact record text, so that a changed record is a miss; the least recently
 * used entry is dropped when max (1..4096; 0 = 256) are held. Results are the
 * same with and without it; it saves parsing the record and the key and, for
 * RSA, setting up its arithmetic (about 40 % of an RSA-2048 verification). One per
 * process (or thread): used by one thread at a time; it must outlive every
 * verifier given it. NULL when out of memory. */
struct dkim_key_cache;
struct dkim_key_cache *dkim_key_cache_new(size_t max);
/* Entries held, and lookups that found their key or did not (for logs, tests). */
size_t dkim_key_cache_count(const struct dkim_key_cache *c);
void dkim_key_cache_stats(const struct dkim_key_cache *c, uint64_t *hits_r,
    uint64_t *misses_r);
void dkim_key_cache_free(struct dkim_key_cache **c);
/* As dkim_verify_new(), with keys taken from cache (NULL: none). */
struct dkim_verify *dkim_verify_new_cached(time_t now, struct dkim_key_cache *cache);
/* The message as received, in any pieces. */
void dkim_verify_feed(struct dkim_verify *v, const void *data, size_t len);
/* The end of the message. */
void dkim_verify_finish(struct dkim_verify *v);
/* A dns_step_fn (arg is the struct dkim_verify *), after finish: fetches the
 * keys and verifies; 1 when every signature has a result. */
int dkim_verify_step(struct dns_view *view, void *v);
/* Signatures examined (0: the message is unsigned, dkim=none). */
size_t dkim_verify_count(const struct dkim_verify *v);
/* i < dkim_verify_count(); until the step has returned 1 a signature may still
 * read "temperror", "Not verified yet." */
const struct dkim_result *dkim_verify_result(const struct dkim_verify *v, size_t i);
/* DKIM-Signature fields beyond DKIM_MAX_SIGNATURES, which were not examined
 * (for a log line). */
size_t dkim_verify_ignored(const struct dkim_verify *v);
/* The header section as received (CRLF line ends, without the empty line), as
 * much of it as was kept; for the From: domain that DMARC needs. */
const char *dkim_verify_headers(const struct dkim_verify *v, size_t *len_r);
void dkim_verify_free(struct dkim_verify **v);

/* ---- keys ---- */

enum dkim_key_type { DKIM_KEY_ED25519, DKIM_KEY_RSA };
struct dkim_key;

/* A private key in PEM (PKCS#8 or PKCS#1 RSA; PKCS#8 Ed25519), unencrypted;
 * RSA keys of 1024 to 4096 bits. The file's copy in memory is wiped. */
struct dkim_key *dkim_key_load(const char *path, const char **error_r);
struct dkim_key *dkim_key_parse(const char *pem, size_t len, const char **error_r);
enum dkim_key_type dkim_key_type(const struct dkim_key *k);
/* Writes a new key to path (0600, O_EXCL: never overwrites) as PEM and returns
 * the DNS TXT record to publish ("v=DKIM1; k=ed25519; p=...") in *txt_r (malloc'd).
 * rsa_bits: 2048 when 0; at least 1024. */
int dkim_key_generate(enum dkim_key_type type, unsigned rsa_bits, const char *path,
    char **txt_r, const char **error_r);
/* The TXT record for the public half of k (malloc'd). */
char *dkim_key_txt(const struct dkim_key *k);
/* Signs a digest from dkim_sign_digest(): RSASSA-PKCS1-v1_5 with SHA-256, or
 * Ed25519 over the 32 digest octets (RFC 8463 §3). sig must hold 512 octets.
 * A key keeps a signing context made at load time: one thread at a time. */
int dkim_key_sign_digest(const struct dkim_key *k, const unsigned char digest[32],
    unsigned char *sig, size_t *siglen_r, const char **error_r);
void dkim_key_free(struct dkim_key **k);

/* ---- signing ---- */

struct dkim_sign_params {
	const char *domain;           /* d= */
	const char *selector;         /* s= */
	enum dkim_key_type type;      /* a= ed25519-sha256 or rsa-sha256 */
	bool simple_header, simple_body; /* c=; false/false = relaxed/relaxed (default) */
	const char *const *headers;   /* fields to sign, each as often as it occurs
	                               * ("List-*": a prefix), From always, and
	                               * From/To/Subject/Date/Message-ID once more;
	                               * NULL = the default list */
	time_t timestamp;             /* t=; 0 = none */
	time_t expire;                /* x=; 0 = none */
	const char *identity;         /* i=; NULL = none */
};

struct dkim_sign;
struct dkim_sign *dkim_sign_new(const struct dkim_sign_params *p, const char **error_r);
void dkim_sign_feed(struct dkim_sign *s, const void *data, size_t len);
void dkim_sign_finish(struct dkim_sign *s);
/* After finish: the SHA-256 digest of what is signed (RFC 6376 §3.7); -1 when
 * the header section was longer than DKIM_MAX_HEADER_OCTETS. */
int dkim_sign_digest(struct dkim_sign *s, unsigned char digest[32], const char **error_r);
/* The DKIM-Signature field with that signature, folded, CRLF-terminated
 * (malloc'd); to be put at the top of the message. */
char *dkim_sign_header(struct dkim_sign *s, const unsigned char *sig, size_t siglen);
void dkim_sign_free(struct dkim_sign **s);

#endif
