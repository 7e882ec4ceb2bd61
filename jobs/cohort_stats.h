/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cohort_stats - cohort statistics computed inside PostgreSQL (docs/design/data-access.md).
 *
 * SYNOPSIS
 *	#include "jobs/cohort_stats.h"
 *
 *	int cohort_stats_compute(struct omop *db, const char *checked_sql, long threshold,
 *				 struct cohort_stats *st, struct omop_error *e);
 *	void cohort_stats_free(struct cohort_stats *st);
 *	int cohort_columns(struct omop *db, const char *checked_sql, struct cohort_columns *c,
 *			   struct omop_error *e);
 *	char *cohort_subject_sql(const char *checked_sql, const struct cohort_columns *c);
 *	void cohort_columns_free(struct cohort_columns *c);
 *
 * DESCRIPTION
 *	cohort_columns() first runs the guard's second stage (sqlresolve) on the checked
 *	query against the OMOP catalog (omop_catalog(): read once per connection): a
 *	refusal is ERR_FINAL with "400: <detail>" and nothing has run. Then it
 *	describes the query (SELECT * ... LIMIT 0): its column names, types and which
 *	to keep (the first of duplicate names), where the person_id and accession_id
 *	columns are (-1 when absent), and whether they are countable by lineage
 *	(data-access.md "Subjects"): person_countable when person_id is a bare
 *	reference to an OMOP person_id column, accession_countable when accession_id
 *	is a bare reference to omop.image_occurrence.accession_id.
 *
 *	The subject count exists only for a countable column: a person_id column that
 *	is not countable makes the count undetermined (NULL) whatever else the cohort
 *	has, so cohort_subject_sql() returns NULL for it and every caller that
 *	compares the count with a threshold refuses. A snapshot must also refuse
 *	a cohort with !person_countable and !accession_countable before storing any
 *	membership.
 *
 *	cohort_stats_compute() answers an uncountable cohort with the suppressed zero
 *	at once, without running it. Otherwise it runs one statement over `(<checked_sql>)` whose columns
 *	are renamed positionally (so duplicate names cannot make a reference ambiguous),
 *	with the cohort materialised once: the row count, the non-null count of every
 *	column, the subject count (distinct person_id; else the distinct persons of
 *	omop.image_occurrence whose accession_id is among the cohort's; else
 *	undetermined), and over the distinct persons the 10-year age buckets at
 *	CURRENT_DATE from person.birth_datetime and the counts per
 *	person.gender_source_value. No row leaves the database: memory stays flat
 *	whatever the cohort's size.
 *
 *	Then it applies FLIP's rules: suppression when the subject count is below
 *	threshold or undetermined (record_count 0, data [], suppressed: identical to a
 *	genuine zero); groups "Counts" and "Nulls" (value = column name with '_' as a
 *	newline; all-null columns dropped when there are rows), "Age Distribution"
 *	("30-39", by bucket) and "Sex Distribution" (by value), each with buckets
 *	below threshold merged into a final "Other" added only when its sum is above
 *	0. A missing birth date or sex counts as "Unknown" (FLIP would fail or send a
 *	null; the hub takes strings only). On a genuine zero it checks that
 *	omop.concept_ancestor has a row and logs an error if not (an empty vocabulary
 *	makes every concept join return nothing).
 *
 *	cohort_subject_sql() is the subject-count statement alone (persist_cohort).
 *
 * DIAGNOSTICS
 *	ERR_OK, ERR_TRANSIENT or ERR_FINAL with e filled (omop.h).
 */
#ifndef FLIP_COHORT_STATS_H
#define FLIP_COHORT_STATS_H

#include <jansson.h>

#include "lib/omop.h"

#define COHORT_MAX_COLUMNS 1600	/* PostgreSQL's own limit on a row */

struct cohort_columns {
	int n;
	char **names;
	unsigned int *types;	/* PostgreSQL type OIDs */
	int *keep;		/* 1 for the first column of each name */
	int person, accession;	/* column index, -1 when absent */
	int person_countable;	/* person_id is a bare reference to an OMOP person_id */
	int accession_countable;	/* accession_id is a bare omop.image_occurrence.accession_id */
};

struct cohort_stats {
	long long record_count;	/* released count: 0 when suppressed */
	long long subject_count;	/* -1 when undetermined */
	int suppressed;
	json_t *data;		/* the "data" array for /cohort/results */
};

int cohort_columns(struct omop *db, const char *checked_sql, struct cohort_columns *c,
		   struct omop_error *e);
void cohort_columns_free(struct cohort_columns *c);
char *cohort_subject_sql(const char *checked_sql, const struct cohort_columns *c);
int cohort_stats_compute(struct omop *db, const char *checked_sql, long threshold,
			 struct cohort_stats *st, struct omop_error *e);
void cohort_stats_free(struct cohort_stats *st);

#endif
