/* SPDX-License-Identifier: Apache-2.0 */
/*
 * privacy - the site privacy policy of the FL client: settings, refusals, privacy.json.
 *
 * SYNOPSIS
 *	#include "bin/flip-fl/privacy.h"
 *
 *	void privacy_settings_init(struct privacy_settings *s);
 *	int privacy_settings_add(struct privacy_settings *s, const char *name,
 *				 const char *value);
 *	int privacy_resolve(const struct privacy_settings *s, const json_t *table,
 *			    const char *table_source, struct privacy_policy *out,
 *			    char *err, size_t errlen);
 *	json_t *privacy_render(const struct privacy_policy *p);
 *	void privacy_describe(const struct privacy_policy *p, char *buf, size_t len);
 *	int privacy_describe_file(const json_t *doc, char *buf, size_t len);
 *
 * DESCRIPTION
 *	docs/design/fl.md: the site's privacy filter is chosen by FL_SITE_PRIVACY_POLICY
 *	(`percentile` or `svt`) and tuned by
 *	  percentile: FL_SITE_PRIVACY_PERCENTILE  0..100, default 10
 *	              FL_SITE_PRIVACY_GAMMA       > 0, default 0.01
 *	  svt:        FL_SITE_PRIVACY_SVT_FRACTION   (0, 1], default 0.1
 *	              FL_SITE_PRIVACY_SVT_EPSILON    > 0, default 0.1
 *	              FL_SITE_PRIVACY_SVT_NOISE_VAR  > 0, default 0.1
 *	              FL_SITE_PRIVACY_SVT_GAMMA      > 0, default 1e-5
 *	              FL_SITE_PRIVACY_SVT_TAU        >= 0, default 1e-6
 *	(NVFLARE's PercentilePrivacy and SVTPrivacy filters and their defaults).
 *	The governance policy's [fl_privacy] table, when present, replaces those
 *	settings as a whole (it is not merged key by key): its keys are the names
 *	above without the FL_SITE_PRIVACY_ prefix, in lower case (`policy`,
 *	`percentile`, `gamma`, `svt_fraction`, ...), its values TOML strings
 *	(policy) and numbers (the rest).
 *
 *	The caller collects the FL_SITE_PRIVACY_* settings (config.c keeps them
 *	in cfg.fl_privacy, the kit file's with the environment's over them: name and text
 *	value, an empty value being unset) with privacy_settings_add(), which keeps
 *	at most PRIVACY_MAX_SETTINGS and returns -1 past that. privacy_resolve()
 *	checks them (or table, when not NULL) and fills out: preset
 *	PRIVACY_NONE when nothing is set, else the preset and every parameter of it,
 *	defaults filled in. Refused, fail closed: an unknown preset, an unknown
 *	FL_SITE_PRIVACY_* name or table key, a value that is not a plain decimal
 *	number or is out of range, a parameter of the other preset, a parameter
 *	with no preset.
 *
 *	privacy_render() is local/privacy.json for NVFLARE: one scope site_default,
 *	also the default scope, whose task_result_filters apply the preset's filter
 *	to every job's results; NULL for PRIVACY_NONE (the caller then removes a stale
 *	file) or when out of memory (p->preset tells the two apart).
 *	privacy_describe() is a one-line summary ("percentile (percentile=10,
 *	gamma=0.01)", "none"); privacy_describe_file() the same for a privacy.json
 *	read back from disk, whoever wrote it.
 *
 * DIAGNOSTICS
 *	privacy_resolve() returns 0, or the number of problems with one line per
 *	problem in err (lines separated by '\n', each naming the setting, or the
 *	table's source and key, and what is wrong). privacy_describe_file()
 *	returns 0, or -1 when doc is not a privacy.json this module understands (buf
 *	then says "unrecognised"). Nothing is printed; nothing exits.
 */
#ifndef FLIP_PRIVACY_H
#define FLIP_PRIVACY_H

#include <stddef.h>
#include <jansson.h>

#define PRIVACY_PREFIX "FL_SITE_PRIVACY_"
#define PRIVACY_MAX_SETTINGS 32
#define PRIVACY_SCOPE "site_default"

enum privacy_preset { PRIVACY_NONE, PRIVACY_PERCENTILE, PRIVACY_SVT };

/* the parameters, in this order, of both presets */
enum privacy_param {
	PRIVACY_PERCENTILE_PCT,
	PRIVACY_PERCENTILE_GAMMA,
	PRIVACY_SVT_FRACTION,
	PRIVACY_SVT_EPSILON,
	PRIVACY_SVT_NOISE_VAR,
	PRIVACY_SVT_GAMMA,
	PRIVACY_SVT_TAU,
	PRIVACY_NPARAMS
};

struct privacy_setting {
	const char *name;	/* FL_SITE_PRIVACY_..., borrowed */
	const char *value;	/* text, borrowed */
};

struct privacy_settings {
	size_t n;
	struct privacy_setting v[PRIVACY_MAX_SETTINGS];
};

struct privacy_policy {
	enum privacy_preset preset;
	double arg[PRIVACY_NPARAMS];	/* the preset's parameters; others 0 */
	int from_table;			/* 1: the governance policy's [fl_privacy] */
};

void privacy_settings_init(struct privacy_settings *s);
int privacy_settings_add(struct privacy_settings *s, const char *name, const char *value);
int privacy_resolve(const struct privacy_settings *s, const json_t *table,
		    const char *table_source, struct privacy_policy *out, char *err,
		    size_t errlen);
json_t *privacy_render(const struct privacy_policy *p);
void privacy_describe(const struct privacy_policy *p, char *buf, size_t len);
int privacy_describe_file(const json_t *doc, char *buf, size_t len);

#endif
