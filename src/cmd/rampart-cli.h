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
	int log_argc;          /* `rampart log` parses its own options */
	char **log_argv;
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

#endif
