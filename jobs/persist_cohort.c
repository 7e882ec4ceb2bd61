/*
 * persist_cohort - freeze the approved cohort as the project's snapshot.
 *
 * At project approval the hub sends the approved SQL once. The node runs it under
 * the guard and the threshold (below it: 403 with the fixed text, nothing
 * persisted), streams the rows through a server-side cursor into the snapshot
 * store (so memory stays flat whatever the cohort's size), and swaps the new
 * snapshot in atomically. A re-delivered or re-approved task simply replaces it.
 * Row-level reads (flip-serve, imaging) use only this frozen copy.
 */
#include "jobs.h"

#include "cohort_stats.h"
#include "digest.h"
#include "log.h"
#include "omop.h"
#include "policy.h"
#include "snapshot.h"
#include "sqlguard.h"
#include "task.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PERSIST_TOO_SMALL "Cohort is too small for row-level data to be released."

/* persist_kind - how a PostgreSQL type is stored: number, bool or string */
static int persist_kind(unsigned int oid)
{
	switch (oid) {
	case 20: case 21: case 23: case 700: case 701: case 1700:	/* int8 int2 int4 float4 float8 numeric */
		return SNAPSHOT_NUMBER;
	case 16:	/* bool */
		return SNAPSHOT_BOOL;
	default:
		return SNAPSHOT_STRING;
	}
}

/* the state of persist_stream's row callback */
struct persist_rows {
	const struct cohort_columns *c;
	struct snapshot_writer *w;
	const char **values;
	int too_big;
};

/* persist_row - omop_each_row callback: the kept columns of one row into the writer */
static int persist_row(PGresult *res, int r, void *arg)
{
	struct persist_rows *p = arg;
	int k = 0;

	for (int i = 0; i < p->c->n; i++)
		if (p->c->keep[i])
			p->values[k++] = PQgetisnull(res, r, i) ? NULL : PQgetvalue(res, r, i);
	if (snapshot_add_row(p->w, p->values) == 0)
		return 0;
	p->too_big = errno == EFBIG;
	return -1;
}

/* persist_stream - rows through a cursor into the writer; OMOP_* */
static int persist_stream(struct omop *db, const char *checked, const struct cohort_columns *c,
			  struct snapshot_writer *w, struct omop_error *e)
{
	struct persist_rows p = {c, w, calloc((size_t)c->n + 1, sizeof(*p.values)), 0};
	char *sql = NULL;
	int rc;

	if (p.values == NULL ||
	    asprintf(&sql, "SELECT * FROM (%s) AS flip_cohort", checked) < 0) {
		free(p.values);
		snprintf(e->message, sizeof(e->message), "500: internal_error");
		e->status = 500;
		return OMOP_FAILED;
	}
	rc = omop_each_row(db, sql, persist_row, &p, e);
	free(sql);
	free(p.values);
	if (rc == OMOP_STOPPED) {
		e->status = p.too_big ? 413 : 500;
		snprintf(e->message, sizeof(e->message), p.too_big
			 ? "413: Cohort snapshot exceeds SNAPSHOT_MAX_BYTES"
			 : "500: snapshot_storage_error");
		rc = OMOP_FAILED;
	}
	return rc;
}

static void persist_cohort_run(struct job_ctx *ctx, struct job_answer *a)
{
	const struct config *cfg = &ctx->node->cfg;
	const char *sql = json_string_value(json_object_get(ctx->payload, "query"));
	const char *pid = json_string_value(json_object_get(ctx->payload, "project_id"));
	const char *qid = json_string_value(json_object_get(ctx->payload, "query_id"));
	struct policy *pol;
	struct policy_decision d;
	struct cohort_columns c = {0};
	struct snapshot_writer *w = NULL;
	struct omop db = {0};
	struct omop_error e = {0};
	char project[37], hash[65], err[512], created[32];
	char *checked = NULL, *subject_sql = NULL;
	const char **names = NULL;
	int *kinds = NULL, failed, rc, k = 0;
	long long subjects = -1;
	PGresult *res;

	if (task_uuid_canonical(pid, project) < 0) {
		jobs_answer_fail(a, 400, "project_id is not a UUID");
		return;
	}
	digest_query(sql, hash);
	pol = jobs_policy(ctx, a, &failed);
	if (failed)
		return;
	/* the floor that row-level reads will apply: the dataframe action for this project */
	policy_decide(pol, POLICY_DATAFRAME, project, cfg->cohort_threshold, &d);
	checked = sqlguard_check(sql, err, sizeof(err));
	if (checked == NULL) {
		jobs_answer_fail(a, 400, "%s", err);
		goto out;
	}
	rc = omop_open(&db, cfg, &e);
	if (rc == OMOP_OK)
		rc = cohort_columns(&db, checked, &c, &e);
	if (rc == OMOP_OK && (subject_sql = cohort_subject_sql(checked, &c)) == NULL) {
		jobs_answer_fail(a, 500, "internal_error");
		goto out;
	}
	if (rc == OMOP_OK && (rc = omop_query(&db, subject_sql, 0, NULL, &res, &e)) == OMOP_OK) {
		if (!PQgetisnull(res, 0, 0))
			subjects = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
	}
	if (rc == OMOP_OK && (subjects < 0 || subjects < d.floor)) {
		log_info("persist_cohort for project %s: cohort below the threshold of %ld subjects; "
			 "nothing persisted", project, d.floor);
		jobs_answer_fail(a, 403, PERSIST_TOO_SMALL);
		goto out;
	}
	if (rc == OMOP_OK) {
		names = calloc((size_t)c.n + 1, sizeof(*names));
		kinds = calloc((size_t)c.n + 1, sizeof(*kinds));
		for (int i = 0; names && kinds && i < c.n; i++)
			if (c.keep[i]) {
				names[k] = c.names[i];
				kinds[k++] = persist_kind(c.types[i]);
			}
		w = names && kinds ? snapshot_create(cfg->state_dir, project, k, names, kinds,
						     cfg->snapshot_max_bytes, err, sizeof(err))
				   : NULL;
		if (w == NULL) {
			log_error("persist_cohort for project %s: %s", project, err);
			a->outcome = JOB_TRANSIENT;	/* local disk: retried, then reported */
			snprintf(a->service, sizeof(a->service), "disk");
			goto out;
		}
		rc = persist_stream(&db, checked, &c, w, &e);
	}
	omop_close(&db);
	if (jobs_answer_omop(a, rc, &e) != OMOP_OK)
		goto out;
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_t *meta = json_pack("{s:s,s:s?,s:I,s:b,s:s,s:s}", "project_id", project, "query_id",
				 qid, "subject_count", (json_int_t)subjects, "has_accessions",
				 c.accession >= 0, "query_hash", hash, "created_at", created);
	if (meta == NULL || snapshot_commit(w, meta, err, sizeof(err)) < 0) {
		w = NULL;	/* commit frees the writer */
		json_decref(meta);
		log_error("persist_cohort for project %s: %s", project, err);
		a->outcome = JOB_TRANSIENT;
		snprintf(a->service, sizeof(a->service), "disk");
		goto out;
	}
	w = NULL;
	json_t *res_json = json_pack("{s:O,s:O,s:b,s:s,s:s,s:I}", "row_count",
				     json_object_get(meta, "row_count"), "columns",
				     json_object_get(meta, "columns"), "has_accessions",
				     c.accession >= 0, "snapshot_at", created, "query_hash", hash,
				     "subject_count", (json_int_t)subjects);
	a->outcome = JOB_ANSWER;
	a->success = 1;
	a->result_text = json_dumps(res_json, JSON_ENSURE_ASCII);
	a->detail = json_pack("{s:s,s:s%,s:O,s:I}", "project_id", project, "query_fingerprint",
			      hash, (size_t)12, "row_count", json_object_get(meta, "row_count"), "subject_count",
			      (json_int_t)subjects);
	log_info("persist_cohort for project %s: snapshot of %lld rows frozen", project,
		 (long long)json_integer_value(json_object_get(meta, "row_count")));
	json_decref(res_json);
	json_decref(meta);
out:
	omop_close(&db);
	snapshot_abort(w);
	cohort_columns_free(&c);
	free(names);
	free(kinds);
	free(checked);
	free(subject_sql);
	policy_free(pol);
}

const struct jobs_entry jobs_persist_cohort = {"persist_cohort", persist_cohort_run};
