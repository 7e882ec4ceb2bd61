/* SPDX-License-Identifier: Apache-2.0 */
/*
 * supervisor - keep the vendor FL client (NVFLARE, Flower) running, from a 30 s timer.
 *
 * SYNOPSIS
 *	#include "bin/flip-fl/supervisor.h"
 *
 *	int supervisor_run(const struct supervisor *sv, double now, int now_please,
 *			   struct supervisor_outcome *o, char *err, size_t errlen);
 *	int supervisor_stop(const struct supervisor *sv, double now, struct supervisor_stop *r,
 *			    char *err, size_t errlen);
 *	int supervisor_waiter(const char *state_dir, char **argv);
 *
 * DESCRIPTION
 *	No long-lived flip-node service watches the client: each run of flip-fl
 *	(every 30 s) looks at what the last one recorded in FLIP_STATE_DIR/fl/
 *	(sv->rec, the record lib/flclient.h keeps and other programs read) and acts.
 *
 *	A client is started as: flip-fl forks a child that calls setsid(2) (a new
 *	session and process group, detached from the timer's), points stdin at
 *	/dev/null and stdout/stderr at the client's log (sv->rec.log_path, appended),
 *	becomes the FL client's user sv->client for good (fluser_become: never root,
 *	never the node's user; flip-fl checked both), changes to sv->startup and
 *	executes `flip-fl supervise` (sv->self): the waiter, a fresh process image
 *	holding no configuration and no secrets, which forks the client (sv->command
 *	run by /bin/sh -c, or ./sub_start.sh when NULL), reports its pid, waits for
 *	it and records its exit status in exit.json, through descriptor 4, which
 *	flip-fl opened for it (the client's user cannot open the state folder). The
 *	waiter ignores SIGTERM, SIGINT and SIGHUP so that it outlives the client to
 *	write that status. The client's environment is fluser_env()'s and nothing
 *	else: the data URLs, the internal key, the proxy (docs/design/fl.md: no hub
 *	credentials, no AES key). stop_fl.sh runs as the client's user too. Signals
 *	to the client's group are sent with the effective uid 0 taken back for the
 *	call (fluser_privileged) when flip-fl was started as root.
 *
 *	supervisor_run() is `flip-fl run` after the kit check: with the stop flag
 *	set, nothing (o->stopped). A recorded client that is alive: nothing
 *	(o->running); after sv->healthy_after seconds of running the backoff is
 *	reset. A recorded client that is gone: its exit is recorded (o->exited, with
 *	exit.json's status when the waiter wrote one), what is left of its process
 *	group is terminated (SIGTERM, then SIGKILL after 5 s), and the next start is
 *	put off by the backoff: sv->backoff_base, doubled at each exit up to
 *	sv->backoff_max, back to base when the client had run sv->healthy_after
 *	seconds. Then, when no client runs and the backoff has passed (or
 *	now_please), a client is started (o->started, o->pid).
 *
 *	supervisor_stop() sends SIGTERM to the client's process group, runs
 *	startup/stop_fl.sh when present (output to the log), waits up to sv->grace
 *	seconds for the group to be gone, then sends SIGKILL (r->forced). The stop
 *	flag is the caller's business (flclient_set_stopped), so that install-kit
 *	can stop a client for a moment without keeping it stopped. The group is only
 *	signalled when the client or its waiter is verified to be ours.
 *
 *	supervisor_waiter() is the body of `flip-fl supervise STATE_DIR -- ARGV...`;
 *	it returns the waiter's exit code (0, or 1 when it could not start the client).
 *
 * DIAGNOSTICS
 *	supervisor_run() and supervisor_stop() return 0, or -1 with a one-line
 *	message in err when the host fails us (fork, state files): transient, the
 *	caller exits 1. Nothing is printed except by the waiter, whose stderr is the
 *	client's log. Nothing exits.
 */
#ifndef FLIP_FL_SUPERVISOR_H
#define FLIP_FL_SUPERVISOR_H

#include <stddef.h>

#include "lib/config.h"
#include "lib/flclient.h"
#include "lib/fluser.h"

struct supervisor {
	struct flclient rec;	/* the record: FLIP_STATE_DIR/fl, its path, the client's log */
	const char *startup;	/* the live kit's startup/ */
	const char *command;	/* FL_CLIENT_COMMAND, NULL: ./sub_start.sh */
	const struct config *cfg;	/* for the client's environment (fluser_env) */
	const struct fluser *client;	/* FL_CLIENT_USER, checked */
	const char *self;	/* this program, executed as the waiter */
	double backoff_base;	/* 10 s */
	double backoff_max;	/* 600 s */
	double healthy_after;	/* 600 s */
	double grace;		/* 30 s between SIGTERM and SIGKILL */
};

struct supervisor_outcome {
	int stopped, running, exited, started;
	long pid;		/* running or started: the client */
	long exited_pid;
	struct flclient_exit exit;
	double uptime;		/* exited: how long it had run */
	long restarts;
	double wait;		/* seconds until the next start, when waiting */
	double backoff;
};

struct supervisor_stop {
	int was_running, forced;
	long pid;
	int script_rc;		/* stop_fl.sh's exit code, -1 when not run */
};

int supervisor_run(const struct supervisor *sv, double now, int now_please,
		   struct supervisor_outcome *o, char *err, size_t errlen);
int supervisor_stop(const struct supervisor *sv, double now, struct supervisor_stop *r,
		    char *err, size_t errlen);
int supervisor_waiter(const char *state_dir, char **argv);

#endif
