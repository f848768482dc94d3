/*
 * Unit tests for dsn: the RFC 3464 notification composer.
 *
 * Every composed message is taken apart here (top header, boundary, the three
 * parts, the delivery-status blocks with folded fields unfolded) and checked
 * for exact field values, and for the rules every notification obeys: CRLF
 * lines only, none longer than 998 octets, no NUL, the boundary only where it
 * belongs, the closing delimiter and CRLF at the very end. The original message
 * lives in a temporary file behind some junk (so the offset matters). When
 * /usr/bin/python3 is there, its email package parses a few of the results
 * independently.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "queue/dsn.h"
#include "queue/envelope.h"

#define NOW 1700000000           /* Tue, 14 Nov 2023 22:13:20 +0000 */
#define NOW_TEXT "Tue, 14 Nov 2023 22:13:20 +0000"
#define ARRIVAL 1699990000       /* Tue, 14 Nov 2023 19:26:40 +0000 */
#define ARRIVAL_TEXT "Tue, 14 Nov 2023 19:26:40 +0000"
#define ATTEMPT 1699999000       /* Tue, 14 Nov 2023 21:56:40 +0000 */
#define ATTEMPT_TEXT "Tue, 14 Nov 2023 21:56:40 +0000"
#define UNTIL 1700400000         /* Sun, 19 Nov 2023 13:20:00 +0000 */
#define UNTIL_TEXT "Sun, 19 Nov 2023 13:20:00 +0000"

static const char JUNK[] = "RAMPART-SPOOL 2\nsome envelope lines\n\n";
static const char ORIGINAL[] =
	"Received: from client.example.org\r\n"
	"From: Alice <alice@example.org>\r\n"
	"To: Bob <bob@remote.test>\r\n"
	"Subject: hello\r\n"
	"Message-ID: <m1@example.org>\r\n"
	"\r\n"
	"Hi Bob,\r\n"
	"\r\n"
	"the body.\r\n";
static const char ORIGINAL_HEADERS[] =
	"Received: from client.example.org\r\n"
	"From: Alice <alice@example.org>\r\n"
	"To: Bob <bob@remote.test>\r\n"
	"Subject: hello\r\n"
	"Message-ID: <m1@example.org>\r\n"
	"\r\n";

/* ---------------------------------------------------------------- fixtures */

struct fixture {
	struct envelope *env;
	struct dsn_rcpt rcpts[200];
	struct dsn_params p;
	int fd;
	char path[64];
};

/* Writes JUNK then data to a new temporary file and points p at data. */
static void fixture_message(struct fixture *f, const char *data, size_t len)
{
	if (f->fd >= 0) {
		close(f->fd);
		unlink(f->path);
	}
	snprintf(f->path, sizeof(f->path), "/tmp/test-dsn-XXXXXX");
	f->fd = mkstemp(f->path);
	assert_true(f->fd >= 0);
	assert_int_equal(write(f->fd, JUNK, strlen(JUNK)), (ssize_t)strlen(JUNK));
	size_t off = 0;
	while (off < len) {
		ssize_t n = write(f->fd, data + off, len - off);
		assert_true(n > 0);
		off += (size_t)n;
	}
	f->p.fd = f->fd;
	f->p.offset = (off_t)strlen(JUNK);
	f->p.end = (off_t)(strlen(JUNK) + len);
}

static void fixture_init(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	f->fd = -1;
	f->env = envelope_new();
	assert_non_null(f->env);
	assert_int_equal(envelope_set_str(&f->env->mail_from, "alice@example.org"), 0);
	f->env->received_at = ARRIVAL;
	f->rcpts[0] = (struct dsn_rcpt){
		.address = "bob@remote.test",
		.action = DSN_FAILED,
		.status = "5.1.1",
		.remote_mta = "mx.remote.test",
		.diagnostic = "550 5.1.1 no such user",
		.last_attempt = ATTEMPT,
	};
	f->p.reporting_mta = "mx.example.org";
	f->p.env = f->env;
	f->p.rcpts = f->rcpts;
	f->p.nrcpts = 1;
	f->p.now = NOW;
	f->p.retry_until = UNTIL;
	fixture_message(f, ORIGINAL, strlen(ORIGINAL));
}

static void fixture_done(struct fixture *f)
{
	envelope_free(&f->env);
	assert_null(f->env);
	if (f->fd >= 0) {
		close(f->fd);
		unlink(f->path);
	}
}

/* ---------------------------------------------------------------- parsing */

struct parsed {
	char *msg;
	size_t len;
	char boundary[128];
	char *head;                  /* the top header section, without its empty line */
	char *part_head[3], *part_body[3];
	char *blocks[256];           /* the delivery-status blocks */
	size_t nblocks;
};

static char *dup_range(const char *s, size_t n)
{
	char *r = malloc(n + 1);
	assert_non_null(r);
	memcpy(r, s, n);
	r[n] = '\0';
	return r;
}

/* The value of field name in a header block, unfolded (RFC 5322 §2.2.3), or
 * NULL when absent. Field names match case-sensitively: we write them. */
static char *field(const char *block, const char *name)
{
	size_t nlen = strlen(name);
	const char *p = block;

	while (*p != '\0' && !(p[0] == '\r' && p[1] == '\n')) {
		const char *eol = strstr(p, "\r\n");
		if (eol == NULL)
			eol = p + strlen(p);
		/* the end of the field: the first CRLF not followed by WSP */
		const char *end = eol;
		while (end[0] == '\r' && (end[2] == ' ' || end[2] == '\t')) {
			const char *next = strstr(end + 2, "\r\n");
			end = next != NULL ? next : end + strlen(end);
		}
		if (strncmp(p, name, nlen) == 0 && p[nlen] == ':') {
			const char *v = p + nlen + 1;
			while (*v == ' ')
				v++;
			char *r = malloc((size_t)(end - v) + 1);
			size_t n = 0;
			assert_non_null(r);
			for (const char *q = v; q < end; q++) {
				if (q[0] == '\r' && q[1] == '\n') {
					q++;
					continue;
				}
				r[n++] = *q;
			}
			r[n] = '\0';
			return r;
		}
		p = end[0] == '\0' ? end : end + 2;
	}
	return NULL;
}

static bool starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void assert_field(const char *block, const char *name, const char *want)
{
	char *v = field(block, name);
	if (want == NULL) {
		if (v != NULL)
			fail_msg("%s: unexpected value \"%s\"", name, v);
		return;
	}
	if (v == NULL)
		fail_msg("%s: missing, wanted \"%s\"", name, want);
	assert_string_equal(v, want);
	free(v);
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

/* The rules every notification keeps, whatever went in. */
static void check_wellformed(const char *msg, size_t len)
{
	size_t col = 0;

	assert_true(len > 0);
	assert_int_equal(msg[len], '\0');
	assert_int_equal(strlen(msg), len);
	for (size_t i = 0; i < len; i++) {
		if (msg[i] == '\r') {
			assert_true(i + 1 < len && msg[i + 1] == '\n');
			continue;
		}
		if (msg[i] == '\n') {
			assert_true(i > 0 && msg[i - 1] == '\r');
			col = 0;
			continue;
		}
		col++;
		assert_true(col <= 998);
	}
	assert_int_equal(col, 0);
}

static void parse(struct parsed *m, char *msg, size_t len)
{
	memset(m, 0, sizeof(*m));
	m->msg = msg;
	m->len = len;
	check_wellformed(msg, len);

	const char *hend = strstr(msg, "\r\n\r\n");
	assert_non_null(hend);
	m->head = dup_range(msg, (size_t)(hend - msg) + 2);
	char *ct = field(m->head, "Content-Type");
	assert_non_null(ct);
	const char *b = strstr(ct, "boundary=\"");
	assert_non_null(b);
	b += strlen("boundary=\"");
	const char *bend = strchr(b, '"');
	assert_non_null(bend);
	assert_true((size_t)(bend - b) < sizeof(m->boundary) - 4);
	snprintf(m->boundary, sizeof(m->boundary), "%.*s", (int)(bend - b), b);
	assert_true(strlen(m->boundary) <= 70); /* RFC 2046 §5.1.1 */
	free(ct);

	/* The boundary appears in the Content-Type, on three delimiter lines and
	 * on the closing one: nowhere else. */
	assert_int_equal(count(msg, m->boundary), 5);
	char delim[160], close[160];
	snprintf(delim, sizeof(delim), "\r\n--%s\r\n", m->boundary);
	snprintf(close, sizeof(close), "\r\n--%s--\r\n", m->boundary);
	assert_true(len > strlen(close));
	assert_string_equal(msg + len - strlen(close), close);

	const char *p = strstr(msg, delim);
	for (int i = 0; i < 3; i++) {
		assert_non_null(p);
		p += strlen(delim);
		const char *next = i < 2 ? strstr(p, delim) : msg + len - strlen(close);
		assert_non_null(next);
		const char *sep = strstr(p, "\r\n\r\n");
		assert_non_null(sep);
		assert_true(sep + 4 <= next);
		m->part_head[i] = dup_range(p, (size_t)(sep - p) + 2);
		/* the body keeps its final CRLF: the delimiter's CRLF comes after it */
		m->part_body[i] = dup_range(sep + 4, (size_t)(next - (sep + 4)));
		p = next;
	}

	/* The delivery-status blocks, split at empty lines (RFC 3464 §2.1). */
	const char *s = m->part_body[1];
	while (*s != '\0' && m->nblocks < 256) {
		const char *e = strstr(s, "\r\n\r\n");
		size_t n = e != NULL ? (size_t)(e - s) + 2 : strlen(s);
		m->blocks[m->nblocks++] = dup_range(s, n);
		s += n;
		while (s[0] == '\r' && s[1] == '\n')
			s += 2;
	}
}

static void parsed_free(struct parsed *m)
{
	free(m->msg);
	free(m->head);
	for (int i = 0; i < 3; i++) {
		free(m->part_head[i]);
		free(m->part_body[i]);
	}
	for (size_t i = 0; i < m->nblocks; i++)
		free(m->blocks[i]);
}

static void compose_ok(struct fixture *f, struct parsed *m)
{
	char *msg = NULL;
	size_t len = 0;
	const char *error = NULL;

	if (dsn_compose(&f->p, &msg, &len, &error) < 0)
		fail_msg("dsn_compose: %s", error);
	assert_non_null(msg);
	parse(m, msg, len);
}

/* The text of the human part with its lines joined by spaces (it is wrapped). */
static char *text_joined(const struct parsed *m)
{
	const char *t = m->part_body[0];
	char *r = malloc(strlen(t) + 1);
	size_t n = 0;
	assert_non_null(r);
	for (const char *p = t; *p != '\0'; p++) {
		if (p[0] == '\r' && p[1] == '\n') {
			p++;
			if (n > 0 && r[n - 1] != ' ')
				r[n++] = ' ';
			while (p[1] == ' ')
				p++;
			continue;
		}
		r[n++] = *p;
	}
	r[n] = '\0';
	return r;
}

/* ---------------------------------------------------------------- tests */

static void test_failed_remote(void **state)
{
	struct fixture f;
	struct parsed m;
	(void)state;

	fixture_init(&f);
	compose_ok(&f, &m);

	assert_field(m.head, "From", "\"Mail Delivery System\" <MAILER-DAEMON@mx.example.org>");
	assert_field(m.head, "To", "<alice@example.org>");
	assert_field(m.head, "Subject", "Undelivered Mail Returned to Sender");
	assert_field(m.head, "Date", NOW_TEXT);
	assert_field(m.head, "MIME-Version", "1.0");
	assert_field(m.head, "Auto-Submitted", "auto-replied");
	assert_field(m.head, "Content-Transfer-Encoding", "7bit");
	char *mid = field(m.head, "Message-ID");
	assert_non_null(mid);
	assert_true(strncmp(mid, "<1700000000.", 12) == 0);
	assert_non_null(strstr(mid, "@mx.example.org>"));
	free(mid);
	char *ct = field(m.head, "Content-Type");
	char want_ct[256];
	snprintf(want_ct, sizeof(want_ct),
	    "multipart/report; report-type=delivery-status;\tboundary=\"%s\"", m.boundary);
	assert_string_equal(ct, want_ct);
	free(ct);

	assert_field(m.part_head[0], "Content-Type", "text/plain; charset=us-ascii");
	assert_field(m.part_head[0], "Content-Transfer-Encoding", "7bit");
	assert_true(starts_with(m.part_body[0],
	    "This is the mail system at host mx.example.org.\r\n\r\n"));
	assert_non_null(strstr(m.part_body[0],
	    "\r\n<bob@remote.test>: host mx.remote.test said: 550 5.1.1 no such user\r\n"));
	char *joined = text_joined(&m);
	assert_non_null(strstr(joined, "could not be delivered"));
	assert_non_null(strstr(joined, "The header section of your message is attached below."));
	assert_null(strstr(joined, "keep trying"));
	free(joined);

	/* The whole report, exactly. */
	assert_field(m.part_head[1], "Content-Type", "message/delivery-status");
	assert_field(m.part_head[1], "Content-Transfer-Encoding", "7bit");
	assert_string_equal(m.part_body[1],
	    "Reporting-MTA: dns; mx.example.org\r\n"
	    "Arrival-Date: " ARRIVAL_TEXT "\r\n"
	    "\r\n"
	    "Final-Recipient: rfc822; bob@remote.test\r\n"
	    "Action: failed\r\n"
	    "Status: 5.1.1\r\n"
	    "Remote-MTA: dns; mx.remote.test\r\n"
	    "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n"
	    "Last-Attempt-Date: " ATTEMPT_TEXT "\r\n");
	assert_int_equal(m.nblocks, 2);

	assert_field(m.part_head[2], "Content-Type", "text/rfc822-headers");
	assert_field(m.part_head[2], "Content-Transfer-Encoding", "7bit");
	assert_string_equal(m.part_body[2], ORIGINAL_HEADERS);

	parsed_free(&m);
	fixture_done(&f);
}

static void test_delayed(void **state)
{
	struct fixture f;
	struct parsed m;
	(void)state;

	fixture_init(&f);
	f.rcpts[0] = (struct dsn_rcpt){
		.address = "carol@slow.test", .action = DSN_DELAYED, .status = "4.4.1",
		.remote_mta = "mx.slow.test", .explanation = "connection timed out",
		.last_attempt = ATTEMPT,
	};
	compose_ok(&f, &m);
	assert_field(m.head, "Subject", "Delayed Mail (still being retried)");
	assert_string_equal(m.blocks[1],
	    "Final-Recipient: rfc822; carol@slow.test\r\n"
	    "Action: delayed\r\n"
	    "Status: 4.4.1\r\n"
	    "Remote-MTA: dns; mx.slow.test\r\n"
	    "Diagnostic-Code: X-Rampart; connection timed out\r\n"
	    "Last-Attempt-Date: " ATTEMPT_TEXT "\r\n"
	    "Will-Retry-Until: " UNTIL_TEXT "\r\n");
	char *joined = text_joined(&m);
	assert_non_null(strstr(joined, "<carol@slow.test>: connection timed out"));
	assert_non_null(strstr(joined, "keep trying until " UNTIL_TEXT ","));
	assert_non_null(strstr(joined, "only a warning"));
	assert_null(strstr(joined, "could not be delivered"));
	free(joined);
	parsed_free(&m);

	/* no retry_until: no Will-Retry-Until, no date promised */
	f.p.retry_until = 0;
	f.rcpts[0].status = "bogus";
	f.rcpts[0].last_attempt = 0;
	compose_ok(&f, &m);
	assert_field(m.blocks[1], "Will-Retry-Until", NULL);
	assert_field(m.blocks[1], "Last-Attempt-Date", NULL);
	assert_field(m.blocks[1], "Status", "4.0.0");
	joined = text_joined(&m);
	assert_null(strstr(joined, "keep trying"));
	free(joined);
	parsed_free(&m);
	fixture_done(&f);
}

static void test_relayed_and_delivered(void **state)
{
	struct fixture f;
	struct parsed m;
	(void)state;

	fixture_init(&f);
	f.rcpts[0] = (struct dsn_rcpt){
		.address = "dave@remote.test", .action = DSN_RELAYED, .status = "2.0.0",
		.remote_mta = "mx.remote.test", .last_attempt = ATTEMPT,
	};
	f.rcpts[1] = (struct dsn_rcpt){
		.address = "erin@example.org", .action = DSN_DELIVERED, .status = "2.0.0",
	};
	f.p.nrcpts = 2;
	compose_ok(&f, &m);
	assert_field(m.head, "Subject", "Successful Mail Delivery Report");
	assert_int_equal(m.nblocks, 3);
	assert_string_equal(m.blocks[1],
	    "Final-Recipient: rfc822; dave@remote.test\r\n"
	    "Action: relayed\r\n"
	    "Status: 2.0.0\r\n"
	    "Remote-MTA: dns; mx.remote.test\r\n"
	    "Last-Attempt-Date: " ATTEMPT_TEXT "\r\n");
	assert_string_equal(m.blocks[2],
	    "Final-Recipient: rfc822; erin@example.org\r\n"
	    "Action: delivered\r\n"
	    "Status: 2.0.0\r\n");
	char *joined = text_joined(&m);
	assert_non_null(strstr(joined, "has been delivered"));
	assert_non_null(strstr(joined, "<dave@remote.test>: handed on to a system that sends no "
	    "delivery reports (host mx.remote.test)"));
	assert_non_null(strstr(joined, "<erin@example.org>: delivered"));
	assert_null(strstr(joined, "sorry"));
	assert_null(strstr(joined, "warning"));
	free(joined);
	parsed_free(&m);

	/* mixed: the worst action names the Subject; each group its words */
	f.rcpts[1].action = DSN_FAILED;
	f.rcpts[1].status = "5.2.2";
	f.rcpts[1].explanation = "mailbox full";
	compose_ok(&f, &m);
	assert_field(m.head, "Subject", "Undelivered Mail Returned to Sender");
	joined = text_joined(&m);
	assert_true(strstr(joined, "could not be delivered") < strstr(joined, "has been delivered"));
	free(joined);
	parsed_free(&m);
	fixture_done(&f);
}

static void test_envid_orcpt(void **state)
{
	struct fixture f;
	struct parsed m;
	(void)state;

	fixture_init(&f);
	assert_int_equal(envelope_set_str(&f.env->envid, "QQ+2B314159"), 0);
	f.rcpts[0].orcpt = "rfc822;bob+2Btag@remote.test";
	compose_ok(&f, &m);
	assert_string_equal(m.blocks[0],
	    "Original-Envelope-Id: QQ+314159\r\n"
	    "Reporting-MTA: dns; mx.example.org\r\n"
	    "Arrival-Date: " ARRIVAL_TEXT "\r\n");
	assert_true(starts_with(m.blocks[1],
	    "Original-Recipient: rfc822; bob+tag@remote.test\r\n"
	    "Final-Recipient: rfc822; bob@remote.test\r\n"));
	parsed_free(&m);

	/* the type is kept as given; utf-8-addr-xtext is shown as it is */
	f.rcpts[0].orcpt = "utf-8;j\\x{FC}rgen@remote.test";
	compose_ok(&f, &m);
	assert_field(m.blocks[1], "Original-Recipient", "utf-8; j\\x{FC}rgen@remote.test");
	parsed_free(&m);
	f.rcpts[0].orcpt = "X-Local;bob";
	compose_ok(&f, &m);
	assert_field(m.blocks[1], "Original-Recipient", "X-Local; bob");
	parsed_free(&m);

	/* malformed ORCPTs are left out, never shown half-decoded */
	static const char *const bad[] = { "rfc822;bob+2", "rfc822;bob+ZZ", "rfc822;", ";bob@x",
		"nosemicolon", "rfc 822;bob", "rfc822;+00", "rfc822;+0D+0A" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		f.rcpts[0].orcpt = bad[i];
		compose_ok(&f, &m);
		assert_field(m.blocks[1], "Original-Recipient", NULL);
		assert_field(m.blocks[1], "Final-Recipient", "rfc822; bob@remote.test");
		parsed_free(&m);
	}

	/* absent: neither field */
	f.rcpts[0].orcpt = NULL;
	assert_int_equal(envelope_set_str(&f.env->envid, NULL), 0);
	compose_ok(&f, &m);
	assert_field(m.blocks[0], "Original-Envelope-Id", NULL);
	assert_field(m.blocks[1], "Original-Recipient", NULL);
	assert_string_equal(m.blocks[0],
	    "Reporting-MTA: dns; mx.example.org\r\n"
	    "Arrival-Date: " ARRIVAL_TEXT "\r\n");
	parsed_free(&m);

	/* an ENVID hiding a line break: decoded, then made safe */
	assert_int_equal(envelope_set_str(&f.env->envid, "a+0D+0AX-Evil:+20b"), 0);
	f.env->received_at = 0;
	compose_ok(&f, &m);
	assert_string_equal(m.blocks[0],
	    "Original-Envelope-Id: a X-Evil: b\r\n"
	    "Reporting-MTA: dns; mx.example.org\r\n");
	parsed_free(&m);
	fixture_done(&f);
}

static void test_ret_full_small(void **state)
{
	struct fixture f;
	struct parsed m;
	static const char prepend[] = "Authentication-Results: mx.example.org; spf=pass\r\n";
	(void)state;

	fixture_init(&f);
	f.env->ret = ENVELOPE_RET_FULL;
	f.p.prepend = prepend;
	f.p.prepend_len = strlen(prepend);
	compose_ok(&f, &m);
	assert_field(m.part_head[2], "Content-Type", "message/rfc822");
	assert_field(m.part_head[2], "Content-Transfer-Encoding", "7bit");
	char want[1024];
	snprintf(want, sizeof(want), "%s%s", prepend, ORIGINAL);
	assert_string_equal(m.part_body[2], want);
	char *joined = text_joined(&m);
	assert_non_null(strstr(joined, "Your message is attached below."));
	free(joined);
	parsed_free(&m);

	/* RET=HDRS: the headers, prepend first */
	f.env->ret = ENVELOPE_RET_HDRS;
	compose_ok(&f, &m);
	assert_field(m.part_head[2], "Content-Type", "text/rfc822-headers");
	snprintf(want, sizeof(want), "%s%s", prepend, ORIGINAL_HEADERS);
	assert_string_equal(m.part_body[2], want);
	parsed_free(&m);
	fixture_done(&f);
}

/* A message of exactly size octets: ORIGINAL's header, then body lines. */
static char *big_message(size_t size)
{
	char *msg = malloc(size + 1);
	size_t n = strlen(ORIGINAL_HEADERS);
	assert_non_null(msg);
	assert_true(size > n + 100);
	memcpy(msg, ORIGINAL_HEADERS, n);
	while (size - n >= 82) {
		memset(msg + n, 'a' + (char)(n % 26), 78);
		memcpy(msg + n + 78, "\r\n", 2);
		n += 80;
	}
	memset(msg + n, 'z', size - n - 2); /* the last line: 0..79 octets */
	memcpy(msg + size - 2, "\r\n", 2);
	msg[size] = '\0';
	return msg;
}

static void test_ret_full_limits(void **state)
{
	struct fixture f;
	struct parsed m;
	(void)state;

	fixture_init(&f);
	f.env->ret = ENVELOPE_RET_FULL;

	/* exactly DSN_RETURN_MAX (over several read chunks): returned whole */
	char *msg = big_message(DSN_RETURN_MAX);
	fixture_message(&f, msg, DSN_RETURN_MAX);
	compose_ok(&f, &m);
	assert_field(m.part_head[2], "Content-Type", "message/rfc822");
	assert_string_equal(m.part_body[2], msg);
	parsed_free(&m);
	free(msg);

	/* one octet more: the headers only, and the text says why */
	msg = big_message(DSN_RETURN_MAX + 1);
	fixture_message(&f, msg, DSN_RETURN_MAX + 1);
	compose_ok(&f, &m);
	assert_field(m.part_head[2], "Content-Type", "text/rfc822-headers");
	assert_string_equal(m.part_body[2], ORIGINAL_HEADERS);
	char *joined = text_joined(&m);
	assert_non_null(strstr(joined, "too large to return whole"));
	free(joined);
	parsed_free(&m);
	free(msg);

	/* a prepend counts towards the limit */
	msg = big_message(DSN_RETURN_MAX);
	fixture_message(&f, msg, DSN_RETURN_MAX);
	f.p.prepend = "X: y\r\n";
	f.p.prepend_len = 6;
	compose_ok(&f, &m);
	assert_field(m.part_head[2], "Content-Type", "text/rfc822-headers");
	parsed_free(&m);
	free(msg);
	fixture_done(&f);
}

static void test_returned_headers_shapes(void **state)
{
	struct fixture f;
	struct parsed m;
	(void)state;

	fixture_init(&f);

	/* no empty line: the whole thing */
	static const char nobody[] = "Subject: only headers\r\nX-A: 1\r\n";
	fixture_message(&f, nobody, strlen(nobody));
	compose_ok(&f, &m);
	assert_string_equal(m.part_body[2], nobody);
	parsed_free(&m);

	/* bare LF lines, a bare CR, NUL octets, no final line break */
	static const char odd[] = "Subject: a\nX-B: b\rc\0d\r\n\nbody";
	fixture_message(&f, odd, sizeof(odd) - 1);
	f.env->ret = ENVELOPE_RET_FULL;
	compose_ok(&f, &m);
	assert_string_equal(m.part_body[2], "Subject: a\r\nX-B: bcd\r\n\r\nbody\r\n");
	parsed_free(&m);
	f.env->ret = ENVELOPE_RET_HDRS;
	compose_ok(&f, &m);
	assert_string_equal(m.part_body[2], "Subject: a\r\nX-B: bcd\r\n\r\n");
	parsed_free(&m);

	/* a header line of NULs only is left out, not written as an empty line that
	 * would end the header section early (found by fuzz-dsn); in the body an
	 * empty line stays */
	static const char nul_line[] = "Subject: s\r\n\0\r\nX-After: h\r\n\r\nbody\r\n\0\r\nend\r\n";
	fixture_message(&f, nul_line, sizeof(nul_line) - 1);
	f.env->ret = ENVELOPE_RET_HDRS;
	compose_ok(&f, &m);
	assert_string_equal(m.part_body[2], "Subject: s\r\nX-After: h\r\n\r\n");
	parsed_free(&m);
	f.env->ret = ENVELOPE_RET_FULL;
	compose_ok(&f, &m);
	assert_string_equal(m.part_body[2], "Subject: s\r\nX-After: h\r\n\r\nbody\r\n\r\nend\r\n");
	parsed_free(&m);
	f.env->ret = ENVELOPE_RET_HDRS;

	/* an empty message: an empty part */
	fixture_message(&f, "", 0);
	compose_ok(&f, &m);
	assert_string_equal(m.part_body[2], "");
	parsed_free(&m);

	/* a 5000-octet header line is cut to 998 */
	char *longline = malloc(6000);
	assert_non_null(longline);
	memcpy(longline, "X-Long: ", 8);
	memset(longline + 8, 'x', 4992);
	memcpy(longline + 5000, "\r\n\r\nbody\r\n", 11);
	fixture_message(&f, longline, strlen(longline));
	compose_ok(&f, &m);
	assert_int_equal(strlen(m.part_body[2]), 998 + 4);
	assert_true(strncmp(m.part_body[2], longline, 998) == 0);
	assert_string_equal(m.part_body[2] + 998, "\r\n\r\n");
	parsed_free(&m);
	free(longline);

	/* a header section over 64 KiB is cut at a line boundary within it */
	size_t size = 100 * 1024;
	char *huge = malloc(size + 16);
	assert_non_null(huge);
	size_t n = 0;
	while (n + 100 <= size) {
		memcpy(huge + n, "X-Filler: ", 10);
		memset(huge + n + 10, 'f', 88);
		memcpy(huge + n + 98, "\r\n", 2);
		n += 100;
	}
	memcpy(huge + n, "\r\nbody\r\n", 8);
	n += 8;
	fixture_message(&f, huge, n);
	compose_ok(&f, &m);
	size_t got = strlen(m.part_body[2]);
	assert_int_equal(got, (64 * 1024 / 100) * 100);
	assert_true(strncmp(m.part_body[2], huge, got) == 0);
	parsed_free(&m);
	free(huge);
	fixture_done(&f);
}

static void test_injection(void **state)
{
	struct fixture f;
	struct parsed m;
	(void)state;

	fixture_init(&f);
	assert_int_equal(envelope_set_str(&f.env->mail_from, "alice@example.org\r\nBcc: x@evil"), 0);
	f.rcpts[0].address = "bob@remote.test\r\nX-Injected-Rcpt: 1";
	f.rcpts[0].diagnostic = "550 5.1.1 no\r\nX-Injected: yes\r\n\r\nAction: delivered\n\x01\x7f end";
	f.rcpts[0].remote_mta = "mx.remote.test\r\nX-Host: 1";
	f.rcpts[0].status = "5.1.1\r\nX-Status: 1";
	f.p.reporting_mta = "mx.example.org\r\nX-Mta: 1";
	compose_ok(&f, &m);

	/* no line of the message starts with an injected name */
	static const char *const names[] = { "Bcc:", "X-Injected", "X-Host", "X-Status", "X-Mta",
		"Action: delivered" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char pat[64];
		snprintf(pat, sizeof(pat), "\n%s", names[i]);
		assert_null(strstr(m.msg, pat));
	}
	assert_int_equal(count(m.msg, "\x01"), 0);
	assert_int_equal(count(m.msg, "\x7f"), 0);
	assert_field(m.head, "To", "<alice@example.org Bcc: x@evil>");
	assert_field(m.head, "From", "\"Mail Delivery System\" <MAILER-DAEMON@mx.example.orgX-Mta:1>");
	assert_int_equal(m.nblocks, 2);
	assert_field(m.blocks[1], "Final-Recipient", "rfc822; bob@remote.test X-Injected-Rcpt: 1");
	assert_field(m.blocks[1], "Action", "failed");
	assert_field(m.blocks[1], "Status", "5.0.0");
	assert_field(m.blocks[1], "Remote-MTA", "dns; mx.remote.testX-Host:1");
	assert_field(m.blocks[1], "Diagnostic-Code",
	    "smtp; 550 5.1.1 no X-Injected: yes Action: delivered end");
	parsed_free(&m);
	fixture_done(&f);
}

static void test_long_values(void **state)
{
	struct fixture f;
	struct parsed m;
	(void)state;

	fixture_init(&f);
	/* a long reply of words: folded at 78, cut at 1200 with "..." */
	char diag[4000];
	size_t n = 0;
	while (n + 8 < sizeof(diag) - 1) {
		memcpy(diag + n, "word12 ", 7);
		n += 7;
	}
	diag[n] = '\0';
	f.rcpts[0].diagnostic = diag;
	compose_ok(&f, &m);
	char *v = field(m.blocks[1], "Diagnostic-Code");
	assert_non_null(v);
	/* cut at 1200 octets: back to 1197 for the "...", and the space before it dropped */
	assert_int_equal(strlen(v), strlen("smtp; ") + 1199);
	assert_true(strncmp(v, "smtp; word12 word12", 19) == 0);
	assert_string_equal(v + strlen(v) - 9, "word12...");
	free(v);
	/* every line of the report and of the human part within 78 columns */
	for (int i = 0; i < 2; i++) {
		for (const char *p = m.part_body[i]; *p != '\0';) {
			const char *eol = strstr(p, "\r\n");
			assert_non_null(eol);
			assert_true(eol - p <= 78);
			p = eol + 2;
		}
	}
	parsed_free(&m);

	/* one 3000-octet word: split under 998 per line, nothing lost before the cut */
	char word[3001];
	memset(word, 'w', 3000);
	word[3000] = '\0';
	f.rcpts[0].diagnostic = word;
	f.rcpts[0].address = word;
	compose_ok(&f, &m);
	v = field(m.blocks[1], "Diagnostic-Code");
	assert_non_null(v);
	size_t ws = 0;
	for (const char *p = v; *p != '\0'; p++)
		ws += *p == 'w';
	assert_int_equal(ws, 1200 - 3);
	free(v);
	v = field(m.blocks[1], "Final-Recipient");
	assert_non_null(v);
	assert_true(strncmp(v, "rfc822; www", 11) == 0);
	assert_string_equal(v + strlen(v) - 4, "w...");
	free(v);
	parsed_free(&m);
	fixture_done(&f);
}

static void test_8bit(void **state)
{
	struct fixture f;
	struct parsed m;
	static const char utf8msg[] = "Subject: caf\xc3\xa9\r\n\r\nna\xc3\xafve\r\n";
	(void)state;

	fixture_init(&f);
	fixture_message(&f, utf8msg, strlen(utf8msg));
	compose_ok(&f, &m);
	assert_field(m.head, "Content-Transfer-Encoding", "8bit");
	assert_field(m.part_head[0], "Content-Transfer-Encoding", "7bit");
	assert_field(m.part_head[1], "Content-Transfer-Encoding", "7bit");
	assert_field(m.part_head[2], "Content-Type", "text/rfc822-headers");
	assert_field(m.part_head[2], "Content-Transfer-Encoding", "8bit");
	assert_string_equal(m.part_body[2], "Subject: caf\xc3\xa9\r\n\r\n");
	assert_true(dsn_has_8bit(m.msg, m.len));
	parsed_free(&m);

	/* 8-bit only in the body, headers returned: 7bit throughout */
	static const char bodyonly[] = "Subject: x\r\n\r\nna\xc3\xafve\r\n";
	fixture_message(&f, bodyonly, strlen(bodyonly));
	compose_ok(&f, &m);
	assert_field(m.head, "Content-Transfer-Encoding", "7bit");
	assert_field(m.part_head[2], "Content-Transfer-Encoding", "7bit");
	assert_false(dsn_has_8bit(m.msg, m.len));
	parsed_free(&m);

	/* ... but RET=FULL returns it, 8bit */
	f.env->ret = ENVELOPE_RET_FULL;
	compose_ok(&f, &m);
	assert_field(m.part_head[2], "Content-Type", "message/rfc822");
	assert_field(m.part_head[2], "Content-Transfer-Encoding", "8bit");
	assert_field(m.head, "Content-Transfer-Encoding", "8bit");
	parsed_free(&m);

	/* without SMTPUTF8, 8-bit in a reply becomes '?' */
	f.rcpts[0].diagnostic = "550 5.1.1 unbekannt: j\xc3\xbcrgen";
	f.env->ret = ENVELOPE_RET_HDRS;
	compose_ok(&f, &m);
	assert_field(m.blocks[1], "Diagnostic-Code", "smtp; 550 5.1.1 unbekannt: j??rgen");
	assert_field(m.part_head[1], "Content-Type", "message/delivery-status");
	assert_field(m.part_head[1], "Content-Transfer-Encoding", "7bit");
	parsed_free(&m);
	fixture_done(&f);
}

static void test_smtputf8(void **state)
{
	struct fixture f;
	struct parsed m;
	static const char utf8msg[] = "From: j\xc3\xbcrgen@example.org\r\nSubject: Gr\xc3\xbc\xc3\x9f" "e\r\n\r\nbody\r\n";
	(void)state;

	fixture_init(&f);
	f.env->smtputf8 = true;
	assert_int_equal(envelope_set_str(&f.env->mail_from, "j\xc3\xbcrgen@example.org"), 0);
	f.rcpts[0].address = "\xe7\x94\xa8\xe6\x88\xb7@remote.test";
	/* valid UTF-8 kept, an invalid octet and a C1 control not */
	f.rcpts[0].diagnostic = "550 5.1.1 \xe7\x94\xa8\xe6\x88\xb7 inconnu \xff\xc2\x85!";
	f.rcpts[1] = (struct dsn_rcpt){ .address = "plain+tag@remote.test", .action = DSN_FAILED,
		.status = "5.1.1" };
	f.rcpts[2] = (struct dsn_rcpt){ .address = "\"a b+c\"@r\xc3\xa9mote.test",
		.action = DSN_FAILED, .status = "5.1.1" };
	f.p.nrcpts = 3;
	fixture_message(&f, utf8msg, strlen(utf8msg));
	compose_ok(&f, &m);
	char *ct = field(m.head, "Content-Type");
	assert_true(strncmp(ct, "multipart/report; report-type=global-delivery-status;", 53) == 0);
	free(ct);
	assert_field(m.head, "To", "<j\xc3\xbcrgen@example.org>");
	assert_field(m.head, "Content-Transfer-Encoding", "8bit");
	assert_field(m.part_head[0], "Content-Type", "text/plain; charset=utf-8");
	assert_field(m.part_head[0], "Content-Transfer-Encoding", "8bit");
	assert_field(m.part_head[1], "Content-Type", "message/global-delivery-status");
	assert_field(m.part_head[1], "Content-Transfer-Encoding", "8bit");
	assert_field(m.part_head[2], "Content-Type", "message/global-headers");
	assert_field(m.part_head[2], "Content-Transfer-Encoding", "8bit");
	assert_string_equal(m.part_body[2],
	    "From: j\xc3\xbcrgen@example.org\r\nSubject: Gr\xc3\xbc\xc3\x9f" "e\r\n\r\n");
	assert_int_equal(m.nblocks, 4);
	assert_field(m.blocks[1], "Final-Recipient", "utf-8; \xe7\x94\xa8\xe6\x88\xb7@remote.test");
	assert_field(m.blocks[1], "Diagnostic-Code",
	    "smtp; 550 5.1.1 \xe7\x94\xa8\xe6\x88\xb7 inconnu ?!");
	assert_field(m.blocks[2], "Final-Recipient", "rfc822; plain+tag@remote.test");
	assert_field(m.blocks[3], "Final-Recipient",
	    "utf-8; \"a\\x{20}b\\x{2B}c\"@r\xc3\xa9mote.test");
	assert_non_null(strstr(m.part_body[0], "<\xe7\x94\xa8\xe6\x88\xb7@remote.test>: host"));
	parsed_free(&m);

	/* RET=FULL: message/global */
	f.env->ret = ENVELOPE_RET_FULL;
	compose_ok(&f, &m);
	assert_field(m.part_head[2], "Content-Type", "message/global");
	assert_string_equal(m.part_body[2], utf8msg);
	parsed_free(&m);

	/* an ASCII-only SMTPUTF8 notice still uses the global types, 7bit */
	f.p.nrcpts = 2;
	f.rcpts[0].address = "bob@remote.test";
	f.rcpts[0].diagnostic = "550 no";
	assert_int_equal(envelope_set_str(&f.env->mail_from, "alice@example.org"), 0);
	fixture_message(&f, ORIGINAL, strlen(ORIGINAL));
	f.env->ret = ENVELOPE_RET_HDRS;
	compose_ok(&f, &m);
	assert_field(m.part_head[1], "Content-Type", "message/global-delivery-status");
	assert_field(m.part_head[1], "Content-Transfer-Encoding", "7bit");
	assert_field(m.head, "Content-Transfer-Encoding", "7bit");
	parsed_free(&m);
	fixture_done(&f);
}

static void test_many_recipients(void **state)
{
	struct fixture f;
	struct parsed m;
	char addrs[150][32];
	(void)state;

	fixture_init(&f);
	for (int i = 0; i < 150; i++) {
		snprintf(addrs[i], sizeof(addrs[i]), "user%d@remote.test", i);
		f.rcpts[i] = (struct dsn_rcpt){ .address = addrs[i], .action = DSN_FAILED,
			.status = "5.1.1", .diagnostic = "550 5.1.1 no" };
	}
	f.p.nrcpts = 150;
	compose_ok(&f, &m);
	assert_int_equal(m.nblocks, 151);
	assert_field(m.blocks[150], "Final-Recipient", "rfc822; user149@remote.test");
	assert_non_null(strstr(m.part_body[0], "<user99@remote.test>:"));
	assert_null(strstr(m.part_body[0], "<user100@remote.test>:"));
	assert_non_null(strstr(m.part_body[0], "... and 50 more: the report below lists them all."));
	parsed_free(&m);
	fixture_done(&f);
}

static void test_errors(void **state)
{
	struct fixture f;
	char *msg = (char *)"x";
	size_t len = 7;
	const char *error = NULL;
	(void)state;

	fixture_init(&f);
	assert_int_equal(envelope_set_str(&f.env->mail_from, ""), 0);
	assert_int_equal(dsn_compose(&f.p, &msg, &len, &error), -1);
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(error, "null reverse-path"));
	assert_null(msg);
	assert_int_equal(len, 0);

	assert_int_equal(envelope_set_str(&f.env->mail_from, "alice@example.org"), 0);
	f.p.nrcpts = 0;
	error = NULL;
	assert_int_equal(dsn_compose(&f.p, &msg, &len, &error), -1);
	assert_non_null(error);
	f.p.nrcpts = 1;

	/* the spool file is shorter than the recorded end: only an error when
	 * the missing part is needed (RET=FULL), not for the header section */
	f.p.end += 10;
	assert_int_equal(dsn_compose(&f.p, &msg, &len, &error), 0);
	free(msg);
	f.env->ret = ENVELOPE_RET_FULL;
	error = NULL;
	assert_int_equal(dsn_compose(&f.p, &msg, &len, &error), -1);
	assert_int_equal(errno, EIO);
	assert_non_null(strstr(error, "shorter than recorded"));
	assert_null(msg);

	/* a bad descriptor */
	f.p.end -= 10;
	f.p.fd = 9999;
	assert_int_equal(dsn_compose(&f.p, &msg, &len, &error), -1);
	assert_int_equal(errno, EBADF);
	f.p.fd = -1;
	assert_int_equal(dsn_compose(&f.p, &msg, &len, &error), -1);
	assert_int_equal(errno, EINVAL);
	f.p.fd = f.fd;
	f.p.end = f.p.offset - 1;
	assert_int_equal(dsn_compose(&f.p, &msg, &len, &error), -1);
	assert_int_equal(errno, EINVAL);
	fixture_done(&f);

	/* no message at all (fd -1, empty extent) is fine */
	fixture_init(&f);
	close(f.fd);
	unlink(f.path);
	f.fd = -1;
	f.p.fd = -1;
	f.p.offset = f.p.end = 0;
	assert_int_equal(dsn_compose(&f.p, &msg, &len, &error), 0);
	check_wellformed(msg, len);
	free(msg);
	fixture_done(&f);
}

static void test_status_of_reply(void **state)
{
	char buf[16];
	(void)state;

	assert_string_equal(dsn_status_of_reply(550, "5.1.1", buf), "5.1.1");
	assert_ptr_equal(dsn_status_of_reply(550, "5.1.1", buf), buf);
	assert_string_equal(dsn_status_of_reply(552, "5.2.2", buf), "5.2.2");
	assert_string_equal(dsn_status_of_reply(421, "4.7.0", buf), "4.7.0");
	assert_string_equal(dsn_status_of_reply(250, "2.1.5", buf), "2.1.5");
	assert_string_equal(dsn_status_of_reply(550, "5.123.456", buf), "5.123.456");
	/* class disagrees with the reply code */
	assert_string_equal(dsn_status_of_reply(550, "4.1.1", buf), "5.0.0");
	assert_string_equal(dsn_status_of_reply(451, "5.1.1", buf), "4.0.0");
	/* none or malformed */
	assert_string_equal(dsn_status_of_reply(550, "", buf), "5.0.0");
	assert_string_equal(dsn_status_of_reply(550, NULL, buf), "5.0.0");
	assert_string_equal(dsn_status_of_reply(450, NULL, buf), "4.0.0");
	assert_string_equal(dsn_status_of_reply(250, NULL, buf), "2.0.0");
	assert_string_equal(dsn_status_of_reply(550, "5.1234.1", buf), "5.0.0");
	assert_string_equal(dsn_status_of_reply(550, "5.1.1x", buf), "5.0.0");
	assert_string_equal(dsn_status_of_reply(550, "5.1", buf), "5.0.0");
	assert_string_equal(dsn_status_of_reply(550, "5..1", buf), "5.0.0");
	assert_string_equal(dsn_status_of_reply(550, "3.1.1", buf), "5.0.0");
	assert_string_equal(dsn_status_of_reply(550, "5.1.1 ", buf), "5.0.0");
	/* codes outside 2xx..5xx */
	assert_string_equal(dsn_status_of_reply(354, "3.0.0", buf), "4.0.0");
	assert_string_equal(dsn_status_of_reply(999, "9.1.1", buf), "4.0.0");
	assert_string_equal(dsn_status_of_reply(0, "5.1.1", buf), "4.0.0");
}

static void test_dates_and_ids(void **state)
{
	struct fixture f;
	struct parsed m, m2;
	(void)state;

	fixture_init(&f);
	f.p.now = 951782400;            /* 29 Feb 2000, a leap day */
	f.env->received_at = 0;         /* unknown: no Arrival-Date */
	compose_ok(&f, &m);
	assert_field(m.head, "Date", "Tue, 29 Feb 2000 00:00:00 +0000");
	assert_field(m.blocks[0], "Arrival-Date", NULL);
	compose_ok(&f, &m2);
	/* two notices: different boundaries and Message-IDs */
	assert_string_not_equal(m.boundary, m2.boundary);
	char *a = field(m.head, "Message-ID"), *b = field(m2.head, "Message-ID");
	assert_string_not_equal(a, b);
	free(a);
	free(b);
	parsed_free(&m);
	parsed_free(&m2);

	/* a reporting host that cleans to nothing */
	f.p.reporting_mta = "\r\n";
	compose_ok(&f, &m);
	assert_field(m.blocks[0], "Reporting-MTA", "dns; localhost");
	parsed_free(&m);
	fixture_done(&f);
}

/* Random values from outside (any octet, any length up to 3000) in every
 * field, and random original messages: the notification is always well formed,
 * with one report block per recipient and no line a peer could have started. */
static void test_random_inputs(void **state)
{
	struct fixture f;
	struct parsed m;
	unsigned seed = 12345;
	static const char alphabet[] = "\r\n\t \0\x01\x7f\x80\xc2\x85\xc3\xa9\xff+;:=<>\"\\-.aZ9";
	char *vals[6];
	(void)state;

	fixture_init(&f);
	for (int iter = 0; iter < 300; iter++) {
		for (int v = 0; v < 6; v++) {
			seed = seed * 1103515245u + 12345u;
			size_t len = (seed >> 16) % (iter % 10 == 0 ? 3000 : 120);
			vals[v] = malloc(len + 1);
			assert_non_null(vals[v]);
			for (size_t i = 0; i < len; i++) {
				seed = seed * 1103515245u + 12345u;
				char c = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
				vals[v][i] = c == '\0' ? 'x' : c;
			}
			vals[v][len] = '\0';
		}
		f.rcpts[0] = (struct dsn_rcpt){ .address = vals[0], .orcpt = vals[1],
			.action = (enum dsn_action)(iter % 5), .status = vals[2],
			.remote_mta = vals[3], .diagnostic = iter % 3 == 0 ? NULL : vals[4],
			.explanation = vals[5], .last_attempt = ATTEMPT };
		f.rcpts[1] = (struct dsn_rcpt){ .address = vals[5], .action = DSN_DELAYED,
			.diagnostic = vals[0] };
		f.p.nrcpts = 2;
		f.env->smtputf8 = iter % 2 == 0;
		f.env->ret = (enum envelope_ret)(iter % 3);
		assert_int_equal(envelope_set_str(&f.env->envid, vals[4][0] != '\0' ? vals[4] : NULL), 0);
		assert_int_equal(envelope_set_str(&f.env->mail_from, vals[3][0] != '\0' ? vals[3] : "a@b"), 0);
		/* the message: random octets, NUL included */
		seed = seed * 1103515245u + 12345u;
		size_t mlen = (seed >> 16) % 4000;
		char *body = malloc(mlen + 1);
		assert_non_null(body);
		for (size_t i = 0; i < mlen; i++) {
			seed = seed * 1103515245u + 12345u;
			body[i] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
		}
		fixture_message(&f, body, mlen);
		compose_ok(&f, &m);
		assert_int_equal(m.nblocks, 3);
		/* each block: field lines and folds only */
		for (size_t b = 0; b < m.nblocks; b++)
			for (const char *p = m.blocks[b]; *p != '\0'; p = strstr(p, "\r\n") + 2)
				assert_true(*p == ' ' || starts_with(p, "Original-") ||
				    starts_with(p, "Reporting-MTA: ") || starts_with(p, "Arrival-Date: ") ||
				    starts_with(p, "Final-Recipient: ") || starts_with(p, "Action: ") ||
				    starts_with(p, "Status: ") || starts_with(p, "Remote-MTA: ") ||
				    starts_with(p, "Diagnostic-Code: ") ||
				    starts_with(p, "Last-Attempt-Date: ") ||
				    starts_with(p, "Will-Retry-Until: "));
		/* the top header: our fields only */
		for (const char *p = m.head; *p != '\0'; p = strstr(p, "\r\n") + 2)
			assert_true(*p == ' ' || *p == '\t' || starts_with(p, "From: ") ||
			    starts_with(p, "To: ") || starts_with(p, "Subject: ") ||
			    starts_with(p, "Date: ") || starts_with(p, "Message-ID: ") ||
			    starts_with(p, "MIME-Version: ") || starts_with(p, "Auto-Submitted: ") ||
			    starts_with(p, "Content-Type: ") ||
			    starts_with(p, "Content-Transfer-Encoding: "));
		parsed_free(&m);
		free(body);
		for (int v = 0; v < 6; v++)
			free(vals[v]);
	}
	fixture_done(&f);
}

/* ---------------------------------------------------------------- python */

static const char PY_CHECK[] =
	"import email, email.policy, sys\n"
	"m = email.message_from_bytes(open(sys.argv[1], 'rb').read(), policy=email.policy.default)\n"
	"glob = sys.argv[2] == 'global'\n"
	"assert m.get_content_type() == 'multipart/report', m.get_content_type()\n"
	"assert m.get_param('report-type') == ('global-delivery-status' if glob else 'delivery-status')\n"
	"assert not m.defects, m.defects\n"
	"parts = list(m.iter_parts())\n"
	"assert len(parts) == 3, len(parts)\n"
	"assert parts[0].get_content_type() == 'text/plain'\n"
	"assert 'This is the mail system at host mx.example.org.' in parts[0].get_content()\n"
	"st = parts[1]\n"
	"if glob:\n"
	"    assert st.get_content_type() == 'message/global-delivery-status'\n"
	"else:\n"
	"    assert st.get_content_type() == 'message/delivery-status'\n"
	"    blocks = st.get_payload()\n"
	"    assert len(blocks) == int(sys.argv[3]) + 1, len(blocks)\n"
	"    assert blocks[0]['Reporting-MTA'] == 'dns; mx.example.org'\n"
	"    r = blocks[1]\n"
	"    assert r['Final-Recipient'] == 'rfc822; bob@remote.test', r['Final-Recipient']\n"
	"    assert r['Action'] == sys.argv[4], r['Action']\n"
	"    assert r['Status'] == sys.argv[5], r['Status']\n"
	"    assert r['Original-Recipient'] == 'rfc822; bob+tag@remote.test'\n"
	"    assert str(r['Diagnostic-Code']).startswith('smtp; 550 5.1.1 ')\n"
	"    for b in blocks:\n"
	"        assert not b.defects, b.defects\n"
	"ret = parts[2].get_content_type()\n"
	"assert ret == sys.argv[6], ret\n"
	"if ret in ('message/rfc822', 'message/global'):\n"
	"    inner = parts[2].get_payload()[0]\n"
	"    assert inner['Message-ID'] == '<m1@example.org>'\n"
	"    assert 'the body.' in inner.get_content()\n";

static void python_check(struct fixture *f, const char *mode, const char *nrcpts,
    const char *action, const char *status, const char *ret_type)
{
	char *msg = NULL;
	size_t len = 0;
	const char *error = NULL;
	char path[] = "/tmp/test-dsn-py-XXXXXX", script[] = "/tmp/test-dsn-pyscript-XXXXXX";
	char cmd[512];

	assert_int_equal(dsn_compose(&f->p, &msg, &len, &error), 0);
	int fd = mkstemp(path), sfd = mkstemp(script);
	assert_true(fd >= 0 && sfd >= 0);
	assert_int_equal(write(fd, msg, len), (ssize_t)len);
	assert_int_equal(write(sfd, PY_CHECK, strlen(PY_CHECK)), (ssize_t)strlen(PY_CHECK));
	close(fd);
	close(sfd);
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s %s %s %s %s %s %s", script, path, mode,
	    nrcpts, action, status, ret_type);
	int rc = system(cmd);
	unlink(path);
	unlink(script);
	free(msg);
	assert_int_equal(rc, 0);
}

static void test_python_email(void **state)
{
	struct fixture f;
	(void)state;

	if (access("/usr/bin/python3", X_OK) != 0) {
		skip();
		return;
	}
	fixture_init(&f);
	assert_int_equal(envelope_set_str(&f.env->envid, "QQ314159"), 0);
	f.rcpts[0].orcpt = "rfc822;bob+2Btag@remote.test";
	f.rcpts[0].diagnostic = "550 5.1.1 a long reply that goes on and on and on, long enough "
	    "to be folded over more than one line of the report, which Python must unfold";
	f.rcpts[1] = (struct dsn_rcpt){ .address = "carol@slow.test", .action = DSN_DELAYED,
		.status = "4.4.1" };
	f.p.nrcpts = 2;
	python_check(&f, "plain", "2", "failed", "5.1.1", "text/rfc822-headers");
	f.env->ret = ENVELOPE_RET_FULL;
	python_check(&f, "plain", "2", "failed", "5.1.1", "message/rfc822");
	f.rcpts[0].action = DSN_DELAYED;
	f.rcpts[0].status = "4.2.0";
	f.rcpts[0].diagnostic = "550 5.1.1 x";
	python_check(&f, "plain", "2", "delayed", "4.2.0", "message/rfc822");
	f.env->smtputf8 = true;
	python_check(&f, "global", "2", "delayed", "4.2.0", "message/global");
	f.env->ret = ENVELOPE_RET_HDRS;
	python_check(&f, "global", "2", "delayed", "4.2.0", "message/global-headers");
	fixture_done(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failed_remote),
		cmocka_unit_test(test_delayed),
		cmocka_unit_test(test_relayed_and_delivered),
		cmocka_unit_test(test_envid_orcpt),
		cmocka_unit_test(test_ret_full_small),
		cmocka_unit_test(test_ret_full_limits),
		cmocka_unit_test(test_returned_headers_shapes),
		cmocka_unit_test(test_injection),
		cmocka_unit_test(test_long_values),
		cmocka_unit_test(test_8bit),
		cmocka_unit_test(test_smtputf8),
		cmocka_unit_test(test_many_recipients),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_status_of_reply),
		cmocka_unit_test(test_dates_and_ids),
		cmocka_unit_test(test_random_inputs),
		cmocka_unit_test(test_python_email),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
