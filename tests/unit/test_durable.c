/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_durable - write-fsync-rename files and capped reads: round trips (empty,
 * binary, 1 MiB), the read cap (EFBIG), symlinks (a read refuses them; a write
 * replaces a link instead of following it, and a planted temporary link is not
 * followed), mode bits, durable_create (new files only, never through a link),
 * the no-fsync variants, durable_mkdir on what is already there, and a disk that
 * fills (a 32 KiB tmpfs, root only, skipped when mount is not permitted): the
 * failed write returns ENOSPC, the old file is intact, no temporary (nor half a
 * created file) remains, and a write works again once space is freed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/durable.h"

struct fixture {
	char dir[64];
	int dirfd;
	char mnt[96];	/* a small tmpfs mounted under dir, when a test mounts one */
	int mounted;
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path) < 0 ? -1 : 0;
	return unlink(path) < 0 ? -1 : 0;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	strcpy(f->dir, "/tmp/test_durable.XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	f->dirfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (f->dirfd < 0) {
		rmdir(f->dir);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	int rc;

	if (f->mounted)
		umount2(f->mnt, MNT_DETACH);
	close(f->dirfd);
	rc = nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return rc;
}

/* read_back - the file's whole content via durable_read with a generous cap */
static char *read_back(int dirfd, const char *file, size_t *len)
{
	char *data = NULL;

	assert_int_equal(durable_read(dirfd, file, 1u << 24, &data, len), 0);
	assert_non_null(data);
	return data;
}

/* temporaries - entries in the directory that look like durable_write's temporaries */
static int temporaries(int dirfd)
{
	int fd = dup(dirfd), n = 0;
	DIR *d;
	struct dirent *de;

	assert_true(fd >= 0);
	d = fdopendir(fd);
	assert_non_null(d);
	rewinddir(d);
	while ((de = readdir(d)) != NULL)
		if (strstr(de->d_name, ".tmp.") != NULL)
			n++;
	closedir(d);
	return n;
}

static void test_round_trip(void **state)
{
	struct fixture *f = *state;
	char *data;
	size_t len;

	assert_int_equal(durable_write(f->dirfd, "a.json", "{\"x\":1}\n", 8, 0600), 0);
	data = read_back(f->dirfd, "a.json", &len);
	assert_int_equal(len, 8);
	assert_string_equal(data, "{\"x\":1}\n");
	free(data);

	/* replace with something shorter: no tail of the old content survives */
	assert_int_equal(durable_write(f->dirfd, "a.json", "{}", 2, 0600), 0);
	data = read_back(f->dirfd, "a.json", &len);
	assert_int_equal(len, 2);
	assert_string_equal(data, "{}");
	free(data);
	assert_int_equal(temporaries(f->dirfd), 0);
}

static void test_round_trip_empty(void **state)
{
	struct fixture *f = *state;
	char *data;
	size_t len = 99;

	assert_int_equal(durable_write(f->dirfd, "empty", "", 0, 0600), 0);
	assert_int_equal(durable_read(f->dirfd, "empty", 0, &data, &len), 0);
	assert_int_equal(len, 0);
	assert_non_null(data);
	assert_int_equal(data[0], 0);
	free(data);
}

static void test_round_trip_binary(void **state)
{
	struct fixture *f = *state;
	size_t n = 1u << 20, len;
	unsigned char *buf = malloc(n);
	char *data;

	assert_non_null(buf);
	for (size_t i = 0; i < n; i++)
		buf[i] = (unsigned char)(i * 131 + (i >> 9));
	assert_int_equal(durable_write(f->dirfd, "blob", buf, n, 0600), 0);
	data = read_back(f->dirfd, "blob", &len);
	assert_int_equal(len, n);
	assert_memory_equal(data, buf, n);
	assert_int_equal(data[n], 0);	/* NUL-terminated beyond the data */
	free(data);
	free(buf);
}

static void test_read_cap(void **state)
{
	struct fixture *f = *state;
	char buf[100], *data = NULL;
	size_t len = 7;

	memset(buf, 'x', sizeof(buf));
	assert_int_equal(durable_write(f->dirfd, "capped", buf, sizeof(buf), 0600), 0);
	assert_int_equal(durable_read(f->dirfd, "capped", 100, &data, &len), 0);
	assert_int_equal(len, 100);
	free(data);
	errno = 0;
	assert_int_equal(durable_read(f->dirfd, "capped", 99, &data, &len), -1);
	assert_int_equal(errno, EFBIG);
	assert_null(data);
	assert_int_equal(len, 0);
	errno = 0;
	assert_int_equal(durable_read(f->dirfd, "capped", 0, &data, &len), -1);
	assert_int_equal(errno, EFBIG);
}

/*
 * fifo_read_returns - durable_read of the FIFO "fifo" (no writer) in a child with a
 * 1 s alarm: 1 when it came back with -1, 0 when it hung or read something.
 */
static int fifo_read_returns(int dirfd)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		char *data;
		size_t len;

		alarm(1);
		_exit(durable_read(dirfd, "fifo", 100, &data, &len) == -1 ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
		fail_msg("durable_read of a FIFO blocked in open(2) until killed");
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void test_read_refuses_other_kinds(void **state)
{
	struct fixture *f = *state;
	char *data;
	size_t len;

	errno = 0;
	assert_int_equal(durable_read(f->dirfd, "missing", 100, &data, &len), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(mkdirat(f->dirfd, "adir", 0700), 0);
	errno = 0;
	assert_int_equal(durable_read(f->dirfd, "adir", 100, &data, &len), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(mkfifoat(f->dirfd, "fifo", 0600), 0);
	assert_int_equal(fifo_read_returns(f->dirfd), 1);
}

static void test_symlink_read_refused(void **state)
{
	struct fixture *f = *state;
	char *data = NULL;
	size_t len;

	assert_int_equal(symlinkat("/etc/passwd", f->dirfd, "passwd"), 0);
	errno = 0;
	assert_int_equal(durable_read(f->dirfd, "passwd", 1u << 20, &data, &len), -1);
	assert_int_equal(errno, ELOOP);
	assert_null(data);

	/* a link to a file of our own is refused just the same */
	assert_int_equal(durable_write(f->dirfd, "real", "secret", 6, 0600), 0);
	assert_int_equal(symlinkat("real", f->dirfd, "alias"), 0);
	errno = 0;
	assert_int_equal(durable_read(f->dirfd, "alias", 100, &data, &len), -1);
	assert_int_equal(errno, ELOOP);
}

static void test_symlink_write_not_followed(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	char *data, tmp[64];
	size_t len;

	/* the file itself is a link: the write replaces the link, the target is untouched */
	assert_int_equal(durable_write(f->dirfd, "target", "keep", 4, 0600), 0);
	assert_int_equal(symlinkat("target", f->dirfd, "file"), 0);
	assert_int_equal(durable_write(f->dirfd, "file", "new", 3, 0600), 0);
	assert_int_equal(fstatat(f->dirfd, "file", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISREG(st.st_mode));
	data = read_back(f->dirfd, "target", &len);
	assert_string_equal(data, "keep");
	free(data);
	data = read_back(f->dirfd, "file", &len);
	assert_string_equal(data, "new");
	free(data);

	/* a link planted under our temporary name is not written through */
	snprintf(tmp, sizeof(tmp), ".other.tmp.%ld", (long)getpid());
	assert_int_equal(symlinkat("target", f->dirfd, tmp), 0);
	assert_int_equal(durable_write(f->dirfd, "other", "mine", 4, 0600), 0);
	data = read_back(f->dirfd, "target", &len);
	assert_string_equal(data, "keep");
	free(data);
	data = read_back(f->dirfd, "other", &len);
	assert_string_equal(data, "mine");
	free(data);
	assert_int_equal(temporaries(f->dirfd), 0);
}

static void assert_mode(int dirfd, const char *file, mode_t want)
{
	struct stat st;

	assert_int_equal(fstatat(dirfd, file, &st, AT_SYMLINK_NOFOLLOW), 0);
	if ((st.st_mode & 07777) != want)
		fail_msg("%s has mode %04o, want %04o", file, (unsigned)(st.st_mode & 07777),
			 (unsigned)want);
}

static void test_mode_bits(void **state)
{
	struct fixture *f = *state;
	mode_t old = umask(0);

	assert_int_equal(durable_write(f->dirfd, "m600", "x", 1, 0600), 0);
	assert_mode(f->dirfd, "m600", 0600);
	assert_int_equal(durable_write(f->dirfd, "m640", "x", 1, 0640), 0);
	assert_mode(f->dirfd, "m640", 0640);
	assert_int_equal(durable_write(f->dirfd, "m644", "x", 1, 0644), 0);
	assert_mode(f->dirfd, "m644", 0644);
	/* a replacement carries the mode asked for now, not the old file's */
	assert_int_equal(durable_write(f->dirfd, "m600", "y", 1, 0644), 0);
	assert_mode(f->dirfd, "m600", 0644);
	/* and the process umask still applies on top */
	umask(077);
	assert_int_equal(durable_write(f->dirfd, "masked", "x", 1, 0644), 0);
	umask(old);
	assert_mode(f->dirfd, "masked", 0600);
}

static void test_write_json(void **state)
{
	struct fixture *f = *state;
	json_t *v = json_pack("{s:i,s:[b,n],s:s}", "a", 1, "b", 1, "c", "caf\xc3\xa9");
	char *data;
	size_t len;

	assert_non_null(v);
	assert_int_equal(durable_write_json(f->dirfd, "v.json", v, 0600), 0);
	json_decref(v);
	data = read_back(f->dirfd, "v.json", &len);
	assert_true(len > 1);
	assert_int_equal(data[len - 1], '\n');
	assert_null(memchr(data, '\n', len - 1));	/* one line */
	assert_null(strchr(data, ' '));			/* compact */
	for (size_t i = 0; i < len; i++)
		assert_true((unsigned char)data[i] < 0x80);	/* ASCII only */
	v = json_loads(data, 0, NULL);
	assert_non_null(v);
	assert_string_equal(json_string_value(json_object_get(v, "c")), "caf\xc3\xa9");
	json_decref(v);
	free(data);
}

static void test_name_too_long(void **state)
{
	struct fixture *f = *state;
	char name[300];

	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = 0;
	errno = 0;
	assert_int_equal(durable_write(f->dirfd, name, "x", 1, 0600), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	assert_int_equal(temporaries(f->dirfd), 0);
}

static void test_create(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	char *data;
	size_t len;
	mode_t old = umask(0);

	assert_int_equal(durable_create(f->dirfd, "c1", "one", 3, 0600, 1), 0);
	assert_int_equal(durable_create(f->dirfd, "c0", "zero", 4, 0640, 0), 0);
	umask(old);
	data = read_back(f->dirfd, "c1", &len);
	assert_string_equal(data, "one");
	free(data);
	data = read_back(f->dirfd, "c0", &len);
	assert_string_equal(data, "zero");
	free(data);
	assert_int_equal(fstatat(f->dirfd, "c0", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(st.st_mode & 07777, 0640);

	/* only ever a new file: what is there is left alone */
	errno = 0;
	assert_int_equal(durable_create(f->dirfd, "c1", "other", 5, 0600, 1), -1);
	assert_int_equal(errno, EEXIST);
	data = read_back(f->dirfd, "c1", &len);
	assert_string_equal(data, "one");
	free(data);

	/* and a link under the name is not written through */
	assert_int_equal(symlinkat("c0", f->dirfd, "clink"), 0);
	errno = 0;
	assert_int_equal(durable_create(f->dirfd, "clink", "through", 7, 0600, 1), -1);
	assert_int_equal(errno, EEXIST);
	data = read_back(f->dirfd, "c0", &len);
	assert_string_equal(data, "zero");
	free(data);
	assert_int_equal(temporaries(f->dirfd), 0);
}

static void test_write_nosync(void **state)
{
	struct fixture *f = *state;
	char *data;
	size_t len;
	json_t *v = json_pack("{s:s}", "k", "v");

	assert_int_equal(durable_write_nosync(f->dirfd, "ns", "first", 5, 0600), 0);
	assert_int_equal(durable_write_nosync(f->dirfd, "ns", "2nd", 3, 0600), 0);
	data = read_back(f->dirfd, "ns", &len);
	assert_int_equal(len, 3);
	assert_string_equal(data, "2nd");
	free(data);
	/* durable_write_json_sync: 1 and 0 replace, -1 and -2 create */
	assert_int_equal(durable_write_json_sync(f->dirfd, "j1", v, 0600, 1), 0);
	assert_int_equal(durable_write_json_sync(f->dirfd, "j1", v, 0600, 0), 0);
	assert_int_equal(durable_write_json_sync(f->dirfd, "j2", v, 0600, -1), 0);
	assert_int_equal(durable_write_json_sync(f->dirfd, "j3", v, 0600, -2), 0);
	errno = 0;
	assert_int_equal(durable_write_json_sync(f->dirfd, "j3", v, 0600, -2), -1);
	assert_int_equal(errno, EEXIST);
	json_decref(v);
	data = read_back(f->dirfd, "j2", &len);
	assert_string_equal(data, "{\"k\":\"v\"}\n");
	free(data);
	struct durable_item items[] = {{f->dirfd, "j1"}, {f->dirfd, "j2"}, {f->dirfd, NULL}};
	assert_int_equal(durable_fsync_many(items, 3), 0);
	struct durable_item missing[] = {{f->dirfd, "nosuch"}, {f->dirfd, "j1"}};
	errno = 0;
	assert_int_equal(durable_fsync_many(missing, 2), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(temporaries(f->dirfd), 0);
}

/* durable_copy streams a large file, refuses links and oversized sources, leaves no temporary */
static void test_copy(void **state)
{
	struct fixture *f = *state;
	size_t n = 300 * 1024, len;
	char *big = malloc(n), *back;

	assert_non_null(big);
	for (size_t i = 0; i < n; i++)
		big[i] = (char)(i * 31 + 7);
	assert_int_equal(durable_write(f->dirfd, "src", big, n, 0600), 0);
	assert_int_equal(durable_copy(f->dirfd, "src", f->dirfd, "dst", 1 << 20, 0640), 0);
	back = read_back(f->dirfd, "dst", &len);
	assert_int_equal(len, n);
	assert_memory_equal(back, big, n);
	free(back);
	errno = 0;
	assert_int_equal(durable_copy(f->dirfd, "src", f->dirfd, "small", 1024, 0640), -1);
	assert_int_equal(errno, EFBIG);
	assert_int_equal(symlinkat("src", f->dirfd, "link"), 0);
	assert_int_equal(durable_copy(f->dirfd, "link", f->dirfd, "fromlink", 1 << 20, 0640), -1);
	assert_int_equal(faccessat(f->dirfd, "small", F_OK, 0), -1);
	assert_int_equal(faccessat(f->dirfd, "fromlink", F_OK, 0), -1);
	assert_int_equal(temporaries(f->dirfd), 0);
	free(big);
}

static void test_mkdir(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	mode_t old = umask(0);

	assert_int_equal(durable_mkdir(f->dirfd, "d", 0750), 0);
	umask(old);
	assert_int_equal(fstatat(f->dirfd, "d", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0750);
	/* already there: fine, and left as it was */
	assert_int_equal(durable_mkdir(f->dirfd, "d", 0700), 0);

	assert_int_equal(durable_write(f->dirfd, "plain", "x", 1, 0600), 0);
	errno = 0;
	assert_int_equal(durable_mkdir(f->dirfd, "plain", 0700), -1);
	assert_int_equal(errno, ENOTDIR);

	/* a link to a directory is not a directory */
	assert_int_equal(symlinkat("d", f->dirfd, "dlink"), 0);
	errno = 0;
	assert_int_equal(durable_mkdir(f->dirfd, "dlink", 0700), -1);
	assert_int_equal(errno, ENOTDIR);

	errno = 0;
	assert_int_equal(durable_mkdir(f->dirfd, "no/such", 0700), -1);
	assert_int_equal(errno, ENOENT);
}

/* mount_small - a tmpfs of `size` under the test's directory; 0, or -1 to skip */
static int mount_small(struct fixture *f, const char *size)
{
	char opts[64];

	snprintf(f->mnt, sizeof(f->mnt), "%s/mnt", f->dir);
	if (mkdir(f->mnt, 0700) < 0)
		return -1;
	snprintf(opts, sizeof(opts), "size=%s,mode=0700", size);
	if (mount("none", f->mnt, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) < 0)
		return -1;
	f->mounted = 1;
	return 0;
}

static void test_disk_full(void **state)
{
	struct fixture *f = *state;
	size_t big = 100u * 1024, len;
	char *buf, *data, chunk[4096];
	int fd, rc;

	if (mount_small(f, "32k") < 0) {
		print_message("cannot mount a tmpfs (%s): skipped\n", strerror(errno));
		skip();
	}
	fd = open(f->mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);

	assert_int_equal(durable_write(fd, "state.json", "old\n", 4, 0600), 0);
	buf = malloc(big);
	assert_non_null(buf);
	memset(buf, 'B', big);
	errno = 0;
	rc = durable_write(fd, "state.json", buf, big, 0600);
	assert_int_equal(rc, -1);
	assert_int_equal(errno, ENOSPC);
	data = read_back(fd, "state.json", &len);
	assert_int_equal(len, 4);
	assert_string_equal(data, "old\n");
	free(data);
	assert_int_equal(temporaries(fd), 0);

	/* durable_create: a file that does not fit is not left half there */
	errno = 0;
	assert_int_equal(durable_create(fd, "fresh", buf, big, 0600, 1), -1);
	assert_int_equal(errno, ENOSPC);
	assert_int_equal(faccessat(fd, "fresh", F_OK, AT_SYMLINK_NOFOLLOW), -1);
	assert_int_equal(errno, ENOENT);

	/* the temporary's space came back: a write that fits works */
	assert_int_equal(durable_write(fd, "state.json", buf, 8192, 0600), 0);
	data = read_back(fd, "state.json", &len);
	assert_int_equal(len, 8192);
	free(data);

	/* fill what is left: even a small write fails whole, then works once freed */
	int filler = openat(fd, "filler", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(filler >= 0);
	memset(chunk, 'F', sizeof(chunk));
	while (write(filler, chunk, sizeof(chunk)) > 0)
		;
	close(filler);
	errno = 0;
	assert_int_equal(durable_write(fd, "state.json", buf, 4096, 0600), -1);
	assert_int_equal(errno, ENOSPC);
	assert_int_equal(temporaries(fd), 0);
	data = read_back(fd, "state.json", &len);
	assert_int_equal(len, 8192);
	free(data);

	assert_int_equal(unlinkat(fd, "filler", 0), 0);
	assert_int_equal(durable_write(fd, "state.json", buf, 4096, 0600), 0);
	data = read_back(fd, "state.json", &len);
	assert_int_equal(len, 4096);
	assert_memory_equal(data, buf, 4096);
	free(data);
	assert_int_equal(temporaries(fd), 0);
	free(buf);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_round_trip_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_round_trip_binary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_refuses_other_kinds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_read_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_write_not_followed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mode_bits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_name_too_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_nosync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mkdir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
