/* SPDX-License-Identifier: Apache-2.0 */
/*
 * snapshot - frozen cohort memberships, FLIP_STATE_DIR/cohorts/<project uuid>/.
 *
 * SYNOPSIS
 *	#include "lib/snapshot.h"
 *
 *	struct snapshot_writer *snapshot_create(const char *state_dir, const char *project,
 *			long long max_bytes, char *err, size_t errlen);
 *	int snapshot_add_id(struct snapshot_writer *w, int set, const char *id);
 *	int snapshot_commit(struct snapshot_writer *w, json_t *meta, const char *query,
 *			    char *err, size_t errlen);
 *	void snapshot_abort(struct snapshot_writer *w);
 *
 *	struct snapshot *snapshot_open(const char *state_dir, const char *project,
 *				       char *err, size_t errlen);
 *	const json_t *snapshot_meta(const struct snapshot *s);
 *	const char *snapshot_query(const struct snapshot *s);
 *	FILE *snapshot_ids(const struct snapshot *s, int set);
 *	json_t *snapshot_facts(const json_t *meta);
 *	void snapshot_close(struct snapshot *s);
 *	int snapshot_migrate(const char *state_dir, const char *project, const char *query,
 *			     long long max_bytes, char *err, size_t errlen);
 *
 * DESCRIPTION
 *	A snapshot freezes who is in an approved cohort, never what their rows hold
 *	(docs/design/data-access.md, "Snapshots: membership, frozen once"). Format 2
 *	is a directory holding meta.json ({"format_version": 2, "row_count",
 *	"subject_count", "has_accessions", "columns", "query_hash", "snapshot_at",
 *	"person_order", ...}), query.sql (the approved SQL as the hub sent it: the
 *	query of record), and the membership sets persons.txt and accessions.txt:
 *	one id per line in PostgreSQL's text form, distinct, sorted the way the
 *	live re-run orders them (person ids numerically when meta.json says
 *	"person_order": "numeric", otherwise, and accession ids always, bytewise as
 *	COLLATE "C" sorts). A set the cohort does not project has no file.
 *
 *	snapshot_create() builds in a temporary sibling (cohorts/.new-<project>-<pid>).
 *	snapshot_add_id() appends one id (set SNAPSHOT_PERSONS or
 *	SNAPSHOT_ACCESSIONS; the caller supplies them distinct and in order) and
 *	fails with EFBIG once the files pass max_bytes: oversized cohorts are
 *	refused, never truncated. snapshot_commit() writes query.sql and meta.json
 *	(format_version added), fsyncs every file and the directory, and renames it
 *	into place with RENAME_NOREPLACE: freezing is once per project, so a
 *	snapshot that appeared meanwhile wins and commit fails with EEXIST.
 *	snapshot_abort() removes the temporary directory.
 *
 *	snapshot_open() returns NULL with errno ENOENT when the project has no
 *	snapshot, and EPROTO when it holds a format 1 snapshot (row values, written
 *	by flip-node before 2026-12; see snapshot_migrate). The project id must be a
 *	canonical lower-case UUID (ident.h). snapshot_ids() opens one set for reading
 *	(NULL with ENOENT when the cohort has no such set). snapshot_facts() is the
 *	persist_cohort result built from meta.json.
 *
 *	snapshot_migrate() converts a format 1 snapshot in place: its person_id and
 *	accession_id columns become the membership sets, query becomes the query of
 *	record provided its hash (digest_query) is the one the old meta.json
 *	recorded, and the row values are removed. It returns 0, or -1 with errno
 *	ESTALE when the query is not the frozen one (and a message in err).
 *
 * DIAGNOSTICS
 *	NULL or -1 with errno set and a message in err where there is one.
 */
#ifndef FLIP_SNAPSHOT_H
#define FLIP_SNAPSHOT_H

#include <stddef.h>
#include <stdio.h>
#include <jansson.h>

enum { SNAPSHOT_PERSONS = 0, SNAPSHOT_ACCESSIONS = 1 };
#define SNAPSHOT_FORMAT_VERSION 2

struct snapshot_writer;
struct snapshot;

struct snapshot_writer *snapshot_create(const char *state_dir, const char *project,
					long long max_bytes, char *err, size_t errlen);
int snapshot_add_id(struct snapshot_writer *w, int set, const char *id);
int snapshot_commit(struct snapshot_writer *w, json_t *meta, const char *query, char *err,
		    size_t errlen);
void snapshot_abort(struct snapshot_writer *w);

struct snapshot *snapshot_open(const char *state_dir, const char *project, char *err,
			       size_t errlen);
const json_t *snapshot_meta(const struct snapshot *s);
const char *snapshot_query(const struct snapshot *s);
FILE *snapshot_ids(const struct snapshot *s, int set);
json_t *snapshot_facts(const json_t *meta);
void snapshot_close(struct snapshot *s);
int snapshot_migrate(const char *state_dir, const char *project, const char *query,
		     long long max_bytes, char *err, size_t errlen);

#endif
