/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_result - the result bodies the hub takes, byte for byte as FLIP's Python
 * writes them: result_success (text or null), result_failure (the inner error
 * object as json.dumps text: ", " and ": " separators, status_code left out when
 * 0, non-ASCII \u-escaped as ensure_ascii does, in lower-case hex),
 * result_cohort_failure's shape with a UTC date; and retry_backoff: 2 s doubling
 * per attempt, capped at 600 s, scaled into [0.5, 1.0] by the jitter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/retry.h"
#include "lib/result.h"

/* dumps - v as text with Python's default separators; the caller frees */
static char *dumps(json_t *v)
{
	char *t = json_dumps(v, JSON_PRESERVE_ORDER);

	assert_non_null(t);
	return t;
}

/* inner_text - the "result" string of a failure body */
static const char *inner_text(json_t *body)
{
	json_t *r = json_object_get(body, "result");

	assert_non_null(r);
	assert_true(json_is_string(r));
	return json_string_value(r);
}

static void test_success_null(void **state)
{
	json_t *r = result_success(NULL);
	char *t;

	(void)state;
	assert_non_null(r);
	t = dumps(r);
	assert_string_equal(t, "{\"success\": true, \"result\": null}");
	free(t);
	json_decref(r);
}

static void test_success_text(void **state)
{
	json_t *r = result_success("{\"a\": [1, 2]}");

	(void)state;
	assert_non_null(r);
	assert_true(json_is_true(json_object_get(r, "success")));
	/* the text is carried as a string, not parsed (the hub's double encoding) */
	assert_string_equal(inner_text(r), "{\"a\": [1, 2]}");
	assert_int_equal(json_object_size(r), 2);
	json_decref(r);
}

static void test_failure_404(void **state)
{
	json_t *r = result_failure("404: Project not found", 404);
	char *t;

	(void)state;
	assert_non_null(r);
	assert_true(json_is_false(json_object_get(r, "success")));
	assert_int_equal(json_object_size(r), 2);
	assert_string_equal(inner_text(r), "{\"error\": \"404: Project not found\", \"status_code\": 404}");
	t = dumps(r);
	assert_string_equal(t, "{\"success\": false, \"result\": \"{\\\"error\\\": \\\"404: Project not "
			       "found\\\", \\\"status_code\\\": 404}\"}");
	free(t);
	json_decref(r);
}

static void test_failure_status_zero(void **state)
{
	json_t *r = result_failure("something broke", 0);

	(void)state;
	assert_non_null(r);
	assert_string_equal(inner_text(r), "{\"error\": \"something broke\"}");
	json_decref(r);
}

static void test_failure_503(void **state)
{
	json_t *r = result_failure("503: OMOP database unavailable", 503);

	(void)state;
	assert_non_null(r);
	assert_string_equal(inner_text(r),
			    "{\"error\": \"503: OMOP database unavailable\", \"status_code\": 503}");
	json_decref(r);
}

static void test_failure_escapes(void **state)
{
	json_t *r = result_failure("bad \"quote\" \\ tab\t/slash", 400);

	(void)state;
	assert_non_null(r);
	/* Python: json.dumps({"error": 'bad "quote" \\ tab\t/slash', "status_code": 400}) */
	assert_string_equal(inner_text(r),
			    "{\"error\": \"bad \\\"quote\\\" \\\\ tab\\t/slash\", \"status_code\": 400}");
	json_decref(r);
}

static void test_failure_non_ascii(void **state)
{
	/* "café – 😀": U+00E9, U+2013, U+1F600 (a surrogate pair) */
	json_t *r = result_failure("caf\xc3\xa9 \xe2\x80\x93 \xf0\x9f\x98\x80", 500);
	const char *t;

	(void)state;
	assert_non_null(r);
	t = inner_text(r);
	for (const char *p = t; *p; p++)
		assert_true((unsigned char)*p < 0x80);
	/* python3 -c 'import json; print(json.dumps({"error": "café – 😀", "status_code": 500}))' */
	assert_string_equal(t, "{\"error\": \"caf\\u00e9 \\u2013 \\ud83d\\ude00\", \"status_code\": 500}");
	json_decref(r);
}

static void test_failure_control_char(void **state)
{
	json_t *r = result_failure("a\x1f" "b", 500);

	(void)state;
	assert_non_null(r);
	/* Python writes control characters as \u001f (lower-case hex) */
	assert_string_equal(inner_text(r), "{\"error\": \"a\\u001fb\", \"status_code\": 500}");
	json_decref(r);
}

static void test_failure_invalid_utf8(void **state)
{
	/*
	 * A message in Latin-1 (a database or library error text): the contract says
	 * NULL only on allocation failure, so a failure body must still come back.
	 */
	json_t *r = result_failure("caf\xe9", 500);

	(void)state;
	assert_non_null(r);
	json_decref(r);
}

/* utc_today - today's UTC date as the test computes it */
static void utc_today(char out[11])
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(out, 11, "%Y-%m-%d", &tm);
}

static void assert_date_format(const char *d)
{
	assert_int_equal(strlen(d), 10);
	for (int i = 0; i < 10; i++) {
		if (i == 4 || i == 7)
			assert_int_equal(d[i], '-');
		else
			assert_true(d[i] >= '0' && d[i] <= '9');
	}
}

static void test_cohort_failure(void **state)
{
	char before[11], after[11];
	json_t *r, *v;
	const char *created;
	char *oldtz = getenv("TZ") ? strdup(getenv("TZ")) : NULL;

	(void)state;
	/* a zone 14 hours ahead: the local date differs from UTC for 14 hours a day */
	setenv("TZ", "XXX-14", 1);
	tzset();
	utc_today(before);
	r = result_cohort_failure("q-1", "trust-7", "bad query");
	utc_today(after);
	if (oldtz) {
		setenv("TZ", oldtz, 1);
		free(oldtz);
	} else {
		unsetenv("TZ");
	}
	tzset();

	assert_non_null(r);
	assert_int_equal(json_object_size(r), 6);
	assert_string_equal(json_string_value(json_object_get(r, "query_id")), "q-1");
	assert_string_equal(json_string_value(json_object_get(r, "trust_id")), "trust-7");
	assert_string_equal(json_string_value(json_object_get(r, "error")), "bad query");
	v = json_object_get(r, "record_count");
	assert_true(json_is_integer(v));
	assert_int_equal(json_integer_value(v), 0);
	v = json_object_get(r, "data");
	assert_true(json_is_array(v));
	assert_int_equal(json_array_size(v), 0);
	v = json_object_get(r, "created");
	assert_true(json_is_string(v));
	created = json_string_value(v);
	assert_date_format(created);
	assert_true(strcmp(created, before) == 0 || strcmp(created, after) == 0);
	json_decref(r);
}

static void test_utc_date(void **state)
{
	char before[11], got[11], after[11];

	(void)state;
	utc_today(before);
	result_utc_date(got);
	utc_today(after);
	assert_date_format(got);
	assert_true(strcmp(got, before) == 0 || strcmp(got, after) == 0);
}

static void assert_near(double got, double want)
{
	double d = got - want;

	if (d < -1e-9 || d > 1e-9)
		fail_msg("got %.12f, want %.12f", got, want);
}

static void test_backoff_first(void **state)
{
	(void)state;
	assert_near(retry_backoff(1, 0.0), 1.0);
	assert_true(retry_backoff(1, 0.999999999) < 2.0);
	assert_true(retry_backoff(1, 0.999999999) > 1.99);
	assert_near(retry_backoff(1, 0.5), 1.5);
}

static void test_backoff_growth_and_cap(void **state)
{
	double base = 2.0;

	(void)state;
	for (int a = 1; a <= 40; a++) {
		double want = base > 600.0 ? 600.0 : base;

		assert_near(retry_backoff(a, 0.0), want * 0.5);
		assert_true(retry_backoff(a, 0.999999999) < want);
		if (a > 1 && want < 600.0)
			assert_near(retry_backoff(a, 0.0), 2.0 * retry_backoff(a - 1, 0.0));
		base *= 2.0;
	}
	assert_near(retry_backoff(2, 0.0), 2.0);
	assert_near(retry_backoff(3, 0.0), 4.0);
	assert_near(retry_backoff(9, 0.0), 256.0);	/* 512 undithered: not capped */
	assert_near(retry_backoff(9, 0.999999999), 512.0 * (0.5 + 0.5 * 0.999999999));
	assert_near(retry_backoff(10, 0.0), 300.0);	/* 1024 undithered, capped to 600 */
	assert_near(retry_backoff(10, 0.999999999), 600.0 * (0.5 + 0.5 * 0.999999999));
	assert_true(retry_backoff(INT_MAX, 0.999999999) <= 600.0);
	assert_near(retry_backoff(INT_MAX, 0.0), 300.0);
}

static void test_backoff_jitter_range(void **state)
{
	static const double u[] = {0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999999999};

	(void)state;
	for (int a = 1; a <= 30; a++) {
		double undithered = 2.0;

		for (int i = 1; i < a; i++)
			undithered *= 2.0;
		if (undithered > 600.0)
			undithered = 600.0;
		for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
			double d = retry_backoff(a, u[i]);

			if (d < 0.5 * undithered - 1e-9 || d > undithered + 1e-9)
				fail_msg("retry_backoff(%d, %g) = %g outside [%g, %g]", a, u[i], d,
					 0.5 * undithered, undithered);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_success_null),
		cmocka_unit_test(test_success_text),
		cmocka_unit_test(test_failure_404),
		cmocka_unit_test(test_failure_status_zero),
		cmocka_unit_test(test_failure_503),
		cmocka_unit_test(test_failure_escapes),
		cmocka_unit_test(test_failure_non_ascii),
		cmocka_unit_test(test_failure_control_char),
		cmocka_unit_test(test_failure_invalid_utf8),
		cmocka_unit_test(test_cohort_failure),
		cmocka_unit_test(test_utc_date),
		cmocka_unit_test(test_backoff_first),
		cmocka_unit_test(test_backoff_growth_and_cap),
		cmocka_unit_test(test_backoff_jitter_range),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
