/*
 * rampart-dns — how the mail-checking commands of the CLI (spf, dkim, mailauth,
 * dns) reach DNS: a static zone file (--dns-zone FILE), a given server
 * (--resolver HOST@PORT), or else the daemon's configured resolver, or else the
 * system's (/etc/resolv.conf). One event loop; a check runs on it through the
 * pump (dns.h) until it is done.
 */
#ifndef RAMPART_CMD_DNS_H
#define RAMPART_CMD_DNS_H

#include "dns/dns.h"

struct cli;
struct config;

/* Zero-initialise ({ 0 }) before cli_dns_open or cli_dns_options. */
struct cli_dns {
	struct event_base *base;
	struct dns_zone *zone;          /* --dns-zone, else NULL */
	struct dns_resolver *resolver;
	/* Added: per-query timeout in ms for the network resolver; 0 = the
	 * configuration's dns.timeout, else 5 s. Set it before opening. */
	unsigned timeout_ms;
	/* Added: the view of the last cli_dns_run, kept (with the answers the
	 * check may still point into) until the next run or cli_dns_close. */
	struct dns_view *view;
};

/* Opens DNS for a command. zone_path and resolver are the options' values (NULL
 * when not given; both given is a usage error the caller reports). cfg may be
 * NULL (no configuration file). Returns -1 with a sentence in *error_r.
 * Which DNS: zone_path; else resolver (libunbound forwarding to it, validating
 * with cfg's trust anchor when cfg is given); else cfg's dns.zone, or its
 * dns.resolver ("" = /etc/resolv.conf) with dns.trust_anchor; else, without
 * cfg, /etc/resolv.conf without validation. */
int cli_dns_open(struct cli_dns *d, const char *zone_path, const char *resolver,
    const struct config *cfg, const char **error_r);
/* Runs step on a fresh view until it returns 1 (the pump, then the event loop).
 * deadline_ms bounds each round of questions (0 = 20 s, RFC 7208 §4.6.4).
 * Returns 0, or -1 when the loop could not run. */
int cli_dns_run(struct cli_dns *d, dns_step_fn *step, void *arg, unsigned deadline_ms);
void cli_dns_close(struct cli_dns *d);
/* Parses a --timeout value (milliseconds, 1 to 600000) into *ms_r: 0, or the
 * exit status of the usage error it printed. */
int cli_dns_timeout_parse(const char *arg, unsigned *ms_r);

/* Added: the options of a command, as every mail-checking command takes them.
 * Both given: a usage error (exit 2, via usage_error). Neither: the
 * configuration is loaded into cli->cfg if cli->config_path exists, else the
 * system resolver is used. Prints one sentence on failure (refuse()) and
 * returns the exit status: 0 when d is open (close it with cli_dns_close). */
int cli_dns_options(struct cli *cli, struct cli_dns *d, const char *zone_path,
    const char *resolver);

#endif
