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
	{ "queue_retry_min", SETTING_DURATION, "1m", C(queue_retry_min), 1, 86400,
	  "First retry delay after a temporary delivery failure; doubles each time." },
	{ "queue_retry_max", SETTING_DURATION, "1h", C(queue_retry_max), 1, 604800,
	  "Longest delay between two delivery attempts." },
	{ "delivery_workers", SETTING_INT, "4", C(delivery_workers), 1, 64,
	  "Threads in the queue process that write, fsync and deliver messages." },
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
