/*
 * guard — brute-force defence state for logins, in memory, pure logic.
 *
 * The auth process asks guard_check() before it computes any password hash, and
 * reports the hash's outcome with guard_failure() or guard_success(). The guard
 * does no I/O, reads no clock (every call takes `now`, milliseconds of the wall
 * clock, because blocks and known pairs are persisted and must mean the same
 * after a restart; a clock going backwards only delays refills), starts no
 * threads, and holds at most cfg->max_entries entries in each of its three
 * tables whatever peers do.
 *
 * Model:
 * - Tiers. An address A is counted under three keys: IPv4 A/32, A/24, A/16;
 *   IPv6 A/64 (one host: a /64 is what one subscriber gets), A/56, A/48. Each key
 *   has two token buckets, attempts and failures; the host tier's capacities are
 *   cfg->attempts and cfg->failures per cfg->window_ms, the second tier's
 *   GUARD_TIER2_MULT times that and the third's GUARD_TIER3_MULT times. Buckets
 *   refill continuously (capacity per window), in exact integer arithmetic.
 * - Known pair. (user, host key of A) with a successful login within
 *   cfg->known_ttl_ms. A known pair is exempt from the second and third tiers and
 *   from account lockout, so a user at their usual address gets in while a
 *   neighbouring range is attacking. The host tier applies to everyone.
 * - Over budget. An attempt finding a tier's attempt bucket empty is tarpitted:
 *   tarpit_base_ms × 2^(over-1), capped at tarpit_max_ms, where `over` counts
 *   that tier's consecutive over-budget attempts (reset when an attempt finds a
 *   token, and for the host tier on a success). When `over` reaches the tier's
 *   failure capacity, the tier is blocked.
 * - Blocks. A tier whose failure bucket runs empty (or whose `over` reaches its
 *   failure capacity) is blocked until now + block_ms × 2^(level-1), capped at
 *   block_max_ms; level counts blocks and falls back to 0 once block_max_ms has
 *   passed since the end of the last block. Blocks always expire; on expiry the
 *   tier's buckets are refilled (a fresh start) but level is kept.
 * - Repeats. A failure whose fingerprint (a keyed hash of user and password, made
 *   by the caller) already failed for this user from this host key within
 *   window_ms is not counted anywhere: an old password left in a phone counts
 *   once. The last GUARD_FINGERPRINTS fingerprints are remembered per pair.
 * - Lockout. Failures for an existing user from addresses that are not known
 *   for it take a token from the account's bucket (lockout_failures per
 *   window_ms). When it runs empty the account is locked, for unfamiliar
 *   addresses only, until now + lockout_ms × 2^(level-1), capped at
 *   lockout_max_ms (level as for blocks, with lockout_max_ms). Unknown user names
 *   never create an account entry.
 * - Memory. Three fixed-capacity tables (tier keys; accounts; user/host pairs),
 *   hashed with a random key (libsodium crypto_shorthash) so peers cannot aim
 *   collisions. When a table is full the least recently used entry goes,
 *   preferring entries that are not blocked, locked or known. User names are
 *   stored only as keyed 128-bit hashes.
 *
 * User names are compared as given (bytes): pass the normalised form. A NULL
 * user is allowed in guard_check() and guard_failure() (a failure before a name
 * was known): only the tiers are considered then.
 */
#ifndef RAMPART_GUARD_H
#define RAMPART_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/netaddr.h"

/* Prefix lengths of the three tiers, and the budget multipliers of tiers 2, 3. */
#define GUARD_V4_TIER_BITS { 32, 24, 16 }
#define GUARD_V6_TIER_BITS { 64, 56, 48 }
#define GUARD_TIER2_MULT 8
#define GUARD_TIER3_MULT 32
/* Recent failure fingerprints remembered per (user, host key). */
#define GUARD_FINGERPRINTS 4
#define GUARD_FINGERPRINT_SIZE 16
/* A known pair is reported again (for persistence) when the stored expiry is
 * older than this: the caller writes each pair at most hourly. */
#define GUARD_KNOWN_REFRESH_MS (3600 * 1000)
/* Longest user name an event carries (directory addresses are ≤ 254). */
#define GUARD_USER_MAX 255
#define GUARD_EVENTS_MAX 8

struct guard_config {
	int64_t window_ms;           /* refill period of every bucket */
	uint32_t attempts, failures; /* per host key per window */
	int64_t tarpit_base_ms, tarpit_max_ms;
	int64_t block_ms, block_max_ms;
	uint32_t lockout_failures;   /* per account per window */
	int64_t lockout_ms, lockout_max_ms;
	int64_t known_ttl_ms;
	int64_t failure_delay_ms;    /* delay for GUARD_LOCKED_OUT */
	uint32_t max_entries;        /* bound on tier keys, accounts, pairs: each */
};

enum guard_verdict {
	GUARD_ALLOW,
	GUARD_RATE_LIMITED, /* over the attempt budget: answer after delay_ms */
	GUARD_BLOCKED,      /* the host or a prefix is blocked */
	GUARD_LOCKED_OUT,   /* the account is locked for unfamiliar addresses */
};

struct guard_decision {
	enum guard_verdict verdict;
	uint32_t delay_ms; /* how long to hold the answer; 0 for GUARD_ALLOW */
	bool known;        /* (user, host) is a known pair: the priority hashing lane */
};

enum guard_event_type {
	GUARD_EV_BLOCK,   /* key blocked until until_ms; level = its block count */
	GUARD_EV_LOCKOUT, /* user locked until until_ms; key = the host key whose
			     failure locked it */
	GUARD_EV_KNOWN,   /* (user, key) known until until_ms: persist it */
};

struct guard_event {
	enum guard_event_type type;
	struct cidr key;  /* the tier network (e.g. 192.0.2.0/24) or host key */
	char user[GUARD_USER_MAX + 1]; /* lockout and known; "" for blocks */
	int64_t until_ms;
	unsigned level;
};

/* What one call did that the caller logs and persists; n is reset by each call. */
struct guard_events {
	size_t n;
	struct guard_event v[GUARD_EVENTS_MAX];
};

struct guard_stats {
	size_t tiers, accounts, pairs; /* entries in use */
	size_t capacity;               /* cfg->max_entries: the bound of each */
	size_t bytes;                  /* memory held now (tables and slabs) */
	size_t bytes_max;              /* what bytes can grow to at most */
};

struct guard;

/* A guard with empty tables. cfg is copied; every duration and budget must be
 * positive (tarpit and delay figures may be 0) and max_entries ≥ 4 (asserted:
 * the settings table enforces its ranges). NULL only when out of memory. */
struct guard *guard_new(const struct guard_config *cfg);
void guard_free(struct guard **g);

/* The host key of a: a/32 or a/64. */
void guard_host_key(const struct netaddr *a, struct cidr *key);

/*
 * Before a login attempt by user (may be NULL) from addr. Blocked tiers (the
 * host; the prefixes unless known) give GUARD_BLOCKED with delay tarpit_max_ms;
 * otherwise one attempt token is taken from each tier that applies, and a tier
 * without one gives GUARD_RATE_LIMITED with its tarpit delay (or GUARD_BLOCKED,
 * if this attempt got it blocked); then an account lock gives GUARD_LOCKED_OUT
 * with failure_delay_ms unless known; else GUARD_ALLOW. Blocks it sets are
 * in *ev.
 */
void guard_check(struct guard *g, int64_t now, const struct netaddr *addr, const char *user,
		 struct guard_decision *d, struct guard_events *ev);

/*
 * After a hash said "wrong password", or for a user that does not exist
 * (user_exists false: then no account is tracked). fingerprint
 * (GUARD_FINGERPRINT_SIZE bytes, or NULL) identifies the password tried; a
 * repeat within window_ms is not counted. Blocks and a lockout it sets are in
 * *ev.
 */
void guard_failure(struct guard *g, int64_t now, const struct netaddr *addr, const char *user,
		   bool user_exists, const uint8_t *fingerprint, struct guard_events *ev);

/* After a successful login: the host's attempt token is given back (the
 * attempt budget limits guessing, not use); (user, host key) becomes known until
 * now + known_ttl_ms; a GUARD_EV_KNOWN event when the caller should persist it
 * (first time, or the stored expiry is GUARD_KNOWN_REFRESH_MS stale). */
void guard_success(struct guard *g, int64_t now, const struct netaddr *addr, const char *user,
		   struct guard_events *ev);

/* Administrative: lifts the blocks of key and of every tier key inside it
 * (unblocking 192.0.2.0/24 also lifts 192.0.2.7/32), refills their buckets and
 * forgets their level (an administrator judged them innocent). Returns how many
 * active blocks were lifted. */
int guard_unblock(struct guard *g, int64_t now, const struct cidr *key);

/* Administrative: lifts a lockout of user. Returns 1 if it was locked, else 0. */
int guard_unlock(struct guard *g, int64_t now, const char *user);

/*
 * Restores persisted state at start-up. A block must be on a tier key (a /32,
 * /24, /16, /64, /56 or /48; other keys give -1 and are not loaded); its until
 * is capped at now + block_max_ms; an expired one is ignored. A known pair
 * needs a host key (/32 or /64, else -1); until is capped at now + known_ttl_ms.
 * Both return 0 otherwise, also when the entry was already over.
 */
int guard_load_block(struct guard *g, int64_t now, const struct cidr *key, int64_t until_ms,
		     unsigned level);
int guard_load_known(struct guard *g, int64_t now, const char *user, const struct cidr *host_key,
		     int64_t until_ms);

/* Calls cb for each block active at now, in no particular order, until cb
 * returns non-zero. cb must not call into the guard. */
typedef int guard_block_cb(const struct cidr *key, int64_t until_ms, unsigned level, void *ctx);
void guard_blocks_foreach(struct guard *g, int64_t now, guard_block_cb *cb, void *ctx);

/* "rate-limited", "blocked", "locked-out" (and "allowed"), for logs. */
const char *guard_verdict_reason(enum guard_verdict v);

void guard_stats(const struct guard *g, struct guard_stats *st);

#endif
