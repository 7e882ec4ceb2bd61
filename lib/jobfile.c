/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jobfile - a job's upload bookkeeping, reset for a re-delivered task (see jobfile.h).
 */
#include "lib/jobfile.h"

#include <jansson.h>

/* jobfile_report_due - reset state.json so the stored result is reported next run */
int jobfile_report_due(struct job *job, int redelivery)
{
	json_t *st = spool_job_read_json(job, JOBFILE_REPORT, JOBFILE_STATE_CAP);
	json_int_t redeliveries;
	int rc;

	if (!json_is_object(st)) {
		json_decref(st);
		if ((st = json_object()) == NULL)
			return -1;
	}
	redeliveries = json_integer_value(json_object_get(st, "redeliveries"));
	json_object_set_new(st, "attempts", json_integer(0));
	json_object_set_new(st, "next_attempt_at", json_real(0));
	json_object_set_new(st, "maybe_accepted", json_false());
	json_object_del(st, "outcome");
	if (redelivery)
		json_object_set_new(st, "redeliveries", json_integer(redeliveries + 1));
	rc = spool_job_write_json(job, JOBFILE_REPORT, st);
	json_decref(st);
	return rc;
}
