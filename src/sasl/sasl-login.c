/*
 * sasl-login — the LOGIN mechanism (draft-murchison-sasl-login-00), server side.
 *
 * Obsolete, but some clients still offer nothing else:
 * draft-murchison-sasl-login-00 §2 has the server prompt for the user name, then
 * for the password, and take each response as is. The prompts are the ones those
 * clients expect, "Username:" then "Password:" (base64 "VXNlcm5hbWU6" and
 * "UGFzc3dvcmQ6"); their content is ignored by clients. A client may send the
 * user name as the initial response (AUTH LOGIN dXNlcg==): the next challenge is
 * then "Password:".
 *
 * User name and password are 1–255 octets without NUL (the bound of RFC 4616 §2).
 * The user name must also be UTF-8 (RFC 3629), as PLAIN's authcid must, so the
 * identity rules are the same whatever the mechanism; the password is taken as
 * octets, since legacy clients send 8-bit passwords in local charsets and the
 * auth process simply will not match them. authzid is always "".
 */
#include <string.h>

#include "sasl/sasl-private.h"

enum login_phase {
	LOGIN_WANT_USER, /* zero: the state starts here */
	LOGIN_WANT_PASSWORD,
};

struct login_state {
	enum login_phase phase;
	char user[SASL_FIELD_MAX + 1];
	char password[SASL_FIELD_MAX + 1];
	size_t password_len;
};

static const char prompt_user[] = "Username:";
static const char prompt_password[] = "Password:";

static bool
field_ok(const unsigned char *s, size_t len)
{
	return len >= 1 && len <= SASL_FIELD_MAX && memchr(s, '\0', len) == NULL;
}

static void
challenge(struct sasl_mech_out *out, const char *prompt, size_t len)
{
	out->data = (const unsigned char *)prompt;
	out->len = len;
}

static enum sasl_status
login_step(void *state, const unsigned char *in, size_t len, bool have_input,
	   struct sasl_mech_out *out, enum sasl_fail *fail_r)
{
	struct login_state *l = state;

	if (!have_input) {
		challenge(out, prompt_user, sizeof(prompt_user) - 1);
		return SASL_CONTINUE;
	}
	switch (l->phase) {
	case LOGIN_WANT_USER:
		if (!field_ok(in, len) || !sasl_utf8_valid(in, len))
			break;
		memcpy(l->user, in, len);
		l->user[len] = '\0';
		l->phase = LOGIN_WANT_PASSWORD;
		challenge(out, prompt_password, sizeof(prompt_password) - 1);
		return SASL_CONTINUE;
	case LOGIN_WANT_PASSWORD:
		if (!field_ok(in, len))
			break;
		memcpy(l->password, in, len);
		l->password[len] = '\0';
		l->password_len = len;
		out->creds.authzid = "";
		out->creds.authcid = l->user;
		out->creds.secret = l->password;
		out->creds.secret_len = l->password_len;
		return SASL_DONE;
	}
	*fail_r = SASL_FAIL_MALFORMED;
	return SASL_FAIL;
}

const struct sasl_mech_ops sasl_login_ops = {
	.state_size = sizeof(struct login_state),
	.step = login_step,
	.answer = NULL,
	.free = NULL,
};
