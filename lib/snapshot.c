/*
 * snapshot - frozen cohort snapshots (see snapshot.h).
 */
#include "snapshot.h"

#include "durable.h"
#include "ident.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SNAPSHOT_META_MAX (16u << 20)

struct snapshot_writer {
	int cohortsfd;		/* FLIP_STATE_DIR/cohorts */
	int dirfd;		/* the temporary directory */
	char tmpname[96];
	char project[37];
	int ncols;
	FILE **files;
	int *kinds;
	json_t *names;
	long long rows, bytes, max_bytes;
};

struct snapshot {
	int dirfd;
	json_t *meta;
};

static int snapshot_cohorts_dir(const char *state_dir)
{
	int sfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), fd;

	if (sfd < 0)
		return -1;
	if (durable_mkdir(sfd, "cohorts", 0700) < 0) {
		close(sfd);
		return -1;
	}
	fd = openat(sfd, "cohorts", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	close(sfd);
	return fd;
}

/* snapshot_create - start a snapshot in a temporary sibling directory */
struct snapshot_writer *snapshot_create(const char *state_dir, const char *project, int ncols,
					const char *const *names, const int *kinds,
					long long max_bytes, char *err, size_t errlen)
{
	struct snapshot_writer *w = calloc(1, sizeof(*w));

	if (w == NULL)
		goto nomem;
	w->cohortsfd = w->dirfd = -1;
	if (!ident_ok(IDENT_UUID, project) || strlen(project) != 36) {
		snprintf(err, errlen, "project id is not a UUID");
		free(w);
		errno = EINVAL;
		return NULL;
	}
	snprintf(w->project, sizeof(w->project), "%s", project);
	w->ncols = ncols;
	w->max_bytes = max_bytes;
	w->files = calloc((size_t)ncols + 1, sizeof(*w->files));
	w->kinds = calloc((size_t)ncols + 1, sizeof(*w->kinds));
	w->names = json_array();
	if (w->files == NULL || w->kinds == NULL || w->names == NULL)
		goto nomem;
	w->cohortsfd = snapshot_cohorts_dir(state_dir);
	if (w->cohortsfd < 0) {
		snprintf(err, errlen, "cannot open %s/cohorts: %s", state_dir, strerror(errno));
		goto fail;
	}
	snprintf(w->tmpname, sizeof(w->tmpname), ".new-%s-%ld", project, (long)getpid());
	durable_remove_tree(w->cohortsfd, w->tmpname);	/* a crashed run of ours */
	if (mkdirat(w->cohortsfd, w->tmpname, 0700) < 0 ||
	    (w->dirfd = openat(w->cohortsfd, w->tmpname,
			       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "cannot create a snapshot directory in %s/cohorts: %s",
			 state_dir, strerror(errno));
		goto fail;
	}
	for (int i = 0; i < ncols; i++) {
		char file[32];
		int fd;

		snprintf(file, sizeof(file), "c%04d.jsonl", i);
		fd = openat(w->dirfd, file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 || (w->files[i] = fdopen(fd, "w")) == NULL) {
			if (fd >= 0)
				close(fd);
			snprintf(err, errlen, "cannot create snapshot file %s: %s", file,
				 strerror(errno));
			goto fail;
		}
		w->kinds[i] = kinds[i];
		json_array_append_new(w->names, json_string(names[i]));
	}
	return w;
nomem:
	snprintf(err, errlen, "out of memory");
fail:
	snapshot_abort(w);
	return NULL;
}

/* snapshot_value - one value as JSON text into buf (may grow it) */
static int snapshot_write_value(struct snapshot_writer *w, int i, const char *v)
{
	FILE *f = w->files[i];
	int n;

	if (v == NULL) {
		n = fputs("null\n", f) < 0 ? -1 : 5;
	} else if (w->kinds[i] == SNAPSHOT_BOOL) {
		n = fputs(v[0] == 't' ? "true\n" : "false\n", f) < 0 ? -1 : 6;
	} else if (w->kinds[i] == SNAPSHOT_NUMBER) {
		char *end;
		double d = strtod(v, &end);
		/* PostgreSQL's text of a number is JSON's, except NaN and the infinities */
		if (*end || !isfinite(d))
			n = fputs("null\n", f) < 0 ? -1 : 5;
		else
			n = fprintf(f, "%s\n", v);
	} else {
		json_t *s = json_string(v);
		char *text = s ? json_dumps(s, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;
		n = text ? fprintf(f, "%s\n", text) : -1;
		free(text);
		json_decref(s);
		if (s == NULL)
			errno = EILSEQ;	/* not UTF-8: the database is UTF8, so this is damage */
	}
	if (n < 0)
		return -1;
	w->bytes += n;
	return 0;
}

/* snapshot_add_row - append one row */
int snapshot_add_row(struct snapshot_writer *w, const char *const *values)
{
	for (int i = 0; i < w->ncols; i++)
		if (snapshot_write_value(w, i, values[i]) < 0)
			return -1;
	w->rows++;
	if (w->max_bytes > 0 && w->bytes > w->max_bytes) {
		errno = EFBIG;
		return -1;
	}
	return 0;
}

/* snapshot_commit - meta.json, fsync everything, swap into place */
int snapshot_commit(struct snapshot_writer *w, json_t *meta, char *err, size_t errlen)
{
	int rc = -1;

	for (int i = 0; i < w->ncols; i++) {
		FILE *f = w->files[i];
		w->files[i] = NULL;
		if (fflush(f) != 0 || fsync(fileno(f)) < 0) {
			snprintf(err, errlen, "cannot write the snapshot: %s", strerror(errno));
			fclose(f);
			goto out;
		}
		if (fclose(f) != 0) {
			snprintf(err, errlen, "cannot write the snapshot: %s", strerror(errno));
			goto out;
		}
	}
	json_object_set_new(meta, "format_version", json_integer(SNAPSHOT_FORMAT_VERSION));
	json_object_set_new(meta, "row_count", json_integer(w->rows));
	json_object_set(meta, "columns", w->names);
	json_t *kinds = json_array();
	for (int i = 0; i < w->ncols; i++)
		json_array_append_new(kinds, json_string(w->kinds[i] == SNAPSHOT_NUMBER ? "number"
							 : w->kinds[i] == SNAPSHOT_BOOL ? "bool"
											 : "string"));
	json_object_set_new(meta, "kinds", kinds);
	json_object_set_new(meta, "bytes", json_integer(w->bytes));
	if (durable_write_json(w->dirfd, "meta.json", meta, 0600) < 0) {
		snprintf(err, errlen, "cannot write the snapshot's meta.json: %s", strerror(errno));
		goto out;
	}
	/* swap: readers see the old snapshot or the new one, never neither */
	if (renameat2(w->cohortsfd, w->tmpname, w->cohortsfd, w->project, RENAME_EXCHANGE) == 0) {
		durable_remove_tree(w->cohortsfd, w->tmpname);	/* now the old one */
	} else if (errno == ENOENT) {
		if (renameat(w->cohortsfd, w->tmpname, w->cohortsfd, w->project) < 0) {
			snprintf(err, errlen, "cannot put the snapshot in place: %s", strerror(errno));
			goto out;
		}
	} else {
		snprintf(err, errlen, "cannot swap the snapshot into place: %s", strerror(errno));
		goto out;
	}
	w->tmpname[0] = 0;
	if (durable_fsync_dir(w->cohortsfd) < 0) {
		snprintf(err, errlen, "cannot fsync the snapshot directory: %s", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	snapshot_abort(w);
	return rc;
}

/* snapshot_abort - drop an unfinished snapshot (also frees a committed writer) */
void snapshot_abort(struct snapshot_writer *w)
{
	if (w == NULL)
		return;
	for (int i = 0; w->files && i < w->ncols; i++)
		if (w->files[i])
			fclose(w->files[i]);
	if (w->dirfd >= 0)
		close(w->dirfd);
	if (w->cohortsfd >= 0) {
		if (w->tmpname[0])
			durable_remove_tree(w->cohortsfd, w->tmpname);
		close(w->cohortsfd);
	}
	json_decref(w->names);
	free(w->files);
	free(w->kinds);
	free(w);
}

/* snapshot_open - a project's snapshot for reading (ENOENT: none) */
struct snapshot *snapshot_open(const char *state_dir, const char *project, char *err,
			       size_t errlen)
{
	struct snapshot *s;
	int cfd;
	char *text;
	size_t len;

	if (!ident_ok(IDENT_UUID, project)) {
		snprintf(err, errlen, "project id is not a UUID");
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	cfd = snapshot_cohorts_dir(state_dir);
	s->dirfd = cfd < 0 ? -1 : openat(cfd, project, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (cfd >= 0)
		close(cfd);
	if (s->dirfd < 0) {
		int saved = errno;
		snprintf(err, errlen, "no snapshot for this project");
		free(s);
		errno = saved;
		return NULL;
	}
	if (durable_read(s->dirfd, "meta.json", SNAPSHOT_META_MAX, &text, &len) < 0 ||
	    (s->meta = json_loadb(text, len, 0, NULL), free(text), s->meta == NULL) ||
	    json_integer_value(json_object_get(s->meta, "format_version")) != SNAPSHOT_FORMAT_VERSION ||
	    !json_is_array(json_object_get(s->meta, "columns"))) {
		snprintf(err, errlen, "the snapshot's meta.json is missing or damaged");
		snapshot_close(s);
		errno = EINVAL;
		return NULL;
	}
	return s;
}

/* snapshot_meta - the snapshot's meta.json */
const json_t *snapshot_meta(const struct snapshot *s)
{
	return s->meta;
}

/* snapshot_column - index of a column by name, -1 when absent */
int snapshot_column(const struct snapshot *s, const char *name)
{
	json_t *cols = json_object_get(s->meta, "columns"), *c;
	size_t i;

	json_array_foreach(cols, i, c)
		if (json_string_value(c) && strcmp(json_string_value(c), name) == 0)
			return (int)i;
	return -1;
}

/* snapshot_each - stream one column's values (JSON text, no newline) to fn */
int snapshot_each(const struct snapshot *s, int col,
		  int (*fn)(const char *json, size_t len, void *arg), void *arg)
{
	char file[32], *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int fd, rc = 0;
	FILE *f;

	if (col < 0 || (size_t)col >= json_array_size(json_object_get(s->meta, "columns"))) {
		errno = EINVAL;
		return -1;
	}
	snprintf(file, sizeof(file), "c%04d.jsonl", col);
	fd = openat(s->dirfd, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || (f = fdopen(fd, "r")) == NULL) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while (rc == 0 && (n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] == '\n')
			line[--n] = 0;
		rc = fn(line, (size_t)n, arg);
	}
	if (rc == 0 && ferror(f))
		rc = -1;
	free(line);
	fclose(f);
	return rc;
}

/* snapshot_close - release a reader */
void snapshot_close(struct snapshot *s)
{
	if (s == NULL)
		return;
	if (s->dirfd >= 0)
		close(s->dirfd);
	json_decref(s->meta);
	free(s);
}
