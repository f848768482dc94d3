/*
 * auth-login — the auth process's decision on a login, and on sender rights.
 *
 * A login arrives from a front as credentials (never as a hash request) and
 * goes through, in this order:
 *   1. the guard (blocks, attempt budgets, account lockout): before anything
 *      costs CPU;
 *   2. the user's allowed networks (cheap, and a password cannot even be tried
 *      from outside them);
 *   3. the Argon2id verification, on the hashing lanes of hash-sched (unknown
 *      users are verified against a dummy hash: same cost, same time, so the
 *      answer does not tell which accounts exist);
 *   4. with the right password: account enabled, protocol switched on.
 * The answer is a decision (ok + canonical user, or a reason and a delay for
 * the front to wait before its 535); every attempt is one audit line. The
 * secret lives in locked memory (sodium_malloc) and is wiped as soon as the
 * hash is done; the IPC frame that carried it is wiped on arrival.
 */
#include "auth/auth-private.h"
#include "auth/audit.h"
#include "auth/auth-msg.h"
#include "auth/directory.h"
#include "auth/guard.h"
#include "auth/hash-sched.h"
#include "auth/password.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/netaddr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <sodium.h>

/* Unfamiliar logins that may wait for a hashing thread: two seconds' worth. */
#define UNFAMILIAR_QUEUE_SECONDS 2

struct login {
	struct auth_front *fr;
	uint32_t id;
	enum auth_protocol protocol;
	char listener[64], mech[32], ip[NETADDR_TEXT_MAX], tls[32], session[40];
	char name[DIRECTORY_ADDRESS_MAX + 1];   /* as given, cut to size (audit) */
	uint32_t port;
	struct netaddr addr;
	struct directory_login user;            /* user.hash NULL: no such user */
	bool exists, known;
	char *secret;                           /* sodium_malloc'd, NUL-terminated */
	size_t secret_len;
	int verified;                           /* worker's answer: 1, 0, -1 */
};

static void
copy_field(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src != NULL ? src : "");
}

static void
login_free(struct login *l)
{
	if (l->secret != NULL)
		sodium_free(l->secret);   /* wipes */
	directory_login_free(&l->user);
	struct auth_front *fr = l->fr;
	fr->pending--;
	auth_front_release(fr);
	free(l);
}

static void
login_audit(struct auth_ctx *a, const struct login *l, enum auth_fail_reason reason)
{
	struct audit_event ev = {
		.event = "auth",
		.result = reason == AUTH_REASON_NONE ? "ok" : "fail",
		.reason = auth_fail_reason_name(reason),
		.user = l->exists ? l->user.address : l->name,
		.ip = l->ip, .port = l->port,
		.listener = l->listener,
		.proto = auth_protocol_name(l->protocol),
		.mech = l->mech,
		.tls = l->tls[0] != '\0' ? l->tls : NULL,
		.session = l->session,
	};
	auth_audit(a, &ev);
}

/* Answers the front (if it is still there), audits, frees. */
static void
login_finish(struct login *l, enum auth_login_status status, enum auth_fail_reason reason,
    uint32_t delay_ms)
{
	struct auth_ctx *a = l->fr->auth;
	login_audit(a, l, status == AUTH_LOGIN_OK ? AUTH_REASON_NONE : reason);
	if (l->fr->ch != NULL) {
		struct auth_login_res res = {
			.status = status, .reason = reason, .delay_ms = delay_ms,
			.user = status == AUTH_LOGIN_OK ? l->user.address : "",
		};
		auth_login_res_encode(a->out, &res);
		ipc_send_buf(l->fr->ch, AUTH_LOGIN_RES, l->id, a->out, -1);
	}
	login_free(l);
}

static uint32_t
failure_delay(const struct auth_ctx *a)
{
	return (uint32_t)a->cfg->auth_failure_delay;
}

static enum auth_fail_reason
verdict_reason(enum guard_verdict v)
{
	switch (v) {
	case GUARD_RATE_LIMITED:
		return AUTH_REASON_RATE_LIMITED;
	case GUARD_BLOCKED:
		return AUTH_REASON_BLOCKED;
	case GUARD_LOCKED_OUT:
		return AUTH_REASON_LOCKED_OUT;
	case GUARD_ALLOW:
		break;
	}
	return AUTH_REASON_NONE;
}

/* A keyed hash naming the password tried, so the guard can recognise the same
 * wrong password again without ever holding it. Includes the stored hash: a
 * password change makes old fingerprints meaningless. */
static void
login_fingerprint(const struct auth_ctx *a, const struct login *l,
    uint8_t fp[GUARD_FINGERPRINT_SIZE])
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, a->fp_key, sizeof(a->fp_key), GUARD_FINGERPRINT_SIZE);
	const char *who = l->exists ? l->user.address : l->name;
	crypto_generichash_update(&st, (const unsigned char *)who, strlen(who) + 1);
	if (l->exists)
		crypto_generichash_update(&st, (const unsigned char *)l->user.hash,
		    strlen(l->user.hash) + 1);
	crypto_generichash_update(&st, (const unsigned char *)l->secret, l->secret_len);
	crypto_generichash_final(&st, fp, GUARD_FINGERPRINT_SIZE);
}

/* ---- step 3: hashing ---- */

static void
login_hash_run(void *arg)
{
	struct login *l = arg;
	const char *error;
	l->verified = password_verify(l->exists ? l->user.hash : l->fr->auth->dummy_hash,
	    l->secret, &error);
}

static void
login_hash_done(void *arg)
{
	struct login *l = arg;
	struct auth_ctx *a = l->fr->auth;
	struct guard_events ev = { 0 };
	int64_t now = clock_wall_ms();

	if (l->verified < 0) {
		log_error("auth: cannot verify the password hash of %s", l->user.address);
		login_finish(l, AUTH_LOGIN_TEMPFAIL, AUTH_REASON_TEMPORARY, 0);
		return;
	}
	if (l->verified == 0 || !l->exists) {
		uint8_t fp[GUARD_FINGERPRINT_SIZE];
		login_fingerprint(a, l, fp);
		guard_failure(a->guard, now, &l->addr, l->exists ? l->user.address : l->name,
		    l->exists, fp, &ev);
		sodium_memzero(fp, sizeof(fp));
		login_finish(l, AUTH_LOGIN_FAIL, l->exists ? AUTH_REASON_BAD_CREDENTIALS :
		    AUTH_REASON_UNKNOWN_USER, failure_delay(a));
		auth_guard_events(a, &ev);
		return;
	}
	/* The password is right; refusals from here on are the account's state,
	 * not guessing, so the guard does not count them (its attempt budget
	 * still bounds how often they can be asked). */
	enum auth_fail_reason reason = AUTH_REASON_NONE;
	enum directory_protocol dp = l->protocol == AUTH_PROTO_IMAP ? DIRECTORY_PROTO_IMAP :
	    l->protocol == AUTH_PROTO_POP3 ? DIRECTORY_PROTO_POP3 : DIRECTORY_PROTO_SMTP;
	if (!l->user.enabled)
		reason = AUTH_REASON_ACCOUNT_DISABLED;
	else if (!l->user.protocol[dp])
		reason = AUTH_REASON_PROTOCOL_DISABLED;
	if (reason != AUTH_REASON_NONE) {
		login_finish(l, AUTH_LOGIN_FAIL, reason, failure_delay(a));
		return;
	}
	guard_success(a->guard, now, &l->addr, l->user.address, &ev);
	login_finish(l, AUTH_LOGIN_OK, AUTH_REASON_NONE, 0);
	auth_guard_events(a, &ev);
}

/* ---- steps 1 and 2 ---- */

static bool
network_allowed(const struct login *l, const char **error_r)
{
	if (l->user.networks == NULL || l->user.networks[0] == '\0')
		return true;
	struct cidr_list list;
	if (cidr_list_parse(l->user.networks, &list, error_r) < 0)
		return false;   /* fail closed on a bad stored list */
	bool ok = cidr_list_contains(&list, &l->addr);
	cidr_list_free(&list);
	return ok;
}

static void
login_decide(struct login *l)
{
	struct auth_ctx *a = l->fr->auth;
	const char *error;
	struct guard_decision d;
	struct guard_events ev = { 0 };

	int found = directory_login_get(a->dir, l->name, &l->user, &error);
	if (found < 0) {
		log_error("auth: user look-up failed: %s", error);
		login_finish(l, AUTH_LOGIN_TEMPFAIL, AUTH_REASON_TEMPORARY, 0);
		return;
	}
	l->exists = found == 1;
	/* Unknown names are tracked as typed, lowercased (bounded by the guard). */
	if (!l->exists)
		for (char *p = l->name; *p != '\0'; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
	const char *who = l->exists ? l->user.address : l->name;

	guard_check(a->guard, clock_wall_ms(), &l->addr, who, &d, &ev);
	if (d.verdict != GUARD_ALLOW) {
		login_finish(l, AUTH_LOGIN_FAIL, verdict_reason(d.verdict), d.delay_ms);
		auth_guard_events(a, &ev);
		return;
	}
	auth_guard_events(a, &ev);
	l->known = d.known;
	if (l->exists && !network_allowed(l, &error)) {
		struct guard_events fev = { 0 };
		guard_failure(a->guard, clock_wall_ms(), &l->addr, NULL, false, NULL, &fev);
		login_finish(l, AUTH_LOGIN_FAIL, AUTH_REASON_NETWORK_NOT_ALLOWED, failure_delay(a));
		auth_guard_events(a, &fev);
		return;
	}
	if (hash_sched_submit(a->hash, l->known, login_hash_run, login_hash_done, l) < 0) {
		log_warn("auth: hashing queue full; login from %s refused for now", l->ip);
		login_finish(l, AUTH_LOGIN_TEMPFAIL, AUTH_REASON_RATE_LIMITED, 0);
	}
}

void
auth_login_request(struct auth_front *fr, struct ipc_frame *f)
{
	struct auth_login_req req;
	const char *error;
	int rc = auth_login_req_decode(f->data, f->len, &req, &error);
	struct login *l = rc == 0 ? calloc(1, sizeof(*l)) : NULL;
	if (l != NULL && (l->secret = sodium_malloc(req.secret_len + 1)) != NULL) {
		memcpy(l->secret, req.secret, req.secret_len);
		l->secret[req.secret_len] = '\0';
		l->secret_len = req.secret_len;
	}
	if (rc < 0 || l == NULL || l->secret == NULL) {
		/* Still answer: the session waiting for it must not hang. */
		sodium_memzero((void *)f->data, f->len);
		if (rc < 0)
			log_warn("auth: bad login request from %s: %s", ipc_channel_peer(fr->ch),
			    error);
		else
			log_error("auth: out of memory for a login");
		struct auth_login_res res = { AUTH_LOGIN_TEMPFAIL, AUTH_REASON_TEMPORARY, 0, "" };
		auth_login_res_encode(fr->auth->out, &res);
		ipc_send_buf(fr->ch, AUTH_LOGIN_RES, f->id, fr->auth->out, -1);
		if (l != NULL && l->secret != NULL)
			sodium_free(l->secret);
		free(l);
		return;
	}
	l->fr = fr;
	fr->pending++;
	l->id = f->id;
	l->protocol = req.protocol;
	l->port = req.port;
	copy_field(l->listener, sizeof(l->listener), req.listener);
	copy_field(l->mech, sizeof(l->mech), req.mech);
	copy_field(l->ip, sizeof(l->ip), req.ip);
	copy_field(l->tls, sizeof(l->tls), req.tls);
	copy_field(l->session, sizeof(l->session), req.session);
	copy_field(l->name, sizeof(l->name), req.authcid);
	bool other_authzid = req.authzid[0] != '\0' && strcasecmp(req.authzid, req.authcid) != 0;
	/* The frame held the secret: wipe it where it arrived (req points into it). */
	sodium_memzero((void *)f->data, f->len);
	if (netaddr_parse(l->ip, &l->addr) < 0) {
		log_warn("auth: login request with a bad client address from %s",
		    ipc_channel_peer(fr->ch));
		login_finish(l, AUTH_LOGIN_FAIL, AUTH_REASON_MALFORMED, 0);
		return;
	}
	/* RFC 4616 §2 / RFC 4422 §3.4.1: acting as someone else is not offered;
	 * an authzid is accepted only when it names the same user. */
	if (other_authzid) {
		login_finish(l, AUTH_LOGIN_FAIL, AUTH_REASON_MALFORMED, failure_delay(fr->auth));
		return;
	}
	login_decide(l);
}

void
auth_login_report(struct auth_front *fr, struct ipc_frame *f)
{
	struct auth_login_report rep;
	const char *error;
	if (auth_login_report_decode(f->data, f->len, &rep, &error) < 0) {
		log_warn("auth: bad login report from %s: %s", ipc_channel_peer(fr->ch), error);
		return;
	}
	const struct auth_login_req *r = &rep.login;
	struct audit_event ev = {
		.event = "auth", .result = "fail", .reason = auth_fail_reason_name(rep.reason),
		.user = r->authcid[0] != '\0' ? r->authcid : NULL,
		.ip = r->ip, .port = r->port, .listener = r->listener,
		.proto = auth_protocol_name(r->protocol), .mech = r->mech[0] != '\0' ? r->mech : NULL,
		.tls = r->tls[0] != '\0' ? r->tls : NULL, .session = r->session,
	};
	auth_audit(fr->auth, &ev);
}

void
auth_sender_request(struct auth_front *fr, struct ipc_frame *f)
{
	struct auth_ctx *a = fr->auth;
	struct auth_sender_req req;
	struct auth_sender_res res = { AUTH_SENDER_TEMPFAIL };
	const char *error;
	if (auth_sender_req_decode(f->data, f->len, &req, &error) < 0) {
		/* Answered all the same (temporary failure): no session may hang. */
		log_warn("auth: bad sender request from %s: %s", ipc_channel_peer(fr->ch), error);
	} else {
		int rc = directory_may_send_as(a->dir, req.user, req.address,
		    a->cfg->recipient_delimiter[0], &error);
		if (rc < 0)
			log_error("auth: sender check failed: %s", error);
		else
			res.status = rc == 1 ? AUTH_SENDER_OK : AUTH_SENDER_DENIED;
	}
	auth_sender_res_encode(a->out, &res);
	ipc_send_buf(fr->ch, AUTH_SENDER_RES, f->id, a->out, -1);
}

int
auth_login_init(struct auth_ctx *a, const char **error_r)
{
	const struct config *cfg = a->cfg;
	struct password_params pp = { (unsigned long long)cfg->argon2_opslimit,
	    (size_t)cfg->argon2_memlimit };
	char hash[PASSWORD_HASH_MAX], pw[PASSWORD_GENERATED_LENGTH + 1];
	if (password_init(error_r) < 0)
		return -1;
	crypto_generichash_keygen(a->fp_key);
	password_generate(pw, sizeof(pw));
	int rc = password_hash(pw, &pp, hash, error_r);
	sodium_memzero(pw, sizeof(pw));
	if (rc < 0 || (a->dummy_hash = strdup(hash)) == NULL)
		return -1;
	size_t queue_max = (size_t)cfg->auth_hash_rate * UNFAMILIAR_QUEUE_SECONDS;
	a->hash = hash_sched_new(a->base, (unsigned)cfg->auth_hash_workers,
	    (double)cfg->auth_hash_rate, queue_max < 4 ? 4 : queue_max);
	if (a->hash == NULL) {
		*error_r = "cannot start the hashing threads";
		return -1;
	}
	return 0;
}

void
auth_login_deinit(struct auth_ctx *a)
{
	hash_sched_free(&a->hash);
	free(a->dummy_hash);
	a->dummy_hash = NULL;
	sodium_memzero(a->fp_key, sizeof(a->fp_key));
}
