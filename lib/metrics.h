/*
 * metrics - node_exporter textfile metrics, FLIP_STATE_DIR/metrics/<prog>.prom.
 *
 * SYNOPSIS
 *	#include "metrics.h"
 *
 *	void metrics_begin(struct metrics *m, const char *prog);
 *	void metrics_add(struct metrics *m, const char *name, const char *labels, double value);
 *	void metrics_spool_depth(struct metrics *m, struct spool *sp);
 *	void metrics_commit(struct metrics *m, struct node *n);
 *
 * DESCRIPTION
 *	Each program rewrites its own file atomically at the end of a run: the
 *	metric names are flip_<name>, labels are given pre-rendered (`type="x"`) or
 *	NULL. flip_last_run_timestamp_seconds is added by metrics_begin's caller
 *	through metrics_add like any other. A failure to write is logged at debug
 *	level only: metrics must never make a run fail.
 */
#ifndef FLIP_METRICS_H
#define FLIP_METRICS_H

#include <stddef.h>

#include "node.h"

struct metrics {
	char prog[32];
	char *buf;
	size_t len, cap;
};

void metrics_begin(struct metrics *m, const char *prog);
void metrics_add(struct metrics *m, const char *name, const char *labels, double value);
void metrics_spool_depth(struct metrics *m, struct spool *sp);
void metrics_commit(struct metrics *m, struct node *n);

#endif
