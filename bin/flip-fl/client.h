/* SPDX-License-Identifier: Apache-2.0 */
/*
 * client - flip-fl's commands on the FL client: run, start and stop, with their log
 * lines, audit events and metrics.
 *
 * SYNOPSIS
 *	#include "bin/flip-fl/client.h"
 *
 *	int client_run_command(const struct fl_opts *opt, int start);
 *	int client_stop_command(const struct fl_opts *opt);
 *	int client_supervise(struct fl *f, int now_please);
 *	int client_stop(struct fl *f, const char *why);
 *
 * DESCRIPTION
 *	client_run_command() is `flip-fl run` (what flip-fl.timer starts every 30
 *	s): the kit check (check.h), then one supervision step (supervisor.h)
 *	unless opt->external (the client is then a systemd unit of its own). A run
 *	that finds another flip-fl holding the FL lock does nothing. With start it
 *	is `flip-fl start`: it waits for the lock, clears the stop flag first and
 *	starts the client without waiting for the backoff.
 *
 *	client_stop_command() is `flip-fl stop`: the stop flag first, so that no
 *	run starts the client meanwhile, then the client stopped (SIGKILL after
 *	opt->grace seconds).
 *
 *	client_supervise() is one supervision step (supervisor_run) with its log
 *	lines and its audit events (fl.client.exited, fl.client.started);
 *	client_stop() stops the client (supervisor_stop; for stop and install-kit)
 *	with its audit event (fl.client.stopped, why as the reason). Both
 *	commands write flip-fl's metrics (FLIP_STATE_DIR/metrics/flip-fl.prom).
 *
 * DIAGNOSTICS
 *	The commands return the exit code: 0 done (also: another flip-fl held the
 *	lock, for run), 1 failed this time (fork, a state file), 2 a configuration
 *	error or a failed check. client_supervise() and client_stop() return 0, or
 *	1 after logging.
 */
#ifndef FLIP_FL_CLIENT_H
#define FLIP_FL_CLIENT_H

#include "bin/flip-fl/fl.h"

int client_run_command(const struct fl_opts *opt, int start);
int client_stop_command(const struct fl_opts *opt);
int client_supervise(struct fl *f, int now_please);
int client_stop(struct fl *f, const char *why);

#endif
