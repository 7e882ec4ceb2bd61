/* SPDX-License-Identifier: Apache-2.0 */
/*
 * report - upload spooled results to the hub, exactly once, in order.
 *
 * SYNOPSIS
 *	#include "bin/flip-report/report.h"
 *
 *	int report_run(struct node *n, struct hub *h, struct report_stats *st);
 *
 * DESCRIPTION
 *	report_run() walks out/ in seq order, then lists out/ again and walks the jobs
 *	that arrived meanwhile, until a listing shows none. For each job that is due (state.json's
 *	next_attempt_at has passed): when it has a cohort.json not yet accepted, POST
 *	/cohort/results first; then POST /tasks/{id}/result with result.json as is.
 *	  200			the job moves to done/;
 *	  403/404/409/422	final: the job moves to failed/ with the hub's words in
 *				state.json, never retried (a 409 after an earlier attempt
 *				whose answer was lost means that attempt was accepted:
 *				the job goes to done/, noted as such);
 *	  anything else		transient: attempts+1 and next_attempt_at = now +
 *				retry_backoff() (lib/retry.h) in state.json, the job stays in out/, and
 *				the run stops (the hub is unwell: do not hammer it).
 *	A cohort result the hub refuses for good is recorded and logged, and the
 *	task result is still reported so the hub's task does not hang.
 *	Before each POST state.json records that an attempt is under way; a crash or
 *	a lost answer leaves that mark, which is how a later 409 is recognised as our
 *	own accepted attempt.
 *
 *	A re-delivered task id is flip-poll's business: jobfile_report_due()
 *	(lib/jobfile.h) makes its stored result due again.
 *
 * DIAGNOSTICS
 *	report_run() returns 0 when it worked through what was due, 1 when it stopped
 *	on a transient failure, 2 when the hub refused the API key.
 */
#ifndef FLIP_REPORT_H
#define FLIP_REPORT_H

#include "lib/hub.h"
#include "lib/node.h"
#include "lib/spool.h"

struct report_stats {
	int done, failed, retried, waiting;
};

int report_run(struct node *n, struct hub *h, struct report_stats *st);

#endif
