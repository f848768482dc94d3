/*
 * Unit tests for keyring: the key directory (DIR/DOMAIN/SELECTOR.key and
 * .state), which keys sign at a given time, reloading when the directory
 * changes, and files that cannot be used (skipped, with a sentence naming
 * them). Keys are made with dkim_key_generate in a temporary directory; state
 * files are parsed from text and written and read back.
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

#include "keys/keyring.h"
#include "test-tmpdir.h"

#define T0 1700000000

static char root[64];

static int setup(void **state)
{
	snprintf(root, sizeof(root), "/tmp/test-keyring-XXXXXX");
	assert_non_null(mkdtemp(root));
	return 0;
}

static int teardown(void **state)
{
	test_rm_tree(root);
	return 0;
}

static void make_dir(const char *domain)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", root, domain);
	assert_int_equal(mkdir(path, 0700), 0);
}

static void make_key(const char *domain, const char *selector, enum dkim_key_type type)
{
	char path[256], *txt = NULL;
	const char *error = NULL;

	snprintf(path, sizeof(path), "%s/%s/%s.key", root, domain, selector);
	if (dkim_key_generate(type, type == DKIM_KEY_RSA ? 1024 : 0, path, &txt, &error) < 0)
		fail_msg("keygen %s: %s", path, error);
	free(txt);
}

static void write_file(const char *rel, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void set_state(const char *domain, const char *selector, time_t nb, time_t ra)
{
	char path[256];
	const char *error = NULL;

	snprintf(path, sizeof(path), "%s/%s/%s.state", root, domain, selector);
	if (keyring_state_write(path, nb, ra, "test", &error) < 0)
		fail_msg("%s", error);
}

/* "domain/selector,..." of the keys signing at t. */
static void signing_text(const struct keyring *kr, time_t t, char *buf, size_t size)
{
	struct keys_selector v[16];
	size_t n = keyring_signing(kr, t, v, 16);

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++)
		snprintf(buf + strlen(buf), size - strlen(buf), "%s%s/%s%s", i > 0 ? "," : "",
		    v[i].domain, v[i].selector, v[i].type == DKIM_KEY_RSA ? "(rsa)" : "");
}

static bool has_problem(const struct keyring *kr, const char *needle)
{
	for (size_t i = 0; i < keyring_problem_count(kr); i++)
		if (strstr(keyring_problem(kr, i), needle) != NULL)
			return true;
	return false;
}

/* ---------------------------------------------------------------- state files */

static int parse(const char *text, time_t *nb, time_t *ra, const char **error)
{
	size_t len = strlen(text);
	char *c = malloc(len + 1);
	int rc;

	assert_non_null(c);
	memcpy(c, text, len);
	*error = NULL;
	rc = keyring_state_parse(c, len, nb, ra, error);
	free(c);
	return rc;
}

static void test_state_parse(void **state)
{
	time_t nb, ra;
	const char *error;

	assert_int_equal(parse("", &nb, &ra, &error), 0);
	assert_int_equal(nb, 0);
	assert_int_equal(ra, 0);
	assert_int_equal(parse("not-before 1700000000\nretire-at 1700000100\n", &nb, &ra,
	    &error), 0);
	assert_int_equal(nb, 1700000000);
	assert_int_equal(ra, 1700000100);
	assert_int_equal(parse("# made by rotate\r\n\r\n  retire-at\t\t42  \r\n", &nb, &ra,
	    &error), 0);
	assert_int_equal(nb, 0);
	assert_int_equal(ra, 42);
	assert_int_equal(parse("not-before 999999999999", &nb, &ra, &error), 0);
	assert_int_equal(nb, 999999999999LL);
	assert_int_equal(parse("\n\n# x\n   \n", &nb, &ra, &error), 0);

	assert_int_equal(parse("not-before 1\nnot-before 2\n", &nb, &ra, &error), -1);
	assert_string_equal(error, "line 2: not-before given twice");
	assert_int_equal(parse("\nexpires 5\n", &nb, &ra, &error), -1);
	assert_string_equal(error, "line 2: not \"not-before TIME\" or \"retire-at TIME\"");
	assert_int_equal(parse("not-before 0\n", &nb, &ra, &error), -1);
	assert_string_equal(error, "line 1: the time is not a number of seconds since 1970 "
	    "(1 to 12 digits, not 0)");
	assert_int_equal(parse("not-before 1000000000000\n", &nb, &ra, &error), -1);
	assert_int_equal(parse("not-before -5\n", &nb, &ra, &error), -1);
	assert_int_equal(parse("not-before 12x\n", &nb, &ra, &error), -1);
	assert_int_equal(parse("not-before 12 13\n", &nb, &ra, &error), -1);
	assert_int_equal(parse("not-before\n", &nb, &ra, &error), -1);
	assert_int_equal(parse("not-before \n", &nb, &ra, &error), -1);
	assert_int_equal(parse("not-before:5\n", &nb, &ra, &error), -1);
	assert_int_equal(parse("NOT-BEFORE 5\n", &nb, &ra, &error), -1);
	assert_int_equal(parse("retire-at 5 # comment\n", &nb, &ra, &error), -1);

	char *big = malloc(KEYRING_STATE_MAX + 2);
	assert_non_null(big);
	memset(big, '\n', KEYRING_STATE_MAX + 1);
	assert_int_equal(keyring_state_parse(big, KEYRING_STATE_MAX, &nb, &ra, &error), 0);
	assert_int_equal(keyring_state_parse(big, KEYRING_STATE_MAX + 1, &nb, &ra, &error), -1);
	assert_string_equal(error, "longer than 4096 octets");
	free(big);
}

static void test_state_write_read(void **state)
{
	char path[256], tmp[270];
	time_t nb, ra;
	const char *error = NULL;
	struct stat st;

	snprintf(path, sizeof(path), "%s/s.state", root);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	assert_int_equal(keyring_state_read(path, &nb, &ra, &error), 0);   /* none: active */
	assert_int_equal(nb, 0);
	assert_int_equal(ra, 0);
	assert_int_equal(keyring_state_write(path, 1700000000, 1800000000, "rotated", &error), 0);
	assert_int_equal(keyring_state_read(path, &nb, &ra, &error), 0);
	assert_int_equal(nb, 1700000000);
	assert_int_equal(ra, 1800000000);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(tmp, &st), -1);
	assert_int_equal(keyring_state_write(path, 0, 1900000000, NULL, &error), 0);
	assert_int_equal(keyring_state_read(path, &nb, &ra, &error), 0);
	assert_int_equal(nb, 0);
	assert_int_equal(ra, 1900000000);
	assert_int_equal(keyring_state_write(path, 1, 0, "two\nlines", &error), -1);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite("retire-at 5\n\0", 1, 13, f), 13);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(keyring_state_read(path, &nb, &ra, &error), -1);
	assert_non_null(strstr(error, "holds a NUL octet"));
	snprintf(path, sizeof(path), "%s/nodir/s.state", root);
	assert_int_equal(keyring_state_write(path, 1, 0, NULL, &error), -1);
	assert_non_null(strstr(error, "cannot create"));
}

/* ---------------------------------------------------------------- selection by time */

static void test_signing_by_time(void **state)
{
	struct keyring *kr = keyring_new(root);
	char text[512];
	unsigned char digest[32] = { 1, 2, 3 }, sig[KEYS_SIG_MAX];
	size_t siglen = 0;

	make_dir("example.org");
	make_dir("other.test");
	make_key("example.org", "a", DKIM_KEY_RSA);          /* active */
	make_key("example.org", "b", DKIM_KEY_ED25519);      /* next: from T0+100 */
	make_key("example.org", "c", DKIM_KEY_ED25519);      /* retiring: until T0+50 */
	make_key("example.org", "d", DKIM_KEY_ED25519);      /* retired at T0-1 */
	make_key("other.test", "z", DKIM_KEY_ED25519);
	set_state("example.org", "b", T0 + 100, 0);
	set_state("example.org", "c", 0, T0 + 50);
	set_state("example.org", "d", T0 - 10, T0 - 1);
	write_file("other.test/orphan.state", "retire-at 1\n");   /* no key: ignored */

	assert_non_null(kr);
	assert_int_equal(keyring_load(kr, false), 1);
	assert_int_equal(keyring_problem_count(kr), 0);
	assert_int_equal(keyring_count(kr), 5);
	assert_string_equal(keyring_get(kr, 0)->selector, "a");
	assert_string_equal(keyring_get(kr, 3)->selector, "d");
	assert_int_equal(keyring_get(kr, 3)->not_before, T0 - 10);
	assert_int_equal(keyring_get(kr, 3)->retire_at, T0 - 1);
	assert_string_equal(keyring_get(kr, 4)->domain, "other.test");
	assert_null(keyring_get(kr, 5));

	/* ed25519 before rsa within a domain; domains in order. */
	signing_text(kr, T0, text, sizeof(text));
	assert_string_equal(text, "example.org/c,example.org/a(rsa),other.test/z");
	signing_text(kr, T0 + 49, text, sizeof(text));
	assert_string_equal(text, "example.org/c,example.org/a(rsa),other.test/z");
	signing_text(kr, T0 + 50, text, sizeof(text));
	assert_string_equal(text, "example.org/a(rsa),other.test/z");
	signing_text(kr, T0 + 100, text, sizeof(text));
	assert_string_equal(text, "example.org/b,example.org/a(rsa),other.test/z");
	signing_text(kr, T0 - 5, text, sizeof(text));
	assert_string_equal(text, "example.org/c,example.org/d,example.org/a(rsa),other.test/z");
	struct keys_selector one[1];
	assert_int_equal(keyring_signing(kr, T0, one, 1), 1);
	assert_string_equal(one[0].selector, "c");

	assert_int_equal(keyring_next_change(kr, T0 - 5), T0 - 1);
	assert_int_equal(keyring_next_change(kr, T0), T0 + 50);
	assert_int_equal(keyring_next_change(kr, T0 + 50), T0 + 100);
	assert_int_equal(keyring_next_change(kr, T0 + 100), 0);

	assert_int_equal(keyring_sign(kr, "example.org", "a", T0, digest, sig, &siglen), KEYS_OK);
	assert_int_equal(siglen, 128);                        /* RSA-1024 */
	assert_int_equal(keyring_sign(kr, "example.org", "c", T0, digest, sig, &siglen), KEYS_OK);
	assert_int_equal(siglen, 64);                         /* Ed25519 */
	assert_int_equal(keyring_sign(kr, "example.org", "c", T0 + 50, digest, sig, &siglen),
	    KEYS_NO_KEY);
	assert_int_equal(keyring_sign(kr, "example.org", "b", T0, digest, sig, &siglen),
	    KEYS_NO_KEY);
	assert_int_equal(keyring_sign(kr, "example.org", "b", T0 + 100, digest, sig, &siglen),
	    KEYS_OK);
	assert_int_equal(keyring_sign(kr, "example.org", "d", T0, digest, sig, &siglen),
	    KEYS_NO_KEY);
	assert_int_equal(keyring_sign(kr, "example.org", "zz", T0, digest, sig, &siglen),
	    KEYS_NO_KEY);
	assert_int_equal(keyring_sign(kr, "other.test", "z", T0, digest, sig, &siglen), KEYS_OK);
	assert_int_equal(keyring_sign(kr, "nowhere.test", "z", T0, digest, sig, &siglen),
	    KEYS_NO_KEY);
	keyring_free(&kr);
	assert_null(kr);
}

/* ---------------------------------------------------------------- reloading */

static void test_reload(void **state)
{
	char sub[128], text[512];
	struct keyring *kr;

	snprintf(sub, sizeof(sub), "%s/keys", root);
	kr = keyring_new(sub);
	assert_int_equal(keyring_load(kr, false), 1);     /* no directory yet: no keys */
	assert_int_equal(keyring_count(kr), 0);
	assert_int_equal(keyring_problem_count(kr), 0);
	assert_int_equal(keyring_load(kr, false), 0);
	assert_int_equal(keyring_load(kr, true), 1);

	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(keyring_load(kr, false), 1);
	make_dir("keys/example.org");
	assert_int_equal(keyring_load(kr, false), 0);     /* an empty domain: no keys either */
	assert_int_equal(keyring_count(kr), 0);
	make_key("keys/example.org", "s1", DKIM_KEY_ED25519);
	assert_int_equal(keyring_load(kr, false), 1);
	assert_int_equal(keyring_count(kr), 1);
	assert_int_equal(keyring_load(kr, false), 0);     /* nothing changed */

	/* A new key appears. */
	make_key("keys/example.org", "s2", DKIM_KEY_ED25519);
	assert_int_equal(keyring_load(kr, false), 1);
	signing_text(kr, T0, text, sizeof(text));
	assert_string_equal(text, "example.org/s1,example.org/s2");

	/* A state file appears, then changes (rewritten by rename). */
	set_state("keys/example.org", "s1", 0, T0);
	assert_int_equal(keyring_load(kr, false), 1);
	signing_text(kr, T0, text, sizeof(text));
	assert_string_equal(text, "example.org/s2");
	set_state("keys/example.org", "s1", 0, T0 + 1);
	assert_int_equal(keyring_load(kr, false), 1);
	signing_text(kr, T0, text, sizeof(text));
	assert_string_equal(text, "example.org/s1,example.org/s2");

	/* Files that are not ours change nothing. */
	write_file("keys/example.org/README", "x");
	write_file("keys/example.org/s3.key.tmp", "x");
	write_file("keys/example.org/.hidden.key", "x");
	assert_int_equal(keyring_load(kr, false), 0);

	/* A key removed. */
	char path[256];
	snprintf(path, sizeof(path), "%s/example.org/s2.key", sub);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(keyring_load(kr, false), 1);
	signing_text(kr, T0, text, sizeof(text));
	assert_string_equal(text, "example.org/s1");
	keyring_free(&kr);
}

/* ---------------------------------------------------------------- bad files */

static void test_bad_files_skipped(void **state)
{
	struct keyring *kr = keyring_new(root);
	char text[512];
	const struct keyring_key *k;

	make_dir("example.org");
	make_dir("Upper.Example");
	make_dir("example.org/dir.key");
	make_key("example.org", "good", DKIM_KEY_ED25519);
	make_key("example.org", "badstate", DKIM_KEY_ED25519);
	write_file("example.org/badstate.state", "retire-at soon\n");
	write_file("example.org/garbage.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n");
	write_file("example.org/bad sel.key", "x");
	write_file("example.org/empty.key", "");
	write_file("stray-file", "x");

	assert_int_equal(keyring_load(kr, false), 1);
	assert_int_equal(keyring_count(kr), 4);   /* badstate, empty, garbage, good */
	k = keyring_get(kr, 0);
	assert_string_equal(k->selector, "badstate");
	assert_null(k->key);
	assert_string_equal(k->error, "Its state file is not usable: line 1: the time is not a "
	    "number of seconds since 1970 (1 to 12 digits, not 0)");
	k = keyring_get(kr, 1);
	assert_string_equal(k->selector, "empty");
	assert_string_equal(k->error, "The key is not an unencrypted PEM private key.");
	k = keyring_get(kr, 2);
	assert_string_equal(k->selector, "garbage");
	assert_null(k->key);
	assert_false(keyring_key_signs(k, T0));
	k = keyring_get(kr, 3);
	assert_string_equal(k->selector, "good");
	assert_non_null(k->key);
	assert_null(k->error);
	assert_int_equal(k->type, DKIM_KEY_ED25519);

	signing_text(kr, T0, text, sizeof(text));
	assert_string_equal(text, "example.org/good");
	assert_int_equal(keyring_next_change(kr, T0), 0);

	assert_int_equal(keyring_problem_count(kr), 6);
	snprintf(text, sizeof(text), "%s/Upper.Example: not a lower-case domain name; ignored",
	    root);
	assert_true(has_problem(kr, text));
	snprintf(text, sizeof(text), "%s/example.org/bad sel.key: the selector is not a valid "
	    "name", root);
	assert_true(has_problem(kr, text));
	snprintf(text, sizeof(text), "%s/example.org/dir.key: not a regular file; ignored", root);
	assert_true(has_problem(kr, text));
	snprintf(text, sizeof(text), "%s/example.org/garbage.key: The key is not an unencrypted "
	    "PEM private key.", root);
	assert_true(has_problem(kr, text));
	snprintf(text, sizeof(text), "%s/example.org/badstate.key: Its state file is not usable",
	    root);
	assert_true(has_problem(kr, text));
	assert_null(keyring_problem(kr, 6));

	/* Fixing the state file brings the key back. */
	write_file("example.org/badstate.state", "retire-at 1800000000\n");
	assert_int_equal(keyring_load(kr, false), 1);
	signing_text(kr, T0, text, sizeof(text));
	assert_string_equal(text, "example.org/badstate,example.org/good");
	assert_int_equal(keyring_problem_count(kr), 5);
	keyring_free(&kr);
}

static void test_unreadable_directory(void **state)
{
	char dir[128], text[256];
	struct keyring *kr;

	/* A file where the directory should be (root reads a mode-0 directory). */
	snprintf(dir, sizeof(dir), "%s/keys", root);
	write_file("keys", "not a directory");
	kr = keyring_new(dir);
	assert_int_equal(keyring_load(kr, false), 1);
	assert_int_equal(keyring_count(kr), 0);
	snprintf(text, sizeof(text), "%s: cannot be read: Not a directory", dir);
	assert_int_equal(keyring_problem_count(kr), 1);
	assert_string_equal(keyring_problem(kr, 0), text);
	assert_int_equal(unlink(dir), 0);
	make_dir("keys");
	make_dir("keys/example.org");
	make_key("keys/example.org", "s", DKIM_KEY_ED25519);
	assert_int_equal(keyring_load(kr, false), 1);
	assert_int_equal(keyring_count(kr), 1);
	assert_int_equal(keyring_problem_count(kr), 0);
	if (geteuid() != 0) {
		assert_int_equal(chmod(dir, 0), 0);
		assert_int_equal(keyring_load(kr, false), 1);
		assert_int_equal(keyring_count(kr), 0);
		snprintf(text, sizeof(text), "%s: cannot be read: Permission denied", dir);
		assert_string_equal(keyring_problem(kr, 0), text);
	}
	keyring_free(&kr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_parse),
		cmocka_unit_test_setup_teardown(test_state_write_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_signing_by_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_files_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreadable_directory, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
