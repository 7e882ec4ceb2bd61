/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cohort_live - a frozen membership applied to live OMOP (docs/design/data-access.md,
 * "Snapshots: membership, frozen once").
 *
 * SYNOPSIS
 *	#include "jobs/cohort_live.h"
 *
 *	int cohort_live_freeze(struct omop *db, const char *checked, const struct cohort_columns *c,
 *			       struct snapshot_writer *w, struct cohort_frozen *out,
 *			       struct omop_error *e);
 *	int cohort_live_run(struct omop *db, const char *checked, const struct cohort_columns *c,
 *			    const struct snapshot *s, omop_row_fn row, void *arg,
 *			    struct cohort_live_count *out, struct omop_error *e);
 *	int cohort_live_accessions(struct omop *db, const struct snapshot *s, PGresult **res,
 *				   struct omop_error *e);
 *	const char *cohort_live_order(const struct cohort_columns *c);
 *
 * DESCRIPTION
 *	cohort_live_freeze() writes the membership of the checked query into w: the
 *	distinct person ids (when the cohort projects person_id) and the distinct
 *	accession ids (when it projects accession_id), each in one sorted pass
 *	(`ORDER BY`, streamed out by COPY; rows counted and repeats dropped as they
 *	arrive), so memory stays flat. out gets the
 *	row count, the distinct persons (-1 without a person column) and the order of
 *	the person set ("numeric" for an integer column, else "bytewise").
 *
 *	cohort_live_run() re-runs the checked query of record and keeps only the rows
 *	whose key (person_id, else accession_id) is in the frozen set, by merging the
 *	rows, ordered by the key (then by their order in the query), against the
 *	sorted set file: one pass, no set in memory. row(res, r, arg) sees each kept
 *	row; column 0 of res is the key and columns 1..n are the cohort's columns
 *	0..n-1. out gets the kept rows and subjects: distinct kept persons, or the
 *	distinct persons of omop.image_occurrence behind the kept accessions.
 *
 *	cohort_live_accessions() answers the frozen accession ids still present in
 *	omop.image_occurrence, distinct and sorted bytewise, as one column of *res
 *	(no rows when the cohort froze no accession set).
 *
 * DIAGNOSTICS
 *	ERR_OK, ERR_TRANSIENT, ERR_FINAL with e filled (lib/err.h, lib/omop.h), or
 *	ERR_FINAL with e->stopped set when row() or the writer stopped (errno says
 *	why; EFBIG: SNAPSHOT_MAX_BYTES).
 */
#ifndef FLIP_COHORT_LIVE_H
#define FLIP_COHORT_LIVE_H

#include "jobs/cohort_stats.h"
#include "lib/omop.h"
#include "lib/snapshot.h"

struct cohort_frozen {
	long long rows;
	long long persons;	/* -1: the cohort has no person column */
	long long accessions;
	const char *person_order;
};

struct cohort_live_count {
	long long rows;
	long long subjects;
};

int cohort_live_freeze(struct omop *db, const char *checked, const struct cohort_columns *c,
		       struct snapshot_writer *w, struct cohort_frozen *out, struct omop_error *e);
int cohort_live_run(struct omop *db, const char *checked, const struct cohort_columns *c,
		    const struct snapshot *s, omop_row_fn row, void *arg,
		    struct cohort_live_count *out, struct omop_error *e);
int cohort_live_accessions(struct omop *db, const struct snapshot *s, PGresult **res,
			   struct omop_error *e);
const char *cohort_live_order(const struct cohort_columns *c);

#endif
