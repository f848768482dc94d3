/* sasl — see sasl.h; how mechanisms plug in: sasl-private.h. */
#include "sasl/sasl.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "sasl/sasl-base64.h"
#include "sasl/sasl-private.h"

/* The mechanisms, in the order they are advertised (strongest first once more
 * join: clients tend to pick the first one they know). */
static const struct sasl_mech mechs[] = {
	{ "PLAIN", SASL_MECH_PLAINTEXT, &sasl_plain_ops },
	{ "LOGIN", SASL_MECH_PLAINTEXT, &sasl_login_ops },
};
#define MECH_COUNT (sizeof(mechs) / sizeof(mechs[0]))

/* The largest decoded response: the base64 of SASL_RESPONSE_MAX characters. */
#define DECODED_MAX SASL_BASE64_DECODED_MAX(SASL_RESPONSE_MAX)

enum exchange_phase {
	PHASE_RUNNING,    /* waiting for a client response (or the first step) */
	PHASE_FORWARDING, /* waiting for the auth process's answer */
	PHASE_DONE,
	PHASE_FAILED,
	PHASE_WIPED, /* sasl_exchange_wipe ran: only free is allowed */
};

struct sasl_exchange {
	const struct sasl_mech *mech;
	void *state; /* mech->ops->state_size bytes, wiped on failure and free */
	enum exchange_phase phase;
	bool started; /* the first (initial) step has been taken */
	bool wiped;   /* the state holds nothing any more (after a failure) */
	struct sasl_credentials creds;
	const unsigned char *blob; /* SASL_FORWARD */
	size_t blob_len;
	char challenge[SASL_CHALLENGE_MAX + 1];
	/* The decoded response, wiped as soon as the mechanism has seen it. */
	unsigned char decoded[DECODED_MAX];
};

/* ASCII-only case folding: strncasecmp follows the locale, and a protocol
 * keyword must not (in some locales "I" does not fold to "i"). */
static bool
ascii_case_equal(const char *upper, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 'a' && c <= 'z')
			c = (unsigned char)(c - 'a' + 'A');
		if (c != (unsigned char)upper[i])
			return false;
	}
	return true;
}

const struct sasl_mech *
sasl_mech_find(const char *name, size_t len)
{
	for (size_t i = 0; i < MECH_COUNT; i++) {
		const char *n = mechs[i].name;

		if (strlen(n) == len && ascii_case_equal(n, name, len))
			return &mechs[i];
	}
	return NULL;
}

const char *
sasl_mech_name(const struct sasl_mech *m)
{
	return m->name;
}

bool
sasl_mech_plaintext(const struct sasl_mech *m)
{
	return (m->flags & SASL_MECH_PLAINTEXT) != 0;
}

/* RFC 4422 §3.1 names are at most 20 characters, plus a separating space. */
static char list_all[MECH_COUNT * 21 + 1], list_safe[MECH_COUNT * 21 + 1];
static pthread_once_t list_once = PTHREAD_ONCE_INIT;

static void
list_append(char *list, const char *name)
{
	size_t used = strlen(list), n = strlen(name);

	assert(n >= 1 && n <= 20);
	if (used > 0)
		list[used++] = ' ';
	memcpy(list + used, name, n + 1);
}

static void
list_build(void)
{
	for (size_t i = 0; i < MECH_COUNT; i++) {
		list_append(list_all, mechs[i].name);
		if (!sasl_mech_plaintext(&mechs[i]))
			list_append(list_safe, mechs[i].name);
	}
}

const char *
sasl_mech_list(bool plaintext_ok)
{
	pthread_once(&list_once, list_build);
	return plaintext_ok ? list_all : list_safe;
}

const char *
sasl_fail_reason(enum sasl_fail fail)
{
	switch (fail) {
	case SASL_FAIL_NONE:
		return "The authentication exchange has not failed.";
	case SASL_FAIL_CANCELLED:
		return "The client cancelled the authentication exchange.";
	case SASL_FAIL_BAD_BASE64:
		return "The client's authentication response is not valid base64.";
	case SASL_FAIL_MALFORMED:
		return "The client's authentication response does not follow the mechanism's syntax.";
	case SASL_FAIL_TOO_LONG:
		return "The client's authentication response is longer than 12288 octets.";
	}
	return "The authentication exchange failed for an unknown reason.";
}

/* RFC 3629 §4 (the UTF8-octets grammar), one character at a time. */
bool
sasl_utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned c = s[i];
		size_t n;
		unsigned lo = 0x80, hi = 0xbf; /* bounds of the second octet */

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 2;
		else if (c >= 0xe0 && c <= 0xef) {
			n = 3;
			if (c == 0xe0)
				lo = 0xa0; /* overlong */
			else if (c == 0xed)
				hi = 0x9f; /* surrogates U+D800–U+DFFF */
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 4;
			if (c == 0xf0)
				lo = 0x90; /* overlong */
			else if (c == 0xf4)
				hi = 0x8f; /* above U+10FFFF */
		} else
			return false; /* continuation octet, C0, C1, F5–FF */
		if (len - i < n || s[i + 1] < lo || s[i + 1] > hi)
			return false;
		for (size_t k = 2; k < n; k++) {
			if (s[i + k] < 0x80 || s[i + k] > 0xbf)
				return false;
		}
		i += n;
	}
	return true;
}

struct sasl_exchange *
sasl_exchange_new(const struct sasl_mech *m)
{
	struct sasl_exchange *x = calloc(1, sizeof(*x));

	if (x == NULL)
		return NULL;
	x->mech = m;
	x->state = calloc(1, m->ops->state_size > 0 ? m->ops->state_size : 1);
	if (x->state == NULL) {
		free(x);
		return NULL;
	}
	x->phase = PHASE_RUNNING;
	return x;
}

const struct sasl_mech *
sasl_exchange_mech(const struct sasl_exchange *x)
{
	return x->mech;
}

/* Wipes the mechanism's state (releasing what it owns) and the decode buffer;
 * the state block stays allocated, all zero, until free. */
static void
exchange_wipe_state(struct sasl_exchange *x)
{
	if (x->wiped)
		return;
	x->wiped = true;
	if (x->mech->ops->free != NULL)
		x->mech->ops->free(x->state);
	sodium_memzero(x->state, x->mech->ops->state_size);
	sodium_memzero(x->decoded, sizeof(x->decoded));
	memset(&x->creds, 0, sizeof(x->creds));
	x->blob = NULL;
	x->blob_len = 0;
}

static enum sasl_status
exchange_fail(struct sasl_exchange *x, enum sasl_fail fail, enum sasl_fail *fail_r)
{
	assert(fail != SASL_FAIL_NONE);
	exchange_wipe_state(x);
	x->phase = PHASE_FAILED;
	*fail_r = fail;
	return SASL_FAIL;
}

/* Takes what the mechanism returned and moves the exchange on. */
static enum sasl_status
exchange_result(struct sasl_exchange *x, enum sasl_status status,
		const struct sasl_mech_out *out, const char **challenge_r, enum sasl_fail *fail_r)
{
	switch (status) {
	case SASL_CONTINUE:
		assert(out->len <= SASL_CHALLENGE_RAW_MAX);
		if (sasl_base64_encode(out->len > 0 ? out->data : (const unsigned char *)"",
				       out->len, x->challenge, sizeof(x->challenge)) < 0)
			assert(!"challenge does not fit");
		x->phase = PHASE_RUNNING;
		*challenge_r = x->challenge;
		return SASL_CONTINUE;
	case SASL_DONE:
		assert(out->creds.authzid != NULL && out->creds.authcid != NULL);
		assert(out->creds.secret != NULL || out->creds.secret_len == 0);
		x->creds = out->creds;
		x->phase = PHASE_DONE;
		return SASL_DONE;
	case SASL_FORWARD:
		assert(x->mech->ops->answer != NULL);
		x->blob = out->data;
		x->blob_len = out->len;
		x->phase = PHASE_FORWARDING;
		return SASL_FORWARD;
	case SASL_FAIL:
		assert(*fail_r != SASL_FAIL_NONE);
		return exchange_fail(x, *fail_r != SASL_FAIL_NONE ? *fail_r : SASL_FAIL_MALFORMED,
				     fail_r);
	}
	assert(!"unknown mechanism status");
	return exchange_fail(x, SASL_FAIL_MALFORMED, fail_r);
}

enum sasl_status
sasl_exchange_step(struct sasl_exchange *x, const char *in, size_t len, bool initial,
		   const char **challenge_r, enum sasl_fail *fail_r)
{
	struct sasl_mech_out out = { 0 };
	enum sasl_status status;
	bool have_input = true;
	size_t n = 0;

	assert(x->phase == PHASE_RUNNING);
	assert(initial == !x->started);
	assert(in != NULL || len == 0);
	x->started = true;
	*challenge_r = NULL;
	*fail_r = SASL_FAIL_NONE;

	/* RFC 4954 §4: 12288 octets is what a server must accept; a longer response
	 * gets 500 5.5.6 (§6) without being looked at. */
	if (len > SASL_RESPONSE_MAX)
		return exchange_fail(x, SASL_FAIL_TOO_LONG, fail_r);
	if (initial) {
		/* RFC 4954 §4: no initial response at all, or "=" for an empty one.
		 * "*" is no cancellation here, just bad base64. */
		if (len == 0)
			have_input = false;
		else if (!(len == 1 && in[0] == '=') &&
			 sasl_base64_decode(in, len, x->decoded, sizeof(x->decoded), &n) < 0)
			return exchange_fail(x, SASL_FAIL_BAD_BASE64, fail_r);
	} else {
		/* RFC 4954 §4: a line of a single "*" cancels the exchange; an empty
		 * line is an empty response (it decodes to nothing). */
		if (len == 1 && in[0] == '*')
			return exchange_fail(x, SASL_FAIL_CANCELLED, fail_r);
		if (sasl_base64_decode(in, len, x->decoded, sizeof(x->decoded), &n) < 0)
			return exchange_fail(x, SASL_FAIL_BAD_BASE64, fail_r);
	}

	status = x->mech->ops->step(x->state, x->decoded, n, have_input, &out, fail_r);
	sodium_memzero(x->decoded, n);
	return exchange_result(x, status, &out, challenge_r, fail_r);
}

const void *
sasl_exchange_forward_blob(const struct sasl_exchange *x, size_t *len_r)
{
	assert(x->phase == PHASE_FORWARDING);
	*len_r = x->blob_len;
	return x->blob;
}

enum sasl_status
sasl_exchange_answer(struct sasl_exchange *x, const void *data, size_t len,
		     const char **challenge_r, enum sasl_fail *fail_r)
{
	struct sasl_mech_out out = { 0 };
	enum sasl_status status;

	assert(x->phase == PHASE_FORWARDING);
	assert(data != NULL || len == 0);
	*challenge_r = NULL;
	*fail_r = SASL_FAIL_NONE;
	x->blob = NULL;
	x->blob_len = 0;
	status = x->mech->ops->answer(x->state, data, len, &out, fail_r);
	return exchange_result(x, status, &out, challenge_r, fail_r);
}

const struct sasl_credentials *
sasl_exchange_credentials(const struct sasl_exchange *x)
{
	return x->phase == PHASE_DONE ? &x->creds : NULL;
}

void
sasl_exchange_wipe(struct sasl_exchange *x)
{
	exchange_wipe_state(x);
	x->phase = PHASE_WIPED;
}

bool
sasl_exchange_decoded_zero(const struct sasl_exchange *x)
{
	return sodium_is_zero(x->decoded, sizeof(x->decoded)) != 0;
}

bool
sasl_exchange_state_zero(const struct sasl_exchange *x)
{
	size_t size = x->mech->ops->state_size;

	return size == 0 || sodium_is_zero(x->state, size) != 0;
}

void
sasl_exchange_free(struct sasl_exchange **xp)
{
	struct sasl_exchange *x = xp != NULL ? *xp : NULL;

	if (x == NULL)
		return;
	*xp = NULL;
	sasl_exchange_wipe(x);
	free(x->state);
	sodium_memzero(x, sizeof(*x));
	free(x);
}
