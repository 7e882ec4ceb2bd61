/* SPDX-License-Identifier: Apache-2.0 */
/*
 * snapshot - frozen cohort memberships (see snapshot.h).
 */
#include "lib/snapshot.h"

#include "lib/digest.h"
#include "lib/durable.h"
#include "lib/statedir.h"
#include "lib/ident.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SNAPSHOT_META_MAX (16u << 20)
#define SNAPSHOT_QUERY_MAX (1u << 20)
#define SNAPSHOT_V1_LINE_MAX 4096	/* an id longer than this is not an id */

static const char *const snapshot_set_file[] = {"persons.txt", "accessions.txt"};

struct snapshot_writer {
	int cohortsfd;		/* FLIP_STATE_DIR/cohorts */
	int dirfd;		/* the temporary directory */
	char tmpname[96];
	char project[37];
	FILE *files[2];
	long long ids[2], bytes, max_bytes;
};

struct snapshot {
	int dirfd;
	json_t *meta;
	char *query;
};

static int snapshot_cohorts_dir(const char *state_dir)
{
	return statedir_open_sub(state_dir, STATEDIR_COHORTS);
}

/* snapshot_create - start a snapshot in a temporary sibling directory */
struct snapshot_writer *snapshot_create(const char *state_dir, const char *project,
					long long max_bytes, char *err, size_t errlen)
{
	struct snapshot_writer *w = calloc(1, sizeof(*w));

	if (w == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->cohortsfd = w->dirfd = -1;
	if (!ident_ok(IDENT_UUID, project) || strlen(project) != 36) {
		snprintf(err, errlen, "project id is not a UUID");
		free(w);
		errno = EINVAL;
		return NULL;
	}
	snprintf(w->project, sizeof(w->project), "%s", project);
	w->max_bytes = max_bytes;
	w->cohortsfd = snapshot_cohorts_dir(state_dir);
	if (w->cohortsfd < 0) {
		snprintf(err, errlen, "cannot open %s/" STATEDIR_COHORTS ": %s", state_dir,
			 strerror(errno));
		goto fail;
	}
	snprintf(w->tmpname, sizeof(w->tmpname), ".new-%s-%ld", project, (long)getpid());
	durable_remove_tree(w->cohortsfd, w->tmpname);	/* a crashed run of ours */
	if (mkdirat(w->cohortsfd, w->tmpname, 0700) < 0 ||
	    (w->dirfd = openat(w->cohortsfd, w->tmpname,
			       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "cannot create a snapshot directory in %s/" STATEDIR_COHORTS ": %s",
			 state_dir, strerror(errno));
		goto fail;
	}
	return w;
fail:
	snapshot_abort(w);
	return NULL;
}

/* snapshot_add_id - one id of a set, in order */
int snapshot_add_id(struct snapshot_writer *w, int set, const char *id)
{
	size_t len = strlen(id);

	if ((set != SNAPSHOT_PERSONS && set != SNAPSHOT_ACCESSIONS) || len == 0 ||
	    strchr(id, '\n')) {
		errno = EINVAL;	/* an id on two lines would be two ids */
		return -1;
	}
	if (w->files[set] == NULL) {
		int fd = openat(w->dirfd, snapshot_set_file[set],
				O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 || (w->files[set] = fdopen(fd, "w")) == NULL) {
			if (fd >= 0)
				close(fd);
			return -1;
		}
	}
	if (fwrite_unlocked(id, 1, len, w->files[set]) != len ||
	    putc_unlocked('\n', w->files[set]) == EOF)
		return -1;
	w->ids[set]++;
	w->bytes += (long long)len + 1;
	if (w->max_bytes > 0 && w->bytes > w->max_bytes) {
		errno = EFBIG;
		return -1;
	}
	return 0;
}

/* snapshot_finish - query.sql and meta.json, fsync everything, rename into place;
 * replace: swap with the existing snapshot (migration), which is then removed */
static int snapshot_finish(struct snapshot_writer *w, json_t *meta, const char *query,
			   int replace, char *err, size_t errlen)
{
	int rc = -1;

	for (int i = 0; i < 2; i++) {
		FILE *f = w->files[i];
		w->files[i] = NULL;
		if (f == NULL)
			continue;
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
	w->bytes += (long long)strlen(query);
	if (w->max_bytes > 0 && w->bytes > w->max_bytes) {
		snprintf(err, errlen, "the snapshot exceeds SNAPSHOT_MAX_BYTES");
		errno = EFBIG;
		goto out;
	}
	json_object_set_new(meta, "format_version", json_integer(SNAPSHOT_FORMAT_VERSION));
	json_object_set_new(meta, "person_ids", json_integer(w->ids[SNAPSHOT_PERSONS]));
	json_object_set_new(meta, "accession_ids", json_integer(w->ids[SNAPSHOT_ACCESSIONS]));
	json_object_set_new(meta, "bytes", json_integer(w->bytes));
	if (durable_write(w->dirfd, "query.sql", query, strlen(query), 0600) < 0 ||
	    durable_write_json(w->dirfd, "meta.json", meta, 0600) < 0) {
		snprintf(err, errlen, "cannot write the snapshot's meta.json: %s", strerror(errno));
		goto out;
	}
	/* once per project: a snapshot frozen meanwhile by another run is kept */
	if (renameat2(w->cohortsfd, w->tmpname, w->cohortsfd, w->project,
		      replace ? RENAME_EXCHANGE : RENAME_NOREPLACE) < 0) {
		int saved = errno;
		snprintf(err, errlen, saved == EEXIST ? "the project already has a snapshot"
			 : "cannot put the snapshot in place: %s", strerror(saved));
		errno = saved;
		goto out;
	}
	if (!replace)
		w->tmpname[0] = 0;	/* else it names the old snapshot now: abort removes it */
	if (durable_fsync_dir(w->cohortsfd) < 0) {
		snprintf(err, errlen, "cannot fsync the snapshot directory: %s", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	{
		int saved = errno;
		snapshot_abort(w);
		errno = saved;
	}
	return rc;
}

/* snapshot_commit - query.sql and meta.json, fsync everything, rename into place */
int snapshot_commit(struct snapshot_writer *w, json_t *meta, const char *query, char *err,
		    size_t errlen)
{
	return snapshot_finish(w, meta, query, 0, err, errlen);
}

/* snapshot_abort - drop an unfinished snapshot (also frees a committed writer) */
void snapshot_abort(struct snapshot_writer *w)
{
	if (w == NULL)
		return;
	for (int i = 0; i < 2; i++)
		if (w->files[i])
			fclose(w->files[i]);
	if (w->dirfd >= 0)
		close(w->dirfd);
	if (w->cohortsfd >= 0) {
		if (w->tmpname[0])
			durable_remove_tree(w->cohortsfd, w->tmpname);
		close(w->cohortsfd);
	}
	free(w);
}

/* snapshot_dir - open cohorts/<project>; -1 with errno */
static int snapshot_dir(const char *state_dir, const char *project)
{
	int cfd = snapshot_cohorts_dir(state_dir), fd;

	if (cfd < 0)
		return -1;
	fd = openat(cfd, project, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	{
		int saved = errno;
		close(cfd);
		errno = saved;
	}
	return fd;
}

/* snapshot_read_meta - meta.json of an open snapshot directory; NULL when damaged */
static json_t *snapshot_read_meta(int dirfd)
{
	char *text;
	size_t len;
	json_t *meta;

	if (durable_read(dirfd, "meta.json", SNAPSHOT_META_MAX, &text, &len) < 0)
		return NULL;
	meta = json_loadb(text, len, 0, NULL);
	free(text);
	if (!json_is_object(meta) || !json_is_array(json_object_get(meta, "columns"))) {
		json_decref(meta);
		return NULL;
	}
	return meta;
}

/* snapshot_open - a project's snapshot for reading (ENOENT: none, EPROTO: format 1) */
struct snapshot *snapshot_open(const char *state_dir, const char *project, char *err,
			       size_t errlen)
{
	struct snapshot *s;
	size_t len;
	json_int_t version;

	if (!ident_ok(IDENT_UUID, project)) {
		snprintf(err, errlen, "project id is not a UUID");
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->dirfd = snapshot_dir(state_dir, project);
	if (s->dirfd < 0) {
		int saved = errno;
		snprintf(err, errlen, "no snapshot for this project");
		free(s);
		errno = saved;
		return NULL;
	}
	s->meta = snapshot_read_meta(s->dirfd);
	version = json_integer_value(json_object_get(s->meta, "format_version"));
	if (s->meta && version == 1) {
		snprintf(err, errlen, "the snapshot is in format 1 (it holds row values); it is "
			 "converted to membership when the hub re-sends persist_cohort "
			 "(docs/operations.md, \"Cohort snapshots\")");
		snapshot_close(s);
		errno = EPROTO;
		return NULL;
	}
	if (s->meta == NULL || version != SNAPSHOT_FORMAT_VERSION ||
	    durable_read(s->dirfd, "query.sql", SNAPSHOT_QUERY_MAX, &s->query, &len) < 0 ||
	    strlen(s->query) != len) {
		snprintf(err, errlen, "the snapshot's meta.json or query.sql is missing or damaged");
		snapshot_close(s);
		errno = EINVAL;
		return NULL;
	}
	return s;
}

const json_t *snapshot_meta(const struct snapshot *s)
{
	return s->meta;
}

const char *snapshot_query(const struct snapshot *s)
{
	return s->query;
}

/* snapshot_ids - one membership set for reading, one id per line */
FILE *snapshot_ids(const struct snapshot *s, int set)
{
	int fd;
	FILE *f;

	if (set != SNAPSHOT_PERSONS && set != SNAPSHOT_ACCESSIONS) {
		errno = EINVAL;
		return NULL;
	}
	fd = openat(s->dirfd, snapshot_set_file[set], O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if ((f = fdopen(fd, "r")) == NULL)
		close(fd);
	return f;
}

/* snapshot_facts - the persist_cohort result from meta.json */
json_t *snapshot_facts(const json_t *meta)
{
	json_t *m = (json_t *)(uintptr_t)meta;	/* jansson's getters are not const */

	return json_pack("{s:O,s:O,s:O,s:O,s:O,s:O}", "row_count", json_object_get(m, "row_count"),
			 "columns", json_object_get(m, "columns"), "has_accessions",
			 json_object_get(m, "has_accessions"), "snapshot_at",
			 json_object_get(m, "snapshot_at"), "query_hash",
			 json_object_get(m, "query_hash"), "subject_count",
			 json_object_get(m, "subject_count"));
}

void snapshot_close(struct snapshot *s)
{
	if (s == NULL)
		return;
	if (s->dirfd >= 0)
		close(s->dirfd);
	json_decref(s->meta);
	free(s->query);
	free(s);
}

/* --- format 1: row values, converted to membership ---------------------------------------- */

struct snapshot_idlist {
	char **v;
	size_t n, cap;
};

static int snapshot_numeric_cmp(const void *a, const void *b)
{
	long long x = strtoll(*(char *const *)a, NULL, 10), y = strtoll(*(char *const *)b, NULL, 10);

	return (x > y) - (x < y);
}

static int snapshot_bytewise_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* snapshot_v1_column - the distinct non-null values of one format 1 column file */
static int snapshot_v1_column(int dirfd, int col, int numeric, struct snapshot_idlist *l)
{
	char file[32], *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int fd, rc = 0;
	FILE *f;

	snprintf(file, sizeof(file), "c%04d.jsonl", col);
	fd = openat(dirfd, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || (f = fdopen(fd, "r")) == NULL) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while (rc == 0 && (n = getline(&line, &cap, f)) > 0) {
		json_t *v = n < SNAPSHOT_V1_LINE_MAX ? json_loadb(line, (size_t)n, JSON_DECODE_ANY, NULL)
						     : NULL;
		char buf[32];
		const char *id = NULL;

		if (json_is_integer(v)) {
			snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
			id = buf;
		} else if (json_is_string(v) && json_string_length(v) > 0 &&
			   !strchr(json_string_value(v), '\n')) {
			id = json_string_value(v);
		} else if (!json_is_null(v)) {
			errno = EINVAL;	/* not an id: damage */
			rc = -1;
		}
		if (id != NULL) {
			if (l->n == l->cap) {
				size_t nc = l->cap ? l->cap * 2 : 1024;
				char **nv = realloc(l->v, nc * sizeof(*nv));
				if (nv == NULL)
					rc = -1;
				else
					l->v = nv, l->cap = nc;
			}
			if (rc == 0 && (l->v[l->n] = strdup(id)) == NULL)
				rc = -1;
			else if (rc == 0)
				l->n++;
		}
		json_decref(v);
	}
	if (rc == 0 && ferror(f))
		rc = -1;
	free(line);
	fclose(f);
	if (rc == 0)
		qsort(l->v, l->n, sizeof(*l->v), numeric ? snapshot_numeric_cmp : snapshot_bytewise_cmp);
	return rc;
}

static void snapshot_idlist_free(struct snapshot_idlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

/* snapshot_v1_index - index of a named column in a format 1 meta.json, -1 when absent */
static int snapshot_v1_index(const json_t *meta, const char *name, int *numeric)
{
	json_t *cols = json_object_get(meta, "columns"), *c;
	json_t *kinds = json_object_get(meta, "kinds");
	size_t i;

	json_array_foreach(cols, i, c)
		if (json_string_value(c) && strcmp(json_string_value(c), name) == 0) {
			const char *k = json_string_value(json_array_get(kinds, i));
			*numeric = k && strcmp(k, "number") == 0;
			return (int)i;
		}
	return -1;
}

/* snapshot_migrate - a format 1 snapshot (row values) becomes a format 2 membership */
int snapshot_migrate(const char *state_dir, const char *project, const char *query,
		     long long max_bytes, char *err, size_t errlen)
{
	struct snapshot_idlist sets[2] = {{0}, {0}};
	struct snapshot_writer *w = NULL;
	json_t *old = NULL, *meta = NULL;
	char hash[65];
	int dirfd, cols[2], numeric[2] = {0, 0}, rc = -1;
	const char *was;

	dirfd = snapshot_dir(state_dir, project);
	if (dirfd < 0) {
		snprintf(err, errlen, "no snapshot for this project");
		return -1;
	}
	old = snapshot_read_meta(dirfd);
	if (old == NULL || json_integer_value(json_object_get(old, "format_version")) != 1) {
		snprintf(err, errlen, "not a format 1 snapshot");
		errno = EINVAL;
		goto out;
	}
	was = json_string_value(json_object_get(old, "query_hash"));
	if (digest_query(query, hash) < 0 || was == NULL || strcmp(was, hash) != 0) {
		snprintf(err, errlen, "the format 1 snapshot was frozen from another query "
			 "(fingerprint %.12s, not %.12s)", was ? was : "none", hash);
		errno = ESTALE;
		goto out;
	}
	cols[0] = snapshot_v1_index(old, "person_id", &numeric[0]);
	cols[1] = snapshot_v1_index(old, "accession_id", &numeric[1]);
	numeric[1] = 0;	/* accession ids are text, always ordered bytewise */
	if (cols[0] < 0 && cols[1] < 0) {
		snprintf(err, errlen, "the format 1 snapshot has neither a person_id nor an "
			 "accession_id column");
		errno = EINVAL;
		goto out;
	}
	for (int k = 0; k < 2; k++)
		if (cols[k] >= 0 && snapshot_v1_column(dirfd, cols[k], numeric[k], &sets[k]) < 0) {
			snprintf(err, errlen, "cannot read the format 1 snapshot: %s", strerror(errno));
			goto out;
		}
	if ((w = snapshot_create(state_dir, project, max_bytes, err, errlen)) == NULL)
		goto out;
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < sets[k].n; i++)
			if ((i == 0 || strcmp(sets[k].v[i], sets[k].v[i - 1]) != 0) &&
			    snapshot_add_id(w, k, sets[k].v[i]) < 0) {
				snprintf(err, errlen, "cannot write the membership: %s", strerror(errno));
				goto out;
			}
	meta = json_pack("{s:O,s:O,s:b,s:O,s:s,s:O?,s:s,s:O?,s:O?}", "row_count",
			 json_object_get(old, "row_count"), "subject_count",
			 json_object_get(old, "subject_count"), "has_accessions",
			 cols[1] >= 0, "columns", json_object_get(old, "columns"),
			 "query_hash", hash, "snapshot_at", json_object_get(old, "created_at"),
			 "person_order", numeric[0] ? "numeric" : "bytewise", "project_id",
			 json_object_get(old, "project_id"), "query_id", json_object_get(old, "query_id"));
	json_object_set_new(meta, "migrated_from_format", json_integer(1));
	/* the format 2 snapshot replaces the format 1 one: swap, then drop the values */
	if (meta == NULL) {
		snprintf(err, errlen, "the format 1 meta.json lacks row_count or subject_count");
		errno = EINVAL;
		goto out;
	}
	if (snapshot_finish(w, meta, query, 1, err, errlen) < 0) {
		w = NULL;
		goto out;
	}
	w = NULL;
	rc = 0;
out:
	snapshot_abort(w);
	json_decref(meta);
	json_decref(old);
	snapshot_idlist_free(&sets[0]);
	snapshot_idlist_free(&sets[1]);
	if (dirfd >= 0)
		close(dirfd);
	return rc;
}
