/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jobctl - the operator's actions on spooled jobs (flipctl's engine).
 *
 * SYNOPSIS
 *	#include "bin/flipctl/jobctl.h"
 *
 *	int jobctl_find(struct spool *sp, const char *ref, struct job *job, char *err, size_t errlen);
 *	int jobctl_hold(struct node *n, struct job *job, char *err, size_t errlen);
 *	int jobctl_release(struct node *n, struct job *job, char *err, size_t errlen);
 *	int jobctl_rerun(struct node *n, struct job *job, char *err, size_t errlen);
 *	int jobctl_purge(struct node *n, long older_than_days, int *removed);
 *
 * DESCRIPTION
 *	jobctl_find() resolves what an operator typed: a full task id, a job name
 *	(<seq>-<task id>), or an unambiguous prefix of a task id of at least 8
 *	characters. 0 found (job opened), -1 not found or ambiguous (err says which).
 *
 *	Every action first claims the job (flock), so it never races flip-exec or
 *	flip-report working on the same job, and is one audited rename:
 *	  hold		new/ -> hold/
 *	  release	hold/ -> new/
 *	  rerun		failed/ or out/ -> new/: the previous result files are kept beside
 *			as result.<n>.json (and cohort/state likewise) and the new result
 *			is reported; from done/ (the hub has closed the task) the job is
 *			re-executed in place and its new result kept as
 *			result.rerun-<n>.json, never reported.
 *	jobctl_purge() removes done/ jobs whose directory is older than the given
 *	number of days.
 *
 * DIAGNOSTICS
 *	0 on success; -1 with a message in err that says what to do.
 */
#ifndef FLIP_JOBCTL_H
#define FLIP_JOBCTL_H

#include <stddef.h>

#include "lib/node.h"
#include "lib/spool.h"

int jobctl_find(struct spool *sp, const char *ref, struct job *job, char *err, size_t errlen);
int jobctl_hold(struct node *n, struct job *job, char *err, size_t errlen);
int jobctl_release(struct node *n, struct job *job, char *err, size_t errlen);
int jobctl_rerun(struct node *n, struct job *job, char *err, size_t errlen);
int jobctl_purge(struct node *n, long older_than_days, int *removed);

#endif
