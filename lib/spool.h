/* SPDX-License-Identifier: Apache-2.0 */
/*
 * spool - the atomic spool directory through which the programs hand over work.
 *
 * SYNOPSIS
 *	#include "lib/spool.h"
 *
 *	const char *spool_state_name(enum spool_state st);
 *	int spool_state_parse(const char *name);
 *	int spool_open(struct spool *sp, const char *root, char *err, size_t errlen);
 *	void spool_close(struct spool *sp);
 *	int spool_lock(struct spool *sp, const char *name);
 *	int spool_seq_reserve(struct spool *sp, unsigned n, unsigned long long *first);
 *	int spool_find(struct spool *sp, const char *task_id, struct job *job);
 *	int spool_list(struct spool *sp, enum spool_state st, char ***names, size_t *n);
 *	void spool_list_free(char **names, size_t n);
 *	int spool_clean_tmp(struct spool *sp);
 *
 *	int spool_job_create(struct spool *sp, unsigned long long seq, const char *task_id,
 *			     struct job *job);
 *	int spool_job_open(struct spool *sp, enum spool_state st, const char *name,
 *			   struct job *job);
 *	int spool_job_claim(struct job *job);
 *	int spool_job_write(struct job *job, const char *file, const void *data, size_t len);
 *	int spool_job_write_json(struct job *job, const char *file, json_t *value);
 *	int spool_job_read(struct job *job, const char *file, size_t cap, char **data,
 *			   size_t *len);
 *	json_t *spool_job_read_json(struct job *job, const char *file, size_t cap);
 *	int spool_job_exists(struct job *job, const char *file);
 *	int spool_job_unlink(struct job *job, const char *file);
 *	int spool_job_move(struct job *job, enum spool_state to, int sync_parents);
 *	int spool_sync_state(struct spool *sp, enum spool_state st);
 *	void spool_defer_sync(struct spool *sp, int on);
 *	int spool_flush(struct spool *sp);
 *	void spool_job_log(struct job *job, const char *fmt, ...);
 *	void spool_job_close(struct job *job);
 *
 * DESCRIPTION
 *	The layout is docs/design/ARCHITECTURE.md's: FLIP_SPOOL_DIR/{tmp,new,cur,out,done,failed,
 *	hold}/<16-digit seq>-<task id>/ (SPOOL_SEQ_DIGITS digits; the task id starts
 *	SPOOL_SEQ_PREFIX characters into the name). spool_state_name() names a state
 *	directory ("?" when out of range), spool_state_parse() returns the state of a
 *	name, -1 when unknown. spool_open() creates missing state
 *	directories (mode 0700) and refuses a root that other users can enter or write.
 *
 *	spool_lock() takes a non-blocking exclusive flock on FLIP_SPOOL_DIR/.<name>.lock
 *	and keeps it until spool_close(): 1 acquired, 0 held by another process, -1 error
 *	(EBUSY when this handle already holds a lock: one program lock per handle).
 *
 *	spool_seq_reserve() hands out n consecutive sequence numbers from the `seq` file
 *	(write-fsync-rename), so the hub's order survives across polls. Call it under
 *	the poll lock.
 *
 *	A job is created in tmp/ (spool_job_create), filled with spool_job_write
 *	(temporary name, fsync, rename, fsync of the job directory: a reader never sees
 *	half a file), then moved with spool_job_move(), one rename(2) of the directory
 *	followed, when sync_parents is set, by fsync of both parent directories. A
 *	caller moving many jobs may pass 0 and call spool_sync_state() once per state
 *	directory afterwards, before it reports the jobs durable.
 *
 *	spool_defer_sync(sp, 1) lets a caller creating many jobs at once postpone the
 *	per-file and per-directory fsyncs: the spool records what each write and move
 *	would have synced, and spool_flush() fsyncs all of it at once
 *	(durable_fsync_many). The caller flushes after writing the files and before
 *	the renames that make the jobs visible, and again after the renames before it
 *	treats them as durable. Only the spool's own files are flushed.
 *
 *	spool_find() looks for a task id in every state except tmp/ (the spool's
 *	uniqueness rule): 1 found (job opened), 0 not found, -1 error.
 *	spool_list() returns the job names of one state sorted by seq (the hub's order).
 *	spool_job_claim() takes a non-blocking flock on the job directory: 1 claimed,
 *	0 another process holds it, -1 error.
 *
 *	Every name built into a path has passed ident_ok() first; files are opened with
 *	O_NOFOLLOW, and reads are capped (cap bytes; a larger file is an error, EFBIG).
 *
 * DIAGNOSTICS
 *	Functions return 0 (or the counts above) on success and -1 with errno set on
 *	failure; spool_open() also writes a message into err. Nothing is printed.
 */
#ifndef FLIP_SPOOL_H
#define FLIP_SPOOL_H

#include <stddef.h>
#include <jansson.h>

enum spool_state {
	SPOOL_TMP, SPOOL_NEW, SPOOL_CUR, SPOOL_OUT, SPOOL_DONE, SPOOL_FAILED, SPOOL_HOLD,
	SPOOL_NSTATES
};

#define SPOOL_NAME_MAX 96
#define SPOOL_SEQ_DIGITS 16			/* a job name's sequence number */
#define SPOOL_SEQ_PREFIX (SPOOL_SEQ_DIGITS + 1)	/* "<16-digit seq>-": the task id follows */

struct spool {
	char *root;
	int rootfd;
	int statefd[SPOOL_NSTATES];
	int lockfd;
	int deferred;		/* spool_defer_sync: writes and moves skip their fsyncs */
	struct spool_pending *pending;	/* deferred: what spool_flush must fsync */
	size_t npending, cappending;
	unsigned dirty_states;	/* deferred: state directories moved into or out of */
};

struct spool_pending {
	int dirfd;		/* a dup of the job's (or root's) directory descriptor */
	char name[16];		/* the file, "" for the directory itself */
};

struct job {
	struct spool *sp;
	enum spool_state state;
	char name[SPOOL_NAME_MAX];	/* <seq>-<task id> */
	const char *task_id;		/* points into name */
	unsigned long long seq;
	int dirfd;
	int lockfd;			/* the claim's flock (the dirfd itself), or -1 */
};

const char *spool_state_name(enum spool_state st);
int spool_state_parse(const char *name);

int spool_open(struct spool *sp, const char *root, char *err, size_t errlen);
void spool_close(struct spool *sp);
int spool_lock(struct spool *sp, const char *name);
int spool_seq_reserve(struct spool *sp, unsigned n, unsigned long long *first);
int spool_find(struct spool *sp, const char *task_id, struct job *job);
int spool_list(struct spool *sp, enum spool_state st, char ***names, size_t *n);
void spool_list_free(char **names, size_t n);
int spool_clean_tmp(struct spool *sp);
int spool_sync_state(struct spool *sp, enum spool_state st);
void spool_defer_sync(struct spool *sp, int on);
int spool_flush(struct spool *sp);

int spool_job_create(struct spool *sp, unsigned long long seq, const char *task_id,
		     struct job *job);
int spool_job_open(struct spool *sp, enum spool_state st, const char *name, struct job *job);
int spool_job_claim(struct job *job);
int spool_job_write(struct job *job, const char *file, const void *data, size_t len);
int spool_job_write_json(struct job *job, const char *file, json_t *value);
int spool_job_read(struct job *job, const char *file, size_t cap, char **data, size_t *len);
json_t *spool_job_read_json(struct job *job, const char *file, size_t cap);
int spool_job_exists(struct job *job, const char *file);
int spool_job_unlink(struct job *job, const char *file);
int spool_job_move(struct job *job, enum spool_state to, int sync_parents);
void spool_job_log(struct job *job, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void spool_job_close(struct job *job);

#endif
