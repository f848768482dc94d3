/*
 * rampart-dkim — the `rampart dkim` commands: verify a message's DKIM
 * signatures, sign a message, make a signing key with the TXT record to
 * publish, rotate a domain's keys and list them (RFC 6376, RFC 8301, RFC 8463).
 * The work is done by mailauth/dkim.h and keys/keyring.h (the key directory and
 * its state files); this file reads standard input, parses options and prints.
 *
 * Messages come on standard input, at most CLI_DKIM_MAX_MESSAGE octets. DKIM
 * works on CRLF line ends (RFC 6376 §3.4.1 canonicalises the message as sent
 * in SMTP, RFC 5322 §2.1): a message with no CR at all (a file saved with Unix
 * line ends) is read as if every LF were CRLF. `sign` then writes the
 * DKIM-Signature field with the message's own line ends and the message
 * unchanged after it.
 *
 * Exit statuses: verify: 0 when at least one signature passes, 1 when none
 * does (or the message is unsigned), 2 bad usage or unreadable input. sign,
 * keygen, rotate and list: 0 done, 1 refused or failed (one sentence on
 * stderr), 2 bad usage or unreadable input.
 */
#include "cmd/rampart-cli.h"
#include "cmd/rampart-dns.h"
#include "keys/keyring.h"
#include "lib/config.h"
#include "lib/proc.h"
#include "mailauth/dkim.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The largest message read from standard input. */
#define CLI_DKIM_MAX_MESSAGE (64u * 1024 * 1024)
/* --headers: at most this many field names. */
#define CLI_DKIM_MAX_HEADERS 64
/* RFC 1035 §3.3.14: a TXT record is a sequence of <character-string>s of at most
 * 255 octets each (§3.3). */
#define TXT_STRING_MAX 255
#define RSA_BITS_MIN 1024
#define RSA_BITS_MAX 4096

static const char verify_help[] =
    "Usage: rampart dkim verify [--dns-zone FILE | --resolver HOST[@PORT]] < MESSAGE\n"
    "\n"
    "Verifies every DKIM signature of the message on standard input (RFC 6376,\n"
    "RFC 8301, RFC 8463) and prints one line per signature:\n"
    "  dkim=pass header.d=DOMAIN header.s=SELECTOR header.a=ALGORITHM header.b=B\n"
    "  dkim=fail header.d=... (why it did not pass)\n"
    "or \"dkim=none\" when the message is unsigned. Results are those of RFC 8601:\n"
    "pass, fail, policy (rsa-sha1, or l= with more body), temperror, permerror.\n"
    "\n"
    "The message may have CRLF or LF line ends: a message with no CR at all is\n"
    "read as if each LF were CRLF.\n"
    "\n"
    "Keys are looked up in DNS: in the zone file given with --dns-zone (RFC 1035\n"
    "master file), at the server given with --resolver, else as configured\n"
    "(dns_resolver), else as /etc/resolv.conf says.\n"
    "\n"
    "Exit status: 0 at least one signature passes, 1 none passes (or unsigned, or\n"
    "DNS could not be set up: a sentence on standard error),\n"
    "2 bad usage or unreadable input.\n";

static const char sign_help[] =
    "Usage: rampart dkim sign --domain DOMAIN --selector SELECTOR --key FILE\n"
    "           [--simple] [--headers NAME:NAME:...] [--timestamp N] < MESSAGE\n"
    "\n"
    "Signs the message on standard input and prints it on standard output with\n"
    "the DKIM-Signature field first, then the message unchanged. The algorithm\n"
    "follows the key (PEM, PKCS#8 or PKCS#1): ed25519-sha256 or rsa-sha256.\n"
    "\n"
    "  --domain DOMAIN      d=, the signing domain\n"
    "  --selector SELECTOR  s=, where the public key is: SELECTOR._domainkey.DOMAIN\n"
    "  --key FILE           the private key (rampart dkim keygen writes one)\n"
    "  --simple             c=simple/simple instead of relaxed/relaxed\n"
    "  --headers LIST       the fields to sign, separated by ':' (must include From);\n"
    "                       default: From, To, Subject, Date, Message-ID and more,\n"
    "                       over-signed so that none can be added\n"
    "  --timestamp N        t=N (seconds since 1970); default now, 0 leaves t= out\n"
    "\n"
    "A message with no CR at all is signed as if each LF were CRLF, and the field\n"
    "is written with LF line ends like the message.\n"
    "Exit status: 0 signed, 1 refused (key unreadable, signing failed),\n"
    "2 bad usage or unreadable input.\n";

static const char keygen_help[] =
    "Usage: rampart dkim keygen DOMAIN [--selector SELECTOR] [--type ed25519|rsa]\n"
    "           [--bits N]\n"
    "\n"
    "Makes a DKIM signing key for DOMAIN where the daemon reads it,\n"
    "DKIM_KEY_DIR/DOMAIN/SELECTOR.key (dkim_key_dir, default STATE_DIR/dkim;\n"
    "directories 0700, key 0600). An existing key is never overwritten.\n"
    "Prints the DNS record to publish, on one line, e.g.\n"
    "  202611e._domainkey.example.org. IN TXT \"v=DKIM1; k=ed25519; p=...\"\n"
    "(an RSA key's record is longer than 255 octets, so it is split into several\n"
    "quoted strings, RFC 1035 §3.3.14) and the key's path on standard error.\n"
    "\n"
    "  --selector SELECTOR  default: YYYYMM of today and 'e' (ed25519) or 'r' (rsa)\n"
    "  --type TYPE          ed25519 (default, RFC 8463) or rsa\n"
    "  --bits N             RSA modulus size, 1024..4096 (default 2048, RFC 8301)\n"
    "\n"
    "Publish both an ed25519 and an rsa key and sign with both (RFC 8463 §1):\n"
    "verifiers that do not know ed25519-sha256 yet still check the RSA signature.\n"
    "  rampart dkim keygen example.org --type ed25519\n"
    "  rampart dkim keygen example.org --type rsa\n"
    "The daemon signs with a new key within seconds: publish its record first.\n"
    "To replace the keys of a domain that signs already, use 'rampart dkim rotate',\n"
    "which waits for the new record to reach DNS resolvers before switching.\n"
    "Exit status: 0 done, 1 refused (the key exists, a directory cannot be made),\n"
    "2 bad usage.\n";

static const char rotate_help[] =
    "Usage: rampart dkim rotate DOMAIN [--type ed25519|rsa] [--grace DURATION]\n"
    "           [--selector SELECTOR]\n"
    "\n"
    "Replaces the signing keys of DOMAIN without a gap: makes a new key for each\n"
    "type that signs for DOMAIN now (or for --type only), prints the DNS records\n"
    "to publish now, and lets the daemon switch when the grace period ends: then\n"
    "the new keys start signing and the old ones of the same type stop. Until then\n"
    "the old keys sign, so the new records have time to reach every resolver.\n"
    "The schedule is kept next to each key, DKIM_KEY_DIR/DOMAIN/SELECTOR.state\n"
    "(\"not-before TIME\" and \"retire-at TIME\" lines, seconds since 1970).\n"
    "\n"
    "  --type TYPE          rotate only the ed25519 or the rsa key (also: add a key\n"
    "                       of a type that does not sign yet, after the grace period)\n"
    "  --grace DURATION     how long the old keys keep signing: N with s, m, h, d or\n"
    "                       w (default 7d; 0 switches at once, before DNS has the\n"
    "                       new record: mail signed meanwhile fails DKIM)\n"
    "  --selector SELECTOR  the new key's selector (one type only); default: the\n"
    "                       date, YYYYMMDD, and 'e' or 'r', with -2, -3... when taken\n"
    "\n"
    "The retired keys' files stay: keep their DNS records a few days more (mail\n"
    "signed before the switch may still be verified), then remove the records and\n"
    "the files; 'rampart dkim list' says when a key is retired.\n"
    "Exit status: 0 done, 1 refused (no key signs for DOMAIN, a rotation is under\n"
    "way already, a file cannot be written), 2 bad usage.\n";

static const char list_help[] =
    "Usage: rampart dkim list [DOMAIN]\n"
    "\n"
    "Lists the DKIM keys in DKIM_KEY_DIR, of DOMAIN or of every domain, one line\n"
    "per key: DOMAIN SELECTOR TYPE STATE, where STATE is\n"
    "  active                   signs now\n"
    "  next (from TIME)         a rotation's new key: publish its record now\n"
    "  retiring (until TIME)    signs until a rotation's new key takes over\n"
    "  retired since TIME: ...  signs no more: remove its DNS record, then the file\n"
    "  unusable: REASON         never signs (an unreadable key or state file)\n"
    "and under each key that signs or will, the DNS record it needs (times are\n"
    "UTC). Exit status: 0 done (also when there are no keys at all), 1 refused\n"
    "(DOMAIN has no key), 2 bad usage.\n";

/* ---------------------------------------------------------------- input */

struct message {
	char *data;          /* as read */
	size_t len;
	char *wire;          /* CRLF line ends: data itself, or a converted copy */
	size_t wire_len;
	bool lf_only;        /* data has no CR: wire is data with each LF made CRLF */
};

static void
message_free(struct message *m)
{
	if (m->wire != m->data)
		free(m->wire);
	free(m->data);
	*m = (struct message){ 0 };
}

/* Reads standard input whole (up to CLI_DKIM_MAX_MESSAGE). Returns 0, or an
 * exit status after saying why. */
static int
message_read(struct message *m)
{
	/* Room for one octet more than the limit tells a message of exactly the
	 * limit from a larger one. */
	const size_t limit = CLI_DKIM_MAX_MESSAGE + 1;
	size_t cap = 64 * 1024;
	*m = (struct message){ .data = malloc(cap) };
	if (m->data == NULL)
		return refuse("Out of memory.");
	for (;;) {
		if (m->len == cap && cap < limit) {
			size_t ncap = cap * 2 > limit ? limit : cap * 2;
			char *n = realloc(m->data, ncap);
			if (n == NULL) {
				message_free(m);
				return refuse("Out of memory.");
			}
			m->data = n;
			cap = ncap;
		}
		if (m->len > CLI_DKIM_MAX_MESSAGE) {
			message_free(m);
			return usage_error("the message is larger than %u MiB",
			    CLI_DKIM_MAX_MESSAGE >> 20);
		}
		ssize_t r = read(STDIN_FILENO, m->data + m->len, cap - m->len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			message_free(m);
			return usage_error("cannot read the message from standard input: %s",
			    strerror(e));
		}
		if (r == 0)
			break;
		m->len += (size_t)r;
	}
	m->lf_only = memchr(m->data, '\r', m->len) == NULL;
	if (!m->lf_only) {
		m->wire = m->data;
		m->wire_len = m->len;
		return 0;
	}
	size_t lfs = 0;
	for (size_t i = 0; i < m->len; i++)
		lfs += m->data[i] == '\n';
	if ((m->wire = malloc(m->len + lfs + 1)) == NULL) {
		message_free(m);
		return refuse("Out of memory.");
	}
	for (size_t i = 0; i < m->len; i++) {
		if (m->data[i] == '\n')
			m->wire[m->wire_len++] = '\r';
		m->wire[m->wire_len++] = m->data[i];
	}
	return 0;
}

/* ---------------------------------------------------------------- verify */

/* Prints a result value as an RFC 8601 value: as it is when it is a plain
 * token, else as a quoted-string; bytes outside printable ASCII print as '?'
 * (a signature's tags are peer input and this goes to a terminal). */
static bool
value_plain(const char *s)
{
	if (s[0] == '\0')
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p <= ' ' || *p >= 0x7f || strchr("();,\"\\", *p) != NULL)
			return false;
	return true;
}

static void
print_value(const char *s)
{
	if (value_plain(s)) {
		fputs(s, stdout);
		return;
	}
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			putchar('\\');
		putchar(*p < ' ' || *p >= 0x7f ? '?' : *p);
	}
	putchar('"');
}

/* Whether the parentheses of s nest (a comment may hold comments, RFC 5322 §3.2.2). */
static bool
parens_balanced(const char *s)
{
	int depth = 0;
	for (; *s != '\0' && depth >= 0; s++)
		depth += *s == '(' ? 1 : *s == ')' ? -1 : 0;
	return depth == 0;
}

/* The reason as a comment, without its final period: "(rsa-sha1 is not
 * accepted (RFC 8301))". Unbalanced parentheses and backslashes are escaped. */
static void
print_comment(const char *reason, bool testing)
{
	if (reason == NULL)
		reason = "";
	size_t len = strlen(reason);
	if (len > 0 && reason[len - 1] == '.')
		len--;
	if (len == 0 && !testing)
		return;
	bool escape = !parens_balanced(reason);
	fputs(" (", stdout);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)reason[i];
		if (ch == '\\' || (escape && (ch == '(' || ch == ')')))
			putchar('\\');
		putchar(ch < ' ' || ch >= 0x7f ? '?' : ch);
	}
	if (testing)
		fputs(len > 0 ? "; key in testing mode, t=y" : "key in testing mode, t=y", stdout);
	putchar(')');
}

static void
print_property(const char *name, const char *value)
{
	if (value == NULL || value[0] == '\0')
		return;
	printf(" header.%s=", name);
	print_value(value);
}

static const struct option verify_options[] = {
	{ "dns-zone", required_argument, NULL, 'z' },
	{ "resolver", required_argument, NULL, 'r' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* getopt_long's own complaint, as one of ours. */
static int
option_error(const char *verb, int c, char **argv)
{
	/* A short option may sit inside a cluster ("-xv"): name it by optopt. */
	char shortopt[3] = { '-', (char)optopt, '\0' };
	const char *arg = argv[optind - 1];
	if (optopt != 0 && strncmp(arg, "--", 2) != 0)
		arg = shortopt;
	if (c == ':')
		return usage_error("'dkim %s': %s needs a value", verb, arg);
	return usage_error("'dkim %s' does not take the option %s", verb, arg);
}

int
cli_dkim_verify(struct cli *cli)
{
	const char *zone = NULL, *resolver = NULL;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(cli->pass_argc, cli->pass_argv, ":h", verify_options,
	    NULL)) != -1) {
		switch (c) {
		case 'z': zone = optarg; break;
		case 'r': resolver = optarg; break;
		case 'h':
			fputs(verify_help, stdout);
			return finish_output(0);
		default:
			return option_error("verify", c, cli->pass_argv);
		}
	}
	if (optind < cli->pass_argc)
		return usage_error("'dkim verify' takes no arguments (the message comes on "
		    "standard input)");
	if (zone != NULL && resolver != NULL)
		return usage_error("--dns-zone and --resolver exclude each other");
	if (isatty(STDIN_FILENO))
		return usage_error("'dkim verify' reads the message from standard input");

	struct message m;
	int ret = message_read(&m);
	if (ret != 0)
		return ret;
	struct dkim_verify *v = dkim_verify_new(time(NULL));
	if (v == NULL) {
		message_free(&m);
		return refuse("Out of memory.");
	}
	dkim_verify_feed(v, m.wire, m.wire_len);
	dkim_verify_finish(v);
	message_free(&m);

	/* The options, else the configuration's resolver, else the system's. */
	struct cli_dns d = { 0 };
	if ((ret = cli_dns_options(cli, &d, zone, resolver)) != 0) {
		config_free(&cli->cfg);
		dkim_verify_free(&v);
		return ret;
	}
	config_free(&cli->cfg);
	if (cli_dns_run(&d, dkim_verify_step, v, 0) < 0) {
		cli_dns_close(&d);
		dkim_verify_free(&v);
		return refuse("Cannot run the DNS event loop.");
	}

	/* Printed before cli_dns_close: results may point into the answers. */
	size_t n = dkim_verify_count(v);
	bool passed = false;
	if (n == 0)
		puts("dkim=none");
	for (size_t i = 0; i < n; i++) {
		const struct dkim_result *r = dkim_verify_result(v, i);
		printf("dkim=%s", dkim_status_name(r->status));
		print_property("d", r->domain);
		print_property("s", r->selector);
		print_property("a", r->algorithm);
		print_property("b", r->b);
		print_comment(r->status == DKIM_STATUS_PASS ? NULL : r->reason, r->testing);
		putchar('\n');
		passed |= r->status == DKIM_STATUS_PASS;
	}
	cli_dns_close(&d);
	dkim_verify_free(&v);
	return finish_output(passed ? 0 : 1);
}

/* ---------------------------------------------------------------- sign */

/* A field name (RFC 5322 §3.6.8: printable ASCII except ':'). */
static bool
field_name_valid(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] <= ' ' || s[i] >= 0x7f || s[i] == ':')
			return false;
	return true;
}

/* Splits "a:b:c" in place into names[] (NULL-terminated). Returns 0 or an exit status. */
static int
headers_parse(char *list, const char **names)
{
	size_t n = 0;
	bool from = false;
	for (char *p = list;;) {
		char *colon = strchr(p, ':');
		size_t len = colon != NULL ? (size_t)(colon - p) : strlen(p);
		if (!field_name_valid(p, len))
			return usage_error("--headers takes field names separated by ':', such as "
			    "from:to:subject");
		if (n == CLI_DKIM_MAX_HEADERS)
			return usage_error("--headers takes at most %d names", CLI_DKIM_MAX_HEADERS);
		names[n++] = p;
		from |= len == 4 && strncasecmp(p, "from", 4) == 0;
		if (colon == NULL)
			break;
		*colon = '\0';
		p = colon + 1;
	}
	names[n] = NULL;
	if (!from)
		return usage_error("--headers must include From (RFC 6376 §5.4)");
	return 0;
}

/* A DNS name: letters, digits, '-' and '_' in labels of 1..63 octets, dots
 * between (RFC 6376 §3.5 d= and s= are domain names; '_' is allowed in
 * selectors in practice). At most 253 octets, no final dot. */
static bool
dns_name_valid(const char *s)
{
	size_t len = strlen(s), label = 0;
	if (len == 0 || len > 253 || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (isalnum(ch) || ch == '-' || ch == '_') {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return true;
}

/* "0" .. a time_t's worth of decimal digits. */
static int
parse_number(const char *s, unsigned long long max, unsigned long long *out)
{
	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Writes the field with LF line ends when the message has them. */
static void
write_field(const char *field, bool lf_only)
{
	if (!lf_only) {
		fputs(field, stdout);
		return;
	}
	for (const char *p = field; *p != '\0'; p++)
		if (!(p[0] == '\r' && p[1] == '\n'))
			putchar(*p);
}

static const struct option sign_options[] = {
	{ "domain", required_argument, NULL, 'd' },
	{ "selector", required_argument, NULL, 's' },
	{ "key", required_argument, NULL, 'k' },
	{ "simple", no_argument, NULL, 'S' },
	{ "headers", required_argument, NULL, 'H' },
	{ "timestamp", required_argument, NULL, 't' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* Signs m with key; prints the field and the message. */
static int
sign_message(const struct dkim_sign_params *p, const struct dkim_key *key,
    const struct message *m)
{
	const char *error = NULL;
	unsigned char digest[32], sig[512];
	size_t siglen = 0;
	struct dkim_sign *s = dkim_sign_new(p, &error);
	if (s == NULL)
		return refuse("Cannot sign: %s", error != NULL ? error : "unknown error.");
	dkim_sign_feed(s, m->wire, m->wire_len);
	dkim_sign_finish(s);
	if (dkim_sign_digest(s, digest, &error) < 0 ||
	    dkim_key_sign_digest(key, digest, sig, &siglen, &error) < 0) {
		dkim_sign_free(&s);
		return refuse("Cannot sign: %s", error != NULL ? error : "unknown error.");
	}
	char *field = dkim_sign_header(s, sig, siglen);
	dkim_sign_free(&s);
	if (field == NULL)
		return refuse("Out of memory.");
	write_field(field, m->lf_only);
	free(field);
	fwrite(m->data, 1, m->len, stdout);
	return finish_output(0);
}

int
cli_dkim_sign(struct cli *cli)
{
	const char *domain = NULL, *selector = NULL, *key_path = NULL;
	char *headers = NULL;
	bool simple = false;
	unsigned long long ts = (unsigned long long)time(NULL);
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(cli->pass_argc, cli->pass_argv, ":h", sign_options,
	    NULL)) != -1) {
		switch (c) {
		case 'd': domain = optarg; break;
		case 's': selector = optarg; break;
		case 'k': key_path = optarg; break;
		case 'S': simple = true; break;
		case 'H': headers = optarg; break;
		case 't':
			/* RFC 6376 §3.5: t= is at most 12 digits. */
			if (parse_number(optarg, 999999999999ULL, &ts) < 0)
				return usage_error("--timestamp takes seconds since 1970 (0: no t=), "
				    "not '%s'", optarg);
			break;
		case 'h':
			fputs(sign_help, stdout);
			return finish_output(0);
		default:
			return option_error("sign", c, cli->pass_argv);
		}
	}
	if (optind < cli->pass_argc)
		return usage_error("'dkim sign' takes no arguments (the message comes on "
		    "standard input)");
	if (domain == NULL || selector == NULL || key_path == NULL)
		return usage_error("'dkim sign' needs --domain, --selector and --key");
	if (!dns_name_valid(domain))
		return usage_error("--domain %s is not a domain name", domain);
	if (!dns_name_valid(selector))
		return usage_error("--selector %s is not a valid selector (letters, digits, '-', "
		    "dots between)", selector);
	const char *names[CLI_DKIM_MAX_HEADERS + 1];
	int ret;
	if (headers != NULL && (ret = headers_parse(headers, names)) != 0)
		return ret;
	if (isatty(STDIN_FILENO))
		return usage_error("'dkim sign' reads the message from standard input");

	const char *error = NULL;
	struct dkim_key *key = dkim_key_load(key_path, &error);
	if (key == NULL)
		return refuse("Cannot load the key %s: %s", key_path,
		    error != NULL ? error : "unknown error.");
	struct message m;
	if ((ret = message_read(&m)) != 0) {
		dkim_key_free(&key);
		return ret;
	}
	struct dkim_sign_params p = {
		.domain = domain,
		.selector = selector,
		.type = dkim_key_type(key),
		.simple_header = simple,
		.simple_body = simple,
		.headers = headers != NULL ? names : NULL,
		.timestamp = (time_t)ts,
	};
	ret = sign_message(&p, key, &m);
	message_free(&m);
	dkim_key_free(&key);
	return ret;
}

/* ---------------------------------------------------------------- keygen */

#define DOMAIN_BUF 254

/* The directory is named after the domain: lower case, no final dot. */
static bool
domain_arg(const char *arg, char domain[DOMAIN_BUF])
{
	size_t dlen = strlen(arg);
	if (dlen > 0 && arg[dlen - 1] == '.')
		dlen--;
	if (dlen >= DOMAIN_BUF)
		return false;
	for (size_t i = 0; i < dlen; i++)
		domain[i] = (char)tolower((unsigned char)arg[i]);
	domain[dlen] = '\0';
	return dns_name_valid(domain) && strchr(domain, '.') != NULL;
}

/* mkdir -p with mode 0700 for what is made. */
static int
mkdir_parents(const char *path, const char **error_r)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
		*error_r = "the path is too long";
		return -1;
	}
	for (char *p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST) {
			*error_r = strerror(errno);
			return -1;
		}
		if (saved == '\0')
			break;
		*p = saved;
	}
	struct stat st;
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
		*error_r = "it is not a directory";
		return -1;
	}
	if ((st.st_mode & 077) != 0)
		fprintf(stderr, "Warning: %s is accessible to other users (mode %03o); 0700 is "
		    "safer for private keys.\n", path, (unsigned)(st.st_mode & 0777));
	return 0;
}

/* Prints the record as NAME. IN TXT "..." "..." with strings of at most 255
 * octets (RFC 1035 §3.3.14), '"' and '\' escaped (RFC 1035 §5.1). */
static void
print_txt_record(const char *selector, const char *domain, const char *txt)
{
	printf("%s._domainkey.%s. IN TXT", selector, domain);
	size_t len = strlen(txt);
	for (size_t off = 0; off < len || off == 0; off += TXT_STRING_MAX) {
		size_t n = len - off < TXT_STRING_MAX ? len - off : TXT_STRING_MAX;
		fputs(" \"", stdout);
		for (size_t i = 0; i < n; i++) {
			if (txt[off + i] == '"' || txt[off + i] == '\\')
				putchar('\\');
			putchar(txt[off + i]);
		}
		putchar('"');
		if (len == 0)
			break;
	}
	putchar('\n');
}

static const struct option keygen_options[] = {
	{ "selector", required_argument, NULL, 's' },
	{ "type", required_argument, NULL, 't' },
	{ "bits", required_argument, NULL, 'b' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int
cli_dkim_keygen(struct cli *cli)
{
	const char *selector = NULL;
	enum dkim_key_type type = DKIM_KEY_ED25519;
	unsigned long long bits = 0;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(cli->pass_argc, cli->pass_argv, ":h", keygen_options,
	    NULL)) != -1) {
		switch (c) {
		case 's': selector = optarg; break;
		case 't':
			if (strcmp(optarg, "ed25519") == 0)
				type = DKIM_KEY_ED25519;
			else if (strcmp(optarg, "rsa") == 0)
				type = DKIM_KEY_RSA;
			else
				return usage_error("--type is ed25519 or rsa, not '%s'", optarg);
			break;
		case 'b':
			if (parse_number(optarg, RSA_BITS_MAX, &bits) < 0 || bits < RSA_BITS_MIN)
				return usage_error("--bits takes %d to %d, not '%s'", RSA_BITS_MIN,
				    RSA_BITS_MAX, optarg);
			break;
		case 'h':
			fputs(keygen_help, stdout);
			return finish_output(0);
		default:
			return option_error("keygen", c, cli->pass_argv);
		}
	}
	if (cli->pass_argc - optind != 1)
		return usage_error("'dkim keygen' needs one domain");
	if (bits != 0 && type != DKIM_KEY_RSA)
		return usage_error("--bits is for RSA keys (--type rsa)");

	char domain[DOMAIN_BUF];
	const char *arg = cli->pass_argv[optind];
	if (!domain_arg(arg, domain))
		return usage_error("%s is not a domain name", arg);

	char def_selector[16];
	if (selector == NULL) {
		time_t now = time(NULL);
		struct tm tm;
		localtime_r(&now, &tm);
		size_t n = strftime(def_selector, sizeof(def_selector) - 1, "%Y%m", &tm);
		def_selector[n] = type == DKIM_KEY_ED25519 ? 'e' : 'r';
		def_selector[n + 1] = '\0';
		selector = def_selector;
	}
	if (!dns_name_valid(selector))
		return usage_error("--selector %s is not a valid selector (letters, digits, '-', "
		    "dots between)", selector);
	if (type == DKIM_KEY_RSA && bits > 0 && bits < 2048)
		fprintf(stderr, "Warning: RFC 8301 §3.2 says signers SHOULD use RSA keys of at "
		    "least 2048 bits.\n");

	if (load_config(cli) < 0)
		return EXIT_REFUSED;
	proc_drop_privileges(cli->cfg, "rampart");
	umask(077);

	int ret = 0;
	const char *error = NULL;
	char dir[PATH_MAX], path[PATH_MAX];
	char *txt = NULL;
	if (snprintf(dir, sizeof(dir), "%s/%s", cli->cfg->dkim_key_dir, domain) >=
	    (int)sizeof(dir) || snprintf(path, sizeof(path), "%s/%s.key", dir, selector) >=
	    (int)sizeof(path)) {
		ret = refuse("The key's path would be too long.");
		goto out;
	}
	struct stat st;
	if (lstat(path, &st) == 0) {
		ret = refuse("A key already exists at %s; it is never overwritten. Choose another "
		    "selector (--selector), or remove that file first.", path);
		goto out;
	}
	if (mkdir_parents(dir, &error) < 0) {
		ret = refuse("Cannot make the directory %s: %s.", dir, error);
		goto out;
	}
	if (dkim_key_generate(type, (unsigned)bits, path, &txt, &error) < 0) {
		ret = refuse("Cannot make the key %s: %s", path,
		    error != NULL ? error : "unknown error.");
		goto out;
	}
	print_txt_record(selector, domain, txt);
	fprintf(stderr, "Wrote the private key to %s (mode 0600).\n"
	    "Publish the record above in DNS before signing with it.\n", path);
	ret = finish_output(0);
out:
	free(txt);
	config_free(&cli->cfg);
	return ret;
}

/* ---------------------------------------------------------------- rotate and list */

#define GRACE_DEFAULT (7 * 86400)
#define GRACE_MAX (366 * 86400)
#define SELECTOR_TRIES 99

static const char *
type_name(enum dkim_key_type type)
{
	return type == DKIM_KEY_ED25519 ? "ed25519" : "rsa";
}

/* "2026-03-08 12:00:00 UTC" */
static void
time_text(time_t t, char *buf, size_t size)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* N followed by s, m, h, d or w (none: seconds), up to GRACE_MAX. */
static int
parse_duration(const char *s, time_t *out)
{
	char *end;
	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	unsigned long long unit = 1;
	switch (*end) {
	case '\0': break;
	case 's': unit = 1; end++; break;
	case 'm': unit = 60; end++; break;
	case 'h': unit = 3600; end++; break;
	case 'd': unit = 86400; end++; break;
	case 'w': unit = 7 * 86400; end++; break;
	default: return -1;
	}
	if (errno != 0 || *end != '\0' || v > GRACE_MAX / unit)
		return -1;
	*out = (time_t)(v * unit);
	return 0;
}

/* Whether DIR/SELECTOR.key or .state exists (a selector is never reused). */
static bool
selector_taken(const char *dir, const char *selector)
{
	char path[PATH_MAX + 512];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s.key", dir, selector);
	if (lstat(path, &st) == 0)
		return true;
	snprintf(path, sizeof(path), "%s/%s.state", dir, selector);
	return lstat(path, &st) == 0;
}

/* The date and 'e' or 'r', then -2, -3... until one is free; "" when none is. */
static void
selector_default(const char *dir, enum dkim_key_type type, time_t now, char *buf,
    size_t size)
{
	char base[16];
	struct tm tm;
	localtime_r(&now, &tm);
	size_t n = strftime(base, sizeof(base) - 1, "%Y%m%d", &tm);
	base[n] = type == DKIM_KEY_ED25519 ? 'e' : 'r';
	base[n + 1] = '\0';
	snprintf(buf, size, "%s", base);
	for (int i = 2; selector_taken(dir, buf); i++) {
		if (i > SELECTOR_TRIES) {
			buf[0] = '\0';
			return;
		}
		snprintf(buf, size, "%s-%d", base, i);
	}
}

struct rotation {
	enum dkim_key_type type;
	char selector[64];
	char *txt;
	size_t retired;          /* old keys given a retire-at */
};

/* Makes the new key of r (its state first, so it never signs early) and
 * retires the old ones of its type. Returns 0 or the exit status. */
static int
rotate_one(const struct keyring *kr, const char *dir, const char *domain,
    struct rotation *r, time_t now, time_t grace)
{
	char path[PATH_MAX + 512], state[PATH_MAX + 512], comment[384], when[64];
	const char *error = NULL;
	time_t switch_at = now + grace;
	time_text(switch_at, when, sizeof(when));
	snprintf(path, sizeof(path), "%s/%s.key", dir, r->selector);
	snprintf(state, sizeof(state), "%s/%s.state", dir, r->selector);
	snprintf(comment, sizeof(comment), "rampart dkim rotate: signs from %s", when);
	if (grace > 0 && keyring_state_write(state, switch_at, 0, comment, &error) < 0)
		return refuse("Cannot write %s: %s.", state, error);
	if (dkim_key_generate(r->type, 0, path, &r->txt, &error) < 0) {
		if (grace > 0)
			unlink(state);
		return refuse("Cannot make the key %s: %s", path,
		    error != NULL ? error : "unknown error.");
	}
	snprintf(comment, sizeof(comment), "rampart dkim rotate: replaced by %s from %s",
	    r->selector, when);
	for (size_t i = 0; i < keyring_count(kr); i++) {
		const struct keyring_key *k = keyring_get(kr, i);
		if (strcmp(k->domain, domain) != 0 || k->key == NULL || k->type != r->type ||
		    (k->retire_at != 0 && k->retire_at <= switch_at))
			continue;
		snprintf(state, sizeof(state), "%s/%s.state", dir, k->selector);
		if (keyring_state_write(state, k->not_before, switch_at, comment, &error) < 0)
			return refuse("The new key %s is made, but %s cannot be retired: %s. Write "
			    "\"retire-at %lld\" into %s by hand.", path, k->selector, error,
			    (long long)switch_at, state);
		r->retired++;
	}
	return 0;
}

static const struct option rotate_options[] = {
	{ "type", required_argument, NULL, 't' },
	{ "grace", required_argument, NULL, 'g' },
	{ "selector", required_argument, NULL, 's' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* What rotate found and decided: the types to rotate, in order. */
struct rotate_plan {
	struct rotation r[2];
	size_t n;
};

/* Picks the types and selectors. Returns 0 or the exit status. */
static int
rotate_plan_make(const struct keyring *kr, const char *dir, const char *domain, int type_opt,
    const char *selector, time_t now, struct rotate_plan *plan)
{
	bool signs[2] = { false, false };
	for (size_t i = 0; i < keyring_count(kr); i++) {
		const struct keyring_key *k = keyring_get(kr, i);
		if (strcmp(k->domain, domain) != 0 || k->key == NULL)
			continue;
		if (keyring_key_signs(k, now))
			signs[k->type] = true;
		if (k->not_before > now && (type_opt < 0 || type_opt == (int)k->type)) {
			char when[64];
			time_text(k->not_before, when, sizeof(when));
			return refuse("A rotation of the %s key of %s is under way: %s signs from "
			    "%s. Wait until then, or remove %s/%s.key and .state to start over.",
			    type_name(k->type), domain, k->selector, when, dir, k->selector);
		}
	}
	for (int t = DKIM_KEY_ED25519; t <= DKIM_KEY_RSA; t++)
		if (type_opt == t || (type_opt < 0 && signs[t]))
			plan->r[plan->n++] = (struct rotation){ .type = (enum dkim_key_type)t };
	if (plan->n == 0)
		return refuse("No key signs for %s now: make one with 'rampart dkim keygen %s', "
		    "or name the type to add with --type.", domain, domain);
	if (selector != NULL && plan->n > 1)
		return usage_error("--selector names one key, but %s signs with ed25519 and rsa "
		    "keys: add --type", domain);
	for (size_t i = 0; i < plan->n; i++) {
		struct rotation *r = &plan->r[i];
		if (selector != NULL) {
			if (selector_taken(dir, selector))
				return refuse("The selector %s of %s is taken already; a selector is "
				    "never reused (its DNS record may still be cached).", selector,
				    domain);
			snprintf(r->selector, sizeof(r->selector), "%s", selector);
			continue;
		}
		selector_default(dir, r->type, now, r->selector, sizeof(r->selector));
		if (r->selector[0] == '\0')
			return refuse("No free default selector for today; choose one with "
			    "--selector.");
	}
	return 0;
}

static void
rotate_report(const char *domain, const struct rotate_plan *plan, time_t now, time_t grace)
{
	char when[64];
	time_text(now + grace, when, sizeof(when));
	for (size_t i = 0; i < plan->n; i++)
		print_txt_record(plan->r[i].selector, domain, plan->r[i].txt);
	fprintf(stderr, "Publish the record%s above in DNS now.\n", plan->n > 1 ? "s" : "");
	for (size_t i = 0; i < plan->n; i++) {
		const struct rotation *r = &plan->r[i];
		if (grace == 0)
			fprintf(stderr, "%s (%s) signs from now on", r->selector, type_name(r->type));
		else
			fprintf(stderr, "From %s, %s (%s) signs", when, r->selector,
			    type_name(r->type));
		if (r->retired > 0)
			fprintf(stderr, " and the %zu %s key%s before it stop%s", r->retired,
			    type_name(r->type), r->retired > 1 ? "s" : "", r->retired > 1 ? "" : "s");
		fputs(".\n", stderr);
	}
	if (grace == 0)
		fputs("Warning: with --grace 0 the new key signs before its DNS record can have "
		    "reached verifiers: mail signed meanwhile fails DKIM.\n", stderr);
	fputs("Keep the old records in DNS a few days after the switch, then remove them and "
	    "the old key files ('rampart dkim list' shows what is retired).\n", stderr);
}

int
cli_dkim_rotate(struct cli *cli)
{
	const char *selector = NULL;
	int type_opt = -1, c;
	time_t grace = GRACE_DEFAULT;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(cli->pass_argc, cli->pass_argv, ":h", rotate_options,
	    NULL)) != -1) {
		switch (c) {
		case 't':
			if (strcmp(optarg, "ed25519") == 0)
				type_opt = DKIM_KEY_ED25519;
			else if (strcmp(optarg, "rsa") == 0)
				type_opt = DKIM_KEY_RSA;
			else
				return usage_error("--type is ed25519 or rsa, not '%s'", optarg);
			break;
		case 'g':
			if (parse_duration(optarg, &grace) < 0)
				return usage_error("--grace takes a duration such as 7d, 48h or 0 (at "
				    "most 366d), not '%s'", optarg);
			break;
		case 's': selector = optarg; break;
		case 'h':
			fputs(rotate_help, stdout);
			return finish_output(0);
		default:
			return option_error("rotate", c, cli->pass_argv);
		}
	}
	char domain[DOMAIN_BUF];
	if (cli->pass_argc - optind != 1)
		return usage_error("'dkim rotate' needs one domain");
	if (!domain_arg(cli->pass_argv[optind], domain))
		return usage_error("%s is not a domain name", cli->pass_argv[optind]);
	if (selector != NULL && !dns_name_valid(selector))
		return usage_error("--selector %s is not a valid selector (letters, digits, '-', "
		    "dots between)", selector);

	if (load_config(cli) < 0)
		return EXIT_REFUSED;
	proc_drop_privileges(cli->cfg, "rampart");
	umask(077);
	int ret = 0;
	char dir[PATH_MAX];
	struct rotate_plan plan = { .n = 0 };
	struct keyring *kr = keyring_new(cli->cfg->dkim_key_dir);
	time_t now = time(NULL);
	if (kr == NULL) {
		ret = refuse("Out of memory.");
		goto out;
	}
	keyring_load(kr, true);
	if (snprintf(dir, sizeof(dir), "%s/%s", cli->cfg->dkim_key_dir, domain) >=
	    (int)sizeof(dir) - 80) {
		ret = refuse("The key directory's path is too long.");
		goto out;
	}
	if ((ret = rotate_plan_make(kr, dir, domain, type_opt, selector, now, &plan)) != 0)
		goto out;
	const char *error = NULL;
	if (mkdir_parents(dir, &error) < 0) {
		ret = refuse("Cannot make the directory %s: %s.", dir, error);
		goto out;
	}
	for (size_t i = 0; i < plan.n && ret == 0; i++)
		ret = rotate_one(kr, dir, domain, &plan.r[i], now, grace);
	if (ret == 0) {
		rotate_report(domain, &plan, now, grace);
		ret = finish_output(0);
	}
out:
	for (size_t i = 0; i < plan.n; i++)
		free(plan.r[i].txt);
	keyring_free(&kr);
	config_free(&cli->cfg);
	return ret;
}

/* One key's line, and its DNS record when it signs or will. */
static void
list_key(const struct keyring_key *k, time_t now)
{
	char when[64];
	printf("%s %s %s ", k->domain, k->selector, k->key != NULL ? type_name(k->type) : "?");
	if (k->key == NULL) {
		printf("unusable: %s\n", k->error != NULL ? k->error : "?");
		return;
	}
	if (k->retire_at != 0 && k->retire_at <= now) {
		time_text(k->retire_at, when, sizeof(when));
		printf("retired since %s: remove its DNS record and then the file %s\n", when,
		    k->path);
		return;
	}
	if (k->not_before > now) {
		time_text(k->not_before, when, sizeof(when));
		printf("next (from %s)\n", when);
	} else if (k->retire_at != 0) {
		time_text(k->retire_at, when, sizeof(when));
		printf("retiring (until %s)\n", when);
	} else {
		puts("active");
	}
	char *txt = dkim_key_txt(k->key);
	if (txt != NULL) {
		fputs("  ", stdout);
		print_txt_record(k->selector, k->domain, txt);
	}
	free(txt);
}

static const struct option list_options[] = {
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int
cli_dkim_list(struct cli *cli)
{
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(cli->pass_argc, cli->pass_argv, ":h", list_options,
	    NULL)) != -1) {
		if (c != 'h')
			return option_error("list", c, cli->pass_argv);
		fputs(list_help, stdout);
		return finish_output(0);
	}
	char domain[DOMAIN_BUF];
	bool one = cli->pass_argc - optind == 1;
	if (cli->pass_argc - optind > 1)
		return usage_error("'dkim list' takes at most one domain");
	if (one && !domain_arg(cli->pass_argv[optind], domain))
		return usage_error("%s is not a domain name", cli->pass_argv[optind]);

	if (load_config(cli) < 0)
		return EXIT_REFUSED;
	/* As the service user, who owns the keys (and reads them like the daemon). */
	proc_drop_privileges(cli->cfg, "rampart");
	int ret;
	struct keyring *kr = keyring_new(cli->cfg->dkim_key_dir);
	if (kr == NULL) {
		config_free(&cli->cfg);
		return refuse("Out of memory.");
	}
	keyring_load(kr, true);
	time_t now = time(NULL);
	size_t shown = 0;
	for (size_t i = 0; i < keyring_count(kr); i++) {
		const struct keyring_key *k = keyring_get(kr, i);
		if (one && strcmp(k->domain, domain) != 0)
			continue;
		list_key(k, now);
		shown++;
	}
	/* What is not a key of the list (bad names, unreadable directories). */
	for (size_t i = 0; i < keyring_problem_count(kr); i++) {
		const char *p = keyring_problem(kr, i);
		bool of_key = false;
		for (size_t j = 0; j < keyring_count(kr) && !of_key; j++) {
			const char *path = keyring_get(kr, j)->path;
			of_key = strncmp(p, path, strlen(path)) == 0 && p[strlen(path)] == ':';
		}
		if (!of_key)
			fprintf(stderr, "Warning: %s\n", p);
	}
	if (shown == 0 && one) {
		ret = refuse("%s has no DKIM key in %s.", domain, cli->cfg->dkim_key_dir);
	} else {
		if (shown == 0)
			fprintf(stderr, "No DKIM keys in %s.\n", cli->cfg->dkim_key_dir);
		ret = finish_output(0);
	}
	keyring_free(&kr);
	config_free(&cli->cfg);
	return ret;
}
