/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sqlresolve - the SQL guard's second stage: names against the OMOP catalog, and
 * where the cohort's subjects come from (docs/design/data-access.md, "Validating the
 * researcher's SQL" rule 6 and "Subjects: who counts towards the threshold").
 *
 * SYNOPSIS
 *	#include "jobs/sqlresolve.h"
 *
 *	int sqlresolve_check(const char *checked_sql, const struct omop_catalog *cat,
 *			     struct sqlresolve_output *out, char *err, size_t errlen);
 *	void sqlresolve_output_free(struct sqlresolve_output *out);
 *
 * DESCRIPTION
 *	checked_sql is the text sqlguard_check() returned (every table pinned to omop
 *	or bound to a CTE; no field selection; no name longer than omop.table.column).
 *	cat is the catalog of schema omop (omop_catalog(), or a fixed one in tests).
 *	sqlresolve_check() walks every query level with its FROM items in scope and:
 *
 *	1. Refuses a table of omop the catalog does not hold:
 *	   "The table '<name>' does not exist."
 *	2. Accepts a qualified column reference (rel.col, omop.table.col) only when
 *	   rel is a FROM item visible there (an OMOP table, a CTE, a subquery, a
 *	   function in FROM, a join alias) and col is one of its columns as the catalog,
 *	   the CTE or subquery's output list or the alias list says; anything else is
 *	   "The column '<rel>.<col>' does not exist." (PostgreSQL would call col(rel)
 *	   when col is a function: p.row_to_json). An unqualified name that no column,
 *	   FROM item or output alias in scope holds is "The column '<name>' does not
 *	   exist." when every FROM item's columns are known; otherwise it is left to
 *	   the database (an unqualified name is never a function call).
 *	3. Computes the lineage of every output column of the top query: PERSON when
 *	   it is, through subqueries, CTEs, every arm of a set operation and joins
 *	   (USING and NATURAL merge both sides), a bare reference to a person_id
 *	   column of an OMOP table; ACCESSION when it is a bare reference to
 *	   omop.image_occurrence.accession_id; OTHER for anything else (an expression,
 *	   a literal, a function, VALUES, a whole-row reference, a scalar subquery, a
 *	   recursive CTE's own output, a column whose origin is not known).
 *
 *	Messages name only identifiers present in checked_sql (control characters as
 *	'?'), never anything from the catalog or the database. No database access.
 *
 * DIAGNOSTICS
 *	0 with out->n output columns and out->lineage[i] one of SQLRESOLVE_* (out->n
 *	is -1 and lineage NULL when the output's columns cannot be known: a star over
 *	an item whose columns are unknown); -1 with the 400-class detail in err
 *	("Could not validate query." for anything unexpected). out is released by
 *	sqlresolve_output_free().
 */
#ifndef FLIP_SQLRESOLVE_H
#define FLIP_SQLRESOLVE_H

#include <stddef.h>

#include "lib/omop.h"

enum { SQLRESOLVE_OTHER = 0, SQLRESOLVE_PERSON = 1, SQLRESOLVE_ACCESSION = 2 };

struct sqlresolve_output {
	int n;			/* output columns, -1 when unknown */
	unsigned char *lineage;	/* n entries, SQLRESOLVE_* */
};

int sqlresolve_check(const char *checked_sql, const struct omop_catalog *cat,
		     struct sqlresolve_output *out, char *err, size_t errlen);
void sqlresolve_output_free(struct sqlresolve_output *out);

#endif
