/* rampart-log — see rampart-log.h. */
#include "cmd/rampart-log.h"
#include "cmd/rampart-cli.h"

#include "lib/config.h"
#include "lib/netaddr.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

/* audit_write's longest line is about 50 KB (17 fields of 512 bytes, escaped): a
 * longer run without a newline is not an event and is skipped, not buffered. */
#define LINE_MAX_BYTES (1024 * 1024)
#define READ_CHUNK 65536
/* --follow polls, like tail -F without inotify: cheap and rotation-proof. */
#define POLL_NS (200 * 1000 * 1000L)
/* After a rotation, writers reopen within a second (audit_reopen_if_rotated);
 * keep reading the old file this long so their last lines are not lost. */
#define ROTATE_GRACE_SECONDS 5
/* Largest -n accepted: nine digits. */
#define MAX_DIGITS 9

struct log_filter {
	const char *user;
	const char *event;
	bool failures;
	bool has_ip;
	const char *ip_text;
	struct cidr ip;
};

/* One open file: the current audit log, or the previous one after a rotation. */
struct log_source {
	int fd;                /* -1 when closed */
	dev_t dev;
	ino_t ino;
	off_t offset;          /* bytes read so far, to notice truncation */
	char *buf;             /* the partial line so far */
	size_t len, cap;
	bool skipping;         /* inside an overlong line: drop bytes until its newline */
	time_t close_at;       /* the previous file: when to stop reading it */
};

/* The last N matching lines while reading what the file held at start. */
struct log_ring {
	char **v;
	size_t n, cap, head, limit;
};

struct log_view {
	const char *path;
	struct log_filter filter;
	long last;             /* -n; -1 = everything */
	bool follow, json;
	bool initial;          /* reading what existed at start (for -n) */
	bool printed;
	unsigned long skipped;
	struct log_source cur, old;
	struct log_ring ring;
};

static volatile sig_atomic_t stop_requested;

static void
on_stop_signal(int sig)
{
	stop_requested = 1;
}

static void __attribute__((noreturn))
out_of_memory(void)
{
	fputs("rampart: out of memory.\n", stderr);
	exit(EXIT_REFUSED);
}

static void *
xrealloc(void *p, size_t size)
{
	void *q = realloc(p, size);
	if (q == NULL)
		out_of_memory();
	return q;
}

/* ---------------------------------------------------------------- options */

/* "--name VALUE" or "--name=VALUE" (and "-n5" for -n): the value, or NULL when
 * argv[*i] is not this option. *missing is set when the value is absent. */
static const char *
option_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
	const char *a = argv[*i];
	size_t len = strlen(name);
	if (strncmp(a, name, len) != 0)
		return NULL;
	if (a[len] == '=' && name[1] == '-')
		return a + len + 1;
	if (a[len] != '\0') {
		if (name[1] != '-')   /* -n5 */
			return a + len;
		return NULL;          /* --users is not --user */
	}
	if (*i + 1 >= argc) {
		*missing = true;
		return NULL;
	}
	return argv[++*i];
}

static int
parse_options(struct log_view *v, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val, *error;
		bool missing = false;
		if (strcmp(a, "--failures") == 0) {
			v->filter.failures = true;
		} else if (strcmp(a, "-f") == 0 || strcmp(a, "--follow") == 0) {
			v->follow = true;
		} else if (strcmp(a, "--json") == 0) {
			v->json = true;
		} else if ((val = option_value(argc, argv, &i, "--user", &missing)) != NULL) {
			v->filter.user = val;
		} else if ((val = option_value(argc, argv, &i, "--event", &missing)) != NULL) {
			v->filter.event = val;
		} else if ((val = option_value(argc, argv, &i, "--ip", &missing)) != NULL) {
			if (cidr_parse(val, &v->filter.ip, &error) < 0) {
				int elen = (int)strlen(error);   /* the sentence without its period */
				if (elen > 0 && error[elen - 1] == '.')
					elen--;
				return usage_error("--ip %s: %.*s", val, elen, error);
			}
			v->filter.has_ip = true;
			v->filter.ip_text = val;
		} else if ((val = option_value(argc, argv, &i, "-n", &missing)) != NULL) {
			size_t len = strlen(val);
			if (len == 0 || len > MAX_DIGITS || strspn(val, "0123456789") != len)
				return usage_error("-n needs a number of lines, not '%s'", val);
			v->last = strtol(val, NULL, 10);
		} else if (missing) {
			return usage_error("%s needs a value", a);
		} else if (a[0] == '-') {
			return usage_error("'log' does not take the option %s", a);
		} else {
			return usage_error("'log' takes no arguments, only options");
		}
	}
	return 0;
}

/* ---------------------------------------------------------------- matching */

static const char *
field(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

static bool
cidr_overlap(const struct cidr *a, const struct cidr *b)
{
	const struct cidr *wide = a->bits <= b->bits ? a : b;
	const struct cidr *narrow = wide == a ? b : a;
	return cidr_contains(wide, &narrow->net);
}

static bool
ip_matches(const struct log_filter *f, json_t *obj)
{
	const char *ip = field(obj, "ip"), *network = field(obj, "network");
	struct netaddr addr;
	struct cidr net;
	const char *error;

	if (ip != NULL) {
		if (netaddr_parse(ip, &addr) == 0) {
			if (cidr_contains(&f->ip, &addr))
				return true;
		} else if (strcasecmp(ip, f->ip_text) == 0) {
			return true;
		}
	}
	return network != NULL && cidr_parse(network, &net, &error) == 0 &&
	    cidr_overlap(&f->ip, &net);
}

static bool
filter_matches(const struct log_filter *f, json_t *obj)
{
	const char *event = field(obj, "event"), *result = field(obj, "result");
	if (f->event != NULL && strcmp(event, f->event) != 0)
		return false;
	if (f->failures && !(result != NULL && strcmp(result, "fail") == 0) &&
	    strcmp(event, "block") != 0 && strcmp(event, "lockout") != 0)
		return false;
	if (f->user != NULL) {
		const char *user = field(obj, "user");
		if (user == NULL || strcasecmp(user, f->user) != 0)
			return false;
	}
	return !f->has_ip || ip_matches(f, obj);
}

/* ---------------------------------------------------------------- output */

/* Writes s with control characters (C0, DEL, C1) and the bidirectional controls
 * (U+061C, U+200E/F, U+202A-E, U+2066-9) as '?', so that a peer's string cannot
 * drive the terminal or reorder what is shown. s is valid UTF-8 (jansson). */
static void
put_clean(FILE *m, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p != '\0') {
		size_t skip = 0;
		if (*p < 0x20 || *p == 0x7f)
			skip = 1;
		else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			skip = 2;
		else if (p[0] == 0xd8 && p[1] == 0x9c)
			skip = 2;
		else if (p[0] == 0xe2 && p[1] == 0x80 &&
		    (p[2] == 0x8e || p[2] == 0x8f || (p[2] >= 0xaa && p[2] <= 0xae)))
			skip = 3;
		else if (p[0] == 0xe2 && p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9)
			skip = 3;
		if (skip > 0) {
			putc('?', m);
			p += skip;
		} else {
			putc(*p++, m);
		}
	}
}

/* " PREFIXvalue" when the field is a string. */
static void
put_field(FILE *m, json_t *obj, const char *key, const char *prefix)
{
	const char *s = field(obj, key);
	if (s == NULL)
		return;
	putc(' ', m);
	fputs(prefix, m);
	put_clean(m, s);
}

/* The human form (see rampart-log.h), with its newline. */
static char *
format_human(json_t *obj)
{
	char *text = NULL;
	size_t size = 0;
	FILE *m = open_memstream(&text, &size);
	if (m == NULL)
		out_of_memory();

	put_clean(m, field(obj, "ts"));
	put_field(m, obj, "event", "");
	put_field(m, obj, "result", "");
	put_field(m, obj, "user", "");
	const char *ip = field(obj, "ip");
	json_t *port = json_object_get(obj, "port");
	if (ip != NULL) {
		/* RFC 3986 §3.2.2: an IPv6 address followed by a port is bracketed. */
		bool bracket = json_is_integer(port) && strchr(ip, ':') != NULL;
		fputs(bracket ? " [" : " ", m);
		put_clean(m, ip);
		if (bracket)
			putc(']', m);
		if (json_is_integer(port))
			fprintf(m, ":%" JSON_INTEGER_FORMAT, json_integer_value(port));
	}
	put_field(m, obj, "listener", "");
	put_field(m, obj, "proto", "");
	put_field(m, obj, "mech", "");
	put_field(m, obj, "tls", "");
	put_field(m, obj, "reason", "");
	put_field(m, obj, "network", "");
	put_field(m, obj, "until", "until ");
	put_field(m, obj, "action", "");
	put_field(m, obj, "target", "");
	put_field(m, obj, "actor", "by ");
	put_field(m, obj, "session", "session=");
	putc('\n', m);
	if (fclose(m) != 0 || text == NULL)
		out_of_memory();
	return text;
}

static void
ring_push(struct log_ring *r, char *text)
{
	if (r->limit == 0) {
		free(text);
		return;
	}
	if (r->n < r->limit) {
		if (r->n == r->cap) {
			r->cap = r->cap == 0 ? 64 : r->cap * 2;
			if (r->cap > r->limit)
				r->cap = r->limit;
			r->v = xrealloc(r->v, r->cap * sizeof(*r->v));
		}
		r->v[r->n++] = text;
		return;
	}
	free(r->v[r->head]);
	r->v[r->head] = text;
	r->head = (r->head + 1) % r->limit;
}

static void
ring_flush(struct log_ring *r)
{
	for (size_t i = 0; i < r->n; i++) {
		size_t k = (r->head + i) % r->n;
		fputs(r->v[k], stdout);
		free(r->v[k]);
	}
	free(r->v);
	memset(r, 0, sizeof(*r));
}

/* One line of the file (without its newline). */
static void
view_line(struct log_view *v, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *obj = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (obj == NULL || !json_is_object(obj) || field(obj, "ts") == NULL ||
	    field(obj, "event") == NULL) {
		json_decref(obj);
		v->skipped++;
		return;
	}
	if (!filter_matches(&v->filter, obj)) {
		json_decref(obj);
		return;
	}
	char *text;
	if (v->json) {
		text = xrealloc(NULL, len + 2);
		memcpy(text, line, len);
		text[len] = '\n';
		text[len + 1] = '\0';
	} else {
		text = format_human(obj);
	}
	json_decref(obj);
	if (v->initial && v->last >= 0) {
		ring_push(&v->ring, text);
	} else {
		fputs(text, stdout);
		free(text);
		v->printed = true;
	}
}

/* ---------------------------------------------------------------- reading */

static void
source_feed(struct log_view *v, struct log_source *s, const char *p, size_t n)
{
	while (n > 0) {
		const char *nl = memchr(p, '\n', n);
		size_t part = nl != NULL ? (size_t)(nl - p) : n;
		if (s->skipping) {
			/* the rest of an overlong line */
		} else if (s->len + part > LINE_MAX_BYTES) {
			v->skipped++;
			s->skipping = true;
			s->len = 0;
		} else if (nl != NULL && s->len == 0) {
			view_line(v, p, part);
		} else {
			if (s->len + part > s->cap) {
				s->cap = s->len + part + READ_CHUNK;
				s->buf = xrealloc(s->buf, s->cap);
			}
			memcpy(s->buf + s->len, p, part);
			s->len += part;
			if (nl != NULL) {
				view_line(v, s->buf, s->len);
				s->len = 0;
			}
		}
		if (nl == NULL)
			return;
		s->skipping = false;
		p = nl + 1;
		n -= part + 1;
	}
}

/* A last line without its newline: a line all the same (a writer that died). */
static void
source_flush_partial(struct log_view *v, struct log_source *s)
{
	if (s->len > 0 && !s->skipping)
		view_line(v, s->buf, s->len);
	s->len = 0;
	s->skipping = false;
}

static void
source_close(struct log_source *s)
{
	if (s->fd >= 0)
		close(s->fd);
	free(s->buf);
	memset(s, 0, sizeof(*s));
	s->fd = -1;
}

/* Opens the log; 1 opened, 0 it does not exist, -1 error (said on stderr). */
static int
source_open(struct log_source *s, const char *path)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0) {
		fprintf(stderr, "Cannot open the audit log %s: %s.\n", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "The audit log %s is not a regular file.\n", path);
		close(fd);
		return -1;
	}
	source_close(s);
	s->fd = fd;
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	return 1;
}

/* Reads everything s has now. 0, or -1 on a read error (said on stderr). */
static int
source_drain(struct log_view *v, struct log_source *s, const char *path)
{
	char chunk[READ_CHUNK];
	for (;;) {
		ssize_t n = read(s->fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR) {
			if (stop_requested)
				return 0;
			continue;
		}
		if (n < 0) {
			fprintf(stderr, "Cannot read the audit log %s: %s.\n", path, strerror(errno));
			return -1;
		}
		if (n == 0)
			return 0;
		s->offset += n;
		source_feed(v, s, chunk, (size_t)n);
	}
}

/* ---------------------------------------------------------------- follow */

/* One poll: the previous file (for its grace period), truncation, rotation. */
static int
follow_once(struct log_view *v)
{
	time_t now = time(NULL);
	struct stat st;

	if (v->old.fd >= 0) {
		if (source_drain(v, &v->old, v->path) < 0)
			return -1;
		if (now >= v->old.close_at) {
			source_flush_partial(v, &v->old);
			source_close(&v->old);
		}
	}
	if (v->cur.fd >= 0) {
		/* Truncated in place (copytruncate): start again from the top. */
		if (fstat(v->cur.fd, &st) == 0 && st.st_size < v->cur.offset) {
			lseek(v->cur.fd, 0, SEEK_SET);
			v->cur.offset = 0;
			v->cur.len = 0;
			v->cur.skipping = false;
		}
		if (source_drain(v, &v->cur, v->path) < 0)
			return -1;
	}
	bool exists = stat(v->path, &st) == 0;
	if (exists && v->cur.fd >= 0 && st.st_dev == v->cur.dev && st.st_ino == v->cur.ino)
		return 0;
	if (!exists && v->cur.fd < 0)
		return 0;
	/* Renamed, removed or replaced: keep reading the old file for a while. */
	if (v->cur.fd >= 0) {
		if (v->old.fd >= 0) {
			source_drain(v, &v->old, v->path);
			source_flush_partial(v, &v->old);
			source_close(&v->old);
		}
		v->old = v->cur;
		v->old.close_at = now + ROTATE_GRACE_SECONDS;
		memset(&v->cur, 0, sizeof(v->cur));
		v->cur.fd = -1;
	}
	if (!exists)
		return 0;
	int r = source_open(&v->cur, v->path);
	if (r < 0)
		return -1;
	return r == 0 ? 0 : source_drain(v, &v->cur, v->path);
}

static int
follow(struct log_view *v)
{
	struct sigaction sa, old_int, old_term;
	sigset_t unblock;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;   /* no SA_RESTART: the sleep ends at once */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sigemptyset(&unblock);
	sigaddset(&unblock, SIGINT);
	sigaddset(&unblock, SIGTERM);
	sigprocmask(SIG_UNBLOCK, &unblock, NULL);

	int ret = 0;
	while (!stop_requested) {
		struct timespec ts = { 0, POLL_NS };
		nanosleep(&ts, NULL);
		if (stop_requested)
			break;
		v->printed = false;
		if (follow_once(v) < 0) {
			ret = EXIT_REFUSED;
			break;
		}
		if (v->printed && fflush(stdout) != 0) {
			fprintf(stderr, "Cannot write the output: %s.\n", strerror(errno));
			ret = EXIT_REFUSED;
			break;
		}
	}
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	return ret;
}

/* ---------------------------------------------------------------- main */

int
rampart_log_main(const struct config *cfg, int argc, char **argv)
{
	struct log_view v;
	memset(&v, 0, sizeof(v));
	v.path = cfg->audit_log;
	v.last = -1;
	v.cur.fd = v.old.fd = -1;
	assert(argc >= 1 && strcmp(argv[0], "log") == 0);

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			fputs("Usage: rampart log [OPTIONS]\n" RAMPART_LOG_USAGE, stdout);
			return fflush(stdout) == 0 ? 0 : EXIT_REFUSED;
		}
	int ret = parse_options(&v, argc, argv);
	if (ret != 0)
		return ret;
	if (v.path == NULL || v.path[0] == '\0') {
		fputs("No audit_log is configured.\n", stderr);
		return EXIT_REFUSED;
	}
	stop_requested = 0;

	/* What the file holds now. */
	v.initial = true;
	v.ring.limit = v.last >= 0 ? (size_t)v.last : 0;
	int opened = source_open(&v.cur, v.path);
	if (opened < 0)
		ret = EXIT_REFUSED;
	else if (opened > 0 && source_drain(&v, &v.cur, v.path) < 0)
		ret = EXIT_REFUSED;
	/* Without --follow a last line without newline is still shown; when following,
	 * it is a line being written: wait for the rest of it. */
	if (ret == 0 && !v.follow)
		source_flush_partial(&v, &v.cur);
	v.initial = false;
	ring_flush(&v.ring);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "Cannot write the output: %s.\n", strerror(errno));
		ret = EXIT_REFUSED;
	}

	if (ret == 0 && v.follow)
		ret = follow(&v);

	source_close(&v.cur);
	source_close(&v.old);
	if (v.skipped > 0)
		fprintf(stderr, "rampart: skipped %lu %s not valid audit JSON.\n", v.skipped,
		    v.skipped == 1 ? "line that is" : "lines that are");
	if (fflush(stdout) != 0 && ret == 0) {
		fprintf(stderr, "Cannot write the output: %s.\n", strerror(errno));
		ret = EXIT_REFUSED;
	}
	return ret;
}
