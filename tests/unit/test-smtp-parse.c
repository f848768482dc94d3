/*
 * Unit tests for smtp-parse: command lines (RFC 5321 §2.4, §4.1.1), MAIL and
 * RCPT arguments with ESMTP parameters (RFC 5321 §4.1.2, RFC 1870, RFC 6152,
 * RFC 6531, RFC 3461, RFC 4954), BDAT (RFC 3030) and xtext (RFC 3461 §4).
 *
 * Every input is copied into a heap block of exactly its length (no NUL after
 * it), so ASan catches any read past len.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp-parse.h"

static const unsigned EXT_ALL = SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_SMTPUTF8 |
				SMTP_EXT_DSN | SMTP_EXT_AUTH;

static char *exact(const char *s, size_t len)
{
	char *copy = malloc(len > 0 ? len : 1);

	assert_non_null(copy);
	memcpy(copy, s, len);
	return copy;
}

/* ---- command lines ---- */

static int command_n(const char *line, size_t len, struct smtp_command *cmd)
{
	char *copy = exact(line, len);
	const char *error = NULL;
	int ret = smtp_parse_command(copy, len, cmd, &error);

	if (ret < 0)
		assert_non_null(error);
	/* arg must point inside the line or at a static "" */
	if (ret == 0 && cmd->arg_len > 0)
		assert_true(cmd->arg >= copy && cmd->arg + cmd->arg_len == copy + len);
	free(copy);
	return ret;
}

static enum smtp_verb verb_of(const char *line)
{
	struct smtp_command cmd;

	assert_int_equal(command_n(line, strlen(line), &cmd), 0);
	return cmd.verb;
}

/* RFC 5321 §4.1.1 / §2.4: every verb, case-insensitively. */
static void test_command_verbs(void **state)
{
	static const struct {
		const char *line;
		enum smtp_verb verb;
	} v[] = {
		{ "EHLO x", SMTP_VERB_EHLO }, { "helo x", SMTP_VERB_HELO },
		{ "Mail FROM:<>", SMTP_VERB_MAIL }, { "rCpT TO:<a@b>", SMTP_VERB_RCPT },
		{ "DATA", SMTP_VERB_DATA }, { "bdat 1 LAST", SMTP_VERB_BDAT },
		{ "RSET", SMTP_VERB_RSET }, { "noop", SMTP_VERB_NOOP }, { "QUIT", SMTP_VERB_QUIT },
		{ "HELP", SMTP_VERB_HELP }, { "VRFY u", SMTP_VERB_VRFY }, { "EXPN l", SMTP_VERB_EXPN },
		{ "StartTLS", SMTP_VERB_STARTTLS }, { "AUTH PLAIN", SMTP_VERB_AUTH },
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		assert_int_equal(verb_of(v[i].line), v[i].verb);
}

/* RFC 5321 §4.1.1: a verb is a whole word: "MAILX" is not MAIL. */
static void test_command_unknown(void **state)
{
	struct smtp_command cmd;

	assert_int_equal(verb_of("MAILX FROM:<>"), SMTP_VERB_UNKNOWN);
	assert_int_equal(verb_of("MAI"), SMTP_VERB_UNKNOWN);
	assert_int_equal(verb_of("STARTTLSX"), SMTP_VERB_UNKNOWN);
	assert_int_equal(verb_of("MAIL:FROM:<>"), SMTP_VERB_UNKNOWN);
	assert_int_equal(command_n("XCLIENT ADDR=1", 14, &cmd), 0);
	assert_int_equal(cmd.name_len, 7);
	assert_string_equal(smtp_verb_name(SMTP_VERB_UNKNOWN), "UNKNOWN");
	assert_string_equal(smtp_verb_name(SMTP_VERB_STARTTLS), "STARTTLS");
}

/* RFC 5321 §4.1.1: the argument follows the verb and one SP. */
static void test_command_arg(void **state)
{
	struct smtp_command cmd;
	const char *line = "MAIL FROM:<a@b> SIZE=1";

	assert_int_equal(smtp_parse_command(line, strlen(line), &cmd, &(const char *){ NULL }), 0);
	assert_ptr_equal(cmd.arg, line + 5);
	assert_int_equal(cmd.arg_len, strlen(line) - 5);
	assert_int_equal(smtp_parse_command("QUIT", 4, &cmd, &(const char *){ NULL }), 0);
	assert_string_equal(cmd.arg, "");
	assert_int_equal(cmd.arg_len, 0);
	assert_int_equal(smtp_parse_command("QUIT ", 5, &cmd, &(const char *){ NULL }), 0);
	assert_int_equal(cmd.arg_len, 0);
	assert_int_equal(smtp_parse_command("NOOP  x", 7, &cmd, &(const char *){ NULL }), 0);
	assert_int_equal(cmd.arg_len, 2);
	assert_memory_equal(cmd.arg, " x", 2);
}

/* RFC 5321 §2.3.8, §4.1.1: malformed lines are refused outright. */
static void test_command_invalid(void **state)
{
	struct smtp_command cmd;

	assert_int_equal(command_n("", 0, &cmd), -1);
	assert_int_equal(command_n(" QUIT", 5, &cmd), -1);
	assert_int_equal(command_n("QU\0IT", 5, &cmd), -1);
	assert_int_equal(command_n("MAIL FROM:<a\0@b>", 16, &cmd), -1);
	assert_int_equal(command_n("QUIT\r", 5, &cmd), -1);
	assert_int_equal(command_n("NOOP\nQUIT", 9, &cmd), -1);
	assert_int_equal(command_n("M\xc3\xa9IL x", 7, &cmd), -1);
	assert_int_equal(command_n("NOOP\tx", 6, &cmd), -1);
	assert_int_equal(command_n("\x7f", 1, &cmd), -1);
}

/* RFC 6531 §3.7.1: non-ASCII is fine in the argument (EHLO U-label). */
static void test_command_utf8_arg(void **state)
{
	struct smtp_command cmd;

	assert_int_equal(command_n("EHLO \xc3\xa9.example", 15, &cmd), 0);
	assert_int_equal(cmd.verb, SMTP_VERB_EHLO);
}

/* ---- MAIL ---- */

struct result {
	int ret, code;
	const char *enh, *error;
};

static struct result mail_ext(const char *arg, unsigned ext, struct smtp_mail_args *out)
{
	struct result r = { 0, 0, NULL, NULL };
	size_t len = strlen(arg);
	char *copy = exact(arg, len);

	r.ret = smtp_parse_mail(copy, len, ext, out, &r.code, &r.enh, &r.error);
	free(copy);
	return r;
}

static void mail_ok(const char *arg, unsigned ext, struct smtp_mail_args *out)
{
	struct result r = mail_ext(arg, ext, out);

	if (r.ret != 0)
		fail_msg("MAIL %s: %d %s %s", arg, r.code, r.enh, r.error);
}

static void mail_err(const char *arg, unsigned ext, int code, const char *enh)
{
	struct smtp_mail_args out;
	struct result r = mail_ext(arg, ext, &out);

	if (r.ret != -1)
		fail_msg("MAIL %s accepted", arg);
	assert_int_equal(r.code, code);
	assert_string_equal(r.enh, enh);
	assert_non_null(r.error);
}

/* MAIL_ERRS(ext, code, enh, "argument", ...): each argument gets that reply. */
#define MAIL_ERRS(ext, code, enh, ...)                                                      \
	do {                                                                             \
		static const char *const list_[] = { __VA_ARGS__ };                      \
		for (size_t i_ = 0; i_ < sizeof(list_) / sizeof(list_[0]); i_++)        \
			mail_err(list_[i_], (ext), (code), (enh));                             \
	} while (0)

/* RFC 5321 §4.1.1.2: MAIL FROM:<reverse-path>, FROM: case-insensitive. */
static void test_mail_basic(void **state)
{
	struct smtp_mail_args m;

	mail_ok("FROM:<User@Example.COM>", 0, &m);
	assert_string_equal(m.from.mailbox, "User@example.com");
	assert_false(m.size_set || m.smtputf8);
	assert_int_equal(m.body, SMTP_BODY_UNSPEC);
	assert_int_equal(m.ret, SMTP_RET_UNSPEC);
	assert_string_equal(m.envid, "");
	mail_ok("from:<a@b.example>", 0, &m);
	mail_ok("FROM:<>", 0, &m);
	assert_true(m.from.null_path);
}

/* Robustness (RFC 5321 §4.1.1.2 grammar has none): one space after the colon. */
static void test_mail_space_after_colon(void **state)
{
	struct smtp_mail_args m;

	mail_ok("FROM: <a@b.example>", 0, &m);
	assert_string_equal(m.from.mailbox, "a@b.example");
	mail_err("FROM:  <a@b.example>", 0, 501, "5.1.7");
	mail_err("FROM : <a@b.example>", 0, 501, "5.5.4");
}

/* RFC 5321 §4.1.1.2, RFC 3463 X.5.4 / X.1.7: syntax errors. */
static void test_mail_syntax(void **state)
{
	MAIL_ERRS(0, 501, "5.5.4", "", "FROM", "FROM<a@b>", "TO:<a@b>");
	MAIL_ERRS(0, 501, "5.1.7", "FROM:", "FROM:a@b.example", "FROM:<a@b@c>", "FROM:<Postmaster>");
	MAIL_ERRS(EXT_ALL, 501, "5.5.4", "FROM:<a@b.example>SIZE=1", "FROM:<a@b.example> =1",
		"FROM:<a@b.example> SIZE==1", "FROM:<a@b.example> SIZE=1\t", "FROM:<a@b.example> -SIZE=1");
}

/* RFC 5321 §4.5.3.1.9 "501 Path too long", RFC 3463 X.1.7 for the sender. */
static void test_mail_path_too_long(void **state)
{
	char buf[400];

	memset(buf, 'a', sizeof(buf));
	memcpy(buf, "FROM:<", 6);
	strcpy(buf + 300, "@b.example>");
	mail_err(buf, 0, 501, "5.1.7");
}

/* RFC 1870: SIZE=1*20DIGIT. */
static void test_mail_size(void **state)
{
	struct smtp_mail_args m;

	mail_ok("FROM:<a@b.example> SIZE=12345", SMTP_EXT_SIZE, &m);
	assert_true(m.size_set);
	assert_int_equal(m.size, 12345);
	mail_ok("FROM:<> SIZE=18446744073709551615", SMTP_EXT_SIZE, &m);
	assert_true(m.size == UINT64_MAX);
	mail_ok("FROM:<> size=0", SMTP_EXT_SIZE, &m);
	assert_true(m.size_set);
	MAIL_ERRS(SMTP_EXT_SIZE, 501, "5.5.4", "FROM:<> SIZE=18446744073709551616",
		"FROM:<> SIZE=000000000000000000001", "FROM:<> SIZE=abc", "FROM:<> SIZE=-1", "FROM:<> SIZE=",
		"FROM:<> SIZE");
}

/* RFC 6152 §2: BODY=7BIT / 8BITMIME; RFC 3030 BINARYMIME is not offered. */
static void test_mail_body(void **state)
{
	struct smtp_mail_args m;

	mail_ok("FROM:<> BODY=8BITMIME", SMTP_EXT_8BITMIME, &m);
	assert_int_equal(m.body, SMTP_BODY_8BITMIME);
	mail_ok("FROM:<> body=7bit", SMTP_EXT_8BITMIME, &m);
	assert_int_equal(m.body, SMTP_BODY_7BIT);
	mail_err("FROM:<> BODY=BINARYMIME", SMTP_EXT_8BITMIME, 555, "5.5.4");
	MAIL_ERRS(SMTP_EXT_8BITMIME, 501, "5.5.4", "FROM:<> BODY=8BIT", "FROM:<> BODY");
}

/* RFC 6531 §3.4: SMTPUTF8 takes no value; needed for a non-ASCII sender. */
static void test_mail_smtputf8(void **state)
{
	struct smtp_mail_args m;

	mail_ok("FROM:<\xc3\xa9@b.example> SMTPUTF8", SMTP_EXT_SMTPUTF8, &m);
	assert_true(m.smtputf8);
	assert_true(m.from.utf8);
	mail_ok("FROM:<a@b.example> smtputf8", SMTP_EXT_SMTPUTF8, &m);
	mail_err("FROM:<a@b.example> SMTPUTF8=yes", SMTP_EXT_SMTPUTF8, 501, "5.5.4");
	mail_err("FROM:<a@b.example> SMTPUTF8", 0, 555, "5.5.4");
}

/* RFC 6531 §3.5: non-ASCII address without SMTPUTF8 → 553 5.6.7. */
static void test_mail_utf8_refused(void **state)
{
	mail_err("FROM:<\xc3\xa9@b.example>", SMTP_EXT_SMTPUTF8, 553, "5.6.7");
	mail_err("FROM:<\xc3\xa9@b.example>", 0, 553, "5.6.7");
	mail_err("FROM:<\xc3@b.example> SMTPUTF8", SMTP_EXT_SMTPUTF8, 501, "5.1.7");
}

/* RFC 3461 §4.3 RET and §4.4 ENVID (xtext, ≤ 100, printable once decoded). */
static void test_mail_dsn(void **state)
{
	struct smtp_mail_args m;
	char buf[200];

	mail_ok("FROM:<> RET=HDRS ENVID=QQ314159+2Bx", SMTP_EXT_DSN, &m);
	assert_int_equal(m.ret, SMTP_RET_HDRS);
	assert_string_equal(m.envid, "QQ314159+2Bx");
	mail_ok("FROM:<> ret=full", SMTP_EXT_DSN, &m);
	assert_int_equal(m.ret, SMTP_RET_FULL);
	MAIL_ERRS(SMTP_EXT_DSN, 501, "5.5.4", "FROM:<> RET=BOTH", "FROM:<> ENVID=a+2bb",
		"FROM:<> ENVID=a+0Ab", "FROM:<> ENVID=a+");
	snprintf(buf, sizeof(buf), "FROM:<> ENVID=%0100d", 0);
	mail_ok(buf, SMTP_EXT_DSN, &m);
	assert_int_equal(strlen(m.envid), 100);
	snprintf(buf, sizeof(buf), "FROM:<> ENVID=%0101d", 0);
	mail_err(buf, SMTP_EXT_DSN, 501, "5.5.4");
	mail_err("FROM:<> RET=FULL", 0, 555, "5.5.4");
	mail_err("FROM:<> ENVID=x", SMTP_EXT_SIZE, 555, "5.5.4");
}

/* RFC 4954 §5: AUTH=xtext or <>, kept raw. */
static void test_mail_auth(void **state)
{
	struct smtp_mail_args m;

	mail_ok("FROM:<a@b.example> AUTH=<>", SMTP_EXT_AUTH, &m);
	assert_string_equal(m.auth, "<>");
	mail_ok("FROM:<a@b.example> AUTH=e+3Dmc2@b.example", SMTP_EXT_AUTH, &m);
	assert_string_equal(m.auth, "e+3Dmc2@b.example");
	mail_err("FROM:<a@b.example> AUTH=a+zz", SMTP_EXT_AUTH, 501, "5.5.4");
	mail_err("FROM:<a@b.example> AUTH=<>", 0, 555, "5.5.4");
}

/* RFC 5321 §4.1.1.11: unknown parameters → 555. */
static void test_mail_unknown_param(void **state)
{
	MAIL_ERRS(EXT_ALL, 555, "5.5.4", "FROM:<a@b.example> FOO=bar", "FROM:<a@b.example> X-FOO",
		"FROM:<a@b.example> NOTIFY=NEVER");
}

/* RFC 5321 §4.1.2 esmtp-param: a duplicate is refused. */
static void test_mail_duplicate(void **state)
{
	MAIL_ERRS(EXT_ALL, 501, "5.5.4", "FROM:<> SIZE=1 SIZE=1", "FROM:<> size=1 BODY=7BIT SIZE=2",
		"FROM:<> SMTPUTF8 SMTPUTF8", "FROM:<> RET=FULL RET=HDRS");
}

/* Robustness: several parameters, extra and trailing spaces. */
static void test_mail_many_params(void **state)
{
	struct smtp_mail_args m;

	mail_ok("FROM:<a@b.example>  SIZE=10   BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=x AUTH=<> ",
		EXT_ALL, &m);
	assert_int_equal(m.size, 10);
	assert_int_equal(m.body, SMTP_BODY_8BITMIME);
	assert_true(m.smtputf8);
	assert_int_equal(m.ret, SMTP_RET_HDRS);
	assert_string_equal(m.envid, "x");
	assert_string_equal(m.auth, "<>");
}

/* ---- RCPT ---- */

static struct result rcpt_ext(const char *arg, unsigned ext, struct smtp_rcpt_args *out)
{
	struct result r = { 0, 0, NULL, NULL };
	size_t len = strlen(arg);
	char *copy = exact(arg, len);

	r.ret = smtp_parse_rcpt(copy, len, ext, out, &r.code, &r.enh, &r.error);
	free(copy);
	return r;
}

static void rcpt_ok(const char *arg, unsigned ext, struct smtp_rcpt_args *out)
{
	struct result r = rcpt_ext(arg, ext, out);

	if (r.ret != 0)
		fail_msg("RCPT %s: %d %s %s", arg, r.code, r.enh, r.error);
}

static void rcpt_err(const char *arg, unsigned ext, int code, const char *enh)
{
	struct smtp_rcpt_args out;
	struct result r = rcpt_ext(arg, ext, &out);

	if (r.ret != -1)
		fail_msg("RCPT %s accepted", arg);
	assert_int_equal(r.code, code);
	assert_string_equal(r.enh, enh);
}

/* RCPT_ERRS(ext, code, enh, "argument", ...): each argument gets that reply. */
#define RCPT_ERRS(ext, code, enh, ...)                                                      \
	do {                                                                             \
		static const char *const list_[] = { __VA_ARGS__ };                      \
		for (size_t i_ = 0; i_ < sizeof(list_) / sizeof(list_[0]); i_++)        \
			rcpt_err(list_[i_], (ext), (code), (enh));                             \
	} while (0)

/* RFC 5321 §4.1.1.3: RCPT TO:<forward-path>. */
static void test_rcpt_basic(void **state)
{
	struct smtp_rcpt_args r;

	rcpt_ok("TO:<u@Example.org>", 0, &r);
	assert_string_equal(r.to.mailbox, "u@example.org");
	assert_int_equal(r.notify, 0);
	assert_string_equal(r.orcpt_type, "");
	rcpt_ok("to: <u@example.org>", 0, &r);
	rcpt_ok("TO:<@relay.example:u@example.org>", 0, &r);
	assert_true(r.to.had_route);
	assert_string_equal(r.to.domain, "example.org");
}

/* RFC 5321 §4.1.1.3: "<Postmaster>" without domain is legal for RCPT. */
static void test_rcpt_postmaster(void **state)
{
	struct smtp_rcpt_args r;

	rcpt_ok("TO:<Postmaster>", 0, &r);
	assert_true(r.to.postmaster);
	rcpt_ok("TO:<POSTMASTER> NOTIFY=NEVER", SMTP_EXT_DSN, &r);
	assert_true(r.to.postmaster);
}

/* RFC 5321 §4.1.1.3, RFC 3463 X.1.3: bad recipient syntax → 501 5.1.3. */
static void test_rcpt_syntax(void **state)
{
	RCPT_ERRS(0, 501, "5.1.3", "TO:<>", "TO:u@example.org", "TO: u@example.org",
		"TO:<u@example.org@local.example>", "TO:<u@example.org.>");
	RCPT_ERRS(0, 501, "5.5.4", "FROM:<u@example.org>", "TO", "TO:<u@example.org>x");
}

/* RFC 6531 §3.4: a non-ASCII recipient only in an SMTPUTF8 transaction. */
static void test_rcpt_utf8(void **state)
{
	struct smtp_rcpt_args r;

	rcpt_ok("TO:<\xc3\xa9@\xc3\xa9.example>", SMTP_EXT_SMTPUTF8, &r);
	assert_true(r.to.utf8);
	rcpt_err("TO:<\xc3\xa9@example.org>", 0, 553, "5.6.7");
}

/* RFC 3461 §4.1: NOTIFY=NEVER, or a list of SUCCESS, FAILURE, DELAY. */
static void test_rcpt_notify(void **state)
{
	struct smtp_rcpt_args r;

	rcpt_ok("TO:<u@x.example> NOTIFY=NEVER", SMTP_EXT_DSN, &r);
	assert_int_equal(r.notify, SMTP_NOTIFY_NEVER);
	rcpt_ok("TO:<u@x.example> NOTIFY=delay,Success,FAILURE", SMTP_EXT_DSN, &r);
	assert_int_equal(r.notify, SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY);
	rcpt_ok("TO:<u@x.example> NOTIFY=FAILURE", SMTP_EXT_DSN, &r);
	assert_int_equal(r.notify, SMTP_NOTIFY_FAILURE);
}

/* RFC 3461 §4.1: NEVER is exclusive; no empty or repeated items. */
static void test_rcpt_notify_invalid(void **state)
{
	RCPT_ERRS(SMTP_EXT_DSN, 501, "5.5.4", "TO:<u@x.example> NOTIFY=NEVER,SUCCESS",
		"TO:<u@x.example> NOTIFY=SUCCESS,NEVER", "TO:<u@x.example> NOTIFY=SUCCESS,SUCCESS",
		"TO:<u@x.example> NOTIFY=SUCCESS,", "TO:<u@x.example> NOTIFY=,SUCCESS",
		"TO:<u@x.example> NOTIFY=SOMETIMES", "TO:<u@x.example> NOTIFY",
		"TO:<u@x.example> NOTIFY=NEVER NOTIFY=NEVER");
}

/* RFC 3461 §4.2: ORCPT=addr-type;xtext, kept raw and decodable. */
static void test_rcpt_orcpt(void **state)
{
	struct smtp_rcpt_args r;
	char dec[SMTP_ORCPT_MAX + 1];
	size_t n;

	rcpt_ok("TO:<u@x.example> ORCPT=rfc822;User+2Btag@Example.org", SMTP_EXT_DSN, &r);
	assert_string_equal(r.orcpt_type, "rfc822");
	assert_string_equal(r.orcpt_addr, "User+2Btag@Example.org");
	assert_int_equal(smtp_xtext_decode(r.orcpt_addr, strlen(r.orcpt_addr), dec, sizeof(dec), &n), 0);
	assert_string_equal(dec, "User+tag@Example.org");
	/* RFC 3461 §4.2: not constrained to the addr-type's syntax */
	rcpt_ok("TO:<u@x.example> ORCPT=x-local;not+20an+20address", SMTP_EXT_DSN, &r);
	assert_string_equal(r.orcpt_type, "x-local");
}

/* RFC 3461 §4.2: malformed ORCPT values; at most 500 characters. */
static void test_rcpt_orcpt_invalid(void **state)
{
	char buf[700];

	RCPT_ERRS(SMTP_EXT_DSN, 501, "5.5.4", "TO:<u@x.example> ORCPT=rfc822",
		"TO:<u@x.example> ORCPT=;u@x", "TO:<u@x.example> ORCPT=rfc822;",
		"TO:<u@x.example> ORCPT=rfc822;a+2", "TO:<u@x.example> ORCPT=rfc822;a+0D+0A",
		"TO:<u@x.example> ORCPT=rf(c;x");
	snprintf(buf, sizeof(buf), "TO:<u@x.example> ORCPT=rfc822;%0493d", 0);
	rcpt_ok(buf, SMTP_EXT_DSN, &(struct smtp_rcpt_args){ 0 });
	snprintf(buf, sizeof(buf), "TO:<u@x.example> ORCPT=rfc822;%0494d", 0);
	rcpt_err(buf, SMTP_EXT_DSN, 501, "5.5.4");
}

/* RFC 5321 §4.1.1.11: unknown RCPT parameters, or DSN not offered → 555. */
static void test_rcpt_unknown_param(void **state)
{
	rcpt_err("TO:<u@x.example> FOO=1", SMTP_EXT_DSN, 555, "5.5.4");
	rcpt_err("TO:<u@x.example> SIZE=1", EXT_ALL, 555, "5.5.4");
	rcpt_err("TO:<u@x.example> NOTIFY=NEVER", SMTP_EXT_SIZE, 555, "5.5.4");
	rcpt_err("TO:<u@x.example> ORCPT=rfc822;u@x", 0, 555, "5.5.4");
}

/* ---- BDAT ---- */

static int bdat(const char *arg, uint64_t *size, bool *last)
{
	size_t len = strlen(arg);
	char *copy = exact(arg, len);
	const char *error = NULL;
	int ret = smtp_parse_bdat(copy, len, size, last, &error);

	if (ret < 0)
		assert_non_null(error);
	free(copy);
	return ret;
}

/* RFC 3030 §3: bdat-cmd = "BDAT" SP chunk-size [SP end-marker]. */
static void test_bdat_valid(void **state)
{
	uint64_t size;
	bool last;

	assert_int_equal(bdat("1000", &size, &last), 0);
	assert_int_equal(size, 1000);
	assert_false(last);
	assert_int_equal(bdat("0 LAST", &size, &last), 0);
	assert_int_equal(size, 0);
	assert_true(last);
	assert_int_equal(bdat("10 last", &size, &last), 0);
	assert_true(last);
	assert_int_equal(bdat("18446744073709551615", &size, &last), 0);
	assert_true(size == UINT64_MAX);
	assert_int_equal(bdat("007", &size, &last), 0);
	assert_int_equal(size, 7);
}

/* RFC 3030 §3: chunk-size = 1*DIGIT; overflow and stray text refused. */
static void test_bdat_invalid(void **state)
{
	static const char *const bad[] = {
		"", "LAST", " 10", "10 ", "10  LAST", "10 LAST ", "10 LASTX", "10 LAS",
		"-1", "+1", "1 0", "0x10", "18446744073709551616", "99999999999999999999999",
	};
	uint64_t size;
	bool last;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (bdat(bad[i], &size, &last) != -1)
			fail_msg("BDAT %s accepted", bad[i]);
	}
}

/* ---- xtext ---- */

/* RFC 3461 §4: xchar and "+" 2HEXCHAR (upper case). */
static void test_xtext_valid(void **state)
{
	assert_true(smtp_xtext_valid("", 0));
	assert_true(smtp_xtext_valid("abc", 3));
	assert_true(smtp_xtext_valid("a+2Bb", 5));
	assert_true(smtp_xtext_valid("+2B+3D<>", 8));
	assert_false(smtp_xtext_valid("a b", 3));
	assert_false(smtp_xtext_valid("a=b", 3));
	assert_false(smtp_xtext_valid("+2", 2));
	assert_false(smtp_xtext_valid("+2b", 3));
	assert_false(smtp_xtext_valid("+G0", 3));
	assert_false(smtp_xtext_valid("\x7f", 1));
	assert_false(smtp_xtext_valid("\xc3\xa9", 2));
	assert_false(smtp_xtext_valid("a\0b", 3));
}

/* RFC 3461 §4: decoding; NUL never produced; output bounded. */
static void test_xtext_decode(void **state)
{
	char out[8];
	size_t n;

	assert_int_equal(smtp_xtext_decode("a+2Bb", 5, out, sizeof(out), &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(out, "a+b");
	assert_int_equal(smtp_xtext_decode("+7E+20", 6, out, sizeof(out), &n), 0);
	assert_string_equal(out, "~ ");
	assert_int_equal(smtp_xtext_decode("+00", 3, out, sizeof(out), &n), -1);
	assert_int_equal(smtp_xtext_decode("1234567", 7, out, sizeof(out), &n), 0);
	assert_int_equal(smtp_xtext_decode("12345678", 8, out, sizeof(out), &n), -1);
	assert_int_equal(smtp_xtext_decode("", 0, out, 1, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(smtp_xtext_decode("", 0, out, 0, &n), -1);
}

/* Fuzz robustness: every prefix of valid lines parses or fails without overread. */
static void test_prefixes(void **state)
{
	static const char *const mail =
		"FROM:<@a.example:\"q x\"@[IPv6:2001:db8::1]> SIZE=10 BODY=8BITMIME SMTPUTF8 "
		"RET=HDRS ENVID=a+2Bb AUTH=<>";
	static const char *const rcpt =
		"TO:<u@x.example> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;u+40x.example";
	struct smtp_mail_args m;
	struct smtp_rcpt_args r;
	struct smtp_command cmd;

	for (size_t n = 0; n <= strlen(mail); n++) {
		char *copy = exact(mail, n);
		int code;
		const char *enh, *error;

		(void)smtp_parse_mail(copy, n, EXT_ALL, &m, &code, &enh, &error);
		(void)smtp_parse_command(copy, n, &cmd, &error);
		free(copy);
	}
	for (size_t n = 0; n <= strlen(rcpt); n++) {
		char *copy = exact(rcpt, n);
		int code;
		const char *enh, *error;

		(void)smtp_parse_rcpt(copy, n, EXT_ALL, &r, &code, &enh, &error);
		free(copy);
	}
	mail_ok(mail, EXT_ALL, &m);
	rcpt_ok(rcpt, EXT_ALL, &r);
}

/* Fuzz robustness: (NULL, 0) is an empty input everywhere, never a crash. */
static void test_null_empty(void **state)
{
	struct smtp_command cmd;
	struct smtp_mail_args m;
	struct smtp_rcpt_args r;
	struct smtp_address a;
	const char *enh, *error;
	int code;
	uint64_t size;
	bool last;
	size_t n;

	assert_int_equal(smtp_parse_command(NULL, 0, &cmd, &error), -1);
	assert_int_equal(smtp_parse_mail(NULL, 0, EXT_ALL, &m, &code, &enh, &error), -1);
	assert_int_equal(smtp_parse_rcpt(NULL, 0, EXT_ALL, &r, &code, &enh, &error), -1);
	assert_int_equal(smtp_parse_bdat(NULL, 0, &size, &last, &error), -1);
	assert_int_equal(smtp_address_parse_path(NULL, 0, 0, &a, &n, NULL, &error), -1);
	assert_int_equal(smtp_address_parse_mailbox(NULL, 0, 0, &a, NULL, &error), -1);
	assert_true(smtp_xtext_valid(NULL, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_command_verbs),
		cmocka_unit_test(test_command_unknown),
		cmocka_unit_test(test_command_arg),
		cmocka_unit_test(test_command_invalid),
		cmocka_unit_test(test_command_utf8_arg),
		cmocka_unit_test(test_mail_basic),
		cmocka_unit_test(test_mail_space_after_colon),
		cmocka_unit_test(test_mail_syntax),
		cmocka_unit_test(test_mail_path_too_long),
		cmocka_unit_test(test_mail_size),
		cmocka_unit_test(test_mail_body),
		cmocka_unit_test(test_mail_smtputf8),
		cmocka_unit_test(test_mail_utf8_refused),
		cmocka_unit_test(test_mail_dsn),
		cmocka_unit_test(test_mail_auth),
		cmocka_unit_test(test_mail_unknown_param),
		cmocka_unit_test(test_mail_duplicate),
		cmocka_unit_test(test_mail_many_params),
		cmocka_unit_test(test_rcpt_basic),
		cmocka_unit_test(test_rcpt_postmaster),
		cmocka_unit_test(test_rcpt_syntax),
		cmocka_unit_test(test_rcpt_utf8),
		cmocka_unit_test(test_rcpt_notify),
		cmocka_unit_test(test_rcpt_notify_invalid),
		cmocka_unit_test(test_rcpt_orcpt),
		cmocka_unit_test(test_rcpt_orcpt_invalid),
		cmocka_unit_test(test_rcpt_unknown_param),
		cmocka_unit_test(test_bdat_valid),
		cmocka_unit_test(test_bdat_invalid),
		cmocka_unit_test(test_xtext_valid),
		cmocka_unit_test(test_xtext_decode),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_null_empty),
	};

	return cmocka_run_group_tests_name("smtp-parse", tests, NULL, NULL);
}
