/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flip-fl - install and check the FL participant kit, keep the vendor FL client running.
 *
 * Subcommands (docs/design/fl.md, "flip-fl"): install-kit TARBALL, check, run (what
 * flip-fl.timer starts every 30 s), stop, start, status; and `supervise`, the
 * client's waiter, which only flip-fl itself starts (supervisor.h). The work is in
 * lib/kit.c (the kit), privacy.c (the site privacy policy), supervisor.c (the
 * client) and lib/flclient.c (its record); this file wires them to the configuration, the
 * audit trail, the log and the metrics.
 *
 * Exit codes: 0 done (also: another flip-fl held the lock, for run), 1 failed
 * this time (fork, a state file, the disk), 2 usage or configuration error or a
 * failed check: the kit, the privacy settings, a refused tarball.
 *
 * The FL_SITE_PRIVACY_* settings come from config.c (cfg.fl_privacy: the kit
 * file's, the environment overriding), as text; lib/privacy.c judges them. In a
 * test build FLIP_FL_BACKOFF_BASE (seconds)
 * replaces the 10 s backoff base, and the 10 min cap and healthy time become
 * 60 times that base.
 */
#include "lib/audit.h"
#include "lib/durable.h"
#include "lib/flclient.h"
#include "lib/fluser.h"
#include "lib/kit.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/node.h"
#include "lib/policy.h"
#include "bin/flip-fl/privacy.h"
#include "bin/flip-fl/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <pwd.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FL_BACKOFF_BASE 10.0
#define FL_BACKOFF_MAX 600.0
#define FL_HEALTHY_AFTER 600.0
#define FL_GRACE 30.0

static const char *config_path;
static int opt_json, opt_external;
static double opt_grace = FL_GRACE;

/* usage - every form of the command; exits */
static void usage(int code)
{
	fprintf(code ? stderr : stdout,
		"usage: flip-fl [-c FILE] COMMAND\n"
		"  install-kit TARBALL   install the FL participant kit (checked, then switched in;\n"
		"                        as FL_KIT_DIR's owner, the node's user; - is stdin)\n"
		"  check                 verify the kit, render local/ (resources, logging, privacy)\n"
		"  run [--external]      check, then keep the FL client running (the timer's job);\n"
		"                        --external: the client is its own unit, only check\n"
		"  stop [--grace SECS]   stop the FL client and keep it stopped (SIGKILL after\n"
		"                        SECS, default 30)\n"
		"  start                 let the FL client run again, and start it\n"
		"  status [--json]       the client, its kit, its last job and round, the privacy\n"
		"                        policy\n"
		"  --help | --version\n");
	exit(code);
}

/* the program's own context, set up once per command */
struct fl {
	struct node n;
	struct kit_paths kp;
	struct supervisor sv;	/* the client's supervision and its record */
	char state_dir[4096];
	char log_path[4096];
	int lockfd;
	struct fluser node;	/* the node's user: this process's, or FLIP_STATE_DIR's owner */
	struct fluser client;	/* FL_CLIENT_USER, checked against node */
};

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
	if (node_open(&probe, "flip-fl", config_path, 0, err, sizeof(err)) < 0) {
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
static void fl_open(struct fl *f, int audit, int client)
{
	char err[1024];

	memset(f, 0, sizeof(*f));
	f->lockfd = -1;
	f->sv.rec.statefd = -1;
	fl_identity(f);
	if (node_open(&f->n, "flip-fl", config_path, audit ? NODE_AUDIT : 0, err, sizeof(err)) <
	    0) {
		log_error("%s", err);
		exit(2);
	}
	if (f->n.cfg.fl_kit_slot == NULL) {
		log_error("FL_KIT_SLOT is not set in %s: the kit's slot, e.g. Trust_2",
			  f->n.cfg.path[0] ? f->n.cfg.path : "the environment");
		exit(2);
	}
	if (kit_paths(f->n.cfg.fl_kit_dir, f->n.cfg.fl_kit_slot, &f->kp) < 0 ||
	    snprintf(f->state_dir, sizeof(f->state_dir), "%s/fl", f->n.cfg.state_dir) >=
		    (int)sizeof(f->state_dir) ||
	    snprintf(f->log_path, sizeof(f->log_path), "%s/fl-client.log", f->n.cfg.log_dir) >=
		    (int)sizeof(f->log_path)) {
		log_error("FL_KIT_DIR, FLIP_STATE_DIR or FLIP_LOG_DIR: path too long");
		exit(2);
	}
	f->sv.rec.statefd = node_state_dirfd(&f->n, "fl");
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
	f->sv.grace = opt_grace;
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
static void fl_close(struct fl *f)
{
	if (f->lockfd >= 0)
		close(f->lockfd);
	if (f->sv.rec.statefd >= 0)
		close(f->sv.rec.statefd);
	node_close(&f->n);
}

/* fl_lock - the FL lock; 0 when another flip-fl holds it and wait is 0 */
static int fl_lock(struct fl *f, int wait)
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

/* print_lines - one log line per line of text */
static void print_lines(char *text)
{
	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		log_error("%s", l);
}

/*
 * fl_privacy - the privacy policy in force: the governance policy's [fl_privacy]
 * when it has one, else the FL_SITE_PRIVACY_* settings (kit file and environment,
 * gathered by config.c). Returns the number of problems, printed.
 */
static int fl_privacy(struct fl *f, struct privacy_policy *pp)
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

/* print_findings - problems as errors, warnings as warnings; returns the problems */
static int print_findings(const struct kit_findings *kf)
{
	for (int i = 0; i < kf->nwarnings; i++)
		log_warn("%s", kf->warning[i]);
	for (int i = 0; i < kf->nproblems; i++)
		log_error("%s", kf->problem[i]);
	return kf->nproblems;
}

/* fmt_date - a time for people, "unknown" for 0 */
static void fmt_date(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (t == 0) {
		snprintf(buf, len, "unknown");
		return;
	}
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M UTC", &tm);
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
	if (durable_read(f->sv.rec.statefd, "client.env", 1 << 16, &old, &oldlen) < 0 ||
	    oldlen != len || memcmp(old, text, len) != 0) {
		if (durable_write(f->sv.rec.statefd, "client.env", text, len, 0600) < 0) {
			log_error("cannot write %s/client.env: %s", f->state_dir, strerror(errno));
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
 * fl_check - docs/design/fl.md's check of the live kit, then local/ rendered. Returns 0, 2 (a
 * problem, each printed) or 1 (cannot write local/). *na gets client.crt's end.
 */
static int fl_check(struct fl *f, int quiet, time_t *na)
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
	problems = print_findings(kf);
	if (strcmp(f->n.cfg.fl_backend, "flower") == 0 && f->n.cfg.fl_client_command == NULL) {
		/* the default, startup/sub_start.sh, is NVFLARE's */
		log_error("FL_BACKEND is flower but FL_CLIENT_COMMAND is not set: give the "
			  "flower-supernode command line");
		problems++;
	}
	problems += fl_privacy(f, &pp);
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
		fmt_date(kf->cert_not_after, date, sizeof(date));
		printf("kit OK: %s, slot %s, client.crt valid until %s; privacy: %s\n",
		       f->kp.live, f->n.cfg.fl_kit_slot, date, desc);
	}
out:
	json_decref(doc);
	free(kf);
	return rc;
}

/* fl_metrics - FLIP_STATE_DIR/metrics/flip-fl.prom */
static void fl_metrics(struct fl *f, double t0, int rc, int check_rc, time_t na)
{
	struct flclient_state st;
	struct metrics m;
	int running = 0;

	if (flclient_load(&f->sv.rec, &st) < 0)
		memset(&st, 0, sizeof(st));
	running = st.pid > 0 && flclient_alive(st.pid, st.ticks);
	metrics_begin(&m, "flip-fl");
	metrics_add(&m, "last_run_timestamp_seconds", NULL, t0);
	metrics_add(&m, "last_run_success", NULL, rc == 0);
	metrics_add(&m, "last_run_duration_seconds", NULL, node_now() - t0);
	metrics_add(&m, "fl_kit_check_ok", NULL, check_rc == 0);
	if (na != 0)
		metrics_add(&m, "fl_client_cert_expiry_timestamp_seconds", NULL, (double)na);
	metrics_add(&m, "fl_client_running", NULL, running);
	metrics_add(&m, "fl_client_stopped", NULL, flclient_stopped(&f->sv.rec));
	metrics_add(&m, "fl_client_restarts_total", NULL, (double)st.restarts);
	metrics_add(&m, "fl_client_uptime_seconds", NULL, running ? node_now() - st.started_at : 0);
	if (st.last_exit_at > 0) {	/* -1: killed, or how it ended is not known */
		metrics_add(&m, "fl_client_last_exit_code", NULL, st.last_exit.code);
		metrics_add(&m, "fl_client_last_exit_signal", NULL, st.last_exit.signal);
		metrics_add(&m, "fl_client_last_exit_timestamp_seconds", NULL, st.last_exit_at);
	}
	metrics_commit(&m, &f->n);
}

/* exit_text - how the client ended, for the log */
static void exit_text(const struct flclient_exit *e, char *buf, size_t len)
{
	if (!e->known)
		snprintf(buf, len, "status unknown");
	else if (e->signal)
		snprintf(buf, len, "killed by signal %d", e->signal);
	else
		snprintf(buf, len, "exit status %d", e->code);
}

/* fl_supervise - one supervision step, with its audit events and log lines */
static int fl_supervise(struct fl *f, int now_please)
{
	struct supervisor_outcome o;
	char err[1024], text[64];

	if (supervisor_run(&f->sv, node_now(), now_please, &o, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 1;
	}
	if (o.exited) {
		exit_text(&o.exit, text, sizeof(text));
		log_warn("the FL client (pid %ld) ended after %.0f s, %s; next start in %.0f s "
			 "(log: %s)",
			 o.exited_pid, o.uptime, text, o.wait > 0 ? o.wait : 0, f->log_path);
		node_audit(&f->n, "fl.client.exited", NULL, NULL,
			   json_pack("{s:I, s:s, s:o, s:o, s:f, s:f}", "pid",
				     (json_int_t)o.exited_pid, "status",
				     !o.exit.known ? "unknown" : o.exit.signal ? "signal" : "exit",
				     "code",
				     o.exit.known && !o.exit.signal ? json_integer(o.exit.code)
								     : json_null(),
				     "signal", o.exit.signal ? json_integer(o.exit.signal) : json_null(),
				     "uptime_seconds", o.uptime, "backoff_seconds", o.backoff));
	}
	if (o.started) {
		log_info("started the FL client (pid %ld, restarts %ld), output in %s", o.pid,
			 o.restarts, f->log_path);
		node_audit(&f->n, "fl.client.started", NULL, NULL,
			   json_pack("{s:I, s:I, s:s}", "pid", (json_int_t)o.pid, "restarts",
				     (json_int_t)o.restarts, "slot", f->n.cfg.fl_kit_slot));
	} else if (o.stopped) {
		log_debug("the FL client is stopped (flip-fl start runs it again)");
	} else if (o.wait > 0) {
		log_debug("the FL client starts again in %.0f s", o.wait);
	}
	return 0;
}

/* fl_stop_client - stop the client (for stop and install-kit), with its audit event */
static int fl_stop_client(struct fl *f, const char *why)
{
	struct supervisor_stop r;
	char err[1024];

	if (supervisor_stop(&f->sv, node_now(), &r, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 1;
	}
	if (r.was_running) {
		log_info("stopped the FL client (pid %ld)%s", r.pid,
			 r.forced ? " with SIGKILL after the grace period" : "");
		node_audit(&f->n, "fl.client.stopped", NULL, NULL,
			   json_pack("{s:I, s:b, s:o, s:s}", "pid", (json_int_t)r.pid, "forced",
				     r.forced, "stop_script",
				     r.script_rc >= 0 ? json_integer(r.script_rc) : json_null(),
				     "reason", why));
	}
	return 0;
}

/* cmd_check - flip-fl check */
static int cmd_check(void)
{
	struct fl f;
	time_t na;
	int rc;

	fl_open(&f, 0, 1);
	rc = fl_check(&f, 0, &na);
	fl_close(&f);
	return rc;
}

/* cmd_run - flip-fl run (start: flip-fl start, which clears the stop flag first) */
static int cmd_run(int start)
{
	struct fl f;
	double t0 = node_now();
	time_t na = 0;
	int rc, check_rc;

	fl_open(&f, 1, 1);
	if (!opt_external && !fluser_can_switch()) {
		log_error("flip-fl runs as %s and cannot start the FL client as its own user %s: "
			  "under systemd the client is a unit of its own "
			  "(flip-fl-client@%s.service) and this runs flip-fl run --external; "
			  "on a host without systemd, root's crontab runs flip-fl run",
			  f.node.name, f.client.name, f.n.cfg.fl_kit_slot);
		fl_close(&f);
		return 2;
	}
	if (!fl_lock(&f, start)) {
		log_debug("another flip-fl holds the FL lock; nothing to do");
		fl_close(&f);
		return 0;
	}
	if (start && flclient_set_stopped(&f.sv.rec, 0) < 0) {
		log_error("cannot remove the stop flag in %s: %s", f.state_dir, strerror(errno));
		fl_close(&f);
		return 1;
	}
	rc = check_rc = fl_check(&f, 1, &na);
	if (rc == 0 && !opt_external)
		rc = fl_supervise(&f, start);
	fl_metrics(&f, t0, rc, check_rc, na);
	fl_close(&f);
	return rc;
}

/* cmd_stop - flip-fl stop: the flag first, so that no run starts it meanwhile */
static int cmd_stop(void)
{
	struct fl f;
	double t0 = node_now();
	int rc;

	fl_open(&f, 1, 1);
	fl_lock(&f, 1);
	if (flclient_set_stopped(&f.sv.rec, 1) < 0) {
		log_error("cannot set the stop flag in %s: %s", f.state_dir, strerror(errno));
		fl_close(&f);
		return 1;
	}
	rc = fl_stop_client(&f, "flip-fl stop");
	if (rc == 0)
		printf("the FL client is stopped, and stays stopped until flip-fl start\n");
	fl_metrics(&f, t0, rc, 0, 0);
	fl_close(&f);
	return rc;
}

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
static int install_owner_check(const char *tarball)
{
	struct node n;
	struct stat kd;
	char err[1024];

	if (node_open(&n, "flip-fl", config_path, 0, err, sizeof(err)) < 0) {
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

/* cmd_install - flip-fl install-kit: stage, verify, render, stop, switch, restart */
static int cmd_install(const char *tarball)
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

	if (install_owner_check(tarball) != 0)
		return 2;
	fl_open(&f, 1, 1);
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
	if ((n = print_findings(kf)) > 0) {
		rc = install_refused(&f, st.fingerprint, "verify", n);
		goto out;
	}
	/* and arrive with its local/ rendered: never live without its privacy.json */
	if ((n = fl_privacy(&f, &pp)) > 0) {
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
	if (was_running && (rc = fl_stop_client(&f, "kit replaced")) != 0)
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
		rc = fl_supervise(&f, 1);
out:
	kit_stage_discard(&st);
	json_decref(doc);
	free(kf);
	fl_close(&f);
	return rc;
}

/* fmt_duration - 3d 4h, 5m 2s */
static void fmt_duration(double s, char *buf, size_t len)
{
	long t = (long)s;

	if (t >= 86400)
		snprintf(buf, len, "%ldd %ldh", t / 86400, t % 86400 / 3600);
	else if (t >= 3600)
		snprintf(buf, len, "%ldh %ldm", t / 3600, t % 3600 / 60);
	else if (t >= 60)
		snprintf(buf, len, "%ldm %lds", t / 60, t % 60);
	else
		snprintf(buf, len, "%lds", t);
}

/* cmd_status - flip-fl status [--json] */
static int cmd_status(void)
{
	struct fl f;
	json_t *doc, *kit, *last, *prog;
	char desc[256], path[4200], date[40], up[32];
	time_t na = 0;
	double now = node_now();
	int installed;

	fl_open(&f, 0, 0);
	doc = flclient_status(&f.sv.rec, now);
	installed = kit_cert_expiry(f.kp.live, &na) == 0 || access(f.kp.startup, F_OK) == 0;
	snprintf(path, sizeof(path), "%s/local/privacy.json", f.kp.live);
	{
		json_error_t jerr;
		json_t *pj = json_load_file(path, 0, &jerr);
		if (pj == NULL)
			snprintf(desc, sizeof(desc), access(path, F_OK) == 0 ? "unreadable" : "none");
		else if (privacy_describe_file(pj, desc, sizeof(desc)) < 0)
			snprintf(desc, sizeof(desc), "unrecognised local/privacy.json");
		json_decref(pj);
	}
	kit = json_pack("{s:s, s:s, s:b, s:o, s:o}", "slot", f.n.cfg.fl_kit_slot, "path", f.kp.live,
			"installed", installed, "cert_not_after",
			na ? json_integer((json_int_t)na) : json_null(), "cert_days_left",
			na ? json_integer((json_int_t)((na - (time_t)now) / 86400)) : json_null());
	if (doc == NULL || kit == NULL) {
		log_error("out of memory");
		fl_close(&f);
		return 1;
	}
	json_object_set_new(doc, "kit", kit);
	json_object_set_new(doc, "privacy", json_string(desc));
	if (opt_json) {
		char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (text != NULL)
			printf("%s\n", text);
		free(text);
		json_decref(doc);
		fl_close(&f);
		return 0;
	}
	if (json_is_true(json_object_get(doc, "running"))) {
		fmt_duration(json_number_value(json_object_get(doc, "uptime_seconds")), up, sizeof(up));
		printf("FL client:  running, pid %lld, up %s, %lld restart%s\n",
		       (long long)json_integer_value(json_object_get(doc, "pid")), up,
		       (long long)json_integer_value(json_object_get(doc, "restarts")),
		       json_integer_value(json_object_get(doc, "restarts")) == 1 ? "" : "s");
	} else if (json_is_true(json_object_get(doc, "stopped"))) {
		printf("FL client:  stopped (flip-fl start runs it again)\n");
	} else if (json_is_number(json_object_get(doc, "next_start_at"))) {
		fmt_duration(json_number_value(json_object_get(doc, "next_start_at")) - now, up,
			     sizeof(up));
		printf("FL client:  not running, next start in %s (backoff), %lld restarts\n", up,
		       (long long)json_integer_value(json_object_get(doc, "restarts")));
	} else {
		printf("FL client:  not running (flip-fl run starts it)\n");
	}
	last = json_object_get(doc, "last_exit");
	if (json_is_object(last)) {
		fmt_date((time_t)json_number_value(json_object_get(last, "at")), date, sizeof(date));
		printf("last exit:  %s at %s\n", json_string_value(json_object_get(last, "status")),
		       date);
	}
	fmt_date(na, date, sizeof(date));
	if (installed)
		printf("kit:        slot %s, client.crt valid until %s\n", f.n.cfg.fl_kit_slot, date);
	else
		printf("kit:        slot %s, not installed (flip-fl install-kit TARBALL)\n",
		       f.n.cfg.fl_kit_slot);
	prog = json_object_get(doc, "progress");
	if (json_is_string(json_object_get(prog, "job"))) {
		printf("job:        %s", json_string_value(json_object_get(prog, "job")));
		if (json_is_integer(json_object_get(prog, "round")))
			printf(", round %lld %s",
			       (long long)json_integer_value(json_object_get(prog, "round")),
			       json_string_value(json_object_get(prog, "round_state")));
		printf("%s\n", json_is_true(json_object_get(prog, "aborted")) ? ", aborted" : "");
	} else {
		printf("job:        none seen in %s\n", f.log_path);
	}
	printf("privacy:    %s\n", desc);
	json_decref(doc);
	fl_close(&f);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},     {"external", no_argument, NULL, 'e'},
		{"grace", required_argument, NULL, 'g'}, {"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},  {NULL, 0, NULL, 0},
	};
	const char *cmd;
	char *end;
	int c;

	log_init("flip-fl", LOG_INFO);
	/* the waiter: flip-fl supervise STATE_DIR -- ARGV..., started by flip-fl only */
	if (argc >= 5 && strcmp(argv[1], "supervise") == 0 && strcmp(argv[3], "--") == 0)
		return supervisor_waiter(argv[2], argv + 4);
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config_path = optarg; break;
		case 'j': opt_json = 1; break;
		case 'e': opt_external = 1; break;
		case 'g':
			opt_grace = strtod(optarg, &end);
			if (*end || end == optarg || !(opt_grace >= 0 && opt_grace <= 3600))
				usage(2);
			break;
		case 'h': usage(0); break;
		case 'V': printf("flip-fl %s\n", FLIP_VERSION); return 0;
		default: usage(2);
		}
	}
	if (optind >= argc)
		usage(2);
	cmd = argv[optind++];
	if (strcmp(cmd, "install-kit") == 0 && optind + 1 == argc)
		return cmd_install(argv[optind]);
	if (optind != argc)
		usage(2);
	if (strcmp(cmd, "check") == 0)
		return cmd_check();
	if (strcmp(cmd, "run") == 0)
		return cmd_run(0);
	if (strcmp(cmd, "start") == 0)
		return cmd_run(1);
	if (strcmp(cmd, "stop") == 0)
		return cmd_stop();
	if (strcmp(cmd, "status") == 0)
		return cmd_status();
	usage(2);
	return 2;
}
