/*
 * runner - claim spooled jobs in the hub's order, run their handlers, spool results.
 *
 * SYNOPSIS
 *	#include "runner.h"
 *
 *	int runner_run(struct node *n, struct runner_stats *st);
 *	int runner_execute(struct node *n, struct job *job, json_t *task, struct job_answer *a);
 *	json_t *runner_result(const struct job_answer *a);
 *
 * DESCRIPTION
 *	runner_run() (under flip-exec's lock) first re-runs jobs a crashed flip-exec
 *	left in cur/, then takes the due jobs of new/ in seq order: flock on the job,
 *	rename new/ -> cur/, run the handler, write cohort.json (when there is one) and
 *	result.json, rename cur/ -> out/. A transient answer moves the job back to new/
 *	with attempts and next_attempt_at in exec.json; after
 *	FLIP_TRANSIENT_GIVE_UP_SECONDS since its first transient failure it is reported
 *	as "503: <service> unavailable". A job never starts while an older job of the
 *	same project waits in new/ (persist_cohort must finish before create_imaging).
 *	A failed cohort_query also gets the failure body for /cohort/results.
 *
 *	runner_execute() checks the task again (type known, payload schema: the spool
 *	is trusted no more than the hub) and calls the handler; flipctl rerun uses it
 *	for jobs the hub has closed.
 *
 *	runner_result() renders an answer as result.json's body.
 *
 * DIAGNOSTICS
 *	runner_run() returns 0, or 1 when a job could not be moved or written (disk);
 *	the job stays where it is and the next run retries it. A full disk (ENOSPC,
 *	EDQUOT) ends the run at the first job that could not write its result.
 */
#ifndef FLIP_RUNNER_H
#define FLIP_RUNNER_H

#include <jansson.h>

#include "jobs.h"
#include "node.h"

struct runner_stats {
	int ran, succeeded, failed, deferred, recovered, waiting;
};

int runner_run(struct node *n, struct runner_stats *st);
int runner_execute(struct node *n, struct job *job, json_t *task, struct job_answer *a);
json_t *runner_result(const struct job_answer *a);

#endif
