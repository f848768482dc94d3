/*
 * directory-guard — the part of the guard's state that must outlive a restart
 * and that the admin CLI reads and changes: temporary blocks (`rampart guard
 * list/unblock`) and the familiar (user, address) pairs that smart lockout
 * exempts. The counters themselves stay in the auth process's memory. Times
 * are Unix milliseconds. See directory.h.
 */
#include "auth/directory.h"
#include "auth/directory-private.h"

#include <stdlib.h>

int
directory_block_put(struct directory *dir, const char *network, int64_t until_ms,
    unsigned level, const char **error_r)
{
	sqlite3_stmt *st = directory_prep(dir, S_BLOCK_PUT, error_r, 1, network);
	if (st != NULL) {
		sqlite3_bind_int64(st, 2, (sqlite3_int64)until_ms);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)level);
	}
	return directory_run(dir, st, error_r);
}

int
directory_block_del(struct directory *dir, const char *network, const char **error_r)
{
	if (directory_run(dir, directory_prep(dir, S_BLOCK_DEL, error_r, 1, network), error_r) < 0)
		return -1;
	return sqlite3_changes(dir->db) > 0;
}

int
directory_block_list(struct directory *dir, directory_block_cb *cb, void *ctx,
    const char **error_r)
{
	sqlite3_stmt *st = directory_stmt(dir, S_BLOCK_LIST, error_r);
	if (st == NULL)
		return -1;
	int ret;
	while ((ret = directory_step(dir, st, error_r)) == 1) {
		const char *net = (const char *)sqlite3_column_text(st, 0);
		if (net != NULL && cb(net, (int64_t)sqlite3_column_int64(st, 1),
		    (unsigned)sqlite3_column_int64(st, 2), ctx) != 0)
			break;
	}
	if (ret < 0)
		return -1;
	directory_stmt_done(st);
	return 0;
}

int
directory_known_put(struct directory *dir, const char *user, const char *host, int64_t until_ms,
    const char **error_r)
{
	sqlite3_stmt *st = directory_prep(dir, S_KNOWN_PUT, error_r, 2, user, host);
	if (st != NULL)
		sqlite3_bind_int64(st, 3, (sqlite3_int64)until_ms);
	return directory_run(dir, st, error_r);
}

int
directory_known_list(struct directory *dir, int64_t now_ms, directory_known_cb *cb, void *ctx,
    const char **error_r)
{
	sqlite3_stmt *st = directory_stmt(dir, S_KNOWN_LIST, error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)now_ms);
	int ret;
	while ((ret = directory_step(dir, st, error_r)) == 1) {
		const char *user = (const char *)sqlite3_column_text(st, 0);
		const char *host = (const char *)sqlite3_column_text(st, 1);
		if (user != NULL && host != NULL &&
		    cb(user, host, (int64_t)sqlite3_column_int64(st, 2), ctx) != 0)
			break;
	}
	if (ret < 0)
		return -1;
	directory_stmt_done(st);
	return 0;
}

int
directory_guard_prune(struct directory *dir, int64_t now_ms, const char **error_r)
{
	sqlite3_stmt *st = directory_stmt(dir, S_BLOCK_PRUNE, error_r);
	if (st != NULL)
		sqlite3_bind_int64(st, 1, (sqlite3_int64)now_ms);
	if (directory_run(dir, st, error_r) < 0)
		return -1;
	st = directory_stmt(dir, S_KNOWN_PRUNE, error_r);
	if (st != NULL)
		sqlite3_bind_int64(st, 1, (sqlite3_int64)now_ms);
	return directory_run(dir, st, error_r);
}

int64_t
directory_data_version(struct directory *dir)
{
	const char *error;
	sqlite3_stmt *st = directory_stmt(dir, S_DATA_VERSION, &error);
	if (st == NULL || directory_step(dir, st, &error) != 1)
		return -1;
	int64_t v = (int64_t)sqlite3_column_int64(st, 0);
	directory_stmt_done(st);
	return v;
}
