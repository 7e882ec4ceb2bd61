/* SPDX-License-Identifier: Apache-2.0 */
/*
 * client - run, start and stop the FL client (see client.h for the contract).
 */
#include "bin/flip-fl/client.h"

#include "lib/flclient.h"
#include "lib/fluser.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/node.h"
#include "bin/flip-fl/check.h"
#include "bin/flip-fl/fl.h"
#include "bin/flip-fl/supervisor.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* fl_metrics - FLIP_STATE_DIR/metrics/flip-fl.prom */
static void fl_metrics(struct fl *f, double t0, int rc, int check_rc, time_t na)
{
	struct flclient_state st;
	struct metrics m;
	int running = 0;

	if (flclient_load(&f->sv.rec, &st) < 0)
		memset(&st, 0, sizeof(st));
	running = st.pid > 0 && flclient_alive(st.pid, st.ticks);
	metrics_begin(&m, "flip-fl");
	metrics_add(&m, "last_run_timestamp_seconds", NULL, t0);
	metrics_add(&m, "last_run_success", NULL, rc == 0);
	metrics_add(&m, "last_run_duration_seconds", NULL, node_now() - t0);
	metrics_add(&m, "fl_kit_check_ok", NULL, check_rc == 0);
	if (na != 0)
		metrics_add(&m, "fl_client_cert_expiry_timestamp_seconds", NULL, (double)na);
	metrics_add(&m, "fl_client_running", NULL, running);
	metrics_add(&m, "fl_client_stopped", NULL, flclient_stopped(&f->sv.rec));
	metrics_add(&m, "fl_client_restarts_total", NULL, (double)st.restarts);
	metrics_add(&m, "fl_client_uptime_seconds", NULL, running ? node_now() - st.started_at : 0);
	if (st.last_exit_at > 0) {	/* -1: killed, or how it ended is not known */
		metrics_add(&m, "fl_client_last_exit_code", NULL, st.last_exit.code);
		metrics_add(&m, "fl_client_last_exit_signal", NULL, st.last_exit.signal);
		metrics_add(&m, "fl_client_last_exit_timestamp_seconds", NULL, st.last_exit_at);
	}
	metrics_commit(&m, &f->n);
}

/* exit_text - how the client ended, for the log */
static void exit_text(const struct flclient_exit *e, char *buf, size_t len)
{
	if (!e->known)
		snprintf(buf, len, "status unknown");
	else if (e->signal)
		snprintf(buf, len, "killed by signal %d", e->signal);
	else
		snprintf(buf, len, "exit status %d", e->code);
}

/* client_supervise - one supervision step, with its audit events and log lines */
int client_supervise(struct fl *f, int now_please)
{
	struct supervisor_outcome o;
	char err[1024], text[64];

	if (supervisor_run(&f->sv, node_now(), now_please, &o, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 1;
	}
	if (o.exited) {
		exit_text(&o.exit, text, sizeof(text));
		log_warn("the FL client (pid %ld) ended after %.0f s, %s; next start in %.0f s "
			 "(log: %s)",
			 o.exited_pid, o.uptime, text, o.wait > 0 ? o.wait : 0, f->log_path);
		node_audit(&f->n, "fl.client.exited", NULL, NULL,
			   json_pack("{s:I, s:s, s:o, s:o, s:f, s:f}", "pid",
				     (json_int_t)o.exited_pid, "status",
				     !o.exit.known ? "unknown" : o.exit.signal ? "signal" : "exit",
				     "code",
				     o.exit.known && !o.exit.signal ? json_integer(o.exit.code)
								     : json_null(),
				     "signal", o.exit.signal ? json_integer(o.exit.signal) : json_null(),
				     "uptime_seconds", o.uptime, "backoff_seconds", o.backoff));
	}
	if (o.started) {
		log_info("started the FL client (pid %ld, restarts %ld), output in %s", o.pid,
			 o.restarts, f->log_path);
		node_audit(&f->n, "fl.client.started", NULL, NULL,
			   json_pack("{s:I, s:I, s:s}", "pid", (json_int_t)o.pid, "restarts",
				     (json_int_t)o.restarts, "slot", f->n.cfg.fl_kit_slot));
	} else if (o.stopped) {
		log_debug("the FL client is stopped (flip-fl start runs it again)");
	} else if (o.wait > 0) {
		log_debug("the FL client starts again in %.0f s", o.wait);
	}
	return 0;
}

/* client_stop - stop the client (for stop and install-kit), with its audit event */
int client_stop(struct fl *f, const char *why)
{
	struct supervisor_stop r;
	char err[1024];

	if (supervisor_stop(&f->sv, node_now(), &r, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 1;
	}
	if (r.was_running) {
		log_info("stopped the FL client (pid %ld)%s", r.pid,
			 r.forced ? " with SIGKILL after the grace period" : "");
		node_audit(&f->n, "fl.client.stopped", NULL, NULL,
			   json_pack("{s:I, s:b, s:o, s:s}", "pid", (json_int_t)r.pid, "forced",
				     r.forced, "stop_script",
				     r.script_rc >= 0 ? json_integer(r.script_rc) : json_null(),
				     "reason", why));
	}
	return 0;
}

/* client_run_command - flip-fl run (start: flip-fl start, which clears the stop flag first) */
int client_run_command(const struct fl_opts *opt, int start)
{
	struct fl f;
	double t0 = node_now();
	time_t na = 0;
	int rc, check_rc;

	fl_open(&f, opt, 1, 1);
	if (!opt->external && !fluser_can_switch()) {
		log_error("flip-fl runs as %s and cannot start the FL client as its own user %s: "
			  "under systemd the client is a unit of its own "
			  "(flip-fl-client@%s.service) and this runs flip-fl run --external; "
			  "on a host without systemd, root's crontab runs flip-fl run",
			  f.node.name, f.client.name, f.n.cfg.fl_kit_slot);
		fl_close(&f);
		return 2;
	}
	if (!fl_lock(&f, start)) {
		log_debug("another flip-fl holds the FL lock; nothing to do");
		fl_close(&f);
		return 0;
	}
	if (start && flclient_set_stopped(&f.sv.rec, 0) < 0) {
		log_error("cannot remove the stop flag in %s: %s", f.state_dir, strerror(errno));
		fl_close(&f);
		return 1;
	}
	rc = check_rc = check_kit(&f, 1, &na);
	if (rc == 0 && !opt->external)
		rc = client_supervise(&f, start);
	fl_metrics(&f, t0, rc, check_rc, na);
	fl_close(&f);
	return rc;
}

/* client_stop_command - flip-fl stop: the flag first, so that no run starts it meanwhile */
int client_stop_command(const struct fl_opts *opt)
{
	struct fl f;
	double t0 = node_now();
	int rc;

	fl_open(&f, opt, 1, 1);
	fl_lock(&f, 1);
	if (flclient_set_stopped(&f.sv.rec, 1) < 0) {
		log_error("cannot set the stop flag in %s: %s", f.state_dir, strerror(errno));
		fl_close(&f);
		return 1;
	}
	rc = client_stop(&f, "flip-fl stop");
	if (rc == 0)
		printf("the FL client is stopped, and stays stopped until flip-fl start\n");
	fl_metrics(&f, t0, rc, 0, 0);
	fl_close(&f);
	return rc;
}
