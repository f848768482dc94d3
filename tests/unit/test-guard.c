/*
 * Unit tests for auth/guard, on a simulated clock: a spraying neighbour gets its
 * hosts and its /24 blocked while the known user next door keeps logging in;
 * account lockout spares known addresses; a repeated wrong password counts once;
 * tarpit delays, block and lockout durations (exact expiry, doubling, caps,
 * decay); unblock; IPv6 tiers; persistence round trips; bounded memory under a
 * flood of IPv6 /64s; known-pair expiry and its persistence events.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
#include <malloc.h>
#define HAVE_MALLINFO2 1
#endif

#include "auth/guard.h"

#define T0 1700000000000LL
#define MIN (60 * 1000LL)

static const struct guard_config base_cfg = {
	.window_ms = 10 * MIN,
	.attempts = 60,
	.failures = 10,
	.tarpit_base_ms = 1000,
	.tarpit_max_ms = 15000,
	.block_ms = 5 * MIN,
	.block_max_ms = 24 * 60 * MIN,
	.lockout_failures = 5,
	.lockout_ms = 15 * MIN,
	.lockout_max_ms = 24 * 60 * MIN,
	.known_ttl_ms = 30 * 24 * 60 * MIN,
	.failure_delay_ms = 2000,
	.max_entries = 1024,
};

static struct netaddr
ip(const char *s)
{
	struct netaddr a;
	if (netaddr_parse(s, &a) != 0)
		fail_msg("bad address in test: %s", s);
	return a;
}

static struct cidr
net(const char *s)
{
	struct cidr c;
	const char *error;
	if (cidr_parse(s, &c, &error) != 0)
		fail_msg("bad prefix in test: %s", s);
	return c;
}

static const uint8_t *
fp(unsigned n)
{
	static uint8_t b[GUARD_FINGERPRINT_SIZE];
	memset(b, 0x5a, sizeof(b));
	memcpy(b, &n, sizeof(n));
	return b;
}

static struct guard_decision
check(struct guard *g, int64_t now, const char *addr, const char *user, struct guard_events *ev)
{
	struct guard_decision d;
	struct guard_events local;
	struct netaddr a = ip(addr);

	guard_check(g, now, &a, user, &d, ev != NULL ? ev : &local);
	return d;
}

static enum guard_verdict
verdict(struct guard *g, int64_t now, const char *addr, const char *user)
{
	struct guard_events ev;
	struct guard_decision d = check(g, now, addr, user, &ev);
	assert_int_equal(ev.n, 0);
	return d.verdict;
}

static size_t
failed(struct guard *g, int64_t now, const char *addr, const char *user, bool exists,
     unsigned fpn, struct guard_events *ev)
{
	struct guard_events local;
	struct netaddr a = ip(addr);

	if (ev == NULL)
		ev = &local;
	guard_failure(g, now, &a, user, exists, fp(fpn), ev);
	return ev->n;
}

static void
succeed(struct guard *g, int64_t now, const char *addr, const char *user, struct guard_events *ev)
{
	struct guard_events local;
	struct netaddr a = ip(addr);

	guard_success(g, now, &a, user, ev != NULL ? ev : &local);
}

static void
expect_event(const struct guard_event *e, enum guard_event_type type, const char *key,
	     const char *user, int64_t until, unsigned level)
{
	char buf[CIDR_TEXT_MAX];

	assert_int_equal(e->type, type);
	cidr_format(&e->key, buf, sizeof(buf));
	assert_string_equal(buf, key);
	assert_string_equal(e->user, user);
	assert_int_equal(e->until_ms, until);
	assert_int_equal(e->level, level);
}

/* Collects guard_blocks_foreach() output as sorted "net until level" lines. */
struct block_list {
	char lines[64][96];
	size_t n;
	size_t stop_after; /* 0: never stop */
};

static int
collect_block(const struct cidr *key, int64_t until_ms, unsigned level, void *ctx)
{
	struct block_list *bl = ctx;
	char buf[CIDR_TEXT_MAX];

	assert_true(bl->n < 64);
	cidr_format(key, buf, sizeof(buf));
	snprintf(bl->lines[bl->n++], sizeof(bl->lines[0]), "%s %lld %u", buf,
		 (long long)until_ms, level);
	return bl->stop_after != 0 && bl->n >= bl->stop_after;
}

static int
cmp_line(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void
blocks(struct guard *g, int64_t now, struct block_list *bl)
{
	memset(bl, 0, sizeof(*bl));
	guard_blocks_foreach(g, now, collect_block, bl);
	qsort(bl->lines, bl->n, sizeof(bl->lines[0]), cmp_line);
}

static void
test_reasons(void **state)
{
	assert_string_equal(guard_verdict_reason(GUARD_RATE_LIMITED), "rate-limited");
	assert_string_equal(guard_verdict_reason(GUARD_BLOCKED), "blocked");
	assert_string_equal(guard_verdict_reason(GUARD_LOCKED_OUT), "locked-out");
	assert_string_equal(guard_verdict_reason(GUARD_ALLOW), "allowed");
}

static void
test_host_key(void **state)
{
	struct cidr k;
	char buf[CIDR_TEXT_MAX];
	struct netaddr a = ip("192.0.2.77");

	guard_host_key(&a, &k);
	cidr_format(&k, buf, sizeof(buf));
	assert_string_equal(buf, "192.0.2.77/32");
	a = ip("2001:db8:1:2:3:4:5:6");
	guard_host_key(&a, &k);
	cidr_format(&k, buf, sizeof(buf));
	assert_string_equal(buf, "2001:db8:1:2::/64");
	a = ip("::ffff:10.1.2.3");
	guard_host_key(&a, &k);
	cidr_format(&k, buf, sizeof(buf));
	assert_string_equal(buf, "10.1.2.3/32");
}

/*
 * A password spray from 127.0.0.2..20 (a new name each time): each host gets 10
 * failures and is blocked; the 80th failure in the /24 (host .9's tenth) blocks
 * the /24 too, and .10–.20 never get to try. Alice at 127.0.0.1, known, gets in
 * throughout; bob at 127.0.0.1, not known, is caught by the /24.
 */
static void
test_spray_blocks_neighbours_not_known_user(void **state)
{
	struct guard *g = guard_new(&base_cfg);
	struct guard_events ev;
	struct guard_decision d;
	const int64_t now = T0 + 1000;
	char addr[32], user[32];
	unsigned fpn = 0, host_events = 0, net_events = 0;

	succeed(g, T0, "127.0.0.1", "alice", &ev);
	assert_int_equal(ev.n, 1);
	expect_event(&ev.v[0], GUARD_EV_KNOWN, "127.0.0.1/32", "alice",
		     T0 + base_cfg.known_ttl_ms, 0);

	for (unsigned h = 2; h <= 20; h++) {
		unsigned failures = 0;
		snprintf(addr, sizeof(addr), "127.0.0.%u", h);
		for (;;) {
			snprintf(user, sizeof(user), "user%u", fpn);
			d = check(g, now, addr, user, &ev);
			assert_int_equal(ev.n, 0);
			if (d.verdict != GUARD_ALLOW) {
				assert_int_equal(d.verdict, GUARD_BLOCKED);
				assert_int_equal(d.delay_ms, 15000);
				break;
			}
			failures++;
			failed(g, now, addr, user, false, fpn++, &ev);
			/* The neighbour next door, every other time (40 times in all: her
			 * own host's budget of 60 attempts applies to her too). */
			if (fpn % 2 == 0) {
				struct guard_decision da = check(g, now, "127.0.0.1", "alice", NULL);
				assert_int_equal(da.verdict, GUARD_ALLOW);
				assert_true(da.known);
			}
			for (size_t i = 0; i < ev.n; i++) {
				assert_int_equal(ev.v[i].type, GUARD_EV_BLOCK);
				if (ev.v[i].key.bits == 32) {
					char key[40];
					snprintf(key, sizeof(key), "%s/32", addr);
					expect_event(&ev.v[i], GUARD_EV_BLOCK, key, "", now + 5 * MIN, 1);
					host_events++;
				} else {
					expect_event(&ev.v[i], GUARD_EV_BLOCK, "127.0.0.0/24", "",
						     now + 5 * MIN, 1);
					net_events++;
					assert_int_equal(h, 9);
				}
			}
		}
		assert_int_equal(failures, h <= 9 ? 10 : 0);
	}
	assert_int_equal(host_events, 8);
	assert_int_equal(net_events, 1);

	struct block_list bl;
	blocks(g, now, &bl);
	assert_int_equal(bl.n, 9);
	char want[96];
	snprintf(want, sizeof(want), "127.0.0.0/24 %lld 1", (long long)(now + 5 * MIN));
	assert_string_equal(bl.lines[0], want);
	for (unsigned h = 2; h <= 9; h++) {
		snprintf(want, sizeof(want), "127.0.0.%u/32 %lld 1", h, (long long)(now + 5 * MIN));
		assert_string_equal(bl.lines[h - 1], want);
	}

	/* The known pair is exempt from the /24, nobody else is. */
	d = check(g, now, "127.0.0.1", "alice", NULL);
	assert_int_equal(d.verdict, GUARD_ALLOW);
	assert_true(d.known);
	assert_int_equal(verdict(g, now, "127.0.0.1", "bob"), GUARD_BLOCKED);
	assert_int_equal(verdict(g, now, "127.0.0.1", NULL), GUARD_BLOCKED);
	assert_int_equal(verdict(g, now, "127.0.0.2", "alice"), GUARD_BLOCKED);
	assert_int_equal(verdict(g, now, "127.0.0.200", "carol"), GUARD_BLOCKED);
	/* The /16 took 80 of its 320: the next /24 is fine. */
	assert_int_equal(verdict(g, now, "127.0.1.5", "carol"), GUARD_ALLOW);
	assert_int_equal(verdict(g, now, "::ffff:127.0.1.5", "carol"), GUARD_ALLOW);
	assert_int_equal(verdict(g, now, "::ffff:127.0.0.5", "carol"), GUARD_BLOCKED);

	/* Unknown user names left no account behind. */
	struct guard_stats st;
	guard_stats(g, &st);
	assert_int_equal(st.accounts, 0);
	guard_free(&g);
	assert_null(g);
}

/* The host tier applies to known pairs too, but their failures do not lock the
 * account: alice mistyping at home gets her own host blocked, nothing more. */
static void
test_known_pair_host_tier_still_applies(void **state)
{
	struct guard *g = guard_new(&base_cfg);
	struct guard_events ev;
	int64_t now = T0;

	succeed(g, now, "192.0.2.10", "alice", NULL);
	for (unsigned i = 0; i < 9; i++) {
		assert_int_equal(verdict(g, now, "192.0.2.10", "alice"), GUARD_ALLOW);
		assert_int_equal(failed(g, now, "192.0.2.10", "alice", true, i, NULL), 0);
	}
	assert_int_equal(failed(g, now, "192.0.2.10", "alice", true, 9, &ev), 1);
	expect_event(&ev.v[0], GUARD_EV_BLOCK, "192.0.2.10/32", "", now + 5 * MIN, 1);
	assert_int_equal(verdict(g, now, "192.0.2.10", "alice"), GUARD_BLOCKED);
	/* No lockout: another address may still try alice. */
	assert_int_equal(verdict(g, now, "198.51.100.1", "alice"), GUARD_ALLOW);
	/* The prefixes were not charged: 192.0.2.11 has its whole budget. */
	struct block_list bl;
	blocks(g, now, &bl);
	assert_int_equal(bl.n, 1);
	guard_free(&g);
}

/*
 * An unfamiliar address guessing alice's password locks the account after
 * lockout_failures distinct wrong passwords, for every unfamiliar address; the
 * known one still gets in. Lock durations: exact expiry, doubling, cap, decay.
 */
static void
test_lockout(void **state)
{
	struct guard_config cfg = base_cfg;
	cfg.lockout_max_ms = 40 * MIN;
	struct guard *g = guard_new(&cfg);
	struct guard_events ev;
	struct guard_decision d;
	int64_t now = T0;
	unsigned fpn = 0;

	succeed(g, now, "127.0.0.1", "alice", NULL);
	now += 1000;
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(verdict(g, now, "198.51.100.7", "alice"), GUARD_ALLOW);
		assert_int_equal(failed(g, now, "198.51.100.7", "alice", true, fpn++, NULL), 0);
	}
	assert_int_equal(verdict(g, now, "198.51.100.7", "alice"), GUARD_ALLOW);
	assert_int_equal(failed(g, now, "198.51.100.7", "alice", true, fpn++, &ev), 1);
	expect_event(&ev.v[0], GUARD_EV_LOCKOUT, "198.51.100.7/32", "alice", now + 15 * MIN, 1);
	int64_t until = ev.v[0].until_ms;

	d = check(g, now, "198.51.100.7", "alice", NULL);
	assert_int_equal(d.verdict, GUARD_LOCKED_OUT);
	assert_int_equal(d.delay_ms, 2000);
	assert_false(d.known);
	assert_int_equal(verdict(g, now, "203.0.113.9", "alice"), GUARD_LOCKED_OUT);
	d = check(g, now, "127.0.0.1", "alice", NULL);
	assert_int_equal(d.verdict, GUARD_ALLOW);
	assert_true(d.known);
	/* Other users from the same address are not affected (5 of 10 host failures). */
	assert_int_equal(verdict(g, now, "198.51.100.7", "bob"), GUARD_ALLOW);

	/* Expires at exactly until. */
	assert_int_equal(verdict(g, until - 1, "203.0.113.9", "alice"), GUARD_LOCKED_OUT);
	assert_int_equal(verdict(g, until, "203.0.113.9", "alice"), GUARD_ALLOW);

	/* Second lock: twice as long; third: capped at 40 minutes. */
	now = until;
	static const int64_t want[] = { 30 * MIN, 40 * MIN, 40 * MIN };
	static const char *const from[] = { "198.51.101.7", "198.51.102.7", "198.51.103.7" };
	for (unsigned round = 0; round < 3; round++) {
		for (unsigned i = 0; i < 4; i++)
			assert_int_equal(failed(g, now, from[round], "alice", true, fpn++, NULL), 0);
		assert_int_equal(failed(g, now, from[round], "alice", true, fpn++, &ev), 1);
		char key[40];
		snprintf(key, sizeof(key), "%s/32", from[round]);
		expect_event(&ev.v[0], GUARD_EV_LOCKOUT, key, "alice", now + want[round], round + 2);
		/* While locked, further failures (in flight when it locked) change nothing. */
		assert_int_equal(failed(g, now + 1, from[round], "alice", true, fpn++, NULL), 0);
		now += want[round];
	}
	/* Quiet for lockout_max after the last lock ended: back to the first duration. */
	now += 40 * MIN;
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(failed(g, now, "198.51.104.7", "alice", true, fpn++, NULL), 0);
	assert_int_equal(failed(g, now, "198.51.104.7", "alice", true, fpn++, &ev), 1);
	expect_event(&ev.v[0], GUARD_EV_LOCKOUT, "198.51.104.7/32", "alice", now + 15 * MIN, 1);

	/* Administrative unlock. */
	assert_int_equal(guard_unlock(g, now, "alice"), 1);
	assert_int_equal(verdict(g, now, "198.51.104.8", "alice"), GUARD_ALLOW);
	assert_int_equal(guard_unlock(g, now, "alice"), 0);
	assert_int_equal(guard_unlock(g, now, "nobody"), 0);

	struct guard_stats st;
	guard_stats(g, &st);
	assert_int_equal(st.accounts, 1);
	guard_free(&g);
}

/*
 * The same wrong password 1000 times (a phone with an old password) counts once:
 * no block, no lockout. Then 4 new wrong passwords make 5 and lock the account,
 * and 5 more failures of others make the host's 10th.
 */
static void
test_repeat_counts_once(void **state)
{
	struct guard_config cfg = base_cfg;
	cfg.attempts = 100000;
	struct guard *g = guard_new(&cfg);
	struct guard_events ev;
	int64_t now = T0;

	for (unsigned i = 0; i < 1000; i++) {
		assert_int_equal(verdict(g, now, "192.0.2.50", "alice"), GUARD_ALLOW);
		assert_int_equal(failed(g, now, "192.0.2.50", "alice", true, 7, &ev), 0);
		now += 1;
	}
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(failed(g, now, "192.0.2.50", "alice", true, 100 + i, NULL), 0);
	assert_int_equal(verdict(g, now, "192.0.2.50", "alice"), GUARD_ALLOW);
	assert_int_equal(failed(g, now, "192.0.2.50", "alice", true, 103, &ev), 1);
	expect_event(&ev.v[0], GUARD_EV_LOCKOUT, "192.0.2.50/32", "alice", now + 15 * MIN, 1);
	/* Host tier: 5 so far. */
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(failed(g, now, "192.0.2.50", "bob", false, 200 + i, NULL), 0);
	assert_int_equal(failed(g, now, "192.0.2.50", "bob", false, 204, &ev), 1);
	expect_event(&ev.v[0], GUARD_EV_BLOCK, "192.0.2.50/32", "", now + 5 * MIN, 1);
	guard_free(&g);

	/* The same fingerprint from another host is not a repeat (nor for another
	 * user: the host counts ten users' single failures). */
	g = guard_new(&cfg);
	now = T0;
	static const char *const hosts[] = { "192.0.2.60", "192.0.2.61", "192.0.2.62",
					     "192.0.2.63", "192.0.2.64" };
	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(failed(g, now, hosts[i], "carol", true, 1, &ev), i == 4 ? 1 : 0);
	expect_event(&ev.v[0], GUARD_EV_LOCKOUT, "192.0.2.64/32", "carol", now + 15 * MIN, 1);
	for (unsigned i = 0; i < 10; i++) {
		char user[16];
		snprintf(user, sizeof(user), "u%u", i);
		assert_int_equal(failed(g, now, "192.0.2.70", user, false, 1, &ev), i == 9 ? 1 : 0);
	}
	assert_int_equal(ev.v[0].type, GUARD_EV_BLOCK);
	guard_free(&g);
}

/* "Within window_ms": a repeat refreshes the time; a window of silence makes the
 * same password count again (seen through when the lockout comes). */
static void
test_repeat_window(void **state)
{
	struct guard *g = guard_new(&base_cfg);
	struct guard_events ev;
	const int64_t w = base_cfg.window_ms;
	int64_t t = T0;

	assert_int_equal(failed(g, t, "192.0.2.70", "dave", true, 42, NULL), 0);
	t += w - 1;
	assert_int_equal(failed(g, t, "192.0.2.70", "dave", true, 42, NULL), 0); /* repeat */
	t += w - 1;
	assert_int_equal(failed(g, t, "192.0.2.70", "dave", true, 42, NULL), 0); /* repeat */
	/* By now the bucket is full again; if this one counts, 4 more lock. */
	t += w;
	assert_int_equal(failed(g, t, "192.0.2.70", "dave", true, 42, NULL), 0); /* counted */
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(failed(g, t, "192.0.2.70", "dave", true, 50 + i, NULL), 0);
	assert_int_equal(failed(g, t, "192.0.2.70", "dave", true, 53, &ev), 1);
	assert_int_equal(ev.v[0].type, GUARD_EV_LOCKOUT);
	/* Without a fingerprint nothing is a repeat. */
	struct netaddr a = ip("192.0.2.71");
	for (unsigned i = 0; i < 10; i++) {
		guard_failure(g, t, &a, "erin", false, NULL, &ev);
		assert_int_equal(ev.n, i == 9 ? 1 : 0);
	}
	guard_free(&g);
}

/* Over the attempt budget: 1, 2, 4, 8 s then 15 s (the cap); the 10th over-budget
 * attempt (the failure budget) blocks. A token regained resets the count, and so
 * does a success. */
static void
test_tarpit(void **state)
{
	struct guard *g = guard_new(&base_cfg);
	struct guard_events ev;
	struct guard_decision d;
	int64_t now = T0;

	for (unsigned i = 0; i < 60; i++)
		assert_int_equal(verdict(g, now, "192.0.2.1", NULL), GUARD_ALLOW);
	static const uint32_t want[] = { 1000, 2000, 4000, 8000, 15000, 15000, 15000, 15000, 15000 };
	for (unsigned i = 0; i < 9; i++) {
		d = check(g, now, "192.0.2.1", "x", &ev);
		assert_int_equal(d.verdict, GUARD_RATE_LIMITED);
		assert_int_equal(d.delay_ms, want[i]);
		assert_int_equal(ev.n, 0);
	}
	d = check(g, now, "192.0.2.1", "x", &ev);
	assert_int_equal(d.verdict, GUARD_BLOCKED);
	assert_int_equal(d.delay_ms, 15000);
	assert_int_equal(ev.n, 1);
	expect_event(&ev.v[0], GUARD_EV_BLOCK, "192.0.2.1/32", "", now + 5 * MIN, 1);
	d = check(g, now, "192.0.2.1", "x", &ev);
	assert_int_equal(d.verdict, GUARD_BLOCKED);
	assert_int_equal(ev.n, 0);

	/* One token per 10 s (60 per 10 min). */
	for (unsigned i = 0; i < 60; i++)
		assert_int_equal(verdict(g, now, "192.0.2.2", NULL), GUARD_ALLOW);
	assert_int_equal(check(g, now, "192.0.2.2", NULL, NULL).delay_ms, 1000);
	assert_int_equal(check(g, now, "192.0.2.2", NULL, NULL).delay_ms, 2000);
	assert_int_equal(check(g, now + 9999, "192.0.2.2", NULL, NULL).delay_ms, 4000);
	assert_int_equal(verdict(g, now + 10000, "192.0.2.2", NULL), GUARD_ALLOW);
	now += 10000;
	assert_int_equal(check(g, now, "192.0.2.2", NULL, NULL).delay_ms, 1000);
	assert_int_equal(check(g, now, "192.0.2.2", NULL, NULL).delay_ms, 2000);
	succeed(g, now, "192.0.2.2", "frank", NULL);
	/* The success gave its token back (the budget is for guessing): one more
	 * attempt passes, then the tarpit starts over at its base. */
	assert_int_equal(verdict(g, now, "192.0.2.2", "x"), GUARD_ALLOW);
	d = check(g, now, "192.0.2.2", "x", NULL);
	assert_int_equal(d.verdict, GUARD_RATE_LIMITED);
	assert_int_equal(d.delay_ms, 1000);
	/* frank is known there now, but the host tier applies to everyone. */
	d = check(g, now, "192.0.2.2", "frank", NULL);
	assert_int_equal(d.verdict, GUARD_RATE_LIMITED);
	assert_true(d.known);
	guard_free(&g);
}

/* A busy client that logs in successfully all day (a webmail host: 600
 * logins in one second, ten times the attempt budget) is never tarpitted. */
static void
test_successes_use_no_budget(void **state)
{
	struct guard *g = guard_new(&base_cfg);
	int64_t now = T0;
	for (unsigned i = 0; i < 600; i++) {
		assert_int_equal(verdict(g, now + i, "192.0.2.9", "grace"), GUARD_ALLOW);
		succeed(g, now + i, "192.0.2.9", "grace", NULL);
	}
	guard_free(&g);
}

/* Ten failures block a host; the block ends at exactly its until; the buckets are
 * full afterwards (9 failures pass, the 10th blocks), and repeats double up to
 * block_max; after block_max of quiet the level starts over. */
static void
test_block_durations(void **state)
{
	struct guard_config cfg = base_cfg;
	cfg.block_max_ms = 1000000;
	struct guard *g = guard_new(&cfg);
	struct guard_events ev;
	int64_t now = T0;
	unsigned fpn = 0;
	static const int64_t want[] = { 300000, 600000, 1000000, 1000000 };

	for (unsigned round = 0; round < 4; round++) {
		for (unsigned i = 0; i < 9; i++) {
			assert_int_equal(verdict(g, now, "192.0.2.9", "u"), GUARD_ALLOW);
			assert_int_equal(failed(g, now, "192.0.2.9", "u", false, fpn++, NULL), 0);
		}
		assert_int_equal(failed(g, now, "192.0.2.9", "u", false, fpn++, &ev), 1);
		expect_event(&ev.v[0], GUARD_EV_BLOCK, "192.0.2.9/32", "", now + want[round],
			     round + 1);
		int64_t until = ev.v[0].until_ms;
		assert_int_equal(verdict(g, now, "192.0.2.9", "u"), GUARD_BLOCKED);
		assert_int_equal(verdict(g, until - 1, "192.0.2.9", "u"), GUARD_BLOCKED);
		assert_int_equal(verdict(g, until, "192.0.2.9", "u"), GUARD_ALLOW);
		now = until;
	}
	/* Level 4 ended at now. Just short of block_max of quiet: level 5, capped. */
	int64_t quiet = now + 1000000;
	for (unsigned i = 0; i < 10; i++)
		failed(g, quiet - 1, "192.0.2.9", "u", false, fpn++, &ev);
	expect_event(&ev.v[0], GUARD_EV_BLOCK, "192.0.2.9/32", "", quiet - 1 + 1000000, 5);
	/* block_max of quiet after that one: level 1 again. */
	now = quiet - 1 + 1000000 + 1000000;
	for (unsigned i = 0; i < 10; i++)
		failed(g, now, "192.0.2.9", "u", false, fpn++, &ev);
	expect_event(&ev.v[0], GUARD_EV_BLOCK, "192.0.2.9/32", "", now + 300000, 1);
	guard_free(&g);
}

/* Without the refill on expiry, a host unblocked after 5 minutes would have only
 * half its failure budget back (5 of 10) and be blocked again at once. */
static void
test_block_expiry_refills(void **state)
{
	struct guard *g = guard_new(&base_cfg);
	struct guard_events ev;
	int64_t now = T0;

	for (unsigned i = 0; i < 60; i++)
		assert_int_equal(verdict(g, now, "192.0.2.99", NULL), GUARD_ALLOW);
	for (unsigned i = 0; i < 10; i++)
		failed(g, now, "192.0.2.99", NULL, false, i, &ev);
	assert_int_equal(ev.n, 1);
	now = ev.v[0].until_ms;
	/* The attempt budget too: 60 attempts pass right after the block. */
	for (unsigned i = 0; i < 60; i++)
		assert_int_equal(verdict(g, now, "192.0.2.99", NULL), GUARD_ALLOW);
	for (unsigned i = 0; i < 9; i++)
		assert_int_equal(failed(g, now, "192.0.2.99", NULL, false, 100 + i, NULL), 0);
	assert_int_equal(failed(g, now, "192.0.2.99", NULL, false, 109, &ev), 1);
	guard_free(&g);
}

/* Unblocking a network lifts the blocks inside it, refills and forgets levels. */
static void
test_unblock(void **state)
{
	struct guard *g = guard_new(&base_cfg);
	struct guard_events ev;
	struct block_list bl;
	int64_t now = T0;
	unsigned fpn = 0;
	char addr[32];

	for (unsigned h = 1; h <= 8; h++) {
		snprintf(addr, sizeof(addr), "192.0.2.%u", h);
		for (unsigned i = 0; i < 10; i++)
			failed(g, now, addr, NULL, false, fpn++, NULL);
	}
	failed(g, now, "2001:db8::1", NULL, false, 0, NULL);
	for (unsigned i = 1; i < 10; i++)
		failed(g, now, "2001:db8::1", NULL, false, i, NULL);
	blocks(g, now, &bl);
	assert_int_equal(bl.n, 10); /* 8 hosts, the /24, the IPv6 host */

	struct cidr k = net("198.51.100.0/24");
	assert_int_equal(guard_unblock(g, now, &k), 0);
	k = net("192.0.2.3"); /* one host, exact key */
	assert_int_equal(guard_unblock(g, now, &k), 1);
	assert_int_equal(verdict(g, now, "192.0.2.3", NULL), GUARD_BLOCKED); /* the /24 */
	k = net("192.0.2.0/24");
	assert_int_equal(guard_unblock(g, now, &k), 8); /* 7 hosts and the /24 */
	blocks(g, now, &bl);
	assert_int_equal(bl.n, 1);
	assert_string_equal(bl.lines[0], "2001:db8::/64 1700000300000 1");
	assert_int_equal(verdict(g, now, "192.0.2.1", NULL), GUARD_ALLOW);

	/* Buckets full, level forgotten: 9 failures pass, the 10th blocks at level 1. */
	for (unsigned i = 0; i < 9; i++)
		assert_int_equal(failed(g, now, "192.0.2.1", NULL, false, fpn++, NULL), 0);
	assert_int_equal(failed(g, now, "192.0.2.1", NULL, false, fpn++, &ev), 1);
	expect_event(&ev.v[0], GUARD_EV_BLOCK, "192.0.2.1/32", "", now + 5 * MIN, 1);

	k = net("0.0.0.0/0"); /* everything IPv4, nothing IPv6 */
	assert_int_equal(guard_unblock(g, now, &k), 1);
	blocks(g, now, &bl);
	assert_int_equal(bl.n, 1);
	k = net("2001:db8::/32");
	assert_int_equal(guard_unblock(g, now, &k), 1);
	blocks(g, now, &bl);
	assert_int_equal(bl.n, 0);
	assert_int_equal(verdict(g, now, "2001:db8::1", NULL), GUARD_ALLOW);
	/* An expired block is not counted. */
	for (unsigned i = 0; i < 10; i++)
		failed(g, now, "192.0.2.200", NULL, false, fpn++, NULL);
	k = net("192.0.2.200");
	assert_int_equal(guard_unblock(g, now + 5 * MIN, &k), 0);
	guard_free(&g);
}

/* IPv6: a /64 is one host; 8 blocked /64s block their /56 (80 failures), 4
 * blocked /56s (320) block their /48. */
static void
test_ipv6_tiers(void **state)
{
	struct guard *g = guard_new(&base_cfg);
	struct guard_events ev;
	struct block_list bl;
	int64_t now = T0;
	unsigned fpn = 0;
	char addr[64];

	succeed(g, now, "2001:db8:0:5ff::1", "alice", NULL);
	/* Two addresses in one /64 share its budget. */
	for (unsigned i = 0; i < 5; i++)
		failed(g, now, "2001:db8:0:100::1", NULL, false, fpn++, NULL);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(failed(g, now, "2001:db8:0:100:ffff::2", NULL, false, fpn++, NULL), 0);
	assert_int_equal(failed(g, now, "2001:db8:0:100:ffff::2", NULL, false, fpn++, &ev), 1);
	expect_event(&ev.v[0], GUARD_EV_BLOCK, "2001:db8:0:100::/64", "", now + 5 * MIN, 1);

	size_t n56 = 0, n48 = 0;
	for (unsigned s = 1; s <= 4; s++) {
		for (unsigned h = (s == 1 ? 1 : 0); h < 8; h++) {
			snprintf(addr, sizeof(addr), "2001:db8:0:%u%02x::%u", s, h, h + 1);
			assert_int_equal(verdict(g, now, addr, NULL), GUARD_ALLOW);
			for (unsigned i = 0; i < 10; i++) {
				failed(g, now, addr, NULL, false, fpn++, &ev);
				for (size_t e = 0; e < ev.n; e++) {
					if (ev.v[e].key.bits == 56) {
						char want[64];
						snprintf(want, sizeof(want), "2001:db8:0:%u00::/56", s);
						expect_event(&ev.v[e], GUARD_EV_BLOCK, want, "",
							     now + 5 * MIN, 1);
						assert_int_equal(h, 7);
						n56++;
					} else if (ev.v[e].key.bits == 48) {
						expect_event(&ev.v[e], GUARD_EV_BLOCK, "2001:db8::/48", "",
							     now + 5 * MIN, 1);
						assert_int_equal(s, 4);
						n48++;
					} else {
						assert_int_equal(ev.v[e].key.bits, 64);
					}
				}
			}
		}
		assert_int_equal(n56, s);
	}
	assert_int_equal(n48, 1);
	blocks(g, now, &bl);
	assert_int_equal(bl.n, 32 + 4 + 1);

	assert_int_equal(verdict(g, now, "2001:db8:0:1ff::1", NULL), GUARD_BLOCKED); /* /56 */
	assert_int_equal(verdict(g, now, "2001:db8:0:500::1", NULL), GUARD_BLOCKED); /* /48 */
	assert_int_equal(verdict(g, now, "2001:db8:1::1", NULL), GUARD_ALLOW);
	assert_int_equal(verdict(g, now, "2001:db9::1", NULL), GUARD_ALLOW);
	struct guard_decision d = check(g, now, "2001:db8:0:5ff:aaaa::9", "alice", NULL);
	assert_int_equal(d.verdict, GUARD_ALLOW);
	assert_true(d.known);
	assert_int_equal(verdict(g, now, "2001:db8:0:5ff::1", "bob"), GUARD_BLOCKED);
	guard_free(&g);
}

static void
test_load_and_foreach(void **state)
{
	struct guard *g = guard_new(&base_cfg);
	struct guard_events ev;
	struct block_list bl;
	struct cidr k;
	int64_t now = T0;

	k = net("192.0.2.0/24");
	assert_int_equal(guard_load_block(g, now, &k, now + 5000, 2), 0);
	k = net("2001:db8:7::/48");
	assert_int_equal(guard_load_block(g, now, &k, now + 10000, 1), 0);
	k = net("198.51.100.7");
	assert_int_equal(guard_load_block(g, now, &k, now, 1), 0); /* expired: ignored */
	k = net("203.0.113.5");
	assert_int_equal(guard_load_block(g, now, &k, now + 365LL * 24 * 60 * MIN, 9), 0);
	k = net("10.0.0.0/8");
	assert_int_equal(guard_load_block(g, now, &k, now + 5000, 1), -1);
	k = net("2001:db8::/64");
	k.bits = 60;
	assert_int_equal(guard_load_block(g, now, &k, now + 5000, 1), -1);

	blocks(g, now, &bl);
	assert_int_equal(bl.n, 3);
	assert_string_equal(bl.lines[0], "192.0.2.0/24 1700000005000 2");
	assert_string_equal(bl.lines[1], "2001:db8:7::/48 1700000010000 1");
	assert_string_equal(bl.lines[2], "203.0.113.5/32 1700086400000 9"); /* capped at block_max */

	/* foreach stops when the callback says so. */
	memset(&bl, 0, sizeof(bl));
	bl.stop_after = 1;
	guard_blocks_foreach(g, now, collect_block, &bl);
	assert_int_equal(bl.n, 1);

	assert_int_equal(verdict(g, now, "192.0.2.55", NULL), GUARD_BLOCKED);
	assert_int_equal(verdict(g, now, "2001:db8:7:1::1", NULL), GUARD_BLOCKED);
	assert_int_equal(verdict(g, now + 5000, "192.0.2.55", NULL), GUARD_ALLOW);
	blocks(g, now + 5000, &bl);
	assert_int_equal(bl.n, 2);

	/* The loaded level is kept: the next block of the /24 is level 3, 4 × 5 min.
	 * 8 hosts × 10 failures exhaust the /24's 80. */
	now += 5000;
	unsigned fpn = 0;
	ev.n = 0;
	for (unsigned h = 1; h <= 8; h++) {
		char addr[32];
		snprintf(addr, sizeof(addr), "192.0.2.%u", h);
		for (unsigned i = 0; i < 10; i++)
			failed(g, now, addr, NULL, false, fpn++, &ev);
	}
	assert_int_equal(ev.n, 2);
	expect_event(&ev.v[1], GUARD_EV_BLOCK, "192.0.2.0/24", "", now + 20 * MIN, 3);

	/* Round trip: what foreach lists, loaded into a new guard, lists the same. */
	struct block_list before, after;
	blocks(g, now, &before);
	struct guard *g2 = guard_new(&base_cfg);
	for (size_t i = 0; i < before.n; i++) {
		char text[CIDR_TEXT_MAX];
		long long until;
		unsigned level;
		assert_int_equal(sscanf(before.lines[i], "%49s %lld %u", text, &until, &level), 3);
		k = net(text);
		assert_int_equal(guard_load_block(g2, now, &k, until, level), 0);
	}
	blocks(g2, now, &after);
	assert_int_equal(after.n, before.n);
	for (size_t i = 0; i < before.n; i++)
		assert_string_equal(after.lines[i], before.lines[i]);
	guard_free(&g2);
	guard_free(&g);
}

/* A loaded known pair: exempt until its until; a success reports it again only
 * when the stored expiry is an hour stale. */
static void
test_load_known(void **state)
{
	struct guard *g = guard_new(&base_cfg);
	struct guard_events ev;
	struct guard_decision d;
	const int64_t ttl = base_cfg.known_ttl_ms;
	int64_t now = T0;
	struct cidr k = net("198.51.100.20");

	assert_int_equal(guard_load_known(g, now, "alice", &k, now + 1000), 0);
	d = check(g, now + 999, "198.51.100.20", "alice", NULL);
	assert_true(d.known);
	d = check(g, now + 1000, "198.51.100.20", "alice", NULL);
	assert_false(d.known);
	k = net("198.51.100.0/24");
	assert_int_equal(guard_load_known(g, now, "alice", &k, now + 1000), -1);
	k = net("2001:db8:1:2::/64");
	assert_int_equal(guard_load_known(g, now, "bob", &k, now + 1000), 0);
	d = check(g, now, "2001:db8:1:2::99", "bob", NULL);
	assert_true(d.known);
	k = net("203.0.113.1");
	assert_int_equal(guard_load_known(g, now, "carol", &k, now), 0); /* expired */
	assert_false(check(g, now, "203.0.113.1", "carol", NULL).known);
	assert_int_equal(guard_load_known(g, now, "carol", &k, now + 10 * ttl), 0); /* capped */
	assert_true(check(g, now + ttl - 1, "203.0.113.1", "carol", NULL).known);
	assert_false(check(g, now + ttl, "203.0.113.1", "carol", NULL).known);

	/* Persisted 10 minutes ago (until = now - 10 min + ttl). */
	k = net("192.0.2.44");
	assert_int_equal(guard_load_known(g, now, "dave", &k, now - 10 * MIN + ttl), 0);
	succeed(g, now, "192.0.2.44", "dave", &ev);
	assert_int_equal(ev.n, 0);
	succeed(g, now + 50 * MIN - 1, "192.0.2.44", "dave", &ev);
	assert_int_equal(ev.n, 0);
	succeed(g, now + 50 * MIN, "192.0.2.44", "dave", &ev);
	assert_int_equal(ev.n, 1);
	expect_event(&ev.v[0], GUARD_EV_KNOWN, "192.0.2.44/32", "dave", now + 50 * MIN + ttl, 0);
	guard_free(&g);
}

/* A known pair expires after known_ttl; KNOWN events at most hourly. */
static void
test_known_expiry(void **state)
{
	struct guard *g = guard_new(&base_cfg);
	struct guard_events ev;
	const int64_t ttl = base_cfg.known_ttl_ms;
	int64_t now = T0;

	assert_false(check(g, now, "192.0.2.8", "alice", NULL).known);
	succeed(g, now, "192.0.2.8", "alice", &ev);
	assert_int_equal(ev.n, 1);
	expect_event(&ev.v[0], GUARD_EV_KNOWN, "192.0.2.8/32", "alice", now + ttl, 0);
	assert_true(check(g, now + ttl - 1, "192.0.2.8", "alice", NULL).known);
	assert_false(check(g, now + ttl, "192.0.2.8", "alice", NULL).known);
	/* Other users or addresses are not known. */
	assert_false(check(g, now, "192.0.2.8", "alicf", NULL).known);
	assert_false(check(g, now, "192.0.2.9", "alice", NULL).known);

	succeed(g, now + 3600000 - 1, "192.0.2.8", "alice", &ev);
	assert_int_equal(ev.n, 0);
	succeed(g, now + 3600000, "192.0.2.8", "alice", &ev);
	assert_int_equal(ev.n, 1);
	expect_event(&ev.v[0], GUARD_EV_KNOWN, "192.0.2.8/32", "alice", now + 3600000 + ttl, 0);
	/* The success at +1h-1 still extended the pair. */
	assert_true(check(g, now + 3600000 + ttl - 1, "192.0.2.8", "alice", NULL).known);

	/* An expired pair is reported again at once. */
	now += 3600000 + ttl + 1;
	succeed(g, now, "192.0.2.8", "alice", &ev);
	assert_int_equal(ev.n, 1);
	guard_free(&g);
}

#ifdef HAVE_MALLINFO2
static size_t
heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}
#endif

/*
 * 1,000,000 distinct IPv6 /64s (each in its own /48), each one attempt and one
 * failure: the tables stay at max_entries, the heap does not grow once they are
 * full, and the blocked /64, the known pair and the locked account from before
 * the flood survive it (eviction prefers plain entries).
 */
static void
test_memory_bound(void **state)
{
	struct guard *g = guard_new(&base_cfg);
	struct guard_events ev;
	struct guard_stats st;
	int64_t now = T0;
	char addr[64];

	for (unsigned i = 0; i < 10; i++)
		failed(g, now, "2001:db8:ffff:1::1", NULL, false, i, &ev);
	assert_int_equal(ev.n, 1);
	succeed(g, now, "2001:db8:aaaa::1", "alice", NULL);
	for (unsigned i = 0; i < 5; i++)
		failed(g, now, "2001:db8:bbbb::1", "zoe", true, i, &ev);
	assert_int_equal(ev.n, 1);
	assert_int_equal(ev.v[0].type, GUARD_EV_LOCKOUT);

	size_t heap_full = 0;
	for (uint32_t i = 0; i < 1000000; i++) {
		struct netaddr a = { .family = 6, .bytes = { 0x3f, 0xfe } };
		struct guard_decision d;
		a.bytes[2] = (uint8_t)(i >> 24);
		a.bytes[3] = (uint8_t)(i >> 16);
		a.bytes[4] = (uint8_t)(i >> 8);
		a.bytes[5] = (uint8_t)i;
		a.bytes[15] = 1;
		if (i % 1000 == 0)
			now++;
		guard_check(g, now, &a, "x", &d, &ev);
		assert_int_equal(d.verdict, GUARD_ALLOW);
		uint8_t f[GUARD_FINGERPRINT_SIZE] = { 0 };
		memcpy(f, &i, sizeof(i));
		guard_failure(g, now, &a, "x", false, f, &ev);
		assert_int_equal(ev.n, 0);
		if (i == 20000) {
			guard_stats(g, &st);
			assert_int_equal(st.tiers, 1024);
			assert_int_equal(st.pairs, 1024);
#ifdef HAVE_MALLINFO2
			heap_full = heap_in_use();
#endif
		}
	}
	guard_stats(g, &st);
	assert_int_equal(st.capacity, 1024);
	assert_int_equal(st.tiers, 1024);
	assert_int_equal(st.pairs, 1024);
	assert_int_equal(st.accounts, 1);
	assert_true(st.bytes <= st.bytes_max);
	assert_true(st.bytes_max < 1024 * 1024);
#ifdef HAVE_MALLINFO2
	assert_true(heap_in_use() <= heap_full);
#endif
	(void)heap_full;

	assert_int_equal(verdict(g, now, "2001:db8:ffff:1::77", NULL), GUARD_BLOCKED);
	struct guard_decision d = check(g, now, "2001:db8:aaaa::1", "alice", NULL);
	assert_int_equal(d.verdict, GUARD_ALLOW);
	assert_true(d.known);
	assert_int_equal(verdict(g, now, "2001:db8:cccc::1", "zoe"), GUARD_LOCKED_OUT);

	/* Accounts are bounded too: 5000 existing users failing once each. */
	for (unsigned i = 0; i < 5000; i++) {
		char user[32];
		snprintf(user, sizeof(user), "user%u", i);
		snprintf(addr, sizeof(addr), "2001:db9:%x::1", i);
		failed(g, now, addr, user, true, i, NULL);
	}
	guard_stats(g, &st);
	assert_int_equal(st.accounts, 1024);
	assert_int_equal(verdict(g, now, "2001:db8:cccc::1", "zoe"), GUARD_LOCKED_OUT);
	guard_free(&g);
}

/* When every entry must be kept (all blocked), the least recently used goes:
 * with room for 8, the last 8 loaded blocks remain. */
static void
test_eviction_all_kept(void **state)
{
	struct guard_config cfg = base_cfg;
	cfg.max_entries = 8;
	struct guard *g = guard_new(&cfg);
	struct block_list bl;
	char text[32];

	for (unsigned i = 0; i < 20; i++) {
		snprintf(text, sizeof(text), "198.51.100.%u", i);
		struct cidr k = net(text);
		assert_int_equal(guard_load_block(g, T0, &k, T0 + 1000 + i, 1), 0);
	}
	blocks(g, T0, &bl);
	assert_int_equal(bl.n, 8);
	for (unsigned i = 0; i < 8; i++) {
		char want[96];
		snprintf(want, sizeof(want), "198.51.100.%u/32 %lld 1", 12 + i,
			 (long long)(T0 + 1012 + i));
		assert_string_equal(bl.lines[i], want);
	}
	/* Checks from elsewhere now evict the blocked ones, oldest first, but never
	 * an entry the same call is using (3 tiers in a table of 8). */
	assert_int_equal(verdict(g, T0, "203.0.113.1", NULL), GUARD_ALLOW);
	blocks(g, T0, &bl);
	assert_int_equal(bl.n, 5);
	assert_int_equal(verdict(g, T0, "198.51.100.19", NULL), GUARD_BLOCKED);
	assert_int_equal(verdict(g, T0, "198.51.100.12", NULL), GUARD_ALLOW);
	guard_free(&g);
}

/* A clock going backwards refills nothing and confuses nothing. */
static void
test_clock_backwards(void **state)
{
	struct guard *g = guard_new(&base_cfg);
	int64_t now = T0;

	for (unsigned i = 0; i < 60; i++)
		assert_int_equal(verdict(g, now, "192.0.2.1", NULL), GUARD_ALLOW);
	assert_int_equal(verdict(g, now - 60000, "192.0.2.1", NULL), GUARD_RATE_LIMITED);
	assert_int_equal(verdict(g, now + 9999, "192.0.2.1", NULL), GUARD_RATE_LIMITED);
	assert_int_equal(verdict(g, now + 10000, "192.0.2.1", NULL), GUARD_ALLOW);
	guard_free(&g);
	guard_free(&g); /* NULL: harmless */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reasons),
		cmocka_unit_test(test_host_key),
		cmocka_unit_test(test_spray_blocks_neighbours_not_known_user),
		cmocka_unit_test(test_known_pair_host_tier_still_applies),
		cmocka_unit_test(test_lockout),
		cmocka_unit_test(test_repeat_counts_once),
		cmocka_unit_test(test_repeat_window),
		cmocka_unit_test(test_tarpit),
		cmocka_unit_test(test_successes_use_no_budget),
		cmocka_unit_test(test_block_durations),
		cmocka_unit_test(test_block_expiry_refills),
		cmocka_unit_test(test_unblock),
		cmocka_unit_test(test_ipv6_tiers),
		cmocka_unit_test(test_load_and_foreach),
		cmocka_unit_test(test_load_known),
		cmocka_unit_test(test_known_expiry),
		cmocka_unit_test(test_memory_bound),
		cmocka_unit_test(test_eviction_all_kept),
		cmocka_unit_test(test_clock_backwards),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
