/*
 * directory — domains, users and aliases in an embedded SQLite database.
 *
 * Only the auth process and the admin CLI open the directory (CONVENTIONS.md §1);
 * both may have it open at once, so the file is in WAL mode with a busy timeout
 * of DIRECTORY_BUSY_TIMEOUT_MS and every write is one IMMEDIATE transaction.
 * The schema is versioned with PRAGMA user_version and migrated on open.
 *
 * Names are canonical: ASCII letters are lowercased on the way in, so every
 * lookup is case-insensitive on ASCII (non-ASCII UTF-8 is compared as bytes).
 * Domains are LDH names (IDNs in their xn-- form). A user's local part is also
 * the name of its mailbox directory, so it is restricted to 1-64 octets of
 * [a-z0-9._+-] or UTF-8, with no leading or trailing '.' and no "..".
 *
 * Errors: functions return -1 and set *error_r to a sentence that stays valid
 * until the next call on the same struct directory. Found/not-found lookups
 * return 1/0. A struct directory is not thread-safe: one per thread.
 */
#ifndef RAMPART_DIRECTORY_H
#define RAMPART_DIRECTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How long a writer waits for another process's transaction before giving up. */
#define DIRECTORY_BUSY_TIMEOUT_MS 5000
/* Alias chains longer than this are cut (RFC 5321 §3.9 leaves it to us). */
#define DIRECTORY_ALIAS_MAX_DEPTH 8
/* At most this many final targets (mailboxes + external) per recipient. */
#define DIRECTORY_RCPT_MAX_TARGETS 1000
/* Longest address accepted anywhere (RFC 5321 §4.5.3.1.3 path limit minus <>). */
#define DIRECTORY_ADDRESS_MAX 254

struct directory;

/*
 * Opens (creating it with mode 0600, and missing parent directories with 0700)
 * and migrates the database at path. NULL with a malloc'd sentence in *error_r
 * on failure, including a database written by a newer Rampart.
 */
struct directory *directory_open(const char *path, char **error_r);
void directory_close(struct directory **dir);
/* The schema version of the open database (== the newest this build knows). */
int directory_schema_version(struct directory *dir);

/* Listing callbacks: called once per row in a stable (sorted) order. Return 0 to
 * go on, non-zero to stop (the list function then returns 0). */
typedef int directory_domain_cb(const char *name, void *ctx);
typedef int directory_user_cb(const char *address, void *ctx);
typedef int directory_alias_cb(const char *alias, const char *target, void *ctx);

/* ---- domains ---- */
int directory_domain_add(struct directory *dir, const char *name, const char **error_r);
/*
 * Removes a domain. If it still has users or aliases, refuses unless force is
 * true, in which case they go with it (ON DELETE CASCADE). Mail on disk stays.
 */
int directory_domain_del(struct directory *dir, const char *name, bool force,
    const char **error_r);
/* 1 when name is a local domain, 0 when not (or not a valid name), -1 on error. */
int directory_domain_exists(struct directory *dir, const char *name, const char **error_r);
int directory_domain_list(struct directory *dir, directory_domain_cb *cb, void *ctx,
    const char **error_r);

/* ---- users ---- */
/* hash is an encoded password hash (see password.h); the domain must exist. */
int directory_user_add(struct directory *dir, const char *address, const char *hash,
    const char **error_r);
int directory_user_del(struct directory *dir, const char *address, const char **error_r);
int directory_user_set_password(struct directory *dir, const char *address,
    const char *hash, const char **error_r);
/* 1 and a malloc'd copy of the hash in *hash_r; 0 when there is no such user. */
int directory_user_get_hash(struct directory *dir, const char *address, char **hash_r,
    const char **error_r);
/* 1 when the user exists, 0 when not, -1 on error. */
int directory_user_exists(struct directory *dir, const char *address, const char **error_r);
/* All users, or those of one domain when domain is not NULL; by domain, then local part. */
int directory_user_list(struct directory *dir, const char *domain, directory_user_cb *cb,
    void *ctx, const char **error_r);

/* ---- aliases ---- */
/*
 * Adds one target to an alias (an alias may have many). The alias must be in a
 * local domain; the target may be anywhere. A target in a local domain must
 * already exist as a user or an alias, directly or without its "+tag" when
 * delimiter is not 0 (catches typos). An alias may share its address with a
 * user: the alias wins, and aliasing an address to itself keeps a copy in that
 * user's mailbox (the Postfix idiom). Targets compare without case.
 */
int directory_alias_add(struct directory *dir, const char *alias, const char *target,
    char delimiter, const char **error_r);
/* Removes one target, or every target of the alias when target is NULL. */
int directory_alias_del(struct directory *dir, const char *alias, const char *target,
    const char **error_r);
/* All aliases, or those of one domain; by alias, then target. */
int directory_alias_list(struct directory *dir, const char *domain, directory_alias_cb *cb,
    void *ctx, const char **error_r);

/* ---- recipient lookup (SMTP RCPT TO) ---- */
/* A zeroed result is NO_SUCH_USER, never OK. */
enum directory_rcpt_status {
	DIRECTORY_RCPT_NO_SUCH_USER,     /* local domain, nothing deliverable (550 5.1.1) */
	DIRECTORY_RCPT_NOT_LOCAL_DOMAIN, /* relaying question: not ours to answer */
	DIRECTORY_RCPT_TOO_MANY,         /* the expansion passes DIRECTORY_RCPT_MAX_TARGETS
	                                    (or examines 10x that many targets): refuse it */
	DIRECTORY_RCPT_OK,               /* deliverable: see mailboxes and external */
};

struct directory_rcpt {
	enum directory_rcpt_status status;
	/* Local user addresses (canonical, no subaddress), deduplicated, in the
	 * order the expansion found them. */
	char **mailboxes;
	size_t nmailboxes;
	/* Alias targets outside the local domains (for relaying), deduplicated. */
	char **external;
	size_t nexternal;
	bool loop;       /* an alias loop was found and cut */
	bool too_deep;   /* a chain passed DIRECTORY_ALIAS_MAX_DEPTH and was cut */
	bool dangling;   /* a local target matched nothing and was dropped */
};

/*
 * Resolves a recipient: if the address (or, when delimiter is not 0 and the
 * address matches nothing, the address with "+tag" removed from the local part
 * at the first delimiter) is an alias, expands it recursively (loops cut, depth
 * limited, duplicates removed); else if it is a user, that user's mailbox. An
 * address without '@' is NO_SUCH_USER. OK only when there is at least one
 * mailbox or external target. Lookups are one read transaction (one snapshot).
 * Returns -1 only on database errors (answer 451); *out is then empty and
 * NO_SUCH_USER. Free the lists with directory_rcpt_free().
 */
int directory_lookup_rcpt(struct directory *dir, const char *address, char delimiter,
    struct directory_rcpt *out, const char **error_r);
/* Frees the lists and zeroes *rcpt (safe on a zeroed or already freed one). */
void directory_rcpt_free(struct directory_rcpt *rcpt);

/* ---- logins (directory-login.c) ---- */
enum directory_protocol {
	DIRECTORY_PROTO_SMTP,    /* SMTP AUTH (submission) */
	DIRECTORY_PROTO_IMAP,
	DIRECTORY_PROTO_POP3,
	DIRECTORY_PROTO_COUNT
};
const char *directory_protocol_name(enum directory_protocol p);   /* "smtp-auth", "imap", "pop3" */

/* What the auth process needs to decide a login; one read, one snapshot. */
struct directory_login {
	char address[DIRECTORY_ADDRESS_MAX + 1];   /* canonical */
	char *hash;                                /* encoded password hash (malloc'd) */
	bool enabled;
	bool protocol[DIRECTORY_PROTO_COUNT];      /* effective: the user's, else the domain's */
	int user_protocol[DIRECTORY_PROTO_COUNT];  /* the user's own: 1, 0, or -1 = domain default */
	char *networks;                            /* CIDR list the user may log in from; "" = any */
};
/* 1 and *out filled, 0 when there is no such user (or the name is not an
 * address), -1 on error. Free with directory_login_free() (wipes the hash). */
int directory_login_get(struct directory *dir, const char *address, struct directory_login *out,
    const char **error_r);
void directory_login_free(struct directory_login *l);

/* value: 1 on, 0 off, -1 back to the domain's default. */
int directory_user_set_protocol(struct directory *dir, const char *address,
    enum directory_protocol p, int value, const char **error_r);
/* networks: a CIDR list ("10.0.0.0/8, 2001:db8::/32"), "" for any. */
int directory_user_set_networks(struct directory *dir, const char *address,
    const char *networks, const char **error_r);
int directory_user_set_enabled(struct directory *dir, const char *address, bool enabled,
    const char **error_r);
int directory_domain_set_protocol(struct directory *dir, const char *domain,
    enum directory_protocol p, bool on, const char **error_r);
/* 1 and the domain's switches, 0 when there is no such domain. */
int directory_domain_get_protocols(struct directory *dir, const char *domain,
    bool on_r[DIRECTORY_PROTO_COUNT], const char **error_r);

/* ---- sender rights ---- */
/* A send-as grant lets user send as address: "local@domain", or "@domain" for
 * every address of a domain. The user must exist; the address may be anywhere. */
int directory_send_as_add(struct directory *dir, const char *user, const char *address,
    const char **error_r);
int directory_send_as_del(struct directory *dir, const char *user, const char *address,
    const char **error_r);
/* All grants (user NULL) or one user's: cb(user, address). */
int directory_send_as_list(struct directory *dir, const char *user, directory_alias_cb *cb,
    void *ctx, const char **error_r);
/*
 * May user (canonical) use address as a sender (MAIL FROM, From:)? Yes when it
 * is the user's own address, with or without a "+tag" (delimiter), an alias
 * whose expansion delivers to the user, or covered by a send-as grant.
 * 1 yes, 0 no, -1 error.
 */
int directory_may_send_as(struct directory *dir, const char *user, const char *address,
    char delimiter, const char **error_r);

/* ---- guard state (directory-guard.c): blocks and familiar addresses ---- */
typedef int directory_block_cb(const char *network, int64_t until_ms, unsigned level, void *ctx);
typedef int directory_known_cb(const char *user, const char *host, int64_t until_ms, void *ctx);
int directory_block_put(struct directory *dir, const char *network, int64_t until_ms,
    unsigned level, const char **error_r);
/* 1 when a block was removed, 0 when there was none. */
int directory_block_del(struct directory *dir, const char *network, const char **error_r);
int directory_block_list(struct directory *dir, directory_block_cb *cb, void *ctx,
    const char **error_r);
int directory_known_put(struct directory *dir, const char *user, const char *host,
    int64_t until_ms, const char **error_r);
/* Pairs still valid at now_ms. */
int directory_known_list(struct directory *dir, int64_t now_ms, directory_known_cb *cb,
    void *ctx, const char **error_r);
/* Deletes expired blocks and pairs. */
int directory_guard_prune(struct directory *dir, int64_t now_ms, const char **error_r);
/* Changes when another connection (the CLI) commits to the database
 * (PRAGMA data_version): cheap to poll. -1 on error. */
int64_t directory_data_version(struct directory *dir);

/* ---- syntax (no database) ---- */
/* Checks that address is local@domain with a valid mailbox local part and
 * domain, and writes it with ASCII lowercased into buf (DIRECTORY_ADDRESS_MAX + 1
 * bytes is always enough). Error sentences here are static strings. */
int directory_address_normalize(const char *address, char *buf, size_t bufsize,
    const char **error_r);
/* Same for a domain name alone. */
int directory_domain_normalize(const char *name, char *buf, size_t bufsize,
    const char **error_r);

#endif
