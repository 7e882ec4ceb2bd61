/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics - node_exporter textfile metrics, FLIP_STATE_DIR/metrics/<prog>.prom.
 *
 * SYNOPSIS
 *	#include "lib/metrics.h"
 *
 *	void metrics_begin(struct metrics *m, const char *prog);
 *	void metrics_add(struct metrics *m, const char *name, const char *labels, double value);
 *	void metrics_count(struct metrics *m, const char *name, const char *labels, double delta);
 *	void metrics_spool_depth(struct metrics *m, struct spool *sp);
 *	void metrics_filesystems(struct metrics *m, struct node *n);
 *	const char *metrics_label_value(const char *v, char *buf, size_t len);
 *	void metrics_commit(struct metrics *m, struct node *n);
 *	int metrics_family_count(void);
 *	const char *metrics_family_name(int i);
 *
 * DESCRIPTION
 *	Each program rewrites its own file atomically at the end of a run: the
 *	metric names are flip_<name>, every sample carries prog="<prog>", further
 *	labels are given pre-rendered (`type="x"`) or NULL. Only the families listed
 *	in metrics.c are written (each with its # HELP and # TYPE, its samples
 *	together, as the exposition format and `promtool check metrics` want); a name
 *	not listed is dropped with a debug line.
 *
 *	metrics_add() sets a gauge for this run. metrics_count() adds delta to a
 *	counter: at commit the file's previous value is read back and added to, and a
 *	counter (or a gauge listed as kept, like the last successful heartbeat) that
 *	this run did not touch keeps its previous value, so counters grow across the
 *	short-lived runs as Prometheus expects. Removing the file resets them, which
 *	Prometheus reads as a counter reset.
 *
 *	metrics_filesystems() adds the free and total bytes of the file systems
 *	holding the spool, state and log directories (dir="spool", "state", "log").
 *
 *	metrics_label_value() returns v fit for a label value: characters outside
 *	[A-Za-z0-9_.:-] become '_', at most len - 1 of them ("unknown" for NULL or "").
 *
 *	Files are mode 0640: the metrics directory belongs to the group flip-metrics
 *	(flipctl init, setgid), so that node_exporter, a member, reads them and
 *	nothing else. The read-add-write of a commit holds an flock on the directory.
 *	A failure to write is logged at debug level only: metrics never make a run fail.
 */
#ifndef FLIP_METRICS_H
#define FLIP_METRICS_H

#include <stddef.h>

#include "lib/node.h"

struct metrics_sample {
	int family;
	int delta;		/* a counter increment, to add to the previous value */
	char labels[232];	/* rendered, prog first */
	double value;
};

struct metrics {
	char prog[32];
	struct metrics_sample *s;
	size_t n, cap;
};

void metrics_begin(struct metrics *m, const char *prog);
void metrics_add(struct metrics *m, const char *name, const char *labels, double value);
void metrics_count(struct metrics *m, const char *name, const char *labels, double delta);
void metrics_spool_depth(struct metrics *m, struct spool *sp);
void metrics_filesystems(struct metrics *m, struct node *n);
const char *metrics_label_value(const char *v, char *buf, size_t len);
void metrics_commit(struct metrics *m, struct node *n);
int metrics_family_count(void);
const char *metrics_family_name(int i);

#endif
