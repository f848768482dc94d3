/* queue-sign — see queue-sign.h. */
#include "queue/queue-sign.h"
#include "keys/keys-msg.h"
#include "lib/ipc.h"
#include "lib/log.h"
#include "lib/workpool.h"
#include "mailauth/dkim.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#define READ_CHUNK (64 * 1024)

struct qs_selector {
	char *domain, *selector;
	enum dkim_key_type type;
};

struct sign_job {
	struct sign_job *next, **prevp;
	struct queue_signer *s;          /* NULL once the signer is freed */
	char domain[254];
	size_t n;                        /* selectors, in request order */
	char *selectors[KEYS_SIGN_MAX];
	struct dkim_sign *sign[KEYS_SIGN_MAX];
	unsigned char digest[KEYS_SIGN_MAX][32];
	int fd;
	off_t offset, end;
	bool on_pool, waiting;
	char error[200];                 /* set by the hashing (worker) or a check */
	char *fields;                    /* the result, for a deferred completion */
	uint32_t id;
	struct event *timer;             /* the answer's deadline, or a deferred completion */
	queue_sign_done_fn *done;
	void *arg;
};

struct queue_signer {
	struct event_base *base;
	struct workpool *pool;
	struct ipc_channel *ch;
	struct qs_selector *sel;
	size_t nsel;
	bool have_list;
	struct sign_job *jobs;           /* every job not yet completed */
	uint32_t next_id;
	unsigned timeout_ms;
	struct evbuffer *out;
};

/* ---------------------------------------------------------------- jobs */

static void
job_free(struct sign_job *j)
{
	for (size_t i = 0; i < j->n; i++) {
		free(j->selectors[i]);
		dkim_sign_free(&j->sign[i]);
	}
	free(j->fields);
	if (j->timer != NULL)
		event_free(j->timer);
	free(j);
}

static void
job_unlink(struct sign_job *j)
{
	if (j->prevp == NULL)
		return;
	*j->prevp = j->next;
	if (j->next != NULL)
		j->next->prevp = j->prevp;
	j->prevp = NULL;
	j->next = NULL;
}

/* Runs done (fields, or the error when fields is NULL) and frees the job;
 * error may point into the job. */
static void
job_complete(struct sign_job *j, char *fields, const char *error)
{
	job_unlink(j);
	if (fields == NULL && (error == NULL || error[0] == '\0'))
		error = "out of memory";
	j->done(j->arg, fields, fields != NULL ? NULL : error);
	job_free(j);
}

static void
job_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct sign_job *j = arg;
	char error[120];
	if (j->waiting) {
		snprintf(error, sizeof(error), "no answer from the keys process within %u ms",
		    j->s->timeout_ms);
		job_complete(j, NULL, error);
		return;
	}
	/* A completion decided at once, delivered on the next loop turn. */
	char *fields = j->fields;
	j->fields = NULL;
	job_complete(j, fields, j->error);
}

/* Completes j on the next turn of the loop: done never runs inside sign(). */
static void
job_complete_later(struct sign_job *j, char *fields, const char *error)
{
	j->fields = fields;
	if (error != NULL)
		snprintf(j->error, sizeof(j->error), "%s", error);
	struct timeval now = { 0, 0 };
	evtimer_add(j->timer, &now);
}

/* Fails every job waiting for an answer (the channel went away). */
static void
jobs_fail_waiting(struct queue_signer *s, const char *error)
{
	struct sign_job *j = s->jobs, *next;
	for (; j != NULL; j = next) {
		next = j->next;
		if (j->waiting)
			job_complete(j, NULL, error);
	}
}

static struct sign_job *
job_find(struct queue_signer *s, uint32_t id)
{
	for (struct sign_job *j = s->jobs; j != NULL; j = j->next)
		if (j->waiting && j->id == id)
			return j;
	return NULL;
}

/* ---------------------------------------------------------------- the keys channel */

static void
signer_set_list(struct queue_signer *s, const struct keys_selectors *m)
{
	struct qs_selector *v = calloc(m->n > 0 ? m->n : 1, sizeof(*v));
	if (v == NULL) {
		log_error("queue: out of memory for the DKIM selector list");
		return;
	}
	for (size_t i = 0; i < m->n; i++) {
		v[i].domain = strdup(m->v[i].domain);
		v[i].selector = strdup(m->v[i].selector);
		v[i].type = m->v[i].type;
		if (v[i].domain == NULL || v[i].selector == NULL) {
			for (size_t k = 0; k <= i; k++) {
				free(v[k].domain);
				free(v[k].selector);
			}
			free(v);
			log_error("queue: out of memory for the DKIM selector list");
			return;
		}
	}
	for (size_t i = 0; i < s->nsel; i++) {
		free(s->sel[i].domain);
		free(s->sel[i].selector);
	}
	free(s->sel);
	s->sel = v;
	s->nsel = m->n;
	s->have_list = true;
	log_info("queue: %zu DKIM selector(s) sign", m->n);
}

static void
signer_answer(struct queue_signer *s, struct ipc_frame *f)
{
	struct sign_job *j = job_find(s, f->id);
	struct keys_sign_res res;
	const char *error;
	char why[600];
	if (j == NULL) {
		log_warn("queue: an answer from the keys process to no pending request (late?)");
		return;
	}
	if (keys_sign_res_decode(f->data, f->len, &res, &error) < 0) {
		snprintf(why, sizeof(why), "the keys process's answer is not usable: %s", error);
		job_complete(j, NULL, why);
		return;
	}
	if (res.n != j->n) {
		job_complete(j, NULL, "the keys process could not read the signing request");
		return;
	}
	struct evbuffer *b = evbuffer_new();
	size_t signed_n = 0;
	why[0] = '\0';
	for (size_t i = 0; b != NULL && i < res.n && why[0] == '\0'; i++) {
		const struct keys_sig *sig = &res.sigs[i];
		if (sig->status == KEYS_NO_KEY) {
			log_info("queue: %s/%s no longer signs; left out", j->domain, j->selectors[i]);
			continue;
		}
		if (sig->status == KEYS_FAILED) {
			snprintf(why, sizeof(why), "signing with %s/%s failed in the keys process",
			    j->domain, j->selectors[i]);
			break;
		}
		char *field = dkim_sign_header(j->sign[i], sig->sig, sig->len);
		if (field == NULL || evbuffer_add(b, field, strlen(field)) < 0)
			snprintf(why, sizeof(why), "out of memory");
		free(field);
		signed_n++;
	}
	if (b == NULL)
		snprintf(why, sizeof(why), "out of memory");
	else if (why[0] == '\0' && signed_n == 0)
		snprintf(why, sizeof(why), "no selector of %s signs any more (the keys "
		    "changed); try again", j->domain);
	char *fields = NULL;
	if (why[0] == '\0') {
		size_t len = evbuffer_get_length(b);
		if ((fields = malloc(len + 1)) != NULL) {
			evbuffer_remove(b, fields, len);
			fields[len] = '\0';
		}
	}
	if (b != NULL)
		evbuffer_free(b);
	job_complete(j, fields, why[0] != '\0' ? why : NULL);
}

static void
signer_on_frame(struct ipc_channel *ch, struct ipc_frame *f, void *arg)
{
	struct queue_signer *s = arg;
	struct keys_selectors m;
	const char *error;
	switch (f->type) {
	case KEYS_SELECTORS:
		if (keys_selectors_decode(f->data, f->len, &m, &error) < 0) {
			log_error("queue: bad selector list from the keys process: %s", error);
			return;
		}
		signer_set_list(s, &m);
		free(m.v);
		break;
	case KEYS_SIGN_RES:
		signer_answer(s, f);
		break;
	default:
		log_warn("queue: unknown message type %u from the keys process", f->type);
	}
}

static void
signer_on_close(struct ipc_channel *ch, void *arg)
{
	struct queue_signer *s = arg;
	log_warn("queue: the keys process's channel closed");
	ipc_channel_free(&s->ch);
	jobs_fail_waiting(s, "the keys process went away");
}

/* ---------------------------------------------------------------- hashing */

/* On a worker thread: touches only the job (and its fd). */
static void
hash_run(void *arg)
{
	struct sign_job *j = arg;
	unsigned char *buf = malloc(READ_CHUNK);
	off_t off = j->offset;
	if (buf == NULL) {
		snprintf(j->error, sizeof(j->error), "out of memory");
		return;
	}
	while (off < j->end) {
		size_t want = j->end - off < READ_CHUNK ? (size_t)(j->end - off) : READ_CHUNK;
		ssize_t r = pread(j->fd, buf, want, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(j->error, sizeof(j->error), "cannot read the spooled message: %s",
			    r < 0 ? strerror(errno) : "it is shorter than its size");
			free(buf);
			return;
		}
		for (size_t i = 0; i < j->n; i++)
			dkim_sign_feed(j->sign[i], buf, (size_t)r);
		off += r;
	}
	free(buf);
	for (size_t i = 0; i < j->n; i++) {
		const char *error = NULL;
		dkim_sign_finish(j->sign[i]);
		if (dkim_sign_digest(j->sign[i], j->digest[i], &error) < 0) {
			snprintf(j->error, sizeof(j->error), "cannot sign: %s",
			    error != NULL ? error : "unknown error");
			return;
		}
	}
}

/* Back on the loop: sends the digests, or fails. */
static void
hash_done(void *arg)
{
	struct sign_job *j = arg;
	struct queue_signer *s = j->s;
	j->on_pool = false;
	if (s == NULL) {
		job_complete(j, NULL, "the queue is stopping");
		return;
	}
	if (j->error[0] != '\0') {
		job_complete(j, NULL, j->error);
		return;
	}
	if (s->ch == NULL) {
		job_complete(j, NULL, "the keys process is not connected");
		return;
	}
	struct keys_sign_req req = { .n = j->n };
	for (size_t i = 0; i < j->n; i++) {
		req.items[i].domain = j->domain;
		req.items[i].selector = j->selectors[i];
		memcpy(req.items[i].digest, j->digest[i], 32);
	}
	if (++s->next_id == 0)
		s->next_id = 1;
	j->id = s->next_id;
	j->waiting = true;
	struct timeval tv = { s->timeout_ms / 1000, (s->timeout_ms % 1000) * 1000 };
	evtimer_add(j->timer, &tv);
	keys_sign_req_encode(s->out, &req);
	/* If the channel fails now, its close fails this job too: j is not used after. */
	ipc_send_buf(s->ch, KEYS_SIGN_REQ, j->id, s->out, -1);
}

/* ---------------------------------------------------------------- public */

struct queue_signer *
queue_signer_new(struct event_base *base, struct workpool *pool)
{
	struct queue_signer *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->base = base;
	s->pool = pool;
	s->timeout_ms = QUEUE_SIGN_TIMEOUT * 1000;
	if ((s->out = evbuffer_new()) == NULL) {
		free(s);
		return NULL;
	}
	return s;
}

void
queue_signer_free(struct queue_signer **sp)
{
	struct queue_signer *s = *sp;
	if (s == NULL)
		return;
	*sp = NULL;
	struct sign_job *j = s->jobs, *next;
	for (; j != NULL; j = next) {
		next = j->next;
		if (j->on_pool) {
			job_unlink(j);   /* hash_done completes it */
			j->s = NULL;
			continue;
		}
		/* Even one decided already ("" for a domain without keys) fails: the
		 * caller is stopping and must not go on to commit. */
		job_complete(j, NULL, "the queue is stopping");
	}
	ipc_channel_free(&s->ch);
	for (size_t i = 0; i < s->nsel; i++) {
		free(s->sel[i].domain);
		free(s->sel[i].selector);
	}
	free(s->sel);
	evbuffer_free(s->out);
	free(s);
}

void
queue_signer_set_timeout(struct queue_signer *s, unsigned ms)
{
	s->timeout_ms = ms;
}

void
queue_signer_attach(struct queue_signer *s, int fd)
{
	if (s->ch != NULL) {
		ipc_channel_free(&s->ch);
		jobs_fail_waiting(s, "the keys process was restarted");
	}
	s->ch = ipc_channel_new(s->base, fd, "keys", signer_on_frame, signer_on_close, s);
}

bool
queue_signer_has_domain(const struct queue_signer *s, const char *domain)
{
	size_t len = strlen(domain);
	if (len > 0 && domain[len - 1] == '.')
		len--;
	for (size_t i = 0; i < s->nsel; i++)
		if (strlen(s->sel[i].domain) == len && strncasecmp(s->sel[i].domain, domain,
		    len) == 0)
			return true;
	return false;
}

/* The domain's selectors into j, ed25519 first; at most KEYS_SIGN_MAX. */
static int
job_select(struct queue_signer *s, struct sign_job *j, time_t now, const char **error_r)
{
	for (int pass = 0; pass < 2; pass++) {
		enum dkim_key_type want = pass == 0 ? DKIM_KEY_ED25519 : DKIM_KEY_RSA;
		for (size_t i = 0; i < s->nsel; i++) {
			const struct qs_selector *q = &s->sel[i];
			if (q->type != want || strcmp(q->domain, j->domain) != 0)
				continue;
			if (j->n == KEYS_SIGN_MAX) {
				log_warn("queue: %s has more than %d selectors; %s does not sign",
				    j->domain, KEYS_SIGN_MAX, q->selector);
				continue;
			}
			struct dkim_sign_params p = { .domain = j->domain, .selector = q->selector,
			    .type = q->type, .timestamp = now };
			if ((j->selectors[j->n] = strdup(q->selector)) == NULL) {
				*error_r = "out of memory";
				return -1;
			}
			if ((j->sign[j->n] = dkim_sign_new(&p, error_r)) == NULL) {
				free(j->selectors[j->n]);
				return -1;
			}
			j->n++;
		}
	}
	return 0;
}

void
queue_signer_sign(struct queue_signer *s, const char *domain, int fd, off_t offset,
    off_t end, queue_sign_done_fn *done, void *arg)
{
	struct sign_job *j = calloc(1, sizeof(*j));
	const char *error = NULL;
	if (j == NULL || (j->timer = evtimer_new(s->base, job_on_timer, j)) == NULL) {
		/* Nothing can be deferred without memory; this is the one synchronous path. */
		free(j);
		done(arg, NULL, "out of memory");
		return;
	}
	j->s = s;
	j->fd = fd;
	j->offset = offset;
	j->end = end;
	j->done = done;
	j->arg = arg;
	j->next = s->jobs;
	if (j->next != NULL)
		j->next->prevp = &j->next;
	j->prevp = &s->jobs;
	s->jobs = j;

	size_t len = strlen(domain);
	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (len >= sizeof(j->domain)) {
		job_complete_later(j, NULL, "the From: domain is not a domain name");
		return;
	}
	for (size_t i = 0; i < len; i++)
		j->domain[i] = (char)tolower((unsigned char)domain[i]);
	j->domain[len] = '\0';
	if (!s->have_list) {
		job_complete_later(j, NULL, "the keys process has not said which domains sign "
		    "yet");
		return;
	}
	if (job_select(s, j, time(NULL), &error) < 0) {
		job_complete_later(j, NULL, error);
		return;
	}
	if (j->n == 0) {
		job_complete_later(j, strdup(""), "out of memory");
		return;
	}
	if (s->ch == NULL) {
		job_complete_later(j, NULL, "the keys process is not connected");
		return;
	}
	if (offset < 0 || end < offset) {
		job_complete_later(j, NULL, "the message's place in the spool file is not valid");
		return;
	}
	j->on_pool = true;
	workpool_submit(s->pool, hash_run, hash_done, j);
}
