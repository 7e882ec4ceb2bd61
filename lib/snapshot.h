/*
 * snapshot - frozen cohort snapshots, FLIP_STATE_DIR/cohorts/<project uuid>/.
 *
 * SYNOPSIS
 *	#include "snapshot.h"
 *
 *	struct snapshot_writer *snapshot_create(const char *state_dir, const char *project,
 *			int ncols, const char *const *names, const int *kinds,
 *			long long max_bytes, char *err, size_t errlen);
 *	int snapshot_add_row(struct snapshot_writer *w, const char *const *values);
 *	int snapshot_commit(struct snapshot_writer *w, json_t *meta, char *err, size_t errlen);
 *	void snapshot_abort(struct snapshot_writer *w);
 *
 *	struct snapshot *snapshot_open(const char *state_dir, const char *project,
 *				       char *err, size_t errlen);
 *	const json_t *snapshot_meta(const struct snapshot *s);
 *	int snapshot_column(const struct snapshot *s, const char *name);
 *	int snapshot_each(const struct snapshot *s, int col,
 *			  int (*fn)(const char *json, size_t len, void *arg), void *arg);
 *	void snapshot_close(struct snapshot *s);
 *
 * DESCRIPTION
 *	Format (version 1), chosen so that serving a million-row cohort
 *	column-oriented needs no more memory than one value: a directory holding
 *	meta.json ({"format_version": 1, "row_count", "columns", "kinds",
 *	"subject_count", "has_accessions", "query_hash", "created_at", ...}) and one
 *	file per column, c0000.jsonl, c0001.jsonl, ..., each holding one JSON value
 *	per line (a number, true/false, a string, or null), in row order. Only
 *	jansson is needed to write or read it.
 *
 *	snapshot_create() builds in a temporary sibling (cohorts/.new-<project>-<pid>).
 *	kinds[i] is SNAPSHOT_NUMBER, SNAPSHOT_BOOL or SNAPSHOT_STRING; values[i] NULL
 *	is SQL NULL, otherwise PostgreSQL's text form (a number that is not finite is
 *	stored as null). snapshot_add_row() fails with EFBIG once the files pass
 *	max_bytes: oversized cohorts are refused, never truncated.
 *	snapshot_commit() writes meta.json (row_count added), fsyncs every file and the
 *	directory, and swaps it into place with one renameat2(RENAME_EXCHANGE) (a
 *	reader sees the old snapshot or the new one, never none), then removes the old.
 *	snapshot_abort() removes the temporary directory.
 *
 *	snapshot_open() returns NULL with errno ENOENT when the project has no
 *	snapshot. The project id must be a canonical lower-case UUID (ident.h).
 *	snapshot_each() streams one column's values in row order to fn (stop when fn
 *	returns non-zero, which snapshot_each returns).
 *
 * DIAGNOSTICS
 *	NULL or -1 with errno set and a message in err where there is one.
 */
#ifndef FLIP_SNAPSHOT_H
#define FLIP_SNAPSHOT_H

#include <stddef.h>
#include <jansson.h>

enum { SNAPSHOT_STRING = 0, SNAPSHOT_NUMBER = 1, SNAPSHOT_BOOL = 2 };
#define SNAPSHOT_FORMAT_VERSION 1

struct snapshot_writer;
struct snapshot;

struct snapshot_writer *snapshot_create(const char *state_dir, const char *project, int ncols,
					const char *const *names, const int *kinds,
					long long max_bytes, char *err, size_t errlen);
int snapshot_add_row(struct snapshot_writer *w, const char *const *values);
int snapshot_commit(struct snapshot_writer *w, json_t *meta, char *err, size_t errlen);
void snapshot_abort(struct snapshot_writer *w);

struct snapshot *snapshot_open(const char *state_dir, const char *project, char *err,
			       size_t errlen);
const json_t *snapshot_meta(const struct snapshot *s);
int snapshot_column(const struct snapshot *s, const char *name);
int snapshot_each(const struct snapshot *s, int col,
		  int (*fn)(const char *json, size_t len, void *arg), void *arg);
void snapshot_close(struct snapshot *s);

#endif
