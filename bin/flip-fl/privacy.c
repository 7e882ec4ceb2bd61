/* SPDX-License-Identifier: Apache-2.0 */
/*
 * privacy - the site privacy policy of the FL client (see privacy.h for the contract).
 *
 * Both sources (FL_SITE_PRIVACY_* settings and the policy's [fl_privacy] table) are
 * first turned into the same list of items: which parameter, under what label
 * (for messages), and its number or why it is not one. One checker then applies
 * the rules to that list, so the two sources cannot drift apart in what they
 * accept. Fail closed is the point of this module: anything not understood is a
 * problem, never a default, because a typo in a privacy setting must not quietly
 * ship unfiltered weights.
 *
 * Values are not secrets; a bad one is repeated in a message, at most
 * PRIVACY_ECHO bytes with control characters shown as '?'.
 */
#include "bin/flip-fl/privacy.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PRIVACY_ECHO 32
#define PRIVACY_POLICY_ENV PRIVACY_PREFIX "POLICY"
#define PRIVACY_POLICY_KEY "policy"

struct privacy_preset_def {
	const char *name;	/* FL_SITE_PRIVACY_POLICY value */
	const char *path;	/* NVFLARE filter class */
};

static const struct privacy_preset_def privacy_presets[] = {
	[PRIVACY_NONE] = {"none", NULL},
	[PRIVACY_PERCENTILE] = {"percentile",
				"nvflare.app_common.filters.percentile_privacy.PercentilePrivacy"},
	[PRIVACY_SVT] = {"svt", "nvflare.app_common.filters.svt_privacy.SVTPrivacy"},
};

struct privacy_param_def {
	const char *env;	/* FL_SITE_PRIVACY_ name */
	const char *key;	/* [fl_privacy] key */
	const char *arg;	/* the NVFLARE filter's constructor argument */
	enum privacy_preset preset;
	double def, min, max;	/* max HUGE_VAL: any finite number */
	int min_open;		/* 1: min itself is refused */
};

static const struct privacy_param_def privacy_params[PRIVACY_NPARAMS] = {
	[PRIVACY_PERCENTILE_PCT] = {PRIVACY_PREFIX "PERCENTILE", "percentile", "percentile",
				    PRIVACY_PERCENTILE, 10, 0, 100, 0},
	[PRIVACY_PERCENTILE_GAMMA] = {PRIVACY_PREFIX "GAMMA", "gamma", "gamma",
				      PRIVACY_PERCENTILE, 0.01, 0, HUGE_VAL, 1},
	[PRIVACY_SVT_FRACTION] = {PRIVACY_PREFIX "SVT_FRACTION", "svt_fraction", "fraction",
				  PRIVACY_SVT, 0.1, 0, 1, 1},
	[PRIVACY_SVT_EPSILON] = {PRIVACY_PREFIX "SVT_EPSILON", "svt_epsilon", "epsilon",
				 PRIVACY_SVT, 0.1, 0, HUGE_VAL, 1},
	[PRIVACY_SVT_NOISE_VAR] = {PRIVACY_PREFIX "SVT_NOISE_VAR", "svt_noise_var", "noise_var",
				   PRIVACY_SVT, 0.1, 0, HUGE_VAL, 1},
	[PRIVACY_SVT_GAMMA] = {PRIVACY_PREFIX "SVT_GAMMA", "svt_gamma", "gamma", PRIVACY_SVT,
			       1e-5, 0, HUGE_VAL, 1},
	[PRIVACY_SVT_TAU] = {PRIVACY_PREFIX "SVT_TAU", "svt_tau", "tau", PRIVACY_SVT, 1e-6, 0,
			     HUGE_VAL, 0},
};

/* one setting from either source, before the rules are applied */
enum { ITEM_POLICY = -1, ITEM_UNKNOWN = -2 };
struct privacy_item {
	char label[320];	/* what a message calls it */
	int param;		/* enum privacy_param, ITEM_POLICY or ITEM_UNKNOWN */
	char text[PRIVACY_ECHO + 4]; /* the value as shown in messages */
	double value;
	int bad;		/* 1: not a number (or, for the policy, not a string);
				   2: and text names the TOML type it has instead */
};

struct privacy_problems {
	char *err;
	size_t errlen, used;
	int n;
};

/* privacy_problem - one more problem line in err (as much as fits) */
__attribute__((format(printf, 2, 3))) static void privacy_problem(struct privacy_problems *pp,
								  const char *fmt, ...)
{
	va_list ap;
	int k;

	pp->n++;
	if (pp->err == NULL || pp->errlen == 0 || pp->used + 2 >= pp->errlen)
		return;
	if (pp->used > 0)
		pp->err[pp->used++] = '\n';
	va_start(ap, fmt);
	k = vsnprintf(pp->err + pp->used, pp->errlen - pp->used, fmt, ap);
	va_end(ap);
	if (k < 0)
		pp->err[pp->used] = 0;
	else if ((size_t)k >= pp->errlen - pp->used)
		pp->used = pp->errlen - 1;
	else
		pp->used += (size_t)k;
}

/* privacy_echo - a value as a message may show it */
static void privacy_echo(const char *v, char *out, size_t outlen)
{
	size_t i;

	for (i = 0; i < PRIVACY_ECHO && i + 4 < outlen && v[i]; i++)
		out[i] = (unsigned char)v[i] < 0x20 || v[i] == 0x7f ? '?' : v[i];
	if (v[i] && i + 4 < outlen)
		memcpy(out + i, "...", 3), i += 3;
	out[i] = 0;
}

/* privacy_number - a plain decimal number (sign, digits, fraction, exponent), finite */
static int privacy_number(const char *s, double *out)
{
	const char *p = s;
	char *end;
	int digits = 0;

	if (*p == '+' || *p == '-')
		p++;
	while (isdigit((unsigned char)*p))
		p++, digits++;
	if (*p == '.')
		for (p++; isdigit((unsigned char)*p); p++)
			digits++;
	if (digits == 0)
		return -1;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!isdigit((unsigned char)*p))
			return -1;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p)
		return -1;
	errno = 0;
	*out = strtod(s, &end);
	if (*end || errno == ERANGE || !isfinite(*out))
		return -1;
	return 0;
}

/* privacy_type - what a TOML value is, for a message */
static const char *privacy_type(const json_t *v)
{
	if (json_is_string(v))
		return "a string";
	if (json_is_boolean(v))
		return "a boolean";
	if (json_is_number(v))
		return "a number";
	if (json_is_array(v))
		return "an array";
	if (json_is_object(v))
		return "a table";
	return "null";
}

/* privacy_preset_named - the preset called name, or -1 */
static int privacy_preset_named(const char *name)
{
	if (strcmp(name, "percentile") == 0)
		return PRIVACY_PERCENTILE;
	if (strcmp(name, "svt") == 0)
		return PRIVACY_SVT;
	return -1;
}

/* privacy_settings_init - no settings yet */
void privacy_settings_init(struct privacy_settings *s)
{
	memset(s, 0, sizeof(*s));
}

/* privacy_settings_add - one FL_SITE_PRIVACY_* setting (borrowed); -1 when full */
int privacy_settings_add(struct privacy_settings *s, const char *name, const char *value)
{
	if (s->n >= PRIVACY_MAX_SETTINGS)
		return -1;
	s->v[s->n].name = name;
	s->v[s->n].value = value;
	s->n++;
	return 0;
}

/* privacy_items_env - the settings as items; empty values are unset */
static size_t privacy_items_env(const struct privacy_settings *s, struct privacy_item *items)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++) {
		const struct privacy_setting *st = &s->v[i];
		struct privacy_item *it = &items[n];

		if (st->name == NULL || st->value == NULL || st->value[0] == 0)
			continue;
		memset(it, 0, sizeof(*it));
		snprintf(it->label, sizeof(it->label), "%.80s", st->name);
		privacy_echo(st->value, it->text, sizeof(it->text));
		it->param = ITEM_UNKNOWN;
		if (strcmp(st->name, PRIVACY_POLICY_ENV) == 0) {
			it->param = ITEM_POLICY;
		} else {
			for (int k = 0; k < PRIVACY_NPARAMS; k++)
				if (strcmp(st->name, privacy_params[k].env) == 0)
					it->param = k;
			if (it->param >= 0)
				it->bad = privacy_number(st->value, &it->value) < 0;
		}
		n++;
	}
	return n;
}

/* privacy_items_table - the [fl_privacy] table as items */
static size_t privacy_items_table(json_t *table, const char *source,
				  struct privacy_item *items, size_t cap)
{
	const char *key;
	json_t *v;
	size_t n = 0;

	json_object_foreach(table, key, v) {
		struct privacy_item *it = &items[n];
		char k[PRIVACY_ECHO + 4];

		if (n >= cap)
			break;
		memset(it, 0, sizeof(*it));
		privacy_echo(key, k, sizeof(k));
		snprintf(it->label, sizeof(it->label), "%.256s [fl_privacy] %s", source, k);
		it->param = ITEM_UNKNOWN;
		if (strcmp(key, PRIVACY_POLICY_KEY) == 0) {
			it->param = ITEM_POLICY;
			it->bad = json_is_string(v) ? 0 : 2;
			privacy_echo(json_is_string(v) ? json_string_value(v) : privacy_type(v),
				     it->text, sizeof(it->text));
		} else {
			for (int i = 0; i < PRIVACY_NPARAMS; i++)
				if (strcmp(key, privacy_params[i].key) == 0)
					it->param = i;
			if (json_is_number(v)) {
				it->value = json_number_value(v);
				snprintf(it->text, sizeof(it->text), "%g", it->value);
				it->bad = !isfinite(it->value);
			} else {
				it->bad = 2;
				snprintf(it->text, sizeof(it->text), "%s", privacy_type(v));
			}
		}
		n++;
	}
	return n;
}

/* privacy_check - apply the rules to the items */
static void privacy_check(const struct privacy_item *items, size_t n, int from_table,
			  struct privacy_policy *out, struct privacy_problems *pp)
{
	const char *policy_label = from_table ? "policy" : PRIVACY_POLICY_ENV;
	int preset = PRIVACY_NONE, policy_bad = 0;

	memset(out, 0, sizeof(*out));
	out->from_table = from_table;
	for (size_t i = 0; i < n; i++) {
		if (items[i].param != ITEM_POLICY)
			continue;
		preset = items[i].bad ? -1 : privacy_preset_named(items[i].text);
		if (items[i].bad == 2) {
			policy_bad = 1;
			privacy_problem(pp, "%s must be a string (percentile or svt), not %s",
					items[i].label, items[i].text);
		} else if (preset < 0) {
			policy_bad = 1;
			privacy_problem(pp, "%s: unknown privacy preset '%s' (percentile or svt)",
					items[i].label, items[i].text);
		}
	}
	for (size_t i = 0; i < n; i++) {
		const struct privacy_item *it = &items[i];
		const struct privacy_param_def *d;

		if (it->param == ITEM_POLICY)
			continue;
		if (it->param == ITEM_UNKNOWN) {
			privacy_problem(pp, "%s: unknown privacy setting", it->label);
			continue;
		}
		d = &privacy_params[it->param];
		if (!policy_bad && preset == PRIVACY_NONE) {
			privacy_problem(pp, "%s is set but %s is not (percentile or svt)", it->label,
					policy_label);
			continue;
		}
		if (!policy_bad && (int)d->preset != preset) {
			privacy_problem(pp, "%s applies to the %s preset, not %s", it->label,
					privacy_presets[d->preset].name, privacy_presets[preset].name);
			continue;
		}
		if (it->bad == 2) {
			privacy_problem(pp, "%s must be a number, not %s", it->label, it->text);
			continue;
		}
		if (it->bad) {
			privacy_problem(pp, "%s: '%s' is not a number", it->label, it->text);
			continue;
		}
		if (it->value < d->min || (d->min_open && it->value == d->min) ||
		    it->value > d->max) {
			char range[64];

			if (d->max == HUGE_VAL)
				snprintf(range, sizeof(range), "%s %g", d->min_open ? ">" : ">=",
					 d->min);
			else
				snprintf(range, sizeof(range), "%g%s to %g", d->min,
					 d->min_open ? " (excluded)" : "", d->max);
			privacy_problem(pp, "%s: %s is out of range (%s)", it->label, it->text,
					range);
			continue;
		}
		out->arg[it->param] = it->value;
	}
	if (pp->n > 0 || policy_bad) {
		memset(out->arg, 0, sizeof(out->arg));
		return;
	}
	out->preset = (enum privacy_preset)preset;
	/* defaults for what was not given; the other preset's parameters stay 0 */
	for (int k = 0; k < PRIVACY_NPARAMS; k++) {
		int given = 0;

		for (size_t i = 0; i < n; i++)
			given |= items[i].param == k;
		if ((int)privacy_params[k].preset == preset && !given)
			out->arg[k] = privacy_params[k].def;
	}
}

/* privacy_resolve - the policy in force, or every reason it cannot be */
int privacy_resolve(const struct privacy_settings *s, const json_t *table,
		    const char *table_source, struct privacy_policy *out, char *err, size_t errlen)
{
	struct privacy_problems pp = {err, errlen, 0, 0};
	struct privacy_item items[PRIVACY_MAX_SETTINGS];
	size_t n;

	if (err != NULL && errlen > 0)
		err[0] = 0;
	if (table != NULL && json_is_object(table)) {
		if (json_object_size(table) > PRIVACY_MAX_SETTINGS) {
			memset(out, 0, sizeof(*out));
			privacy_problem(&pp, "%s [fl_privacy]: more than %d keys",
					table_source ? table_source : "policy", PRIVACY_MAX_SETTINGS);
			return pp.n;
		}
		/* jansson iterates only non-const objects: walk a copy */
		json_t *copy = json_deep_copy(table);

		if (copy == NULL) {
			memset(out, 0, sizeof(*out));
			privacy_problem(&pp, "out of memory");
			return pp.n;
		}
		n = privacy_items_table(copy, table_source ? table_source : "policy", items,
					PRIVACY_MAX_SETTINGS);
		privacy_check(items, n, 1, out, &pp);
		json_decref(copy);
	} else {
		n = privacy_items_env(s, items);
		privacy_check(items, n, 0, out, &pp);
	}
	return pp.n;
}

/* privacy_number_json - an integer when the value is one (10, not 10.0) */
static json_t *privacy_number_json(double v)
{
	if (v == floor(v) && fabs(v) < 1e15)
		return json_integer((json_int_t)v);
	return json_real(v);
}

/* privacy_render - local/privacy.json; NULL for none */
json_t *privacy_render(const struct privacy_policy *p)
{
	json_t *args, *doc;

	if (p->preset == PRIVACY_NONE)
		return NULL;
	args = json_object();
	for (int k = 0; k < PRIVACY_NPARAMS && args; k++)
		if (privacy_params[k].preset == p->preset)
			json_object_set_new(args, privacy_params[k].arg,
					    privacy_number_json(p->arg[k]));
	/*
	 * One scope for every job, and the default: a job that names no scope, or
	 * names one the site does not have, still gets the filter (NVFLARE refuses
	 * a job whose scope is unknown), so jobs cannot opt out.
	 */
	doc = json_pack("{s:[{s:s, s:{s:s}, s:[], s:[{s:s, s:o}]}], s:s}", "scopes", "name",
			PRIVACY_SCOPE, "properties", "managed_by", "flip-node",
			"task_data_filters", "task_result_filters", "path",
			privacy_presets[p->preset].path, "args", args, "default_scope",
			PRIVACY_SCOPE);
	return doc;
}

/* privacy_describe_args - "name (k=v, k=v)" */
static void privacy_describe_args(const char *name, const char *const *keys,
				  const double *vals, size_t n, char *buf, size_t len)
{
	size_t used;
	int k = snprintf(buf, len, "%s (", name);

	if (k < 0 || (size_t)k >= len)
		return;
	used = (size_t)k;
	for (size_t i = 0; i < n; i++) {
		k = snprintf(buf + used, len - used, "%s%s=%g", i ? ", " : "", keys[i], vals[i]);
		if (k < 0 || (size_t)k >= len - used)
			return;
		used += (size_t)k;
	}
	snprintf(buf + used, len - used, ")");
}

/* privacy_describe - one line for status */
void privacy_describe(const struct privacy_policy *p, char *buf, size_t len)
{
	const char *keys[PRIVACY_NPARAMS];
	double vals[PRIVACY_NPARAMS];
	size_t n = 0;

	if (p->preset == PRIVACY_NONE) {
		snprintf(buf, len, "none");
		return;
	}
	for (int k = 0; k < PRIVACY_NPARAMS; k++)
		if (privacy_params[k].preset == p->preset) {
			keys[n] = privacy_params[k].arg;
			vals[n++] = p->arg[k];
		}
	privacy_describe_args(privacy_presets[p->preset].name, keys, vals, n, buf, len);
}

/* privacy_describe_file - the same line for a privacy.json read back */
int privacy_describe_file(const json_t *doc, char *buf, size_t len)
{
	const char *keys[PRIVACY_MAX_SETTINGS], *path, *key, *dflt;
	double vals[PRIVACY_MAX_SETTINGS];
	json_t *scopes, *scope = NULL, *filters, *f, *args, *v;
	size_t n = 0, i;

	snprintf(buf, len, "unrecognised");
	dflt = json_string_value(json_object_get(doc, "default_scope"));
	scopes = json_object_get(doc, "scopes");
	if (dflt == NULL || !json_is_array(scopes))
		return -1;
	json_array_foreach(scopes, i, v)
		if (json_is_string(json_object_get(v, "name")) &&
		    strcmp(json_string_value(json_object_get(v, "name")), dflt) == 0)
			scope = v;
	filters = json_object_get(scope, "task_result_filters");
	if (!json_is_array(filters) || json_array_size(filters) != 1)
		return -1;
	f = json_array_get(filters, 0);
	path = json_string_value(json_object_get(f, "path"));
	args = json_object_get(f, "args");
	if (path == NULL || (args != NULL && !json_is_object(args)))
		return -1;
	json_object_foreach(args, key, v) {
		if (!json_is_number(v) || n >= PRIVACY_MAX_SETTINGS)
			return -1;
		keys[n] = key;
		vals[n++] = json_number_value(v);
	}
	for (int p = PRIVACY_PERCENTILE; p <= PRIVACY_SVT; p++)
		if (strcmp(path, privacy_presets[p].path) == 0) {
			privacy_describe_args(privacy_presets[p].name, keys, vals, n, buf, len);
			return 0;
		}
	return -1;
}
