/* policy — see policy.h. */
#include "auth/policy.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <zxcvbn.h>

#include "auth/password.h"

/* Context words shorter than this are too common to forbid ("al", "io"). */
#define CONTEXT_WORD_MIN 3
/* Words given to zxcvbn and checked as substrings: local part, its parts, labels. */
#define CONTEXT_WORDS_MAX 32

/* The common-passwords list: immutable once loaded, shared by all threads. */
static struct {
	pthread_mutex_t lock;
	char *path;
	char **words;     /* sorted, unique, lowercase */
	size_t nwords;
} common = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Where a reason with a number in it is written; per thread, see policy.h. */
static _Thread_local char reason_buf[256];

static int __attribute__((format(printf, 2, 3)))
refuse(const char **reason_r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason_buf, sizeof(reason_buf), fmt, ap);
	va_end(ap);
	if (reason_r != NULL)
		*reason_r = reason_buf;
	return -1;
}

void
policy_params_init(struct policy_params *params)
{
	params->min_length = POLICY_DEFAULT_MIN_LENGTH;
	params->min_entropy = POLICY_DEFAULT_MIN_ENTROPY;
	params->common_list_path = NULL;
}

static void
ascii_lower(char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] >= 'A' && s[i] <= 'Z')
			s[i] = (char)(s[i] - 'A' + 'a');
}

/* ---------------------------------------------------------------- the list */

static int
word_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
common_free_locked(void)
{
	for (size_t i = 0; i < common.nwords; i++)
		free(common.words[i]);
	free(common.words);
	free(common.path);
	common.words = NULL;
	common.nwords = 0;
	common.path = NULL;
}

static int
common_load_locked(const char *path, const char **error_r)
{
	if (common.path != NULL && strcmp(common.path, path) == 0)
		return 0;
	common_free_locked();
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return refuse(error_r, "The list of common passwords (%s) cannot be read: %s.",
		    path, strerror(errno));
	char **words = NULL, *line = NULL;
	size_t n = 0, cap = 0, linecap = 0;
	ssize_t len;
	int ret = 0;
	while ((len = getline(&line, &linecap, f)) >= 0) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' ||
		    line[len - 1] == ' ' || line[len - 1] == '\t'))
			line[--len] = '\0';
		if (len == 0 || line[0] == '#')
			continue;
		ascii_lower(line, (size_t)len);
		if (n == cap) {
			cap = cap == 0 ? 4096 : cap * 2;
			char **w = reallocarray(words, cap, sizeof(*w));
			if (w == NULL) {
				ret = -1;
				break;
			}
			words = w;
		}
		if ((words[n] = strdup(line)) == NULL) {
			ret = -1;
			break;
		}
		n++;
	}
	if (ret == 0 && ferror(f))
		ret = refuse(error_r, "The list of common passwords (%s) cannot be read: %s.",
		    path, strerror(errno));
	else if (ret < 0)
		refuse(error_r, "Out of memory while loading the list of common passwords.");
	free(line);
	fclose(f);
	if (ret == 0 && (common.path = strdup(path)) == NULL)
		ret = refuse(error_r, "Out of memory while loading the list of common passwords.");
	if (ret < 0) {
		for (size_t i = 0; i < n; i++)
			free(words[i]);
		free(words);
		return -1;
	}
	if (n > 0)
		qsort(words, n, sizeof(*words), word_cmp);
	/* drop duplicates */
	size_t u = 0;
	for (size_t i = 0; i < n; i++) {
		if (u > 0 && strcmp(words[u - 1], words[i]) == 0)
			free(words[i]);
		else
			words[u++] = words[i];
	}
	common.words = words;
	common.nwords = u;
	return 0;
}

int
policy_load_common_list(const char *path, const char **error_r)
{
	pthread_mutex_lock(&common.lock);
	int ret = common_load_locked(path, error_r);
	pthread_mutex_unlock(&common.lock);
	return ret;
}

void
policy_cleanup(void)
{
	pthread_mutex_lock(&common.lock);
	common_free_locked();
	pthread_mutex_unlock(&common.lock);
}

/* 1 when lower (an ASCII-lowercased password) is on the list, 0 not, -1 error. */
static int
common_contains(const char *path, const char *lower, const char **reason_r)
{
	pthread_mutex_lock(&common.lock);
	int ret = common_load_locked(path, reason_r);
	if (ret == 0 && common.nwords > 0)
		ret = bsearch(&lower, common.words, common.nwords, sizeof(char *),
		    word_cmp) != NULL;
	pthread_mutex_unlock(&common.lock);
	return ret;
}

/* ---------------------------------------------------------------- the rules */

/* Code points in s, or -1 if s is not UTF-8 or holds a control character. */
static long
utf8_count(const unsigned char *s, const char **reason_r)
{
	long count = 0;
	while (*s != '\0') {
		unsigned c = *s;
		size_t n = c < 0x80 ? 1 : c >= 0xc2 && c < 0xe0 ? 2 : c >= 0xe0 && c < 0xf0 ? 3 :
		    c >= 0xf0 && c <= 0xf4 ? 4 : 0;
		if (n == 0)
			return refuse(reason_r, "Password is not valid UTF-8.");
		for (size_t i = 1; i < n; i++)
			if ((s[i] & 0xc0) != 0x80)
				return refuse(reason_r, "Password is not valid UTF-8.");
		/* overlong forms, UTF-16 surrogates, beyond U+10FFFF (RFC 3629 §3) */
		if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) ||
		    (c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))
			return refuse(reason_r, "Password is not valid UTF-8.");
		if (c < 0x20 || c == 0x7f || (c == 0xc2 && s[1] < 0xa0))
			return refuse(reason_r, "Password must not contain control characters.");
		s += n;
		count++;
	}
	return count;
}

/* The account's names: substrings a password must not contain, and zxcvbn's
 * user dictionary. Local parts and domains are short (64 and 253 octets); a
 * longer one is skipped rather than truncated. */
struct context_words {
	char scratch[4 * 256];
	size_t used;
	const char *words[CONTEXT_WORDS_MAX + 1];   /* NULL-terminated, for zxcvbn */
	bool from_user[CONTEXT_WORDS_MAX];          /* local part, else domain */
	size_t n;
};

static char *
context_copy(struct context_words *cw, const char *s)
{
	size_t len = strlen(s);
	if (cw->used + len + 1 > sizeof(cw->scratch))
		return NULL;
	char *p = cw->scratch + cw->used;
	memcpy(p, s, len + 1);
	ascii_lower(p, len);
	cw->used += len + 1;
	return p;
}

static void
context_add(struct context_words *cw, const char *word, bool from_user)
{
	if (strlen(word) < CONTEXT_WORD_MIN || cw->n == CONTEXT_WORDS_MAX)
		return;
	for (size_t i = 0; i < cw->n; i++)
		if (strcmp(cw->words[i], word) == 0)
			return;
	cw->from_user[cw->n] = from_user;
	cw->words[cw->n++] = word;
}

/* "john.smith" gives john.smith, john, smith; "mail.example.org" gives mail,
 * example (a top-level domain says nothing about the account). */
static void
context_collect(struct context_words *cw, const char *local_part, const char *domain)
{
	char *whole, *parts, *save = NULL;
	if (local_part != NULL && (whole = context_copy(cw, local_part)) != NULL &&
	    (parts = context_copy(cw, local_part)) != NULL) {
		context_add(cw, whole, true);
		for (char *t = strtok_r(parts, "._+-", &save); t != NULL;
		    t = strtok_r(NULL, "._+-", &save))
			context_add(cw, t, true);
	}
	if (domain != NULL && (parts = context_copy(cw, domain)) != NULL) {
		char *tld = strrchr(parts, '.');
		if (tld != NULL)
			*tld = '\0';
		for (char *t = strtok_r(parts, ".", &save); t != NULL;
		    t = strtok_r(NULL, ".", &save))
			context_add(cw, t, false);
	}
	cw->words[cw->n] = NULL;
}

int
policy_check_password(const char *password, const char *local_part, const char *domain,
    const struct policy_params *params, const char **reason_r)
{
	struct policy_params defaults;
	if (params == NULL) {
		policy_params_init(&defaults);
		params = &defaults;
	}
	size_t len = strlen(password);
	if (len > PASSWORD_MAX_BYTES)
		return refuse(reason_r, "Password is too long: at most %d bytes are allowed.",
		    PASSWORD_MAX_BYTES);
	long count = utf8_count((const unsigned char *)password, reason_r);
	if (count < 0)
		return -1;
	if ((unsigned long)count < params->min_length)
		return refuse(reason_r, "Password is too short: at least %u characters are "
		    "required.", params->min_length);

	char lower[PASSWORD_MAX_BYTES + 1];
	struct context_words cw = { .n = 0 };
	int ret = 0;
	memcpy(lower, password, len + 1);
	ascii_lower(lower, len);
	context_collect(&cw, local_part, domain);
	for (size_t i = 0; i < cw.n && ret == 0; i++)
		if (strstr(lower, cw.words[i]) != NULL)
			ret = refuse(reason_r, "Password must not contain the %s or part of it.",
			    cw.from_user[i] ? "user name" : "domain name");
	if (ret == 0 && params->common_list_path != NULL) {
		int found = common_contains(params->common_list_path, lower, reason_r);
		if (found != 0)
			ret = found < 0 ? -1 : refuse(reason_r, "Password is on the list of "
			    "commonly used passwords.");
	}
	if (ret == 0 && params->min_entropy > 0 &&
	    ZxcvbnMatch(password, cw.words, NULL) < params->min_entropy)
		ret = refuse(reason_r, "Password is too easy to guess (estimated strength below "
		    "%g bits): use a longer phrase of unrelated words or a generated password.",
		    params->min_entropy);
	sodium_memzero(lower, sizeof(lower));
	return ret;
}
