/* SPDX-License-Identifier: Apache-2.0 */
/*
 * spool - the atomic spool directory (see spool.h for the contract).
 *
 * Why directories and renames: a job's state is the directory it sits in, so a
 * state change is one rename(2), which the kernel makes atomic. Every file inside a
 * job is written by durable_write (write-fsync-rename), so a program that crashes at
 * any instruction leaves either the old state or the new one, never a mixture.
 * Postfix's queue manager works the same way for the same reason.
 *
 * Job directories are opened once (dirfd) and everything inside is addressed
 * relative to that descriptor, so a rename of the job by another program cannot
 * make us write into the wrong place half-way through.
 */
#include "lib/spool.h"

#include "lib/durable.h"
#include "lib/ident.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const spool_states[SPOOL_NSTATES] = {
	"tmp", "new", "cur", "out", "done", "failed", "hold",
};

#define SPOOL_SEQ_MAX 9999999999999999ULL
#define SPOOL_FLUSH_SYNCFS 24	/* pending items past which one syncfs is cheaper */

static int spool_note(struct spool *sp, int dirfd, const char *name);

/* spool_forget_pending - drop what spool_flush would have synced */
static void spool_forget_pending(struct spool *sp)
{
	for (size_t i = 0; i < sp->npending; i++)
		close(sp->pending[i].dirfd);
	sp->npending = 0;
}

/* spool_state_name - a state's directory name */
const char *spool_state_name(enum spool_state st)
{
	return st < SPOOL_NSTATES ? spool_states[st] : "?";
}

/* spool_state_parse - a directory name to its state, -1 when unknown */
int spool_state_parse(const char *name)
{
	for (int i = 0; i < SPOOL_NSTATES; i++)
		if (strcmp(name, spool_states[i]) == 0)
			return i;
	return -1;
}

/* spool_open - open (and complete) the spool at root */
int spool_open(struct spool *sp, const char *root, char *err, size_t errlen)
{
	struct stat st;

	memset(sp, 0, sizeof(*sp));
	sp->rootfd = sp->lockfd = -1;
	for (int i = 0; i < SPOOL_NSTATES; i++)
		sp->statefd[i] = -1;
	if (mkdir(root, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create spool %s: %s (run flipctl init as root)",
			 root, strerror(errno));
		return -1;
	}
	sp->rootfd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sp->rootfd < 0) {
		snprintf(err, errlen, "cannot open spool %s: %s", root, strerror(errno));
		return -1;
	}
	/* the spool holds decrypted payloads (cohort SQL): nobody else may even enter it */
	if (fstat(sp->rootfd, &st) < 0 || (st.st_mode & 0077) || st.st_uid != geteuid()) {
		snprintf(err, errlen,
			 "spool %s must be owned by this user with mode 0700 "
			 "(run: chown $(id -un) %s && chmod 700 %s)", root, root, root);
		goto fail;
	}
	for (int i = 0; i < SPOOL_NSTATES; i++) {
		if (durable_mkdir(sp->rootfd, spool_states[i], 0700) < 0)
			goto sysfail;
		sp->statefd[i] = openat(sp->rootfd, spool_states[i],
					O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sp->statefd[i] < 0)
			goto sysfail;
	}
	sp->root = strdup(root);
	if (sp->root == NULL)
		goto sysfail;
	return 0;
sysfail:
	snprintf(err, errlen, "spool %s: %s", root, strerror(errno));
fail:
	spool_close(sp);
	return -1;
}

/* spool_close - release descriptors and the lock */
void spool_close(struct spool *sp)
{
	for (int i = 0; i < SPOOL_NSTATES; i++)
		if (sp->statefd[i] >= 0)
			close(sp->statefd[i]);
	if (sp->rootfd >= 0)
		close(sp->rootfd);
	if (sp->lockfd >= 0)
		close(sp->lockfd);
	spool_forget_pending(sp);
	free(sp->pending);
	free(sp->root);
	memset(sp, 0, sizeof(*sp));
	sp->rootfd = sp->lockfd = -1;
	for (int i = 0; i < SPOOL_NSTATES; i++)
		sp->statefd[i] = -1;
}

/* spool_lock - the program's exclusive lock: 1 held, 0 busy, -1 error */
int spool_lock(struct spool *sp, const char *name)
{
	char file[64];
	int fd;

	if (sp->lockfd >= 0) {
		errno = EBUSY;	/* one program lock per spool handle: closing it would release it */
		return -1;
	}
	snprintf(file, sizeof(file), ".%s.lock", name);
	fd = openat(sp->rootfd, file, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int saved = errno;
		close(fd);
		if (saved == EWOULDBLOCK)
			return 0;
		errno = saved;
		return -1;
	}
	sp->lockfd = fd;
	return 1;
}

/* spool_seq_reserve - n consecutive sequence numbers, durably */
int spool_seq_reserve(struct spool *sp, unsigned n, unsigned long long *first)
{
	char *text = NULL;
	char buf[32];
	size_t len;
	unsigned long long last = 0;

	if (durable_read(sp->rootfd, "seq", 64, &text, &len) == 0) {
		/* exactly "<1..16 digits>\n": anything else is damage, never a restart at 0 */
		size_t digits = strspn(text, "0123456789");
		int ok = digits >= 1 && digits <= SPOOL_SEQ_DIGITS &&
			 (text[digits] == 0 || (text[digits] == '\n' && text[digits + 1] == 0));
		last = ok ? strtoull(text, NULL, 10) : 0;
		free(text);
		if (!ok) {
			errno = EINVAL;
			return -1;
		}
	} else if (errno != ENOENT) {
		return -1;
	}
	if (last + n > SPOOL_SEQ_MAX) {
		errno = EOVERFLOW;
		return -1;
	}
	*first = last + 1;
	snprintf(buf, sizeof(buf), "%llu\n", last + n);
	if (!sp->deferred)
		return durable_write(sp->rootfd, "seq", buf, strlen(buf), 0600);
	if (durable_write_nosync(sp->rootfd, "seq", buf, strlen(buf), 0600) < 0 ||
	    spool_note(sp, sp->rootfd, "seq") < 0 || spool_note(sp, sp->rootfd, NULL) < 0)
		return -1;
	return 0;
}

static int spool_name_seq(const char *name, unsigned long long *seq)
{
	char digits[SPOOL_SEQ_DIGITS + 1];

	if (!ident_ok(IDENT_JOB_NAME, name))
		return -1;
	memcpy(digits, name, SPOOL_SEQ_DIGITS);
	digits[SPOOL_SEQ_DIGITS] = 0;
	*seq = strtoull(digits, NULL, 10);
	return 0;
}

static int spool_job_init(struct spool *sp, enum spool_state st, const char *name,
			  struct job *job)
{
	memset(job, 0, sizeof(*job));
	job->dirfd = job->lockfd = -1;
	if (strlen(name) >= sizeof(job->name) || spool_name_seq(name, &job->seq) < 0) {
		errno = EINVAL;
		return -1;
	}
	job->sp = sp;
	job->state = st;
	strcpy(job->name, name);
	job->task_id = job->name + SPOOL_SEQ_PREFIX;
	return 0;
}

/* spool_job_open - open an existing job directory */
int spool_job_open(struct spool *sp, enum spool_state st, const char *name, struct job *job)
{
	if (spool_job_init(sp, st, name, job) < 0)
		return -1;
	job->dirfd = openat(sp->statefd[st], name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return job->dirfd < 0 ? -1 : 0;
}

/* spool_job_create - a new, empty job in tmp/ */
int spool_job_create(struct spool *sp, unsigned long long seq, const char *task_id,
		     struct job *job)
{
	char name[SPOOL_NAME_MAX];

	if (!ident_ok(IDENT_TASK_ID, task_id) || seq == 0 || seq > SPOOL_SEQ_MAX) {
		errno = EINVAL;
		return -1;
	}
	snprintf(name, sizeof(name), "%016llu-%s", seq, task_id);
	if (spool_job_init(sp, SPOOL_TMP, name, job) < 0)
		return -1;
	if (mkdirat(sp->statefd[SPOOL_TMP], name, 0700) < 0)
		return -1;
	job->dirfd = openat(sp->statefd[SPOOL_TMP], name,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return job->dirfd < 0 ? -1 : 0;
}

/* spool_job_claim - flock the job directory: 1 ours, 0 someone else's, -1 error */
int spool_job_claim(struct job *job)
{
	if (flock(job->dirfd, LOCK_EX | LOCK_NB) < 0)
		return errno == EWOULDBLOCK ? 0 : -1;
	job->lockfd = job->dirfd;
	return 1;
}

/* spool_note - remember a file (or, with name NULL, a directory) for spool_flush */
static int spool_note(struct spool *sp, int dirfd, const char *name)
{
	if (sp->npending == sp->cappending) {
		size_t ncap = sp->cappending ? sp->cappending * 2 : 128;
		struct spool_pending *np = realloc(sp->pending, ncap * sizeof(*np));
		if (np == NULL)
			return -1;
		sp->pending = np;
		sp->cappending = ncap;
	}
	struct spool_pending *p = &sp->pending[sp->npending];
	if (name && strlen(name) >= sizeof(p->name)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	p->dirfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	if (p->dirfd < 0)
		return -1;
	snprintf(p->name, sizeof(p->name), "%s", name ? name : "");
	sp->npending++;
	return 0;
}

/* spool_job_write - write one file of the job atomically */
int spool_job_write(struct job *job, const char *file, const void *data, size_t len)
{
	/* a job still in tmp/ is private: no temporary name needed (see spool.h) */
	int rc = -1;

	if (job->state == SPOOL_TMP) {
		rc = durable_create(job->dirfd, file, data, len, 0600, !job->sp->deferred);
		if (rc < 0 && errno != EEXIST)
			return -1;
		/* written before: replace it the ordinary way */
	}
	if (rc < 0)
		rc = job->sp->deferred ? durable_write_nosync(job->dirfd, file, data, len, 0600)
				       : durable_write(job->dirfd, file, data, len, 0600);
	if (rc == 0 && job->sp->deferred &&
	    (spool_note(job->sp, job->dirfd, file) < 0 || spool_note(job->sp, job->dirfd, NULL) < 0))
		return -1;
	return rc;
}

/* spool_job_write_json - write one JSON file of the job atomically */
int spool_job_write_json(struct job *job, const char *file, json_t *value)
{
	int sync = !job->sp->deferred, rc = -1;

	if (job->state == SPOOL_TMP) {
		/* durable_create in a private directory; replace the ordinary way when it exists */
		rc = durable_write_json_sync(job->dirfd, file, value, 0600, sync ? -2 : -1);
		if (rc < 0 && errno != EEXIST)
			return -1;
	}
	if (rc < 0)
		rc = durable_write_json_sync(job->dirfd, file, value, 0600, sync);
	if (rc == 0 && job->sp->deferred &&
	    (spool_note(job->sp, job->dirfd, file) < 0 || spool_note(job->sp, job->dirfd, NULL) < 0))
		return -1;
	return rc;
}

/* spool_job_read - read one file of the job, at most cap bytes */
int spool_job_read(struct job *job, const char *file, size_t cap, char **data, size_t *len)
{
	return durable_read(job->dirfd, file, cap, data, len);
}

/* spool_job_read_json - read and parse one JSON file of the job (NULL on error) */
json_t *spool_job_read_json(struct job *job, const char *file, size_t cap)
{
	char *text;
	size_t len;
	json_t *v;

	if (durable_read(job->dirfd, file, cap, &text, &len) < 0)
		return NULL;
	v = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
	free(text);
	if (v == NULL)
		errno = EINVAL;
	return v;
}

/* spool_job_exists - does the job hold this file */
int spool_job_exists(struct job *job, const char *file)
{
	struct stat st;

	return fstatat(job->dirfd, file, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

/* spool_job_unlink - remove a file of the job, durably */
int spool_job_unlink(struct job *job, const char *file)
{
	if (unlinkat(job->dirfd, file, 0) < 0 && errno != ENOENT)
		return -1;
	return durable_fsync_dir(job->dirfd);
}

/* spool_job_move - one rename of the job directory to another state */
int spool_job_move(struct job *job, enum spool_state to, int sync_parents)
{
	struct spool *sp = job->sp;

	/* the job's own entries were fsynced by durable_write (or await spool_flush) */
	if (renameat(sp->statefd[job->state], job->name, sp->statefd[to], job->name) < 0)
		return -1;
	if (sp->deferred)
		sp->dirty_states |= 1u << to | 1u << job->state;
	else if (sync_parents &&
	    (durable_fsync_dir(sp->statefd[to]) < 0 ||
	     durable_fsync_dir(sp->statefd[job->state]) < 0))
		return -1;
	job->state = to;
	return 0;
}

/* spool_defer_sync - postpone fsyncs until spool_flush (see spool.h) */
void spool_defer_sync(struct spool *sp, int on)
{
	sp->deferred = on;
	if (!on)
		spool_forget_pending(sp);
}

/*
 * spool_flush - fsync everything written or moved since the last flush.
 *
 * Two ways, measured with make bench on an ext4 VM: a few files are fsynced one by
 * one (exactly ours, nothing else); past SPOOL_FLUSH_SYNCFS items one syncfs(2)
 * is several times cheaper than that many file and directory fsyncs (26 ms against
 * 100 ms for a batch of 50 tasks), at the price of also writing out other
 * programs' dirty pages on that file system, pages the kernel writes within 30 s
 * anyway. Only a burst of many tasks at once takes that path.
 */
int spool_flush(struct spool *sp)
{
	struct durable_item *items;
	size_t n = 0;
	int rc;

	if (sp->npending > SPOOL_FLUSH_SYNCFS) {
		if (syncfs(sp->rootfd) < 0)
			return -1;
		spool_forget_pending(sp);
		sp->dirty_states = 0;
		return 0;
	}
	items = calloc(sp->npending + SPOOL_NSTATES + 1, sizeof(*items));
	if (items == NULL)
		return -1;
	for (size_t i = 0; i < sp->npending; i++) {
		items[n].dirfd = sp->pending[i].dirfd;
		items[n++].name = sp->pending[i].name[0] ? sp->pending[i].name : NULL;
	}
	for (int st = 0; st < SPOOL_NSTATES; st++)
		if (sp->dirty_states & 1u << st)
			items[n++] = (struct durable_item){sp->statefd[st], NULL};
	rc = durable_fsync_many(items, n);
	free(items);
	if (rc == 0) {
		spool_forget_pending(sp);
		sp->dirty_states = 0;
	}
	return rc;
}

/* spool_sync_state - fsync one state directory after several moves into or out of it */
int spool_sync_state(struct spool *sp, enum spool_state st)
{
	return durable_fsync_dir(sp->statefd[st]);
}

/* spool_job_log - append a line to the job's own log (best effort, no secrets) */
void spool_job_log(struct job *job, const char *fmt, ...)
{
	char line[1024];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int fd, n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%SZ ", &tm);
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	n += m;
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	fd = openat(job->dirfd, "log", O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	ssize_t w = write(fd, line, (size_t)n);
	(void)w;
	close(fd);
}

/* spool_job_close - release the job's descriptor (and so its claim) */
void spool_job_close(struct job *job)
{
	if (job->dirfd >= 0)
		close(job->dirfd);
	job->dirfd = job->lockfd = -1;
}

static int spool_name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* spool_list - the jobs of one state, in seq order */
int spool_list(struct spool *sp, enum spool_state st, char ***names, size_t *n)
{
	DIR *d;
	struct dirent *de;
	char **v = NULL;
	size_t cnt = 0, cap = 0;
	int fd;

	*names = NULL;
	*n = 0;
	fd = dup(sp->statefd[st]);
	if (fd < 0)
		return -1;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -1;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (!ident_ok(IDENT_JOB_NAME, de->d_name))
			continue;	/* ., .., temporaries, anything foreign */
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;	/* a file or link named like a job is not a job */
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			char **nv = realloc(v, ncap * sizeof(*v));
			if (nv == NULL)
				goto fail;
			v = nv;
			cap = ncap;
		}
		if ((v[cnt] = strdup(de->d_name)) == NULL)
			goto fail;
		cnt++;
	}
	closedir(d);
	/* zero-padded seq first: lexical order is the hub's order */
	if (cnt > 1)
		qsort(v, cnt, sizeof(*v), spool_name_cmp);
	*names = v;
	*n = cnt;
	return 0;
fail:
	closedir(d);
	spool_list_free(v, cnt);
	errno = ENOMEM;
	return -1;
}

/* spool_list_free - free what spool_list returned */
void spool_list_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* spool_find - the job holding task_id, in any state but tmp/ */
int spool_find(struct spool *sp, const char *task_id, struct job *job)
{
	if (!ident_ok(IDENT_TASK_ID, task_id)) {
		errno = EINVAL;
		return -1;
	}
	/*
	 * A directory scan per lookup: the spool holds at most the retention window of
	 * jobs (done/ is purged), and flip-poll looks up at most 50 ids a cycle, so
	 * an index would be a second source of truth for little gain.
	 */
	for (int st = SPOOL_NEW; st < SPOOL_NSTATES; st++) {
		char **names;
		size_t n;
		int found = 0;

		if (spool_list(sp, (enum spool_state)st, &names, &n) < 0)
			return -1;
		for (size_t i = 0; i < n && !found; i++) {
			if (strcmp(names[i] + SPOOL_SEQ_PREFIX, task_id) == 0) {
				found = spool_job_open(sp, (enum spool_state)st, names[i], job) == 0;
				if (!found && errno != ENOENT) {
					spool_list_free(names, n);
					return -1;
				}
			}
		}
		spool_list_free(names, n);
		if (found)
			return 1;
	}
	return 0;
}

/* spool_clean_tmp - remove jobs a crashed flip-poll left half-written in tmp/ */
int spool_clean_tmp(struct spool *sp)
{
	char **names;
	size_t n;
	int removed = 0;

	if (spool_list(sp, SPOOL_TMP, &names, &n) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (durable_remove_tree(sp->statefd[SPOOL_TMP], names[i]) == 0)
			removed++;
	spool_list_free(names, n);
	if (removed)
		durable_fsync_dir(sp->statefd[SPOOL_TMP]);
	return removed;
}
