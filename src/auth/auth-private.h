/*
 * auth-private — the auth process's context, shared by auth-process.c
 * (channels, recipient look-ups), auth-login.c (login decisions, sender rights)
 * and auth-guard.c (the guard's configuration, persistence and audit events).
 */
#ifndef RAMPART_AUTH_PRIVATE_H
#define RAMPART_AUTH_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include <sodium.h>

#include "auth/guard.h"
#include "lib/ipc.h"

struct audit_log;
struct audit_event;
struct config;
struct directory;
struct event;
struct event_base;
struct evbuffer;
struct hash_sched;

struct auth_front {
	struct auth_front *next, **prevp;
	struct ipc_channel *ch;   /* NULL once the front went away */
	struct auth_ctx *auth;
	unsigned pending;         /* logins in flight: the struct lives until 0 */
};

struct auth_ctx {
	const struct config *cfg;
	struct event_base *base;
	struct directory *dir;
	struct auth_front *fronts;
	struct evbuffer *out;
	struct auth_rcpt_res *res;    /* large; one reused answer buffer */
	struct guard *guard;
	struct audit_log *audit;
	struct hash_sched *hash;
	struct event *tick;           /* once a second: unblocks by the CLI, log rotation */
	int64_t data_version;
	int64_t last_prune_ms;
	char *dummy_hash;             /* verified for unknown users: same cost, same time */
	uint8_t fp_key[crypto_generichash_KEYBYTES];   /* failure fingerprints */
};

/* auth-login.c */
int auth_login_init(struct auth_ctx *a, const char **error_r);
void auth_login_deinit(struct auth_ctx *a);
void auth_login_request(struct auth_front *fr, struct ipc_frame *f);
void auth_login_report(struct auth_front *fr, struct ipc_frame *f);
void auth_sender_request(struct auth_front *fr, struct ipc_frame *f);

/* auth-guard.c */
int auth_guard_init(struct auth_ctx *a, const char **error_r);
void auth_guard_deinit(struct auth_ctx *a);
/* Persists and logs what a guard call did. */
void auth_guard_events(struct auth_ctx *a, const struct guard_events *ev);
/* Writes an audit event (and the fail2ban text line for failures). */
void auth_audit(struct auth_ctx *a, const struct audit_event *ev);

/* auth-process.c: drops a front whose channel closed once nothing refers to it. */
void auth_front_release(struct auth_front *fr);

#endif
