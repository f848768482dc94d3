/* libFuzzer target: every IPC message decoder (the first byte picks one). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "auth/auth-msg.h"
#include "lib/ctl-msg.h"
#include "queue/envelope.h"
#include "queue/queue-msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const uint8_t *p = data + 1;
	size_t n = size - 1;
	const char *error;
	switch (data[0] % 7) {
	case 0: {
		struct envelope *e = NULL;
		if (queue_open_req_decode(p, n, &e, &error) == 0 && envelope_check(e, &error) < 0)
			__builtin_trap();   /* the decoder promises checked envelopes */
		envelope_free(&e);
		break;
	}
	case 1: {
		struct queue_result r;
		queue_result_decode(p, n, &r, &error);
		break;
	}
	case 2: {
		struct queue_ref r;
		queue_ref_decode(p, n, &r, &error);
		break;
	}
	case 3: {
		struct auth_rcpt_req r;
		auth_rcpt_req_decode(p, n, &r, &error);
		break;
	}
	case 4: {
		struct auth_rcpt_res *r = malloc(sizeof(*r));
		auth_rcpt_res_decode(p, n, r, &error);
		free(r);
		break;
	}
	case 5: {
		struct ctl_peer m;
		ctl_peer_decode(p, n, &m, &error);
		break;
	}
	default: {
		struct ctl_stop m;
		ctl_stop_decode(p, n, &m, &error);
		break;
	}
	}
	return 0;
}
