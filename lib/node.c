/* SPDX-License-Identifier: Apache-2.0 */
/*
 * node - the start-up every program shares (see node.h).
 */
#include "lib/node.h"

#include "lib/durable.h"
#include "lib/log.h"
#include "lib/statedir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* node_no_core_dumps - no core file, no same-uid ptrace: see node.h */
int node_no_core_dumps(void)
{
	const struct rlimit none = {0, 0};
	int rc = 0;

	if (setrlimit(RLIMIT_CORE, &none) < 0)
		rc = -1;
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		rc = -1;
	return rc;
}

/* node_open - config, log level, spool and audit trail */
int node_open(struct node *n, const char *prog, const char *config_path, unsigned flags,
	      char *err, size_t errlen)
{
	memset(n, 0, sizeof(*n));
	n->prog = prog;
	n->audit.fd = -1;
	/* before the first secret is read: the kit file holds every key */
	if (node_no_core_dumps() < 0)
		log_warn("cannot switch core dumps off: %s", strerror(errno));
	if (config_load(&n->cfg, config_path, err, errlen) < 0)
		return -1;
	n->have_cfg = 1;
	log_set_level(n->cfg.log_level);
	if ((flags & NODE_NEED_HUB) && config_require_hub(&n->cfg, err, errlen) < 0)
		goto fail;
	if (flags & NODE_SPOOL) {
		if (spool_open(&n->sp, n->cfg.spool_dir, err, errlen) < 0)
			goto fail;
		n->have_spool = 1;
	}
	if (flags & NODE_AUDIT) {
		if (mkdir(n->cfg.log_dir, 0700) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create log directory %s: %s (run flipctl init)",
				 n->cfg.log_dir, strerror(errno));
			goto fail;
		}
		if (audit_open(&n->audit, n->cfg.log_dir, prog) < 0) {
			snprintf(err, errlen, "cannot open the audit trail in %s: %s (run flipctl init)",
				 n->cfg.log_dir, strerror(errno));
			goto fail;
		}
		n->have_audit = 1;
	}
	return 0;
fail:
	node_close(n);
	return -1;
}

/* node_close - release everything node_open opened */
void node_close(struct node *n)
{
	if (n->have_audit)
		audit_close(&n->audit);
	if (n->have_spool)
		spool_close(&n->sp);
	if (n->have_cfg)
		config_free(&n->cfg);
	n->have_audit = n->have_spool = n->have_cfg = 0;
}

/* node_audit - one audit event; a failure is logged, never fatal */
void node_audit(struct node *n, const char *event, const char *task_id, const char *task_type,
		json_t *detail)
{
	if (!n->have_audit) {
		json_decref(detail);
		return;
	}
	if (audit_event(&n->audit, event, task_id, task_type, detail) < 0)
		log_error("cannot append %s to the audit trail in %s: %s", event, n->cfg.log_dir,
			  strerror(errno));
}

/* node_audit_batch - begin (1) or end (0) a batch of audit events with one fsync */
void node_audit_batch(struct node *n, int begin)
{
	if (!n->have_audit)
		return;
	if ((begin ? audit_batch_begin(&n->audit) : audit_batch_end(&n->audit)) < 0)
		log_error("audit trail in %s: cannot %s a batch of events: %s", n->cfg.log_dir,
			  begin ? "start" : "write", strerror(errno));
}

/* node_now - wall-clock seconds */
double node_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* node_state_dirfd - open (creating) FLIP_STATE_DIR or a subdirectory of it */
int node_state_dirfd(struct node *n, const char *sub)
{
	int fd = statedir_create(n->cfg.state_dir), sfd;

	if (fd < 0 || sub == NULL)
		return fd;
	sfd = statedir_sub(fd, sub);
	close(fd);
	return sfd;
}
