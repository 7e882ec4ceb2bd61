/* SPDX-License-Identifier: Apache-2.0 */
/*
 * create_imaging - create the imaging project and queue retrieval of its studies.
 *
 * Idempotent per hub project: a re-delivered task finds the project it created and
 * returns it unchanged. The accession list comes from the project's frozen membership
 * (persist_cohort ran first: the hub orders them so): the frozen accession ids still
 * present in omop.image_occurrence, sorted; with no snapshot and
 * a query in the payload, the query runs live under the cohort.accession_ids policy
 * and the threshold (each distinct accession once, first occurrence first). All are
 * queued; retrieval is flip-exec imaging's job, so this returns at once.
 */
#include "jobs/jobs.h"

#include "jobs/cohort_live.h"
#include "jobs/cohort_stats.h"
#include "lib/imaging_store.h"
#include "lib/log.h"
#include "lib/omop.h"
#include "lib/snapshot.h"
#include "jobs/sqlguard.h"
#include "lib/task.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


#define TOO_SMALL "Cohort is too small for row-level data to be released."
#define NO_SNAPSHOT "No approved cohort snapshot exists for this project."

struct accession_sink {
	json_t *list;	/* ordered distinct accessions */
	json_t *seen;	/* set */
};

static int accession_add(struct accession_sink *s, const char *acc)
{
	if (acc == NULL || *acc == 0 || json_object_get(s->seen, acc))
		return 0;
	json_object_set_new(s->seen, acc, json_true());
	return json_array_append_new(s->list, json_string(acc));
}

/* accession_from_row - omop_each_row callback: the row's one column */
static int accession_from_row(PGresult *res, int r, void *arg)
{
	return accession_add(arg, PQgetvalue(res, r, 0));
}

/* accessions_from_snapshot - 0 ok, 1 no snapshot, -1 answered (failure); the frozen
 * accession ids still present in omop.image_occurrence, sorted */
static int accessions_from_snapshot(struct job_ctx *ctx, const char *project, long floor,
				    struct accession_sink *sink, struct job_answer *a)
{
	char err[512];
	struct snapshot *s = snapshot_open(ctx->node->cfg.state_dir, project, err, sizeof(err));
	struct omop db = {0};
	struct omop_error e = {0};
	PGresult *res = NULL;
	int rc;

	if (s == NULL) {
		int old = errno == EPROTO;
		if (errno == ENOENT)
			return 1;
		log_error("create_imaging for project %s: snapshot unreadable: %s", project, err);
		jobs_answer_fail(a, old ? 503 : 500, old
				 ? "Cohort snapshot awaits conversion to membership"
				 : "Trust-side storage error");
		return -1;
	}
	json_int_t subjects = json_integer_value(json_object_get(snapshot_meta(s), "subject_count"));
	if (subjects < floor) {
		jobs_answer_fail(a, 403, TOO_SMALL);
		snapshot_close(s);
		return -1;
	}
	if (!json_is_true(json_object_get(snapshot_meta(s), "has_accessions"))) {
		jobs_answer_fail(a, 400, "The approved cohort has no accession_id column.");
		snapshot_close(s);
		return -1;
	}
	rc = omop_open(&db, &ctx->node->cfg, &e);
	if (rc == ERR_OK)
		rc = cohort_live_accessions(&db, s, &res, &e);
	for (int r = 0; rc == ERR_OK && r < PQntuples(res); r++)
		if (accession_add(sink, PQgetvalue(res, r, 0)) != 0) {
			jobs_answer_fail(a, 500, "internal_error");
			rc = -1;
		}
	PQclear(res);
	omop_close(&db);
	snapshot_close(s);
	if (rc == -1)
		return -1;
	return jobs_answer_omop(a, rc, &e) == ERR_OK ? 0 : -1;
}

/* accessions_live - run the payload's query under the guard and threshold */
static int accessions_live(struct job_ctx *ctx, const char *sql, long floor,
			   struct accession_sink *sink, struct job_answer *a)
{
	struct omop db;
	struct omop_error e;
	struct cohort_columns c = {0};
	char err[512], *checked = NULL, *q = NULL;
	PGresult *res = NULL;
	long long subjects = -1;
	int rc;

	checked = sqlguard_check(sql, err, sizeof(err));
	if (checked == NULL) {
		jobs_answer_fail(a, 400, "%s", err);
		return -1;
	}
	rc = omop_open(&db, &ctx->node->cfg, &e);
	if (rc == ERR_OK)
		rc = cohort_columns(&db, checked, &c, &e);
	if (rc == ERR_OK && (q = cohort_subject_sql(checked, &c)) != NULL &&
	    (rc = omop_query(&db, q, 0, NULL, &res, &e)) == ERR_OK) {
		if (!PQgetisnull(res, 0, 0))
			subjects = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
		res = NULL;
	}
	free(q);
	q = NULL;
	if (rc == ERR_OK && (subjects < 0 || subjects < floor)) {
		jobs_answer_fail(a, 403, TOO_SMALL);
		rc = -1;
		goto out;
	}
	if (rc == ERR_OK && c.accession < 0) {
		jobs_answer_fail(a, 400, "The cohort has no accession_id column.");
		rc = -1;
		goto out;
	}
	if (rc == ERR_OK) {
		/* the cohort's columns renamed by position, as cohort_stats does */
		char *sqlbuf = NULL;
		size_t len;
		FILE *f = open_memstream(&sqlbuf, &len);
		if (f == NULL) {
			jobs_answer_fail(a, 500, "internal_error");
			rc = -1;
			goto out;
		}
		fprintf(f, "SELECT c%d::text FROM (%s) AS flip_cohort(", c.accession, checked);
		for (int i = 0; i < c.n; i++)
			fprintf(f, "%sc%d", i ? ", " : "", i);
		fprintf(f, ") WHERE c%d IS NOT NULL", c.accession);
		fclose(f);
		/* through a cursor: one batch of rows in memory, not the cohort's */
		rc = omop_each_row(&db, sqlbuf, accession_from_row, sink, &e);
		free(sqlbuf);
		if (rc == ERR_FINAL && e.stopped) {
			jobs_answer_fail(a, 500, "internal_error");
			rc = -1;
			goto out;
		}
	}
	rc = jobs_answer_omop(a, rc, &e) == ERR_OK ? 0 : -1;
out:
	omop_close(&db);
	cohort_columns_free(&c);
	free(checked);
	return rc;
}

/* create_result - {"ID", "name", "created_users": [], "added_users": []} as text */
static char *create_result(const char *id, const char *name)
{
	json_t *r = json_pack("{s:s,s:s,s:[],s:[]}", "ID", id, "name", name, "created_users",
			      "added_users");
	char *text = r ? json_dumps(r, JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER) : NULL;

	json_decref(r);
	return text;
}

static void create_imaging_run(struct job_ctx *ctx, struct job_answer *a)
{
	const struct config *cfg = &ctx->node->cfg;
	json_t *pl = ctx->payload;
	const char *hub_project = json_string_value(json_object_get(pl, "project_id"));
	const char *pname = json_string_value(json_object_get(pl, "project_name"));
	const char *sql = json_string_value(json_object_get(pl, "query"));
	json_t *nifti = json_object_get(pl, "dicom_to_nifti");
	struct accession_sink sink = {json_array(), json_object()};
	struct policy *pol = NULL;
	struct policy_decision d;
	char project[37], id[37], name[600], err[512], now[32];
	int failed, rc;

	if (task_uuid_canonical(hub_project, project) < 0) {
		jobs_answer_fail(a, 400, "project_id is not a UUID");
		goto out;
	}
	snprintf(name, sizeof(name), "%s:%s-FL-Project", pname, project);
	rc = imaging_find_by_hub_project(cfg->state_dir, project, id);
	if (rc < 0) {
		jobs_answer_fail(a, 500, "Trust-side storage error");
		goto out;
	}
	if (rc == 1) {
		/* a re-delivered task: the project exists, return it unchanged */
		struct imaging_project *p = imaging_open(cfg->state_dir, id);
		const char *stored = p ? json_string_value(json_object_get(p->meta, "name")) : NULL;
		a->outcome = JOB_ANSWER;
		a->success = 1;
		a->result_text = create_result(id, stored ? stored : name);
		imaging_close(p);
		goto out;
	}
	pol = jobs_policy(ctx, a, &failed);
	if (failed)
		goto out;
	policy_decide(pol, POLICY_ACCESSION_IDS, project, cfg->cohort_threshold, &d);
	if (!d.permit) {
		log_info("create_imaging for project %s: accession ids denied by policy rule %s",
			 project, d.rule[0] ? d.rule : "(default)");
		jobs_answer_fail(a, 403, TOO_SMALL);
		goto out;
	}
	rc = accessions_from_snapshot(ctx, project, d.floor, &sink, a);
	if (rc == 1 && sql != NULL)
		rc = accessions_live(ctx, sql, d.floor, &sink, a);
	else if (rc == 1) {
		jobs_answer_fail(a, 403, NO_SNAPSHOT);
		goto out;
	}
	if (rc != 0)
		goto out;
	if (imaging_uuid4(id) < 0) {
		jobs_answer_fail(a, 500, "internal_error");
		goto out;
	}
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_t *meta = json_pack("{s:s,s:s,s:s,s:s,s:b,s:O}", "ID", id, "secondary_ID", project,
				 "name", name, "created_at", now, "dicom_to_nifti",
				 nifti == NULL || json_is_true(nifti), "users",
				 json_object_get(pl, "users"));
	if (meta == NULL || imaging_create(cfg->state_dir, meta, sink.list, err, sizeof(err)) < 0) {
		json_decref(meta);
		log_error("create_imaging for project %s: %s", project, err);
		a->outcome = JOB_TRANSIENT;	/* local disk: retried, then reported */
		snprintf(a->service, sizeof(a->service), "disk");
		goto out;
	}
	json_decref(meta);
	log_info("imaging project %s created for hub project %s: %zu accessions queued", id,
		 project, json_array_size(sink.list));
	a->outcome = JOB_ANSWER;
	a->success = 1;
	a->result_text = create_result(id, name);
	a->detail = json_pack("{s:s,s:s,s:I}", "imaging_project", id, "project_id", project,
			      "accessions_queued", (json_int_t)json_array_size(sink.list));
out:
	policy_free(pol);
	json_decref(sink.list);
	json_decref(sink.seen);
}

const struct jobs_entry jobs_create_imaging = {"create_imaging", create_imaging_run};
