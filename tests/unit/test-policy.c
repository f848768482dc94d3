/*
 * Unit tests for policy: each rule refuses with its own sentence, the sentence
 * never repeats the password, good passwords pass, and the common list is the
 * real data/common-passwords.txt (found through RAMPART_SRCDIR).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/password.h"
#include "auth/policy.h"

static char list_path[4096];

static int
setup(void **state)
{
	const char *srcdir = getenv("RAMPART_SRCDIR");
	snprintf(list_path, sizeof(list_path), "%s/data/common-passwords.txt",
	    srcdir != NULL ? srcdir : "../..");
	return 0;
}

static int
teardown(void **state)
{
	policy_cleanup();
	return 0;
}

static void
params_full(struct policy_params *p)
{
	policy_params_init(p);
	p->common_list_path = list_path;
}

/* Refused, with a reason that starts with prefix and does not echo the password. */
static void
assert_refused(const char *password, const char *lp, const char *dom, const char *prefix)
{
	struct policy_params p;
	params_full(&p);
	const char *reason = NULL;
	assert_int_equal(policy_check_password(password, lp, dom, &p, &reason), -1);
	assert_non_null(reason);
	if (strncmp(reason, prefix, strlen(prefix)) != 0)
		fail_msg("reason \"%s\" does not start with \"%s\"", reason, prefix);
	assert_null(strstr(reason, password));
	assert_int_equal(reason[strlen(reason) - 1], '.');
}

static void
assert_accepted(const char *password, const char *lp, const char *dom)
{
	struct policy_params p;
	params_full(&p);
	const char *reason = NULL;
	if (policy_check_password(password, lp, dom, &p, &reason) != 0)
		fail_msg("refused: %s", reason);
}

static void
test_defaults(void **state)
{
	struct policy_params p;
	policy_params_init(&p);
	assert_int_equal(p.min_length, 12);
	assert_true(p.min_entropy == 40.0);
	assert_null(p.common_list_path);
}

static void
test_too_short(void **state)
{
	assert_refused("Xq7#vL2p", "bob", "example.org",
	    "Password is too short: at least 12 characters are required.");
	struct policy_params p;
	params_full(&p);
	p.min_length = 20;
	const char *reason;
	assert_int_equal(policy_check_password("k7#Qm2!vXz9pLw", NULL, NULL, &p, &reason), -1);
	assert_string_equal(reason, "Password is too short: at least 20 characters are required.");
}

static void
test_length_counts_code_points(void **state)
{
	/* 11 Cyrillic letters are 22 bytes but 11 characters: too short */
	assert_refused("\xd0\xb6\xd1\x83\xd0\xba\xd0\xbe\xd0\xb2\xd1\x8b\xd0\xb9\xd1\x81\xd0\xbb"
	    "\xd0\xbe\xd0\xbd", NULL, NULL, "Password is too short");
	/* 14 characters, random enough: accepted */
	assert_accepted("\xd0\xb6\xd1\x83\xd0\xba-\xd0\xbe\xd0\xb2\xd1\x8b\xd0\xb9 7\xd1\x81"
	    "\xd0\xbb#\xd0\xbe", NULL, NULL);
}

static void
test_bad_bytes(void **state)
{
	assert_refused("abcdefgh\xff" "ijklmnop", NULL, NULL, "Password is not valid UTF-8.");
	assert_refused("abcdefgh\xc0\xaf" "ijklmnop", NULL, NULL, "Password is not valid UTF-8.");
	assert_refused("abcdefgh\xed\xa0\x80ijklmnop", NULL, NULL, "Password is not valid UTF-8.");
	assert_refused("abcdefgh\tijklmnop", NULL, NULL,
	    "Password must not contain control characters.");
	assert_refused("abcdefgh\x7fijklmnop", NULL, NULL,
	    "Password must not contain control characters.");
	assert_refused("abcdefgh\xc2\x85ijklmnop", NULL, NULL,
	    "Password must not contain control characters.");
}

static void
test_too_long(void **state)
{
	char *pw = malloc(PASSWORD_MAX_BYTES + 2);
	assert_non_null(pw);
	for (size_t i = 0; i < PASSWORD_MAX_BYTES + 1; i++)
		pw[i] = (char)('a' + (i * 7) % 26);
	pw[PASSWORD_MAX_BYTES + 1] = '\0';
	assert_refused(pw, NULL, NULL, "Password is too long: at most 1024 bytes are allowed.");
	free(pw);
}

static void
test_contains_user(void **state)
{
	assert_refused("Qz8!wm-BOB-tr4#vK", "bob", "example.org",
	    "Password must not contain the user name or part of it.");
	assert_refused("Qz8!wm-Smith-tr4#vK", "john.smith", "example.org",
	    "Password must not contain the user name or part of it.");
	/* parts shorter than 3 characters are not forbidden */
	assert_accepted("Qz8!wm-al-tr4#vKp", "al", "example.org");
}

static void
test_contains_domain(void **state)
{
	assert_refused("Qz8!wm-Example-tr4#vK", "bob", "example.org",
	    "Password must not contain the domain name or part of it.");
	assert_refused("Qz8!wm-corp-tr4#vK", "bob", "mail.corp.example.org",
	    "Password must not contain the domain name or part of it.");
	/* the top-level domain is not a context word */
	assert_accepted("Qz8!wm-org-tr4#vK", "bob", "example.org");
}

static void
test_common_list(void **state)
{
	/* long enough to pass the length rule, and on the list */
	assert_refused("Password1234", NULL, NULL,
	    "Password is on the list of commonly used passwords.");
	assert_refused("QWERTYUIOP123", NULL, NULL,
	    "Password is on the list of commonly used passwords.");
	assert_refused("iloveyou1234", NULL, NULL,
	    "Password is on the list of commonly used passwords.");
	/* a list that cannot be read refuses (fail closed) and says why */
	struct policy_params p;
	policy_params_init(&p);
	p.common_list_path = "/nonexistent/common-passwords.txt";
	const char *reason;
	assert_int_equal(policy_check_password("k7#Qm2!vXz9pLw", NULL, NULL, &p, &reason), -1);
	assert_non_null(strstr(reason, "cannot be read"));
	/* and the real list again (a different path replaces the cache) */
	assert_accepted("k7#Qm2!vXz9pLw", NULL, NULL);
}

static void
test_list_loaded_and_sorted(void **state)
{
	const char *error;
	assert_int_equal(policy_load_common_list(list_path, &error), 0);
	FILE *f = fopen(list_path, "r");
	assert_non_null(f);
	char line[256];
	size_t n = 0;
	assert_non_null(fgets(line, sizeof(line), f));
	assert_int_equal(line[0], '#');   /* the header comment */
	while (fgets(line, sizeof(line), f) != NULL)
		n++;
	fclose(f);
	assert_true(n >= 3000);
	/* every entry refused (spot-check the well-known ones, case-insensitively) */
	static const char *const top[] = { "123456789012", "qwertyuiop12", "Passw0rd2024",
	    "1q2w3e4r5t6y", "Iloveyou2024", "Welcome@2024", "manchesterunited",
	    "Correct Horse Battery Staple" };
	for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++)
		assert_refused(top[i], NULL, NULL, "Password is");
}

static void
test_entropy(void **state)
{
	assert_refused("aaaaaaaaaaaaaaa", NULL, NULL, "Password is too easy to guess");
	assert_refused("summersummer99", NULL, NULL, "Password is too easy to guess");
	struct policy_params p;
	params_full(&p);
	p.min_entropy = 200;
	const char *reason;
	assert_int_equal(policy_check_password("k7#Qm2!vXz9pLw", NULL, NULL, &p, &reason), -1);
	assert_string_equal(reason, "Password is too easy to guess (estimated strength below "
	    "200 bits): use a longer phrase of unrelated words or a generated password.");
	/* 0 turns the rule off */
	p.min_entropy = 0;
	assert_int_equal(policy_check_password("aaaaaaaaaaaaaaa", NULL, NULL, &p, &reason), 0);
}

static void
test_good_passwords(void **state)
{
	assert_accepted("k7#Qm2!vXz9pLw", "bob", "example.org");
	assert_accepted("Vivid-Otter-Quarry-49", "alice", "example.org");
	assert_accepted("correct stapler drizzle monsoon", "alice", "example.org");
	/* no params: defaults without a list */
	const char *reason;
	assert_int_equal(policy_check_password("k7#Qm2!vXz9pLw", NULL, NULL, NULL, &reason), 0);
}

static void
test_generated_passwords_pass(void **state)
{
	for (int i = 0; i < 50; i++) {
		char pw[PASSWORD_GENERATED_LENGTH + 1];
		assert_int_equal(password_generate(pw, sizeof(pw)), 0);
		assert_accepted(pw, NULL, NULL);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_too_short),
		cmocka_unit_test(test_length_counts_code_points),
		cmocka_unit_test(test_bad_bytes),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_contains_user),
		cmocka_unit_test(test_contains_domain),
		cmocka_unit_test(test_common_list),
		cmocka_unit_test(test_list_loaded_and_sorted),
		cmocka_unit_test(test_entropy),
		cmocka_unit_test(test_good_passwords),
		cmocka_unit_test(test_generated_passwords_pass),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
