/*
 * fuzz-dsn — the delivery status notification composer (dsn_compose) and
 * dsn_status_of_reply on arbitrary envelopes, remote replies and originals.
 * The input is a 17-octet head (flags: RET, SMTPUTF8, which optional values
 * are set; the number of recipients, 1-5; an action and a few flags per
 * recipient; a reply code; a time), then NUL-separated strings: reporting
 * MTA, sender, ENVID, prepend, and per recipient address, ORCPT, status or
 * enhanced code, remote MTA, diagnostic, explanation. What is left is the
 * original message, read from a memfd at an offset with bytes after its end.
 * The strings but the prepend are cut at ENVELOPE_MAX_STR (envelope_check()).
 *
 * Checks what dsn.h promises: failure only for the null sender, with a
 * sentence; *len_r octets then a NUL, none inside; CRLF lines only, none over
 * 998 octets; a top-level 8bit encoding when there are 8-bit octets; the
 * boundary exactly at the three part delimiters and the close; everything
 * before part 3 ASCII, or valid UTF-8 under SMTPUTF8. dsn_status_of_reply
 * gives "c.d.d" whose class matches a 2xx/4xx/5xx code.
 */
#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "queue/dsn.h"
#include "queue/envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEAD 17
#define RCPTS_MAX 5
#define NFIELDS (4 + 6 * RCPTS_MAX)

/* Valid UTF-8 (RFC 3629: no overlong forms, surrogates or past U+10FFFF). */
static bool
utf8_valid(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		size_t k = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 :
		    c >= 0xf0 && c <= 0xf4 ? 4 : 0;
		if (k == 0 || i + k > n)
			return false;
		for (size_t j = 1; j < k; j++)
			if ((p[i + j] & 0xc0) != 0x80)
				return false;
		if ((c == 0xe0 && p[i + 1] < 0xa0) || (c == 0xed && p[i + 1] > 0x9f) ||
		    (c == 0xf0 && p[i + 1] < 0x90) || (c == 0xf4 && p[i + 1] > 0x8f))
			return false;
		i += k;
	}
	return true;
}

static void
check_status(const char *s, unsigned code)
{
	size_t n = strlen(s);
	assert(n >= 5 && n < 16);
	assert((s[0] == '2' || s[0] == '4' || s[0] == '5') && s[1] == '.');
	if (code >= 200 && code < 600 && code / 100 != 3)
		assert((unsigned)(s[0] - '0') == code / 100);
}

static void
check_message(const char *msg, size_t len, bool utf8)
{
	assert(msg != NULL && msg[len] == '\0' && strlen(msg) == len);
	assert(len >= 2 && msg[len - 2] == '\r' && msg[len - 1] == '\n');
	for (size_t i = 0, col = 0; i < len; i++) {
		if (msg[i] == '\r') {
			assert(i + 1 < len && msg[i + 1] == '\n');
			assert(col <= 998);
			col = 0;
			i++;
		} else {
			assert(msg[i] != '\n');
			col++;
		}
	}
	const char *hend = strstr(msg, "\r\n\r\n");
	assert(hend != NULL);
	/* The sender in To: may hold boundary="; the parameter starts a line. */
	const char *b = strstr(msg, "\r\n\tboundary=\"");
	assert(b != NULL && b < hend);
	b += strlen("\r\n\tboundary=\"");
	char delim[80] = "--";
	size_t blen = strcspn(b, "\"");
	assert(blen > 0 && blen + 3 < sizeof(delim));
	memcpy(delim + 2, b, blen);
	delim[2 + blen] = '\0';
	/* The delimiters of parts 1-3, then the close delimiter at the end. */
	const char *at[4], *p = msg;
	size_t count = 0;
	while ((p = strstr(p, delim)) != NULL) {
		assert(count < 4 && p[-1] == '\n');
		at[count++] = p++;
	}
	assert(count == 4);
	assert(strcmp(at[3] + 2 + blen, "--\r\n") == 0);
	size_t pre3 = (size_t)(at[2] - msg);
	if (utf8)
		assert(utf8_valid((const unsigned char *)msg, pre3));
	else
		assert(!dsn_has_8bit(msg, pre3));
	if (dsn_has_8bit(msg, len)) {
		const char *cte = strstr(msg, "\r\nContent-Transfer-Encoding: 8bit\r\n");
		assert(cte != NULL && cte < hend);
	}
}

static char *
field(const uint8_t **p, const uint8_t *end, size_t max)
{
	const uint8_t *nul = *p < end ? memchr(*p, '\0', (size_t)(end - *p)) : NULL;
	size_t n = nul != NULL ? (size_t)(nul - *p) : (size_t)(end - *p);
	char *s = malloc(n + 1);
	if (s == NULL)
		abort();
	memcpy(s, *p, n);
	s[n < max ? n : max] = '\0';
	*p = nul != NULL ? nul + 1 : end;
	return s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	char *f[NFIELDS], status[RCPTS_MAX][16];
	struct dsn_rcpt rcpts[RCPTS_MAX];
	struct envelope env;
	int64_t t;

	if (size < HEAD)
		return 0;
	if (fd < 0 && (fd = memfd_create("fuzz-dsn", MFD_CLOEXEC)) < 0)
		abort();
	uint8_t flags = data[0];
	size_t nrcpts = 1 + data[1] % RCPTS_MAX;
	unsigned code = (unsigned)(data[7] | data[8] << 8) % 1000;
	memcpy(&t, data + 9, sizeof(t));
	const uint8_t *p = data + HEAD, *end = data + size;
	for (size_t i = 0; i < 4 + 6 * nrcpts; i++)
		f[i] = field(&p, end, i == 3 ? SIZE_MAX : ENVELOPE_MAX_STR);

	memset(&env, 0, sizeof(env));
	env.mail_from = f[1];
	env.envid = flags & 0x40 ? NULL : f[2];
	env.ret = (enum envelope_ret)(flags % 3);
	env.smtputf8 = flags & 0x04;
	env.received_at = flags & 0x08 ? t / 2 : 0;
	for (size_t i = 0; i < nrcpts; i++) {
		uint8_t b = data[2 + i];
		char **rf = f + 4 + 6 * i;
		rcpts[i] = (struct dsn_rcpt){
			.address = rf[0],
			.orcpt = b & 0x08 ? rf[1] : NULL,
			.action = (enum dsn_action)(b % 5),
			.status = b & 0x80 ? dsn_status_of_reply(code, rf[2], status[i]) : rf[2],
			.remote_mta = b & 0x10 ? rf[3] : NULL,
			.diagnostic = b & 0x20 ? rf[4] : NULL,
			.explanation = b & 0x40 ? rf[5] : NULL,
			.last_attempt = flags & 0x80 ? t / 2 + (int64_t)i : 0,
		};
		if (b & 0x80)
			check_status(status[i], code);
	}

	/* The original at an offset, with other bytes before and after it. */
	off_t offset = data[1] / RCPTS_MAX % 32;
	size_t mlen = (size_t)(end - p);
	static const char junk[] = "junk before and after\r\n\0\r";
	if (ftruncate(fd, 0) < 0 || pwrite(fd, junk, sizeof(junk), 0) != (ssize_t)sizeof(junk) ||
	    (mlen > 0 && pwrite(fd, p, mlen, offset) != (ssize_t)mlen) ||
	    pwrite(fd, junk, sizeof(junk), offset + (off_t)mlen) != (ssize_t)sizeof(junk))
		abort();

	struct dsn_params dp = {
		.reporting_mta = f[0],
		.env = &env,
		.rcpts = rcpts,
		.nrcpts = nrcpts,
		.now = t,
		.retry_until = flags & 0x10 ? t - t / 4 : 0,
		.fd = fd,
		.offset = offset,
		.end = offset + (off_t)mlen,
		.prepend = flags & 0x20 ? NULL : f[3],
		.prepend_len = flags & 0x20 ? 0 : strlen(f[3]),
	};
	char *msg = NULL;
	size_t len = 0;
	const char *error = NULL;
	int rc = dsn_compose(&dp, &msg, &len, &error);
	if (rc < 0) {
		assert(env.mail_from[0] == '\0' && error != NULL && msg == NULL);
	} else {
		assert(rc == 0 && env.mail_from[0] != '\0');
		check_message(msg, len, env.smtputf8);
	}
	free(msg);
	for (size_t i = 0; i < 4 + 6 * nrcpts; i++)
		free(f[i]);
	return 0;
}
