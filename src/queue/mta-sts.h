/*
 * mta-sts — SMTP MTA Strict Transport Security (RFC 8461) for outbound mail.
 *
 * Before delivering to a domain by MX, the relay asks mta_sts_get() for the
 * domain's policy:
 *   1. TXT at _mta-sts.<domain> (§3.1): "v=STSv1; id=..." (exactly one such
 *      record, else no policy);
 *   2. when the cached policy is fresh and its id is the same, the cache answers
 *      (§5.1); otherwise the policy is fetched over HTTPS from
 *      https://mta-sts.<domain>/.well-known/mta-sts.txt (§3.3): the host name
 *      resolved through Rampart's own resolver (dns.h), TLS with PKIX
 *      verification of that name (tls-client.h), no redirects, status 200 only,
 *      Content-Type text/plain, at most MTA_STS_POLICY_MAX octets, within the
 *      fetch timeout;
 *   3. a fetch that fails keeps using a cached policy that has not expired
 *      (§5.1, §10.2: an attacker who blocks the fetch must not downgrade us);
 *      with no usable policy the domain is treated as having none.
 * Policies are cached in memory and in files under the cache directory (one
 * per domain, written atomically) so that they survive restarts; max_age is
 * honoured, capped at one year (§3.2).
 *
 * The relay then: with mode enforce, delivers only to MX hosts that match a
 * policy "mx" pattern (§4.1) and only over TLS with a PKIX-valid certificate
 * for the MX host (§4.2), else defers; with testing, delivers as usual and logs
 * what enforce would have refused (§5); none = no policy.
 */
#ifndef RAMPART_MTA_STS_H
#define RAMPART_MTA_STS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

struct dns_resolver;
struct event_base;

#define MTA_STS_POLICY_MAX (64 * 1024)
#define MTA_STS_MX_MAX 64
#define MTA_STS_MAX_AGE_MAX 31557600
/* Longest policy line accepted (octets, without CRLF); an mx line is at most
 * "mx: *." plus 253. */
#define MTA_STS_LINE_MAX 1024
/* Domains whose policies (or their absence) are kept in memory, LRU. */
#define MTA_STS_CACHE_ENTRIES 10000

enum mta_sts_mode { MTA_STS_NONE, MTA_STS_TESTING, MTA_STS_ENFORCE };

struct mta_sts_policy {
	enum mta_sts_mode mode;
	char id[64];                    /* the TXT record's id= it was fetched for */
	char *mx[MTA_STS_MX_MAX];       /* patterns, lower case: "mx.example.com", "*.example.net" */
	size_t nmx;
	uint32_t max_age;
	int64_t fetched_at;             /* unix time */
};

/* §3.1: the id of a "v=STSv1; id=...;" TXT record (id: 1-32 alphanumerics).
 * 0 and the id in id_out (33 octets), -1 when the record is not one. */
int mta_sts_txt_parse(const char *txt, size_t len, char id_out[33]);
/* §3.1: whether a TXT record at _mta-sts claims to be one ("v=STSv1" then ";",
 * white space or the end). Records that do not are discarded; when the number
 * that do is not one, the domain has no usable TXT record. */
bool mta_sts_txt_is_sts(const char *txt, size_t len);
/* §3.2: parses a policy body (CRLF or LF lines "key: value"); version STSv1,
 * mode, max_age required, once each; mx required unless mode is none; unknown
 * keys ignored; names and values case-sensitive as the ABNF says. Blank lines
 * are skipped and an mx pattern may end in a dot (dropped); patterns are kept
 * lower case; max_age is capped at MTA_STS_MAX_AGE_MAX. Refused: more than
 * MTA_STS_POLICY_MAX octets, a line over MTA_STS_LINE_MAX, more than
 * MTA_STS_MX_MAX patterns, an mx that is not ["*."] host name. p is
 * overwritten (id and fetched_at zeroed: the caller fills them); -1 with a
 * sentence naming the line on error, p then holding nothing. */
int mta_sts_policy_parse(const char *text, size_t len, struct mta_sts_policy *p,
    const char **error_r);
void mta_sts_policy_clear(struct mta_sts_policy *p);
/* "none", "testing", "enforce". */
const char *mta_sts_mode_name(enum mta_sts_mode mode);
/* Whether p may still be used at unix time now (§3.2 max_age: now is before
 * fetched_at + max_age; a policy fetched more than 5 minutes in the future,
 * after the clock went back, is not fresh). */
bool mta_sts_policy_fresh(const struct mta_sts_policy *p, int64_t now);
/* §4.1: whether host (an MX name, any case, a final dot ignored) matches a
 * pattern of p: exact, or "*.rest" matching exactly one more leftmost label
 * ("*.example.com" matches "mx.example.com", not "a.b.example.com" nor
 * "example.com"). */
bool mta_sts_mx_match(const struct mta_sts_policy *p, const char *host);

struct mta_sts_cache;
/* cache_dir: where policies are kept (created 0700 if missing; files 0600);
 * port: 443 (also when 0), or another for tests (mta_sts.port); timeout in
 * seconds for TXT+fetch (0 = 60, §3.3's suggestion). tls_ctx: from
 * tls_client_ctx_new() (its roots verify the policy host). All borrowed. */
struct mta_sts_cache *mta_sts_cache_new(struct event_base *base, struct dns_resolver *dns,
    SSL_CTX *tls_ctx, const char *cache_dir, unsigned port, unsigned timeout,
    const char **error_r);
/* Lookups still outstanding are dropped: their fn never runs and their
 * handles must not be used any more. Safe from inside an fn. */
void mta_sts_cache_free(struct mta_sts_cache **c);

/* policy: NULL when the domain has none (or only mode none); otherwise valid
 * during the callback and after it until the next call into the cache. why: a
 * sentence for the log when the lookup or fetch failed (NULL when all went
 * well); when a cached policy is given despite a failure, why says so. */
typedef void mta_sts_fn(const struct mta_sts_policy *policy, const char *why, void *arg);
struct mta_sts_lookup;
/* Looks up domain's policy; fn runs later on the loop, exactly once, unless the
 * lookup is cancelled first; the handle is gone once fn has run. domain: any
 * case, a final dot allowed; one that is not a host name is answered
 * (policy NULL, why) like any other. Concurrent lookups of a domain share one
 * TXT query and one fetch. NULL when out of memory (fn never runs). */
struct mta_sts_lookup *mta_sts_get(struct mta_sts_cache *c, const char *domain,
    mta_sts_fn *fn, void *arg);
void mta_sts_cancel(struct mta_sts_lookup **l);

#endif
