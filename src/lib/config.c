/*
 * config — loads the settings table (config-table.c) from a libConfuse file into
 * an immutable struct config. See config.h.
 */
#include "lib/config.h"
#include "lib/netaddr.h"
#include "lib/config-table.h"
#include "lib/log.h"

#include <confuse.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* libConfuse reports errors through a callback; keep the first one, with its line. */
struct config_errors {
	char *first;
};
static struct config_errors *current_errors;

static void config_error_cb(cfg_t *cfg, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
config_error_cb(cfg_t *cfg, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (current_errors == NULL || current_errors->first != NULL)
		return;
	char *out = NULL;
	if (cfg != NULL && cfg->filename != NULL && cfg->line > 0) {
		if (asprintf(&out, "%s:%d: %s", cfg->filename, cfg->line, msg) < 0)
			out = NULL;
	} else {
		out = strdup(msg);
	}
	current_errors->first = out;
}

static const struct setting *
table_for_opt(cfg_t *cfg, cfg_opt_t *opt, size_t *n_r)
{
	bool in_listener = cfg->name != NULL && strcmp(cfg->name, "listener") == 0;
	const struct setting *t = in_listener ? listener_settings : config_settings;
	size_t n = in_listener ? listener_settings_count : config_settings_count;
	*n_r = n;
	return setting_find(t, n, opt->name);
}

/* Validates a value as it is parsed, so the error carries the file's line number. */
static int
config_validate_cb(cfg_t *cfg, cfg_opt_t *opt)
{
	size_t n;
	const struct setting *s = table_for_opt(cfg, opt, &n);
	const char *error;
	int64_t v;
	if (s == NULL || s->type == SETTING_STRING)
		return 0;
	const char *text = cfg_opt_getnstr(opt, cfg_opt_size(opt) - 1);
	if (text == NULL || setting_parse_number(s, text, &v, &error) < 0) {
		if (s->min == 0 && s->max == INT64_MAX)
			cfg_error(cfg, "%s: %s", s->name, error);
		else
			cfg_error(cfg, "%s: %s (%lld..%lld)", s->name, error,
			    (long long)s->min, (long long)s->max);
		return -1;
	}
	return 0;
}

static cfg_opt_t *
opts_from_table(const struct setting *t, size_t n, cfg_opt_t *extra)
{
	cfg_opt_t *opts = calloc(n + 2, sizeof(*opts));
	if (opts == NULL)
		fatal("out of memory");
	for (size_t i = 0; i < n; i++) {
		/* Every value is read as a string and converted by the table's parser,
		 * so numbers, sizes and booleans share one syntax in file and -o. */
		cfg_opt_t o = CFG_STR(t[i].name, t[i].def, CFGF_NONE);
		o.validcb = config_validate_cb;
		opts[i] = o;
	}
	size_t k = n;
	if (extra != NULL)
		opts[k++] = *extra;
	cfg_opt_t end = CFG_END();
	opts[k] = end;
	return opts;
}

static int
setting_store(const struct setting *s, void *base, const char *text, char **error_r)
{
	const char *error;
	if (s->type == SETTING_STRING) {
		char **field = (char **)((char *)base + s->offset);
		free(*field);
		*field = strdup(text);
		return 0;
	}
	int64_t v;
	if (setting_parse_number(s, text, &v, &error) < 0) {
		if (asprintf(error_r, "%s: %s", s->name, error) < 0)
			*error_r = NULL;
		return -1;
	}
	char *field = (char *)base + s->offset;
	switch (s->type) {
	case SETTING_BOOL:
		*(bool *)field = v != 0;
		break;
	case SETTING_ROLE:
		*(enum listener_role *)field = (enum listener_role)v;
		break;
	default:
		*(int64_t *)field = v;
		break;
	}
	return 0;
}

static void
settings_free(const struct setting *t, size_t n, void *base)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].type == SETTING_STRING) {
			char **field = (char **)((char *)base + t[i].offset);
			free(*field);
			*field = NULL;
		}
}

static struct config_listener *
listener_add(struct config *c, const char *name)
{
	struct config_listener *l = realloc(c->listeners, (c->nlisteners + 1) * sizeof(*l));
	if (l == NULL)
		fatal("out of memory");
	c->listeners = l;
	l = &c->listeners[c->nlisteners++];
	memset(l, 0, sizeof(*l));
	l->name = strdup(name);
	for (size_t i = 0; i < listener_settings_count; i++) {
		char *err = NULL;
		if (setting_store(&listener_settings[i], l, listener_settings[i].def, &err) < 0)
			fatal("built-in default of %s is invalid: %s", listener_settings[i].name, err);
	}
	return l;
}

static int
apply_override(struct config *c, const char *kv, char **error_r)
{
	const char *eq = strchr(kv, '=');
	if (eq == NULL || eq == kv) {
		if (asprintf(error_r, "-o %s: expected key=value", kv) < 0)
			*error_r = NULL;
		return -1;
	}
	char *key = strndup(kv, (size_t)(eq - kv));
	const char *value = eq + 1;
	const struct setting *s;
	void *base;
	int ret = -1;

	if (strncmp(key, "listener.", 9) == 0) {
		char *name = key + 9, *dot = strchr(name, '.');
		if (dot == NULL || dot == name) {
			if (asprintf(error_r, "-o %s: expected listener.NAME.key=value", kv) < 0)
				*error_r = NULL;
			goto out;
		}
		*dot = '\0';
		s = setting_find(listener_settings, listener_settings_count, dot + 1);
		struct config_listener *l = NULL;
		for (size_t i = 0; i < c->nlisteners; i++)
			if (strcmp(c->listeners[i].name, name) == 0)
				l = &c->listeners[i];
		if (s != NULL && l == NULL)
			l = listener_add(c, name);
		base = l;
	} else {
		s = setting_find(config_settings, config_settings_count, key);
		base = c;
	}
	if (s == NULL) {
		if (asprintf(error_r, "-o %s: no such setting", kv) < 0)
			*error_r = NULL;
		goto out;
	}
	char *err = NULL;
	if (setting_store(s, base, value, &err) < 0) {
		if (asprintf(error_r, "-o %s: %s", kv, err != NULL ? err : "invalid") < 0)
			*error_r = NULL;
		free(err);
		goto out;
	}
	ret = 0;
out:
	free(key);
	return ret;
}

static void
derive_path(char **field, const char *state_dir, const char *leaf)
{
	if (*field != NULL && **field != '\0')
		return;
	free(*field);
	if (asprintf(field, "%s/%s", state_dir, leaf) < 0)
		fatal("out of memory");
}

static int
config_finish(struct config *c, char **error_r)
{
	derive_path(&c->spool_dir, c->state_dir, "spool");
	derive_path(&c->mail_dir, c->state_dir, "mail");
	derive_path(&c->directory_path, c->state_dir, "directory.db");
	derive_path(&c->audit_log, c->state_dir, "audit.log");
	derive_path(&c->dkim_key_dir, c->state_dir, "dkim");
	if (c->hostname[0] == '\0') {
		char host[256] = "";
		gethostname(host, sizeof(host) - 1);
		free(c->hostname);
		c->hostname = strdup(host[0] != '\0' ? host : "localhost");
	}
	if (c->authserv_id[0] == '\0') {
		free(c->authserv_id);
		if ((c->authserv_id = strdup(c->hostname)) == NULL)
			fatal("out of memory");
	}
	if (c->relay_helo[0] == '\0') {
		free(c->relay_helo);
		if ((c->relay_helo = strdup(c->hostname)) == NULL)
			fatal("out of memory");
	}
	if (strcmp(c->relay_tls, "verify") != 0 && strcmp(c->relay_tls, "required") != 0 &&
	    strcmp(c->relay_tls, "opportunistic") != 0) {
		if (asprintf(error_r, "relay.tls: expected verify, required or opportunistic") < 0)
			*error_r = NULL;
		return -1;
	}
	if (c->relay_user[0] != '\0' && c->relay_host[0] == '\0') {
		if (asprintf(error_r, "relay.user: AUTH is for a smarthost; set relay.host too") < 0)
			*error_r = NULL;
		return -1;
	}
	if ((c->relay_user[0] != '\0') != (c->relay_password_file[0] != '\0')) {
		if (asprintf(error_r, "relay.user and relay.password_file go together") < 0)
			*error_r = NULL;
		return -1;
	}
	if (strcmp(c->dmarc_action, "enforce") != 0 && strcmp(c->dmarc_action, "report") != 0) {
		if (asprintf(error_r, "dmarc_action: expected enforce or report") < 0)
			*error_r = NULL;
		return -1;
	}
	if (log_level_parse(c->log_level) < 0) {
		if (asprintf(error_r, "log_level: expected error, warn, info or debug") < 0)
			*error_r = NULL;
		return -1;
	}
	if (strlen(c->recipient_delimiter) > 1) {
		if (asprintf(error_r, "recipient_delimiter: at most one character") < 0)
			*error_r = NULL;
		return -1;
	}
	for (size_t i = 0; i < c->nlisteners; i++) {
		const struct config_listener *l = &c->listeners[i];
		if (l->role != LISTENER_ROLE_MX && (c->tls_cert[0] == '\0' || c->tls_key[0] == '\0')) {
			if (asprintf(error_r, "listener %s: role %s needs tls_cert and tls_key",
			    l->name, listener_role_name(l->role)) < 0)
				*error_r = NULL;
			return -1;
		}
		const char *lists[2] = { l->allow, l->deny }, *names[2] = { "allow", "deny" };
		for (int k = 0; k < 2; k++) {
			struct cidr_list cl;
			const char *why;
			if (cidr_list_parse(lists[k], &cl, &why) < 0) {
				if (asprintf(error_r, "listener %s: %s: %s", l->name, names[k], why) < 0)
					*error_r = NULL;
				return -1;
			}
			cidr_list_free(&cl);
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(c->listeners[j].address, l->address) == 0 &&
			    c->listeners[j].port == l->port) {
				if (asprintf(error_r, "listeners %s and %s both use %s port %lld",
				    c->listeners[j].name, l->name, l->address, (long long)l->port) < 0)
					*error_r = NULL;
				return -1;
			}
	}
	return 0;
}

struct config *
config_load(const char *path, char *const *overrides, size_t noverrides, char **error_r)
{
	struct config_errors errors = { NULL };
	struct config *c = calloc(1, sizeof(*c));
	cfg_opt_t listener_opt = CFG_SEC("listener", NULL, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES);
	cfg_opt_t *lopts = opts_from_table(listener_settings, listener_settings_count, NULL);
	listener_opt.subopts = lopts;
	cfg_opt_t *opts = opts_from_table(config_settings, config_settings_count, &listener_opt);
	cfg_t *cfg = cfg_init(opts, CFGF_NONE);
	struct config *ret = NULL;

	*error_r = NULL;
	c->path = strdup(path != NULL ? path : "");
	cfg_set_error_function(cfg, config_error_cb);
	current_errors = &errors;
	int rc = path != NULL ? cfg_parse(cfg, path) : CFG_SUCCESS;
	current_errors = NULL;
	if (rc == CFG_FILE_ERROR) {
		if (asprintf(error_r, "%s: cannot read: %m", path) < 0)
			*error_r = NULL;
		goto out;
	}
	if (rc != CFG_SUCCESS) {
		*error_r = errors.first != NULL ? errors.first : strdup("configuration error");
		errors.first = NULL;
		goto out;
	}
	for (size_t i = 0; i < config_settings_count; i++) {
		if (setting_store(&config_settings[i], c, cfg_getstr(cfg, config_settings[i].name),
		    error_r) < 0)
			goto out;
	}
	unsigned nl = cfg_size(cfg, "listener");
	for (unsigned i = 0; i < nl; i++) {
		cfg_t *sec = cfg_getnsec(cfg, "listener", i);
		struct config_listener *l = listener_add(c, cfg_title(sec));
		for (size_t j = 0; j < listener_settings_count; j++)
			if (setting_store(&listener_settings[j], l,
			    cfg_getstr(sec, listener_settings[j].name), error_r) < 0)
				goto out;
	}
	for (size_t i = 0; i < noverrides; i++)
		if (apply_override(c, overrides[i], error_r) < 0)
			goto out;
	if (config_finish(c, error_r) < 0)
		goto out;
	ret = c;
	c = NULL;
out:
	free(errors.first);
	cfg_free(cfg);
	free(opts);
	free(lopts);
	if (ret == NULL && *error_r == NULL)
		*error_r = strdup("configuration error");
	config_free(&c);
	return ret;
}

void
config_free(struct config **cfgp)
{
	struct config *c = *cfgp;
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nlisteners; i++) {
		settings_free(listener_settings, listener_settings_count, &c->listeners[i]);
		free(c->listeners[i].name);
	}
	free(c->listeners);
	settings_free(config_settings, config_settings_count, c);
	free(c->path);
	free(c);
	*cfgp = NULL;
}

const char *
listener_role_name(enum listener_role role)
{
	switch (role) {
	case LISTENER_ROLE_MX: return "mx";
	case LISTENER_ROLE_SUBMISSION: return "submission";
	case LISTENER_ROLE_SUBMISSIONS: return "submissions";
	}
	return "?";
}

static const char *
type_name(enum setting_type t)
{
	static const char *const names[] = {
		[SETTING_STRING] = "string", [SETTING_INT] = "integer", [SETTING_BOOL] = "boolean",
		[SETTING_SIZE] = "size", [SETTING_DURATION] = "duration (s)",
		[SETTING_MILLIS] = "duration (ms)", [SETTING_ROLE] = "role",
	};
	return names[t];
}

static void
print_table(FILE *out, const struct setting *t, size_t n)
{
	fprintf(out, "| setting | type | default | description |\n|---|---|---|---|\n");
	for (size_t i = 0; i < n; i++)
		fprintf(out, "| `%s` | %s | `%s` | %s |\n", t[i].name, type_name(t[i].type),
		    t[i].def[0] != '\0' ? t[i].def : "\"\"", t[i].description);
}

void
config_print_doc(FILE *out)
{
	fprintf(out, "# Rampart configuration reference\n\n"
	    "Generated by `rampart config-doc` from the settings table in "
	    "`src/lib/config-table.c`; do not edit by hand.\n\n"
	    "The file (default `/etc/rampart/rampart.conf`) is read by `rampartd -c FILE`. "
	    "Values may be quoted or bare words. Sizes take K, M or G (powers of 1024); "
	    "durations take s, m, h or d. `rampartd -o key=value` overrides a setting, "
	    "`-o listener.NAME.key=value` a listener's; `rampartd -n` checks a file and exits.\n\n"
	    "## Global settings\n\n");
	print_table(out, config_settings, config_settings_count);
	fprintf(out, "\n## Listeners\n\n"
	    "Each `listener NAME { ... }` section opens one socket:\n\n"
	    "```\nlistener mx  { role = mx          address = \"0.0.0.0\" port = 25 }\n"
	    "listener sub { role = submission  address = \"0.0.0.0\" port = 587 }\n"
	    "listener smtps { role = submissions address = \"0.0.0.0\" port = 465 }\n```\n\n");
	print_table(out, listener_settings, listener_settings_count);
}
