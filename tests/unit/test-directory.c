/*
 * Unit tests for directory: a fresh SQLite file per test in a temporary
 * directory. Migrations and reopening, domains, users, aliases, every syntax
 * refusal, the cascade, recipient lookup (aliases with loops, depth, duplicates,
 * external targets, subaddressing, limits) and two processes writing at once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "auth/directory.h"

#define HASH "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"

struct fixture {
	char tmpdir[256];
	char path[512];
	struct directory *dir;
};

static int
setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	const char *tmp = getenv("TMPDIR");
	snprintf(fx->tmpdir, sizeof(fx->tmpdir), "%s/rampart-test-dir-XXXXXX",
	    tmp != NULL ? tmp : "/tmp");
	if (mkdtemp(fx->tmpdir) == NULL)
		return -1;
	/* a parent that does not exist yet: directory_open creates it */
	snprintf(fx->path, sizeof(fx->path), "%s/state/sub/directory.db", fx->tmpdir);
	char *error = NULL;
	fx->dir = directory_open(fx->path, &error);
	if (fx->dir == NULL) {
		fprintf(stderr, "directory_open: %s\n", error);
		free(error);
		return -1;
	}
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;
	directory_close(&fx->dir);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->tmpdir);
	if (system(cmd) != 0)
		return -1;
	free(fx);
	return 0;
}

/* Collects listing callbacks into "a b" lines. */
struct collect {
	char buf[8192];
	int n;
};

static int
collect1(const char *a, void *ctx)
{
	struct collect *c = ctx;
	size_t len = strlen(c->buf);
	snprintf(c->buf + len, sizeof(c->buf) - len, "%s%s", c->n++ > 0 ? "," : "", a);
	return 0;
}

static int
collect2(const char *a, const char *b, void *ctx)
{
	struct collect *c = ctx;
	size_t len = strlen(c->buf);
	snprintf(c->buf + len, sizeof(c->buf) - len, "%s%s>%s", c->n++ > 0 ? "," : "", a, b);
	return 0;
}

/* The error is passed by address: it is read after the call has set it (the
 * order in which arguments are evaluated is unspecified). */
static void
ok(int ret, const char *const *errorp)
{
	if (ret < 0)
		fail_msg("unexpected error: %s", *errorp != NULL ? *errorp : "(none)");
}

/* -1 with an error that starts with prefix. */
static void
refused(int ret, const char *const *errorp, const char *prefix)
{
	const char *error = *errorp;
	assert_int_equal(ret, -1);
	assert_non_null(error);
	if (strncmp(error, prefix, strlen(prefix)) != 0)
		fail_msg("error \"%s\" does not start with \"%s\"", error, prefix);
}

static void
add_domain(struct directory *dir, const char *name)
{
	const char *error = NULL;
	ok(directory_domain_add(dir, name, &error), &error);
}

static void
add_user(struct directory *dir, const char *address)
{
	const char *error = NULL;
	ok(directory_user_add(dir, address, HASH, &error), &error);
}

static void
add_alias(struct directory *dir, const char *alias, const char *target)
{
	const char *error = NULL;
	ok(directory_alias_add(dir, alias, target, '+', &error), &error);
}

/* ---------------------------------------------------------------- schema */

static void
test_open_migrate_reopen(void **state)
{
	struct fixture *fx = *state;
	struct stat sb;
	assert_int_equal(stat(fx->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(directory_schema_version(fx->dir), 2);
	add_domain(fx->dir, "example.org");
	add_user(fx->dir, "bob@example.org");
	directory_close(&fx->dir);
	assert_null(fx->dir);
	directory_close(&fx->dir);   /* twice is harmless */

	/* reopening migrates nothing and keeps the data */
	char *error = NULL;
	fx->dir = directory_open(fx->path, &error);
	assert_non_null(fx->dir);
	const char *err;
	assert_int_equal(directory_user_exists(fx->dir, "bob@example.org", &err), 1);

	sqlite3 *db;
	assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 2);
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);

	/* a database from a newer Rampart is refused, not downgraded */
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	directory_close(&fx->dir);
	fx->dir = directory_open(fx->path, &error);
	assert_null(fx->dir);
	assert_non_null(strstr(error, "schema version 99"));
	free(error);
}

static void
test_open_failure(void **state)
{
	char *error = NULL;
	assert_null(directory_open("/proc/nonexistent/dir/directory.db", &error));
	assert_non_null(error);
	assert_non_null(strstr(error, "Cannot"));
	free(error);
}

/* ---------------------------------------------------------------- domains */

static void
test_domains(void **state)
{
	struct fixture *fx = *state;
	const char *error = NULL;
	add_domain(fx->dir, "Example.ORG");
	add_domain(fx->dir, "a-b.example.net");
	add_domain(fx->dir, "xn--bcher-kva.example");
	refused(directory_domain_add(fx->dir, "example.org", &error), &error,
	    "Domain example.org already exists.");
	assert_int_equal(directory_domain_exists(fx->dir, "EXAMPLE.org", &error), 1);
	assert_int_equal(directory_domain_exists(fx->dir, "example.com", &error), 0);
	assert_int_equal(directory_domain_exists(fx->dir, "bad..name", &error), 0);

	static const char *const bad[][2] = {
		{ "", "The domain name is empty." },
		{ ".example.org", "The domain name has an empty label" },
		{ "example.org.", "The domain name has an empty label" },
		{ "exa..mple", "The domain name has an empty label" },
		{ "-example.org", "A domain label cannot start with '-'." },
		{ "example-.org", "A domain label cannot end with '-'." },
		{ "exa_mple.org", "A domain name may contain only" },
		{ "exa mple.org", "A domain name may contain only" },
		{ "b\xc3\xbc" "cher.example", "Domain names must be ASCII" },
		{ "192.168.1.1", "The domain name looks like an IP address" },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.org",
		  "A domain label is longer than 63 characters." },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused(directory_domain_add(fx->dir, bad[i][0], &error), &error, bad[i][1]);

	struct collect c = { .n = 0 };
	ok(directory_domain_list(fx->dir, collect1, &c, &error), &error);
	assert_string_equal(c.buf, "a-b.example.net,example.org,xn--bcher-kva.example");

	refused(directory_domain_del(fx->dir, "nope.example", false, &error), &error,
	    "No such domain: nope.example.");
	ok(directory_domain_del(fx->dir, "A-B.example.net", false, &error), &error);
	assert_int_equal(directory_domain_exists(fx->dir, "a-b.example.net", &error), 0);
}

static void
test_domain_del_cascade(void **state)
{
	struct fixture *fx = *state;
	const char *error = NULL;
	add_domain(fx->dir, "example.org");
	add_domain(fx->dir, "example.net");
	add_user(fx->dir, "bob@example.org");
	add_user(fx->dir, "carol@example.org");
	add_user(fx->dir, "dave@example.net");
	add_alias(fx->dir, "info@example.org", "bob@example.org");
	refused(directory_domain_del(fx->dir, "example.org", false, &error), &error,
	    "Domain example.org still has 2 user(s) and 1 alias target(s); delete them first "
	    "or force the deletion (--force).");
	assert_int_equal(directory_user_exists(fx->dir, "bob@example.org", &error), 1);
	ok(directory_domain_del(fx->dir, "example.org", true, &error), &error);
	assert_int_equal(directory_user_exists(fx->dir, "bob@example.org", &error), 0);
	struct collect c = { .n = 0 };
	ok(directory_user_list(fx->dir, NULL, collect1, &c, &error), &error);
	assert_string_equal(c.buf, "dave@example.net");
	struct collect a = { .n = 0 };
	ok(directory_alias_list(fx->dir, NULL, collect2, &a, &error), &error);
	assert_string_equal(a.buf, "");
	/* the domain can come back, empty */
	add_domain(fx->dir, "example.org");
	add_user(fx->dir, "bob@example.org");
}

/* ---------------------------------------------------------------- users */

static void
test_users(void **state)
{
	struct fixture *fx = *state;
	const char *error = NULL;
	add_domain(fx->dir, "example.org");
	add_domain(fx->dir, "example.net");
	add_user(fx->dir, "Bob@Example.org");
	add_user(fx->dir, "alice.smith@example.org");
	add_user(fx->dir, "zed@example.net");
	add_user(fx->dir, "j\xc3\xb6rg@example.org");   /* UTF-8 local part */
	add_user(fx->dir, "a+b_c-d@example.org");
	refused(directory_user_add(fx->dir, "BOB@example.org", HASH, &error), &error,
	    "User bob@example.org already exists.");
	refused(directory_user_add(fx->dir, "eve@nowhere.example", HASH, &error), &error,
	    "Domain nowhere.example is not a local domain");
	refused(directory_user_add(fx->dir, "eve@example.org", "", &error), &error,
	    "The password hash is empty");

	struct collect c = { .n = 0 };
	ok(directory_user_list(fx->dir, NULL, collect1, &c, &error), &error);
	assert_string_equal(c.buf, "zed@example.net,a+b_c-d@example.org,alice.smith@example.org,"
	    "bob@example.org,j\xc3\xb6rg@example.org");
	struct collect c2 = { .n = 0 };
	ok(directory_user_list(fx->dir, "EXAMPLE.NET", collect1, &c2, &error), &error);
	assert_string_equal(c2.buf, "zed@example.net");

	char *hash = NULL;
	assert_int_equal(directory_user_get_hash(fx->dir, "BOB@example.org", &hash, &error), 1);
	assert_string_equal(hash, HASH);
	free(hash);
	assert_int_equal(directory_user_get_hash(fx->dir, "nobody@example.org", &hash, &error), 0);
	assert_null(hash);
	assert_int_equal(directory_user_get_hash(fx->dir, "not an address", &hash, &error), 0);

	ok(directory_user_set_password(fx->dir, "bob@example.org", "$argon2id$new", &error),
	    &error);
	assert_int_equal(directory_user_get_hash(fx->dir, "bob@example.org", &hash, &error), 1);
	assert_string_equal(hash, "$argon2id$new");
	free(hash);
	refused(directory_user_set_password(fx->dir, "nobody@example.org", HASH, &error), &error,
	    "No such user: nobody@example.org.");

	ok(directory_user_del(fx->dir, "Bob@example.ORG", &error), &error);
	assert_int_equal(directory_user_exists(fx->dir, "bob@example.org", &error), 0);
	refused(directory_user_del(fx->dir, "bob@example.org", &error), &error,
	    "No such user: bob@example.org.");
}

static void
test_local_part_rules(void **state)
{
	struct fixture *fx = *state;
	const char *error = NULL;
	add_domain(fx->dir, "example.org");
	static const char *const bad[][2] = {
		{ "@example.org", "The local part (before '@') is empty." },
		{ "example.org", "The address has no '@'" },
		{ ".bob@example.org", "The local part cannot start or end with a dot." },
		{ "bob.@example.org", "The local part cannot start or end with a dot." },
		{ "b..ob@example.org", "The local part cannot contain \"..\"." },
		{ "../etc@example.org", "The local part cannot start or end with a dot." },
		{ "a/b@example.org", "The local part may contain only" },
		{ "a b@example.org", "The local part may contain only" },
		{ "a\tb@example.org", "The local part may contain only" },
		{ "a\"b@example.org", "The local part may contain only" },
		{ "a\xff" "b@example.org", "The local part is not valid UTF-8." },
		{ "a\xc3@example.org", "The local part is not valid UTF-8." },
		{ "a\xc2\x85" "b@example.org", "The local part is not valid UTF-8." },
		{ "a\xed\xa0\x80" "b@example.org", "The local part is not valid UTF-8." },
		{ "bob@", "The domain name is empty." },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@example.org",
		  "The local part is longer than 64 octets." },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused(directory_user_add(fx->dir, bad[i][0], HASH, &error), &error, bad[i][1]);
	/* 64 octets is fine */
	add_user(fx->dir,
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@example.org");
	char buf[DIRECTORY_ADDRESS_MAX + 1];
	ok(directory_address_normalize("Mixed.Case@EXAMPLE.Org", buf, sizeof(buf), &error), &error);
	assert_string_equal(buf, "mixed.case@example.org");
}

/* ---------------------------------------------------------------- aliases */

static void
test_aliases(void **state)
{
	struct fixture *fx = *state;
	const char *error = NULL;
	add_domain(fx->dir, "example.org");
	add_domain(fx->dir, "example.net");
	add_user(fx->dir, "bob@example.org");
	add_user(fx->dir, "carol@example.net");
	add_alias(fx->dir, "Info@example.org", "BOB@example.org");
	add_alias(fx->dir, "info@example.org", "carol@example.net");
	add_alias(fx->dir, "info@example.org", "Someone@Elsewhere.EXAMPLE");
	add_alias(fx->dir, "sales@example.net", "info@example.org");
	refused(directory_alias_add(fx->dir, "info@example.org", "bob@example.org", '+', &error),
	    &error, "Alias info@example.org already points to bob@example.org.");
	refused(directory_alias_add(fx->dir, "info@example.org", "someone@elsewhere.example", '+',
	    &error), &error, "Alias info@example.org already points to");
	refused(directory_alias_add(fx->dir, "x@remote.example", "bob@example.org", '+', &error),
	    &error, "Domain remote.example is not a local domain; an alias must be in a local "
	    "domain.");
	refused(directory_alias_add(fx->dir, "x@example.org", "typo@example.org", '+', &error),
	    &error, "Target typo@example.org is in a local domain but is neither a user nor an "
	    "alias.");
	refused(directory_alias_add(fx->dir, "x@example.org", "x@example.org", '+', &error),
	    &error, "An alias can point to itself only when it is also a user");
	refused(directory_alias_add(fx->dir, "x@example.org", "no-at-sign", '+', &error),
	    &error, "The address has no '@'");
	refused(directory_alias_add(fx->dir, "x@example.org", "a b@remote.example", '+', &error),
	    &error, "The target's local part contains a character");
	refused(directory_alias_add(fx->dir, "x@example.org", "a..b@remote.example", '+', &error),
	    &error, "The target's local part has a misplaced dot.");
	refused(directory_alias_add(fx->dir, "x@example.org", "a@remote..example", '+', &error),
	    &error, "The domain name has an empty label");
	/* self-alias of a user: keep a copy while forwarding */
	add_alias(fx->dir, "bob@example.org", "bob@example.org");
	add_alias(fx->dir, "bob@example.org", "bob@gmail.example");

	struct collect c = { .n = 0 };
	ok(directory_alias_list(fx->dir, NULL, collect2, &c, &error), &error);
	assert_string_equal(c.buf, "bob@example.org>bob@example.org,bob@example.org>"
	    "bob@gmail.example,info@example.org>bob@example.org,info@example.org>"
	    "carol@example.net,info@example.org>Someone@elsewhere.example,"
	    "sales@example.net>info@example.org");
	struct collect c2 = { .n = 0 };
	ok(directory_alias_list(fx->dir, "example.net", collect2, &c2, &error), &error);
	assert_string_equal(c2.buf, "sales@example.net>info@example.org");

	refused(directory_alias_del(fx->dir, "info@example.org", "nobody@example.org", &error),
	    &error, "Alias info@example.org does not point to nobody@example.org.");
	ok(directory_alias_del(fx->dir, "info@example.org", "someone@ELSEWHERE.example", &error),
	    &error);
	ok(directory_alias_del(fx->dir, "INFO@example.org", NULL, &error), &error);
	refused(directory_alias_del(fx->dir, "info@example.org", NULL, &error), &error,
	    "No such alias: info@example.org.");
}

/* ---------------------------------------------------------------- lookup */

static void
lookup(struct directory *dir, const char *address, char delimiter,
    enum directory_rcpt_status status, const char *mailboxes, const char *external,
    struct directory_rcpt *out)
{
	const char *error = NULL;
	ok(directory_lookup_rcpt(dir, address, delimiter, out, &error), &error);
	assert_int_equal(out->status, status);
	char buf[8192] = "";
	for (size_t i = 0; i < out->nmailboxes; i++)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s", i > 0 ? "," : "",
		    out->mailboxes[i]);
	assert_string_equal(buf, mailboxes);
	buf[0] = '\0';
	for (size_t i = 0; i < out->nexternal; i++)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s", i > 0 ? "," : "",
		    out->external[i]);
	assert_string_equal(buf, external);
}

static void
check(struct directory *dir, const char *address, char delimiter,
    enum directory_rcpt_status status, const char *mailboxes, const char *external)
{
	struct directory_rcpt r;
	lookup(dir, address, delimiter, status, mailboxes, external, &r);
	directory_rcpt_free(&r);
	assert_null(r.mailboxes);
	directory_rcpt_free(&r);
}

static void
test_lookup_basic(void **state)
{
	struct fixture *fx = *state;
	add_domain(fx->dir, "example.org");
	add_user(fx->dir, "bob@example.org");
	check(fx->dir, "bob@example.org", '+', DIRECTORY_RCPT_OK, "bob@example.org", "");
	check(fx->dir, "BoB@Example.ORG", '+', DIRECTORY_RCPT_OK, "bob@example.org", "");
	check(fx->dir, "alice@example.org", '+', DIRECTORY_RCPT_NO_SUCH_USER, "", "");
	check(fx->dir, "bob@example.com", '+', DIRECTORY_RCPT_NOT_LOCAL_DOMAIN, "", "");
	check(fx->dir, "bob", '+', DIRECTORY_RCPT_NO_SUCH_USER, "", "");
	check(fx->dir, "@example.org", '+', DIRECTORY_RCPT_NO_SUCH_USER, "", "");
	check(fx->dir, "\"b o b\"@example.org", '+', DIRECTORY_RCPT_NO_SUCH_USER, "", "");
	check(fx->dir, "bob@[192.0.2.1]", '+', DIRECTORY_RCPT_NOT_LOCAL_DOMAIN, "", "");
}

static void
test_lookup_subaddress(void **state)
{
	struct fixture *fx = *state;
	add_domain(fx->dir, "example.org");
	add_user(fx->dir, "bob@example.org");
	add_user(fx->dir, "bob+exact@example.org");
	add_user(fx->dir, "carol@example.org");
	add_alias(fx->dir, "team@example.org", "carol@example.org");
	add_alias(fx->dir, "list@example.org", "bob+lists@example.org");
	const char *error = NULL;
	refused(directory_alias_add(fx->dir, "x@example.org", "bob-lists@example.org", '+',
	    &error), &error, "Target bob-lists@example.org is in a local domain");
	check(fx->dir, "bob+tag@example.org", '+', DIRECTORY_RCPT_OK, "bob@example.org", "");
	check(fx->dir, "Bob+Tag+more@example.org", '+', DIRECTORY_RCPT_OK, "bob@example.org", "");
	/* an exact match wins over the stripped form */
	check(fx->dir, "bob+exact@example.org", '+', DIRECTORY_RCPT_OK, "bob+exact@example.org",
	    "");
	check(fx->dir, "team+x@example.org", '+', DIRECTORY_RCPT_OK, "carol@example.org", "");
	/* a target with a tag resolves too */
	check(fx->dir, "list@example.org", '+', DIRECTORY_RCPT_OK, "bob@example.org", "");
	/* other delimiters, and none */
	check(fx->dir, "bob-tag@example.org", '-', DIRECTORY_RCPT_OK, "bob@example.org", "");
	check(fx->dir, "bob-tag@example.org", '+', DIRECTORY_RCPT_NO_SUCH_USER, "", "");
	check(fx->dir, "bob+tag@example.org", '\0', DIRECTORY_RCPT_NO_SUCH_USER, "", "");
	check(fx->dir, "+tag@example.org", '+', DIRECTORY_RCPT_NO_SUCH_USER, "", "");
}

static void
test_lookup_aliases(void **state)
{
	struct fixture *fx = *state;
	add_domain(fx->dir, "example.org");
	add_domain(fx->dir, "example.net");
	add_user(fx->dir, "bob@example.org");
	add_user(fx->dir, "carol@example.org");
	add_user(fx->dir, "dave@example.net");
	add_alias(fx->dir, "team@example.org", "bob@example.org");
	add_alias(fx->dir, "team@example.org", "carol@example.org");
	add_alias(fx->dir, "all@example.org", "team@example.org");
	add_alias(fx->dir, "all@example.org", "BOB@example.org");         /* duplicate */
	add_alias(fx->dir, "all@example.org", "dave@example.net");
	add_alias(fx->dir, "all@example.org", "Ext@Remote.example");
	add_alias(fx->dir, "team@example.org", "ext@remote.EXAMPLE");      /* same external */
	add_alias(fx->dir, "sub@example.org", "team@example.org");
	add_alias(fx->dir, "all@example.org", "sub@example.org");          /* team again */
	const char *error = NULL;
	refused(directory_alias_add(fx->dir, "all@example.org", "EXT@remote.example", '+',
	    &error), &error, "Alias all@example.org already points to EXT@remote.example.");
	check(fx->dir, "all@example.org", '+', DIRECTORY_RCPT_OK,
	    "bob@example.org,carol@example.org,dave@example.net", "ext@remote.example");
	/* forwarding with a copy (alias to itself) */
	add_alias(fx->dir, "bob@example.org", "bob@example.org");
	add_alias(fx->dir, "bob@example.org", "bob@phone.example");
	check(fx->dir, "bob@example.org", '+', DIRECTORY_RCPT_OK, "bob@example.org",
	    "bob@phone.example");
	/* forwarding without a copy: the mailbox does not receive */
	add_alias(fx->dir, "carol@example.org", "carol@home.example");
	check(fx->dir, "carol@example.org", '+', DIRECTORY_RCPT_OK, "", "carol@home.example");
	/* purely external alias */
	add_alias(fx->dir, "fwd@example.org", "x@remote.example");
	check(fx->dir, "fwd@example.org", '+', DIRECTORY_RCPT_OK, "", "x@remote.example");
}

static void
test_lookup_loops_and_depth(void **state)
{
	struct fixture *fx = *state;
	const char *error;
	add_domain(fx->dir, "example.org");
	add_user(fx->dir, "bob@example.org");
	/* a <-> b, then one of them gets a real target */
	add_alias(fx->dir, "a@example.org", "bob@example.org");
	add_alias(fx->dir, "b@example.org", "a@example.org");
	add_alias(fx->dir, "a@example.org", "b@example.org");
	ok(directory_alias_del(fx->dir, "a@example.org", "bob@example.org", &error), &error);
	struct directory_rcpt r;
	lookup(fx->dir, "a@example.org", '+', DIRECTORY_RCPT_NO_SUCH_USER, "", "", &r);
	assert_true(r.loop);
	directory_rcpt_free(&r);
	add_alias(fx->dir, "b@example.org", "bob@example.org");
	lookup(fx->dir, "a@example.org", '+', DIRECTORY_RCPT_OK, "bob@example.org", "", &r);
	assert_true(r.loop);
	assert_false(r.too_deep);
	directory_rcpt_free(&r);

	/* a chain of 8 aliases resolves, 9 does not */
	char name[64], next[64];
	for (int i = 1; i <= 9; i++) {
		snprintf(name, sizeof(name), "c%d@example.org", i);
		if (i == 1)
			snprintf(next, sizeof(next), "bob@example.org");
		else
			snprintf(next, sizeof(next), "c%d@example.org", i - 1);
		add_alias(fx->dir, name, next);
	}
	check(fx->dir, "c8@example.org", '+', DIRECTORY_RCPT_OK, "bob@example.org", "");
	lookup(fx->dir, "c9@example.org", '+', DIRECTORY_RCPT_NO_SUCH_USER, "", "", &r);
	assert_true(r.too_deep);
	directory_rcpt_free(&r);

	/* a dangling target (user deleted since) is dropped */
	add_user(fx->dir, "gone@example.org");
	add_alias(fx->dir, "d@example.org", "gone@example.org");
	add_alias(fx->dir, "d@example.org", "bob@example.org");
	ok(directory_user_del(fx->dir, "gone@example.org", &error), &error);
	lookup(fx->dir, "d@example.org", '+', DIRECTORY_RCPT_OK, "bob@example.org", "", &r);
	assert_true(r.dangling);
	directory_rcpt_free(&r);
}

static void
test_lookup_limit(void **state)
{
	struct fixture *fx = *state;
	const char *error;
	add_domain(fx->dir, "example.org");
	add_domain(fx->dir, "example.net");
	/* 600 + 600 external targets behind one alias: past the 1000 bound */
	char *sql = sqlite3_mprintf("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
	    "FROM n WHERE i < 600) INSERT INTO aliases(address, domain, target, created) "
	    "SELECT '%s', 'example.org', 'u' || i || '@remote.example', 0 FROM n", "a@example.org");
	sqlite3 *db;
	assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_free(sql);
	struct directory_rcpt r;
	ok(directory_lookup_rcpt(fx->dir, "a@example.org", '+', &r, &error), &error);
	assert_int_equal(r.status, DIRECTORY_RCPT_OK);
	assert_int_equal(r.nexternal, 600);
	assert_string_equal(r.external[0], "u1@remote.example");
	assert_string_equal(r.external[599], "u600@remote.example");
	directory_rcpt_free(&r);
	sql = sqlite3_mprintf("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
	    "FROM n WHERE i < 600) INSERT INTO aliases(address, domain, target, created) "
	    "SELECT 'b@example.net', 'example.net', 'v' || i || '@remote.example', 0 FROM n");
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_free(sql);
	sqlite3_close(db);
	add_alias(fx->dir, "both@example.org", "a@example.org");
	add_alias(fx->dir, "both@example.org", "b@example.net");
	ok(directory_lookup_rcpt(fx->dir, "both@example.org", '+', &r, &error), &error);
	assert_int_equal(r.status, DIRECTORY_RCPT_TOO_MANY);
	assert_int_equal(r.nmailboxes + r.nexternal, 0);
	directory_rcpt_free(&r);
}

/* ---------------------------------------------------------------- concurrency */

#define WRITERS 2
#define PER_WRITER 150

/* Each child opens its own connection and adds users, domains and aliases as
 * fast as it can, the other child doing the same: WAL and the busy timeout
 * must serialise them without a single failure. */
static void
writer(const char *path, int id)
{
	char *error = NULL;
	struct directory *dir = directory_open(path, &error);
	if (dir == NULL)
		_exit(10);
	for (int i = 0; i < PER_WRITER; i++) {
		char addr[64], dom[64];
		const char *err;
		snprintf(addr, sizeof(addr), "w%du%d@example.org", id, i);
		if (directory_user_add(dir, addr, HASH, &err) < 0) {
			fprintf(stderr, "writer %d: %s\n", id, err);
			_exit(11);
		}
		if (i % 10 == 0) {
			snprintf(dom, sizeof(dom), "w%d-%d.example", id, i);
			if (directory_domain_add(dir, dom, &err) < 0) {
				fprintf(stderr, "writer %d: %s\n", id, err);
				_exit(12);
			}
			char alias[64];
			snprintf(alias, sizeof(alias), "a%d@example.org", i);
			if (directory_alias_add(dir, alias, addr, '+', &err) < 0) {
				fprintf(stderr, "writer %d: %s\n", id, err);
				_exit(13);
			}
		}
		struct directory_rcpt r;
		if (directory_lookup_rcpt(dir, addr, '+', &r, &err) < 0 ||
		    r.status != DIRECTORY_RCPT_OK) {
			fprintf(stderr, "writer %d: lookup failed\n", id);
			_exit(14);
		}
		directory_rcpt_free(&r);
	}
	directory_close(&dir);
	_exit(0);
}

static int
count_cb(const char *address, void *ctx)
{
	(*(int *)ctx)++;
	return 0;
}

static int
count_alias_cb(const char *alias, const char *target, void *ctx)
{
	(*(int *)ctx)++;
	return 0;
}

static void
test_two_processes_write(void **state)
{
	struct fixture *fx = *state;
	const char *error = NULL;
	add_domain(fx->dir, "example.org");
	pid_t pids[WRITERS];
	for (int w = 0; w < WRITERS; w++) {
		pids[w] = fork();
		assert_true(pids[w] >= 0);
		if (pids[w] == 0)
			writer(fx->path, w);
	}
	/* and this process reads meanwhile */
	for (int i = 0; i < 50; i++) {
		int n = 0;
		ok(directory_user_list(fx->dir, "example.org", count_cb, &n, &error), &error);
	}
	for (int w = 0; w < WRITERS; w++) {
		int status;
		assert_int_equal(waitpid(pids[w], &status, 0), pids[w]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	int users = 0, domains = 0, aliases = 0;
	ok(directory_user_list(fx->dir, NULL, count_cb, &users, &error), &error);
	ok(directory_domain_list(fx->dir, count_cb, &domains, &error), &error);
	ok(directory_alias_list(fx->dir, NULL, count_alias_cb, &aliases, &error), &error);
	assert_int_equal(users, WRITERS * PER_WRITER);
	assert_int_equal(domains, 1 + WRITERS * PER_WRITER / 10);
	assert_int_equal(aliases, WRITERS * PER_WRITER / 10);
}

static int
stop_after_one(const char *name, void *ctx)
{
	(*(int *)ctx)++;
	return 1;
}

static void
test_list_stop(void **state)
{
	struct fixture *fx = *state;
	const char *error = NULL;
	add_domain(fx->dir, "a.example");
	add_domain(fx->dir, "b.example");
	int n = 0;
	ok(directory_domain_list(fx->dir, stop_after_one, &n, &error), &error);
	assert_int_equal(n, 1);
	/* the statement was reset: listing again works */
	n = 0;
	ok(directory_domain_list(fx->dir, count_cb, &n, &error), &error);
	assert_int_equal(n, 2);
}

/* ---------------------------------------------------------------- logins */

/* A version-1 database (made by the first release) gains the new columns with
 * their defaults: every protocol on, any network. */
static void
test_migrate_v1_to_v2(void **state)
{
	struct fixture *fx = *state;
	directory_close(&fx->dir);
	char path[600];
	snprintf(path, sizeof(path), "%s/v1.db", fx->tmpdir);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
	    "PRAGMA journal_mode = WAL;"
	    "CREATE TABLE domains (name TEXT NOT NULL PRIMARY KEY, created INTEGER NOT NULL);"
	    "CREATE TABLE users (id INTEGER PRIMARY KEY, address TEXT NOT NULL UNIQUE,"
	    " local_part TEXT NOT NULL, domain TEXT NOT NULL REFERENCES domains(name) ON DELETE CASCADE,"
	    " password_hash TEXT NOT NULL, flags INTEGER NOT NULL DEFAULT 0,"
	    " enabled INTEGER NOT NULL DEFAULT 1, created INTEGER NOT NULL, updated INTEGER NOT NULL);"
	    "CREATE INDEX users_domain ON users(domain, local_part);"
	    "CREATE TABLE aliases (id INTEGER PRIMARY KEY, address TEXT NOT NULL,"
	    " domain TEXT NOT NULL REFERENCES domains(name) ON DELETE CASCADE,"
	    " target TEXT NOT NULL COLLATE NOCASE, created INTEGER NOT NULL, UNIQUE (address, target));"
	    "CREATE INDEX aliases_domain ON aliases(domain, address);"
	    "INSERT INTO domains VALUES ('example.org', 1);"
	    "INSERT INTO users(address, local_part, domain, password_hash, created, updated)"
	    " VALUES ('bob@example.org', 'bob', 'example.org', 'h', 1, 1);"
	    "PRAGMA user_version = 1;", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	char *error = NULL;
	fx->dir = directory_open(path, &error);
	assert_non_null(fx->dir);
	assert_int_equal(directory_schema_version(fx->dir), 2);
	struct directory_login l;
	const char *err = NULL;
	assert_int_equal(directory_login_get(fx->dir, "Bob@Example.ORG", &l, &err), 1);
	assert_string_equal(l.address, "bob@example.org");
	assert_string_equal(l.hash, "h");
	assert_true(l.enabled);
	for (int p = 0; p < DIRECTORY_PROTO_COUNT; p++) {
		assert_true(l.protocol[p]);
		assert_int_equal(l.user_protocol[p], -1);
	}
	assert_string_equal(l.networks, "");
	directory_login_free(&l);
}

static void
test_login_switches(void **state)
{
	struct fixture *fx = *state;
	const char *error = NULL;
	struct directory_login l;
	add_domain(fx->dir, "example.org");
	add_user(fx->dir, "alice@example.org");
	assert_int_equal(directory_login_get(fx->dir, "nobody@example.org", &l, &error), 0);
	assert_int_equal(directory_login_get(fx->dir, "not an address", &l, &error), 0);

	/* the user's own setting wins over the domain's default, both ways */
	ok(directory_domain_set_protocol(fx->dir, "example.org", DIRECTORY_PROTO_SMTP, false,
	    &error), &error);
	assert_int_equal(directory_login_get(fx->dir, "alice@example.org", &l, &error), 1);
	assert_false(l.protocol[DIRECTORY_PROTO_SMTP]);
	assert_true(l.protocol[DIRECTORY_PROTO_IMAP]);
	directory_login_free(&l);
	ok(directory_user_set_protocol(fx->dir, "alice@example.org", DIRECTORY_PROTO_SMTP, 1,
	    &error), &error);
	ok(directory_user_set_protocol(fx->dir, "alice@example.org", DIRECTORY_PROTO_POP3, 0,
	    &error), &error);
	assert_int_equal(directory_login_get(fx->dir, "alice@example.org", &l, &error), 1);
	assert_true(l.protocol[DIRECTORY_PROTO_SMTP]);
	assert_int_equal(l.user_protocol[DIRECTORY_PROTO_SMTP], 1);
	assert_false(l.protocol[DIRECTORY_PROTO_POP3]);
	assert_int_equal(l.user_protocol[DIRECTORY_PROTO_IMAP], -1);
	directory_login_free(&l);
	ok(directory_user_set_protocol(fx->dir, "alice@example.org", DIRECTORY_PROTO_SMTP, -1,
	    &error), &error);
	assert_int_equal(directory_login_get(fx->dir, "alice@example.org", &l, &error), 1);
	assert_false(l.protocol[DIRECTORY_PROTO_SMTP]);
	directory_login_free(&l);
	bool on[DIRECTORY_PROTO_COUNT];
	assert_int_equal(directory_domain_get_protocols(fx->dir, "example.org", on, &error), 1);
	assert_false(on[DIRECTORY_PROTO_SMTP]);
	assert_true(on[DIRECTORY_PROTO_POP3]);
	assert_int_equal(directory_domain_get_protocols(fx->dir, "other.org", on, &error), 0);

	/* networks are stored in canonical form; junk is refused */
	ok(directory_user_set_networks(fx->dir, "alice@example.org", "10.1.2.3/8  2001:db8::1/32",
	    &error), &error);
	assert_int_equal(directory_login_get(fx->dir, "alice@example.org", &l, &error), 1);
	assert_string_equal(l.networks, "10.0.0.0/8,2001:db8::/32");
	directory_login_free(&l);
	assert_int_equal(directory_user_set_networks(fx->dir, "alice@example.org", "10.0.0.0/33",
	    &error), -1);
	ok(directory_user_set_enabled(fx->dir, "alice@example.org", false, &error), &error);
	assert_int_equal(directory_login_get(fx->dir, "alice@example.org", &l, &error), 1);
	assert_false(l.enabled);
	directory_login_free(&l);
	refused(directory_user_set_enabled(fx->dir, "carol@example.org", true, &error), &error,
	    "No such user");
	refused(directory_domain_set_protocol(fx->dir, "nope.org", DIRECTORY_PROTO_IMAP, true,
	    &error), &error, "No such domain");
}

static void
test_send_as(void **state)
{
	struct fixture *fx = *state;
	const char *error = NULL;
	add_domain(fx->dir, "example.org");
	add_domain(fx->dir, "other.org");
	add_user(fx->dir, "alice@example.org");
	add_user(fx->dir, "bob@example.org");
	add_alias(fx->dir, "sales@example.org", "alice@example.org");
	add_alias(fx->dir, "team@example.org", "sales@example.org");

	/* own address, subaddress, case */
	assert_int_equal(directory_may_send_as(fx->dir, "alice@example.org", "alice@example.org",
	    '+', &error), 1);
	assert_int_equal(directory_may_send_as(fx->dir, "alice@example.org",
	    "Alice+news@Example.org", '+', &error), 1);
	assert_int_equal(directory_may_send_as(fx->dir, "alice@example.org",
	    "alice+news@example.org", 0, &error), 0);
	/* aliases that deliver to the user, nested too; not someone else's */
	assert_int_equal(directory_may_send_as(fx->dir, "alice@example.org", "sales@example.org",
	    '+', &error), 1);
	assert_int_equal(directory_may_send_as(fx->dir, "alice@example.org", "team@example.org",
	    '+', &error), 1);
	assert_int_equal(directory_may_send_as(fx->dir, "bob@example.org", "sales@example.org",
	    '+', &error), 0);
	assert_int_equal(directory_may_send_as(fx->dir, "alice@example.org", "bob@example.org",
	    '+', &error), 0);
	assert_int_equal(directory_may_send_as(fx->dir, "alice@example.org", "x@other.org",
	    '+', &error), 0);
	assert_int_equal(directory_may_send_as(fx->dir, "alice@example.org", "not-an-address",
	    '+', &error), 0);

	/* grants: one address, a whole domain */
	ok(directory_send_as_add(fx->dir, "alice@example.org", "Bob@Example.org", &error), &error);
	ok(directory_send_as_add(fx->dir, "alice@example.org", "@other.org", &error), &error);
	refused(directory_send_as_add(fx->dir, "alice@example.org", "bob@example.org", &error),
	    &error, "alice@example.org may already");
	refused(directory_send_as_add(fx->dir, "carol@example.org", "bob@example.org", &error),
	    &error, "No such user");
	assert_int_equal(directory_may_send_as(fx->dir, "alice@example.org", "bob@example.org",
	    '+', &error), 1);
	assert_int_equal(directory_may_send_as(fx->dir, "alice@example.org", "bob+x@example.org",
	    '+', &error), 1);
	assert_int_equal(directory_may_send_as(fx->dir, "alice@example.org", "anyone@other.org",
	    '+', &error), 1);
	assert_int_equal(directory_may_send_as(fx->dir, "bob@example.org", "anyone@other.org",
	    '+', &error), 0);
	struct collect c = { "", 0 };
	ok(directory_send_as_list(fx->dir, NULL, collect2, &c, &error), &error);
	assert_string_equal(c.buf, "alice@example.org>@other.org,alice@example.org>bob@example.org");
	ok(directory_send_as_del(fx->dir, "alice@example.org", "@other.org", &error), &error);
	refused(directory_send_as_del(fx->dir, "alice@example.org", "@other.org", &error), &error,
	    "alice@example.org has no send-as grant");
	assert_int_equal(directory_may_send_as(fx->dir, "alice@example.org", "anyone@other.org",
	    '+', &error), 0);
	/* grants go with the user */
	ok(directory_user_del(fx->dir, "alice@example.org", &error), &error);
	memset(&c, 0, sizeof(c));
	ok(directory_send_as_list(fx->dir, NULL, collect2, &c, &error), &error);
	assert_string_equal(c.buf, "");
}

static int
collect_block(const char *net, int64_t until_ms, unsigned level, void *ctx)
{
	struct collect *c = ctx;
	size_t len = strlen(c->buf);
	snprintf(c->buf + len, sizeof(c->buf) - len, "%s%s@%lld/%u", c->n++ > 0 ? "," : "", net,
	    (long long)until_ms, level);
	return 0;
}

static int
collect_known(const char *user, const char *host, int64_t until_ms, void *ctx)
{
	struct collect *c = ctx;
	size_t len = strlen(c->buf);
	snprintf(c->buf + len, sizeof(c->buf) - len, "%s%s %s@%lld", c->n++ > 0 ? "," : "", user,
	    host, (long long)until_ms);
	return 0;
}

static void
test_guard_state(void **state)
{
	struct fixture *fx = *state;
	const char *error = NULL;
	struct collect c = { "", 0 };
	ok(directory_block_put(fx->dir, "127.0.0.0/24", 5000, 1, &error), &error);
	ok(directory_block_put(fx->dir, "127.0.0.2/32", 3000, 1, &error), &error);
	ok(directory_block_put(fx->dir, "127.0.0.0/24", 9000, 2, &error), &error);   /* update */
	ok(directory_block_list(fx->dir, collect_block, &c, &error), &error);
	assert_string_equal(c.buf, "127.0.0.0/24@9000/2,127.0.0.2/32@3000/1");
	ok(directory_known_put(fx->dir, "alice@example.org", "127.0.0.1/32", 7000, &error), &error);
	ok(directory_known_put(fx->dir, "alice@example.org", "127.0.0.1/32", 8000, &error), &error);
	ok(directory_known_put(fx->dir, "bob@example.org", "::/64", 2000, &error), &error);
	memset(&c, 0, sizeof(c));
	ok(directory_known_list(fx->dir, 4000, collect_known, &c, &error), &error);
	assert_string_equal(c.buf, "alice@example.org 127.0.0.1/32@8000");

	/* another connection (the CLI) deleting a block moves data_version */
	int64_t v0 = directory_data_version(fx->dir);
	assert_true(v0 >= 0);
	char *err2 = NULL;
	struct directory *other = directory_open(fx->path, &err2);
	assert_non_null(other);
	assert_int_equal(directory_block_del(other, "127.0.0.2/32", &error), 1);
	assert_int_equal(directory_block_del(other, "127.0.0.2/32", &error), 0);
	directory_close(&other);
	assert_true(directory_data_version(fx->dir) != v0);

	ok(directory_guard_prune(fx->dir, 8500, &error), &error);
	memset(&c, 0, sizeof(c));
	ok(directory_block_list(fx->dir, collect_block, &c, &error), &error);
	assert_string_equal(c.buf, "127.0.0.0/24@9000/2");
	memset(&c, 0, sizeof(c));
	ok(directory_known_list(fx->dir, 0, collect_known, &c, &error), &error);
	assert_string_equal(c.buf, "");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_open_migrate_reopen),
		cmocka_unit_test(test_open_failure),
		T(test_domains),
		T(test_domain_del_cascade),
		T(test_users),
		T(test_local_part_rules),
		T(test_aliases),
		T(test_lookup_basic),
		T(test_lookup_subaddress),
		T(test_lookup_aliases),
		T(test_lookup_loops_and_depth),
		T(test_lookup_limit),
		T(test_two_processes_write),
		T(test_list_stop),
		T(test_migrate_v1_to_v2),
		T(test_login_switches),
		T(test_send_as),
		T(test_guard_state),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
