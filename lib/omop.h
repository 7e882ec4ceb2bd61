/* SPDX-License-Identifier: Apache-2.0 */
/*
 * omop - the connection to the trust's OMOP database on libpq, read-only.
 *
 * SYNOPSIS
 *	#include "lib/omop.h"
 *
 *	enum err_kind omop_open(struct omop *db, const struct config *cfg, struct omop_error *e);
 *	enum err_kind omop_query(struct omop *db, const char *sql, int nparams,
 *				 const char *const *params, PGresult **res, struct omop_error *e);
 *	enum err_kind omop_each_row(struct omop *db, const char *select, omop_row_fn row,
 *				    void *arg, struct omop_error *e);
 *	enum err_kind omop_catalog(struct omop *db, const struct omop_catalog **cat,
 *				   struct omop_error *e);
 *	void omop_catalog_free(struct omop_catalog *cat);
 *	enum err_kind omop_copy_out(struct omop *db, const char *select, omop_line_fn line,
 *				    void *arg, struct omop_error *e);
 *	void omop_close(struct omop *db);
 *
 * DESCRIPTION
 *	omop_open() connects as DATA_ACCESS_POSTGRES_USER (connect timeout 10 s,
 *	application_name flip-node, UTF8) and opens one transaction for the whole
 *	job: BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY with SET LOCAL
 *	statement_timeout from COHORT_QUERY_TIMEOUT_SECONDS, so every statement of a
 *	job sees one snapshot of the data and nothing can write.
 *
 *	omop_query() runs one statement with its values bound as parameters (text
 *	format), never spliced into the SQL text. *res is the PGresult to PQclear.
 *
 *	omop_each_row() runs select through a server-side cursor, OMOP_FETCH rows at a
 *	time, and calls row(res, r, arg) for each row r of each batch (res is valid
 *	during the call only), so that a cohort of any size costs one batch of memory.
 *	row returns 0 to go on, anything else to stop: omop_each_row() then returns
 *	ERR_FINAL at once with e->stopped set and nothing else in e: the caller knows
 *	why it stopped (see DIAGNOSTICS). The cursor lives in the job's
 *	transaction (one at a time; omop_close() ends it with the transaction).
 *
 *	omop_copy_out() runs `COPY (select) TO STDOUT` (a read: allowed in the
 *	read-only transaction) and hands each row, in COPY's text format (columns
 *	separated by a tab, NULL as \N, backslash escapes, a newline at the end), to
 *	line(buf, len, arg): the fastest way out of PostgreSQL, one row of memory.
 *	line returns non-zero to stop: the rest is drained and ERR_FINAL returned with
 *	e->stopped set, as for omop_each_row().
 *
 *	omop_catalog() reads the tables and columns of schema omop (pg_class and
 *	pg_attribute, columns in their order) once per connection, inside the job's
 *	transaction, and keeps them in db until omop_close(): the SQL guard's second
 *	stage (sqlresolve) checks every column reference against it, so a job costs one
 *	catalog read whatever number of statements it runs.
 *
 *	Failures come back categorised in e by SQLSTATE alone, as one of a fixed set of
 *	messages (docs/design/data-access.md "Error channel"); no word of the server's text, which
 *	can quote row values, reaches e, the log or anything built from them:
 *	  504: query_timeout                      57014 (statement_timeout)
 *	  400: query_failed: undefined_table      42P01
 *	  400: query_failed: undefined_column     42703
 *	  400: query_failed: ambiguous_column     42702
 *	  400: query_failed: undefined_function   42883
 *	  400: query_failed: type_mismatch        42804 42846 42P18 42725
 *	  400: query_failed: permission_denied    42501
 *	  400: query_failed: division_by_zero     22012
 *	  400: query_failed: syntax               any other class 42
 *	  400: query_failed: invalid_value        any other class 22 (bad input for a type,
 *	                                          out of range, bad date ...)
 *	  400: query_failed: cardinality          class 21
 *	  400: query_failed: too_complex          class 54
 *	  500: query_failed                       anything else
 *	The table and column names a researcher mistyped are named by the guard
 *	(sqlresolve), from the query's own text, before anything runs.
 *
 * DIAGNOSTICS
 *	An outcome of lib/err.h: ERR_OK; ERR_TRANSIENT when the database is
 *	unreachable, shutting down, out of connections, memory or disk (the job is
 *	retried later: e->message says what); ERR_FINAL for an answer to report (e
 *	holds its status and message).
 *
 *	e->stopped tells the one case the five kinds do not: ERR_FINAL because the
 *	caller's own row() or line() asked to stop (its deadline, a full disk, a size
 *	cap; the caller kept the reason, e holds none). It is 0 on every other return,
 *	so a caller tests `rc == ERR_FINAL && e.stopped` right after omop_each_row()
 *	or omop_copy_out() and answers from its own reason, not from e.
 */
#ifndef FLIP_OMOP_H
#define FLIP_OMOP_H

#include <libpq-fe.h>

#include "lib/config.h"
#include "lib/err.h"

#define OMOP_FETCH 5000		/* rows per FETCH of omop_each_row() */

typedef int (*omop_row_fn)(PGresult *res, int row, void *arg);
typedef int (*omop_line_fn)(const char *buf, int len, void *arg);

struct omop_table {
	char *name;
	int ncols;
	char **cols;		/* in attnum order */
};

struct omop_catalog {
	int n;
	struct omop_table *tables;	/* in the order read */
};

struct omop {
	PGconn *conn;
	int in_txn;
	struct omop_catalog *catalog;	/* read once by omop_catalog() */
};

struct omop_error {
	int status;		/* HTTP-like status for the hub, 0 when transient */
	char message[512];	/* "<status>: <detail>" (or why the database is unavailable) */
	char sqlstate[6];
	int stopped;		/* ERR_FINAL because row() or line() asked to stop (DIAGNOSTICS) */
};

enum err_kind omop_open(struct omop *db, const struct config *cfg, struct omop_error *e);
enum err_kind omop_query(struct omop *db, const char *sql, int nparams,
			 const char *const *params, PGresult **res, struct omop_error *e);
enum err_kind omop_each_row(struct omop *db, const char *select, omop_row_fn row, void *arg,
			    struct omop_error *e);
enum err_kind omop_catalog(struct omop *db, const struct omop_catalog **cat,
			   struct omop_error *e);
void omop_catalog_free(struct omop_catalog *cat);
enum err_kind omop_copy_out(struct omop *db, const char *select, omop_line_fn line, void *arg,
			    struct omop_error *e);
void omop_close(struct omop *db);

#endif
