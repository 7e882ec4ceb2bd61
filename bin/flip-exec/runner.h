/* SPDX-License-Identifier: Apache-2.0 */
/*
 * runner - claim spooled jobs in the hub's order, run their handlers, spool results.
 *
 * SYNOPSIS
 *	#include "bin/flip-exec/runner.h"
 *
 *	int runner_run(struct node *n, struct runner_stats *st);
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
 *	Each job runs through jobs_execute() (jobs/jobs.h).
 *
 *	runner_stats counts this run's answers by task type (a type no handler knows
 *	counts as "unknown") and, for cohort queries, by the "refused" category of the
 *	answer's audit detail (a value other than [a-z_]{1,31} counts as "other"), so
 *	that no id or SQL can become a metric label.
 *
 * DIAGNOSTICS
 *	runner_run() returns 0, or 1 when a job could not be moved or written (disk);
 *	the job stays where it is and the next run retries it. A full disk (ENOSPC,
 *	EDQUOT) ends the run at the first job that could not write its result.
 */
#ifndef FLIP_RUNNER_H
#define FLIP_RUNNER_H

#include <jansson.h>

#include "jobs/jobs.h"
#include "lib/node.h"

#define RUNNER_TALLIES 8

struct runner_stats {
	int ran, succeeded, failed, deferred, recovered, waiting;
	/* answers of this run by task type, and the cohort queries refused by the reason
	 * category their handler put in the audit detail ("refused": [a-z_] only): for
	 * flip-exec's metrics, counts only */
	struct { char type[32]; int success, failure; } types[RUNNER_TALLIES];
	struct { char reason[32]; int n; } refused[RUNNER_TALLIES];
};

int runner_run(struct node *n, struct runner_stats *st);

#endif
