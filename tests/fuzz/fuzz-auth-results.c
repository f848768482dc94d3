/*
 * libFuzzer target: Authentication-Results. The input is an A-R field body for
 * auth_results_is_ours; then, split at NUL octets into pieces, it is an
 * authserv-id, and resinfos (method, result, reason — an empty piece meaning
 * none — and up to six ptype.property/value pairs, a piece of "\x01" ending the
 * resinfo), which are added and formatted.
 *
 * Invariants of the field written: it starts "Authentication-Results: ", ends
 * in CRLF, every CR is followed by LF and every LF preceded by CR, every
 * continuation line starts with WSP and is not blank, no other control octet
 * than HTAB appears, no line passes 998 octets, and the field's own body is
 * recognised as ours when the id was plain printable ASCII of up to 400 octets.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailauth/auth-results.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PIECES_MAX 64
#define PROPS_MAX 6

static void check_field(const char *f)
{
	size_t len = strlen(f), line = 0;
	static const char prefix[] = "Authentication-Results: ";

	if (len < sizeof(prefix) + 1 || memcmp(f, prefix, sizeof(prefix) - 1) != 0 ||
	    memcmp(f + len - 2, "\r\n", 2) != 0)
		__builtin_trap();
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)f[i];
		if (c == '\r') {
			if (f[i + 1] != '\n')
				__builtin_trap();
		} else if (c == '\n') {
			if (i == 0 || f[i - 1] != '\r')
				__builtin_trap();
			if (i + 1 < len) {
				size_t k = i + 1;
				if (f[k] != ' ' && f[k] != '\t')
					__builtin_trap();
				while (f[k] == ' ' || f[k] == '\t')
					k++;
				if (f[k] == '\r')
					__builtin_trap();
			}
			line = 0;
		} else {
			if ((c < 0x20 && c != '\t') || c == 0x7f)
				__builtin_trap();
			if (++line > 998)
				__builtin_trap();
		}
	}
}

static bool plain_id(const char *id)
{
	size_t len = strlen(id);

	if (len == 0 || len > 400)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (id[i] < 0x20 || id[i] > 0x7e)
			return false;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *pieces[PIECES_MAX];
	size_t npieces = 0;
	char *copy = malloc(size > 0 ? size : 1);

	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	(void)auth_results_is_ours(copy, size, "mx.example.org");
	free(copy);

	copy = malloc(size + 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	for (size_t start = 0; npieces < PIECES_MAX && start <= size;) {
		pieces[npieces++] = copy + start;
		start += strlen(copy + start) + 1;
	}
	(void)auth_results_is_ours(pieces[0], strlen(pieces[0]), pieces[0]);

	struct auth_results *ar = auth_results_new(pieces[0]);
	if (ar == NULL) {
		free(copy);
		return 0;
	}
	for (size_t i = 1; i + 2 < npieces;) {
		const char *method = pieces[i], *result = pieces[i + 1];
		const char *reason = pieces[i + 2][0] != '\0' ? pieces[i + 2] : NULL;
		const char *p[2 * PROPS_MAX + 1];
		size_t n = 0;
		i += 3;
		while (n < 2 * PROPS_MAX && i + 1 < npieces && strcmp(pieces[i], "\x01") != 0) {
			p[n++] = pieces[i++];
			p[n++] = pieces[i++];
		}
		if (i < npieces && strcmp(pieces[i], "\x01") == 0)
			i++;
		for (size_t k = n; k < 2 * PROPS_MAX + 1; k++)
			p[k] = NULL;
		auth_results_add(ar, method, result, reason, p[0], p[1], p[2], p[3], p[4], p[5],
		    p[6], p[7], p[8], p[9], p[10], p[11], (const char *)NULL);
	}
	char *f = auth_results_format(ar);
	if (f != NULL) {
		check_field(f);
		const char *body = f + strlen("Authentication-Results:");
		if (plain_id(pieces[0]) && !auth_results_is_ours(body, strlen(body), pieces[0]))
			__builtin_trap();
		free(f);
	}
	auth_results_free(&ar);
	free(copy);
	return 0;
}
