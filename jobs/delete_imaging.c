/* SPDX-License-Identifier: Apache-2.0 */
/*
 * delete_imaging - delete an imaging project and what was queued for it.
 *
 * The project is renamed aside first, so the retrieval worker, which re-opens its
 * project before each accession and each instance, notices at once and stops.
 */
#include "jobs/jobs.h"

#include "lib/imaging_store.h"
#include "lib/log.h"

#include <errno.h>

static void delete_imaging_run(struct job_ctx *ctx, struct job_answer *a)
{
	const char *id = json_string_value(json_object_get(ctx->payload, "imaging_project_id"));
	char canon[37];

	if (task_uuid_canonical(id, canon) < 0 || imaging_delete(ctx->node->cfg.state_dir, canon) < 0) {
		if (errno == ENOENT || errno == EINVAL)
			jobs_answer_fail(a, 404, "Project not found");
		else
			jobs_answer_fail(a, 500, "Trust-side storage error");
		return;
	}
	log_info("imaging project %s deleted", canon);
	a->outcome = JOB_ANSWER;
	a->success = 1;
	a->detail = json_pack("{s:s}", "imaging_project", canon);
}

const struct jobs_entry jobs_delete_imaging = {"delete_imaging", delete_imaging_run};
