/*
 * node - what every flip-node program opens at start: config, log level, spool, audit.
 *
 * SYNOPSIS
 *	#include "node.h"
 *
 *	int node_open(struct node *n, const char *prog, const char *config_path,
 *		      unsigned flags, char *err, size_t errlen);
 *	void node_close(struct node *n);
 *	void node_audit(struct node *n, const char *event, const char *task_id,
 *			const char *task_type, json_t *detail);
 *	void node_audit_batch(struct node *n, int begin);
 *	void node_audit_batch(struct node *n, int begin);
double node_now(void);
 *
 * DESCRIPTION
 *	node_open() loads the configuration (NODE_NEED_HUB: the hub keys must be
 *	present), applies its log level, opens the spool (NODE_SPOOL) and the audit
 *	trail (NODE_AUDIT). It returns 0, or -1 with a message for the program to print
 *	before exiting 2 (configuration) — all failures here are configuration or
 *	installation problems an operator must fix.
 *
 *	node_audit() appends an audit event; a failure to write the audit trail is
 *	logged as an error (the auditor must be able to see the gap) but does not stop
 *	the task. detail is stolen. node_audit_batch(n, 1) ... node_audit_batch(n, 0)
 *	brackets many events written with one fsync (audit_batch_begin/end).
 */
#ifndef FLIP_NODE_H
#define FLIP_NODE_H

#include <stddef.h>
#include <jansson.h>

#include "audit.h"
#include "config.h"
#include "spool.h"

enum { NODE_NEED_HUB = 1, NODE_SPOOL = 2, NODE_AUDIT = 4 };

struct node {
	const char *prog;
	struct config cfg;
	struct spool sp;
	struct audit audit;
	int have_cfg, have_spool, have_audit;
};

int node_open(struct node *n, const char *prog, const char *config_path, unsigned flags,
	      char *err, size_t errlen);
void node_close(struct node *n);
void node_audit(struct node *n, const char *event, const char *task_id, const char *task_type,
		json_t *detail);
void node_audit_batch(struct node *n, int begin);
double node_now(void);
int node_state_dirfd(struct node *n, const char *sub);

#endif
