/*
 * Unit tests for envelope: construction, envelope_check, and the IPC encoding,
 * including every truncation and byte mutation of an encoded envelope.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "lib/wire.h"
#include "queue/envelope.h"

static struct envelope *
make_envelope(void)
{
	struct envelope *e = envelope_new();
	assert_non_null(e);
	assert_int_equal(envelope_set_str(&e->id, "0006157a3b2c4d5e9f8a7b6c"), 0);
	assert_int_equal(envelope_set_str(&e->mail_from, "alice@example.org"), 0);
	e->body = ENVELOPE_BODY_8BITMIME;
	e->smtputf8 = true;
	e->ret = ENVELOPE_RET_HDRS;
	assert_int_equal(envelope_set_str(&e->envid, "QQ314159"), 0);
	e->size_declared = 123456;
	assert_int_equal(envelope_set_str(&e->helo, "client.example.org"), 0);
	assert_int_equal(envelope_set_str(&e->client_addr, "2001:db8::7"), 0);
	e->client_port = 54321;
	assert_int_equal(envelope_set_str(&e->listener, "submission"), 0);
	assert_int_equal(envelope_set_str(&e->auth_user, "alice@example.org"), 0);
	e->received_at = 1712345678;
	assert_int_equal(envelope_add_rcpt(e, "bob@example.org", "bob@example.org",
	    "rfc822;bob@example.org", ENVELOPE_NOTIFY_SUCCESS | ENVELOPE_NOTIFY_FAILURE), 0);
	assert_int_equal(envelope_add_rcpt(e, "list@example.org", "carol@example.org", NULL, 0), 0);
	assert_int_equal(envelope_add_rcpt(e, "list@example.org", "dave@example.org", NULL, 0), 0);
	assert_int_equal(envelope_add_rcpt(e, "\xc3\xa9t\xc3\xa9@example.net", NULL, NULL,
	    ENVELOPE_NOTIFY_NEVER), 0);
	e->rcpts[2].status = ENVELOPE_RCPT_DONE;
	return e;
}

static void
assert_str_eq_or_null(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void
assert_envelopes_equal(const struct envelope *a, const struct envelope *b)
{
	assert_str_eq_or_null(a->id, b->id);
	assert_string_equal(a->mail_from, b->mail_from);
	assert_int_equal(a->body, b->body);
	assert_int_equal(a->smtputf8, b->smtputf8);
	assert_int_equal(a->ret, b->ret);
	assert_str_eq_or_null(a->envid, b->envid);
	assert_int_equal(a->size_declared, b->size_declared);
	assert_string_equal(a->helo, b->helo);
	assert_string_equal(a->client_addr, b->client_addr);
	assert_int_equal(a->client_port, b->client_port);
	assert_string_equal(a->listener, b->listener);
	assert_str_eq_or_null(a->auth_user, b->auth_user);
	assert_int_equal(a->received_at, b->received_at);
	assert_int_equal(a->rcpt_count, b->rcpt_count);
	for (size_t i = 0; i < a->rcpt_count; i++) {
		assert_string_equal(a->rcpts[i].address, b->rcpts[i].address);
		assert_str_eq_or_null(a->rcpts[i].mailbox, b->rcpts[i].mailbox);
		assert_str_eq_or_null(a->rcpts[i].orcpt, b->rcpts[i].orcpt);
		assert_int_equal(a->rcpts[i].notify, b->rcpts[i].notify);
		assert_int_equal(a->rcpts[i].status, b->rcpts[i].status);
	}
}

/* Encodes e into a heap block of exactly its size (ASan catches over-reads). */
static uint8_t *
encode(const struct envelope *e, size_t *len_r)
{
	struct evbuffer *b = evbuffer_new();
	assert_non_null(b);
	envelope_wire_put(b, e);
	*len_r = evbuffer_get_length(b);
	uint8_t *data = malloc(*len_r);
	assert_non_null(data);
	evbuffer_remove(b, data, *len_r);
	evbuffer_free(b);
	return data;
}

/* 0 and *e_r when data decodes completely, else -1. */
static int
decode(const uint8_t *data, size_t len, struct envelope **e_r)
{
	struct wire_reader r;
	const char *error = NULL;
	uint8_t *copy = malloc(len > 0 ? len : 1);
	assert_non_null(copy);
	memcpy(copy, data, len);
	wire_reader_init(&r, copy, len);
	int ret = envelope_wire_get(&r, e_r);
	if (ret == 0 && wire_reader_finish(&r, &error) < 0) {
		assert_non_null(error);
		envelope_free(e_r);
		ret = -1;
	}
	if (ret < 0) {
		assert_null(*e_r);
		assert_true(r.bad || r.left != 0);
	}
	free(copy);
	return ret;
}

static void
test_new_defaults(void **state)
{
	(void)state;
	struct envelope *e = envelope_new();
	const char *error;
	assert_non_null(e);
	assert_null(e->id);
	assert_string_equal(e->mail_from, "");
	assert_string_equal(e->helo, "");
	assert_null(e->envid);
	assert_null(e->auth_user);
	assert_int_equal(e->rcpt_count, 0);
	assert_int_equal(envelope_check(e, &error), 0);
	envelope_free(&e);
	assert_null(e);
	envelope_free(&e);
	envelope_free(NULL);
}

static void
test_roundtrip(void **state)
{
	(void)state;
	struct envelope *e = make_envelope(), *d = NULL;
	size_t len;
	uint8_t *data = encode(e, &len);
	assert_int_equal(decode(data, len, &d), 0);
	assert_envelopes_equal(e, d);
	assert_int_equal(d->rcpts[0].status_offset, -1);
	envelope_free(&d);
	free(data);

	/* Optional fields absent, null sender, no recipients. */
	struct envelope *m = envelope_new();
	data = encode(m, &len);
	assert_int_equal(decode(data, len, &d), 0);
	assert_envelopes_equal(m, d);
	envelope_free(&d);
	envelope_free(&m);
	free(data);
	envelope_free(&e);
}

static void
test_truncated_every_length(void **state)
{
	(void)state;
	struct envelope *e = make_envelope(), *d = NULL;
	size_t len;
	uint8_t *data = encode(e, &len);
	for (size_t n = 0; n < len; n++)
		assert_int_equal(decode(data, n, &d), -1);
	/* Trailing garbage is refused too. */
	uint8_t *more = malloc(len + 1);
	memcpy(more, data, len);
	more[len] = 0;
	assert_int_equal(decode(more, len + 1, &d), -1);
	free(more);
	free(data);
	envelope_free(&e);
}

static void
test_mutated_every_byte(void **state)
{
	(void)state;
	static const uint8_t values[] = { 0x00, 0x01, 0x0a, 0x20, 0x7f, 0x80, 0xff };
	struct envelope *e = make_envelope(), *d = NULL;
	const char *error;
	size_t len;
	uint8_t *data = encode(e, &len);
	for (size_t i = 0; i < len; i++) {
		uint8_t saved = data[i];
		for (size_t v = 0; v < sizeof(values); v++) {
			data[i] = values[v];
			if (decode(data, len, &d) == 0) {
				/* Whatever decodes satisfies every invariant. */
				assert_int_equal(envelope_check(d, &error), 0);
				envelope_free(&d);
			}
		}
		data[i] = saved;
	}
	free(data);
	envelope_free(&e);
}

static void
test_random_garbage(void **state)
{
	(void)state;
	uint8_t buf[256];
	struct envelope *d = NULL;
	unsigned seed = 12345;
	for (int round = 0; round < 20000; round++) {
		size_t len = (size_t)(rand_r(&seed) % (int)sizeof(buf));
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)rand_r(&seed);
		/* Make small counts and lengths likely so that decoding goes deep. */
		for (size_t i = 3; i < len; i += 4 + (size_t)(rand_r(&seed) % 9))
			buf[i] = 0;
		if (decode(buf, len, &d) == 0)
			envelope_free(&d);
	}
}

/* Encodes e, which must violate an invariant, and checks that it is refused. */
static void
assert_refused(struct envelope *e)
{
	const char *error = NULL;
	struct envelope *d = NULL;
	size_t len;
	assert_int_equal(envelope_check(e, &error), -1);
	assert_non_null(error);
	uint8_t *data = encode(e, &len);
	assert_int_equal(decode(data, len, &d), -1);
	free(data);
	envelope_free(&e);
}

static void
test_invariants(void **state)
{
	(void)state;
	struct envelope *e;
	char *big = malloc(ENVELOPE_MAX_STR + 2);
	memset(big, 'a', ENVELOPE_MAX_STR + 1);
	big[ENVELOPE_MAX_STR + 1] = '\0';

	e = make_envelope(); e->helo[3] = '\r'; assert_refused(e);
	e = make_envelope(); e->mail_from[0] = 0x7f; assert_refused(e);
	e = make_envelope(); e->rcpts[1].mailbox[2] = '\n'; assert_refused(e);
	e = make_envelope(); envelope_set_str(&e->envid, big); assert_refused(e);
	e = make_envelope(); envelope_set_str(&e->rcpts[0].address, ""); assert_refused(e);
	e = make_envelope(); envelope_set_str(&e->rcpts[0].mailbox, ""); assert_refused(e);
	e = make_envelope(); envelope_set_str(&e->id, "../etc"); assert_refused(e);
	e = make_envelope(); e->rcpts[0].notify = ENVELOPE_NOTIFY_NEVER | ENVELOPE_NOTIFY_DELAY; assert_refused(e);
	e = make_envelope(); e->rcpts[0].notify = 0x10; assert_refused(e);
	e = make_envelope(); e->rcpts[0].status = 3; assert_refused(e);
	e = make_envelope(); e->body = 2; assert_refused(e);
	e = make_envelope(); e->ret = 3; assert_refused(e);
	e = make_envelope(); e->received_at = -1; assert_refused(e);

	/* Exactly ENVELOPE_MAX_STR bytes is fine. */
	e = make_envelope();
	big[ENVELOPE_MAX_STR] = '\0';
	envelope_set_str(&e->envid, big);
	const char *error;
	assert_int_equal(envelope_check(e, &error), 0);
	envelope_free(&e);
	free(big);
}

static void
test_rcpt_limit(void **state)
{
	(void)state;
	struct envelope *e = envelope_new(), *d = NULL;
	for (int i = 0; i < ENVELOPE_MAX_RCPTS; i++)
		assert_int_equal(envelope_add_rcpt(e, "a@b", "a@b", NULL, 0), 0);
	assert_int_equal(envelope_add_rcpt(e, "a@b", NULL, NULL, 0), -1);
	assert_int_equal(e->rcpt_count, ENVELOPE_MAX_RCPTS);
	assert_int_equal(envelope_pending_count(e), ENVELOPE_MAX_RCPTS);
	e->rcpts[5].status = ENVELOPE_RCPT_FAILED;
	assert_int_equal(envelope_pending_count(e), ENVELOPE_MAX_RCPTS - 1);

	size_t len;
	uint8_t *data = encode(e, &len);
	assert_int_equal(decode(data, len, &d), 0);
	assert_int_equal(d->rcpt_count, ENVELOPE_MAX_RCPTS);
	envelope_free(&d);
	free(data);

	/* One more recipient than allowed on the wire: refused by count. */
	struct evbuffer *b = evbuffer_new();
	e->rcpt_count = 1;
	envelope_wire_put(b, e);
	size_t n = evbuffer_get_length(b);
	data = malloc(n);
	evbuffer_remove(b, data, n);
	/* The count is the u32 just before the one recipient's encoding. */
	size_t rcpt_len = 4 + 4 + 4 + 4 + 4 + 1 + 1; /* "a@b", "a@b", NULL, u8, u8 */
	size_t at = n - rcpt_len - 4;
	assert_int_equal(data[at], 1);
	data[at] = (uint8_t)((ENVELOPE_MAX_RCPTS + 1) & 0xff);
	data[at + 1] = (uint8_t)((ENVELOPE_MAX_RCPTS + 1) >> 8);
	assert_int_equal(decode(data, n, &d), -1);
	/* A large but allowed count with too few bytes behind it. */
	data[at] = (uint8_t)(5000 & 0xff);
	data[at + 1] = (uint8_t)(5000 >> 8);
	assert_int_equal(decode(data, n, &d), -1);
	free(data);
	evbuffer_free(b);
	e->rcpt_count = ENVELOPE_MAX_RCPTS;
	envelope_free(&e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_defaults),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_truncated_every_length),
		cmocka_unit_test(test_mutated_every_byte),
		cmocka_unit_test(test_random_garbage),
		cmocka_unit_test(test_invariants),
		cmocka_unit_test(test_rcpt_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
