/* SPDX-License-Identifier: Apache-2.0 */
/*
 * status - what flipctl status shows, collected once as JSON.
 *
 * SYNOPSIS
 *	#include "bin/flipctl/status.h"
 *
 *	json_t *status_collect(struct node *n);
 *	json_t *status_job(struct node *n, struct job *job);
 *
 * DESCRIPTION
 *	status_collect() reads only local files (no network): the last heartbeat
 *	reply kept by flip-poll (hub.json), spool counts and the oldest job's age per
 *	state, and each program's last run from its metrics file. It returns
 *	{"hub": {...}|null, "spool": {state: {"jobs", "oldest_age_seconds"}},
 *	 "programs": {prog: {"last_run", "success", "duration_seconds"}},
 *	 "imaging": [{"id", "hub_project", "created_at", "counts": {state: n}}],
 *	 "fl_client": flip-fl's record of the FL client, or null when there is none}.
 *
 *	status_job() summarises one job for `flipctl ls`: {"seq", "task_id",
 *	"task_type", "state", "age_seconds", "attempts", "outcome"} where outcome is
 *	"success"/"failure" once result.json exists (with the hub's verdict for done/
 *	and failed/), "waiting" before. Never payload contents.
 */
#ifndef FLIP_STATUS_H
#define FLIP_STATUS_H

#include <jansson.h>

#include "lib/node.h"

json_t *status_collect(struct node *n);
json_t *status_job(struct node *n, struct job *job);

#endif
