/*
 * rampart-dns — DNS for the CLI's mail-checking commands (rampart-dns.h) and
 * `rampart dns query NAME TYPE`, which shows what Rampart's resolver answers.
 */
#include "cmd/rampart-dns.h"

#include "cmd/rampart-cli.h"
#include "dns/dns.h"
#include "lib/config.h"
#include "lib/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLI_DNS_TIMEOUT_MS 5000u
#define CLI_DNS_DEADLINE_MS 20000u   /* RFC 7208 §4.6.4: at least 20 s in all */

int
cli_dns_open(struct cli_dns *d, const char *zone_path, const char *resolver,
    const struct config *cfg, const char **error_r)
{
	const char *forward = NULL, *anchor = NULL;
	unsigned timeout = d->timeout_ms;

	if (timeout == 0)
		timeout = cfg != NULL && cfg->dns_timeout > 0 ? (unsigned)cfg->dns_timeout :
		    CLI_DNS_TIMEOUT_MS;
	if (zone_path == NULL && resolver == NULL && cfg != NULL && cfg->dns_zone != NULL &&
	    cfg->dns_zone[0] != '\0')
		zone_path = cfg->dns_zone;
	if ((d->base = event_base_new()) == NULL)
		return error_fail(error_r, ENOMEM, "Cannot make an event loop.");
	if (zone_path != NULL) {
		const char *error;

		if ((d->zone = dns_zone_load(zone_path, &error)) == NULL) {
			char why[1200];

			snprintf(why, sizeof(why), "%s", error);
			cli_dns_close(d);
			return error_fail(error_r, EINVAL, "Cannot load the zone: %s.", why);
		}
		if ((d->resolver = dns_resolver_zone_new(d->base, d->zone)) == NULL) {
			cli_dns_close(d);
			return error_fail(error_r, ENOMEM, "Out of memory.");
		}
		return 0;
	}
	if (resolver != NULL)
		forward = resolver;
	else if (cfg != NULL)
		forward = cfg->dns_resolver;
	if (cfg != NULL)
		anchor = cfg->dns_trust_anchor;
	d->resolver = dns_resolver_unbound_new(d->base, forward, forward == NULL ||
	    forward[0] == '\0', anchor, timeout, error_r);
	if (d->resolver == NULL) {
		char why[512];

		snprintf(why, sizeof(why), "%s", *error_r);
		cli_dns_close(d);
		return error_fail(error_r, EINVAL, "Cannot set up the resolver: %s.", why);
	}
	return 0;
}

/* The pump passes one argument to both step and done: this carries both. */
struct run_state {
	dns_step_fn *step;
	void *arg;
	bool done;
	struct event_base *base;
};

static int
run_step(struct dns_view *v, void *arg)
{
	struct run_state *s = arg;

	return s->step(v, s->arg);
}

static void
run_done(void *arg)
{
	struct run_state *s = arg;

	s->done = true;
	event_base_loopbreak(s->base);
}

int
cli_dns_run(struct cli_dns *d, dns_step_fn *step, void *arg, unsigned deadline_ms)
{
	struct run_state s = { .step = step, .arg = arg, .done = false, .base = d->base };
	struct dns_pump *p;

	dns_view_free(&d->view);
	/* A zone answers at once: the step runs without the loop. */
	if ((d->view = dns_view_new(d->zone)) == NULL)
		return -1;
	if (d->zone != NULL) {
		/* Every answer is known at once: one step finishes (a step that
		 * returned 0 anyway would be stuck; the pump would stop it too). */
		(void)step(d->view, arg);
		return 0;
	}
	p = dns_pump_start(d->resolver, d->view, deadline_ms > 0 ? deadline_ms :
	    CLI_DNS_DEADLINE_MS, run_step, run_done, &s);
	if (p == NULL)
		return -1;
	while (!s.done) {
		/* 1: nothing left to wait for, so done() can never come. */
		if (event_base_loop(d->base, EVLOOP_ONCE) != 0 && !s.done)
			break;
	}
	dns_pump_free(&p);
	return s.done ? 0 : -1;
}

void
cli_dns_close(struct cli_dns *d)
{
	dns_view_free(&d->view);
	dns_resolver_free(&d->resolver);
	dns_zone_free(&d->zone);
	if (d->base != NULL)
		event_base_free(d->base);
	d->base = NULL;
}

int
cli_dns_options(struct cli *cli, struct cli_dns *d, const char *zone_path, const char *resolver)
{
	const char *error = NULL;

	if (zone_path != NULL && resolver != NULL)
		return usage_error("--dns-zone and --resolver exclude each other");
	/* With --resolver, the configuration still gives the trust anchor and timeout. */
	if (zone_path == NULL && cli->cfg == NULL &&
	    cli->config_path != NULL && access(cli->config_path, F_OK) == 0 &&
	    load_config(cli) < 0)
		return EXIT_REFUSED;
	if (cli_dns_open(d, zone_path, resolver, cli->cfg, &error) < 0)
		return refuse("%s", error != NULL ? error : "Cannot set up DNS.");
	return 0;
}

/* ---------------------------------------------------------------- dns query */

static const char query_help[] =
    "Usage: rampart dns query NAME TYPE [--dns-zone FILE | --resolver HOST[@PORT]]\n"
    "                                   [--timeout MS]\n"
    "Asks the resolver Rampart uses (the zone file, the server, else the configured\n"
    "resolver, else /etc/resolv.conf) and prints the status, whether the answer was\n"
    "DNSSEC-validated, its TTL, and the records of TYPE (A, AAAA, MX, TXT, PTR,\n"
    "CNAME, NS, TLSA). Exit status: 0 for an answer (NXDOMAIN and no data\n"
    "included), 1 for a temporary failure or a bogus answer, 2 for bad usage.\n";

struct query_state {
	const char *name;
	uint16_t type;
	const struct dns_answer *answer;
};

static int
query_step(struct dns_view *v, void *arg)
{
	struct query_state *q = arg;

	q->answer = dns_view_lookup(v, q->name, q->type);
	return q->answer != NULL;
}

/* A TXT character-string in presentation form (RFC 1035 §5.1). */
static void
print_string(const unsigned char *s, size_t len)
{
	putchar('"');
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\')
			printf("\\%c", s[i]);
		else if (s[i] < 0x20 || s[i] >= 0x7f)
			printf("\\%03u", s[i]);
		else
			putchar(s[i]);
	}
	putchar('"');
}

static void
print_name(const char *name)
{
	/* Absolute, as a master file would have it. */
	printf("%s.", name);
}

static void
print_rr(const struct dns_rr *rr)
{
	char buf[INET6_ADDRSTRLEN];

	printf("%u IN %s ", (unsigned)rr->ttl, dns_type_name(rr->type));
	switch (rr->type) {
	case DNS_T_A:
		fputs(inet_ntop(AF_INET, &rr->u.a, buf, sizeof(buf)), stdout);
		break;
	case DNS_T_AAAA:
		fputs(inet_ntop(AF_INET6, &rr->u.aaaa, buf, sizeof(buf)), stdout);
		break;
	case DNS_T_MX:
		printf("%u ", (unsigned)rr->u.mx.pref);
		if (rr->u.mx.host[0] == '\0')
			putchar('.');
		else
			print_name(rr->u.mx.host);
		break;
	case DNS_T_CNAME:
	case DNS_T_PTR:
	case DNS_T_NS:
		print_name(rr->u.name);
		break;
	case DNS_T_TXT:
	case DNS_T_SPF:
		/* The strings are joined (dns.h): shown as one, split at 255. */
		if (rr->u.txt.len == 0)
			print_string(NULL, 0);
		for (size_t off = 0; off < rr->u.txt.len; off += 255) {
			size_t n = rr->u.txt.len - off < 255 ? rr->u.txt.len - off : 255;

			if (off > 0)
				putchar(' ');
			print_string((const unsigned char *)rr->u.txt.data + off, n);
		}
		break;
	case DNS_T_TLSA:
		printf("%u %u %u ", rr->u.tlsa.usage, rr->u.tlsa.selector, rr->u.tlsa.mtype);
		for (size_t i = 0; i < rr->u.tlsa.len; i++)
			printf("%02X", rr->u.tlsa.data[i]);
		break;
	default:
		break;
	}
	putchar('\n');
}

static const struct option query_options[] = {
	{ "dns-zone", required_argument, NULL, 'z' },
	{ "resolver", required_argument, NULL, 'r' },
	{ "timeout", required_argument, NULL, 't' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int
cli_dns_timeout_parse(const char *arg, unsigned *ms_r)
{
	char *end;
	errno = 0;
	unsigned long ms = strtoul(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || ms < 1 || ms > 600000)
		return usage_error("--timeout takes milliseconds, 1 to 600000");
	*ms_r = (unsigned)ms;
	return 0;
}

int
cli_dns_query(struct cli *cli)
{
	const char *zone = NULL, *resolver = NULL;
	struct query_state q = { 0 };
	struct cli_dns d = { 0 };
	unsigned timeout = 0;
	int c, type, ret;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(cli->pass_argc, cli->pass_argv, ":h", query_options,
	    NULL)) != -1) {
		switch (c) {
		case 'z':
			zone = optarg;
			break;
		case 'r':
			resolver = optarg;
			break;
		case 't':
			if ((ret = cli_dns_timeout_parse(optarg, &timeout)) != 0)
				return ret;
			break;
		case 'h':
			fputs(query_help, stdout);
			return finish_output(0);
		case ':':
			return usage_error("'dns query': %s needs a value",
			    cli->pass_argv[optind - 1]);
		default:
			return usage_error("'dns query' does not take the option %s",
			    cli->pass_argv[optind - 1]);
		}
	}
	if (cli->pass_argc - optind != 2)
		return usage_error("'dns query' takes a NAME and a TYPE");
	q.name = cli->pass_argv[optind];
	if ((type = dns_type_parse(cli->pass_argv[optind + 1])) < 0 || type == DNS_T_SPF)
		return usage_error("'dns query': unknown type %s (A, AAAA, MX, TXT, PTR, CNAME, "
		    "NS, TLSA)", cli->pass_argv[optind + 1]);
	q.type = (uint16_t)type;
	d.timeout_ms = timeout;
	if ((ret = cli_dns_options(cli, &d, zone, resolver)) != 0) {
		config_free(&cli->cfg);
		return ret;
	}
	config_free(&cli->cfg);
	if (cli_dns_run(&d, query_step, &q, 0) < 0 || q.answer == NULL) {
		cli_dns_close(&d);
		return refuse("Cannot run the DNS event loop.");
	}
	printf("status: %s\n", dns_status_name(q.answer->status));
	printf("secure: %s\n", q.answer->secure ? "yes" : "no");
	printf("ttl: %u\n", (unsigned)q.answer->ttl);
	if (q.answer->why != NULL)
		printf("why: %s\n", q.answer->why);
	for (size_t i = 0; i < q.answer->n; i++)
		print_rr(&q.answer->rr[i]);
	ret = q.answer->status == DNS_OK || q.answer->status == DNS_NXDOMAIN ? 0 : EXIT_REFUSED;
	cli_dns_close(&d);
	return finish_output(ret);
}
