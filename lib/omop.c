/* SPDX-License-Identifier: Apache-2.0 */
/*
 * omop - read-only access to the OMOP database on libpq (see omop.h).
 *
 * Which failures are transient: the job must survive a database restart or a
 * full connection pool as a delay, not as a failed task, so connection errors
 * (class 08), shutdowns (57P01-57P03), exhausted resources (class 53) and a query
 * cancelled by the server (57014 "due to user request", not our timeout) put the
 * job back in the queue; everything else is the query's own fault and is reported.
 */
#include "lib/omop.h"

#include "lib/log.h"

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
 * The error channel (docs/design/data-access.md "Error channel"). PostgreSQL quotes data values
 * in its messages (invalid input syntax for type integer: "<value>", a regclass
 * cast naming a missing relation, DETAIL and HINT lines), so what leaves this
 * module is chosen by SQLSTATE alone from this fixed table: never a word of the
 * server's text, not even an identifier it quotes (the guard names the ones the
 * researcher wrote before anything runs).
 */
static const struct {
	const char *state;	/* a full SQLSTATE, or a two-character class */
	int status;
	const char *detail;
} omop_categories[] = {
	{"57014", 504, "query_timeout"},
	{"42P01", 400, "query_failed: undefined_table"},
	{"42703", 400, "query_failed: undefined_column"},
	{"42702", 400, "query_failed: ambiguous_column"},
	{"42883", 400, "query_failed: undefined_function"},
	{"42804", 400, "query_failed: type_mismatch"},
	{"42846", 400, "query_failed: type_mismatch"},
	{"42P18", 400, "query_failed: type_mismatch"},
	{"42725", 400, "query_failed: type_mismatch"},
	{"42501", 400, "query_failed: permission_denied"},
	{"22012", 400, "query_failed: division_by_zero"},
	{"42", 400, "query_failed: syntax"},
	{"22", 400, "query_failed: invalid_value"},
	{"21", 400, "query_failed: cardinality"},
	{"54", 400, "query_failed: too_complex"},
};

/* omop_category - the fixed message of a SQLSTATE; "500: query_failed" otherwise */
static void omop_category(const char *state, int *status, const char **detail)
{
	*status = 500;
	*detail = "query_failed";
	for (size_t i = 0; i < sizeof(omop_categories) / sizeof(omop_categories[0]); i++) {
		const char *c = omop_categories[i].state;
		if (strncmp(state, c, strlen(c)) == 0) {
			*status = omop_categories[i].status;
			*detail = omop_categories[i].detail;
			return;
		}
	}
}

/* omop_classify - a failed result or connection into e; returns ERR_TRANSIENT or ERR_FINAL */
static enum err_kind omop_classify(struct omop *db, const PGresult *res, struct omop_error *e)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *detail;
	char why[64];
	int status;

	snprintf(e->sqlstate, sizeof(e->sqlstate), "%s", state ? state : "");
	if (state == NULL || PQstatus(db->conn) != CONNECTION_OK || omop_transient_state(state)) {
		snprintf(why, sizeof(why), "OMOP database unavailable (SQLSTATE %s)",
			 state ? state : "connection lost");
		omop_set(e, 0, why);
		log_warn("OMOP database unavailable (SQLSTATE %s)", state ? state : "none");
		return ERR_TRANSIENT;
	}
	if (strcmp(state, "57014") == 0) {
		/*
		 * Cancelled by someone else (pg_cancel_backend(), a DBA), not by our
		 * statement_timeout: the database's doing, so retried like a restart. Only
		 * PostgreSQL's own wording tells the two apart; it is read here, never
		 * passed on. Under a translated lc_messages a cancel reads as a timeout.
		 */
		const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

		if (primary != NULL && strstr(primary, "user request") != NULL) {
			omop_set(e, 0, "OMOP query cancelled by the database server (SQLSTATE 57014, "
				 "not our statement timeout)");
			log_warn("%s", e->message);
			return ERR_TRANSIENT;
		}
	}
	omop_category(state, &status, &detail);
	omop_set(e, status, detail);
	/* the SQLSTATE and the category only: the server's text can quote row values */
	log_info("OMOP query failed: SQLSTATE %s (%s)", e->sqlstate, e->message);
	return ERR_FINAL;
}

/* omop_open - connect and open the job's read-only, repeatable-read transaction */
enum err_kind omop_open(struct omop *db, const struct config *cfg, struct omop_error *e)
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
		return ERR_FINAL;
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
		return ERR_TRANSIENT;
	}
	/* the value is ours (a validated integer), so SET LOCAL may take it as text */
	snprintf(timeout, sizeof(timeout), "SET LOCAL statement_timeout = '%lds'", cfg->cohort_timeout);
	const char *const setup[] = {"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", timeout};
	for (size_t i = 0; i < sizeof(setup) / sizeof(setup[0]); i++) {
		res = PQexec(db->conn, setup[i]);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			enum err_kind rc = omop_classify(db, res, e);
			PQclear(res);
			omop_close(db);
			return rc;
		}
		PQclear(res);
		db->in_txn = 1;
	}
	return ERR_OK;
}

/* omop_query - one statement with bound parameters */
enum err_kind omop_query(struct omop *db, const char *sql, int nparams,
			 const char *const *params, PGresult **res, struct omop_error *e)
{
	ExecStatusType st;

	memset(e, 0, sizeof(*e));
	*res = PQexecParams(db->conn, sql, nparams, NULL, params, NULL, NULL, 0);
	st = PQresultStatus(*res);
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return ERR_OK;
	enum err_kind rc = omop_classify(db, *res, e);
	PQclear(*res);
	*res = NULL;
	return rc;
}

/* omop_each_row - select through a cursor, a batch at a time, each row to row() */
enum err_kind omop_each_row(struct omop *db, const char *select, omop_row_fn row, void *arg,
			    struct omop_error *e)
{
	char *sql = NULL, fetch[64];
	PGresult *res;
	enum err_kind rc;

	if (asprintf(&sql, "DECLARE flip_rows NO SCROLL CURSOR FOR %s", select) < 0) {
		memset(e, 0, sizeof(*e));
		e->status = 500;
		snprintf(e->message, sizeof(e->message), "500: internal_error");
		return ERR_FINAL;
	}
	rc = omop_query(db, sql, 0, NULL, &res, e);
	free(sql);
	if (rc != ERR_OK)
		return rc;
	PQclear(res);
	snprintf(fetch, sizeof(fetch), "FETCH FORWARD %d FROM flip_rows", OMOP_FETCH);
	for (;;) {
		if ((rc = omop_query(db, fetch, 0, NULL, &res, e)) != ERR_OK)
			return rc;
		int rows = PQntuples(res);
		for (int r = 0; r < rows; r++)
			if (row(res, r, arg) != 0) {
				PQclear(res);
				e->stopped = 1;	/* the caller's reason, not the database's */
				return ERR_FINAL;
			}
		PQclear(res);
		if (rows < OMOP_FETCH)
			break;
	}
	if ((rc = omop_query(db, "CLOSE flip_rows", 0, NULL, &res, e)) == ERR_OK)
		PQclear(res);
	return rc;
}

/* omop_catalog_free - release a catalog (NULL is fine) */
void omop_catalog_free(struct omop_catalog *cat)
{
	if (cat == NULL)
		return;
	for (int i = 0; i < cat->n; i++) {
		for (int j = 0; j < cat->tables[i].ncols; j++)
			free(cat->tables[i].cols[j]);
		free(cat->tables[i].cols);
		free(cat->tables[i].name);
	}
	free(cat->tables);
	free(cat);
}

/* omop_catalog - the tables and columns of schema omop, read once per connection */
enum err_kind omop_catalog(struct omop *db, const struct omop_catalog **cat,
			   struct omop_error *e)
{
	static const char sql[] =
		"SELECT c.relname, a.attname FROM pg_catalog.pg_class c "
		"JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
		"JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid "
		"WHERE n.nspname = 'omop' AND c.relkind IN ('r', 'v', 'm', 'p', 'f') "
		"AND a.attnum > 0 AND NOT a.attisdropped ORDER BY c.relname, a.attnum";
	struct omop_catalog *c;
	PGresult *res;
	enum err_kind rc;
	int rows, ok = 1;

	if (db->catalog != NULL) {
		*cat = db->catalog;
		return ERR_OK;
	}
	if ((rc = omop_query(db, sql, 0, NULL, &res, e)) != ERR_OK)
		return rc;
	rows = PQntuples(res);
	c = calloc(1, sizeof(*c));
	if (c != NULL)
		c->tables = calloc((size_t)rows + 1, sizeof(*c->tables));
	for (int r = 0; c != NULL && c->tables != NULL && ok && r < rows; r++) {
		const char *rel = PQgetvalue(res, r, 0);
		struct omop_table *t = c->n > 0 ? &c->tables[c->n - 1] : NULL;
		char **cols;

		if (t == NULL || strcmp(t->name, rel) != 0) {
			t = &c->tables[c->n++];
			ok = (t->name = strdup(rel)) != NULL;
		}
		cols = ok ? realloc(t->cols, ((size_t)t->ncols + 1) * sizeof(*cols)) : NULL;
		if (cols == NULL || (cols[t->ncols] = strdup(PQgetvalue(res, r, 1))) == NULL) {
			if (cols != NULL)
				t->cols = cols;
			ok = 0;
			break;
		}
		t->cols = cols;
		t->ncols++;
	}
	PQclear(res);
	if (c == NULL || c->tables == NULL || !ok) {
		omop_catalog_free(c);
		memset(e, 0, sizeof(*e));
		omop_set(e, 500, "internal_error");
		return ERR_FINAL;
	}
	db->catalog = c;
	*cat = c;
	return ERR_OK;
}

/* omop_copy_out - select as COPY text rows, each to line(); the rest drained on a stop */
enum err_kind omop_copy_out(struct omop *db, const char *select, omop_line_fn line, void *arg,
			    struct omop_error *e)
{
	char *sql = NULL, *buf = NULL;
	PGresult *res;
	enum err_kind rc = ERR_OK;
	int n, stopped = 0;

	memset(e, 0, sizeof(*e));
	if (asprintf(&sql, "COPY (%s) TO STDOUT", select) < 0) {
		e->status = 500;
		snprintf(e->message, sizeof(e->message), "500: internal_error");
		return ERR_FINAL;
	}
	res = PQexec(db->conn, sql);
	free(sql);
	if (PQresultStatus(res) != PGRES_COPY_OUT) {
		rc = omop_classify(db, res, e);
		PQclear(res);
		return rc;
	}
	PQclear(res);
	while ((n = PQgetCopyData(db->conn, &buf, 0)) > 0) {
		if (!stopped && line(buf, n, arg) != 0)
			stopped = 1;	/* drain the rest: the connection must come back idle */
		PQfreemem(buf);
	}
	while ((res = PQgetResult(db->conn)) != NULL) {
		if (rc == ERR_OK && PQresultStatus(res) != PGRES_COMMAND_OK)
			rc = omop_classify(db, res, e);
		PQclear(res);
	}
	if (rc == ERR_OK && n == -2) {
		omop_set(e, 0, "OMOP database connection lost during COPY");
		rc = ERR_TRANSIENT;
	}
	if (rc == ERR_OK && stopped) {
		e->stopped = 1;	/* the caller's reason, not the database's */
		return ERR_FINAL;
	}
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
	omop_catalog_free(db->catalog);
	db->catalog = NULL;
}
