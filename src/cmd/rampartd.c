/*
 * rampartd — the Rampart daemon's parent process.
 *
 * Reads the configuration, binds every listener (one SO_REUSEPORT socket per
 * front process, so the kernel spreads connections), forks the auth, queue,
 * keys and front processes, and hands each pair of them that talks a channel
 * (CTL_PEER: front-auth, front-queue, queue-keys). It then
 * supervises: a child that dies is restarted and re-wired; SIGTERM/SIGINT stop
 * gracefully (fronts finish open transactions within shutdown_grace, then the
 * queue, keys and auth processes stop, in that order: the queue may still need
 * signatures while it finishes); SIGHUP re-reads the configuration and
 * certificates and starts a new generation of fronts on the same sockets while
 * the old ones finish their sessions.
 *
 * Usage: rampartd [-d] [-n] [-c FILE] [-o key=value]...
 */
#include "auth/auth-process.h"
#include "front/front-process.h"
#include "keys/keys-process.h"
#include "lib/config.h"
#include "lib/ctl-msg.h"
#include "lib/ipc.h"
#include "lib/log.h"
#include "lib/wipe-alloc.h"
#include "net/tls.h"
#include "queue/queue-process.h"
#include "rampart-build.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pwd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#define MAX_OVERRIDES 128

struct child {
	enum proc_kind kind;
	unsigned index;          /* front number */
	unsigned generation;     /* fronts: which configuration they run */
	pid_t pid;
	struct ipc_channel *ctl;
	bool stopping;           /* asked to stop: do not restart */
	bool draining;           /* ... and only to drain (reload), not to shut down */
	bool ready;              /* reported CTL_READY: it started and served */
	unsigned failed_starts;  /* consecutive deaths before becoming ready */
	struct event *restart;   /* delayed restart after a failed start */
};

struct parent {
	struct config *cfg;           /* current configuration (children hold copies) */
	const char *config_path;
	char **overrides;
	size_t noverrides;
	struct event_base *base;
	int **listen_fds;             /* [listener][front] */
	size_t nlisten;
	unsigned nfronts;
	unsigned generation;
	struct child auth, queue, keys;
	struct child *fronts;         /* current generation, nfronts entries */
	struct child *old_fronts;     /* draining older generations */
	size_t nold;
	bool shutting_down;
	struct event *ev_reload;      /* coalesces a burst of SIGHUPs into one reload */
};

static struct parent parent;      /* the one process context of the parent */

/* The signals the parent handles. They stay blocked from start-up until the
 * handlers are in place: the listeners accept connections (into their backlog)
 * before that, and a SIGHUP in that window must not kill the daemon. */
static sigset_t handled_signals;

static void
signals_block(bool block)
{
	sigprocmask(block ? SIG_BLOCK : SIG_UNBLOCK, &handled_signals, NULL);
}

static void
usage(void)
{
	fprintf(stderr, "usage: rampartd [-d] [-n] [-c FILE] [-o key=value]...\n"
	    "  -c FILE   configuration file (default /etc/rampart/rampart.conf)\n"
	    "  -d        stay in the foreground, log to stderr\n"
	    "  -n        check the configuration and exit\n"
	    "  -o K=V    override a setting (listener.NAME.key=value for listeners)\n");
	exit(2);
}

/* ---- sockets ---- */

static int
bind_listener(const struct config_listener *l, char **error_r)
{
	struct sockaddr_storage ss;
	socklen_t len;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, l->address, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)l->port);
		len = sizeof(*in);
	} else if (inet_pton(AF_INET6, l->address, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)l->port);
		len = sizeof(*in6);
	} else {
		if (asprintf(error_r, "listener %s: address %s is not a numeric IP address",
		    l->name, l->address) < 0)
			*error_r = NULL;
		return -1;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    (ss.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 511) < 0) {
		if (asprintf(error_r, "listener %s: cannot listen on %s port %lld: %s", l->name,
		    l->address, (long long)l->port, strerror(errno)) < 0)
			*error_r = NULL;
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static void
open_listeners(struct parent *p)
{
	p->nlisten = p->cfg->nlisteners;
	p->listen_fds = calloc(p->nlisten, sizeof(*p->listen_fds));
	for (size_t i = 0; i < p->nlisten; i++) {
		p->listen_fds[i] = calloc(p->nfronts, sizeof(int));
		for (unsigned j = 0; j < p->nfronts; j++) {
			char *error = NULL;
			p->listen_fds[i][j] = bind_listener(&p->cfg->listeners[i], &error);
			if (p->listen_fds[i][j] < 0)
				fatal("%s", error);
		}
		log_info("listening on %s port %lld (%s, %s)", p->cfg->listeners[i].address,
		    (long long)p->cfg->listeners[i].port, p->cfg->listeners[i].name,
		    listener_role_name(p->cfg->listeners[i].role));
	}
}

/* ---- children ---- */

/* Closes fds lo..hi (inclusive): close_range(2), or one by one where the kernel
 * lacks it (before Linux 5.9), up to the highest fd the process may have. */
static void
close_fds_between(unsigned lo, unsigned hi)
{
	if (lo > hi || close_range(lo, hi, 0) == 0)
		return;
	long max = sysconf(_SC_OPEN_MAX);
	unsigned long limit = max > 0 ? (unsigned long)max : 65536;
	for (unsigned long fd = lo; fd <= hi && fd < limit; fd++)
		close((int)fd);
}

/*
 * A forked child keeps only what its role needs: stdio, its control channel and,
 * for a front, its listening sockets. Everything else the parent holds (other
 * children's control channels, the parent's event loop) is closed, so a
 * compromised front cannot speak to auth as if it were the parent.
 */
static void
close_other_fds(const int *keep, size_t nkeep)
{
	unsigned next = 3;

	/* The gaps between the kept fds, lowest first (a handful of them: no
	 * allocation in the child). */
	for (;;) {
		int low = -1;
		for (size_t i = 0; i < nkeep; i++)
			if (keep[i] >= (int)next && (low < 0 || keep[i] < low))
				low = keep[i];
		if (low < 0)
			break;
		close_fds_between(next, (unsigned)low - 1);
		next = (unsigned)low + 1;
	}
	close_fds_between(next, ~0U);
}

static struct child *find_child_by_channel(struct parent *p, struct ipc_channel *ch);

static void
on_child_ctl_frame(struct ipc_channel *ch, struct ipc_frame *f, void *arg)
{
	/* Children move between arrays on reload, so look them up by channel. */
	struct child *c = find_child_by_channel(&parent, ch);
	if (c != NULL && f->type == CTL_READY) {
		c->ready = true;
		c->failed_starts = 0;
	}
}

static void on_child_ctl_close(struct ipc_channel *ch, void *arg) { }

static void
connect_pair(struct child *a, struct child *b)
{
	int fds[2];
	if (a->ctl == NULL || b->ctl == NULL)
		return;
	if (ipc_socketpair(fds) < 0) {
		log_error("socketpair: %m");
		return;
	}
	struct evbuffer *buf = evbuffer_new();
	struct ctl_peer pa = { b->kind, b->index, b->generation };
	struct ctl_peer pb = { a->kind, a->index, a->generation };
	ctl_peer_encode(buf, &pa);
	ipc_send_buf(a->ctl, CTL_PEER, 0, buf, fds[0]);
	ctl_peer_encode(buf, &pb);
	ipc_send_buf(b->ctl, CTL_PEER, 0, buf, fds[1]);
	evbuffer_free(buf);
	close(fds[0]);
	close(fds[1]);
}

static void
spawn(struct parent *p, struct child *c, const struct config *cfg)
{
	int fds[2];
	if (ipc_socketpair(fds) < 0)
		fatal("socketpair: %m");
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		fatal("fork: %m");
	if (pid == 0) {
		close(fds[0]);
		/* A fresh start: no inherited event state, default signal dispositions. */
		signal(SIGCHLD, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_IGN);   /* the parent decides when an interactive stop applies */
		signal(SIGHUP, SIG_IGN);
		signal(SIGPIPE, SIG_IGN);
		signals_block(false);
		int rc = 1;
		int *keep = calloc(p->nlisten + 1, sizeof(int));
		if (keep == NULL)
			_exit(1);
		keep[0] = fds[1];
		switch (c->kind) {
		case PROC_AUTH:
			close_other_fds(keep, 1);
			rc = auth_process_main(cfg, fds[1]);
			break;
		case PROC_QUEUE:
			close_other_fds(keep, 1);
			rc = queue_process_main(cfg, fds[1]);
			break;
		case PROC_KEYS:
			close_other_fds(keep, 1);
			rc = keys_process_main(cfg, fds[1]);
			break;
		case PROC_FRONT:
			for (size_t i = 0; i < p->nlisten; i++)
				keep[i + 1] = p->listen_fds[i][c->index];
			close_other_fds(keep, p->nlisten + 1);
			rc = front_process_main(cfg, c->index, fds[1], keep + 1);
			break;
		case PROC_PARENT:
			break;
		}
		_exit(rc);
	}
	close(fds[1]);
	c->pid = pid;
	c->ready = false;
	c->stopping = false;
	c->draining = false;
	char name[32];
	snprintf(name, sizeof(name), "%s/%u", proc_kind_name(c->kind), c->index);
	c->ctl = ipc_channel_new(p->base, fds[0], name, on_child_ctl_frame, on_child_ctl_close, c);
	log_debug("started %s (pid %ld)", name, (long)pid);
}

static void
wire_child(struct parent *p, struct child *c)
{
	switch (c->kind) {
	case PROC_AUTH:
	case PROC_QUEUE:
		for (unsigned i = 0; i < p->nfronts; i++)
			connect_pair(&p->fronts[i], c);
		for (size_t i = 0; i < p->nold; i++)
			connect_pair(&p->old_fronts[i], c);
		if (c->kind == PROC_QUEUE)
			connect_pair(c, &p->keys);
		break;
	case PROC_KEYS:
		connect_pair(&p->queue, c);
		break;
	case PROC_FRONT:
		connect_pair(c, &p->auth);
		connect_pair(c, &p->queue);
		break;
	case PROC_PARENT:
		break;
	}
}

static void
stop_child(struct child *c, unsigned grace, bool drain)
{
	/* A shutdown overrides a drain already under way (shorter grace, idle sessions closed). */
	if (c->pid <= 0 || (c->stopping && (drain || !c->draining)))
		return;
	c->stopping = true;
	c->draining = drain;
	struct evbuffer *buf = evbuffer_new();
	struct ctl_stop m = { grace, drain };
	ctl_stop_encode(buf, &m);
	if (c->ctl == NULL || ipc_send_buf(c->ctl, CTL_STOP, 0, buf, -1) < 0)
		kill(c->pid, SIGTERM);
	evbuffer_free(buf);
}

static struct child *
find_child(struct parent *p, pid_t pid)
{
	if (p->auth.pid == pid)
		return &p->auth;
	if (p->queue.pid == pid)
		return &p->queue;
	if (p->keys.pid == pid)
		return &p->keys;
	for (unsigned i = 0; i < p->nfronts; i++)
		if (p->fronts[i].pid == pid)
			return &p->fronts[i];
	for (size_t i = 0; i < p->nold; i++)
		if (p->old_fronts[i].pid == pid)
			return &p->old_fronts[i];
	return NULL;
}

static struct child *
find_child_by_channel(struct parent *p, struct ipc_channel *ch)
{
	if (p->auth.ctl == ch)
		return &p->auth;
	if (p->queue.ctl == ch)
		return &p->queue;
	if (p->keys.ctl == ch)
		return &p->keys;
	for (unsigned i = 0; i < p->nfronts; i++)
		if (p->fronts[i].ctl == ch)
			return &p->fronts[i];
	for (size_t i = 0; i < p->nold; i++)
		if (p->old_fronts[i].ctl == ch)
			return &p->old_fronts[i];
	return NULL;
}

static void
restart_child(struct parent *p, struct child *c)
{
	spawn(p, c, p->cfg);
	wire_child(p, c);
}

static void
on_restart_timer(evutil_socket_t fd, short what, void *arg)
{
	struct child *c = arg;
	if (!parent.shutting_down && c->pid == 0)
		restart_child(&parent, c);
}

static bool
fronts_alive(struct parent *p)
{
	for (unsigned i = 0; i < p->nfronts; i++)
		if (p->fronts[i].pid > 0)
			return true;
	for (size_t i = 0; i < p->nold; i++)
		if (p->old_fronts[i].pid > 0)
			return true;
	return false;
}

static void
shutdown_step(struct parent *p)
{
	/* Fronts first (they finish transactions), then the queue, keys, auth. */
	if (fronts_alive(p))
		return;
	if (p->queue.pid > 0) {
		stop_child(&p->queue, 0, false);
		return;
	}
	if (p->keys.pid > 0) {
		stop_child(&p->keys, 0, false);
		return;
	}
	if (p->auth.pid > 0) {
		stop_child(&p->auth, 0, false);
		return;
	}
	event_base_loopexit(p->base, NULL);
}

static void
on_sigchld(evutil_socket_t sig, short what, void *arg)
{
	struct parent *p = arg;
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct child *c = find_child(p, pid);
		if (c == NULL)
			continue;
		/* Its ready report may still sit unread beside the SIGCHLD. */
		ipc_channel_drain(c->ctl);
		ipc_channel_free(&c->ctl);
		c->pid = 0;
		char how[64];
		if (WIFSIGNALED(status))
			snprintf(how, sizeof(how), "killed by signal %d", WTERMSIG(status));
		else
			snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(status));
		if (c->stopping || p->shutting_down) {
			log_debug("%s/%u %s", proc_kind_name(c->kind), c->index, how);
			continue;
		}
		if (c->kind == PROC_FRONT && c->generation != p->generation) {
			log_error("%s/%u (pid %ld) %s", proc_kind_name(c->kind), c->index, (long)pid, how);
			continue;   /* an old-generation front is not restarted */
		}
		if (c->ready) {
			/* It served, then died: restart at once, the service matters. */
			log_error("%s/%u (pid %ld) %s; restarting", proc_kind_name(c->kind), c->index,
			    (long)pid, how);
			restart_child(p, c);
			continue;
		}
		/* It died before it was ready: a start-up failure (bad permissions, a
		 * broken database...). Back off, 1 s doubling to 60 s, without ever
		 * blocking this loop, and give up after 10 failures in a row. */
		if (++c->failed_starts > 10)
			fatal("%s keeps failing at start-up; giving up", proc_kind_name(c->kind));
		int delay = 1 << (c->failed_starts < 6 ? c->failed_starts - 1 : 6);
		if (delay > 60)
			delay = 60;
		log_error("%s/%u (pid %ld) %s before it was ready; restarting in %d s",
		    proc_kind_name(c->kind), c->index, (long)pid, how, delay);
		if (c->restart != NULL)
			event_free(c->restart);
		c->restart = evtimer_new(p->base, on_restart_timer, c);
		struct timeval tv = { delay, 0 };
		evtimer_add(c->restart, &tv);
	}
	if (p->shutting_down)
		shutdown_step(p);
}

static void
on_sigterm(evutil_socket_t sig, short what, void *arg)
{
	struct parent *p = arg;
	if (p->shutting_down) {
		log_info("second stop signal: stopping now");
		for (unsigned i = 0; i < p->nfronts; i++)
			if (p->fronts[i].pid > 0)
				kill(p->fronts[i].pid, SIGKILL);
		for (size_t i = 0; i < p->nold; i++)
			if (p->old_fronts[i].pid > 0)
				kill(p->old_fronts[i].pid, SIGKILL);
		return;
	}
	log_info("stopping (grace %llds)", (long long)p->cfg->shutdown_grace);
	p->shutting_down = true;
	for (unsigned i = 0; i < p->nfronts; i++)
		stop_child(&p->fronts[i], (unsigned)p->cfg->shutdown_grace, false);
	for (size_t i = 0; i < p->nold; i++)
		stop_child(&p->old_fronts[i], (unsigned)p->cfg->shutdown_grace, false);
	shutdown_step(p);
}

static bool
listeners_same(const struct config *a, const struct config *b)
{
	if (a->nlisteners != b->nlisteners)
		return false;
	for (size_t i = 0; i < a->nlisteners; i++)
		if (strcmp(a->listeners[i].address, b->listeners[i].address) != 0 ||
		    a->listeners[i].port != b->listeners[i].port)
			return false;
	return true;
}

static int check_tls(const struct config *cfg, char **error_r);

static void
on_sighup(evutil_socket_t sig, short what, void *arg)
{
	struct parent *p = arg;
	/* libevent calls this once per signal received; reload once per burst. */
	if (!event_pending(p->ev_reload, EV_TIMEOUT, NULL)) {
		struct timeval soon = { 0, 50000 };
		event_add(p->ev_reload, &soon);
	}
}

static void
on_reload(evutil_socket_t fd, short what, void *arg)
{
	struct parent *p = arg;
	char *error = NULL;
	if (p->shutting_down)
		return;
	log_info("reloading %s", p->config_path);
	struct config *cfg = config_load(p->config_path, p->overrides, p->noverrides, &error);
	if (cfg == NULL || check_tls(cfg, &error) < 0) {
		log_error("reload refused, keeping the running configuration: %s", error);
		free(error);
		config_free(&cfg);
		return;
	}
	if (!listeners_same(p->cfg, cfg)) {
		log_error("reload refused: listener addresses and ports change only on restart");
		config_free(&cfg);
		return;
	}
	/* Old fronts drain; a new generation with the new configuration and
	 * certificates takes over the same sockets. */
	struct child *old = realloc(p->old_fronts, (p->nold + p->nfronts) * sizeof(*old));
	if (old == NULL)
		fatal("out of memory");
	p->old_fronts = old;
	for (unsigned i = 0; i < p->nfronts; i++) {
		p->old_fronts[p->nold] = p->fronts[i];
		/* the control channel's callbacks point at nothing: safe to move */
		stop_child(&p->old_fronts[p->nold], (unsigned)cfg->reload_grace, true);
		p->nold++;
	}
	size_t k = 0;
	for (size_t i = 0; i < p->nold; i++)
		if (p->old_fronts[i].pid > 0)
			p->old_fronts[k++] = p->old_fronts[i];
	p->nold = k;
	/* Running children have their own copy (fork); the parent needs only the new one. */
	config_free(&p->cfg);
	p->cfg = cfg;
	p->generation++;
	log_set_level((enum log_level)log_level_parse(cfg->log_level));
	for (unsigned i = 0; i < p->nfronts; i++) {
		p->fronts[i] = (struct child){ .kind = PROC_FRONT, .index = i,
		    .generation = p->generation };
		spawn(p, &p->fronts[i], p->cfg);
		wire_child(p, &p->fronts[i]);
	}
	log_info("reloaded: generation %u", p->generation);
}

/* ---- start-up ---- */

static int
check_tls(const struct config *cfg, char **error_r)
{
	if (cfg->tls_cert[0] == '\0')
		return 0;
	SSL_CTX *ctx = tls_server_ctx_new(cfg->tls_cert, cfg->tls_key, error_r);
	if (ctx == NULL)
		return -1;
	SSL_CTX_free(ctx);
	return 0;
}

/* Creates path (and parents); the leaf belongs to the service user when one is set. */
static void
make_dir(const char *path, const struct passwd *owner)
{
	char buf[4096];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *s = buf + 1; *s != '\0'; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		mkdir(buf, 0755);
		*s = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		fatal("cannot create %s: %m", path);
	if (owner != NULL && chown(buf, owner->pw_uid, owner->pw_gid) < 0)
		fatal("cannot give %s to %s: %m", path, owner->pw_name);
}

int
main(int argc, char **argv)
{
	struct parent *p = &parent;
	bool foreground = false, check_only = false;
	int ch;

	wipe_alloc_install();   /* first: before any libevent allocation */
	p->config_path = getenv("RAMPART_CONFIG") != NULL ? getenv("RAMPART_CONFIG") :
	    "/etc/rampart/rampart.conf";
	p->overrides = calloc(MAX_OVERRIDES, sizeof(char *));
	while ((ch = getopt(argc, argv, "c:dno:hV")) != -1) {
		switch (ch) {
		case 'c': p->config_path = optarg; break;
		case 'd': foreground = true; break;
		case 'n': check_only = true; break;
		case 'o':
			if (p->noverrides == MAX_OVERRIDES)
				usage();
			p->overrides[p->noverrides++] = optarg;
			break;
		case 'V':
			printf("rampartd %s\n", RAMPART_VERSION);
			return 0;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	char *error = NULL;
	sigemptyset(&handled_signals);
	sigaddset(&handled_signals, SIGCHLD);
	sigaddset(&handled_signals, SIGTERM);
	sigaddset(&handled_signals, SIGINT);
	sigaddset(&handled_signals, SIGHUP);
	signals_block(true);
	log_init("rampartd", true, LOG_LEVEL_INFO);
	p->cfg = config_load(p->config_path, p->overrides, p->noverrides, &error);
	if (p->cfg == NULL || check_tls(p->cfg, &error) < 0) {
		fprintf(stderr, "rampartd: %s\n", error != NULL ? error : "configuration error");
		return 1;
	}
	if (check_only) {
		printf("rampartd: %s: configuration ok\n", p->config_path);
		return 0;
	}
	if (p->cfg->nlisteners == 0)
		fatal("%s: no listener configured", p->config_path);
	if (!foreground) {
		if (daemon(0, 0) < 0)
			fatal("daemon: %m");
		log_init("rampartd", false, LOG_LEVEL_INFO);
	}
	log_set_level((enum log_level)log_level_parse(p->cfg->log_level));
	signal(SIGPIPE, SIG_IGN);
	/* Every connection (in and out) and every message in an attempt holds a
	 * descriptor: the soft limit (often 1024) goes up to the hard one, for
	 * this process and the children it starts. */
	struct rlimit nofile;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
		/* An unlimited hard limit is still capped by the kernel (nr_open). */
		rlim_t want = nofile.rlim_max == RLIM_INFINITY || nofile.rlim_max > 1048576 ?
		    1048576 : nofile.rlim_max;
		if (nofile.rlim_cur < want) {
			nofile.rlim_cur = want;
			if (setrlimit(RLIMIT_NOFILE, &nofile) < 0)
				log_warn("cannot raise the open-file limit: %m");
		}
	}
	struct passwd *owner = NULL;
	if (geteuid() == 0) {
		if (p->cfg->user[0] == '\0')
			log_warn("running as root with no 'user' set: the auth, queue, keys and "
			    "front processes keep root privileges; set user = \"rampart\" (or "
			    "another unprivileged account) in production");
		else if ((owner = getpwnam(p->cfg->user)) == NULL)
			fatal("user %s does not exist", p->cfg->user);
	}
	make_dir(p->cfg->state_dir, owner);
	make_dir(p->cfg->spool_dir, owner);
	make_dir(p->cfg->mail_dir, owner);

	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	p->nfronts = p->cfg->workers > 0 ? (unsigned)p->cfg->workers : (unsigned)(ncpu > 0 ? ncpu : 1);
	p->base = event_base_new();
	if (p->base == NULL)
		fatal("cannot create the event loop");
	open_listeners(p);

	p->auth = (struct child){ .kind = PROC_AUTH };
	p->queue = (struct child){ .kind = PROC_QUEUE };
	p->keys = (struct child){ .kind = PROC_KEYS };
	p->fronts = calloc(p->nfronts, sizeof(*p->fronts));
	spawn(p, &p->auth, p->cfg);
	spawn(p, &p->queue, p->cfg);
	spawn(p, &p->keys, p->cfg);
	wire_child(p, &p->keys);
	for (unsigned i = 0; i < p->nfronts; i++) {
		p->fronts[i] = (struct child){ .kind = PROC_FRONT, .index = i };
		spawn(p, &p->fronts[i], p->cfg);
		wire_child(p, &p->fronts[i]);
	}
	struct event *ev_chld = evsignal_new(p->base, SIGCHLD, on_sigchld, p);
	struct event *ev_term = evsignal_new(p->base, SIGTERM, on_sigterm, p);
	struct event *ev_int = evsignal_new(p->base, SIGINT, on_sigterm, p);
	struct event *ev_hup = evsignal_new(p->base, SIGHUP, on_sighup, p);
	p->ev_reload = evtimer_new(p->base, on_reload, p);
	event_add(ev_chld, NULL);
	event_add(ev_term, NULL);
	event_add(ev_int, NULL);
	event_add(ev_hup, NULL);
	signals_block(false);
	log_info("rampartd %s started: %u front process(es), hostname %s", RAMPART_VERSION,
	    p->nfronts, p->cfg->hostname);
	/* SIGCHLD may have arrived before the handler was in place. */
	on_sigchld(SIGCHLD, 0, p);

	event_base_dispatch(p->base);

	log_info("stopped");
	event_free(ev_chld);
	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_hup);
	event_free(p->ev_reload);
	for (size_t i = 0; i < p->nlisten; i++) {
		for (unsigned j = 0; j < p->nfronts; j++)
			close(p->listen_fds[i][j]);
		free(p->listen_fds[i]);
	}
	free(p->listen_fds);
	free(p->fronts);
	free(p->old_fronts);
	free(p->overrides);
	config_free(&p->cfg);
	event_base_free(p->base);
	return 0;
}
