/* keys-process — see keys-process.h. */
#include "keys/keys-process.h"
#include "keys/keyring.h"
#include "keys/keys-msg.h"
#include "lib/config.h"
#include "lib/ipc.h"
#include "lib/log.h"
#include "lib/proc.h"

#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

struct keys_ctx {
	const struct config *cfg;
	struct event_base *base;
	struct keyring *ring;
	struct ipc_channel *queue;       /* NULL until the parent connects the queue */
	struct evbuffer *out;
	struct event *timer;
	struct keys_selector *set;       /* KEYS_SELECTORS_MAX entries */
	unsigned char *announced;        /* the last KEYS_SELECTORS payload made */
	size_t announced_len;
	struct keys_sign_res res;
};

/* Encodes the set signing now; returns whether it differs from the last one. */
static bool
keys_set_update(struct keys_ctx *k)
{
	size_t n = keyring_signing(k->ring, time(NULL), k->set, KEYS_SELECTORS_MAX);
	struct evbuffer *b = evbuffer_new();
	if (b == NULL)
		fatal("keys: out of memory");
	keys_selectors_encode(b, k->set, n);
	size_t len = evbuffer_get_length(b);
	unsigned char *bytes = malloc(len);
	if (bytes == NULL)
		fatal("keys: out of memory");
	evbuffer_remove(b, bytes, len);
	evbuffer_free(b);
	bool changed = k->announced == NULL || len != k->announced_len ||
	    memcmp(bytes, k->announced, len) != 0;
	free(k->announced);
	k->announced = bytes;
	k->announced_len = len;
	if (changed) {
		size_t domains = 0;
		for (size_t i = 0; i < n; i++)
			domains += i == 0 || strcmp(k->set[i].domain, k->set[i - 1].domain) != 0;
		log_info("keys: %zu selector(s) sign for %zu domain(s)", n, domains);
		for (size_t i = 0; i < n; i++)
			log_debug("keys: %s signs with %s (%s)", k->set[i].domain, k->set[i].selector,
			    k->set[i].type == DKIM_KEY_ED25519 ? "ed25519" : "rsa");
	}
	return changed;
}

static void
keys_announce(struct keys_ctx *k)
{
	if (k->queue != NULL)
		ipc_send(k->queue, KEYS_SELECTORS, 0, k->announced, k->announced_len, -1);
}

static void
keys_reload(struct keys_ctx *k, bool force)
{
	if (keyring_load(k->ring, force) == 0)
		return;
	for (size_t i = 0; i < keyring_problem_count(k->ring); i++)
		log_warn("keys: %s", keyring_problem(k->ring, i));
	log_info("keys: %zu key(s) in %s", keyring_count(k->ring), k->cfg->dkim_key_dir);
}

/* Checks the directory, then re-arms for the next check or the next instant at
 * which a key starts or stops signing, whichever comes first. */
static void
keys_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct keys_ctx *k = arg;
	keys_reload(k, false);
	if (keys_set_update(k))
		keys_announce(k);
	time_t now = time(NULL), next = keyring_next_change(k->ring, now);
	struct timeval tv = { KEYS_CHECK_INTERVAL, 0 };
	if (next != 0 && next - now < KEYS_CHECK_INTERVAL)
		tv.tv_sec = next - now;
	evtimer_add(k->timer, &tv);
}

static void
keys_sign(struct keys_ctx *k, struct ipc_frame *f)
{
	struct keys_sign_req req;
	struct keys_sign_res *res = &k->res;
	const char *error;
	res->n = 0;
	if (keys_sign_req_decode(f->data, f->len, &req, &error) < 0) {
		log_warn("keys: bad signing request from %s: %s", ipc_channel_peer(k->queue),
		    error);
	} else {
		time_t now = time(NULL);
		for (size_t i = 0; i < req.n; i++) {
			const struct keys_sign_item *it = &req.items[i];
			struct keys_sig *s = &res->sigs[i];
			s->len = 0;
			s->status = keyring_sign(k->ring, it->domain, it->selector, now, it->digest,
			    s->sig, &s->len);
			if (s->status == KEYS_FAILED)
				log_error("keys: signing with %s/%s failed", it->domain, it->selector);
			else if (s->status == KEYS_NO_KEY)
				log_warn("keys: asked to sign with %s/%s, which does not sign now",
				    it->domain, it->selector);
		}
		res->n = req.n;
	}
	keys_sign_res_encode(k->out, res);
	ipc_send_buf(k->queue, KEYS_SIGN_RES, f->id, k->out, -1);
}

static void
keys_on_queue_frame(struct ipc_channel *ch, struct ipc_frame *f, void *arg)
{
	struct keys_ctx *k = arg;
	switch (f->type) {
	case KEYS_SIGN_REQ:
		keys_sign(k, f);
		break;
	default:
		log_warn("keys: unknown message type %u from %s", f->type, ipc_channel_peer(ch));
	}
}

static void
keys_on_queue_close(struct ipc_channel *ch, void *arg)
{
	struct keys_ctx *k = arg;
	log_debug("keys: the queue's channel closed");
	ipc_channel_free(&k->queue);
}

static void
keys_on_peer(const struct ctl_peer *peer, int fd, void *ctx)
{
	struct keys_ctx *k = ctx;
	if (peer->kind != PROC_QUEUE) {
		/* Only the queue may ask for signatures. */
		log_warn("keys: refusing a channel to %s", proc_kind_name(peer->kind));
		close(fd);
		return;
	}
	ipc_channel_free(&k->queue);   /* a restarted queue replaces the old channel */
	k->queue = ipc_channel_new(k->base, fd, "queue", keys_on_queue_frame,
	    keys_on_queue_close, k);
	keys_announce(k);
}

static void
keys_on_stop(unsigned grace, bool drain, void *ctx)
{
	struct keys_ctx *k = ctx;
	event_base_loopexit(k->base, NULL);
}

int
keys_process_main(const struct config *cfg, int ctl_fd)
{
	static const struct proc_hooks hooks = { keys_on_peer, keys_on_stop };
	struct keys_ctx k = { .cfg = cfg };

	proc_set_role("keys");
	/* The keys belong to the service user, who runs this process from here on. */
	proc_drop_privileges(cfg, "keys");
	/* No private key in a core file (CONVENTIONS §9); also keeps ptrace out. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		log_warn("keys: cannot turn off core dumps: %m");
	k.ring = keyring_new(cfg->dkim_key_dir);
	k.base = event_base_new();
	k.out = evbuffer_new();
	k.set = calloc(KEYS_SELECTORS_MAX, sizeof(*k.set));
	if (k.ring == NULL || k.base == NULL || k.out == NULL || k.set == NULL)
		fatal("keys: out of memory");
	keys_reload(&k, true);
	k.timer = evtimer_new(k.base, keys_on_timer, &k);
	struct ipc_channel *ctl = proc_control_attach(k.base, ctl_fd, &hooks, &k);
	keys_on_timer(-1, 0, &k);
	proc_ready(ctl);
	log_info("keys: ready, key directory %s", cfg->dkim_key_dir);
	event_base_dispatch(k.base);

	ipc_channel_free(&k.queue);
	ipc_channel_free(&ctl);
	event_free(k.timer);
	keyring_free(&k.ring);
	free(k.set);
	free(k.announced);
	evbuffer_free(k.out);
	event_base_free(k.base);
	return 0;
}
