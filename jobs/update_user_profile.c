/* SPDX-License-Identifier: Apache-2.0 */
/*
 * update_user_profile - record an imaging user's enabled flag.
 *
 * The native backend has no viewer accounts (XNAT had them); the flag is kept so
 * the trust can show who the hub enabled or disabled, and nothing else changes.
 */
#include "jobs/jobs.h"

#include "lib/imaging_store.h"

#include <stdio.h>

static void update_user_profile_run(struct job_ctx *ctx, struct job_answer *a)
{
	const char *email = json_string_value(json_object_get(ctx->payload, "email"));
	int enabled = json_is_true(json_object_get(ctx->payload, "enabled"));

	if (imaging_set_user_enabled(ctx->node->cfg.state_dir, email, enabled) < 0) {
		a->outcome = JOB_TRANSIENT;
		snprintf(a->service, sizeof(a->service), "disk");
		return;
	}
	a->outcome = JOB_ANSWER;
	a->success = 1;
	a->detail = json_pack("{s:b}", "enabled", enabled);
}

const struct jobs_entry jobs_update_user_profile = {"update_user_profile", update_user_profile_run};
