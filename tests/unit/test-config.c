/* Unit tests for lib/config: the settings table, file parsing with line numbers, overrides. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/config-table.h"

static char *
write_conf(const char *text)
{
	char *path = strdup("/tmp/rampart-test-config-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static struct config *
load_text(const char *text, char **error_r)
{
	char *path = write_conf(text);
	struct config *c = config_load(path, NULL, 0, error_r);
	unlink(path);
	free(path);
	return c;
}

static void
test_every_default_parses(void **state)
{
	char *error = NULL;
	struct config *c = config_load(NULL, NULL, 0, &error);
	assert_non_null(c);
	assert_int_equal(c->message_size_limit, 35 * 1024 * 1024);
	assert_int_equal(c->smtp_command_timeout, 300);   /* RFC 5321 §4.5.3.2.7 */
	assert_int_equal(c->max_line_length, 1000);       /* RFC 5321 §4.5.3.1.6 */
	assert_true(c->max_recipients >= 100);            /* RFC 5321 §4.5.3.1.8 */
	assert_string_equal(c->spool_dir, "/var/lib/rampart/spool");
	assert_string_equal(c->directory_path, "/var/lib/rampart/directory.db");
	assert_int_equal(c->nlisteners, 0);
	config_free(&c);
	assert_null(c);
}

static void
test_file_with_listeners_and_units(void **state)
{
	char *error = NULL;
	struct config *c = load_text(
	    "hostname = \"mx.example.org\"\n"
	    "message_size_limit = 10M\n"
	    "smtp_data_timeout = 2m\n"
	    "tls_cert = \"/c\"\ntls_key = \"/k\"\n"
	    "listener mx { role = mx address = \"::1\" port = 2525 }\n"
	    "listener sub { role = submission port = 587 }\n", &error);
	assert_non_null(c);
	assert_string_equal(c->hostname, "mx.example.org");
	assert_int_equal(c->message_size_limit, 10 * 1024 * 1024);
	assert_int_equal(c->smtp_data_timeout, 120);
	assert_int_equal(c->nlisteners, 2);
	assert_string_equal(c->listeners[0].name, "mx");
	assert_string_equal(c->listeners[0].address, "::1");
	assert_int_equal(c->listeners[0].port, 2525);
	assert_int_equal(c->listeners[1].role, LISTENER_ROLE_SUBMISSION);
	assert_string_equal(c->listeners[1].address, "127.0.0.1");
	config_free(&c);
}

static void
expect_error(const char *text, const char *needle)
{
	char *error = NULL;
	struct config *c = load_text(text, &error);
	assert_null(c);
	assert_non_null(error);
	if (strstr(error, needle) == NULL)
		fail_msg("error \"%s\" does not contain \"%s\"", error, needle);
	free(error);
}

static void
test_errors_carry_line_numbers(void **state)
{
	expect_error("hostname = \"a\"\nno_such_setting = 1\n", ":2:");
	expect_error("hostname = \"a\"\n\nmax_recipients = lots\n", ":3: max_recipients: expected a whole number");
	expect_error("max_recipients = 5\n", ":1: max_recipients: value out of range");
	expect_error("listener a { role = relay }\n", ":1: role: expected mx, submission or submissions");
	expect_error("listener a { port = 70000 }\n", "port: value out of range");
	expect_error("message_size_limit = 12Q\n", "expected a size");
	expect_error("smtp_command_timeout = -5\n", "expected a duration");
}

static void
test_semantic_errors(void **state)
{
	expect_error("listener s { role = submission }\n", "needs tls_cert and tls_key");
	expect_error("listener a { port = 25 }\nlistener b { port = 25 }\n", "both use 127.0.0.1 port 25");
	expect_error("log_level = chatty\n", "log_level");
	expect_error("recipient_delimiter = \"+-\"\n", "recipient_delimiter");
	expect_error("relay.host = \"smart.example.org\"\nrelay.user = \"u\"\n",
	    "relay.user and relay.password_file go together");
	expect_error("relay.host = \"smart.example.org\"\nrelay.password_file = \"/etc/p\"\n",
	    "relay.user and relay.password_file go together");
}

static void
test_overrides(void **state)
{
	char *error = NULL;
	char *ov[] = { "max_recipients=200", "listener.extra.port=2526", "listener.extra.role=mx",
	    "state_dir=/srv/r" };
	struct config *c = config_load(NULL, ov, 4, &error);
	assert_non_null(c);
	assert_int_equal(c->max_recipients, 200);
	assert_int_equal(c->nlisteners, 1);
	assert_string_equal(c->listeners[0].name, "extra");
	assert_int_equal(c->listeners[0].port, 2526);
	/* derived paths follow an overridden state_dir */
	assert_string_equal(c->spool_dir, "/srv/r/spool");
	config_free(&c);

	char *bad[] = { "nonsense=1" };
	assert_null(config_load(NULL, bad, 1, &error));
	assert_non_null(strstr(error, "no such setting"));
	free(error);
	char *bad2[] = { "max_errors=zero" };
	assert_null(config_load(NULL, bad2, 1, &error));
	assert_non_null(strstr(error, "max_errors"));
	free(error);
}

static void
test_doc_lists_every_setting(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	config_print_doc(f);
	fclose(f);
	for (size_t i = 0; i < config_settings_count; i++) {
		char needle[96];
		snprintf(needle, sizeof(needle), "| `%s` |", config_settings[i].name);
		assert_non_null(strstr(buf, needle));
		assert_true(strlen(config_settings[i].description) > 10);
	}
	for (size_t i = 0; i < listener_settings_count; i++) {
		char needle[96];
		snprintf(needle, sizeof(needle), "| `%s` |", listener_settings[i].name);
		assert_non_null(strstr(buf, needle));
	}
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_default_parses),
		cmocka_unit_test(test_file_with_listeners_and_units),
		cmocka_unit_test(test_errors_carry_line_numbers),
		cmocka_unit_test(test_semantic_errors),
		cmocka_unit_test(test_overrides),
		cmocka_unit_test(test_doc_lists_every_setting),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
