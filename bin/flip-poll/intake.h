/* SPDX-License-Identifier: Apache-2.0 */
/*
 * intake - fetch pending tasks from the hub and spool every one durably.
 *
 * SYNOPSIS
 *	#include "bin/flip-poll/intake.h"
 *
 *	enum err_kind intake_fetch(struct node *n, struct hub *h, struct intake_stats *st,
 *				   char *err, size_t errlen);
 *	enum err_kind intake_accept(struct node *n, json_t *tasks, struct intake_stats *st,
 *				    char *err, size_t errlen);
 *
 * DESCRIPTION
 *	intake_fetch() GETs /tasks/pending (which claims the returned tasks on the hub:
 *	there is no acknowledgement), then hands the list to intake_accept(). Call it
 *	under the poll lock. It does not fetch when the spool's file system has less
 *	than INTAKE_MIN_FREE bytes free: tasks the hub hands over must be kept, and
 *	left on the hub they are fetched once space returns instead of waiting out its
 *	requeue timeout.
 *
 *	intake_accept() spools each task in the hub's order:
 *	  - a task id already in the spool is not run twice: in new/, cur/ or hold/ it
 *	    is left alone; in out/ its upload is made due now; in done/ or failed/ it
 *	    moves back to out/ so its stored result is reported again;
 *	  - otherwise the payload is opened (envelope, context task:<type>) and checked
 *	    against its schema; a good task goes to new/ (hold/ for the types in
 *	    FLIP_HOLD_TASK_TYPES); a task that cannot be opened or validated goes
 *	    straight to out/ with its failure result ("Invalid payload: ...",
 *	    "Unknown task type: ..."), so it never reaches flip-exec.
 *	Every new job is written in tmp/ and fsynced first; then all are renamed into
 *	place and the state directories fsynced once: every task is durable before
 *	intake returns, at one directory fsync per state rather than per task.
 *	A task whose id cannot name a job (not a task id as ident.h defines it) is not
 *	spooled: it is logged and audited, and the hub re-delivers it after its
 *	requeue timeout until it fails there for good; nothing else can be done with
 *	an id that cannot be addressed.
 *
 * DIAGNOSTICS
 *	intake_fetch() returns an outcome of lib/err.h: ERR_OK; ERR_TRANSIENT (no
 *	answer, 5xx, 429, a malformed reply, too little free space to fetch, or
 *	tasks that were claimed but could not be spooled: disk full or broken);
 *	ERR_AUTH (401: the hub refused the API key). intake_accept() returns ERR_OK
 *	or ERR_TRANSIENT (the spool failed). err says what happened.
 *
 *	A spool failure is the one case worse than the others under ERR_TRANSIENT:
 *	the hub has claimed the tasks, and they come back only after its requeue
 *	timeout (30 min). err says so; nothing acts differently on it (the run fails
 *	and the next one fetches again), so no separate kind or flag carries it.
 */
#ifndef FLIP_INTAKE_H
#define FLIP_INTAKE_H

#include <stddef.h>
#include <jansson.h>

#include "lib/err.h"
#include "lib/hub.h"
#include "lib/node.h"

#define INTAKE_MAX_TASKS 1000	/* more than the hub's 50 per call is a broken hub */
#define INTAKE_MIN_FREE (1024 * 1024)	/* free bytes the spool needs before a fetch */

struct intake_stats {
	int fetched;		/* tasks in the hub's reply */
	int spooled;		/* new jobs in new/ or hold/ */
	int refused;		/* new jobs straight to out/ as failures */
	int redelivered;	/* ids already in the spool */
	int skipped;		/* not spoolable (bad id, duplicate in one reply) */
};

enum err_kind intake_fetch(struct node *n, struct hub *h, struct intake_stats *st, char *err,
			   size_t errlen);
enum err_kind intake_accept(struct node *n, json_t *tasks, struct intake_stats *st, char *err,
			    size_t errlen);

#endif
