/*
 * ascii — character classes of the protocol grammars (RFC 5234 ALPHA, DIGIT,
 * WSP), independent of the locale that <ctype.h> follows, and ASCII lowercasing.
 */
#ifndef RAMPART_ASCII_H
#define RAMPART_ASCII_H

#include <stdbool.h>

static inline bool
ascii_is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline bool
ascii_is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static inline bool
ascii_is_alnum(unsigned char c)
{
	return ascii_is_alpha(c) || ascii_is_digit(c);
}

static inline bool
ascii_is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static inline unsigned char
ascii_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

#endif
