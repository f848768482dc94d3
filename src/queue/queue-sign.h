/*
 * queue-sign — DKIM signing of submitted mail in the queue process, with the
 * private keys in the keys process (keys-msg.h).
 *
 * The queue keeps the keys process's current list of signing selectors. When
 * an authenticated user's message is committed and its From: domain has
 * selectors, queue_signer_sign() reads the message back from the spool file on
 * a worker thread (it is in the page cache: written moments ago), computes the
 * body hash and header hash for each selector (dkim_sign_*, relaxed/relaxed,
 * the default over-signed header list, t= now), sends the digests in one
 * KEYS_SIGN_REQ, and on the answer builds the DKIM-Signature fields — all
 * selectors of the domain sign (ed25519-sha256 and rsa-sha256 side by side,
 * RFC 8463 §4: "signers SHOULD also sign with RSA"). The fields are returned as
 * one string to put above the message (the spool's `added`).
 *
 * Fails closed: no answer from the keys process within QUEUE_SIGN_TIMEOUT, the
 * channel down, or a failed signature, is an error, and the commit answers
 * 451 4.3.0 so the client retries (a message that should be signed never leaves
 * unsigned). A domain without selectors is not an error: nothing to add.
 * Until the keys process has sent its first KEYS_SELECTORS the signer cannot
 * know which domains sign, so every queue_signer_sign() fails then (fails
 * closed); call it for every message that is to be signed, not only when
 * queue_signer_has_domain() says yes.
 *
 * Per message: the digests are computed on the workpool (pread in 64 KiB
 * chunks, so the loop never waits for the disk), the request goes out on the
 * loop thread, and the answer is matched to its request by the frame's request
 * id. Each signature covers the message without the others (the default header
 * list does not include DKIM-Signature); a selector the keys process answers
 * KEYS_NO_KEY for (retired in between) is left out, and when no selector of the
 * domain signed at all the message fails (the retry uses the new list). At
 * most KEYS_SIGN_MAX selectors of one domain sign (the first in the list:
 * ed25519 ones, then rsa). The fields are in that order, ed25519 first.
 */
#ifndef RAMPART_QUEUE_SIGN_H
#define RAMPART_QUEUE_SIGN_H

#include <stdbool.h>
#include <sys/types.h>

struct event_base;
struct workpool;
struct queue_signer;

#define QUEUE_SIGN_TIMEOUT 10      /* seconds */

/* base and pool are borrowed (the queue's loop and workpool). NULL when out of
 * memory. */
struct queue_signer *queue_signer_new(struct event_base *base, struct workpool *pool);
/* Every signing not completed yet fails ("the queue is stopping"): those
 * waiting for the keys process or for their completion on the next loop turn
 * at once (their done runs from inside this call), those still hashing when
 * the workpool delivers them. So free the signer after
 * workpool_free() (which delivers every hash first), or before it. done must
 * not free the signer. */
void queue_signer_free(struct queue_signer **s);
/* How long to wait for the keys process's answer (default QUEUE_SIGN_TIMEOUT
 * seconds; tests shorten it). Applies to signings started afterwards. */
void queue_signer_set_timeout(struct queue_signer *s, unsigned ms);
/* The channel to the keys process (from CTL_PEER); replaces any earlier one
 * (a restarted keys process). Pending requests on the old channel fail. */
void queue_signer_attach(struct queue_signer *s, int fd);
/* Whether domain (case-insensitive) has a selector that signs now, as the last
 * KEYS_SELECTORS said (false before the first). */
bool queue_signer_has_domain(const struct queue_signer *s, const char *domain);

/* fields: malloc'd DKIM-Signature fields (CRLF-terminated, folded), "" when the
 * domain has no selector; NULL on failure with error set. The callee owns fields. */
typedef void queue_sign_done_fn(void *arg, char *fields, const char *error);
/* Signs bytes [offset, end) of fd (the message as spooled: CRLF lines) for
 * domain (the From: domain; any case, a final dot allowed). fd must stay open
 * until done runs (always later, on the loop; exactly once). t= is the time of
 * this call. error is a sentence for the log (it names the cause: no answer
 * in time, the keys process not connected or gone, a short file, a message
 * without From:...). */
void queue_signer_sign(struct queue_signer *s, const char *domain, int fd, off_t offset,
    off_t end, queue_sign_done_fn *done, void *arg);

#endif
