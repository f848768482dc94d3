/*
 * Unit tests for relay-secret: the smarthost password file. One line, a final
 * LF or CRLF not part of it; refused when others may read or anybody but the
 * owner may write it, when it is a symlink, not a regular file, empty, longer
 * than RELAY_SECRET_MAX, or has more than one line; errors never quote it.
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
#include <unistd.h>

#include "queue/relay-secret.h"

static char dir[64];

static int
setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/test-relay-secret-XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static const char *
file_with(const char *name, const char *content, size_t len, mode_t mode)
{
	static char path[128];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(content, 1, len, f), len);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
	return path;
}

static void
expect_ok(const char *path, const char *want)
{
	char *secret = (char *)"unset";
	const char *error = NULL;
	assert_int_equal(relay_secret_load(path, &secret, &error), 0);
	assert_string_equal(secret, want);
	relay_secret_free(&secret);
	assert_null(secret);
}

static void
expect_refused(const char *path, const char *why)
{
	char *secret = (char *)"unset";
	const char *error = NULL;
	assert_int_equal(relay_secret_load(path, &secret, &error), -1);
	assert_null(secret);
	assert_non_null(strstr(error, why));
	assert_null(strstr(error, "Pw-"));   /* never the content */
}

static void
test_accepted_shapes(void **state)
{
	expect_ok(file_with("lf", "Pw-one\n", 7, 0600), "Pw-one");
	expect_ok(file_with("crlf", "Pw-two\r\n", 8, 0600), "Pw-two");
	expect_ok(file_with("bare", "Pw-three", 8, 0400), "Pw-three");
	expect_ok(file_with("group", "Pw-four\n", 8, 0640), "Pw-four");
	expect_ok(file_with("spaces", " Pw five \n", 10, 0600), " Pw five ");
	char max[RELAY_SECRET_MAX + 1];
	memset(max, 'p', RELAY_SECRET_MAX);
	max[RELAY_SECRET_MAX] = '\0';
	expect_ok(file_with("max", max, RELAY_SECRET_MAX, 0600), max);
}

static void
test_refused(void **state)
{
	expect_refused(file_with("world", "Pw-x\n", 5, 0644), "others");
	expect_refused(file_with("groupw", "Pw-x\n", 5, 0620), "others");
	expect_refused(file_with("empty", "", 0, 0600), "empty");
	expect_refused(file_with("newline", "\n", 1, 0600), "empty");
	expect_refused(file_with("two", "Pw-a\nPw-b\n", 10, 0600), "one line");
	expect_refused(file_with("nul", "Pw-a\0b\n", 7, 0600), "one line");
	expect_refused(file_with("cr", "Pw-a\rb\n", 7, 0600), "one line");
	char big[RELAY_SECRET_MAX + 2];
	memset(big, 'p', sizeof(big));
	expect_refused(file_with("big", big, sizeof(big), 0600), "too long");
	/* A final LF does not make the limit + 1 octets acceptable ... */
	char edge[RELAY_SECRET_MAX + 1];
	memset(edge, 'p', RELAY_SECRET_MAX);
	edge[RELAY_SECRET_MAX] = '\n';
	expect_refused(file_with("edge", edge, sizeof(edge), 0600), "too long");

	char link[128], target[128];
	snprintf(target, sizeof(target), "%s", file_with("target", "Pw-t\n", 5, 0600));
	snprintf(link, sizeof(link), "%s/link", dir);
	assert_int_equal(symlink(target, link), 0);
	expect_refused(link, "symbolic link");
	expect_refused(dir, "regular file");
	char missing[128];
	snprintf(missing, sizeof(missing), "%s/missing", dir);
	expect_refused(missing, "cannot be opened");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_accepted_shapes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
