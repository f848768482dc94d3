/*
 * policy — is a new password acceptable?
 *
 * The rules (NIST SP 800-63B §5.1.1.2: length, a blocklist, no context words;
 * no composition rules): at least min_length characters (Unicode code points,
 * so a passphrase in any script counts fairly), no control characters, not
 * containing the account's local part (or a component of it such as "john" in
 * "john.smith") or a domain label (other than the top-level one) of 3 or more
 * characters, not on the common-passwords list (case-insensitive), and a
 * zxcvbn strength estimate of at least min_entropy bits, with the account's
 * names given to zxcvbn as its user dictionary.
 *
 * The list is loaded once per process from params->common_list_path into a
 * sorted array (one lowercase password per line; blank and '#' lines skipped)
 * and kept until policy_cleanup(); a different path replaces it. Safe to call
 * from several threads.
 */
#ifndef RAMPART_POLICY_H
#define RAMPART_POLICY_H

#define POLICY_DEFAULT_MIN_LENGTH 12
#define POLICY_DEFAULT_MIN_ENTROPY 40.0

struct policy_params {
	unsigned min_length;            /* code points (config password_min_length) */
	double min_entropy;             /* zxcvbn bits (config password_min_entropy) */
	const char *common_list_path;   /* NULL: skip the list rule */
};

/* Defaults: 12 characters, 40 bits, no list. */
void policy_params_init(struct policy_params *params);

/*
 * 0 when password is acceptable for local_part@domain (either may be NULL).
 * -1 when it is refused, or when the check cannot be made (the list cannot be
 * read: refusing is the safe answer); *reason_r is then one sentence for the
 * user that never repeats the password, valid until the next call in the same
 * thread. params NULL means the defaults.
 */
int policy_check_password(const char *password, const char *local_part, const char *domain,
    const struct policy_params *params, const char **reason_r);

/* Loads the list now (to fail at start-up rather than at the first check); the
 * error sentence has the same lifetime as a refusal's. */
int policy_load_common_list(const char *path, const char **error_r);
/* Frees the loaded list. */
void policy_cleanup(void);

#endif
