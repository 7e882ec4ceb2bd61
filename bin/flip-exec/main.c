/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flip-exec - run spooled jobs through their handlers, in the hub's order.
 *
 * Started by flip-exec.path when new/ is not empty and by flip-exec.timer as a
 * fallback. Order: config, exec lock, recover cur/, run due jobs of new/. The
 * `imaging` subcommand is the imaging retrieval worker (docs/design/imaging.md).
 * Exit codes: 0 done (or another flip-exec holds the lock), 1 a job could not be
 * written or moved (disk), 2 configuration error.
 */
#include "lib/imaging_store.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/node.h"
#include "bin/flip-exec/retrieval.h"
#include "bin/flip-exec/runner.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(int code)
{
	fprintf(code ? stderr : stdout,
		"usage: flip-exec [-c FILE] [run]\n"
		"       flip-exec [-c FILE] imaging\n"
		"       flip-exec --help | --version\n");
	exit(code);
}

/* imaging_metrics - each imaging project's studies by state, and the unretrieved by reason */
static void imaging_metrics(struct metrics *m, struct node *n)
{
	char **ids, project[64], reason[32], labels[200];
	size_t cnt;

	if (imaging_list(n->cfg.state_dir, &ids, &cnt) < 0)
		return;
	for (size_t i = 0; i < cnt; i++) {
		struct imaging_project *p = imaging_open(n->cfg.state_dir, ids[i]);
		long long c[IMAGING_NSTATES] = {0};
		json_t *reasons = json_object();

		free(ids[i]);
		if (p == NULL)
			continue;
		/* the hub's project id, as the hub's pages show it */
		metrics_label_value(json_string_value(json_object_get(p->meta, "secondary_ID")),
				    project, sizeof(project));
		/* burned-in quarantine counts 0 until a study is queue_failed for it */
		json_object_set_new(reasons, "queue_failed/burned_in_annotation", json_integer(0));
		for (long k = 0, total = imaging_accession_count(p); k < total; k++) {
			json_t *st = imaging_accession_read(p, k);
			const char *sn = json_string_value(json_object_get(st, "state"));
			int s = imaging_state_parse(sn);
			if (s >= 0)
				c[s]++;
			if (s == IMAGING_FAILED || s == IMAGING_QUEUE_FAILED) {
				char key[64];
				metrics_label_value(json_string_value(json_object_get(st, "error")),
						    reason, sizeof(reason));
				snprintf(key, sizeof(key), "%s/%s", sn, reason);
				json_object_set_new(reasons, key, json_integer(json_integer_value(
					json_object_get(reasons, key)) + 1));
			}
			json_decref(st);
		}
		for (int s = 0; s < IMAGING_NSTATES; s++) {
			snprintf(labels, sizeof(labels), "project=\"%s\",state=\"%s\"", project,
				 imaging_state_name((enum imaging_state)s));
			metrics_add(m, "imaging_studies", labels, (double)c[s]);
		}
		const char *key;
		json_t *v;
		json_object_foreach(reasons, key, v) {
			const char *slash = strchr(key, '/');
			snprintf(labels, sizeof(labels),
				 "project=\"%s\",state=\"%.*s\",reason=\"%s\"", project,
				 (int)(slash - key), key, slash + 1);
			metrics_add(m, "imaging_unretrieved_studies", labels,
				    (double)json_integer_value(v));
		}
		json_decref(reasons);
		imaging_close(p);
	}
	free(ids);
}

/* imaging - the retrieval worker, one at a time, under its own lock */
static int imaging(struct node *n)
{
	struct retrieval_stats st;
	struct metrics m;
	char err[1024];
	enum err_kind rc;

	switch (spool_lock(&n->sp, "imaging")) {
	case 0:
		log_debug("another flip-exec imaging holds the lock; nothing to do");
		node_close(n);
		return 0;
	case -1:
		log_error("cannot take the imaging lock in %s", n->cfg.spool_dir);
		node_close(n);
		return 1;
	}
	double t0 = node_now();
	rc = retrieval_run(n, &st, err, sizeof(err));
	if (rc != ERR_OK)
		log_error("%s", err);
	if (st.accessions)
		log_info("imaging: %d accession%s worked on: %d successful, %d failed, %d queue_failed; "
			 "%lu instances, %.1f MB", st.accessions, st.accessions == 1 ? "" : "s",
			 st.successful, st.failed, st.queue_failed, st.instances, (double)st.bytes / 1e6);
	metrics_begin(&m, "flip-exec-imaging");
	metrics_add(&m, "last_run_timestamp_seconds", NULL, t0);
	metrics_add(&m, "last_run_success", NULL, rc == ERR_OK);
	metrics_add(&m, "last_run_duration_seconds", NULL, node_now() - t0);
	metrics_add(&m, "imaging_instances_retrieved", NULL, (double)st.instances);
	metrics_add(&m, "imaging_bytes_retrieved", NULL, (double)st.bytes);
	metrics_count(&m, "imaging_studies_retrieved_total", NULL, st.successful);
	metrics_count(&m, "imaging_instances_retrieved_total", NULL, (double)st.instances);
	metrics_count(&m, "imaging_retrieved_bytes_total", NULL, (double)st.bytes);
	imaging_metrics(&m, n);
	metrics_commit(&m, n);
	node_close(n);
	return err_exit_code(rc);	/* 0, 1 (PACS or disk: next run), 2 (PACS_HOST, key) */
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'}, {"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *config = NULL, *cmd = "run";
	char err[1024];
	struct node n;
	struct runner_stats st;
	struct metrics m;
	int c, rc;

	log_init("flip-exec", LOG_INFO);
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'h': usage(0); break;
		case 'V': printf("flip-exec %s\n", FLIP_VERSION); return 0;
		default: usage(2);
		}
	}
	if (optind < argc)
		cmd = argv[optind++];
	if (optind != argc || (strcmp(cmd, "run") != 0 && strcmp(cmd, "imaging") != 0))
		usage(2);
	if (node_open(&n, "flip-exec", config, NODE_SPOOL | NODE_AUDIT, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 2;
	}
	if (strcmp(cmd, "imaging") == 0)
		return imaging(&n);
	switch (spool_lock(&n.sp, "exec")) {
	case 0:
		log_debug("another flip-exec holds the lock; nothing to do");
		node_close(&n);
		return 0;
	case -1:
		log_error("cannot take the exec lock in %s", n.cfg.spool_dir);
		node_close(&n);
		return 1;
	}
	double t0 = node_now();
	rc = runner_run(&n, &st);
	if (st.ran || st.deferred)
		log_info("ran %d job%s: %d succeeded, %d failed, %d deferred, %d recovered from cur/",
			 st.ran, st.ran == 1 ? "" : "s", st.succeeded, st.failed, st.deferred,
			 st.recovered);
	metrics_begin(&m, "flip-exec");
	metrics_add(&m, "last_run_timestamp_seconds", NULL, t0);
	metrics_add(&m, "last_run_success", NULL, rc == 0);
	metrics_add(&m, "last_run_duration_seconds", NULL, node_now() - t0);
	metrics_add(&m, "exec_jobs", "outcome=\"success\"", st.succeeded);
	metrics_add(&m, "exec_jobs", "outcome=\"failure\"", st.failed);
	metrics_add(&m, "exec_jobs", "outcome=\"deferred\"", st.deferred);
	for (int i = 0; i < RUNNER_TALLIES && st.types[i].type[0]; i++) {
		char labels[96];
		snprintf(labels, sizeof(labels), "task_type=\"%s\",outcome=\"success\"",
			 st.types[i].type);
		metrics_count(&m, "tasks_total", labels, st.types[i].success);
		snprintf(labels, sizeof(labels), "task_type=\"%s\",outcome=\"failure\"",
			 st.types[i].type);
		metrics_count(&m, "tasks_total", labels, st.types[i].failure);
	}
	/* the categories cohort_query.c names, present from the first run */
	static const char *const refusals[] = {"policy_invalid", "project_id_invalid",
					       "policy_denied", "sql_guard", "query_failed"};
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		char labels[64];
		snprintf(labels, sizeof(labels), "reason=\"%s\"", refusals[i]);
		metrics_count(&m, "cohort_queries_refused_total", labels, 0);
	}
	for (int i = 0; i < RUNNER_TALLIES && st.refused[i].reason[0]; i++) {
		char labels[64];
		snprintf(labels, sizeof(labels), "reason=\"%s\"", st.refused[i].reason);
		metrics_count(&m, "cohort_queries_refused_total", labels, st.refused[i].n);
	}
	metrics_filesystems(&m, &n);
	metrics_spool_depth(&m, &n.sp);
	metrics_commit(&m, &n);
	node_close(&n);
	return rc ? 1 : 0;
}
