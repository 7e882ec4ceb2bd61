/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cohort_query - the statistics of a researcher's cohort, live from OMOP.
 *
 * Order of steps, each able to end the job: governance policy (loaded on every
 * run; an invalid policy fails closed, no SQL runs), the project id opened only
 * when a rule needs it, the policy decision (a deny is the suppressed zero
 * answer, not an error), the SQL guard, one read-only transaction, statistics
 * inside PostgreSQL. The cohort results go to /cohort/results; the task result
 * of a success is null. The SQL is never logged: its fingerprint is.
 *
 * A query answered without statistics names why in the audit detail's "refused",
 * one of a fixed set of categories (flip-exec counts them for the metrics):
 * policy_invalid, project_id_invalid, policy_denied (the suppressed zero answer),
 * sql_guard, query_failed (the database refused or failed the statement).
 */
#include "jobs/jobs.h"

#include "jobs/cohort_stats.h"
#include "lib/digest.h"
#include "lib/envelope.h"
#include "lib/log.h"
#include "lib/omop.h"
#include "lib/policy.h"
#include "lib/result.h"
#include "jobs/sqlguard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

/* cohort_project_id - open encrypted_project_id (context project_id); NULL + answer on failure */
char *jobs_open_project_id(struct job_ctx *ctx, const char *field, struct job_answer *a)
{
	const char *wire = json_string_value(json_object_get(ctx->payload, field));
	unsigned char *plain = NULL;
	size_t len = 0;
	char err[256];
	int rc, tag_failed;

	if (wire == NULL) {
		jobs_answer_fail(a, 400, "%s is missing", field);
		return NULL;
	}
	rc = envelope_open(ctx->node->cfg.aes_key, wire, strlen(wire), "project_id", &plain, &len,
			   &tag_failed, err, sizeof(err));
	if (rc != ERR_OK && tag_failed) {
		jobs_answer_fail(a, 400, "%s failed authentication", field);
		return NULL;
	}
	if (rc != ERR_OK) {
		jobs_answer_fail(a, 400, "%s is not a valid envelope: %s", field, err);
		return NULL;
	}
	return (char *)plain;
}

/* jobs_policy - load the governance policy; NULL with *failed set when it is invalid */
struct policy *jobs_policy(struct job_ctx *ctx, struct job_answer *a, int *failed)
{
	struct policy *p = NULL;
	char err[512];

	*failed = 0;
	if (policy_load(ctx->node->cfg.access_policy_file, ctx->node->cfg.cohort_threshold, &p, err,
			sizeof(err)) < 0) {
		/* fail closed: no SQL runs under a policy the trust cannot read */
		log_error("governance policy refused, no SQL runs: %s (fix it and check with "
			  "flipctl policy check)", err);
		jobs_answer_fail(a, 500, "access_policy_invalid");
		*failed = 1;
		return NULL;
	}
	return p;
}

/* jobs_decide - the policy decision for an action, opening the project id if a rule needs it */
int jobs_decide(struct job_ctx *ctx, struct policy *pol, enum policy_action action,
		const char *field, struct policy_decision *d, struct job_answer *a)
{
	char *project = NULL;

	if (pol && policy_names_projects(pol, action)) {
		project = jobs_open_project_id(ctx, field, a);
		if (project == NULL)
			return -1;
	}
	policy_decide(pol, action, project, ctx->node->cfg.cohort_threshold, d);
	if (project) {
		OPENSSL_cleanse(project, strlen(project));
		free(project);
	}
	return 0;
}

static void cohort_query_run(struct job_ctx *ctx, struct job_answer *a)
{
	const char *sql = json_string_value(json_object_get(ctx->payload, "query"));
	const char *qid = json_string_value(json_object_get(ctx->payload, "query_id"));
	const char *tid = json_string_value(json_object_get(ctx->payload, "trust_id"));
	struct policy_decision d;
	struct policy *pol;
	struct cohort_stats st = {0};
	struct omop db = {0};
	struct omop_error e;
	char fp[65], err[512], created[11];
	char *checked = NULL;
	int failed, rc;

	digest_query(sql, fp);
	fp[12] = 0;
	pol = jobs_policy(ctx, a, &failed);
	if (failed) {
		a->detail = json_pack("{s:s,s:s}", "query_fingerprint", fp, "refused",
				      "policy_invalid");
		return;
	}
	if (jobs_decide(ctx, pol, POLICY_STATISTICS, "encrypted_project_id", &d, a) < 0) {
		a->detail = json_pack("{s:s,s:s}", "query_fingerprint", fp, "refused",
				      "project_id_invalid");
		goto out;
	}
	if (!d.permit) {
		log_info("cohort query %s: statistics denied by policy rule %s; answering the "
			 "suppressed zero", fp, d.rule[0] ? d.rule : "(default)");
		st.data = json_array();
		st.suppressed = 1;
		goto answer;
	}
	checked = sqlguard_check(sql, err, sizeof(err));
	if (checked == NULL) {
		log_info("cohort query %s refused by the SQL guard: %s", fp, err);
		jobs_answer_fail(a, 400, "%s", err);
		a->detail = json_pack("{s:s,s:s}", "query_fingerprint", fp, "refused", "sql_guard");
		goto out;
	}
	rc = omop_open(&db, &ctx->node->cfg, &e);
	if (rc == ERR_OK)
		rc = cohort_stats_compute(&db, checked, d.floor, &st, &e);
	omop_close(&db);
	if (jobs_answer_omop(a, rc, &e) != ERR_OK) {
		if (rc != ERR_TRANSIENT)
			a->detail = json_pack("{s:s,s:s,s:s}", "query_fingerprint", fp, "error",
					      e.message, "refused", "query_failed");
		goto out;
	}
answer:
	result_utc_date(created);
	a->outcome = JOB_ANSWER;
	a->success = 1;
	a->cohort = json_pack("{s:s,s:s,s:s,s:I,s:O,s:b}", "query_id", qid, "trust_id", tid,
			      "created", created, "record_count", (json_int_t)st.record_count,
			      "data", st.data, "suppressed", st.suppressed);
	/* what left the building: the released count and whether it was suppressed */
	a->detail = json_pack("{s:s,s:I,s:b,s:I}", "query_fingerprint", fp, "record_count",
			      (json_int_t)st.record_count, "suppressed", st.suppressed, "threshold",
			      (json_int_t)d.floor);
	if (!d.permit)
		json_object_set_new(a->detail, "refused", json_string("policy_denied"));
	if (ctx->job)
		spool_job_log(ctx->job, "cohort query %s: %s (threshold %ld)", fp,
			      st.suppressed ? "suppressed" : "statistics released", d.floor);
out:
	cohort_stats_free(&st);
	free(checked);
	policy_free(pol);
}

const struct jobs_entry jobs_cohort_query = {"cohort_query", cohort_query_run};
