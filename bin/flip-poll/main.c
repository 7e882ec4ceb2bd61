/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flip-poll - heartbeat to the FLIP hub, fetch pending tasks, spool them durably.
 *
 * Started every 5 s by flip-poll.timer, or once a minute by cron with --loop 55.
 * Order of steps: config, poll lock, clean tmp/, then per cycle: heartbeat (never
 * delayed by anything), identity check, fetch, spool. Exit codes: 0 done (or
 * another flip-poll holds the lock), 1 failed this time, 2 configuration error or
 * the hub answered as another trust.
 */
#include "lib/err.h"
#include "lib/heartbeat.h"
#include "lib/hub.h"
#include "bin/flip-poll/intake.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/node.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(int code)
{
	fprintf(code ? stderr : stdout,
		"usage: flip-poll [-c FILE] [--loop SECONDS] [--no-snapshot]\n"
		"       flip-poll --help | --version\n"
		"  -c FILE          config file (default $FLIP_ENV_FILE, else /etc/flip/flip.env)\n"
		"  --loop SECONDS   repeat a cycle every POLL_INTERVAL_SECONDS for SECONDS (cron)\n"
		"  --no-snapshot    send bodyless heartbeats (no health snapshot)\n");
	exit(code);
}

/* heartbeat_class - the hub's answer to the heartbeat, as the metrics name it */
static const char *heartbeat_class(enum err_kind hb, int wrong_trust, long status)
{
	switch (hb) {
	case ERR_OK: return "ok";
	case ERR_AUTH: return wrong_trust ? "identity_mismatch" : "auth_refused";
	default: return status ? "http_error" : "unreachable";
	}
}

/* cycle_metrics - flip-poll.prom: the run, the heartbeat, intake, spool and disks */
static void cycle_metrics(struct node *n, double t0, int rc, enum err_kind hb, int wrong_trust,
			  long status, const struct intake_stats *st)
{
	static const char *const classes[] = {"ok", "auth_refused", "identity_mismatch",
					      "http_error", "unreachable"};
	const char *cls = heartbeat_class(hb, wrong_trust, status);
	struct metrics m;
	char labels[64];

	metrics_begin(&m, "flip-poll");
	metrics_add(&m, "last_run_timestamp_seconds", NULL, t0);
	metrics_add(&m, "last_run_success", NULL, rc == 0);
	metrics_add(&m, "last_run_duration_seconds", NULL, node_now() - t0);
	if (hb == ERR_OK)
		metrics_add(&m, "heartbeat_last_success_timestamp_seconds", NULL, node_now());
	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
		snprintf(labels, sizeof(labels), "class=\"%s\"", classes[i]);
		metrics_add(&m, "heartbeat_answer", labels, strcmp(cls, classes[i]) == 0);
		metrics_count(&m, "heartbeats_total", labels, strcmp(cls, classes[i]) == 0);
	}
	metrics_add(&m, "poll_tasks_fetched", NULL, st->fetched);
	metrics_count(&m, "poll_tasks_total", "outcome=\"spooled\"", st->spooled);
	metrics_count(&m, "poll_tasks_total", "outcome=\"refused\"", st->refused);
	metrics_count(&m, "poll_tasks_total", "outcome=\"redelivered\"", st->redelivered);
	metrics_count(&m, "poll_tasks_total", "outcome=\"skipped\"", st->skipped);
	metrics_spool_depth(&m, &n->sp);
	metrics_filesystems(&m, n);
	metrics_commit(&m, n);
}

/* cycle - one heartbeat and one fetch; returns the exit code of this cycle */
static int cycle(struct node *n, struct hub *h, int snapshot)
{
	char err[1024];
	struct intake_stats st = {0};
	enum err_kind hb, in;
	int wrong_trust, rc = 0;
	double t0 = node_now();
	long hb_status;

	hb = heartbeat_send(n, h, snapshot, &wrong_trust, err, sizeof(err));
	hb_status = h->last_status;
	if (hb == ERR_AUTH && wrong_trust) {
		log_error("%s", err);
		node_audit(n, "hub.identity_mismatch", NULL, NULL, NULL);
		rc = err_exit_code(hb);		/* 2: another trust's kit is never retried blindly */
		goto metrics;
	}
	/*
	 * A refused key (401) is ERR_AUTH too, but flip-poll exits 1 for it and --loop
	 * goes on trying: the fix may be at the hub (the key hash registered there),
	 * which this host cannot see; only another trust's kit stops the loop.
	 */
	if (hb == ERR_AUTH) {
		log_error("%s", err);
		node_audit(n, "hub.auth_refused", NULL, NULL, NULL);
		rc = 1;		/* nothing fetched: a refused key claims nothing */
		goto metrics;
	}
	if (hb != ERR_OK) {
		log_error("%s", err);
		rc = err_exit_code(hb);
	}
	switch ((in = intake_fetch(n, h, &st, err, sizeof(err)))) {
	case ERR_OK:
		break;
	case ERR_AUTH:
		log_error("%s; check TRUST_API_KEY", err);
		rc = 1;		/* as for the heartbeat's 401 */
		goto metrics;
	default:
		log_error("%s", err);
		rc = err_exit_code(in);
	}
	if (st.fetched > 0)
		log_info("fetched %d task%s: %d spooled, %d refused, %d re-delivered, %d skipped",
			 st.fetched, st.fetched == 1 ? "" : "s", st.spooled, st.refused,
			 st.redelivered, st.skipped);
metrics:
	cycle_metrics(n, t0, rc, hb, wrong_trust, hb_status, &st);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"loop", required_argument, NULL, 'l'}, {"no-snapshot", no_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},       {"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *config = NULL;
	long loop = 0;
	int snapshot = 1, c, rc;
	char err[1024], *end;
	struct node n;
	struct hub h;

	log_init("flip-poll", LOG_INFO);
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'l':
			loop = strtol(optarg, &end, 10);
			if (*end || loop < 1 || loop > 3600)
				usage(2);
			break;
		case 's': snapshot = 0; break;
		case 'h': usage(0); break;
		case 'V': printf("flip-poll %s\n", FLIP_VERSION); return 0;
		default: usage(2);
		}
	}
	if (optind != argc)
		usage(2);
	if (node_open(&n, "flip-poll", config, NODE_NEED_HUB | NODE_SPOOL | NODE_AUDIT, err,
		      sizeof(err)) < 0) {
		log_error("%s", err);
		return 2;
	}
	switch (spool_lock(&n.sp, "poll")) {
	case 0:
		log_debug("another flip-poll holds the lock; nothing to do");
		node_close(&n);
		return 0;
	case -1:
		log_error("cannot take the poll lock in %s", n.cfg.spool_dir);
		node_close(&n);
		return 1;
	}
	if (heartbeat_blocked(&n, err, sizeof(err))) {
		/* the hub said we are another trust: never retry blindly (docs/design/ARCHITECTURE.md) */
		log_error("%s", err);
		node_close(&n);
		return 2;
	}
	if (spool_clean_tmp(&n.sp) > 0)
		log_info("removed jobs an interrupted flip-poll left half-written in tmp/");
	if (hub_init(&h, &n.cfg, err, sizeof(err)) < 0) {
		log_error("%s", err);
		node_close(&n);
		return 1;
	}
	double start = node_now();
	for (;;) {
		double t = node_now();
		rc = cycle(&n, &h, snapshot);
		if (loop == 0 || rc == 2)
			break;
		double next = t + n.cfg.poll_interval;
		if (next - start >= (double)loop)
			break;
		double wait = next - node_now();
		if (wait > 0) {
			struct timespec ts = {(time_t)wait, (long)((wait - (time_t)wait) * 1e9)};
			nanosleep(&ts, NULL);
		}
	}
	hub_cleanup(&h);
	node_close(&n);
	return rc;
}
