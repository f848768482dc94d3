/*
 * rampart-access — the CLI commands that say who may log in, from where, and
 * send as whom, and that show and lift the guard's blocks:
 *
 *   user set ADDRESS KEY=VALUE...   smtp-auth|imap|pop3=on|off|default,
 *                                   networks=CIDR,... (or "any"), enabled=yes|no
 *   user show ADDRESS
 *   domain set DOMAIN KEY=VALUE...  smtp-auth|imap|pop3=on|off (the users' default)
 *   domain show DOMAIN
 *   sendas add|del USER ADDRESS     ADDRESS may be @domain (the whole domain)
 *   sendas list [USER]
 *   guard list                      active blocks, soonest expiry last
 *   guard unblock ADDRESS|CIDR      lifts every block that covers or lies in it
 *
 * The running daemon notices a lifted block within a second (it polls the
 * database's data_version); switches and networks apply to the next login.
 */
#include "cmd/rampart-cli.h"
#include "auth/directory.h"
#include "lib/clock.h"
#include "lib/netaddr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *const proto_keys[DIRECTORY_PROTO_COUNT] = { "smtp-auth", "imap", "pop3" };

static int
proto_key(const char *key, size_t len)
{
	for (int p = 0; p < DIRECTORY_PROTO_COUNT; p++)
		if (strlen(proto_keys[p]) == len && strncmp(proto_keys[p], key, len) == 0)
			return p;
	return -1;
}

/* on/off/default → 1/0/-1; -2 when it is none of them (default only if allowed). */
static int
switch_value(const char *v, bool allow_default)
{
	if (strcmp(v, "on") == 0 || strcmp(v, "yes") == 0)
		return 1;
	if (strcmp(v, "off") == 0 || strcmp(v, "no") == 0)
		return 0;
	if (allow_default && strcmp(v, "default") == 0)
		return -1;
	return -2;
}

int
cli_user_set(struct cli *cli)
{
	const char *error, *addr = cli->args[0];
	/* Check every pair before changing anything. */
	for (int i = 1; i < cli->nargs; i++) {
		const char *eq = strchr(cli->args[i], '=');
		if (eq == NULL)
			return usage_error("expected KEY=VALUE, not '%s'", cli->args[i]);
		size_t klen = (size_t)(eq - cli->args[i]);
		int p = proto_key(cli->args[i], klen);
		if (p >= 0 && switch_value(eq + 1, true) == -2)
			return usage_error("%.*s takes on, off or default", (int)klen, cli->args[i]);
		if (p < 0 && strncmp(cli->args[i], "enabled=", 8) == 0 &&
		    switch_value(eq + 1, false) == -2)
			return usage_error("enabled takes yes or no");
		if (p < 0 && strncmp(cli->args[i], "enabled=", 8) != 0 &&
		    strncmp(cli->args[i], "networks=", 9) != 0)
			return usage_error("unknown setting '%.*s' (smtp-auth, imap, pop3, networks, "
			    "enabled)", (int)klen, cli->args[i]);
	}
	for (int i = 1; i < cli->nargs; i++) {
		const char *a = cli->args[i], *v = strchr(a, '=') + 1;
		int p = proto_key(a, (size_t)(v - 1 - a)), rc;
		if (p >= 0)
			rc = directory_user_set_protocol(cli->dir, addr, (enum directory_protocol)p,
			    switch_value(v, true), &error);
		else if (strncmp(a, "enabled=", 8) == 0)
			rc = directory_user_set_enabled(cli->dir, addr, switch_value(v, false) == 1,
			    &error);
		else
			rc = directory_user_set_networks(cli->dir, addr,
			    strcmp(v, "any") == 0 ? "" : v, &error);
		if (rc < 0)
			return refuse("%s", error);
	}
	return 0;
}

int
cli_user_show(struct cli *cli)
{
	struct directory_login l;
	const char *error;
	int rc = directory_login_get(cli->dir, cli->args[0], &l, &error);
	if (rc < 0)
		return refuse("%s", error);
	if (rc == 0)
		return refuse("No such user: %s.", cli->args[0]);
	printf("user %s\n", l.address);
	printf("enabled %s\n", l.enabled ? "yes" : "no");
	for (int p = 0; p < DIRECTORY_PROTO_COUNT; p++)
		printf("%s %s%s\n", proto_keys[p], l.protocol[p] ? "on" : "off",
		    l.user_protocol[p] < 0 ? " (domain default)" : "");
	printf("networks %s\n", l.networks[0] != '\0' ? l.networks : "any");
	directory_login_free(&l);
	return finish_output(0);
}

int
cli_domain_set(struct cli *cli)
{
	const char *error;
	for (int i = 1; i < cli->nargs; i++) {
		const char *eq = strchr(cli->args[i], '=');
		int p = eq != NULL ? proto_key(cli->args[i], (size_t)(eq - cli->args[i])) : -1;
		if (p < 0 || switch_value(eq + 1, false) == -2)
			return usage_error("expected smtp-auth, imap or pop3 =on|off, not '%s'",
			    cli->args[i]);
	}
	for (int i = 1; i < cli->nargs; i++) {
		const char *eq = strchr(cli->args[i], '=');
		int p = proto_key(cli->args[i], (size_t)(eq - cli->args[i]));
		if (directory_domain_set_protocol(cli->dir, cli->args[0], (enum directory_protocol)p,
		    switch_value(eq + 1, false) == 1, &error) < 0)
			return refuse("%s", error);
	}
	return 0;
}

int
cli_domain_show(struct cli *cli)
{
	bool on[DIRECTORY_PROTO_COUNT];
	const char *error;
	int rc = directory_domain_get_protocols(cli->dir, cli->args[0], on, &error);
	if (rc < 0)
		return refuse("%s", error);
	if (rc == 0)
		return refuse("No such domain: %s.", cli->args[0]);
	printf("domain %s\n", cli->args[0]);
	for (int p = 0; p < DIRECTORY_PROTO_COUNT; p++)
		printf("%s %s\n", proto_keys[p], on[p] ? "on" : "off");
	return finish_output(0);
}

int
cli_sendas_add(struct cli *cli)
{
	const char *error;
	return directory_send_as_add(cli->dir, cli->args[0], cli->args[1], &error) < 0 ?
	    refuse("%s", error) : 0;
}

int
cli_sendas_del(struct cli *cli)
{
	const char *error;
	return directory_send_as_del(cli->dir, cli->args[0], cli->args[1], &error) < 0 ?
	    refuse("%s", error) : 0;
}

static int
print_pair(const char *a, const char *b, void *ctx)
{
	printf("%s %s\n", a, b);
	return 0;
}

int
cli_sendas_list(struct cli *cli)
{
	const char *error;
	if (directory_send_as_list(cli->dir, cli->nargs > 0 ? cli->args[0] : NULL, print_pair,
	    NULL, &error) < 0)
		return refuse("%s", error);
	return finish_output(0);
}

static int
print_block(const char *network, int64_t until_ms, unsigned level, void *ctx)
{
	if (until_ms <= *(const int64_t *)ctx)
		return 0;   /* expired: the daemon prunes it */
	char when[CLOCK_TEXT_MAX];
	clock_format(until_ms, false, when, sizeof(when));
	printf("%s until %s level %u\n", network, when, level);
	return 0;
}

int
cli_guard_list(struct cli *cli)
{
	const char *error;
	int64_t now = clock_wall_ms();
	if (directory_block_list(cli->dir, print_block, &now, &error) < 0)
		return refuse("%s", error);
	return finish_output(0);
}

struct unblock_ctx {
	struct cidr target;
	char (*hits)[CIDR_TEXT_MAX];
	size_t n;
};

/* Overlap: one contains the other (prefixes are nested or disjoint). */
static bool
cidr_overlap(const struct cidr *a, const struct cidr *b)
{
	return cidr_contains(a, &b->net) || cidr_contains(b, &a->net);
}

static int
collect_overlapping(const char *network, int64_t until_ms, unsigned level, void *ctx)
{
	struct unblock_ctx *u = ctx;
	struct cidr c;
	const char *error;
	if (cidr_parse(network, &c, &error) == 0 && cidr_overlap(&c, &u->target)) {
		void *p = realloc(u->hits, (u->n + 1) * sizeof(*u->hits));
		if (p == NULL)
			return 1;
		u->hits = p;
		snprintf(u->hits[u->n++], CIDR_TEXT_MAX, "%s", network);
	}
	return 0;
}

int
cli_guard_unblock(struct cli *cli)
{
	struct unblock_ctx u = { 0 };
	const char *error;
	if (cidr_parse(cli->args[0], &u.target, &error) < 0)
		return usage_error("'%s' is not an address or network: %s", cli->args[0], error);
	if (directory_block_list(cli->dir, collect_overlapping, &u, &error) < 0)
		return refuse("%s", error);
	int lifted = 0, ret = 0;
	for (size_t i = 0; i < u.n && ret == 0; i++) {
		int rc = directory_block_del(cli->dir, u.hits[i], &error);
		if (rc < 0)
			ret = refuse("%s", error);
		else if (rc > 0) {
			printf("unblocked %s\n", u.hits[i]);
			lifted++;
		}
	}
	free(u.hits);
	if (ret == 0 && lifted == 0)
		return refuse("No block covers %s.", cli->args[0]);
	return ret != 0 ? ret : finish_output(0);
}
