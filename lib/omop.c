/*
 * omop - read-only access to the OMOP database on libpq (see omop.h).
 *
 * Which failures are transient: the job must survive a database restart or a
 * full connection pool as a delay, not as a failed task, so connection errors
 * (class 08), shutdowns (57P01-57P03), exhausted resources (class 53) and a query
 * cancelled by the server (57014 "due to user request", not our timeout) put the
 * job back in the queue; everything else is the query's own fault and is reported.
 */
#include "omop.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* omop_set - the categorised message: "<status>: <detail>", or detail alone (transient) */
static void omop_set(struct omop_error *e, int status, const char *detail)
{
	e->status = status;
	if (status)
		snprintf(e->message, sizeof(e->message), "%d: %s", status, detail);
	else
		snprintf(e->message, sizeof(e->message), "%s", detail);
}

/* omop_transient_state - SQLSTATEs that mean "the database, not the query" */
static int omop_transient_state(const char *s)
{
	return strncmp(s, "08", 2) == 0 || strncmp(s, "53", 2) == 0 || strcmp(s, "57P01") == 0 ||
	       strcmp(s, "57P02") == 0 || strcmp(s, "57P03") == 0 || strcmp(s, "40001") == 0;
}

/*
 * omop_identifier - the quoted identifier in a PostgreSQL message: relation "omop.x"
 * does not exist -> x (the omop. prefix is ours: the guard added it); column
 * "p.y" or column p.y does not exist -> p.y. Only identifiers the researcher
 * wrote can appear here, never data.
 */
static void omop_identifier(const char *msg, char *out, size_t outlen)
{
	const char *a = strchr(msg, '"'), *b = a ? strchr(a + 1, '"') : NULL;

	out[0] = 0;
	if (a && b) {
		a++;
	} else if (strncmp(msg, "column ", 7) == 0) {
		a = msg + 7;
		b = strchr(a, ' ');
	}
	if (a == NULL || b == NULL || b <= a)
		return;
	if ((size_t)(b - a) > 5 && strncmp(a, "omop.", 5) == 0)
		a += 5;
	size_t n = (size_t)(b - a) < outlen - 1 ? (size_t)(b - a) : outlen - 1;
	memcpy(out, a, n);
	out[n] = 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == '\'')
			out[i] = '?';
}

/* omop_classify - a failed result or connection into e; returns OMOP_TRANSIENT/FAILED */
static int omop_classify(struct omop *db, const PGresult *res, struct omop_error *e)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char ident[128], detail[256];

	snprintf(e->sqlstate, sizeof(e->sqlstate), "%s", state ? state : "");
	/* the raw text may quote values: debug level only (data-access.md, logging hygiene) */
	log_debug("OMOP error %s: %s", e->sqlstate, primary ? primary : PQerrorMessage(db->conn));
	if (state == NULL || PQstatus(db->conn) != CONNECTION_OK || omop_transient_state(state)) {
		snprintf(detail, sizeof(detail), "OMOP database unavailable (SQLSTATE %s)",
			 state ? state : "connection lost");
		omop_set(e, 0, detail);
		log_warn("OMOP database unavailable (SQLSTATE %s)", state ? state : "none");
		return OMOP_TRANSIENT;
	}
	if (strcmp(state, "42P01") == 0) {
		omop_identifier(primary ? primary : "", ident, sizeof(ident));
		snprintf(detail, sizeof(detail), "The table '%s' does not exist.", ident);
		omop_set(e, 400, detail);
	} else if (strcmp(state, "42703") == 0) {
		omop_identifier(primary ? primary : "", ident, sizeof(ident));
		snprintf(detail, sizeof(detail), "The column '%s' does not exist.", ident);
		omop_set(e, 400, detail);
	} else if (strcmp(state, "57014") == 0 && primary && strstr(primary, "user request")) {
		/*
		 * Cancelled by someone else (pg_cancel_backend(), a DBA), not by our
		 * statement_timeout: the database's doing, so retried like a restart. The
		 * text is PostgreSQL's; under a translated lc_messages it reads as a timeout.
		 */
		omop_set(e, 0, "OMOP query cancelled by the database server (SQLSTATE 57014, not "
			 "our statement timeout)");
		log_warn("%s", e->message);
		return OMOP_TRANSIENT;
	} else if (strcmp(state, "57014") == 0) {
		omop_set(e, 504, "query_timeout");
	} else {
		omop_set(e, 500, "query_failed");
	}
	log_info("OMOP query failed: SQLSTATE %s (%s)", state, e->message);
	return OMOP_FAILED;
}

/* omop_open - connect and open the job's read-only, repeatable-read transaction */
int omop_open(struct omop *db, const struct config *cfg, struct omop_error *e)
{
	char port[16], timeout[64];
	const char *keys[10], *vals[10];
	int k = 0;
	PGresult *res;

	memset(db, 0, sizeof(*db));
	memset(e, 0, sizeof(*e));
	if (cfg->omop_host == NULL || cfg->omop_db == NULL || cfg->omop_user == NULL) {
		omop_set(e, 500, "OMOP database not configured on this node");
		log_error("OMOP_DB_HOST, OMOP_POSTGRES_DB and DATA_ACCESS_POSTGRES_USER must be set "
			  "in the kit file to run cohort queries");
		return OMOP_FAILED;
	}
	snprintf(port, sizeof(port), "%d", cfg->omop_port);
	keys[k] = "host", vals[k++] = cfg->omop_host;
	keys[k] = "port", vals[k++] = port;
	keys[k] = "dbname", vals[k++] = cfg->omop_db;
	keys[k] = "user", vals[k++] = cfg->omop_user;
	keys[k] = "password", vals[k++] = cfg->omop_password ? cfg->omop_password : "";
	keys[k] = "connect_timeout", vals[k++] = "10";
	keys[k] = "application_name", vals[k++] = "flip-node";
	keys[k] = "client_encoding", vals[k++] = "UTF8";
	if (cfg->omop_sslmode)
		keys[k] = "sslmode", vals[k++] = cfg->omop_sslmode;
	keys[k] = NULL, vals[k] = NULL;
	db->conn = PQconnectdbParams(keys, vals, 0);
	if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK) {
		/* libpq's message names host and port, never the password */
		char why[200], detail[256];
		snprintf(why, sizeof(why), "%s", db->conn ? PQerrorMessage(db->conn) : "out of memory");
		why[strcspn(why, "\n")] = 0;
		snprintf(detail, sizeof(detail), "OMOP database unavailable: %s", why);
		omop_set(e, 0, detail);
		log_warn("cannot connect to the OMOP database at %s:%d: %s", cfg->omop_host,
			 cfg->omop_port, why);
		omop_close(db);
		return OMOP_TRANSIENT;
	}
	/* the value is ours (a validated integer), so SET LOCAL may take it as text */
	snprintf(timeout, sizeof(timeout), "SET LOCAL statement_timeout = '%lds'", cfg->cohort_timeout);
	const char *const setup[] = {"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", timeout};
	for (size_t i = 0; i < sizeof(setup) / sizeof(setup[0]); i++) {
		res = PQexec(db->conn, setup[i]);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			int rc = omop_classify(db, res, e);
			PQclear(res);
			omop_close(db);
			return rc;
		}
		PQclear(res);
		db->in_txn = 1;
	}
	return OMOP_OK;
}

/* omop_query - one statement with bound parameters */
int omop_query(struct omop *db, const char *sql, int nparams, const char *const *params,
	       PGresult **res, struct omop_error *e)
{
	ExecStatusType st;

	memset(e, 0, sizeof(*e));
	*res = PQexecParams(db->conn, sql, nparams, NULL, params, NULL, NULL, 0);
	st = PQresultStatus(*res);
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return OMOP_OK;
	int rc = omop_classify(db, *res, e);
	PQclear(*res);
	*res = NULL;
	return rc;
}

/* omop_each_row - select through a cursor, a batch at a time, each row to row() */
int omop_each_row(struct omop *db, const char *select, omop_row_fn row, void *arg,
		  struct omop_error *e)
{
	char *sql = NULL, fetch[64];
	PGresult *res;
	int rc;

	if (asprintf(&sql, "DECLARE flip_rows NO SCROLL CURSOR FOR %s", select) < 0) {
		memset(e, 0, sizeof(*e));
		e->status = 500;
		snprintf(e->message, sizeof(e->message), "500: internal_error");
		return OMOP_FAILED;
	}
	rc = omop_query(db, sql, 0, NULL, &res, e);
	free(sql);
	if (rc != OMOP_OK)
		return rc;
	PQclear(res);
	snprintf(fetch, sizeof(fetch), "FETCH FORWARD %d FROM flip_rows", OMOP_FETCH);
	for (;;) {
		if ((rc = omop_query(db, fetch, 0, NULL, &res, e)) != OMOP_OK)
			return rc;
		int rows = PQntuples(res);
		for (int r = 0; r < rows; r++)
			if (row(res, r, arg) != 0) {
				PQclear(res);
				return OMOP_STOPPED;
			}
		PQclear(res);
		if (rows < OMOP_FETCH)
			break;
	}
	if ((rc = omop_query(db, "CLOSE flip_rows", 0, NULL, &res, e)) == OMOP_OK)
		PQclear(res);
	return rc;
}

/* omop_close - end the transaction (nothing to commit: read only) and disconnect */
void omop_close(struct omop *db)
{
	if (db->conn) {
		if (db->in_txn)
			PQclear(PQexec(db->conn, "ROLLBACK"));
		PQfinish(db->conn);
	}
	db->conn = NULL;
	db->in_txn = 0;
}
