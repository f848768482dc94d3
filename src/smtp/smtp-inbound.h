/*
 * smtp-inbound — what a front process needs to check mail arriving on its mx
 * listeners (SPF, DKIM, DMARC: src/mailauth/): a resolver on the process's
 * event loop, the Public Suffix List and a cache of parsed DKIM keys, opened
 * once per process.
 */
#ifndef RAMPART_SMTP_INBOUND_H
#define RAMPART_SMTP_INBOUND_H

struct config;
struct dkim_key_cache;
struct dmarc_psl;
struct dns_resolver;
struct dns_zone;
struct event_base;

struct smtp_mailauth {
	struct dns_zone *zone;        /* dns.zone (offline, tests), else NULL */
	struct dns_resolver *dns;
	struct dmarc_psl *psl;
	struct dkim_key_cache *keys;  /* parsed DKIM public keys, reused across messages */
};

/* Opens what cfg asks for (dns.zone or libunbound with dns.resolver and
 * dns.trust_anchor). Returns -1 with a sentence in *error_r. */
int smtp_mailauth_open(struct smtp_mailauth *ma, const struct config *cfg,
    struct event_base *base, const char **error_r);
void smtp_mailauth_close(struct smtp_mailauth *ma);

#endif
