/* directory — see directory.h. */
#include "auth/directory.h"
#include "auth/directory-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "lib/log.h"

/*
 * Schema migrations, applied in order, each in its own IMMEDIATE transaction
 * together with the bump of PRAGMA user_version. Never edit a released entry:
 * append a new one. Foreign keys point at domains(name) because a domain is
 * never renamed and it keeps per-domain queries join-free.
 */
static const char *const migrations[] = {
	/* 1: domains, users, aliases */
	"CREATE TABLE domains ("
	"  name TEXT NOT NULL PRIMARY KEY,"
	"  created INTEGER NOT NULL"
	");"
	"CREATE TABLE users ("
	"  id INTEGER PRIMARY KEY,"
	"  address TEXT NOT NULL UNIQUE,"
	"  local_part TEXT NOT NULL,"
	"  domain TEXT NOT NULL REFERENCES domains(name) ON DELETE CASCADE,"
	"  password_hash TEXT NOT NULL,"
	"  flags INTEGER NOT NULL DEFAULT 0,"
	"  enabled INTEGER NOT NULL DEFAULT 1,"
	"  created INTEGER NOT NULL,"
	"  updated INTEGER NOT NULL"
	");"
	"CREATE INDEX users_domain ON users(domain, local_part);"
	"CREATE TABLE aliases ("
	"  id INTEGER PRIMARY KEY,"
	"  address TEXT NOT NULL,"
	"  domain TEXT NOT NULL REFERENCES domains(name) ON DELETE CASCADE,"
	"  target TEXT NOT NULL COLLATE NOCASE,"
	"  created INTEGER NOT NULL,"
	"  UNIQUE (address, target)"
	");"
	"CREATE INDEX aliases_domain ON aliases(domain, address);",
	/* 2: per-domain and per-user protocol switches, user networks, send-as
	 * grants, and the guard's state that must survive a restart */
	"ALTER TABLE domains ADD COLUMN smtp_auth INTEGER NOT NULL DEFAULT 1;"
	"ALTER TABLE domains ADD COLUMN imap INTEGER NOT NULL DEFAULT 1;"
	"ALTER TABLE domains ADD COLUMN pop3 INTEGER NOT NULL DEFAULT 1;"
	"ALTER TABLE users ADD COLUMN smtp_auth INTEGER;"   /* NULL: the domain's */
	"ALTER TABLE users ADD COLUMN imap INTEGER;"
	"ALTER TABLE users ADD COLUMN pop3 INTEGER;"
	"ALTER TABLE users ADD COLUMN networks TEXT NOT NULL DEFAULT '';"
	"CREATE TABLE send_as ("
	"  id INTEGER PRIMARY KEY,"
	"  user TEXT NOT NULL REFERENCES users(address) ON DELETE CASCADE,"
	"  address TEXT NOT NULL,"   /* local@domain, or @domain for the whole domain */
	"  created INTEGER NOT NULL,"
	"  UNIQUE (user, address)"
	");"
	"CREATE TABLE guard_blocks ("
	"  network TEXT NOT NULL PRIMARY KEY,"
	"  until_ms INTEGER NOT NULL,"
	"  level INTEGER NOT NULL"
	");"
	"CREATE TABLE guard_known ("
	"  user TEXT NOT NULL,"
	"  host TEXT NOT NULL,"
	"  until_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (user, host)"
	");",
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

static const char *const stmt_sql[S_COUNT] = {
	[S_BEGIN] = "BEGIN",
	[S_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_DOMAIN_EXISTS] = "SELECT 1 FROM domains WHERE name = ?1",
	[S_DOMAIN_ADD] = "INSERT INTO domains(name, created) VALUES (?1, ?2)",
	[S_DOMAIN_DEL] = "DELETE FROM domains WHERE name = ?1",
	[S_DOMAIN_COUNTS] = "SELECT (SELECT count(*) FROM users WHERE domain = ?1),"
	    " (SELECT count(*) FROM aliases WHERE domain = ?1)",
	[S_DOMAIN_LIST] = "SELECT name FROM domains ORDER BY name",
	[S_USER_EXISTS] = "SELECT 1 FROM users WHERE address = ?1",
	[S_USER_ADD] = "INSERT INTO users(address, local_part, domain, password_hash, created,"
	    " updated) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
	[S_USER_DEL] = "DELETE FROM users WHERE address = ?1",
	[S_USER_SET_HASH] = "UPDATE users SET password_hash = ?2, updated = ?3 WHERE address = ?1",
	[S_USER_GET_HASH] = "SELECT password_hash FROM users WHERE address = ?1",
	[S_USER_LIST] = "SELECT address FROM users ORDER BY domain, local_part",
	[S_USER_LIST_DOMAIN] = "SELECT address FROM users WHERE domain = ?1 ORDER BY local_part",
	[S_ALIAS_EXISTS] = "SELECT 1 FROM aliases WHERE address = ?1 AND target = ?2",
	[S_ALIAS_ANY] = "SELECT 1 FROM aliases WHERE address = ?1 LIMIT 1",
	[S_ALIAS_COUNT] = "SELECT count(*) FROM aliases WHERE address = ?1",
	[S_ALIAS_ADD] = "INSERT INTO aliases(address, domain, target, created)"
	    " VALUES (?1, ?2, ?3, ?4)",
	[S_ALIAS_TARGETS] = "SELECT target FROM aliases WHERE address = ?1 ORDER BY id",
	[S_ALIAS_DEL_ONE] = "DELETE FROM aliases WHERE address = ?1 AND target = ?2",
	[S_ALIAS_DEL_ALL] = "DELETE FROM aliases WHERE address = ?1",
	[S_ALIAS_LIST] = "SELECT address, target FROM aliases ORDER BY address, target",
	[S_ALIAS_LIST_DOMAIN] = "SELECT address, target FROM aliases WHERE domain = ?1"
	    " ORDER BY address, target",
	[S_LOGIN_GET] = "SELECT u.address, u.password_hash, u.enabled,"
	    " coalesce(u.smtp_auth, d.smtp_auth), coalesce(u.imap, d.imap),"
	    " coalesce(u.pop3, d.pop3), u.networks, u.smtp_auth, u.imap, u.pop3"
	    " FROM users u JOIN domains d ON d.name = u.domain WHERE u.address = ?1",
	[S_USER_SET_SMTP] = "UPDATE users SET smtp_auth = ?2, updated = ?3 WHERE address = ?1",
	[S_USER_SET_IMAP] = "UPDATE users SET imap = ?2, updated = ?3 WHERE address = ?1",
	[S_USER_SET_POP3] = "UPDATE users SET pop3 = ?2, updated = ?3 WHERE address = ?1",
	[S_USER_SET_NETWORKS] = "UPDATE users SET networks = ?2, updated = ?3 WHERE address = ?1",
	[S_USER_SET_ENABLED] = "UPDATE users SET enabled = ?2, updated = ?3 WHERE address = ?1",
	[S_DOMAIN_SET_SMTP] = "UPDATE domains SET smtp_auth = ?2 WHERE name = ?1",
	[S_DOMAIN_SET_IMAP] = "UPDATE domains SET imap = ?2 WHERE name = ?1",
	[S_DOMAIN_SET_POP3] = "UPDATE domains SET pop3 = ?2 WHERE name = ?1",
	[S_DOMAIN_GET] = "SELECT smtp_auth, imap, pop3 FROM domains WHERE name = ?1",
	[S_SENDAS_ADD] = "INSERT INTO send_as(user, address, created) VALUES (?1, ?2, ?3)",
	[S_SENDAS_DEL] = "DELETE FROM send_as WHERE user = ?1 AND address = ?2",
	[S_SENDAS_LIST] = "SELECT user, address FROM send_as ORDER BY user, address",
	[S_SENDAS_LIST_USER] = "SELECT user, address FROM send_as WHERE user = ?1"
	    " ORDER BY address",
	[S_SENDAS_MATCH] = "SELECT 1 FROM send_as WHERE user = ?1 AND address IN (?2, ?3, ?4)",
	[S_BLOCK_PUT] = "INSERT INTO guard_blocks(network, until_ms, level) VALUES (?1, ?2, ?3)"
	    " ON CONFLICT(network) DO UPDATE SET until_ms = ?2, level = ?3",
	[S_BLOCK_DEL] = "DELETE FROM guard_blocks WHERE network = ?1",
	[S_BLOCK_LIST] = "SELECT network, until_ms, level FROM guard_blocks ORDER BY network",
	[S_BLOCK_PRUNE] = "DELETE FROM guard_blocks WHERE until_ms < ?1",
	[S_KNOWN_PUT] = "INSERT INTO guard_known(user, host, until_ms) VALUES (?1, ?2, ?3)"
	    " ON CONFLICT(user, host) DO UPDATE SET until_ms = ?3",
	[S_KNOWN_LIST] = "SELECT user, host, until_ms FROM guard_known WHERE until_ms >= ?1",
	[S_KNOWN_PRUNE] = "DELETE FROM guard_known WHERE until_ms < ?1",
	[S_DATA_VERSION] = "PRAGMA data_version",
};

/* ---------------------------------------------------------------- errors */

int
directory_fail(struct directory *dir, const char **error_r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(dir->error, sizeof(dir->error), fmt, ap);
	va_end(ap);
	if (error_r != NULL)
		*error_r = dir->error;
	return -1;
}

int
directory_db_fail(struct directory *dir, int rc, const char **error_r)
{
	if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
		return directory_fail(dir, error_r, "The directory database is busy (another "
		    "process holds it locked); try again.");
	return directory_fail(dir, error_r, "Directory database error: %s.",
	    sqlite3_errmsg(dir->db));
}

/* A sentence about bad syntax: a static string, so no directory needed. */
static int
syntax_fail(const char **error_r, const char *msg)
{
	if (error_r != NULL)
		*error_r = msg;
	return -1;
}

/* ---------------------------------------------------------------- statements */

sqlite3_stmt *
directory_stmt(struct directory *dir, enum directory_stmt_id id, const char **error_r)
{
	if (dir->stmt[id] == NULL) {
		int rc = sqlite3_prepare_v3(dir->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
		    &dir->stmt[id], NULL);
		if (rc != SQLITE_OK) {
			directory_db_fail(dir, rc, error_r);
			return NULL;
		}
	}
	return dir->stmt[id];
}

void
directory_stmt_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Prepares id and binds nargs text parameters (const char *) to ?1..?n. */
sqlite3_stmt *
directory_prep(struct directory *dir, enum directory_stmt_id id, const char **error_r,
    int nargs, ...)
{
	sqlite3_stmt *st = directory_stmt(dir, id, error_r);
	if (st == NULL)
		return NULL;
	va_list ap;
	va_start(ap, nargs);
	for (int i = 1; i <= nargs; i++)
		sqlite3_bind_text(st, i, va_arg(ap, const char *), -1, SQLITE_STATIC);
	va_end(ap);
	return st;
}

/* Steps a statement that returns at most one row of interest: 1 row, 0 done. */
int
directory_step(struct directory *dir, sqlite3_stmt *st, const char **error_r)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	directory_db_fail(dir, rc, error_r);
	directory_stmt_done(st);
	return -1;
}

/* Runs a statement to completion (and resets it): 0 or -1. */
int
directory_run(struct directory *dir, sqlite3_stmt *st, const char **error_r)
{
	if (st == NULL)
		return -1;
	int ret = directory_step(dir, st, error_r);
	if (ret < 0)
		return -1;
	directory_stmt_done(st);
	return 0;
}

/* 1 when the query yields a row, 0 when not, -1 on error. */
int
directory_exists(struct directory *dir, sqlite3_stmt *st, const char **error_r)
{
	if (st == NULL)
		return -1;
	int ret = directory_step(dir, st, error_r);
	if (ret >= 0)
		directory_stmt_done(st);
	return ret;
}

int
directory_begin(struct directory *dir, bool write, const char **error_r)
{
	enum directory_stmt_id id = write ? S_BEGIN_IMMEDIATE : S_BEGIN;
	return directory_run(dir, directory_stmt(dir, id, error_r), error_r);
}

int
directory_commit(struct directory *dir, const char **error_r)
{
	return directory_run(dir, directory_stmt(dir, S_COMMIT, error_r), error_r);
}

/* Ends a failed transaction; keeps the first error message. */
int
directory_rollback(struct directory *dir)
{
	if (sqlite3_get_autocommit(dir->db) == 0)
		sqlite3_exec(dir->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static int
domain_exists_tx(struct directory *dir, const char *domain, const char **error_r)
{
	return directory_exists(dir, directory_prep(dir, S_DOMAIN_EXISTS, error_r, 1, domain),
	    error_r);
}

/* ---------------------------------------------------------------- open, migrate */

static int
mkdir_parents(const char *path, char **error_r)
{
	char *copy = strdup(path);
	if (copy == NULL)
		return -1;
	for (char *p = strchr(copy + 1, '/'); p != NULL; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdir(copy, 0700) < 0 && errno != EEXIST) {
			if (asprintf(error_r, "Cannot create directory %s: %s.", copy,
			    strerror(errno)) < 0)
				*error_r = NULL;
			free(copy);
			return -1;
		}
		*p = '/';
	}
	free(copy);
	return 0;
}

static int
migrate(struct directory *dir, char **error_r)
{
	int first = -1;   /* the version found: 0 = a new database */
	for (;;) {
		const char *err = NULL;
		int rc = SQLITE_OK;
		if (directory_begin(dir, true, &err) < 0)
			goto fail;
		sqlite3_stmt *st;
		rc = sqlite3_prepare_v2(dir->db, "PRAGMA user_version", -1, &st, NULL);
		if (rc != SQLITE_OK)
			goto db_fail;
		rc = sqlite3_step(st);
		int version = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
		sqlite3_finalize(st);
		if (version < 0)
			goto db_fail;
		if (version > SCHEMA_VERSION) {
			directory_rollback(dir);
			if (asprintf(error_r, "The directory has schema version %d but this "
			    "Rampart knows only up to %d; use a newer Rampart.", version,
			    SCHEMA_VERSION) < 0)
				*error_r = NULL;
			return -1;
		}
		if (version == SCHEMA_VERSION) {
			if (directory_commit(dir, &err) < 0)
				goto fail;
			return 0;
		}
		char pragma[64];
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", version + 1);
		rc = sqlite3_exec(dir->db, migrations[version], NULL, NULL, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(dir->db, pragma, NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			goto db_fail;
		if (directory_commit(dir, &err) < 0)
			goto fail;
		if (first < 0)
			first = version;
		if (first > 0)   /* an upgrade of existing data is worth a line */
			log_info("directory: migrated schema to version %d", version + 1);
		continue;
db_fail:
		directory_db_fail(dir, rc, &err);
fail:
		directory_rollback(dir);
		if (asprintf(error_r, "Cannot migrate the directory schema: %s", err) < 0)
			*error_r = NULL;
		return -1;
	}
}

struct directory *
directory_open(const char *path, char **error_r)
{
	*error_r = NULL;
	if (mkdir_parents(path, error_r) < 0)
		return NULL;
	/* Create the file ourselves so it is never group- or world-readable; SQLite
	 * gives the -wal and -shm files the same mode. */
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (asprintf(error_r, "Cannot open the directory %s: %s.", path,
		    strerror(errno)) < 0)
			*error_r = NULL;
		return NULL;
	}
	struct stat sb;
	if (fstat(fd, &sb) == 0 && (sb.st_mode & 077) != 0)
		log_warn("directory %s is accessible to group or others (mode %03o)", path,
		    (unsigned)(sb.st_mode & 0777));
	close(fd);

	struct directory *dir = calloc(1, sizeof(*dir));
	if (dir == NULL)
		return NULL;
	int rc = sqlite3_open_v2(path, &dir->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
	    NULL);
	if (rc == SQLITE_OK) {
		sqlite3_extended_result_codes(dir->db, 1);
		sqlite3_busy_timeout(dir->db, DIRECTORY_BUSY_TIMEOUT_MS);
		/* WAL lets the daemon read while the CLI writes; FULL sync makes an
		 * added user survive a power cut; secure_delete zeroes removed hashes. */
		rc = sqlite3_exec(dir->db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
		    " PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;", NULL, NULL, NULL);
	}
	if (rc != SQLITE_OK) {
		if (asprintf(error_r, "Cannot open the directory %s: %s.", path,
		    dir->db != NULL ? sqlite3_errmsg(dir->db) : sqlite3_errstr(rc)) < 0)
			*error_r = NULL;
		directory_close(&dir);
		return NULL;
	}
	if (migrate(dir, error_r) < 0) {
		directory_close(&dir);
		return NULL;
	}
	return dir;
}

void
directory_close(struct directory **dirp)
{
	struct directory *dir = *dirp;
	if (dir == NULL)
		return;
	*dirp = NULL;
	for (size_t i = 0; i < S_COUNT; i++)
		sqlite3_finalize(dir->stmt[i]);
	sqlite3_close(dir->db);
	free(dir);
}

int
directory_schema_version(struct directory *dir)
{
	return SCHEMA_VERSION;
}

/* ---------------------------------------------------------------- domains */

int
directory_domain_add(struct directory *dir, const char *name, const char **error_r)
{
	char dom[DIRECTORY_DOMAIN_MAX + 1];
	if (directory_domain_normalize(name, dom, sizeof(dom), error_r) < 0 ||
	    directory_begin(dir, true, error_r) < 0)
		return -1;
	int ret = domain_exists_tx(dir, dom, error_r);
	if (ret < 0)
		return directory_rollback(dir);
	if (ret > 0) {
		directory_rollback(dir);
		return directory_fail(dir, error_r, "Domain %s already exists.", dom);
	}
	sqlite3_stmt *st = directory_prep(dir, S_DOMAIN_ADD, error_r, 1, dom);
	if (st != NULL)
		sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
	if (directory_run(dir, st, error_r) < 0 || directory_commit(dir, error_r) < 0)
		return directory_rollback(dir);
	return 0;
}

int
directory_domain_del(struct directory *dir, const char *name, bool force,
    const char **error_r)
{
	char dom[DIRECTORY_DOMAIN_MAX + 1];
	if (directory_domain_normalize(name, dom, sizeof(dom), error_r) < 0 ||
	    directory_begin(dir, true, error_r) < 0)
		return -1;
	int ret = domain_exists_tx(dir, dom, error_r);
	if (ret < 0)
		return directory_rollback(dir);
	if (ret == 0) {
		directory_rollback(dir);
		return directory_fail(dir, error_r, "No such domain: %s.", dom);
	}
	sqlite3_stmt *st = directory_prep(dir, S_DOMAIN_COUNTS, error_r, 1, dom);
	if (st == NULL || directory_step(dir, st, error_r) != 1)
		return directory_rollback(dir);
	long long users = sqlite3_column_int64(st, 0), aliases = sqlite3_column_int64(st, 1);
	directory_stmt_done(st);
	if ((users > 0 || aliases > 0) && !force) {
		directory_rollback(dir);
		return directory_fail(dir, error_r, "Domain %s still has %lld user(s) and %lld "
		    "alias target(s); delete them first or force the deletion (--force).", dom,
		    users, aliases);
	}
	if (directory_run(dir, directory_prep(dir, S_DOMAIN_DEL, error_r, 1, dom), error_r) < 0 ||
	    directory_commit(dir, error_r) < 0)
		return directory_rollback(dir);
	if (users > 0 || aliases > 0)
		log_info("directory: domain %s deleted with %lld user(s) and %lld alias target(s)",
		    dom, users, aliases);
	return 0;
}

int
directory_domain_exists(struct directory *dir, const char *name, const char **error_r)
{
	char dom[DIRECTORY_DOMAIN_MAX + 1];
	const char *ignored;
	if (directory_domain_normalize(name, dom, sizeof(dom), &ignored) < 0)
		return 0;
	return domain_exists_tx(dir, dom, error_r);
}

/* Runs a listing statement and calls back with its one or two text columns. */
int
directory_list_rows(struct directory *dir, sqlite3_stmt *st, int ncols,
    int (*cb)(const char *, const char *, void *), void *ctx, const char **error_r)
{
	if (st == NULL)
		return -1;
	int ret;
	while ((ret = directory_step(dir, st, error_r)) == 1) {
		const char *a = (const char *)sqlite3_column_text(st, 0);
		const char *b = ncols > 1 ? (const char *)sqlite3_column_text(st, 1) : NULL;
		if (a == NULL || (ncols > 1 && b == NULL))
			continue;
		if (cb(a, b, ctx) != 0)
			break;
	}
	if (ret < 0)
		return -1;
	directory_stmt_done(st);
	return 0;
}

/* Adapters from the public one- and two-column callback types. */
struct list_adapter {
	directory_domain_cb *cb1;
	directory_alias_cb *cb2;
	void *ctx;
};

static int
list_adapt(const char *a, const char *b, void *ctx)
{
	struct list_adapter *ad = ctx;
	return ad->cb1 != NULL ? ad->cb1(a, ad->ctx) : ad->cb2(a, b, ad->ctx);
}

int
directory_domain_list(struct directory *dir, directory_domain_cb *cb, void *ctx,
    const char **error_r)
{
	struct list_adapter ad = { .cb1 = cb, .ctx = ctx };
	return directory_list_rows(dir, directory_stmt(dir, S_DOMAIN_LIST, error_r), 1, list_adapt, &ad,
	    error_r);
}

/* ---------------------------------------------------------------- users */

static int
check_hash(const char *hash, const char **error_r)
{
	size_t len = strlen(hash);
	if (len == 0 || len > 512)
		return syntax_fail(error_r, "The password hash is empty or too long.");
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)hash[i] <= 0x20 || (unsigned char)hash[i] >= 0x7f)
			return syntax_fail(error_r, "The password hash is not printable ASCII.");
	return 0;
}

int
directory_user_add(struct directory *dir, const char *address, const char *hash,
    const char **error_r)
{
	char addr[DIRECTORY_ADDR_BUF];
	if (directory_address_normalize(address, addr, sizeof(addr), error_r) < 0 ||
	    check_hash(hash, error_r) < 0)
		return -1;
	char *at = strrchr(addr, '@');
	char local[DIRECTORY_LOCAL_PART_MAX + 1];
	memcpy(local, addr, (size_t)(at - addr));
	local[at - addr] = '\0';
	const char *dom = at + 1;

	if (directory_begin(dir, true, error_r) < 0)
		return -1;
	int ret = domain_exists_tx(dir, dom, error_r);
	if (ret < 0)
		return directory_rollback(dir);
	if (ret == 0) {
		directory_rollback(dir);
		return directory_fail(dir, error_r, "Domain %s is not a local domain; add it first "
		    "(rampart domain add %s).", dom, dom);
	}
	ret = directory_exists(dir, directory_prep(dir, S_USER_EXISTS, error_r, 1, addr), error_r);
	if (ret < 0)
		return directory_rollback(dir);
	if (ret > 0) {
		directory_rollback(dir);
		return directory_fail(dir, error_r, "User %s already exists.", addr);
	}
	sqlite3_stmt *st = directory_prep(dir, S_USER_ADD, error_r, 4, addr, local, dom, hash);
	if (st != NULL)
		sqlite3_bind_int64(st, 5, (sqlite3_int64)time(NULL));
	if (directory_run(dir, st, error_r) < 0 || directory_commit(dir, error_r) < 0)
		return directory_rollback(dir);
	return 0;
}

/* Runs a one-statement write on an existing user; "No such user" when none changed. */
static int
user_write(struct directory *dir, enum directory_stmt_id id, const char *address, const char *hash,
    const char **error_r)
{
	char addr[DIRECTORY_ADDR_BUF];
	if (directory_address_normalize(address, addr, sizeof(addr), error_r) < 0 ||
	    (hash != NULL && check_hash(hash, error_r) < 0) ||
	    directory_begin(dir, true, error_r) < 0)
		return -1;
	sqlite3_stmt *st = directory_prep(dir, id, error_r, hash != NULL ? 2 : 1, addr, hash);
	if (st != NULL && hash != NULL)
		sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
	if (directory_run(dir, st, error_r) < 0)
		return directory_rollback(dir);
	if (sqlite3_changes(dir->db) == 0) {
		directory_rollback(dir);
		return directory_fail(dir, error_r, "No such user: %s.", addr);
	}
	if (directory_commit(dir, error_r) < 0)
		return directory_rollback(dir);
	return 0;
}

int
directory_user_del(struct directory *dir, const char *address, const char **error_r)
{
	return user_write(dir, S_USER_DEL, address, NULL, error_r);
}

int
directory_user_set_password(struct directory *dir, const char *address, const char *hash,
    const char **error_r)
{
	return user_write(dir, S_USER_SET_HASH, address, hash, error_r);
}

int
directory_user_get_hash(struct directory *dir, const char *address, char **hash_r,
    const char **error_r)
{
	char addr[DIRECTORY_ADDR_BUF];
	const char *ignored;
	*hash_r = NULL;
	if (directory_address_normalize(address, addr, sizeof(addr), &ignored) < 0)
		return 0;
	sqlite3_stmt *st = directory_prep(dir, S_USER_GET_HASH, error_r, 1, addr);
	int ret = st == NULL ? -1 : directory_step(dir, st, error_r);
	if (ret < 0)
		return -1;
	if (ret == 1) {
		const char *h = (const char *)sqlite3_column_text(st, 0);
		if ((*hash_r = strdup(h != NULL ? h : "")) == NULL)
			ret = directory_fail(dir, error_r, "Out of memory.");
	}
	directory_stmt_done(st);
	return ret;
}

int
directory_user_exists(struct directory *dir, const char *address, const char **error_r)
{
	char addr[DIRECTORY_ADDR_BUF];
	const char *ignored;
	if (directory_address_normalize(address, addr, sizeof(addr), &ignored) < 0)
		return 0;
	return directory_exists(dir, directory_prep(dir, S_USER_EXISTS, error_r, 1, addr), error_r);
}

int
directory_user_list(struct directory *dir, const char *domain, directory_user_cb *cb,
    void *ctx, const char **error_r)
{
	char dom[DIRECTORY_DOMAIN_MAX + 1];
	struct list_adapter ad = { .cb1 = cb, .ctx = ctx };
	if (domain == NULL)
		return directory_list_rows(dir, directory_stmt(dir, S_USER_LIST, error_r), 1, list_adapt, &ad,
		    error_r);
	if (directory_domain_normalize(domain, dom, sizeof(dom), error_r) < 0)
		return -1;
	return directory_list_rows(dir, directory_prep(dir, S_USER_LIST_DOMAIN, error_r, 1, dom), 1,
	    list_adapt, &ad, error_r);
}

/* ---------------------------------------------------------------- aliases */

/* 1 when addr (canonical, in a local domain) is a user or an alias, directly or
 * without its "+tag"; 0 when not; -1 on error. */
static int
local_address_known(struct directory *dir, const char *addr, char delimiter,
    const char **error_r)
{
	char base[DIRECTORY_ADDR_BUF];
	const char *cand = addr, *at = strrchr(addr, '@');
	for (int pass = 0; pass < 2; pass++) {
		sqlite3_stmt *st = directory_prep(dir, S_USER_EXISTS, error_r, 1, cand);
		int ret = directory_exists(dir, st, error_r);
		if (ret == 0) {
			st = directory_prep(dir, S_ALIAS_ANY, error_r, 1, cand);
			ret = directory_exists(dir, st, error_r);
		}
		if (ret != 0)
			return ret;
		const char *tag = delimiter != '\0' ? memchr(addr, delimiter, (size_t)(at - addr)) :
		    NULL;
		if (tag == NULL || tag == addr)
			return 0;
		snprintf(base, sizeof(base), "%.*s%s", (int)(tag - addr), addr, at);
		cand = base;
	}
	return 0;
}

int
directory_alias_add(struct directory *dir, const char *alias, const char *target,
    char delimiter, const char **error_r)
{
	char addr[DIRECTORY_ADDR_BUF], tgt[DIRECTORY_ADDR_BUF];
	size_t at;
	if (directory_address_normalize(alias, addr, sizeof(addr), error_r) < 0 ||
	    directory_split_address(target, tgt, sizeof(tgt), &at, error_r) < 0 ||
	    directory_check_target_local(tgt, at, error_r) < 0 ||
	    directory_begin(dir, true, error_r) < 0)
		return -1;
	const char *dom = strrchr(addr, '@') + 1;
	int ret = domain_exists_tx(dir, dom, error_r);
	if (ret <= 0) {
		directory_rollback(dir);
		return ret < 0 ? -1 : directory_fail(dir, error_r, "Domain %s is not a local "
		    "domain; an alias must be in a local domain.", dom);
	}
	/* A target in a local domain is canonical like any local address; an external
	 * one keeps the case of its local part (RFC 5321 §2.4). */
	if ((ret = domain_exists_tx(dir, tgt + at + 1, error_r)) < 0)
		return directory_rollback(dir);
	if (ret > 0) {
		const char *ignored;
		for (size_t i = 0; i < at; i++)
			tgt[i] = directory_ascii_lower(tgt[i]);
		bool self = strcmp(tgt, addr) == 0;
		ret = directory_check_mailbox_local(tgt, at, &ignored) < 0 ? 0 : self ?
		    directory_exists(dir, directory_prep(dir, S_USER_EXISTS, error_r, 1, tgt),
		    error_r) : local_address_known(dir, tgt, delimiter, error_r);
		if (ret <= 0) {
			directory_rollback(dir);
			if (ret < 0)
				return -1;
			if (self)
				return directory_fail(dir, error_r, "An alias can point to "
				    "itself only when it is also a user (to keep a copy in that "
				    "mailbox).");
			return directory_fail(dir, error_r, "Target %s is in a local domain but is "
			    "neither a user nor an alias.", tgt);
		}
	}
	if ((ret = directory_exists(dir, directory_prep(dir, S_ALIAS_EXISTS, error_r, 2, addr, tgt),
	    error_r)) != 0) {
		directory_rollback(dir);
		return ret < 0 ? -1 : directory_fail(dir, error_r, "Alias %s already points to %s.",
		    addr, tgt);
	}
	sqlite3_stmt *st = directory_prep(dir, S_ALIAS_COUNT, error_r, 1, addr);
	if (st == NULL || directory_step(dir, st, error_r) != 1)
		return directory_rollback(dir);
	long long n = sqlite3_column_int64(st, 0);
	directory_stmt_done(st);
	if (n >= DIRECTORY_RCPT_MAX_TARGETS) {
		directory_rollback(dir);
		return directory_fail(dir, error_r, "Alias %s already has %d targets, the "
		    "maximum.", addr, DIRECTORY_RCPT_MAX_TARGETS);
	}
	st = directory_prep(dir, S_ALIAS_ADD, error_r, 3, addr, dom, tgt);
	if (st != NULL)
		sqlite3_bind_int64(st, 4, (sqlite3_int64)time(NULL));
	if (directory_run(dir, st, error_r) < 0 || directory_commit(dir, error_r) < 0)
		return directory_rollback(dir);
	return 0;
}

int
directory_alias_del(struct directory *dir, const char *alias, const char *target,
    const char **error_r)
{
	char addr[DIRECTORY_ADDR_BUF];
	if (directory_address_normalize(alias, addr, sizeof(addr), error_r) < 0)
		return -1;
	if (target != NULL && strlen(target) > DIRECTORY_ADDRESS_MAX)
		return syntax_fail(error_r, "The target is longer than 254 characters.");
	if (directory_begin(dir, true, error_r) < 0)
		return -1;
	/* target compares case-insensitively (COLLATE NOCASE on the column) */
	sqlite3_stmt *st = target == NULL ? directory_prep(dir, S_ALIAS_DEL_ALL, error_r, 1, addr) :
	    directory_prep(dir, S_ALIAS_DEL_ONE, error_r, 2, addr, target);
	if (directory_run(dir, st, error_r) < 0)
		return directory_rollback(dir);
	if (sqlite3_changes(dir->db) == 0) {
		directory_rollback(dir);
		return target == NULL ? directory_fail(dir, error_r, "No such alias: %s.", addr) :
		    directory_fail(dir, error_r, "Alias %s does not point to %s.", addr, target);
	}
	if (directory_commit(dir, error_r) < 0)
		return directory_rollback(dir);
	return 0;
}

int
directory_alias_list(struct directory *dir, const char *domain, directory_alias_cb *cb,
    void *ctx, const char **error_r)
{
	char dom[DIRECTORY_DOMAIN_MAX + 1];
	struct list_adapter ad = { .cb2 = cb, .ctx = ctx };
	if (domain == NULL)
		return directory_list_rows(dir, directory_stmt(dir, S_ALIAS_LIST, error_r), 2, list_adapt, &ad,
		    error_r);
	if (directory_domain_normalize(domain, dom, sizeof(dom), error_r) < 0)
		return -1;
	return directory_list_rows(dir, directory_prep(dir, S_ALIAS_LIST_DOMAIN, error_r, 1, dom), 2,
	    list_adapt, &ad, error_r);
}
