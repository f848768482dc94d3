/*
 * rampart-cli — what the command files of the admin CLI share: the one
 * context struct, the exit statuses and the reply helpers (rampart.c), and
 * the commands defined outside rampart.c (rampart-access.c).
 */
#ifndef RAMPART_CMD_CLI_H
#define RAMPART_CMD_CLI_H

#include <limits.h>
#include <stdbool.h>

#define EXIT_REFUSED 1
#define EXIT_USAGE 2

struct config;
struct directory;

/* The one context of this process. */
struct cli {
	const char *config_path;
	struct config *cfg;
	struct directory *dir;
	char common_list[PATH_MAX];
	bool force, password_stdin, generate;
	char **args;           /* positional arguments after COMMAND [VERB] */
	int nargs;
	int pass_argc;         /* commands that parse their own options (log, spf, dkim...) */
	char **pass_argv;      /* pass_argv[0] is the command's last word */
};

/* One sentence on stderr; returns EXIT_REFUSED. */
int refuse(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "rampart: ...; see 'rampart help'." on stderr; returns EXIT_USAGE. */
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Flushes stdout; a failed write (a full disk, a closed pipe) is a failure. */
int finish_output(int ret);
int load_config(struct cli *cli);

/* rampart-access.c: who may log in, from where, and send as whom */
int cli_user_set(struct cli *cli);
int cli_user_show(struct cli *cli);
int cli_domain_set(struct cli *cli);
int cli_domain_show(struct cli *cli);
int cli_sendas_add(struct cli *cli);
int cli_sendas_del(struct cli *cli);
int cli_sendas_list(struct cli *cli);
int cli_guard_list(struct cli *cli);
int cli_guard_unblock(struct cli *cli);

/* Mail authentication (issue 4); each parses its own options from pass_argc/argv
 * and loads the configuration itself when it needs it (cli->config_path). */
int cli_dns_query(struct cli *cli);        /* rampart-dns.c: rampart dns query NAME TYPE */
int cli_spf_check(struct cli *cli);        /* rampart-spf.c */
int cli_dkim_verify(struct cli *cli);      /* rampart-dkim.c */
int cli_dkim_sign(struct cli *cli);
int cli_dkim_keygen(struct cli *cli);
int cli_dkim_rotate(struct cli *cli);
int cli_dkim_list(struct cli *cli);
int cli_mailauth_check(struct cli *cli);   /* rampart-mailauth.c */

#endif
