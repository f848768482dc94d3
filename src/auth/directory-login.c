/*
 * directory-login — what a login and a sender check need from the directory:
 * the user's hash, switches and networks in one read; the per-user and
 * per-domain protocol switches; send-as grants and the sender-ownership rule.
 * See directory.h.
 */
#include "auth/directory.h"
#include "auth/directory-private.h"
#include "lib/netaddr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

static const enum directory_stmt_id user_set_stmt[DIRECTORY_PROTO_COUNT] = {
	S_USER_SET_SMTP, S_USER_SET_IMAP, S_USER_SET_POP3,
};
static const enum directory_stmt_id domain_set_stmt[DIRECTORY_PROTO_COUNT] = {
	S_DOMAIN_SET_SMTP, S_DOMAIN_SET_IMAP, S_DOMAIN_SET_POP3,
};

const char *
directory_protocol_name(enum directory_protocol p)
{
	static const char *const names[DIRECTORY_PROTO_COUNT] = { "smtp-auth", "imap", "pop3" };
	return p < DIRECTORY_PROTO_COUNT ? names[p] : "?";
}

static char *
column_dup(sqlite3_stmt *st, int col)
{
	const char *t = (const char *)sqlite3_column_text(st, col);
	return strdup(t != NULL ? t : "");
}

int
directory_login_get(struct directory *dir, const char *address, struct directory_login *out,
    const char **error_r)
{
	char addr[DIRECTORY_ADDR_BUF];
	const char *ignored;
	memset(out, 0, sizeof(*out));
	if (directory_address_normalize(address, addr, sizeof(addr), &ignored) < 0)
		return 0;
	sqlite3_stmt *st = directory_prep(dir, S_LOGIN_GET, error_r, 1, addr);
	int ret = st == NULL ? -1 : directory_step(dir, st, error_r);
	if (ret == 0)
		directory_stmt_done(st);
	if (ret <= 0)
		return ret;
	snprintf(out->address, sizeof(out->address), "%s", (const char *)sqlite3_column_text(st, 0));
	out->hash = column_dup(st, 1);
	out->enabled = sqlite3_column_int(st, 2) != 0;
	for (int p = 0; p < DIRECTORY_PROTO_COUNT; p++) {
		out->protocol[p] = sqlite3_column_int(st, 3 + p) != 0;
		out->user_protocol[p] = sqlite3_column_type(st, 7 + p) == SQLITE_NULL ? -1 :
		    sqlite3_column_int(st, 7 + p) != 0;
	}
	out->networks = column_dup(st, 6);
	directory_stmt_done(st);
	if (out->hash == NULL || out->networks == NULL) {
		directory_login_free(out);
		return directory_fail(dir, error_r, "Out of memory.");
	}
	return 1;
}

void
directory_login_free(struct directory_login *l)
{
	if (l->hash != NULL) {
		sodium_memzero(l->hash, strlen(l->hash));
		free(l->hash);
	}
	free(l->networks);
	memset(l, 0, sizeof(*l));
}

/* One UPDATE of one row, in its own write transaction; "No such ..." when it
 * matched nothing. value NULL binds SQL NULL. */
static int
update_one(struct directory *dir, enum directory_stmt_id id, const char *key,
    const char *what, const char *text, const int64_t *number, bool is_null,
    const char **error_r)
{
	if (directory_begin(dir, true, error_r) < 0)
		return -1;
	sqlite3_stmt *st = directory_prep(dir, id, error_r, 1, key);
	if (st != NULL) {
		if (is_null)
			sqlite3_bind_null(st, 2);
		else if (text != NULL)
			sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
		else
			sqlite3_bind_int64(st, 2, (sqlite3_int64)*number);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
	}
	if (directory_run(dir, st, error_r) < 0)
		return directory_rollback(dir);
	if (sqlite3_changes(dir->db) == 0) {
		directory_rollback(dir);
		return directory_fail(dir, error_r, "No such %s: %s.", what, key);
	}
	if (directory_commit(dir, error_r) < 0)
		return directory_rollback(dir);
	return 0;
}

int
directory_user_set_protocol(struct directory *dir, const char *address,
    enum directory_protocol p, int value, const char **error_r)
{
	char addr[DIRECTORY_ADDR_BUF];
	if (p >= DIRECTORY_PROTO_COUNT)
		return directory_fail(dir, error_r, "Unknown protocol.");
	if (directory_address_normalize(address, addr, sizeof(addr), error_r) < 0)
		return -1;
	int64_t v = value > 0;
	return update_one(dir, user_set_stmt[p], addr, "user", NULL, &v, value < 0, error_r);
}

int
directory_user_set_networks(struct directory *dir, const char *address, const char *networks,
    const char **error_r)
{
	char addr[DIRECTORY_ADDR_BUF];
	struct cidr_list list = { 0 };
	if (directory_address_normalize(address, addr, sizeof(addr), error_r) < 0)
		return -1;
	if (cidr_list_parse(networks, &list, error_r) < 0)
		return -1;
	/* Store the canonical form, so what `user show` prints is what is enforced. */
	size_t cap = list.n * CIDR_TEXT_MAX + 1, used = 0;
	char *canon = calloc(1, cap);
	if (canon == NULL) {
		cidr_list_free(&list);
		return directory_fail(dir, error_r, "Out of memory.");
	}
	for (size_t i = 0; i < list.n; i++) {
		char one[CIDR_TEXT_MAX];
		cidr_format(&list.v[i], one, sizeof(one));
		used += (size_t)snprintf(canon + used, cap - used, "%s%s", i > 0 ? "," : "", one);
	}
	cidr_list_free(&list);
	int ret = update_one(dir, S_USER_SET_NETWORKS, addr, "user", canon, NULL, false, error_r);
	free(canon);
	return ret;
}

int
directory_user_set_enabled(struct directory *dir, const char *address, bool enabled,
    const char **error_r)
{
	char addr[DIRECTORY_ADDR_BUF];
	if (directory_address_normalize(address, addr, sizeof(addr), error_r) < 0)
		return -1;
	int64_t v = enabled;
	return update_one(dir, S_USER_SET_ENABLED, addr, "user", NULL, &v, false, error_r);
}

int
directory_domain_set_protocol(struct directory *dir, const char *domain,
    enum directory_protocol p, bool on, const char **error_r)
{
	char dom[DIRECTORY_DOMAIN_MAX + 1];
	if (p >= DIRECTORY_PROTO_COUNT)
		return directory_fail(dir, error_r, "Unknown protocol.");
	if (directory_domain_normalize(domain, dom, sizeof(dom), error_r) < 0 ||
	    directory_begin(dir, true, error_r) < 0)
		return -1;
	sqlite3_stmt *st = directory_prep(dir, domain_set_stmt[p], error_r, 1, dom);
	if (st != NULL)
		sqlite3_bind_int(st, 2, on);
	if (directory_run(dir, st, error_r) < 0)
		return directory_rollback(dir);
	if (sqlite3_changes(dir->db) == 0) {
		directory_rollback(dir);
		return directory_fail(dir, error_r, "No such domain: %s.", dom);
	}
	if (directory_commit(dir, error_r) < 0)
		return directory_rollback(dir);
	return 0;
}

int
directory_domain_get_protocols(struct directory *dir, const char *domain,
    bool on_r[DIRECTORY_PROTO_COUNT], const char **error_r)
{
	char dom[DIRECTORY_DOMAIN_MAX + 1];
	if (directory_domain_normalize(domain, dom, sizeof(dom), error_r) < 0)
		return -1;
	sqlite3_stmt *st = directory_prep(dir, S_DOMAIN_GET, error_r, 1, dom);
	int ret = st == NULL ? -1 : directory_step(dir, st, error_r);
	if (ret == 1) {
		for (int p = 0; p < DIRECTORY_PROTO_COUNT; p++)
			on_r[p] = sqlite3_column_int(st, p) != 0;
		directory_stmt_done(st);
	} else if (ret == 0) {
		directory_stmt_done(st);
	}
	return ret;
}

/* ---------------------------------------------------------------- send-as */

/* "@domain" or a full address, canonical, into buf. */
static int
grant_normalize(const char *address, char *buf, size_t size, const char **error_r)
{
	if (address[0] == '@') {
		if (size < 2)
			return -1;
		buf[0] = '@';
		return directory_domain_normalize(address + 1, buf + 1, size - 1, error_r);
	}
	return directory_address_normalize(address, buf, size, error_r);
}

static int
send_as_write(struct directory *dir, enum directory_stmt_id id, const char *user,
    const char *address, const char **error_r)
{
	char u[DIRECTORY_ADDR_BUF], a[DIRECTORY_ADDR_BUF];
	if (directory_address_normalize(user, u, sizeof(u), error_r) < 0 ||
	    grant_normalize(address, a, sizeof(a), error_r) < 0 ||
	    directory_begin(dir, true, error_r) < 0)
		return -1;
	if (id == S_SENDAS_ADD) {
		int ret = directory_exists(dir, directory_prep(dir, S_USER_EXISTS, error_r, 1, u),
		    error_r);
		if (ret <= 0) {
			directory_rollback(dir);
			return ret < 0 ? -1 : directory_fail(dir, error_r, "No such user: %s.", u);
		}
		ret = directory_exists(dir, directory_prep(dir, S_SENDAS_MATCH, error_r, 4, u, a,
		    a, a), error_r);
		if (ret != 0) {
			directory_rollback(dir);
			return ret < 0 ? -1 : directory_fail(dir, error_r,
			    "%s may already send as %s.", u, a);
		}
	}
	sqlite3_stmt *st = directory_prep(dir, id, error_r, 2, u, a);
	if (st != NULL && id == S_SENDAS_ADD)
		sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
	if (directory_run(dir, st, error_r) < 0)
		return directory_rollback(dir);
	if (sqlite3_changes(dir->db) == 0) {
		directory_rollback(dir);
		return directory_fail(dir, error_r, "%s has no send-as grant for %s.", u, a);
	}
	if (directory_commit(dir, error_r) < 0)
		return directory_rollback(dir);
	return 0;
}

int
directory_send_as_add(struct directory *dir, const char *user, const char *address,
    const char **error_r)
{
	return send_as_write(dir, S_SENDAS_ADD, user, address, error_r);
}

int
directory_send_as_del(struct directory *dir, const char *user, const char *address,
    const char **error_r)
{
	return send_as_write(dir, S_SENDAS_DEL, user, address, error_r);
}

struct pair_adapter {
	directory_alias_cb *cb;
	void *ctx;
};

static int
pair_adapt(const char *a, const char *b, void *ctx)
{
	struct pair_adapter *ad = ctx;
	return ad->cb(a, b, ad->ctx);
}

int
directory_send_as_list(struct directory *dir, const char *user, directory_alias_cb *cb,
    void *ctx, const char **error_r)
{
	char u[DIRECTORY_ADDR_BUF];
	struct pair_adapter ad = { cb, ctx };
	if (user == NULL)
		return directory_list_rows(dir, directory_stmt(dir, S_SENDAS_LIST, error_r), 2,
		    pair_adapt, &ad, error_r);
	if (directory_address_normalize(user, u, sizeof(u), error_r) < 0)
		return -1;
	return directory_list_rows(dir, directory_prep(dir, S_SENDAS_LIST_USER, error_r, 1, u), 2,
	    pair_adapt, &ad, error_r);
}

int
directory_may_send_as(struct directory *dir, const char *user, const char *address,
    char delimiter, const char **error_r)
{
	char addr[DIRECTORY_ADDR_BUF], base[DIRECTORY_ADDR_BUF], dom[DIRECTORY_ADDR_BUF];
	const char *ignored;
	if (directory_address_normalize(address, addr, sizeof(addr), &ignored) < 0)
		return 0;   /* not a mailbox we could ever grant */
	/* user+tag@domain is still the user (RFC 5233 subaddressing). */
	snprintf(base, sizeof(base), "%s", addr);
	char *at = strrchr(base, '@');
	if (delimiter != '\0' && at != NULL) {
		char *d = memchr(base, delimiter, (size_t)(at - base));
		if (d != NULL && d != base)
			memmove(d, at, strlen(at) + 1);
	}
	if (strcmp(addr, user) == 0 || strcmp(base, user) == 0)
		return 1;
	snprintf(dom, sizeof(dom), "%s", strrchr(addr, '@'));
	int ret = directory_exists(dir, directory_prep(dir, S_SENDAS_MATCH, error_r, 4, user, addr,
	    base, dom), error_r);
	if (ret != 0)
		return ret;
	/* An alias that delivers to the user is the user's to send as. */
	struct directory_rcpt r = { 0 };
	if (directory_lookup_rcpt(dir, addr, delimiter, &r, error_r) < 0)
		return -1;
	ret = 0;
	if (r.status == DIRECTORY_RCPT_OK)
		for (size_t i = 0; i < r.nmailboxes && ret == 0; i++)
			ret = strcmp(r.mailboxes[i], user) == 0;
	directory_rcpt_free(&r);
	return ret;
}
