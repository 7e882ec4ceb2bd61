/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_privacy - the site privacy policy: what renders and what is refused.
 *
 * Rendering: percentile and svt with their NVFLARE defaults and with given values
 * (local/privacy.json: one scope site_default, also the default, whose
 * task_result_filters hold the one filter), integers kept integers, nothing
 * rendered when nothing is set (the caller removes a stale file), empty values
 * counted as unset. Refusals, each naming the setting: an unknown preset, an
 * unknown FL_SITE_PRIVACY_* name, a value that is not a plain decimal number (hex,
 * nan, inf, blanks), out of range (percentile 101 and -1, gamma 0, svt fraction 0
 * and 1.5, negative tau), a parameter of the other preset, a parameter with no
 * preset, and several problems at once (one line each). The governance policy's
 * [fl_privacy] table: it replaces the environment as a whole, and is checked by
 * the same rules (wrong types, unknown keys). privacy_describe_file() reads back
 * what privacy_render() wrote and refuses what it does not understand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bin/flip-fl/privacy.h"

/* the end of resolve()'s settings: a typed null, as variadic functions need */
#define END ((const char *)NULL)

/* resolve - settings given as NAME, VALUE, ..., NULL */
static int resolve(struct privacy_policy *p, char *err, size_t errlen, ...)
{
	struct privacy_settings s;
	const char *name, *value;
	va_list ap;

	privacy_settings_init(&s);
	va_start(ap, errlen);
	while ((name = va_arg(ap, const char *)) != NULL) {
		value = va_arg(ap, const char *);
		assert_int_equal(privacy_settings_add(&s, name, value), 0);
	}
	va_end(ap);
	return privacy_resolve(&s, NULL, NULL, p, err, errlen);
}

/* filter - the one task_result_filter of a rendered document */
static json_t *filter(json_t *doc)
{
	json_t *scopes = json_object_get(doc, "scopes"), *scope, *filters;

	assert_true(json_is_array(scopes));
	assert_int_equal(json_array_size(scopes), 1);
	scope = json_array_get(scopes, 0);
	assert_string_equal(json_string_value(json_object_get(scope, "name")), "site_default");
	assert_string_equal(json_string_value(json_object_get(doc, "default_scope")),
			    "site_default");
	assert_int_equal(json_array_size(json_object_get(scope, "task_data_filters")), 0);
	filters = json_object_get(scope, "task_result_filters");
	assert_int_equal(json_array_size(filters), 1);
	return json_array_get(filters, 0);
}

static void test_percentile_defaults(void **state)
{
	struct privacy_policy p;
	char err[512], desc[128];
	json_t *doc, *f, *args;

	(void)state;
	assert_int_equal(resolve(&p, err, sizeof(err), "FL_SITE_PRIVACY_POLICY", "percentile",
				 END),
			 0);
	assert_int_equal(p.preset, PRIVACY_PERCENTILE);
	doc = privacy_render(&p);
	assert_non_null(doc);
	f = filter(doc);
	assert_string_equal(json_string_value(json_object_get(f, "path")),
			    "nvflare.app_common.filters.percentile_privacy.PercentilePrivacy");
	args = json_object_get(f, "args");
	assert_int_equal(json_object_size(args), 2);
	assert_true(json_is_integer(json_object_get(args, "percentile")));
	assert_int_equal(json_integer_value(json_object_get(args, "percentile")), 10);
	assert_true(fabs(json_number_value(json_object_get(args, "gamma")) - 0.01) < 1e-12);
	privacy_describe(&p, desc, sizeof(desc));
	assert_string_equal(desc, "percentile (percentile=10, gamma=0.01)");
	json_decref(doc);
}

static void test_percentile_values(void **state)
{
	struct privacy_policy p;
	char err[512];
	json_t *doc, *args;

	(void)state;
	assert_int_equal(resolve(&p, err, sizeof(err), "FL_SITE_PRIVACY_POLICY", "percentile",
				 "FL_SITE_PRIVACY_PERCENTILE", "37.5", "FL_SITE_PRIVACY_GAMMA",
				 "2e-3", END),
			 0);
	doc = privacy_render(&p);
	args = json_object_get(filter(doc), "args");
	assert_true(json_is_real(json_object_get(args, "percentile")));
	assert_true(fabs(json_real_value(json_object_get(args, "percentile")) - 37.5) < 1e-12);
	assert_true(fabs(json_number_value(json_object_get(args, "gamma")) - 0.002) < 1e-12);
	json_decref(doc);

	/* the bounds themselves are accepted */
	assert_int_equal(resolve(&p, err, sizeof(err), "FL_SITE_PRIVACY_POLICY", "percentile",
				 "FL_SITE_PRIVACY_PERCENTILE", "0", END),
			 0);
	assert_int_equal(resolve(&p, err, sizeof(err), "FL_SITE_PRIVACY_POLICY", "percentile",
				 "FL_SITE_PRIVACY_PERCENTILE", "100", END),
			 0);
}

static void test_svt(void **state)
{
	struct privacy_policy p;
	char err[512], desc[160];
	json_t *doc, *f, *args;

	(void)state;
	assert_int_equal(resolve(&p, err, sizeof(err), "FL_SITE_PRIVACY_POLICY", "svt",
				 "FL_SITE_PRIVACY_SVT_EPSILON", "0.5", "FL_SITE_PRIVACY_SVT_TAU", "0",
				 END),
			 0);
	assert_int_equal(p.preset, PRIVACY_SVT);
	doc = privacy_render(&p);
	f = filter(doc);
	assert_string_equal(json_string_value(json_object_get(f, "path")),
			    "nvflare.app_common.filters.svt_privacy.SVTPrivacy");
	args = json_object_get(f, "args");
	assert_int_equal(json_object_size(args), 5);
	assert_true(fabs(json_number_value(json_object_get(args, "fraction")) - 0.1) < 1e-12);
	assert_true(fabs(json_number_value(json_object_get(args, "epsilon")) - 0.5) < 1e-12);
	assert_true(fabs(json_number_value(json_object_get(args, "noise_var")) - 0.1) < 1e-12);
	assert_true(fabs(json_number_value(json_object_get(args, "gamma")) - 1e-5) < 1e-15);
	assert_int_equal(json_number_value(json_object_get(args, "tau")), 0);
	assert_null(json_object_get(args, "percentile"));
	privacy_describe(&p, desc, sizeof(desc));
	assert_non_null(strstr(desc, "svt (fraction=0.1, epsilon=0.5"));
	json_decref(doc);
}

static void test_nothing_set(void **state)
{
	struct privacy_policy p;
	char err[512], desc[32];

	(void)state;
	assert_int_equal(resolve(&p, err, sizeof(err), END), 0);
	assert_int_equal(p.preset, PRIVACY_NONE);
	assert_null(privacy_render(&p));
	privacy_describe(&p, desc, sizeof(desc));
	assert_string_equal(desc, "none");
	/* empty values are unset, in every key */
	assert_int_equal(resolve(&p, err, sizeof(err), "FL_SITE_PRIVACY_POLICY", "",
				 "FL_SITE_PRIVACY_GAMMA", "", END),
			 0);
	assert_int_equal(p.preset, PRIVACY_NONE);
}

/* refused - one problem whose line holds each of the needles */
static void refused(int rc, const char *err, const char *needle1, const char *needle2)
{
	assert_int_equal(rc, 1);
	assert_null(strchr(err, '\n'));
	assert_non_null(strstr(err, needle1));
	if (needle2 != NULL && strstr(err, needle2) == NULL)
		fail_msg("'%s' not in '%s'", needle2, err);
}

static void test_refusals(void **state)
{
	struct privacy_policy p;
	char err[512];

	(void)state;
	refused(resolve(&p, err, sizeof(err), "FL_SITE_PRIVACY_POLICY", "gaussian", END), err,
		"FL_SITE_PRIVACY_POLICY", "gaussian");
	refused(resolve(&p, err, sizeof(err), "FL_SITE_PRIVACY_POLICY", "Percentile", END), err,
		"unknown privacy preset", NULL);
	refused(resolve(&p, err, sizeof(err), "FL_SITE_PRIVACY_POLICY", "percentile",
			"FL_SITE_PRIVACY_PERCENTILE", "101", END),
		err, "FL_SITE_PRIVACY_PERCENTILE", "out of range");
	refused(resolve(&p, err, sizeof(err), "FL_SITE_PRIVACY_POLICY", "percentile",
			"FL_SITE_PRIVACY_PERCENTILE", "-1", END),
		err, "FL_SITE_PRIVACY_PERCENTILE", "out of range");
	refused(resolve(&p, err, sizeof(err), "FL_SITE_PRIVACY_POLICY", "percentile",
			"FL_SITE_PRIVACY_GAMMA", "0", END),
		err, "FL_SITE_PRIVACY_GAMMA", "out of range");
	refused(resolve(&p, err, sizeof(err), "FL_SITE_PRIVACY_POLICY", "svt",
			"FL_SITE_PRIVACY_SVT_FRACTION", "0", END),
		err, "FL_SITE_PRIVACY_SVT_FRACTION", "out of range");
	refused(resolve(&p, err, sizeof(err), "FL_SITE_PRIVACY_POLICY", "svt",
			"FL_SITE_PRIVACY_SVT_FRACTION", "1.5", END),
		err, "FL_SITE_PRIVACY_SVT_FRACTION", "out of range");
	refused(resolve(&p, err, sizeof(err), "FL_SITE_PRIVACY_POLICY", "svt",
			"FL_SITE_PRIVACY_SVT_TAU", "-0.5", END),
		err, "FL_SITE_PRIVACY_SVT_TAU", "out of range");
	/* only plain decimal numbers */
	refused(resolve(&p, err, sizeof(err), "FL_SITE_PRIVACY_POLICY", "percentile",
			"FL_SITE_PRIVACY_PERCENTILE", "0x10", END),
		err, "FL_SITE_PRIVACY_PERCENTILE", "not a number");
	refused(resolve(&p, err, sizeof(err), "FL_SITE_PRIVACY_POLICY", "percentile",
			"FL_SITE_PRIVACY_GAMMA", "nan", END),
		err, "FL_SITE_PRIVACY_GAMMA", "not a number");
	refused(resolve(&p, err, sizeof(err), "FL_SITE_PRIVACY_POLICY", "percentile",
			"FL_SITE_PRIVACY_GAMMA", "inf", END),
		err, "FL_SITE_PRIVACY_GAMMA", "not a number");
	refused(resolve(&p, err, sizeof(err), "FL_SITE_PRIVACY_POLICY", "percentile",
			"FL_SITE_PRIVACY_PERCENTILE", " 10", END),
		err, "FL_SITE_PRIVACY_PERCENTILE", "not a number");
	refused(resolve(&p, err, sizeof(err), "FL_SITE_PRIVACY_POLICY", "percentile",
			"FL_SITE_PRIVACY_GAMMA", "1e999", END),
		err, "FL_SITE_PRIVACY_GAMMA", "not a number");
	/* the wrong preset, no preset, an unknown name */
	refused(resolve(&p, err, sizeof(err), "FL_SITE_PRIVACY_POLICY", "svt",
			"FL_SITE_PRIVACY_PERCENTILE", "20", END),
		err, "FL_SITE_PRIVACY_PERCENTILE", "applies to the percentile preset, not svt");
	refused(resolve(&p, err, sizeof(err), "FL_SITE_PRIVACY_POLICY", "percentile",
			"FL_SITE_PRIVACY_SVT_EPSILON", "1", END),
		err, "FL_SITE_PRIVACY_SVT_EPSILON", "applies to the svt preset");
	refused(resolve(&p, err, sizeof(err), "FL_SITE_PRIVACY_GAMMA", "0.5", END), err,
		"FL_SITE_PRIVACY_GAMMA is set but FL_SITE_PRIVACY_POLICY is not", NULL);
	refused(resolve(&p, err, sizeof(err), "FL_SITE_PRIVACY_POLICY", "percentile",
			"FL_SITE_PRIVACY_PERCENTIL", "10", END),
		err, "FL_SITE_PRIVACY_PERCENTIL", "unknown privacy setting");
	/* a refusal renders nothing */
	assert_int_equal(p.preset, PRIVACY_NONE);
	assert_null(privacy_render(&p));
}

static void test_several_problems(void **state)
{
	struct privacy_policy p;
	char err[1024];
	int lines = 1;

	(void)state;
	assert_int_equal(resolve(&p, err, sizeof(err), "FL_SITE_PRIVACY_POLICY", "percentile",
				 "FL_SITE_PRIVACY_PERCENTILE", "200", "FL_SITE_PRIVACY_SVT_TAU", "1",
				 "FL_SITE_PRIVACY_X", "1", END),
			 3);
	for (const char *c = err; *c; c++)
		lines += *c == '\n';
	assert_int_equal(lines, 3);
	assert_non_null(strstr(err, "FL_SITE_PRIVACY_PERCENTILE"));
	assert_non_null(strstr(err, "FL_SITE_PRIVACY_SVT_TAU"));
	assert_non_null(strstr(err, "FL_SITE_PRIVACY_X"));
	/* a bad preset does not hide the bad values */
	assert_int_equal(resolve(&p, err, sizeof(err), "FL_SITE_PRIVACY_POLICY", "nope",
				 "FL_SITE_PRIVACY_GAMMA", "abc", END),
			 2);
}

static void test_table_overrides(void **state)
{
	struct privacy_policy p;
	struct privacy_settings s;
	char err[512];
	json_t *table, *doc, *args;

	(void)state;
	/* the environment's (invalid) settings do not matter once the policy has a table */
	privacy_settings_init(&s);
	privacy_settings_add(&s, "FL_SITE_PRIVACY_POLICY", "nonsense");
	table = json_pack("{s:s, s:f, s:i}", "policy", "svt", "svt_epsilon", 0.25, "svt_tau", 0);
	assert_int_equal(privacy_resolve(&s, table, "/etc/flip/policy.toml", &p, err, sizeof(err)),
			 0);
	assert_int_equal(p.preset, PRIVACY_SVT);
	assert_true(p.from_table);
	doc = privacy_render(&p);
	args = json_object_get(filter(doc), "args");
	assert_true(fabs(json_number_value(json_object_get(args, "epsilon")) - 0.25) < 1e-12);
	json_decref(doc);
	json_decref(table);

	/* and it is checked by the same rules, naming the file and the key */
	table = json_pack("{s:s, s:s}", "policy", "percentile", "percentile", "10");
	refused(privacy_resolve(&s, table, "/etc/flip/policy.toml", &p, err, sizeof(err)), err,
		"/etc/flip/policy.toml [fl_privacy] percentile", "must be a number, not a string");
	json_decref(table);
	table = json_pack("{s:i}", "policy", 1);
	refused(privacy_resolve(&s, table, "/etc/flip/policy.toml", &p, err, sizeof(err)), err,
		"[fl_privacy] policy", "must be a string");
	json_decref(table);
	table = json_pack("{s:s, s:i}", "policy", "percentile", "FL_SITE_PRIVACY_GAMMA", 1);
	refused(privacy_resolve(&s, table, "/etc/flip/policy.toml", &p, err, sizeof(err)), err,
		"[fl_privacy] FL_SITE_PRIVACY_GAMMA", "unknown privacy setting");
	json_decref(table);
	table = json_pack("{s:i}", "gamma", 1);
	refused(privacy_resolve(&s, table, "/etc/flip/policy.toml", &p, err, sizeof(err)), err,
		"[fl_privacy] gamma is set but policy is not", NULL);
	json_decref(table);
}

static void test_describe_file(void **state)
{
	struct privacy_policy p;
	char err[256], desc[160];
	json_t *doc;

	(void)state;
	assert_int_equal(resolve(&p, err, sizeof(err), "FL_SITE_PRIVACY_POLICY", "percentile",
				 "FL_SITE_PRIVACY_PERCENTILE", "25", END),
			 0);
	doc = privacy_render(&p);
	assert_int_equal(privacy_describe_file(doc, desc, sizeof(desc)), 0);
	assert_string_equal(desc, "percentile (percentile=25, gamma=0.01)");
	json_decref(doc);

	doc = json_pack("{s:[], s:s}", "scopes", "default_scope", "public");
	assert_int_equal(privacy_describe_file(doc, desc, sizeof(desc)), -1);
	assert_string_equal(desc, "unrecognised");
	json_decref(doc);
	doc = json_pack("{s:[{s:s, s:[{s:s}]}], s:s}", "scopes", "name", "public",
			"task_result_filters", "path", "my.own.Filter", "default_scope", "public");
	assert_int_equal(privacy_describe_file(doc, desc, sizeof(desc)), -1);
	json_decref(doc);
}

static void test_settings_cap(void **state)
{
	struct privacy_settings s;

	(void)state;
	privacy_settings_init(&s);
	for (int i = 0; i < PRIVACY_MAX_SETTINGS; i++)
		assert_int_equal(privacy_settings_add(&s, "FL_SITE_PRIVACY_X", "1"), 0);
	assert_int_equal(privacy_settings_add(&s, "FL_SITE_PRIVACY_X", "1"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_percentile_defaults), cmocka_unit_test(test_percentile_values),
		cmocka_unit_test(test_svt),		    cmocka_unit_test(test_nothing_set),
		cmocka_unit_test(test_refusals),	    cmocka_unit_test(test_several_problems),
		cmocka_unit_test(test_table_overrides),	    cmocka_unit_test(test_describe_file),
		cmocka_unit_test(test_settings_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
