/* SPDX-License-Identifier: Apache-2.0 */
/*
 * install - `flip-fl install-kit` (see install.h for the contract).
 */
#include "bin/flip-fl/install.h"

#include "lib/flclient.h"
#include "lib/kit.h"
#include "lib/log.h"
#include "lib/node.h"
#include "bin/flip-fl/check.h"
#include "bin/flip-fl/client.h"
#include "bin/flip-fl/fl.h"
#include "bin/flip-fl/privacy.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* install_refused - audit a refused kit; returns 2 */
static int install_refused(struct fl *f, const char *fingerprint, const char *stage, int problems)
{
	node_audit(&f->n, "fl.kit.refused", NULL, NULL,
		   json_pack("{s:o, s:s, s:s, s:i}", "fingerprint",
			     fingerprint[0] ? json_string(fingerprint) : json_null(), "slot",
			     f->n.cfg.fl_kit_slot, "stage", stage, "problems", problems));
	log_error("the kit was not installed; the live kit (if any) is unchanged");
	return 2;
}

/* install_owner_check - the kit belongs to FL_KIT_DIR's owner (flipctl init gives it to
 * the node's user): installed by anyone else, root above all, its files would be that
 * user's and the units (User=flip) could not read them. Checked before anything is
 * opened or created (the state and audit files must not become root's either). */
static int install_owner_check(const struct fl_opts *opt, const char *tarball)
{
	struct node n;
	struct stat kd;
	char err[1024];

	if (node_open(&n, "flip-fl", opt->config_path, 0, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 2;
	}
	int rc = 0;
	if (stat(n.cfg.fl_kit_dir, &kd) == 0 && kd.st_uid != geteuid()) {
		struct passwd *pw = getpwuid(kd.st_uid);
		char owner[64];
		if (pw != NULL)
			snprintf(owner, sizeof(owner), "%s", pw->pw_name);
		else
			snprintf(owner, sizeof(owner), "#%ld", (long)kd.st_uid);
		log_error("%s belongs to %s: install the kit as that user, e.g. "
			  "sudo -u %s flip-fl install-kit - < %s", n.cfg.fl_kit_dir, owner, owner,
			  tarball);
		rc = 2;
	}
	node_close(&n);
	return rc;
}

/* install_command - flip-fl install-kit: stage, verify, render, stop, switch, restart */
int install_command(const struct fl_opts *opt, const char *tarball)
{
	struct kit_limits lim = {KIT_MEMBER_MAX, KIT_TOTAL_MAX, KIT_ENTRIES_MAX};
	struct kit_stage st;
	struct kit_findings *kf = NULL;
	struct kit_trust trust = {0, NULL};
	int unsigned_kit = 0;
	struct privacy_policy pp;
	struct flclient_state cs;
	struct fl f;
	json_t *doc = NULL;
	char err[1024];
	unsigned changed;
	int rc, n, was_running;

	if (install_owner_check(opt, tarball) != 0)
		return 2;
	fl_open(&f, opt, 1, 1);
	fl_lock(&f, 1);
	rc = kit_stage(tarball, f.kp.services, &lim, &st, err, sizeof(err));
	if (rc != 0) {
		log_error("%s", err);
		rc = rc == KIT_REFUSED ? install_refused(&f, st.fingerprint, "extract", 1) : 1;
		goto out;
	}
	/* the new kit must pass the check before anything changes */
	kf = calloc(1, sizeof(*kf));
	if (kf == NULL) {
		log_error("out of memory");
		rc = 1;
		goto out;
	}
	trust.require_signature = f.n.cfg.fl_kit_require_signature;
	trust.root_ca_sha256 = f.n.cfg.fl_kit_root_ca_sha256;
	kit_verify(st.path, f.n.cfg.fl_kit_slot, time(NULL), &trust, kf);
	unsigned_kit = kf->unsigned_kit;
	if ((n = check_findings(kf)) > 0) {
		rc = install_refused(&f, st.fingerprint, "verify", n);
		goto out;
	}
	/* and arrive with its local/ rendered: never live without its privacy.json */
	if ((n = check_privacy(&f, &pp)) > 0) {
		rc = install_refused(&f, st.fingerprint, "privacy", n);
		goto out;
	}
	doc = privacy_render(&pp);
	if ((pp.preset != PRIVACY_NONE && doc == NULL) ||
	    kit_render(st.path, f.n.cfg.num_gpus, f.n.cfg.memory_per_gpu_gib, doc, &changed, err,
		       sizeof(err)) < 0) {
		log_error("%s", pp.preset != PRIVACY_NONE && doc == NULL ? "out of memory" : err);
		rc = 1;
		goto out;
	}
	/* a running client has its working folder in the old kit: stop it for the switch */
	was_running = flclient_load(&f.sv.rec, &cs) == 0 && flclient_alive(cs.pid, cs.ticks);
	if (was_running && (rc = client_stop(&f, "kit replaced")) != 0)
		goto out;
	if (kit_switch(&st, f.n.cfg.fl_kit_slot, err, sizeof(err)) < 0) {
		log_error("%s", err);
		rc = 1;
		goto out;
	}
	if (kit_share(f.kp.live, f.client.gid, err, sizeof(err)) < 0)
		log_error("%s", err);
	node_audit(&f.n, "fl.kit.installed", NULL, NULL,
		   json_pack("{s:s, s:s, s:I, s:I, s:I, s:b}", "fingerprint", st.fingerprint, "slot",
			     f.n.cfg.fl_kit_slot, "files", (json_int_t)st.files, "links",
			     (json_int_t)st.links, "bytes", (json_int_t)st.bytes, "signed",
			     !unsigned_kit));
	if (unsigned_kit)
		node_audit(&f.n, "fl.kit.unsigned", NULL, NULL,
			   json_pack("{s:s, s:s}", "fingerprint", st.fingerprint, "slot",
				     f.n.cfg.fl_kit_slot));
	printf("installed the FL kit for slot %s in %s (tarball sha256 %s)\n", f.n.cfg.fl_kit_slot,
	       f.kp.live, st.fingerprint);
	rc = 0;
	if (was_running && !flclient_stopped(&f.sv.rec))
		rc = client_supervise(&f, 1);
out:
	kit_stage_discard(&st);
	json_decref(doc);
	free(kf);
	fl_close(&f);
	return rc;
}
