/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_err - the one outcome vocabulary and the one message formatter: err_set() and
 * err_vset() write a terminated, truncated message (or nothing, for no buffer),
 * return -1 and leave errno alone; err_exit_code() gives each kind the exit code
 * docs/design/ARCHITECTURE.md fixes; err_kind_name() the word for logs and metrics.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "lib/err.h"

/* vset - err_vset through a variadic wrapper, as every caller's own va_list gets there */
static int vset(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = err_vset(err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

static void test_set_formats(void **state)
{
	char err[64];

	(void)state;
	assert_int_equal(err_set(err, sizeof(err), "cannot open %s: %s", "x.json", "gone"), -1);
	assert_string_equal(err, "cannot open x.json: gone");
	assert_int_equal(vset(err, sizeof(err), "%d tasks, %s", 3, "spooled"), -1);
	assert_string_equal(err, "3 tasks, spooled");
}

static void test_set_truncates(void **state)
{
	char err[8];

	(void)state;
	memset(err, 'x', sizeof(err));
	assert_int_equal(err_set(err, sizeof(err), "%s", "0123456789"), -1);
	assert_string_equal(err, "0123456");	/* errlen - 1 bytes and the terminator */
	memset(err, 'x', sizeof(err));
	assert_int_equal(vset(err, 5, "abc%s", "defgh"), -1);
	assert_string_equal(err, "abcd");
	assert_int_equal(err[5], 'x');		/* nothing written past errlen */
	memset(err, 'x', sizeof(err));
	assert_int_equal(err_set(err, 1, "%s", "anything"), -1);
	assert_int_equal(err[0], 0);
	assert_int_equal(err[1], 'x');
}

static void test_set_no_buffer(void **state)
{
	char err[4] = "abc";

	(void)state;
	assert_int_equal(err_set(NULL, 0, "%s", "nowhere"), -1);
	assert_int_equal(err_set(NULL, 64, "%s", "nowhere"), -1);
	assert_int_equal(vset(NULL, 64, "%s", "nowhere"), -1);
	assert_int_equal(err_set(err, 0, "%s", "untouched"), -1);
	assert_string_equal(err, "abc");
	assert_int_equal(vset(err, 0, "%s", "untouched"), -1);
	assert_string_equal(err, "abc");
}

static void test_set_keeps_errno(void **state)
{
	char err[32];

	(void)state;
	errno = ENOSPC;
	assert_int_equal(err_set(err, sizeof(err), "write failed: %s", strerror(errno)), -1);
	assert_int_equal(errno, ENOSPC);
	errno = EACCES;
	assert_int_equal(vset(NULL, 0, "nothing"), -1);
	assert_int_equal(errno, EACCES);
}

static void test_exit_code(void **state)
{
	(void)state;
	assert_int_equal(err_exit_code(ERR_OK), 0);
	assert_int_equal(err_exit_code(ERR_FINAL), 0);		/* reported: the run succeeded */
	assert_int_equal(err_exit_code(ERR_TRANSIENT), 1);
	assert_int_equal(err_exit_code(ERR_CONFIG), 2);
	assert_int_equal(err_exit_code(ERR_AUTH), 2);
	assert_int_equal(err_exit_code((enum err_kind)99), 2);	/* unknown: the operator looks */
}

static void test_kind_name(void **state)
{
	(void)state;
	assert_string_equal(err_kind_name(ERR_OK), "ok");
	assert_string_equal(err_kind_name(ERR_TRANSIENT), "transient");
	assert_string_equal(err_kind_name(ERR_FINAL), "final");
	assert_string_equal(err_kind_name(ERR_CONFIG), "config");
	assert_string_equal(err_kind_name(ERR_AUTH), "auth");
	assert_string_equal(err_kind_name((enum err_kind)99), "config");
	assert_string_equal(err_kind_name((enum err_kind)-1), "config");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_formats),
		cmocka_unit_test(test_set_truncates),
		cmocka_unit_test(test_set_no_buffer),
		cmocka_unit_test(test_set_keeps_errno),
		cmocka_unit_test(test_exit_code),
		cmocka_unit_test(test_kind_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
