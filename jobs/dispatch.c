/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dispatch - the table from task type to handler (see jobs.h).
 *
 * Every one of the seven task types has a row; jobs_execute() is the one way in,
 * for flip-exec's runner and for flipctl rerun.
 */
#include "jobs/jobs.h"

#include "lib/crash.h"
#include "lib/result.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the one table: every task type the hub sends, one handler each (jobs/<type>.c) */
static const struct jobs_entry *const jobs_table[] = {
	&jobs_cohort_query, &jobs_persist_cohort, &jobs_create_imaging,
	&jobs_get_imaging_status, &jobs_reimport_studies, &jobs_delete_imaging,
	&jobs_update_user_profile,
};

/* jobs_lookup - the handler for a task type */
const struct jobs_entry *jobs_lookup(const char *task_type)
{
	for (size_t i = 0; i < sizeof(jobs_table) / sizeof(jobs_table[0]); i++)
		if (strcmp(jobs_table[i]->task_type, task_type) == 0)
			return jobs_table[i];
	return NULL;
}

/* jobs_result - result.json's body for an answer */
json_t *jobs_result(const struct job_answer *a)
{
	return a->success ? result_success(a->result_text)
			  : result_failure(a->error ? a->error : "500: internal_error",
					   a->status_code);
}

/* jobs_execute - check the task again and run its handler */
int jobs_execute(struct node *n, struct job *job, json_t *task, struct job_answer *a)
{
	const char *type = json_string_value(json_object_get(task, "task_type"));
	const char *id = json_string_value(json_object_get(task, "id"));
	json_t *payload = json_object_get(task, "payload");
	const struct jobs_entry *e;
	char msg[512];
	struct job_ctx ctx;

	memset(a, 0, sizeof(*a));
	if (type == NULL || id == NULL || (e = jobs_lookup(type)) == NULL) {
		jobs_answer_fail(a, 0, "Unknown task type: %s", type ? type : "(none)");
		a->status_code = 400;
		return 0;
	}
	if (task_payload_check(type, payload, msg, sizeof(msg)) < 0) {
		jobs_answer_fail(a, 0, "%s", msg);
		a->status_code = 400;
		return 0;
	}
	ctx.node = n;
	ctx.job = job;
	ctx.task_id = id;
	ctx.task_type = type;
	ctx.payload = payload;
	e->run(&ctx, a);
	CRASH_POINT("exec.mid_handler");
	if (a->outcome == JOB_ANSWER && a->success && a->result_text &&
	    strlen(a->result_text) > RESULT_MAX_TEXT) {
		free(a->result_text);
		a->result_text = NULL;
		jobs_answer_fail(a, 500, "result exceeds the hub's limit of %d characters",
				 RESULT_MAX_TEXT);
	}
	if (a->outcome == JOB_ANSWER && !a->success && a->error == NULL)
		jobs_answer_fail(a, 500, "internal_error");
	return 0;
}

/* jobs_answer_fail - a failure answer "<status>: <detail>" (status 0: message as is) */
int jobs_answer_fail(struct job_answer *a, int status, const char *fmt, ...)
{
	char detail[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	a->outcome = JOB_ANSWER;
	a->success = 0;
	a->status_code = status;
	free(a->error);
	if (status)
		return asprintf(&a->error, "%d: %s", status, detail) < 0 ? (a->error = NULL, -1) : 0;
	a->error = strdup(detail);
	return a->error ? 0 : -1;
}

/* jobs_answer_omop - an OMOP failure answered: transient (retried) or the failure */
enum err_kind jobs_answer_omop(struct job_answer *a, enum err_kind rc,
			       const struct omop_error *e)
{
	if (rc == ERR_TRANSIENT) {
		a->outcome = JOB_TRANSIENT;
		snprintf(a->service, sizeof(a->service), "omop");
	} else if (rc != ERR_OK) {
		jobs_answer_fail(a, 0, "%s", e->message);
		a->status_code = e->status;
	}
	return rc;
}

/* jobs_answer_free - release what an answer holds */
void jobs_answer_free(struct job_answer *a)
{
	free(a->result_text);
	free(a->error);
	json_decref(a->cohort);
	json_decref(a->detail);
	memset(a, 0, sizeof(*a));
}
