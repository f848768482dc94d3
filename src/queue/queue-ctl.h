/*
 * queue-ctl — the running queue process's admin socket, and the CLI's side of it.
 *
 * `rampart queue retry|delete|hold|release|show ID` must act on the daemon's
 * view of a message (it may be in delivery right now), so the queue process
 * listens on a Unix socket, QUEUE_CTL_SOCKET inside the spool directory (mode
 * 0600, owned by the service user, so only root and that user can connect —
 * the peer's uid is checked with SO_PEERCRED as well). One request per
 * connection: a line "VERB ID\n"; the answer is lines of text, the first
 * "ok" or "error <sentence>", then (for show) the runtime state, ended by the
 * server closing. Requests are bounded (one line of at most 128 octets, 5 s).
 *
 * Wire verbs: "retry ID", "delete ID", "hold ID", "release ID", "show ID" and
 * "retry-all" (no id). An ID is exactly what spool_id_valid() accepts; one
 * space between verb and id; a CR before the LF is allowed. Anything else is
 * answered "error <sentence>" without calling an op. At most
 * QUEUE_CTL_MAX_CONNS connections are served at once; more are answered
 * "error ..." and closed.
 *
 * The spool lock: queue_ctl_new() takes an exclusive flock(2) on the spool
 * directory and keeps it until queue_ctl_free(). The CLI takes the same lock
 * while it changes spool files itself (queue-admin.h), so it never does so
 * under a running queue process, and a stale socket can be told from a live
 * one (whoever holds the lock is alive).
 *
 * When the daemon is not running, the CLI does the same on the files
 * (queue-admin.h) so an operator can clean a queue without starting it.
 */
#ifndef RAMPART_QUEUE_CTL_H
#define RAMPART_QUEUE_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "queue/spool.h"

struct event_base;
struct queue_ctl;
struct queue_ctl_req;

#define QUEUE_CTL_SOCKET "control.sock"
/* The longest request line, without its CRLF. */
#define QUEUE_CTL_MAX_LINE 128
/* Seconds a client has to send its request line (server side). */
#define QUEUE_CTL_TIMEOUT 5
/* Connections served at once (deferred requests included). */
#define QUEUE_CTL_MAX_CONNS 8
/* Seconds the CLI waits for the answer (an op may wait for a delivery attempt). */
#define QUEUE_CTL_ANSWER_TIMEOUT 120
/* The longest first line of an answer the CLI accepts ("error " + sentence). */
#define QUEUE_CTL_MAX_ANSWER_LINE 1024

/* What the queue process does for each verb. Each returns 0 when done, or -1
 * with a sentence in *error_r (e.g. "no message with that id"). show writes
 * the runtime state (attempts, next attempt, last error per recipient) to out.
 * An op left NULL is answered "error this rampartd does not support VERB".
 * retry, remove, hold, release and retry_all may also return 1 after calling
 * queue_ctl_defer(): the answer then comes later, from queue_ctl_answer(). */
struct queue_ctl_ops {
	int (*retry)(const char *id, void *ctx, const char **error_r);
	int (*remove)(const char *id, void *ctx, const char **error_r);
	int (*hold)(const char *id, void *ctx, const char **error_r);
	int (*release)(const char *id, void *ctx, const char **error_r);
	int (*show)(const char *id, FILE *out, void *ctx, const char **error_r);
	/* "retry all": every message now (rampart queue retry --all) */
	int (*retry_all)(void *ctx, const char **error_r);
};

/* Listens on spool_dir/QUEUE_CTL_SOCKET (a stale socket file is replaced).
 * Takes the spool lock first, waiting up to 2 s for a CLI that holds it; fails
 * when another process keeps it (another queue process on the same spool), or
 * when something that is not a socket has the socket's name. */
struct queue_ctl *queue_ctl_new(struct event_base *base, const char *spool_dir,
    const struct queue_ctl_ops *ops, void *ctx, const char **error_r);
/* Closes every connection (deferred requests included: their handles become
 * invalid), removes the socket file and releases the spool lock. NULL is fine. */
void queue_ctl_free(struct queue_ctl **c);

/* Tests: the request deadline in seconds (default QUEUE_CTL_TIMEOUT). */
void queue_ctl_set_timeout(struct queue_ctl *c, int seconds);

/* For an op that cannot answer at once (hold or delete while a delivery attempt
 * runs): called inside the op, it takes the request being served; the op then
 * returns 1, and later calls queue_ctl_answer() exactly once (before
 * queue_ctl_free()). Not for show. */
struct queue_ctl_req *queue_ctl_defer(struct queue_ctl *c);
/* Answers a deferred request: rc 0 = "ok", -1 = "error <error>". Frees the
 * request and sets *r to NULL; if the client has gone, nothing is sent. */
void queue_ctl_answer(struct queue_ctl_req **r, int rc, const char *error);

/* CLI side: sends "verb id" and copies the answer's lines after the first to
 * out. Returns 0 (ok), 1 (the daemon said error; *error_r holds its sentence),
 * or -1 when no daemon listens (ENOENT/ECONNREFUSED: the caller falls back to
 * the files) or the exchange failed (*error_r says).
 * id is NULL for "retry-all". On -1, errno tells which case:
 * queue_ctl_no_daemon(errno) is true when nobody listens and nobody holds the
 * spool lock (fall back to the files); EBUSY when the lock is held but nothing
 * answers on the socket (a rampartd whose queue has no control socket); else
 * the exchange failed. *error_r always points into error_buf. Bytes of the
 * answer that are control characters (but LF and TAB) reach out as '?'. */
int queue_ctl_request(const char *spool_dir, const char *verb, const char *id, FILE *out,
    char *error_buf, size_t error_size, const char **error_r);
/* Whether queue_ctl_request()'s errno means "rampartd is not running". */
bool queue_ctl_no_daemon(int errnum);

/* ---- pieces, public for the tests and the CLI ---- */

enum queue_ctl_verb {
	QUEUE_CTL_RETRY,
	QUEUE_CTL_DELETE,
	QUEUE_CTL_HOLD,
	QUEUE_CTL_RELEASE,
	QUEUE_CTL_SHOW,
	QUEUE_CTL_RETRY_ALL,
};

struct queue_ctl_request {
	enum queue_ctl_verb verb;
	char id[SPOOL_ID_LEN + 1];   /* "" for retry-all */
};

/* Parses one request line (len bytes, without the LF; a final CR is removed).
 * Pure: 0, or -1 with a sentence (a NUL byte, an unknown verb, a missing,
 * extra or invalid id). */
int queue_ctl_parse(const char *line, size_t len, struct queue_ctl_request *r,
    const char **error_r);
/* The wire name of a verb ("retry", "delete", ..., "retry-all"). */
const char *queue_ctl_verb_name(enum queue_ctl_verb verb);

/* The SO_PEERCRED rule: root, or the uid the queue process runs as. */
bool queue_ctl_peer_allowed(uid_t peer, uid_t self);

/* Takes the spool lock on spool_dir without waiting: returns the descriptor
 * that holds it (close it to release), or -1 with errno EWOULDBLOCK when
 * another process holds it (*error_r says so), or the errno of open(2). */
int queue_ctl_lock_spool(const char *spool_dir, const char **error_r);

#endif
