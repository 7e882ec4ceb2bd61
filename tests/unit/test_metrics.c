/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_metrics - the textfile metrics: each family once with its HELP and TYPE and
 * its samples together (whatever order a program adds them in), counters that add
 * to the previous file's value and survive runs that do not touch them, a kept
 * gauge that keeps its value, gauges that do not, another program's lines never
 * carried, names not in the list dropped, label values made safe, files mode 0640
 * whatever the umask, and no temporary file left behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/metrics.h"

struct fixture {
	char dir[64];
	struct node n;
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/flip-test-metrics-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->n.cfg.state_dir = f->dir;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static char *slurp(struct fixture *f, const char *prog)
{
	char path[128];
	FILE *fp;
	static char buf[16384];
	size_t n;

	snprintf(path, sizeof(path), "%s/metrics/%s.prom", f->dir, prog);
	fp = fopen(path, "r");
	assert_non_null(fp);
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = 0;
	fclose(fp);
	return buf;
}

static int count(const char *text, const char *needle)
{
	int n = 0;

	for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

static void run_once(struct fixture *f, double ok, double refused)
{
	struct metrics m;

	metrics_begin(&m, "flip-exec");
	metrics_count(&m, "tasks_total", "task_type=\"cohort_query\",outcome=\"success\"", ok);
	metrics_add(&m, "last_run_success", NULL, 1);
	if (refused)
		metrics_count(&m, "cohort_queries_refused_total", "reason=\"sql_guard\"", refused);
	metrics_count(&m, "tasks_total", "task_type=\"cohort_query\",outcome=\"failure\"", 0);
	metrics_add(&m, "no_such_series", NULL, 7);
	metrics_commit(&m, &f->n);
}

static void test_families_once_with_help_and_type(void **state)
{
	struct fixture *f = *state;
	char *text;

	run_once(f, 1, 0);
	text = slurp(f, "flip-exec");
	assert_int_equal(count(text, "# HELP flip_tasks_total "), 1);
	assert_int_equal(count(text, "# TYPE flip_tasks_total counter\n"), 1);
	assert_int_equal(count(text, "# TYPE flip_last_run_success gauge\n"), 1);
	/* both tasks_total samples right after their TYPE line, together */
	const char *t = strstr(text, "# TYPE flip_tasks_total counter\n");
	assert_non_null(t);
	t = strchr(t, '\n') + 1;
	assert_true(strncmp(t, "flip_tasks_total{", 17) == 0);
	t = strchr(t, '\n') + 1;
	assert_true(strncmp(t, "flip_tasks_total{", 17) == 0);
	assert_null(strstr(text, "no_such_series"));
	assert_non_null(strstr(text, "flip_last_run_success{prog=\"flip-exec\"} 1\n"));
}

static void test_counters_add_across_runs(void **state)
{
	struct fixture *f = *state;
	char *text;

	run_once(f, 2, 1);
	run_once(f, 3, 0);	/* sql_guard untouched: kept */
	run_once(f, 0, 2);
	text = slurp(f, "flip-exec");
	assert_non_null(strstr(text, "flip_tasks_total{prog=\"flip-exec\",task_type=\"cohort_query\","
				     "outcome=\"success\"} 5\n"));
	assert_non_null(strstr(text, "flip_tasks_total{prog=\"flip-exec\",task_type=\"cohort_query\","
				     "outcome=\"failure\"} 0\n"));
	assert_non_null(strstr(text, "flip_cohort_queries_refused_total{prog=\"flip-exec\","
				     "reason=\"sql_guard\"} 3\n"));
	assert_int_equal(count(text, "# TYPE flip_cohort_queries_refused_total counter"), 1);
}

static void test_kept_gauge_and_plain_gauge(void **state)
{
	struct fixture *f = *state;
	struct metrics m;
	char *text;

	metrics_begin(&m, "flip-poll");
	metrics_add(&m, "heartbeat_last_success_timestamp_seconds", NULL, 1000);
	metrics_add(&m, "poll_tasks_fetched", NULL, 4);
	metrics_commit(&m, &f->n);
	metrics_begin(&m, "flip-poll");	/* a failed heartbeat: neither is set */
	metrics_add(&m, "last_run_success", NULL, 0);
	metrics_commit(&m, &f->n);
	text = slurp(f, "flip-poll");
	assert_non_null(strstr(text, "flip_heartbeat_last_success_timestamp_seconds"
				     "{prog=\"flip-poll\"} 1000\n"));
	assert_null(strstr(text, "flip_poll_tasks_fetched"));
}

static void test_other_programs_lines_not_carried(void **state)
{
	struct fixture *f = *state;
	char path[128];
	FILE *fp;
	struct metrics m;

	snprintf(path, sizeof(path), "%s/metrics", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/metrics/flip-exec.prom", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("flip_tasks_total{prog=\"flip-report\",task_type=\"x\",outcome=\"success\"} 9\n"
	      "flip_tasks_total{prog=\"flip-exec\",task_type=\"y\",outcome=\"success\"} 4\n"
	      "flip_tasks_total{prog=\"flip-exec\" garbage\n"
	      "flip_exec_jobs{prog=\"flip-exec\",outcome=\"success\"} 8\n", fp);
	fclose(fp);
	metrics_begin(&m, "flip-exec");
	metrics_add(&m, "last_run_success", NULL, 1);
	metrics_commit(&m, &f->n);
	char *text = slurp(f, "flip-exec");
	assert_null(strstr(text, "flip-report"));
	assert_null(strstr(text, "garbage"));
	assert_null(strstr(text, "flip_exec_jobs"));	/* a gauge: this run's only */
	assert_non_null(strstr(text, "flip_tasks_total{prog=\"flip-exec\",task_type=\"y\","
				     "outcome=\"success\"} 4\n"));
}

static void test_label_value_safe(void **state)
{
	char buf[16];

	(void)state;
	assert_string_equal(metrics_label_value("a\"b}\nc d\\", buf, sizeof(buf)), "a_b__c_d_");
	assert_string_equal(metrics_label_value(NULL, buf, sizeof(buf)), "unknown");
	assert_string_equal(metrics_label_value("", buf, sizeof(buf)), "unknown");
	assert_string_equal(metrics_label_value("0123456789abcdefXYZ", buf, sizeof(buf)),
			    "0123456789abcde");
	assert_string_equal(metrics_label_value("3f2a-9c:x.y_z", buf, sizeof(buf)), "3f2a-9c:x.y_z");
}

static void test_mode_0640_whatever_the_umask(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	char path[128];
	mode_t old = umask(077);

	run_once(f, 1, 0);
	umask(old);
	snprintf(path, sizeof(path), "%s/metrics/flip-exec.prom", f->dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	/* nothing but the file in the directory */
	snprintf(path, sizeof(path), "%s/metrics", f->dir);
	DIR *d = opendir(path);
	int n = 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		if (e->d_name[0] != '.' || strncmp(e->d_name, ".flip", 5) == 0)
			n++;
	closedir(d);
	assert_int_equal(n, 1);
}

static void test_every_family_named_once(void **state)
{
	(void)state;
	assert_true(metrics_family_count() > 30);
	for (int i = 0; i < metrics_family_count(); i++) {
		const char *a = metrics_family_name(i);
		size_t len = strlen(a);
		assert_true(len > 0 && strspn(a, "abcdefghijklmnopqrstuvwxyz0123456789_") == len);
		for (int j = i + 1; j < metrics_family_count(); j++)
			assert_string_not_equal(a, metrics_family_name(j));
	}
	assert_null(metrics_family_name(metrics_family_count()));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_families_once_with_help_and_type, setup, teardown),
		cmocka_unit_test_setup_teardown(test_counters_add_across_runs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kept_gauge_and_plain_gauge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_programs_lines_not_carried, setup, teardown),
		cmocka_unit_test(test_label_value_safe),
		cmocka_unit_test_setup_teardown(test_mode_0640_whatever_the_umask, setup, teardown),
		cmocka_unit_test(test_every_family_named_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
