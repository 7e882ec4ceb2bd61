/* SPDX-License-Identifier: Apache-2.0 */
/*
 * durable - write-fsync-rename files and capped reads (see durable.h).
 */
#include "lib/durable.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* durable_fsync_dir - make a directory's entries durable */
int durable_fsync_dir(int dirfd)
{
	if (fsync(dirfd) < 0 && errno != EINVAL)
		return -1;
	return 0;
}

static int durable_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static int durable_fsync_item(const struct durable_item *it)
{
	int fd, rc;

	if (it->name == NULL)
		return durable_fsync_dir(it->dirfd);
	fd = openat(it->dirfd, it->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	if (rc < 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return close(fd);
}

/* durable_fsync_many - fsync these files and directories (all of them, first error kept) */
int durable_fsync_many(const struct durable_item *items, size_t n)
{
	int err = 0;

	for (size_t i = 0; i < n; i++)
		if (durable_fsync_item(&items[i]) < 0 && err == 0)
			err = errno ? errno : EIO;
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

static int durable_write_file(int dirfd, const char *file, const void *data, size_t len,
			      int mode, int sync);

/* durable_write - write a whole file under a temporary name, fsync, rename */
int durable_write(int dirfd, const char *file, const void *data, size_t len, int mode)
{
	return durable_write_file(dirfd, file, data, len, mode, 1);
}

/* durable_write_nosync - the same, durability left to a later durable_syncfs */
int durable_write_nosync(int dirfd, const char *file, const void *data, size_t len, int mode)
{
	return durable_write_file(dirfd, file, data, len, mode, 0);
}

static int durable_write_file(int dirfd, const char *file, const void *data, size_t len,
			      int mode, int sync)
{
	char tmp[256];
	int fd, saved;

	if (snprintf(tmp, sizeof(tmp), ".%s.tmp.%ld", file, (long)getpid()) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	(void)unlinkat(dirfd, tmp, 0);	/* a stale one from a crashed run with our pid */
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	if (durable_write_all(fd, data, len) < 0 || (sync && fsync(fd) < 0))
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (renameat(dirfd, tmp, dirfd, file) < 0)
		goto fail;
	return sync ? durable_fsync_dir(dirfd) : 0;
fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	(void)unlinkat(dirfd, tmp, 0);
	errno = saved;
	return -1;
}

/* durable_create - a new file in a private directory, written under its own name */
int durable_create(int dirfd, const char *file, const void *data, size_t len, int mode, int sync)
{
	int fd = openat(dirfd, file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	int saved;

	if (fd < 0)
		return -1;
	if (durable_write_all(fd, data, len) < 0 || (sync && fsync(fd) < 0)) {
		saved = errno;
		close(fd);
		(void)unlinkat(dirfd, file, 0);
		errno = saved;
		return -1;
	}
	if (close(fd) < 0)
		return -1;
	return sync ? durable_fsync_dir(dirfd) : 0;
}

/* durable_write_json - a JSON value as one compact ASCII line */
int durable_write_json(int dirfd, const char *file, json_t *value, int mode)
{
	return durable_write_json_sync(dirfd, file, value, mode, 1);
}

/* durable_write_json_sync - the same, with (1) or without (0) the fsyncs; -1/-2: create
 * under its own name without/with fsync (durable_create) */
int durable_write_json_sync(int dirfd, const char *file, json_t *value, int mode, int sync)
{
	char *text = json_dumps(value, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
	int rc;

	if (text == NULL) {
		errno = ENOMEM;
		return -1;
	}
	size_t n = strlen(text);
	char *line = realloc(text, n + 2);
	if (line == NULL) {
		free(text);
		errno = ENOMEM;
		return -1;
	}
	line[n] = '\n';
	line[n + 1] = 0;
	rc = sync < 0 ? durable_create(dirfd, file, line, n + 1, mode, sync == -2)
		      : durable_write_file(dirfd, file, line, n + 1, mode, sync);
	free(line);
	return rc;
}

/* durable_open_file - a regular file for reading, never through a link or a FIFO */
int durable_open_file(int dirfd, const char *file, struct stat *st)
{
	int fd, saved;

	/* O_NONBLOCK: a FIFO planted under a spool name must fail at once, not hang open(2) */
	fd = openat(dirfd, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -1;
	if (fstat(fd, st) < 0)
		goto fail;
	if (!S_ISREG(st->st_mode)) {
		errno = EINVAL;
		goto fail;
	}
	if (fcntl(fd, F_SETFL, 0) < 0)
		goto fail;
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/* durable_read - read a regular file of at most cap bytes */
int durable_read(int dirfd, const char *file, size_t cap, char **data, size_t *len)
{
	struct stat st;
	char *buf = NULL;
	size_t have = 0;
	int fd, saved;

	*data = NULL;
	*len = 0;
	if ((fd = durable_open_file(dirfd, file, &st)) < 0)
		return -1;
	if ((unsigned long long)st.st_size > cap) {
		errno = EFBIG;
		goto fail;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL)
		goto fail;
	for (;;) {
		ssize_t r = read(fd, buf + have, (size_t)st.st_size + 1 - have);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		if (r == 0)
			break;
		have += (size_t)r;
		if (have > (size_t)st.st_size) {	/* grew under us */
			errno = EFBIG;
			goto fail;
		}
	}
	close(fd);
	buf[have] = 0;
	*data = buf;
	*len = have;
	return 0;
fail:
	saved = errno;
	free(buf);
	close(fd);
	errno = saved;
	return -1;
}

/* durable_mkdir - a directory that exists afterwards, and is one */
int durable_mkdir(int dirfd, const char *name, int mode)
{
	struct stat st;

	if (mkdirat(dirfd, name, (mode_t)mode) == 0)
		return 0;
	if (errno != EEXIST)
		return -1;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

#define DURABLE_TREE_DEPTH 64

static int durable_remove_at(int at, const char *name, int depth)
{
	struct stat st;
	struct dirent *de;
	DIR *d;
	int fd, rc = 0;

	if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(at, name, 0);
	if (depth > DURABLE_TREE_DEPTH) {
		errno = ELOOP;
		return -1;
	}
	fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	/* an extracted kit member may come with no write permission on its folder: ours */
	(void)fchmod(fd, 0700);
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (durable_remove_at(dirfd(d), de->d_name, depth + 1) < 0)
			rc = -1;
	}
	closedir(d);
	if (unlinkat(at, name, AT_REMOVEDIR) < 0)
		rc = -1;
	return rc;
}

/* durable_remove_tree - remove name under at, whatever it is, never following a link */
int durable_remove_tree(int at, const char *name)
{
	return durable_remove_at(at, name, 0);
}

/* durable_copy - a bounded, streaming write-fsync-rename copy of one regular file */
int durable_copy(int srcdir, const char *src, int dstdir, const char *dst, unsigned long long cap,
		 int mode)
{
	char tmp[256], buf[1 << 16];
	struct stat st;
	unsigned long long total = 0;
	int in = -1, out = -1, saved;

	if (snprintf(tmp, sizeof(tmp), ".%s.tmp.%ld", dst, (long)getpid()) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	in = openat(srcdir, src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (in < 0 || fstat(in, &st) < 0)
		goto fail;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		goto fail;
	}
	if ((unsigned long long)st.st_size > cap) {
		errno = EFBIG;
		goto fail;
	}
	(void)unlinkat(dstdir, tmp, 0);
	out = openat(dstdir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (out < 0)
		goto fail;
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		total += (unsigned long long)n;
		if (total > cap) {
			errno = EFBIG;	/* grew while we copied */
			goto fail;
		}
		if (durable_write_all(out, buf, (size_t)n) < 0)
			goto fail;
	}
	if (fsync(out) < 0 || close(out) < 0) {
		out = -1;
		goto fail;
	}
	out = -1;
	close(in);
	in = -1;
	if (renameat(dstdir, tmp, dstdir, dst) < 0)
		goto fail;
	return durable_fsync_dir(dstdir);
fail:
	saved = errno;
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	(void)unlinkat(dstdir, tmp, 0);
	errno = saved;
	return -1;
}
