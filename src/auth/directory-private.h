/*
 * directory-private — what directory.c (storage), directory-syntax.c (address
 * rules) and directory-rcpt.c (recipient lookup) share. Not for other modules.
 */
#ifndef RAMPART_DIRECTORY_PRIVATE_H
#define RAMPART_DIRECTORY_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include <sqlite3.h>

#include "auth/directory.h"

#define DIRECTORY_ADDR_BUF (DIRECTORY_ADDRESS_MAX + 1)
#define DIRECTORY_LOCAL_PART_MAX 64     /* RFC 5321 §4.5.3.1.1 */
#define DIRECTORY_DOMAIN_MAX 253        /* RFC 1035 §2.3.4 */

/* Prepared statements, one per query, prepared on first use and reused. */
enum directory_stmt_id {
	S_BEGIN, S_BEGIN_IMMEDIATE, S_COMMIT,
	S_DOMAIN_EXISTS, S_DOMAIN_ADD, S_DOMAIN_DEL, S_DOMAIN_COUNTS, S_DOMAIN_LIST,
	S_USER_EXISTS, S_USER_ADD, S_USER_DEL, S_USER_SET_HASH, S_USER_GET_HASH,
	S_USER_LIST, S_USER_LIST_DOMAIN,
	S_ALIAS_EXISTS, S_ALIAS_ANY, S_ALIAS_COUNT, S_ALIAS_ADD, S_ALIAS_TARGETS,
	S_ALIAS_DEL_ONE, S_ALIAS_DEL_ALL, S_ALIAS_LIST, S_ALIAS_LIST_DOMAIN,
	S_LOGIN_GET, S_USER_SET_SMTP, S_USER_SET_IMAP, S_USER_SET_POP3, S_USER_SET_NETWORKS,
	S_USER_SET_ENABLED, S_DOMAIN_SET_SMTP, S_DOMAIN_SET_IMAP, S_DOMAIN_SET_POP3, S_DOMAIN_GET,
	S_SENDAS_ADD, S_SENDAS_DEL, S_SENDAS_LIST, S_SENDAS_LIST_USER, S_SENDAS_MATCH,
	S_BLOCK_PUT, S_BLOCK_DEL, S_BLOCK_LIST, S_BLOCK_PRUNE, S_KNOWN_PUT, S_KNOWN_LIST,
	S_KNOWN_PRUNE, S_DATA_VERSION,
	S_COUNT
};

struct directory {
	sqlite3 *db;
	sqlite3_stmt *stmt[S_COUNT];
	char error[512];     /* what *error_r points at; valid until the next call */
};

/* Formats a sentence into dir->error, points *error_r at it, returns -1. */
int directory_fail(struct directory *dir, const char **error_r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The sentence for an SQLite result code (busy, or the engine's message). */
int directory_db_fail(struct directory *dir, int rc, const char **error_r);

/* The prepared statement id, reset; NULL with *error_r on failure. */
sqlite3_stmt *directory_stmt(struct directory *dir, enum directory_stmt_id id,
    const char **error_r);
/* Same, binding nargs text (const char *) parameters to ?1..?n. */
sqlite3_stmt *directory_prep(struct directory *dir, enum directory_stmt_id id,
    const char **error_r, int nargs, ...);
/* One step: 1 row, 0 done, -1 error (the statement is then reset). */
int directory_step(struct directory *dir, sqlite3_stmt *st, const char **error_r);
void directory_stmt_done(sqlite3_stmt *st);
/* Runs st (NULL: a failed prepare) to completion and resets it: 0 or -1. */
int directory_run(struct directory *dir, sqlite3_stmt *st, const char **error_r);
/* Runs st (NULL: a failed prepare) to its first row: 1 a row, 0 none, -1 error. Resets. */
int directory_exists(struct directory *dir, sqlite3_stmt *st, const char **error_r);
/* Steps st through its rows calling cb(column 0, column 1 or NULL, ctx); stops
 * when cb returns non-zero. 0 or -1. */
int directory_list_rows(struct directory *dir, sqlite3_stmt *st, int ncols,
    int (*cb)(const char *, const char *, void *), void *ctx, const char **error_r);
/* A read (deferred) or write (IMMEDIATE, waits for the busy timeout) transaction. */
int directory_begin(struct directory *dir, bool write, const char **error_r);
int directory_commit(struct directory *dir, const char **error_r);
/* Rolls back any open transaction and returns -1, keeping the first error. */
int directory_rollback(struct directory *dir);

/* ---- syntax (directory-syntax.c) ---- */
char directory_ascii_lower(char c);
/* Length of the well-formed UTF-8 sequence at s (no C1 controls), 0 if malformed. */
size_t directory_utf8_seq(const unsigned char *s);
/* lp[0..len) as a mailbox directory name (already lowercased). */
int directory_check_mailbox_local(const char *lp, size_t len, const char **error_r);
/* lp[0..len) as an alias target's local part: dot-atom or UTF-8. */
int directory_check_target_local(const char *lp, size_t len, const char **error_r);
/* Copies address into buf with a normalised domain; *at_r = position of the '@'.
 * The local part is copied as is. */
int directory_split_address(const char *address, char *buf, size_t bufsize, size_t *at_r,
    const char **error_r);

#endif
