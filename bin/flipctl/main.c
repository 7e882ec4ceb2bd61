/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flipctl - the operator's tool: status, jobs, audit trail, set-up checks.
 *
 * Each command is a short function over lib/ (jobctl, status, audit, heartbeat);
 * output is for people first (aligned columns), --json for scripts. Exit codes:
 * 0 done, 1 the thing checked is not right (a broken audit chain, a failed doctor
 * check, a job that cannot be moved), 2 usage or configuration error.
 */
#include "lib/audit.h"
#include "bin/flipctl/bundle.h"
#include "lib/digest.h"
#include "bin/flipctl/doctor.h"
#include "lib/durable.h"
#include "lib/jobfile.h"
#include "lib/envelope.h"
#include "lib/handoff.h"
#include "lib/heartbeat.h"
#include "lib/hub.h"
#include "bin/flipctl/jobctl.h"
#include "lib/kit.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/node.h"
#include "lib/policy.h"
#include "lib/statedir.h"
#include "bin/flipctl/status.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

static const char *config_path;

static void usage(int code)
{
	fprintf(code ? stderr : stdout,
		"usage: flipctl [-c FILE] COMMAND [ARGS]\n"
		"  init [--user USER] [--metrics-group GROUP]\n"
		"                          create the spool, state and log directories and the\n"
		"                          de-identification key; check the config file; let\n"
		"                          GROUP (default flip-metrics) read the metrics\n"
		"  status [--json]         hub, spool, last runs, at a glance\n"
		"  ls [STATE] [--json]     jobs, one line each (STATE: new cur out done failed hold)\n"
		"  show ID                 a job's task, result, upload state and log\n"
		"  rerun ID                run a job again (see flipctl(8))\n"
		"  hold ID | release ID    keep a waiting job from running / let it run\n"
		"  purge [--older-than DAYS] [--images]\n"
		"                          remove old done/ jobs; --images: image copies handed\n"
		"                          to training and unused for IMAGE_CACHE_RETENTION_HOURS\n"
		"  audit verify [FILE]     check the audit trail's hash chain\n"
		"  audit tail [-n N] [-f]  the last audit events, readably\n"
		"  audit rotate            start a new audit file chained to the old one\n"
		"  doctor                  check the set-up, one line per check\n"
		"  policy check            check ACCESS_POLICY_FILE: effective floor, one line per rule\n"
		"  key-hash                the SHA-256 of TRUST_API_KEY the hub must hold\n"
		"  bundle [-o FILE] [--with-fl-client-log]\n"
		"                          a support tarball without secrets, payloads or results\n"
		"  --help | --version\n");
	exit(code);
}

static void die_config(const char *err)
{
	fprintf(stderr, "flipctl: %s\n", err);
	exit(2);
}

static void open_node(struct node *n, unsigned flags)
{
	char err[1024];

	if (node_open(n, "flipctl", config_path, flags, err, sizeof(err)) < 0)
		die_config(err);
}

static void print_json(json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (s) {
		puts(s);
		free(s);
	}
}

static void fmt_age(double secs, char *out, size_t len)
{
	if (secs < 120)
		snprintf(out, len, "%.0fs", secs);
	else if (secs < 7200)
		snprintf(out, len, "%.0fm", secs / 60);
	else if (secs < 172800)
		snprintf(out, len, "%.0fh", secs / 3600);
	else
		snprintf(out, len, "%.0fd", secs / 86400);
}

/* mkdir_parents - create the missing parents of path (0755: they are not ours to hide) */
static int mkdir_parents(const char *path)
{
	char buf[4096];

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -1;
	for (char *p = buf + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = 0;
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return 0;
}

/*
 * init_metrics_group - let the group read FLIP_STATE_DIR/metrics and nothing else:
 * the state directory 0710 (the group may pass through, not list), metrics/ 02750
 * (listed; setgid, so every .prom file written later belongs to the group) and its
 * files 0640. Everything else in the state directory stays the node user's alone.
 * Without the group the directories stay 0700. Returns 0, or 1 after a message.
 */
static int init_metrics_group(const char *state_dir, const char *group, uid_t uid, int as_root)
{
	struct group *gr = getgrnam(group);
	uid_t owner = as_root ? uid : (uid_t)-1;
	int sfd, mfd, rc = 0;

	if (gr == NULL) {
		printf("no group %s: the metrics are readable by the node's user only (create it "
		       "with addgroup --system %s and run init again)\n", group, group);
		return 0;
	}
	sfd = statedir_open(state_dir);
	if (sfd < 0 || fchown(sfd, owner, gr->gr_gid) < 0 || fchmod(sfd, 0710) < 0 ||
	    durable_mkdir(sfd, STATEDIR_METRICS, 0700) < 0) {
		fprintf(stderr, "flipctl: cannot give group %s passage through %s: %s\n", group,
			state_dir, strerror(errno));
		if (sfd >= 0)
			close(sfd);
		return 1;
	}
	mfd = openat(sfd, STATEDIR_METRICS, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (mfd < 0 || fchown(mfd, owner, gr->gr_gid) < 0 || fchmod(mfd, 02750) < 0) {
		fprintf(stderr, "flipctl: cannot give group %s %s/" STATEDIR_METRICS ": %s\n", group, state_dir,
			strerror(errno));
		rc = 1;
	}
	/* files written before the group had the directory */
	DIR *d = mfd >= 0 ? fdopendir(dup(mfd)) : NULL;
	for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
		size_t len = strlen(e->d_name);
		if (e->d_type != DT_REG || len < 6 || strcmp(e->d_name + len - 5, ".prom") != 0)
			continue;
		if (fchownat(mfd, e->d_name, owner, gr->gr_gid, AT_SYMLINK_NOFOLLOW) < 0 ||
		    fchmodat(mfd, e->d_name, 0640, 0) < 0) {
			fprintf(stderr, "flipctl: cannot give group %s %s/" STATEDIR_METRICS "/%s: %s\n", group,
				state_dir, e->d_name, strerror(errno));
			rc = 1;
		}
	}
	if (d)
		closedir(d);
	if (mfd >= 0)
		close(mfd);
	close(sfd);
	if (rc == 0)
		printf("metrics %s/" STATEDIR_METRICS ": readable by group %s\n", state_dir, group);
	return rc;
}

/* init - directories with owner and modes, the de-identification key */
static int cmd_init(int argc, char **argv)
{
	struct node n;
	const char *user = NULL, *metrics_group = "flip-metrics";
	uid_t uid = geteuid();
	gid_t gid = getegid();

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--user") == 0 && i + 1 < argc)
			user = argv[++i];
		else if (strcmp(argv[i], "--metrics-group") == 0 && i + 1 < argc)
			metrics_group = argv[++i];
		else
			usage(2);
	}
	if (user == NULL && geteuid() == 0 && getpwnam("flip") != NULL)
		user = "flip";
	if (user) {
		struct passwd *pw = getpwnam(user);
		if (pw == NULL) {
			fprintf(stderr, "flipctl: no user '%s' on this host (create it, or run as "
				"the node's user)\n", user);
			return 2;
		}
		uid = pw->pw_uid;
		gid = pw->pw_gid;
	}
	open_node(&n, 0);
	const char *dirs[] = {n.cfg.spool_dir, n.cfg.state_dir, n.cfg.log_dir};
	static const char *const states[] = {"tmp", "new", "cur", "out", "done", "failed", "hold"};
	int rc = 0;
	for (size_t i = 0; i < 3; i++) {
		if ((mkdir_parents(dirs[i]) < 0 || mkdir(dirs[i], 0700) < 0) && errno != EEXIST) {
			fprintf(stderr, "flipctl: cannot create %s: %s\n", dirs[i], strerror(errno));
			rc = 1;
			continue;
		}
		if (chmod(dirs[i], 0700) < 0 || (geteuid() == 0 && chown(dirs[i], uid, gid) < 0)) {
			fprintf(stderr, "flipctl: cannot set owner and mode 0700 on %s: %s\n", dirs[i],
				strerror(errno));
			rc = 1;
		}
	}
	/* the net's image folder, where flip-serve hands studies to the FL client: the
	 * node's, in the client's group (FL_CLIENT_USER's), which reads there; its
	 * upload/ is where the client writes (fl.md, "The FL client's own user") */
	char net[PATH_MAX], up[PATH_MAX];
	struct passwd *cpw = getpwnam(n.cfg.fl_client_user);
	gid_t cgid = cpw ? cpw->pw_gid : gid;
	if (cpw == NULL)
		fprintf(stderr, "flipctl: warning: FL_CLIENT_USER %s does not exist: the image "
			"folders stay the node's group until it does (useradd --system "
			"--user-group %s; then run flipctl init again)\n",
			n.cfg.fl_client_user, n.cfg.fl_client_user);
	if (n.cfg.images_dir &&
	    snprintf(net, sizeof(net), "%s/%s", n.cfg.images_dir, KIT_NET) < (int)sizeof(net) &&
	    snprintf(up, sizeof(up), "%s/upload", net) < (int)sizeof(up)) {
		const char *img[] = {n.cfg.images_dir, net, up};
		const mode_t modes[] = {0750, 0750, 02770};
		for (size_t i = 0; i < 3; i++) {
			if ((mkdir_parents(img[i]) < 0 || mkdir(img[i], 0750) < 0) && errno != EEXIST) {
				fprintf(stderr, "flipctl: cannot create %s: %s\n", img[i],
					strerror(errno));
				rc = 1;
				break;
			}
			if ((geteuid() == 0 && lchown(img[i], uid, cgid) < 0) ||
			    (geteuid() != 0 && cpw && lchown(img[i], (uid_t)-1, cgid) < 0) ||
			    chmod(img[i], modes[i]) < 0) {
				fprintf(stderr, "flipctl: cannot give %s to the node's user and the FL "
					"client's group: %s\n", img[i], strerror(errno));
				rc = 1;
			}
		}
	}
	/* FL_KIT_DIR, the node's user's: flip-fl install-kit runs as that user (never as
	 * root, whose kit the units could not read) and creates net-1/services/<slot> */
	if ((mkdir_parents(n.cfg.fl_kit_dir) < 0 || mkdir(n.cfg.fl_kit_dir, 0750) < 0) &&
	    errno != EEXIST) {
		fprintf(stderr, "flipctl: cannot create %s: %s\n", n.cfg.fl_kit_dir, strerror(errno));
		rc = 1;
	} else if (geteuid() == 0 && lchown(n.cfg.fl_kit_dir, uid, gid) < 0) {
		fprintf(stderr, "flipctl: cannot give %s to the node's user: %s\n", n.cfg.fl_kit_dir,
			strerror(errno));
		rc = 1;
	}
	int sfd = open(n.cfg.spool_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	for (size_t i = 0; sfd >= 0 && i < sizeof(states) / sizeof(states[0]); i++) {
		if (durable_mkdir(sfd, states[i], 0700) < 0 ||
		    (geteuid() == 0 && fchownat(sfd, states[i], uid, gid, AT_SYMLINK_NOFOLLOW) < 0)) {
			fprintf(stderr, "flipctl: cannot create %s/%s: %s\n", n.cfg.spool_dir,
				states[i], strerror(errno));
			rc = 1;
		}
	}
	if (sfd >= 0)
		close(sfd);
	/* the de-identification key: made once, never replaced (UID mappings depend on it) */
	int kfd = statedir_open(n.cfg.state_dir), made;
	if (kfd >= 0 &&
	    (made = statedir_deid_key_create(kfd, geteuid() == 0 ? uid : (uid_t)-1, gid)) < 0) {
		fprintf(stderr, "flipctl: cannot create %s/" STATEDIR_DEID_KEY ": %s\n",
			n.cfg.state_dir, strerror(errno));
		rc = 1;
	} else if (kfd >= 0 && made) {
		printf("created the de-identification key %s/" STATEDIR_DEID_KEY "\n",
		       n.cfg.state_dir);
	}
	if (kfd >= 0)
		close(kfd);
	/* after the 0700 above, so that running init again keeps node_exporter's access */
	rc |= init_metrics_group(n.cfg.state_dir, metrics_group, uid, geteuid() == 0);
	if (rc == 0)
		printf("spool %s, state %s, log %s: ready (mode 0700%s%s)\n", n.cfg.spool_dir,
		       n.cfg.state_dir, n.cfg.log_dir, user ? ", owner " : "", user ? user : "");
	node_close(&n);
	return rc;
}

/* status - one screen */
static int cmd_status(int argc, char **argv)
{
	struct node n;
	int as_json = argc == 2 && strcmp(argv[1], "--json") == 0;

	if (argc > 2 || (argc == 2 && !as_json))
		usage(2);
	open_node(&n, NODE_SPOOL);
	json_t *s = status_collect(&n);
	if (as_json) {
		print_json(s);
	} else {
		json_t *hub = json_object_get(s, "hub"), *reply = json_object_get(hub, "reply");
		if (json_is_object(hub)) {
			json_t *fpm = json_object_get(hub, "fingerprint_match");
			printf("hub        %s (%s), last heartbeat answer %s, hub version %s, AES key "
			       "%s\n",
			       json_string_value(json_object_get(reply, "trust_name")) ?: "?",
			       json_string_value(json_object_get(reply, "trust_id")) ?: "?",
			       json_string_value(json_object_get(hub, "received_at")) ?: "?",
			       json_string_value(json_object_get(reply, "hub_version")) ?: "unknown",
			       json_integer_value(fpm) == 1 ? "matches the hub's"
			       : json_integer_value(fpm) == 0 ? "DOES NOT MATCH the hub's (stale kit)"
							       : "not compared (hub did not say)");
		} else {
			printf("hub        no heartbeat answer yet (is flip-poll.timer running?)\n");
		}
		printf("spool      %s\n", n.cfg.spool_dir);
		const char *key;
		json_t *v;
		json_object_foreach(json_object_get(s, "spool"), key, v) {
			char age[16] = "";
			json_int_t jobs = json_integer_value(json_object_get(v, "jobs"));
			if (jobs)
				fmt_age(json_real_value(json_object_get(v, "oldest_age_seconds")), age,
					sizeof(age));
			printf("  %-8s %6lld%s%s\n", key, (long long)jobs, jobs ? "  oldest " : "", age);
		}
		json_object_foreach(json_object_get(s, "disk"), key, v) {
			if (!json_is_true(json_object_get(v, "low")))
				continue;	/* quiet when healthy */
			printf("disk       %s %s: %.0f KiB free of %.0f KiB: FULL, results cannot be "
			       "written; free space there (jobs wait and resume by themselves)\n", key,
			       json_string_value(json_object_get(v, "path")),
			       json_real_value(json_object_get(v, "free_bytes")) / 1024.0,
			       json_real_value(json_object_get(v, "total_bytes")) / 1024.0);
		}
		json_object_foreach(json_object_get(s, "programs"), key, v) {
			if (!json_is_object(v)) {
				printf("%-11s never ran\n", key);
				continue;
			}
			char age[16];
			fmt_age(difftime(time(NULL), (time_t)json_real_value(json_object_get(v, "last_run"))),
				age, sizeof(age));
			printf("%-11s last run %s ago, %s\n", key, age,
			       json_is_true(json_object_get(v, "success")) ? "ok" : "FAILED");
		}
		json_t *imaging = json_object_get(s, "imaging"), *proj;
		size_t k;
		if (json_array_size(imaging) == 0)
			printf("imaging    no imaging project\n");
		json_array_foreach(imaging, k, proj) {
			json_t *c = json_object_get(proj, "counts");
			printf("imaging    %s: %lld successful, %lld processing, %lld queued, %lld failed, "
			       "%lld queue_failed (%lld burned_in_annotation)\n",
			       json_string_value(json_object_get(proj, "id")),
			       (long long)json_integer_value(json_object_get(c, "successful")),
			       (long long)json_integer_value(json_object_get(c, "processing")),
			       (long long)json_integer_value(json_object_get(c, "queued")),
			       (long long)json_integer_value(json_object_get(c, "failed")),
			       (long long)json_integer_value(json_object_get(c, "queue_failed")),
			       (long long)json_integer_value(json_object_get(c, "burned_in_annotation")));
		}
		json_t *fl = json_object_get(s, "fl_client");
		if (!json_is_object(fl))
			printf("fl-client  not set up on this node (flip-fl install-kit, then the timer)\n");
		else if (json_is_true(json_object_get(fl, "running")))
			printf("fl-client  running, pid %lld, up %.0f s, %lld restart%s\n",
			       (long long)json_integer_value(json_object_get(fl, "pid")),
			       json_real_value(json_object_get(fl, "uptime_seconds")),
			       (long long)json_integer_value(json_object_get(fl, "restarts")),
			       json_integer_value(json_object_get(fl, "restarts")) == 1 ? "" : "s");
		else
			printf("fl-client  %s (flip-fl status for details)\n",
			       json_is_true(json_object_get(fl, "stopped")) ? "stopped by the operator"
									 : "NOT RUNNING");
	}
	json_decref(s);
	node_close(&n);
	return 0;
}

/* ls - jobs one line each */
static int cmd_ls(int argc, char **argv)
{
	struct node n;
	int as_json = 0, only = -1;
	json_t *all = json_array();

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			as_json = 1;
		else if ((only = spool_state_parse(argv[i])) < 0 || only == SPOOL_TMP)
			usage(2);
	}
	open_node(&n, NODE_SPOOL);
	for (int st = SPOOL_NEW; st < SPOOL_NSTATES; st++) {
		char **names;
		size_t cnt;
		if ((only >= 0 && st != only) || spool_list(&n.sp, (enum spool_state)st, &names, &cnt) < 0)
			continue;
		for (size_t i = 0; i < cnt; i++) {
			struct job job;
			if (spool_job_open(&n.sp, (enum spool_state)st, names[i], &job) < 0)
				continue;
			json_array_append_new(all, status_job(&n, &job));
			spool_job_close(&job);
		}
		spool_list_free(names, cnt);
	}
	if (as_json) {
		print_json(all);
	} else {
		size_t i;
		json_t *j;
		if (json_array_size(all))
			printf("%-16s %-36s %-19s %-6s %5s %4s %s\n", "SEQ", "TASK", "TYPE", "STATE",
			       "AGE", "TRY", "OUTCOME");
		json_array_foreach(all, i, j) {
			char age[16];
			fmt_age(json_real_value(json_object_get(j, "age_seconds")), age, sizeof(age));
			printf("%016lld %-36s %-19s %-6s %5s %4lld %s",
			       (long long)json_integer_value(json_object_get(j, "seq")),
			       json_string_value(json_object_get(j, "task_id")),
			       json_string_value(json_object_get(j, "task_type")),
			       json_string_value(json_object_get(j, "state")), age,
			       (long long)json_integer_value(json_object_get(j, "attempts")),
			       json_string_value(json_object_get(j, "outcome")));
			if (json_integer_value(json_object_get(j, "hub_status")) > 0)
				printf(" (hub %lld)",
				       (long long)json_integer_value(json_object_get(j, "hub_status")));
			putchar('\n');
		}
	}
	json_decref(all);
	node_close(&n);
	return 0;
}

/* redact - replace SQL in a payload with its size and fingerprint (output not a terminal) */
static void redact(json_t *payload)
{
	const char *key;
	json_t *v;
	char fp[65], text[128];

	json_object_foreach(payload, key, v) {
		if (strcmp(key, "query") != 0 || !json_is_string(v))
			continue;
		digest_query(json_string_value(v), fp);
		snprintf(text, sizeof(text), "<SQL withheld: %zu characters, fingerprint %.12s; "
			 "run flipctl show on a terminal to see it>", json_string_length(v), fp);
		json_object_set_new(payload, key, json_string(text));
	}
}

/* show - a job, whole */
static int cmd_show(int argc, char **argv)
{
	struct node n;
	struct job job;
	char err[512];
	static const char *const files[] = {JOBFILE_RESULT, JOBFILE_COHORT, JOBFILE_REPORT,
					    JOBFILE_EXEC};

	if (argc != 2)
		usage(2);
	open_node(&n, NODE_SPOOL);
	if (jobctl_find(&n.sp, argv[1], &job, err, sizeof(err)) < 0) {
		fprintf(stderr, "flipctl: %s\n", err);
		node_close(&n);
		return 1;
	}
	printf("job %s in %s/\n", job.name, spool_state_name(job.state));
	json_t *task = spool_job_read_json(&job, JOBFILE_TASK, JOBFILE_TASK_CAP);
	if (task && !isatty(STDOUT_FILENO))
		redact(json_object_get(task, "payload"));
	printf("--- " JOBFILE_TASK "\n");
	if (task)
		print_json(task);
	json_decref(task);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		/* the largest cap of any job file: show whatever is there */
		json_t *v = spool_job_read_json(&job, files[i], JOBFILE_TASK_CAP);
		if (v) {
			printf("--- %s\n", files[i]);
			print_json(v);
			json_decref(v);
		}
	}
	char *log;
	size_t len;
	if (spool_job_read(&job, JOBFILE_LOG, JOBFILE_LOG_CAP, &log, &len) == 0) {
		printf("--- log\n%s", log);
		free(log);
	}
	spool_job_close(&job);
	node_close(&n);
	return 0;
}

/* a job action: hold, release, rerun */
static int cmd_job(int argc, char **argv, int (*action)(struct node *, struct job *, char *, size_t),
		   const char *done)
{
	struct node n;
	struct job job;
	char err[512];
	int rc = 0;

	if (argc != 2)
		usage(2);
	open_node(&n, NODE_SPOOL | NODE_AUDIT);
	if (jobctl_find(&n.sp, argv[1], &job, err, sizeof(err)) < 0 ||
	    action(&n, &job, err, sizeof(err)) < 0) {
		fprintf(stderr, "flipctl: %s\n", err);
		rc = 1;
	} else {
		printf("%s: %s (now in %s/)\n", job.name, done, spool_state_name(job.state));
	}
	if (job.dirfd >= 0 && rc == 0)
		spool_job_close(&job);
	node_close(&n);
	return rc;
}

/* purge_images - image copies handed to training code and unused for the retention */
static int purge_images(struct node *n)
{
	struct handoff_sweep sw;

	if (handoff_sweep(&n->cfg, time(NULL), &sw) < 0) {
		fprintf(stderr, "flipctl: cannot sweep %s: %s\n", n->cfg.images_dir,
			errno == ELOOP ? "it holds, or is inside, FLIP_STATE_DIR (the project "
					 "store): fix BASE_IMAGES_DOWNLOAD_DIR"
				       : strerror(errno));
		return 1;
	}
	node_audit(n, "operator.purge_images", NULL, NULL,
		   json_pack("{s:I,s:I,s:I,s:I}", "removed", (json_int_t)sw.removed, "kept",
			     (json_int_t)sw.kept, "skipped", (json_int_t)sw.skipped, "errors",
			     (json_int_t)sw.errors));
	printf("removed %ld image cop%s unused for %ld hours from %s (%ld kept, %ld not ours "
	       "left alone)\n", sw.removed, sw.removed == 1 ? "y" : "ies",
	       n->cfg.image_retention_hours, n->cfg.images_dir, sw.kept, sw.skipped);
	return sw.errors ? 1 : 0;
}

/* purge - remove old done/ jobs, and with --images stale image copies */
static int cmd_purge(int argc, char **argv)
{
	struct node n;
	long days = -1;
	int removed, images = 0, rc = 0;
	char *end;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--older-than") == 0 && i + 1 < argc) {
			days = strtol(argv[++i], &end, 10);
			if (*end || days < 0)
				usage(2);
		} else if (strcmp(argv[i], "--images") == 0) {
			images = 1;
		} else {
			usage(2);
		}
	}
	open_node(&n, NODE_SPOOL | NODE_AUDIT);
	if (days < 0)
		days = n.cfg.done_retention_days;
	if (jobctl_purge(&n, days, &removed) < 0) {
		fprintf(stderr, "flipctl: cannot purge %s/done: %s\n", n.cfg.spool_dir, strerror(errno));
		node_close(&n);
		return 1;
	}
	printf("removed %d job%s older than %ld day%s from done/\n", removed, removed == 1 ? "" : "s",
	       days, days == 1 ? "" : "s");
	if (images)
		rc = purge_images(&n);
	node_close(&n);
	return rc;
}

static void audit_print_line(const char *line)
{
	json_t *v = json_loads(line, 0, NULL);
	if (!json_is_object(v)) {
		printf("(unreadable line)\n");
		json_decref(v);
		return;
	}
	char *detail = json_dumps(json_object_get(v, "detail"), JSON_COMPACT | JSON_ENCODE_ANY);
	printf("%s %-11s %-20s %-36s %-19s %s\n", json_string_value(json_object_get(v, "ts")) ?: "?",
	       json_string_value(json_object_get(v, "prog")) ?: "?",
	       json_string_value(json_object_get(v, "event")) ?: "?",
	       json_string_value(json_object_get(v, "task_id")) ?: "-",
	       json_string_value(json_object_get(v, "task_type")) ?: "-", detail ? detail : "");
	free(detail);
	json_decref(v);
}

/* audit - verify, tail, rotate */
static int cmd_audit(int argc, char **argv)
{
	struct node n;
	char path[4096];

	if (argc < 2)
		usage(2);
	open_node(&n, 0);
	snprintf(path, sizeof(path), "%s/audit.log", n.cfg.log_dir);
	if (strcmp(argv[1], "verify") == 0) {
		struct audit_verdict v;
		const char *file = argc > 2 ? argv[2] : path;
		int rc = audit_verify(file, &v);
		if (argc == 2) {	/* the live trail: when it was last checked, for alerting */
			struct metrics m;
			metrics_begin(&m, "flipctl-audit");
			metrics_add(&m, "audit_chain_last_verified_timestamp_seconds", NULL,
				    node_now());
			metrics_add(&m, "audit_chain_intact", NULL, rc == 0);
			metrics_add(&m, "audit_chain_lines", NULL, rc == 0 ? (double)v.lines : 0);
			metrics_commit(&m, &n);
		}
		node_close(&n);
		if (rc < 0) {
			fprintf(stderr, "flipctl: cannot read %s: %s\n", file, strerror(errno));
			return 1;
		}
		if (rc == 0) {
			printf("%s: %ld lines, hash chain intact (last hash %.16s...)\n", file, v.lines,
			       v.last_hash);
			return 0;
		}
		printf("%s: chain BROKEN at line %ld: %s (the file was edited, truncated or lines "
		       "were removed; keep a copy for the investigation)\n", file, v.bad_line, v.reason);
		return 1;
	}
	if (strcmp(argv[1], "rotate") == 0) {
		char err[512];
		int rc = audit_rotate(n.cfg.log_dir, err, sizeof(err));
		if (rc < 0)
			fprintf(stderr, "flipctl: %s\n", err);
		node_close(&n);
		return rc < 0;
	}
	if (strcmp(argv[1], "tail") != 0)
		usage(2);
	long lines = 20;
	int follow = 0;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
			lines = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "-f") == 0)
			follow = 1;
		else
			usage(2);
	}
	FILE *f = fopen(path, "re");
	node_close(&n);
	if (f == NULL) {
		fprintf(stderr, "flipctl: cannot read %s: %s\n", path, strerror(errno));
		return 1;
	}
	/* keep the last `lines` lines in a ring, then follow */
	char **ring = calloc((size_t)(lines > 0 ? lines : 1), sizeof(*ring));
	char *line = NULL;
	size_t cap = 0;
	long count = 0;
	while (ring && getline(&line, &cap, f) > 0) {
		long slot = count++ % (lines > 0 ? lines : 1);
		free(ring[slot]);
		ring[slot] = strdup(line);
	}
	for (long i = count > lines ? count - lines : 0; ring && lines > 0 && i < count; i++)
		audit_print_line(ring[i % lines]);
	for (long i = 0; ring && i < (lines > 0 ? lines : 1); i++)
		free(ring[i]);
	free(ring);
	fflush(stdout);
	while (follow) {
		clearerr(f);
		while (getline(&line, &cap, f) > 0)
			audit_print_line(line);
		fflush(stdout);
		sleep(1);
	}
	free(line);
	fclose(f);
	return 0;
}

/* doctor - every check on one line, with what to do when it fails (lib/doctor.h) */
static int cmd_doctor(void)
{
	struct doctor d = {stdout, 0};
	struct node n;
	char err[1024];

	if (node_open(&n, "flipctl", config_path, NODE_NEED_HUB, err, sizeof(err)) < 0) {
		doctor_say(&d, DOCTOR_FAIL, "config", "%s", err);
		return 1;
	}
	doctor_local(&d, &n);
	doctor_hub(&d, &n);
	doctor_omop(&d, &n.cfg);
	doctor_pacs(&d, &n.cfg);
	doctor_fl(&d, &n.cfg);
	node_close(&n);
	return d.failed ? 1 : 0;
}

/* policy check - ACCESS_POLICY_FILE loaded as a job would; the floor, one line per rule */
static int cmd_policy(int argc, char **argv)
{
	struct node n;
	struct policy *p;
	char err[1024];
	json_t *d, *r;
	size_t i;

	if (argc != 2 || strcmp(argv[1], "check") != 0)
		usage(2);
	open_node(&n, 0);
	long floor = n.cfg.cohort_threshold;
	if (n.cfg.access_policy_file == NULL) {
		printf("no policy file configured; effective floor %ld (COHORT_QUERY_THRESHOLD)\n", floor);
		node_close(&n);
		return 0;
	}
	if (policy_load(n.cfg.access_policy_file, floor, &p, err, sizeof(err)) != 0) {
		fprintf(stderr, "flipctl: %s\n", err);
		node_close(&n);
		return 1;
	}
	d = policy_describe(p, floor); /* jansson's getters take NULL (out of memory) */
	printf("%s: valid; effective floor %lld (COHORT_QUERY_THRESHOLD %ld)%s\n",
	       n.cfg.access_policy_file, json_integer_value(json_object_get(d, "floor")), floor,
	       policy_fl_privacy(p) ? "; [fl_privacy] present" : "");
	json_array_foreach(json_object_get(d, "rules"), i, r) {
		json_t *pr = json_object_get(r, "projects"), *f = json_object_get(r, "min_cohort_size");
		printf("  %-24s %-6s %-20s ", json_string_value(json_object_get(r, "id")),
		       json_string_value(json_object_get(r, "effect")),
		       json_string_value(json_object_get(r, "action")));
		printf(pr ? "%zu project(s)" : "all projects", json_array_size(pr));
		printf(f ? ", floor %lld\n" : "\n", json_integer_value(f));
	}
	json_decref(d);
	policy_free(p);
	node_close(&n);
	return 0;
}

/* key-hash - what the hub must hold for this trust */
static int cmd_key_hash(void)
{
	struct node n;
	char hex[65];

	open_node(&n, 0);
	if (n.cfg.api_key == NULL)
		die_config("TRUST_API_KEY is not set");
	digest_sha256_hex(n.cfg.api_key, strlen(n.cfg.api_key), hex);
	printf("%s\n", hex);
	node_close(&n);
	return 0;
}

/* bundle - a support tarball that holds no secret (lib/bundle.h says what is in it) */
static int cmd_bundle(int argc, char **argv)
{
	struct node n;
	struct bundle_result res;
	const char *out = NULL;
	char err[1024], problem[1024] = "";
	unsigned flags = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
			out = argv[++i];
		else if (strcmp(argv[i], "--with-fl-client-log") == 0)
			flags |= BUNDLE_WITH_FL_CLIENT_LOG;
		else
			usage(2);
	}
	/* a bundle is wanted most when something is broken: without a spool, it says so */
	if (node_open(&n, "flipctl", config_path, NODE_SPOOL | NODE_AUDIT, problem,
		      sizeof(problem)) < 0) {
		fprintf(stderr, "flipctl: %s; bundling without the status\n", problem);
		open_node(&n, 0);
	}
	if (bundle_write(&n, out, problem[0] ? problem : NULL, flags, &res, err, sizeof(err)) < 0) {
		fprintf(stderr, "flipctl: %s\n", err);
		node_close(&n);
		return 1;
	}
	printf("%s (%llu bytes, sha256 %.16s...)\n", res.path, res.bytes, res.sha256);
	if (res.redacted)
		printf("%u secret value%s found in what was bundled and replaced by %s (manifest.json)\n",
		       res.redacted, res.redacted == 1 ? " was" : "s were", BUNDLE_REDACTED);
	node_close(&n);
	return 0;
}

int main(int argc, char **argv)
{
	int i = 1;

	log_init("flipctl", LOG_WARN);
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			config_path = argv[++i];
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			usage(0);
		else if (strcmp(argv[i], "--version") == 0) {
			printf("flipctl %s\n", FLIP_VERSION);
			return 0;
		} else
			usage(2);
	}
	if (i >= argc)
		usage(2);
	const char *cmd = argv[i];
	argc -= i;
	argv += i;
	if (strcmp(cmd, "init") == 0)
		return cmd_init(argc, argv);
	if (strcmp(cmd, "status") == 0)
		return cmd_status(argc, argv);
	if (strcmp(cmd, "ls") == 0)
		return cmd_ls(argc, argv);
	if (strcmp(cmd, "show") == 0)
		return cmd_show(argc, argv);
	if (strcmp(cmd, "rerun") == 0)
		return cmd_job(argc, argv, jobctl_rerun, "re-run");
	if (strcmp(cmd, "hold") == 0)
		return cmd_job(argc, argv, jobctl_hold, "held");
	if (strcmp(cmd, "release") == 0)
		return cmd_job(argc, argv, jobctl_release, "released");
	if (strcmp(cmd, "purge") == 0)
		return cmd_purge(argc, argv);
	if (strcmp(cmd, "audit") == 0)
		return cmd_audit(argc, argv);
	if (strcmp(cmd, "policy") == 0)
		return cmd_policy(argc, argv);
	if (strcmp(cmd, "doctor") == 0 && argc == 1)
		return cmd_doctor();
	if (strcmp(cmd, "key-hash") == 0 && argc == 1)
		return cmd_key_hash();
	if (strcmp(cmd, "bundle") == 0)
		return cmd_bundle(argc, argv);
	usage(2);
}
