/*
 * keyring — the DKIM private keys in the key directory, and which of them sign
 * at a given time (key rotation without a database).
 *
 * Layout (dkim_key_dir, `rampart dkim keygen` and `rotate` write it):
 *     DIR/DOMAIN/SELECTOR.key     PEM private key, 0600, of the service user
 *     DIR/DOMAIN/SELECTOR.state   optional: when the key signs, as lines
 *         not-before UNIXTIME     it signs from then on (absent: since always)
 *         retire-at UNIXTIME      it stops signing then (absent: never)
 *                                 and "#" comments and blank lines.
 * A key signs at T when not-before <= T < retire-at. So a rotation publishes a
 * new key's DNS record at once and lets it sign only after a grace period (the
 * record must have reached every resolver first), while the old key signs until
 * then; after that the old key is "retired": it signs no more, but its file and
 * DNS record stay until the operator removes them (verifiers may still check
 * mail signed before, RFC 6376 §3.6.1 p= revocation aside).
 *
 * DOMAIN is a lower-case name and SELECTOR a name (keys_name_valid); other
 * entries, names starting with '.', and files other than *.key and *.state are
 * ignored (a rotation writes "*.state.tmp" and renames it). A key that cannot be
 * used — unreadable, not a PEM key, a state file that does not parse — is kept
 * in the list with the reason and never signs: a state file that cannot be read
 * must not let a retired or future key sign.
 *
 * Change detection is by stat(): every *.key and *.state file's inode, size,
 * mtime and ctime, and the directories' entries, go into a fingerprint; a load
 * that finds the same fingerprint keeps the keys it has. One thread at a time.
 */
#ifndef RAMPART_KEYS_KEYRING_H
#define RAMPART_KEYS_KEYRING_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "keys/keys-msg.h"
#include "mailauth/dkim.h"

#define KEYRING_MAX_KEYS KEYS_SELECTORS_MAX   /* *.key files loaded, in all */
#define KEYRING_MAX_ENTRIES 16384             /* directory entries looked at, in all */
#define KEYRING_STATE_MAX 4096                /* octets of a state file */

struct keyring;

struct keyring_key {
	char *domain;              /* the directory's name */
	char *selector;            /* the file's name without ".key" */
	char *path;                /* of the .key file */
	enum dkim_key_type type;   /* when key != NULL */
	time_t not_before;         /* 0: none */
	time_t retire_at;          /* 0: none */
	struct dkim_key *key;      /* NULL when unusable */
	char *error;               /* why it is unusable (a sentence), else NULL */
};

/* A keyring over dir (copied); empty until keyring_load(). NULL: out of memory. */
struct keyring *keyring_new(const char *dir);
/* Frees every key (dkim_key_free wipes the key material). */
void keyring_free(struct keyring **kr);

/* Reads the directory again if anything in it changed since the last load, or
 * always when force is set. Returns 1 when the keys were (re)loaded, 0 when
 * nothing changed. A missing or unreadable directory is a keyring without keys
 * (and a problem, below), not an error. */
int keyring_load(struct keyring *kr, bool force);

/* The keys, sorted by domain then selector; i < keyring_count(). */
size_t keyring_count(const struct keyring *kr);
const struct keyring_key *keyring_get(const struct keyring *kr, size_t i);
/* What the last load skipped or could not use, one sentence each (a bad name,
 * an unusable key with its path, too many files, an unreadable directory). */
size_t keyring_problem_count(const struct keyring *kr);
const char *keyring_problem(const struct keyring *kr, size_t i);

/* Whether k signs at t: usable, and not_before <= t < retire_at. */
bool keyring_key_signs(const struct keyring_key *k, time_t t);
/* The selectors that sign at t, at most max of them into v (strings point into
 * the keyring, valid until the next load), ordered by domain, then ed25519
 * before rsa, then selector. Returns how many were written. */
size_t keyring_signing(const struct keyring *kr, time_t t, struct keys_selector *v,
    size_t max);
/* The first not-before or retire-at instant after t of a usable key (when the
 * signing set may change without a file changing), or 0 when there is none. */
time_t keyring_next_change(const struct keyring *kr, time_t t);

/* Signs digest with the key of (domain, selector) if it signs at t. Returns
 * KEYS_OK with the signature in sig (KEYS_SIG_MAX octets) and *len_r,
 * KEYS_NO_KEY when there is no such key or it does not sign at t, KEYS_FAILED
 * when the signing operation failed. */
enum keys_status keyring_sign(const struct keyring *kr, const char *domain,
    const char *selector, time_t t, const unsigned char digest[32], unsigned char *sig,
    size_t *len_r);

/* ---- state files ---- */

/* Parses a state file's text: each of not-before and retire-at at most once,
 * a decimal number of seconds since 1970 (1 to 12 digits, not 0), separated
 * from the keyword by spaces or tabs; "#" comments, blank lines, CRLF or LF.
 * Absent values are 0. Returns -1 with a sentence naming the line. */
int keyring_state_parse(const char *text, size_t len, time_t *not_before_r,
    time_t *retire_at_r, const char **error_r);
/* Reads path's state: 0 with both values 0 when there is no such file. */
int keyring_state_read(const char *path, time_t *not_before_r, time_t *retire_at_r,
    const char **error_r);
/* Writes a state file atomically (path.tmp, fsync, rename; mode 0600): the
 * values that are not 0, with a comment line (may be NULL). */
int keyring_state_write(const char *path, time_t not_before, time_t retire_at,
    const char *comment, const char **error_r);

#endif
