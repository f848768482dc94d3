/*
 * Unit tests for auth/audit: the exact JSON line (key names, order, omitted
 * fields, RFC 3339 times), UTF-8 repair and the 512-byte cap for peer strings,
 * no raw newline ever, one write per line under two concurrent processes,
 * rotation (rename and unlink), mode 0600, write errors, and the exact text
 * failure line that fail2ban matches.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "auth/audit.h"
#include "lib/log.h"

#define WRITER_LINES 10000

static char dir[64];
static char path[128];

static int
setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/test-audit-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/audit.log", dir);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* The whole file as a NUL-terminated string (the file may hold no NUL). */
static char *
slurp(const char *file, size_t *len_r)
{
	FILE *f = fopen(file, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	long size = ftell(f);
	assert_true(size >= 0);
	rewind(f);
	char *buf = malloc((size_t)size + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
	buf[size] = '\0';
	fclose(f);
	assert_int_equal(strlen(buf), (size_t)size);
	if (len_r != NULL)
		*len_r = (size_t)size;
	return buf;
}

static void
write_event(const char *file, const struct audit_event *ev)
{
	const char *error = NULL;
	struct audit_log *a = audit_open(file, &error);
	assert_non_null(a);
	assert_int_equal(audit_write(a, ev, &error), 0);
	audit_close(&a);
	assert_null(a);
}

/* Checks that ts is "YYYY-MM-DDTHH:MM:SS.mmmZ" within a few seconds of now. */
static void
check_ts(const char *ts)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	assert_int_equal(strlen(ts), strlen(shape));
	for (size_t i = 0; shape[i] != '\0'; i++) {
		if (shape[i] == 'd')
			assert_true(isdigit((unsigned char)ts[i]));
		else
			assert_int_equal(ts[i], shape[i]);
	}
	struct tm tm = { 0 };
	assert_non_null(strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm));
	time_t t = timegm(&tm);
	assert_true(llabs((long long)(time(NULL) - t)) <= 5);
}

/* Reads the one line of the file; checks "ts" and returns the rest after it. */
static char *
one_line_after_ts(const char *file)
{
	size_t len;
	char *text = slurp(file, &len);
	assert_true(len > 0);
	assert_int_equal(text[len - 1], '\n');
	assert_null(memchr(text, '\n', len - 1));
	/* {"ts":"2026-11-21T10:00:00.123Z", then the rest */
	assert_int_equal(strncmp(text, "{\"ts\":\"", 7), 0);
	char ts[25];
	memcpy(ts, text + 7, 24);
	ts[24] = '\0';
	check_ts(ts);
	assert_int_equal(text[31], '"');
	char *rest = strdup(text + 32);
	assert_non_null(rest);
	free(text);
	return rest;
}

static json_t *
parse_line(const char *line)
{
	json_error_t jerr;
	json_t *obj = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
	assert_non_null(obj);
	assert_true(json_is_object(obj));
	return obj;
}

/* ---------------------------------------------------------------- the line */

static void
test_all_fields_exact(void **state)
{
	const struct audit_event ev = {
		.event = "auth", .result = "fail", .reason = "bad-credentials",
		.user = "bob@example.org", .ip = "127.0.0.2", .port = 40312,
		.listener = "submission", .proto = "smtp", .mech = "PLAIN", .tls = "TLSv1.3",
		.session = "a1b2c3", .network = "127.0.0.0/24", .until = 1795255500,
		.action = "user add", .target = "carol@example.org", .actor = "root",
	};
	write_event(path, &ev);
	char *rest = one_line_after_ts(path);
	assert_string_equal(rest,
	    ",\"event\":\"auth\",\"result\":\"fail\",\"reason\":\"bad-credentials\","
	    "\"user\":\"bob@example.org\",\"ip\":\"127.0.0.2\",\"port\":40312,"
	    "\"listener\":\"submission\",\"proto\":\"smtp\",\"mech\":\"PLAIN\","
	    "\"tls\":\"TLSv1.3\",\"session\":\"a1b2c3\",\"network\":\"127.0.0.0/24\","
	    "\"until\":\"2026-11-21T10:05:00Z\",\"action\":\"user add\","
	    "\"target\":\"carol@example.org\",\"actor\":\"root\"}\n");
	free(rest);

	/* And it is one JSON object with exactly these 17 keys, in this order. */
	static const char *const keys[] = { "ts", "event", "result", "reason", "user", "ip",
		"port", "listener", "proto", "mech", "tls", "session", "network", "until",
		"action", "target", "actor" };
	char *text = slurp(path, NULL);
	json_t *obj = parse_line(text);
	assert_int_equal(json_object_size(obj), 17);
	size_t i = 0;
	for (void *it = json_object_iter(obj); it != NULL; it = json_object_iter_next(obj, it))
		assert_string_equal(json_object_iter_key(it), keys[i++]);
	assert_int_equal(i, 17);
	assert_int_equal(json_integer_value(json_object_get(obj, "port")), 40312);
	json_decref(obj);
	free(text);
}

static void
test_absent_fields_left_out(void **state)
{
	const struct audit_event ev = { .event = "unblock", .network = "10.0.0.0/8" };
	write_event(path, &ev);
	char *rest = one_line_after_ts(path);
	assert_string_equal(rest, ",\"event\":\"unblock\",\"network\":\"10.0.0.0/8\"}\n");
	free(rest);
}

static void
test_success_and_empty_strings(void **state)
{
	/* port 0 and until 0 are absent; an empty user name is kept (it is what was sent). */
	const struct audit_event ev = { .event = "auth", .result = "ok", .user = "",
		.ip = "::1", .proto = "smtp", .mech = "LOGIN" };
	write_event(path, &ev);
	char *rest = one_line_after_ts(path);
	assert_string_equal(rest, ",\"event\":\"auth\",\"result\":\"ok\",\"user\":\"\","
	    "\"ip\":\"::1\",\"proto\":\"smtp\",\"mech\":\"LOGIN\"}\n");
	free(rest);
}

static void
test_lines_append(void **state)
{
	const char *error = NULL;
	struct audit_log *a = audit_open(path, &error);
	assert_non_null(a);
	const struct audit_event e1 = { .event = "block", .network = "192.0.2.0/24",
		.until = 86400 };
	const struct audit_event e2 = { .event = "lockout", .user = "alice@example.test",
		.until = 1 };
	assert_int_equal(audit_write(a, &e1, &error), 0);
	assert_int_equal(audit_write(a, &e2, &error), 0);
	audit_close(&a);
	/* A second open appends rather than truncating. */
	write_event(path, &e1);

	char *text = slurp(path, NULL);
	char *save = NULL, *line;
	int n = 0;
	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		json_t *obj = parse_line(line);
		const char *until = json_string_value(json_object_get(obj, "until"));
		assert_string_equal(until, n == 1 ? "1970-01-01T00:00:01Z" : "1970-01-02T00:00:00Z");
		json_decref(obj);
		n++;
	}
	assert_int_equal(n, 3);
	free(text);
}

/* ---------------------------------------------------------------- peer strings */

static void
check_user_roundtrip(const char *user, const char *expected)
{
	const struct audit_event ev = { .event = "auth", .result = "fail", .user = user };
	assert_int_equal(unlink(path) == 0 || errno == ENOENT, 1);
	write_event(path, &ev);
	size_t len;
	char *text = slurp(path, &len);
	assert_null(memchr(text, '\n', len - 1));
	assert_int_equal(text[len - 1], '\n');
	/* The file itself is ASCII: non-ASCII characters are written as \uXXXX. */
	for (size_t i = 0; i < len; i++)
		assert_true((unsigned char)text[i] < 0x80);
	json_t *obj = parse_line(text);
	const char *got = json_string_value(json_object_get(obj, "user"));
	assert_non_null(got);
	assert_string_equal(got, expected);
	json_decref(obj);
	free(text);
}

static void
test_invalid_utf8_and_controls(void **state)
{
	/* Controls survive (escaped by JSON, so no raw newline); bad bytes become U+FFFD. */
	check_user_roundtrip("a\nb\rc\x01" "d\x1b[31m\x7f", "a\nb\rc\x01" "d\x1b[31m\x7f");
	check_user_roundtrip("x\xff" "y", "x\xef\xbf\xbd" "y");
	check_user_roundtrip("caf\xc3\xa9", "caf\xc3\xa9");                 /* valid é */
	check_user_roundtrip("\xc3", "\xef\xbf\xbd");                         /* truncated */
	check_user_roundtrip("\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd");         /* overlong / */
	check_user_roundtrip("\xe0\x80\xaf", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	check_user_roundtrip("\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"); /* surrogate */
	check_user_roundtrip("\xf4\x90\x80\x80",                             /* > U+10FFFF */
	    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	check_user_roundtrip("\xf0\x9f\x93\xa7@x", "\xf0\x9f\x93\xa7@x");    /* 📧 */
	check_user_roundtrip("\xe2\x80\xa8\xe2\x80\xa9", "\xe2\x80\xa8\xe2\x80\xa9");

	/* The raw line escapes the control characters and everything beyond ASCII. */
	char *rest;
	const struct audit_event ev = { .event = "auth", .user = "a\nb\x01\"\\\xc3\xa9\xff" };
	unlink(path);
	write_event(path, &ev);
	rest = one_line_after_ts(path);
	assert_string_equal(rest,
	    ",\"event\":\"auth\",\"user\":\"a\\nb\\u0001\\\"\\\\\\u00E9\\uFFFD\"}\n");
	free(rest);
}

static void
test_long_strings_capped(void **state)
{
	char in[2048], want[1024];

	memset(in, 'a', 1000);
	in[1000] = '\0';
	memset(want, 'a', AUDIT_STRING_MAX);
	want[AUDIT_STRING_MAX] = '\0';
	check_user_roundtrip(in, want);

	/* Two-byte characters: 256 of them fill 512 bytes exactly. */
	for (int i = 0; i < 300; i++)
		memcpy(in + 2 * i, "\xc3\xa9", 2);
	in[600] = '\0';
	memcpy(want, in, 512);
	want[512] = '\0';
	check_user_roundtrip(in, want);

	/* Shifted by one: never split a character, so 511 bytes. */
	in[0] = 'a';
	for (int i = 0; i < 300; i++)
		memcpy(in + 1 + 2 * i, "\xc3\xa9", 2);
	in[601] = '\0';
	memcpy(want, in, 511);
	want[511] = '\0';
	check_user_roundtrip(in, want);

	/* Replacements count after expansion: 170 × 3 bytes = 510. */
	memset(in, 0xff, 400);
	in[400] = '\0';
	for (int i = 0; i < 170; i++)
		memcpy(want + 3 * i, "\xef\xbf\xbd", 3);
	want[510] = '\0';
	check_user_roundtrip(in, want);

	/* Every string field is capped, not only the user. */
	memset(in, 'z', 1500);
	in[1500] = '\0';
	const struct audit_event ev = { .event = "admin", .action = in, .target = in,
		.actor = in, .session = in };
	unlink(path);
	write_event(path, &ev);
	char *text = slurp(path, NULL);
	json_t *obj = parse_line(text);
	const char *const keys[] = { "session", "action", "target", "actor" };
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(strlen(json_string_value(json_object_get(obj, keys[i]))),
		    AUDIT_STRING_MAX);
	json_decref(obj);
	free(text);
}

/* ---------------------------------------------------------------- concurrency */

static void
writer(int id)
{
	char target[400], session[16];
	const char *error = NULL;
	struct audit_log *a = audit_open(path, &error);
	if (a == NULL)
		_exit(2);
	/* Long lines make an interleaving likely if writes were split. */
	memset(target, id == 0 ? 'A' : 'B', sizeof(target) - 1);
	target[sizeof(target) - 1] = '\0';
	for (int i = 0; i < WRITER_LINES; i++) {
		snprintf(session, sizeof(session), "%d", i);
		const struct audit_event ev = { .event = "admin", .actor = id == 0 ? "w0" : "w1",
			.session = session, .target = target };
		if (audit_write(a, &ev, &error) < 0)
			_exit(3);
	}
	audit_close(&a);
	_exit(0);
}

static void
test_two_processes_never_interleave(void **state)
{
	pid_t pids[2];
	for (int id = 0; id < 2; id++) {
		pids[id] = fork();
		assert_true(pids[id] >= 0);
		if (pids[id] == 0)
			writer(id);
	}
	for (int id = 0; id < 2; id++) {
		int status;
		assert_int_equal(waitpid(pids[id], &status, 0), pids[id]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	size_t len;
	char *text = slurp(path, &len);
	assert_int_equal(text[len - 1], '\n');
	int next[2] = { 0, 0 }, lines = 0;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		json_t *obj = parse_line(line);
		const char *actor = json_string_value(json_object_get(obj, "actor"));
		assert_non_null(actor);
		int id = strcmp(actor, "w0") == 0 ? 0 : 1;
		/* Each writer's lines arrive whole and in its order. */
		assert_int_equal(atoi(json_string_value(json_object_get(obj, "session"))), next[id]);
		next[id]++;
		const char *target = json_string_value(json_object_get(obj, "target"));
		assert_int_equal(strlen(target), 399);
		assert_int_equal(strspn(target, id == 0 ? "A" : "B"), 399);
		json_decref(obj);
		lines++;
	}
	assert_int_equal(lines, 2 * WRITER_LINES);
	assert_int_equal(next[0], WRITER_LINES);
	assert_int_equal(next[1], WRITER_LINES);
	free(text);
}

/* ---------------------------------------------------------------- the file */

static int
count_lines(const char *file)
{
	char *text = slurp(file, NULL);
	int n = 0;
	for (char *p = text; *p != '\0'; p++)
		n += *p == '\n';
	free(text);
	return n;
}

static void
test_rotation(void **state)
{
	const char *error = NULL;
	char rotated[160];
	snprintf(rotated, sizeof(rotated), "%s.1", path);
	const struct audit_event ev = { .event = "auth", .result = "ok" };

	struct audit_log *a = audit_open(path, &error);
	assert_non_null(a);
	assert_int_equal(audit_write(a, &ev, &error), 0);
	audit_reopen_if_rotated(a);          /* nothing changed: same file */
	assert_int_equal(audit_write(a, &ev, &error), 0);
	assert_int_equal(count_lines(path), 2);

	/* Renamed (logrotate's default): the next line starts a new file. */
	assert_int_equal(rename(path, rotated), 0);
	assert_int_equal(audit_write(a, &ev, &error), 0);   /* still the old file */
	audit_reopen_if_rotated(a);
	assert_int_equal(audit_write(a, &ev, &error), 0);
	assert_int_equal(count_lines(rotated), 3);
	assert_int_equal(count_lines(path), 1);

	/* Removed. */
	assert_int_equal(unlink(path), 0);
	audit_reopen_if_rotated(a);
	assert_int_equal(audit_write(a, &ev, &error), 0);
	assert_int_equal(count_lines(path), 1);

	/* Reopening fails (the directory is gone): keep writing to the old descriptor. */
	char moved[96];
	snprintf(moved, sizeof(moved), "%s-moved", dir);
	assert_int_equal(rename(dir, moved), 0);
	log_init("test-audit", true, LOG_LEVEL_ERROR);       /* keep the warning quiet */
	audit_reopen_if_rotated(a);
	assert_int_equal(audit_write(a, &ev, &error), 0);
	assert_int_equal(rename(moved, dir), 0);
	assert_int_equal(count_lines(path), 2);

	audit_close(&a);
	assert_null(a);
	audit_close(&a);                      /* a NULL pointer is fine */
}

static void
test_mode_0600(void **state)
{
	mode_t old = umask(0);
	const char *error = NULL;
	struct audit_log *a = audit_open(path, &error);
	umask(old);
	assert_non_null(a);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);

	/* The descriptor that audit_open made is append-only and close-on-exec. */
	int found = 0;
	for (int fd = 3; fd < 1024; fd++) {
		char link[64], target[256];
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		ssize_t n = readlink(link, target, sizeof(target) - 1);
		if (n < 0)
			continue;
		target[n] = '\0';
		if (strcmp(target, path) != 0)
			continue;
		assert_true((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
		assert_true((fcntl(fd, F_GETFL) & O_APPEND) != 0);
		assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_WRONLY);
		found++;
	}
	assert_int_equal(found, 1);
	audit_close(&a);
}

static void
test_errors(void **state)
{
	const char *error = NULL;
	char bad[160];
	snprintf(bad, sizeof(bad), "%s/no/such/dir/audit.log", dir);
	assert_null(audit_open(bad, &error));
	assert_non_null(error);
	assert_non_null(strstr(error, bad));
	assert_non_null(strstr(error, "No such file or directory"));

	/* A full disk: -1 and a sentence naming the file. */
	struct audit_log *a = audit_open("/dev/full", &error);
	assert_non_null(a);
	const struct audit_event ev = { .event = "auth" };
	error = NULL;
	assert_int_equal(audit_write(a, &ev, &error), -1);
	assert_non_null(error);
	assert_non_null(strstr(error, "/dev/full"));
	audit_close(&a);
}

/* ---------------------------------------------------------------- text line */

/* Runs audit_log_failure_line with stderr on a file; returns what followed
 * "<ts> rampartd/auth[<pid>]: warn: " after checking that prefix. */
static char *
failure_line(const struct audit_event *ev)
{
	char capture[160];
	snprintf(capture, sizeof(capture), "%s/stderr", dir);
	int fd = open(capture, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	fflush(stderr);
	int saved = dup(2);
	assert_true(saved >= 0);
	assert_int_equal(dup2(fd, 2), 2);
	close(fd);
	log_init("rampartd/auth", true, LOG_LEVEL_INFO);
	audit_log_failure_line(ev);
	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);

	size_t len;
	char *text = slurp(capture, &len);
	assert_true(len > 25);
	assert_int_equal(text[len - 1], '\n');
	assert_null(memchr(text, '\n', len - 1));
	text[len - 1] = '\0';
	char ts[25];
	memcpy(ts, text, 24);
	ts[24] = '\0';
	check_ts(ts);
	char prefix[64];
	snprintf(prefix, sizeof(prefix), " rampartd/auth[%ld]: warn: ", (long)getpid());
	assert_int_equal(strncmp(text + 24, prefix, strlen(prefix)), 0);
	char *rest = strdup(text + 24 + strlen(prefix));
	assert_non_null(rest);
	free(text);
	return rest;
}

static void
test_failure_line_exact(void **state)
{
	const struct audit_event ev = {
		.event = "auth", .result = "fail", .reason = "bad-credentials",
		.user = "bob@example.org", .ip = "127.0.0.2", .port = 40312,
		.listener = "submission", .proto = "smtp", .mech = "PLAIN", .tls = "TLSv1.3",
		.session = "a1b2c3",
	};
	char *line = failure_line(&ev);
	assert_string_equal(line, "auth failure: ip=127.0.0.2 port=40312 user=\"bob@example.org\" "
	    "proto=smtp listener=submission mech=PLAIN reason=bad-credentials session=a1b2c3");
	free(line);
}

static void
test_failure_line_missing_fields(void **state)
{
	const struct audit_event ev = { .event = "auth", .result = "fail", .ip = "2001:db8::7",
		.reason = "malformed", .mech = "" };
	char *line = failure_line(&ev);
	assert_string_equal(line, "auth failure: ip=2001:db8::7 port=- user=- proto=- "
	    "listener=- mech=- reason=malformed session=-");
	free(line);

	const struct audit_event empty_user = { .event = "auth", .user = "" };
	line = failure_line(&empty_user);
	assert_string_equal(line, "auth failure: ip=- port=- user=\"\" proto=- listener=- "
	    "mech=- reason=- session=-");
	free(line);
}

static void
test_failure_line_hostile(void **state)
{
	/* A user name that tries to look like another address, close the quotes, start a
	 * new line, or carry escapes and 8-bit bytes. */
	const struct audit_event ev = { .event = "auth", .result = "fail",
		.reason = "unknown-user", .ip = "127.0.0.2", .port = 25,
		.user = "x ip=9.9.9.9 \"\\\n\r\x1b[1m\x7f\xc3\xa9", .mech = "PLAIN ip=9.9.9.9",
		.listener = "mx\"", .proto = "smtp\n", .session = "s\\1" };
	char *line = failure_line(&ev);
	assert_string_equal(line, "auth failure: ip=127.0.0.2 port=25 "
	    "user=\"x ip=9.9.9.9 ?????[1m???\" proto=smtp? listener=mx? "
	    "mech=PLAIN?ip?9.9.9.9 reason=unknown-user session=s?1");
	free(line);
}

static void
test_failure_line_user_capped(void **state)
{
	char user[400], want[400];
	memset(user, 'u', 300);
	user[300] = '\0';
	const struct audit_event ev = { .event = "auth", .user = user, .ip = "192.0.2.1" };
	char *line = failure_line(&ev);
	snprintf(want, sizeof(want), "auth failure: ip=192.0.2.1 port=- user=\"%.*s\" proto=- "
	    "listener=- mech=- reason=- session=-", AUDIT_TEXT_USER_MAX, user);
	assert_string_equal(line, want);
	free(line);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_all_fields_exact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_absent_fields_left_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_success_and_empty_strings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lines_append, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_utf8_and_controls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_strings_capped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_processes_never_interleave, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mode_0600, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_line_exact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_line_missing_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_line_hostile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_line_user_capped, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
