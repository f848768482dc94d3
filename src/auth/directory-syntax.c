/* directory-syntax — the address and domain rules of directory.h. */
#include "auth/directory.h"
#include "auth/directory-private.h"

#include <stdbool.h>
#include <string.h>

#define LABEL_MAX 63          /* RFC 1035 §2.3.4 */

/* A sentence about bad syntax: always a static string. */
static int
syntax_fail(const char **error_r, const char *msg)
{
	if (error_r != NULL)
		*error_r = msg;
	return -1;
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629 §4), 0 if malformed.
 * C1 controls (U+0080..U+009F) count as malformed: no control characters. */
size_t
directory_utf8_seq(const unsigned char *s)
{
	unsigned c = s[0];
	if (c < 0xc2 || c > 0xf4)
		return 0;
	size_t n = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) ||
	    (c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))
		return 0;
	if (c == 0xc2 && s[1] < 0xa0)
		return 0;
	return n;
}

char
directory_ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

int
directory_domain_normalize(const char *name, char *buf, size_t bufsize, const char **error_r)
{
	size_t len = strlen(name);
	if (len == 0)
		return syntax_fail(error_r, "The domain name is empty.");
	if (len > DIRECTORY_DOMAIN_MAX || len + 1 > bufsize)
		return syntax_fail(error_r, "The domain name is longer than 253 characters.");
	size_t label = 0;
	bool all_digits = true;
	for (size_t i = 0; i <= len; i++) {
		char c = directory_ascii_lower(name[i]);
		buf[i] = c;
		if (c == '.' || c == '\0') {
			if (label == 0)
				return syntax_fail(error_r, "The domain name has an empty label "
				    "(a leading, trailing or doubled dot).");
			if (buf[i - 1] == '-')
				return syntax_fail(error_r, "A domain label cannot end with '-'.");
			if (c == '.')
				all_digits = true;
			label = 0;
			continue;
		}
		if ((unsigned char)c >= 0x80)
			return syntax_fail(error_r, "Domain names must be ASCII; write an "
			    "internationalised name in its xn-- form.");
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return syntax_fail(error_r, "A domain name may contain only letters, "
			    "digits, '-' and dots.");
		if (c == '-' && label == 0)
			return syntax_fail(error_r, "A domain label cannot start with '-'.");
		if (!(c >= '0' && c <= '9'))
			all_digits = false;
		if (++label > LABEL_MAX)
			return syntax_fail(error_r, "A domain label is longer than 63 characters.");
	}
	if (all_digits)
		return syntax_fail(error_r, "The domain name looks like an IP address; "
		    "a domain name is required.");
	return 0;
}

/* A local part that is also a mailbox directory name (already lowercased). */
int
directory_check_mailbox_local(const char *lp, size_t len, const char **error_r)
{
	if (len == 0)
		return syntax_fail(error_r, "The local part (before '@') is empty.");
	if (len > DIRECTORY_LOCAL_PART_MAX)
		return syntax_fail(error_r, "The local part is longer than 64 octets.");
	if (lp[0] == '.' || lp[len - 1] == '.')
		return syntax_fail(error_r, "The local part cannot start or end with a dot.");
	for (size_t i = 0; i < len; ) {
		const unsigned char *p = (const unsigned char *)lp + i;
		if (*p >= 0x80) {
			/* the NUL at len stops any sequence running past the local part */
			size_t n = directory_utf8_seq(p);
			if (n == 0 || i + n > len)
				return syntax_fail(error_r, "The local part is not valid UTF-8.");
			i += n;
			continue;
		}
		if (*p == '.' && p[1] == '.')
			return syntax_fail(error_r, "The local part cannot contain \"..\".");
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '.' || *p == '_' || *p == '+' || *p == '-'))
			return syntax_fail(error_r, "The local part may contain only letters, "
			    "digits, '.', '_', '+', '-' and non-ASCII UTF-8.");
		i++;
	}
	return 0;
}

/* An alias target's local part: a dot-atom (RFC 5322 §3.2.3) or UTF-8 (RFC 6531). */
int
directory_check_target_local(const char *lp, size_t len, const char **error_r)
{
	if (len == 0 || len > DIRECTORY_LOCAL_PART_MAX)
		return syntax_fail(error_r, "The target's local part must be 1 to 64 octets.");
	if (lp[0] == '.' || lp[len - 1] == '.' || memmem(lp, len, "..", 2) != NULL)
		return syntax_fail(error_r, "The target's local part has a misplaced dot.");
	for (size_t i = 0; i < len; ) {
		const unsigned char *p = (const unsigned char *)lp + i;
		if (*p >= 0x80) {
			size_t n = directory_utf8_seq(p);
			if (n == 0 || i + n > len)
				return syntax_fail(error_r, "The target is not valid UTF-8.");
			i += n;
			continue;
		}
		if (*p <= 0x20 || *p == 0x7f || strchr("\"(),:;<>@[\\]", *p) != NULL)
			return syntax_fail(error_r, "The target's local part contains a character "
			    "that needs quoting; quoted local parts are not supported.");
		i++;
	}
	return 0;
}

/* Splits a normalised address in buf; returns the position of the '@'. */
int
directory_split_address(const char *address, char *buf, size_t bufsize, size_t *at_r,
    const char **error_r)
{
	size_t len = strlen(address);
	if (len > DIRECTORY_ADDRESS_MAX || len + 1 > bufsize)
		return syntax_fail(error_r, "The address is longer than 254 characters.");
	const char *at = strrchr(address, '@');
	if (at == NULL)
		return syntax_fail(error_r, "The address has no '@'; write it as local@domain.");
	*at_r = (size_t)(at - address);
	memcpy(buf, address, *at_r);
	buf[*at_r] = '@';
	return directory_domain_normalize(at + 1, buf + *at_r + 1, bufsize - *at_r - 1, error_r);
}

int
directory_address_normalize(const char *address, char *buf, size_t bufsize,
    const char **error_r)
{
	size_t at;
	if (directory_split_address(address, buf, bufsize, &at, error_r) < 0)
		return -1;
	for (size_t i = 0; i < at; i++)
		buf[i] = directory_ascii_lower(buf[i]);
	return directory_check_mailbox_local(buf, at, error_r);
}

