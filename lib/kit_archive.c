/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kit_archive - a kit tarball extracted beside the live kit and switched in
 * (kit_stage, kit_switch, kit_stage_discard; see kit.h for the contract).
 *
 * Extraction. libarchive only parses; every file is created here with openat(2)
 * relative to the staging folder's descriptor, each parent opened with
 * O_DIRECTORY | O_NOFOLLOW and each file with O_EXCL | O_NOFOLLOW. So a member
 * can land only inside the staging folder, whatever links earlier members
 * made: a path through a symbolic link fails to open, a second member of the
 * same name fails to create. libarchive's own archive_write_disk is not used,
 * because its safety flags are opt-in and its behaviour with hostile archives
 * is harder to reason about than twenty lines of openat.
 *
 * Symbolic links are allowed only pointing down (relative, no `..`). A
 * lexical check of a target with `..` is not enough: `a -> b/..` stays inside
 * on paper but leaves the kit when b is a link to `.`. A target that never goes
 * up cannot escape, through any chain of such links. A kit needs no links at
 * all; the rule is there so that a harmless one does not block an install.
 *
 * The live kit is replaced with renameat2(RENAME_EXCHANGE): at every instant
 * the slot's folder is either the whole old kit or the whole new one.
 */
#include "lib/kit.h"

#include "lib/durable.h"
#include "lib/err.h"
#include "lib/kit_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>

#define KIT_READ_BLOCK (64 * 1024)
#define KIT_ROOT_SEARCH 4		 /* single folders the kit may sit under */

/* ---- removal ------------------------------------------------------------------- */

/* kit_clean_stale - remove `.new-*` and `.old-*` folders an interrupted install left */
static void kit_clean_stale(int servicesfd)
{
	struct dirent *de;
	DIR *d;
	int fd = dup(servicesfd);

	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, ".new-", 5) == 0 || strncmp(de->d_name, ".old-", 5) == 0)
			(void)durable_remove_tree(servicesfd, de->d_name);
	closedir(d);
}

/* ---- extraction ----------------------------------------------------------------- */

struct kit_reader {
	int fd;
	EVP_MD_CTX *md;
	unsigned char buf[KIT_READ_BLOCK];
};

/* kit_read_cb - libarchive's input: the tarball, hashed as it is read */
static la_ssize_t kit_read_cb(struct archive *a, void *data, const void **buf)
{
	struct kit_reader *r = data;
	ssize_t n;

	do
		n = read(r->fd, r->buf, sizeof(r->buf));
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		archive_set_error(a, errno, "cannot read the tarball");
		return -1;
	}
	if (n > 0 && EVP_DigestUpdate(r->md, r->buf, (size_t)n) != 1) {
		archive_set_error(a, ENOMEM, "cannot hash the tarball");
		return -1;
	}
	*buf = r->buf;
	return n;
}

/* kit_mkdirs - open (creating 0750) each folder of rel under rootfd; returns a dirfd */
static int kit_mkdirs(int rootfd, const char *rel, int create)
{
	char comp[256];
	const char *p = rel;
	int fd = dup(rootfd);

	while (fd >= 0 && *p) {
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		int next;

		memcpy(comp, p, len);
		comp[len] = 0;
		next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && errno == ENOENT && create) {
			if (mkdirat(fd, comp, 0750) < 0 && errno != EEXIST) {
				close(fd);
				return -1;
			}
			next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (next >= 0)
				(void)fchmod(next, 0750);
		}
		close(fd);
		fd = next;
		p += len;
		if (*p == '/')
			p++;
	}
	return fd;
}

/* kit_split - parent folder and last component of a clean path */
static void kit_split(const char *clean, char *parent, size_t plen, const char **base)
{
	const char *slash = strrchr(clean, '/');

	if (slash == NULL) {
		parent[0] = 0;
		*base = clean;
	} else {
		size_t n = (size_t)(slash - clean);
		if (n >= plen)
			n = plen - 1;
		memcpy(parent, clean, n);
		parent[n] = 0;
		*base = slash + 1;
	}
}

/* kit_file_mode - the mode a regular file gets */
static mode_t kit_file_mode(const char *parent, const char *base, mode_t archived)
{
	const char *pslash = strrchr(parent, '/');
	const char *pname = pslash ? pslash + 1 : parent;
	size_t n = strlen(base);

	if (n > 4 && strcmp(base + n - 4, ".key") == 0)
		return 0600;
	if (strcmp(pname, "startup") == 0 &&
	    ((n > 3 && strcmp(base + n - 3, ".sh") == 0) || (archived & 0111)))
		return 0750;
	return 0640;
}

struct kit_extract {
	struct archive *a;
	const struct kit_limits *lim;
	int rootfd;
	long entries;
	long long total;
	struct kit_stage *st;
	char *err;
	size_t errlen;
};

/* kit_write_file - a regular member's data into a new file */
static int kit_write_file(struct kit_extract *x, int parentfd, const char *base, mode_t mode,
			  const char *shown)
{
	char buf[KIT_READ_BLOCK];
	long long size = 0;
	la_ssize_t n;
	int fd, saved;

	fd = openat(parentfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			return err_set(x->err, x->errlen,
				       "%s: appears twice in the archive", shown), KIT_REFUSED;
		saved = errno;
		err_set(x->err, x->errlen, "%s: cannot create: %s", shown, strerror(saved));
		return saved == ENOENT || saved == ELOOP || saved == ENOTDIR ? KIT_REFUSED : -1;
	}
	while ((n = archive_read_data(x->a, buf, sizeof(buf))) > 0) {
		size += n;
		x->total += n;
		if (size > x->lim->member_max || x->total > x->lim->total_max) {
			close(fd);
			return err_set(x->err, x->errlen,
				       size > x->lim->member_max
					       ? "%s: larger than the cap of %lld bytes per member"
					       : "%s: the archive holds more than the cap of %lld bytes",
				       shown,
				       size > x->lim->member_max ? x->lim->member_max
								 : x->lim->total_max), KIT_REFUSED;
		}
		for (la_ssize_t off = 0; off < n;) {
			ssize_t w = write(fd, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				saved = errno;
				close(fd);
				return err_set(x->err, x->errlen, "%s: cannot write: %s", shown,
					       strerror(saved));
			}
			off += w;
		}
	}
	if (n < 0) {
		close(fd);
		return err_set(x->err, x->errlen, "%s: corrupt data: %s", shown,
			       archive_error_string(x->a) ? archive_error_string(x->a) : "?"), KIT_REFUSED;
	}
	if (fchmod(fd, mode) < 0 || fsync(fd) < 0) {
		saved = errno;
		close(fd);
		return err_set(x->err, x->errlen, "%s: %s", shown, strerror(saved));
	}
	close(fd);
	x->st->files++;
	x->st->bytes += size;
	return 0;
}

/* kit_member - one archive entry, checked and written */
static int kit_member(struct kit_extract *x, struct archive_entry *e)
{
	char clean[KIT_PATH_MAX], parent[KIT_PATH_MAX], shown[160];
	const char *raw = archive_entry_pathname(e), *base, *why, *hl;
	mode_t type = archive_entry_filetype(e);
	int pfd, rc;

	if (raw == NULL)
		return err_set(x->err, x->errlen,
			       "member %ld: a path that cannot be read as text", x->entries), KIT_REFUSED;
	kit_echo(raw, shown, sizeof(shown));
	if (kit_member_path(raw, clean, sizeof(clean), &why) < 0)
		return err_set(x->err, x->errlen, "%s: %s", shown, why), KIT_REFUSED;
	if (clean[0] == 0) /* "./" itself */
		return type == AE_IFDIR ? 0
					: (err_set(x->err, x->errlen, "%s: not a folder", shown),
					   KIT_REFUSED);
	hl = archive_entry_hardlink(e);
	if (hl == NULL && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
		return err_set(x->err, x->errlen,
			       "%s: a device, FIFO or socket has no place in a kit", shown), KIT_REFUSED;
	if (type == AE_IFDIR) {
		pfd = kit_mkdirs(x->rootfd, clean, 1);
		if (pfd < 0)
			return err_set(x->err, x->errlen,
				       "%s: cannot make the folder (through a link or a file?)",
				       shown), KIT_REFUSED;
		close(pfd);
		x->st->dirs++;
		return 0;
	}
	kit_split(clean, parent, sizeof(parent), &base);
	pfd = kit_mkdirs(x->rootfd, parent, 1);
	if (pfd < 0)
		return err_set(x->err, x->errlen,
			       "%s: its folder cannot be made (through a link or a file?)", shown), KIT_REFUSED;
	if (hl != NULL) {
		char tclean[KIT_PATH_MAX], tparent[KIT_PATH_MAX];
		const char *tbase;
		struct stat sb;
		int tfd;

		if (kit_member_path(hl, tclean, sizeof(tclean), &why) != 0) {
			close(pfd);
			return err_set(x->err, x->errlen, "%s: hard link target: %s",
				       shown, why ? why : "the archive's root"), KIT_REFUSED;
		}
		kit_split(tclean, tparent, sizeof(tparent), &tbase);
		tfd = kit_mkdirs(x->rootfd, tparent, 0);
		if (tfd < 0 || fstatat(tfd, tbase, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(sb.st_mode) || linkat(tfd, tbase, pfd, base, 0) < 0) {
			if (tfd >= 0)
				close(tfd);
			close(pfd);
			return err_set(x->err, x->errlen,
				       "%s: hard link to something that is not an earlier file of "
				       "the kit",
				       shown), KIT_REFUSED;
		}
		close(tfd);
		close(pfd);
		x->st->links++;
		return 0;
	}
	if (type == AE_IFLNK) {
		const char *target = archive_entry_symlink(e);

		if (target == NULL || kit_link_target_ok(target, &why) < 0) {
			close(pfd);
			return err_set(x->err, x->errlen, "%s: %s", shown,
				       target ? why : "link without a target"), KIT_REFUSED;
		}
		rc = symlinkat(target, pfd, base);
		close(pfd);
		if (rc < 0) {
			rc = errno == EEXIST ? KIT_REFUSED : -1;
			err_set(x->err, x->errlen, "%s: cannot make the link: %s", shown,
				strerror(errno));
			return rc;
		}
		x->st->links++;
		return 0;
	}
	if (archive_entry_size_is_set(e) && archive_entry_size(e) > x->lim->member_max) {
		close(pfd);
		return err_set(x->err, x->errlen,
			       "%s: claims %lld bytes, over the cap of %lld bytes per member", shown,
			       (long long)archive_entry_size(e), x->lim->member_max), KIT_REFUSED;
	}
	if (archive_entry_size_is_set(e) && x->total + archive_entry_size(e) > x->lim->total_max) {
		close(pfd);
		return err_set(x->err, x->errlen,
			       "%s: the archive holds more than the cap of %lld bytes", shown,
			       x->lim->total_max), KIT_REFUSED;
	}
	rc = kit_write_file(x, pfd, base, kit_file_mode(parent, base, archive_entry_perm(e)),
			    shown);
	close(pfd);
	return rc;
}

/* kit_sync_tree - fsync every folder under fd (files were fsynced when written) */
static int kit_sync_tree(int fd, int depth)
{
	struct dirent *de;
	DIR *d;
	int dfd, rc = 0;

	if (depth > KIT_DEPTH_MAX + 2)
		return 0;
	dfd = dup(fd);
	if (dfd < 0 || (d = fdopendir(dfd)) == NULL) {
		if (dfd >= 0)
			close(dfd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		int sub;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		sub = openat(fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			continue; /* not a folder */
		if (kit_sync_tree(sub, depth + 1) < 0)
			rc = -1;
		close(sub);
	}
	closedir(d);
	if (fsync(fd) < 0)
		rc = -1;
	return rc;
}

/* kit_find_root - the folder holding startup/fed_client.json, "" or a chain of single folders */
static int kit_find_root(int rootfd, char *root, size_t rootlen)
{
	char name[256];
	int fd = dup(rootfd);

	root[0] = 0;
	for (int depth = 0; fd >= 0 && depth <= KIT_ROOT_SEARCH; depth++) {
		struct stat sb;
		struct dirent *de;
		DIR *d;
		int count = 0, dfd, next;

		if (fstatat(fd, "startup/fed_client.json", &sb, AT_SYMLINK_NOFOLLOW) == 0) {
			close(fd);
			return 0;
		}
		dfd = dup(fd);
		if (dfd < 0 || (d = fdopendir(dfd)) == NULL) {
			if (dfd >= 0)
				close(dfd);
			break;
		}
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			if (++count == 1)
				snprintf(name, sizeof(name), "%s", de->d_name);
		}
		closedir(d);
		if (count != 1)
			break;
		next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		fd = next;
		if (strlen(root) + strlen(name) + 2 > rootlen) {
			if (fd >= 0)
				close(fd);
			return -1;
		}
		if (root[0])
			strcat(root, "/");
		strcat(root, name);
	}
	if (fd >= 0)
		close(fd);
	return -1;
}

/* kit_stage - extract the tarball beside the live kit */
int kit_stage(const char *tarball, const char *services_dir, const struct kit_limits *lim,
	      struct kit_stage *st, char *err, size_t errlen)
{
	struct kit_extract x = {0};
	struct kit_reader *r = NULL;
	struct archive_entry *e;
	struct stat sb;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int rc = -1, r2, kitfd = -1;
	char servicesparent[PATH_MAX];

	memset(st, 0, sizeof(*st));
	st->servicesfd = -1;
	x.rootfd = -1;
	/* FL_KIT_DIR/net-1/services, each level created 0750 when missing */
	if (snprintf(servicesparent, sizeof(servicesparent), "%s", services_dir) >=
	    (int)sizeof(servicesparent))
		return err_set(err, errlen, "%s: path too long", services_dir);
	for (char *s = servicesparent + 1;; s++) {
		if (*s == '/' || *s == 0) {
			char c = *s;
			*s = 0;
			if (mkdir(servicesparent, 0750) < 0 && errno != EEXIST)
				return err_set(err, errlen, "cannot create %s: %s",
					       servicesparent, strerror(errno));
			*s = c;
			if (c == 0)
				break;
		}
	}
	st->servicesfd = open(services_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->servicesfd < 0)
		return err_set(err, errlen, "cannot open %s: %s", services_dir,
			       strerror(errno));
	kit_clean_stale(st->servicesfd);
	snprintf(st->name, sizeof(st->name), ".new-%ld", (long)getpid());
	if (mkdirat(st->servicesfd, st->name, 0700) < 0) {
		err_set(err, errlen, "cannot create %s/%s: %s", services_dir, st->name,
			strerror(errno));
		st->name[0] = 0;
		goto out;
	}
	x.rootfd = openat(st->servicesfd, st->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	r = calloc(1, sizeof(*r));
	if (x.rootfd < 0 || r == NULL) {
		err_set(err, errlen, "cannot open %s/%s: %s", services_dir, st->name,
			strerror(errno));
		goto out;
	}
	/* "-": standard input, so that root can hand the node's user a kit file only root
	 * reads (sudo -u flip flip-fl install-kit - < kit.tar.gz) */
	r->fd = strcmp(tarball, "-") == 0 ? fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3)
					  : open(tarball, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (r->fd < 0) {
		err_set(err, errlen, "cannot open %s: %s", tarball, strerror(errno));
		goto out;
	}
	if (fstat(r->fd, &sb) < 0 || !S_ISREG(sb.st_mode) || fcntl(r->fd, F_SETFL, 0) < 0) {
		err_set(err, errlen, "%s: not a regular file", tarball);
		rc = KIT_REFUSED;
		goto out;
	}
	r->md = EVP_MD_CTX_new();
	x.a = archive_read_new();
	if (r->md == NULL || x.a == NULL || EVP_DigestInit_ex(r->md, EVP_sha256(), NULL) != 1) {
		err_set(err, errlen, "out of memory");
		goto out;
	}
	/* tar only, and only the compressions libarchive does in-process */
	archive_read_support_format_tar(x.a);
	archive_read_support_filter_gzip(x.a);
	archive_read_support_filter_bzip2(x.a);
	archive_read_support_filter_xz(x.a);
	archive_read_support_filter_zstd(x.a);
	if (archive_read_open(x.a, r, NULL, kit_read_cb, NULL) != ARCHIVE_OK) {
		err_set(err, errlen, "%s: not a tar archive: %s", tarball,
			archive_error_string(x.a) ? archive_error_string(x.a) : "?");
		rc = KIT_REFUSED;
		goto out;
	}
	x.lim = lim;
	x.st = st;
	x.err = err;
	x.errlen = errlen;
	while ((r2 = archive_read_next_header(x.a, &e)) == ARCHIVE_OK || r2 == ARCHIVE_WARN) {
		if (++x.entries > lim->entries_max) {
			err_set(err, errlen, "%s: more than the cap of %ld entries", tarball,
				lim->entries_max);
			rc = KIT_REFUSED;
			goto out;
		}
		if ((rc = kit_member(&x, e)) != 0)
			goto out;
		rc = -1;
	}
	if (r2 != ARCHIVE_EOF) {
		err_set(err, errlen, "%s: corrupt or truncated archive: %s", tarball,
			archive_error_string(x.a) ? archive_error_string(x.a) : "?");
		rc = KIT_REFUSED;
		goto out;
	}
	/* the fingerprint covers the whole file, also what follows the end marker */
	for (;;) {
		const void *unused;
		la_ssize_t n = kit_read_cb(x.a, r, &unused);
		if (n < 0) {
			err_set(err, errlen, "%s: %s", tarball, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
	}
	if (EVP_DigestFinal_ex(r->md, md, &mdlen) != 1) {
		err_set(err, errlen, "cannot hash %s", tarball);
		goto out;
	}
	for (unsigned int i = 0; i < mdlen && i < 32; i++)
		snprintf(st->fingerprint + 2 * i, 3, "%02x", md[i]);
	if (kit_find_root(x.rootfd, st->root, sizeof(st->root)) < 0) {
		err_set(err, errlen,
			"%s: no startup/fed_client.json at the top of the archive or under a "
			"single folder",
			tarball);
		rc = KIT_REFUSED;
		goto out;
	}
	kitfd = kit_mkdirs(x.rootfd, st->root, 0);
	if (kitfd < 0 || durable_mkdir(kitfd, "transfer", 0750) < 0 ||
	    durable_mkdir(kitfd, "local", 0750) < 0 || kit_sync_tree(x.rootfd, 0) < 0 ||
	    fchmod(x.rootfd, 0750) < 0) {
		err_set(err, errlen, "cannot finish the kit in %s/%s: %s", services_dir,
			st->name, strerror(errno));
		goto out;
	}
	if (snprintf(st->path, sizeof(st->path), "%s/%s%s%s", services_dir, st->name,
		     st->root[0] ? "/" : "", st->root) >= (int)sizeof(st->path)) {
		err_set(err, errlen, "%s: path too long", services_dir);
		goto out;
	}
	rc = 0;
out:
	if (kitfd >= 0)
		close(kitfd);
	if (x.a != NULL)
		archive_read_free(x.a);
	if (r != NULL) {
		if (r->fd >= 0)
			close(r->fd);
		EVP_MD_CTX_free(r->md);
		free(r);
	}
	if (x.rootfd >= 0)
		close(x.rootfd);
	if (rc != 0)
		kit_stage_discard(st);
	return rc;
}

/* kit_switch - make the staged kit the live one; the old one is removed */
int kit_switch(struct kit_stage *st, const char *slot, char *err, size_t errlen)
{
	char src[sizeof(st->name) + KIT_PATH_MAX + 2], old[32];
	struct stat sb;

	if (st->servicesfd < 0 || st->name[0] == 0)
		return err_set(err, errlen, "nothing staged");
	snprintf(src, sizeof(src), "%s%s%s", st->name, st->root[0] ? "/" : "", st->root);
	if (fstatat(st->servicesfd, slot, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT)
			return err_set(err, errlen, "cannot look at the live kit %s: %s", slot,
				       strerror(errno));
		if (renameat2(st->servicesfd, src, st->servicesfd, slot, RENAME_NOREPLACE) < 0 &&
		    renameat(st->servicesfd, src, st->servicesfd, slot) < 0)
			return err_set(err, errlen, "cannot move the new kit into place: %s",
				       strerror(errno));
	} else if (renameat2(st->servicesfd, src, st->servicesfd, slot, RENAME_EXCHANGE) < 0) {
		/* a file system without exchange: aside, then in (a moment without a kit) */
		if (errno != EINVAL && errno != ENOSYS)
			return err_set(err, errlen, "cannot exchange the kits: %s",
				       strerror(errno));
		snprintf(old, sizeof(old), ".old-%ld", (long)getpid());
		if (renameat(st->servicesfd, slot, st->servicesfd, old) < 0)
			return err_set(err, errlen, "cannot move the old kit aside: %s",
				       strerror(errno));
		if (renameat(st->servicesfd, src, st->servicesfd, slot) < 0) {
			int saved = errno;
			(void)renameat(st->servicesfd, old, st->servicesfd, slot);
			return err_set(err, errlen, "cannot move the new kit into place: %s",
				       strerror(saved));
		}
		(void)durable_remove_tree(st->servicesfd, old);
	}
	st->switched = 1;
	if (durable_fsync_dir(st->servicesfd) < 0)
		return err_set(err, errlen, "cannot fsync the kit folder: %s", strerror(errno));
	/* what is left under the staging name is the old kit, or nothing */
	kit_stage_discard(st);
	return 0;
}

/* kit_stage_discard - remove the staging folder and close */
void kit_stage_discard(struct kit_stage *st)
{
	if (st->servicesfd < 0)
		return;
	if (st->name[0])
		(void)durable_remove_tree(st->servicesfd, st->name);
	close(st->servicesfd);
	st->servicesfd = -1;
	st->name[0] = 0;
}
