/* SPDX-License-Identifier: Apache-2.0 */
/*
 * node - what every flip-node program opens at start: config, log level, spool, audit.
 *
 * SYNOPSIS
 *	#include "lib/node.h"
 *
 *	int node_open(struct node *n, const char *prog, const char *config_path,
 *		      unsigned flags, char *err, size_t errlen);
 *	void node_close(struct node *n);
 *	void node_audit(struct node *n, const char *event, const char *task_id,
 *			const char *task_type, json_t *detail);
 *	void node_audit_batch(struct node *n, int begin);
 *	double node_now(void);
 *	int node_state_dirfd(struct node *n, const char *sub);
 *	int node_no_core_dumps(void);
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
 *
 *	node_state_dirfd() opens FLIP_STATE_DIR, creating it (0700) when missing, or
 *	with sub (a STATEDIR_ name, statedir.h) its subdirectory, created too: a
 *	descriptor, or -1 with errno.
 *
 *	node_no_core_dumps() keeps the keys (hub API key, AES key, internal key,
 *	database password) and the decrypted payloads this process will hold out
 *	of core files and out of reach of the same user: RLIMIT_CORE 0 (soft and
 *	hard, so no child can raise it back) and PR_SET_DUMPABLE 0 (no core, no
 *	ptrace attach or /proc/<pid>/mem by a process of the same uid; /proc/<pid>
 *	belongs to root). node_open() calls it before it reads the configuration,
 *	so every program that holds a key gets it from one place. The dumpable flag
 *	is reset by execve(2) of another program; the core limit is inherited.
 *	Returns 0, or -1 with errno when the kernel refused either (the caller may
 *	go on: the systemd units also set LimitCORE=0).
 */
#ifndef FLIP_NODE_H
#define FLIP_NODE_H

#include <stddef.h>
#include <jansson.h>

#include "lib/audit.h"
#include "lib/config.h"
#include "lib/spool.h"

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
int node_no_core_dumps(void);

#endif
