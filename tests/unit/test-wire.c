/* Unit tests for lib/wire: round trips, and every truncation of a valid payload fails cleanly. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include <event2/buffer.h>

#include "lib/wire.h"

static size_t
encode_sample(struct evbuffer *b)
{
	wire_put_u8(b, 7);
	wire_put_u32(b, 0xdeadbeef);
	wire_put_u64(b, 0x0123456789abcdefULL);
	wire_put_str(b, "hello");
	wire_put_str(b, NULL);
	wire_put_str(b, "");
	wire_put_blob(b, "\0\1\2", 3);
	return evbuffer_get_length(b);
}

static int
decode_sample(const void *p, size_t len)
{
	struct wire_reader r;
	const char *error;
	size_t blen;
	wire_reader_init(&r, p, len);
	uint8_t a = wire_get_u8(&r);
	uint32_t b = wire_get_u32(&r);
	uint64_t c = wire_get_u64(&r);
	const char *s1 = wire_get_str(&r);
	const char *s2 = wire_get_str(&r);
	const char *s3 = wire_get_str_nn(&r);
	const uint8_t *blob = wire_get_blob(&r, &blen);
	if (wire_reader_finish(&r, &error) < 0)
		return -1;
	assert_int_equal(a, 7);
	assert_int_equal(b, 0xdeadbeef);
	assert_true(c == 0x0123456789abcdefULL);
	assert_string_equal(s1, "hello");
	assert_null(s2);
	assert_string_equal(s3, "");
	assert_int_equal(blen, 3);
	assert_int_equal(blob[2], 2);
	return 0;
}

static void
test_round_trip(void **state)
{
	struct evbuffer *b = evbuffer_new();
	size_t len = encode_sample(b);
	assert_int_equal(decode_sample(evbuffer_pullup(b, -1), len), 0);
	evbuffer_free(b);
}

static void
test_every_truncation_fails(void **state)
{
	struct evbuffer *b = evbuffer_new();
	size_t len = encode_sample(b);
	const uint8_t *p = evbuffer_pullup(b, -1);
	for (size_t n = 0; n < len; n++)
		assert_int_equal(decode_sample(p, n), -1);
	evbuffer_free(b);
}

static void
test_trailing_bytes_fail(void **state)
{
	struct evbuffer *b = evbuffer_new();
	size_t len = encode_sample(b);
	wire_put_u8(b, 0);
	assert_int_equal(decode_sample(evbuffer_pullup(b, -1), len + 1), -1);
	evbuffer_free(b);
}

static void
test_string_with_embedded_nul_or_no_terminator_fails(void **state)
{
	/* length 3: "a\0b" has an embedded NUL; "abc" lacks the terminator */
	const uint8_t embedded[] = { 3, 0, 0, 0, 'a', 0, 'b' };
	const uint8_t unterminated[] = { 3, 0, 0, 0, 'a', 'b', 'c' };
	struct wire_reader r;
	const char *error;
	wire_reader_init(&r, embedded, sizeof(embedded));
	assert_null(wire_get_str(&r));
	assert_int_equal(wire_reader_finish(&r, &error), -1);
	wire_reader_init(&r, unterminated, sizeof(unterminated));
	assert_null(wire_get_str(&r));
	assert_int_equal(wire_reader_finish(&r, &error), -1);
}

static void
test_count_bound(void **state)
{
	const uint8_t big[] = { 0xff, 0xff, 0xff, 0x7f };
	struct wire_reader r;
	const char *error;
	wire_reader_init(&r, big, sizeof(big));
	assert_int_equal(wire_get_count(&r, 1000), 0);
	assert_int_equal(wire_reader_finish(&r, &error), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_every_truncation_fails),
		cmocka_unit_test(test_trailing_bytes_fail),
		cmocka_unit_test(test_string_with_embedded_nul_or_no_terminator_fails),
		cmocka_unit_test(test_count_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
