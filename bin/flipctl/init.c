/* SPDX-License-Identifier: Apache-2.0 */
/*
 * init - flipctl init: the spool, state and log directories with their owner and
 * modes, the image and kit folders, the de-identification key (made through
 * statedir.h, once) and the metrics group's access (see command.h).
 */
#include "bin/flipctl/command.h"

#include "lib/durable.h"
#include "lib/kit.h"
#include "lib/statedir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
		fprintf(stderr, "flipctl: cannot give group %s %s/" STATEDIR_METRICS ": %s\n", group,
			state_dir, strerror(errno));
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
			fprintf(stderr, "flipctl: cannot give group %s %s/" STATEDIR_METRICS "/%s: %s\n",
				group, state_dir, e->d_name, strerror(errno));
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

/* init_command - directories with owner and modes, the de-identification key */
int init_command(const struct command *cmd, int argc, char **argv)
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
			return COMMAND_USAGE;
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
	command_open_node(cmd, &n, 0);
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
