/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flip-report - upload spooled results to the hub, exactly once, in order.
 *
 * Started by flip-report.path when out/ is not empty and by flip-report.timer
 * for retries. Order: config, report lock, upload what is due in out/.
 * Exit codes: 0 done (or another flip-report holds the lock, or everything left
 * is waiting for its retry time), 1 an upload failed this time (retried later),
 * 2 configuration error.
 */
#include "lib/hub.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/node.h"
#include "bin/flip-report/report.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static void usage(int code)
{
	fprintf(code ? stderr : stdout,
		"usage: flip-report [-c FILE]\n"
		"       flip-report --help | --version\n");
	exit(code);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'}, {"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *config = NULL;
	char err[1024];
	struct node n;
	struct hub h;
	struct report_stats st;
	struct metrics m;
	int c, rc;

	log_init("flip-report", LOG_INFO);
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'h': usage(0); break;
		case 'V': printf("flip-report %s\n", FLIP_VERSION); return 0;
		default: usage(2);
		}
	}
	if (optind != argc)
		usage(2);
	if (node_open(&n, "flip-report", config, NODE_NEED_HUB | NODE_SPOOL | NODE_AUDIT, err,
		      sizeof(err)) < 0) {
		log_error("%s", err);
		return 2;
	}
	switch (spool_lock(&n.sp, "report")) {
	case 0:
		log_debug("another flip-report holds the lock; nothing to do");
		node_close(&n);
		return 0;
	case -1:
		log_error("cannot take the report lock in %s", n.cfg.spool_dir);
		node_close(&n);
		return 1;
	}
	if (hub_init(&h, &n.cfg, err, sizeof(err)) < 0) {
		log_error("%s", err);
		node_close(&n);
		return 1;
	}
	double t0 = node_now();
	rc = report_run(&n, &h, &st);
	if (rc == 2)
		log_error("the hub refused the API key (401); check TRUST_API_KEY and "
			  "TRUST_API_KEY_HEADER; results stay in out/");
	if (st.done || st.failed)
		log_info("reported %d result%s: %d accepted, %d refused", st.done + st.failed,
			 st.done + st.failed == 1 ? "" : "s", st.done, st.failed);
	metrics_begin(&m, "flip-report");
	metrics_add(&m, "last_run_timestamp_seconds", NULL, t0);
	metrics_add(&m, "last_run_success", NULL, rc == 0);
	metrics_add(&m, "last_run_duration_seconds", NULL, node_now() - t0);
	metrics_add(&m, "report_results", "outcome=\"accepted\"", st.done);
	metrics_add(&m, "report_results", "outcome=\"refused\"", st.failed);
	metrics_add(&m, "report_upload_retries", NULL, st.retried);
	metrics_count(&m, "report_results_total", "outcome=\"accepted\"", st.done);
	metrics_count(&m, "report_results_total", "outcome=\"refused\"", st.failed);
	metrics_spool_depth(&m, &n.sp);
	metrics_commit(&m, &n);
	hub_cleanup(&h);
	node_close(&n);
	return rc ? 1 : 0;
}
