/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stream - the streamed cohort answers: the live pass's temporary files, then a
 * producer thread writing the answer into a pipe that MHD reads.
 *
 * SYNOPSIS
 *	#include "bin/flip-serve/stream.h"
 *
 *	struct serve_stream *serve_stream_new(const struct cohort_columns *c, int ids,
 *					      const char *dir, char *err, size_t errlen);
 *	int serve_spill_row(PGresult *res, int r, void *arg);
 *	int serve_stream_start(struct serve_stream *st);
 *	ssize_t serve_stream_read(void *cls, uint64_t pos, char *buf, size_t max);
 *	void serve_stream_stop(struct serve_stream *st);
 *	void serve_stream_collect(struct serve_stream *st);
 *	void serve_stream_free(void *cls);
 *
 * DESCRIPTION
 *	serve_stream_new() makes the stream of one cohort answer and its pipe: for
 *	the dataframe (ids 0), the kept columns of c, each with its name as JSON text
 *	and an unnamed temporary file in dir (O_TMPFILE: never linked, gone with the
 *	process); for the accession ids (ids 1), nothing more (the caller puts the
 *	ids' result in idres).
 *
 *	serve_spill_row() is cohort_live_run()'s row callback, arg a struct
 *	serve_spill over the stream's kinds and files: it appends each kept value of
 *	the row, in its JSON form (null, a number, true/false or a string; NaN and
 *	the infinities are null), to its column's file.
 *
 *	Then the caller sets rows, makes the MHD response with serve_stream_read() as
 *	its content reader (SERVE_BLOCK bytes at a time) and serve_stream_free() as
 *	its free callback, and serve_stream_start() starts the producer thread, which
 *	writes {"col": [v, ...], ...} from the files, or {"accession_ids": [...]},
 *	into the pipe and closes it. serve_stream_read() gives MHD the next bytes; at
 *	the end it joins the producer and, when the producer failed, ends the body
 *	with an error (the client sees a truncated chunked transfer, never a short
 *	but well-formed answer).
 *
 *	req and the request's stream point at each other until whichever of "request
 *	completed" (http.c) and "response freed" comes first: serve_stream_stop()
 *	closes the reading end (a producer still writing gets EPIPE and stops) and
 *	joins the thread; serve_stream_collect() hands the count (rows or ids) and a
 *	read-back failure to the request, and unhooks the two. Both may be called
 *	again. serve_stream_free() stops, collects and frees the stream: the
 *	response's free callback, or the caller's before there is a response.
 *
 * DIAGNOSTICS
 *	serve_stream_new() returns NULL with a message in err. serve_spill_row()
 *	returns -1 when a temporary file refused a write (cohort_live_run() then
 *	stops with ERR_FINAL, e.stopped set, and errno), serve_stream_start() -1
 *	with errno.
 *	A temporary file that cannot be read back is logged at error when the
 *	request is collected.
 */
#ifndef FLIP_SERVE_STREAM_H
#define FLIP_SERVE_STREAM_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "jobs/cohort_live.h"

#define SERVE_BLOCK (64u * 1024)	/* bytes asked of the content reader at a time */

struct serve_request;

struct serve_stream {
	struct serve_request *req; /* NULL once the request is done with us */
	int ids;		/* 1: accession ids, 0: the dataframe */
	int ncols;
	char **names;		/* dataframe: each column name as JSON text */
	FILE **spill;		/* dataframe: each column's values, comma-separated JSON */
	int *kinds;		/* dataframe: serve_kind() of each column */
	PGresult *idres;	/* ids: the accession ids, one column */
	long long rows;		/* kept rows of the live re-run */
	int rfd, wfd;
	pthread_t thread;
	int started, joined;
	/* the producer's, read after the join */
	FILE *out;
	long long count;	/* values of the current column, or distinct ids */
	int write_failed;	/* the pipe refused a write: the reader has gone */
	int failed;
	char err[192];
};

/* the live pass's state: the kept columns and their temporary files */
struct serve_spill {
	const struct cohort_columns *c;
	int *kinds;
	FILE **files;		/* one per kept column */
	long long rows;
};

struct serve_stream *serve_stream_new(const struct cohort_columns *c, int ids,
				      const char *dir, char *err, size_t errlen);
int serve_spill_row(PGresult *res, int r, void *arg);
int serve_stream_start(struct serve_stream *st);
ssize_t serve_stream_read(void *cls, uint64_t pos, char *buf, size_t max);
void serve_stream_stop(struct serve_stream *st);
void serve_stream_collect(struct serve_stream *st);
void serve_stream_free(void *cls);

#endif
