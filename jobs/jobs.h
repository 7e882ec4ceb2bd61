/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jobs - the task handlers and how flip-exec finds them.
 *
 * SYNOPSIS
 *	#include "jobs/jobs.h"
 *
 *	const struct jobs_entry *jobs_lookup(const char *task_type);
 *	int jobs_execute(struct node *n, struct job *job, json_t *task, struct job_answer *a);
 *	json_t *jobs_result(const struct job_answer *a);
 *	void jobs_answer_free(struct job_answer *a);
 *	int jobs_answer_fail(struct job_answer *a, int status, const char *fmt, ...);
 *	enum err_kind jobs_answer_omop(struct job_answer *a, enum err_kind rc,
 *				       const struct omop_error *e);
 *	char *jobs_open_project_id(struct job_ctx *ctx, const char *field, struct job_answer *a);
 *	struct policy *jobs_policy(struct job_ctx *ctx, struct job_answer *a, int *failed);
 *	int jobs_decide(struct job_ctx *ctx, struct policy *pol, enum policy_action action,
 *			const char *field, struct policy_decision *d, struct job_answer *a);
 *
 * DESCRIPTION
 *	A handler takes a parsed, validated task (ctx) and fills an answer: either
 *	JOB_ANSWER (success with a result text, or a failure with a message and an
 *	HTTP-like status to report) or JOB_TRANSIENT (the OMOP database, the PACS or
 *	the local disk is unavailable: the job goes back to new/ and is retried with
 *	backoff until FLIP_TRANSIENT_GIVE_UP_SECONDS, then reported as
 *	"503: <service> unavailable"). Handlers are idempotent: a job may run again
 *	after a crash or a hub re-delivery. Handlers log through log.h and the job's
 *	own log, never SQL text, accession numbers or patient values.
 *
 *	jobs_answer_omop() answers an OMOP failure the one way every handler does:
 *	ERR_TRANSIENT is JOB_TRANSIENT for service "omop" (retried), ERR_FINAL the
 *	failure in e (its message and status). It returns rc unchanged, so that a
 *	caller writes `if (jobs_answer_omop(a, rc, &e) != ERR_OK) goto out;`.
 *
 *	jobs_open_project_id() opens a payload's sealed project id (context
 *	project_id); jobs_policy() loads the governance policy (an invalid one fails
 *	the job closed); jobs_decide() applies it to an action, opening the project id
 *	only when a rule names projects. Each fills the answer when it fails.
 *
 *	jobs_lookup() returns the entry for one of the seven task types (NULL for an
 *	unknown type, which flip-poll has already refused).
 *
 *	jobs_execute() checks the task again (type known, payload schema: the spool
 *	is trusted no more than the hub), calls the handler and bounds what it
 *	answers (a result over the hub's limit, a failure without a message: 500).
 *	flip-exec's runner and flipctl rerun both run jobs through it.
 *
 *	jobs_result() renders an answer as result.json's body.
 */
#ifndef FLIP_JOBS_H
#define FLIP_JOBS_H

#include <jansson.h>

#include "lib/config.h"
#include "lib/err.h"
#include "lib/node.h"
#include "lib/omop.h"
#include "lib/policy.h"
#include "lib/task.h"
#include "lib/spool.h"

enum job_outcome { JOB_ANSWER, JOB_TRANSIENT };

struct job_ctx {
	struct node *node;
	struct job *job;		/* the spool job (its log), NULL when run outside the spool */
	const char *task_id;
	const char *task_type;
	json_t *payload;		/* borrowed, validated by task_payload_check */
};

struct job_answer {
	enum job_outcome outcome;
	int success;
	char *result_text;		/* success: JSON text for "result", NULL for null */
	char *error;			/* failure: the message, "<status>: <detail>" form */
	int status_code;		/* failure: 0 when unknown */
	json_t *cohort;			/* body for POST /cohort/results, or NULL */
	char service[32];		/* transient: "omop", "pacs", "disk" */
	json_t *detail;			/* audit detail for task.finished (counts only), or NULL */
};

typedef void jobs_handler(struct job_ctx *ctx, struct job_answer *a);

struct jobs_entry {
	const char *task_type;
	jobs_handler *run;
};

const struct jobs_entry *jobs_lookup(const char *task_type);
int jobs_execute(struct node *n, struct job *job, json_t *task, struct job_answer *a);
json_t *jobs_result(const struct job_answer *a);

/* the seven handlers, one file each (jobs/<type>.c); dispatch.c's table lists them */
extern const struct jobs_entry jobs_cohort_query;
extern const struct jobs_entry jobs_persist_cohort;
extern const struct jobs_entry jobs_create_imaging;
extern const struct jobs_entry jobs_get_imaging_status;
extern const struct jobs_entry jobs_reimport_studies;
extern const struct jobs_entry jobs_delete_imaging;
extern const struct jobs_entry jobs_update_user_profile;

/* shared by the handlers that read OMOP under the governance policy (cohort_query.c) */
char *jobs_open_project_id(struct job_ctx *ctx, const char *field, struct job_answer *a);
struct policy *jobs_policy(struct job_ctx *ctx, struct job_answer *a, int *failed);
int jobs_decide(struct job_ctx *ctx, struct policy *pol, enum policy_action action,
		const char *field, struct policy_decision *d, struct job_answer *a);
void jobs_answer_free(struct job_answer *a);
int jobs_answer_fail(struct job_answer *a, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
enum err_kind jobs_answer_omop(struct job_answer *a, enum err_kind rc,
			       const struct omop_error *e);

#endif
