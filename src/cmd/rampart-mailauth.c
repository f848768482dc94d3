/*
 * rampart-mailauth — `rampart mailauth check`: the whole inbound check of one
 * message (SPF, DKIM, DMARC) as the mx listener would run it, printing the
 * Authentication-Results field it would add (RFC 8601).
 */
#include "cmd/rampart-cli.h"
#include "cmd/rampart-dns.h"
#include "lib/config.h"
#include "mailauth/mailauth.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char mailauth_usage[] =
    "usage: rampart mailauth check --ip IP --helo NAME --mail-from ADDR\n"
    "           [--authserv-id ID] [--dns-zone FILE | --resolver HOST@PORT] < MESSAGE\n";

/* Feeds stdin to the check; bare LF line ends become CRLF (files saved on Unix). */
static int
feed_stdin(struct mailauth *m)
{
	char in[65536], out[2 * sizeof(in)];
	bool cr = false;
	size_t n;
	while ((n = fread(in, 1, sizeof(in), stdin)) > 0) {
		size_t o = 0;
		for (size_t i = 0; i < n; i++) {
			if (in[i] == '\n' && !cr)
				out[o++] = '\r';
			out[o++] = in[i];
			cr = in[i] == '\r';
		}
		mailauth_feed(m, out, o);
	}
	return ferror(stdin) ? -1 : 0;
}

int
cli_mailauth_check(struct cli *cli)
{
	static const struct option opts[] = {
		{ "ip", required_argument, NULL, 'i' },
		{ "helo", required_argument, NULL, 'H' },
		{ "mail-from", required_argument, NULL, 'f' },
		{ "authserv-id", required_argument, NULL, 'a' },
		{ "dns-zone", required_argument, NULL, 'z' },
		{ "resolver", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *ip = NULL, *helo = NULL, *from = NULL, *id = NULL, *zone = NULL,
	    *resolver = NULL;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(cli->pass_argc, cli->pass_argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'i': ip = optarg; break;
		case 'H': helo = optarg; break;
		case 'f': from = optarg; break;
		case 'a': id = optarg; break;
		case 'z': zone = optarg; break;
		case 'r': resolver = optarg; break;
		case 'h':
			fputs(mailauth_usage, stdout);
			return finish_output(0);
		default:
			return usage_error("'mailauth check' does not take %s",
			    cli->pass_argv[optind - 1]);
		}
	}
	if (optind < cli->pass_argc)
		return usage_error("'mailauth check' takes the message on standard input, "
		    "not '%s'", cli->pass_argv[optind]);
	if (ip == NULL || helo == NULL || from == NULL)
		return usage_error("'mailauth check' needs --ip, --helo and --mail-from "
		    "(--mail-from '' for the null sender)");
	if (isatty(STDIN_FILENO))
		return usage_error("'mailauth check' reads the message on standard input");

	struct cli_dns d;
	int ret = cli_dns_options(cli, &d, zone, resolver);
	if (ret != 0)
		return ret;
	const char *error;
	struct dmarc_psl *psl = dmarc_psl_load(NULL, &error);
	if (psl == NULL) {
		cli_dns_close(&d);
		config_free(&cli->cfg);
		return refuse("Cannot read the Public Suffix List: %s.", error);
	}
	char host[256] = "localhost";
	if (id == NULL && cli->cfg != NULL)
		id = cli->cfg->authserv_id;
	if (id == NULL && gethostname(host, sizeof(host) - 1) == 0)
		id = host;
	struct mailauth_params p = {
		.ip = ip, .helo = helo, .mail_from = from, .authserv_id = id != NULL ? id : host,
		.now = time(NULL), .psl = psl, .dmarc_sample = -1,
	};
	struct mailauth *m = mailauth_new(&p, &error);
	if (m == NULL) {
		ret = usage_error("%s", error);
		goto out;
	}
	if (feed_stdin(m) < 0) {
		ret = refuse("Cannot read the message from standard input.");
		goto out;
	}
	mailauth_finish(m);
	if (cli_dns_run(&d, mailauth_step, m, 0) < 0) {
		ret = refuse("DNS could not be run.");
		goto out;
	}
	char *field = mailauth_auth_results(m);
	if (field == NULL) {
		ret = refuse("Out of memory.");
		goto out;
	}
	fputs(field, stdout);
	free(field);
	static const char *const verdicts[] = { "accept", "quarantine", "reject" };
	fprintf(stderr, "%s; disposition: %s\n", mailauth_summary(m),
	    verdicts[mailauth_verdict(m)]);
	ret = finish_output(0);
out:
	mailauth_free(&m);
	dmarc_psl_free(&psl);
	cli_dns_close(&d);
	config_free(&cli->cfg);
	return ret;
}
