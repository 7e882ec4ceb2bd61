/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jobcmd - flipctl's job commands: ls, show, rerun, hold, release, purge, printed
 * over jobctl.c (the actions) and status.c (a job's summary) (see command.h).
 */
#include "bin/flipctl/command.h"

#include "bin/flipctl/jobctl.h"
#include "bin/flipctl/status.h"
#include "lib/digest.h"
#include "lib/handoff.h"
#include "lib/jobfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* jobcmd_ls - flipctl ls: jobs one line each */
int jobcmd_ls(const struct command *cmd, int argc, char **argv)
{
	struct node n;
	int as_json = 0, only = -1;
	json_t *all = json_array();

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			as_json = 1;
		else if ((only = spool_state_parse(argv[i])) < 0 || only == SPOOL_TMP) {
			json_decref(all);
			return COMMAND_USAGE;
		}
	}
	command_open_node(cmd, &n, NODE_SPOOL);
	for (int st = SPOOL_NEW; st < SPOOL_NSTATES; st++) {
		char **names;
		size_t cnt;
		if ((only >= 0 && st != only) || spool_list(&n.sp, (enum spool_state)st, &names, &cnt) < 0)
			continue;
		for (size_t i = 0; i < cnt; i++) {
			struct job job;
			if (spool_job_open(&n.sp, (enum spool_state)st, names[i], &job) < 0)
				continue;
			json_array_append_new(all, status_job(&n, &job));
			spool_job_close(&job);
		}
		spool_list_free(names, cnt);
	}
	if (as_json) {
		command_print_json(all);
	} else {
		size_t i;
		json_t *j;
		if (json_array_size(all))
			printf("%-16s %-36s %-19s %-6s %5s %4s %s\n", "SEQ", "TASK", "TYPE", "STATE",
			       "AGE", "TRY", "OUTCOME");
		json_array_foreach(all, i, j) {
			char age[16];
			command_age(json_real_value(json_object_get(j, "age_seconds")), age, sizeof(age));
			printf("%016lld %-36s %-19s %-6s %5s %4lld %s",
			       (long long)json_integer_value(json_object_get(j, "seq")),
			       json_string_value(json_object_get(j, "task_id")),
			       json_string_value(json_object_get(j, "task_type")),
			       json_string_value(json_object_get(j, "state")), age,
			       (long long)json_integer_value(json_object_get(j, "attempts")),
			       json_string_value(json_object_get(j, "outcome")));
			if (json_integer_value(json_object_get(j, "hub_status")) > 0)
				printf(" (hub %lld)",
				       (long long)json_integer_value(json_object_get(j, "hub_status")));
			putchar('\n');
		}
	}
	json_decref(all);
	node_close(&n);
	return 0;
}

/* jobcmd_redact - SQL in a payload as its size and fingerprint (output not a terminal) */
static void jobcmd_redact(json_t *payload)
{
	const char *key;
	json_t *v;
	char fp[65], text[128];

	json_object_foreach(payload, key, v) {
		if (strcmp(key, "query") != 0 || !json_is_string(v))
			continue;
		digest_query(json_string_value(v), fp);
		snprintf(text, sizeof(text), "<SQL withheld: %zu characters, fingerprint %.12s; "
			 "run flipctl show on a terminal to see it>", json_string_length(v), fp);
		json_object_set_new(payload, key, json_string(text));
	}
}

/* jobcmd_show - flipctl show: a job, whole */
int jobcmd_show(const struct command *cmd, int argc, char **argv)
{
	struct node n;
	struct job job;
	char err[512];
	static const char *const files[] = {JOBFILE_RESULT, JOBFILE_COHORT, JOBFILE_REPORT,
					    JOBFILE_EXEC};

	if (argc != 2)
		return COMMAND_USAGE;
	command_open_node(cmd, &n, NODE_SPOOL);
	if (jobctl_find(&n.sp, argv[1], &job, err, sizeof(err)) < 0) {
		fprintf(stderr, "flipctl: %s\n", err);
		node_close(&n);
		return 1;
	}
	printf("job %s in %s/\n", job.name, spool_state_name(job.state));
	json_t *task = spool_job_read_json(&job, JOBFILE_TASK, JOBFILE_TASK_CAP);
	if (task && !isatty(STDOUT_FILENO))
		jobcmd_redact(json_object_get(task, "payload"));
	printf("--- " JOBFILE_TASK "\n");
	if (task)
		command_print_json(task);
	json_decref(task);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		/* the largest cap of any job file: show whatever is there */
		json_t *v = spool_job_read_json(&job, files[i], JOBFILE_TASK_CAP);
		if (v) {
			printf("--- %s\n", files[i]);
			command_print_json(v);
			json_decref(v);
		}
	}
	char *log;
	size_t len;
	if (spool_job_read(&job, JOBFILE_LOG, JOBFILE_LOG_CAP, &log, &len) == 0) {
		printf("--- log\n%s", log);
		free(log);
	}
	spool_job_close(&job);
	node_close(&n);
	return 0;
}

/* jobcmd_action - a job action: hold, release, rerun */
int jobcmd_action(const struct command *cmd, int argc, char **argv, jobcmd_action_fn *action,
		  const char *done)
{
	struct node n;
	struct job job;
	char err[512];
	int rc = 0;

	if (argc != 2)
		return COMMAND_USAGE;
	command_open_node(cmd, &n, NODE_SPOOL | NODE_AUDIT);
	if (jobctl_find(&n.sp, argv[1], &job, err, sizeof(err)) < 0 ||
	    action(&n, &job, err, sizeof(err)) < 0) {
		fprintf(stderr, "flipctl: %s\n", err);
		rc = 1;
	} else {
		printf("%s: %s (now in %s/)\n", job.name, done, spool_state_name(job.state));
	}
	if (job.dirfd >= 0 && rc == 0)
		spool_job_close(&job);
	node_close(&n);
	return rc;
}

/* jobcmd_purge_images - image copies handed to training code, unused for the retention */
static int jobcmd_purge_images(struct node *n)
{
	struct handoff_sweep sw;

	if (handoff_sweep(&n->cfg, time(NULL), &sw) < 0) {
		fprintf(stderr, "flipctl: cannot sweep %s: %s\n", n->cfg.images_dir,
			errno == ELOOP ? "it holds, or is inside, FLIP_STATE_DIR (the project "
					 "store): fix BASE_IMAGES_DOWNLOAD_DIR"
				       : strerror(errno));
		return 1;
	}
	node_audit(n, "operator.purge_images", NULL, NULL,
		   json_pack("{s:I,s:I,s:I,s:I}", "removed", (json_int_t)sw.removed, "kept",
			     (json_int_t)sw.kept, "skipped", (json_int_t)sw.skipped, "errors",
			     (json_int_t)sw.errors));
	printf("removed %ld image cop%s unused for %ld hours from %s (%ld kept, %ld not ours "
	       "left alone)\n", sw.removed, sw.removed == 1 ? "y" : "ies",
	       n->cfg.image_retention_hours, n->cfg.images_dir, sw.kept, sw.skipped);
	return sw.errors ? 1 : 0;
}

/* jobcmd_purge - flipctl purge: old done/ jobs, and with --images stale image copies */
int jobcmd_purge(const struct command *cmd, int argc, char **argv)
{
	struct node n;
	long days = -1;
	int removed, images = 0, rc = 0;
	char *end;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--older-than") == 0 && i + 1 < argc) {
			days = strtol(argv[++i], &end, 10);
			if (*end || days < 0)
				return COMMAND_USAGE;
		} else if (strcmp(argv[i], "--images") == 0) {
			images = 1;
		} else {
			return COMMAND_USAGE;
		}
	}
	command_open_node(cmd, &n, NODE_SPOOL | NODE_AUDIT);
	if (days < 0)
		days = n.cfg.done_retention_days;
	if (jobctl_purge(&n, days, &removed) < 0) {
		fprintf(stderr, "flipctl: cannot purge %s/done: %s\n", n.cfg.spool_dir, strerror(errno));
		node_close(&n);
		return 1;
	}
	printf("removed %d job%s older than %ld day%s from done/\n", removed, removed == 1 ? "" : "s",
	       days, days == 1 ? "" : "s");
	if (images)
		rc = jobcmd_purge_images(&n);
	node_close(&n);
	return rc;
}
