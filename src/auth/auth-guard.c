/*
 * auth-guard — the guard inside the auth process: its configuration from the
 * settings, its state restored from the directory at start, every block,
 * lockout and familiar pair it reports persisted and audited, and a tick that
 * notices `rampart guard unblock` (a commit by another connection changes
 * PRAGMA data_version), reopens a rotated audit log and prunes expired rows.
 */
#include "auth/auth-private.h"
#include "auth/audit.h"
#include "auth/directory.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/netaddr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#define PRUNE_INTERVAL_MS (10 * 60 * 1000)

void
auth_audit(struct auth_ctx *a, const struct audit_event *ev)
{
	const char *error;
	if (a->audit != NULL && audit_write(a->audit, ev, &error) < 0)
		log_error("auth: audit log: %s", error);
	if (ev->result != NULL && strcmp(ev->result, "fail") == 0)
		audit_log_failure_line(ev);
}

void
auth_guard_events(struct auth_ctx *a, const struct guard_events *ev)
{
	const char *error;
	for (size_t i = 0; i < ev->n; i++) {
		const struct guard_event *e = &ev->v[i];
		char net[CIDR_TEXT_MAX];
		cidr_format(&e->key, net, sizeof(net));
		switch (e->type) {
		case GUARD_EV_BLOCK: {
			if (directory_block_put(a->dir, net, e->until_ms, e->level, &error) < 0)
				log_error("auth: cannot record the block of %s: %s", net, error);
			struct audit_event ae = { .event = "block", .network = net,
			    .until = (e->until_ms + 999) / 1000 };
			auth_audit(a, &ae);
			log_warn("auth: blocked %s until %lld (level %u)", net,
			    (long long)(e->until_ms / 1000), e->level);
			break;
		}
		case GUARD_EV_LOCKOUT: {
			struct audit_event ae = { .event = "lockout", .user = e->user, .network = net,
			    .until = (e->until_ms + 999) / 1000 };
			auth_audit(a, &ae);
			log_warn("auth: %s locked out for unfamiliar addresses until %lld", e->user,
			    (long long)(e->until_ms / 1000));
			break;
		}
		case GUARD_EV_KNOWN:
			if (directory_known_put(a->dir, e->user, net, e->until_ms, &error) < 0)
				log_error("auth: cannot record a familiar address: %s", error);
			break;
		}
	}
}

static int
load_block(const char *network, int64_t until_ms, unsigned level, void *ctx)
{
	struct auth_ctx *a = ctx;
	struct cidr key;
	const char *error;
	if (cidr_parse(network, &key, &error) < 0 ||
	    guard_load_block(a->guard, clock_wall_ms(), &key, until_ms, level) < 0)
		log_warn("auth: ignoring stored block %s", network);
	return 0;
}

static int
load_known(const char *user, const char *host, int64_t until_ms, void *ctx)
{
	struct auth_ctx *a = ctx;
	struct cidr key;
	const char *error;
	if (cidr_parse(host, &key, &error) < 0 ||
	    guard_load_known(a->guard, clock_wall_ms(), user, &key, until_ms) < 0)
		log_warn("auth: ignoring stored familiar address %s", host);
	return 0;
}

/* ---- blocks lifted by the CLI ---- */

struct stored_blocks {
	char (*nets)[CIDR_TEXT_MAX];
	size_t n, cap;
	bool failed;
};

static int
collect_block(const char *network, int64_t until_ms, unsigned level, void *ctx)
{
	struct stored_blocks *sb = ctx;
	if (sb->n == sb->cap) {
		size_t cap = sb->cap ? sb->cap * 2 : 64;
		void *p = realloc(sb->nets, cap * sizeof(*sb->nets));
		if (p == NULL) {
			sb->failed = true;
			return 1;
		}
		sb->nets = p;
		sb->cap = cap;
	}
	snprintf(sb->nets[sb->n++], CIDR_TEXT_MAX, "%s", network);
	return 0;
}

struct lift_ctx {
	struct auth_ctx *a;
	struct stored_blocks *sb;
	struct cidr lift[64];
	size_t nlift;
};

static int
find_lifted(const struct cidr *key, int64_t until_ms, unsigned level, void *ctx)
{
	struct lift_ctx *lc = ctx;
	char net[CIDR_TEXT_MAX];
	cidr_format(key, net, sizeof(net));
	for (size_t i = 0; i < lc->sb->n; i++)
		if (strcmp(lc->sb->nets[i], net) == 0)
			return 0;
	lc->lift[lc->nlift++] = *key;
	return lc->nlift == sizeof(lc->lift) / sizeof(lc->lift[0]);
}

/* A block the guard holds but the directory no longer has was lifted by an
 * administrator: lift it here too. */
static void
sync_unblocks(struct auth_ctx *a)
{
	struct stored_blocks sb = { 0 };
	const char *error;
	if (directory_block_list(a->dir, collect_block, &sb, &error) < 0 || sb.failed) {
		free(sb.nets);
		return;
	}
	struct lift_ctx lc = { .a = a, .sb = &sb };
	guard_blocks_foreach(a->guard, clock_wall_ms(), find_lifted, &lc);
	for (size_t i = 0; i < lc.nlift; i++) {
		char net[CIDR_TEXT_MAX];
		cidr_format(&lc.lift[i], net, sizeof(net));
		guard_unblock(a->guard, clock_wall_ms(), &lc.lift[i]);
		struct audit_event ae = { .event = "unblock", .network = net, .reason = "admin" };
		auth_audit(a, &ae);
		log_info("auth: %s unblocked by an administrator", net);
	}
	/* Lifting a prefix lifts the blocks inside it too; those the administrator
	 * kept (still in the directory) come back. */
	if (lc.nlift > 0 && directory_block_list(a->dir, load_block, a, &error) < 0)
		log_warn("auth: re-reading blocks: %s", error);
	free(sb.nets);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct auth_ctx *a = arg;
	int64_t v = directory_data_version(a->dir);
	if (v >= 0 && v != a->data_version) {
		a->data_version = v;
		sync_unblocks(a);
	}
	if (a->audit != NULL)
		audit_reopen_if_rotated(a->audit);
	int64_t now = clock_wall_ms();
	if (now - a->last_prune_ms > PRUNE_INTERVAL_MS) {
		const char *error;
		a->last_prune_ms = now;
		if (directory_guard_prune(a->dir, now, &error) < 0)
			log_warn("auth: pruning guard state: %s", error);
	}
}

int
auth_guard_init(struct auth_ctx *a, const char **error_r)
{
	const struct config *c = a->cfg;
	struct guard_config gc = {
		.window_ms = c->guard_window * 1000,
		.attempts = (uint32_t)c->guard_attempts,
		.failures = (uint32_t)c->guard_failures,
		.tarpit_base_ms = c->guard_tarpit_base,
		.tarpit_max_ms = c->guard_tarpit_max,
		.block_ms = c->guard_block_time * 1000,
		.block_max_ms = c->guard_block_max * 1000,
		.lockout_failures = (uint32_t)c->guard_lockout_failures,
		.lockout_ms = c->guard_lockout_time * 1000,
		.lockout_max_ms = c->guard_lockout_max * 1000,
		.known_ttl_ms = c->guard_known_ttl * 1000,
		.failure_delay_ms = c->auth_failure_delay,
		.max_entries = (uint32_t)c->guard_max_entries,
	};
	if (gc.block_max_ms < gc.block_ms)
		gc.block_max_ms = gc.block_ms;
	if (gc.lockout_max_ms < gc.lockout_ms)
		gc.lockout_max_ms = gc.lockout_ms;
	a->guard = guard_new(&gc);
	if (a->guard == NULL) {
		*error_r = "out of memory for the guard";
		return -1;
	}
	a->audit = audit_open(c->audit_log, error_r);
	if (a->audit == NULL)
		return -1;
	if (directory_block_list(a->dir, load_block, a, error_r) < 0 ||
	    directory_known_list(a->dir, clock_wall_ms(), load_known, a, error_r) < 0)
		return -1;
	a->data_version = directory_data_version(a->dir);
	a->last_prune_ms = 0;
	a->tick = event_new(a->base, -1, EV_PERSIST, on_tick, a);
	struct timeval second = { 1, 0 };
	if (a->tick == NULL || event_add(a->tick, &second) < 0) {
		*error_r = "cannot start the guard's timer";
		return -1;
	}
	return 0;
}

void
auth_guard_deinit(struct auth_ctx *a)
{
	if (a->tick != NULL)
		event_free(a->tick);
	a->tick = NULL;
	guard_free(&a->guard);
	audit_close(&a->audit);
}
