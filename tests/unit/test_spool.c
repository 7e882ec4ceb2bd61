/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_spool - the spool's rules from docs/design/ARCHITECTURE.md, one mechanism at a time:
 * spool_open (seven 0700 state directories; a root others can write or enter, a
 * root owned by someone else or reached through a symlink is refused), the
 * program locks, sequence numbers (consecutive across calls and reopens, a damaged
 * seq file refused rather than restarted), job creation and task-id validation,
 * atomic file replacement (also on a full disk: a 64 KiB tmpfs, skipped when mount
 * is not permitted; a job still in tmp/ is written in place, so a failed first
 * write must leave no file), deferred fsyncs for a batch, moves between states,
 * listing in seq order past foreign entries, lookup across states, claims between
 * processes, capped reads that refuse symlinks and duplicate JSON keys, cleaning
 * of tmp/ and the job log.
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/spool.h"

/* PATHF - snprintf into an array that must not truncate */
#define PATHF(buf, ...) assert_true(snprintf((buf), sizeof(buf), __VA_ARGS__) < (int)sizeof(buf))

struct fixture {
	char dir[64];	/* mkdtemp */
	char root[96];	/* dir/spool, the spool root */
	char mnt[96];	/* dir/mnt, when a test mounts a small tmpfs there */
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
	strcpy(f->dir, "/tmp/test_spool.XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->root, sizeof(f->root), "%s/spool", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	int rc;

	if (f->mounted)
		umount2(f->mnt, MNT_DETACH);
	rc = nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return rc;
}

/* open_spool - spool_open that must work */
static void open_spool(struct spool *sp, const char *root)
{
	char err[512] = "";

	if (spool_open(sp, root, err, sizeof(err)) < 0)
		fail_msg("spool_open %s: %s", root, err);
}

/* refused_open - spool_open that must fail, with a message, leaving nothing open */
static void refused_open(const char *root)
{
	struct spool sp;
	char err[512] = "";

	assert_int_equal(spool_open(&sp, root, err, sizeof(err)), -1);
	assert_true(strlen(err) > 0);
	assert_int_equal(sp.rootfd, -1);
	assert_int_equal(sp.lockfd, -1);
	for (int i = 0; i < SPOOL_NSTATES; i++)
		assert_int_equal(sp.statefd[i], -1);
	assert_null(sp.root);
}

/* make_job - a job with task.json, moved into state st; left open in *job */
static void make_job(struct spool *sp, unsigned long long seq, const char *id,
		     enum spool_state st, struct job *job)
{
	char body[160];

	assert_int_equal(spool_job_create(sp, seq, id, job), 0);
	PATHF(body, "{\"id\": \"%s\"}\n", id);
	assert_int_equal(spool_job_write(job, "task.json", body, strlen(body)), 0);
	if (st != SPOOL_TMP)
		assert_int_equal(spool_job_move(job, st, 1), 0);
}

/* entries - the names in dir (relative to dirfd), "." and ".." left out */
static int entries(int dirfd, const char *dir, char names[][128], int max)
{
	int fd = openat(dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), n = 0;
	DIR *d;
	struct dirent *de;

	assert_true(fd >= 0);
	d = fdopendir(fd);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n < max)
			assert_true(snprintf(names[n], 128, "%s", de->d_name) < 128);
		n++;
	}
	closedir(d);
	return n;
}

/* temporaries - entries of a job directory that look like a temporary file */
static int temporaries(struct job *job)
{
	char names[32][128];
	int n = entries(job->dirfd, ".", names, 32), t = 0;

	for (int i = 0; i < n && i < 32; i++)
		if (strstr(names[i], ".tmp.") != NULL)
			t++;
	return t;
}

/* read_text - a job file that must be readable */
static char *read_text(struct job *job, const char *file, size_t *len)
{
	char *data = NULL;

	if (spool_job_read(job, file, 1u << 20, &data, len) < 0)
		fail_msg("spool_job_read %s: %s", file, strerror(errno));
	return data;
}

/* is_dir - root/rel exists and is a directory (not a link) */
static int is_dir(const char *root, const char *rel)
{
	char path[512];
	struct stat st;

	PATHF(path, "%s/%s", root, rel);
	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void test_open_creates_states(void **state)
{
	struct fixture *f = *state;
	struct spool sp;
	struct stat st;
	char path[512];
	mode_t old = umask(0);

	open_spool(&sp, f->root);
	umask(old);
	assert_string_equal(sp.root, f->root);
	assert_int_equal(lstat(f->root, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	for (int i = 0; i < SPOOL_NSTATES; i++) {
		const char *name = spool_state_name((enum spool_state)i);

		assert_int_equal(spool_state_parse(name), i);
		PATHF(path, "%s/%s", f->root, name);
		assert_int_equal(lstat(path, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
		if ((st.st_mode & 07777) != 0700)
			fail_msg("%s has mode %04o", path, (unsigned)(st.st_mode & 07777));
		assert_true(sp.statefd[i] >= 0);
	}
	assert_string_equal(spool_state_name(SPOOL_TMP), "tmp");
	assert_string_equal(spool_state_name(SPOOL_HOLD), "hold");
	assert_int_equal(spool_state_parse("bogus"), -1);
	assert_int_equal(spool_state_parse("../new"), -1);
	spool_close(&sp);
	assert_int_equal(sp.rootfd, -1);
	assert_null(sp.root);

	/* an existing, complete spool opens again */
	open_spool(&sp, f->root);
	spool_close(&sp);
	/* a missing state directory is put back */
	PATHF(path, "%s/hold", f->root);
	assert_int_equal(rmdir(path), 0);
	open_spool(&sp, f->root);
	assert_true(is_dir(f->root, "hold"));
	spool_close(&sp);
}

static void test_open_refuses_writable_root(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(mkdir(f->root, 0700), 0);
	assert_int_equal(chmod(f->root, 0777), 0);
	refused_open(f->root);
	assert_false(is_dir(f->root, "new"));	/* nothing created in a root it refused */
	assert_int_equal(chmod(f->root, 0770), 0);
	refused_open(f->root);
	assert_int_equal(chmod(f->root, 0702), 0);
	refused_open(f->root);
	assert_int_equal(chmod(f->root, 0700), 0);
	struct spool sp;
	open_spool(&sp, f->root);
	spool_close(&sp);
}

static void test_open_refuses_enterable_root(void **state)
{
	struct fixture *f = *state;

	/* spool.h: "refuses a root that other users can enter or write" */
	assert_int_equal(mkdir(f->root, 0700), 0);
	assert_int_equal(chmod(f->root, 0755), 0);
	refused_open(f->root);
	assert_int_equal(chmod(f->root, 0701), 0);
	refused_open(f->root);
}

static void test_open_refuses_foreign_owner(void **state)
{
	struct fixture *f = *state;

	if (geteuid() != 0)
		skip();
	assert_int_equal(mkdir(f->root, 0700), 0);
	assert_int_equal(chown(f->root, 65534, 65534), 0);
	refused_open(f->root);
}

static void test_open_refuses_symlink_root(void **state)
{
	struct fixture *f = *state;
	char real[512];

	PATHF(real, "%s/real", f->dir);
	assert_int_equal(mkdir(real, 0700), 0);
	assert_int_equal(symlink(real, f->root), 0);
	refused_open(f->root);
	assert_false(is_dir(real, "new"));
}

static void test_open_refuses_state_not_dir(void **state)
{
	struct fixture *f = *state;
	char path[512];
	int fd;

	assert_int_equal(mkdir(f->root, 0700), 0);
	PATHF(path, "%s/new", f->root);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	refused_open(f->root);

	/* a state directory that is a symlink elsewhere is refused too */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink(f->dir, path), 0);
	refused_open(f->root);
}

/* child_lock - in a child process: spool_lock's answer for name, as the exit code */
static int child_lock(const char *root, const char *name)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct spool sp;
		char err[256];
		int rc;

		if (spool_open(&sp, root, err, sizeof(err)) < 0)
			_exit(10);
		rc = spool_lock(&sp, name);
		spool_close(&sp);
		_exit(rc < 0 ? 11 : rc);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void test_lock(void **state)
{
	struct fixture *f = *state;
	struct spool a, b;
	struct stat st;
	char path[512];

	open_spool(&a, f->root);
	open_spool(&b, f->root);
	assert_int_equal(spool_lock(&a, "poll"), 1);
	PATHF(path, "%s/.poll.lock", f->root);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 077, 0);

	/* a second open of the same lock, in this process and in another */
	assert_int_equal(spool_lock(&b, "poll"), 0);
	assert_int_equal(child_lock(f->root, "poll"), 0);
	/* another name is another lock */
	assert_int_equal(child_lock(f->root, "report"), 1);

	spool_close(&a);
	assert_int_equal(spool_lock(&b, "poll"), 1);
	assert_int_equal(child_lock(f->root, "poll"), 0);
	spool_close(&b);
	assert_int_equal(child_lock(f->root, "poll"), 1);
}

/* write_seq - put text in the spool's seq file, as damage would */
static void write_seq(const char *root, const char *text)
{
	char path[512];
	FILE *fp;

	PATHF(path, "%s/seq", root);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	assert_int_equal(fclose(fp), 0);
}

/* seq_text - the seq file's content */
static void seq_text(const char *root, char *buf, size_t len)
{
	char path[512];
	FILE *fp;
	size_t n;

	PATHF(path, "%s/seq", root);
	fp = fopen(path, "r");
	assert_non_null(fp);
	n = fread(buf, 1, len - 1, fp);
	buf[n] = 0;
	fclose(fp);
}

static void test_seq_consecutive(void **state)
{
	struct fixture *f = *state;
	struct spool sp;
	unsigned long long first = 0;
	char text[64];

	open_spool(&sp, f->root);
	assert_int_equal(spool_lock(&sp, "poll"), 1);
	assert_int_equal(spool_seq_reserve(&sp, 1, &first), 0);
	assert_int_equal(first, 1);
	assert_int_equal(spool_seq_reserve(&sp, 3, &first), 0);
	assert_int_equal(first, 2);	/* 2, 3, 4 */
	assert_int_equal(spool_seq_reserve(&sp, 1, &first), 0);
	assert_int_equal(first, 5);
	spool_close(&sp);

	open_spool(&sp, f->root);
	assert_int_equal(spool_seq_reserve(&sp, 50, &first), 0);
	assert_int_equal(first, 6);	/* 6..55 */
	assert_int_equal(spool_seq_reserve(&sp, 1, &first), 0);
	assert_int_equal(first, 56);
	seq_text(f->root, text, sizeof(text));
	assert_string_equal(text, "56\n");
	spool_close(&sp);
}

/* seq_refused - spool_seq_reserve on a seq file holding text fails and leaves it */
static void seq_refused(struct fixture *f, struct spool *sp, const char *text, int want_errno)
{
	unsigned long long first = 12345;
	char after[128];
	int rc;

	write_seq(f->root, text);
	errno = 0;
	rc = spool_seq_reserve(sp, 1, &first);
	if (rc != -1)
		fail_msg("seq file \"%s\": reserve gave %d (first %llu), want -1", text, rc, first);
	if (want_errno && errno != want_errno)
		fail_msg("seq file \"%s\": errno %d (%s), want %d", text, errno, strerror(errno),
			 want_errno);
	seq_text(f->root, after, sizeof(after));
	assert_string_equal(after, text);
}

static void test_seq_damaged(void **state)
{
	struct fixture *f = *state;
	struct spool sp;

	open_spool(&sp, f->root);
	seq_refused(f, &sp, "garbage\n", EINVAL);
	seq_refused(f, &sp, "", EINVAL);
	seq_refused(f, &sp, "\n", EINVAL);
	seq_refused(f, &sp, "12x\n", EINVAL);
	seq_refused(f, &sp, "99999999999999999999999\n", EINVAL);	/* beyond 64 bits */
	/* full: no number is handed out twice or wrapped */
	seq_refused(f, &sp, "9999999999999999\n", EOVERFLOW);
	spool_close(&sp);
}

static void test_seq_trailing_lines(void **state)
{
	struct fixture *f = *state;
	struct spool sp;

	/* the file is only ever "N\n": a second line is damage, not a number to keep */
	open_spool(&sp, f->root);
	seq_refused(f, &sp, "12\n13\n", EINVAL);
	spool_close(&sp);
}

static void test_seq_wraps(void **state)
{
	struct fixture *f = *state;
	struct spool sp;

	/*
	 * strtoull accepts a sign: "-1" is ULLONG_MAX, and last + 1 wraps to 0, under
	 * the SPOOL_SEQ_MAX check. A damaged file must be refused, not restart at 0.
	 */
	open_spool(&sp, f->root);
	seq_refused(f, &sp, "-1\n", EINVAL);
	seq_refused(f, &sp, "18446744073709551615\n", 0);
	spool_close(&sp);
}

static void test_seq_symlink(void **state)
{
	struct fixture *f = *state;
	struct spool sp;
	char path[512], target[256];
	unsigned long long first;

	open_spool(&sp, f->root);
	PATHF(target, "%s/elsewhere", f->dir);
	write_seq(f->dir, "7\n");
	PATHF(path, "%s/seq", f->root);
	PATHF(target, "%s/seq", f->dir);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(spool_seq_reserve(&sp, 1, &first), -1);
	spool_close(&sp);
}

static void test_job_create(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = {"../x", "a/b", "", "-x", ".", "..", "a.b", "a b",
					  "x\n"};
	struct spool sp;
	struct job job;
	struct stat st;
	char id[80], names[8][128];

	open_spool(&sp, f->root);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		if (spool_job_create(&sp, 1, bad[i], &job) != -1 || errno != EINVAL)
			fail_msg("task id \"%s\" not refused with EINVAL", bad[i]);
	}
	memset(id, 'a', 65);
	id[65] = 0;
	errno = 0;
	assert_int_equal(spool_job_create(&sp, 1, id, &job), -1);
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_int_equal(spool_job_create(&sp, 0, "abc", &job), -1);
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_int_equal(spool_job_create(&sp, 10000000000000000ULL, "abc", &job), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(entries(sp.rootfd, "tmp", names, 8), 0);

	assert_int_equal(spool_job_create(&sp, 7, "abc", &job), 0);
	assert_string_equal(job.name, "0000000000000007-abc");
	assert_string_equal(job.task_id, "abc");
	assert_int_equal(job.seq, 7);
	assert_int_equal(job.state, SPOOL_TMP);
	assert_int_equal(job.lockfd, -1);
	assert_true(job.dirfd >= 0);
	assert_int_equal(fstatat(sp.statefd[SPOOL_TMP], "0000000000000007-abc", &st,
				 AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 077, 0);
	spool_job_close(&job);

	/* the same job twice is refused */
	errno = 0;
	assert_int_equal(spool_job_create(&sp, 7, "abc", &job), -1);
	assert_int_equal(errno, EEXIST);

	/* the longest id and the largest seq */
	id[64] = 0;
	assert_int_equal(spool_job_create(&sp, 9999999999999999ULL, id, &job), 0);
	assert_int_equal(strlen(job.name), 16 + 1 + 64);
	assert_int_equal(strncmp(job.name, "9999999999999999-", 17), 0);
	spool_job_close(&job);
	spool_close(&sp);
}

static void test_job_open_validates(void **state)
{
	struct fixture *f = *state;
	struct spool sp;
	struct job job;

	open_spool(&sp, f->root);
	errno = 0;
	assert_int_equal(spool_job_open(&sp, SPOOL_NEW, "../tmp", &job), -1);
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_int_equal(spool_job_open(&sp, SPOOL_NEW, "junk", &job), -1);
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_int_equal(spool_job_open(&sp, SPOOL_NEW, "0000000000000001-gone", &job), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(job.dirfd, -1);
	spool_close(&sp);
}

/*
 * check_atomic_replace - result.json holds "version-1\n": replace it with "v2\n". A
 * reader that opened the old file keeps reading the old file whole: the new one is
 * a different inode put in place by rename, never written over the old one.
 */
static void check_atomic_replace(struct job *job)
{
	struct stat st1, st2;
	char buf[16];
	int old = openat(job->dirfd, "result.json", O_RDONLY | O_CLOEXEC);

	assert_true(old >= 0);
	assert_int_equal(fstat(old, &st1), 0);
	assert_int_equal(spool_job_write(job, "result.json", "v2\n", 3), 0);
	assert_int_equal(fstatat(job->dirfd, "result.json", &st2, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(st1.st_ino != st2.st_ino);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(pread(old, buf, sizeof(buf) - 1, 0), 10);
	assert_string_equal(buf, "version-1\n");
	close(old);
	assert_int_equal(temporaries(job), 0);
}

static void test_job_write_atomic(void **state)
{
	struct fixture *f = *state;
	struct spool sp;
	struct job job;
	struct stat st1;
	char *data;
	size_t len;

	open_spool(&sp, f->root);
	assert_int_equal(spool_job_create(&sp, 1, "w", &job), 0);
	assert_int_equal(spool_job_write(&job, "result.json", "version-1\n", 10), 0);
	assert_int_equal(temporaries(&job), 0);
	assert_int_equal(fstatat(job.dirfd, "result.json", &st1, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(st1.st_mode & 07777, 0600);

	/* in tmp/ (written in place, private) and in new/ (seen by others): both replace */
	check_atomic_replace(&job);
	assert_int_equal(spool_job_move(&job, SPOOL_NEW, 1), 0);
	assert_int_equal(spool_job_write(&job, "result.json", "version-1\n", 10), 0);
	check_atomic_replace(&job);
	data = read_text(&job, "result.json", &len);
	assert_int_equal(len, 3);
	assert_string_equal(data, "v2\n");
	free(data);
	assert_int_equal(temporaries(&job), 0);

	/* write_json: one compact line, read back through the JSON reader */
	json_t *v = json_pack("{s:b,s:n}", "success", 1, "result");
	assert_int_equal(spool_job_write_json(&job, "result.json", v), 0);
	json_decref(v);
	data = read_text(&job, "result.json", &len);
	assert_string_equal(data, "{\"success\":true,\"result\":null}\n");
	free(data);
	v = spool_job_read_json(&job, "result.json", 1024);
	assert_non_null(v);
	assert_true(json_is_true(json_object_get(v, "success")));
	json_decref(v);
	assert_int_equal(temporaries(&job), 0);

	assert_int_equal(spool_job_exists(&job, "result.json"), 1);
	assert_int_equal(spool_job_exists(&job, "cohort.json"), 0);
	assert_int_equal(spool_job_unlink(&job, "result.json"), 0);
	assert_int_equal(spool_job_exists(&job, "result.json"), 0);
	assert_int_equal(spool_job_unlink(&job, "result.json"), 0);	/* already gone: fine */
	spool_job_close(&job);
	spool_close(&sp);
}

static void test_job_write_disk_full(void **state)
{
	struct fixture *f = *state;
	struct spool sp;
	struct job job;
	char root[512], opts[] = "size=64k,mode=0700", *big, *data, names[8][128];
	size_t len, n = 100u * 1024;

	snprintf(f->mnt, sizeof(f->mnt), "%s/mnt", f->dir);
	assert_int_equal(mkdir(f->mnt, 0700), 0);
	if (mount("none", f->mnt, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) < 0) {
		print_message("cannot mount a tmpfs (%s): skipped\n", strerror(errno));
		skip();
	}
	f->mounted = 1;
	PATHF(root, "%s/spool", f->mnt);
	open_spool(&sp, root);
	assert_int_equal(spool_job_create(&sp, 1, "full", &job), 0);
	assert_int_equal(spool_job_write(&job, "task.json", "{\"id\": \"full\"}\n", 15), 0);

	big = malloc(n);
	assert_non_null(big);
	memset(big, 'x', n);
	/* a new file in tmp/ (written under its own name): gone again, not half there */
	errno = 0;
	assert_int_equal(spool_job_write(&job, "result.json", big, n), -1);
	assert_int_equal(errno, ENOSPC);
	assert_int_equal(spool_job_exists(&job, "result.json"), 0);
	/* a replacement, in tmp/ and then in new/: the old file stays whole */
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1)
			assert_int_equal(spool_job_move(&job, SPOOL_NEW, 1), 0);
		errno = 0;
		assert_int_equal(spool_job_write(&job, "task.json", big, n), -1);
		assert_int_equal(errno, ENOSPC);
		data = read_text(&job, "task.json", &len);
		assert_int_equal(len, 15);
		assert_string_equal(data, "{\"id\": \"full\"}\n");
		free(data);
		assert_int_equal(temporaries(&job), 0);
	}
	free(big);
	assert_int_equal(entries(job.dirfd, ".", names, 8), 1);

	/* the space is back: the next write works */
	assert_int_equal(spool_job_write(&job, "task.json", "{}\n", 3), 0);
	spool_job_close(&job);
	spool_close(&sp);
}

static void test_defer_sync(void **state)
{
	struct fixture *f = *state;
	struct spool sp;
	struct job job;
	unsigned long long first;
	char id[16], **names;
	size_t n, len;

	/* a batch as flip-poll spools it: write all, flush, move all, flush */
	open_spool(&sp, f->root);
	spool_defer_sync(&sp, 1);
	assert_int_equal(spool_seq_reserve(&sp, 3, &first), 0);
	assert_int_equal(first, 1);
	for (unsigned i = 0; i < 3; i++) {
		json_t *v = json_pack("{s:i}", "n", (int)i);

		PATHF(id, "batch-%u", i);
		assert_int_equal(spool_job_create(&sp, first + i, id, &job), 0);
		assert_int_equal(spool_job_write_json(&job, "task.json", v), 0);
		assert_int_equal(spool_job_write_json(&job, "task.json", v), 0);	/* replaced */
		json_decref(v);
		spool_job_close(&job);
	}
	assert_int_equal(spool_flush(&sp), 0);
	assert_int_equal(spool_list(&sp, SPOOL_TMP, &names, &n), 0);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(spool_job_open(&sp, SPOOL_TMP, names[i], &job), 0);
		assert_int_equal(spool_job_move(&job, SPOOL_NEW, 1), 0);
		spool_job_close(&job);
	}
	spool_list_free(names, n);
	assert_int_equal(spool_flush(&sp), 0);
	spool_defer_sync(&sp, 0);

	assert_int_equal(spool_list(&sp, SPOOL_NEW, &names, &n), 0);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		char *data;

		assert_int_equal(spool_job_open(&sp, SPOOL_NEW, names[i], &job), 0);
		data = read_text(&job, "task.json", &len);
		PATHF(id, "{\"n\":%zu}\n", i);
		assert_string_equal(data, id);
		free(data);
		assert_int_equal(temporaries(&job), 0);
		spool_job_close(&job);
	}
	spool_list_free(names, n);
	assert_int_equal(spool_seq_reserve(&sp, 1, &first), 0);
	assert_int_equal(first, 4);
	spool_close(&sp);
}

static void test_job_move(void **state)
{
	struct fixture *f = *state;
	static const enum spool_state path[] = {SPOOL_NEW, SPOOL_CUR, SPOOL_OUT, SPOOL_DONE,
						SPOOL_FAILED, SPOOL_HOLD, SPOOL_NEW};
	struct spool sp;
	struct job job;
	enum spool_state from = SPOOL_TMP;
	char rel[512], *data;
	size_t len;

	open_spool(&sp, f->root);
	make_job(&sp, 3, "mv", SPOOL_TMP, &job);
	for (size_t i = 0; i < sizeof(path) / sizeof(path[0]); i++) {
		enum spool_state to = path[i];
		int sync = (int)(i % 2);

		assert_int_equal(spool_job_move(&job, to, sync), 0);
		if (!sync) {
			assert_int_equal(spool_sync_state(&sp, to), 0);
			assert_int_equal(spool_sync_state(&sp, from), 0);
		}
		assert_int_equal(job.state, to);
		PATHF(rel, "%s/%s", spool_state_name(to), job.name);
		assert_true(is_dir(f->root, rel));
		PATHF(rel, "%s/%s", spool_state_name(from), job.name);
		assert_false(is_dir(f->root, rel));
		/* the open descriptor follows the job */
		data = read_text(&job, "task.json", &len);
		assert_string_equal(data, "{\"id\": \"mv\"}\n");
		free(data);
		from = to;
	}
	assert_int_equal(spool_job_write(&job, "state.json", "{}\n", 3), 0);
	PATHF(rel, "%s/new/%s/state.json", f->root, job.name);
	assert_int_equal(access(rel, F_OK), 0);

	/* a move that cannot happen leaves the job where it was */
	PATHF(rel, "%s/out/%s", f->root, job.name);
	assert_int_equal(mkdir(rel, 0700), 0);
	PATHF(rel, "%s/out/%s/x", f->root, job.name);
	assert_int_equal(mkdir(rel, 0700), 0);
	assert_int_equal(spool_job_move(&job, SPOOL_OUT, 1), -1);
	assert_int_equal(job.state, SPOOL_NEW);
	PATHF(rel, "new/%s", job.name);
	assert_true(is_dir(f->root, rel));
	spool_job_close(&job);
	spool_close(&sp);
}

static void test_list(void **state)
{
	struct fixture *f = *state;
	static const char *const foreign_dirs[] = {
		".x", "junk", "0000000000000004--bad", "000000000000005-short",
		"0000000000000006-a.b", "00000000000000077-long", "0000000000000008_x",
	};
	static const char *const foreign_files[] = {
		".0000000000000001-a.tmp.123", ".task.json.tmp.42", "README",
	};
	struct spool sp;
	struct job job;
	char **names, rel[160];
	size_t n;

	open_spool(&sp, f->root);
	assert_int_equal(spool_list(&sp, SPOOL_NEW, &names, &n), 0);
	assert_int_equal(n, 0);
	spool_list_free(names, n);

	/* created out of order; 9 and 10 check that the padding makes lexical = numeric */
	make_job(&sp, 10, "ten", SPOOL_NEW, &job);
	spool_job_close(&job);
	make_job(&sp, 3, "three", SPOOL_NEW, &job);
	spool_job_close(&job);
	make_job(&sp, 9, "nine", SPOOL_NEW, &job);
	spool_job_close(&job);
	make_job(&sp, 1, "one", SPOOL_NEW, &job);
	spool_job_close(&job);
	make_job(&sp, 2, "elsewhere", SPOOL_OUT, &job);
	spool_job_close(&job);
	for (size_t i = 0; i < sizeof(foreign_dirs) / sizeof(foreign_dirs[0]); i++) {
		PATHF(rel, "%s/new/%s", f->root, foreign_dirs[i]);
		assert_int_equal(mkdir(rel, 0700), 0);
	}
	for (size_t i = 0; i < sizeof(foreign_files) / sizeof(foreign_files[0]); i++) {
		int fd;

		PATHF(rel, "%s/new/%s", f->root, foreign_files[i]);
		fd = open(rel, O_WRONLY | O_CREAT | O_EXCL, 0600);
		assert_true(fd >= 0);
		close(fd);
	}

	assert_int_equal(spool_list(&sp, SPOOL_NEW, &names, &n), 0);
	assert_int_equal(n, 4);
	assert_string_equal(names[0], "0000000000000001-one");
	assert_string_equal(names[1], "0000000000000003-three");
	assert_string_equal(names[2], "0000000000000009-nine");
	assert_string_equal(names[3], "0000000000000010-ten");
	spool_list_free(names, n);

	assert_int_equal(spool_list(&sp, SPOOL_OUT, &names, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(names[0], "0000000000000002-elsewhere");
	spool_list_free(names, n);
	spool_close(&sp);
}

static void test_find(void **state)
{
	struct fixture *f = *state;
	static const enum spool_state states[] = {SPOOL_NEW, SPOOL_CUR, SPOOL_OUT,
						  SPOOL_DONE, SPOOL_FAILED, SPOOL_HOLD};
	struct spool sp;
	struct job job, found;
	char id[32];

	open_spool(&sp, f->root);
	make_job(&sp, 1, "in-tmp", SPOOL_TMP, &job);
	spool_job_close(&job);
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		PATHF(id, "in-%s", spool_state_name(states[i]));
		make_job(&sp, 10 + i, id, states[i], &job);
		spool_job_close(&job);
	}
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		PATHF(id, "in-%s", spool_state_name(states[i]));
		memset(&found, 0, sizeof(found));
		assert_int_equal(spool_find(&sp, id, &found), 1);
		assert_int_equal(found.state, states[i]);
		assert_string_equal(found.task_id, id);
		assert_int_equal(found.seq, 10 + i);
		assert_true(found.dirfd >= 0);
		char *data;
		size_t len;
		data = read_text(&found, "task.json", &len);
		assert_non_null(strstr(data, id));
		free(data);
		spool_job_close(&found);
	}
	/* tmp/ is nobody's business but its writer's */
	assert_int_equal(spool_find(&sp, "in-tmp", &found), 0);
	assert_int_equal(spool_find(&sp, "unknown", &found), 0);
	/* a prefix or a longer id is not the id */
	assert_int_equal(spool_find(&sp, "in-ne", &found), 0);
	assert_int_equal(spool_find(&sp, "in-newer", &found), 0);
	errno = 0;
	assert_int_equal(spool_find(&sp, "../x", &found), -1);
	assert_int_equal(errno, EINVAL);
	spool_close(&sp);
}

/* child_claim - in a child process: spool_job_claim's answer on its own open */
static int child_claim(const char *root, enum spool_state st, const char *name)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct spool sp;
		struct job job;
		char err[256];
		int rc;

		if (spool_open(&sp, root, err, sizeof(err)) < 0)
			_exit(10);
		if (spool_job_open(&sp, st, name, &job) < 0)
			_exit(11);
		rc = spool_job_claim(&job);
		spool_job_close(&job);
		spool_close(&sp);
		_exit(rc < 0 ? 12 : rc);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void test_claim(void **state)
{
	struct fixture *f = *state;
	struct spool sp;
	struct job job, again;

	open_spool(&sp, f->root);
	make_job(&sp, 4, "claimed", SPOOL_CUR, &job);
	assert_int_equal(child_claim(f->root, SPOOL_CUR, job.name), 1);	/* free */
	assert_int_equal(spool_job_claim(&job), 1);
	assert_int_equal(job.lockfd, job.dirfd);
	assert_int_equal(child_claim(f->root, SPOOL_CUR, job.name), 0);
	/* a second open in this process is a second claimant too */
	assert_int_equal(spool_job_open(&sp, SPOOL_CUR, job.name, &again), 0);
	assert_int_equal(spool_job_claim(&again), 0);
	assert_int_equal(again.lockfd, -1);
	spool_job_close(&again);

	/* the claim moves with the job */
	assert_int_equal(spool_job_move(&job, SPOOL_OUT, 1), 0);
	assert_int_equal(child_claim(f->root, SPOOL_OUT, job.name), 0);
	spool_job_close(&job);
	assert_int_equal(child_claim(f->root, SPOOL_OUT, job.name), 1);
	spool_close(&sp);
}

static void test_job_read_cap(void **state)
{
	struct fixture *f = *state;
	struct spool sp;
	struct job job;
	char buf[100], *data = NULL;
	size_t len;

	open_spool(&sp, f->root);
	make_job(&sp, 1, "cap", SPOOL_NEW, &job);
	memset(buf, ' ', sizeof(buf));
	buf[0] = '{';
	buf[98] = '}';
	buf[99] = '\n';
	assert_int_equal(spool_job_write(&job, "task.json", buf, sizeof(buf)), 0);
	assert_int_equal(spool_job_read(&job, "task.json", 100, &data, &len), 0);
	assert_int_equal(len, 100);
	free(data);
	errno = 0;
	assert_int_equal(spool_job_read(&job, "task.json", 99, &data, &len), -1);
	assert_int_equal(errno, EFBIG);
	assert_null(data);
	errno = 0;
	assert_null(spool_job_read_json(&job, "task.json", 99));
	assert_int_equal(errno, EFBIG);
	json_t *v = spool_job_read_json(&job, "task.json", 100);
	assert_non_null(v);
	assert_int_equal(json_object_size(v), 0);
	json_decref(v);
	errno = 0;
	assert_int_equal(spool_job_read(&job, "missing.json", 100, &data, &len), -1);
	assert_int_equal(errno, ENOENT);
	spool_job_close(&job);
	spool_close(&sp);
}

static void test_job_read_symlink(void **state)
{
	struct fixture *f = *state;
	struct spool sp;
	struct job job;
	char *data = NULL;
	size_t len;

	open_spool(&sp, f->root);
	assert_int_equal(spool_job_create(&sp, 1, "link", &job), 0);
	assert_int_equal(symlinkat("/etc/passwd", job.dirfd, "task.json"), 0);
	errno = 0;
	assert_int_equal(spool_job_read(&job, "task.json", 1u << 20, &data, &len), -1);
	assert_int_equal(errno, ELOOP);
	assert_null(data);
	assert_null(spool_job_read_json(&job, "task.json", 1u << 20));
	assert_int_equal(spool_job_exists(&job, "task.json"), 0);

	/* the log is appended through O_NOFOLLOW as well: a link is not written through */
	char target[512];
	struct stat st;
	PATHF(target, "%s/victim", f->dir);
	int fd = open(target, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(symlinkat(target, job.dirfd, "log"), 0);
	spool_job_log(&job, "must not land in %s", "victim");
	assert_int_equal(stat(target, &st), 0);
	assert_int_equal(st.st_size, 0);
	spool_job_close(&job);
	spool_close(&sp);
}

static void test_job_read_json(void **state)
{
	struct fixture *f = *state;
	static const char dup[] = "{\"id\": \"a\", \"task_type\": \"x\", \"id\": \"b\"}\n";
	static const char nested_dup[] = "{\"payload\": {\"k\": 1, \"k\": 2}}\n";
	static const char broken[] = "{\"id\": \n";
	struct spool sp;
	struct job job;
	json_t *v;

	open_spool(&sp, f->root);
	make_job(&sp, 1, "json", SPOOL_NEW, &job);
	assert_int_equal(spool_job_write(&job, "task.json", dup, strlen(dup)), 0);
	errno = 0;
	assert_null(spool_job_read_json(&job, "task.json", 4096));
	assert_int_equal(errno, EINVAL);
	assert_int_equal(spool_job_write(&job, "task.json", nested_dup, strlen(nested_dup)), 0);
	errno = 0;
	assert_null(spool_job_read_json(&job, "task.json", 4096));
	assert_int_equal(errno, EINVAL);
	assert_int_equal(spool_job_write(&job, "task.json", broken, strlen(broken)), 0);
	errno = 0;
	assert_null(spool_job_read_json(&job, "task.json", 4096));
	assert_int_equal(errno, EINVAL);

	assert_int_equal(spool_job_write(&job, "task.json", "{\"id\": \"json\"}", 14), 0);
	v = spool_job_read_json(&job, "task.json", 4096);
	assert_non_null(v);
	assert_string_equal(json_string_value(json_object_get(v, "id")), "json");
	json_decref(v);
	spool_job_close(&job);
	spool_close(&sp);
}

static void test_clean_tmp(void **state)
{
	struct fixture *f = *state;
	struct spool sp;
	struct job half, empty, kept;
	char names[8][128], path[256];
	int fd;

	open_spool(&sp, f->root);
	/* a crashed flip-poll: one job with files (and a stray temporary), one empty */
	assert_int_equal(spool_job_create(&sp, 1, "half", &half), 0);
	assert_int_equal(spool_job_write(&half, "task.json", "{}", 2), 0);
	fd = openat(half.dirfd, ".result.json.tmp.999", O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "{\"succ", 6), 6);
	close(fd);
	assert_int_equal(mkdirat(half.dirfd, "sub", 0700), 0);
	fd = openat(half.dirfd, "sub/file", O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	spool_job_close(&half);
	assert_int_equal(spool_job_create(&sp, 2, "empty", &empty), 0);
	spool_job_close(&empty);
	make_job(&sp, 3, "kept", SPOOL_NEW, &kept);
	spool_job_close(&kept);
	/* something that is not a job is not ours to remove */
	PATHF(path, "%s/tmp/not-a-job", f->root);
	assert_int_equal(mkdir(path, 0700), 0);

	assert_int_equal(spool_clean_tmp(&sp), 2);
	assert_int_equal(entries(sp.rootfd, "tmp", names, 8), 1);
	assert_string_equal(names[0], "not-a-job");
	assert_int_equal(entries(sp.rootfd, "new", names, 8), 1);
	assert_string_equal(names[0], "0000000000000003-kept");
	assert_int_equal(spool_clean_tmp(&sp), 0);
	spool_close(&sp);
}

/* check_log_line - "YYYY-MM-DDTHH:MM:SSZ " then msg */
static void check_log_line(const char *line, size_t len, const char *msg)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:ddZ ";

	assert_true(len >= sizeof(pat) - 1);
	for (size_t i = 0; i < sizeof(pat) - 1; i++) {
		if (pat[i] == 'd')
			assert_true(line[i] >= '0' && line[i] <= '9');
		else
			assert_int_equal(line[i], pat[i]);
	}
	assert_int_equal(len - (sizeof(pat) - 1), strlen(msg));
	assert_memory_equal(line + sizeof(pat) - 1, msg, strlen(msg));
}

static void test_job_log(void **state)
{
	struct fixture *f = *state;
	struct spool sp;
	struct job job;
	char *data, *p, *nl, big[3000];
	size_t len;
	struct stat st;

	open_spool(&sp, f->root);
	make_job(&sp, 1, "logged", SPOOL_NEW, &job);
	spool_job_log(&job, "claimed by pid %d", 42);
	spool_job_log(&job, "handler %s: %s", "cohort_query", "ok");
	data = read_text(&job, "log", &len);
	p = data;
	nl = strchr(p, '\n');
	assert_non_null(nl);
	check_log_line(p, (size_t)(nl - p), "claimed by pid 42");
	p = nl + 1;
	nl = strchr(p, '\n');
	assert_non_null(nl);
	check_log_line(p, (size_t)(nl - p), "handler cohort_query: ok");
	assert_int_equal(nl + 1 - data, (long)len);
	free(data);
	assert_int_equal(fstatat(job.dirfd, "log", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(st.st_mode & 077, 0);

	/* an overlong line is cut, still one whole line, and what follows still appends */
	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	spool_job_log(&job, "%s", big);
	spool_job_log(&job, "after");
	data = read_text(&job, "log", &len);
	assert_null(memchr(data, 0, len));
	p = data;
	for (int i = 0; i < 2; i++)
		p = strchr(p, '\n') + 1;
	nl = strchr(p, '\n');
	assert_non_null(nl);
	assert_true(nl - p + 1 <= 1024);
	assert_true(nl - p > 900);
	p = nl + 1;
	nl = strchr(p, '\n');
	assert_non_null(nl);
	check_log_line(p, (size_t)(nl - p), "after");
	assert_int_equal(nl + 1 - data, (long)len);
	free(data);

	/* the log follows the job when it moves */
	assert_int_equal(spool_job_move(&job, SPOOL_OUT, 1), 0);
	spool_job_log(&job, "moved");
	data = read_text(&job, "log", &len);
	assert_non_null(strstr(data, "Z moved\n"));
	free(data);
	spool_job_close(&job);
	spool_close(&sp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_creates_states, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_refuses_writable_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_refuses_enterable_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_refuses_foreign_owner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_refuses_symlink_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_refuses_state_not_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seq_consecutive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seq_damaged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seq_trailing_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seq_wraps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seq_symlink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_job_create, setup, teardown),
		cmocka_unit_test_setup_teardown(test_job_open_validates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_job_write_atomic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_job_write_disk_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_defer_sync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_job_move, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_find, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim, setup, teardown),
		cmocka_unit_test_setup_teardown(test_job_read_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_job_read_symlink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_job_read_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clean_tmp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_job_log, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
