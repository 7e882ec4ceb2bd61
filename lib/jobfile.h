/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jobfile - the files of a spooled job: their names, their caps, and the upload
 * bookkeeping that more than one program touches.
 *
 * SYNOPSIS
 *	#include "lib/jobfile.h"
 *
 *	int jobfile_report_due(struct job *job, int redelivery);
 *
 * DESCRIPTION
 *	A job directory (spool.h) holds, besides its log:
 *	  task.json    the decrypted, validated task (flip-poll)       JOBFILE_TASK_CAP
 *	  exec.json    attempts and next_attempt_at of a deferred run  JOBFILE_STATE_CAP
 *	               (flip-exec)
 *	  cohort.json  the body for POST /cohort/results (flip-exec)   JOBFILE_RESULT_CAP
 *	  result.json  the body for PUT /tasks/<id>/result             JOBFILE_RESULT_CAP
 *	               (flip-exec, or flip-poll for a refused task)
 *	  state.json   the upload bookkeeping (flip-report)            JOBFILE_STATE_CAP
 *	  log          the job's own log lines                         JOBFILE_LOG_CAP
 *	Every reader uses these names and caps; a file over its cap is not read.
 *
 *	jobfile_report_due() resets state.json so that the stored result is reported
 *	at flip-report's next run: attempts and next_attempt_at to 0, maybe_accepted
 *	false, the outcome dropped (what the hub accepted of the cohort results is
 *	kept), and with redelivery the count of re-deliveries raised by one. It is
 *	flip-poll's answer to a task id the hub delivers again.
 *
 * DIAGNOSTICS
 *	jobfile_report_due() returns 0, or -1 with errno when state.json could not be
 *	written.
 */
#ifndef FLIP_JOBFILE_H
#define FLIP_JOBFILE_H

#include "lib/spool.h"

#define JOBFILE_TASK "task.json"
#define JOBFILE_EXEC "exec.json"
#define JOBFILE_COHORT "cohort.json"
#define JOBFILE_RESULT "result.json"
#define JOBFILE_REPORT "state.json"
#define JOBFILE_LOG "log"

#define JOBFILE_TASK_CAP (16u << 20)
#define JOBFILE_RESULT_CAP (12u << 20)	/* the hub takes results of up to 10M characters */
#define JOBFILE_STATE_CAP (1u << 20)
#define JOBFILE_LOG_CAP (4u << 20)

int jobfile_report_due(struct job *job, int redelivery);

#endif
