/*
 * dns-name — domain names in wire form (RFC 1035 §3.1) and their presentation
 * form (RFC 1035 §5.1), compared case-insensitively (RFC 4343). See
 * dns-private.h.
 */
#include "dns/dns-private.h"

#include "lib/error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static unsigned char
ascii_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

int
dns_name_parse(const char *text, size_t len, const struct dns_name *origin,
    struct dns_name *out, const char **error_r)
{
	unsigned char label[DNS_LABEL_MAX + 1];
	size_t llen = 0, pos = 0, i = 0;
	int absolute = 0;

	out->len = 0;
	if (len == 0 || (len == 1 && text[0] == '.')) {
		out->wire[0] = 0;
		out->len = 1;
		return 0;
	}
	while (i < len) {
		unsigned char c = (unsigned char)text[i++];

		if (c == '.') {
			if (llen == 0)
				return error_fail(error_r, EINVAL, "the name has an empty label");
			/* RFC 1035 §2.3.4: 255 octets including the root's zero. */
			if (pos + 1 + llen + 1 > DNS_NAME_WIRE_MAX)
				return error_fail(error_r, EINVAL, "the name is longer than 255 octets");
			out->wire[pos++] = (unsigned char)llen;
			memcpy(out->wire + pos, label, llen);
			pos += llen;
			llen = 0;
			if (i == len)
				absolute = 1;
			continue;
		}
		if (c == '\\') {
			if (i == len)
				return error_fail(error_r, EINVAL, "the name ends with a lone backslash");
			if (is_digit(text[i])) {
				unsigned v;

				if (i + 3 > len || !is_digit(text[i + 1]) || !is_digit(text[i + 2]))
					return error_fail(error_r, EINVAL,
					    "the name has a \\DDD escape without three digits");
				v = (unsigned)(text[i] - '0') * 100 + (unsigned)(text[i + 1] - '0') * 10 +
				    (unsigned)(text[i + 2] - '0');
				if (v > 255)
					return error_fail(error_r, EINVAL,
					    "the name has a \\DDD escape above 255");
				c = (unsigned char)v;
				i += 3;
			} else {
				c = (unsigned char)text[i++];
			}
		}
		if (llen == DNS_LABEL_MAX)
			return error_fail(error_r, EINVAL, "the name has a label longer than 63 octets");
		label[llen++] = c;
	}
	if (llen > 0) {
		if (pos + 1 + llen + 1 > DNS_NAME_WIRE_MAX)
			return error_fail(error_r, EINVAL, "the name is longer than 255 octets");
		out->wire[pos++] = (unsigned char)llen;
		memcpy(out->wire + pos, label, llen);
		pos += llen;
	}
	if (!absolute && origin != NULL && origin->len > 1) {
		if (pos + origin->len > DNS_NAME_WIRE_MAX)
			return error_fail(error_r, EINVAL, "the name is longer than 255 octets");
		memcpy(out->wire + pos, origin->wire, origin->len);
		out->len = pos + origin->len;
		return 0;
	}
	out->wire[pos++] = 0;
	out->len = pos;
	return 0;
}

void
dns_name_format(const struct dns_name *n, char *buf, size_t size)
{
	size_t pos = 0, out = 0;

	if (size == 0)
		return;
	while (pos < n->len && n->wire[pos] != 0) {
		size_t llen = n->wire[pos++];

		if (out > 0 && out + 1 < size)
			buf[out++] = '.';
		for (size_t k = 0; k < llen && pos < n->len; k++) {
			unsigned char c = n->wire[pos++];
			char tmp[5];
			size_t tl;

			if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit((char)c) ||
			    c == '-' || c == '_' || c == '*' || c == '/' || c == '+' || c == '=') {
				tmp[0] = (char)c;
				tl = 1;
			} else if (c > 0x20 && c < 0x7f) {
				tmp[0] = '\\';
				tmp[1] = (char)c;
				tl = 2;
			} else {
				snprintf(tmp, sizeof(tmp), "\\%03u", (unsigned)c);
				tl = 4;
			}
			if (out + tl >= size)
				break;
			memcpy(buf + out, tmp, tl);
			out += tl;
		}
	}
	buf[out] = '\0';
}

int
dns_name_cmp(const struct dns_name *a, const struct dns_name *b)
{
	size_t n = a->len < b->len ? a->len : b->len;

	for (size_t i = 0; i < n; i++) {
		unsigned char x = ascii_lower(a->wire[i]), y = ascii_lower(b->wire[i]);

		if (x != y)
			return x < y ? -1 : 1;
	}
	return a->len < b->len ? -1 : a->len > b->len ? 1 : 0;
}

unsigned
dns_name_labels(const struct dns_name *n)
{
	unsigned count = 0;

	for (size_t pos = 0; pos < n->len && n->wire[pos] != 0; pos += 1 + n->wire[pos])
		count++;
	return count;
}

void
dns_name_suffix(const struct dns_name *n, unsigned skip, struct dns_name *out)
{
	size_t pos = 0;

	while (skip-- > 0 && pos < n->len && n->wire[pos] != 0)
		pos += 1 + n->wire[pos];
	if (pos >= n->len) {
		out->wire[0] = 0;
		out->len = 1;
		return;
	}
	out->len = n->len - pos;
	memmove(out->wire, n->wire + pos, out->len);
}

void
dns_name_lower(struct dns_name *n)
{
	/* Length octets are below 64, so lower-casing them is harmless. */
	for (size_t i = 0; i < n->len; i++)
		n->wire[i] = ascii_lower(n->wire[i]);
}

bool
dns_name_text_valid(const char *name)
{
	size_t len = strlen(name), label = 0;

	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || name[i] == '.') {
			if (label == 0 || label > 63)
				return false;
			label = 0;
		} else {
			label++;
		}
	}
	return true;
}
