/* libFuzzer target: every IPC message decoder (the first byte picks one). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

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
	switch (data[0] % 12) {
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
		/* QUEUE_COMMIT_REQ / QUEUE_ABORT: what decodes obeys every rule the
		 * spool relies on, and encodes back to the same bytes. */
		struct queue_ref r;
		if (queue_ref_decode(p, n, &r, &error) == 0) {
			if (r.added_len > QUEUE_ADDED_MAX || strlen(r.added) != r.added_len ||
			    queue_added_check(r.added, r.added_len, &error) < 0 ||
			    !queue_folder_valid(r.folder))
				__builtin_trap();
			struct evbuffer *b = evbuffer_new();
			queue_ref_encode(b, &r);
			if (evbuffer_get_length(b) != n ||
			    memcmp(evbuffer_pullup(b, -1), p, n) != 0)
				__builtin_trap();
			evbuffer_free(b);
		}
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
	case 6: {
		struct auth_login_req m;
		if (auth_login_req_decode(p, n, &m, &error) == 0 && m.secret_len > AUTH_SECRET_MAX)
			__builtin_trap();
		break;
	}
	case 7: {
		struct auth_login_res m;
		auth_login_res_decode(p, n, &m, &error);
		break;
	}
	case 8: {
		struct auth_login_report m;
		auth_login_report_decode(p, n, &m, &error);
		break;
	}
	case 9: {
		struct auth_sender_req m;
		auth_sender_req_decode(p, n, &m, &error);
		break;
	}
	case 10: {
		struct auth_sender_res m;
		auth_sender_res_decode(p, n, &m, &error);
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
