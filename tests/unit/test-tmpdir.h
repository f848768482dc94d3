/*
 * test-tmpdir — removing a test's scratch directory tree (unit tests only).
 * Entries are made writable first, so trees a test locked down (mode 0) go too.
 */
#ifndef RAMPART_TEST_TMPDIR_H
#define RAMPART_TEST_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

static int
test_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	chmod(path, 0700);
	return remove(path);
}

/* Removes dir and everything under it, not following symbolic links. */
static inline void
test_rm_tree(const char *dir)
{
	chmod(dir, 0700);
	nftw(dir, test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
