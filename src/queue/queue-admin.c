/* queue-admin — see queue-admin.h. */
#include "queue/queue-admin.h"
#include "queue/envelope.h"
#include "queue/spool.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct list_ctx {
	struct spool *spool;
	FILE *out;
	unsigned count;
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

static int
list_one(const char *id, void *arg)
{
	struct list_ctx *c = arg;
	struct spool_message *m = NULL;
	const char *error;
	c->count++;
	if (spool_load_message(c->spool, id, &m, NULL, &error) < 0) {
		fprintf(c->out, "%s  (unreadable: %s)\n", id, error);
		return 0;
	}
	const struct envelope *e = m->envelope;
	/* The message data only: not the envelope, nor the trailer after data-end. */
	long long size = (long long)(m->data_end - m->data_offset);
	char age[32];
	format_age(age, sizeof(age), (long long)(c->now - e->received_at));
	fprintf(c->out, "%s  %6s  %9lld  <%s>%s%s\n", id, age, size, e->mail_from,
	    m->folder[0] != '\0' ? "  to folder " : "", m->folder);
	for (size_t i = 0; i < e->rcpt_count; i++) {
		const struct envelope_rcpt *r = &e->rcpts[i];
		if (r->mailbox != NULL && strcmp(r->mailbox, r->address) != 0)
			fprintf(c->out, "    %-9s %s (to %s)\n", status_name(r->status), r->address,
			    r->mailbox);
		else
			fprintf(c->out, "    %-9s %s%s\n", status_name(r->status), r->address,
			    r->mailbox == NULL ? " (remote)" : "");
	}
	spool_message_free(&m);
	return 0;
}

int
queue_admin_list(const char *spool_dir, FILE *out, const char **error_r)
{
	struct list_ctx c = { .out = out, .now = time(NULL) };
	if (spool_open(spool_dir, &c.spool, error_r) < 0)
		return -1;
	int rc = spool_list(c.spool, list_one, &c, error_r);
	spool_close(&c.spool);
	if (rc < 0)
		return -1;
	fprintf(out, "%u message%s in the queue\n", c.count, c.count == 1 ? "" : "s");
	return 0;
}
