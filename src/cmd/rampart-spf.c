/*
 * rampart-spf — the `rampart spf check` command: the SPF result (RFC 7208) of
 * a client address for a MAIL FROM or HELO identity, with DNS from a zone file,
 * a given server, the configured resolver, or the system's (rampart-dns.h).
 * The check itself is mailauth/spf.h; this file parses options and prints.
 *
 * Output: the result name alone on the first line, then "identity: ",
 * "domain: ", "reason: " lines, and "explanation: " for a fail.
 *
 * --batch FILE (for tests and bulk comparisons): one check per line of FILE,
 * fields separated by TABs: IP, SENDER (may be empty: the null path), HELO,
 * and optionally "helo" or "mailfrom" (the identity; mailfrom by default).
 * Prints one line per check: RESULT TAB EXPLANATION (empty unless fail) TAB
 * REASON. Empty lines and lines starting with "#" are skipped.
 *
 * Exit statuses: 0 when a result was computed (whatever it is), 1 when DNS
 * could not be set up or run, 2 for bad usage (one sentence on stderr).
 */
#include "cmd/rampart-cli.h"
#include "cmd/rampart-dns.h"
#include "lib/config.h"
#include "mailauth/spf.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --batch: the longest line read, and the most checks per file. */
#define SPF_BATCH_LINE_MAX 4096
#define SPF_BATCH_CHECKS_MAX 100000

static const char check_help[] =
    "Usage: rampart spf check --ip IP [--sender ADDRESS] [--helo NAME]\n"
    "                         [--identity mailfrom|helo] [--receiver NAME]\n"
    "                         [--dns-zone FILE | --resolver HOST[@PORT]] [--timeout MS]\n"
    "\n"
    "Computes the SPF result (RFC 7208) of a client address for the MAIL FROM\n"
    "address (--sender; empty or absent: the null path, checked as\n"
    "postmaster@HELO), or with --identity helo for the HELO name. Prints the\n"
    "result (pass, fail, softfail, neutral, none, temperror, permerror) on the\n"
    "first line, then the identity, the domain, the reason, and for a fail the\n"
    "explanation. --receiver is this host's name (the %{r} macro).\n"
    "DNS: the zone file, the server, else the configured resolver, else\n"
    "/etc/resolv.conf. Exit status: 0 when a result was computed, 1 when DNS could\n"
    "not be used, 2 for bad usage.\n"
    "Testing aid: --batch FILE runs one check per line (IP TAB SENDER TAB HELO\n"
    "[TAB helo|mailfrom]) and prints RESULT TAB EXPLANATION TAB REASON per line.\n";

static const struct option check_options[] = {
	{ "ip", required_argument, NULL, 'i' },
	{ "sender", required_argument, NULL, 's' },
	{ "helo", required_argument, NULL, 'H' },
	{ "receiver", required_argument, NULL, 'R' },
	{ "identity", required_argument, NULL, 'I' },
	{ "dns-zone", required_argument, NULL, 'z' },
	{ "resolver", required_argument, NULL, 'r' },
	{ "timeout", required_argument, NULL, 't' },
	{ "batch", required_argument, NULL, 'b' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

struct spf_options {
	const char *ip, *sender, *helo, *receiver, *zone, *resolver, *batch;
	bool helo_identity;
	unsigned timeout_ms;
};

static int
parse_options(struct cli *cli, struct spf_options *o)
{
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(cli->pass_argc, cli->pass_argv, ":h", check_options, NULL)) != -1) {
		switch (c) {
		case 'i': o->ip = optarg; break;
		case 's': o->sender = optarg; break;
		case 'H': o->helo = optarg; break;
		case 'R': o->receiver = optarg; break;
		case 'z': o->zone = optarg; break;
		case 'r': o->resolver = optarg; break;
		case 'b': o->batch = optarg; break;
		case 'I':
			if (strcmp(optarg, "helo") != 0 && strcmp(optarg, "mailfrom") != 0)
				return usage_error("--identity is helo or mailfrom");
			o->helo_identity = strcmp(optarg, "helo") == 0;
			break;
		case 't': {
			int ret = cli_dns_timeout_parse(optarg, &o->timeout_ms);
			if (ret != 0)
				return ret;
			break;
		}
		case 'h':
			fputs(check_help, stdout);
			return -1;
		case ':':
			return usage_error("'spf check': %s needs a value", cli->pass_argv[optind - 1]);
		default:
			return usage_error("'spf check' does not take the option %s",
			    cli->pass_argv[optind - 1]);
		}
	}
	if (optind < cli->pass_argc)
		return usage_error("'spf check' takes no argument '%s'", cli->pass_argv[optind]);
	if (o->batch != NULL)
		return o->ip == NULL && o->sender == NULL && o->helo == NULL ? 0 :
		    usage_error("--batch takes the addresses from its file, not --ip, --sender or --helo");
	if (o->ip == NULL)
		return usage_error("'spf check' needs --ip");
	if ((o->helo_identity || o->sender == NULL || o->sender[0] == '\0') &&
	    (o->helo == NULL || o->helo[0] == '\0'))
		return usage_error("'spf check' needs --helo to check the HELO identity or the "
		    "null path");
	return 0;
}

static struct spf_check *
check_new(const char *ip, const char *sender, const char *helo, const char *receiver,
    bool helo_identity, const char **error_r)
{
	return helo_identity ? spf_check_new_helo(ip, helo, receiver, error_r) :
	    spf_check_new_mailfrom(ip, helo, sender, receiver, error_r);
}

/* Splits line at TABs into at most max fields; returns how many. */
static int
split_tabs(char *line, char **fields, int max)
{
	int n = 0;

	fields[n++] = line;
	for (char *p = line; *p != '\0' && n < max; p++) {
		if (*p == '\t') {
			*p = '\0';
			fields[n++] = p + 1;
		}
	}
	return n;
}

static int
run_batch(struct cli_dns *d, const struct spf_options *o)
{
	FILE *f = fopen(o->batch, "r");
	char line[SPF_BATCH_LINE_MAX];
	unsigned lineno = 0, checks = 0;

	if (f == NULL)
		return usage_error("cannot read %s: %s", o->batch, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL) {
		char *fields[4];
		const char *error = NULL;
		size_t len = strlen(line);

		lineno++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		else if (!feof(f)) {
			fclose(f);
			return usage_error("%s, line %u: longer than %d octets", o->batch, lineno,
			    SPF_BATCH_LINE_MAX - 2);
		}
		if (line[0] == '\0' || line[0] == '#')
			continue;
		int n = split_tabs(line, fields, 4);
		if (n < 3 || ++checks > SPF_BATCH_CHECKS_MAX ||
		    (n == 4 && strcmp(fields[3], "helo") != 0 && strcmp(fields[3], "mailfrom") != 0)) {
			fclose(f);
			return usage_error("%s, line %u: expected IP, SENDER, HELO [, helo|mailfrom] "
			    "separated by tabs (at most %d lines)", o->batch, lineno,
			    SPF_BATCH_CHECKS_MAX);
		}
		bool helo_identity = n == 4 && strcmp(fields[3], "helo") == 0;
		struct spf_check *c = check_new(fields[0], fields[1], fields[2], o->receiver,
		    helo_identity, &error);
		if (c == NULL) {
			printf("error\t\t%s\n", error);
			continue;
		}
		if (cli_dns_run(d, spf_check_step, c, 0) < 0) {
			spf_check_free(&c);
			fclose(f);
			return refuse("Cannot run the DNS event loop.");
		}
		const char *exp = spf_check_explanation(c);
		printf("%s\t%s\t%s\n", spf_result_name(spf_check_result(c)), exp != NULL ? exp : "",
		    spf_check_reason(c));
		spf_check_free(&c);
	}
	fclose(f);
	return 0;
}

int
cli_spf_check(struct cli *cli)
{
	struct spf_options o = { 0 };
	struct cli_dns d = { 0 };
	struct spf_check *c = NULL;
	const char *error = NULL;
	int ret;

	if ((ret = parse_options(cli, &o)) != 0)
		return ret < 0 ? finish_output(0) : ret;
	/* The address is checked before DNS is set up: a typo is a usage error. */
	if (o.batch == NULL &&
	    (c = check_new(o.ip, o.sender, o.helo, o.receiver, o.helo_identity, &error)) == NULL)
		return usage_error("--ip %s: %s", o.ip, error);
	d.timeout_ms = o.timeout_ms;
	if ((ret = cli_dns_options(cli, &d, o.zone, o.resolver)) != 0) {
		config_free(&cli->cfg);
		spf_check_free(&c);
		return ret;
	}
	config_free(&cli->cfg);
	if (o.batch != NULL) {
		ret = run_batch(&d, &o);
		cli_dns_close(&d);
		return finish_output(ret);
	}
	if (cli_dns_run(&d, spf_check_step, c, 0) < 0) {
		spf_check_free(&c);
		cli_dns_close(&d);
		return refuse("Cannot run the DNS event loop.");
	}
	const char *exp = spf_check_explanation(c);
	printf("%s\n", spf_result_name(spf_check_result(c)));
	printf("identity: %s\n", spf_check_identity(c));
	printf("domain: %s\n", spf_check_domain(c));
	printf("reason: %s\n", spf_check_reason(c));
	if (exp != NULL)
		printf("explanation: %s\n", exp);
	spf_check_free(&c);
	cli_dns_close(&d);
	return finish_output(0);
}
