/*
 * get_imaging_status - the five counts of an imaging project's accessions.
 */
#include "jobs.h"

#include "imaging_store.h"

#include <errno.h>
#include <stdlib.h>

static void get_imaging_status_run(struct job_ctx *ctx, struct job_answer *a)
{
	const char *id = json_string_value(json_object_get(ctx->payload, "imaging_project_id"));
	char canon[37];
	long long c[IMAGING_NSTATES];
	struct imaging_project *p;

	p = task_uuid_canonical(id, canon) == 0 ? imaging_open(ctx->node->cfg.state_dir, canon) : NULL;
	if (p == NULL) {
		if (errno == ENOENT || errno == ENOTDIR)
			jobs_answer_fail(a, 404, "Project not found");
		else
			jobs_answer_fail(a, 500, "Trust-side storage error");
		return;
	}
	if (imaging_counts(p, c) < 0) {
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
	a->outcome = JOB_ANSWER;
	a->success = 1;
	a->result_text = r ? json_dumps(r, JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER) : NULL;
	json_decref(r);
}

const struct jobs_entry jobs_get_imaging_status = {"get_imaging_status", get_imaging_status_run};
