/*
 * sasl-plain — the PLAIN mechanism (RFC 4616), server side.
 *
 * One message from the client, either as the initial response or in answer to an
 * empty challenge (RFC 4616 §2; RFC 4422 §5):
 *   message = [authzid] UTF8NUL authcid UTF8NUL passwd
 * authcid and passwd are 1–255 octets, authzid 0–255 (empty means none,
 * RFC 4616 §2), none holds a NUL, and all three are UTF-8 (RFC 3629). Anything
 * else is SASL_FAIL_MALFORMED. No SASLprep or other normalisation happens here:
 * the auth process compares what the client sent.
 */
#include <string.h>

#include "sasl/sasl-private.h"

struct plain_state {
	char authzid[SASL_FIELD_MAX + 1];
	char authcid[SASL_FIELD_MAX + 1];
	char passwd[SASL_FIELD_MAX + 1];
	size_t passwd_len;
};

/* Copies a field that has been checked to be at most SASL_FIELD_MAX octets. */
static void
field_copy(char *dst, const unsigned char *src, size_t len)
{
	memcpy(dst, src, len);
	dst[len] = '\0';
}

static enum sasl_status
plain_step(void *state, const unsigned char *in, size_t len, bool have_input,
	   struct sasl_mech_out *out, enum sasl_fail *fail_r)
{
	struct plain_state *p = state;
	const unsigned char *nul1, *nul2, *authcid, *passwd;
	size_t authzid_len, authcid_len, passwd_len;

	if (!have_input) {
		/* RFC 4616 §2 / RFC 4422 §5: no initial response, so send an empty
		 * challenge ("334 ") and read the message as the response. */
		out->data = NULL;
		out->len = 0;
		return SASL_CONTINUE;
	}

	/* Exactly two NULs, splitting the message into its three fields. */
	if ((nul1 = memchr(in, '\0', len)) == NULL)
		goto malformed;
	authzid_len = (size_t)(nul1 - in);
	authcid = nul1 + 1;
	if ((nul2 = memchr(authcid, '\0', len - authzid_len - 1)) == NULL)
		goto malformed;
	authcid_len = (size_t)(nul2 - authcid);
	passwd = nul2 + 1;
	passwd_len = len - authzid_len - authcid_len - 2;
	if (memchr(passwd, '\0', passwd_len) != NULL)
		goto malformed;

	/* RFC 4616 §2: authcid = 1*SAFE, passwd = 1*SAFE, optional authzid =
	 * 1*SAFE; "up to 255 octets" each. */
	if (authzid_len > SASL_FIELD_MAX || authcid_len < 1 || authcid_len > SASL_FIELD_MAX ||
	    passwd_len < 1 || passwd_len > SASL_FIELD_MAX)
		goto malformed;
	if (!sasl_utf8_valid(in, authzid_len) || !sasl_utf8_valid(authcid, authcid_len) ||
	    !sasl_utf8_valid(passwd, passwd_len))
		goto malformed;

	field_copy(p->authzid, in, authzid_len);
	field_copy(p->authcid, authcid, authcid_len);
	field_copy(p->passwd, passwd, passwd_len);
	p->passwd_len = passwd_len;
	out->creds.authzid = p->authzid;
	out->creds.authcid = p->authcid;
	out->creds.secret = p->passwd;
	out->creds.secret_len = p->passwd_len;
	return SASL_DONE;

malformed:
	*fail_r = SASL_FAIL_MALFORMED;
	return SASL_FAIL;
}

const struct sasl_mech_ops sasl_plain_ops = {
	.state_size = sizeof(struct plain_state),
	.step = plain_step,
	.answer = NULL,
	.free = NULL,
};
