/* SPDX-License-Identifier: Apache-2.0 */
/*
 * check - `flip-fl check` and the kit check that run, start and install-kit share
 * (see check.h for the contract).
 */
#include "bin/flip-fl/check.h"

#include "lib/durable.h"
#include "lib/flclient.h"
#include "lib/fluser.h"
#include "lib/kit.h"
#include "lib/log.h"
#include "lib/policy.h"
#include "bin/flip-fl/fl.h"
#include "bin/flip-fl/privacy.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* print_lines - one log line per line of text */
static void print_lines(char *text)
{
	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		log_error("%s", l);
}

/*
 * check_privacy - the privacy policy in force: the governance policy's [fl_privacy]
 * when it has one, else the FL_SITE_PRIVACY_* settings (kit file and environment,
 * gathered by config.c). Returns the number of problems, printed.
 */
int check_privacy(struct fl *f, struct privacy_policy *pp)
{
	struct privacy_settings s;
	struct policy *pol = NULL;
	char err[4096];
	const char *name;
	json_t *value;
	int problems = 0;

	privacy_settings_init(&s);
	json_object_foreach(f->n.cfg.fl_privacy, name, value) {
		if (privacy_settings_add(&s, name, json_string_value(value)) < 0) {
			log_error("too many %s* settings (at most %d)", PRIVACY_PREFIX,
				  PRIVACY_MAX_SETTINGS);
			problems = 1;
			break;
		}
	}
	if (!problems &&
	    policy_load(f->n.cfg.access_policy_file, f->n.cfg.cohort_threshold, &pol, err,
			sizeof(err)) < 0) {
		log_error("%s", err);
		problems = 1;
	}
	if (!problems) {
		problems = privacy_resolve(&s, pol ? policy_fl_privacy(pol) : NULL,
					   f->n.cfg.access_policy_file, pp, err, sizeof(err));
		if (problems)
			print_lines(err);
	}
	policy_free(pol);
	return problems;
}

/* check_findings - problems as errors, warnings as warnings; returns the problems */
int check_findings(const struct kit_findings *kf)
{
	for (int i = 0; i < kf->nwarnings; i++)
		log_warn("%s", kf->warning[i]);
	for (int i = 0; i < kf->nproblems; i++)
		log_error("%s", kf->problem[i]);
	return kf->nproblems;
}

/*
 * fl_client_files - what the client's own unit (flip-fl-client@.service) needs from
 * the node: FLIP_STATE_DIR/fl/client.env, the client's environment and nothing
 * else (systemd reads it as root before it starts the unit as the client's user,
 * so it stays 0600, the node's), and the client's log, made here so that it is the
 * node's user's (the unit appends to it). Returns 0, or 1 after logging.
 */
static int fl_client_files(struct fl *f)
{
	static const char *const keep[] = {"DATA_ACCESS_API_URL=", "IMAGING_API_URL=",
					   "TRUST_INTERNAL_SERVICE_KEY_HEADER=",
					   "TRUST_INTERNAL_SERVICE_KEY=", "https_proxy=", "HTTPS_PROXY=",
					   "no_proxy=", "NO_PROXY=", "HTTP_PROXY=", "http_proxy=", NULL};
	char **env = fluser_env(&f->n.cfg, &f->client), *text = NULL, *old = NULL;
	size_t len = 0, oldlen = 0;
	FILE *out;
	int fd, rc = 0;

	if (env == NULL || (out = open_memstream(&text, &len)) == NULL) {
		fluser_env_free(env);
		log_error("out of memory");
		return 1;
	}
	fprintf(out, "# the FL client's environment, written by flip-fl check; read by systemd\n"
		     "# for flip-fl-client@.service. Never the hub key or the AES key.\n");
	for (char **e = env; *e; e++)
		for (int k = 0; keep[k]; k++) {
			size_t n = strlen(keep[k]);
			if (strncmp(*e, keep[k], n) != 0)
				continue;
			fprintf(out, "%.*s\"", (int)n, *e);
			for (const char *c = *e + n; *c; c++)
				fprintf(out, "%s%c", *c == '"' || *c == '\\' ? "\\" : "", *c);
			fprintf(out, "\"\n");
		}
	fclose(out);
	fluser_env_free(env);
	if (durable_read(f->sv.rec.statefd, FLCLIENT_ENV, FLCLIENT_ENV_MAX, &old, &oldlen) < 0 ||
	    oldlen != len || memcmp(old, text, len) != 0) {
		if (durable_write(f->sv.rec.statefd, FLCLIENT_ENV, text, len, 0600) < 0) {
			log_error("cannot write %s/" FLCLIENT_ENV ": %s", f->state_dir, strerror(errno));
			rc = 1;
		}
	}
	if (old != NULL) {
		OPENSSL_cleanse(old, oldlen);
		free(old);
	}
	OPENSSL_cleanse(text, len);
	free(text);
	fd = open(f->log_path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (fd < 0) {
		log_error("cannot create the client's log %s: %s", f->log_path, strerror(errno));
		rc = 1;
	} else {
		close(fd);
	}
	return rc;
}

/*
 * check_kit - docs/design/fl.md's check of the live kit, then local/ rendered. Returns 0, 2 (a
 * problem, each printed) or 1 (cannot write local/). *na gets client.crt's end.
 */
int check_kit(struct fl *f, int quiet, time_t *na)
{
	struct kit_findings *kf = calloc(1, sizeof(*kf));
	const struct kit_trust trust = {f->n.cfg.fl_kit_require_signature,
					f->n.cfg.fl_kit_root_ca_sha256};
	struct privacy_policy pp;
	json_t *doc = NULL;
	char err[1024], desc[256], date[40];
	unsigned changed = 0;
	int problems, rc = 0;

	if (kf == NULL) {
		log_error("out of memory");
		return 1;
	}
	/* the kit readable by the client's group (the client is not the node's user) */
	if (access(f->kp.live, F_OK) == 0 &&
	    kit_share(f->kp.live, f->client.gid, err, sizeof(err)) < 0)
		log_error("%s", err);
	kit_verify(f->kp.live, f->n.cfg.fl_kit_slot, time(NULL), &trust, kf);
	kit_check_site(f->kp.live, f->n.cfg.images_dir, kf);
	*na = kf->cert_not_after;
	problems = check_findings(kf);
	if (strcmp(f->n.cfg.fl_backend, "flower") == 0 && f->n.cfg.fl_client_command == NULL) {
		/* the default, startup/sub_start.sh, is NVFLARE's */
		log_error("FL_BACKEND is flower but FL_CLIENT_COMMAND is not set: give the "
			  "flower-supernode command line");
		problems++;
	}
	problems += check_privacy(f, &pp);
	if (problems > 0) {
		rc = 2;
		goto out;
	}
	doc = privacy_render(&pp);
	if (pp.preset != PRIVACY_NONE && doc == NULL) {
		log_error("out of memory");
		rc = 1;
		goto out;
	}
	if (kit_render(f->kp.live, f->n.cfg.num_gpus, f->n.cfg.memory_per_gpu_gib, doc, &changed,
		       err, sizeof(err)) < 0) {
		log_error("%s", err);
		rc = 1;
		goto out;
	}
	if (fl_client_files(f) != 0) {
		rc = 1;
		goto out;
	}
	privacy_describe(&pp, desc, sizeof(desc));
	if (changed & KIT_CHANGED_PRIVACY)
		log_info("site privacy policy now %s (local/privacy.json)", desc);
	if ((changed & (KIT_CHANGED_PRIVACY | KIT_CHANGED_RESOURCES)) != 0) {
		struct flclient_state st;
		if (flclient_load(&f->sv.rec, &st) == 0 && flclient_alive(st.pid, st.ticks))
			log_warn("local/ changed; the running FL client (pid %ld) applies it when it "
				 "next starts: flip-fl stop; flip-fl start",
				 st.pid);
	}
	if (!quiet) {
		fl_date(kf->cert_not_after, date, sizeof(date));
		printf("kit OK: %s, slot %s, client.crt valid until %s; privacy: %s\n",
		       f->kp.live, f->n.cfg.fl_kit_slot, date, desc);
	}
out:
	json_decref(doc);
	free(kf);
	return rc;
}

/* check_command - flip-fl check */
int check_command(const struct fl_opts *opt)
{
	struct fl f;
	time_t na;
	int rc;

	fl_open(&f, opt, 0, 1);
	rc = check_kit(&f, 0, &na);
	fl_close(&f);
	return rc;
}
