/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kit - the FL participant kit (see kit.h for the contract): where a kit lives,
 * which member paths and link targets may enter it, the checks that depend on the
 * host (kit_check_site), giving the tree to the FL client's group (kit_share) and
 * the site-owned local/ files (kit_render).
 *
 * Extraction and the switch to a new kit are in kit_archive.c, the verification
 * of startup/ (signatures, certificates) in kit_signature.c; kit_internal.h holds
 * what the three share.
 */
#include "lib/kit.h"

#include "lib/durable.h"
#include "lib/err.h"
#include "lib/kit_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* kit_find - one finding line (problem or warning) */
void kit_find(struct kit_findings *f, int warning, const char *fmt, ...)
{
	va_list ap;
	char *line;

	if (warning) {
		if (f->nwarnings >= (int)(sizeof(f->warning) / sizeof(f->warning[0])))
			return;
		line = f->warning[f->nwarnings++];
	} else {
		if (f->nproblems >= KIT_MAX_FINDINGS) {
			/* the last line says that more were cut */
			snprintf(f->problem[KIT_MAX_FINDINGS - 1], KIT_FINDING_LEN,
				 "more problems than fit here; fix the ones above first");
			return;
		}
		line = f->problem[f->nproblems++];
	}
	va_start(ap, fmt);
	vsnprintf(line, KIT_FINDING_LEN, fmt, ap);
	va_end(ap);
}

/* kit_echo - a name from an archive as a message may show it */
const char *kit_echo(const char *s, char *buf, size_t len)
{
	size_t i;

	for (i = 0; s[i] && i + 4 < len && i < 120; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	if (s[i] && i + 4 < len)
		memcpy(buf + i, "...", 3), i += 3;
	buf[i] = 0;
	return buf;
}

/* kit_paths - the services folder, the live kit and its startup/ */
int kit_paths(const char *kit_dir, const char *slot, struct kit_paths *p)
{
	int n;

	if (slot == NULL || *slot == 0 || strchr(slot, '/') || strcmp(slot, ".") == 0 ||
	    strcmp(slot, "..") == 0)
		return -1;
	n = snprintf(p->services, sizeof(p->services), "%s/%s/services", kit_dir, KIT_NET);
	if (n < 0 || (size_t)n >= sizeof(p->services))
		return -1;
	n = snprintf(p->live, sizeof(p->live), "%s/%s", p->services, slot);
	if (n < 0 || (size_t)n >= sizeof(p->live))
		return -1;
	n = snprintf(p->startup, sizeof(p->startup), "%s/startup", p->live);
	if (n < 0 || (size_t)n >= sizeof(p->startup))
		return -1;
	return 0;
}

/* kit_member_path - a member's path, checked and without `.` or empty components */
int kit_member_path(const char *path, char *clean, size_t cleanlen, const char **why)
{
	const char *p = path, *e;
	size_t used = 0, depth = 0;

	if (path == NULL || *path == 0)
		return *why = "empty path", -1;
	if (strlen(path) >= KIT_PATH_MAX)
		return *why = "path too long", -1;
	if (*path == '/')
		return *why = "absolute path", -1;
	for (const char *c = path; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return *why = "control character in path", -1;
	while (*p) {
		size_t len;

		e = strchr(p, '/');
		len = e ? (size_t)(e - p) : strlen(p);
		if (len == 2 && p[0] == '.' && p[1] == '.')
			return *why = "`..` in path", -1;
		if (len > 255)
			return *why = "path component too long", -1;
		if (len > 0 && !(len == 1 && p[0] == '.')) {
			if (++depth > KIT_DEPTH_MAX)
				return *why = "path too deep", -1;
			if (used + (used ? 1 : 0) + len + 1 > cleanlen)
				return *why = "path too long", -1;
			if (used)
				clean[used++] = '/';
			memcpy(clean + used, p, len);
			used += len;
		}
		p += len;
		if (*p == '/')
			p++;
	}
	if (cleanlen > 0)
		clean[used] = 0;
	return used == 0 ? 1 : 0;
}

/* kit_link_target_ok - a symbolic link's target that can only point down */
int kit_link_target_ok(const char *target, const char **why)
{
	char clean[KIT_PATH_MAX];
	int rc;

	if (target == NULL || *target == 0)
		return *why = "empty link target", -1;
	if (*target == '/')
		return *why = "link to an absolute path", -1;
	rc = kit_member_path(target, clean, sizeof(clean), why);
	if (rc < 0) {
		if (strcmp(*why, "`..` in path") == 0)
			*why = "link pointing up (`..`)";
		return -1;
	}
	if (rc == 1)
		return *why = "link to its own folder", -1;
	return 0;
}

/* kit_check_site - transfer/ writable, the net's image folder ours */
void kit_check_site(const char *kit, const char *images_dir, struct kit_findings *f)
{
	char path[PATH_MAX];
	struct stat sb;

	if (lstat(kit, &sb) < 0)
		return; /* no kit: kit_verify() has said so */
	if (snprintf(path, sizeof(path), "%s/transfer", kit) < (int)sizeof(path)) {
		if (lstat(path, &sb) < 0)
			kit_find(f, 0, "%s: missing: mkdir -m 0750 it", path);
		else if (!S_ISDIR(sb.st_mode))
			kit_find(f, 0, "%s: not a folder", path);
		else if (access(path, W_OK | X_OK) < 0)
			kit_find(f, 0, "%s: not writable by this user (uid %ld)", path,
				 (long)geteuid());
	}
	if (images_dir == NULL)
		return;
	if (snprintf(path, sizeof(path), "%s/%s", images_dir, KIT_NET) >= (int)sizeof(path))
		return;
	if (lstat(path, &sb) < 0)
		kit_find(f, 0, "%s: the net's image folder is missing: create it, owned by uid %ld",
			 path, (long)geteuid());
	else if (!S_ISDIR(sb.st_mode))
		kit_find(f, 0, "%s: not a folder", path);
	else if (sb.st_uid != geteuid())
		kit_find(f, 0, "%s: owned by uid %ld, not by the node's user (uid %ld), which "
			 "hands images to the FL client there: run flipctl init",
			 path, (long)sb.st_uid, (long)geteuid());
}

/* kit_share_at - kit_share() below dirfd's entry name (a folder when dir), depth levels */
static int kit_share_at(int dirfd, const char *name, gid_t group, int depth, int top)
{
	struct stat sb;
	mode_t mode;
	int fd, rc = 0;
	DIR *d;
	struct dirent *de;

	if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return -1;
	/* what the client made in its workspace is its own: left alone */
	if (sb.st_uid != geteuid() || S_ISLNK(sb.st_mode))
		return 0;
	if (!S_ISDIR(sb.st_mode)) {
		/* readable by the group, never writable by it, nothing for others */
		mode = (sb.st_mode & 0750) | 0040;
		if (fchownat(dirfd, name, (uid_t)-1, group, AT_SYMLINK_NOFOLLOW) < 0 ||
		    ((sb.st_mode & 07777) != mode && fchmodat(dirfd, name, mode, 0) < 0))
			return -1;
		return 0;
	}
	/* the kit folder is the client's workspace: it adds its job folders there, and the
	 * sticky bit keeps it from renaming or removing startup/, local/ or transfer/;
	 * transfer/ is the client's to write; every other folder it only reads */
	mode = top ? 01770 : (depth == 1 && strcmp(name, "transfer") == 0) ? 02770 : 0750;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fchown(fd, (uid_t)-1, group) < 0 || fchmod(fd, mode) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (depth >= KIT_DEPTH_MAX || (d = fdopendir(dup(fd))) == NULL) {
		close(fd);
		return depth >= KIT_DEPTH_MAX ? 0 : -1;
	}
	while ((de = readdir(d)) != NULL && rc == 0)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			rc = kit_share_at(fd, de->d_name, group, depth + 1, 0);
	closedir(d);
	close(fd);
	return rc;
}

/* kit_share - the kit tree readable by the FL client's group (see kit.h) */
int kit_share(const char *kit, gid_t group, char *err, size_t errlen)
{
	char up[PATH_MAX];
	struct stat sb;

	/* services/, net-1/ and FL_KIT_DIR above it: the client passes through (or
	 * lists), nothing more; only the folders this user made */
	snprintf(up, sizeof(up), "%s", kit);
	for (int i = 0; i < 3; i++) {
		char *slash = strrchr(up, '/');
		if (slash == NULL || slash == up)
			break;
		*slash = 0;
		if (lstat(up, &sb) == 0 && S_ISDIR(sb.st_mode) && sb.st_uid == geteuid() &&
		    (lchown(up, (uid_t)-1, group) < 0 || chmod(up, 0750) < 0))
			return err_set(err, errlen, "%s: cannot give it to the FL client's group "
				       "%ld: %s", up, (long)group, strerror(errno));
	}
	if (kit_share_at(AT_FDCWD, kit, group, 0, 1) < 0)
		return err_set(err, errlen,
			       "%s: cannot give the kit to the FL client's group %ld: %s (the node's "
			       "user must be a member of it)",
			       kit, (long)group, strerror(errno));
	return 0;
}

/* ---- local/ ------------------------------------------------------------------------ */

/* kit_render_one - write (or, for NULL, remove) local/<name>; sets bit when it changed */
static int kit_render_one(int lfd, const char *name, json_t *doc, unsigned bit,
			  unsigned *changed, char *err, size_t errlen)
{
	char *old = NULL, *text = NULL;
	size_t oldlen = 0;
	int had = durable_read(lfd, name, KIT_PEM_MAX, &old, &oldlen) == 0, rc = 0;

	if (doc == NULL) {
		if (had || faccessat(lfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
			if (unlinkat(lfd, name, 0) < 0 || durable_fsync_dir(lfd) < 0)
				rc = err_set(err, errlen, "local/%s: cannot remove: %s", name,
					     strerror(errno));
			else
				*changed |= bit;
		}
		free(old);
		return rc;
	}
	text = json_dumps(doc, JSON_INDENT(2) | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
	if (text == NULL) {
		free(old);
		return err_set(err, errlen, "local/%s: out of memory", name);
	}
	size_t len = strlen(text);
	text[len++] = '\n'; /* replaces the NUL: written with its length */
	if (!had || oldlen != len || memcmp(old, text, len) != 0) {
		if (durable_write(lfd, name, text, len, 0640) < 0)
			rc = err_set(err, errlen, "local/%s: cannot write: %s", name,
				     strerror(errno));
		else
			*changed |= bit;
	}
	free(text);
	free(old);
	return rc;
}

/* kit_render - local/resources.json, log_config.json, privacy.json */
int kit_render(const char *kit, int gpus, int mem_gib, json_t *privacy, unsigned *changed,
	       char *err, size_t errlen)
{
	char path[PATH_MAX];
	json_t *res, *logc;
	int kfd, lfd, rc = -1;

	*changed = 0;
	kfd = open(kit, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (kfd < 0)
		return err_set(err, errlen, "%s: %s", kit, strerror(errno));
	if (durable_mkdir(kfd, "local", 0750) < 0 ||
	    (lfd = openat(kfd, "local", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		snprintf(path, sizeof(path), "%s/local", kit);
		close(kfd);
		return err_set(err, errlen, "%s: %s", path, strerror(errno));
	}
	close(kfd);
	/* NVFLARE's resource manager config: what a job may claim on this site */
	res = json_pack("{s:i, s:{s:i, s:s}, s:[{s:s, s:s, s:{s:i, s:i}}, {s:s, s:s, s:{}}]}",
			"format_version", 2, "client", "retry_timeout", 30, "compression", "Gzip",
			"components", "id", "resource_manager", "path",
			"nvflare.app_common.resource_managers.gpu_resource_manager."
			"GPUResourceManager",
			"args", "num_of_gpus", gpus, "mem_per_gpu_in_GiB", mem_gib, "id",
			"resource_consumer", "path",
			"nvflare.app_common.resource_consumers.gpu_resource_consumer."
			"GPUResourceConsumer",
			"args");
	/* Python logging dictConfig: everything to stdout, which flip-fl appends to its log */
	logc = json_pack("{s:i, s:b, s:{s:{s:s}}, s:{s:{s:s, s:s, s:s, s:s}}, s:{s:s, s:[s]}}",
			 "version", 1, "disable_existing_loggers", 0, "formatters",
			 "baseFormatter", "format",
			 "%(asctime)s - %(name)s - %(levelname)s - %(message)s", "handlers",
			 "consoleHandler", "class", "logging.StreamHandler", "level", "INFO",
			 "formatter", "baseFormatter", "stream", "ext://sys.stdout", "root",
			 "level", "INFO", "handlers", "consoleHandler");
	if (res == NULL || logc == NULL) {
		err_set(err, errlen, "out of memory");
		goto out;
	}
	if (kit_render_one(lfd, "resources.json", res, KIT_CHANGED_RESOURCES, changed, err,
			   errlen) < 0 ||
	    kit_render_one(lfd, "log_config.json", logc, KIT_CHANGED_LOG, changed, err, errlen) <
		    0 ||
	    kit_render_one(lfd, "privacy.json", privacy, KIT_CHANGED_PRIVACY, changed, err,
			   errlen) < 0)
		goto out;
	rc = 0;
out:
	json_decref(res);
	json_decref(logc);
	close(lfd);
	return rc;
}
