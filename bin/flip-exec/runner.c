/* SPDX-License-Identifier: Apache-2.0 */
/*
 * runner - run spooled jobs through their handlers (see runner.h).
 */
#include "bin/flip-exec/runner.h"

#include "lib/crash.h"
#include "lib/log.h"
#include "lib/jobfile.h"
#include "lib/retry.h"
#include "lib/result.h"
#include "lib/task.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>



/* runner_project - the project a task belongs to, for ordering; NULL when none */
static const char *runner_project(json_t *task)
{
	json_t *p = json_object_get(task, "payload");
	const char *id = json_string_value(json_object_get(p, "project_id"));

	return id ? id : json_string_value(json_object_get(p, "imaging_project_id"));
}

/* runner_defer - a transient failure: back to new/, or give up after the limit */
static int runner_defer(struct node *n, struct job *job, struct job_answer *a)
{
	json_t *st = spool_job_read_json(job, JOBFILE_EXEC, JOBFILE_STATE_CAP);
	double now = node_now(), first;
	json_int_t attempts;

	if (!json_is_object(st)) {
		json_decref(st);
		st = json_object();
	}
	first = json_real_value(json_object_get(st, "first_failure_at"));
	if (first == 0)
		first = now;
	attempts = json_integer_value(json_object_get(st, "attempts")) + 1;
	if (now - first >= (double)n->cfg.transient_give_up) {
		char service[sizeof(a->service)];
		snprintf(service, sizeof(service), "%s", a->service[0] ? a->service : "service");
		jobs_answer_fail(a, 503, "%s unavailable", service);
		json_decref(st);
		return 1;	/* report it */
	}
	double delay = retry_backoff((int)attempts, retry_random());
	if (delay > 60)
		delay = 60;	/* a local service: come back at least every minute */
	json_object_set_new(st, "attempts", json_integer(attempts));
	json_object_set_new(st, "first_failure_at", json_real(first));
	json_object_set_new(st, "next_attempt_at", json_real(now + delay));
	json_object_set_new(st, "service", json_string(a->service));
	if (spool_job_write_json(job, JOBFILE_EXEC, st) < 0 ||
	    spool_job_move(job, SPOOL_NEW, 1) < 0) {
		log_error("job %s: cannot put it back in new/: %s", job->name, strerror(errno));
		json_decref(st);
		return -1;
	}
	log_warn("task %s: %s unavailable; attempt %lld, retry in %.0f s (gives up %ld s after the "
		 "first failure)", job->task_id, a->service, (long long)attempts, delay,
		 n->cfg.transient_give_up);
	spool_job_log(job, "%s unavailable; attempt %lld, retry in %.0f s", a->service,
		      (long long)attempts, delay);
	json_decref(st);
	return 0;
}

/* runner_tally - count one answer by type (and a cohort query's refusal by category) */
static void runner_tally(struct runner_stats *stats, const char *type, const struct job_answer *a)
{
	const char *t = type && jobs_lookup(type) ? type : "unknown";
	size_t i;

	for (i = 0; i < RUNNER_TALLIES && stats->types[i].type[0]; i++)
		if (strcmp(stats->types[i].type, t) == 0)
			break;
	if (i < RUNNER_TALLIES) {
		snprintf(stats->types[i].type, sizeof(stats->types[i].type), "%s", t);
		*(a->success ? &stats->types[i].success : &stats->types[i].failure) += 1;
	}
	const char *why = json_string_value(json_object_get(a->detail, "refused"));
	if (why == NULL || strcmp(t, "cohort_query") != 0)
		return;
	size_t n = strlen(why);
	if (n == 0 || n > 31 || strspn(why, "abcdefghijklmnopqrstuvwxyz_") != n)
		why = "other";
	for (i = 0; i < RUNNER_TALLIES && stats->refused[i].reason[0]; i++)
		if (strcmp(stats->refused[i].reason, why) == 0)
			break;
	if (i < RUNNER_TALLIES) {
		snprintf(stats->refused[i].reason, sizeof(stats->refused[i].reason), "%s", why);
		stats->refused[i].n++;
	}
}

/* runner_job - run one claimed job in cur/ to its end; a deferred job's project joins waiting */
static int runner_job(struct node *n, struct job *job, struct runner_stats *stats,
		      json_t *waiting)
{
	json_t *task = spool_job_read_json(job, JOBFILE_TASK, JOBFILE_TASK_CAP), *result = NULL;
	const char *type = json_string_value(json_object_get(task, "task_type"));
	struct job_answer a;
	struct timespec t0, t1;
	int rc = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (!json_is_object(task)) {
		memset(&a, 0, sizeof(a));
		jobs_answer_fail(&a, 0, "task.json is missing or damaged in the spool");
		a.status_code = 500;
	} else {
		node_audit(n, "task.started", job->task_id, type,
			   json_pack("{s:I}", "seq", (json_int_t)job->seq));
		jobs_execute(n, job, task, &a);
	}
	if (a.outcome == JOB_TRANSIENT) {
		int d = runner_defer(n, job, &a);
		if (d <= 0) {
			const char *project = runner_project(task);
			/* later jobs of this project must not overtake it in this pass either */
			if (project)
				json_object_set_new(waiting, project, json_true());
			stats->deferred += d == 0;
			rc = d < 0;
			goto out;
		}
	}
	stats->ran++;
	if (!a.success && a.cohort == NULL && type && strcmp(type, "cohort_query") == 0) {
		json_t *p = json_object_get(task, "payload");
		const char *qid = json_string_value(json_object_get(p, "query_id"));
		const char *tid = json_string_value(json_object_get(p, "trust_id"));
		if (qid && tid)
			a.cohort = result_cohort_failure(qid, tid, a.error);
	}
	result = jobs_result(&a);
	if (result == NULL || (a.cohort && spool_job_write_json(job, JOBFILE_COHORT, a.cohort) < 0) ||
	    spool_job_write_json(job, JOBFILE_RESULT, result) < 0) {
		if (errno == ENOSPC || errno == EDQUOT) {
			/* every other job would fail the same way: stop the run (rc 2) */
			log_error("job %s: cannot write its result: the disk holding %s is full; it "
				  "stays in cur/ and runs again once space is freed", job->name,
				  n->cfg.spool_dir);
			rc = 2;
		} else {
			log_error("job %s: cannot write its result: %s; it stays in cur/ and runs "
				  "again", job->name, strerror(errno));
			rc = 1;
		}
		goto out;
	}
	CRASH_POINT("exec.after_result");
	if (spool_job_move(job, SPOOL_OUT, 1) < 0) {
		log_error("job %s: cannot move to out/: %s", job->name, strerror(errno));
		rc = 1;
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (a.success)
		stats->succeeded++;
	else
		stats->failed++;
	runner_tally(stats, type, &a);
	spool_job_log(job, "ran in %.3f s: %s", secs, a.success ? "success" : "failure");
	if (!a.success)
		log_info("task %s (%s) failed: %s", job->task_id, type ? type : "?", a.error);
	json_t *detail = a.detail ? json_incref(a.detail) : json_object();
	json_object_set_new(detail, "success", json_boolean(a.success));
	json_object_set_new(detail, "seconds", json_real(secs));
	if (!a.success && a.status_code)
		json_object_set_new(detail, "status_code", json_integer(a.status_code));
	node_audit(n, "task.finished", job->task_id, type, detail);
out:
	jobs_answer_free(&a);
	json_decref(result);
	json_decref(task);
	return rc;
}

/* runner_due - is a job in new/ due, and not behind a waiting job of its project */
static int runner_due(struct job *job, json_t *waiting_projects)
{
	json_t *st = spool_job_read_json(job, JOBFILE_EXEC, JOBFILE_STATE_CAP);
	json_t *task = spool_job_read_json(job, JOBFILE_TASK, JOBFILE_TASK_CAP);
	const char *project = runner_project(task);
	int due = 1;

	if (json_real_value(json_object_get(st, "next_attempt_at")) > node_now())
		due = 0;
	if (project && json_object_get(waiting_projects, project))
		due = 0;
	if (!due && project)
		json_object_set_new(waiting_projects, project, json_true());
	json_decref(st);
	json_decref(task);
	return due;
}

/* runner_run - recover cur/, then run what is due in new/ */
int runner_run(struct node *n, struct runner_stats *stats)
{
	char **names;
	size_t cnt;
	int rc = 0;
	json_t *waiting = json_object();

	memset(stats, 0, sizeof(*stats));
	/* jobs a crashed flip-exec left behind: handlers are idempotent, run them again */
	if (spool_list(&n->sp, SPOOL_CUR, &names, &cnt) == 0) {
		for (size_t i = 0; i < cnt; i++) {
			struct job job;
			if (spool_job_open(&n->sp, SPOOL_CUR, names[i], &job) < 0)
				continue;
			if (spool_job_claim(&job) == 1) {
				log_info("job %s was left in cur/ by an interrupted run; running it again",
					 job.name);
				spool_job_log(&job, "recovered from cur/ after an interrupted run");
				stats->recovered++;
				rc |= runner_job(n, &job, stats, waiting);
			}
			spool_job_close(&job);
			if (rc & 2)
				break;	/* disk full */
		}
		spool_list_free(names, cnt);
	}
	if (spool_list(&n->sp, SPOOL_NEW, &names, &cnt) < 0) {
		log_error("cannot list %s/new: %s", n->cfg.spool_dir, strerror(errno));
		json_decref(waiting);
		return 1;
	}
	for (size_t i = 0; i < cnt && !(rc & 2); i++) {
		struct job job;

		if (spool_job_open(&n->sp, SPOOL_NEW, names[i], &job) < 0)
			continue;	/* held or moved by the operator since the listing */
		if (!runner_due(&job, waiting)) {
			stats->waiting++;
			spool_job_close(&job);
			continue;
		}
		if (spool_job_claim(&job) == 1) {
			if (spool_job_move(&job, SPOOL_CUR, 1) == 0) {
				CRASH_POINT("exec.after_claim");
				rc |= runner_job(n, &job, stats, waiting);
			} else {
				log_error("job %s: cannot claim it (rename to cur/): %s", job.name,
					  strerror(errno));
				rc = 1;
			}
		}
		spool_job_close(&job);
	}
	spool_list_free(names, cnt);
	json_decref(waiting);
	return rc ? 1 : 0;
}
