/* SPDX-License-Identifier: Apache-2.0 */
/*
 * retrieval - the imaging retrieval worker (see retrieval.h).
 *
 * PACS_RETRIEVE=move: the study comes by C-MOVE to a C-STORE receiver that
 * dicom_move_study() runs only for the duration of each retrieval, on
 * FLIP_DICOM_PORT. It is bound to 127.0.0.1 when PACS_HOST is a loopback address
 * (localhost, 127.0.0.0/8, ::1: the PACS then sends to loopback and nothing else
 * need reach the port), and to 0.0.0.0 otherwise: the PACS must reach it at the
 * address it has registered for FLIP_AETITLE, which the node cannot know, so the
 * host firewall is what narrows who can connect (the receiver itself accepts only
 * associations called for FLIP_AETITLE and instances of the study asked for).
 */
#include "bin/flip-exec/retrieval.h"

#include "lib/crash.h"
#include "lib/deid.h"
#include "lib/dicom.h"
#include "lib/durable.h"
#include "lib/err.h"
#include "lib/ident.h"
#include "lib/imaging_store.h"
#include "lib/log.h"
#include "lib/statedir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <pthread.h>

#define RETRIEVAL_KEY_LEN STATEDIR_DEID_KEY_LEN
#define RETRIEVAL_NIFTI_TIMEOUT 600	/* seconds dcm2niix may take for one study */
#define RETRIEVAL_QUEUE 4		/* instances received, not yet written: bounds memory */

/* what the store callback needs for one study */
struct retrieval_study {
	struct imaging_project *p;
	int rootfd;			/* FLIP_STATE_DIR/imaging: to see the project is still there */
	ino_t ino;			/* the project directory's inode */
	int stagefd;			/* data/.stage-<index>-<pid>/<accession>/scans */
	struct deid_params params;
	struct deid_stats deid;
	unsigned long stored;
	unsigned long long bytes;
	int deleted, deid_failed;
	struct node *n;			/* for the audit trail of burned-in overrides */
	long position;			/* the accession's place in the cohort, from 1 */
	int burned_refused;		/* an instance may show identifying text: not stored */
	unsigned long burned_stored;	/* such instances stored under DEID_ALLOW_BURNED_IN */
	/* the writer thread's queue (see retrieval_store) */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct dicom_ds *queue[RETRIEVAL_QUEUE];
	int head, queued, done, failed;
	char werr[256];			/* the writer's first failure */
	/* the writer's last series folder: instances come series by series */
	char series[32];
	int seriesfd;			/* <series>/resources/DICOM/files, or -1 */
};

/* retrieval_still_there - the project was not deleted (renamed aside) under us */
static int retrieval_still_there(int rootfd, const char *id, ino_t ino)
{
	struct stat st;

	return fstatat(rootfd, id, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_ino == ino;
}

static int retrieval_mkdirs(int dirfd, const char *const *parts, size_t n)
{
	int fd = dup(dirfd);

	for (size_t i = 0; fd >= 0 && i < n; i++) {
		int next;
		if (durable_mkdir(fd, parts[i], 0700) < 0 ||
		    (next = openat(fd, parts[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
			close(fd);
			return -1;
		}
		close(fd);
		fd = next;
	}
	return fd;
}

/* retrieval_store_one - one instance: refuse burned-in, de-identify, write, rename */
static int retrieval_store_one(struct dicom_ds *ds, void *arg, char *err, size_t errlen)
{
	struct retrieval_study *s = arg;
	char series[32] = "", uid[DICOM_UID_MAX + 1] = "", tmp[96], file[96];
	int fd = -1, sfd = -1;

	if (!retrieval_still_there(s->rootfd, s->p->id, s->ino)) {
		s->deleted = 1;
		snprintf(err, errlen, "project deleted during retrieval");
		return -1;
	}
	/* pixels may show what the attributes no longer do: refuse, unless the site
	 * said otherwise, and then say so in the audit trail */
	const char *why = "";
	if (deid_burned_in(ds, &why) != DEID_BURNED_NO) {
		if (!s->n->cfg.deid_allow_burned_in) {
			s->burned_refused = 1;
			snprintf(err, errlen, "instance not stored: %s", why);
			return -1;
		}
		s->burned_stored++;
		node_audit(s->n, "imaging.burned_in_stored", NULL, NULL,
			   json_pack("{s:s,s:I,s:s,s:s}", "imaging_project", s->p->id, "position",
				     (json_int_t)s->position, "reason", why, "switch",
				     "DEID_ALLOW_BURNED_IN"));
	}
	if (deid_instance(ds, &s->params, &s->deid, err, errlen) < 0) {
		s->deid_failed = 1;
		return -1;
	}
	/* names come from the de-identified instance: a number and a 2.25 UID */
	dicom_ds_get_string(ds, DICOM_TAG(0x0020, 0x0011), series, sizeof(series));
	dicom_ds_get_string(ds, DICOM_TAG(0x0008, 0x0018), uid, sizeof(uid));
	if (series[0] == 0 || strspn(series, "0123456789") != strlen(series))
		snprintf(series, sizeof(series), "0");
	if (uid[0] == 0 || strspn(uid, "0123456789.") != strlen(uid)) {
		snprintf(err, errlen, "instance without a usable SOPInstanceUID after de-identification");
		s->deid_failed = 1;
		return -1;
	}
	if (s->seriesfd < 0 || strcmp(s->series, series) != 0) {
		const char *parts[] = {series, "resources", "DICOM", "files"};
		if (s->seriesfd >= 0)
			close(s->seriesfd);
		s->seriesfd = retrieval_mkdirs(s->stagefd, parts, 4);
		if (s->seriesfd < 0)
			goto ioerr;
		snprintf(s->series, sizeof(s->series), "%s", series);
	}
	sfd = s->seriesfd;
	snprintf(file, sizeof(file), "%s.dcm", uid);
	snprintf(tmp, sizeof(tmp), ".%s.tmp", uid);
	unlinkat(sfd, tmp, 0);
	fd = openat(sfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || dicom_ds_save_fd(ds, fd, err, errlen) != DICOM_OK)
		goto fail;
	off_t size = lseek(fd, 0, SEEK_CUR);
	/* no fsync here: one syncfs makes the whole staged study durable before it is
	 * published (see retrieval_accession). Starting the write-back now (a hint,
	 * it does not wait) keeps that last wait short. */
	(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	if (close(fd) < 0) {
		fd = -1;
		goto ioerr;
	}
	fd = -1;
	if (renameat(sfd, tmp, sfd, file) < 0)
		goto ioerr;
	s->stored++;
	s->bytes += size > 0 ? (unsigned long long)size : 0;
	return 0;
ioerr:
	snprintf(err, errlen, "cannot store an instance: %s", strerror(errno));
fail:
	if (fd >= 0)
		close(fd);
	if (sfd >= 0)
		unlinkat(sfd, tmp, 0);
	return -1;
}

/*
 * The PACS sends the next instance only when the node has answered the last one,
 * so de-identifying and writing in the DICOM callback would put that work between
 * every two instances. Instead the callback queues the dataset (at most
 * RETRIEVAL_QUEUE of them, so memory stays bounded whatever the study's size) and
 * answers at once; one writer thread takes them in order through
 * retrieval_store_one(). Its first failure is kept: every later callback then
 * fails with it, which aborts the association, and the accession is judged on it
 * after the retrieval returns and the writer is joined. A success answered to the
 * PACS for an instance that is not stored yet costs nothing: a study is published
 * only when every instance was stored, and the PACS keeps its copy.
 */

/* retrieval_writer - the writer thread: the queue to the store, in order */
static void *retrieval_writer(void *arg)
{
	struct retrieval_study *s = arg;

	for (;;) {
		struct dicom_ds *ds;
		int failed;
		char err[256] = "";

		pthread_mutex_lock(&s->mu);
		while (s->queued == 0 && !s->done)
			pthread_cond_wait(&s->cv, &s->mu);
		if (s->queued == 0) {
			pthread_mutex_unlock(&s->mu);
			return NULL;
		}
		ds = s->queue[s->head];
		s->head = (s->head + 1) % RETRIEVAL_QUEUE;
		s->queued--;
		failed = s->failed;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
		if (!failed && retrieval_store_one(ds, s, err, sizeof err) < 0) {
			pthread_mutex_lock(&s->mu);
			s->failed = 1;
			snprintf(s->werr, sizeof s->werr, "%s", err[0] ? err : "cannot store an instance");
			pthread_cond_broadcast(&s->cv);
			pthread_mutex_unlock(&s->mu);
		}
		dicom_ds_free(ds);
	}
}

/* retrieval_store - dicom_get_study's callback: queue the instance for the writer */
static int retrieval_store(struct dicom_ds *ds, void *arg, char *err, size_t errlen)
{
	struct retrieval_study *s = arg;

	pthread_mutex_lock(&s->mu);
	while (s->queued == RETRIEVAL_QUEUE && !s->failed)
		pthread_cond_wait(&s->cv, &s->mu);
	if (s->failed) {
		snprintf(err, errlen, "%s", s->werr);
		pthread_mutex_unlock(&s->mu);
		return -1;
	}
	s->queue[(s->head + s->queued) % RETRIEVAL_QUEUE] = ds;
	s->queued++;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	/* test builds: hold the PACS's C-STORE answer here, mid-study, while the writer
	 * stages what it has (the fault suite kills the PACS at this moment) */
	PAUSE_POINT("imaging.after_instance");
	return DICOM_STORE_KEPT;
}

/* retrieval_writer_end - no more instances: let the writer finish, and wait for it */
static void retrieval_writer_end(struct retrieval_study *s, pthread_t t)
{
	pthread_mutex_lock(&s->mu);
	s->done = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(t, NULL);
	if (s->seriesfd >= 0)
		close(s->seriesfd);
	s->seriesfd = -1;
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
}

/* retrieval_nifti - dcm2niix on each series folder; "converted", "skipped" or "failed" */
static const char *retrieval_nifti(int scansfd, const char *scans_path)
{
	DIR *d;
	struct dirent *de;
	int ok = 1, any = 0;

	if (access("/usr/bin/dcm2niix", X_OK) != 0)
		return "skipped";
	d = fdopendir(dup(scansfd));
	if (d == NULL)
		return "failed";
	while ((de = readdir(d)) != NULL) {
		char in[4400], out[4400];
		if (de->d_name[0] == '.' || strlen(scans_path) > 4000 || strlen(de->d_name) > 64)
			continue;
		snprintf(in, sizeof(in), "%.4000s/%.64s/resources/DICOM/files", scans_path, de->d_name);
		snprintf(out, sizeof(out), "%.4000s/%.64s/resources/NIFTI/files", scans_path, de->d_name);
		const char *parts[] = {de->d_name, "resources", "NIFTI", "files"};
		int ofd = retrieval_mkdirs(scansfd, parts, 4);
		if (ofd < 0) {
			ok = 0;
			continue;
		}
		close(ofd);
		pid_t pid = fork();
		if (pid == 0) {
			int null = open("/dev/null", O_RDWR);
			if (null >= 0) {
				dup2(null, 0);
				dup2(null, 1);
				dup2(null, 2);
			}
			alarm(RETRIEVAL_NIFTI_TIMEOUT);
			execl("/usr/bin/dcm2niix", "dcm2niix", "-z", "y", "-b", "n", "-f", "%s_%p",
			      "-o", out, in, (char *)NULL);
			_exit(127);
		}
		int status = 0;
		if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0)
			ok = 0;
		any = 1;
	}
	closedir(d);
	return !any ? "skipped" : ok ? "converted" : "failed";
}

/* retrieval_loopback - PACS_HOST names this machine's loopback (see the top) */
static int retrieval_loopback(const char *host)
{
	return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
	       strcmp(host, "::1") == 0 || strcmp(host, "[::1]") == 0;
}

/* retrieval_accession - one accession to its end; ERR_OK, or ERR_TRANSIENT with msg (the
 * PACS is down, or the accession's state cannot be recorded) */
static enum err_kind retrieval_accession(struct node *n, struct imaging_project *p, int rootfd,
					 ino_t ino, const struct dicom_peer *peer,
					 const unsigned char *key, long i, long total,
					 struct retrieval_stats *stats, char *msg, size_t msglen)
{
	json_t *st = imaging_accession_read(p, i);
	const char *acc = json_string_value(json_object_get(st, "accession"));
	const char *subject = json_string_value(json_object_get(st, "subject"));
	int state = imaging_state_parse(json_string_value(json_object_get(st, "state")));
	struct dicom_study *found = NULL;
	size_t nfound = 0, exact = 0, pick = 0;
	char err[512], stage[96];
	const char *category = NULL;
	enum err_kind rc = ERR_OK;
	int datafd = -1, stagefd = -1, scansfd = -1;
	enum dicom_err de;

	if (st == NULL || acc == NULL || subject == NULL ||
	    (state != IMAGING_QUEUED && state != IMAGING_PROCESSING))
		goto out;	/* nothing to do (or a damaged state file: left for the operator) */
	stats->accessions++;
	if (!ident_ok(IDENT_ACCESSION, acc)) {
		category = "invalid_accession";
		state = IMAGING_QUEUE_FAILED;
		goto done;
	}
	json_object_set_new(st, "state", json_string("processing"));
	json_object_set_new(st, "attempts",
			    json_integer(json_integer_value(json_object_get(st, "attempts")) + 1));
	if (imaging_accession_write(p, i, st) < 0)
		goto storage;
	de = dicom_find_studies(peer, acc, &found, &nfound, err, sizeof(err));
	if (de == DICOM_ERR_UNREACHABLE || de == DICOM_ERR_REJECTED) {
		log_warn("project %s: accession %ld/%ld: PACS %s (%s); back in the queue", p->id, i + 1,
			 total, dicom_err_name(de), err);
		json_object_set_new(st, "state", json_string("queued"));
		json_object_set_new(st, "error", json_string(dicom_err_name(de)));
		imaging_accession_write(p, i, st);
		goto pacs_down;
	}
	if (de != DICOM_OK) {
		category = dicom_err_name(de);
		state = IMAGING_FAILED;
		goto done;
	}
	for (size_t k = 0; k < nfound; k++)
		if (strcmp(found[k].accession, acc) == 0) {
			exact++;
			pick = k;
		}
	if (exact != 1) {
		category = exact == 0 ? "not_found" : "ambiguous";
		state = IMAGING_QUEUE_FAILED;
		goto done;
	}
	/* stage: data/.stage-<index>-<pid>/<accession>/scans, published by one rename */
	snprintf(stage, sizeof(stage), ".stage-%ld-%ld", i, (long)getpid());
	datafd = openat(p->dirfd, "data", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (datafd < 0)
		goto storage;
	durable_remove_tree(datafd, stage);
	const char *parts[] = {stage, acc, "scans"};
	scansfd = retrieval_mkdirs(datafd, parts, 3);
	if (scansfd < 0)
		goto storage;
	struct retrieval_study s = {p, rootfd, ino, scansfd, {key, RETRIEVAL_KEY_LEN, subject, acc},
				    {0}, 0, 0, 0, 0, .n = n, .position = i + 1, .seriesfd = -1};
	struct dicom_get_stats gs = {0};
	pthread_t writer;
	pthread_mutex_init(&s.mu, NULL);
	pthread_cond_init(&s.cv, NULL);
	if (pthread_create(&writer, NULL, retrieval_writer, &s) != 0) {
		pthread_cond_destroy(&s.cv);
		pthread_mutex_destroy(&s.mu);
		durable_remove_tree(datafd, stage);
		goto storage;
	}
	if (strcmp(n->cfg.pacs_retrieve, "move") == 0)
		de = dicom_move_study(peer, found[pick].study_uid,
				      retrieval_loopback(n->cfg.pacs_host) ? "127.0.0.1" : "0.0.0.0",
				      n->cfg.flip_dicom_port, retrieval_store, &s, &gs, err,
				      sizeof(err));
	else
		de = dicom_get_study(peer, found[pick].study_uid, retrieval_store, &s, &gs, err,
				     sizeof(err));
	retrieval_writer_end(&s, writer);
	/* deleted while its last instances were stored: the callback saw nothing more */
	if (s.deleted || !retrieval_still_there(rootfd, p->id, ino))
		goto deleted;
	if (s.burned_refused) {
		/* nothing of the study is kept: the staged instances go with the stage */
		category = "burned_in_annotation";
		state = IMAGING_QUEUE_FAILED;
		durable_remove_tree(datafd, stage);
		goto done;
	}
	/*
	 * An association that broke mid-study is a protocol error to dcmtk; when the
	 * PACS then does not even answer a C-ECHO it went away (killed, rebooted), which
	 * is no fault of the study: it goes back to the queue like any PACS outage.
	 */
	char echo_err[256];
	if (de == DICOM_ERR_PROTOCOL &&
	    dicom_echo(peer, echo_err, sizeof(echo_err)) == DICOM_ERR_UNREACHABLE)
		de = DICOM_ERR_UNREACHABLE;
	if (de == DICOM_ERR_UNREACHABLE || de == DICOM_ERR_REJECTED) {
		durable_remove_tree(datafd, stage);
		json_object_set_new(st, "state", json_string("queued"));
		json_object_set_new(st, "error", json_string(dicom_err_name(de)));
		imaging_accession_write(p, i, st);
		goto pacs_down;
	}
	if (de != DICOM_OK || s.stored == 0 || s.failed) {
		/* the writer may fail on the last instances, after the PACS was answered */
		category = s.deid_failed ? "deid_error"
			   : s.failed	 ? "storage_error"
			   : de == DICOM_OK ? "not_found"
					    : dicom_err_name(de);
		state = IMAGING_FAILED;
		durable_remove_tree(datafd, stage);
		goto done;
	}
	const char *nifti = "not_requested";
	if (json_is_true(json_object_get(p->meta, "dicom_to_nifti"))) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/" STATEDIR_IMAGING "/%s/data/%s/%s/scans", n->cfg.state_dir, p->id,
			 stage, acc);
		nifti = retrieval_nifti(scansfd, path);
	}
	/*
	 * Durable before published: one syncfs(2) writes out the instance files, the
	 * NIfTI files and every folder of the stage, and reports a write-back error
	 * met since scansfd was opened. Measured on the bench's 600 CT slices
	 * (512x512): an fsync per instance was 600 waits for the disk, 2.7 ms each
	 * on the writer thread (strace), which fell behind the PACS and stalled the
	 * association (0.9 s of the receiver's time blocked on the full queue); the
	 * one syncfs waits about 0.3 s, for what the write-back started per file has
	 * not yet written. Like the spool's batches (lib/spool.c), it also writes out
	 * other programs' dirty pages on this file system, which the kernel would
	 * write within 30 s anyway.
	 */
	if (syncfs(scansfd) < 0)
		goto storage;
	/* publish: data/<subject>/<accession> appears whole, replacing an earlier attempt */
	const char *sparts[] = {subject};
	int subjfd = retrieval_mkdirs(datafd, sparts, 1);
	char from[160];
	snprintf(from, sizeof(from), "%s/%s", stage, acc);
	if (subjfd < 0)
		goto storage;
	durable_remove_tree(subjfd, acc);
	if (renameat(datafd, from, subjfd, acc) < 0 || durable_fsync_dir(subjfd) < 0) {
		close(subjfd);
		goto storage;
	}
	close(subjfd);
	durable_remove_tree(datafd, stage);
	durable_fsync_dir(datafd);
	state = IMAGING_SUCCESSFUL;
	json_object_set_new(st, "instances", json_integer((json_int_t)s.stored));
	json_object_set_new(st, "bytes", json_integer((json_int_t)s.bytes));
	json_object_set_new(st, "burned_in", json_integer((json_int_t)s.burned_stored));
	json_object_set_new(st, "nifti", json_string(nifti));
	stats->instances += s.stored;
	stats->bytes += s.bytes;
	log_info("project %s: accession %ld/%ld, %lu instances, %.1f MB%s", p->id, i + 1, total,
		 s.stored, (double)s.bytes / 1e6,
		 s.burned_stored ? ", burned-in annotation stored (DEID_ALLOW_BURNED_IN)" : "");
	goto done;
storage:
	if (!retrieval_still_there(rootfd, p->id, ino))
		goto deleted;	/* not a storage fault: the project went away under us */
	category = "storage_error";
	state = IMAGING_FAILED;
	log_error("project %s: accession %ld/%ld: local storage error: %s", p->id, i + 1, total,
		  strerror(errno));
done:
	json_object_set_new(st, "state", json_string(imaging_state_name((enum imaging_state)state)));
	json_object_set_new(st, "error", category ? json_string(category) : json_null());
	if (imaging_accession_write(p, i, st) < 0) {
		rc = ERR_TRANSIENT;
		err_set(msg, msglen, "cannot record an accession's state under %s/"
			STATEDIR_IMAGING ": %s; check the disk, the next run takes it again",
			n->cfg.state_dir,
			strerror(errno));
	}
	if (state == IMAGING_SUCCESSFUL)
		stats->successful++;
	else if (state == IMAGING_FAILED)
		stats->failed++;
	else if (state == IMAGING_QUEUE_FAILED)
		stats->queue_failed++;
	if (category)
		log_info("project %s: accession %ld/%ld: %s (%s)", p->id, i + 1, total,
			 imaging_state_name((enum imaging_state)state), category);
	node_audit(n, "imaging.accession", NULL, NULL,
		   json_pack("{s:s,s:I,s:s,s:s?,s:I}", "imaging_project", p->id, "position",
			     (json_int_t)(i + 1), "state",
			     imaging_state_name((enum imaging_state)state), "error", category,
			     "instances", json_integer_value(json_object_get(st, "instances"))));
	goto out;
pacs_down:
	err_set(msg, msglen, "the PACS at %s:%d (%s) cannot be reached or refused the "
		"association; queued studies wait for the next run", n->cfg.pacs_host,
		n->cfg.pacs_port, n->cfg.pacs_aetitle);
	rc = ERR_TRANSIENT;
	goto out;
deleted:
	log_info("project %s was deleted during retrieval; stopping work on it", p->id);
	rc = ERR_OK;	/* the project folder is gone with everything in it */
out:
	free(found);
	if (scansfd >= 0)
		close(scansfd);
	if (stagefd >= 0)
		close(stagefd);
	if (datafd >= 0)
		close(datafd);
	json_decref(st);
	return rc;
}

static int retrieval_project_cmp(const void *a, const void *b)
{
	const json_t *const *x = a, *const *y = b;

	return strcmp(json_string_value(json_object_get(*x, "created_at")) ?: "",
		      json_string_value(json_object_get(*y, "created_at")) ?: "");
}

/* retrieval_run - see retrieval.h */
/* retrieval_waiting - does any project have an accession queued or in processing?
 * (With none, a missing PACS_HOST is not a problem: there is nothing to retrieve.) */
static bool retrieval_waiting(const char *state_dir, char **ids, size_t nids)
{
	bool waiting = false;
	for (size_t k = 0; k < nids && !waiting; k++) {
		struct imaging_project *p = imaging_open(state_dir, ids[k]);
		long total = p ? imaging_accession_count(p) : 0;
		for (long i = 0; i < total && !waiting; i++) {
			json_t *st = imaging_accession_read(p, i);
			int state = imaging_state_parse(json_string_value(json_object_get(st, "state")));
			waiting = state == IMAGING_QUEUED || state == IMAGING_PROCESSING;
			json_decref(st);
		}
		imaging_close(p);
	}
	return waiting;
}

enum err_kind retrieval_run(struct node *n, struct retrieval_stats *stats, char *err, size_t errlen)
{
	const struct config *cfg = &n->cfg;
	unsigned char key[RETRIEVAL_KEY_LEN];
	char **ids = NULL, *keybuf = NULL;
	size_t nids = 0, keylen = 0;
	int sfd, rootfd = -1;
	enum err_kind rc = ERR_OK;
	json_t **metas = NULL;

	memset(stats, 0, sizeof(*stats));
	if (imaging_list(cfg->state_dir, &ids, &nids) < 0 || nids == 0)
		goto out;	/* no project: nothing to do, and no PACS needed */
	if (cfg->pacs_host == NULL && !retrieval_waiting(cfg->state_dir, ids, nids))
		goto out;	/* projects, but nothing left to retrieve: no PACS needed */
	if (cfg->pacs_host == NULL) {
		snprintf(err, errlen, "PACS_HOST is not set in the kit file: imaging projects "
			 "wait in the queue until it is");
		rc = ERR_CONFIG;
		goto out;
	}
	sfd = statedir_open(cfg->state_dir);
	if (sfd < 0 || durable_read(sfd, STATEDIR_DEID_KEY, 64, &keybuf, &keylen) < 0 ||
	    keylen != RETRIEVAL_KEY_LEN) {
		snprintf(err, errlen, "no de-identification key in %s/" STATEDIR_DEID_KEY
			 ": run flipctl init", cfg->state_dir);
		if (sfd >= 0)
			close(sfd);
		rc = ERR_CONFIG;
		goto out;
	}
	memcpy(key, keybuf, sizeof(key));
	rootfd = openat(sfd, STATEDIR_IMAGING, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	close(sfd);
	struct dicom_peer peer = {cfg->pacs_host, cfg->pacs_port, cfg->pacs_aetitle,
				  cfg->flip_aetitle, 30, 60, 60};
	dicom_init(0);
	/* oldest project first */
	metas = calloc(nids, sizeof(*metas));
	for (size_t k = 0; metas && k < nids; k++) {
		struct imaging_project *p = imaging_open(cfg->state_dir, ids[k]);
		metas[k] = p ? json_incref(p->meta) : json_object();
		imaging_close(p);
	}
	if (metas)
		qsort(metas, nids, sizeof(*metas), retrieval_project_cmp);
	for (size_t k = 0; metas && k < nids && rc == ERR_OK; k++) {
		const char *id = json_string_value(json_object_get(metas[k], "ID"));
		struct imaging_project *p = id ? imaging_open(cfg->state_dir, id) : NULL;
		struct stat pst;
		if (p == NULL || fstat(p->dirfd, &pst) < 0) {
			imaging_close(p);
			continue;	/* deleted since the listing */
		}
		long total = imaging_accession_count(p);
		for (long i = 0; i < total && rc == ERR_OK; i++) {
			if (!retrieval_still_there(rootfd, p->id, pst.st_ino))
				break;
			rc = retrieval_accession(n, p, rootfd, pst.st_ino, &peer, key, i, total, stats,
						 err, errlen);
		}
		imaging_close(p);
	}
out:
	for (size_t k = 0; metas && k < nids; k++)
		json_decref(metas[k]);
	free(metas);
	for (size_t k = 0; k < nids; k++)
		free(ids[k]);
	free(ids);
	if (keybuf) {
		OPENSSL_cleanse(keybuf, keylen);
		free(keybuf);
	}
	OPENSSL_cleanse(key, sizeof(key));
	if (rootfd >= 0)
		close(rootfd);
	return rc;
}
