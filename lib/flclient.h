/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flclient - keep the vendor FL client (NVFLARE, Flower) running, from a 30 s timer.
 *
 * SYNOPSIS
 *	#include "lib/flclient.h"
 *
 *	int flclient_lock(const struct flclient *fc, int wait);
 *	int flclient_load(const struct flclient *fc, struct flclient_state *st);
 *	int flclient_save(const struct flclient *fc, const struct flclient_state *st);
 *	int flclient_alive(long pid, unsigned long long ticks);
 *	int flclient_stopped(const struct flclient *fc);
 *	int flclient_set_stopped(const struct flclient *fc, int on);
 *	int flclient_supervise(const struct flclient *fc, double now, int now_please,
 *			       struct flclient_outcome *o, char *err, size_t errlen);
 *	int flclient_stop(const struct flclient *fc, double now, struct flclient_stop *r,
 *			  char *err, size_t errlen);
 *	json_t *flclient_status(const struct flclient *fc, double now);
 *	void flclient_progress_line(struct flclient_progress *p, const char *line);
 *	void flclient_progress(const char *log_path, struct flclient_progress *p);
 *	int flclient_waiter(const char *state_dir, char **argv);
 *
 * DESCRIPTION
 *	No long-lived flip-node service watches the client: each run of flip-fl
 *	(every 30 s) looks at what the last one recorded in FLIP_STATE_DIR/fl/
 *	client.json and acts. The files of fc->statefd (FLIP_STATE_DIR/fl):
 *	  client.json  pid and /proc start time of the client and of its waiter
 *	               (the process group), start time, restarts, backoff, the last
 *	               exit; written atomically
 *	  exit.json    written by the waiter when the client exits: its status
 *	  stopped      the stop flag: while it exists nothing is started
 *	  .lock        flock taken by every command that changes the above
 *
 *	A client is started as: flip-fl forks a child that calls setsid(2) (a new
 *	session and process group, detached from the timer's), points stdin at
 *	/dev/null and stdout/stderr at fc->log_path (appended), becomes the FL
 *	client's user fc->client for good (fluser_become: never root, never the
 *	node's user; flip-fl checked both), changes to fc->startup and executes
 *	`flip-fl supervise` (fc->self): the waiter, a fresh process image holding no
 *	configuration and no secrets, which forks the client (fc->command run by
 *	/bin/sh -c, or ./sub_start.sh when NULL), reports its pid, waits for it and
 *	records its exit status in exit.json, through descriptor 4, which flip-fl
 *	opened for it (the client's user cannot open the state folder). The waiter
 *	ignores SIGTERM, SIGINT and SIGHUP so that it outlives the client to write
 *	that status. The client's environment is fluser_env()'s and nothing else:
 *	the data URLs, the internal key, the proxy (docs/design/fl.md: no hub credentials, no
 *	AES key). stop_fl.sh runs as the client's user too. Signals to the client's
 *	group are sent with the effective uid 0 taken back for the call
 *	(fluser_privileged) when flip-fl was started as root.
 *
 *	flclient_alive() is true when pid exists, is not a zombie and its start time
 *	(field 22 of /proc/<pid>/stat, clock ticks since boot) is ticks: a reused
 *	pid is not our client.
 *
 *	flclient_supervise() is `flip-fl run` after the kit check: with the stop flag
 *	set, nothing (o->stopped). A recorded client that is alive: nothing
 *	(o->running); after fc->healthy_after seconds of running the backoff is
 *	reset. A recorded client that is gone: its exit is recorded (o->exited, with
 *	exit.json's status when the waiter wrote one), what is left of its process
 *	group is terminated (SIGTERM, then SIGKILL after 5 s), and the next start is
 *	put off by the backoff: fc->backoff_base, doubled at each exit up to
 *	fc->backoff_max, back to base when the client had run fc->healthy_after
 *	seconds. Then, when no client runs and the backoff has passed (or
 *	now_please), a client is started (o->started, o->pid).
 *
 *	flclient_stop() sends SIGTERM to the client's process group, runs
 *	startup/stop_fl.sh when present (output to the log), waits up to fc->grace
 *	seconds for the group to be gone, then sends SIGKILL (r->forced). The stop
 *	flag is the caller's business (flclient_set_stopped), so that install-kit
 *	can stop a client for a moment without keeping it stopped. The group is only
 *	signalled when the client or its waiter is verified to be ours.
 *
 *	flclient_status() is {"running", "pid", "started_at", "uptime_seconds",
 *	"restarts", "backoff_seconds", "next_start_at", "stopped", "last_exit":
 *	{"reason": "exited"|"stopped"|"replaced", "status", "at"} or null,
 *	"progress": {"job", "round", "round_state", "aborted"}}.
 *	flclient_progress() reads the end (1 MiB) of the client's log and feeds each
 *	line to flclient_progress_line(), which matches it against one table of the
 *	lines NVFLARE prints (a new job, a round started or finished, an abort).
 *
 *	flclient_waiter() is the body of `flip-fl supervise STATE_DIR -- ARGV...`;
 *	it returns the waiter's exit code (0, or 1 when it could not start the client).
 *
 * DIAGNOSTICS
 *	flclient_lock() returns a descriptor to close, -2 when another flip-fl holds
 *	the lock and wait is 0, -1 on error. The other int functions return 0, or -1
 *	with a one-line message in err when the host fails us (fork, state files):
 *	transient, the caller exits 1. Nothing is printed except by the waiter,
 *	whose stderr is the client's log. Nothing exits.
 */
#ifndef FLIP_FLCLIENT_H
#define FLIP_FLCLIENT_H

#include <stddef.h>
#include <jansson.h>

#include "lib/config.h"
#include "lib/fluser.h"

struct flclient {
	int statefd;		/* FLIP_STATE_DIR/fl */
	const char *state_dir;	/* its path, for the waiter */
	const char *startup;	/* the live kit's startup/ */
	const char *log_path;	/* FLIP_LOG_DIR/fl-client.log */
	const char *command;	/* FL_CLIENT_COMMAND, NULL: ./sub_start.sh */
	const struct config *cfg;	/* for the client's environment (fluser_env) */
	const struct fluser *client;	/* FL_CLIENT_USER, checked */
	const char *self;	/* this program, executed as the waiter */
	double backoff_base;	/* 10 s */
	double backoff_max;	/* 600 s */
	double healthy_after;	/* 600 s */
	double grace;		/* 30 s between SIGTERM and SIGKILL */
};

struct flclient_exit {
	int known;		/* exit.json had it */
	int code;		/* exit code, -1 when killed */
	int signal;		/* signal, 0 when it exited */
};

struct flclient_state {
	long pid;		/* the client, 0 when none is recorded */
	unsigned long long ticks;
	long pgid;		/* its waiter: session and process group leader */
	unsigned long long pgid_ticks;
	double started_at;
	long restarts;
	double backoff;		/* the delay put before the last restart, 0 after a reset */
	double next_start_at;
	char last_reason[16];	/* "", exited, stopped, replaced */
	struct flclient_exit last_exit;
	double last_exit_at;
};

struct flclient_outcome {
	int stopped, running, exited, started;
	long pid;		/* running or started: the client */
	long exited_pid;
	struct flclient_exit exit;
	double uptime;		/* exited: how long it had run */
	long restarts;
	double wait;		/* seconds until the next start, when waiting */
	double backoff;
};

struct flclient_stop {
	int was_running, forced;
	long pid;
	int script_rc;		/* stop_fl.sh's exit code, -1 when not run */
};

struct flclient_progress {
	char job[72];		/* "" when none seen */
	long round;		/* -1 when none seen since the job */
	char round_state[12];	/* started | finished */
	int aborted;
};

int flclient_lock(const struct flclient *fc, int wait);
int flclient_load(const struct flclient *fc, struct flclient_state *st);
int flclient_save(const struct flclient *fc, const struct flclient_state *st);
int flclient_alive(long pid, unsigned long long ticks);
int flclient_stopped(const struct flclient *fc);
int flclient_set_stopped(const struct flclient *fc, int on);
int flclient_supervise(const struct flclient *fc, double now, int now_please,
		       struct flclient_outcome *o, char *err, size_t errlen);
int flclient_stop(const struct flclient *fc, double now, struct flclient_stop *r, char *err,
		  size_t errlen);
json_t *flclient_status(const struct flclient *fc, double now);
void flclient_progress_line(struct flclient_progress *p, const char *line);
void flclient_progress(const char *log_path, struct flclient_progress *p);
int flclient_waiter(const char *state_dir, char **argv);

#endif
