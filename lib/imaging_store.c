/* SPDX-License-Identifier: Apache-2.0 */
/*
 * imaging_store - the native imaging project store (see imaging_store.h).
 */
#include "lib/imaging_store.h"

#include "lib/durable.h"
#include "lib/ident.h"
#include "lib/statedir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#define IMAGING_META_MAX (4u << 20)

static const char *const imaging_states[IMAGING_NSTATES] = {
	"queued", "processing", "successful", "failed", "queue_failed",
};

/* imaging_state_name - a state's name */
const char *imaging_state_name(enum imaging_state st)
{
	return st < IMAGING_NSTATES ? imaging_states[st] : "?";
}

/* imaging_state_parse - a name to its state, -1 when unknown */
int imaging_state_parse(const char *name)
{
	for (int i = 0; name && i < IMAGING_NSTATES; i++)
		if (strcmp(name, imaging_states[i]) == 0)
			return i;
	return -1;
}

/* imaging_root - FLIP_STATE_DIR/imaging, created when missing */
static int imaging_root(const char *state_dir)
{
	return statedir_open_sub(state_dir, STATEDIR_IMAGING);
}

static json_t *imaging_read_json(int dirfd, const char *file)
{
	char *text;
	size_t len;
	json_t *v;

	if (durable_read(dirfd, file, IMAGING_META_MAX, &text, &len) < 0)
		return NULL;
	v = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	free(text);
	if (v == NULL)
		errno = EINVAL;
	return v;
}

/* imaging_list - the projects' ids (directories named by a UUID) */
int imaging_list(const char *state_dir, char ***ids, size_t *n)
{
	int root = imaging_root(state_dir);
	DIR *d;
	struct dirent *de;
	char **v = NULL;
	size_t cnt = 0;

	*ids = NULL;
	*n = 0;
	if (root < 0 || (d = fdopendir(root)) == NULL) {
		if (root >= 0)
			close(root);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (!ident_ok(IDENT_UUID, de->d_name))
			continue;	/* temporaries and anything foreign */
		char **nv = realloc(v, (cnt + 1) * sizeof(*v));
		if (nv == NULL || (nv[cnt] = strdup(de->d_name)) == NULL) {
			free(nv ? nv : v);
			closedir(d);
			return -1;
		}
		v = nv;
		cnt++;
	}
	closedir(d);
	*ids = v;
	*n = cnt;
	return 0;
}

static void imaging_free_list(char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

/* imaging_find_by_hub_project - the project created for this hub project: 1, 0 none, -1 */
int imaging_find_by_hub_project(const char *state_dir, const char *hub_project, char id[37])
{
	char **ids;
	size_t n;
	int found = 0;

	if (imaging_list(state_dir, &ids, &n) < 0)
		return -1;
	for (size_t i = 0; i < n && !found; i++) {
		struct imaging_project *p = imaging_open(state_dir, ids[i]);
		const char *sec = p ? json_string_value(json_object_get(p->meta, "secondary_ID")) : NULL;
		if (sec && strcasecmp(sec, hub_project) == 0) {
			snprintf(id, 37, "%s", ids[i]);
			found = 1;
		}
		imaging_close(p);
	}
	imaging_free_list(ids, n);
	return found;
}

/* imaging_uuid4 - a random UUID4 from the OpenSSL CSPRNG (project ids, pseudonyms) */
int imaging_uuid4(char out[37])
{
	unsigned char b[16];

	if (RAND_bytes(b, sizeof(b)) != 1)
		return -1;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
	return 0;
}

static void imaging_now(char out[32])
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/*
 * imaging_create - a new project from project (its "ID" must be set) and the ordered
 * list of accession strings; built aside, renamed into place.
 */
int imaging_create(const char *state_dir, const json_t *project, json_t *accessions, char *err,
		   size_t errlen)
{
	const char *id = json_string_value(json_object_get(project, "ID"));
	char tmp[96], name[32], now[32];
	int root, dfd = -1, afd = -1, rc = -1;
	size_t i;
	json_t *acc;

	if (id == NULL || !ident_ok(IDENT_UUID, id)) {
		snprintf(err, errlen, "imaging project id is not a UUID");
		errno = EINVAL;
		return -1;
	}
	root = imaging_root(state_dir);
	if (root < 0) {
		snprintf(err, errlen, "cannot open %s/" STATEDIR_IMAGING ": %s", state_dir, strerror(errno));
		return -1;
	}
	snprintf(tmp, sizeof(tmp), ".new-%s-%ld", id, (long)getpid());
	durable_remove_tree(root, tmp);
	if (mkdirat(root, tmp, 0700) < 0 ||
	    (dfd = openat(root, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
	    durable_mkdir(dfd, "accessions", 0700) < 0 || durable_mkdir(dfd, "data", 0700) < 0 ||
	    (afd = openat(dfd, "accessions", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		goto sysfail;
	imaging_now(now);
	json_array_foreach(accessions, i, acc) {
		char subject[37];
		if (imaging_uuid4(subject) < 0)
			goto sysfail;
		json_t *st = json_pack("{s:I,s:O,s:s,s:s,s:i,s:n,s:i,s:i,s:I,s:i,s:s}", "index",
				       (json_int_t)i, "accession", acc, "subject", subject, "state",
				       "queued", "attempts", 0, "error", "series", 0, "instances", 0,
				       "bytes", (json_int_t)0, "burned_in", 0, "updated_at", now);
		snprintf(name, sizeof(name), "%08zu.json", i);
		if (st == NULL || durable_write_json(afd, name, st, 0600) < 0) {
			json_decref(st);
			goto sysfail;
		}
		json_decref(st);
	}
	if (durable_write_json(dfd, "project.json", (json_t *)(uintptr_t)project, 0600) < 0 ||
	    durable_fsync_dir(afd) < 0 || durable_fsync_dir(dfd) < 0)
		goto sysfail;
	if (renameat(root, tmp, root, id) < 0 || durable_fsync_dir(root) < 0)
		goto sysfail;
	rc = 0;
	goto out;
sysfail:
	snprintf(err, errlen, "cannot create the imaging project in %s/" STATEDIR_IMAGING ": %s", state_dir,
		 strerror(errno));
	durable_remove_tree(root, tmp);
out:
	if (afd >= 0)
		close(afd);
	if (dfd >= 0)
		close(dfd);
	close(root);
	return rc;
}

/* imaging_open - an existing project (NULL, errno ENOENT, when there is none) */
struct imaging_project *imaging_open(const char *state_dir, const char *id)
{
	struct imaging_project *p;
	int root;

	if (!ident_ok(IDENT_UUID, id)) {
		errno = ENOENT;	/* cannot name a project: there is none */
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->dirfd = p->accfd = -1;
	root = imaging_root(state_dir);
	if (root >= 0) {
		p->dirfd = openat(root, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(root);
	}
	if (p->dirfd < 0 ||
	    (p->accfd = openat(p->dirfd, "accessions", O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
							       O_CLOEXEC)) < 0 ||
	    (p->meta = imaging_read_json(p->dirfd, "project.json")) == NULL) {
		int saved = errno;
		imaging_close(p);
		errno = saved;
		return NULL;
	}
	snprintf(p->id, sizeof(p->id), "%s", id);
	return p;
}

/* imaging_close - release a project */
void imaging_close(struct imaging_project *p)
{
	if (p == NULL)
		return;
	if (p->accfd >= 0)
		close(p->accfd);
	if (p->dirfd >= 0)
		close(p->dirfd);
	json_decref(p->meta);
	free(p);
}

/* imaging_accession_count - how many accessions the project has */
long imaging_accession_count(struct imaging_project *p)
{
	long n = 0;
	char name[32];
	struct stat st;

	for (;; n++) {
		snprintf(name, sizeof(name), "%08ld.json", n);
		if (fstatat(p->accfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return n;
	}
}

/* imaging_accession_read - one accession's state (NULL when absent or damaged) */
json_t *imaging_accession_read(struct imaging_project *p, long index)
{
	char name[32];

	snprintf(name, sizeof(name), "%08ld.json", index);
	return imaging_read_json(p->accfd, name);
}

/* imaging_accession_write - replace one accession's state atomically */
int imaging_accession_write(struct imaging_project *p, long index, json_t *state)
{
	char name[32], now[32];

	snprintf(name, sizeof(name), "%08ld.json", index);
	imaging_now(now);
	json_object_set_new(state, "updated_at", json_string(now));
	return durable_write_json(p->accfd, name, state, 0600);
}

/* imaging_counts - the five counts */
int imaging_counts(struct imaging_project *p, long long counts[IMAGING_NSTATES])
{
	long n = imaging_accession_count(p);

	memset(counts, 0, sizeof(long long) * IMAGING_NSTATES);
	for (long i = 0; i < n; i++) {
		json_t *st = imaging_accession_read(p, i);
		int s = imaging_state_parse(json_string_value(json_object_get(st, "state")));
		json_decref(st);
		if (s < 0)
			return -1;
		counts[s]++;
	}
	return 0;
}

/* imaging_count_error - accessions in state whose error category is error, or -1 */
long long imaging_count_error(struct imaging_project *p, enum imaging_state state,
			      const char *error)
{
	long n = imaging_accession_count(p);
	long long c = 0;

	for (long i = 0; i < n; i++) {
		json_t *st = imaging_accession_read(p, i);
		int s = imaging_state_parse(json_string_value(json_object_get(st, "state")));
		const char *e = json_string_value(json_object_get(st, "error"));

		if (s < 0) {
			json_decref(st);
			return -1;
		}
		c += s == (int)state && e && strcmp(e, error) == 0;
		json_decref(st);
	}
	return c;
}

/* imaging_reimport - failed and queue_failed back to queued */
int imaging_reimport(struct imaging_project *p, int *moved)
{
	long n = imaging_accession_count(p);

	*moved = 0;
	for (long i = 0; i < n; i++) {
		json_t *st = imaging_accession_read(p, i);
		int s = imaging_state_parse(json_string_value(json_object_get(st, "state")));
		if (s == IMAGING_FAILED || s == IMAGING_QUEUE_FAILED) {
			json_object_set_new(st, "state", json_string("queued"));
			json_object_set_new(st, "error", json_null());
			if (imaging_accession_write(p, i, st) < 0) {
				json_decref(st);
				return -1;
			}
			(*moved)++;
		}
		json_decref(st);
	}
	return 0;
}

/* imaging_delete - rename the project aside (the worker notices), then remove it */
int imaging_delete(const char *state_dir, const char *id)
{
	char aside[96];
	int root;

	if (!ident_ok(IDENT_UUID, id)) {
		errno = ENOENT;
		return -1;
	}
	root = imaging_root(state_dir);
	if (root < 0)
		return -1;
	snprintf(aside, sizeof(aside), ".deleted-%s-%ld", id, (long)getpid());
	if (renameat(root, id, root, aside) < 0) {
		int saved = errno;
		close(root);
		errno = saved;
		return -1;
	}
	durable_fsync_dir(root);
	durable_remove_tree(root, aside);
	close(root);
	return 0;
}

/* imaging_set_user_enabled - record a viewer's enabled flag (native mode keeps no accounts) */
int imaging_set_user_enabled(const char *state_dir, const char *email, int enabled)
{
	int root = imaging_root(state_dir), rc;
	json_t *users;

	if (root < 0)
		return -1;
	users = imaging_read_json(root, "users.json");
	if (!json_is_object(users)) {
		json_decref(users);
		users = json_object();
	}
	json_object_set_new(users, email, json_boolean(enabled));
	rc = durable_write_json(root, "users.json", users, 0600);
	json_decref(users);
	close(root);
	return rc;
}
