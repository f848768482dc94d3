/*
 * config — Rampart's settings: one table, one immutable snapshot.
 *
 * Every setting is declared once in config-table.c (name, type, default, field,
 * description). The parent parses the file with libConfuse into a struct config
 * snapshot; children inherit it at fork. `rampart config-doc` and
 * docs/configuration.md are generated from the same table.
 *
 * File syntax (libConfuse):
 *     hostname = "mx.example.org"
 *     message_size_limit = 35M
 *     listener mx  { role = mx  address = "0.0.0.0"  port = 25 }
 *     listener sub { role = submission port = 587 }
 * Sizes take K/M/G suffixes (powers of 1024); durations take s/m/h/d (default s).
 * `-o key=value` overrides a top-level setting, `-o listener.NAME.key=value` a
 * listener's (creating the listener if NAME is new).
 */
#ifndef RAMPART_CONFIG_H
#define RAMPART_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum listener_role {
	LISTENER_ROLE_MX,          /* port 25: RFC 5321 relay/MX, local recipients only */
	LISTENER_ROLE_SUBMISSION,  /* port 587: STARTTLS (RFC 6409) */
	LISTENER_ROLE_SUBMISSIONS, /* port 465: implicit TLS (RFC 8314) */
};

struct config_listener {
	char *name;
	enum listener_role role;
	char *address;             /* numeric IPv4 or IPv6 */
	int64_t port;
	int64_t max_connections;   /* per front process */
	char *allow;               /* CIDR list; "" = everyone */
	char *deny;                /* CIDR list, checked first */
	bool allow_plaintext_auth; /* testing: AUTH without TLS from loopback */
};

struct config {
	char *path;                /* the file this snapshot came from */
	/* identity and layout */
	char *hostname;
	char *state_dir;           /* spool/ and directory.db live here by default */
	char *spool_dir;
	char *mail_dir;
	char *directory_path;
	char *data_dir;            /* shipped data: common-passwords.txt */
	char *user;                /* drop privileges to this user ("" = stay) */
	char *log_level;
	int64_t workers;           /* front processes; 0 = one per core */
	/* TLS */
	char *tls_cert;
	char *tls_key;
	/* SMTP limits */
	int64_t message_size_limit;
	int64_t max_recipients;
	int64_t max_line_length;   /* text line in DATA, including CRLF */
	int64_t max_errors;
	int64_t max_connections_per_ip;
	int64_t smtp_command_timeout;   /* seconds */
	int64_t smtp_data_timeout;      /* seconds */
	int64_t shutdown_grace;         /* seconds */
	int64_t reload_grace;           /* seconds */
	char *recipient_delimiter;
	/* directory and passwords */
	int64_t argon2_opslimit;
	int64_t argon2_memlimit;
	int64_t password_min_length;
	int64_t password_min_entropy;   /* zxcvbn bits */
	/* authentication and the guard (durations in seconds unless _ms) */
	char *audit_log;
	int64_t auth_failure_delay;     /* ms */
	int64_t auth_max_failures;
	int64_t auth_hash_workers;
	int64_t auth_hash_rate;         /* per second, unfamiliar addresses */
	int64_t guard_window;
	int64_t guard_attempts;
	int64_t guard_failures;
	int64_t guard_tarpit_base;      /* ms */
	int64_t guard_tarpit_max;       /* ms */
	int64_t guard_block_time;
	int64_t guard_block_max;
	int64_t guard_lockout_failures;
	int64_t guard_lockout_time;
	int64_t guard_lockout_max;
	int64_t guard_known_ttl;
	int64_t guard_max_entries;
	bool received_auth_client;
	/* queue */
	int64_t queue_retry_min;        /* seconds */
	int64_t queue_retry_max;        /* seconds */
	int64_t delivery_workers;       /* threads doing fsync-heavy queue work */
	int64_t queue_active_limit;     /* attempts in flight at once */
	/* DNS and mail authentication */
	char *dns_resolver;             /* "HOST[@PORT]", "" = resolv.conf */
	char *dns_trust_anchor;         /* "" = no DNSSEC validation */
	int64_t dns_timeout;            /* ms */
	char *dns_zone;                 /* static zone file instead of the network */
	char *authserv_id;              /* never "" after loading (hostname) */
	bool mailauth_check;
	char *dmarc_action;             /* "enforce" or "report" */
	char *dkim_key_dir;             /* never "" after loading */
	/* outbound delivery (relay) */
	int64_t queue_lifetime;         /* seconds before a pending recipient bounces */
	int64_t queue_delay_warning;    /* seconds; 0 = no delay notices */
	char *relay_host;               /* smarthost; "" = deliver by MX */
	int64_t relay_port;             /* 25, or another for tests */
	char *relay_user;               /* smarthost AUTH; "" = none */
	char *relay_password_file;      /* read by the queue process only */
	char *relay_tls;                /* smarthost: "verify", "required" or "opportunistic" */
	char *relay_ca_file;            /* "" = the system's roots */
	char *relay_helo;               /* never "" after loading (hostname) */
	int64_t relay_max_connections;
	int64_t relay_destination_concurrency;
	int64_t relay_connection_idle;  /* seconds an idle connection is kept for reuse */
	int64_t relay_messages_per_connection;
	int64_t relay_connect_timeout;
	int64_t relay_command_timeout;
	int64_t relay_data_timeout;
	int64_t relay_destination_backoff;
	bool relay_ipv6;
	bool relay_dane;
	bool relay_mta_sts;
	int64_t relay_mta_sts_port;

	struct config_listener *listeners;
	size_t nlisteners;
};

/*
 * Parses path (which may be NULL: defaults only) and applies overrides
 * ("key=value" strings). Returns NULL and a malloc'd "FILE:LINE: what is wrong"
 * in *error_r on failure.
 */
struct config *config_load(const char *path, char *const *overrides, size_t noverrides,
    char **error_r);
void config_free(struct config **cfg);

const char *listener_role_name(enum listener_role role);

/* Writes the settings reference (Markdown) generated from the table. */
void config_print_doc(FILE *out);

#endif
