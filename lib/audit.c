/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit - the tamper-evident audit trail (see audit.h for the contract).
 *
 * Appending a line: flock audit.log; make sure the file we hold is still the one
 * named audit.log (a rotation may have replaced it while we waited for the lock:
 * then reopen and lock the new one); read the last line's hash from the tail;
 * write the new line with one write(2); fsync; unlock. Holding the lock from the
 * read to the fsync is what chains concurrent programs correctly. A struct audit
 * belongs to one process: after fork() parent and child would share the flock, so
 * each process calls audit_open() itself.
 *
 * Rotation hard-links audit.log to audit.log.<UTC>, then renames a prepared new
 * file (already holding its audit.rotated line, and locked) over audit.log. The
 * name audit.log therefore always exists, and no writer can start a chain from
 * zeros in between.
 *
 * A file whose last line was cut short (a full disk during a write) is not
 * repaired: the next line starts after a newline and chains to the last whole
 * line, so audit_verify() points at the damage instead of it being hidden.
 */
#include "lib/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "lib/log.h"

#define AUDIT_FILE "audit.log"
#define AUDIT_LINE_MAX (64 * 1024)		/* a line, newline included */
#define AUDIT_HASH_KEY ",\"hash\":\""		/* what precedes the hash at a line's end */
#define AUDIT_SUFFIX_LEN (9 + 64 + 2)		/* ,"hash":" + 64 hex + "} */
#define AUDIT_ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"
#define AUDIT_REOPEN_TRIES 16

/* audit_sha256_hex - hex SHA-256 of a followed by b */
static int audit_sha256_hex(const char *a, size_t alen, const char *b, size_t blen,
			    char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;

	if (ctx == NULL)
		return -1;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) && EVP_DigestUpdate(ctx, a, alen) &&
	     EVP_DigestUpdate(ctx, b, blen) && EVP_DigestFinal_ex(ctx, md, &mdlen) && mdlen == 32;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return -1;
	for (unsigned int i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = 0;
	return 0;
}

/* audit_hex64 - s holds 64 lower-case hex digits */
static int audit_hex64(const char *s)
{
	for (int i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* audit_line_hash - the hash a line (without newline) ends with, or NULL */
static const char *audit_line_hash(const char *line, size_t len)
{
	const char *h;

	if (len < AUDIT_SUFFIX_LEN + 1)
		return NULL;
	h = line + len - AUDIT_SUFFIX_LEN;
	if (memcmp(h, AUDIT_HASH_KEY, 9) != 0 || !audit_hex64(h + 9) || memcmp(h + 73, "\"}", 2) != 0)
		return NULL;
	return h + 9;
}

/* audit_now - RFC 3339 UTC with milliseconds */
static void audit_now(char out[32])
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(out, 24, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + 19, 13, ".%03uZ", (unsigned)(ts.tv_nsec / 1000000L) % 1000u);
}

/* audit_open_file - open (creating) audit.log in dirfd, a regular file */
static int audit_open_file(int dirfd)
{
	struct stat st;
	int fd;

	fd = openat(dirfd, AUDIT_FILE, O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
		    0600);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	return fd;
}

/* audit_lock_current - lock a->fd, reopening until it is the file named audit.log */
static int audit_lock_current(struct audit *a)
{
	for (int i = 0; i < AUDIT_REOPEN_TRIES; i++) {
		struct stat held, named;
		int fd;

		while (flock(a->fd, LOCK_EX) < 0)
			if (errno != EINTR)
				return -1;
		if (fstat(a->fd, &held) < 0)
			return -1;
		if (fstatat(a->dirfd, AUDIT_FILE, &named, AT_SYMLINK_NOFOLLOW) == 0 &&
		    named.st_dev == held.st_dev && named.st_ino == held.st_ino)
			return 0;
		/* rotated (or removed) while we waited: follow the name */
		fd = audit_open_file(a->dirfd);
		if (fd < 0)
			return -1;
		close(a->fd); /* drops the lock on the old file */
		a->fd = fd;
	}
	errno = EAGAIN;
	return -1;
}

/* audit_last_hash - the hash of the last whole line; *open_line when the file ends mid-line */
static int audit_last_hash(int fd, char out[65], int *open_line)
{
	struct stat st;
	size_t want, got = 0;
	off_t start;
	char *buf, *end;

	*open_line = 0;
	memcpy(out, AUDIT_ZERO_HASH, 65);
	if (fstat(fd, &st) < 0)
		return -1;
	if (st.st_size == 0)
		return 0;
	want = st.st_size > AUDIT_LINE_MAX + 1 ? AUDIT_LINE_MAX + 1 : (size_t)st.st_size;
	start = st.st_size - (off_t)want;
	buf = malloc(want);
	if (buf == NULL)
		return -1;
	while (got < want) {
		ssize_t r = pread(fd, buf + got, want - got, start + (off_t)got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			free(buf);
			if (r == 0)
				errno = EIO;
			return -1;
		}
		got += (size_t)r;
	}
	*open_line = buf[want - 1] != '\n';
	/* walk whole lines from the end; the first that ends in a hash gives it */
	end = memrchr(buf, '\n', want);
	while (end != NULL) {
		char *begin = memrchr(buf, '\n', (size_t)(end - buf));
		const char *h;

		begin = begin != NULL ? begin + 1 : buf;
		h = audit_line_hash(begin, (size_t)(end - begin));
		if (h != NULL) {
			memcpy(out, h, 64);
			out[64] = 0;
			break;
		}
		end = begin > buf ? begin - 1 : NULL;
	}
	free(buf);
	return 0;
}

/* audit_write_all - write len bytes, across short writes */
static int audit_write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* audit_text - the object's compact text, its detail replaced when the line would be too long */
static char *audit_text(const char *prog, const char *event, const char *task_id,
			const char *task_type, json_t *detail, const char *prev)
{
	char ts[32];
	json_t *obj, *small = NULL;
	char *text = NULL;

	audit_now(ts);
	for (int pass = 0; pass < 2; pass++) {
		obj = json_pack("{s:s, s:s, s:I, s:s, s:s?, s:s?, s:O, s:s}", "ts", ts, "prog", prog,
				"pid", (json_int_t)getpid(), "event", event, "task_id", task_id,
				"task_type", task_type, "detail", detail, "prev", prev);
		if (obj == NULL)
			break;
		text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(obj);
		if (text == NULL || strlen(text) + AUDIT_SUFFIX_LEN < AUDIT_LINE_MAX)
			break;
		free(text);
		text = NULL;
		if (pass == 0) {
			small = json_pack("{s:b}", "truncated", 1);
			if (small == NULL)
				break;
			detail = small;
		}
	}
	json_decref(small);
	return text;
}

/* audit_format - one finished line chained to prev; its hash goes to hash_out */
static char *audit_format(const char *prog, const char *event, const char *task_id,
			  const char *task_type, json_t *detail, const char *prev, int open_line,
			  size_t *linelen, char hash_out[65])
{
	char *text, *line = NULL, *p;
	size_t len;

	text = audit_text(prog, event, task_id, task_type, detail, prev);
	if (text == NULL) {
		errno = EINVAL; /* not UTF-8, or a line too long even without detail */
		return NULL;
	}
	len = strlen(text);
	if (audit_sha256_hex(text, len, "", 0, hash_out) < 0) {
		errno = EIO;
		goto out;
	}
	line = malloc(len + AUDIT_SUFFIX_LEN + 2);
	if (line == NULL)
		goto out;
	p = line;
	if (open_line)
		*p++ = '\n'; /* leave the cut line on a line of its own */
	memcpy(p, text, len - 1);
	p += len - 1;
	p += sprintf(p, AUDIT_HASH_KEY "%s\"}\n", hash_out);
	*linelen = (size_t)(p - line);
out:
	free(text);
	return line;
}

/* audit_append_locked - append one line to the locked fd, chained to prev (NULL: the file's last) */
static int audit_append_locked(int fd, const char *prog, const char *event, const char *task_id,
			       const char *task_type, json_t *detail, const char *prev)
{
	char last[65], hash[65];
	char *line;
	size_t len;
	int open_line = 0, rc = -1;

	if (prev == NULL) {
		if (audit_last_hash(fd, last, &open_line) < 0)
			return -1;
	} else {
		memcpy(last, prev, sizeof(last));
	}
	line = audit_format(prog, event, task_id, task_type, detail, last, open_line, &len, hash);
	if (line == NULL)
		return -1;
	if (audit_write_all(fd, line, len) == 0 && fsync(fd) == 0)
		rc = 0;
	free(line);
	return rc;
}

/* audit_batch_begin - lock once and chain the coming events in memory */
int audit_batch_begin(struct audit *a)
{
	int open_line = 0;

	if (a->fd < 0 || a->batch) {
		errno = a->fd < 0 ? EBADF : EINVAL;
		return -1;
	}
	if (audit_lock_current(a) < 0)
		return -1;
	if (audit_last_hash(a->fd, a->last, &open_line) < 0) {
		int saved = errno;
		flock(a->fd, LOCK_UN);
		errno = saved;
		return -1;
	}
	a->len = 0;
	if (open_line) {
		if (a->cap < 1 && (a->buf = malloc(a->cap = 4096)) == NULL) {
			a->cap = 0;
			flock(a->fd, LOCK_UN);
			return -1;
		}
		a->buf[a->len++] = '\n';
	}
	a->batch = 1;
	return 0;
}

/* audit_batch_add - one line into the batch buffer */
static int audit_batch_add(struct audit *a, const char *event, const char *task_id,
			   const char *task_type, json_t *detail)
{
	char hash[65];
	size_t len;
	char *line = audit_format(a->prog, event, task_id, task_type, detail, a->last, 0, &len, hash);

	if (line == NULL)
		return -1;
	if (a->len + len > a->cap) {
		size_t ncap = a->cap ? a->cap : 4096;
		while (ncap < a->len + len)
			ncap *= 2;
		char *nb = realloc(a->buf, ncap);
		if (nb == NULL) {
			free(line);
			return -1;
		}
		a->buf = nb;
		a->cap = ncap;
	}
	memcpy(a->buf + a->len, line, len);
	a->len += len;
	memcpy(a->last, hash, sizeof(a->last));
	free(line);
	return 0;
}

/* audit_batch_end - write the batch, fsync once, unlock */
int audit_batch_end(struct audit *a)
{
	int rc = 0, saved = 0;

	if (!a->batch) {
		errno = EINVAL;
		return -1;
	}
	if (a->len && (audit_write_all(a->fd, a->buf, a->len) < 0 || fsync(a->fd) < 0)) {
		rc = -1;
		saved = errno;
	}
	flock(a->fd, LOCK_UN);
	a->batch = 0;
	a->len = 0;
	errno = saved;
	return rc;
}

/* audit_open - open FLIP_LOG_DIR/audit.log for appending */
int audit_open(struct audit *a, const char *log_dir, const char *prog)
{
	int saved;

	memset(a, 0, sizeof(*a));
	a->fd = -1;
	snprintf(a->prog, sizeof(a->prog), "%s", prog != NULL ? prog : "flip");
	a->dirfd = open(log_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (a->dirfd < 0)
		return -1;
	a->fd = audit_open_file(a->dirfd);
	if (a->fd < 0) {
		saved = errno;
		close(a->dirfd);
		a->dirfd = -1;
		errno = saved;
		return -1;
	}
	return 0;
}

/* audit_event - append one event (detail is stolen) */
int audit_event(struct audit *a, const char *event, const char *task_id, const char *task_type,
		json_t *detail)
{
	json_t *empty = NULL;
	int rc = -1, saved;

	if (a->fd < 0 || event == NULL || (detail != NULL && !json_is_object(detail))) {
		errno = a->fd < 0 ? EBADF : EINVAL;
		goto out;
	}
	if (detail == NULL)
		detail = empty = json_object();
	if (a->batch) {
		rc = audit_batch_add(a, event, task_id, task_type, detail);
		goto out;
	}
	if (audit_lock_current(a) < 0)
		goto out;
	rc = audit_append_locked(a->fd, a->prog, event, task_id, task_type, detail, NULL);
	saved = errno;
	flock(a->fd, LOCK_UN);
	errno = saved;
out:
	if (empty == NULL)
		json_decref(detail);
	json_decref(empty);
	return rc;
}

/* audit_close - close the trail */
void audit_close(struct audit *a)
{
	if (a->batch)
		audit_batch_end(a);
	free(a->buf);
	a->buf = NULL;
	a->cap = a->len = 0;
	if (a->fd >= 0)
		close(a->fd);
	if (a->dirfd >= 0)
		close(a->dirfd);
	a->fd = a->dirfd = -1;
}

/* audit_read_line - read one line of at most cap bytes; *len = bytes kept, -1 at EOF */
static int audit_read_line(FILE *f, char *buf, size_t cap, size_t *len, int *newline, int *toolong)
{
	int c;
	size_t n = 0;

	*newline = *toolong = 0;
	while ((c = getc_unlocked(f)) != EOF) {
		if (n < cap)
			buf[n] = (char)c;
		else
			*toolong = 1;
		n++;
		if (c == '\n') {
			*newline = 1;
			break;
		}
	}
	if (n == 0)
		return -1;
	*len = n < cap ? n : cap;
	return 0;
}

/* audit_check_line - the reason a line (newline removed) is bad, NULL when it is good */
static const char *audit_check_line(const char *line, size_t len, char prev[65], char hash[65])
{
	json_error_t jerr;
	json_t *obj;
	const char *jh, *jp, *sh, *why = NULL;
	char want[65];

	obj = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (obj == NULL || !json_is_object(obj)) {
		json_decref(obj);
		return "not JSON";
	}
	jh = json_string_value(json_object_get(obj, "hash"));
	jp = json_string_value(json_object_get(obj, "prev"));
	sh = audit_line_hash(line, len);
	if (jp == NULL || strlen(jp) != 64 || !audit_hex64(jp))
		why = "prev missing or malformed";
	else if (jh == NULL || sh == NULL || strncmp(jh, sh, 64) != 0 || strlen(jh) != 64)
		why = "hash mismatch";
	else if (audit_sha256_hex(line, len - AUDIT_SUFFIX_LEN, "}", 1, want) < 0 ||
		 memcmp(want, sh, 64) != 0)
		why = "hash mismatch";
	if (why == NULL) {
		memcpy(prev, jp, 65);
		memcpy(hash, sh, 64);
		hash[64] = 0;
	}
	json_decref(obj);
	return why;
}

/* audit_verify - walk the chain of one file */
int audit_verify(const char *path, struct audit_verdict *v)
{
	char prev[65], hash[65], *buf = NULL;
	const char *why = NULL;
	FILE *f = NULL;
	int fd, rc = -1;

	memset(v, 0, sizeof(*v));
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || (f = fdopen(fd, "r")) == NULL) {
		snprintf(v->reason, sizeof(v->reason), "%s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	buf = malloc(AUDIT_LINE_MAX + 1);
	if (buf == NULL)
		goto out;
	for (;;) {
		size_t len;
		int newline, toolong;

		if (audit_read_line(f, buf, AUDIT_LINE_MAX + 1, &len, &newline, &toolong) < 0)
			break;
		v->lines++;
		if (toolong)
			why = "line too long";
		else if (!newline)
			why = "truncated line";
		else
			why = audit_check_line(buf, len - 1, prev, hash);
		if (why == NULL && v->lines == 1)
			memcpy(v->first_prev, prev, 65);
		else if (why == NULL && strcmp(prev, v->last_hash) != 0)
			snprintf(v->reason, sizeof(v->reason), "prev does not match line %ld",
				 v->lines - 1);
		if (why != NULL)
			snprintf(v->reason, sizeof(v->reason), "%s", why);
		if (v->reason[0] != 0) {
			v->bad_line = v->lines;
			rc = 1;
			goto out;
		}
		memcpy(v->last_hash, hash, 65);
	}
	if (ferror(f)) {
		snprintf(v->reason, sizeof(v->reason), "read error: %s", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (rc < 0 && v->reason[0] == 0)
		snprintf(v->reason, sizeof(v->reason), "%s", strerror(errno));
	free(buf);
	fclose(f);
	return rc;
}

/* audit_archive - link audit.log to a fresh audit.log.<UTC> name */
static int audit_archive(int dirfd, char *name, size_t namelen)
{
	char stamp[32];
	struct tm tm;
	time_t now = time(NULL);

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	for (int i = 0; i < 100; i++) {
		if (i == 0)
			snprintf(name, namelen, AUDIT_FILE ".%s", stamp);
		else
			snprintf(name, namelen, AUDIT_FILE ".%s-%d", stamp, i);
		if (linkat(dirfd, AUDIT_FILE, dirfd, name, 0) == 0)
			return 0;
		if (errno != EEXIST)
			return -1;
	}
	return -1;
}

/* audit_rotate - start a new audit.log chained to the old one */
int audit_rotate(const char *log_dir, char *err, size_t errlen)
{
	struct audit old = {.fd = -1, .dirfd = -1};
	char prev[65], archive[64], tmp[64];
	struct stat st;
	json_t *detail = NULL;
	int newfd = -1, linked = 0, open_line, rc = -1;

	old.dirfd = open(log_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (old.dirfd < 0) {
		snprintf(err, errlen, "%s: %s", log_dir, strerror(errno));
		goto out;
	}
	if (fstatat(old.dirfd, AUDIT_FILE, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT) {
		rc = 0; /* nothing to rotate */
		goto out;
	}
	old.fd = audit_open_file(old.dirfd);
	if (old.fd < 0 || audit_lock_current(&old) < 0 || fstat(old.fd, &st) < 0) {
		snprintf(err, errlen, "%s/%s: %s", log_dir, AUDIT_FILE, strerror(errno));
		goto out;
	}
	if (st.st_size == 0) {
		rc = 0; /* an empty trail: nothing to keep */
		goto out;
	}
	if (audit_last_hash(old.fd, prev, &open_line) < 0) {
		snprintf(err, errlen, "%s/%s: cannot read: %s", log_dir, AUDIT_FILE, strerror(errno));
		goto out;
	}
	if (audit_archive(old.dirfd, archive, sizeof(archive)) < 0) {
		snprintf(err, errlen, "%s: cannot link %s to an archive name: %s", log_dir,
			 AUDIT_FILE, strerror(errno));
		goto out;
	}
	linked = 1;
	/* the new file, complete with its first line, before it takes the name */
	snprintf(tmp, sizeof(tmp), "." AUDIT_FILE ".%ld.tmp", (long)getpid());
	unlinkat(old.dirfd, tmp, 0);
	newfd = openat(old.dirfd, tmp, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		       0600);
	detail = json_pack("{s:s}", "previous_file", archive);
	if (newfd < 0 || flock(newfd, LOCK_EX) < 0 || detail == NULL ||
	    audit_append_locked(newfd, log_prog(), "audit.rotated", NULL, NULL, detail, prev) < 0) {
		snprintf(err, errlen, "%s/%s: cannot write: %s", log_dir, tmp, strerror(errno));
		unlinkat(old.dirfd, tmp, 0);
		goto out;
	}
	if (renameat(old.dirfd, tmp, old.dirfd, AUDIT_FILE) < 0) {
		snprintf(err, errlen, "%s: cannot rename %s to %s: %s", log_dir, tmp, AUDIT_FILE,
			 strerror(errno));
		unlinkat(old.dirfd, tmp, 0);
		goto out;
	}
	linked = 0;
	if (fsync(old.dirfd) < 0) {
		snprintf(err, errlen, "%s: fsync: %s", log_dir, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (linked)
		unlinkat(old.dirfd, archive, 0); /* audit.log keeps its one name */
	json_decref(detail);
	if (newfd >= 0)
		close(newfd); /* releases the new file's lock after the rename */
	audit_close(&old);
	return rc;
}
