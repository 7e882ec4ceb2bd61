/*
 * flip-exec - run spooled jobs through their handlers, in the hub's order.
 *
 * Started by flip-exec.path when new/ is not empty and by flip-exec.timer as a
 * fallback. Order: config, exec lock, recover cur/, run due jobs of new/. The
 * `imaging` subcommand is the imaging retrieval worker (docs/design/imaging.md).
 * Exit codes: 0 done (or another flip-exec holds the lock), 1 a job could not be
 * written or moved (disk), 2 configuration error.
 */
#include "log.h"
#include "metrics.h"
#include "node.h"
#include "retrieval.h"
#include "runner.h"

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

/* imaging - the retrieval worker, one at a time, under its own lock */
static int imaging(struct node *n)
{
	struct retrieval_stats st;
	struct metrics m;
	char err[1024];
	int rc;

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
	if (rc != RETRIEVAL_OK)
		log_error("%s", err);
	if (st.accessions)
		log_info("imaging: %d accession%s worked on: %d successful, %d failed, %d queue_failed; "
			 "%lu instances, %.1f MB", st.accessions, st.accessions == 1 ? "" : "s",
			 st.successful, st.failed, st.queue_failed, st.instances, (double)st.bytes / 1e6);
	metrics_begin(&m, "flip-exec-imaging");
	metrics_add(&m, "last_run_timestamp_seconds", NULL, t0);
	metrics_add(&m, "last_run_success", NULL, rc == RETRIEVAL_OK);
	metrics_add(&m, "last_run_duration_seconds", NULL, node_now() - t0);
	metrics_add(&m, "imaging_instances_retrieved", NULL, (double)st.instances);
	metrics_add(&m, "imaging_bytes_retrieved", NULL, (double)st.bytes);
	metrics_commit(&m, n);
	node_close(n);
	return rc == RETRIEVAL_OK ? 0 : rc == RETRIEVAL_CONFIG ? 2 : 1;
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
	metrics_spool_depth(&m, &n.sp);
	metrics_commit(&m, &n);
	node_close(&n);
	return rc ? 1 : 0;
}
