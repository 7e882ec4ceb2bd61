/* SPDX-License-Identifier: Apache-2.0 */
/*
 * get_imaging_status - the five counts of an imaging project's accessions.
 *
 * The answer is FLIP's {"project_creation_completed", "import_status": {five
 * counts}}; when some accessions are queue_failed because their pixels may show
 * identifying text, a sibling "queue_failed_reasons": {"burned_in_annotation": n}
 * says how many (absent otherwise, so FLIP's hub sees its own shape).
 */
#include "jobs/jobs.h"

#include "lib/imaging_store.h"

#include <errno.h>
#include <stdlib.h>

static void get_imaging_status_run(struct job_ctx *ctx, struct job_answer *a)
{
	const char *id = json_string_value(json_object_get(ctx->payload, "imaging_project_id"));
	char canon[37];
	long long c[IMAGING_NSTATES], burned;
	struct imaging_project *p;

	p = task_uuid_canonical(id, canon) == 0 ? imaging_open(ctx->node->cfg.state_dir, canon) : NULL;
	if (p == NULL) {
		if (errno == ENOENT || errno == ENOTDIR)
			jobs_answer_fail(a, 404, "Project not found");
		else
			jobs_answer_fail(a, 500, "Trust-side storage error");
		return;
	}
	burned = imaging_count_error(p, IMAGING_QUEUE_FAILED, "burned_in_annotation");
	if (imaging_counts(p, c) < 0 || burned < 0) {
		imaging_close(p);
		jobs_answer_fail(a, 500, "Trust-side storage error");
		return;
	}
	imaging_close(p);
	json_t *r = json_pack("{s:b,s:{s:I,s:I,s:I,s:I,s:I}}", "project_creation_completed", 1,
			      "import_status", "successful_count", (json_int_t)c[IMAGING_SUCCESSFUL],
			      "failed_count", (json_int_t)c[IMAGING_FAILED], "processing_count",
			      (json_int_t)c[IMAGING_PROCESSING], "queued_count",
			      (json_int_t)c[IMAGING_QUEUED], "queue_failed_count",
			      (json_int_t)c[IMAGING_QUEUE_FAILED]);
	/* why some are queue_failed, beside FLIP's shape and only when there is one to
	 * tell, so an answer without refusals is exactly FLIP's */
	if (r && burned > 0)
		json_object_set_new(r, "queue_failed_reasons",
				    json_pack("{s:I}", "burned_in_annotation", (json_int_t)burned));
	a->outcome = JOB_ANSWER;
	a->success = 1;
	a->result_text = r ? json_dumps(r, JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER) : NULL;
	json_decref(r);
}

const struct jobs_entry jobs_get_imaging_status = {"get_imaging_status", get_imaging_status_run};
