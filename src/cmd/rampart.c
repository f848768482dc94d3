/*
 * rampart — the administration command line: domains, users, aliases.
 *
 * It opens the same SQLite directory as the running daemon (WAL mode and a busy
 * timeout make that safe). Run as root with a `user` configured, it first
 * switches to that user, so the files it creates belong to the daemon.
 *
 * Passwords never come from the command line (ps and shell history would show
 * them): they are typed twice on the terminal with echo off, read from the first
 * line of standard input, or generated. Every copy is held in locked memory and
 * wiped (sodium_malloc/sodium_free); the process is made non-dumpable first.
 *
 * Output: lists print one item per line in a stable order; refusals print one
 * sentence on stderr and exit 1; usage errors exit 2.
 */
#include "auth/directory.h"
#include "auth/password.h"
#include "auth/policy.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/proc.h"
#include "queue/queue-admin.h"
#include "queue/queue-ctl.h"
#include "queue/spool.h"
#include "rampart-build.h"
#include "cmd/rampart-cli.h"
#include "cmd/rampart-log.h"
#include "auth/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#define DEFAULT_CONFIG "/etc/rampart/rampart.conf"
/* A password buffer: the longest password, a newline and the NUL. */
#define PW_BUF (PASSWORD_MAX_BYTES + 2)
/* Attempts at a generated password that passes the policy (the first always does). */
#define GENERATE_TRIES 8

static const char usage_text[] =
    "Usage: rampart [-c CONFIG] COMMAND [ARGUMENTS]\n"
    "\n"
    "Domains:\n"
    "  domain add NAME                add a local domain\n"
    "  domain list                    list the local domains\n"
    "  domain del [--force] NAME      delete a domain; --force also deletes its users\n"
    "                                 and aliases (their mail on disk stays)\n"
    "  domain set DOMAIN KEY=VALUE... smtp-auth|imap|pop3=on|off: the users' default\n"
    "  domain show DOMAIN             show a domain's defaults\n"
    "Users:\n"
    "  user add ADDRESS [--password-stdin | --generate-password]\n"
    "                                 add a user (without an option: type the password\n"
    "                                 twice on the terminal)\n"
    "  user list [DOMAIN]             list the users, of one domain or of all\n"
    "  user del ADDRESS               delete a user (the mailbox on disk stays)\n"
    "  user passwd ADDRESS [--password-stdin | --generate-password]\n"
    "                                 set a user's password\n"
    "  user set ADDRESS KEY=VALUE...  smtp-auth|imap|pop3=on|off|default,\n"
    "                                 networks=CIDR,...|any, enabled=yes|no\n"
    "  user show ADDRESS              show a user's switches and networks\n"
    "Aliases:\n"
    "  alias add ALIAS TARGET         deliver mail for ALIAS to TARGET as well (a user,\n"
    "                                 another alias or an external address)\n"
    "  alias list [DOMAIN]            list aliases, one \"ALIAS TARGET\" per line\n"
    "  alias del ALIAS [TARGET]       remove one target, or the whole alias\n"
    "Sender rights (who may send as whom; own address and aliases need no grant):\n"
    "  sendas add USER ADDRESS        let USER send as ADDRESS (or @domain: all of it)\n"
    "  sendas del USER ADDRESS        withdraw a grant\n"
    "  sendas list [USER]             list grants, one \"USER ADDRESS\" per line\n"
    "Guard:\n"
    "  guard list                     active blocks: NETWORK until TIME level N\n"
    "  guard unblock ADDRESS|CIDR     lift every block covering or inside it\n"
    RAMPART_LOG_USAGE
    "Queue (IDs as 'queue list' prints them; a change asks rampartd, and when it is\n"
    "not running, changes the spool files directly):\n"
    "  queue list                     list queued and held messages, their age, size,\n"
    "                                 sender and recipients' states\n"
    "  queue show ID                  a message's envelope, recipients, header section\n"
    "                                 and, when rampartd runs, its delivery state\n"
    "  queue retry ID|--all           try a message (or every queued one) now\n"
    "  queue delete ID                remove a message for good, without a bounce\n"
    "  queue hold ID                  put a message aside: not delivered until released\n"
    "  queue release ID               put a held message back in the queue\n"
    "Mail authentication (each takes --dns-zone FILE or --resolver HOST@PORT; else\n"
    "the configured resolver, else /etc/resolv.conf):\n"
    "  spf check --ip IP --sender ADDR --helo NAME\n"
    "                                 the SPF result (RFC 7208) for that client\n"
    "  dkim verify < MSG              verify every DKIM-Signature; exit 0 if one passes\n"
    "  dkim sign --domain D --selector S --key FILE < MSG\n"
    "                                 print MSG signed (ed25519 or rsa, as the key)\n"
    "  dkim keygen DOMAIN [--selector S] [--type ed25519|rsa]\n"
    "                                 new signing key; prints the TXT record to publish\n"
    "  dkim rotate DOMAIN [--type ed25519|rsa] [--grace DURATION] [--selector S]\n"
    "                                 new key now, the old one retired after the grace\n"
    "  dkim list [DOMAIN]             signing keys, their state and TXT records\n"
    "  mailauth check --ip IP --helo NAME --mail-from ADDR < MSG\n"
    "                                 the Authentication-Results the mx listener would add\n"
    "  dns query NAME TYPE            ask the resolver Rampart uses\n"
    "Other:\n"
    "  lookup ADDRESS                 show where mail for ADDRESS would be delivered\n"
    "  config-doc                     print the settings reference (Markdown)\n"
    "  help                           print this text\n"
    "  version                        print the version\n"
    "\n"
    "Options:\n"
    "  -c CONFIG             configuration file (default $RAMPART_CONFIG, else\n"
    "                        " DEFAULT_CONFIG ")\n"
    "  --password-stdin      read the password from the first line of standard input\n"
    "  --generate-password   generate a strong password; it is printed once, alone,\n"
    "                        on standard output\n"
    "\n"
    "A password is never accepted as an argument: it would be visible in ps and in\n"
    "the shell history. Exit status: 0 done, 1 refused or failed (one sentence on\n"
    "standard error), 2 usage error.\n";


/* Options a command accepts. */
#define OPT_FORCE 0x1
#define OPT_PASSWORD 0x2   /* --password-stdin, --generate-password */
#define OPT_PASSTHROUGH 0x4   /* the command parses its own options */

struct command {
	const char *name;      /* "domain add" */
	int (*run)(struct cli *cli);
	int min_args, max_args;
	unsigned opts;
	bool needs_directory;
	bool audited;          /* a change: an "admin" line in the audit log */
};

/* ---------------------------------------------------------------- helpers */

int
refuse(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_REFUSED;
}

int
usage_error(const char *fmt, ...)
{
	va_list ap;
	fputs("rampart: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("; see 'rampart help'.\n", stderr);
	return EXIT_USAGE;
}

int
finish_output(int ret)
{
	if (fflush(stdout) != 0 || ferror(stdout))
		return ret != 0 ? ret : refuse("Cannot write the output: %s.", strerror(errno));
	return ret;
}

int
load_config(struct cli *cli)
{
	char *error = NULL;
	cli->cfg = config_load(cli->config_path, NULL, 0, &error);
	if (cli->cfg == NULL) {
		refuse("Cannot load the configuration: %s.",
		    error != NULL ? error : "unknown error");
		free(error);
		return -1;
	}
	const char *data_dir = cli->cfg->data_dir[0] != '\0' ? cli->cfg->data_dir :
	    RAMPART_DATADIR;
	snprintf(cli->common_list, sizeof(cli->common_list), "%s/common-passwords.txt", data_dir);
	return 0;
}

static int
open_directory(struct cli *cli)
{
	char *error = NULL;
	cli->dir = directory_open(cli->cfg->directory_path, &error);
	if (cli->dir == NULL) {
		refuse("%s", error != NULL ? error : "Cannot open the directory.");
		free(error);
		return -1;
	}
	return 0;
}

static char
recipient_delimiter(const struct cli *cli)
{
	return cli->cfg->recipient_delimiter != NULL ? cli->cfg->recipient_delimiter[0] : '\0';
}

/* ---------------------------------------------------------------- passwords */

/* The terminal whose echo is off, for the signal handler to restore it. */
static volatile sig_atomic_t tty_fd = -1;
static struct termios tty_saved;

static void
tty_restore_and_die(int sig)
{
	if (tty_fd >= 0)
		tcsetattr(tty_fd, TCSAFLUSH, &tty_saved);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Reads one line from fd into buf (size PW_BUF) without stdio (no buffered copy). */
static int
read_line(int fd, char *buf, const char **error_r)
{
	size_t len = 0;
	for (;;) {
		char c;
		ssize_t n = read(fd, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = "Cannot read the password.";
			return -1;
		}
		if (n == 0 || c == '\n')
			break;
		if (len == PASSWORD_MAX_BYTES) {
			*error_r = "The password is longer than 1024 bytes.";
			return -1;
		}
		buf[len++] = c;
	}
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	buf[len] = '\0';
	sodium_memzero(buf + len, PW_BUF - len);
	if (len == 0) {
		*error_r = "The password is empty.";
		return -1;
	}
	return 0;
}

static int
tty_ask(int fd, const char *prompt, char *buf, const char **error_r)
{
	struct termios quiet;
	if (tcgetattr(fd, &tty_saved) < 0) {
		*error_r = "Cannot use the terminal; use --password-stdin or --generate-password.";
		return -1;
	}
	quiet = tty_saved;
	quiet.c_lflag &= (tcflag_t)~(ECHO | ECHOE | ECHOK);
	quiet.c_lflag |= ECHONL;
	tty_fd = fd;
	if (tcsetattr(fd, TCSAFLUSH, &quiet) < 0) {
		tty_fd = -1;
		*error_r = "Cannot turn off echo on the terminal.";
		return -1;
	}
	int ret = write(fd, prompt, strlen(prompt)) < 0 ? -1 : read_line(fd, buf, error_r);
	if (ret < 0 && *error_r == NULL)
		*error_r = "Cannot write to the terminal.";
	tcsetattr(fd, TCSAFLUSH, &tty_saved);
	tty_fd = -1;
	return ret;
}

/* Asks twice on the controlling terminal. */
static int
read_password_tty(const char *address, char *pw, char *again, const char **error_r)
{
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		*error_r = "There is no terminal to ask for the password on; use --password-stdin "
		    "or --generate-password.";
		return -1;
	}
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP };
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], tty_restore_and_die);
	char prompt[DIRECTORY_ADDRESS_MAX + 32];
	snprintf(prompt, sizeof(prompt), "New password for %s: ", address);
	*error_r = NULL;
	int ret = tty_ask(fd, prompt, pw, error_r);
	if (ret == 0)
		ret = tty_ask(fd, "Retype the password: ", again, error_r);
	if (ret == 0 && (strlen(pw) != strlen(again) ||
	    sodium_memcmp(pw, again, strlen(pw)) != 0)) {
		*error_r = "The two passwords do not match.";
		ret = -1;
	}
	sodium_memzero(again, PW_BUF);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_DFL);
	close(fd);
	return ret;
}

/*
 * Obtains the new password for address (local@domain, normalised) into pw, and
 * checks it against the policy. Returns 0 or an exit status.
 */
static int
obtain_password(struct cli *cli, const char *address, char *pw, char *scratch)
{
	const char *at = strrchr(address, '@');
	char local[DIRECTORY_ADDRESS_MAX + 1];
	snprintf(local, sizeof(local), "%.*s", (int)(at - address), address);
	struct policy_params params = {
		.min_length = (unsigned)cli->cfg->password_min_length,
		.min_entropy = (double)cli->cfg->password_min_entropy,
		.common_list_path = cli->common_list,
	};
	const char *error = NULL;
	if (cli->generate) {
		for (int i = 0; i < GENERATE_TRIES; i++) {
			if (password_generate(pw, PW_BUF) < 0)
				return refuse("Cannot generate a password.");
			if (policy_check_password(pw, local, at + 1, &params, &error) == 0)
				return 0;
		}
		return refuse("%s", error);
	}
	int ret = cli->password_stdin ? read_line(STDIN_FILENO, pw, &error) :
	    read_password_tty(address, pw, scratch, &error);
	if (ret < 0)
		return refuse("%s", error);
	if (policy_check_password(pw, local, at + 1, &params, &error) < 0)
		return refuse("%s", error);
	return 0;
}

/* Sets a new password for a user that exists (add: will exist) and stores it. */
static int
set_password(struct cli *cli, const char *address, bool add)
{
	char *pw = sodium_malloc(PW_BUF), *scratch = sodium_malloc(PW_BUF);
	char hash[PASSWORD_HASH_MAX];
	const char *error = NULL;
	int ret = EXIT_REFUSED;
	if (pw == NULL || scratch == NULL) {
		ret = refuse("Out of memory.");
		goto out;
	}
	if ((ret = obtain_password(cli, address, pw, scratch)) != 0)
		goto out;
	struct password_params params = {
		.opslimit = (unsigned long long)cli->cfg->argon2_opslimit,
		.memlimit = (size_t)cli->cfg->argon2_memlimit,
	};
	if (password_hash(pw, &params, hash, &error) < 0 ||
	    (add ? directory_user_add(cli->dir, address, hash, &error) :
	    directory_user_set_password(cli->dir, address, hash, &error)) < 0) {
		ret = refuse("%s", error);
		goto out;
	}
	/* Printed only once stored, straight to the descriptor (no stdio copy). */
	if (cli->generate) {
		size_t len = strlen(pw);
		pw[len] = '\n';
		if (write(STDOUT_FILENO, pw, len + 1) != (ssize_t)(len + 1))
			ret = refuse("Cannot write the generated password: %s.", strerror(errno));
	}
out:
	sodium_memzero(hash, sizeof(hash));
	sodium_free(pw);
	sodium_free(scratch);
	return ret;
}

/* ---------------------------------------------------------------- commands */

static int
print_one(const char *item, void *ctx)
{
	printf("%s\n", item);
	return 0;
}

static int
print_alias(const char *alias, const char *target, void *ctx)
{
	printf("%s %s\n", alias, target);
	return 0;
}

static int
cmd_domain_add(struct cli *cli)
{
	const char *error;
	return directory_domain_add(cli->dir, cli->args[0], &error) < 0 ? refuse("%s", error) : 0;
}

static int
cmd_domain_list(struct cli *cli)
{
	const char *error;
	if (directory_domain_list(cli->dir, print_one, NULL, &error) < 0)
		return refuse("%s", error);
	return finish_output(0);
}

static int
cmd_domain_del(struct cli *cli)
{
	const char *error;
	return directory_domain_del(cli->dir, cli->args[0], cli->force, &error) < 0 ?
	    refuse("%s", error) : 0;
}

/* The normalised address, and refusals that do not need a password typed first. */
static int
user_precheck(struct cli *cli, char *addr, bool must_exist)
{
	const char *error;
	if (directory_address_normalize(cli->args[0], addr, DIRECTORY_ADDRESS_MAX + 1,
	    &error) < 0)
		return refuse("%s", error);
	const char *dom = strrchr(addr, '@') + 1;
	int exists = directory_user_exists(cli->dir, addr, &error);
	if (exists < 0)
		return refuse("%s", error);
	if (must_exist && exists == 0)
		return refuse("No such user: %s.", addr);
	if (!must_exist && exists > 0)
		return refuse("User %s already exists.", addr);
	int local = directory_domain_exists(cli->dir, dom, &error);
	if (local < 0)
		return refuse("%s", error);
	if (local == 0)
		return refuse("Domain %s is not a local domain; add it first (rampart domain add "
		    "%s).", dom, dom);
	return 0;
}

static int
cmd_user_add(struct cli *cli)
{
	char addr[DIRECTORY_ADDRESS_MAX + 1];
	int ret = user_precheck(cli, addr, false);
	return ret != 0 ? ret : set_password(cli, addr, true);
}

static int
cmd_user_passwd(struct cli *cli)
{
	char addr[DIRECTORY_ADDRESS_MAX + 1];
	int ret = user_precheck(cli, addr, true);
	return ret != 0 ? ret : set_password(cli, addr, false);
}

static int
cmd_user_list(struct cli *cli)
{
	const char *error;
	const char *domain = cli->nargs > 0 ? cli->args[0] : NULL;
	if (domain != NULL && directory_domain_exists(cli->dir, domain, &error) == 0)
		return refuse("No such domain: %s.", domain);
	if (directory_user_list(cli->dir, domain, print_one, NULL, &error) < 0)
		return refuse("%s", error);
	return finish_output(0);
}

static int
cmd_user_del(struct cli *cli)
{
	const char *error;
	return directory_user_del(cli->dir, cli->args[0], &error) < 0 ? refuse("%s", error) : 0;
}

static int
cmd_alias_add(struct cli *cli)
{
	const char *error;
	return directory_alias_add(cli->dir, cli->args[0], cli->args[1], recipient_delimiter(cli),
	    &error) < 0 ? refuse("%s", error) : 0;
}

static int
cmd_alias_list(struct cli *cli)
{
	const char *error;
	const char *domain = cli->nargs > 0 ? cli->args[0] : NULL;
	if (domain != NULL && directory_domain_exists(cli->dir, domain, &error) == 0)
		return refuse("No such domain: %s.", domain);
	if (directory_alias_list(cli->dir, domain, print_alias, NULL, &error) < 0)
		return refuse("%s", error);
	return finish_output(0);
}

static int
cmd_alias_del(struct cli *cli)
{
	const char *error;
	return directory_alias_del(cli->dir, cli->args[0], cli->nargs > 1 ? cli->args[1] : NULL,
	    &error) < 0 ? refuse("%s", error) : 0;
}

static int
cmd_lookup(struct cli *cli)
{
	struct directory_rcpt r;
	const char *error;
	if (directory_lookup_rcpt(cli->dir, cli->args[0], recipient_delimiter(cli), &r,
	    &error) < 0)
		return refuse("%s", error);
	int ret = 0;
	switch (r.status) {
	case DIRECTORY_RCPT_OK:
		for (size_t i = 0; i < r.nmailboxes; i++)
			printf("mailbox %s\n", r.mailboxes[i]);
		for (size_t i = 0; i < r.nexternal; i++)
			printf("relay %s\n", r.external[i]);
		break;
	case DIRECTORY_RCPT_NOT_LOCAL_DOMAIN:
		ret = refuse("%s is not in a local domain.", cli->args[0]);
		break;
	case DIRECTORY_RCPT_NO_SUCH_USER:
		ret = refuse("No such user or alias: %s.", cli->args[0]);
		break;
	case DIRECTORY_RCPT_TOO_MANY:
		ret = refuse("%s expands to more than %d recipients.", cli->args[0],
		    DIRECTORY_RCPT_MAX_TARGETS);
		break;
	}
	if (r.loop)
		fprintf(stderr, "Note: an alias loop was cut.\n");
	if (r.too_deep)
		fprintf(stderr, "Note: an alias chain deeper than %d was cut.\n",
		    DIRECTORY_ALIAS_MAX_DEPTH);
	if (r.dangling)
		fprintf(stderr, "Note: an alias points to a local address that does not exist.\n");
	directory_rcpt_free(&r);
	return finish_output(ret);
}

static int
cmd_queue_list(struct cli *cli)
{
	const char *error;
	if (load_config(cli) < 0)
		return EXIT_REFUSED;
	proc_drop_privileges(cli->cfg, "rampart");
	int ret = queue_admin_list(cli->cfg->spool_dir, stdout, &error);
	if (ret < 0)
		ret = refuse("Cannot read the queue: %s.", error);
	config_free(&cli->cfg);
	return ret != 0 ? ret : finish_output(0);
}

static void audit_admin_change(struct cli *cli, const char *action);

/* An ID argument: exactly what `rampart queue list` prints. */
static int
queue_id_check(const char *arg)
{
	if (spool_id_valid(arg))
		return 0;
	return usage_error("'%s' is not a message id (24 hex digits, as 'rampart queue list' "
	    "prints them)", arg);
}

/* Loads the configuration and becomes the service user, as the daemon's files need. */
static int
queue_begin(struct cli *cli)
{
	if (load_config(cli) < 0)
		return EXIT_REFUSED;
	proc_drop_privileges(cli->cfg, "rampart");
	return 0;
}

/* What a queue change says and does, per verb. */
struct queue_change {
	const char *verb;          /* the wire verb (queue-ctl.h) */
	const char *action;        /* in the audit log; offline changes add " (offline)" */
	const char *done;          /* "Held" (then the ID) */
	const char *offline;       /* after an offline change; NULL: none possible */
	int (*offline_run)(const char *spool_dir, const char *id, const char **error_r);
};

static const struct queue_change queue_changes[] = {
	{ "delete", "queue delete", "Deleted", "rampartd is not running: removed from the spool files "
	    "directly.", queue_admin_remove },
	{ "hold", "queue hold", "Held", "rampartd is not running: moved to hold/ in the spool files "
	    "directly; it stays there when rampartd starts.", queue_admin_hold },
	{ "release", "queue release", "Released", "rampartd is not running: moved back to queue/ in the "
	    "spool files directly; it will be delivered when rampartd starts.",
	    queue_admin_release },
};

/* delete, hold, release: the daemon if it runs, else the files (under the spool lock). */
static int
queue_change_run(struct cli *cli, const struct queue_change *qc)
{
	const char *id = cli->args[0], *error;
	char ebuf[QUEUE_CTL_MAX_ANSWER_LINE];
	int ret = queue_id_check(id);
	if (ret != 0 || (ret = queue_begin(cli)) != 0)
		return ret;
	int rc = queue_ctl_request(cli->cfg->spool_dir, qc->verb, id, NULL, ebuf, sizeof(ebuf),
	    &error);
	if (rc == 1) {
		ret = refuse("rampartd did not %s %s: %s.", qc->verb, id, error);
	} else if (rc < 0 && !queue_ctl_no_daemon(errno)) {
		ret = refuse("%s.", error);
	} else if (rc < 0 && qc->offline_run(cli->cfg->spool_dir, id, &error) < 0) {
		ret = refuse("Cannot %s %s: %s.", qc->verb, id, error);
	} else {
		printf("%s %s.\n", qc->done, id);
		if (rc < 0)
			printf("%s\n", qc->offline);
		char action[64];
		snprintf(action, sizeof(action), "%s%s", qc->action, rc < 0 ? " (offline)" : "");
		audit_admin_change(cli, action);
	}
	config_free(&cli->cfg);
	return finish_output(ret);
}

static int
cmd_queue_delete(struct cli *cli)
{
	return queue_change_run(cli, &queue_changes[0]);
}

static int
cmd_queue_hold(struct cli *cli)
{
	return queue_change_run(cli, &queue_changes[1]);
}

static int
cmd_queue_release(struct cli *cli)
{
	return queue_change_run(cli, &queue_changes[2]);
}

/* retry ID|--all: only the daemon schedules; without it there is nothing to do. */
static int
cmd_queue_retry(struct cli *cli)
{
	const char *id = NULL, *error;
	char ebuf[QUEUE_CTL_MAX_ANSWER_LINE];
	bool held;
	int ret;

	if (cli->pass_argc != 2)
		return usage_error("'queue retry' needs a message id or --all");
	char **arg = &cli->pass_argv[1];
	if (strcmp(*arg, "--all") != 0) {
		if (strcmp(*arg, "--") == 0 || ((*arg)[0] == '-' && (*arg)[1] != '\0'))
			return usage_error("'queue retry' does not take the option %s", *arg);
		if ((ret = queue_id_check(*arg)) != 0)
			return ret;
		id = *arg;
	}
	if ((ret = queue_begin(cli)) != 0)
		return ret;
	cli->args = arg;
	cli->nargs = 1;
	int rc = queue_ctl_request(cli->cfg->spool_dir, id != NULL ? "retry" : "retry-all", id,
	    NULL, ebuf, sizeof(ebuf), &error);
	if (rc == 0) {
		if (id != NULL)
			printf("%s will be tried now.\n", id);
		else
			printf("Every queued message will be tried now.\n");
		audit_admin_change(cli, "queue retry");
	} else if (rc == 1) {
		ret = refuse("rampartd did not retry %s: %s.", id != NULL ? id : "the queue", error);
	} else if (!queue_ctl_no_daemon(errno)) {
		ret = refuse("%s.", error);
	} else if (id == NULL) {
		printf("rampartd is not running: nothing to do; every queued message will be tried "
		    "when it starts.\n");
	} else if (queue_admin_locate(cli->cfg->spool_dir, id, &held, &error) < 0) {
		ret = refuse("Cannot retry %s: %s.", id, error);
	} else if (held) {
		ret = refuse("%s is held: release it first (rampart queue release %s).", id, id);
	} else {
		printf("rampartd is not running: nothing to do; %s will be tried when it starts.\n",
		    id);
	}
	config_free(&cli->cfg);
	return finish_output(ret);
}

/* show ID: the files, then what the daemon knows (attempts, next try, errors). */
static int
cmd_queue_show(struct cli *cli)
{
	const char *id = cli->args[0], *error, *file_error = NULL;
	char ebuf[QUEUE_CTL_MAX_ANSWER_LINE], *rt = NULL;
	size_t rtlen = 0;
	int ret = queue_id_check(id);
	if (ret != 0 || (ret = queue_begin(cli)) != 0)
		return ret;
	FILE *f = open_memstream(&rt, &rtlen);
	if (f == NULL) {
		config_free(&cli->cfg);
		return refuse("Out of memory.");
	}
	int rc = queue_ctl_request(cli->cfg->spool_dir, "show", id, f, ebuf, sizeof(ebuf), &error);
	int err = errno;
	fclose(f);
	int frc = queue_admin_show(cli->cfg->spool_dir, id, stdout, &file_error);
	if (frc < 0 && rc != 0) {
		ret = refuse("Cannot show %s: %s.", id, file_error);
	} else {
		if (frc < 0)
			printf("spool file:  %s\n", file_error);
		if (rc == 0) {
			fputs("rampartd:\n", stdout);
			/* Indented like the recipients; the client ended the text with a LF. */
			for (char *line = rt; line != NULL && *line != '\0';) {
				char *nl = strchr(line, '\n');
				size_t len = nl != NULL ? (size_t)(nl - line) : strlen(line);
				printf("    %.*s\n", (int)len, line);
				line = nl != NULL ? nl + 1 : NULL;
			}
		}
		else if (rc == 1)
			printf("rampartd:   %s\n", error);
		else if (queue_ctl_no_daemon(err))
			printf("rampartd:   not running\n");
		else
			printf("rampartd:   %s\n", error);
	}
	free(rt);
	config_free(&cli->cfg);
	return finish_output(ret);
}

static int
cmd_config_doc(struct cli *cli)
{
	config_print_doc(stdout);
	return finish_output(0);
}

static int
cmd_help(struct cli *cli)
{
	fputs(usage_text, stdout);
	return finish_output(0);
}

static int
cmd_version(struct cli *cli)
{
	printf("rampart %s\n", RAMPART_VERSION);
	return finish_output(0);
}

static int
cmd_log(struct cli *cli)
{
	if (load_config(cli) < 0)
		return EXIT_REFUSED;
	proc_drop_privileges(cli->cfg, "rampart");
	int ret = rampart_log_main(cli->cfg, cli->pass_argc, cli->pass_argv);
	config_free(&cli->cfg);
	return ret;
}

static const struct command commands[] = {
	{ "domain add", cmd_domain_add, 1, 1, 0, true, true },
	{ "domain list", cmd_domain_list, 0, 0, 0, true, false },
	{ "domain del", cmd_domain_del, 1, 1, OPT_FORCE, true, true },
	{ "domain set", cli_domain_set, 2, 8, 0, true, true },
	{ "domain show", cli_domain_show, 1, 1, 0, true, false },
	{ "user add", cmd_user_add, 1, 1, OPT_PASSWORD, true, true },
	{ "user list", cmd_user_list, 0, 1, 0, true, false },
	{ "user del", cmd_user_del, 1, 1, 0, true, true },
	{ "user passwd", cmd_user_passwd, 1, 1, OPT_PASSWORD, true, true },
	{ "user set", cli_user_set, 2, 8, 0, true, true },
	{ "user show", cli_user_show, 1, 1, 0, true, false },
	{ "alias add", cmd_alias_add, 2, 2, 0, true, true },
	{ "alias list", cmd_alias_list, 0, 1, 0, true, false },
	{ "alias del", cmd_alias_del, 1, 2, 0, true, true },
	{ "sendas add", cli_sendas_add, 2, 2, 0, true, true },
	{ "sendas del", cli_sendas_del, 2, 2, 0, true, true },
	{ "sendas list", cli_sendas_list, 0, 1, 0, true, false },
	{ "guard list", cli_guard_list, 0, 0, 0, true, false },
	{ "guard unblock", cli_guard_unblock, 1, 1, 0, true, true },
	{ "log", cmd_log, 0, 0, OPT_PASSTHROUGH, false, false },
	{ "lookup", cmd_lookup, 1, 1, 0, true, false },
	{ "queue list", cmd_queue_list, 0, 0, 0, false, false },
	/* Queue changes write their audit line themselves (no directory is opened). */
	{ "queue show", cmd_queue_show, 1, 1, 0, false, false },
	{ "queue retry", cmd_queue_retry, 0, 0, OPT_PASSTHROUGH, false, false },
	{ "queue delete", cmd_queue_delete, 1, 1, 0, false, false },
	{ "queue hold", cmd_queue_hold, 1, 1, 0, false, false },
	{ "queue release", cmd_queue_release, 1, 1, 0, false, false },
	{ "dns query", cli_dns_query, 0, 0, OPT_PASSTHROUGH, false, false },
	{ "spf check", cli_spf_check, 0, 0, OPT_PASSTHROUGH, false, false },
	{ "dkim verify", cli_dkim_verify, 0, 0, OPT_PASSTHROUGH, false, false },
	{ "dkim sign", cli_dkim_sign, 0, 0, OPT_PASSTHROUGH, false, false },
	{ "dkim keygen", cli_dkim_keygen, 0, 0, OPT_PASSTHROUGH, false, false },
	{ "dkim rotate", cli_dkim_rotate, 0, 0, OPT_PASSTHROUGH, false, false },
	{ "dkim list", cli_dkim_list, 0, 0, OPT_PASSTHROUGH, false, false },
	{ "mailauth check", cli_mailauth_check, 0, 0, OPT_PASSTHROUGH, false, false },
	{ "config-doc", cmd_config_doc, 0, 0, 0, false, false },
	{ "help", cmd_help, 0, 0, 0, false, false },
	{ "version", cmd_version, 0, 0, 0, false, false },
};

/* ---------------------------------------------------------------- audit */

/* Who ran this: the sudo user when there is one, else the login name, else the uid. */
static void
actor_name(char *buf, size_t size)
{
	const char *sudo = getenv("SUDO_USER");
	struct passwd *pw = getpwuid(getuid());
	if (sudo != NULL && sudo[0] != '\0')
		snprintf(buf, size, "%s (sudo)", sudo);
	else if (pw != NULL)
		snprintf(buf, size, "%s", pw->pw_name);
	else
		snprintf(buf, size, "uid %ld", (long)getuid());
}

/* Every change made here is an "admin" event in the daemon's audit log. */
static void
audit_admin_change(struct cli *cli, const char *action)
{
	const char *error;
	char actor[128], target[512];
	actor_name(actor, sizeof(actor));
	snprintf(target, sizeof(target), "%s", cli->nargs > 0 ? cli->args[0] : "");
	for (int i = 1; i < cli->nargs && strlen(target) + 2 < sizeof(target); i++)
		snprintf(target + strlen(target), sizeof(target) - strlen(target), " %s",
		    cli->args[i]);
	struct audit_log *a = audit_open(cli->cfg->audit_log, &error);
	struct audit_event ev = { .event = "admin", .result = "ok", .action = action,
	    .target = target, .actor = actor };
	if (a == NULL || audit_write(a, &ev, &error) < 0)
		fprintf(stderr, "Warning: the change was made but not written to the audit log "
		    "(%s).\n", error);
	audit_close(&a);
}

/* ---------------------------------------------------------------- main */

/* Finds the command named by argv[0] (and argv[1] for two-word commands). */
static const struct command *
command_find(int argc, char **argv, int *words_r)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		const char *name = commands[i].name, *sp = strchr(name, ' ');
		if (sp == NULL && strcmp(argv[0], name) == 0) {
			*words_r = 1;
			return &commands[i];
		}
		size_t glen = sp != NULL ? (size_t)(sp - name) : 0;
		if (sp != NULL && argc >= 2 && strlen(argv[0]) == glen &&
		    strncmp(argv[0], name, glen) == 0 && strcmp(argv[1], sp + 1) == 0) {
			*words_r = 2;
			return &commands[i];
		}
	}
	return NULL;
}

/* "user" alone or "user frob": name the verbs the group has. */
static int
unknown_command(int argc, char **argv)
{
	char verbs[128] = "";
	size_t glen = strlen(argv[0]);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		const char *name = commands[i].name;
		if (strncmp(name, argv[0], glen) == 0 && name[glen] == ' ')
			snprintf(verbs + strlen(verbs), sizeof(verbs) - strlen(verbs), "%s%s",
			    verbs[0] != '\0' ? ", " : "", name + glen + 1);
	}
	if (verbs[0] == '\0')
		return usage_error("unknown command '%s'", argv[0]);
	if (argc < 2)
		return usage_error("'%s' needs one of: %s", argv[0], verbs);
	return usage_error("'%s' has no '%s'; it has: %s", argv[0], argv[1], verbs);
}

/* Splits the command's arguments into options and positional arguments (in place). */
static int
parse_args(struct cli *cli, const struct command *cmd, int argc, char **argv)
{
	bool only_args = false;
	cli->args = argv;
	cli->nargs = 0;
	if (cmd->opts & OPT_PASSTHROUGH) {
		/* rampart_log_main() expects argv[0] to be the command's name. */
		cli->pass_argc = argc + 1;
		cli->pass_argv = argv - 1;
		return 0;
	}
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (only_args || a[0] != '-' || a[1] == '\0') {
			argv[cli->nargs++] = argv[i];
		} else if (strcmp(a, "--") == 0) {
			only_args = true;
		} else if (strcmp(a, "--force") == 0 && (cmd->opts & OPT_FORCE) != 0) {
			cli->force = true;
		} else if (strcmp(a, "--password-stdin") == 0 && (cmd->opts & OPT_PASSWORD) != 0) {
			cli->password_stdin = true;
		} else if (strcmp(a, "--generate-password") == 0 &&
		    (cmd->opts & OPT_PASSWORD) != 0) {
			cli->generate = true;
		} else if ((cmd->opts & OPT_PASSWORD) != 0 && strncmp(a, "--password", 10) == 0) {
			return usage_error("a password is never taken from the command line; use "
			    "--password-stdin, --generate-password or the terminal prompt");
		} else {
			return usage_error("'%s' does not take the option %s", cmd->name, a);
		}
	}
	if (cli->password_stdin && cli->generate)
		return usage_error("--password-stdin and --generate-password exclude each other");
	if (cli->nargs < cmd->min_args)
		return usage_error("'%s' needs %s argument%s", cmd->name,
		    cmd->min_args == 1 ? "an" : "two", cmd->min_args == 1 ? "" : "s");
	if (cli->nargs > cmd->max_args)
		return usage_error("too many arguments for '%s'", cmd->name);
	return 0;
}

int
main(int argc, char **argv)
{
	struct cli cli = { .config_path = getenv("RAMPART_CONFIG") };
	if (cli.config_path == NULL || cli.config_path[0] == '\0')
		cli.config_path = DEFAULT_CONFIG;
	log_init("rampart", true, LOG_LEVEL_WARN);

	int argi = 1;
	while (argi < argc && argv[argi][0] == '-') {
		if (strcmp(argv[argi], "-c") == 0 && argi + 1 < argc) {
			cli.config_path = argv[argi + 1];
			argi += 2;
		} else if (strncmp(argv[argi], "-c", 2) == 0 && argv[argi][2] != '\0') {
			cli.config_path = argv[argi] + 2;
			argi++;
		} else if (strcmp(argv[argi], "-h") == 0 || strcmp(argv[argi], "--help") == 0) {
			return cmd_help(&cli);
		} else if (strcmp(argv[argi], "-V") == 0 || strcmp(argv[argi], "--version") == 0) {
			return cmd_version(&cli);
		} else {
			return usage_error("unknown option %s", argv[argi]);
		}
	}
	if (argi == argc) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	int words = 0;
	const struct command *cmd = command_find(argc - argi, argv + argi, &words);
	if (cmd == NULL)
		return unknown_command(argc - argi, argv + argi);
	int ret = parse_args(&cli, cmd, argc - argi - words, argv + argi + words);
	if (ret != 0 || !cmd->needs_directory)
		return ret != 0 ? ret : cmd->run(&cli);

	/* Nothing typed here may end up in a core file or be read by ptrace. */
	prctl(PR_SET_DUMPABLE, 0);
	if (sodium_init() < 0)
		return refuse("libsodium could not be initialised.");
	if (load_config(&cli) < 0)
		return EXIT_REFUSED;
	proc_drop_privileges(cli.cfg, "rampart");
	if (open_directory(&cli) < 0) {
		config_free(&cli.cfg);
		return EXIT_REFUSED;
	}
	ret = cmd->run(&cli);
	if (ret == 0 && cmd->audited)
		audit_admin_change(&cli, cmd->name);
	directory_close(&cli.dir);
	config_free(&cli.cfg);
	policy_cleanup();
	return ret;
}
