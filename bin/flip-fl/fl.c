/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fl - one flip-fl command's context (see fl.h for the contract).
 */
#include "bin/flip-fl/fl.h"

#include "lib/flclient.h"
#include "lib/fluser.h"
#include "lib/kit.h"
#include "lib/log.h"
#include "lib/node.h"
#include "lib/statedir.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FL_BACKOFF_BASE 10.0
#define FL_BACKOFF_MAX 600.0
#define FL_HEALTHY_AFTER 600.0

/*
 * fl_identity - who the node's user is; started as root (root's crontab on a host
 * without systemd), become it for everything but the client's start and signals
 * (fluser_enter_node). Exits 2 on a configuration or installation problem.
 */
static void fl_identity(struct fl *f)
{
	struct node probe;
	struct passwd *pw;
	char err[1024];

	if (geteuid() != 0) {
		pw = getpwuid(geteuid());
		if (pw == NULL) {
			log_error("this user (uid %ld) has no name in the password database",
				  (long)geteuid());
			exit(2);
		}
		snprintf(f->node.name, sizeof(f->node.name), "%s", pw->pw_name);
		f->node.uid = pw->pw_uid;
		f->node.gid = pw->pw_gid;
		return;
	}
	if (node_open(&probe, "flip-fl", f->opt->config_path, 0, err, sizeof(err)) < 0) {
		log_error("%s", err);
		exit(2);
	}
	if (fluser_node_of(probe.cfg.state_dir, &f->node, err, sizeof(err)) < 0) {
		node_close(&probe);
		log_error("%s", err);
		exit(2);
	}
	node_close(&probe);
	/* a node whose folders are root's runs as root: nothing to enter */
	if (f->node.uid != 0 && fluser_enter_node(&f->node, err, sizeof(err)) < 0) {
		log_error("%s", err);
		exit(2);
	}
}

/* fl_client_user - FL_CLIENT_USER, never root, never the node's user; exits 2 */
static void fl_client_user(struct fl *f)
{
	char err[1024];

	if (fluser_lookup(f->n.cfg.fl_client_user, &f->client, err, sizeof(err)) < 0 ||
	    fluser_check(&f->client, &f->node, err, sizeof(err)) < 0) {
		log_error("%s", err);
		exit(2);
	}
	f->sv.cfg = &f->n.cfg;
	f->sv.client = &f->client;
}

/*
 * fl_open - identity, config (and audit), kit paths, state folder, and (client) the
 * FL client's user; exits 2 on a configuration error
 */
void fl_open(struct fl *f, const struct fl_opts *opt, int audit, int client)
{
	char err[1024];

	memset(f, 0, sizeof(*f));
	f->opt = opt;
	f->lockfd = -1;
	f->sv.rec.statefd = -1;
	fl_identity(f);
	if (node_open(&f->n, "flip-fl", opt->config_path, audit ? NODE_AUDIT : 0, err,
		      sizeof(err)) < 0) {
		log_error("%s", err);
		exit(2);
	}
	if (f->n.cfg.fl_kit_slot == NULL) {
		log_error("FL_KIT_SLOT is not set in %s: the kit's slot, e.g. Trust_2",
			  f->n.cfg.path[0] ? f->n.cfg.path : "the environment");
		exit(2);
	}
	if (kit_paths(f->n.cfg.fl_kit_dir, f->n.cfg.fl_kit_slot, &f->kp) < 0 ||
	    snprintf(f->state_dir, sizeof(f->state_dir), "%s/" STATEDIR_FL, f->n.cfg.state_dir) >=
		    (int)sizeof(f->state_dir) ||
	    snprintf(f->log_path, sizeof(f->log_path), "%s/fl-client.log", f->n.cfg.log_dir) >=
		    (int)sizeof(f->log_path)) {
		log_error("FL_KIT_DIR, FLIP_STATE_DIR or FLIP_LOG_DIR: path too long");
		exit(2);
	}
	f->sv.rec.statefd = node_state_dirfd(&f->n, STATEDIR_FL);
	if (f->sv.rec.statefd < 0) {
		log_error("cannot open %s: %s (run flipctl init)", f->state_dir, strerror(errno));
		exit(2);
	}
	if (client)
		fl_client_user(f);
	f->sv.rec.state_dir = f->state_dir;
	f->sv.startup = f->kp.startup;
	f->sv.rec.log_path = f->log_path;
	f->sv.command = f->n.cfg.fl_client_command;
	/* the waiter is this very program, whatever its path (even replaced by an upgrade) */
	f->sv.self = "/proc/self/exe";
	f->sv.backoff_base = FL_BACKOFF_BASE;
	f->sv.backoff_max = FL_BACKOFF_MAX;
	f->sv.healthy_after = FL_HEALTHY_AFTER;
	f->sv.grace = opt->grace;
#ifdef FLIP_TEST_BUILD
	const char *b = getenv("FLIP_FL_BACKOFF_BASE");
	if (b != NULL && atof(b) > 0) {
		f->sv.backoff_base = atof(b);
		f->sv.backoff_max = 60 * f->sv.backoff_base;
		f->sv.healthy_after = 60 * f->sv.backoff_base;
	}
#endif
}

/* fl_close - release what fl_open opened */
void fl_close(struct fl *f)
{
	if (f->lockfd >= 0)
		close(f->lockfd);
	if (f->sv.rec.statefd >= 0)
		close(f->sv.rec.statefd);
	node_close(&f->n);
}

/* fl_lock - the FL lock; 0 when another flip-fl holds it and wait is 0 */
int fl_lock(struct fl *f, int wait)
{
	f->lockfd = flclient_lock(&f->sv.rec, wait);
	if (f->lockfd == -2)
		return 0;
	if (f->lockfd < 0) {
		log_error("cannot take the FL lock in %s: %s", f->state_dir, strerror(errno));
		fl_close(f);
		exit(1);
	}
	return 1;
}

/* fl_date - a time for people, "unknown" for 0 */
void fl_date(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (t == 0) {
		snprintf(buf, len, "unknown");
		return;
	}
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M UTC", &tm);
}
