/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fl - one flip-fl command's context: who runs it, the configuration, the kit's
 * paths, the FL client's record and supervision, the FL lock.
 *
 * SYNOPSIS
 *	#include "bin/flip-fl/fl.h"
 *
 *	void fl_open(struct fl *f, const struct fl_opts *opt, int audit, int client);
 *	void fl_close(struct fl *f);
 *	int fl_lock(struct fl *f, int wait);
 *	void fl_date(time_t t, char *buf, size_t len);
 *
 * DESCRIPTION
 *	Every command (check.h, client.h, install.h, status.h) sets up its context
 *	with fl_open() and releases it with fl_close(); opt is the command line
 *	main.c parsed, which the context keeps (f->opt).
 *
 *	fl_open() finds the node's user: this process's, or, started as root (root's
 *	crontab on a host without systemd), the owner of FLIP_STATE_DIR, which it
 *	becomes for everything but the client's start and signals
 *	(fluser_enter_node). Then the configuration (with the audit trail when
 *	audit), the kit's paths, FLIP_STATE_DIR/fl, the client's log
 *	FLIP_LOG_DIR/fl-client.log and the supervisor's settings (supervisor.h:
 *	the waiter is /proc/self/exe; backoff 10 s doubling to 10 min, reset after
 *	10 min of running; opt->grace before SIGKILL); with client, the FL
 *	client's user FL_CLIENT_USER, checked (never root, never the node's user).
 *	In a test build FLIP_FL_BACKOFF_BASE (seconds) replaces the 10 s backoff
 *	base, and the 10 min cap and healthy time become 60 times that base.
 *
 *	fl_lock() takes the FL lock (flclient_lock), waiting for it when wait.
 *	fl_date() is a time for people ("2026-01-31 12:00 UTC"), "unknown" for 0.
 *
 * DIAGNOSTICS
 *	fl_open() logs and exits 2 on a configuration or installation problem.
 *	fl_lock() returns 1 when it holds the lock, 0 when another flip-fl holds it
 *	and wait is 0; it logs and exits 1 when the lock cannot be taken.
 */
#ifndef FLIP_FL_FL_H
#define FLIP_FL_FL_H

#include <stddef.h>
#include <time.h>

#include "lib/fluser.h"
#include "lib/kit.h"
#include "lib/node.h"
#include "bin/flip-fl/supervisor.h"

#define FL_GRACE 30.0	/* stop: seconds between SIGTERM and SIGKILL, by default */

/* the command line: what main.c parsed, for the command it runs */
struct fl_opts {
	const char *config_path;	/* -c FILE, NULL: the default */
	int json;			/* status --json */
	int external;			/* run --external: the client is its own unit */
	double grace;			/* stop --grace SECS */
};

/* the program's own context, set up once per command */
struct fl {
	const struct fl_opts *opt;	/* the command line */
	struct node n;
	struct kit_paths kp;
	struct supervisor sv;	/* the client's supervision and its record */
	char state_dir[4096];
	char log_path[4096];
	int lockfd;
	struct fluser node;	/* the node's user: this process's, or FLIP_STATE_DIR's owner */
	struct fluser client;	/* FL_CLIENT_USER, checked against node */
};

void fl_open(struct fl *f, const struct fl_opts *opt, int audit, int client);
void fl_close(struct fl *f);
int fl_lock(struct fl *f, int wait);
void fl_date(time_t t, char *buf, size_t len);

#endif
