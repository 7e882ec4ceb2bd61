/* SPDX-License-Identifier: Apache-2.0 */
/*
 * report - upload spooled results, exactly once, in order (see report.h).
 *
 * Exactly once without an acknowledgement protocol: the hub answers 409 to a
 * second result for a task that is no longer IN_PROGRESS. So before every POST the
 * job's state.json records `maybe_accepted` (an attempt may reach the hub); it is
 * cleared only when an answer proves the attempt was not processed. A later 409
 * on a job so marked is that attempt's acceptance, seen late. If it was in fact
 * the hub requeueing the task, the hub re-delivers the id, flip-poll finds it in
 * done/ and the stored result is reported again: both paths end with exactly one
 * accepted result on the hub.
 */
#include "bin/flip-report/report.h"

#include "lib/crash.h"
#include "lib/log.h"
#include "lib/result.h"
#include "lib/jobfile.h"
#include "lib/retry.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *report_state_read(struct job *job)
{
	json_t *st = spool_job_read_json(job, JOBFILE_REPORT, JOBFILE_STATE_CAP);

	if (!json_is_object(st)) {
		json_decref(st);
		st = json_object();
	}
	return st;
}

static int report_state_write(struct job *job, json_t *st)
{
	return spool_job_write_json(job, JOBFILE_REPORT, st);
}

static int report_bool(json_t *st, const char *key)
{
	return json_is_true(json_object_get(st, key));
}

/* report_note - record what the hub said */
static void report_note(json_t *st, const char *what, const struct hub_reply *r)
{
	char detail[320], key[64];

	hub_detail(r, detail, sizeof(detail));
	snprintf(key, sizeof(key), "%s_status", what);
	json_object_set_new(st, key, json_integer(r->status));
	snprintf(key, sizeof(key), "%s_detail", what);
	json_object_set_new(st, key, json_string(detail));
	json_object_set_new(st, "last_attempt_at", json_real(node_now()));
}

/* report_defer - a transient failure: back off and keep the job in out/ */
static void report_defer(struct node *n, struct job *job, json_t *st, const struct hub_reply *r,
			 const char *what)
{
	json_int_t attempts = json_integer_value(json_object_get(st, "attempts")) + 1;
	double delay = retry_backoff((int)attempts, retry_random());
	char detail[320];

	/* the hub said when (429/503 with Retry-After): never sooner than that */
	if (r->retry_after > delay)
		delay = (double)r->retry_after;

	json_object_set_new(st, "attempts", json_integer(attempts));
	json_object_set_new(st, "next_attempt_at", json_real(node_now() + delay));
	report_note(st, what, r);
	if (report_state_write(job, st) < 0)
		log_error("job %s: cannot record the upload attempt: %s", job->name, strerror(errno));
	hub_detail(r, detail, sizeof(detail));
	if (r->status)
		log_warn("task %s: %s upload failed (HTTP %ld: %s); attempt %lld, next in %.0f s",
			 job->task_id, what, r->status, detail, (long long)attempts, delay);
	else
		log_warn("task %s: %s upload failed (%s); attempt %lld, next in %.0f s", job->task_id,
			 what, detail, (long long)attempts, delay);
	spool_job_log(job, "%s upload attempt %lld failed (status %ld); retry in %.0f s", what,
		      (long long)attempts, r->status, delay);
	(void)n;
}

static int report_final_status(long status)
{
	return status == 403 || status == 404 || status == 409 || status == 422;
}

/* report_cohort - POST /cohort/results when the job has one not yet accepted */
static int report_cohort(struct node *n, struct hub *h, struct job *job, json_t *st,
			 const char *task_type)
{
	char *body;
	size_t len;
	struct hub_reply r;
	char detail[320];

	if (report_bool(st, "cohort_accepted") || json_object_get(st, "cohort_refused") ||
	    !spool_job_exists(job, JOBFILE_COHORT))
		return 0;
	if (spool_job_read(job, JOBFILE_COHORT, JOBFILE_RESULT_CAP, &body, &len) < 0) {
		log_error("job %s: cannot read cohort.json: %s", job->name, strerror(errno));
		return 1;
	}
	hub_call(h, "POST", "/cohort/results", body, len, &r);
	free(body);
	CRASH_POINT("report.after_cohort_post");
	if (r.status == 200) {
		json_object_set_new(st, "cohort_accepted", json_true());
		report_note(st, "cohort", &r);
		node_audit(n, "cohort.reported", job->task_id, task_type,
			   json_pack("{s:I}", "bytes", (json_int_t)len));
	} else if (r.status == 401) {
		hub_reply_free(&r);
		return 2;
	} else if (report_final_status(r.status)) {
		hub_detail(&r, detail, sizeof(detail));
		json_object_set_new(st, "cohort_refused", json_sprintf("%ld: %s", r.status, detail));
		report_note(st, "cohort", &r);
		log_error("task %s: the hub refused the cohort results for good (%ld: %s); "
			  "reporting the task result anyway", job->task_id, r.status, detail);
		node_audit(n, "result.refused", job->task_id, task_type,
			   json_pack("{s:s,s:I}", "what", "cohort", "status", (json_int_t)r.status));
	} else {
		report_defer(n, job, st, &r, "cohort");
		hub_reply_free(&r);
		return 1;
	}
	hub_reply_free(&r);
	if (report_state_write(job, st) < 0) {
		log_error("job %s: cannot record the cohort upload: %s", job->name, strerror(errno));
		return 1;
	}
	return 0;
}

/* report_finish - move the job to done/ or failed/ and say so */
static void report_finish(struct node *n, struct job *job, json_t *st, const char *task_type,
			  enum spool_state to, const struct hub_reply *r, const char *note)
{
	json_object_set_new(st, "outcome", json_string(to == SPOOL_DONE ? "accepted" : "refused"));
	if (note)
		json_object_set_new(st, "note", json_string(note));
	report_note(st, "result", r);
	if (report_state_write(job, st) < 0)
		log_error("job %s: cannot record the outcome: %s", job->name, strerror(errno));
	CRASH_POINT("report.after_state");
	if (spool_job_move(job, to, 1) < 0) {
		log_error("job %s: cannot move to %s/: %s", job->name, spool_state_name(to),
			  strerror(errno));
		return;
	}
	spool_job_log(job, "result %s by the hub (status %ld)%s%s",
		      to == SPOOL_DONE ? "accepted" : "refused", r->status, note ? ": " : "",
		      note ? note : "");
	if (to == SPOOL_DONE) {
		node_audit(n, "result.reported", job->task_id, task_type,
			   json_pack("{s:I,s:s?}", "status", (json_int_t)r->status, "note", note));
	} else {
		char detail[320];
		hub_detail(r, detail, sizeof(detail));
		log_error("task %s: the hub refused the result for good (%ld: %s); job in failed/",
			  job->task_id, r->status, detail);
		node_audit(n, "result.refused", job->task_id, task_type,
			   json_pack("{s:s,s:I}", "what", "result", "status", (json_int_t)r->status));
	}
}

/* report_job - upload one job; 0 next job, 1 stop the run (transient), 2 auth refused */
static int report_job(struct node *n, struct hub *h, struct job *job, struct report_stats *stats)
{
	json_t *st = report_state_read(job), *result = NULL, *task;
	char *body = NULL, path[160];
	const char *task_type = NULL;
	struct hub_reply r = {0};
	size_t len;
	int rc = 0, was_maybe;

	if (json_real_value(json_object_get(st, "next_attempt_at")) > node_now()) {
		stats->waiting++;
		goto out;
	}
	task = spool_job_read_json(job, JOBFILE_TASK, JOBFILE_TASK_CAP);
	task_type = json_string_value(json_object_get(task, "task_type"));
	char type_buf[64] = "";
	if (task_type)
		snprintf(type_buf, sizeof(type_buf), "%s", task_type);
	json_decref(task);
	task_type = type_buf[0] ? type_buf : NULL;

	if ((rc = report_cohort(n, h, job, st, task_type)) != 0)
		goto out;
	/* parsed before the test: jansson's json_is_object() is a macro that evaluates its
	 * argument twice, so a json_loadb() inside it parsed the file twice and leaked one */
	if (spool_job_read(job, JOBFILE_RESULT, JOBFILE_RESULT_CAP, &body, &len) == 0)
		result = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(result) || !json_is_boolean(json_object_get(result, "success"))) {
		log_error("job %s: result.json is missing or damaged; job moved to hold/ for the "
			  "operator (flipctl show %s, then flipctl release to run it again)",
			  job->name, job->task_id);
		if (spool_job_move(job, SPOOL_HOLD, 1) < 0)
			log_error("job %s: cannot move to hold/: %s", job->name, strerror(errno));
		goto out;
	}
	was_maybe = report_bool(st, "maybe_accepted");
	json_object_set_new(st, "maybe_accepted", json_true());
	if (report_state_write(job, st) < 0) {
		log_error("job %s: cannot record the upload attempt: %s", job->name, strerror(errno));
		rc = 1;
		goto out;
	}
	snprintf(path, sizeof(path), "/tasks/%s/result", job->task_id);
	hub_call(h, "POST", path, body, len, &r);
	CRASH_POINT("report.after_post");
	if (r.status == 200) {
		report_finish(n, job, st, task_type, SPOOL_DONE, &r, NULL);
		stats->done++;
	} else if (r.status == 409 && (was_maybe || r.maybe_resent)) {
		report_finish(n, job, st, task_type, SPOOL_DONE, &r,
			      "409 after an earlier attempt whose answer was lost: that attempt was "
			      "accepted");
		stats->done++;
	} else if (report_final_status(r.status)) {
		report_finish(n, job, st, task_type, SPOOL_FAILED, &r, NULL);
		stats->failed++;
	} else if (r.status == 401) {
		json_object_set_new(st, "maybe_accepted", json_boolean(was_maybe));
		report_state_write(job, st);
		rc = 2;
	} else {
		/* 429 and unsent requests were not processed; a 5xx or a lost answer may have been */
		int maybe = was_maybe || (r.sent && r.status != 429);
		json_object_set_new(st, "maybe_accepted", json_boolean(maybe));
		report_defer(n, job, st, &r, "result");
		stats->retried++;
		rc = 1;
	}
out:
	hub_reply_free(&r);
	json_decref(result);
	json_decref(st);
	free(body);
	return rc;
}

/* report_run - upload what is due in out/, in seq order */
/* report_seen - is name among the cnt names of an earlier listing? */
static bool report_seen(char **seen, size_t cnt, const char *name)
{
	for (size_t i = 0; i < cnt; i++)
		if (strcmp(seen[i], name) == 0)
			return true;
	return false;
}

int report_run(struct node *n, struct hub *h, struct report_stats *stats)
{
	char **names, **seen = NULL;
	size_t cnt, nseen = 0;
	int rc = 0, fresh = 1;

	memset(stats, 0, sizeof(*stats));
	/* Pass after pass until a listing shows no job the run has not looked at yet:
	 * a result that lands in out/ while this run uploads (flip-report.path does not
	 * start a second run then) goes now, not at the next timer run 30 s later.
	 * Each job is looked at once per run; a burst ends when the spool is quiet. */
	for (int pass = 0; rc == 0 && fresh && pass < 1000; pass++) {
		if (spool_list(&n->sp, SPOOL_OUT, &names, &cnt) < 0) {
			log_error("cannot list %s/out: %s", n->cfg.spool_dir, strerror(errno));
			rc = 1;
			break;
		}
		char **grown = realloc(seen, (nseen + cnt + 1) * sizeof(*seen));
		if (grown == NULL) {
			spool_list_free(names, cnt);
			rc = 1;
			break;
		}
		seen = grown;
		fresh = 0;
		size_t before = nseen;
		for (size_t i = 0; i < cnt && rc == 0; i++) {
			struct job job;

			if (report_seen(seen, before, names[i]))
				continue;	/* looked at in an earlier pass of this run */
			fresh = 1;
			if ((seen[nseen] = strdup(names[i])) != NULL)
				nseen++;
			if (spool_job_open(&n->sp, SPOOL_OUT, names[i], &job) < 0)
				continue;	/* moved by someone else (flipctl) since the listing */
			if (spool_job_claim(&job) == 1)
				rc = report_job(n, h, &job, stats);
			spool_job_close(&job);
		}
		spool_list_free(names, cnt);
	}
	for (size_t i = 0; i < nseen; i++)
		free(seen[i]);
	free(seen);
	return rc;
}
