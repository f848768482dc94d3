/* queue-admin — see queue-admin.h. */
#include "queue/queue-admin.h"
#include "queue/envelope.h"
#include "queue/queue-ctl.h"
#include "queue/spool.h"
#include "lib/error.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* An added field longer than this is shown as its name and length. */
#define ADDED_SHOW_MAX 100

struct list_ctx {
	struct spool *spool;
	FILE *out;
	enum spool_place place;
	unsigned count, held;
	time_t now;
};

static void
format_age(char *buf, size_t size, long long secs)
{
	if (secs < 0)
		secs = 0;
	if (secs < 120)
		snprintf(buf, size, "%llds", secs);
	else if (secs < 7200)
		snprintf(buf, size, "%lldm", secs / 60);
	else if (secs < 172800)
		snprintf(buf, size, "%lldh", secs / 3600);
	else
		snprintf(buf, size, "%lldd", secs / 86400);
}

static const char *
status_name(enum envelope_rcpt_status st)
{
	switch (st) {
	case ENVELOPE_RCPT_PENDING: return "pending";
	case ENVELOPE_RCPT_DONE: return "delivered";
	case ENVELOPE_RCPT_FAILED: return "failed";
	}
	return "?";
}

/* "    STATE     ADDRESS (to MAILBOX)" or "... (remote)". */
static void
put_rcpt_line(FILE *out, const struct envelope_rcpt *r)
{
	if (r->mailbox != NULL && strcmp(r->mailbox, r->address) != 0)
		fprintf(out, "    %-9s %s (to %s)", status_name(r->status), r->address, r->mailbox);
	else
		fprintf(out, "    %-9s %s%s", status_name(r->status), r->address,
		    r->mailbox == NULL ? " (remote)" : "");
}

static int
list_one(const char *id, void *arg)
{
	struct list_ctx *c = arg;
	struct spool_message *m = NULL;
	const char *error, *held = c->place == SPOOL_HELD ? "  held" : "";
	c->count++;
	if (c->place == SPOOL_HELD)
		c->held++;
	if (spool_load_message_in(c->spool, c->place, id, &m, NULL, &error) < 0) {
		fprintf(c->out, "%s  (unreadable: %s)%s\n", id, error, held);
		return 0;
	}
	const struct envelope *e = m->envelope;
	/* The message data only: not the envelope, nor the trailer after data-end. */
	long long size = (long long)(m->data_end - m->data_offset);
	char age[32];
	format_age(age, sizeof(age), (long long)(c->now - e->received_at));
	fprintf(c->out, "%s  %6s  %9lld  <%s>%s%s%s\n", id, age, size, e->mail_from,
	    m->folder[0] != '\0' ? "  to folder " : "", m->folder, held);
	for (size_t i = 0; i < e->rcpt_count; i++) {
		put_rcpt_line(c->out, &e->rcpts[i]);
		fputc('\n', c->out);
	}
	spool_message_free(&m);
	return 0;
}

int
queue_admin_list(const char *spool_dir, FILE *out, const char **error_r)
{
	struct list_ctx c = { .out = out, .now = time(NULL), .place = SPOOL_QUEUED };
	if (spool_open(spool_dir, &c.spool, error_r) < 0)
		return -1;
	int rc = spool_list(c.spool, list_one, &c, error_r);
	if (rc >= 0) {
		c.place = SPOOL_HELD;
		rc = spool_list_held(c.spool, list_one, &c, error_r);
	}
	spool_close(&c.spool);
	if (rc < 0)
		return -1;
	fprintf(out, "%u message%s in the queue", c.count, c.count == 1 ? "" : "s");
	if (c.held > 0)
		fprintf(out, " (%u held)", c.held);
	fputc('\n', out);
	return 0;
}

/* ---------------------------------------------------------------- show */

/* Bytes as text for a terminal: TAB and printable bytes (UTF-8 too) as they
 * are, other control characters as \xNN, CR and LF dropped. */
static void
put_clean(FILE *out, const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)p[i];
		if (ch == '\r' || ch == '\n')
			continue;
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			fprintf(out, "\\x%02x", ch);
		else
			fputc(ch, out);
	}
}

static void
put_notify(FILE *out, unsigned notify)
{
	static const char *const names[] = { "NEVER", "SUCCESS", "FAILURE", "DELAY" };
	const char *sep = " notify=";
	for (unsigned b = 0; b < 4; b++) {
		if ((notify & (1u << b)) != 0) {
			fprintf(out, "%s%s", sep, names[b]);
			sep = ",";
		}
	}
}

/* The added header fields: each in full when short, else "Name (N bytes)". */
static void
put_added(FILE *out, const char *added, size_t len)
{
	if (len == 0) {
		fputs("added:      nothing\n", out);
		return;
	}
	const char *p = added, *end = added + len;
	while (p < end) {
		/* A field runs to the CRLF not followed by folding white space. */
		const char *q = p;
		for (;;) {
			const char *nl = memchr(q, '\n', (size_t)(end - q));
			q = nl == NULL ? end : nl + 1;
			if (q >= end || (*q != ' ' && *q != '\t'))
				break;
		}
		size_t flen = (size_t)(q - p);
		const char *colon = memchr(p, ':', flen);
		fputs("added:      ", out);
		if (flen <= ADDED_SHOW_MAX || colon == NULL) {
			put_clean(out, p, flen);
		} else {
			put_clean(out, p, (size_t)(colon - p));
			fprintf(out, " (%zu bytes)", flen);
		}
		fputc('\n', out);
		p = q;
	}
}

/* The header section: the data up to its first empty line, at most
 * QUEUE_ADMIN_HEADER_MAX bytes. */
static int
put_header_section(FILE *out, int fd, const struct spool_message *m, const char **error_r)
{
	size_t avail = (size_t)(m->data_end - m->data_offset);
	size_t want = avail < QUEUE_ADMIN_HEADER_MAX ? avail : QUEUE_ADMIN_HEADER_MAX;
	char *buf = malloc(want + 1);
	size_t have = 0;
	if (buf == NULL)
		return error_fail(error_r, ENOMEM, "out of memory");
	while (have < want) {
		ssize_t n = pread(fd, buf + have, want - have, m->data_offset + (off_t)have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int err = n < 0 ? errno : EBADMSG;
			free(buf);
			return error_fail(error_r, err, "cannot read the message: %s",
			    n < 0 ? strerror(err) : "the file is shorter than it says");
		}
		have += (size_t)n;
	}
	fputs("header section:\n", out);
	bool ended = false;
	for (size_t at = 0; at < have;) {
		const char *nl = memchr(buf + at, '\n', have - at);
		size_t next = nl != NULL ? (size_t)(nl - buf) + 1 : have;
		size_t llen = next - at, clen = llen;
		if (nl != NULL && --clen > 0 && buf[at + clen - 1] == '\r')
			clen--;
		if (nl != NULL && clen == 0) {
			ended = true;   /* the empty line that ends the header section */
			break;
		}
		fputs("    ", out);
		put_clean(out, buf + at, clen);
		fputc('\n', out);
		at = next;
	}
	if (!ended && have == 0)
		fputs("    (no message data)\n", out);
	else if (!ended && avail > want)
		fprintf(out, "    (cut at %d bytes)\n", QUEUE_ADMIN_HEADER_MAX);
	free(buf);
	return 0;
}

static void
put_envelope(FILE *out, const struct spool_message *m, bool held, time_t now)
{
	static const char *const rets[] = { "-", "FULL", "HDRS" };
	const struct envelope *e = m->envelope;
	char when[64] = "?", age[32];
	time_t t = (time_t)e->received_at;
	struct tm tm;
	if (gmtime_r(&t, &tm) != NULL)
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	format_age(age, sizeof(age), (long long)(now - t));
	fprintf(out, "id:         %s\n", e->id);
	fprintf(out, "state:      %s\n", held ? "held (not delivered until released)" : "queued");
	fprintf(out, "received:   %s (%s ago)\n", when, age);
	fprintf(out, "from:       <%s>\n", e->mail_from);
	fprintf(out, "client:     %s port %u, helo %s\n", e->client_addr,
	    (unsigned)e->client_port, e->helo);
	fprintf(out, "auth:       %s\n", e->auth_user != NULL ? e->auth_user : "-");
	fprintf(out, "listener:   %s\n", e->listener);
	fprintf(out, "body:       %s%s\n", e->body == ENVELOPE_BODY_8BITMIME ? "8BITMIME" : "7BIT",
	    e->smtputf8 ? ", SMTPUTF8" : "");
	fprintf(out, "ret:        %s\n", (size_t)e->ret < 3 ? rets[e->ret] : "?");
	fprintf(out, "envid:      %s\n", e->envid != NULL ? e->envid : "-");
	fprintf(out, "size:       %lld bytes", (long long)(m->data_end - m->data_offset));
	if (e->size_declared > 0)
		fprintf(out, " (declared %" PRIu64 ")", e->size_declared);
	fputc('\n', out);
	fprintf(out, "folder:     %s\n", m->folder[0] != '\0' ? m->folder : "INBOX");
	put_added(out, m->added, m->added_len);
	fprintf(out, "recipients: %zu (%zu pending)\n", e->rcpt_count, envelope_pending_count(e));
	for (size_t i = 0; i < e->rcpt_count; i++) {
		const struct envelope_rcpt *r = &e->rcpts[i];
		put_rcpt_line(out, r);
		put_notify(out, r->notify);
		if (r->orcpt != NULL)
			fprintf(out, " orcpt=%s", r->orcpt);
		fputc('\n', out);
	}
}

int
queue_admin_show(const char *spool_dir, const char *id, FILE *out, const char **error_r)
{
	struct spool *s = NULL;
	struct spool_message *m = NULL;
	enum spool_place place;
	int fd = -1;

	if (!spool_id_valid(id))
		return error_fail(error_r, EINVAL, "invalid message id");
	if (spool_open(spool_dir, &s, error_r) < 0)
		return -1;
	int rc = spool_locate(s, id, &place, error_r);
	if (rc == 0)
		rc = spool_load_message_in(s, place, id, &m, &fd, error_r);
	if (rc == 0) {
		put_envelope(out, m, place == SPOOL_HELD, time(NULL));
		rc = put_header_section(out, fd, m, error_r);
	}
	int err = errno;
	if (fd >= 0)
		close(fd);
	spool_message_free(&m);
	spool_close(&s);
	errno = err;
	return rc;
}

/* ---------------------------------------------------------------- changes */

int
queue_admin_locate(const char *spool_dir, const char *id, bool *held_r,
    const char **error_r)
{
	struct spool *s;
	enum spool_place place;
	if (!spool_id_valid(id))
		return error_fail(error_r, EINVAL, "invalid message id");
	if (spool_open(spool_dir, &s, error_r) < 0)
		return -1;
	int rc = spool_locate(s, id, &place, error_r);
	int err = errno;
	spool_close(&s);
	*held_r = rc == 0 && place == SPOOL_HELD;
	errno = err;
	return rc;
}

enum change { CHANGE_HOLD, CHANGE_RELEASE, CHANGE_REMOVE };

/* One change under the spool lock. */
static int
change(const char *spool_dir, const char *id, enum change what, const char **error_r)
{
	struct spool *s;
	enum spool_place place;
	const char *why;

	if (!spool_id_valid(id))
		return error_fail(error_r, EINVAL, "invalid message id");
	if (spool_open(spool_dir, &s, error_r) < 0)
		return -1;
	int lock = queue_ctl_lock_spool(spool_dir, &why);
	if (lock < 0) {
		int err = errno;
		spool_close(&s);
		if (err == EWOULDBLOCK)
			return error_fail(error_r, EBUSY, "rampartd's queue is running (it holds the "
			    "spool lock); ask it instead");
		return error_fail(error_r, err, "%s: %s", why, strerror(err));
	}
	int rc;
	switch (what) {
	case CHANGE_HOLD:
		rc = spool_hold(s, id, error_r);
		break;
	case CHANGE_RELEASE:
		rc = spool_release(s, id, error_r);
		break;
	default:
		rc = spool_locate(s, id, &place, error_r);
		if (rc == 0)
			rc = place == SPOOL_HELD ? spool_remove_held(s, id, error_r) :
			    spool_remove(s, id, error_r);
		break;
	}
	int err = errno;
	close(lock);
	spool_close(&s);
	errno = err;
	return rc;
}

int
queue_admin_hold(const char *spool_dir, const char *id, const char **error_r)
{
	return change(spool_dir, id, CHANGE_HOLD, error_r);
}

int
queue_admin_release(const char *spool_dir, const char *id, const char **error_r)
{
	return change(spool_dir, id, CHANGE_RELEASE, error_r);
}

int
queue_admin_remove(const char *spool_dir, const char *id, const char **error_r)
{
	return change(spool_dir, id, CHANGE_REMOVE, error_r);
}
