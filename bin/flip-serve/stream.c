/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stream - the streamed cohort answers (see stream.h for the contract).
 *
 * During the live pass each kept column's JSON values go to an unnamed temporary
 * file (O_TMPFILE in FLIP_STATE_DIR: never linked, gone when the process ends).
 * Then a producer thread writes the answer from those files into a pipe while MHD
 * pulls bytes (its content reader asks for the next block). Memory is one cursor
 * batch, the stdio buffers and one pipe whatever the row count. The stream
 * belongs to the MHD response (freed by its free callback); the request and the
 * stream point at each other until whichever of "request completed" and
 * "response freed" comes first unhooks them (MHD calls the two in either order
 * depending on how the connection ends).
 */
#include "bin/flip-serve/stream.h"
#include "bin/flip-serve/http.h"

#include "lib/err.h"
#include "lib/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#define SERVE_PIPE (1024u * 1024)	/* pipe between producer and reader, when the kernel allows */
#define SERVE_SPILL_BUF (16u * 1024)	/* stdio buffer of each column's temporary file */

/* serve_json_string - one JSON string (UTF-8 kept, the database's encoding is UTF8) */
static int serve_json_string(FILE *f, const char *v)
{
	const char *run = v;

	putc_unlocked('"', f);
	for (; *v; v++) {
		unsigned char ch = (unsigned char)*v;
		if (ch >= 0x20 && ch != '"' && ch != '\\')
			continue;
		fwrite_unlocked(run, 1, (size_t)(v - run), f);
		if (ch == '"' || ch == '\\') {
			putc_unlocked('\\', f);
			putc_unlocked((int)ch, f);
		} else {
			fprintf(f, "\\u%04x", ch);
		}
		run = v + 1;
	}
	fwrite_unlocked(run, 1, (size_t)(v - run), f);
	return putc_unlocked('"', f) == EOF ? -1 : 0;
}

/* serve_kind - how a PostgreSQL type is answered: 1 number, 2 bool, 0 string */
static int serve_kind(unsigned int oid)
{
	switch (oid) {
	case 20: case 21: case 23: case 700: case 701: case 1700:	/* int8 int2 int4 float4 float8 numeric */
		return 1;
	case 16:	/* bool */
		return 2;
	default:
		return 0;
	}
}

/* serve_json_value - one value in its JSON form: null, a number, true/false or a string */
static int serve_json_value(FILE *f, int kind, const char *v, int isnull)
{
	if (isnull)
		return fputs("null", f) == EOF ? -1 : 0;
	if (kind == 2)
		return fputs(v[0] == 't' ? "true" : "false", f) == EOF ? -1 : 0;
	if (kind == 1) {
		/* PostgreSQL's text of a number is JSON's, except NaN and the infinities */
		if (v[0] == 'N' || v[0] == 'I' || (v[0] == '-' && v[1] == 'I'))
			return fputs("null", f) == EOF ? -1 : 0;
		return fputs(v, f) == EOF ? -1 : 0;
	}
	return serve_json_string(f, v);
}

/* serve_spill_row - cohort_live_run callback: the kept columns of one row */
int serve_spill_row(PGresult *res, int r, void *arg)
{
	struct serve_spill *sp = arg;
	int k = 0;

	for (int i = 0; i < sp->c->n; i++) {
		if (!sp->c->keep[i])
			continue;
		FILE *f = sp->files[k];
		if ((sp->rows > 0 && putc_unlocked(',', f) == EOF) ||
		    serve_json_value(f, sp->kinds[k], PQgetvalue(res, r, i + 1),
				     PQgetisnull(res, r, i + 1)) < 0)
			return -1;
		k++;
	}
	sp->rows++;
	return 0;
}

/* serve_copy - the whole of a temporary file into out */
static int serve_copy(FILE *from, FILE *out)
{
	char buf[SERVE_BLOCK];
	size_t n;

	if (fflush(from) != 0 || fseeko(from, 0, SEEK_SET) != 0)
		return -1;
	while ((n = fread_unlocked(buf, 1, sizeof(buf), from)) > 0)
		if (fwrite_unlocked(buf, 1, n, out) != n)
			return -1;
	return ferror(from) ? -1 : 0;
}

/* serve_produce_dataframe - {"col": [v, ...], ...} from the temporary files */
static int serve_produce_dataframe(struct serve_stream *st)
{
	if (putc_unlocked('{', st->out) == EOF)
		return -1;
	for (int i = 0; i < st->ncols; i++) {
		if (fprintf(st->out, "%s%s:[", i ? "," : "", st->names[i]) < 0)
			return -1;
		if (serve_copy(st->spill[i], st->out) < 0) {
			if (ferror(st->out))
				st->write_failed = 1;
			else
				err_set(st->err, sizeof(st->err), "cannot read back column %d: %s", i,
					strerror(errno));
			return -1;
		}
		if (putc_unlocked(']', st->out) == EOF)
			return -1;
	}
	st->count = st->rows;
	return putc_unlocked('}', st->out) == EOF ? -1 : 0;
}

/* serve_produce_ids - {"accession_ids": [...]} */
static int serve_produce_ids(struct serve_stream *st)
{
	int n = st->idres ? PQntuples(st->idres) : 0;

	if (fputs("{\"accession_ids\":[", st->out) == EOF)
		return -1;
	for (int r = 0; r < n; r++)
		if ((r > 0 && putc_unlocked(',', st->out) == EOF) ||
		    serve_json_string(st->out, PQgetvalue(st->idres, r, 0)) < 0)
			return -1;
	st->count = n;
	return fputs("]}", st->out) == EOF ? -1 : 0;
}

/* serve_producer - the thread: the whole answer into the pipe, then EOF */
static void *serve_producer(void *arg)
{
	struct serve_stream *st = arg;
	int rc;

	st->out = fdopen(st->wfd, "w");
	if (st->out == NULL) {
		close(st->wfd);
		st->failed = 1;
		err_set(st->err, sizeof(st->err), "fdopen: %s", strerror(errno));
		return NULL;
	}
	setvbuf(st->out, NULL, _IOFBF, SERVE_BLOCK);
	rc = st->ids ? serve_produce_ids(st) : serve_produce_dataframe(st);
	if (fclose(st->out) != 0)	/* closes wfd: the reader sees EOF */
		rc = -1;
	st->out = NULL;
	st->failed = rc != 0;
	return NULL;
}

/* serve_stream_stop - end the producer (idempotent): close our end, join the thread */
void serve_stream_stop(struct serve_stream *st)
{
	if (st->rfd >= 0) {
		close(st->rfd);	/* a producer still writing gets EPIPE and stops */
		st->rfd = -1;
	}
	if (st->started && !st->joined) {
		pthread_join(st->thread, NULL);
		st->joined = 1;
	}
}

/* serve_stream_collect - hand the counts to the request and unhook the two */
void serve_stream_collect(struct serve_stream *st)
{
	struct serve_request *r = st->req;

	if (r == NULL)
		return;
	r->count_name = st->ids ? "ids" : "rows";
	r->count = st->ids ? st->count : st->rows;
	if (st->failed && st->err[0]) {
		/* EPIPE after a client went away is not the snapshot's fault */
		r->stream_failed = 1;
		log_error("snapshot of project %s could not be served: %s", r->project, st->err);
	}
	r->stream = NULL;
	st->req = NULL;
}

/* serve_stream_read - MHD's content reader: the next bytes from the pipe */
ssize_t serve_stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct serve_stream *st = cls;
	ssize_t n;

	(void)pos;
	if (st->rfd < 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	for (;;) {
		n = read(st->rfd, buf, max);
		if (n > 0)
			return n;
		if (n < 0 && errno == EINTR)
			continue;
		break;
	}
	if (n < 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	/* EOF: the producer has finished, well or not */
	serve_stream_stop(st);
	return st->failed ? MHD_CONTENT_READER_END_WITH_ERROR : MHD_CONTENT_READER_END_OF_STREAM;
}

/* serve_stream_free - MHD's free callback of the response */
void serve_stream_free(void *cls)
{
	struct serve_stream *st = cls;

	serve_stream_stop(st);
	serve_stream_collect(st);
	if (st->wfd >= 0 && !st->started)
		close(st->wfd);
	for (int i = 0; st->names && i < st->ncols; i++)
		free(st->names[i]);
	free(st->names);
	for (int i = 0; st->spill && i < st->ncols; i++)
		if (st->spill[i])
			fclose(st->spill[i]);
	free(st->spill);
	free(st->kinds);
	PQclear(st->idres);
	free(st);
}

/* serve_stream_new - a stream for the kept columns of c (dataframe) or the ids; the
 * dataframe's columns each get a temporary file in dir */
struct serve_stream *serve_stream_new(const struct cohort_columns *c, int ids,
					     const char *dir, char *err, size_t errlen)
{
	struct serve_stream *st = calloc(1, sizeof(*st));
	int fds[2], k = 0;

	if (st == NULL) {
		err_set(err, errlen, "out of memory");
		return NULL;
	}
	st->ids = ids;
	st->rfd = st->wfd = -1;
	if (!ids) {
		for (int i = 0; i < c->n; i++)
			st->ncols += c->keep[i] != 0;
		st->names = calloc((size_t)st->ncols + 1, sizeof(*st->names));
		st->spill = calloc((size_t)st->ncols + 1, sizeof(*st->spill));
		st->kinds = calloc((size_t)st->ncols + 1, sizeof(*st->kinds));
		if (st->names == NULL || st->spill == NULL || st->kinds == NULL)
			goto nomem;
		for (int i = 0; i < c->n; i++) {
			if (!c->keep[i])
				continue;
			json_t *name = json_string(c->names[i]);
			st->names[k] = name ? json_dumps(name, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;
			json_decref(name);
			if (st->names[k] == NULL)
				goto nomem;
			st->kinds[k] = serve_kind(c->types[i]);
			/* never linked into the file system: gone when we are */
			int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
			if (fd < 0 || (st->spill[k] = fdopen(fd, "w+")) == NULL) {
				err_set(err, errlen, "cannot make a temporary file in %s: %s", dir,
					strerror(errno));
				if (fd >= 0)
					close(fd);
				goto fail;
			}
			setvbuf(st->spill[k], NULL, _IOFBF, SERVE_SPILL_BUF);
			k++;
		}
	}
	if (pipe2(fds, O_CLOEXEC) < 0) {
		err_set(err, errlen, "pipe: %s", strerror(errno));
		goto fail;
	}
	st->rfd = fds[0];
	st->wfd = fds[1];
	(void)fcntl(st->wfd, F_SETPIPE_SZ, (int)SERVE_PIPE);	/* fewer wake-ups; optional */
	return st;
nomem:
	err_set(err, errlen, "out of memory");
fail:
	serve_stream_free(st);
	return NULL;
}

/* serve_stream_start - start the producer thread */
int serve_stream_start(struct serve_stream *st)
{
	int rc = pthread_create(&st->thread, NULL, serve_producer, st);

	if (rc != 0) {
		errno = rc;
		return -1;
	}
	st->started = 1;	/* the producer owns wfd now */
	return 0;
}
