/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kit - the FL participant kit (see kit.h for the contract).
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
 *
 * Verification follows NVFLARE's provisioning: every file of startup/ except
 * signature.json is signed with the root CA's key (RSA-PSS, SHA-256, MGF1
 * SHA-256, maximum salt length), and signature.json maps each file name to the
 * standard base64 of its signature. Salt length is recovered on verification
 * (RSA_PSS_SALTLEN_AUTO), as NVFLARE's own check does.
 */
#include "lib/kit.h"

#include "lib/b64.h"
#include "lib/durable.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#define KIT_READ_BLOCK (64 * 1024)
#define KIT_STARTUP_FILE_MAX (16L << 20) /* a startup file we read to verify */
#define KIT_PEM_MAX (1L << 20)
#define KIT_ROOT_SEARCH 4		 /* single folders the kit may sit under */

static const char *const kit_startup_files[] = {
	"fed_client.json", "client.crt", "client.key", "rootCA.pem",
	"start.sh",	   "sub_start.sh", "stop_fl.sh", NULL,
};
static const char *const kit_startup_scripts[] = {"start.sh", "sub_start.sh", "stop_fl.sh",
						  NULL};

/* kit_err - message into err; returns rc */
__attribute__((format(printf, 4, 5))) static int kit_err(int rc, char *err, size_t errlen,
							 const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* kit_find - one finding line (problem or warning) */
__attribute__((format(printf, 3, 4))) static void kit_find(struct kit_findings *f, int warning,
							   const char *fmt, ...)
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
static const char *kit_echo(const char *s, char *buf, size_t len)
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
			return kit_err(KIT_REFUSED, x->err, x->errlen,
				       "%s: appears twice in the archive", shown);
		return kit_err(errno == ENOENT || errno == ELOOP || errno == ENOTDIR ? KIT_REFUSED
										      : -1,
			       x->err, x->errlen, "%s: cannot create: %s", shown, strerror(errno));
	}
	while ((n = archive_read_data(x->a, buf, sizeof(buf))) > 0) {
		size += n;
		x->total += n;
		if (size > x->lim->member_max || x->total > x->lim->total_max) {
			close(fd);
			return kit_err(KIT_REFUSED, x->err, x->errlen,
				       size > x->lim->member_max
					       ? "%s: larger than the cap of %lld bytes per member"
					       : "%s: the archive holds more than the cap of %lld bytes",
				       shown,
				       size > x->lim->member_max ? x->lim->member_max
								 : x->lim->total_max);
		}
		for (la_ssize_t off = 0; off < n;) {
			ssize_t w = write(fd, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				saved = errno;
				close(fd);
				return kit_err(-1, x->err, x->errlen, "%s: cannot write: %s", shown,
					       strerror(saved));
			}
			off += w;
		}
	}
	if (n < 0) {
		close(fd);
		return kit_err(KIT_REFUSED, x->err, x->errlen, "%s: corrupt data: %s", shown,
			       archive_error_string(x->a) ? archive_error_string(x->a) : "?");
	}
	if (fchmod(fd, mode) < 0 || fsync(fd) < 0) {
		saved = errno;
		close(fd);
		return kit_err(-1, x->err, x->errlen, "%s: %s", shown, strerror(saved));
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
		return kit_err(KIT_REFUSED, x->err, x->errlen,
			       "member %ld: a path that cannot be read as text", x->entries);
	kit_echo(raw, shown, sizeof(shown));
	if (kit_member_path(raw, clean, sizeof(clean), &why) < 0)
		return kit_err(KIT_REFUSED, x->err, x->errlen, "%s: %s", shown, why);
	if (clean[0] == 0) /* "./" itself */
		return type == AE_IFDIR ? 0
					: kit_err(KIT_REFUSED, x->err, x->errlen,
						  "%s: not a folder", shown);
	hl = archive_entry_hardlink(e);
	if (hl == NULL && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
		return kit_err(KIT_REFUSED, x->err, x->errlen,
			       "%s: a device, FIFO or socket has no place in a kit", shown);
	if (type == AE_IFDIR) {
		pfd = kit_mkdirs(x->rootfd, clean, 1);
		if (pfd < 0)
			return kit_err(KIT_REFUSED, x->err, x->errlen,
				       "%s: cannot make the folder (through a link or a file?)",
				       shown);
		close(pfd);
		x->st->dirs++;
		return 0;
	}
	kit_split(clean, parent, sizeof(parent), &base);
	pfd = kit_mkdirs(x->rootfd, parent, 1);
	if (pfd < 0)
		return kit_err(KIT_REFUSED, x->err, x->errlen,
			       "%s: its folder cannot be made (through a link or a file?)", shown);
	if (hl != NULL) {
		char tclean[KIT_PATH_MAX], tparent[KIT_PATH_MAX];
		const char *tbase;
		struct stat sb;
		int tfd;

		if (kit_member_path(hl, tclean, sizeof(tclean), &why) != 0) {
			close(pfd);
			return kit_err(KIT_REFUSED, x->err, x->errlen, "%s: hard link target: %s",
				       shown, why ? why : "the archive's root");
		}
		kit_split(tclean, tparent, sizeof(tparent), &tbase);
		tfd = kit_mkdirs(x->rootfd, tparent, 0);
		if (tfd < 0 || fstatat(tfd, tbase, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(sb.st_mode) || linkat(tfd, tbase, pfd, base, 0) < 0) {
			if (tfd >= 0)
				close(tfd);
			close(pfd);
			return kit_err(KIT_REFUSED, x->err, x->errlen,
				       "%s: hard link to something that is not an earlier file of "
				       "the kit",
				       shown);
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
			return kit_err(KIT_REFUSED, x->err, x->errlen, "%s: %s", shown,
				       target ? why : "link without a target");
		}
		rc = symlinkat(target, pfd, base);
		close(pfd);
		if (rc < 0)
			return kit_err(errno == EEXIST ? KIT_REFUSED : -1, x->err, x->errlen,
				       "%s: cannot make the link: %s", shown, strerror(errno));
		x->st->links++;
		return 0;
	}
	if (archive_entry_size_is_set(e) && archive_entry_size(e) > x->lim->member_max) {
		close(pfd);
		return kit_err(KIT_REFUSED, x->err, x->errlen,
			       "%s: claims %lld bytes, over the cap of %lld bytes per member", shown,
			       (long long)archive_entry_size(e), x->lim->member_max);
	}
	if (archive_entry_size_is_set(e) && x->total + archive_entry_size(e) > x->lim->total_max) {
		close(pfd);
		return kit_err(KIT_REFUSED, x->err, x->errlen,
			       "%s: the archive holds more than the cap of %lld bytes", shown,
			       x->lim->total_max);
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
		return kit_err(-1, err, errlen, "%s: path too long", services_dir);
	for (char *s = servicesparent + 1;; s++) {
		if (*s == '/' || *s == 0) {
			char c = *s;
			*s = 0;
			if (mkdir(servicesparent, 0750) < 0 && errno != EEXIST)
				return kit_err(-1, err, errlen, "cannot create %s: %s",
					       servicesparent, strerror(errno));
			*s = c;
			if (c == 0)
				break;
		}
	}
	st->servicesfd = open(services_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->servicesfd < 0)
		return kit_err(-1, err, errlen, "cannot open %s: %s", services_dir,
			       strerror(errno));
	kit_clean_stale(st->servicesfd);
	snprintf(st->name, sizeof(st->name), ".new-%ld", (long)getpid());
	if (mkdirat(st->servicesfd, st->name, 0700) < 0) {
		kit_err(-1, err, errlen, "cannot create %s/%s: %s", services_dir, st->name,
			strerror(errno));
		st->name[0] = 0;
		goto out;
	}
	x.rootfd = openat(st->servicesfd, st->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	r = calloc(1, sizeof(*r));
	if (x.rootfd < 0 || r == NULL) {
		kit_err(-1, err, errlen, "cannot open %s/%s: %s", services_dir, st->name,
			strerror(errno));
		goto out;
	}
	/* "-": standard input, so that root can hand the node's user a kit file only root
	 * reads (sudo -u flip flip-fl install-kit - < kit.tar.gz) */
	r->fd = strcmp(tarball, "-") == 0 ? fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3)
					  : open(tarball, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (r->fd < 0) {
		kit_err(-1, err, errlen, "cannot open %s: %s", tarball, strerror(errno));
		goto out;
	}
	if (fstat(r->fd, &sb) < 0 || !S_ISREG(sb.st_mode) || fcntl(r->fd, F_SETFL, 0) < 0) {
		rc = kit_err(KIT_REFUSED, err, errlen, "%s: not a regular file", tarball);
		goto out;
	}
	r->md = EVP_MD_CTX_new();
	x.a = archive_read_new();
	if (r->md == NULL || x.a == NULL || EVP_DigestInit_ex(r->md, EVP_sha256(), NULL) != 1) {
		kit_err(-1, err, errlen, "out of memory");
		goto out;
	}
	/* tar only, and only the compressions libarchive does in-process */
	archive_read_support_format_tar(x.a);
	archive_read_support_filter_gzip(x.a);
	archive_read_support_filter_bzip2(x.a);
	archive_read_support_filter_xz(x.a);
	archive_read_support_filter_zstd(x.a);
	if (archive_read_open(x.a, r, NULL, kit_read_cb, NULL) != ARCHIVE_OK) {
		rc = kit_err(KIT_REFUSED, err, errlen, "%s: not a tar archive: %s", tarball,
			archive_error_string(x.a) ? archive_error_string(x.a) : "?");
		goto out;
	}
	x.lim = lim;
	x.st = st;
	x.err = err;
	x.errlen = errlen;
	while ((r2 = archive_read_next_header(x.a, &e)) == ARCHIVE_OK || r2 == ARCHIVE_WARN) {
		if (++x.entries > lim->entries_max) {
			rc = kit_err(KIT_REFUSED, err, errlen,
				"%s: more than the cap of %ld entries", tarball, lim->entries_max);
			goto out;
		}
		if ((rc = kit_member(&x, e)) != 0)
			goto out;
		rc = -1;
	}
	if (r2 != ARCHIVE_EOF) {
		rc = kit_err(KIT_REFUSED, err, errlen, "%s: corrupt or truncated archive: %s", tarball,
			archive_error_string(x.a) ? archive_error_string(x.a) : "?");
		goto out;
	}
	/* the fingerprint covers the whole file, also what follows the end marker */
	for (;;) {
		const void *unused;
		la_ssize_t n = kit_read_cb(x.a, r, &unused);
		if (n < 0) {
			kit_err(-1, err, errlen, "%s: %s", tarball, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
	}
	if (EVP_DigestFinal_ex(r->md, md, &mdlen) != 1) {
		kit_err(-1, err, errlen, "cannot hash %s", tarball);
		goto out;
	}
	for (unsigned int i = 0; i < mdlen && i < 32; i++)
		snprintf(st->fingerprint + 2 * i, 3, "%02x", md[i]);
	if (kit_find_root(x.rootfd, st->root, sizeof(st->root)) < 0) {
		rc = kit_err(KIT_REFUSED, err, errlen,
			"%s: no startup/fed_client.json at the top of the archive or under a "
			"single folder",
			tarball);
		goto out;
	}
	kitfd = kit_mkdirs(x.rootfd, st->root, 0);
	if (kitfd < 0 || durable_mkdir(kitfd, "transfer", 0750) < 0 ||
	    durable_mkdir(kitfd, "local", 0750) < 0 || kit_sync_tree(x.rootfd, 0) < 0 ||
	    fchmod(x.rootfd, 0750) < 0) {
		kit_err(-1, err, errlen, "cannot finish the kit in %s/%s: %s", services_dir,
			st->name, strerror(errno));
		goto out;
	}
	if (snprintf(st->path, sizeof(st->path), "%s/%s%s%s", services_dir, st->name,
		     st->root[0] ? "/" : "", st->root) >= (int)sizeof(st->path)) {
		kit_err(-1, err, errlen, "%s: path too long", services_dir);
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
		return kit_err(-1, err, errlen, "nothing staged");
	snprintf(src, sizeof(src), "%s%s%s", st->name, st->root[0] ? "/" : "", st->root);
	if (fstatat(st->servicesfd, slot, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT)
			return kit_err(-1, err, errlen, "cannot look at the live kit %s: %s", slot,
				       strerror(errno));
		if (renameat2(st->servicesfd, src, st->servicesfd, slot, RENAME_NOREPLACE) < 0 &&
		    renameat(st->servicesfd, src, st->servicesfd, slot) < 0)
			return kit_err(-1, err, errlen, "cannot move the new kit into place: %s",
				       strerror(errno));
	} else if (renameat2(st->servicesfd, src, st->servicesfd, slot, RENAME_EXCHANGE) < 0) {
		/* a file system without exchange: aside, then in (a moment without a kit) */
		if (errno != EINVAL && errno != ENOSYS)
			return kit_err(-1, err, errlen, "cannot exchange the kits: %s",
				       strerror(errno));
		snprintf(old, sizeof(old), ".old-%ld", (long)getpid());
		if (renameat(st->servicesfd, slot, st->servicesfd, old) < 0)
			return kit_err(-1, err, errlen, "cannot move the old kit aside: %s",
				       strerror(errno));
		if (renameat(st->servicesfd, src, st->servicesfd, slot) < 0) {
			int saved = errno;
			(void)renameat(st->servicesfd, old, st->servicesfd, slot);
			return kit_err(-1, err, errlen, "cannot move the new kit into place: %s",
				       strerror(saved));
		}
		(void)durable_remove_tree(st->servicesfd, old);
	}
	st->switched = 1;
	if (durable_fsync_dir(st->servicesfd) < 0)
		return kit_err(-1, err, errlen, "cannot fsync the kit folder: %s", strerror(errno));
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

/* ---- verification --------------------------------------------------------------- */

/* kit_read_x509 - the first certificate of a PEM file in dirfd */
static X509 *kit_read_x509(int dirfd, const char *name)
{
	char *data;
	size_t len;
	X509 *x = NULL;
	BIO *b;

	if (durable_read(dirfd, name, KIT_PEM_MAX, &data, &len) < 0)
		return NULL;
	b = BIO_new_mem_buf(data, (int)len);
	if (b != NULL)
		x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	free(data);
	return x;
}

/* kit_no_passphrase - PEM callback: an encrypted key is refused, never prompted for */
static int kit_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return -1;
}

/* kit_time - an ASN1_TIME as time_t; 0 when it cannot be read */
static time_t kit_time(const ASN1_TIME *t)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return timegm(&tm);
}

/* kit_date - a time for a message */
static void kit_date(time_t t, char *buf, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M UTC", &tm);
}

/* kit_pss_verify - RSA-PSS SHA-256 signature of data by pkey */
static int kit_pss_verify(EVP_PKEY *pkey, const unsigned char *sig, size_t siglen,
			  const unsigned char *data, size_t len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int ok = 0;

	if (ctx != NULL && EVP_DigestVerifyInit(ctx, &pctx, EVP_sha256(), NULL, pkey) == 1 &&
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
	    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) > 0 &&
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) > 0)
		ok = EVP_DigestVerify(ctx, sig, siglen, data, len) == 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}

/* kit_cmp_names - qsort order of file names */
static int kit_cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* kit_verify_signatures - signature.json against the files of startup/ */
static void kit_verify_signatures(int sfd, EVP_PKEY *pkey, struct kit_findings *f)
{
	char **names = NULL, *data, shown[160];
	size_t n = 0, cap = 0, len;
	json_t *sigs, *v;
	json_error_t jerr;
	struct dirent *de;
	const char *key;
	DIR *d;
	int dfd;

	if (durable_read(sfd, "signature.json", KIT_PEM_MAX, &data, &len) < 0)
		return; /* reported as missing already */
	sigs = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	free(data);
	if (!json_is_object(sigs)) {
		kit_find(f, 0, "startup/signature.json: not a JSON object of file names");
		json_decref(sigs);
		return;
	}
	dfd = dup(sfd);
	if (dfd < 0 || (d = fdopendir(dfd)) == NULL) {
		if (dfd >= 0)
			close(dfd);
		kit_find(f, 0, "startup/: cannot list: %s", strerror(errno));
		json_decref(sigs);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    strcmp(de->d_name, "signature.json") == 0)
			continue;
		if (n == cap) {
			char **nn = realloc(names, (cap = cap ? cap * 2 : 16) * sizeof(*names));
			if (nn == NULL)
				break;
			names = nn;
		}
		if ((names[n] = strdup(de->d_name)) != NULL)
			n++;
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), kit_cmp_names);
	for (size_t i = 0; i < n; i++) {
		unsigned char *sig = NULL;
		size_t siglen;
		struct stat sb;
		const char *b64;

		kit_echo(names[i], shown, sizeof(shown));
		if (fstatat(sfd, names[i], &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(sb.st_mode)) {
			kit_find(f, 0, "startup/%s: not a regular file (startup/ holds only signed "
				 "files)", shown);
			continue;
		}
		v = json_object_get(sigs, names[i]);
		if (v == NULL) {
			kit_find(f, 0, "startup/signature.json: no signature for %s", shown);
			continue;
		}
		b64 = json_string_value(v);
		if (b64 == NULL || b64_decode(b64, strlen(b64), &sig, &siglen) < 0) {
			kit_find(f, 0, "startup/signature.json: the signature of %s is not base64",
				 shown);
			continue;
		}
		if (pkey == NULL) {
			free(sig);
			continue; /* rootCA.pem's problem is reported once */
		}
		if (durable_read(sfd, names[i], KIT_STARTUP_FILE_MAX, &data, &len) < 0) {
			kit_find(f, 0, "startup/%s: cannot read: %s", shown, strerror(errno));
		} else {
			if (!kit_pss_verify(pkey, sig, siglen, (unsigned char *)data, len))
				kit_find(f, 0,
					 "startup/%s: signature does not verify against rootCA.pem "
					 "(changed after the kit was made?)",
					 shown);
			OPENSSL_cleanse(data, len); /* client.key is among them */
			free(data);
		}
		free(sig);
	}
	json_object_foreach(sigs, key, v) {
		int found = 0;

		for (size_t i = 0; i < n && !found; i++)
			found = strcmp(names[i], key) == 0;
		if (!found)
			kit_find(f, 0, "startup/signature.json: signs %s, which is not in startup/",
				 kit_echo(key, shown, sizeof(shown)));
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	json_decref(sigs);
}

/* kit_verify_slot - fed_client.json names the slot */
static void kit_verify_slot(int sfd, const char *slot, struct kit_findings *f)
{
	char *data, shown[160];
	size_t len;
	json_t *doc;
	json_error_t jerr;
	const char *fqsn;

	if (durable_read(sfd, "fed_client.json", KIT_PEM_MAX, &data, &len) < 0)
		return;
	doc = json_loadb(data, len, 0, &jerr);
	free(data);
	if (doc == NULL) {
		kit_find(f, 0, "startup/fed_client.json: not JSON (line %d: %s)", jerr.line,
			 jerr.text);
		return;
	}
	fqsn = json_string_value(json_object_get(json_object_get(doc, "client"), "fqsn"));
	if (fqsn == NULL)
		kit_find(f, 0, "startup/fed_client.json: no client.fqsn (the kit's slot)");
	else if (slot == NULL || strcmp(fqsn, slot) != 0)
		kit_find(f, 0, "startup/fed_client.json: the kit is for slot %s, not FL_KIT_SLOT %s",
			 kit_echo(fqsn, shown, sizeof(shown)), slot ? slot : "(unset)");
	json_decref(doc);
}

/* kit_verify_certs - client.crt chains to rootCA.pem, in date; client.key matches */
static void kit_verify_certs(int sfd, X509 *root, time_t now, struct kit_findings *f)
{
	X509 *cert = kit_read_x509(sfd, "client.crt");
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	EVP_PKEY *key = NULL;
	char *data, date[32];
	size_t len;
	struct stat sb;
	time_t nb, na;

	if (cert == NULL) {
		if (faccessat(sfd, "client.crt", F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			kit_find(f, 0, "startup/client.crt: not a PEM certificate");
		return;
	}
	if (root != NULL) {
		store = X509_STORE_new();
		ctx = X509_STORE_CTX_new();
		if (store != NULL && ctx != NULL && X509_STORE_add_cert(store, root) == 1 &&
		    X509_STORE_CTX_init(ctx, store, cert, NULL) == 1) {
			/* dates are checked below, with messages that say which and when */
			X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_NO_CHECK_TIME);
			if (X509_verify_cert(ctx) != 1)
				kit_find(f, 0, "startup/client.crt: does not chain to rootCA.pem (%s)",
					 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		} else {
			kit_find(f, 0, "startup/client.crt: cannot be checked (out of memory)");
		}
		X509_STORE_CTX_free(ctx);
		X509_STORE_free(store);
		na = kit_time(X509_get0_notAfter(root));
		if (na != 0 && na < now) {
			kit_date(na, date, sizeof(date));
			kit_find(f, 0, "startup/rootCA.pem: expired on %s", date);
		}
	}
	nb = kit_time(X509_get0_notBefore(cert));
	na = kit_time(X509_get0_notAfter(cert));
	f->cert_not_after = na;
	if (nb != 0 && nb > now) {
		kit_date(nb, date, sizeof(date));
		kit_find(f, 0, "startup/client.crt: not valid before %s (check the clock)", date);
	}
	kit_date(na, date, sizeof(date));
	if (na == 0)
		kit_find(f, 0, "startup/client.crt: unreadable end of validity");
	else if (na < now)
		kit_find(f, 0, "startup/client.crt: expired on %s; ask the FL server's admin for "
			 "a new kit", date);
	else if (na - now < (time_t)KIT_EXPIRY_WARN_DAYS * 86400)
		kit_find(f, 1, "startup/client.crt: expires on %s, in %ld days; ask for a new kit",
			 date, (long)((na - now) / 86400));

	if (durable_read(sfd, "client.key", KIT_PEM_MAX, &data, &len) < 0) {
		X509_free(cert);
		return;
	}
	/* the FL client's group reads it (kit_share), nobody else */
	if (fstatat(sfd, "client.key", &sb, AT_SYMLINK_NOFOLLOW) == 0 && (sb.st_mode & 027))
		kit_find(f, 0, "startup/client.key: mode %04o lets others read or change the key: "
			 "chmod 0640",
			 (unsigned)(sb.st_mode & 07777));
	BIO *b = BIO_new_mem_buf(data, (int)len);
	if (b != NULL)
		key = PEM_read_bio_PrivateKey(b, NULL, kit_no_passphrase, NULL);
	BIO_free(b);
	OPENSSL_cleanse(data, len);
	free(data);
	if (key == NULL)
		kit_find(f, 0, "startup/client.key: not an unencrypted PEM private key");
	else if (EVP_PKEY_eq(key, X509_get0_pubkey(cert)) != 1)
		kit_find(f, 0, "startup/client.key: not the key of client.crt");
	EVP_PKEY_free(key);
	X509_free(cert);
}

/* kit_verify_root_pin - rootCA.pem is the root FL_KIT_ROOT_CA_SHA256 names */
static void kit_verify_root_pin(X509 *root, const char *pin, struct kit_findings *f)
{
	unsigned char md[EVP_MAX_MD_SIZE], *der = NULL;
	unsigned int mdlen = 0;
	char want[65], got[65];
	size_t n = 0;
	int len;

	for (const char *p = pin; *p; p++) {
		if (*p == ':' || *p == ' ')
			continue;
		if (n >= 64 || !strchr("0123456789abcdefABCDEF", *p) || *p == 0) {
			n = 65;
			break;
		}
		want[n++] = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
	}
	if (n != 64) {
		kit_find(f, 0, "FL_KIT_ROOT_CA_SHA256 is not a SHA-256 fingerprint (64 hex digits)");
		return;
	}
	want[64] = 0;
	if (root == NULL)
		return;	/* rootCA.pem's own problem is reported already */
	len = i2d_X509(root, &der);
	if (len <= 0 || EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != 32) {
		OPENSSL_free(der);
		kit_find(f, 0, "startup/rootCA.pem: cannot compute its fingerprint");
		return;
	}
	OPENSSL_free(der);
	for (unsigned i = 0; i < 32; i++)
		snprintf(got + 2 * i, 3, "%02x", md[i]);
	if (strcmp(got, want) != 0)
		kit_find(f, 0, "startup/rootCA.pem: root CA fingerprint %.16s... is not the one "
			 "FL_KIT_ROOT_CA_SHA256 pins (%.16s...): this kit was not made by the "
			 "expected hub", got, want);
}

/* kit_verify - docs/design/fl.md's check of the kit's own files */
void kit_verify(const char *kit, const char *slot, time_t now, const struct kit_trust *trust,
		struct kit_findings *f)
{
	char path[PATH_MAX];
	X509 *root = NULL;
	EVP_PKEY *pkey = NULL;
	struct stat sb;
	int sfd;

	if (snprintf(path, sizeof(path), "%s/startup", kit) >= (int)sizeof(path)) {
		kit_find(f, 0, "%s: path too long", kit);
		return;
	}
	sfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sfd < 0) {
		kit_find(f, 0, "%s: %s; install the kit with flip-fl install-kit", path,
			 errno == ENOENT ? "no kit here" : strerror(errno));
		return;
	}
	for (int i = 0; kit_startup_files[i]; i++) {
		if (fstatat(sfd, kit_startup_files[i], &sb, AT_SYMLINK_NOFOLLOW) < 0)
			kit_find(f, 0, "startup/%s: missing", kit_startup_files[i]);
		else if (!S_ISREG(sb.st_mode))
			kit_find(f, 0, "startup/%s: not a regular file", kit_startup_files[i]);
	}
	for (int i = 0; kit_startup_scripts[i]; i++)
		if (fstatat(sfd, kit_startup_scripts[i], &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(sb.st_mode) && (sb.st_mode & 0100) == 0)
			kit_find(f, 0, "startup/%s: not executable: chmod 0750",
				 kit_startup_scripts[i]);
	root = kit_read_x509(sfd, "rootCA.pem");
	if (root == NULL) {
		if (fstatat(sfd, "rootCA.pem", &sb, AT_SYMLINK_NOFOLLOW) == 0)
			kit_find(f, 0, "startup/rootCA.pem: not a PEM certificate");
	} else {
		pkey = X509_get0_pubkey(root);
		if (pkey == NULL || EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
			kit_find(f, 0, "startup/rootCA.pem: not an RSA key; cannot check signatures");
			pkey = NULL;
		}
	}
	if (trust && trust->root_ca_sha256 && trust->root_ca_sha256[0])
		kit_verify_root_pin(root, trust->root_ca_sha256, f);
	if (fstatat(sfd, "signature.json", &sb, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT) {
		/* NVFLARE 2.8 provisions kits without it and treats unlisted files as not signed */
		if (trust && trust->require_signature)
			kit_find(f, 0, "startup/signature.json: missing, and FL_KIT_REQUIRE_SIGNATURE "
				 "is set: an unsigned kit is refused");
		else {
			f->unsigned_kit = 1;
			kit_find(f, 1, "startup/signature.json: missing; the kit's files are not signed "
				 "(NVFLARE provisions such kits): accepted, as FL_KIT_REQUIRE_SIGNATURE "
				 "is not set");
		}
	} else if (!S_ISREG(sb.st_mode)) {
		kit_find(f, 0, "startup/signature.json: not a regular file");
	} else {
		kit_verify_signatures(sfd, pkey, f);
	}
	kit_verify_slot(sfd, slot, f);
	kit_verify_certs(sfd, root, now, f);
	X509_free(root);
	close(sfd);
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
			return kit_err(-1, err, errlen, "%s: cannot give it to the FL client's group "
				       "%ld: %s", up, (long)group, strerror(errno));
	}
	if (kit_share_at(AT_FDCWD, kit, group, 0, 1) < 0)
		return kit_err(-1, err, errlen,
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
				rc = kit_err(-1, err, errlen, "local/%s: cannot remove: %s", name,
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
		return kit_err(-1, err, errlen, "local/%s: out of memory", name);
	}
	size_t len = strlen(text);
	text[len++] = '\n'; /* replaces the NUL: written with its length */
	if (!had || oldlen != len || memcmp(old, text, len) != 0) {
		if (durable_write(lfd, name, text, len, 0640) < 0)
			rc = kit_err(-1, err, errlen, "local/%s: cannot write: %s", name,
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
		return kit_err(-1, err, errlen, "%s: %s", kit, strerror(errno));
	if (durable_mkdir(kfd, "local", 0750) < 0 ||
	    (lfd = openat(kfd, "local", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		snprintf(path, sizeof(path), "%s/local", kit);
		close(kfd);
		return kit_err(-1, err, errlen, "%s: %s", path, strerror(errno));
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
		kit_err(-1, err, errlen, "out of memory");
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

/* kit_cert_expiry - client.crt's notAfter */
int kit_cert_expiry(const char *kit, time_t *not_after)
{
	char path[PATH_MAX];
	X509 *cert;
	int sfd;

	*not_after = 0;
	if (snprintf(path, sizeof(path), "%s/startup", kit) >= (int)sizeof(path))
		return -1;
	sfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sfd < 0)
		return -1;
	cert = kit_read_x509(sfd, "client.crt");
	close(sfd);
	if (cert == NULL)
		return -1;
	*not_after = kit_time(X509_get0_notAfter(cert));
	X509_free(cert);
	return *not_after ? 0 : -1;
}
