/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_audit - the audit trail's hash chain: writing, verifying, tampering
 * (edit, deletion, truncation), rotation, concurrent writers and the line cap.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/audit.h"
#include "lib/log.h"

#define ZERO64 "0000000000000000000000000000000000000000000000000000000000000000"

static char dir[64];
static char logpath[96];

static int setup(void **state __attribute__((unused)))
{
	snprintf(dir, sizeof(dir), "/tmp/test_audit.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(logpath, sizeof(logpath), "%s/audit.log", dir);
	return 0;
}

static int teardown(void **state __attribute__((unused)))
{
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d != NULL && (e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			unlinkat(dirfd(d), e->d_name, 0);
	if (d != NULL)
		closedir(d);
	rmdir(dir);
	return 0;
}

/* write_events - n events numbered from first, through a fresh audit_open */
static void write_events(int first, int n)
{
	struct audit a;

	assert_int_equal(audit_open(&a, dir, "test"), 0);
	for (int i = first; i < first + n; i++)
		assert_int_equal(audit_event(&a, "task.finished", "6f1c2b3a-0000-4000-8000-0123456789ab",
					     "cohort_query", json_pack("{s:i, s:s}", "n", i, "outcome", "ok")),
				 0);
	audit_close(&a);
}

/* slurp - the whole file */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = 0;
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* spit - replace the whole file */
static void spit(const char *path, const char *buf, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	fclose(f);
}

/* line_start - where line n (1-based) begins */
static char *line_start(char *buf, int n)
{
	char *p = buf;

	for (int i = 1; i < n; i++) {
		p = strchr(p, '\n');
		assert_non_null(p);
		p++;
	}
	return p;
}

static void test_write_and_verify(void **state __attribute__((unused)))
{
	struct audit_verdict v;
	struct stat st;
	size_t len;
	char *buf;

	write_events(0, 100);
	assert_int_equal(audit_verify(logpath, &v), 0);
	assert_int_equal(v.lines, 100);
	assert_int_equal(v.bad_line, 0);
	assert_string_equal(v.first_prev, ZERO64);
	assert_int_equal(strlen(v.last_hash), 64);
	assert_int_equal(stat(logpath, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	/* the shape of a line */
	buf = slurp(logpath, &len);
	assert_memory_equal(buf, "{\"ts\":\"", 7);
	assert_true(buf[11] == '-' && buf[17] == 'T' && buf[26] == '.' && buf[30] == 'Z');
	assert_non_null(strstr(buf, "\"prog\":\"test\",\"pid\":"));
	assert_non_null(strstr(buf, "\"event\":\"task.finished\",\"task_id\":\"6f1c2b3a-"));
	assert_non_null(strstr(buf, "\"detail\":{\"n\":0,\"outcome\":\"ok\"},\"prev\":\"" ZERO64
				    "\",\"hash\":\""));
	/* the last line's hash is the verdict's */
	assert_non_null(strstr(line_start(buf, 100), v.last_hash));
	free(buf);
}

/* a batch chains like single events, between single events, with one write */
static void test_batch(void **state __attribute__((unused)))
{
	struct audit_verdict v;
	struct audit a;

	write_events(0, 3);
	assert_int_equal(audit_open(&a, dir, "test"), 0);
	assert_int_equal(audit_batch_begin(&a), 0);
	assert_int_equal(audit_batch_begin(&a), -1);	/* no nesting */
	for (int i = 0; i < 50; i++)
		assert_int_equal(audit_event(&a, "task.fetched", NULL, NULL,
					     json_pack("{s:i}", "seq", i)), 0);
	assert_int_equal(audit_batch_end(&a), 0);
	assert_int_equal(audit_batch_end(&a), -1);
	assert_int_equal(audit_event(&a, "after", NULL, NULL, NULL), 0);
	audit_close(&a);
	write_events(3, 2);
	assert_int_equal(audit_verify(logpath, &v), 0);
	assert_int_equal(v.lines, 3 + 50 + 1 + 2);
}

/* an audit closed inside a batch still writes what it collected */
static void test_batch_closed_early(void **state __attribute__((unused)))
{
	struct audit_verdict v;
	struct audit a;

	assert_int_equal(audit_open(&a, dir, "test"), 0);
	assert_int_equal(audit_batch_begin(&a), 0);
	assert_int_equal(audit_event(&a, "one", NULL, NULL, NULL), 0);
	audit_close(&a);
	assert_int_equal(audit_verify(logpath, &v), 0);
	assert_int_equal(v.lines, 1);
}

static void test_nulls(void **state __attribute__((unused)))
{
	struct audit a;
	struct audit_verdict v;
	size_t len;
	char *buf;

	assert_int_equal(audit_open(&a, dir, "flipctl"), 0);
	assert_int_equal(audit_event(&a, "operator.rerun", NULL, NULL, NULL), 0);
	assert_int_equal(audit_event(&a, NULL, NULL, NULL, json_object()), -1);
	assert_int_equal(audit_event(&a, "x", NULL, NULL, json_array()), -1);
	assert_int_equal(errno, EINVAL);
	audit_close(&a);
	buf = slurp(logpath, &len);
	assert_non_null(strstr(buf, "\"task_id\":null,\"task_type\":null,\"detail\":{},"));
	free(buf);
	assert_int_equal(audit_verify(logpath, &v), 0);
	assert_int_equal(v.lines, 1);

	assert_int_equal(audit_open(&a, "/nonexistent/dir", "x"), -1);
	assert_int_equal(audit_verify("/nonexistent/audit.log", &v), -1);
}

static void test_edit_one_byte(void **state __attribute__((unused)))
{
	struct audit_verdict v;
	size_t len;
	char *buf, *p;

	write_events(0, 100);
	buf = slurp(logpath, &len);
	p = strstr(line_start(buf, 50), "\"n\":49");
	assert_non_null(p);
	p[5] = '8';
	spit(logpath, buf, len);
	assert_int_equal(audit_verify(logpath, &v), 1);
	assert_int_equal(v.bad_line, 50);
	assert_string_equal(v.reason, "hash mismatch");
	assert_int_equal(v.lines, 50);

	/* a brace removed: not JSON */
	p[5] = '9';
	p = strstr(line_start(buf, 20), "{\"n\"");
	*p = ' ';
	spit(logpath, buf, len);
	assert_int_equal(audit_verify(logpath, &v), 1);
	assert_int_equal(v.bad_line, 20);
	assert_string_equal(v.reason, "not JSON");
	free(buf);
}

static void test_delete_line(void **state __attribute__((unused)))
{
	struct audit_verdict v;
	size_t len;
	char *buf, *a, *b;

	write_events(0, 100);
	buf = slurp(logpath, &len);
	a = line_start(buf, 30);
	b = line_start(buf, 31);
	memmove(a, b, len - (size_t)(b - buf));
	len -= (size_t)(b - a);
	spit(logpath, buf, len);
	assert_int_equal(audit_verify(logpath, &v), 1);
	assert_int_equal(v.bad_line, 30);
	assert_string_equal(v.reason, "prev does not match line 29");

	/* the first line removed: the chain holds, but its anchor is no longer zeros */
	free(buf);
	unlink(logpath);
	write_events(0, 100);
	buf = slurp(logpath, &len);
	b = line_start(buf, 2);
	spit(logpath, b, len - (size_t)(b - buf));
	assert_int_equal(audit_verify(logpath, &v), 0);
	assert_string_not_equal(v.first_prev, ZERO64);
	free(buf);
}

static void test_truncate_last_line(void **state __attribute__((unused)))
{
	struct audit_verdict v, after;
	struct stat st;

	write_events(0, 100);
	assert_int_equal(stat(logpath, &st), 0);
	assert_int_equal(truncate(logpath, st.st_size - 10), 0);
	assert_int_equal(audit_verify(logpath, &v), 1);
	assert_int_equal(v.bad_line, 100);
	assert_string_equal(v.reason, "truncated line");

	/* a writer after the damage keeps it visible and chains to the last whole line */
	write_events(100, 2);
	assert_int_equal(audit_verify(logpath, &after), 1);
	assert_int_equal(after.bad_line, 100);
	assert_string_equal(after.reason, "not JSON");
	assert_string_equal(after.last_hash, v.last_hash);
}

/* rotated_files - the archive names in dir, sorted */
static int rotated_files(char names[][64], int max)
{
	struct dirent **list;
	int n = scandir(dir, &list, NULL, alphasort), k = 0;

	assert_true(n >= 0);
	for (int i = 0; i < n; i++) {
		if (strncmp(list[i]->d_name, "audit.log.", 10) == 0 && k < max)
			snprintf(names[k++], 64, "%.63s", list[i]->d_name);
		free(list[i]);
	}
	free(list);
	return k;
}

static void test_rotate(void **state __attribute__((unused)))
{
	struct audit_verdict old, cur;
	char names[4][64], path[160], err[256];
	size_t len;
	char *buf;

	write_events(0, 10);
	assert_int_equal(audit_rotate(dir, err, sizeof(err)), 0);
	write_events(10, 5);
	assert_int_equal(rotated_files(names, 4), 1);
	snprintf(path, sizeof(path), "%s/%.63s", dir, names[0]);
	assert_int_equal(audit_verify(path, &old), 0);
	assert_int_equal(old.lines, 10);
	assert_string_equal(old.first_prev, ZERO64);
	assert_int_equal(audit_verify(logpath, &cur), 0);
	assert_int_equal(cur.lines, 6);
	assert_string_equal(cur.first_prev, old.last_hash);

	buf = slurp(logpath, &len);
	assert_non_null(strstr(buf, "\"event\":\"audit.rotated\""));
	assert_non_null(strstr(buf, "\"previous_file\":\""));
	assert_non_null(strstr(buf, names[0]));
	assert_true(strstr(buf, "audit.rotated") < strchr(buf, '\n'));
	free(buf);

	/* a second rotation in the same second gets its own name */
	assert_int_equal(audit_rotate(dir, err, sizeof(err)), 0);
	assert_int_equal(rotated_files(names, 4), 2);
}

static void test_rotate_nothing(void **state __attribute__((unused)))
{
	char names[2][64], err[256];

	assert_int_equal(audit_rotate(dir, err, sizeof(err)), 0);
	assert_int_equal(rotated_files(names, 2), 0);
	assert_int_equal(audit_rotate("/nonexistent/dir", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/dir"));
}

/* run_children - start n children running fn(i), wait for all to exit 0 */
static void run_children(int n, void (*fn)(int))
{
	pid_t pids[8];

	for (int i = 0; i < n; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			fn(i);
			_exit(0);
		}
	}
	for (int i = 0; i < n; i++) {
		int status;

		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
}

/* writer - 200 events from one process, failing the process on error */
static void writer(int i)
{
	struct audit a;

	if (audit_open(&a, dir, i == 0 ? "flip-poll" : "flip-exec") < 0)
		_exit(1);
	for (int k = 0; k < 200; k++)
		if (audit_event(&a, "task.started", NULL, NULL, json_pack("{s:i, s:i}", "w", i, "k", k)) < 0)
			_exit(1);
	audit_close(&a);
}

static void test_two_writers(void **state __attribute__((unused)))
{
	struct audit_verdict v;

	run_children(2, writer);
	assert_int_equal(audit_verify(logpath, &v), 0);
	assert_int_equal(v.lines, 400);
}

/* writer_or_rotator - two writers and one process rotating three times */
static void writer_or_rotator(int i)
{
	char err[256];

	if (i < 2) {
		writer(i);
		return;
	}
	for (int r = 0; r < 3; r++) {
		usleep(20000);
		if (audit_rotate(dir, err, sizeof(err)) < 0)
			_exit(1);
	}
}

static void test_writers_across_rotation(void **state __attribute__((unused)))
{
	struct audit_verdict v[8];
	char names[8][64], path[160], prev[65] = ZERO64;
	long events = 0;
	int n;

	run_children(3, writer_or_rotator);
	n = rotated_files(names, 7);
	assert_true(n >= 1);
	/* the chain runs through every archive in order, then audit.log */
	for (int i = 0; i <= n; i++) {
		if (i < n)
			snprintf(path, sizeof(path), "%s/%.63s", dir, names[i]);
		else
			snprintf(path, sizeof(path), "%s", logpath);
		assert_int_equal(audit_verify(path, &v[i]), 0);
		assert_string_equal(v[i].first_prev, prev);
		memcpy(prev, v[i].last_hash, 65);
		events += v[i].lines - (i > 0); /* each later file starts with audit.rotated */
	}
	assert_int_equal(events, 400);
}

static void test_big_detail(void **state __attribute__((unused)))
{
	struct audit a;
	struct audit_verdict v;
	size_t len;
	char *big = malloc(100 * 1024 + 1), *buf;

	assert_non_null(big);
	memset(big, 'x', 100 * 1024);
	big[100 * 1024] = 0;
	assert_int_equal(audit_open(&a, dir, "flip-serve"), 0);
	assert_int_equal(audit_event(&a, "serve.request", NULL, NULL, json_pack("{s:s}", "blob", big)), 0);
	assert_int_equal(audit_event(&a, "serve.request", NULL, NULL, json_pack("{s:i}", "rows", 3)), 0);
	audit_close(&a);
	free(big);
	buf = slurp(logpath, &len);
	assert_true(len < 2000);
	assert_non_null(strstr(buf, "\"detail\":{\"truncated\":true}"));
	assert_non_null(strstr(buf, "\"detail\":{\"rows\":3}"));
	free(buf);
	assert_int_equal(audit_verify(logpath, &v), 0);
	assert_int_equal(v.lines, 2);
}

static void test_long_line_refused_by_verify(void **state __attribute__((unused)))
{
	struct audit_verdict v;
	size_t n = 70 * 1024;
	char *buf = malloc(n + 1);

	assert_non_null(buf);
	memset(buf, 'x', n);
	buf[n - 1] = '\n';
	spit(logpath, buf, n);
	free(buf);
	assert_int_equal(audit_verify(logpath, &v), 1);
	assert_int_equal(v.bad_line, 1);
	assert_string_equal(v.reason, "line too long");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_write_and_verify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nulls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_edit_one_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncate_last_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotate_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_writers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writers_across_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_big_detail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_closed_early, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_line_refused_by_verify, setup, teardown),
	};

	log_init("test_audit", LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
