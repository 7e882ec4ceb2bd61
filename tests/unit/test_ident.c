/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_ident - the one validator for names that become paths: task ids, job
 * names, UUIDs (either case), accession numbers (RFC 3986 unreserved, never "."
 * or "..") and net ids ("net-" plus 1..6 digits); every kind is shown accepting
 * its well-formed values and refusing traversal, separators, empties, overlong
 * values and bytes outside ASCII.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "lib/ident.h"

/* repeat - a string of n copies of c in buf (buf holds n + 1) */
static const char *repeat(char *buf, char c, size_t n)
{
	memset(buf, c, n);
	buf[n] = 0;
	return buf;
}

static void ok(enum ident_kind kind, const char *s)
{
	if (ident_ok(kind, s) != 1)
		fail_msg("%s \"%s\" refused, should be accepted", ident_kind_name(kind), s);
}

static void refused(enum ident_kind kind, const char *s)
{
	if (ident_ok(kind, s) != 0)
		fail_msg("%s \"%s\" accepted, should be refused", ident_kind_name(kind), s);
}

static void test_task_id(void **state)
{
	char buf[80];

	(void)state;
	ok(IDENT_TASK_ID, "3f2b6c1e-8a7d-4e5f-9b0a-1c2d3e4f5a6b");
	ok(IDENT_TASK_ID, "a");
	ok(IDENT_TASK_ID, "A_b-9");
	ok(IDENT_TASK_ID, "x-");
	ok(IDENT_TASK_ID, "_x");
	ok(IDENT_TASK_ID, repeat(buf, 'a', 64));
	refused(IDENT_TASK_ID, repeat(buf, 'a', 65));
	refused(IDENT_TASK_ID, "");
	refused(IDENT_TASK_ID, "-x");
	refused(IDENT_TASK_ID, "../x");
	refused(IDENT_TASK_ID, "a/b");
	refused(IDENT_TASK_ID, "..");
	refused(IDENT_TASK_ID, ".");
	refused(IDENT_TASK_ID, "a.b");
	refused(IDENT_TASK_ID, "a b");
	refused(IDENT_TASK_ID, "a\n");
	refused(IDENT_TASK_ID, "a%2Fb");
	refused(IDENT_TASK_ID, "caf\xc3\xa9");
	refused(IDENT_TASK_ID, "a\xff");
	assert_int_equal(ident_ok(IDENT_TASK_ID, NULL), 0);
}

static void test_job_name(void **state)
{
	char buf[128];

	(void)state;
	ok(IDENT_JOB_NAME, "0000000000000001-abc");
	ok(IDENT_JOB_NAME, "9999999999999999-3f2b6c1e-8a7d-4e5f-9b0a-1c2d3e4f5a6b");
	memcpy(buf, "0000000000000042-", 17);
	repeat(buf + 17, 'z', 64);
	ok(IDENT_JOB_NAME, buf);
	repeat(buf + 17, 'z', 65);
	refused(IDENT_JOB_NAME, buf);
	refused(IDENT_JOB_NAME, "000000000000001-abc");	/* 15 digits */
	refused(IDENT_JOB_NAME, "00000000000000001-abc");	/* 17 digits */
	refused(IDENT_JOB_NAME, "0000000000000001abc");
	refused(IDENT_JOB_NAME, "0000000000000001_abc");
	refused(IDENT_JOB_NAME, "0000000000000001-");
	refused(IDENT_JOB_NAME, "0000000000000001--x");
	refused(IDENT_JOB_NAME, "0000000000000001-a/b");
	refused(IDENT_JOB_NAME, "0000000000000001-..");
	refused(IDENT_JOB_NAME, "000000000000000x-abc");
	refused(IDENT_JOB_NAME, " 000000000000001-abc");
	refused(IDENT_JOB_NAME, "abc");
	refused(IDENT_JOB_NAME, "12");
	refused(IDENT_JOB_NAME, "");
	refused(IDENT_JOB_NAME, ".0000000000000001-abc.tmp");
	assert_int_equal(ident_ok(IDENT_JOB_NAME, NULL), 0);
}

static void test_uuid(void **state)
{
	(void)state;
	ok(IDENT_UUID, "3f2b6c1e-8a7d-4e5f-9b0a-1c2d3e4f5a6b");
	ok(IDENT_UUID, "3F2B6C1E-8A7D-4E5F-9B0A-1C2D3E4F5A6B");
	ok(IDENT_UUID, "3f2B6c1E-8a7D-4e5F-9b0A-1c2D3e4F5a6B");
	ok(IDENT_UUID, "00000000-0000-0000-0000-000000000000");
	refused(IDENT_UUID, "3f2b6c1e-8a7d-4e5f-9b0a-1c2d3e4f5a6");	/* 35 */
	refused(IDENT_UUID, "3f2b6c1e-8a7d-4e5f-9b0a-1c2d3e4f5a6bc");	/* 37 */
	refused(IDENT_UUID, "3f2b6c1e8-a7d-4e5f-9b0a-1c2d3e4f5a6b");	/* dash moved */
	refused(IDENT_UUID, "3f2b6c1e-8a7d-4e5f-9b0a-1c2d3e4f5a6g");
	refused(IDENT_UUID, "3f2b6c1e_8a7d_4e5f_9b0a_1c2d3e4f5a6b");
	refused(IDENT_UUID, "3f2b6c1e88a7d84e5f89b0a81c2d3e4f5a6b");
	refused(IDENT_UUID, "{3f2b6c1e-8a7d-4e5f-9b0a-1c2d3e4f5a6}");
	refused(IDENT_UUID, "../../../../../../../../../../../etc");
	refused(IDENT_UUID, "");
	assert_int_equal(ident_ok(IDENT_UUID, NULL), 0);
}

static void test_accession(void **state)
{
	char buf[80];

	(void)state;
	ok(IDENT_ACCESSION, "ok-1.2_~");
	ok(IDENT_ACCESSION, "ACC123456");
	ok(IDENT_ACCESSION, "a");
	ok(IDENT_ACCESSION, "...");
	ok(IDENT_ACCESSION, ".a");
	ok(IDENT_ACCESSION, "-a");
	ok(IDENT_ACCESSION, repeat(buf, '7', 64));
	refused(IDENT_ACCESSION, repeat(buf, '7', 65));
	refused(IDENT_ACCESSION, ".");
	refused(IDENT_ACCESSION, "..");
	refused(IDENT_ACCESSION, "a/b");
	refused(IDENT_ACCESSION, "/a");
	refused(IDENT_ACCESSION, "a\\b");
	refused(IDENT_ACCESSION, "a%2F");
	refused(IDENT_ACCESSION, "a b");
	refused(IDENT_ACCESSION, "a:b");
	refused(IDENT_ACCESSION, "a?b");
	refused(IDENT_ACCESSION, "a\n");
	refused(IDENT_ACCESSION, "\xc3\xa9");
	refused(IDENT_ACCESSION, "");
	assert_int_equal(ident_ok(IDENT_ACCESSION, NULL), 0);
}

static void test_net_id(void **state)
{
	(void)state;
	ok(IDENT_NET_ID, "net-1");
	ok(IDENT_NET_ID, "net-0");
	ok(IDENT_NET_ID, "net-123456");
	refused(IDENT_NET_ID, "net-1234567");
	refused(IDENT_NET_ID, "net-");
	refused(IDENT_NET_ID, "net-a");
	refused(IDENT_NET_ID, "net-1a");
	refused(IDENT_NET_ID, "net--1");
	refused(IDENT_NET_ID, "net-+1");
	refused(IDENT_NET_ID, "net-1 ");
	refused(IDENT_NET_ID, "net-1/..");
	refused(IDENT_NET_ID, "../net-1");
	refused(IDENT_NET_ID, "NET-1");
	refused(IDENT_NET_ID, "net1");
	refused(IDENT_NET_ID, "net");
	refused(IDENT_NET_ID, "1");
	refused(IDENT_NET_ID, "");
	assert_int_equal(ident_ok(IDENT_NET_ID, NULL), 0);
}

static void test_kind_names(void **state)
{
	(void)state;
	assert_string_equal(ident_kind_name(IDENT_TASK_ID), "task id");
	assert_string_equal(ident_kind_name(IDENT_JOB_NAME), "job name");
	assert_string_equal(ident_kind_name(IDENT_UUID), "UUID");
	assert_string_equal(ident_kind_name(IDENT_ACCESSION), "accession number");
	assert_string_equal(ident_kind_name(IDENT_NET_ID), "net id");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_task_id),
		cmocka_unit_test(test_job_name),
		cmocka_unit_test(test_uuid),
		cmocka_unit_test(test_accession),
		cmocka_unit_test(test_net_id),
		cmocka_unit_test(test_kind_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
