/* config-table — every Rampart setting, declared once. See config-table.h. */
#include "lib/config-table.h"
#include "lib/config.h"
#include "rampart-build.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define C(field) offsetof(struct config, field)
#define L(field) offsetof(struct config_listener, field)
#define NOLIMIT 0, INT64_MAX

const struct setting config_settings[] = {
	{ "hostname", SETTING_STRING, "", C(hostname), NOLIMIT,
	  "Name this server uses in its greeting, EHLO reply and Received: headers; empty = the system host name." },
	{ "state_dir", SETTING_STRING, "/var/lib/rampart", C(state_dir), NOLIMIT,
	  "Directory for the spool, the directory database and the mail store, unless set separately." },
	{ "spool_dir", SETTING_STRING, "", C(spool_dir), NOLIMIT,
	  "Queue spool (incoming/, queue/); empty = STATE_DIR/spool." },
	{ "mail_dir", SETTING_STRING, "", C(mail_dir), NOLIMIT,
	  "Root of the mail store: MAIL_DIR/DOMAIN/USER/Maildir; empty = STATE_DIR/mail." },
	{ "directory", SETTING_STRING, "", C(directory_path), NOLIMIT,
	  "SQLite directory of domains, users and aliases; empty = STATE_DIR/directory.db." },
	{ "data_dir", SETTING_STRING, RAMPART_DATADIR, C(data_dir), NOLIMIT,
	  "Shipped data files (the common-passwords list)." },
	{ "user", SETTING_STRING, "", C(user), NOLIMIT,
	  "Unprivileged user the child processes run as when started as root; empty = do not change user." },
	{ "log_level", SETTING_STRING, "info", C(log_level), NOLIMIT,
	  "Process log verbosity: error, warn, info or debug." },
	{ "workers", SETTING_INT, "0", C(workers), 0, 256,
	  "Front (protocol) processes; 0 = one per CPU core." },
	{ "tls_cert", SETTING_STRING, "", C(tls_cert), NOLIMIT,
	  "PEM certificate chain for STARTTLS and implicit TLS. Required by submission listeners." },
	{ "tls_key", SETTING_STRING, "", C(tls_key), NOLIMIT,
	  "PEM private key for tls_cert (read by the front processes before they drop privileges)." },
	{ "message_size_limit", SETTING_SIZE, "35M", C(message_size_limit), 1024, (int64_t)1 << 32,
	  "Largest message accepted (SIZE, RFC 1870); larger ones get 552 5.3.4." },
	{ "max_recipients", SETTING_INT, "1000", C(max_recipients), 100, 100000,
	  "Recipients per message; more get 452 4.5.3 (RFC 5321 §4.5.3.1.8 requires at least 100)." },
	{ "max_line_length", SETTING_INT, "1000", C(max_line_length), 1000, 1048576,
	  "Longest text line in a message, including CRLF (RFC 5321 §4.5.3.1.6: 1000)." },
	{ "max_errors", SETTING_INT, "10", C(max_errors), 1, 1000,
	  "Bad commands in one session before 421 and disconnection." },
	{ "max_connections_per_ip", SETTING_INT, "20", C(max_connections_per_ip), 1, 100000,
	  "Concurrent connections from one client address, per front process; more get 421 4.7.0." },
	{ "smtp_command_timeout", SETTING_DURATION, "5m", C(smtp_command_timeout), 1, 86400,
	  "Idle time allowed while waiting for an SMTP command (RFC 5321 §4.5.3.2.7: 5 minutes)." },
	{ "smtp_data_timeout", SETTING_DURATION, "5m", C(smtp_data_timeout), 1, 86400,
	  "Idle time allowed between data blocks during DATA or BDAT (RFC 5321 §4.5.3.2.5)." },
	{ "shutdown_grace", SETTING_DURATION, "30s", C(shutdown_grace), 0, 3600,
	  "On SIGTERM, how long open sessions may take to finish before they are closed." },
	{ "reload_grace", SETTING_DURATION, "1h", C(reload_grace), 0, 86400,
	  "After SIGHUP, how long sessions begun under the previous configuration may continue." },
	{ "recipient_delimiter", SETTING_STRING, "+", C(recipient_delimiter), NOLIMIT,
	  "Subaddress separator: user+tag@domain is delivered to user@domain; empty = off." },
	{ "argon2_opslimit", SETTING_INT, "3", C(argon2_opslimit), 1, 64,
	  "Argon2id passes for new password hashes." },
	{ "argon2_memlimit", SETTING_SIZE, "64M", C(argon2_memlimit), 8192, (int64_t)4 << 30,
	  "Argon2id memory per hash for new password hashes." },
	{ "password_min_length", SETTING_INT, "12", C(password_min_length), 8, 1024,
	  "Shortest password accepted, in characters." },
	{ "password_min_entropy", SETTING_INT, "40", C(password_min_entropy), 0, 256,
	  "Least zxcvbn strength estimate accepted, in bits." },
	{ "audit_log", SETTING_STRING, "", C(audit_log), NOLIMIT,
	  "JSON-lines audit log of every login attempt, block, lockout and admin change; empty = STATE_DIR/audit.log." },
	{ "auth_failure_delay", SETTING_MILLIS, "2s", C(auth_failure_delay), 0, 60000,
	  "Delay before a failed login is answered (535 5.7.8); slows guessing on one connection." },
	{ "auth_max_failures", SETTING_INT, "3", C(auth_max_failures), 1, 100,
	  "Failed logins on one connection before 421 and disconnection." },
	{ "auth_hash_workers", SETTING_INT, "2", C(auth_hash_workers), 1, 64,
	  "Threads computing Argon2id in the auth process: the most CPU cores logins can use." },
	{ "auth_hash_rate", SETTING_INT, "8", C(auth_hash_rate), 1, 100000,
	  "Argon2id verifications per second for logins from addresses without a recent success for that user; more wait or fail with 454 4.7.0." },
	{ "guard_window", SETTING_DURATION, "10m", C(guard_window), 1, 604800,
	  "Period over which the guard's budgets (attempts, failures, lockout) refill." },
	{ "guard_attempts", SETTING_INT, "60", C(guard_attempts), 1, 1000000,
	  "Login attempts per client address per guard_window before the tarpit (a /24 or /56 gets 8x, a /16 or /48 32x)." },
	{ "guard_failures", SETTING_INT, "10", C(guard_failures), 1, 1000000,
	  "Failed logins per client address per guard_window before a temporary block (prefixes scale as for guard_attempts)." },
	{ "guard_tarpit_base", SETTING_MILLIS, "1s", C(guard_tarpit_base), 0, 600000,
	  "First tarpit delay for an address over its attempt budget; doubles with each further attempt." },
	{ "guard_tarpit_max", SETTING_MILLIS, "15s", C(guard_tarpit_max), 0, 600000,
	  "Longest tarpit delay." },
	{ "guard_block_time", SETTING_DURATION, "5m", C(guard_block_time), 1, 604800,
	  "First block of an address or prefix; doubles for a repeat offender." },
	{ "guard_block_max", SETTING_DURATION, "1d", C(guard_block_max), 1, 31536000,
	  "Longest block (blocks always expire; `rampart guard unblock` lifts one at once)." },
	{ "guard_lockout_failures", SETTING_INT, "10", C(guard_lockout_failures), 1, 1000000,
	  "Failures against one account from addresses that never logged in to it, per guard_window, before those addresses are locked out of it." },
	{ "guard_lockout_time", SETTING_DURATION, "15m", C(guard_lockout_time), 1, 604800,
	  "First account lockout (for unfamiliar addresses only); doubles on repeat." },
	{ "guard_lockout_max", SETTING_DURATION, "1d", C(guard_lockout_max), 1, 31536000,
	  "Longest account lockout." },
	{ "guard_known_ttl", SETTING_DURATION, "30d", C(guard_known_ttl), 1, 31536000,
	  "How long a successful login makes its address familiar for that user (exempt from lockout and prefix limits)." },
	{ "guard_max_entries", SETTING_INT, "65536", C(guard_max_entries), 1024, 16777216,
	  "Addresses, prefixes and accounts the guard tracks at once (least recently used go first)." },
	{ "received_auth_client", SETTING_BOOL, "false", C(received_auth_client), NOLIMIT,
	  "Name the client's address in the Received: header of mail from authenticated users (off: submitters' privacy)." },
	{ "queue_retry_min", SETTING_DURATION, "1m", C(queue_retry_min), 1, 86400,
	  "First retry delay after a temporary delivery failure; doubles each time." },
	{ "queue_retry_max", SETTING_DURATION, "1h", C(queue_retry_max), 1, 604800,
	  "Longest delay between two delivery attempts." },
	{ "delivery_workers", SETTING_INT, "4", C(delivery_workers), 1, 64,
	  "Threads in the queue process that write, fsync and deliver messages." },
	{ "queue_active_limit", SETTING_INT, "2000", C(queue_active_limit), 1, 100000,
	  "Messages in a delivery attempt at once (each holds an open file and its envelope); more wait their turn, oldest first." },
	{ "dns.resolver", SETTING_STRING, "", C(dns_resolver), NOLIMIT,
	  "DNS server to send every query to, \"HOST\" or \"HOST@PORT\" (a local validating resolver); empty = resolve as /etc/resolv.conf says." },
	{ "dns.trust_anchor", SETTING_STRING, "/usr/share/dns/root.key", C(dns_trust_anchor), NOLIMIT,
	  "DNSSEC root trust anchor file; answers validated against it are marked secure. Empty = no validation." },
	{ "dns.timeout", SETTING_MILLIS, "5s", C(dns_timeout), 100, 60000,
	  "Longest wait for one DNS answer; an unanswered query is a temporary error." },
	{ "dns.zone", SETTING_STRING, "", C(dns_zone), NOLIMIT,
	  "OFFLINE/TESTING: answer every DNS query from this RFC 1035 master file instead of the network." },
	{ "authserv_id", SETTING_STRING, "", C(authserv_id), NOLIMIT,
	  "Name in the Authentication-Results headers this server adds (RFC 8601 §2.5); empty = hostname. Incoming headers claiming it are removed." },
	{ "mailauth_check", SETTING_BOOL, "true", C(mailauth_check), NOLIMIT,
	  "Check SPF, DKIM and DMARC on mail arriving on mx listeners and add Authentication-Results." },
	{ "dmarc_action", SETTING_STRING, "enforce", C(dmarc_action), NOLIMIT,
	  "What a DMARC failure does on mx listeners: enforce (p=reject: 550 5.7.1 at end of DATA; p=quarantine: delivered to Junk) or report (only Authentication-Results)." },
	{ "dkim_key_dir", SETTING_STRING, "", C(dkim_key_dir), NOLIMIT,
	  "DKIM private keys, DKIM_KEY_DIR/DOMAIN/SELECTOR.key (read by the keys process only); empty = STATE_DIR/dkim." },
	{ "queue_lifetime", SETTING_DURATION, "5d", C(queue_lifetime), 60, 31536000,
	  "How long a recipient is retried before the message bounces to its sender (4.4.7)." },
	{ "queue_delay_warning", SETTING_DURATION, "0", C(queue_delay_warning), 0, 31536000,
	  "Send the sender one delay notice (RFC 3464 action delayed) when a recipient is still pending after this long; 0 = never." },
	{ "relay.host", SETTING_STRING, "", C(relay_host), NOLIMIT,
	  "Smarthost that takes all outgoing mail (a host name or address); empty = deliver to each domain's MX hosts (RFC 5321 §5.1)." },
	{ "relay.port", SETTING_INT, "25", C(relay_port), 1, 65535,
	  "Port of the smarthost, or of every MX host (another value than 25 is for tests)." },
	{ "relay.user", SETTING_STRING, "", C(relay_user), NOLIMIT,
	  "User name for AUTH at the smarthost (PLAIN or LOGIN, over TLS only); empty = no AUTH." },
	{ "relay.password_file", SETTING_STRING, "", C(relay_password_file), NOLIMIT,
	  "File holding the password for AUTH at the smarthost (one line; not readable by others). Read by the queue process alone, at start: no other process ever holds the password." },
	{ "relay.tls", SETTING_STRING, "verify", C(relay_tls), NOLIMIT,
	  "TLS to the smarthost: verify (STARTTLS and a certificate valid for relay.host), required (STARTTLS, any certificate) or opportunistic." },
	{ "relay.ca_file", SETTING_STRING, "", C(relay_ca_file), NOLIMIT,
	  "PEM file of trusted roots for outgoing TLS (smarthost, MTA-STS); empty = the system's." },
	{ "relay.helo", SETTING_STRING, "", C(relay_helo), NOLIMIT,
	  "Name sent in EHLO; empty = hostname." },
	{ "relay.max_connections", SETTING_INT, "100", C(relay_max_connections), 1, 10000,
	  "Outgoing SMTP connections at once, all destinations together." },
	{ "relay.destination_concurrency", SETTING_INT, "20", C(relay_destination_concurrency), 1, 1000,
	  "Outgoing connections at once to one destination (domain or smarthost)." },
	{ "relay.connection_idle", SETTING_DURATION, "5s", C(relay_connection_idle), 0, 300,
	  "How long an idle outgoing connection is kept for the next message to the same destination." },
	{ "relay.messages_per_connection", SETTING_INT, "1000", C(relay_messages_per_connection), 1, 1000000,
	  "Messages sent over one outgoing connection before it is closed and a new one opened." },
	{ "relay.connect_timeout", SETTING_DURATION, "30s", C(relay_connect_timeout), 1, 600,
	  "Longest wait for a TCP connection to a receiving server." },
	{ "relay.command_timeout", SETTING_DURATION, "5m", C(relay_command_timeout), 1, 3600,
	  "Longest wait for the greeting or a reply to a command (RFC 5321 §4.5.3.2: 5 minutes)." },
	{ "relay.data_timeout", SETTING_DURATION, "10m", C(relay_data_timeout), 1, 3600,
	  "Longest wait for a data block to be taken or the reply to the end of data (RFC 5321 §4.5.3.2: 10 minutes)." },
	{ "relay.destination_backoff", SETTING_DURATION, "1m", C(relay_destination_backoff), 1, 86400,
	  "After no host of a destination could be reached, wait this long before trying it again (doubling up to queue_retry_max)." },
	{ "relay.ipv6", SETTING_BOOL, "true", C(relay_ipv6), NOLIMIT,
	  "Connect to IPv6 addresses of receiving servers too (tried before IPv4)." },
	{ "relay.dane", SETTING_BOOL, "true", C(relay_dane), NOLIMIT,
	  "Honour DANE TLSA records (RFC 7672) published under DNSSEC: TLS with a matching certificate, or no delivery." },
	{ "relay.mta_sts", SETTING_BOOL, "true", C(relay_mta_sts), NOLIMIT,
	  "Honour MTA-STS policies (RFC 8461): with mode enforce, only matching MX hosts with valid certificates get mail." },
	{ "relay.mta_sts_port", SETTING_INT, "443", C(relay_mta_sts_port), 1, 65535,
	  "HTTPS port MTA-STS policies are fetched from (another value than 443 is for tests)." },
};
const size_t config_settings_count = sizeof(config_settings) / sizeof(config_settings[0]);

const struct setting listener_settings[] = {
	{ "role", SETTING_ROLE, "mx", L(role), NOLIMIT,
	  "mx (RFC 5321 relay/MX: local recipients only), submission (STARTTLS, RFC 6409) or submissions (implicit TLS, RFC 8314)." },
	{ "address", SETTING_STRING, "127.0.0.1", L(address), NOLIMIT,
	  "Numeric IPv4 or IPv6 address to listen on." },
	{ "port", SETTING_INT, "25", L(port), 1, 65535,
	  "TCP port." },
	{ "max_connections", SETTING_INT, "1000", L(max_connections), 1, 1000000,
	  "Concurrent connections on this listener, per front process; more get 421 4.3.2." },
	{ "allow", SETTING_STRING, "", L(allow), NOLIMIT,
	  "Client networks (CIDR, comma-separated) that may connect; empty = all." },
	{ "deny", SETTING_STRING, "", L(deny), NOLIMIT,
	  "Client networks refused at connection (554 5.7.1), checked before allow." },
	{ "allow_plaintext_auth", SETTING_BOOL, "false", L(allow_plaintext_auth), NOLIMIT,
	  "TESTING ONLY: offer AUTH without TLS, to loopback clients only; logged loudly." },
};
const size_t listener_settings_count = sizeof(listener_settings) / sizeof(listener_settings[0]);

const struct setting *
setting_find(const struct setting *table, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(table[i].name, name) == 0)
			return &table[i];
	return NULL;
}

static int
parse_scaled(const char *text, const char *suffixes, const int64_t *scales, int64_t *value_r)
{
	char *end;
	errno = 0;
	if (*text < '0' || *text > '9')
		return -1;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno != 0)
		return -1;
	int64_t scale = 1;
	if (*end != '\0') {
		const char *p = strchr(suffixes, *end);
		if (p == NULL || end[1] != '\0')
			return -1;
		scale = scales[p - suffixes];
	}
	if (v > (unsigned long long)(INT64_MAX / scale))
		return -1;
	*value_r = (int64_t)v * scale;
	return 0;
}

int
setting_parse_number(const struct setting *s, const char *text, int64_t *value_r,
    const char **error_r)
{
	static const int64_t size_scales[] = { 1024, 1024, 1048576, 1048576, 1073741824, 1073741824 };
	static const int64_t time_scales[] = { 1, 60, 3600, 86400 };
	static const int64_t millis_scales[] = { 1000, 60000, 3600000, 86400000 };
	int64_t v = 0;

	switch (s->type) {
	case SETTING_INT:
		if (parse_scaled(text, "", NULL, &v) < 0) {
			*error_r = "expected a whole number";
			return -1;
		}
		break;
	case SETTING_SIZE:
		if (parse_scaled(text, "kKmMgG", size_scales, &v) < 0) {
			*error_r = "expected a size such as 1048576, 512K, 35M or 1G";
			return -1;
		}
		break;
	case SETTING_DURATION:
		if (parse_scaled(text, "smhd", time_scales, &v) < 0) {
			*error_r = "expected a duration such as 30, 30s, 5m, 2h or 5d";
			return -1;
		}
		break;
	case SETTING_MILLIS: {
		/* "ms" is two letters: strip it, then the one-letter scales apply. */
		char buf[32];
		size_t n = strlen(text);
		int rc;
		if (n >= 3 && n < sizeof(buf) && strcmp(text + n - 2, "ms") == 0) {
			memcpy(buf, text, n - 2);
			buf[n - 2] = '\0';
			rc = parse_scaled(buf, "", NULL, &v);
		} else {
			rc = parse_scaled(text, "smhd", millis_scales, &v);
		}
		if (rc < 0) {
			*error_r = "expected a duration such as 250ms, 2s, 5m or 1h";
			return -1;
		}
		break;
	}
	case SETTING_BOOL:
		if (strcasecmp(text, "true") == 0 || strcasecmp(text, "yes") == 0 ||
		    strcasecmp(text, "on") == 0 || strcmp(text, "1") == 0)
			v = 1;
		else if (strcasecmp(text, "false") == 0 || strcasecmp(text, "no") == 0 ||
		    strcasecmp(text, "off") == 0 || strcmp(text, "0") == 0)
			v = 0;
		else {
			*error_r = "expected true or false";
			return -1;
		}
		*value_r = v;
		return 0;
	case SETTING_ROLE:
		if (strcmp(text, "mx") == 0)
			v = LISTENER_ROLE_MX;
		else if (strcmp(text, "submission") == 0)
			v = LISTENER_ROLE_SUBMISSION;
		else if (strcmp(text, "submissions") == 0)
			v = LISTENER_ROLE_SUBMISSIONS;
		else {
			*error_r = "expected mx, submission or submissions";
			return -1;
		}
		*value_r = v;
		return 0;
	case SETTING_STRING:
		*error_r = "not a number";
		return -1;
	}
	if (v < s->min || v > s->max) {
		*error_r = "value out of range";
		return -1;
	}
	*value_r = v;
	return 0;
}
