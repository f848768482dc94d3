/*
 * dns-view — what one mail check has asked and been told (dns.h).
 *
 * A view is a small table of questions (name, type) and their answers. A check
 * asks it again and again as it re-runs; the same question (names compared
 * case-insensitively, RFC 4343) always gets the same answer within a view, so
 * a re-run step is deterministic. Questions without answers are what the pump
 * resolves next (dns_view_question, dns_view_put).
 */
#include "dns/dns-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct view_entry {
	struct dns_name key;        /* lower-cased */
	uint16_t type;
	char *name;                 /* as first asked */
	struct dns_answer *answer;  /* NULL until known */
};

struct dns_view {
	const struct dns_zone *zone;
	struct view_entry *e;
	size_t n, cap;
};

/* Returned when the view cannot note a question (memory, or too many). */
static struct dns_answer view_oom = {
	.refs = 1, .status = DNS_TEMPFAIL, .why = (char *)"out of memory for DNS answers",
};
static struct dns_answer view_full = {
	.refs = 1, .status = DNS_TEMPFAIL,
	.why = (char *)"too many DNS questions for one check",
};

struct dns_view *
dns_view_new(const struct dns_zone *zone)
{
	struct dns_view *v = calloc(1, sizeof(*v));

	if (v != NULL)
		v->zone = zone;
	return v;
}

void
dns_view_free(struct dns_view **vp)
{
	struct dns_view *v = *vp;

	if (v == NULL)
		return;
	*vp = NULL;
	for (size_t i = 0; i < v->n; i++) {
		free(v->e[i].name);
		dns_answer_unref(&v->e[i].answer);
	}
	free(v->e);
	free(v);
}

static struct view_entry *
view_find(struct dns_view *v, const struct dns_name *key, uint16_t type)
{
	for (size_t i = 0; i < v->n; i++)
		if (v->e[i].type == type && v->e[i].key.len == key->len &&
		    memcmp(v->e[i].key.wire, key->wire, key->len) == 0)
			return &v->e[i];
	return NULL;
}

/* A new entry for name/type, or NULL (then *fail_r is the answer to give). */
static struct view_entry *
view_add(struct dns_view *v, const char *name, const struct dns_name *key, uint16_t type,
    const struct dns_answer **fail_r)
{
	struct view_entry *e;

	if (v->n == v->cap) {
		size_t ncap = v->cap == 0 ? 8 : v->cap * 2;

		if (v->n >= DNS_VIEW_QUESTIONS_MAX) {
			*fail_r = &view_full;
			return NULL;
		}
		if ((e = realloc(v->e, ncap * sizeof(*e))) == NULL) {
			*fail_r = &view_oom;
			return NULL;
		}
		v->e = e;
		v->cap = ncap;
	}
	e = &v->e[v->n];
	memset(e, 0, sizeof(*e));
	if ((e->name = strdup(name)) == NULL) {
		*fail_r = &view_oom;
		return NULL;
	}
	e->key = *key;
	e->type = type;
	v->n++;
	return e;
}

/* Forgets the entry just added (its answer could not be made). */
static const struct dns_answer *
view_drop_last(struct dns_view *v)
{
	free(v->e[--v->n].name);
	return &view_oom;
}

const struct dns_answer *
dns_view_lookup(struct dns_view *v, const char *name, uint16_t type)
{
	const struct dns_answer *fail = NULL;
	struct view_entry *e;
	struct dns_name key;
	const char *error;

	if (dns_name_parse(name, strlen(name), NULL, &key, &error) < 0) {
		/* Not a name DNS can carry: the answer is known without asking. Such
		 * entries have an empty key and are found by their text. */
		char why[128];

		snprintf(why, sizeof(why), "%s", error);
		for (size_t i = 0; i < v->n; i++)
			if (v->e[i].key.len == 0 && v->e[i].type == type &&
			    strcmp(v->e[i].name, name) == 0)
				return v->e[i].answer;
		key.len = 0;
		if ((e = view_add(v, name, &key, type, &fail)) == NULL)
			return fail;
		e->answer = dns_answer_failf(DNS_FORMERR, 0, "%.200s: %s", name, why);
		return e->answer != NULL ? e->answer : view_drop_last(v);
	}
	dns_name_lower(&key);
	if ((e = view_find(v, &key, type)) != NULL)
		return e->answer;
	if ((e = view_add(v, name, &key, type, &fail)) == NULL)
		return fail;
	if (v->zone != NULL) {
		e->answer = dns_zone_lookup(v->zone, name, type);
		return e->answer != NULL ? e->answer : view_drop_last(v);
	}
	return NULL;
}

unsigned
dns_view_lookups(const struct dns_view *v)
{
	return (unsigned)v->n;
}

bool
dns_view_question(const struct dns_view *v, size_t *iter, const char **name_r,
    uint16_t *type_r)
{
	while (*iter < v->n) {
		const struct view_entry *e = &v->e[(*iter)++];

		if (e->answer == NULL) {
			*name_r = e->name;
			*type_r = e->type;
			return true;
		}
	}
	return false;
}

int
dns_view_put(struct dns_view *v, const char *name, uint16_t type, struct dns_answer *a)
{
	const struct dns_answer *fail = NULL;
	struct view_entry *e;
	struct dns_name key;
	const char *error;

	if (dns_name_parse(name, strlen(name), NULL, &key, &error) < 0)
		return -1;
	dns_name_lower(&key);
	if ((e = view_find(v, &key, type)) == NULL &&
	    (e = view_add(v, name, &key, type, &fail)) == NULL)
		return -1;
	if (e->answer == NULL)
		e->answer = dns_answer_ref(a);
	return 0;
}
