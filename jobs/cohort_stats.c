/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cohort_stats - cohort statistics computed inside PostgreSQL (see cohort_stats.h).
 *
 * The statement is built from two things only: the guard's checked SQL, and names
 * this module makes itself ("c0", "c1", ...: the cohort's columns renamed by
 * position). No value and no name from the hub is ever spliced in beyond the
 * checked SQL.
 */
#include "jobs/cohort_stats.h"

#include "lib/log.h"
#include "jobs/sqlresolve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cohort_columns - describe the checked query: names, types, duplicates, key columns */
int cohort_columns(struct omop *db, const char *checked_sql, struct cohort_columns *c,
		   struct omop_error *e)
{
	char *sql = NULL;
	PGresult *res;
	int rc;

	const struct omop_catalog *cat;
	struct sqlresolve_output lin = {-1, NULL};
	char err[sizeof(e->message) - 8];

	memset(c, 0, sizeof(*c));
	c->person = c->accession = -1;
	/* the guard's second stage, before the query runs at all (one catalog read a job) */
	if ((rc = omop_catalog(db, &cat, e)) != ERR_OK)
		return rc;
	if (sqlresolve_check(checked_sql, cat, &lin, err, sizeof(err)) < 0) {
		memset(e, 0, sizeof(*e));
		snprintf(e->message, sizeof(e->message), "400: %s", err);
		e->status = 400;
		return ERR_FINAL;
	}
	if (asprintf(&sql, "SELECT * FROM (%s) AS flip_cohort LIMIT 0", checked_sql) < 0) {
		sqlresolve_output_free(&lin);
		snprintf(e->message, sizeof(e->message), "500: internal_error");
		e->status = 500;
		return ERR_FINAL;
	}
	rc = omop_query(db, sql, 0, NULL, &res, e);
	free(sql);
	if (rc != ERR_OK) {
		sqlresolve_output_free(&lin);
		return rc;
	}
	c->n = PQnfields(res);
	if (c->n > COHORT_MAX_COLUMNS) {
		sqlresolve_output_free(&lin);
		PQclear(res);
		snprintf(e->message, sizeof(e->message), "400: The cohort has more than %d columns.",
			 COHORT_MAX_COLUMNS);
		e->status = 400;
		return ERR_FINAL;
	}
	c->names = calloc((size_t)c->n + 1, sizeof(*c->names));
	c->types = calloc((size_t)c->n + 1, sizeof(*c->types));
	c->keep = calloc((size_t)c->n + 1, sizeof(*c->keep));
	for (int i = 0; c->names && c->types && c->keep && i < c->n; i++) {
		c->names[i] = strdup(PQfname(res, i));
		c->types[i] = PQftype(res, i);
		c->keep[i] = 1;
		for (int j = 0; j < i && c->names[i]; j++)
			if (c->keep[j] && strcmp(c->names[j], c->names[i]) == 0)
				c->keep[i] = 0;	/* duplicate name: the first is kept (FLIP) */
		if (c->names[i] && c->keep[i] && strcmp(c->names[i], "person_id") == 0)
			c->person = i;
		if (c->names[i] && c->keep[i] && strcmp(c->names[i], "accession_id") == 0)
			c->accession = i;
	}
	PQclear(res);
	/* subjects count only by lineage; a column count the resolver disagrees with: none */
	if (lin.n == c->n) {
		c->person_countable = c->person >= 0 && lin.lineage[c->person] == SQLRESOLVE_PERSON;
		c->accession_countable = c->accession >= 0 &&
					 lin.lineage[c->accession] == SQLRESOLVE_ACCESSION;
	}
	sqlresolve_output_free(&lin);
	for (int i = 0; i < c->n; i++)
		if (c->names == NULL || c->names[i] == NULL) {
			cohort_columns_free(c);
			snprintf(e->message, sizeof(e->message), "500: internal_error");
			e->status = 500;
			return ERR_FINAL;
		}
	return ERR_OK;
}

/* cohort_columns_free - release a description */
void cohort_columns_free(struct cohort_columns *c)
{
	for (int i = 0; c->names && i < c->n; i++)
		free(c->names[i]);
	free(c->names);
	free(c->types);
	free(c->keep);
	memset(c, 0, sizeof(*c));
}

/* cohort_open_cte - "WITH cohort AS MATERIALIZED (... AS flip_cohort(c0, c1, ...))" */
static void cohort_open_cte(FILE *f, const char *checked_sql, const struct cohort_columns *c)
{
	fprintf(f, "WITH cohort AS MATERIALIZED (SELECT * FROM (%s) AS flip_cohort(", checked_sql);
	for (int i = 0; i < c->n; i++)
		fprintf(f, "%sc%d", i ? ", " : "", i);
	fputs("))", f);
}

/*
 * cohort_subject_expr - the subject count: persons, or persons behind the accessions,
 * and only when the column is countable by lineage; else undetermined (NULL)
 */
static void cohort_subject_expr(FILE *f, const struct cohort_columns *c)
{
	if (c->person >= 0 && !c->person_countable)
		fputs("NULL::bigint", f);
	else if (c->person >= 0)
		fputs("(SELECT count(*) FROM persons)", f);
	else if (c->accession >= 0 && c->accession_countable)
		fprintf(f, "(SELECT count(DISTINCT io.person_id) FROM omop.image_occurrence io "
			   "WHERE io.accession_id IN (SELECT c%d::text FROM cohort WHERE c%d IS NOT NULL))",
			c->accession, c->accession);
	else
		fputs("NULL::bigint", f);
}

static void cohort_persons_cte(FILE *f, const struct cohort_columns *c)
{
	fprintf(f, ", persons AS (SELECT DISTINCT c%d AS person_id FROM cohort WHERE c%d IS NOT NULL)",
		c->person, c->person);
}

/* cohort_subject_sql - the subject count alone */
char *cohort_subject_sql(const char *checked_sql, const struct cohort_columns *c)
{
	char *sql = NULL;
	size_t len;
	FILE *f = open_memstream(&sql, &len);

	if (f == NULL)
		return NULL;
	cohort_open_cte(f, checked_sql, c);
	if (c->person >= 0 && c->person_countable)
		cohort_persons_cte(f, c);
	fputs(" SELECT ", f);
	cohort_subject_expr(f, c);
	if (fclose(f) != 0) {
		free(sql);
		return NULL;
	}
	return sql;
}

/* cohort_stats_sql - the one statement that computes everything */
static char *cohort_stats_sql(const char *checked_sql, const struct cohort_columns *c)
{
	char *sql = NULL;
	size_t len;
	FILE *f = open_memstream(&sql, &len);

	if (f == NULL)
		return NULL;
	cohort_open_cte(f, checked_sql, c);
	fputs(", counts AS (SELECT ARRAY[count(*)", f);
	for (int i = 0; i < c->n; i++)
		fprintf(f, ", count(c%d)", i);
	fputs("]::bigint[] AS k FROM cohort)", f);
	if (c->person >= 0) {
		cohort_persons_cte(f, c);
		fputs(", demo AS (SELECT floor(date_part('year', age(CURRENT_DATE, p.birth_datetime)) "
		      "/ 10) * 10 AS bucket, p.gender_source_value AS sex FROM persons "
		      "JOIN omop.person p ON p.person_id = persons.person_id)", f);
	}
	fputs(" SELECT (SELECT k FROM counts), ", f);
	cohort_subject_expr(f, c);
	if (c->person >= 0)
		fputs(", (SELECT json_agg(json_build_array(bucket, n) ORDER BY bucket NULLS LAST) "
		      "FROM (SELECT bucket, count(*) AS n FROM demo GROUP BY bucket) a)"
		      ", (SELECT json_agg(json_build_array(sex, n) ORDER BY sex NULLS LAST) "
		      "FROM (SELECT sex, count(*) AS n FROM demo GROUP BY sex) b)", f);
	else
		fputs(", NULL::json, NULL::json", f);
	if (fclose(f) != 0) {
		free(sql);
		return NULL;
	}
	return sql;
}

/* cohort_parse_counts - PostgreSQL's "{3,2,0}" into n+1 numbers */
static int cohort_parse_counts(const char *text, long long *out, int n)
{
	const char *p = text;
	char *end;

	if (*p++ != '{')
		return -1;
	for (int i = 0; i < n; i++) {
		out[i] = strtoll(p, &end, 10);
		if (end == p || (*end != ',' && *end != '}'))
			return -1;
		p = end + 1;
	}
	return p[-1] == '}' ? 0 : -1;
}

/* cohort_result - {"value": v, "count": n} */
static json_t *cohort_result(const char *value, long long count)
{
	return json_pack("{s:s,s:I}", "value", value, "count", (json_int_t)count);
}

/* cohort_group - a named group whose buckets below threshold merge into "Other" */
static json_t *cohort_group(const char *name, json_t *pairs, int is_age, long threshold)
{
	json_t *results = json_array(), *pair;
	long long other = 0;
	size_t i;

	json_array_foreach(pairs, i, pair) {
		json_t *key = json_array_get(pair, 0);
		long long n = json_integer_value(json_array_get(pair, 1));
		char value[160];

		if (n < threshold) {
			other += n;
			continue;
		}
		if (json_is_null(key))
			snprintf(value, sizeof(value), "Unknown");
		else if (is_age)
			snprintf(value, sizeof(value), "%lld-%lld", (long long)json_number_value(key),
				 (long long)json_number_value(key) + 9);
		else
			snprintf(value, sizeof(value), "%s", json_string_value(key) ?: "Unknown");
		json_array_append_new(results, cohort_result(value, n));
	}
	if (other > 0)
		json_array_append_new(results, cohort_result("Other", other));
	return json_pack("{s:s,s:o}", "name", name, "results", results);
}

/* cohort_label - the column name as FLIP labels it: '_' becomes a newline */
static json_t *cohort_label_result(const char *name, long long count)
{
	char *label = strdup(name);
	json_t *r;

	for (char *p = label; p && *p; p++)
		if (*p == '_')
			*p = '\n';
	r = label ? cohort_result(label, count) : NULL;
	free(label);
	return r;
}

/* cohort_check_vocabulary - a genuine zero on an empty vocabulary is a set-up problem */
static void cohort_check_vocabulary(struct omop *db)
{
	PGresult *res;
	struct omop_error e;

	if (omop_query(db, "SELECT EXISTS (SELECT 1 FROM omop.concept_ancestor)", 0, NULL, &res,
		       &e) != ERR_OK)
		return;
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
		log_error("omop.concept_ancestor is empty: every concept-based cohort will count zero "
			  "until the OMOP vocabulary is loaded");
	PQclear(res);
}

/* cohort_stats_compute - see cohort_stats.h */
int cohort_stats_compute(struct omop *db, const char *checked_sql, long threshold,
			 struct cohort_stats *st, struct omop_error *e)
{
	struct cohort_columns c;
	PGresult *res = NULL;
	long long *counts = NULL;
	char *sql = NULL;
	int rc;

	memset(st, 0, sizeof(*st));
	st->subject_count = -1;
	if ((rc = cohort_columns(db, checked_sql, &c, e)) != ERR_OK)
		return rc;
	if (!c.person_countable && !(c.person < 0 && c.accession_countable)) {
		/* no subject to count (no such column, or made-up ids): never released, and
		 * the cohort is not even run; the answer is the genuine zero's bytes */
		st->data = json_array();
		st->suppressed = 1;
		goto out;
	}
	sql = cohort_stats_sql(checked_sql, &c);
	counts = calloc((size_t)c.n + 1, sizeof(*counts));
	if (sql == NULL || counts == NULL) {
		snprintf(e->message, sizeof(e->message), "500: internal_error");
		e->status = 500;
		rc = ERR_FINAL;
		goto out;
	}
	if ((rc = omop_query(db, sql, 0, NULL, &res, e)) != ERR_OK)
		goto out;
	if (PQntuples(res) != 1 || cohort_parse_counts(PQgetvalue(res, 0, 0), counts, c.n + 1) < 0) {
		snprintf(e->message, sizeof(e->message), "500: internal_error");
		e->status = 500;
		rc = ERR_FINAL;
		goto out;
	}
	long long rows = counts[0];
	if (!PQgetisnull(res, 0, 1))
		st->subject_count = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	if (rows == 0)
		cohort_check_vocabulary(db);
	st->data = json_array();
	if (st->subject_count < 0 || st->subject_count < threshold) {
		/* a genuine zero and a small cohort look the same on the wire */
		st->suppressed = 1;
		goto out;
	}
	st->record_count = rows;
	json_t *cnt = json_array(), *nul = json_array();
	for (int i = 0; i < c.n; i++) {
		long long nonnull = counts[i + 1];
		if (!c.keep[i] || (rows > 0 && nonnull == 0))
			continue;	/* a duplicate name, or a column null in every row */
		json_array_append_new(cnt, cohort_label_result(c.names[i], nonnull));
		json_array_append_new(nul, cohort_label_result(c.names[i], rows - nonnull));
	}
	json_array_append_new(st->data, json_pack("{s:s,s:o}", "name", "Counts", "results", cnt));
	json_array_append_new(st->data, json_pack("{s:s,s:o}", "name", "Nulls", "results", nul));
	if (c.person >= 0) {
		json_t *age = json_loads(PQgetisnull(res, 0, 2) ? "[]" : PQgetvalue(res, 0, 2), 0, NULL);
		json_t *sex = json_loads(PQgetisnull(res, 0, 3) ? "[]" : PQgetvalue(res, 0, 3), 0, NULL);
		json_array_append_new(st->data, cohort_group("Age Distribution", age, 1, threshold));
		json_array_append_new(st->data, cohort_group("Sex Distribution", sex, 0, threshold));
		json_decref(age);
		json_decref(sex);
	}
out:
	PQclear(res);
	free(sql);
	free(counts);
	cohort_columns_free(&c);
	return rc;
}

/* cohort_stats_free - release the statistics */
void cohort_stats_free(struct cohort_stats *st)
{
	json_decref(st->data);
	st->data = NULL;
}
