/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_policy - the governance policy (policy.c) and the TOML shim under it
 * (toml.cc): every loader refusal, the whole decision table, type preservation,
 * and the file-level refusals (syntax error line, symlink, size, nesting).
 */
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
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "lib/log.h"
#include "lib/policy.h"
#include "lib/toml.h"

#define P1 "6f1c2b3a-0000-4000-8000-0123456789ab"
#define P1_UPPER "6F1C2B3A-0000-4000-8000-0123456789AB"
#define P2 "0b6e8c1d-1111-4111-8111-aaaaaaaaaaaa"
#define P3 "c0ffee00-2222-4222-8222-bbbbbbbbbbbb"

static char dir[64];
static char file[128];
static char err[512];

/* write_file - body into dir/name (replacing it); file names the result */
static void write_file(const char *name, const char *body)
{
	FILE *f;

	snprintf(file, sizeof(file), "%s/%s", dir, name);
	unlink(file);
	f = fopen(file, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(body, 1, strlen(body), f), strlen(body));
	assert_int_equal(fclose(f), 0);
}

/* load - write body as policy.toml and load it with configured floor 10 */
static struct policy *load(const char *body)
{
	struct policy *p = (struct policy *)1;

	write_file("policy.toml", body);
	err[0] = 0;
	if (policy_load(file, 10, &p, err, sizeof(err)) != 0)
		fail_msg("policy refused: %s", err);
	assert_non_null(p);
	return p;
}

/* check_err - err is one line naming the file and holding every needle */
static void check_err(const char *path, const char *needle, const char *needle2)
{
	if (strncmp(err, path, strlen(path)) != 0 || err[strlen(path)] != ':')
		fail_msg("message '%s' does not start with the file '%s'", err, path);
	if (strchr(err, '\n') != NULL || strchr(err, '\x1b') != NULL)
		fail_msg("message '%s' is not one plain line", err);
	if (strstr(err, needle) == NULL)
		fail_msg("message '%s' lacks '%s'", err, needle);
	if (needle2 != NULL && strstr(err, needle2) == NULL)
		fail_msg("message '%s' lacks '%s'", err, needle2);
}

/* load_bad - body must be refused with a message holding needle (and needle2) */
static void load_bad(const char *body, const char *needle, const char *needle2)
{
	struct policy *p = (struct policy *)1;

	write_file("policy.toml", body);
	err[0] = 0;
	assert_int_equal(policy_load(file, 10, &p, err, sizeof(err)), -1);
	assert_null(p);
	check_err(file, needle, needle2);
}

/* toml_doc - body through the shim alone */
static json_t *toml_doc(const char *body)
{
	json_t *j;

	write_file("doc.toml", body);
	err[0] = 0;
	j = toml_load_file(file, 65536, err, sizeof(err));
	if (j == NULL)
		fail_msg("TOML refused: %s", err);
	return j;
}

/* decide - shorthand for one decision */
static struct policy_decision decide(const struct policy *p, enum policy_action a,
				     const char *project, long floor)
{
	struct policy_decision d;

	memset(&d, 0x55, sizeof(d));
	policy_decide(p, a, project, floor, &d);
	return d;
}

static int group_setup(void **state __attribute__((unused)))
{
	snprintf(dir, sizeof(dir), "/tmp/test_policy.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	log_init("test_policy", LOG_ERR);
	return 0;
}

static int group_teardown(void **state __attribute__((unused)))
{
	static const char *const names[] = {"policy.toml", "doc.toml", "link.toml", "big.toml",
					    "fifo.toml", NULL};
	char path[128];

	for (const char *const *n = names; *n; n++) {
		snprintf(path, sizeof(path), "%s/%s", dir, *n);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/sub.toml", dir);
	rmdir(path);
	rmdir(dir);
	return 0;
}

/* ---- the TOML shim ---- */

static void test_toml_types(void **state __attribute__((unused)))
{
	json_t *j = toml_doc("i = 42\n"
			     "neg = -7\n"
			     "one_float = 1.0\n"
			     "b = true\n"
			     "f = false\n"
			     "s = \"42\"\n"
			     "lit = 'a\\b'\n"
			     "odt = 1979-05-27T07:32:00Z\n"
			     "ldt = 1979-05-27T07:32:00\n"
			     "ld = 1979-05-27\n"
			     "lt = 07:32:00\n"
			     "arr = [1, \"two\", 3.5]\n"
			     "big = 9223372036854775807\n"
			     "[tbl]\n"
			     "x.y = 1\n"
			     "inl = { k = \"v\" }\n"
			     "[[aot]]\n"
			     "n = 1\n"
			     "[[aot]]\n"
			     "n = 2\n");
	json_t *v;

	assert_true(json_is_integer(json_object_get(j, "i")));
	assert_int_equal(json_integer_value(json_object_get(j, "i")), 42);
	assert_int_equal(json_integer_value(json_object_get(j, "neg")), -7);
	assert_true(json_is_integer(json_object_get(j, "big")));
	assert_true(json_integer_value(json_object_get(j, "big")) == INT64_MAX);
	assert_true(json_is_real(json_object_get(j, "one_float")));
	assert_true(json_real_value(json_object_get(j, "one_float")) == 1.0);
	assert_true(json_is_true(json_object_get(j, "b")));
	assert_true(json_is_false(json_object_get(j, "f")));
	assert_true(json_is_string(json_object_get(j, "s")));
	assert_string_equal(json_string_value(json_object_get(j, "s")), "42");
	assert_string_equal(json_string_value(json_object_get(j, "lit")), "a\\b");
	for (const char *const *k = (const char *const[]){"odt", "ldt", "ld", "lt", NULL}; *k;
	     k++) {
		v = json_object_get(j, *k);
		assert_true(json_is_object(v));
		assert_int_equal(json_object_size(v), 1);
		assert_true(json_is_string(json_object_get(v, "$datetime")));
	}
	assert_non_null(
		strstr(json_string_value(json_object_get(json_object_get(j, "ld"), "$datetime")),
		       "1979-05-27"));
	v = json_object_get(j, "arr");
	assert_int_equal(json_array_size(v), 3);
	assert_true(json_is_integer(json_array_get(v, 0)));
	assert_true(json_is_string(json_array_get(v, 1)));
	assert_true(json_is_real(json_array_get(v, 2)));
	v = json_object_get(j, "tbl");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(v, "x"), "y")), 1);
	assert_string_equal(json_string_value(json_object_get(json_object_get(v, "inl"), "k")),
			    "v");
	v = json_object_get(j, "aot");
	assert_int_equal(json_array_size(v), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(v, 1), "n")), 2);
	json_decref(j);

	j = toml_doc(""); /* an empty file is an empty table */
	assert_true(json_is_object(j));
	assert_int_equal(json_object_size(j), 0);
	json_decref(j);
}

static void test_toml_syntax_error(void **state __attribute__((unused)))
{
	write_file("doc.toml", "a = 1\n# comment\nb = \n");
	assert_null(toml_load_file(file, 65536, err, sizeof(err)));
	check_err(file, "line 3", "missing value");
	assert_null(strstr(err, "toml::"));

	write_file("doc.toml", "a = 1\n\nb = 2\na = 3\n");
	assert_null(toml_load_file(file, 65536, err, sizeof(err)));
	check_err(file, "line 4", "already exists");

	write_file("doc.toml", "[x]\nb = \"unterminated\nc = 1\n");
	assert_null(toml_load_file(file, 65536, err, sizeof(err)));
	check_err(file, "line 2", NULL);

	/* through the policy loader too */
	load_bad("[disclosure]\nmin_cohort_size = = 3\n", "line 2", NULL);
}

static void test_toml_values_refused(void **state __attribute__((unused)))
{
	write_file("doc.toml", "a = 1\nx = inf\n");
	assert_null(toml_load_file(file, 65536, err, sizeof(err)));
	check_err(file, "key 'x'", "inf and nan");

	write_file("doc.toml", "[t]\ny = nan\n");
	assert_null(toml_load_file(file, 65536, err, sizeof(err)));
	check_err(file, "key 't.y'", "line 2");

	/* toml11 3.7 saturates these; the shim refuses them */
	write_file("doc.toml", "[disclosure]\nmin_cohort_size = 99999999999999999999\n");
	assert_null(toml_load_file(file, 65536, err, sizeof(err)));
	check_err(file, "line 2", "does not fit in 64 bits");
	write_file("doc.toml", "a = [1, -9223372036854775809]\n");
	assert_null(toml_load_file(file, 65536, err, sizeof(err)));
	check_err(file, "key 'a[1]'", "does not fit in 64 bits");
	write_file("doc.toml", "a = 0x8000_0000_0000_0000\n");
	assert_null(toml_load_file(file, 65536, err, sizeof(err)));
	check_err(file, "does not fit in 64 bits", NULL);
	write_file("doc.toml", "a = 1e400\n");
	assert_null(toml_load_file(file, 65536, err, sizeof(err)));
	check_err(file, "float out of range", NULL);
	write_file("doc.toml", "x = 1\n"
			       "a = 0b1111111111111111111111111111111111111111111111111111111111111111\n");
	assert_null(toml_load_file(file, 65536, err, sizeof(err)));
	check_err(file, "line 2", "binary integer");
	json_t *j = toml_doc("a = 9223372036854775807\nb = -9223372036854775808\n"
			     "c = 0x7fff_ffff_ffff_ffff\nd = 0o17\ne = 0b101\nf = 1_000\ng = 1.5e300\n");
	assert_true(json_integer_value(json_object_get(j, "a")) == INT64_MAX);
	assert_true(json_integer_value(json_object_get(j, "b")) == INT64_MIN);
	assert_true(json_integer_value(json_object_get(j, "c")) == INT64_MAX);
	assert_int_equal(json_integer_value(json_object_get(j, "d")), 15);
	assert_int_equal(json_integer_value(json_object_get(j, "e")), 5);
	assert_int_equal(json_integer_value(json_object_get(j, "f")), 1000);
	assert_true(json_real_value(json_object_get(j, "g")) == 1.5e300);
	json_decref(j);

	write_file("doc.toml", "s = \"a\\u0000b\"\n");
	assert_null(toml_load_file(file, 65536, err, sizeof(err)));
	check_err(file, "key 's'", "NUL");

	write_file("doc.toml", "\"k\\u0000\" = 1\n");
	assert_null(toml_load_file(file, 65536, err, sizeof(err)));
	check_err(file, "NUL", NULL);
}

static void test_toml_symlink(void **state __attribute__((unused)))
{
	char link[128];
	struct policy *p = (struct policy *)1;

	write_file("doc.toml", "[disclosure]\nmin_cohort_size = 20\n");
	snprintf(link, sizeof(link), "%s/link.toml", dir);
	unlink(link);
	assert_int_equal(symlink(file, link), 0);
	assert_int_equal(policy_load(link, 10, &p, err, sizeof(err)), -1);
	assert_null(p);
	check_err(link, "symbolic link", NULL);
	unlink(link);
}

static void test_toml_not_a_file(void **state __attribute__((unused)))
{
	char path[128];
	struct policy *p = (struct policy *)1;

	snprintf(path, sizeof(path), "%s/sub.toml", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(policy_load(path, 10, &p, err, sizeof(err)), -1);
	check_err(path, "not a regular file", NULL);
	rmdir(path);

	/* a FIFO is refused at once, not waited on */
	snprintf(path, sizeof(path), "%s/fifo.toml", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(policy_load(path, 10, &p, err, sizeof(err)), -1);
	check_err(path, "not a regular file", NULL);
	unlink(path);

	snprintf(path, sizeof(path), "%s/missing.toml", dir);
	assert_int_equal(policy_load(path, 10, &p, err, sizeof(err)), -1);
	check_err(path, "No such file", NULL);
}

static void test_toml_huge(void **state __attribute__((unused)))
{
	size_t n = POLICY_MAX_BYTES + 100;
	char *body = malloc(n + 1);
	struct policy *p = (struct policy *)1;

	assert_non_null(body);
	memset(body, '#', n);
	body[n] = 0;
	write_file("big.toml", body);
	free(body);
	assert_int_equal(policy_load(file, 10, &p, err, sizeof(err)), -1);
	assert_null(p);
	check_err(file, "larger than", NULL);
	unlink(file);
}

static void test_toml_nesting(void **state __attribute__((unused)))
{
	/* toml11 recurses: these would exhaust the stack if they reached it */
	size_t n = 60000, i;
	char *body = malloc(3 * n + 16);

	assert_non_null(body);
	strcpy(body, "a = ");
	for (i = 0; i < n; i++)
		body[4 + i] = '[';
	for (i = 0; i < n; i++)
		body[4 + n + i] = ']';
	body[4 + 2 * n] = 0;
	write_file("big.toml", body);
	assert_null(toml_load_file(file, 1 << 20, err, sizeof(err)));
	check_err(file, "nested deeper", "line 1");

	for (i = 0; i < n; i++)
		memcpy(body + 3 * i, "{b=", 3);
	strcpy(body + 3 * n, "1");
	write_file("big.toml", body); /* not even valid: refused before parsing */
	assert_null(toml_load_file(file, 1 << 20, err, sizeof(err)));
	check_err(file, "nested deeper", NULL);

	for (i = 0; i < n; i++)
		memcpy(body + 2 * i, "a.", 2);
	strcpy(body + 2 * n, "a = 1\n");
	write_file("big.toml", body);
	assert_null(toml_load_file(file, 1 << 20, err, sizeof(err)));
	check_err(file, "dots", NULL);
	free(body);
	unlink(file);

	/* brackets, dots and hashes inside strings and comments do not count */
	json_t *j = toml_doc("s = \"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"[[[\"\n"
			     "l = '{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{'\n"
			     "m = \"\"\"\n[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n\"\"\"\"\n"
			     "# [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n"
			     "n = [[[[1]]]]\n");
	assert_string_equal(json_string_value(json_object_get(j, "m")),
			    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n\"");
	json_decref(j);

	/* a tree deeper than TOML_MAX_DEPTH from dotted keys alone */
	body = malloc(256);
	assert_non_null(body);
	body[0] = 0;
	for (i = 0; i < TOML_MAX_DEPTH + 2; i++)
		strcat(body, "a.");
	strcat(body, "a = 1\n");
	write_file("doc.toml", body);
	free(body);
	assert_null(toml_load_file(file, 65536, err, sizeof(err)));
	check_err(file, "nested deeper", NULL);
}

/* ---- loader refusals ---- */

static void test_no_policy(void **state __attribute__((unused)))
{
	struct policy *p = (struct policy *)1;

	assert_int_equal(policy_load(NULL, 10, &p, err, sizeof(err)), 0);
	assert_null(p);
	p = (struct policy *)1;
	assert_int_equal(policy_load("", 10, &p, err, sizeof(err)), 0);
	assert_null(p);
	policy_free(NULL);
}

static void test_refuse_unknown_table(void **state __attribute__((unused)))
{
	load_bad("[disclosure]\nmin_cohort_size = 20\n[extra]\nx = 1\n",
		 "unknown top-level table 'extra'", NULL);
	load_bad("stray = 1\n[disclosure]\nmin_cohort_size = 20\n",
		 "unknown top-level key 'stray'", NULL);
}

static void test_refuse_section_not_table(void **state __attribute__((unused)))
{
	load_bad("disclosure = 20\n", "disclosure must be a table", "an integer");
	load_bad("access = [1]\n", "access must be a table", NULL);
	load_bad("fl_privacy = \"percentile\"\n", "fl_privacy must be a table", "a string");
}

static void test_refuse_disclosure_boolean(void **state __attribute__((unused)))
{
	load_bad("[disclosure]\nmin_cohort_size = true\n",
		 "[disclosure] min_cohort_size must be an integer", "a boolean");
}

static void test_refuse_disclosure_not_integer(void **state __attribute__((unused)))
{
	load_bad("[disclosure]\nmin_cohort_size = 20.0\n", "must be an integer", "a float");
	load_bad("[disclosure]\nmin_cohort_size = \"20\"\n", "must be an integer", "a string");
	load_bad("[disclosure]\nmin_cohort_size = 2020-01-01\n", "must be an integer",
		 "a date/time");
}

static void test_refuse_disclosure_below_floor(void **state __attribute__((unused)))
{
	load_bad("[disclosure]\nmin_cohort_size = 5\n", "min_cohort_size 5 is below",
		 "COHORT_QUERY_THRESHOLD 10");
	load_bad("[disclosure]\nmin_cohort_size = -20\n", "is below", NULL);
}

static void test_refuse_disclosure_unknown_key(void **state __attribute__((unused)))
{
	load_bad("[disclosure]\nmin_cohort_size = 20\nmax = 3\n", "[disclosure] unknown key 'max'",
		 NULL);
}

static void test_refuse_access_unknown_key(void **state __attribute__((unused)))
{
	load_bad("[access]\nrules = []\n", "[access] unknown key 'rules'", NULL);
}

static void test_refuse_rule_not_array_of_tables(void **state __attribute__((unused)))
{
	load_bad("[access]\nrule = 3\n", "access.rule must be an array of tables", NULL);
	load_bad("[access.rule]\nid = \"x\"\n", "access.rule must be an array of tables",
		 "a table");
	load_bad("[access]\nrule = [1, 2]\n", "#1 must be a table", "an integer");
}

#define RULE(body) "[[access.rule]]\n" body
#define OK_RULE "id = \"r1\"\naction = \"cohort.statistics\"\neffect = \"permit\"\n"

static void test_refuse_rule_id_missing(void **state __attribute__((unused)))
{
	load_bad(RULE(OK_RULE) RULE("action = \"cohort.statistics\"\neffect = \"permit\"\n"),
		 "[[access.rule]] #2: id is missing", NULL);
}

static void test_refuse_rule_id_empty(void **state __attribute__((unused)))
{
	load_bad(RULE("id = \"\"\naction = \"cohort.statistics\"\neffect = \"permit\"\n"),
		 "#1: id is empty", NULL);
	load_bad(RULE("id = 7\naction = \"cohort.statistics\"\neffect = \"permit\"\n"),
		 "#1: id must be a string", "an integer");
	load_bad(RULE("id = \"a\\nb\"\naction = \"cohort.statistics\"\neffect = \"permit\"\n"),
		 "control character", "'a?b'");
}

static void test_refuse_rule_id_duplicate(void **state __attribute__((unused)))
{
	load_bad(RULE(OK_RULE) RULE("id = \"r2\"\naction = \"cohort.dataframe\"\neffect = "
				    "\"deny\"\n") RULE(OK_RULE),
		 "[[access.rule]] 'r1': duplicate id", "#1 and #3");
}

static void test_refuse_rule_action(void **state __attribute__((unused)))
{
	load_bad(RULE("id = \"r1\"\naction = \"cohort.rows\"\neffect = \"permit\"\n"),
		 "'r1': action 'cohort.rows' is not one of",
		 "cohort.statistics, cohort.dataframe, cohort.accession_ids");
	load_bad(RULE("id = \"r1\"\neffect = \"permit\"\n"), "'r1': action is missing", NULL);
	load_bad(RULE("id = \"r1\"\naction = 1\neffect = \"permit\"\n"),
		 "'r1': action must be a string", "an integer");
}

static void test_refuse_rule_effect(void **state __attribute__((unused)))
{
	load_bad(RULE("id = \"r1\"\naction = \"cohort.statistics\"\n"),
		 "'r1': effect is missing (permit or deny)", NULL);
	load_bad(RULE("id = \"r1\"\naction = \"cohort.statistics\"\neffect = \"allow\"\n"),
		 "'r1': effect 'allow' is not permit or deny", NULL);
	load_bad(RULE("id = \"r1\"\naction = \"cohort.statistics\"\neffect = true\n"),
		 "'r1': effect must be a string", "a boolean");
}

static void test_refuse_rule_projects_empty(void **state __attribute__((unused)))
{
	load_bad(RULE(OK_RULE "projects = []\n"), "'r1': projects is empty", NULL);
}

static void test_refuse_rule_projects_not_uuids(void **state __attribute__((unused)))
{
	load_bad(RULE(OK_RULE "projects = \"" P1 "\"\n"),
		 "'r1': projects must be a list of UUID strings", "a string");
	load_bad(RULE(OK_RULE "projects = [\"" P1 "\", \"not-a-uuid\"]\n"),
		 "'r1': projects[1] is not a UUID string", NULL);
	load_bad(RULE(OK_RULE "projects = [42]\n"), "projects[0] is not a UUID string", NULL);
	load_bad(RULE(OK_RULE "projects = [\"" P1 "x\"]\n"), "projects[0] is not a UUID", NULL);
}

static void test_refuse_deny_with_floor(void **state __attribute__((unused)))
{
	load_bad(RULE("id = \"d1\"\naction = \"cohort.dataframe\"\neffect = \"deny\"\n"
		      "min_cohort_size = 50\n"),
		 "'d1': min_cohort_size is only for permit rules", NULL);
}

static void test_refuse_rule_floor_below_section(void **state __attribute__((unused)))
{
	load_bad("[disclosure]\nmin_cohort_size = 20\n" RULE(OK_RULE "min_cohort_size = 15\n"),
		 "'r1': min_cohort_size 15 is below the section floor 20", NULL);
	/* without [disclosure] the section floor is the configured one */
	load_bad(RULE(OK_RULE "min_cohort_size = 9\n"), "is below the section floor 10", NULL);
	load_bad(RULE(OK_RULE "min_cohort_size = false\n"), "'r1': min_cohort_size must be an "
							   "integer", "a boolean");
}

static void test_refuse_rule_unknown_key(void **state __attribute__((unused)))
{
	load_bad(RULE(OK_RULE "project = [\"" P1 "\"]\n"), "'r1': unknown key 'project'", NULL);
}

static void test_refuse_configures_nothing(void **state __attribute__((unused)))
{
	load_bad("", "configures nothing", NULL);
	load_bad("# only a comment\n[disclosure]\n[access]\nrule = []\n[fl_privacy]\n",
		 "configures nothing", NULL);
}

static void test_accept_fl_privacy(void **state __attribute__((unused)))
{
	struct policy *p = load("[fl_privacy]\npolicy = \"percentile\"\npercentile = 10\n"
				"gamma = 0.01\n");
	const json_t *fl = policy_fl_privacy(p);
	struct policy_decision d;

	assert_non_null(fl);
	assert_string_equal(json_string_value(json_object_get(fl, "policy")), "percentile");
	assert_true(json_is_integer(json_object_get(fl, "percentile")));
	assert_true(json_is_real(json_object_get(fl, "gamma")));
	d = decide(p, POLICY_DATAFRAME, NULL, 10);
	assert_true(d.permit);
	assert_int_equal(d.floor, 10);
	policy_free(p);
	assert_null(policy_fl_privacy(NULL));
}

/* ---- the decision table ---- */

static void test_decide_no_policy(void **state __attribute__((unused)))
{
	struct policy_decision d;

	for (int a = POLICY_STATISTICS; a <= POLICY_ACCESSION_IDS; a++) {
		d = decide(NULL, (enum policy_action)a, NULL, 10);
		assert_true(d.permit);
		assert_int_equal(d.floor, 10);
		assert_string_equal(d.rule, "");
		d = decide(NULL, (enum policy_action)a, "junk", 25);
		assert_true(d.permit);
		assert_int_equal(d.floor, 25);
	}
	assert_false(policy_names_projects(NULL, POLICY_DATAFRAME));
}

static void test_decide_no_rule_for_action(void **state __attribute__((unused)))
{
	struct policy *p = load("[disclosure]\nmin_cohort_size = 30\n" RULE(
		"id = \"rows\"\naction = \"cohort.dataframe\"\neffect = \"deny\"\n"
		"projects = [\"" P1 "\"]\n"));
	struct policy_decision d;

	d = decide(p, POLICY_STATISTICS, NULL, 10);
	assert_true(d.permit);
	assert_int_equal(d.floor, 30);
	assert_string_equal(d.rule, "");
	/* a non-UUID project does not matter when no rule for the action names projects */
	d = decide(p, POLICY_ACCESSION_IDS, "not-a-uuid", 10);
	assert_true(d.permit);
	assert_int_equal(d.floor, 30);
	/* the configured floor wins when it is the larger */
	d = decide(p, POLICY_STATISTICS, NULL, 40);
	assert_int_equal(d.floor, 40);
	assert_true(policy_names_projects(p, POLICY_DATAFRAME));
	assert_false(policy_names_projects(p, POLICY_STATISTICS));
	policy_free(p);
}

static void test_decide_bad_project_id(void **state __attribute__((unused)))
{
	struct policy *p = load(
		RULE("id = \"all\"\naction = \"cohort.dataframe\"\neffect = \"permit\"\n")
			RULE("id = \"one\"\naction = \"cohort.dataframe\"\neffect = \"permit\"\n"
			     "projects = [\"" P1 "\"]\n"));
	struct policy_decision d;

	d = decide(p, POLICY_DATAFRAME, "not-a-uuid", 10);
	assert_false(d.permit);
	assert_string_equal(d.rule, "");
	d = decide(p, POLICY_DATAFRAME, "", 10);
	assert_false(d.permit);
	d = decide(p, POLICY_DATAFRAME, P1 " ", 10);
	assert_false(d.permit);
	/* without a project the rule without projects still permits */
	d = decide(p, POLICY_DATAFRAME, NULL, 10);
	assert_true(d.permit);
	assert_string_equal(d.rule, "all");
	policy_free(p);
}

static void test_decide_deny_wins(void **state __attribute__((unused)))
{
	static const char permit[] =
		RULE("id = \"p\"\naction = \"cohort.accession_ids\"\neffect = \"permit\"\n");
	static const char deny[] = RULE("id = \"d\"\naction = \"cohort.accession_ids\"\n"
					"effect = \"deny\"\nprojects = [\"" P2 "\"]\n");
	char body[1024];
	struct policy_decision d;

	for (int order = 0; order < 2; order++) {
		struct policy *p;

		snprintf(body, sizeof(body), "%s%s", order ? deny : permit, order ? permit : deny);
		p = load(body);
		d = decide(p, POLICY_ACCESSION_IDS, P2, 10);
		assert_false(d.permit);
		assert_string_equal(d.rule, "d");
		d = decide(p, POLICY_ACCESSION_IDS, P1, 10);
		assert_true(d.permit);
		assert_string_equal(d.rule, "p");
		policy_free(p);
	}
}

static void test_decide_strictest_floor(void **state __attribute__((unused)))
{
	struct policy *p = load(
		"[disclosure]\nmin_cohort_size = 15\n" RULE(
			"id = \"low\"\naction = \"cohort.statistics\"\neffect = \"permit\"\n"
			"min_cohort_size = 20\n")
			RULE("id = \"high\"\naction = \"cohort.statistics\"\neffect = \"permit\"\n"
			     "min_cohort_size = 50\nprojects = [\"" P1 "\"]\n")
				RULE("id = \"plain\"\naction = \"cohort.statistics\"\n"
				     "effect = \"permit\"\nprojects = [\"" P1 "\", \"" P2 "\"]\n"));
	struct policy_decision d;

	d = decide(p, POLICY_STATISTICS, P1, 10);
	assert_true(d.permit);
	assert_int_equal(d.floor, 50);
	assert_string_equal(d.rule, "high");
	d = decide(p, POLICY_STATISTICS, P2, 10);
	assert_true(d.permit);
	assert_int_equal(d.floor, 20);
	assert_string_equal(d.rule, "low");
	/* a configured floor above every rule's still wins */
	d = decide(p, POLICY_STATISTICS, P2, 70);
	assert_int_equal(d.floor, 70);
	policy_free(p);

	/* a permit without min_cohort_size is at the section floor */
	p = load("[disclosure]\nmin_cohort_size = 15\n" RULE(OK_RULE));
	d = decide(p, POLICY_STATISTICS, NULL, 10);
	assert_true(d.permit);
	assert_int_equal(d.floor, 15);
	assert_string_equal(d.rule, "r1");
	policy_free(p);
}

static void test_decide_projects_need_project(void **state __attribute__((unused)))
{
	struct policy *p = load(RULE("id = \"only\"\naction = \"cohort.dataframe\"\n"
				     "effect = \"permit\"\nprojects = [\"" P1 "\"]\n")
					RULE("id = \"nodf\"\naction = \"cohort.dataframe\"\n"
					     "effect = \"deny\"\nprojects = [\"" P2 "\"]\n"));
	struct policy_decision d;

	/* neither rule matches a request without a project: no match, deny */
	d = decide(p, POLICY_DATAFRAME, NULL, 10);
	assert_false(d.permit);
	assert_string_equal(d.rule, "");
	d = decide(p, POLICY_DATAFRAME, P1, 10);
	assert_true(d.permit);
	assert_int_equal(d.floor, 10);
	policy_free(p);
}

static void test_decide_uuid_case(void **state __attribute__((unused)))
{
	struct policy *p = load(RULE("id = \"u\"\naction = \"cohort.dataframe\"\n"
				     "effect = \"permit\"\nprojects = [\"" P1_UPPER "\"]\n"));
	struct policy_decision d;
	json_t *desc;

	d = decide(p, POLICY_DATAFRAME, P1, 10);
	assert_true(d.permit);
	d = decide(p, POLICY_DATAFRAME, P1_UPPER, 10);
	assert_true(d.permit);
	d = decide(p, POLICY_DATAFRAME, "6F1C2B3A-0000-4000-8000-0123456789aB", 10);
	assert_true(d.permit);
	/* stored in lower case */
	desc = policy_describe(p, 10);
	assert_string_equal(json_string_value(json_array_get(
				    json_object_get(json_array_get(json_object_get(desc, "rules"),
								   0),
						    "projects"),
				    0)),
			    P1);
	json_decref(desc);
	policy_free(p);
}

static void test_decide_no_match(void **state __attribute__((unused)))
{
	struct policy *p = load(RULE("id = \"one\"\naction = \"cohort.accession_ids\"\n"
				     "effect = \"permit\"\nprojects = [\"" P1 "\"]\n"));
	struct policy_decision d;

	d = decide(p, POLICY_ACCESSION_IDS, P3, 10);
	assert_false(d.permit);
	assert_string_equal(d.rule, "");
	assert_true(d.floor >= 10);
	policy_free(p);
}

static void test_decide_floor_never_below_configured(void **state __attribute__((unused)))
{
	struct policy *p = load("[disclosure]\nmin_cohort_size = 12\n" RULE(
		OK_RULE "min_cohort_size = 14\n") RULE("id = \"d\"\naction = \"cohort.dataframe\"\n"
						       "effect = \"deny\"\n"));
	struct policy_decision d;

	for (long floor = 1; floor < 100; floor += 7) {
		for (int a = POLICY_STATISTICS; a <= POLICY_ACCESSION_IDS; a++) {
			d = decide(p, (enum policy_action)a, P1, floor);
			assert_true(d.floor >= floor);
			assert_true(d.floor >= 12);
			d = decide(NULL, (enum policy_action)a, NULL, floor);
			assert_true(d.floor >= floor);
		}
	}
	d = decide(p, POLICY_DATAFRAME, P1, 10);
	assert_false(d.permit);
	assert_string_equal(d.rule, "d");
	/* a nonsensical configured floor is never taken below 1 */
	d = decide(NULL, POLICY_STATISTICS, NULL, 0);
	assert_int_equal(d.floor, 1);
	policy_free(p);
}

static void test_describe(void **state __attribute__((unused)))
{
	struct policy *p =
		load("[disclosure]\nmin_cohort_size = 20\n" RULE(OK_RULE "min_cohort_size = 25\n")
			RULE("id = \"d\"\naction = \"cohort.dataframe\"\neffect = \"deny\"\n"
			     "projects = [\"" P2 "\"]\n")
				RULE("id = \"p\"\naction = \"cohort.dataframe\"\n"
				     "effect = \"permit\"\n") "[fl_privacy]\npolicy = \"svt\"\n");
	json_t *d = policy_describe(p, 10), *r;

	assert_non_null(d);
	assert_string_equal(json_string_value(json_object_get(d, "file")), file);
	assert_int_equal(json_integer_value(json_object_get(d, "floor")), 20);
	assert_int_equal(json_integer_value(json_object_get(d, "configured_floor")), 10);
	assert_int_equal(json_integer_value(json_object_get(d, "disclosure_min_cohort_size")), 20);
	assert_true(json_is_true(json_object_get(d, "fl_privacy")));
	r = json_object_get(d, "rules");
	assert_int_equal(json_array_size(r), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(r, 0), "id")), "r1");
	assert_int_equal(
		json_integer_value(json_object_get(json_array_get(r, 0), "min_cohort_size")), 25);
	assert_string_equal(json_string_value(json_object_get(json_array_get(r, 1), "effect")),
			    "deny");
	assert_null(json_object_get(json_array_get(r, 1), "min_cohort_size"));
	assert_int_equal(
		json_integer_value(json_object_get(json_array_get(r, 2), "min_cohort_size")), 20);
	assert_null(json_object_get(json_array_get(r, 2), "projects"));
	json_decref(d);
	policy_free(p);

	d = policy_describe(NULL, 10);
	assert_true(json_is_null(json_object_get(d, "file")));
	assert_int_equal(json_integer_value(json_object_get(d, "floor")), 10);
	assert_int_equal(json_array_size(json_object_get(d, "rules")), 0);
	json_decref(d);
	assert_string_equal(policy_action_name(POLICY_ACCESSION_IDS), "cohort.accession_ids");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_toml_types),
		cmocka_unit_test(test_toml_syntax_error),
		cmocka_unit_test(test_toml_values_refused),
		cmocka_unit_test(test_toml_symlink),
		cmocka_unit_test(test_toml_not_a_file),
		cmocka_unit_test(test_toml_huge),
		cmocka_unit_test(test_toml_nesting),
		cmocka_unit_test(test_no_policy),
		cmocka_unit_test(test_refuse_unknown_table),
		cmocka_unit_test(test_refuse_section_not_table),
		cmocka_unit_test(test_refuse_disclosure_boolean),
		cmocka_unit_test(test_refuse_disclosure_not_integer),
		cmocka_unit_test(test_refuse_disclosure_below_floor),
		cmocka_unit_test(test_refuse_disclosure_unknown_key),
		cmocka_unit_test(test_refuse_access_unknown_key),
		cmocka_unit_test(test_refuse_rule_not_array_of_tables),
		cmocka_unit_test(test_refuse_rule_id_missing),
		cmocka_unit_test(test_refuse_rule_id_empty),
		cmocka_unit_test(test_refuse_rule_id_duplicate),
		cmocka_unit_test(test_refuse_rule_action),
		cmocka_unit_test(test_refuse_rule_effect),
		cmocka_unit_test(test_refuse_rule_projects_empty),
		cmocka_unit_test(test_refuse_rule_projects_not_uuids),
		cmocka_unit_test(test_refuse_deny_with_floor),
		cmocka_unit_test(test_refuse_rule_floor_below_section),
		cmocka_unit_test(test_refuse_rule_unknown_key),
		cmocka_unit_test(test_refuse_configures_nothing),
		cmocka_unit_test(test_accept_fl_privacy),
		cmocka_unit_test(test_decide_no_policy),
		cmocka_unit_test(test_decide_no_rule_for_action),
		cmocka_unit_test(test_decide_bad_project_id),
		cmocka_unit_test(test_decide_deny_wins),
		cmocka_unit_test(test_decide_strictest_floor),
		cmocka_unit_test(test_decide_projects_need_project),
		cmocka_unit_test(test_decide_uuid_case),
		cmocka_unit_test(test_decide_no_match),
		cmocka_unit_test(test_decide_floor_never_below_configured),
		cmocka_unit_test(test_describe),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
