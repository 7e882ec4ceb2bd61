/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reimport_studies - queue an imaging project's failed and never-queued studies again.
 */
#include "jobs/jobs.h"

#include "lib/imaging_store.h"
#include "lib/log.h"

#include <errno.h>

static void reimport_studies_run(struct job_ctx *ctx, struct job_answer *a)
{
	const char *id = json_string_value(json_object_get(ctx->payload, "imaging_project_id"));
	char canon[37];
	struct imaging_project *p;
	int moved;

	if (!ctx->node->cfg.reimport_enabled) {
		jobs_answer_fail(a, 403, "Reimporting studies is disabled on this trust");
		return;
	}
	p = task_uuid_canonical(id, canon) == 0 ? imaging_open(ctx->node->cfg.state_dir, canon) : NULL;
	if (p == NULL) {
		jobs_answer_fail(a, errno == ENOENT ? 404 : 500,
				 errno == ENOENT ? "Project not found" : "Trust-side storage error");
		return;
	}
	if (imaging_reimport(p, &moved) < 0) {
		imaging_close(p);
		jobs_answer_fail(a, 500, "Trust-side storage error");
		return;
	}
	imaging_close(p);
	log_info("imaging project %s: %d accession%s queued again", canon, moved, moved == 1 ? "" : "s");
	a->outcome = JOB_ANSWER;
	a->success = 1;
	a->detail = json_pack("{s:s,s:i}", "imaging_project", canon, "requeued", moved);
}

const struct jobs_entry jobs_reimport_studies = {"reimport_studies", reimport_studies_run};
