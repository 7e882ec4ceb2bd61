/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_task - the seven task types and their payload schemas (docs/design/hub-protocol.md,
 * "Task types"): every type's valid payload, then every field missing, of the
 * wrong type and null; caps, UTF-8, UUIDs, users[] items, extra keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/task.h"

#define U1 "0f8fad5b-d9cb-469f-a165-70867728950e"
#define U2 "7C9E6679-7425-40DE-944B-E07FC1F90AE7"
#define U3 "e1b8c3a0-1111-4222-8333-944444444444"
#define USER                                                                                       \
	"{\"id\": \"" U3 "\", \"email\": \"a@b.org\", \"name\": \"Ann\", \"organisation\": "       \
	"\"KCL\", \"is_disabled\": false}"

struct valid {
	const char *type;
	const char *json;
};

/* One valid payload per type, as the hub's json.dumps would write it. */
static const struct valid valid_payloads[] = {
	{"cohort_query",
	 "{\"query_name\": \"q1\", \"query\": \"SELECT 1\", "
	 "\"encrypted_project_id\": \"ZW52\", \"query_id\": \"" U1 "\", \"trust_id\": \"" U2 "\"}"},
	{"persist_cohort", "{\"project_id\": \"" U1 "\", \"trust_id\": \"" U2
			   "\", \"encrypted_project_id\": \"ZW52\", \"query\": \"SELECT 1\", "
			   "\"query_id\": \"" U3 "\"}"},
	{"create_imaging", "{\"project_id\": \"" U1 "\", \"trust_id\": \"" U2
			   "\", \"project_name\": \"Lung study\", \"query\": \"SELECT 1\", "
			   "\"users\": [" USER "], \"dicom_to_nifti\": true}"},
	{"delete_imaging", "{\"imaging_project_id\": \"" U1 "\"}"},
	{"get_imaging_status",
	 "{\"imaging_project_id\": \"" U1 "\", \"encoded_query\": \"U0VMRUNUIDE\"}"},
	{"reimport_studies",
	 "{\"imaging_project_id\": \"" U1 "\", \"encoded_query\": \"U0VMRUNUIDE\"}"},
	{"update_user_profile", "{\"email\": \"a@b.org\", \"enabled\": true}"},
};

#define NVALID (sizeof(valid_payloads) / sizeof(valid_payloads[0]))

/* valid - a fresh copy of the valid payload of a type */
static json_t *valid(const char *type)
{
	for (size_t i = 0; i < NVALID; i++)
		if (strcmp(valid_payloads[i].type, type) == 0) {
			json_t *p = json_loads(valid_payloads[i].json, 0, NULL);
			assert_non_null(p);
			return p;
		}
	fail_msg("no valid payload for %s", type);
	return NULL;
}

/* check - run the checker; on success err must be untouched */
static int check(const char *type, const json_t *payload, char *err, size_t errlen)
{
	int rc;

	strcpy(err, "untouched");
	rc = task_payload_check(type, payload, err, errlen);
	if (rc == 0)
		assert_string_equal(err, "untouched");
	else
		assert_int_equal(rc, -1);
	return rc;
}

/* expect_ok - the payload passes */
static void expect_ok(const char *type, json_t *payload)
{
	char err[256];

	if (check(type, payload, err, sizeof(err)) != 0)
		fail_msg("%s rejected: %s", type, err);
	json_decref(payload);
}

/* expect_err - the payload fails with exactly msg; the payload is consumed */
static void expect_err(const char *type, json_t *payload, const char *msg)
{
	char err[256];

	assert_int_equal(check(type, payload, err, sizeof(err)), -1);
	assert_string_equal(err, msg);
	json_decref(payload);
}

/* with - the valid payload of type with one field set (value stolen) */
static json_t *with(const char *type, const char *field, json_t *value)
{
	json_t *p = valid(type);

	assert_int_equal(json_object_set_new(p, field, value), 0);
	return p;
}

/* without - the valid payload of type with one field removed */
static json_t *without(const char *type, const char *field)
{
	json_t *p = valid(type);

	assert_int_equal(json_object_del(p, field), 0);
	return p;
}

/* with_user - create_imaging whose only user has one field set (NULL value: removed) */
static json_t *with_user(const char *field, json_t *value)
{
	json_t *p = valid("create_imaging");
	json_t *u = json_array_get(json_object_get(p, "users"), 0);

	if (value == NULL)
		assert_int_equal(json_object_del(u, field), 0);
	else
		assert_int_equal(json_object_set_new(u, field, value), 0);
	return p;
}

/* long_string - n copies of c, as a JSON string */
static json_t *long_string(size_t n, char c)
{
	char *s = malloc(n + 1);
	json_t *j;

	assert_non_null(s);
	memset(s, c, n);
	s[n] = 0;
	j = json_string(s);
	assert_non_null(j);
	free(s);
	return j;
}

/* --- the type table --- */

static void test_types_are_the_seven(void **state)
{
	size_t n = 0;

	(void)state;
	while (task_types[n] != NULL) {
		assert_true(task_type_known(task_types[n]));
		n++;
	}
	assert_int_equal(n, 7);
	assert_int_equal(NVALID, 7);
	for (size_t i = 0; i < NVALID; i++)
		assert_true(task_type_known(valid_payloads[i].type));
}

static void test_unknown_types(void **state)
{
	json_t *p = json_object();
	char err[256];

	(void)state;
	assert_false(task_type_known(NULL));
	assert_false(task_type_known(""));
	assert_false(task_type_known("Cohort_query"));
	assert_false(task_type_known("cohort_query "));
	assert_false(task_type_known("run_sql"));
	assert_int_equal(check("run_sql", p, err, sizeof(err)), -1);
	assert_string_equal(err, "Unknown task type: run_sql");
	assert_int_equal(check("bad\ntype", p, err, sizeof(err)), -1);
	assert_string_equal(err, "Unknown task type: bad?type");
	json_decref(p);
}

/* --- valid payloads --- */

static void test_valid_every_type(void **state)
{
	(void)state;
	for (size_t i = 0; i < NVALID; i++)
		expect_ok(valid_payloads[i].type, valid(valid_payloads[i].type));
}

static void test_valid_optional_forms(void **state)
{
	json_t *p;

	(void)state;
	expect_ok("persist_cohort", with("persist_cohort", "query_id", json_null()));
	expect_ok("persist_cohort", without("persist_cohort", "query_id"));
	expect_ok("create_imaging", with("create_imaging", "query", json_null()));
	expect_ok("create_imaging", without("create_imaging", "query"));
	expect_ok("create_imaging", without("create_imaging", "dicom_to_nifti"));
	expect_ok("create_imaging", with("create_imaging", "dicom_to_nifti", json_false()));
	expect_ok("create_imaging", with("create_imaging", "users", json_array()));
	expect_ok("create_imaging", with_user("organisation", json_null()));
	expect_ok("update_user_profile", with("update_user_profile", "enabled", json_false()));
	/* upper-case UUIDs are UUIDs too */
	expect_ok("delete_imaging", with("delete_imaging", "imaging_project_id", json_string(U2)));
	/* encoded_query: empty, and both URL-safe characters */
	expect_ok("get_imaging_status",
		  with("get_imaging_status", "encoded_query", json_string("")));
	expect_ok("reimport_studies",
		  with("reimport_studies", "encoded_query", json_string("U0VMRUNUIC0-Xw")));
	p = valid("create_imaging");
	json_array_append_new(json_object_get(p, "users"), json_loads(USER, 0, NULL));
	expect_ok("create_imaging", p);
}

static void test_unknown_extra_keys_accepted(void **state)
{
	(void)state;
	for (size_t i = 0; i < NVALID; i++) {
		const char *type = valid_payloads[i].type;
		expect_ok(type, with(type, "added_by_newer_hub", json_string("x")));
		expect_ok(type, with(type, "another", json_pack("{s:[i,b,n]}", "a", 1, 1)));
	}
	/* extra keys inside a users[] item are ignored too */
	expect_ok("create_imaging", with_user("role", json_string("admin")));
}

/* nested_text - depth '[' then depth ']' (caller frees) */
static char *nested_text(size_t depth)
{
	char *text = malloc(2 * depth + 1);

	assert_non_null(text);
	memset(text, '[', depth);
	memset(text + depth, ']', depth);
	text[2 * depth] = 0;
	return text;
}

/* A deeply nested extra value is ignored without being walked. */
static void test_deeply_nested_extra_value(void **state)
{
	char *text = nested_text(1500);
	json_t *nested = json_loads(text, 0, NULL);

	(void)state;
	assert_non_null(nested);
	expect_ok("delete_imaging", with("delete_imaging", "nested", nested));
	free(text);
	/* deeper than jansson's parser allows: refused at load, before any schema */
	text = nested_text(100000);
	assert_null(json_loads(text, 0, NULL));
	free(text);
}

/* --- the payload itself --- */

static void test_payload_not_object(void **state)
{
	(void)state;
	expect_err("delete_imaging", json_array(),
		   "Invalid payload: payload must be a JSON object");
	expect_err("delete_imaging", json_string(U1),
		   "Invalid payload: payload must be a JSON object");
	expect_err("delete_imaging", json_null(), "Invalid payload: payload must be a JSON object");
	expect_err("delete_imaging", NULL, "Invalid payload: payload must be a JSON object");
}

/* --- every field: missing, wrong type, null --- */

struct field {
	const char *type;
	const char *name;
	const char *kind; /* the message for a value of the wrong type */
	int optional;	  /* may be absent */
	int nullable;	  /* may be null */
};

static const struct field fields[] = {
	{"cohort_query", "query_name", "must be a string", 0, 0},
	{"cohort_query", "query", "must be a string", 0, 0},
	{"cohort_query", "encrypted_project_id", "must be a string", 0, 0},
	{"cohort_query", "query_id", "must be a UUID", 0, 0},
	{"cohort_query", "trust_id", "must be a UUID", 0, 0},
	{"persist_cohort", "project_id", "must be a UUID", 0, 0},
	{"persist_cohort", "trust_id", "must be a UUID", 0, 0},
	{"persist_cohort", "encrypted_project_id", "must be a string", 0, 0},
	{"persist_cohort", "query", "must be a string", 0, 0},
	{"persist_cohort", "query_id", "must be a UUID", 1, 1},
	{"create_imaging", "project_id", "must be a UUID", 0, 0},
	{"create_imaging", "trust_id", "must be a UUID", 0, 0},
	{"create_imaging", "project_name", "must be a string", 0, 0},
	{"create_imaging", "query", "must be a string", 1, 1},
	{"create_imaging", "users", "must be an array", 0, 0},
	{"create_imaging", "dicom_to_nifti", "must be a boolean", 1, 0},
	{"delete_imaging", "imaging_project_id", "must be a UUID", 0, 0},
	{"get_imaging_status", "imaging_project_id", "must be a UUID", 0, 0},
	{"get_imaging_status", "encoded_query", "must be a string", 0, 0},
	{"reimport_studies", "imaging_project_id", "must be a UUID", 0, 0},
	{"reimport_studies", "encoded_query", "must be a string", 0, 0},
	{"update_user_profile", "email", "must be a string", 0, 0},
	{"update_user_profile", "enabled", "must be a boolean", 0, 0},
};

#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

/* expect_field - msg is "Invalid payload: field '<name>' <what>" */
static void expect_field(const struct field *f, json_t *payload, const char *what)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "Invalid payload: field '%s' %s", f->name, what);
	expect_err(f->type, payload, msg);
}

static void test_every_field_missing(void **state)
{
	(void)state;
	for (size_t i = 0; i < NFIELDS; i++) {
		const struct field *f = &fields[i];
		if (f->optional)
			expect_ok(f->type, without(f->type, f->name));
		else
			expect_field(f, without(f->type, f->name), "is missing");
	}
}

static void test_every_field_null(void **state)
{
	(void)state;
	for (size_t i = 0; i < NFIELDS; i++) {
		const struct field *f = &fields[i];
		if (f->nullable)
			expect_ok(f->type, with(f->type, f->name, json_null()));
		else
			expect_field(f, with(f->type, f->name, json_null()), f->kind);
	}
}

static void test_every_field_integer(void **state)
{
	(void)state;
	for (size_t i = 0; i < NFIELDS; i++) {
		const struct field *f = &fields[i];
		expect_field(f, with(f->type, f->name, json_integer(1)), f->kind);
	}
}

/* A boolean is not a string, a UUID or an array; for boolean fields, 1 is not true. */
static void test_every_field_bool_or_int(void **state)
{
	(void)state;
	for (size_t i = 0; i < NFIELDS; i++) {
		const struct field *f = &fields[i];
		if (strcmp(f->kind, "must be a boolean") == 0) {
			expect_field(f, with(f->type, f->name, json_integer(0)), f->kind);
			expect_field(f, with(f->type, f->name, json_string("true")), f->kind);
		} else {
			expect_field(f, with(f->type, f->name, json_true()), f->kind);
		}
	}
}

static void test_every_field_object_and_real(void **state)
{
	(void)state;
	for (size_t i = 0; i < NFIELDS; i++) {
		const struct field *f = &fields[i];
		expect_field(f, with(f->type, f->name, json_object()), f->kind);
		expect_field(f, with(f->type, f->name, json_real(1.5)), f->kind);
	}
}

/* --- strings: caps, UTF-8, NUL --- */

static void test_string_caps(void **state)
{
	(void)state;
	expect_ok("cohort_query",
		  with("cohort_query", "query_name", long_string(TASK_MAX_STRING, 'a')));
	expect_err("cohort_query",
		   with("cohort_query", "query_name", long_string(TASK_MAX_STRING + 1, 'a')),
		   "Invalid payload: field 'query_name' is too long (4097 > 4096)");
	expect_ok("cohort_query", with("cohort_query", "query", long_string(TASK_MAX_QUERY, 'a')));
	expect_err("cohort_query",
		   with("cohort_query", "query", long_string(TASK_MAX_QUERY + 1, 'a')),
		   "Invalid payload: field 'query' is too long (1048577 > 1048576)");
	expect_err("persist_cohort",
		   with("persist_cohort", "encrypted_project_id",
			long_string(TASK_MAX_STRING + 1, 'A')),
		   "Invalid payload: field 'encrypted_project_id' is too long (4097 > 4096)");
	expect_err("update_user_profile",
		   with("update_user_profile", "email", long_string(10 * 1024 * 1024, 'a')),
		   "Invalid payload: field 'email' is too long (10485760 > 4096)");
}

/* Caps count characters, as the hub does: 255 two-byte characters fit a project name. */
static void test_caps_count_characters(void **state)
{
	char name[2 * 256 + 1];

	(void)state;
	for (int i = 0; i < 256; i++)
		memcpy(name + 2 * i, "\xc3\xa9", 2); /* U+00E9 */
	name[2 * 255] = 0;
	expect_ok("create_imaging", with("create_imaging", "project_name", json_string(name)));
	memcpy(name + 2 * 255, "\xc3\xa9", 3);
	expect_err("create_imaging", with("create_imaging", "project_name", json_string(name)),
		   "Invalid payload: field 'project_name' is too long (256 > 255)");
}

static void test_embedded_nul(void **state)
{
	(void)state;
	expect_err("cohort_query",
		   with("cohort_query", "query", json_stringn("SELECT 1\0; DROP", 15)),
		   "Invalid payload: field 'query' must not contain NUL");
	expect_err("delete_imaging",
		   with("delete_imaging", "imaging_project_id", json_stringn(U1 "\0x", 38)),
		   "Invalid payload: field 'imaging_project_id' must be a UUID");
	expect_err("create_imaging", with_user("name", json_stringn("A\0B", 3)),
		   "Invalid payload: field 'users[0].name' must not contain NUL");
}

/* jansson refuses invalid UTF-8 on load; a json_t built in C can still carry it. */
static void test_invalid_utf8(void **state)
{
	static const char *const bad[] = {
		"\xff",		    /* never valid */
		"\xc0\xaf",	    /* overlong '/' */
		"\xe0\x80\xaf",	    /* overlong '/' */
		"\xed\xa0\x80",	    /* surrogate U+D800 */
		"\xf4\x90\x80\x80", /* beyond U+10FFFF */
		"\xc3",		    /* truncated */
		"a\x80z",	    /* stray continuation */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_err("cohort_query",
			   with("cohort_query", "query_name", json_string_nocheck(bad[i])),
			   "Invalid payload: field 'query_name' must be valid UTF-8");
	expect_ok("cohort_query",
		  with("cohort_query", "query_name", json_string("\xf0\x9f\x8f\xa5 \xe2\x82\xac")));
}

/* --- UUIDs --- */

static void test_uuid_validator(void **state)
{
	static const char *const bad[] = {
		"",
		"0f8fad5b-d9cb-469f-a165-70867728950",	 /* short */
		"0f8fad5b-d9cb-469f-a165-70867728950e0", /* long */
		"0f8fad5bd9cb-469f-a165-70867728950e-",	 /* hyphen misplaced */
		"0f8fad5b-d9cb-469f-a165_70867728950e",
		"0f8fad5b-d9cb-469f-a165-70867728950g", /* not hex */
		"{0f8fad5b-d9cb-469f-a165-70867728950e}",
		"0f8fad5bd9cb469fa16570867728950e", /* no hyphens */
		"urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e",
		"0f8fad5b-d9cb-469f-a165-70867728950e\n",
		" 0f8fad5b-d9cb-469f-a165-70867728950e",
		"../../../../etc/passwd-aaaaaaaaaaaaa",
	};
	char out[37];

	(void)state;
	assert_true(task_uuid_ok(U1));
	assert_true(task_uuid_ok(U2));
	assert_true(task_uuid_ok("00000000-0000-0000-0000-000000000000"));
	assert_false(task_uuid_ok(NULL));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(task_uuid_ok(bad[i]));
		assert_int_equal(task_uuid_canonical(bad[i], out), -1);
		expect_err("delete_imaging",
			   with("delete_imaging", "imaging_project_id", json_string(bad[i])),
			   "Invalid payload: field 'imaging_project_id' must be a UUID");
	}
	assert_int_equal(task_uuid_canonical(U2, out), 0);
	assert_string_equal(out, "7c9e6679-7425-40de-944b-e07fc1f90ae7");
	assert_int_equal(task_uuid_canonical(U1, out), 0);
	assert_string_equal(out, U1);
}

static void test_invalid_uuid_fields(void **state)
{
	(void)state;
	expect_err("cohort_query", with("cohort_query", "query_id", json_string("not-a-uuid")),
		   "Invalid payload: field 'query_id' must be a UUID");
	expect_err("cohort_query", with("cohort_query", "trust_id", json_string("")),
		   "Invalid payload: field 'trust_id' must be a UUID");
	expect_err("persist_cohort", with("persist_cohort", "query_id", json_string("1234")),
		   "Invalid payload: field 'query_id' must be a UUID");
	expect_err("create_imaging", with("create_imaging", "project_id", json_integer(7)),
		   "Invalid payload: field 'project_id' must be a UUID");
}

/* --- create_imaging --- */

static void test_project_name(void **state)
{
	static const char *const bad[] = {"<script>", "a > b", "R&D", "x<", "&amp;"};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_err(
			"create_imaging",
			with("create_imaging", "project_name", json_string(bad[i])),
			"Invalid payload: field 'project_name' must not contain '<', '>' or '&'");
	expect_err("create_imaging", with("create_imaging", "project_name", json_string("")),
		   "Invalid payload: field 'project_name' must not be empty");
	expect_err("create_imaging", with("create_imaging", "project_name", long_string(256, 'n')),
		   "Invalid payload: field 'project_name' is too long (256 > 255)");
	expect_ok("create_imaging", with("create_imaging", "project_name", long_string(255, 'n')));
	expect_ok("create_imaging", with("create_imaging", "project_name",
					 json_string("O'Brien \"lung\" (2024) #1")));
}

static void test_users_items(void **state)
{
	json_t *p;

	(void)state;
	expect_err("create_imaging", with_user("id", NULL),
		   "Invalid payload: field 'users[0].id' is missing");
	expect_err("create_imaging", with_user("id", json_string("x")),
		   "Invalid payload: field 'users[0].id' must be a UUID");
	expect_err("create_imaging", with_user("email", NULL),
		   "Invalid payload: field 'users[0].email' is missing");
	expect_err("create_imaging", with_user("email", json_integer(3)),
		   "Invalid payload: field 'users[0].email' must be a string");
	expect_err("create_imaging", with_user("name", json_null()),
		   "Invalid payload: field 'users[0].name' must be a string");
	expect_err("create_imaging", with_user("organisation", NULL),
		   "Invalid payload: field 'users[0].organisation' is missing");
	expect_err("create_imaging", with_user("organisation", json_false()),
		   "Invalid payload: field 'users[0].organisation' must be a string");
	expect_err("create_imaging", with_user("is_disabled", NULL),
		   "Invalid payload: field 'users[0].is_disabled' is missing");
	expect_err("create_imaging", with_user("is_disabled", json_string("false")),
		   "Invalid payload: field 'users[0].is_disabled' must be a boolean");
	expect_err("create_imaging", with_user("is_disabled", json_integer(0)),
		   "Invalid payload: field 'users[0].is_disabled' must be a boolean");
	expect_err("create_imaging", with_user("name", long_string(TASK_MAX_STRING + 1, 'x')),
		   "Invalid payload: field 'users[0].name' is too long (4097 > 4096)");

	/* the failing item is named by its index */
	p = valid("create_imaging");
	json_array_append_new(json_object_get(p, "users"), json_loads(USER, 0, NULL));
	json_array_append_new(json_object_get(p, "users"), json_pack("{s:s}", "id", U1));
	expect_err("create_imaging", p, "Invalid payload: field 'users[2].email' is missing");

	p = valid("create_imaging");
	json_array_append_new(json_object_get(p, "users"), json_string(U1));
	expect_err("create_imaging", p, "Invalid payload: field 'users[1]' must be an object");

	expect_err("create_imaging", with("create_imaging", "users", json_object()),
		   "Invalid payload: field 'users' must be an array");
}

static void test_users_cap(void **state)
{
	json_t *p = with("create_imaging", "users", json_array());
	json_t *users = json_object_get(p, "users");

	(void)state;
	for (int i = 0; i < 1000; i++)
		json_array_append_new(users, json_loads(USER, 0, NULL));
	expect_ok("create_imaging", json_incref(p));
	json_array_append_new(users, json_loads(USER, 0, NULL));
	expect_err("create_imaging", p,
		   "Invalid payload: field 'users' has too many items (1001 > 1000)");
}

/* --- get_imaging_status / reimport_studies --- */

static void test_encoded_query(void **state)
{
	static const char *const bad[] = {
		"U0VMRUNUIDE=",		  /* padded */
		"U0VMRUNUIC0+",		  /* standard alphabet */
		"U0VMRUNUIC0/",	 "U0VMR", /* length % 4 == 1 */
		"U0VM RUNUIDE",		  /* whitespace */
		"U0VMRUNUIDF",		  /* non-zero padding bits */
		"U0VMRUNUIDE\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		expect_err("get_imaging_status",
			   with("get_imaging_status", "encoded_query", json_string(bad[i])),
			   "Invalid payload: field 'encoded_query' must be URL-safe base64 "
			   "without padding");
		expect_err("reimport_studies",
			   with("reimport_studies", "encoded_query", json_string(bad[i])),
			   "Invalid payload: field 'encoded_query' must be URL-safe base64 "
			   "without padding");
	}
	/* "_w" is the byte 0xff: decodes, but not to text; "AA" is a NUL byte */
	expect_err("get_imaging_status",
		   with("get_imaging_status", "encoded_query", json_string("_w")),
		   "Invalid payload: field 'encoded_query' must decode to UTF-8 text");
	expect_err("get_imaging_status",
		   with("get_imaging_status", "encoded_query", json_string("AA")),
		   "Invalid payload: field 'encoded_query' must decode to UTF-8 text");
	expect_err("get_imaging_status",
		   with("get_imaging_status", "imaging_project_id", json_string("project-7")),
		   "Invalid payload: field 'imaging_project_id' must be a UUID");
}

/* --- update_user_profile --- */

static void test_email(void **state)
{
	(void)state;
	expect_err("update_user_profile",
		   with("update_user_profile", "email", json_string("nobody")),
		   "Invalid payload: field 'email' must contain exactly one '@'");
	expect_err("update_user_profile",
		   with("update_user_profile", "email", json_string("a@b@c")),
		   "Invalid payload: field 'email' must contain exactly one '@'");
	expect_err("update_user_profile", with("update_user_profile", "email", json_string("")),
		   "Invalid payload: field 'email' must contain exactly one '@'");
	expect_ok("update_user_profile",
		  with("update_user_profile", "email", json_string("first.last+tag@nhs.net")));
}

/* --- the error buffer --- */

static void test_err_buffer(void **state)
{
	json_t *p = without("delete_imaging", "imaging_project_id");
	char small[12];

	(void)state;
	assert_int_equal(task_payload_check("delete_imaging", p, NULL, 0), -1);
	assert_int_equal(task_payload_check("nope", p, NULL, 0), -1);
	assert_int_equal(task_payload_check("delete_imaging", p, small, sizeof(small)), -1);
	assert_string_equal(small, "Invalid pay");
	json_decref(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_types_are_the_seven),
		cmocka_unit_test(test_unknown_types),
		cmocka_unit_test(test_valid_every_type),
		cmocka_unit_test(test_valid_optional_forms),
		cmocka_unit_test(test_unknown_extra_keys_accepted),
		cmocka_unit_test(test_deeply_nested_extra_value),
		cmocka_unit_test(test_payload_not_object),
		cmocka_unit_test(test_every_field_missing),
		cmocka_unit_test(test_every_field_null),
		cmocka_unit_test(test_every_field_integer),
		cmocka_unit_test(test_every_field_bool_or_int),
		cmocka_unit_test(test_every_field_object_and_real),
		cmocka_unit_test(test_string_caps),
		cmocka_unit_test(test_caps_count_characters),
		cmocka_unit_test(test_embedded_nul),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_uuid_validator),
		cmocka_unit_test(test_invalid_uuid_fields),
		cmocka_unit_test(test_project_name),
		cmocka_unit_test(test_users_items),
		cmocka_unit_test(test_users_cap),
		cmocka_unit_test(test_encoded_query),
		cmocka_unit_test(test_email),
		cmocka_unit_test(test_err_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
