/* keyring — see keyring.h. */
#include "keys/keyring.h"
#include "lib/error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#define FINGERPRINT_LEN 16

struct keyring {
	char *dir;
	struct keyring_key *keys;
	size_t nkeys;
	char **problems;
	size_t nproblems;
	unsigned char fingerprint[FINGERPRINT_LEN];
	bool loaded;
};

/* One *.key or *.state file found by a scan. */
struct scan_file {
	char *domain, *selector;
	bool is_state;
	struct stat st;
};

struct scan {
	struct scan_file *files;
	size_t n, cap;
	size_t entries;                 /* directory entries looked at */
	char **problems;
	size_t nproblems;
	crypto_generichash_state hash;  /* over the directories */
};

/* ---------------------------------------------------------------- helpers */

static void
problem_add(char ***v, size_t *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
problem_add(char ***v, size_t *n, const char *fmt, ...)
{
	char *s;
	va_list ap;
	va_start(ap, fmt);
	int rc = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (rc < 0)
		return;
	char **nv = realloc(*v, (*n + 1) * sizeof(*nv));
	if (nv == NULL) {
		free(s);
		return;
	}
	nv[(*n)++] = s;
	*v = nv;
}

static void
problems_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void
hash_stat(crypto_generichash_state *h, const char *name, const struct stat *st)
{
	int64_t v[6] = { (int64_t)st->st_ino, (int64_t)st->st_size,
	    (int64_t)st->st_mtim.tv_sec, (int64_t)st->st_mtim.tv_nsec,
	    (int64_t)st->st_ctim.tv_sec, (int64_t)st->st_ctim.tv_nsec };
	crypto_generichash_update(h, (const unsigned char *)name, strlen(name) + 1);
	crypto_generichash_update(h, (const unsigned char *)v, sizeof(v));
}

/* ---------------------------------------------------------------- scanning */

static int
scan_add(struct scan *sc, const char *domain, const char *selector, bool is_state,
    const struct stat *st)
{
	if (sc->n == sc->cap) {
		size_t ncap = sc->cap == 0 ? 16 : sc->cap * 2;
		struct scan_file *nf = realloc(sc->files, ncap * sizeof(*nf));
		if (nf == NULL)
			return -1;
		sc->files = nf;
		sc->cap = ncap;
	}
	struct scan_file *f = &sc->files[sc->n];
	f->domain = strdup(domain);
	f->selector = strdup(selector);
	if (f->domain == NULL || f->selector == NULL) {
		free(f->domain);
		free(f->selector);
		return -1;
	}
	f->is_state = is_state;
	f->st = *st;
	sc->n++;
	return 0;
}

static void
scan_free(struct scan *sc)
{
	for (size_t i = 0; i < sc->n; i++) {
		free(sc->files[i].domain);
		free(sc->files[i].selector);
	}
	free(sc->files);
	problems_free(sc->problems, sc->nproblems);
}

/* NAME.key or NAME.state: the selector into sel, and which. */
static bool
file_kind(const char *name, char *sel, size_t size, bool *is_state_r)
{
	size_t len = strlen(name);
	size_t base;
	if (len > 4 && strcmp(name + len - 4, ".key") == 0) {
		base = len - 4;
		*is_state_r = false;
	} else if (len > 6 && strcmp(name + len - 6, ".state") == 0) {
		base = len - 6;
		*is_state_r = true;
	} else {
		return false;
	}
	if (base >= size)
		base = size - 1;    /* too long: fails keys_name_valid below anyway */
	memcpy(sel, name, base);
	sel[base] = '\0';
	return true;
}

static void
scan_domain(struct scan *sc, const char *dir, const char *domain)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, domain);
	DIR *d = opendir(path);
	if (d == NULL) {
		problem_add(&sc->problems, &sc->nproblems, "%s: cannot be read: %s", path,
		    strerror(errno));
		return;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (++sc->entries > KEYRING_MAX_ENTRIES) {
			problem_add(&sc->problems, &sc->nproblems, "%s: more than %d entries; "
			    "the rest is ignored", dir, KEYRING_MAX_ENTRIES);
			break;
		}
		char sel[256];
		bool is_state;
		if (!file_kind(de->d_name, sel, sizeof(sel), &is_state))
			continue;
		if (!keys_name_valid(sel, false)) {
			problem_add(&sc->problems, &sc->nproblems, "%s/%s: the selector is not a "
			    "valid name (letters, digits, '-', '_', dots between); ignored", path,
			    de->d_name);
			continue;
		}
		struct stat st;
		if (fstatat(dirfd(d), de->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode)) {
			problem_add(&sc->problems, &sc->nproblems, "%s/%s: not a regular file; "
			    "ignored", path, de->d_name);
			continue;
		}
		if (scan_add(sc, domain, sel, is_state, &st) < 0)
			problem_add(&sc->problems, &sc->nproblems, "out of memory");
	}
	closedir(d);
}

static int
scan_file_cmp(const void *a, const void *b)
{
	const struct scan_file *x = a, *y = b;
	int c = strcmp(x->domain, y->domain);
	if (c == 0)
		c = strcmp(x->selector, y->selector);
	if (c == 0)
		c = (int)x->is_state - (int)y->is_state;   /* .key before .state */
	return c;
}

/* Lists the directory into sc and computes its fingerprint. */
static void
scan_dir(struct scan *sc, const char *dir, unsigned char fp[FINGERPRINT_LEN])
{
	crypto_generichash_init(&sc->hash, NULL, 0, FINGERPRINT_LEN);
	DIR *d = opendir(dir);
	if (d == NULL) {
		/* No directory yet is the usual state before the first keygen. */
		if (errno != ENOENT)
			problem_add(&sc->problems, &sc->nproblems, "%s: cannot be read: %s", dir,
			    strerror(errno));
		crypto_generichash_update(&sc->hash, (const unsigned char *)"-", 1);
		crypto_generichash_final(&sc->hash, fp, FINGERPRINT_LEN);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL && sc->entries <= KEYRING_MAX_ENTRIES) {
		if (de->d_name[0] == '.')
			continue;
		sc->entries++;
		struct stat st;
		if (fstatat(dirfd(d), de->d_name, &st, 0) < 0 || !S_ISDIR(st.st_mode))
			continue;
		if (!keys_name_valid(de->d_name, true)) {
			problem_add(&sc->problems, &sc->nproblems, "%s/%s: not a lower-case domain "
			    "name; ignored", dir, de->d_name);
			continue;
		}
		scan_domain(sc, dir, de->d_name);
	}
	closedir(d);
	if (sc->n > 1)
		qsort(sc->files, sc->n, sizeof(*sc->files), scan_file_cmp);
	for (size_t i = 0; i < sc->n; i++) {
		const struct scan_file *f = &sc->files[i];
		char name[600];
		snprintf(name, sizeof(name), "%s/%s%s", f->domain, f->selector,
		    f->is_state ? ".state" : ".key");
		hash_stat(&sc->hash, name, &f->st);
	}
	/* The problems depend on names that are not in the list: count them in. */
	for (size_t i = 0; i < sc->nproblems; i++)
		crypto_generichash_update(&sc->hash, (const unsigned char *)sc->problems[i],
		    strlen(sc->problems[i]) + 1);
	crypto_generichash_final(&sc->hash, fp, FINGERPRINT_LEN);
}

/* ---------------------------------------------------------------- the keyring */

struct keyring *
keyring_new(const char *dir)
{
	struct keyring *kr = calloc(1, sizeof(*kr));
	if (kr == NULL || (kr->dir = strdup(dir)) == NULL) {
		free(kr);
		return NULL;
	}
	return kr;
}

static void
keys_free(struct keyring_key *keys, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(keys[i].domain);
		free(keys[i].selector);
		free(keys[i].path);
		free(keys[i].error);
		dkim_key_free(&keys[i].key);
	}
	free(keys);
}

void
keyring_free(struct keyring **krp)
{
	struct keyring *kr = *krp;
	if (kr == NULL)
		return;
	*krp = NULL;
	keys_free(kr->keys, kr->nkeys);
	problems_free(kr->problems, kr->nproblems);
	free(kr->dir);
	free(kr);
}

/* Makes the key of f (a .key file); state: the .state file next to it or NULL. */
static int
key_load(struct keyring *kr, struct keyring_key *k, const struct scan_file *f,
    const struct scan_file *state)
{
	const char *error = NULL;
	k->domain = strdup(f->domain);
	k->selector = strdup(f->selector);
	if (k->domain == NULL || k->selector == NULL ||
	    asprintf(&k->path, "%s/%s/%s.key", kr->dir, f->domain, f->selector) < 0) {
		k->path = NULL;
		return -1;
	}
	if (state != NULL) {
		char *spath;
		if (asprintf(&spath, "%s/%s/%s.state", kr->dir, f->domain, f->selector) < 0)
			return -1;
		int rc = keyring_state_read(spath, &k->not_before, &k->retire_at, &error);
		free(spath);
		if (rc < 0) {
			char *e;
			if (asprintf(&e, "Its state file is not usable: %s", error) < 0)
				return -1;
			k->error = e;
			return 0;
		}
	}
	if ((k->key = dkim_key_load(k->path, &error)) == NULL) {
		if ((k->error = strdup(error != NULL ? error : "The key cannot be loaded.")) == NULL)
			return -1;
		return 0;
	}
	k->type = dkim_key_type(k->key);
	return 0;
}

int
keyring_load(struct keyring *kr, bool force)
{
	struct scan sc = { 0 };
	unsigned char fp[FINGERPRINT_LEN];
	scan_dir(&sc, kr->dir, fp);
	if (kr->loaded && !force && sodium_memcmp(fp, kr->fingerprint, sizeof(fp)) == 0) {
		scan_free(&sc);
		return 0;
	}
	size_t nkeyfiles = 0;
	for (size_t i = 0; i < sc.n; i++)
		nkeyfiles += !sc.files[i].is_state;
	if (nkeyfiles > KEYRING_MAX_KEYS) {
		problem_add(&sc.problems, &sc.nproblems, "%s: more than %d keys; only the first "
		    "%d (by domain and selector) are used", kr->dir, KEYRING_MAX_KEYS,
		    KEYRING_MAX_KEYS);
		nkeyfiles = KEYRING_MAX_KEYS;
	}
	struct keyring_key *keys = calloc(nkeyfiles > 0 ? nkeyfiles : 1, sizeof(*keys));
	size_t n = 0;
	for (size_t i = 0; keys != NULL && i < sc.n && n < nkeyfiles; i++) {
		const struct scan_file *f = &sc.files[i];
		if (f->is_state)
			continue;   /* a state file of no key: nothing to do */
		const struct scan_file *st = i + 1 < sc.n && sc.files[i + 1].is_state &&
		    strcmp(sc.files[i + 1].domain, f->domain) == 0 &&
		    strcmp(sc.files[i + 1].selector, f->selector) == 0 ? &sc.files[i + 1] : NULL;
		struct keyring_key *k = &keys[n++];
		if (key_load(kr, k, f, st) < 0) {
			problem_add(&sc.problems, &sc.nproblems, "out of memory");
			break;
		}
		if (k->error != NULL)
			problem_add(&sc.problems, &sc.nproblems, "%s: %s", k->path, k->error);
	}
	if (keys == NULL)
		problem_add(&sc.problems, &sc.nproblems, "out of memory");
	keys_free(kr->keys, kr->nkeys);
	problems_free(kr->problems, kr->nproblems);
	kr->keys = keys;
	kr->nkeys = keys != NULL ? n : 0;
	kr->problems = sc.problems;
	kr->nproblems = sc.nproblems;
	sc.problems = NULL;
	sc.nproblems = 0;
	memcpy(kr->fingerprint, fp, sizeof(fp));
	kr->loaded = true;
	scan_free(&sc);
	return 1;
}

size_t
keyring_count(const struct keyring *kr)
{
	return kr->nkeys;
}

const struct keyring_key *
keyring_get(const struct keyring *kr, size_t i)
{
	return i < kr->nkeys ? &kr->keys[i] : NULL;
}

size_t
keyring_problem_count(const struct keyring *kr)
{
	return kr->nproblems;
}

const char *
keyring_problem(const struct keyring *kr, size_t i)
{
	return i < kr->nproblems ? kr->problems[i] : NULL;
}

bool
keyring_key_signs(const struct keyring_key *k, time_t t)
{
	return k->key != NULL && (k->not_before == 0 || t >= k->not_before) &&
	    (k->retire_at == 0 || t < k->retire_at);
}

size_t
keyring_signing(const struct keyring *kr, time_t t, struct keys_selector *v, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < kr->nkeys && n < max;) {
		/* keys[i, j) are one domain's, sorted by selector. */
		size_t j = i;
		while (j < kr->nkeys && strcmp(kr->keys[j].domain, kr->keys[i].domain) == 0)
			j++;
		for (int pass = 0; pass < 2; pass++) {
			enum dkim_key_type want = pass == 0 ? DKIM_KEY_ED25519 : DKIM_KEY_RSA;
			for (size_t k = i; k < j && n < max; k++) {
				const struct keyring_key *key = &kr->keys[k];
				if (keyring_key_signs(key, t) && key->type == want)
					v[n++] = (struct keys_selector){ key->domain, key->selector,
					    key->type };
			}
		}
		i = j;
	}
	return n;
}

time_t
keyring_next_change(const struct keyring *kr, time_t t)
{
	time_t next = 0;
	for (size_t i = 0; i < kr->nkeys; i++) {
		const struct keyring_key *k = &kr->keys[i];
		if (k->key == NULL)
			continue;
		if (k->not_before > t && (next == 0 || k->not_before < next))
			next = k->not_before;
		if (k->retire_at > t && (next == 0 || k->retire_at < next))
			next = k->retire_at;
	}
	return next;
}

static const struct keyring_key *
keyring_find(const struct keyring *kr, const char *domain, const char *selector)
{
	size_t lo = 0, hi = kr->nkeys;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct keyring_key *k = &kr->keys[mid];
		int c = strcmp(domain, k->domain);
		if (c == 0)
			c = strcmp(selector, k->selector);
		if (c == 0)
			return k;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

enum keys_status
keyring_sign(const struct keyring *kr, const char *domain, const char *selector, time_t t,
    const unsigned char digest[32], unsigned char *sig, size_t *len_r)
{
	const struct keyring_key *k = keyring_find(kr, domain, selector);
	const char *error;
	if (k == NULL || !keyring_key_signs(k, t))
		return KEYS_NO_KEY;
	if (dkim_key_sign_digest(k->key, digest, sig, len_r, &error) < 0 || *len_r == 0 ||
	    *len_r > KEYS_SIG_MAX)
		return KEYS_FAILED;
	return KEYS_OK;
}
