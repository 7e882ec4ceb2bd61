/* SPDX-License-Identifier: Apache-2.0 */
/*
 * durable - files that are either wholly there or not at all.
 *
 * SYNOPSIS
 *	#include "lib/durable.h"
 *
 *	int durable_write(int dirfd, const char *file, const void *data, size_t len, int mode);
 *	int durable_write_json(int dirfd, const char *file, json_t *value, int mode);
 *	int durable_read(int dirfd, const char *file, size_t cap, char **data, size_t *len);
 *	int durable_open_file(int dirfd, const char *file, struct stat *st);
 *	int durable_fsync_dir(int dirfd);
 *	int durable_mkdir(int dirfd, const char *name, int mode);
 *	int durable_write_nosync(int dirfd, const char *file, const void *data, size_t len,
 *				 int mode);
 *	int durable_write_json_sync(int dirfd, const char *file, json_t *value, int mode,
 *				    int sync);
 *	int durable_create(int dirfd, const char *file, const void *data, size_t len, int mode,
 *			   int sync);
 *	int durable_fsync_many(const struct durable_item *items, size_t n);
int durable_remove_tree(int at, const char *name);
int durable_copy(int srcdir, const char *src, int dstdir, const char *dst, unsigned long long cap,
		 int mode);
 *	int durable_remove_tree(int at, const char *name);
int durable_copy(int srcdir, const char *src, int dstdir, const char *dst, unsigned long long cap,
		 int mode);
 *	int durable_copy(int srcdir, const char *src, int dstdir, const char *dst,
 *			 unsigned long long cap, int mode);
 *
 * DESCRIPTION
 *	durable_write() writes data to `.<file>.tmp.<pid>` in dirfd (O_NOFOLLOW,
 *	O_EXCL after removing a stale temporary of ours), fsyncs it, renames it over
 *	file and fsyncs the directory: a reader sees the old file or the new one,
 *	never half of either, and after return the new one survives a power cut. On
 *	any failure (disk full included) the temporary is removed and the old file is
 *	left as it was. durable_write_json() writes jansson's compact, ASCII-only text
 *	plus a newline; durable_write_json_sync() takes sync: 1 as durable_write,
 *	0 as durable_write_nosync, -1/-2 as durable_create without/with fsync.
 *
 *	durable_write_nosync() is durable_write without the two fsyncs, for a caller
 *	that writes many files and then makes them durable at once with
 *	durable_fsync_many() before it lets anyone see them: the rename inside still
 *	makes each file all-or-nothing.
 *
 *	durable_fsync_many() fsyncs each item (a file by name in its directory, or the
 *	directory itself when name is NULL). Unlike syncfs(2) it flushes only these,
 *	never other programs' dirty data. Returns 0, or -1 with the first failure's
 *	errno (after trying them all).
 *
 *	durable_create() writes a new file directly under its name (O_EXCL), fsynced
 *	when sync is set: only for a directory nobody else reads yet (a job being
 *	built in the spool's tmp/), where a temporary name would buy nothing.
 *
 *	durable_open_file() opens file under dirfd for reading only if it is a regular
 *	file, never through a link (O_NOFOLLOW) and without blocking on a FIFO planted
 *	under its name; *st is its fstat. The descriptor is blocking again when
 *	returned; -1 with errno (EINVAL: not a regular file) otherwise.
 *
 *	durable_read() reads a regular file (O_NOFOLLOW) of at most cap bytes into a
 *	malloc'd NUL-terminated buffer; a larger file fails with EFBIG.
 *
 *	durable_copy() copies a regular file (O_NOFOLLOW) in bounded chunks, so its size
 *	never becomes one allocation, under a temporary name, fsynced, renamed into
 *	place: write-fsync-rename for files too large to hold. A source larger than cap
 *	fails with EFBIG and leaves nothing behind.
 *
 *	durable_remove_tree() removes name under at (a file, or a folder with all it
 *	holds), never following a symbolic link out, at most 64 levels deep; a missing
 *	name is success.
 *
 *	durable_mkdir() creates a directory if missing and checks that what is there
 *	is a directory (not a link).
 *
 * DIAGNOSTICS
 *	0 on success, -1 with errno set. Nothing is printed.
 */
#ifndef FLIP_DURABLE_H
#define FLIP_DURABLE_H

#include <stddef.h>
#include <sys/stat.h>
#include <jansson.h>

int durable_write(int dirfd, const char *file, const void *data, size_t len, int mode);
int durable_write_json(int dirfd, const char *file, json_t *value, int mode);
int durable_read(int dirfd, const char *file, size_t cap, char **data, size_t *len);
int durable_open_file(int dirfd, const char *file, struct stat *st);
int durable_fsync_dir(int dirfd);
int durable_mkdir(int dirfd, const char *name, int mode);
int durable_write_nosync(int dirfd, const char *file, const void *data, size_t len, int mode);
int durable_write_json_sync(int dirfd, const char *file, json_t *value, int mode, int sync);
int durable_create(int dirfd, const char *file, const void *data, size_t len, int mode, int sync);
struct durable_item {
	int dirfd;
	const char *name;	/* NULL: the directory itself */
};
int durable_fsync_many(const struct durable_item *items, size_t n);
int durable_remove_tree(int at, const char *name);
int durable_copy(int srcdir, const char *src, int dstdir, const char *dst, unsigned long long cap,
		 int mode);

#endif
