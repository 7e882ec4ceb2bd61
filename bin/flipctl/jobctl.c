/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jobctl - the operator's actions on spooled jobs (see jobctl.h).
 */
#include "bin/flipctl/jobctl.h"

#include "lib/durable.h"
#include "lib/jobfile.h"
#include "lib/ident.h"
#include "jobs/jobs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* jobctl_find - a job by task id, job name or unambiguous task id prefix */
int jobctl_find(struct spool *sp, const char *ref, struct job *job, char *err, size_t errlen)
{
	size_t reflen = strlen(ref);
	int matches = 0;

	if (reflen < 8 || reflen > SPOOL_NAME_MAX) {
		snprintf(err, errlen, "'%.40s' is too short to name a job: give at least 8 "
			 "characters of its task id (flipctl ls lists them)", ref);
		return -1;
	}
	for (int st = SPOOL_NEW; st < SPOOL_NSTATES; st++) {
		char **names;
		size_t cnt;

		if (spool_list(sp, (enum spool_state)st, &names, &cnt) < 0)
			continue;
		for (size_t i = 0; i < cnt; i++) {
			const char *id = names[i] + SPOOL_SEQ_PREFIX;
			if (strcmp(names[i], ref) != 0 && strncmp(id, ref, reflen) != 0)
				continue;
			if (++matches == 1 && spool_job_open(sp, (enum spool_state)st, names[i], job) < 0)
				matches = 0;
			else if (matches > 1)
				spool_job_close(job);
		}
		spool_list_free(names, cnt);
	}
	if (matches == 1)
		return 0;
	snprintf(err, errlen, matches ? "'%s' matches %d jobs: give more of the task id"
				      : "no job with task id '%s' in the spool", ref, matches);
	return -1;
}

static int jobctl_claim(struct job *job, char *err, size_t errlen)
{
	if (spool_job_claim(job) == 1)
		return 0;
	snprintf(err, errlen, "job %s is being worked on by flip-exec or flip-report right now; "
		 "try again in a moment", job->name);
	return -1;
}

static int jobctl_move(struct node *n, struct job *job, enum spool_state from,
		       enum spool_state to, const char *event, char *err, size_t errlen)
{
	if (job->state != from) {
		snprintf(err, errlen, "job %s is in %s/, not %s/", job->name,
			 spool_state_name(job->state), spool_state_name(from));
		return -1;
	}
	if (jobctl_claim(job, err, errlen) < 0)
		return -1;
	if (spool_job_move(job, to, 1) < 0) {
		snprintf(err, errlen, "cannot move job %s to %s/: %s", job->name,
			 spool_state_name(to), strerror(errno));
		return -1;
	}
	spool_job_log(job, "%s by the operator (uid %d)", event + 9, (int)getuid());
	node_audit(n, event, job->task_id, NULL,
		   json_pack("{s:s,s:s,s:i}", "from", spool_state_name(from), "to",
			     spool_state_name(to), "uid", (int)getuid()));
	return 0;
}

/* jobctl_hold - new/ -> hold/ */
int jobctl_hold(struct node *n, struct job *job, char *err, size_t errlen)
{
	return jobctl_move(n, job, SPOOL_NEW, SPOOL_HOLD, "operator.hold", err, errlen);
}

/* jobctl_release - hold/ -> new/ */
int jobctl_release(struct node *n, struct job *job, char *err, size_t errlen)
{
	return jobctl_move(n, job, SPOOL_HOLD, SPOOL_NEW, "operator.release", err, errlen);
}

/* jobctl_keep_aside - rename file to <stem>.<k>.json with the first free k */
static int jobctl_keep_aside(struct job *job, const char *file, const char *tag)
{
	char stem[32], aside[64];
	struct stat st;

	if (!spool_job_exists(job, file))
		return 0;
	snprintf(stem, sizeof(stem), "%.*s", (int)(strcspn(file, ".")), file);
	for (int k = 1; k < 1000; k++) {
		snprintf(aside, sizeof(aside), "%s.%s%d.json", stem, tag, k);
		if (fstatat(job->dirfd, aside, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
			return renameat(job->dirfd, file, job->dirfd, aside);
	}
	errno = EEXIST;
	return -1;
}

/* jobctl_rerun_done - re-execute a closed task locally, keep the result beside */
static int jobctl_rerun_done(struct node *n, struct job *job, char *err, size_t errlen)
{
	json_t *task = spool_job_read_json(job, JOBFILE_TASK, JOBFILE_TASK_CAP), *result = NULL;
	struct job_answer a;
	int rc = -1;

	if (!json_is_object(task)) {
		snprintf(err, errlen, "job %s has no readable task.json", job->name);
		json_decref(task);
		return -1;
	}
	jobs_execute(n, job, task, &a);
	if (a.outcome == JOB_TRANSIENT) {
		snprintf(err, errlen, "re-run of %s: %s unavailable; try again later", job->name,
			 a.service);
		goto out;
	}
	result = jobs_result(&a);
	char name[64];
	struct stat st;
	for (int k = 1; k < 1000; k++) {
		snprintf(name, sizeof(name), "result.rerun-%d.json", k);
		if (fstatat(job->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			break;
	}
	if (result == NULL || spool_job_write_json(job, name, result) < 0) {
		snprintf(err, errlen, "cannot write %s in job %s: %s", name, job->name,
			 strerror(errno));
		goto out;
	}
	spool_job_log(job, "re-run locally by the operator; result kept as %s, not reported", name);
	node_audit(n, "operator.rerun", job->task_id, json_string_value(json_object_get(task, "task_type")),
		   json_pack("{s:s,s:b,s:s}", "from", "done", "success", a.success, "kept_as", name));
	rc = 0;
out:
	jobs_answer_free(&a);
	json_decref(result);
	json_decref(task);
	return rc;
}

/* jobctl_rerun - run a job again (see jobctl.h for what happens per state) */
int jobctl_rerun(struct node *n, struct job *job, char *err, size_t errlen)
{
	enum spool_state from = job->state;

	if (from != SPOOL_FAILED && from != SPOOL_OUT && from != SPOOL_DONE) {
		snprintf(err, errlen, "job %s is in %s/: it has not run yet (release it from hold/ "
			 "with flipctl release)", job->name, spool_state_name(from));
		return -1;
	}
	if (jobctl_claim(job, err, errlen) < 0)
		return -1;
	if (from == SPOOL_DONE)
		return jobctl_rerun_done(n, job, err, errlen);
	if (jobctl_keep_aside(job, JOBFILE_RESULT, "") < 0 ||
	    jobctl_keep_aside(job, JOBFILE_COHORT, "") < 0 ||
	    jobctl_keep_aside(job, JOBFILE_REPORT, "") < 0 || spool_job_unlink(job, JOBFILE_EXEC) < 0 ||
	    spool_job_move(job, SPOOL_NEW, 1) < 0) {
		snprintf(err, errlen, "cannot requeue job %s: %s", job->name, strerror(errno));
		return -1;
	}
	spool_job_log(job, "re-run requested by the operator (uid %d) from %s/", (int)getuid(),
		      spool_state_name(from));
	node_audit(n, "operator.rerun", job->task_id, NULL,
		   json_pack("{s:s,s:i}", "from", spool_state_name(from), "uid", (int)getuid()));
	return 0;
}

/* jobctl_purge - remove done/ jobs older than the retention */
int jobctl_purge(struct node *n, long older_than_days, int *removed)
{
	char **names;
	size_t cnt;
	time_t cutoff = time(NULL) - older_than_days * 86400;

	*removed = 0;
	if (spool_list(&n->sp, SPOOL_DONE, &names, &cnt) < 0)
		return -1;
	for (size_t i = 0; i < cnt; i++) {
		struct stat st;
		if (fstatat(n->sp.statefd[SPOOL_DONE], names[i], &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    st.st_mtime >= cutoff)
			continue;
		/* move out of done/ first, so a half-removed job is never seen as a job */
		if (renameat(n->sp.statefd[SPOOL_DONE], names[i], n->sp.statefd[SPOOL_TMP],
			     names[i]) < 0)
			continue;
		durable_remove_tree(n->sp.statefd[SPOOL_TMP], names[i]);
		(*removed)++;
	}
	spool_list_free(names, cnt);
	durable_fsync_dir(n->sp.statefd[SPOOL_DONE]);
	node_audit(n, "operator.purge", NULL, NULL,
		   json_pack("{s:i,s:I}", "removed", *removed, "older_than_days",
			     (json_int_t)older_than_days));
	return 0;
}
