/* SPDX-License-Identifier: Apache-2.0 */
/*
 * handoff - imaging studies handed to FL training code and back (see handoff.h).
 *
 * Every directory is opened relative to its parent with O_NOFOLLOW, component by
 * component, from names the caller validated: nothing from the request can make
 * a path leave BASE_IMAGES_DOWNLOAD_DIR or the project store. The realpath check at
 * the end is a second lock on the same door.
 */
#include "lib/handoff.h"

#include "lib/durable.h"
#include "lib/fluser.h"
#include "lib/ident.h"
#include "lib/imaging_store.h"
#include "lib/log.h"
#include "lib/task.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HANDOFF_MAX_FILE (4ULL << 30)
#define HANDOFF_MAX_FILES 100000
#define HANDOFF_NOGROUP ((gid_t)-1)	/* a store folder: its group is left alone */
/* in a resource folder of the store: this resource was made by an upload */
#define HANDOFF_UPLOAD_MARK ".flip-upload"

/*
 * handoff_dir - open (creating when asked) a chain of directories below fd. A
 * folder of the hand-off tree (group, not HANDOFF_NOGROUP) is given to the FL
 * client's group, 0750: it may read and list it, never add, rename or remove.
 */
static int handoff_dir(int fd, const char *const *parts, size_t n, int create, gid_t group)
{
	int cur = dup(fd);

	for (size_t i = 0; cur >= 0 && i < n; i++) {
		int next;
		if (create && durable_mkdir(cur, parts[i], 0750) < 0) {
			close(cur);
			return -1;
		}
		next = openat(cur, parts[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(cur);
		cur = next;
		if (cur >= 0 && create && group != HANDOFF_NOGROUP &&
		    (fchown(cur, (uid_t)-1, group) < 0 || fchmod(cur, 0750) < 0)) {
			close(cur);
			return -1;
		}
	}
	return cur;
}

/*
 * handoff_group - the FL client's group (FL_CLIENT_USER's primary group): what
 * it is given is readable through it and nothing more. -1 when the user does not
 * exist (logged): nothing is handed over then.
 */
static int handoff_group(const struct config *cfg, gid_t *group)
{
	struct fluser u;
	char err[256];

	if (fluser_lookup(cfg->fl_client_user, &u, err, sizeof(err)) < 0) {
		log_error("image hand-off: %s", err);
		return -1;
	}
	*group = u.gid;
	return 0;
}

/* handoff_base - BASE_IMAGES_DOWNLOAD_DIR, created when missing */
static int handoff_base(const struct config *cfg)
{
	char buf[PATH_MAX];

	if (snprintf(buf, sizeof(buf), "%s", cfg->images_dir) >= (int)sizeof(buf))
		return -1;
	for (char *p = buf + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = 0;
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, 0750) < 0 && errno != EEXIST)
		return -1;
	return open(buf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* handoff_accession - the successful accession's subject; 200, or 404 with *detail */
static int handoff_accession(const struct config *cfg, const char *project, const char *accession,
			     struct imaging_project **pp, char subject[37], const char **detail)
{
	char id[37];
	int rc = imaging_find_by_hub_project(cfg->state_dir, project, id);

	if (rc < 0) {
		*detail = "Trust-side storage error";
		return 500;
	}
	if (rc == 0 || (*pp = imaging_open(cfg->state_dir, id)) == NULL) {
		*detail = "Project not found";
		return 404;
	}
	long n = imaging_accession_count(*pp);
	for (long i = 0; i < n; i++) {
		json_t *st = imaging_accession_read(*pp, i);
		const char *acc = json_string_value(json_object_get(st, "accession"));
		if (acc && strcmp(acc, accession) == 0) {
			int ok = imaging_state_parse(json_string_value(json_object_get(st, "state"))) ==
				 IMAGING_SUCCESSFUL;
			snprintf(subject, 37, "%s",
				 json_string_value(json_object_get(st, "subject")) ?: "");
			json_decref(st);
			if (!ok || !ident_ok(IDENT_UUID, subject)) {
				*detail = "Images for this accession are not retrieved yet";
				return 404;
			}
			return 200;
		}
		json_decref(st);
	}
	*detail = "Accession not found in this project";
	return 404;
}

/*
 * handoff_place - hard link src/name into dst/name, or copy across file systems.
 * Either way the file the client sees is 0440, the node's user's, in the client's
 * group: a hard link shares the store file's inode, so the store file itself is
 * made so first; the client reads it and cannot write it, nor change its mode.
 */
static int handoff_place(int srcfd, int dstfd, const char *name, gid_t group)
{
	unlinkat(dstfd, name, 0);	/* force_refresh: replace what an earlier call left */
	if (fchownat(srcfd, name, (uid_t)-1, group, AT_SYMLINK_NOFOLLOW) < 0 ||
	    fchmodat(srcfd, name, 0440, 0) < 0)
		return -1;
	if (linkat(srcfd, name, dstfd, name, 0) == 0)
		return 0;
	if (errno != EXDEV && errno != EPERM && errno != EMLINK)
		return -1;
	if (durable_copy(srcfd, name, dstfd, name, HANDOFF_MAX_FILE, 0440) < 0 ||
	    fchownat(dstfd, name, (uid_t)-1, group, AT_SYMLINK_NOFOLLOW) < 0)
		return -1;
	return 0;
}

/* handoff_resource - place one series' resource files; number placed, -1 on error */
static long handoff_resource(int seriesfd, int dstseriesfd, const char *type, gid_t group)
{
	const char *src_parts[] = {"resources", type, "files"};
	int src = handoff_dir(seriesfd, src_parts, 3, 0, HANDOFF_NOGROUP), dst;
	DIR *d;
	struct dirent *de;
	long placed = 0;

	if (src < 0)
		return errno == ENOENT ? 0 : -1;
	dst = handoff_dir(dstseriesfd, src_parts, 3, 1, group);
	if (dst < 0 || (d = fdopendir(dup(src))) == NULL) {
		if (dst >= 0)
			close(dst);
		close(src);
		return -1;
	}
	while ((de = readdir(d)) != NULL && placed >= 0) {
		if (de->d_name[0] == '.' || de->d_type != DT_REG)
			continue;
		placed = handoff_place(src, dst, de->d_name, group) == 0 ? placed + 1 : -1;
	}
	closedir(d);
	if (placed > 0 && durable_fsync_dir(dst) < 0)
		placed = -1;
	close(dst);
	close(src);
	return placed;
}

/* handoff_inside - the directory fd resolves inside base (realpath, second lock) */
static int handoff_inside(const struct config *cfg, int fd, char *path, size_t pathlen)
{
	char proc[64], base[PATH_MAX], real[PATH_MAX];
	ssize_t n;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = readlink(proc, real, sizeof(real) - 1);
	if (n <= 0 || realpath(cfg->images_dir, base) == NULL)
		return 0;
	real[n] = 0;
	size_t bl = strlen(base);
	if (strncmp(real, base, bl) != 0 || real[bl] != '/')
		return 0;
	snprintf(path, pathlen, "%s", real);
	return 1;
}

/* handoff_all_resources - every resource of a series (resource_type ALL) */
static long handoff_all_resources(int seriesfd, int dstseriesfd, gid_t group)
{
	const char *parts[] = {"resources"};
	int rfd = handoff_dir(seriesfd, parts, 1, 0, HANDOFF_NOGROUP);
	DIR *d;
	struct dirent *de;
	long total = 0;

	if (rfd < 0)
		return errno == ENOENT ? 0 : -1;
	if ((d = fdopendir(rfd)) == NULL) {
		close(rfd);
		return -1;
	}
	while (total >= 0 && (de = readdir(d)) != NULL) {
		if (de->d_type != DT_DIR || !ident_ok(IDENT_ACCESSION, de->d_name))
			continue;
		long placed = handoff_resource(seriesfd, dstseriesfd, de->d_name, group);
		total = placed < 0 ? -1 : total + placed;
	}
	closedir(d);
	return total;
}

/* handoff_download - see handoff.h */
int handoff_download(const struct config *cfg, const char *net_id, const char *project,
		     const char *accession, const char *assessor_type, const char *resource_type,
		     int force, char *path, size_t pathlen, const char **detail)
{
	struct imaging_project *p = NULL;
	char subject[37], sentinel[96];
	int status, base = -1, dst = -1, scans = -1, dstscans = -1;
	long total = 0;
	struct stat st;
	DIR *d = NULL;
	struct dirent *de;
	gid_t group;

	status = handoff_accession(cfg, project, accession, &p, subject, detail);
	if (status != 200)
		goto out;
	if (strcmp(assessor_type, "scan") != 0) {
		status = 404;
		*detail = "Resource not found";	/* the native store holds no assessors */
		goto out;
	}
	snprintf(sentinel, sizeof(sentinel), ".flip_complete-%s-%s", assessor_type, resource_type);
	const char *dparts[] = {net_id, project, accession};
	const char *sparts[] = {"data", subject, accession, "scans"};
	if (handoff_group(cfg, &group) < 0 || (base = handoff_base(cfg)) < 0 ||
	    (dst = handoff_dir(base, dparts, 3, 1, group)) < 0 ||
	    !handoff_inside(cfg, dst, path, pathlen))
		goto storage;
	if (!force && fstatat(dst, sentinel, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		/* already handed over: answer at once, and mark the copy as in use so that
		 * the sweeper (handoff_sweep) keeps it while training keeps asking */
		utimensat(dst, sentinel, NULL, AT_SYMLINK_NOFOLLOW);
		goto out;
	}
	const char *scans_part[] = {"scans"};
	if ((scans = handoff_dir(p->dirfd, sparts, 4, 0, HANDOFF_NOGROUP)) < 0 ||
	    (dstscans = handoff_dir(dst, scans_part, 1, 1, group)) < 0 ||
	    (d = fdopendir(dup(scans))) == NULL)
		goto storage;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || de->d_type != DT_DIR)
			continue;
		const char *series[] = {de->d_name};
		int sfd = handoff_dir(scans, series, 1, 0, HANDOFF_NOGROUP);
		int dfd = sfd >= 0 ? handoff_dir(dstscans, series, 1, 1, group) : -1;
		if (dfd >= 0 && strcmp(resource_type, "ALL") != 0) {
			/* any resource the store holds by that name (a safe segment: ident.h) */
			long placed = handoff_resource(sfd, dfd, resource_type, group);
			total = placed < 0 ? -1 : total + placed;
		} else if (dfd >= 0) {
			long placed = handoff_all_resources(sfd, dfd, group);
			total = placed < 0 ? -1 : total + placed;
		}
		if (sfd >= 0)
			close(sfd);
		if (dfd >= 0)
			close(dfd);
		if (sfd < 0 || dfd < 0 || total < 0)
			goto storage;
	}
	if (total == 0) {
		status = 404;
		*detail = "Resource not found";
		goto out;
	}
	char note[128];
	int len = snprintf(note, sizeof(note), "{\"files\": %ld, \"at\": %ld}\n", total, (long)time(NULL));
	if (durable_write(dst, sentinel, note, (size_t)len, 0640) < 0)
		goto storage;
	goto out;
storage:
	log_error("image hand-off to %s/%s: %s", cfg->images_dir, net_id, strerror(errno));
	status = 500;
	*detail = "Trust-side storage error";
out:
	if (d)
		closedir(d);
	for (int *fd = (int[]){base, dst, scans, dstscans}, k = 0; k < 4; k++)
		if (fd[k] >= 0)
			close(fd[k]);
	imaging_close(p);
	return status;
}

/* handoff_relpath_ok - a relative path of unreserved segments, no "..", at most 8 deep */
static int handoff_relpath_ok(const char *rel)
{
	char buf[512], *save = NULL;
	int depth = 0;

	if (rel == NULL || rel[0] == 0 || rel[0] == '/' || strlen(rel) >= sizeof(buf))
		return 0;
	snprintf(buf, sizeof(buf), "%s", rel);
	for (char *seg = strtok_r(buf, "/", &save); seg; seg = strtok_r(NULL, "/", &save))
		if (!ident_ok(IDENT_ACCESSION, seg) || ++depth > 8)
			return 0;
	return depth > 0;
}

/* handoff_upload - see handoff.h */
int handoff_upload(const struct config *cfg, const char *net_id, const char *project,
		   const char *accession, const char *scan_id, const char *resource_id,
		   const json_t *files, int exist_ok, json_t **stored, const char **detail)
{
	struct imaging_project *p = NULL;
	char subject[37];
	int status, base = -1, upload = -1, res = -1, out = -1;
	size_t i;
	json_t *f;
	struct stat st;

	*stored = json_array();
	if (!json_is_array(files) || json_array_size(files) == 0 ||
	    json_array_size(files) > HANDOFF_MAX_FILES) {
		*detail = "files must be a non-empty list of relative paths";
		return 422;
	}
	json_array_foreach(files, i, f)
		if (!handoff_relpath_ok(json_string_value(f))) {
			*detail = "Each file must be a relative path of plain segments, without '..'";
			return 422;
		}
	status = handoff_accession(cfg, project, accession, &p, subject, detail);
	if (status != 200)
		goto done;
	const char *uparts[] = {net_id, "upload"};
	const char *rparts[] = {"data", subject, accession, "scans", scan_id, "resources"};
	if ((base = handoff_base(cfg)) < 0 ||
	    (upload = handoff_dir(base, uparts, 2, 0, HANDOFF_NOGROUP)) < 0) {
		status = 404;
		*detail = "No upload folder for this net";
		goto done;
	}
	if ((res = handoff_dir(p->dirfd, rparts, 6, 1, HANDOFF_NOGROUP)) < 0)
		goto storage;
	if (fstatat(res, resource_id, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		/* a resource the store did not get from an upload (retrieved DICOM, its
		 * NIFTI, a SEG) is never written by one, exist_ok or not */
		const char *mine[] = {resource_id};
		int rfd = handoff_dir(res, mine, 1, 0, HANDOFF_NOGROUP);
		int made = rfd >= 0 && fstatat(rfd, HANDOFF_UPLOAD_MARK, &st, AT_SYMLINK_NOFOLLOW) == 0;
		if (rfd >= 0)
			close(rfd);
		if (!exist_ok || !made) {
			status = 409;
			*detail = made ? "Resource already exists"
				       : "Resource already exists and was not created by an upload";
			goto done;
		}
	} else {
		/* a new resource: marked as an upload's before any file goes in */
		const char *mine[] = {resource_id};
		int rfd = handoff_dir(res, mine, 1, 1, HANDOFF_NOGROUP);
		int rc = rfd < 0 ? -1 : durable_write(rfd, HANDOFF_UPLOAD_MARK, "", 0, 0600);
		if (rfd >= 0)
			close(rfd);
		if (rc < 0)
			goto storage;
	}
	const char *oparts[] = {resource_id, "files"};
	if ((out = handoff_dir(res, oparts, 2, 1, HANDOFF_NOGROUP)) < 0)
		goto storage;
	json_array_foreach(files, i, f) {
		const char *rel = json_string_value(f), *name = strrchr(rel, '/');
		char dirpart[512];
		name = name ? name + 1 : rel;
		snprintf(dirpart, sizeof(dirpart), "%.*s", (int)(name - rel), rel);
		/* open the source directory component by component: no link is followed */
		const char *segs[9];
		int ns = 0;
		char *save = NULL;
		for (char *seg = strtok_r(dirpart, "/", &save); seg && ns < 8; seg = strtok_r(NULL, "/", &save))
			segs[ns++] = seg;
		int sfd = handoff_dir(upload, segs, (size_t)ns, 0, HANDOFF_NOGROUP);
		int rc = sfd < 0 ? -1 : durable_copy(sfd, name, out, name, HANDOFF_MAX_FILE, 0600);
		if (sfd >= 0)
			close(sfd);
		if (rc < 0 && (errno == ENOENT || errno == EINVAL || errno == ELOOP || errno == ENOTDIR)) {
			status = 404;
			*detail = "An uploaded file was not found (or is not a regular file)";
			goto done;
		}
		if (rc < 0 && errno == EFBIG) {
			status = 413;
			*detail = "An uploaded file is larger than 4 GiB";
			goto done;
		}
		if (rc < 0)
			goto storage;
		json_array_append_new(*stored, json_sprintf("scans/%s/resources/%s/files/%s", scan_id,
							    resource_id, name));
	}
	/* the next download must see the new resource: drop this accession's sentinels */
	const char *dparts[] = {net_id, project, accession};
	int dst = handoff_dir(base, dparts, 3, 0, HANDOFF_NOGROUP);
	if (dst >= 0) {
		DIR *d = fdopendir(dup(dst));
		struct dirent *de;
		while (d && (de = readdir(d)) != NULL)
			if (strncmp(de->d_name, ".flip_complete-", 15) == 0)
				unlinkat(dst, de->d_name, 0);
		if (d)
			closedir(d);
		close(dst);
	}
	status = 200;
	goto done;
storage:
	log_error("image upload from %s/%s: %s", cfg->images_dir, net_id, strerror(errno));
	status = 500;
	*detail = "Trust-side storage error";
done:
	for (int *fd = (int[]){base, upload, res, out}, k = 0; k < 4; k++)
		if (fd[k] >= 0)
			close(fd[k]);
	imaging_close(p);
	return status;
}

/* sweep_last_use - the copy's last use: its folder's or a sentinel's newest mtime */
static time_t sweep_last_use(int accfd)
{
	struct stat st;
	time_t last = 0;
	DIR *d;
	struct dirent *de;

	if (fstat(accfd, &st) == 0)
		last = st.st_mtime;
	if ((d = fdopendir(dup(accfd))) == NULL)
		return last;
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, ".flip_complete-", 15) == 0 &&
		    fstatat(accfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_mtime > last)
			last = st.st_mtime;
	closedir(d);
	return last;
}

/* sweep_open - a sub-folder (never a link) of at, or -1 */
static int sweep_open(int at, const char *name)
{
	return openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* sweep_project - the stale accession copies of one hub project folder */
static void sweep_project(int projfd, time_t cutoff, struct handoff_sweep *sw)
{
	DIR *d = fdopendir(dup(projfd));
	struct dirent *de;

	if (d == NULL) {
		sw->errors++;
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		int acc = ident_ok(IDENT_ACCESSION, de->d_name) ? sweep_open(projfd, de->d_name) : -1;
		if (acc < 0) {
			sw->skipped++;	/* not ours: a file, a link, a name we never make */
			continue;
		}
		time_t last = sweep_last_use(acc);
		close(acc);
		if (last >= cutoff) {
			sw->kept++;
		} else if (durable_remove_tree(projfd, de->d_name) == 0) {
			sw->removed++;
		} else {
			log_warn("image copies: cannot remove an accession folder: %s",
				 strerror(errno));
			sw->errors++;
		}
	}
	closedir(d);
}

/* handoff_sweep - see handoff.h */
int handoff_sweep(const struct config *cfg, time_t now, struct handoff_sweep *sw)
{
	char base[PATH_MAX], state[PATH_MAX];
	time_t cutoff = now - (time_t)cfg->image_retention_hours * 3600;
	int basefd;
	DIR *d;
	struct dirent *de;

	memset(sw, 0, sizeof(*sw));
	if (realpath(cfg->images_dir, base) == NULL)
		return errno == ENOENT ? 0 : -1;	/* nothing was ever handed over */
	/* the project store must never be inside what is swept, nor hold it */
	if (realpath(cfg->state_dir, state) != NULL) {
		size_t bl = strlen(base), sl = strlen(state);
		if ((strncmp(state, base, bl) == 0 && (state[bl] == '/' || state[bl] == 0)) ||
		    (strncmp(base, state, sl) == 0 && (base[sl] == '/' || base[sl] == 0))) {
			errno = ELOOP;
			return -1;
		}
	}
	if ((basefd = open(base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return -1;
	if ((d = fdopendir(dup(basefd))) == NULL) {
		close(basefd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		int net = ident_ok(IDENT_NET_ID, de->d_name) ? sweep_open(basefd, de->d_name) : -1;
		DIR *pd = net >= 0 ? fdopendir(dup(net)) : NULL;
		struct dirent *pe;
		while (pd && (pe = readdir(pd)) != NULL) {
			/* <net>/<hub project>/: upload/ and anything else is the training code's */
			if (!task_uuid_ok(pe->d_name))
				continue;
			int proj = sweep_open(net, pe->d_name);
			if (proj < 0)
				continue;
			sweep_project(proj, cutoff, sw);
			close(proj);
			unlinkat(net, pe->d_name, AT_REMOVEDIR);	/* when emptied; else ENOTEMPTY */
		}
		if (pd)
			closedir(pd);
		if (net >= 0)
			close(net);
	}
	closedir(d);
	close(basefd);
	return 0;
}
