/*
 * omop - the connection to the trust's OMOP database on libpq, read-only.
 *
 * SYNOPSIS
 *	#include "omop.h"
 *
 *	int omop_open(struct omop *db, const struct config *cfg, struct omop_error *e);
 *	int omop_query(struct omop *db, const char *sql, int nparams, const char *const *params,
 *		       PGresult **res, struct omop_error *e);
 *	int omop_each_row(struct omop *db, const char *select, omop_row_fn row, void *arg,
 *			  struct omop_error *e);
 *	int omop_copy_out(struct omop *db, const char *select, omop_line_fn line, void *arg,
 *			  struct omop_error *e);
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
 *	OMOP_STOPPED at once and leaves e to the caller. The cursor lives in the job's
 *	transaction (one at a time; omop_close() ends it with the transaction).
 *
 *	omop_copy_out() runs `COPY (select) TO STDOUT` (a read: allowed in the
 *	read-only transaction) and hands each row, in COPY's text format (columns
 *	separated by a tab, NULL as \N, backslash escapes, a newline at the end), to
 *	line(buf, len, arg): the fastest way out of PostgreSQL, one row of memory.
 *	line returns non-zero to stop: the rest is drained and OMOP_STOPPED returned.
 *
 *	Failures come back categorised in e, in the form the hub shows researchers
 *	(data-access.md): an undefined table "400: The table '<name>' does not
 *	exist.", an undefined column "400: The column '<name>' does not exist.", the
 *	statement timeout "504: query_timeout", any other database error
 *	"500: query_failed". The raw driver text never reaches e; it goes to the
 *	debug log only (it can quote row values).
 *
 * DIAGNOSTICS
 *	OMOP_OK; OMOP_TRANSIENT when the database is unreachable, shutting down, out
 *	of connections, memory or disk (the job is retried later: e->message says
 *	what); OMOP_FAILED for an answer to report.
 */
#ifndef FLIP_OMOP_H
#define FLIP_OMOP_H

#include <libpq-fe.h>

#include "config.h"

enum { OMOP_OK = 0, OMOP_TRANSIENT = 1, OMOP_FAILED = 2, OMOP_STOPPED = 3 };

#define OMOP_FETCH 5000		/* rows per FETCH of omop_each_row() */

typedef int (*omop_row_fn)(PGresult *res, int row, void *arg);
typedef int (*omop_line_fn)(const char *buf, int len, void *arg);

struct omop {
	PGconn *conn;
	int in_txn;
};

struct omop_error {
	int status;		/* HTTP-like status for the hub, 0 when transient */
	char message[512];	/* "<status>: <detail>" (or why the database is unavailable) */
	char sqlstate[6];
};

int omop_open(struct omop *db, const struct config *cfg, struct omop_error *e);
int omop_query(struct omop *db, const char *sql, int nparams, const char *const *params,
	       PGresult **res, struct omop_error *e);
int omop_each_row(struct omop *db, const char *select, omop_row_fn row, void *arg,
		  struct omop_error *e);
int omop_copy_out(struct omop *db, const char *select, omop_line_fn line, void *arg,
		  struct omop_error *e);
void omop_close(struct omop *db);

#endif
