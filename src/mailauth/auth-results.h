/*
 * auth-results — the Authentication-Results header field (RFC 8601): writing
 * ours, and recognising others that claim our authserv-id so they can be
 * removed before ours is added (§5).
 */
#ifndef RAMPART_MAILAUTH_AUTH_RESULTS_H
#define RAMPART_MAILAUTH_AUTH_RESULTS_H

#include <stdbool.h>
#include <stddef.h>

struct auth_results;

struct auth_results *auth_results_new(const char *authserv_id);
/*
 * Adds one resinfo (§2.2): method "spf", result "pass", an optional reason
 * (written as reason="..." , §2.2; NULL = none), then ptype.property=value
 * pairs given as alternating strings, NULL-terminated:
 *     auth_results_add(ar, "dkim", "pass", NULL,
 *         "header.d", "example.org", "header.s", "sel", "header.b", "abcdefgh", NULL);
 * Values that are not RFC 2045 tokens are written as quoted strings; anything
 * that cannot be written safely (CR, LF, NUL, non-UTF-8) is replaced.
 */
void auth_results_add(struct auth_results *ar, const char *method, const char *result,
    const char *reason, ...) __attribute__((sentinel));
/* "Authentication-Results: id;\r\n\tspf=pass ...;\r\n\tdkim=none\r\n" (malloc'd),
 * each line under 78 octets where it can be, "none" when nothing was added (§2.2). */
char *auth_results_format(const struct auth_results *ar);
void auth_results_free(struct auth_results **ar);

/* Whether an Authentication-Results field body (after the colon, possibly folded)
 * names authserv_id as its authserv-id (§2.5: compared without case, CFWS and
 * the optional version skipped). Unparseable bodies are not ours. */
bool auth_results_is_ours(const char *value, size_t len, const char *authserv_id);

#endif
