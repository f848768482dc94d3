/*
 * keys-process — the process that holds the DKIM private keys (DESIGN.md
 * "Processes") and signs digests for the queue (keys-msg.h).
 *
 * It drops privileges first (the keys belong to the service user: `rampart dkim
 * keygen` writes them as that user), marks itself not dumpable (no key in a
 * core file), and loads the key directory (keyring.h). It then answers the
 * queue process, whose channel the parent hands it with CTL_PEER (kind
 * PROC_QUEUE; a restarted queue gets a new one, which replaces the old):
 *   - KEYS_SELECTORS when the channel arrives and whenever the set of signing
 *     selectors changes — a file added, removed or changed (the directory is
 *     checked by stat() every KEYS_CHECK_INTERVAL seconds), or a rotation's
 *     not-before / retire-at instant passing (a timer fires at that second);
 *   - KEYS_SIGN_RES for each KEYS_SIGN_REQ, signed on the loop thread (an
 *     Ed25519 signature takes some 50 us, RSA-2048 some 0.5 ms: eight per
 *     message is still far below what the queue's disk work costs). A request
 *     that cannot be decoded gets an answer of 0 items (the queue fails it).
 * Unusable files are logged (one line each) whenever the directory changes.
 */
#ifndef RAMPART_KEYS_PROCESS_H
#define RAMPART_KEYS_PROCESS_H

struct config;

#define KEYS_CHECK_INTERVAL 5      /* seconds between stat() checks of the key directory */

/* Runs the keys process until told to stop; returns the exit status. */
int keys_process_main(const struct config *cfg, int ctl_fd);

#endif
