/* directory-rcpt — the RCPT TO lookup of directory.h: alias expansion. */
#include "auth/directory.h"
#include "auth/directory-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Alias targets examined per lookup, whatever the graph's shape: bounds the work
 * an alias table full of fan-out can make one RCPT cost. */
#define RCPT_MAX_WORK (10 * DIRECTORY_RCPT_MAX_TARGETS)

struct strlist {
	char **v;
	size_t n, cap;
};

struct rcpt_ctx {
	struct directory *dir;
	char delimiter;
	struct directory_rcpt *out;
	struct strlist mailboxes, external;
	struct strlist path;       /* aliases being expanded, outermost first */
	struct strlist expanded;   /* aliases already expanded in this lookup */
	size_t work;
	bool too_many;
};

enum rcpt_kind { RCPT_NONE, RCPT_USER, RCPT_ALIAS };

static bool
strlist_has(const struct strlist *l, const char *s, bool nocase)
{
	for (size_t i = 0; i < l->n; i++)
		if ((nocase ? strcasecmp(l->v[i], s) : strcmp(l->v[i], s)) == 0)
			return true;
	return false;
}

static int
strlist_push(struct strlist *l, const char *s)
{
	if (l->n == l->cap) {
		size_t cap = l->cap == 0 ? 8 : l->cap * 2;
		char **v = reallocarray(l->v, cap, sizeof(*v));
		if (v == NULL)
			return -1;
		l->v = v;
		l->cap = cap;
	}
	if ((l->v[l->n] = strdup(s)) == NULL)
		return -1;
	l->n++;
	return 0;
}

static void
strlist_free(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int
rcpt_oom(struct rcpt_ctx *ctx, const char **error_r)
{
	return directory_fail(ctx->dir, error_r, "Out of memory while expanding aliases.");
}

/* Adds a final target (a mailbox, or an external address compared without case). */
static int
rcpt_add(struct rcpt_ctx *ctx, struct strlist *l, const char *addr, bool nocase,
    const char **error_r)
{
	if (strlist_has(l, addr, nocase))
		return 0;
	if (ctx->mailboxes.n + ctx->external.n >= DIRECTORY_RCPT_MAX_TARGETS) {
		ctx->too_many = true;
		return 0;
	}
	return strlist_push(l, addr) < 0 ? rcpt_oom(ctx, error_r) : 0;
}

/* What addr is exactly: an alias (with its targets), a user, or nothing. */
static int
rcpt_find_exact(struct rcpt_ctx *ctx, const char *addr, struct strlist *targets,
    const char **error_r)
{
	struct directory *dir = ctx->dir;
	sqlite3_stmt *st = directory_prep(dir, S_ALIAS_TARGETS, error_r, 1, addr);
	if (st == NULL)
		return -1;
	int ret;
	while ((ret = directory_step(dir, st, error_r)) == 1) {
		const char *t = (const char *)sqlite3_column_text(st, 0);
		if (t != NULL && strlist_push(targets, t) < 0) {
			directory_stmt_done(st);
			return rcpt_oom(ctx, error_r);
		}
	}
	if (ret < 0)
		return -1;
	directory_stmt_done(st);
	if (targets->n > 0)
		return RCPT_ALIAS;
	ret = directory_exists(dir, directory_prep(dir, S_USER_EXISTS, error_r, 1, addr), error_r);
	return ret < 0 ? -1 : ret > 0 ? RCPT_USER : RCPT_NONE;
}

/*
 * What addr is, trying "user+tag@dom" as "user@dom" when it matches nothing
 * (the tag starts at the first delimiter, as in Postfix). canon receives the
 * address that matched.
 */
static int
rcpt_find(struct rcpt_ctx *ctx, const char *addr, char canon[DIRECTORY_ADDR_BUF],
    struct strlist *targets, const char **error_r)
{
	snprintf(canon, DIRECTORY_ADDR_BUF, "%s", addr);
	int kind = rcpt_find_exact(ctx, canon, targets, error_r);
	if (kind != RCPT_NONE || ctx->delimiter == '\0')
		return kind;
	const char *at = strrchr(addr, '@');
	const char *tag = memchr(addr, ctx->delimiter, (size_t)(at - addr));
	if (tag == NULL || tag == addr)
		return kind;
	snprintf(canon, DIRECTORY_ADDR_BUF, "%.*s%s", (int)(tag - addr), addr, at);
	return rcpt_find_exact(ctx, canon, targets, error_r);
}

static int
rcpt_expand(struct rcpt_ctx *ctx, const char *addr, const char **error_r)
{
	struct directory *dir = ctx->dir;
	struct strlist targets = { 0 };
	char canon[DIRECTORY_ADDR_BUF];
	int ret = 0, kind = rcpt_find(ctx, addr, canon, &targets, error_r);
	if (kind < 0)
		goto out;
	if (kind == RCPT_NONE) {
		if (ctx->path.n > 0)
			ctx->out->dangling = true;
		goto out;
	}
	if (kind == RCPT_USER) {
		ret = rcpt_add(ctx, &ctx->mailboxes, canon, false, error_r);
		goto out;
	}
	if (strlist_has(&ctx->path, canon, false)) {
		/* Back to an alias on the way here: a loop, unless the alias is also a
		 * user, which is how one keeps a copy while forwarding (Postfix idiom). */
		ret = directory_exists(dir, directory_prep(dir, S_USER_EXISTS, error_r, 1, canon),
		    error_r);
		if (ret > 0)
			ret = rcpt_add(ctx, &ctx->mailboxes, canon, false, error_r);
		else if (ret == 0)
			ctx->out->loop = true;
		goto out;
	}
	if (strlist_has(&ctx->expanded, canon, false))
		goto out;   /* reached twice (a diamond): its targets are in already */
	if (ctx->path.n >= DIRECTORY_ALIAS_MAX_DEPTH) {
		ctx->out->too_deep = true;
		goto out;
	}
	if (strlist_push(&ctx->path, canon) < 0 || strlist_push(&ctx->expanded, canon) < 0) {
		ret = rcpt_oom(ctx, error_r);
		goto out;
	}
	for (size_t i = 0; i < targets.n && ret == 0 && !ctx->too_many; i++) {
		if (++ctx->work > RCPT_MAX_WORK) {
			ctx->too_many = true;
			break;
		}
		const char *t = targets.v[i];
		const char *at = strrchr(t, '@');
		int local = at == NULL ? 0 : directory_exists(dir,
		    directory_prep(dir, S_DOMAIN_EXISTS, error_r, 1, at + 1), error_r);
		if (local < 0)
			ret = -1;
		else if (local == 0)
			ret = rcpt_add(ctx, &ctx->external, t, true, error_r);
		else
			ret = rcpt_expand(ctx, t, error_r);
	}
	free(ctx->path.v[--ctx->path.n]);
out:
	strlist_free(&targets);
	return kind < 0 ? -1 : ret < 0 ? -1 : 0;
}

int
directory_lookup_rcpt(struct directory *dir, const char *address, char delimiter,
    struct directory_rcpt *out, const char **error_r)
{
	memset(out, 0, sizeof(*out));
	out->status = DIRECTORY_RCPT_NO_SUCH_USER;
	size_t len = strlen(address);
	const char *at = strrchr(address, '@');
	if (len > DIRECTORY_ADDRESS_MAX || at == NULL || at == address)
		return 0;
	char addr[DIRECTORY_ADDR_BUF];
	for (size_t i = 0; i <= len; i++)
		addr[i] = directory_ascii_lower(address[i]);
	const char *domain = addr + (at - address) + 1;

	/* One read transaction: the whole expansion sees one snapshot. */
	if (directory_begin(dir, false, error_r) < 0)
		return -1;
	int local = directory_exists(dir, directory_prep(dir, S_DOMAIN_EXISTS, error_r, 1,
	    domain), error_r);
	if (local <= 0) {
		directory_rollback(dir);
		if (local == 0)
			out->status = DIRECTORY_RCPT_NOT_LOCAL_DOMAIN;
		return local;
	}
	struct rcpt_ctx ctx = { .dir = dir, .delimiter = delimiter, .out = out };
	int ret = rcpt_expand(&ctx, addr, error_r);
	if (ret == 0)
		ret = directory_commit(dir, error_r);
	strlist_free(&ctx.path);
	strlist_free(&ctx.expanded);
	if (ret < 0 || ctx.too_many) {
		directory_rollback(dir);
		strlist_free(&ctx.mailboxes);
		strlist_free(&ctx.external);
		memset(out, 0, sizeof(*out));
		if (ret == 0)
			out->status = DIRECTORY_RCPT_TOO_MANY;
		return ret;
	}
	out->mailboxes = ctx.mailboxes.v;
	out->nmailboxes = ctx.mailboxes.n;
	out->external = ctx.external.v;
	out->nexternal = ctx.external.n;
	if (out->nmailboxes + out->nexternal > 0)
		out->status = DIRECTORY_RCPT_OK;
	return 0;
}

void
directory_rcpt_free(struct directory_rcpt *rcpt)
{
	for (size_t i = 0; i < rcpt->nmailboxes; i++)
		free(rcpt->mailboxes[i]);
	for (size_t i = 0; i < rcpt->nexternal; i++)
		free(rcpt->external[i]);
	free(rcpt->mailboxes);
	free(rcpt->external);
	memset(rcpt, 0, sizeof(*rcpt));
}
