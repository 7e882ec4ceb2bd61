/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_sqlguard - the SQL guard: every attack of docs/design/quality.md refused with its own
 * message, every refused function family of docs/design/data-access.md, and the accepted
 * cohort shapes with the exact SQL that will run. Every accepted text must pass
 * the guard again unchanged (check(check(x)) == check(x)).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pg_query.h>

#include "jobs/sqlguard.h"
#include "jobs/sqlresolve.h"

#define ONLY_SELECT "Only SELECT statements are allowed."
#define ONE_STATEMENT "Exactly one SQL statement is allowed per request."
#define QUALIFIED_FUNCTION "Schema-qualified function calls are not allowed."
#define LIMIT_LITERAL "LIMIT must be a literal integer."
#define OFFSET_LITERAL "OFFSET must be a literal integer."

/*
 * The catalog of the test fixture's schema omop (tests/omop/cdm54.sql), one table a
 * string "table:col,col,...", as omop_catalog() would read it: the guard's second
 * stage (sqlresolve) checks column references against it.
 */
static const char *const fixture_tables[] = {
	"person:person_id,gender_concept_id,year_of_birth,month_of_birth,day_of_birth,bir"
	"th_datetime,race_concept_id,ethnicity_concept_id,location_id,provider_id,care_si"
	"te_id,person_source_value,gender_source_value,gender_source_concept_id,race_sour"
	"ce_value,race_source_concept_id,ethnicity_source_value,ethnicity_source_concept_"
	"id",
	"observation_period:observation_period_id,person_id,observation_period_start_date"
	",observation_period_end_date,period_type_concept_id",
	"visit_occurrence:visit_occurrence_id,person_id,visit_concept_id,visit_start_date"
	",visit_start_datetime,visit_end_date,visit_end_datetime,visit_type_concept_id,pr"
	"ovider_id,care_site_id,visit_source_value,visit_source_concept_id,admitted_from_"
	"concept_id,admitted_from_source_value,discharged_to_concept_id,discharged_to_sou"
	"rce_value,preceding_visit_occurrence_id",
	"condition_occurrence:condition_occurrence_id,person_id,condition_concept_id,cond"
	"ition_start_date,condition_start_datetime,condition_end_date,condition_end_datet"
	"ime,condition_type_concept_id,condition_status_concept_id,stop_reason,provider_i"
	"d,visit_occurrence_id,visit_detail_id,condition_source_value,condition_source_co"
	"ncept_id,condition_status_source_value",
	"drug_exposure:drug_exposure_id,person_id,drug_concept_id,drug_exposure_start_dat"
	"e,drug_exposure_start_datetime,drug_exposure_end_date,drug_exposure_end_datetime"
	",verbatim_end_date,drug_type_concept_id,stop_reason,refills,quantity,days_supply"
	",sig,route_concept_id,lot_number,provider_id,visit_occurrence_id,visit_detail_id"
	",drug_source_value,drug_source_concept_id,route_source_value,dose_unit_source_va"
	"lue",
	"procedure_occurrence:procedure_occurrence_id,person_id,procedure_concept_id,proc"
	"edure_date,procedure_datetime,procedure_end_date,procedure_end_datetime,procedur"
	"e_type_concept_id,modifier_concept_id,quantity,provider_id,visit_occurrence_id,v"
	"isit_detail_id,procedure_source_value,procedure_source_concept_id,modifier_sourc"
	"e_value",
	"measurement:measurement_id,person_id,measurement_concept_id,measurement_date,mea"
	"surement_datetime,measurement_time,measurement_type_concept_id,operator_concept_"
	"id,value_as_number,value_as_concept_id,unit_concept_id,range_low,range_high,prov"
	"ider_id,visit_occurrence_id,visit_detail_id,measurement_source_value,measurement"
	"_source_concept_id,unit_source_value,unit_source_concept_id,value_source_value,m"
	"easurement_event_id,meas_event_field_concept_id",
	"observation:observation_id,person_id,observation_concept_id,observation_date,obs"
	"ervation_datetime,observation_type_concept_id,value_as_number,value_as_string,va"
	"lue_as_concept_id,qualifier_concept_id,unit_concept_id,provider_id,visit_occurre"
	"nce_id,visit_detail_id,observation_source_value,observation_source_concept_id,un"
	"it_source_value,qualifier_source_value,value_source_value,observation_event_id,o"
	"bs_event_field_concept_id",
	"death:person_id,death_date,death_datetime,death_type_concept_id,cause_concept_id"
	",cause_source_value,cause_source_concept_id",
	"concept:concept_id,concept_name,domain_id,vocabulary_id,concept_class_id,standar"
	"d_concept,concept_code,valid_start_date,valid_end_date,invalid_reason",
	"vocabulary:vocabulary_id,vocabulary_name,vocabulary_reference,vocabulary_version"
	",vocabulary_concept_id",
	"concept_ancestor:ancestor_concept_id,descendant_concept_id,min_levels_of_separat"
	"ion,max_levels_of_separation",
	"image_occurrence:image_occurrence_id,person_id,procedure_occurrence_id,visit_occ"
	"urrence_id,anatomic_site_concept_id,wadors_uri,local_path,image_occurrence_date,"
	"image_study_uid,image_series_uid,modality_concept_id,accession_id",
};
static struct omop_catalog *catalog;

/* fixture_catalog - fixture_tables as an omop_catalog (built once, freed in teardown) */
static const struct omop_catalog *fixture_catalog(void)
{
	size_t n = sizeof(fixture_tables) / sizeof(fixture_tables[0]);

	if (catalog != NULL)
		return catalog;
	catalog = calloc(1, sizeof(*catalog));
	assert_non_null(catalog);
	catalog->tables = calloc(n, sizeof(*catalog->tables));
	assert_non_null(catalog->tables);
	for (size_t i = 0; i < n; i++) {
		struct omop_table *t = &catalog->tables[catalog->n++];
		char *spec = strdup(fixture_tables[i]), *save = NULL;
		char *colon = strchr(spec, ':');
		assert_non_null(colon);
		*colon = '\0';
		t->name = strdup(spec);
		for (char *c = strtok_r(colon + 1, ",", &save); c; c = strtok_r(NULL, ",", &save)) {
			t->cols = realloc(t->cols, (size_t)(t->ncols + 1) * sizeof(*t->cols));
			t->cols[t->ncols++] = strdup(c);
		}
		free(spec);
	}
	return catalog;
}

/* stage2 - guard then resolver; 0 with the lineage as "P", "A", "O" per column, or -1 */
static int stage2(const char *sql, char *lineage, size_t len, char *err, size_t errlen)
{
	struct sqlresolve_output o;
	char *out = sqlguard_check(sql, err, errlen);
	int rc;

	if (out == NULL)
		return -1;
	rc = sqlresolve_check(out, fixture_catalog(), &o, err, errlen);
	free(out);
	if (rc < 0)
		return -1;
	if (o.n < 0) {
		snprintf(lineage, len, "?");
	} else {
		for (int i = 0; i < o.n && (size_t)i + 1 < len; i++)
			lineage[i] = "POA"[o.lineage[i] == SQLRESOLVE_PERSON ? 0 :
					   o.lineage[i] == SQLRESOLVE_OTHER ? 1 : 2];
		lineage[o.n < (int)len ? o.n : (int)len - 1] = '\0';
	}
	sqlresolve_output_free(&o);
	return 0;
}

/* lineage - sql passes both stages and its output columns have the lineage want */
static void lineage(const char *sql, const char *want)
{
	char got[64], err[512] = "";

	if (stage2(sql, got, sizeof(got), err, sizeof(err)) < 0) {
		print_error("refused: %s\n   with: %s\n", sql, err);
		fail();
	}
	if (strcmp(got, want) != 0)
		print_error("lineage of: %s\n", sql);
	assert_string_equal(got, want);
}

/* resolve_refused - sql passes the guard's first stage, the second refuses it with want */
static void resolve_refused(const char *sql, const char *want)
{
	char got[64], err[512];

	memset(err, 'x', sizeof(err));
	if (stage2(sql, got, sizeof(got), err, sizeof(err)) == 0) {
		print_error("accepted: %s\n", sql);
		fail();
	}
	assert_string_equal(err, want);
}

/* refused - the guard refuses sql with exactly want */
static void refused(const char *sql, const char *want)
{
	char err[512];
	char *out;

	memset(err, 'x', sizeof(err));
	out = sqlguard_check(sql, err, sizeof(err));
	if (out != NULL) {
		print_error("accepted: %s\n     as: %s\n", sql, out);
		free(out);
		fail();
	}
	assert_string_equal(err, want);
}

/* accepted - the guard accepts sql as exactly want, and accepts want as itself */
static void accepted(const char *sql, const char *want)
{
	char err[512] = "";
	char *out, *again;

	out = sqlguard_check(sql, err, sizeof(err));
	if (out == NULL) {
		print_error("refused: %s\n   with: %s\n", sql, err);
		fail();
	}
	assert_string_equal(out, want);
	assert_string_equal(err, "");
	again = sqlguard_check(out, err, sizeof(err));
	if (again == NULL) {
		print_error("second pass refused: %s\n   with: %s\n", out, err);
		free(out);
		fail();
	}
	assert_string_equal(again, out);
	free(again);
	/* and the second stage, against the fixture's catalog, accepts it too */
	{
		struct sqlresolve_output o;
		/* (the stage-one tests pin catalog names to omop: no such table there) */
		if (sqlresolve_check(out, fixture_catalog(), &o, err, sizeof(err)) < 0 &&
		    !(strncmp(err, "The table '", 11) == 0 && strstr(err, "' does not exist."))) {
			print_error("second stage refused: %s\n   with: %s\n", out, err);
			free(out);
			fail();
		}
		sqlresolve_output_free(&o);
	}
	free(out);
}

/* function_refused - SELECT name(args) is refused as that function, and the
 * allow-list does not hold it */
static void function_refused(const char *name, const char *args)
{
	char sql[256], want[256];

	snprintf(sql, sizeof(sql), "SELECT %s(%s) FROM person", name, args);
	snprintf(want, sizeof(want), "Function '%s' is not allowed.", name);
	refused(sql, want);
	assert_false(sqlguard_function_allowed(name));
}

/* --- statements other than SELECT --- */

static void test_drop(void **state)
{
	refused("DROP TABLE omop.person", ONLY_SELECT);
	refused("DROP SCHEMA omop CASCADE", ONLY_SELECT);
}

static void test_delete(void **state)
{
	refused("DELETE FROM person", ONLY_SELECT);
	refused("WITH x AS (SELECT 1) DELETE FROM person", ONLY_SELECT);
}

static void test_update(void **state)
{
	refused("UPDATE person SET year_of_birth = 1900", ONLY_SELECT);
}

static void test_insert(void **state)
{
	refused("INSERT INTO person (person_id) VALUES (1)", ONLY_SELECT);
	refused("INSERT INTO person SELECT * FROM person", ONLY_SELECT);
}

static void test_create(void **state)
{
	refused("CREATE TABLE stolen (a int)", ONLY_SELECT);
	refused("CREATE TABLE stolen AS SELECT * FROM person", ONLY_SELECT);
	refused("CREATE FUNCTION f() RETURNS int AS 'select 1' LANGUAGE sql", ONLY_SELECT);
}

static void test_alter(void **state)
{
	refused("ALTER TABLE person ADD COLUMN x int", ONLY_SELECT);
	refused("ALTER ROLE current_user SET search_path = pg_catalog", ONLY_SELECT);
}

static void test_truncate(void **state)
{
	refused("TRUNCATE person", ONLY_SELECT);
}

static void test_copy(void **state)
{
	refused("COPY person TO '/tmp/person.csv'", ONLY_SELECT);
	refused("COPY (SELECT * FROM person) TO STDOUT", ONLY_SELECT);
	refused("COPY person FROM PROGRAM 'id'", ONLY_SELECT);
}

static void test_explain(void **state)
{
	refused("EXPLAIN SELECT * FROM person", ONLY_SELECT);
	refused("EXPLAIN ANALYZE DELETE FROM person", ONLY_SELECT);
}

static void test_other_statements(void **state)
{
	refused("SET search_path = pg_catalog", ONLY_SELECT);
	refused("SHOW search_path", ONLY_SELECT);
	refused("CALL p()", ONLY_SELECT);
	refused("DO $$BEGIN PERFORM 1; END$$", ONLY_SELECT);
	refused("LOCK TABLE person", ONLY_SELECT);
	refused("LISTEN ch", ONLY_SELECT);
	refused("NOTIFY ch, 'x'", ONLY_SELECT);
	refused("PREPARE q AS SELECT 1", ONLY_SELECT);
	refused("EXECUTE q", ONLY_SELECT);
	refused("BEGIN", ONLY_SELECT);
	refused("COMMIT", ONLY_SELECT);
	refused("DECLARE c CURSOR FOR SELECT * FROM person", ONLY_SELECT);
	refused("GRANT SELECT ON person TO public", ONLY_SELECT);
}

/* --- statement count and parsing --- */

static void test_stacked_statements(void **state)
{
	refused("SELECT 1; SELECT 2", ONE_STATEMENT);
	refused("SELECT * FROM person; DROP TABLE person", ONE_STATEMENT);
	refused("SELECT 1; ;", ONE_STATEMENT);
	refused("; SELECT 1", ONE_STATEMENT);
	refused("; ;", ONE_STATEMENT);
	refused(";", ONE_STATEMENT);
	refused("SELECT 1;;", ONE_STATEMENT);
	refused("SELECT 1; /* c */ ;", ONE_STATEMENT);
}

static void test_empty(void **state)
{
	refused("", ONE_STATEMENT);
	refused(" \t\n ", ONE_STATEMENT);
	refused("-- only a comment", ONE_STATEMENT);
}

static void test_trailing_semicolon(void **state)
{
	accepted("SELECT person_id FROM person;", "SELECT person_id FROM omop.person");
	accepted("SELECT person_id FROM person ; -- done\n",
		 "SELECT person_id FROM omop.person");
	accepted("SELECT ';' AS semi FROM person", "SELECT ';' AS semi FROM omop.person");
}

static void test_parse_error(void **state)
{
	refused("SELEC 1", "Could not parse SQL query: syntax error at or near \"SELEC\"");
	refused("SELECT * FROM person WHERE", "Could not parse SQL query: syntax error at end of input");
}

static void test_parse_error_hides_literals(void **state)
{
	/* the parser would say: at or near "'Jones'" */
	refused("SELECT 'Smith' 'Jones'", "Could not parse SQL query: syntax error at character 16");
	refused("SELECT * FROM person WHERE person_source_value = 'Smith",
		"Could not parse SQL query: unterminated quoted string at character 50");
	refused("SELECT 123abc", "Could not parse SQL query: trailing junk after numeric literal at character 8");
}

static void test_length(void **state)
{
	size_t n = SQLGUARD_MAX_LENGTH + 1;
	char *sql = malloc(n + 1);
	char *out;
	char err[256];

	assert_non_null(sql);
	memset(sql, ' ', n);
	memcpy(sql, "SELECT 1", 8);
	sql[n] = '\0';
	assert_int_equal(strlen(sql), 10241);
	refused(sql, "Query exceeds the maximum length of 10240 characters.");

	/* exactly the cap is fine */
	sql[n - 1] = '\0';
	out = sqlguard_check(sql, err, sizeof(err));
	assert_non_null(out);
	assert_string_equal(out, "SELECT 1");
	free(out);

	/* the cap counts characters, not bytes: 10,240 two-byte letters are fine */
	free(sql);
	sql = malloc(2 * SQLGUARD_MAX_LENGTH + 1);
	assert_non_null(sql);
	memcpy(sql, "SELECT '", 8);
	for (size_t i = 8; i < 2 * (SQLGUARD_MAX_LENGTH - 9) + 8; i += 2)
		memcpy(sql + i, "\xc3\xa9", 2);
	strcpy(sql + 2 * (SQLGUARD_MAX_LENGTH - 9) + 8, "'");
	out = sqlguard_check(sql, err, sizeof(err));
	assert_non_null(out);
	free(out);
	free(sql);
}

static void test_not_utf8(void **state)
{
	refused("SELECT '\xff' FROM person", "Query is not valid UTF-8.");
	refused("SELECT '\xc0\xaf' FROM person", "Query is not valid UTF-8.");
}

static void test_null_arguments(void **state)
{
	char err[64];
	char *out;

	assert_null(sqlguard_check(NULL, err, sizeof(err)));
	assert_string_equal(err, "Could not validate query.");
	assert_null(sqlguard_check("DROP TABLE person", NULL, 0));
	out = sqlguard_check("SELECT 1", NULL, 0);
	assert_non_null(out);
	free(out);
	/* a short buffer is truncated, never overrun */
	assert_null(sqlguard_check("DROP TABLE person", err, 5));
	assert_string_equal(err, "Only");
}

/* --- schema pinning --- */

static void test_pg_catalog_pg_tables(void **state)
{
	refused("SELECT * FROM pg_catalog.pg_tables", "Schema 'pg_catalog' is not accessible.");
}

static void test_information_schema(void **state)
{
	refused("SELECT * FROM information_schema.tables",
		"Schema 'information_schema' is not accessible.");
}

static void test_other_schemas(void **state)
{
	refused("SELECT * FROM public.person", "Schema 'public' is not accessible.");
	refused("SELECT * FROM person p JOIN pg_toast.x t ON true", "Schema 'pg_toast' is not accessible.");
}

static void test_unqualified_pg_class(void **state)
{
	/* accepted by the guard: omop.pg_class does not exist, the catalog is not read */
	accepted("SELECT relname FROM pg_class", "SELECT relname FROM omop.pg_class");
}

static void test_unqualified_pg_authid(void **state)
{
	accepted("SELECT rolname, rolpassword FROM pg_authid",
		 "SELECT rolname, rolpassword FROM omop.pg_authid");
}

static void test_union_arm_catalog(void **state)
{
	refused("SELECT person_id FROM person UNION SELECT oid FROM pg_catalog.pg_class",
		"Schema 'pg_catalog' is not accessible.");
	accepted("SELECT person_id FROM person UNION SELECT oid FROM pg_class",
		 "SELECT person_id FROM omop.person UNION SELECT oid FROM omop.pg_class");
}

static void test_scalar_subquery_catalog(void **state)
{
	refused("SELECT (SELECT rolpassword FROM pg_catalog.pg_authid LIMIT 1) FROM person",
		"Schema 'pg_catalog' is not accessible.");
	accepted("SELECT (SELECT rolpassword FROM pg_authid LIMIT 1) FROM person",
		 "SELECT (SELECT rolpassword FROM omop.pg_authid LIMIT 1) FROM omop.person");
	refused("SELECT * FROM person WHERE person_id IN (SELECT oid FROM pg_catalog.pg_roles)",
		"Schema 'pg_catalog' is not accessible.");
}

static void test_quoted_cte_trick(void **state)
{
	/* "PG_CLASS" does not fold to pg_class: the reference is a table, pinned */
	accepted("WITH \"PG_CLASS\" AS (SELECT 1 AS relname) SELECT relname FROM pg_class",
		 "WITH \"PG_CLASS\" AS (SELECT 1 AS relname) SELECT relname FROM omop.pg_class");
	accepted("WITH pg_class AS (SELECT 1 AS relname) SELECT relname FROM \"PG_CLASS\"",
		 "WITH pg_class AS (SELECT 1 AS relname) SELECT relname FROM omop.\"PG_CLASS\"");
	/* and an unquoted PG_CLASS does fold, so it binds */
	accepted("WITH PG_CLASS AS (SELECT 1 AS relname) SELECT relname FROM pg_class",
		 "WITH pg_class AS (SELECT 1 AS relname) SELECT relname FROM pg_class");
}

static void test_quoted_omop(void **state)
{
	refused("SELECT * FROM \"OMOP\".person", "Schema 'OMOP' is not accessible.");
	accepted("SELECT * FROM OMOP.person", "SELECT * FROM omop.person");
}

static void test_cross_database(void **state)
{
	refused("SELECT * FROM otherdb.omop.person", "Cross-database table references are not allowed.");
}

static void test_identifier_in_message_is_cleaned(void **state)
{
	refused("SELECT * FROM \"a\nb\".person", "Schema 'a?b' is not accessible.");
}

/* --- data-modifying nodes --- */

static void test_writable_cte(void **state)
{
	const char *want = "Data-modifying statements are not allowed in WITH.";

	refused("WITH x AS (DELETE FROM person RETURNING *) SELECT * FROM x", want);
	refused("WITH x AS (UPDATE person SET year_of_birth = 1 RETURNING *) SELECT * FROM x", want);
	refused("WITH x AS (INSERT INTO person (person_id) VALUES (1) RETURNING *) SELECT 1", want);
	refused("SELECT * FROM (WITH x AS (DELETE FROM person RETURNING *) SELECT * FROM x) s", want);
}

static void test_select_into(void **state)
{
	refused("SELECT * INTO stolen FROM person", "SELECT ... INTO is not allowed.");
	refused("SELECT * INTO TEMP stolen FROM person", "SELECT ... INTO is not allowed.");
}

static void test_for_update(void **state)
{
	const char *want = "FOR UPDATE/SHARE is not allowed.";

	refused("SELECT * FROM person FOR UPDATE", want);
	refused("SELECT * FROM person FOR SHARE", want);
	refused("SELECT * FROM person FOR NO KEY UPDATE NOWAIT", want);
	refused("SELECT * FROM (SELECT * FROM person FOR KEY SHARE) s", want);
}

/* --- functions --- */

static void test_from_pg_catalog_pg_ls_dir(void **state)
{
	refused("SELECT * FROM pg_catalog.pg_ls_dir('/')", QUALIFIED_FUNCTION);
}

static void test_from_omop_pg_ls_dir(void **state)
{
	refused("SELECT * FROM omop.pg_ls_dir('/')", QUALIFIED_FUNCTION);
}

static void test_from_lateral_query_to_xml(void **state)
{
	refused("SELECT * FROM person p, LATERAL query_to_xml('select * from pg_authid', true, true, '') x",
		"Function 'query_to_xml' is not allowed.");
}

static void test_select_pg_read_file(void **state)
{
	refused("SELECT pg_read_file('/etc/passwd')", "Function 'pg_read_file' is not allowed.");
}

static void test_where_pg_ls_dir(void **state)
{
	refused("SELECT person_id FROM person WHERE pg_ls_dir('/') IS NOT NULL",
		"Function 'pg_ls_dir' is not allowed.");
}

static void test_pg_sleep(void **state)
{
	refused("SELECT pg_sleep(10)", "Function 'pg_sleep' is not allowed.");
	refused("SELECT * FROM person WHERE (SELECT pg_sleep(10)) IS NULL",
		"Function 'pg_sleep' is not allowed.");
}

static void test_set_config(void **state)
{
	refused("SELECT set_config('search_path', 'pg_catalog', false)",
		"Function 'set_config' is not allowed.");
}

static void test_schema_qualified_calls(void **state)
{
	refused("SELECT pg_catalog.lower('A')", QUALIFIED_FUNCTION);
	refused("SELECT omop.lower('A')", QUALIFIED_FUNCTION);
	refused("SELECT pg_catalog.extract('year', now())", QUALIFIED_FUNCTION);
	refused("SELECT a.b.lower('A')", QUALIFIED_FUNCTION);
	refused("SELECT 1 OPERATOR(omop.+) 2", "Schema-qualified operators are not allowed.");
}

static void test_from_functions(void **state)
{
	refused("SELECT * FROM lower('x')", "Function 'lower' is not allowed in FROM.");
	refused("SELECT * FROM pg_ls_dir('/')", "Function 'pg_ls_dir' is not allowed.");
	refused("SELECT * FROM CURRENT_DATE", "Only generate_series and unnest are allowed in FROM.");
	refused("SELECT * FROM ROWS FROM (generate_series(1, 2), pg_ls_dir('/'))",
		"Function 'pg_ls_dir' is not allowed.");
	refused("SELECT * FROM generate_series(1, 3) AS g(x int)",
		"SQL construct 'ColumnDef' is not allowed.");
}

static void test_session_values(void **state)
{
	refused("SELECT current_user", "Function 'current_user' is not allowed.");
	refused("SELECT session_user", "Function 'session_user' is not allowed.");
	refused("SELECT current_catalog", "Function 'current_catalog' is not allowed.");
	refused("SELECT COLLATION FOR ('a')", "Function 'pg_collation_for' is not allowed.");
}

static void test_other_constructs(void **state)
{
	refused("SELECT * FROM XMLTABLE('/a' PASSING '<a/>' COLUMNS x int)",
		"SQL construct 'RangeTableFunc' is not allowed.");
	refused("SELECT xmlelement(name a)", "SQL construct 'XmlExpr' is not allowed.");
	refused("SELECT * FROM person WHERE person_id = $1", "Query parameters are not allowed.");
	refused("SELECT * FROM person TABLESAMPLE system_rows(10)",
		"Tablesample method 'system_rows' is not allowed.");
}

static void test_nesting(void **state)
{
	char *sql = malloc(SQLGUARD_MAX_LENGTH + 1);
	size_t j;

	assert_non_null(sql);
	j = (size_t)sprintf(sql, "SELECT ");
	for (int i = 0; i < 3000; i++)
		j += (size_t)sprintf(sql + j, "1+");
	strcpy(sql + j, "1");
	refused(sql, "Query is nested too deeply.");
	free(sql);
}

/* one test per refused family of docs/design/data-access.md */
static void test_family_pg_read_binary_file(void **state)
{
	function_refused("pg_read_binary_file", "'/etc/passwd'");
}

static void test_family_pg_stat_file(void **state)
{
	function_refused("pg_stat_file", "'/etc/passwd'");
}

static void test_family_lo(void **state)
{
	function_refused("lo_import", "'/etc/passwd'");
	function_refused("lo_export", "1, '/tmp/x'");
	function_refused("lo_get", "1");
}

static void test_family_dblink(void **state)
{
	function_refused("dblink", "'host=x', 'select 1'");
	function_refused("dblink_exec", "'host=x', 'drop table person'");
	refused("SELECT * FROM dblink('host=x', 'select 1') AS t(a int)",
		"Function 'dblink' is not allowed.");
}

static void test_family_to_xml(void **state)
{
	function_refused("table_to_xml", "'person', true, true, ''");
	function_refused("query_to_xml", "'select 1', true, true, ''");
	function_refused("cursor_to_xml", "'c', 1, true, true, ''");
	function_refused("schema_to_xml", "'omop', true, true, ''");
	function_refused("database_to_xml", "true, true, ''");
}

static void test_family_current_setting(void **state)
{
	function_refused("current_setting", "'data_directory'");
}

static void test_family_pg_sleep(void **state)
{
	function_refused("pg_sleep_for", "'1 hour'");
	function_refused("pg_sleep_until", "'tomorrow'");
}

static void test_family_pg_terminate_backend(void **state)
{
	function_refused("pg_terminate_backend", "1");
}

static void test_family_pg_cancel_backend(void **state)
{
	function_refused("pg_cancel_backend", "1");
}

static void test_family_txid(void **state)
{
	function_refused("txid_current", "");
	function_refused("txid_current_snapshot", "");
}

static void test_family_pg_current(void **state)
{
	function_refused("pg_current_wal_lsn", "");
	function_refused("pg_current_logfile", "");
}

static void test_family_pg_advisory(void **state)
{
	function_refused("pg_advisory_lock", "1");
	function_refused("pg_advisory_xact_lock", "1");
}

static void test_family_pg_notify(void **state)
{
	function_refused("pg_notify", "'ch', 'x'");
}

static void test_family_version(void **state)
{
	function_refused("version", "");
}

static void test_family_inet(void **state)
{
	function_refused("inet_client_addr", "");
	function_refused("inet_server_addr", "");
}

static void test_family_has_privilege(void **state)
{
	function_refused("has_table_privilege", "'person', 'select'");
	function_refused("has_schema_privilege", "'omop', 'usage'");
}

static void test_family_pg_in_general(void **state)
{
	function_refused("pg_backend_pid", "");
	function_refused("pg_reload_conf", "");
	function_refused("pg_ls_waldir", "");
	function_refused("pg_get_userbyid", "10");
	function_refused("nextval", "'s'");
	function_refused("setseed", "0.5");
	function_refused("current_database", "");
}

static void test_allow_list(void **state)
{
	static const char *const must[] = {
		"count", "sum", "avg", "min", "max", "stddev", "percentile_cont", "string_agg",
		"row_number", "rank", "lag", "lead", "date_part", "date_trunc", "age", "extract",
		"to_char", "to_date", "make_date", "substring", "substr", "lower", "upper", "trim",
		"length", "replace", "split_part", "left", "right", "strpos", "regexp_replace",
		"abs", "round", "floor", "ceil", "power", "sqrt", "mod", "generate_series", "unnest",
	};

	for (size_t i = 0; i < sizeof(must) / sizeof(must[0]); i++)
		if (!sqlguard_function_allowed(must[i])) {
			print_error("not allowed: %s\n", must[i]);
			fail();
		}
	/* names are compared as folded: "COUNT" is not count */
	assert_false(sqlguard_function_allowed("COUNT"));
	assert_false(sqlguard_function_allowed(""));
	assert_false(sqlguard_function_allowed(NULL));
	refused("SELECT \"COUNT\"(*) FROM person", "Function 'COUNT' is not allowed.");
}

/* --- attribute notation, casts, SQL held in strings (issue 9) --- */

static void test_field_selection_is_a_function_call(void **state)
{
	/* PostgreSQL resolves (x).f to f(x) when x has no field f */
	refused("SELECT (lower('server_version')).current_setting FROM person",
		"Function 'current_setting' is not allowed.");
	refused("SELECT (3.0::float8).pg_sleep FROM person", "Function 'pg_sleep' is not allowed.");
	refused("SELECT person_id FROM person WHERE (lower('/etc/passwd')).pg_read_file IS NOT NULL",
		"Function 'pg_read_file' is not allowed.");
	refused("SELECT ('select rolname from pg_roles'::text).ts_stat FROM person",
		"Function 'ts_stat' is not allowed.");
	refused("SELECT (person_id).lower FROM person", "Function 'lower' is not allowed.");
	refused("SELECT (ARRAY[person_id])[1].x FROM person", "Function 'x' is not allowed.");
	refused("SELECT (row(1, 2)).f1 FROM person", "Function 'f1' is not allowed.");
	/* four names are never a column: schema.table.column.field at most three */
	refused("SELECT omop.person.person_id.lower FROM person",
		"The column 'omop.person.person_id.lower' does not exist.");
	refused("SELECT public.person.person_id FROM person",
		"The column 'public.person.person_id' does not exist.");
}

static void test_casts_only_to_plain_types(void **state)
{
	refused("SELECT person_id FROM person WHERE ('\"' || person_source_value || '\"')::regclass "
		"IS NOT NULL AND person_id = 7",
		"Cast to type 'regclass' is not allowed.");
	refused("SELECT CAST(person_source_value AS regtype) FROM person",
		"Cast to type 'regtype' is not allowed.");
	refused("SELECT person_source_value::regproc FROM person", "Cast to type 'regproc' is not allowed.");
	refused("SELECT 'x'::regnamespace FROM person", "Cast to type 'regnamespace' is not allowed.");
	refused("SELECT person_source_value::json FROM person", "Cast to type 'json' is not allowed.");
	refused("SELECT person_source_value::jsonb FROM person", "Cast to type 'jsonb' is not allowed.");
	refused("SELECT person_source_value::xml FROM person", "Cast to type 'xml' is not allowed.");
	refused("SELECT person_source_value::pg_catalog.regclass FROM person",
		"Cast to type 'regclass' is not allowed.");
	refused("SELECT person_source_value::public.mytype FROM person",
		"Cast to type 'public.mytype' is not allowed.");
	refused("SELECT person_source_value::tsvector FROM person",
		"Cast to type 'tsvector' is not allowed.");
	/* plain types stay fine, arrays of them too */
	accepted("SELECT person_id::text, year_of_birth::numeric(6, 1), '2020-01-01'::date, "
		 "CAST(person_id AS bigint), '{1,2}'::int[], true::boolean, "
		 "'00000000-0000-0000-0000-000000000000'::uuid, interval '1 year', "
		 "birth_datetime::timestamptz, person_source_value::varchar(10) FROM person",
		 "SELECT person_id::text, year_of_birth::numeric(6, 1), '2020-01-01'::date, "
		 "person_id::bigint, '{1,2}'::int[], true::boolean, "
		 "'00000000-0000-0000-0000-000000000000'::uuid, '1 year'::interval, "
		 "birth_datetime::timestamptz, person_source_value::varchar(10) FROM omop.person");
}

static void test_sql_in_a_string_denied(void **state)
{
	static const char *const deny[] = {
		"ts_stat", "ts_rewrite", "query_to_xml", "query_to_xml_and_xmlschema",
		"table_to_xml", "cursor_to_xml", "schema_to_xml", "database_to_xml", "xpath",
		"xpath_exists", "xmlparse", "query_to_json",
	};

	for (size_t i = 0; i < sizeof(deny) / sizeof(deny[0]); i++) {
		assert_false(sqlguard_function_allowed(deny[i]));
		assert_true(sqlguard_function_denied(deny[i]));
	}
	assert_true(sqlguard_function_denied("pg_read_file"));
	assert_true(sqlguard_function_denied("lo_import"));
	assert_true(sqlguard_function_denied("dblink_exec"));
	assert_false(sqlguard_function_denied("lower"));
	refused("SELECT * FROM ts_stat('select rolname::tsvector from pg_roles')",
		"Function 'ts_stat' is not allowed.");
}

/* --- the second stage: names against the catalog (sqlresolve) --- */

static void test_alias_dot_function_is_refused(void **state)
{
	/* alias.f is f(alias) to PostgreSQL when the relation has no column f */
	resolve_refused("SELECT p.row_to_json FROM person p", "The column 'p.row_to_json' does not exist.");
	resolve_refused("SELECT person_id FROM person p WHERE p.current_setting IS NULL",
			"The column 'p.current_setting' does not exist.");
	resolve_refused("SELECT s.pg_read_file FROM (SELECT '/etc/passwd' AS path) s",
			"The column 's.pg_read_file' does not exist.");
	resolve_refused("WITH c AS (SELECT person_id FROM person) SELECT c.to_json FROM c",
			"The column 'c.to_json' does not exist.");
	resolve_refused("SELECT g.pg_sleep FROM generate_series(1, 2) g",
			"The column 'g.pg_sleep' does not exist.");
	resolve_refused("SELECT person.txid_current FROM person",
			"The column 'person.txid_current' does not exist.");
	resolve_refused("SELECT omop.person.version FROM person",
			"The column 'omop.person.version' does not exist.");
	resolve_refused("SELECT x.person_id FROM person p", "The column 'x.person_id' does not exist.");
	resolve_refused("SELECT j.person_id FROM (person p JOIN death d USING (person_id)) AS j(a)",
			"The column 'j.person_id' does not exist.");
	resolve_refused("SELECT p.person_id FROM person p ORDER BY p.lower",
			"The column 'p.lower' does not exist.");
	resolve_refused("SELECT p.person_id FROM person p WHERE EXISTS (SELECT 1 FROM death d "
			"WHERE d.person_id = p.md5)", "The column 'p.md5' does not exist.");
}

static void test_unknown_names_from_the_query(void **state)
{
	resolve_refused("SELECT person_id FROM nosuchtable", "The table 'nosuchtable' does not exist.");
	resolve_refused("SELECT nosuchcolumn FROM person", "The column 'nosuchcolumn' does not exist.");
	resolve_refused("SELECT p.nosuch FROM person p", "The column 'p.nosuch' does not exist.");
	/* names from the query only, cleaned */
	resolve_refused("SELECT \"a\nb\" FROM person", "The column 'a?b' does not exist.");
}

static void test_columns_that_exist_are_fine(void **state)
{
	lineage("SELECT p.person_id, p.year_of_birth, omop.person.gender_source_value FROM person p, "
		"person", "POO");
	lineage("SELECT s.n, s.person_id FROM (SELECT count(*) AS n, person_id FROM person GROUP BY "
		"person_id) s", "OP");
	lineage("SELECT v.column1 FROM (VALUES (1), (2)) v", "O");
	lineage("SELECT g.g, u.x, o.ordinality FROM generate_series(1, 3) g, unnest(ARRAY[1]) u(x), "
		"generate_series(1, 2) WITH ORDINALITY o", "OOO");
	lineage("SELECT j.person_id FROM (person p JOIN death d USING (person_id)) AS j", "P");
	lineage("SELECT person_id AS pid FROM person ORDER BY pid", "P");
	lineage("SELECT * FROM death", "POOOOOO");
}

static void test_subject_lineage(void **state)
{
	lineage("SELECT person_id FROM person", "P");
	lineage("SELECT io.accession_id, io.person_id FROM image_occurrence io", "AP");
	lineage("WITH cohort AS (SELECT person_id FROM person) SELECT c.person_id FROM cohort c", "P");
	lineage("SELECT person_id FROM condition_occurrence UNION SELECT person_id FROM death", "P");
	lineage("SELECT p.person_id FROM person p JOIN death d ON d.person_id = p.person_id", "P");
	lineage("SELECT person_id FROM person JOIN death USING (person_id)", "P");
	lineage("SELECT person_id FROM person NATURAL JOIN death", "P");
	lineage("SELECT x.pid FROM (SELECT person_id AS pid FROM person) x", "P");
	lineage("SELECT * FROM (SELECT person_id FROM person) s", "P");
	/* an accession_id of another table is not image_occurrence's */
	lineage("SELECT 'x' AS accession_id FROM person", "O");
}

static void test_fake_subjects_are_uncountable(void **state)
{
	/* the reproductions */
	lineage("SELECT g AS person_id FROM generate_series(1, (SELECT year_of_birth - 1900 FROM person "
		"WHERE person_id = 7)) g", "O");
	lineage("SELECT p.person_id * 100 + g AS person_id FROM person p, generate_series(1, 12) g "
		"WHERE p.person_id = 7", "O");
	lineage("SELECT person_id FROM person WHERE person_id = 7 UNION ALL SELECT g FROM "
		"generate_series(1000, 1011) g", "O");
	lineage("SELECT g FROM generate_series(1000, 1011) g UNION SELECT person_id FROM person", "O");
	lineage("SELECT column1 AS person_id FROM (VALUES (1), (2), (3)) v", "O");
	lineage("SELECT 7 AS person_id FROM person", "O");
	lineage("SELECT (SELECT person_id FROM person LIMIT 1) AS person_id FROM person", "O");
	lineage("SELECT max(person_id) AS person_id FROM person", "O");
	lineage("SELECT person_id + 0 AS person_id FROM person", "O");
	lineage("SELECT COALESCE(person_id, 1) AS person_id FROM person", "O");
	lineage("SELECT person_id::bigint AS person_id FROM person", "O");
	lineage("WITH f(person_id) AS (SELECT g FROM generate_series(1, 20) g) SELECT person_id FROM f", "O");
	lineage("WITH person AS (SELECT g AS person_id FROM generate_series(1, 20) g) SELECT person_id "
		"FROM person", "O");
	lineage("WITH RECURSIVE r(person_id) AS (SELECT person_id FROM person WHERE person_id = 7 "
		"UNION ALL SELECT person_id + 1 FROM r WHERE person_id < 20) SELECT person_id FROM r", "O");
	lineage("SELECT x.person_id FROM (SELECT g AS person_id FROM generate_series(1, 20) g) x", "O");
	lineage("SELECT person_id FROM person FULL JOIN (SELECT g AS person_id FROM "
		"generate_series(1, 20) g) f USING (person_id)", "O");
	lineage("SELECT 'ACC' || g AS accession_id FROM generate_series(1, 20) g", "O");
}

/* --- LIMIT and OFFSET --- */

static void test_limit_case(void **state)
{
	char err[512];

	refused("SELECT * FROM person LIMIT CASE WHEN (SELECT substr(person_source_value, 1, 1) "
		"FROM person LIMIT 1) = 'b' THEN 6 ELSE 1 END",
		LIMIT_LITERAL);
	/* the message never carries the probed value */
	assert_null(sqlguard_check("SELECT 1 LIMIT CASE WHEN 'secret' = 'x' THEN 1 END", err,
				   sizeof(err)));
	assert_null(strstr(err, "secret"));
}

static void test_limit_subquery(void **state)
{
	refused("SELECT * FROM person LIMIT (SELECT count(*) FROM person)", LIMIT_LITERAL);
	refused("SELECT * FROM person LIMIT 1 + 1", LIMIT_LITERAL);
	refused("SELECT * FROM person LIMIT 1.5", LIMIT_LITERAL);
	refused("SELECT * FROM person LIMIT '5'::int", LIMIT_LITERAL);
	refused("SELECT * FROM person FETCH FIRST (SELECT 1) ROWS ONLY", LIMIT_LITERAL);
}

static void test_offset_case(void **state)
{
	refused("SELECT * FROM person OFFSET CASE WHEN true THEN 1 ELSE 0 END", OFFSET_LITERAL);
	refused("SELECT * FROM person LIMIT 1 OFFSET (SELECT 1)", OFFSET_LITERAL);
}

static void test_subquery_limit_case(void **state)
{
	refused("SELECT * FROM (SELECT * FROM person LIMIT CASE WHEN true THEN 1 END) s",
		LIMIT_LITERAL);
	refused("SELECT * FROM person p WHERE EXISTS (SELECT 1 FROM death d OFFSET CASE WHEN true THEN 1 END)",
		OFFSET_LITERAL);
	refused("WITH c AS (SELECT * FROM person LIMIT (SELECT 1)) SELECT * FROM c", LIMIT_LITERAL);
	refused("SELECT person_id FROM person UNION (SELECT person_id FROM death LIMIT (SELECT 2))",
		LIMIT_LITERAL);
}

static void test_limit_literals(void **state)
{
	accepted("SELECT * FROM omop.person LIMIT 10 OFFSET 20",
		 "SELECT * FROM omop.person LIMIT 10 OFFSET 20");
	accepted("SELECT * FROM person LIMIT ALL", "SELECT * FROM omop.person LIMIT ALL");
	accepted("SELECT * FROM person FETCH FIRST 5 ROWS ONLY", "SELECT * FROM omop.person LIMIT 5");
	accepted("SELECT * FROM person LIMIT 99999999999", "SELECT * FROM omop.person LIMIT 99999999999");
}

/* --- accepted shapes --- */

static void test_cohort_cte_binds(void **state)
{
	accepted("WITH cohort AS (SELECT person_id FROM person) SELECT * FROM cohort",
		 "WITH cohort AS (SELECT person_id FROM omop.person) SELECT * FROM cohort");
}

static void test_inner_cte_does_not_cover_outer(void **state)
{
	accepted("SELECT * FROM (WITH cohort AS (SELECT person_id FROM person) SELECT * FROM cohort) c "
		 "JOIN cohort USING (person_id)",
		 "SELECT * FROM (WITH cohort AS (SELECT person_id FROM omop.person) SELECT * FROM cohort) c "
		 "JOIN omop.cohort USING (person_id)");
	accepted("(WITH c AS (SELECT 1) SELECT * FROM c) UNION SELECT * FROM c",
		 "(WITH c AS (SELECT 1) SELECT * FROM c) UNION SELECT * FROM omop.c");
}

static void test_cte_sees_only_earlier_members(void **state)
{
	/* non-recursive: neither itself nor a later member */
	accepted("WITH c AS (SELECT 1 FROM c) SELECT * FROM c",
		 "WITH c AS (SELECT 1 FROM omop.c) SELECT * FROM c");
	accepted("WITH a AS (SELECT person_id FROM b), b AS (SELECT person_id FROM person) "
		 "SELECT * FROM a JOIN b USING (person_id)",
		 "WITH a AS (SELECT person_id FROM omop.b), b AS (SELECT person_id FROM omop.person) "
		 "SELECT * FROM a JOIN b USING (person_id)");
	accepted("WITH a AS (SELECT person_id FROM person), b AS (SELECT person_id FROM a) SELECT * FROM b",
		 "WITH a AS (SELECT person_id FROM omop.person), b AS (SELECT person_id FROM a) SELECT * FROM b");
	/* an outer CTE is visible in an inner query */
	accepted("WITH a AS (SELECT person_id FROM person) SELECT * FROM death d WHERE d.person_id IN "
		 "(SELECT person_id FROM a)",
		 "WITH a AS (SELECT person_id FROM omop.person) SELECT * FROM omop.death d WHERE d.person_id IN "
		 "(SELECT person_id FROM a)");
}

static void test_multi_join_cohort(void **state)
{
	accepted("SELECT p.person_id, p.year_of_birth, co.condition_start_date FROM person p "
		 "JOIN condition_occurrence co ON co.person_id = p.person_id "
		 "JOIN concept c ON c.concept_id = co.condition_concept_id "
		 "LEFT JOIN visit_occurrence v ON v.visit_occurrence_id = co.visit_occurrence_id "
		 "WHERE c.concept_name ILIKE '%diabetes%' AND p.year_of_birth BETWEEN 1950 AND 1980",
		 "SELECT p.person_id, p.year_of_birth, co.condition_start_date FROM omop.person p "
		 "JOIN omop.condition_occurrence co ON co.person_id = p.person_id "
		 "JOIN omop.concept c ON c.concept_id = co.condition_concept_id "
		 "LEFT JOIN omop.visit_occurrence v ON v.visit_occurrence_id = co.visit_occurrence_id "
		 "WHERE c.concept_name ILIKE '%diabetes%' AND p.year_of_birth BETWEEN 1950 AND 1980");
	accepted("SELECT io.accession_id FROM image_occurrence io JOIN omop.person p USING (person_id)",
		 "SELECT io.accession_id FROM omop.image_occurrence io JOIN omop.person p USING (person_id)");
}

static void test_substring(void **state)
{
	accepted("SELECT SUBSTRING(person_source_value FROM 1 FOR 3), substring(person_source_value, 1, 3), "
		 "substr(person_source_value, 2) FROM person",
		 "SELECT SUBSTRING(person_source_value FROM 1 FOR 3), \"substring\"(person_source_value, 1, 3), "
		 "substr(person_source_value, 2) FROM omop.person");
}

static void test_window_functions(void **state)
{
	accepted("SELECT person_id, row_number() OVER (PARTITION BY gender_concept_id ORDER BY "
		 "birth_datetime DESC) AS rn, lag(year_of_birth) OVER w FROM person WINDOW w AS "
		 "(ORDER BY person_id)",
		 "SELECT person_id, row_number() OVER (PARTITION BY gender_concept_id ORDER BY "
		 "birth_datetime DESC) AS rn, lag(year_of_birth) OVER w FROM omop.person WINDOW w AS "
		 "(ORDER BY person_id)");
}

static void test_generate_series(void **state)
{
	accepted("SELECT d::date AS day FROM generate_series('2020-01-01'::date, '2020-12-31'::date, "
		 "interval '1 month') AS d",
		 "SELECT d::date AS day FROM generate_series('2020-01-01'::date, '2020-12-31'::date, "
		 "'1 month'::interval) d");
	accepted("SELECT x FROM person p, unnest(ARRAY[1, 2]) AS x",
		 "SELECT x FROM omop.person p, unnest(ARRAY[1, 2]) x");
}

static void test_non_function_constructs(void **state)
{
	accepted("SELECT COALESCE(death_date, CURRENT_DATE), NULLIF(cause_source_value, ''), "
		 "GREATEST(1, 2), LEAST(3, 4), CASE WHEN death_date IS NULL THEN 'alive' ELSE 'dead' END, "
		 "CAST(person_id AS text), person_id::bigint FROM death",
		 "SELECT COALESCE(death_date, current_date), NULLIF(cause_source_value, ''), "
		 "GREATEST(1, 2), LEAST(3, 4), CASE WHEN death_date IS NULL THEN 'alive' ELSE 'dead' END, "
		 "person_id::text, person_id::bigint FROM omop.death");
}

static void test_dates(void **state)
{
	accepted("SELECT extract(year from birth_datetime), date_part('year', birth_datetime), "
		 "age(CURRENT_DATE, birth_datetime) FROM person",
		 "SELECT extract ('year' FROM birth_datetime), date_part('year', birth_datetime), "
		 "age(current_date, birth_datetime) FROM omop.person");
}

static void test_tablesample(void **state)
{
	accepted("SELECT person_id FROM person TABLESAMPLE BERNOULLI (10) REPEATABLE (42)",
		 "SELECT person_id FROM omop.person TABLESAMPLE bernoulli(10) REPEATABLE (42)");
}

static void test_recursive_cte(void **state)
{
	accepted("WITH RECURSIVE ancestors(concept_id, depth) AS (SELECT 4329847, 0 UNION ALL "
		 "SELECT ca.ancestor_concept_id, a.depth + 1 FROM concept_ancestor ca JOIN ancestors a "
		 "ON ca.descendant_concept_id = a.concept_id WHERE a.depth < 5) SELECT * FROM ancestors",
		 "WITH RECURSIVE ancestors(concept_id, depth) AS (SELECT 4329847, 0 UNION ALL "
		 "SELECT ca.ancestor_concept_id, a.depth + 1 FROM omop.concept_ancestor ca JOIN ancestors a "
		 "ON ca.descendant_concept_id = a.concept_id WHERE a.depth < 5) SELECT * FROM ancestors");
}

static void test_union(void **state)
{
	accepted("SELECT person_id FROM condition_occurrence UNION SELECT person_id FROM drug_exposure",
		 "SELECT person_id FROM omop.condition_occurrence UNION SELECT person_id FROM omop.drug_exposure");
}

static void test_exists(void **state)
{
	accepted("SELECT p.person_id FROM person p WHERE EXISTS (SELECT 1 FROM observation o WHERE "
		 "o.person_id = p.person_id) AND NOT EXISTS (SELECT 1 FROM death d WHERE d.person_id = "
		 "p.person_id)",
		 "SELECT p.person_id FROM omop.person p WHERE EXISTS (SELECT 1 FROM omop.observation o WHERE "
		 "o.person_id = p.person_id) AND NOT EXISTS (SELECT 1 FROM omop.death d WHERE d.person_id = "
		 "p.person_id)");
}

static void test_aggregates_and_like(void **state)
{
	accepted("SELECT count(DISTINCT person_id), percentile_cont(0.5) WITHIN GROUP (ORDER BY "
		 "year_of_birth), string_agg(gender_source_value, ',') FROM person",
		 "SELECT count(DISTINCT person_id), percentile_cont(0.5) WITHIN GROUP (ORDER BY "
		 "year_of_birth), string_agg(gender_source_value, ',') FROM omop.person");
	/* the parser's own pg_catalog.like_escape round-trips */
	accepted("SELECT person_source_value LIKE 'A!%' ESCAPE '!' FROM person",
		 "SELECT person_source_value LIKE pg_catalog.like_escape('A!%', '!') FROM omop.person");
	accepted("SELECT 1 FROM person WHERE gender_source_value SIMILAR TO 'F%' ESCAPE '#'",
		 "SELECT 1 FROM omop.person WHERE gender_source_value SIMILAR TO 'F%' ESCAPE '#'");
}

static void test_values_and_system_columns(void **state)
{
	accepted("SELECT p.ctid, t.x FROM person p JOIN (VALUES (1, 'a')) AS t(x, y) ON t.x = p.person_id",
		 "SELECT p.ctid, t.x FROM omop.person p JOIN (VALUES (1, 'a')) t(x, y) ON t.x = p.person_id");
}

static int teardown(void **state)
{
	omop_catalog_free(catalog);
	catalog = NULL;
	pg_query_exit();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_drop),
		cmocka_unit_test(test_delete),
		cmocka_unit_test(test_update),
		cmocka_unit_test(test_insert),
		cmocka_unit_test(test_create),
		cmocka_unit_test(test_alter),
		cmocka_unit_test(test_truncate),
		cmocka_unit_test(test_copy),
		cmocka_unit_test(test_explain),
		cmocka_unit_test(test_other_statements),
		cmocka_unit_test(test_stacked_statements),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_trailing_semicolon),
		cmocka_unit_test(test_parse_error),
		cmocka_unit_test(test_parse_error_hides_literals),
		cmocka_unit_test(test_length),
		cmocka_unit_test(test_not_utf8),
		cmocka_unit_test(test_null_arguments),
		cmocka_unit_test(test_pg_catalog_pg_tables),
		cmocka_unit_test(test_information_schema),
		cmocka_unit_test(test_other_schemas),
		cmocka_unit_test(test_unqualified_pg_class),
		cmocka_unit_test(test_unqualified_pg_authid),
		cmocka_unit_test(test_union_arm_catalog),
		cmocka_unit_test(test_scalar_subquery_catalog),
		cmocka_unit_test(test_quoted_cte_trick),
		cmocka_unit_test(test_quoted_omop),
		cmocka_unit_test(test_cross_database),
		cmocka_unit_test(test_identifier_in_message_is_cleaned),
		cmocka_unit_test(test_writable_cte),
		cmocka_unit_test(test_select_into),
		cmocka_unit_test(test_for_update),
		cmocka_unit_test(test_from_pg_catalog_pg_ls_dir),
		cmocka_unit_test(test_from_omop_pg_ls_dir),
		cmocka_unit_test(test_from_lateral_query_to_xml),
		cmocka_unit_test(test_select_pg_read_file),
		cmocka_unit_test(test_where_pg_ls_dir),
		cmocka_unit_test(test_pg_sleep),
		cmocka_unit_test(test_set_config),
		cmocka_unit_test(test_schema_qualified_calls),
		cmocka_unit_test(test_from_functions),
		cmocka_unit_test(test_session_values),
		cmocka_unit_test(test_other_constructs),
		cmocka_unit_test(test_nesting),
		cmocka_unit_test(test_family_pg_read_binary_file),
		cmocka_unit_test(test_family_pg_stat_file),
		cmocka_unit_test(test_family_lo),
		cmocka_unit_test(test_family_dblink),
		cmocka_unit_test(test_family_to_xml),
		cmocka_unit_test(test_family_current_setting),
		cmocka_unit_test(test_family_pg_sleep),
		cmocka_unit_test(test_family_pg_terminate_backend),
		cmocka_unit_test(test_family_pg_cancel_backend),
		cmocka_unit_test(test_family_txid),
		cmocka_unit_test(test_family_pg_current),
		cmocka_unit_test(test_family_pg_advisory),
		cmocka_unit_test(test_family_pg_notify),
		cmocka_unit_test(test_family_version),
		cmocka_unit_test(test_family_inet),
		cmocka_unit_test(test_family_has_privilege),
		cmocka_unit_test(test_family_pg_in_general),
		cmocka_unit_test(test_allow_list),
		cmocka_unit_test(test_field_selection_is_a_function_call),
		cmocka_unit_test(test_casts_only_to_plain_types),
		cmocka_unit_test(test_sql_in_a_string_denied),
		cmocka_unit_test(test_alias_dot_function_is_refused),
		cmocka_unit_test(test_unknown_names_from_the_query),
		cmocka_unit_test(test_columns_that_exist_are_fine),
		cmocka_unit_test(test_subject_lineage),
		cmocka_unit_test(test_fake_subjects_are_uncountable),
		cmocka_unit_test(test_limit_case),
		cmocka_unit_test(test_limit_subquery),
		cmocka_unit_test(test_offset_case),
		cmocka_unit_test(test_subquery_limit_case),
		cmocka_unit_test(test_limit_literals),
		cmocka_unit_test(test_cohort_cte_binds),
		cmocka_unit_test(test_inner_cte_does_not_cover_outer),
		cmocka_unit_test(test_cte_sees_only_earlier_members),
		cmocka_unit_test(test_multi_join_cohort),
		cmocka_unit_test(test_substring),
		cmocka_unit_test(test_window_functions),
		cmocka_unit_test(test_generate_series),
		cmocka_unit_test(test_non_function_constructs),
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_tablesample),
		cmocka_unit_test(test_recursive_cte),
		cmocka_unit_test(test_union),
		cmocka_unit_test(test_exists),
		cmocka_unit_test(test_aggregates_and_like),
		cmocka_unit_test(test_values_and_system_columns),
	};

	return cmocka_run_group_tests_name("sqlguard", tests, NULL, teardown);
}
