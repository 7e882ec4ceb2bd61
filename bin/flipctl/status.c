/* SPDX-License-Identifier: Apache-2.0 */
/*
 * status - local facts for flipctl status and ls (see status.h).
 */
#include "bin/flipctl/status.h"

#include "lib/durable.h"
#include "lib/jobfile.h"
#include "lib/heartbeat.h"
#include "lib/imaging_store.h"
#include "lib/statedir.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define STATUS_DISK_LOW 0.05	/* as the heartbeat's spool probe */

static const char *const status_programs[] = {"flip-poll", "flip-exec", "flip-report",
					      "flip-exec-imaging", "flip-fl"};

/* status_prom_value - one sample of a .prom file written by metrics.c */
static int status_prom_value(const char *text, const char *name, double *v)
{
	const char *p = text;
	size_t n = strlen(name);

	while ((p = strstr(p, name)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == '{') {
			const char *sp = strchr(p, ' ');
			if (sp) {
				*v = strtod(sp + 1, NULL);
				return 0;
			}
		}
		p += n;
	}
	return -1;
}

static json_t *status_programs_collect(struct node *n)
{
	json_t *out = json_object();
	int fd = node_state_dirfd(n, STATEDIR_METRICS);

	for (size_t i = 0; i < sizeof(status_programs) / sizeof(status_programs[0]); i++) {
		char file[64], *text;
		size_t len;
		double ts = 0, ok = 0, dur = 0;

		snprintf(file, sizeof(file), "%s.prom", status_programs[i]);
		if (fd < 0 || durable_read(fd, file, 1 << 20, &text, &len) < 0) {
			json_object_set_new(out, status_programs[i], json_null());
			continue;
		}
		status_prom_value(text, "flip_last_run_timestamp_seconds", &ts);
		status_prom_value(text, "flip_last_run_success", &ok);
		status_prom_value(text, "flip_last_run_duration_seconds", &dur);
		free(text);
		json_object_set_new(out, status_programs[i],
				    json_pack("{s:f,s:b,s:f}", "last_run", ts, "success", ok != 0,
					      "duration_seconds", dur));
	}
	if (fd >= 0)
		close(fd);
	return out;
}

static json_t *status_hub(struct node *n)
{
	int fd = node_state_dirfd(n, NULL);
	char *text;
	size_t len;
	json_t *v = NULL;

	if (fd >= 0 && durable_read(fd, STATEDIR_HUB, STATEDIR_HUB_CAP, &text, &len) == 0) {
		v = json_loadb(text, len, 0, NULL);
		free(text);
	}
	if (fd >= 0)
		close(fd);
	return v ? v : json_null();
}

/* status_imaging - each imaging project's five counts */
static json_t *status_imaging(struct node *n)
{
	json_t *out = json_array();
	char **ids;
	size_t cnt;

	if (imaging_list(n->cfg.state_dir, &ids, &cnt) < 0)
		return out;
	for (size_t i = 0; i < cnt; i++) {
		struct imaging_project *p = imaging_open(n->cfg.state_dir, ids[i]);
		long long c[IMAGING_NSTATES];
		long long burned = p ? imaging_count_error(p, IMAGING_QUEUE_FAILED,
							       "burned_in_annotation") : -1;
		if (p && imaging_counts(p, c) == 0 && burned >= 0) {
			json_t *counts = json_object();
			for (int s = 0; s < IMAGING_NSTATES; s++)
				json_object_set_new(counts, imaging_state_name((enum imaging_state)s),
						    json_integer(c[s]));
			json_object_set_new(counts, "burned_in_annotation", json_integer(burned));
			json_array_append_new(out, json_pack("{s:s,s:O,s:O,s:o}", "id", ids[i],
							     "hub_project", json_object_get(p->meta, "secondary_ID"),
							     "created_at", json_object_get(p->meta, "created_at"),
							     "counts", counts));
		}
		imaging_close(p);
		free(ids[i]);
	}
	free(ids);
	return out;
}

/*
 * status_disk - free space where the node writes: {name: {path, free_bytes,
 * total_bytes, low}}; low below STATUS_DISK_LOW of the file system or 1 MiB, where
 * results and metrics may no longer be written (the programs' last runs then look
 * older than they are)
 */
static json_t *status_disk(struct node *n)
{
	const char *names[] = {"spool", "state", "log"};
	const char *paths[] = {n->cfg.spool_dir, n->cfg.state_dir, n->cfg.log_dir};
	json_t *out = json_object();

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct statvfs v;
		if (paths[i] == NULL || statvfs(paths[i], &v) < 0)
			continue;
		double avail = (double)v.f_bavail * (double)v.f_frsize;
		double total = (double)v.f_blocks * (double)v.f_frsize;
		int low = total > 0 && (avail / total < STATUS_DISK_LOW || avail < 1048576.0);
		json_object_set_new(out, names[i],
				    json_pack("{s:s,s:f,s:f,s:b}", "path", paths[i], "free_bytes",
					      avail, "total_bytes", total, "low", low));
	}
	return out;
}

/* status_collect - one JSON object with everything flipctl status shows */
json_t *status_collect(struct node *n)
{
	json_t *spool = json_object();

	for (int st = SPOOL_NEW; st < SPOOL_NSTATES; st++) {
		char **names;
		size_t cnt;
		double oldest = 0;

		if (spool_list(&n->sp, (enum spool_state)st, &names, &cnt) < 0)
			continue;
		if (cnt > 0) {
			struct stat s;
			if (fstatat(n->sp.statefd[st], names[0], &s, AT_SYMLINK_NOFOLLOW) == 0)
				oldest = difftime(time(NULL), s.st_mtime);
		}
		spool_list_free(names, cnt);
		json_object_set_new(spool, spool_state_name((enum spool_state)st),
				    json_pack("{s:I,s:f}", "jobs", (json_int_t)cnt,
					      "oldest_age_seconds", oldest));
	}
	json_t *fl = heartbeat_fl_client(n);
	return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "hub", status_hub(n), "spool", spool,
			 "disk", status_disk(n), "programs", status_programs_collect(n), "imaging",
			 status_imaging(n), "fl_client", fl ? fl : json_null());
}

/* status_job - one line's worth of facts about a job */
json_t *status_job(struct node *n, struct job *job)
{
	json_t *task = spool_job_read_json(job, JOBFILE_TASK, JOBFILE_TASK_CAP);
	json_t *state = spool_job_read_json(job, JOBFILE_REPORT, JOBFILE_STATE_CAP);
	json_t *exec = spool_job_read_json(job, JOBFILE_EXEC, JOBFILE_STATE_CAP);
	json_t *result = spool_job_read_json(job, JOBFILE_RESULT, JOBFILE_RESULT_CAP);
	struct stat s;
	double age = 0;
	const char *outcome = "waiting";
	json_int_t attempts = json_integer_value(json_object_get(state, "attempts")) +
			      json_integer_value(json_object_get(exec, "attempts"));

	(void)n;
	if (fstat(job->dirfd, &s) == 0)
		age = difftime(time(NULL), s.st_mtime);
	if (json_is_object(result))
		outcome = json_is_true(json_object_get(result, "success")) ? "success" : "failure";
	json_t *out = json_pack("{s:I,s:s,s:s,s:s,s:f,s:I,s:s}", "seq", (json_int_t)job->seq,
				"task_id", job->task_id, "task_type",
				json_string_value(json_object_get(task, "task_type"))
					? json_string_value(json_object_get(task, "task_type")) : "?",
				"state", spool_state_name(job->state), "age_seconds", age,
				"attempts", attempts, "outcome", outcome);
	json_t *said = json_object_get(state, "result_status");
	if (said)
		json_object_set(out, "hub_status", said);
	json_decref(task);
	json_decref(state);
	json_decref(exec);
	json_decref(result);
	return out;
}
