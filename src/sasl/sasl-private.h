/*
 * sasl-private — how a mechanism plugs into the exchange (for sasl*.c and tests).
 *
 * A mechanism is a static struct sasl_mech in the table of sasl.c: its name, its
 * flags and its ops. The exchange does everything the mechanisms share: the
 * RFC 4954 §4 wire rules ("*", "=", the length limit), strict base64 both ways,
 * wiping the decoded response after each step, wiping the state on failure and
 * on free, and refusing out-of-order calls. A mechanism sees decoded octets and
 * answers with decoded octets.
 *
 * To add one (SCRAM-SHA-256, OAUTHBEARER): write its ops in sasl-<name>.c, add an
 * entry to the table in sasl.c, add the file to src/sasl/meson.build, and give it
 * an `answer` op if it returns SASL_FORWARD.
 */
#ifndef RAMPART_SASL_PRIVATE_H
#define RAMPART_SASL_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include "sasl/sasl-base64.h"
#include "sasl/sasl.h"

/* RFC 4616 §2: authzid, authcid and passwd are each at most 255 octets; LOGIN's
 * user name and password get the same bound. */
#define SASL_FIELD_MAX 255

/* The longest decoded challenge a mechanism may produce. */
#define SASL_CHALLENGE_RAW_MAX SASL_BASE64_DECODED_MAX(SASL_CHALLENGE_MAX)

/* What a mechanism's step or answer hands back, by status. */
struct sasl_mech_out {
	/* SASL_CONTINUE: the challenge (len 0 for an empty one, data may be NULL);
	 * SASL_FORWARD: the blob for the auth process. Must stay valid until the
	 * mechanism's next call (usually it points into the state). */
	const unsigned char *data;
	size_t len;
	/* SASL_DONE: pointers into the state (see struct sasl_credentials). */
	struct sasl_credentials creds;
};

struct sasl_mech_ops {
	/* Bytes of per-exchange state; the exchange allocates it zeroed. */
	size_t state_size;
	/*
	 * One client response, decoded: in[0..len). have_input is false only on the
	 * first step when the client gave no initial response. Returns
	 * SASL_CONTINUE, SASL_DONE, SASL_FORWARD (only with an `answer` op) or
	 * SASL_FAIL with *fail_r set to a reason other than SASL_FAIL_NONE. in is
	 * wiped after the call: copy what must be kept into the state.
	 */
	enum sasl_status (*step)(void *state, const unsigned char *in, size_t len,
				 bool have_input, struct sasl_mech_out *out,
				 enum sasl_fail *fail_r);
	/* The auth process's answer after SASL_FORWARD; same results as step.
	 * NULL for mechanisms that never forward. */
	enum sasl_status (*answer)(void *state, const unsigned char *in, size_t len,
				   struct sasl_mech_out *out, enum sasl_fail *fail_r);
	/* Releases (and wipes) whatever the state points to; NULL when the state
	 * owns nothing. The exchange itself wipes and frees the state block. */
	void (*free)(void *state);
};

enum sasl_mech_flags {
	SASL_MECH_PLAINTEXT = 1 << 0, /* reveals the password: TLS only */
};

struct sasl_mech {
	const char *name; /* RFC 4422 §3.1: 1–20 of A-Z 0-9 - _ */
	unsigned flags;   /* enum sasl_mech_flags */
	const struct sasl_mech_ops *ops;
};

extern const struct sasl_mech_ops sasl_plain_ops; /* sasl-plain.c */
extern const struct sasl_mech_ops sasl_login_ops; /* sasl-login.c */

/* Whether s[0..len) is strictly valid UTF-8 (RFC 3629 §4: no overlong forms, no
 * surrogates, nothing above U+10FFFF, nothing truncated). NUL counts as valid. */
bool sasl_utf8_valid(const unsigned char *s, size_t len);

/* Test hooks. sasl_exchange_wipe does to the secrets what free does, without
 * freeing: afterwards the exchange has no credentials and only free is allowed.
 * The other two tell whether the decode buffer, or the mechanism's state, holds
 * only zero bytes. */
void sasl_exchange_wipe(struct sasl_exchange *x);
bool sasl_exchange_decoded_zero(const struct sasl_exchange *x);
bool sasl_exchange_state_zero(const struct sasl_exchange *x);

#endif
