/*
 * Unit tests for queue-sign, end to end in one test program: the signer talks
 * over a real socketpair either to the real keys process (keys_process_main,
 * forked, handed its channel with CTL_PEER as rampartd does) or to a small keys
 * side in this program that answers as a test needs (not at all, wrongly,
 * KEYS_NO_KEY, KEYS_FAILED, by hanging up). Produced DKIM-Signature fields are
 * verified with dkim_verify against a static zone holding each key's TXT
 * record (dkim_key_txt): ed25519 and rsa pass, a changed body fails.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "keys/keyring.h"
#include "keys/keys-msg.h"
#include "keys/keys-process.h"
#include "lib/config.h"
#include "lib/ctl-msg.h"
#include "lib/ipc.h"
#include "lib/workpool.h"
#include "queue/queue-sign.h"
#include "test-tmpdir.h"

#define PREFIX "X-Envelope: not part of the message\r\n"

static const char message[] =
    "From: Alice <alice@example.org>\r\n"
    "To: bob@example.net\r\n"
    "Subject: Keys\r\n"
    "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
    "Message-ID: <1@example.org>\r\n"
    "\r\n"
    "Hello Bob.\r\n";

enum fake_mode { FAKE_ANSWER, FAKE_SILENT, FAKE_HANG_UP, FAKE_NO_KEY_FIRST, FAKE_NO_KEY_ALL,
	FAKE_FAILED, FAKE_EMPTY };

struct t {
	char dir[64];
	struct event_base *base;
	struct workpool *pool;
	struct queue_signer *s;
	struct keyring *ring;
	/* the keys side played by the test */
	struct ipc_channel *fake;
	enum fake_mode mode;
	unsigned requests;
	/* the real keys process */
	pid_t pid;
	struct ipc_channel *ctl;
	/* the outcome */
	bool done, in_sign;
	char *fields;
	char error[300];
};

/* ---------------------------------------------------------------- keys */

static void make_key(struct t *t, const char *selector, enum dkim_key_type type)
{
	char path[256], *txt = NULL;
	const char *error = NULL;

	snprintf(path, sizeof(path), "%s/example.org/%s.key", t->dir, selector);
	if (dkim_key_generate(type, 0, path, &txt, &error) < 0)
		fail_msg("keygen: %s", error);
	free(txt);
}

/* The zone with every key's record, as DNS would publish them. */
static struct dns_zone *key_zone(struct t *t)
{
	struct evbuffer *b = evbuffer_new();
	const char *error = NULL;
	struct dns_zone *z;

	for (size_t i = 0; i < keyring_count(t->ring); i++) {
		const struct keyring_key *k = keyring_get(t->ring, i);
		char *txt = dkim_key_txt(k->key);
		size_t len = strlen(txt);

		evbuffer_add_printf(b, "%s._domainkey.%s. 300 IN TXT", k->selector, k->domain);
		for (size_t off = 0; off < len; off += 200)
			evbuffer_add_printf(b, " \"%.200s\"", txt + off);
		evbuffer_add_printf(b, "\n");
		free(txt);
	}
	size_t len = evbuffer_get_length(b);
	z = dns_zone_parse((const char *)evbuffer_pullup(b, -1), len, &error);
	if (z == NULL)
		fail_msg("zone: %s", error);
	evbuffer_free(b);
	return z;
}

/* Verifies fields + msg; "pass,pass" and the like, in field order. */
static void verify(struct t *t, const char *fields, const char *msg, size_t len, char *out,
    size_t size)
{
	struct dns_zone *z = key_zone(t);
	struct dns_view *view = dns_view_new(z);
	struct dkim_verify *v = dkim_verify_new(time(NULL));

	dkim_verify_feed(v, fields, strlen(fields));
	dkim_verify_feed(v, msg, len);
	dkim_verify_finish(v);
	assert_int_equal(dkim_verify_step(view, v), 1);
	out[0] = '\0';
	for (size_t i = 0; i < dkim_verify_count(v); i++) {
		const struct dkim_result *r = dkim_verify_result(v, i);

		snprintf(out + strlen(out), size - strlen(out), "%s%s:%s:%s", i > 0 ? "," : "",
		    r->selector, r->algorithm, dkim_status_name(r->status));
	}
	dkim_verify_free(&v);
	dns_view_free(&view);
	dns_zone_free(&z);
}

/* ---------------------------------------------------------------- the fake keys side */

static void fake_on_frame(struct ipc_channel *ch, struct ipc_frame *f, void *arg)
{
	struct t *t = arg;
	struct keys_sign_req req;
	struct keys_sign_res res = { .n = 0 };
	struct evbuffer *b;
	const char *error;

	assert_int_equal(f->type, KEYS_SIGN_REQ);
	assert_int_equal(keys_sign_req_decode(f->data, f->len, &req, &error), 0);
	t->requests++;
	if (t->mode == FAKE_SILENT)
		return;
	if (t->mode == FAKE_HANG_UP) {
		ipc_channel_free(&t->fake);
		return;
	}
	res.n = t->mode == FAKE_EMPTY ? 0 : req.n;
	for (size_t i = 0; i < res.n; i++) {
		struct keys_sig *sig = &res.sigs[i];

		sig->status = keyring_sign(t->ring, req.items[i].domain, req.items[i].selector,
		    time(NULL), req.items[i].digest, sig->sig, &sig->len);
		assert_int_equal(sig->status, KEYS_OK);
		if (t->mode == FAKE_NO_KEY_ALL || (t->mode == FAKE_NO_KEY_FIRST && i == 0))
			sig->status = KEYS_NO_KEY;
		if (t->mode == FAKE_FAILED && i == 1)
			sig->status = KEYS_FAILED;
	}
	b = evbuffer_new();
	keys_sign_res_encode(b, &res);
	ipc_send_buf(ch, KEYS_SIGN_RES, f->id, b, -1);
	evbuffer_free(b);
}

static void fake_on_close(struct ipc_channel *ch, void *arg)
{
	struct t *t = arg;

	ipc_channel_free(&t->fake);
}

/* Connects the signer to the fake keys side, which announces the keyring. */
static void fake_connect(struct t *t)
{
	int fds[2];
	struct keys_selector v[16];
	size_t n = keyring_signing(t->ring, time(NULL), v, 16);
	struct evbuffer *b = evbuffer_new();

	assert_int_equal(ipc_socketpair(fds), 0);
	t->fake = ipc_channel_new(t->base, fds[1], "queue", fake_on_frame, fake_on_close, t);
	queue_signer_attach(t->s, fds[0]);
	keys_selectors_encode(b, v, n);
	ipc_send_buf(t->fake, KEYS_SELECTORS, 0, b, -1);
	evbuffer_free(b);
}

/* ---------------------------------------------------------------- the real keys process */

static void ctl_on_frame(struct ipc_channel *ch, struct ipc_frame *f, void *arg) { }

static void ctl_on_close(struct ipc_channel *ch, void *arg)
{
	struct t *t = arg;

	ipc_channel_free(&t->ctl);
}

/* Forks keys_process_main over t->dir and hands it a channel as rampartd does;
 * returns the queue's end. */
static int real_keys_start(struct t *t)
{
	char override[128], *error = NULL;
	char *overrides[1] = { override };
	int ctl[2], pair[2];
	struct config *cfg;

	snprintf(override, sizeof(override), "dkim_key_dir=%s", t->dir);
	cfg = config_load(NULL, overrides, 1, &error);
	if (cfg == NULL)
		fail_msg("config: %s", error);
	assert_int_equal(ipc_socketpair(ctl), 0);
	fflush(NULL);
	t->pid = fork();
	assert_true(t->pid >= 0);
	if (t->pid == 0) {
		close(ctl[0]);
		_exit(keys_process_main(cfg, ctl[1]));
	}
	config_free(&cfg);
	close(ctl[1]);
	t->ctl = ipc_channel_new(t->base, ctl[0], "keys", ctl_on_frame, ctl_on_close, t);
	assert_int_equal(ipc_socketpair(pair), 0);
	struct evbuffer *b = evbuffer_new();
	struct ctl_peer peer = { PROC_QUEUE, 0, 0 };
	ctl_peer_encode(b, &peer);
	ipc_send_buf(t->ctl, CTL_PEER, 0, b, pair[1]);
	evbuffer_free(b);
	close(pair[1]);
	return pair[0];
}

static void real_keys_stop(struct t *t)
{
	int status;

	ipc_channel_free(&t->ctl);       /* the parent is gone: the process exits */
	assert_int_equal(waitpid(t->pid, &status, 0), t->pid);
	assert_true(WIFEXITED(status) || WIFSIGNALED(status));
	t->pid = 0;
}

/* ---------------------------------------------------------------- running */

static void on_done(void *arg, char *fields, const char *error)
{
	struct t *t = arg;

	assert_false(t->in_sign);     /* never from inside queue_signer_sign() */
	assert_false(t->done);        /* exactly once */
	t->done = true;
	t->fields = fields;
	assert_true((fields == NULL) != (error == NULL));
	snprintf(t->error, sizeof(t->error), "%s", error != NULL ? error : "");
	event_base_loopbreak(t->base);
}

static void loop_until(struct t *t, bool *flag)
{
	struct timeval tv = { 0, 10000 };
	for (int i = 0; i < 1000 && !*flag; i++)
		event_base_loopexit(t->base, &tv), event_base_dispatch(t->base);
	assert_true(*flag);
}

static void wait_for_list(struct t *t, const char *domain, bool want)
{
	/* By the clock, not by loop turns: a turn can end early on a busy machine. */
	time_t deadline = time(NULL) + 15;
	while (queue_signer_has_domain(t->s, domain) != want && time(NULL) < deadline) {
		struct timeval tv = { 0, 10000 };

		event_base_loopexit(t->base, &tv);
		event_base_dispatch(t->base);
	}
	assert_int_equal(queue_signer_has_domain(t->s, domain), want);
}

/* A spool-like file: PREFIX, then msg. Returns the fd. */
static int spool_file(struct t *t, const char *msg, size_t len)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/spool-XXXXXX", t->dir);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, PREFIX, strlen(PREFIX)), (ssize_t)strlen(PREFIX));
	assert_int_equal(write(fd, msg, len), (ssize_t)len);
	return fd;
}

/* Signs msg for domain and runs the loop until done. */
static void sign_msg(struct t *t, const char *domain, const char *msg, size_t len, off_t extra)
{
	int fd = spool_file(t, msg, len);
	off_t off = (off_t)strlen(PREFIX);

	free(t->fields);
	t->fields = NULL;
	t->done = false;
	t->error[0] = '\0';
	t->in_sign = true;
	queue_signer_sign(t->s, domain, fd, off, off + (off_t)len + extra, on_done, t);
	t->in_sign = false;
	loop_until(t, &t->done);
	close(fd);
}

static int setup(void **state)
{
	struct t *t = calloc(1, sizeof(*t));
	char sub[128];

	assert_non_null(t);
	snprintf(t->dir, sizeof(t->dir), "/tmp/test-queue-sign-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(sub, sizeof(sub), "%s/example.org", t->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	make_key(t, "ed", DKIM_KEY_ED25519);
	make_key(t, "rs", DKIM_KEY_RSA);
	t->ring = keyring_new(t->dir);
	assert_int_equal(keyring_load(t->ring, true), 1);
	assert_int_equal(keyring_count(t->ring), 2);
	t->base = event_base_new();
	assert_non_null(t->base);
	*state = t;
	return 0;
}

/* The workpool's threads start after any fork. */
static void start_signer(struct t *t)
{
	t->pool = workpool_new(t->base, 2, "sign");
	t->s = queue_signer_new(t->base, t->pool);
	assert_non_null(t->s);
}

static int teardown(void **state)
{
	struct t *t = *state;

	queue_signer_free(&t->s);
	workpool_free(&t->pool);
	ipc_channel_free(&t->fake);
	if (t->pid > 0)
		real_keys_stop(t);
	keyring_free(&t->ring);
	event_base_free(t->base);
	free(t->fields);
	test_rm_tree(t->dir);
	free(t);
	return 0;
}

/* ---------------------------------------------------------------- tests */

static void test_real_keys_process(void **state)
{
	struct t *t = *state;
	char result[256], *big, *changed;
	size_t biglen = 0;

	int fd = real_keys_start(t);   /* forked before the workpool's threads start */

	start_signer(t);
	queue_signer_attach(t->s, fd);
	wait_for_list(t, "example.org", true);
	assert_true(queue_signer_has_domain(t->s, "EXAMPLE.org."));
	assert_false(queue_signer_has_domain(t->s, "example.net"));
	assert_false(queue_signer_has_domain(t->s, "org"));

	sign_msg(t, "Example.ORG.", message, strlen(message), 0);
	assert_string_equal(t->error, "");
	assert_non_null(t->fields);
	/* ed25519 first, each a folded field ending in CRLF */
	assert_int_equal(strncmp(t->fields, "DKIM-Signature: v=1; a=ed25519-sha256;", 38), 0);
	assert_non_null(strstr(t->fields, "\r\nDKIM-Signature: v=1; a=rsa-sha256;"));
	assert_int_equal(strcmp(t->fields + strlen(t->fields) - 2, "\r\n"), 0);
	assert_non_null(strstr(t->fields, "c=relaxed/relaxed;"));
	assert_non_null(strstr(t->fields, "d=example.org;"));
	assert_non_null(strstr(t->fields, " t="));
	verify(t, t->fields, message, strlen(message), result, sizeof(result));
	assert_string_equal(result, "ed:ed25519-sha256:pass,rs:rsa-sha256:pass");

	/* One changed octet of the body fails both. */
	changed = strdup(message);
	changed[strlen(changed) - 4] = '!';
	verify(t, t->fields, changed, strlen(changed), result, sizeof(result));
	assert_string_equal(result, "ed:ed25519-sha256:fail,rs:rsa-sha256:fail");
	free(changed);

	/* A body of several read chunks. */
	big = malloc(300 * 1024);
	assert_non_null(big);
	biglen = (size_t)snprintf(big, 300 * 1024, "%s", message);
	while (biglen < 290 * 1024)
		biglen += (size_t)snprintf(big + biglen, 300 * 1024 - biglen,
		    "line %zu of a long body, long enough to cross 64 KiB chunks\r\n", biglen);
	sign_msg(t, "example.org", big, biglen, 0);
	assert_string_equal(t->error, "");
	verify(t, t->fields, big, biglen, result, sizeof(result));
	assert_string_equal(result, "ed:ed25519-sha256:pass,rs:rsa-sha256:pass");
	free(big);

	/* A domain without selectors: nothing to add. */
	sign_msg(t, "example.net", message, strlen(message), 0);
	assert_string_equal(t->fields, "");
	assert_string_equal(t->error, "");

	/* The file ends before the size given. */
	sign_msg(t, "example.org", message, strlen(message), 10);
	assert_null(t->fields);
	assert_string_equal(t->error, "cannot read the spooled message: it is shorter than its "
	    "size");

	/* A rotation's retire-at passes: the keys process announces the change. */
	char path[256];
	const char *error;
	snprintf(path, sizeof(path), "%s/example.org/ed.state", t->dir);
	assert_int_equal(keyring_state_write(path, 0, time(NULL) - 1, NULL, &error), 0);
	snprintf(path, sizeof(path), "%s/example.org/rs.state", t->dir);
	assert_int_equal(keyring_state_write(path, 0, time(NULL) - 1, NULL, &error), 0);
	wait_for_list(t, "example.org", false);     /* within KEYS_CHECK_INTERVAL */
	sign_msg(t, "example.org", message, strlen(message), 0);
	assert_string_equal(t->fields, "");

	/* The keys process dies: signing fails closed. */
	assert_int_equal(unlink(path), 0);
	wait_for_list(t, "example.org", true);
	kill(t->pid, SIGKILL);
	real_keys_stop(t);
	sign_msg(t, "example.org", message, strlen(message), 0);
	assert_null(t->fields);
	assert_true(strcmp(t->error, "the keys process is not connected") == 0 ||
	    strcmp(t->error, "the keys process went away") == 0);
}

static void test_not_ready(void **state)
{
	struct t *t = *state;

	start_signer(t);
	assert_false(queue_signer_has_domain(t->s, "example.org"));
	sign_msg(t, "example.net", message, strlen(message), 0);
	assert_null(t->fields);
	assert_string_equal(t->error, "the keys process has not said which domains sign yet");
}

static void test_no_answer_times_out(void **state)
{
	struct t *t = *state;
	struct timespec a, b;

	start_signer(t);
	queue_signer_set_timeout(t->s, 300);
	fake_connect(t);
	t->mode = FAKE_SILENT;
	wait_for_list(t, "example.org", true);
	clock_gettime(CLOCK_MONOTONIC, &a);
	sign_msg(t, "example.org", message, strlen(message), 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_null(t->fields);
	assert_string_equal(t->error, "no answer from the keys process within 300 ms");
	assert_int_equal(t->requests, 1);
	long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	assert_true(ms >= 290 && ms < 5000);
}

static void test_hang_up(void **state)
{
	struct t *t = *state;

	start_signer(t);
	fake_connect(t);
	t->mode = FAKE_HANG_UP;
	wait_for_list(t, "example.org", true);
	sign_msg(t, "example.org", message, strlen(message), 0);
	assert_null(t->fields);
	assert_string_equal(t->error, "the keys process went away");
	/* And the next one finds no channel. */
	sign_msg(t, "example.org", message, strlen(message), 0);
	assert_string_equal(t->error, "the keys process is not connected");
	/* A domain without selectors still needs none. */
	sign_msg(t, "example.net", message, strlen(message), 0);
	assert_string_equal(t->fields, "");
}

static void test_answers(void **state)
{
	struct t *t = *state;
	char result[256];

	start_signer(t);
	fake_connect(t);
	wait_for_list(t, "example.org", true);

	t->mode = FAKE_ANSWER;
	sign_msg(t, "example.org", message, strlen(message), 0);
	verify(t, t->fields, message, strlen(message), result, sizeof(result));
	assert_string_equal(result, "ed:ed25519-sha256:pass,rs:rsa-sha256:pass");

	t->mode = FAKE_NO_KEY_FIRST;     /* the ed25519 key retired in between: left out */
	sign_msg(t, "example.org", message, strlen(message), 0);
	assert_string_equal(t->error, "");
	verify(t, t->fields, message, strlen(message), result, sizeof(result));
	assert_string_equal(result, "rs:rsa-sha256:pass");

	t->mode = FAKE_NO_KEY_ALL;
	sign_msg(t, "example.org", message, strlen(message), 0);
	assert_null(t->fields);
	assert_string_equal(t->error, "no selector of example.org signs any more (the keys "
	    "changed); try again");

	t->mode = FAKE_FAILED;
	sign_msg(t, "example.org", message, strlen(message), 0);
	assert_null(t->fields);
	assert_string_equal(t->error, "signing with example.org/rs failed in the keys process");

	t->mode = FAKE_EMPTY;
	sign_msg(t, "example.org", message, strlen(message), 0);
	assert_null(t->fields);
	assert_string_equal(t->error, "the keys process could not read the signing request");
	assert_int_equal(t->requests, 5);
}

static void test_message_without_from(void **state)
{
	struct t *t = *state;
	const char *msg = "To: bob@example.net\r\nSubject: x\r\n\r\nbody\r\n";

	start_signer(t);
	fake_connect(t);
	wait_for_list(t, "example.org", true);
	sign_msg(t, "example.org", msg, strlen(msg), 0);
	assert_null(t->fields);
	assert_int_equal(strncmp(t->error, "cannot sign: ", 13), 0);
	assert_int_equal(t->requests, 0);
}

static void test_reattach_fails_pending(void **state)
{
	struct t *t = *state;
	int fd = spool_file(t, message, strlen(message));
	off_t off = (off_t)strlen(PREFIX);

	start_signer(t);
	fake_connect(t);
	t->mode = FAKE_SILENT;
	wait_for_list(t, "example.org", true);
	queue_signer_sign(t->s, "example.org", fd, off, off + (off_t)strlen(message), on_done, t);
	while (t->requests == 0) {
		struct timeval tv = { 0, 10000 };

		event_base_loopexit(t->base, &tv);
		event_base_dispatch(t->base);
	}
	assert_false(t->done);
	ipc_channel_free(&t->fake);
	fake_connect(t);     /* a restarted keys process */
	assert_true(t->done);
	assert_string_equal(t->error, "the keys process was restarted");
	close(fd);
}

static void test_free_fails_pending(void **state)
{
	struct t *t = *state;
	int fd = spool_file(t, message, strlen(message));
	off_t off = (off_t)strlen(PREFIX);

	start_signer(t);
	fake_connect(t);
	t->mode = FAKE_SILENT;
	wait_for_list(t, "example.org", true);
	/* One waiting for the answer: fails inside free. */
	queue_signer_sign(t->s, "example.org", fd, off, off + (off_t)strlen(message), on_done, t);
	while (t->requests == 0) {
		struct timeval tv = { 0, 10000 };

		event_base_loopexit(t->base, &tv);
		event_base_dispatch(t->base);
	}
	queue_signer_free(&t->s);
	assert_true(t->done);
	assert_string_equal(t->error, "the queue is stopping");

	/* One still hashing: fails when the workpool delivers it. */
	t->s = queue_signer_new(t->base, t->pool);
	ipc_channel_free(&t->fake);
	fake_connect(t);
	wait_for_list(t, "example.org", true);
	t->done = false;
	queue_signer_sign(t->s, "example.org", fd, off, off + (off_t)strlen(message), on_done, t);
	queue_signer_free(&t->s);
	assert_false(t->done);
	workpool_free(&t->pool);
	assert_true(t->done);
	assert_string_equal(t->error, "the queue is stopping");

	/* One decided already ("" for a domain without keys) but not delivered. */
	t->s = queue_signer_new(t->base, NULL);
	ipc_channel_free(&t->fake);
	fake_connect(t);
	wait_for_list(t, "example.org", true);
	t->done = false;
	queue_signer_sign(t->s, "example.net", fd, off, off + (off_t)strlen(message), on_done, t);
	assert_false(t->done);
	queue_signer_free(&t->s);
	assert_true(t->done);
	assert_null(t->fields);
	assert_string_equal(t->error, "the queue is stopping");
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_real_keys_process, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_ready, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_answer_times_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hang_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_message_without_from, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reattach_fails_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_fails_pending, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
