/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flclient - flip-fl's record of the vendor FL client, which other programs read.
 *
 * SYNOPSIS
 *	#include "lib/flclient.h"
 *
 *	int flclient_lock(const struct flclient *fc, int wait);
 *	int flclient_load(const struct flclient *fc, struct flclient_state *st);
 *	int flclient_save(const struct flclient *fc, const struct flclient_state *st);
 *	int flclient_read_exit(const struct flclient *fc, const struct flclient_state *st,
 *			       struct flclient_exit *e, double *at);
 *	int flclient_proc(long pid, char *state, unsigned long long *ticks);
 *	int flclient_alive(long pid, unsigned long long ticks);
 *	int flclient_stopped(const struct flclient *fc);
 *	int flclient_set_stopped(const struct flclient *fc, int on);
 *	json_t *flclient_status(const struct flclient *fc, double now);
 *	void flclient_progress_line(struct flclient_progress *p, const char *line);
 *	void flclient_progress(const char *log_path, struct flclient_progress *p);
 *
 * DESCRIPTION
 *	No long-lived flip-node service watches the client: each run of flip-fl
 *	(every 30 s) looks at what the last one recorded in FLIP_STATE_DIR/fl/
 *	client.json and acts (bin/flip-fl/supervisor.h). This module is that record,
 *	for flip-fl and for the programs that only read it (the heartbeat, flipctl
 *	status). The files of fc->statefd (FLIP_STATE_DIR/fl):
 *	  client.json  pid and /proc start time of the client and of its waiter
 *	               (the process group), start time, restarts, backoff, the last
 *	               exit; written atomically
 *	  exit.json    written by the waiter when the client exits: its status
 *	  stopped      the stop flag: while it exists nothing is started
 *	  .lock        flock taken by every command that changes the above
 *
 *	flclient_load() is client.json, a blank state when there is none;
 *	flclient_save() writes it. flclient_read_exit() is exit.json when the
 *	waiter wrote it for the client st records (its pid and start time), with
 *	the time of the exit in *at.
 *
 *	flclient_proc() is the state letter and the start time (field 22 of
 *	/proc/<pid>/stat, clock ticks since boot) of a process. flclient_alive() is
 *	true when pid exists, is not a zombie and its start time is ticks: a reused
 *	pid is not our client.
 *
 *	flclient_stopped() is true while the stop flag is set; flclient_set_stopped()
 *	sets (1) or clears (0) it.
 *
 *	flclient_status() is {"running", "pid", "started_at", "uptime_seconds",
 *	"restarts", "backoff_seconds", "next_start_at", "stopped", "last_exit":
 *	{"reason": "exited"|"stopped"|"replaced", "status", "at"} or null,
 *	"progress": {"job", "round", "round_state", "aborted"}}.
 *	flclient_progress() reads the end (1 MiB) of the client's log and feeds each
 *	line to flclient_progress_line(), which matches it against one table of the
 *	lines NVFLARE prints (a new job, a round started or finished, an abort).
 *
 * DIAGNOSTICS
 *	flclient_lock() returns a descriptor to close, -2 when another flip-fl holds
 *	the lock and wait is 0, -1 on error. flclient_load(), flclient_save() and
 *	flclient_set_stopped() return 0, or -1 with errno set. flclient_proc()
 *	returns -1 when the process is gone or its stat unreadable,
 *	flclient_read_exit() when exit.json is missing or is another client's.
 *	Nothing is printed; nothing exits.
 */
#ifndef FLIP_FLCLIENT_H
#define FLIP_FLCLIENT_H

#include <stddef.h>
#include <jansson.h>

/* the files of FLIP_STATE_DIR/fl, and the cap on reading the two JSON ones */
#define FLCLIENT_STATE "client.json"
#define FLCLIENT_EXIT "exit.json"
#define FLCLIENT_FLAG "stopped"
#define FLCLIENT_LOCK ".lock"
#define FLCLIENT_ENV "client.env"	/* the client's environment (flip-fl check) */
#define FLCLIENT_ENV_MAX (1 << 16)
#define FLCLIENT_STATE_MAX (64 * 1024)

struct flclient {
	int statefd;		/* FLIP_STATE_DIR/fl */
	const char *state_dir;	/* its path, for messages and the waiter */
	const char *log_path;	/* FLIP_LOG_DIR/fl-client.log */
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

struct flclient_progress {
	char job[72];		/* "" when none seen */
	long round;		/* -1 when none seen since the job */
	char round_state[12];	/* started | finished */
	int aborted;
};

int flclient_lock(const struct flclient *fc, int wait);
int flclient_load(const struct flclient *fc, struct flclient_state *st);
int flclient_save(const struct flclient *fc, const struct flclient_state *st);
int flclient_read_exit(const struct flclient *fc, const struct flclient_state *st,
		       struct flclient_exit *e, double *at);
int flclient_proc(long pid, char *state, unsigned long long *ticks);
int flclient_alive(long pid, unsigned long long ticks);
int flclient_stopped(const struct flclient *fc);
int flclient_set_stopped(const struct flclient *fc, int on);
json_t *flclient_status(const struct flclient *fc, double now);
void flclient_progress_line(struct flclient_progress *p, const char *line);
void flclient_progress(const char *log_path, struct flclient_progress *p);

#endif
