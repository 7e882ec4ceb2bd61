/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dispatch - the table from task type to handler (see jobs.h).
 *
 * Every one of the seven task types has a row. Types whose handler is not written
 * yet point at jobs_not_available, which fails honestly with 501 so the hub shows
 * the researcher a clear reason instead of a task stuck IN_PROGRESS.
 */
#include "jobs.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void jobs_not_available(struct job_ctx *ctx, struct job_answer *a)
{
	jobs_answer_fail(a, 501, "%s is not available on this node yet", ctx->task_type);
}

static const struct jobs_entry jobs_table[] = {
	{"cohort_query", NULL},		/* cohort_query.c */
	{"persist_cohort", NULL},	/* persist_cohort.c */
	{"create_imaging", jobs_not_available},
	{"delete_imaging", jobs_not_available},
	{"get_imaging_status", jobs_not_available},
	{"reimport_studies", jobs_not_available},
	{"update_user_profile", jobs_not_available},
};

/* jobs_lookup - the handler for a task type */
const struct jobs_entry *jobs_lookup(const char *task_type)
{
	static const struct jobs_entry *const written[] = {
		&jobs_cohort_query, &jobs_persist_cohort, &jobs_create_imaging,
		&jobs_get_imaging_status, &jobs_reimport_studies, &jobs_delete_imaging,
		&jobs_update_user_profile,
	};

	for (size_t i = 0; i < sizeof(written) / sizeof(written[0]); i++)
		if (strcmp(written[i]->task_type, task_type) == 0)
			return written[i];
	for (size_t i = 0; i < sizeof(jobs_table) / sizeof(jobs_table[0]); i++)
		if (strcmp(jobs_table[i].task_type, task_type) == 0)
			return &jobs_table[i];
	return NULL;
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
int jobs_answer_omop(struct job_answer *a, int rc, const struct omop_error *e)
{
	if (rc == OMOP_TRANSIENT) {
		a->outcome = JOB_TRANSIENT;
		snprintf(a->service, sizeof(a->service), "omop");
	} else if (rc != OMOP_OK) {
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
