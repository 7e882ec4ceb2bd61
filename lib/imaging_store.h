/* SPDX-License-Identifier: Apache-2.0 */
/*
 * imaging_store - the native imaging project store, FLIP_STATE_DIR/imaging/
 * (docs/design/imaging.md).
 *
 * SYNOPSIS
 *	#include "lib/imaging_store.h"
 *
 *	const char *imaging_state_name(enum imaging_state st);
 *	int imaging_state_parse(const char *name);
 *	int imaging_find_by_hub_project(const char *state_dir, const char *hub_project,
 *					char id[37]);
 *	int imaging_create(const char *state_dir, const json_t *project, json_t *accessions,
 *			   char *err, size_t errlen);
 *	struct imaging_project *imaging_open(const char *state_dir, const char *id);
 *	int imaging_counts(struct imaging_project *p, long long counts[IMAGING_NSTATES]);
 *	long long imaging_count_error(struct imaging_project *p, enum imaging_state state,
 *				      const char *error);
 *	int imaging_reimport(struct imaging_project *p, int *moved);
 *	int imaging_delete(const char *state_dir, const char *id);
 *	json_t *imaging_accession_read(struct imaging_project *p, long index);
 *	int imaging_accession_write(struct imaging_project *p, long index, json_t *state);
 *	long imaging_accession_count(struct imaging_project *p);
 *	void imaging_close(struct imaging_project *p);
 *	int imaging_list(const char *state_dir, char ***ids, size_t *n);
 *	int imaging_set_user_enabled(const char *state_dir, const char *email, int enabled);
 *	int imaging_uuid4(char out[37]);
 *
 * DESCRIPTION
 *	One directory per imaging project, named by its own random UUID (the "ID" the
 *	hub gets back): project.json ({"ID", "secondary_ID" (the hub project id),
 *	"name", "created_at", "dicom_to_nifti", "users"}), accessions/NNNNNNNN.json,
 *	one state file per accession in cohort order ({"index", "accession",
 *	"subject" (a random UUID4: the pseudonym), "state", "attempts", "error",
 *	"series", "instances", "bytes", "burned_in", "updated_at"}), and data/ laid out
 *	as XNAT lays out its archive. Files are named by position, never by accession,
 *	so an accession that is not a safe path segment never becomes a path: it is
 *	simply queue_failed.
 *
 *	imaging_uuid4() makes a random UUID4 from the OpenSSL CSPRNG: project ids and the
 *	per-accession pseudonyms.
 *
 *	States: queued, processing, successful, failed, queue_failed (the five counts
 *	of get_imaging_status, in enum order). imaging_count_error() counts the
 *	accessions in one state with one error category (burned_in_annotation).
 *	imaging_state_name() names a state ("?" when out of range);
 *	imaging_state_parse() returns the state of a name, -1 when unknown.
 *
 *	imaging_list() returns the ids of the projects in the store (*ids, *n: free
 *	each and the array).
 *
 *	imaging_create() builds the project in a temporary sibling and renames it into
 *	place, so a project exists whole or not at all. imaging_delete() renames the
 *	project aside first (the worker notices it is gone) and then removes it.
 *	Every write is write-fsync-rename (durable.h). The store logs nothing: callers
 *	log counts and positions, never accession numbers.
 *
 * DIAGNOSTICS
 *	0 / non-NULL on success; -1 / NULL with errno set (ENOENT: no such project).
 */
#ifndef FLIP_IMAGING_STORE_H
#define FLIP_IMAGING_STORE_H

#include <stddef.h>
#include <jansson.h>

enum imaging_state {
	IMAGING_QUEUED, IMAGING_PROCESSING, IMAGING_SUCCESSFUL, IMAGING_FAILED,
	IMAGING_QUEUE_FAILED, IMAGING_NSTATES
};

struct imaging_project {
	int dirfd;		/* the project directory */
	int accfd;		/* its accessions/ */
	json_t *meta;		/* project.json */
	char id[37];
};

const char *imaging_state_name(enum imaging_state st);
int imaging_state_parse(const char *name);

int imaging_find_by_hub_project(const char *state_dir, const char *hub_project, char id[37]);
int imaging_create(const char *state_dir, const json_t *project, json_t *accessions, char *err,
		   size_t errlen);
struct imaging_project *imaging_open(const char *state_dir, const char *id);
int imaging_counts(struct imaging_project *p, long long counts[IMAGING_NSTATES]);
long long imaging_count_error(struct imaging_project *p, enum imaging_state state,
			      const char *error);
int imaging_reimport(struct imaging_project *p, int *moved);
int imaging_delete(const char *state_dir, const char *id);
long imaging_accession_count(struct imaging_project *p);
json_t *imaging_accession_read(struct imaging_project *p, long index);
int imaging_accession_write(struct imaging_project *p, long index, json_t *state);
void imaging_close(struct imaging_project *p);
int imaging_list(const char *state_dir, char ***ids, size_t *n);
int imaging_set_user_enabled(const char *state_dir, const char *email, int enabled);
int imaging_uuid4(char out[37]);

#endif
