/*
 * keys-msg — messages between the queue process and the keys process.
 *
 * The keys process holds the DKIM private keys (DESIGN.md "Processes"); the queue
 * hashes the message itself and sends only SHA-256 digests to be signed, so no
 * message byte ever reaches the process with the keys.
 *
 *   KEYS_SELECTORS  keys -> queue, when the channel is set up and whenever the
 *                   set of signing selectors changes (a key added, removed, a
 *                   rotation's grace period ending): every (domain, selector,
 *                   algorithm) that signs *now*. The queue replaces its copy.
 *   KEYS_SIGN_REQ   queue -> keys: up to KEYS_SIGN_MAX items, each a domain, a
 *                   selector and the 32-octet digest from dkim_sign_digest().
 *   KEYS_SIGN_RES   keys -> queue, same request id: a status per item, and the
 *                   signature when it is OK. A selector that does not sign (any
 *                   more) is KEYS_NO_KEY; the queue then drops that signature.
 *
 * Each type's encoder and decoder sit side by side; decoders bound every count
 * and length and validate names (dkim domain and selector syntax).
 *
 * Encoding (wire.h): KEYS_SELECTORS is a u32 count, then per selector the
 * domain and selector as strings and the type as a u8. KEYS_SIGN_REQ is a u32
 * count (1..KEYS_SIGN_MAX), then per item domain, selector and the digest as a
 * 32-octet blob. KEYS_SIGN_RES is a u32 count (0..KEYS_SIGN_MAX), then per item
 * the status as a u8 and the signature as a blob (1..KEYS_SIG_MAX octets when
 * KEYS_OK, empty otherwise). An answer of 0 items says the request could not be
 * read: the queue fails every signature of it. The request id of the frame pairs
 * a request with its answer.
 */
#ifndef RAMPART_KEYS_MSG_H
#define RAMPART_KEYS_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mailauth/dkim.h"

struct evbuffer;

enum keys_msg_type {
	KEYS_SELECTORS = 400,
	KEYS_SIGN_REQ,
	KEYS_SIGN_RES,
};

#define KEYS_SIGN_MAX 8            /* signatures per request */
#define KEYS_SELECTORS_MAX 4096    /* selectors in one KEYS_SELECTORS */
#define KEYS_SIG_MAX 512           /* octets of one signature (RSA-4096) */

/* A DKIM d= or s= as keys travel and as the key directory names them: 1 to 253
 * octets, dot-separated labels of 1 to 63 letters, digits, '-' or '_' (RFC 6376
 * §3.5: d= and s= are domain names; '_' occurs in selectors in practice), no
 * final dot. A domain is in lower case (lower_only); a selector keeps its case
 * (DNS compares it case-insensitively, the s= tag carries it as written).
 * Nothing else is accepted, so a valid name is also a safe file name ('/',
 * "." and ".." are not valid). */
bool keys_name_valid(const char *s, bool lower_only);

struct keys_selector {
	const char *domain;        /* lower case, no final dot */
	const char *selector;
	enum dkim_key_type type;
};

struct keys_selectors {
	struct keys_selector *v;   /* decoded: points into the frame */
	size_t n;
};
void keys_selectors_encode(struct evbuffer *b, const struct keys_selector *v, size_t n);
/* m->v is malloc'd (free it; NULL after an error or when n is 0); strings
 * point into data. */
int keys_selectors_decode(const void *data, size_t len, struct keys_selectors *m,
    const char **error_r);

struct keys_sign_item {
	const char *domain;
	const char *selector;
	unsigned char digest[32];
};
struct keys_sign_req {
	struct keys_sign_item items[KEYS_SIGN_MAX];
	size_t n;
};
void keys_sign_req_encode(struct evbuffer *b, const struct keys_sign_req *m);
int keys_sign_req_decode(const void *data, size_t len, struct keys_sign_req *m,
    const char **error_r);

enum keys_status { KEYS_OK, KEYS_NO_KEY, KEYS_FAILED };
struct keys_sig {
	enum keys_status status;
	unsigned char sig[KEYS_SIG_MAX];
	size_t len;
};
struct keys_sign_res {
	struct keys_sig sigs[KEYS_SIGN_MAX];
	size_t n;
};
void keys_sign_res_encode(struct evbuffer *b, const struct keys_sign_res *m);
int keys_sign_res_decode(const void *data, size_t len, struct keys_sign_res *m,
    const char **error_r);

#endif
