/* SPDX-License-Identifier: Apache-2.0 */
/*
 * serve - flip-serve's HTTP side (see serve.h for the contract).
 *
 * One process serves one connection: libmicrohttpd runs without a listening
 * socket and without threads of its own (MHD_run_wait() from the caller), is
 * handed the accepted socket with MHD_add_connection(), and the loop ends when
 * MHD reports the connection closed. Every answer says `Connection: close`.
 *
 * Request state lives in struct serve_request (MHD's con_cls): the body as it
 * arrives, then the route's answer. A cohort answer is the query of record re-run
 * against live OMOP and kept to the frozen membership (cohort_live.h); the status
 * depends on the live subject count, so the whole pass runs before the answer is
 * queued, each kept column's JSON values going to an unnamed temporary file
 * (O_TMPFILE in FLIP_STATE_DIR: never linked, gone when the process ends). Then a
 * producer thread writes the answer from those files into a pipe while MHD pulls
 * bytes (its content reader asks for the next block). Memory is one cursor batch,
 * the stdio buffers and one pipe whatever the row count. The
 * stream belongs to the MHD response (freed by its free callback); the request
 * and the stream point at each other until whichever of "request completed" and
 * "response freed" comes first unhooks them (MHD calls the two in either order
 * depending on how the connection ends).
 *
 * The accept loop (--listen) blocks SIGTERM, SIGINT and SIGCHLD except inside
 * ppoll(), so a signal can never slip in between the check of the flags and the
 * wait (the classic race of pause()).
 */
#include "bin/flip-serve/serve.h"

#include "jobs/cohort_live.h"
#include "lib/handoff.h"
#include "jobs/sqlguard.h"

#include "lib/digest.h"
#include "lib/envelope.h"
#include "lib/ident.h"
#include "lib/log.h"
#include "lib/policy.h"
#include "lib/snapshot.h"
#include "lib/task.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#define SERVE_TOO_SMALL "Cohort is too small for row-level data to be released."
#define SERVE_NO_SNAPSHOT "No approved cohort snapshot exists for this project."
#define SERVE_BAD_DOWNLOAD "Invalid download request"
#define SERVE_POOL (256u * 1024)	/* MHD's per-connection memory: headers and send buffer */
#define SERVE_BLOCK (64u * 1024)	/* bytes asked of the content reader at a time */
#define SERVE_PIPE (1024u * 1024)	/* pipe between producer and reader, when the kernel allows */
#define SERVE_CONNECT_WAIT 30.0	/* seconds to wait for a free OMOP connection */
#define SERVE_SPILL_BUF (16u * 1024)	/* stdio buffer of each column's temporary file */

enum serve_route_id { ROUTE_HEALTH, ROUTE_DATAFRAME, ROUTE_ACCESSION_IDS, ROUTE_DOWNLOAD, ROUTE_UPLOAD };

struct serve_route {
	enum serve_route_id id;
	const char *path;	/* the path, or its prefix when prefix is set */
	int prefix;		/* the path continues with {net_id} */
	const char *method;
	const char *endpoint;	/* the name logs and the audit trail use */
};

static const struct serve_route serve_routes[] = {
	{ROUTE_HEALTH, "/health", 0, "GET", "/health"},
	{ROUTE_DATAFRAME, "/cohort/dataframe", 0, "POST", "/cohort/dataframe"},
	{ROUTE_ACCESSION_IDS, "/cohort/accession-ids", 0, "POST", "/cohort/accession-ids"},
	{ROUTE_DOWNLOAD, "/download/images/", 1, "POST", "/download/images/{net_id}"},
	{ROUTE_UPLOAD, "/upload/images/", 1, "PUT", "/upload/images/{net_id}"},
};

struct serve_conn {
	struct node *n;		/* NULL: the configuration could not be read */
	int closed;		/* MHD reported the connection closed */
	int answering;		/* an answer is queued: the request is all in */
};

struct serve_stream;

struct serve_request {
	struct serve_conn *c;
	const struct serve_route *route; /* NULL: 404 */
	int method_ok;
	const char *method;	/* a static name: GET, POST, ... or "other" */
	char *body;
	size_t len, cap;
	unsigned long long seen; /* body bytes received, kept or not */
	int too_large;
	int status;		/* 0 until an answer is queued */
	const char *reason;	/* a refusal's category for the audit trail */
	const char *count_name;	/* "rows" or "ids" once counted */
	long long count;
	int stream_failed;
	char project[13];	/* fingerprint of the canonical project id, "" when unknown */
	struct serve_stream *stream;
};

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

static int serve_key_logged;	/* "no internal key" said once per process */
static int serve_aes_logged;

/* serve_check_config - say once what makes the keyed endpoints unavailable */
void serve_check_config(const struct node *n)
{
	if (n == NULL)
		return;
	if ((n->cfg.internal_key == NULL || n->cfg.internal_key[0] == 0) && !serve_key_logged) {
		log_error("TRUST_INTERNAL_SERVICE_KEY is not set in %s: every endpoint but /health "
			  "answers 503", n->cfg.path[0] ? n->cfg.path : "the environment");
		serve_key_logged = 1;
	}
	if (!n->cfg.have_aes_key && !serve_aes_logged) {
		log_error("AES_KEY_BASE64 is not set: the cohort endpoints answer 503");
		serve_aes_logged = 1;
	}
}

/* --- answers ------------------------------------------------------------------------ */

/* serve_queue - queue a response with the headers every answer carries */
static enum MHD_Result serve_queue(struct MHD_Connection *conn, struct serve_request *r,
				   unsigned status, struct MHD_Response *resp, const char *allow)
{
	enum MHD_Result ret;

	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	if (allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	if (ret == MHD_YES) {
		r->status = (int)status;
		r->c->answering = 1;	/* from now on the answer's deadline applies */
	}
	return ret;
}

/* serve_text - a small JSON answer from malloc'd text (taken) */
static enum MHD_Result serve_text(struct MHD_Connection *conn, struct serve_request *r,
				  unsigned status, char *text, const char *allow)
{
	struct MHD_Response *resp;

	if (text == NULL)
		return MHD_NO;
	resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(text);
		return MHD_NO;
	}
	return serve_queue(conn, r, status, resp, allow);
}

/* serve_error - FastAPI's error shape {"detail": "..."}; reason goes to the audit trail */
static enum MHD_Result serve_error(struct MHD_Connection *conn, struct serve_request *r,
				   unsigned status, const char *reason, const char *detail)
{
	json_t *o = json_pack("{s:s}", "detail", detail);
	char *text = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;

	json_decref(o);
	r->reason = reason;
	return serve_text(conn, r, status, text, NULL);
}

/* --- the streamed cohort answers -------------------------------------------------------- */

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

/* the live pass's state: the kept columns and their temporary files */
struct serve_spill {
	const struct cohort_columns *c;
	int *kinds;
	FILE **files;		/* one per kept column */
	long long rows;
};

/* serve_spill_row - cohort_live_run callback: the kept columns of one row */
static int serve_spill_row(PGresult *res, int r, void *arg)
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
				snprintf(st->err, sizeof(st->err), "cannot read back column %d: %s", i,
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
		snprintf(st->err, sizeof(st->err), "fdopen: %s", strerror(errno));
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
static void serve_stream_stop(struct serve_stream *st)
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
static void serve_stream_collect(struct serve_stream *st)
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
static ssize_t serve_stream_read(void *cls, uint64_t pos, char *buf, size_t max)
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
static void serve_stream_free(void *cls)
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
static struct serve_stream *serve_stream_new(const struct cohort_columns *c, int ids,
					     const char *dir, char *err, size_t errlen)
{
	struct serve_stream *st = calloc(1, sizeof(*st));
	int fds[2], k = 0;

	if (st == NULL) {
		snprintf(err, errlen, "out of memory");
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
				snprintf(err, errlen, "cannot make a temporary file in %s: %s", dir,
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
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		goto fail;
	}
	st->rfd = fds[0];
	st->wfd = fds[1];
	(void)fcntl(st->wfd, F_SETPIPE_SZ, (int)SERVE_PIPE);	/* fewer wake-ups; optional */
	return st;
nomem:
	snprintf(err, errlen, "out of memory");
fail:
	serve_stream_free(st);
	return NULL;
}

/* serve_stream_start - start the producer thread */
static int serve_stream_start(struct serve_stream *st)
{
	int rc = pthread_create(&st->thread, NULL, serve_producer, st);

	if (rc != 0) {
		errno = rc;
		return -1;
	}
	st->started = 1;	/* the producer owns wfd now */
	return 0;
}

/* --- the endpoints ------------------------------------------------------------------------ */

/* serve_json_body_type - FastAPI's rule: no Content-Type, application/json or +json */
static int serve_json_body_type(struct MHD_Connection *conn)
{
	const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_TYPE);
	size_t n;

	if (ct == NULL)
		return 1;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	n = strcspn(ct, "; \t");
	if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
		return 1;
	return n > 17 && strncasecmp(ct, "application/", 12) == 0 &&
	       strncasecmp(ct + n - 5, "+json", 5) == 0;
}

/* serve_key_ok - the internal key, compared in constant time over SHA-256 digests */
static int serve_key_ok(const char *want, const char *given)
{
	unsigned char a[EVP_MAX_MD_SIZE], b[EVP_MAX_MD_SIZE];
	unsigned int alen = 0, blen = 0;
	int ok;

	if (given == NULL)
		return 0;
	ok = EVP_Digest(want, strlen(want), a, &alen, EVP_sha256(), NULL) == 1 &&
	     EVP_Digest(given, strlen(given), b, &blen, EVP_sha256(), NULL) == 1 && alen == 32 &&
	     blen == 32 && CRYPTO_memcmp(a, b, 32) == 0;
	OPENSSL_cleanse(a, sizeof(a));
	OPENSSL_cleanse(b, sizeof(b));
	return ok;
}

/* serve_open_project - the canonical project id from encrypted_project_id; 0 or an HTTP status */
static int serve_open_project(const struct config *cfg, const char *wire, char project[37],
			      const char **detail)
{
	unsigned char *plain = NULL;
	size_t len = 0;
	char err[256];
	int rc, tag_failed;

	rc = envelope_open(cfg->aes_key, wire, strlen(wire), "project_id", &plain, &len,
			   &tag_failed, err, sizeof(err));
	if (rc != ERR_OK && tag_failed) {
		*detail = "encrypted_project_id failed authentication";
		return 400;
	}
	if (rc != ERR_OK) {
		log_debug("encrypted_project_id refused: %s", err);
		*detail = "Invalid encrypted_project_id";
		return 400;
	}
	rc = strlen((char *)plain) == len ? task_uuid_canonical((char *)plain, project) : -1;
	OPENSSL_cleanse(plain, len);
	free(plain);
	if (rc < 0) {
		*detail = "Invalid encrypted_project_id";
		return 400;
	}
	return 0;
}

/* serve_snapshot - the project's snapshot, a format 1 one converted with the caller's
 * query when it is the frozen one; NULL with *status and *detail set */
static struct snapshot *serve_snapshot(const struct config *cfg, struct serve_request *r,
				       const char *project, const char *sql, unsigned *status,
				       const char **detail)
{
	char err[512];
	struct snapshot *snap = snapshot_open(cfg->state_dir, project, err, sizeof(err));

	if (snap == NULL && errno == EPROTO) {
		if (snapshot_migrate(cfg->state_dir, project, sql, cfg->snapshot_max_bytes, err,
				     sizeof(err)) < 0) {
			log_error("project %s holds a format 1 snapshot (row values) that cannot be "
				  "converted yet: %s; it converts when the hub re-sends persist_cohort, "
				  "or delete FLIP_STATE_DIR/cohorts/<project> to freeze anew",
				  r->project, err);
			*status = 503;
			*detail = "Cohort snapshot awaits conversion to membership";
			return NULL;
		}
		log_info("project %s: format 1 snapshot converted to membership; its row values "
			 "are gone", r->project);
		snap = snapshot_open(cfg->state_dir, project, err, sizeof(err));
	}
	if (snap == NULL) {
		if (errno == ENOENT) {
			*status = 403;
			*detail = SERVE_NO_SNAPSHOT;
			return NULL;
		}
		log_error("snapshot of project %s in %s/cohorts: %s", r->project, cfg->state_dir, err);
		*status = 500;
		*detail = "Trust-side storage error";
	}
	return snap;
}

/* serve_omop_open - connect; while the role is at its CONNECTION LIMIT (the FL client
 * may ask many things at once), wait and try again, for up to SERVE_CONNECT_WAIT s */
static int serve_omop_open(struct omop *db, const struct config *cfg, struct omop_error *e)
{
	struct timespec pause = {0, 50 * 1000 * 1000};
	double waited = 0;
	int rc;

	for (;;) {
		rc = omop_open(db, cfg, e);
		if (rc != ERR_TRANSIENT || waited >= SERVE_CONNECT_WAIT ||
		    (!strstr(e->message, "too many") && !strstr(e->message, "connection slots")))
			return rc;
		nanosleep(&pause, NULL);
		waited += (double)pause.tv_sec + pause.tv_nsec / 1e9;
		if (pause.tv_nsec < 400 * 1000 * 1000)
			pause.tv_nsec *= 2;
	}
}

/* serve_cohort - /cohort/dataframe and /cohort/accession-ids */
static enum MHD_Result serve_cohort(struct serve_conn *c, struct MHD_Connection *conn,
				    struct serve_request *r, enum policy_action action)
{
	const struct config *cfg = &c->n->cfg;
	const char *detail = NULL, *wire, *sql, *qh;
	char project[37], hash[65], err[512];
	struct policy *pol = NULL;
	struct policy_decision d;
	struct snapshot *snap = NULL;
	struct serve_stream *st = NULL;
	struct MHD_Response *resp;
	struct cohort_columns cols = {0};
	struct cohort_live_count live = {0, 0};
	struct omop db = {0};
	struct omop_error e = {0};
	json_error_t jerr;
	json_t *body;
	char *checked = NULL;
	const char *reason = NULL;
	unsigned status;
	int rc, ids = action == POLICY_ACCESSION_IDS;

	if (!serve_json_body_type(conn))
		return serve_error(conn, r, 422, "body", "Request body must be JSON");
	body = json_loadb(r->body ? r->body : "", r->len, JSON_REJECT_DUPLICATES, &jerr);
	if (body == NULL)
		return serve_error(conn, r, 422, "body", "JSON decode error");
	wire = json_string_value(json_object_get(body, "encrypted_project_id"));
	sql = json_string_value(json_object_get(body, "query"));
	if (!json_is_object(body) || wire == NULL || sql == NULL) {
		json_decref(body);
		return serve_error(conn, r, 422, "body",
				   "Body must be a JSON object with string fields "
				   "encrypted_project_id and query");
	}
	if (!cfg->have_aes_key) {
		json_decref(body);
		serve_check_config(c->n);
		return serve_error(conn, r, 503, "config", "AES key not configured");
	}
	status = (unsigned)serve_open_project(cfg, wire, project, &detail);
	if (status == 0 && digest_query(sql, hash) < 0)
		status = 500, detail = "internal_error";
	if (status != 0) {
		json_decref(body);
		return serve_error(conn, r, status, "project_id", detail);
	}
	digest_sha256_hex(project, strlen(project), err);
	snprintf(r->project, sizeof(r->project), "%.12s", err);

	if (policy_load(cfg->access_policy_file, cfg->cohort_threshold, &pol, err, sizeof(err)) < 0) {
		/* fail closed: nothing leaves under a policy the trust cannot read */
		json_decref(body);
		log_error("governance policy refused, no data served: %s (fix it and check with "
			  "flipctl policy check)", err);
		return serve_error(conn, r, 500, "policy_invalid", "access_policy_invalid");
	}
	policy_decide(pol, action, project, cfg->cohort_threshold, &d);
	policy_free(pol);
	if (!d.permit) {
		json_decref(body);
		log_info("%s for project %s denied by the governance policy (rule %s)",
			 r->route->endpoint, r->project, d.rule[0] ? d.rule : "(none matched)");
		return serve_error(conn, r, 403, "policy", SERVE_TOO_SMALL);
	}
	/* the caller's SQL serves only to convert a format 1 snapshot; then it is dropped */
	snap = serve_snapshot(cfg, r, project, sql, &status, &detail);
	json_decref(body);
	if (snap == NULL)
		return serve_error(conn, r, status, status == 403 ? "no_snapshot" : "storage", detail);
	qh = json_string_value(json_object_get(snapshot_meta(snap), "query_hash"));
	if (qh == NULL || strcmp(qh, hash) != 0)
		log_info("project %s: the caller's query (fingerprint %.12s) is not the approved one "
			 "(%.12s); serving the query of record, the caller's SQL is ignored",
			 r->project, hash, qh ? qh : "none");

	/* the query of record, checked again (the guard may have grown stricter since) */
	checked = sqlguard_check(snapshot_query(snap), err, sizeof(err));
	if (checked == NULL) {
		log_error("project %s: the query of record no longer passes the guard: %s",
			  r->project, err);
		status = 400, reason = "guard", detail = "The approved query no longer passes "
							 "the trust's query checks.";
		goto refuse;
	}
	rc = serve_omop_open(&db, cfg, &e);
	if (rc == ERR_OK)
		rc = cohort_columns(&db, checked, &cols, &e);
	if (rc == ERR_OK && (st = serve_stream_new(&cols, ids, cfg->state_dir, err,
						    sizeof(err))) == NULL) {
		log_error("project %s: %s", r->project, err);
		status = 500, reason = "storage", detail = "Trust-side storage error";
		goto refuse;
	}
	if (rc == ERR_OK) {
		struct serve_spill sp = {&cols, st->kinds, st->spill, 0};
		rc = cohort_live_run(&db, checked, &cols, snap, ids ? NULL : serve_spill_row, &sp,
				     &live, &e);
		if (rc == ERR_FINAL && e.stopped) {
			log_error("project %s: cannot write a temporary file: %s", r->project,
				  strerror(errno));
			status = 500, reason = "storage", detail = "Trust-side storage error";
			goto refuse;
		}
	}
	/* the threshold again, on the live cohort: an opt-out or a raised floor applies at once */
	if (rc == ERR_OK && live.subjects < d.floor) {
		log_info("%s for project %s refused: the live cohort's subject count is below the "
			 "threshold of %ld", r->route->endpoint, r->project, d.floor);
		status = 403, reason = "threshold", detail = SERVE_TOO_SMALL;
		goto refuse;
	}
	if (rc == ERR_OK && ids && json_is_true(json_object_get(snapshot_meta(snap),
								 "has_accessions")))
		rc = cohort_live_accessions(&db, snap, &st->idres, &e);
	if (rc != ERR_OK) {
		if (rc == ERR_TRANSIENT)
			log_error("%s for project %s: %s", r->route->endpoint, r->project, e.message);
		status = rc == ERR_TRANSIENT || e.status < 400 ? 503 : (unsigned)e.status;
		reason = "omop";
		/* e.message is "<status>: <detail>"; the answer carries the detail */
		detail = strstr(e.message, ": ");
		snprintf(err, sizeof(err), "%s", rc == ERR_TRANSIENT || detail == NULL
			 ? "omop unavailable" : detail + 2);
		detail = err;
		goto refuse;
	}
	omop_close(&db);
	st->rows = live.rows;
	snapshot_close(snap);
	snap = NULL;
	cohort_columns_free(&cols);
	free(checked);
	checked = NULL;

	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, SERVE_BLOCK, serve_stream_read,
						 st, serve_stream_free);
	if (resp == NULL) {
		serve_stream_free(st);
		return MHD_NO;
	}
	if (serve_stream_start(st) < 0) {
		log_error("cannot start the cohort writer: %s", strerror(errno));
		MHD_destroy_response(resp);	/* frees the stream */
		return serve_error(conn, r, 500, "storage", "Trust-side storage error");
	}
	st->req = r;
	r->stream = st;
	return serve_queue(conn, r, 200, resp, NULL);
refuse:
	omop_close(&db);
	if (st)
		serve_stream_free(st);
	snapshot_close(snap);
	cohort_columns_free(&cols);
	free(checked);
	return serve_error(conn, r, status, reason, detail);
}

/* serve_flag - a query-string boolean ("true"/"1"/"yes"), default 0 */
static int serve_flag(struct MHD_Connection *conn, const char *name)
{
	const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);

	return v && (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcasecmp(v, "yes") == 0);
}

/*
 * serve_images_permitted - the decision /cohort/accession-ids makes, for the images
 * of those accessions: the governance policy's cohort.accession_ids action for
 * the project, then the threshold against its frozen snapshot. 0 when permitted;
 * else the status to answer, with *reason and *detail.
 */
static int serve_images_permitted(const struct config *cfg, struct serve_request *r,
				  const char *project, const char **reason, const char **detail)
{
	struct policy *pol = NULL;
	struct policy_decision d;
	struct snapshot *snap;
	json_t *subjects;
	char err[512];
	int ok;

	if (policy_load(cfg->access_policy_file, cfg->cohort_threshold, &pol, err, sizeof(err)) < 0) {
		log_error("governance policy refused, no images served: %s (fix it and check with "
			  "flipctl policy check)", err);
		*reason = "policy_invalid", *detail = "access_policy_invalid";
		return 500;
	}
	policy_decide(pol, POLICY_ACCESSION_IDS, project, cfg->cohort_threshold, &d);
	policy_free(pol);
	if (!d.permit) {
		log_info("%s for project %s denied by the governance policy (rule %s)",
			 r->route->endpoint, r->project, d.rule[0] ? d.rule : "(none matched)");
		*reason = "policy", *detail = SERVE_TOO_SMALL;
		return 403;
	}
	snap = snapshot_open(cfg->state_dir, project, err, sizeof(err));
	if (snap == NULL) {
		if (errno == ENOENT) {
			*reason = "no_snapshot", *detail = SERVE_NO_SNAPSHOT;
			return 403;
		}
		log_error("snapshot of project %s in %s/cohorts: %s", r->project, cfg->state_dir, err);
		*reason = "storage", *detail = "Trust-side storage error";
		return 500;
	}
	subjects = json_object_get(snapshot_meta(snap), "subject_count");
	ok = json_is_integer(subjects) && json_integer_value(subjects) >= d.floor;
	snapshot_close(snap);
	if (!ok) {
		log_info("%s for project %s refused: the snapshot's subject count is below the "
			 "threshold of %ld", r->route->endpoint, r->project, d.floor);
		*reason = "threshold", *detail = SERVE_TOO_SMALL;
		return 403;
	}
	return 0;
}

/* serve_images - /download/images/{net_id} and /upload/images/{net_id} (docs/design/imaging.md) */
static enum MHD_Result serve_images(struct serve_conn *c, struct MHD_Connection *conn,
				    struct serve_request *r, const char *url)
{
	const struct config *cfg = &c->n->cfg;
	const char *net_id = url + strlen(r->route->path), *detail = NULL, *wire, *acc;
	char project[37], path[4096], fp[65];
	json_t *body, *stored = NULL;
	json_error_t jerr;
	int status;

	/* checked before anything could build a path from it */
	if (!ident_ok(IDENT_NET_ID, net_id))
		return r->route->id == ROUTE_DOWNLOAD
		       ? serve_error(conn, r, 400, "net_id", SERVE_BAD_DOWNLOAD)
		       : serve_error(conn, r, 422, "net_id", "Invalid net_id");
	if (!serve_json_body_type(conn))
		return serve_error(conn, r, 422, "body", "Request body must be JSON");
	body = json_loadb(r->body ? r->body : "", r->len, JSON_REJECT_DUPLICATES, &jerr);
	wire = json_string_value(json_object_get(body, "encrypted_central_hub_project_id"));
	acc = json_string_value(json_object_get(body, "accession_id"));
	if (!json_is_object(body) || wire == NULL || acc == NULL) {
		json_decref(body);
		return serve_error(conn, r, 422, "body", "Body must be a JSON object with string fields "
				   "encrypted_central_hub_project_id and accession_id");
	}
	if (!ident_ok(IDENT_ACCESSION, acc)) {
		json_decref(body);
		return r->route->id == ROUTE_DOWNLOAD
		       ? serve_error(conn, r, 400, "accession", SERVE_BAD_DOWNLOAD)
		       : serve_error(conn, r, 422, "accession", "Invalid accession_id");
	}
	status = serve_open_project(cfg, wire, project, &detail);
	if (status != 0) {
		json_decref(body);
		return serve_error(conn, r, (unsigned)status, "project_id", detail);
	}
	digest_sha256_hex(project, strlen(project), fp);
	snprintf(r->project, sizeof(r->project), "%.12s", fp);
	if (r->route->id == ROUTE_DOWNLOAD) {
		const char *at = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "assessor_type");
		const char *rt = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "resource_type");
		at = at ? at : "scan";
		rt = rt ? rt : "NIFTI";
		/* resource_type is free-form upstream: any one safe path segment */
		if ((strcmp(at, "scan") && strcmp(at, "assessor")) || !ident_ok(IDENT_ACCESSION, rt)) {
			json_decref(body);
			return serve_error(conn, r, 400, "query", SERVE_BAD_DOWNLOAD);
		}
		const char *why = NULL;
		status = serve_images_permitted(cfg, r, project, &why, &detail);
		if (status != 0) {
			json_decref(body);
			return serve_error(conn, r, (unsigned)status, why, detail);
		}
		/* acc points into body: release it only after the hand-off */
		status = handoff_download(cfg, net_id, project, acc, at, rt,
					  serve_flag(conn, "force_refresh"), path, sizeof(path), &detail);
		json_decref(body);
		if (status != 200)
			return serve_error(conn, r, (unsigned)status, "images", detail);
		json_t *o = json_pack("{s:s}", "path", path);
		char *text = o ? json_dumps(o, JSON_ENSURE_ASCII) : NULL;
		json_decref(o);
		return serve_text(conn, r, 200, text, NULL);
	}
	const char *scan = json_string_value(json_object_get(body, "scan_id"));
	const char *res = json_string_value(json_object_get(body, "resource_id"));
	if (scan == NULL || res == NULL || !ident_ok(IDENT_ACCESSION, scan) ||
	    !ident_ok(IDENT_ACCESSION, res)) {
		json_decref(body);
		return serve_error(conn, r, 422, "body", "scan_id and resource_id must be plain names");
	}
	status = handoff_upload(cfg, net_id, project, acc, scan, res, json_object_get(body, "files"),
				json_is_true(json_object_get(body, "exist_ok")), &stored, &detail);
	json_decref(body);
	if (status != 200) {
		json_decref(stored);
		return serve_error(conn, r, (unsigned)status, "upload", detail);
	}
	r->count_name = "files";
	r->count = (long long)json_array_size(stored);
	/* upstream answers with the list of stored paths itself */
	char *text = json_dumps(stored, JSON_ENSURE_ASCII);
	json_decref(stored);
	return serve_text(conn, r, 200, text, NULL);
}

/* serve_dispatch - the whole request is in: route, key, then the endpoint */
static enum MHD_Result serve_dispatch(struct serve_conn *c, struct MHD_Connection *conn,
				      struct serve_request *r, const char *url)
{
	const struct config *cfg;

	if (r->route == NULL)
		return serve_error(conn, r, 404, "not_found", "Not Found");
	if (!r->method_ok) {
		json_t *o = json_pack("{s:s}", "detail", "Method Not Allowed");
		char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
		json_decref(o);
		r->reason = "method";
		return serve_text(conn, r, 405, text,
				  r->route->id == ROUTE_HEALTH ? "GET, HEAD" : r->route->method);
	}
	if (r->route->id == ROUTE_HEALTH)
		return serve_text(conn, r, 200, strdup("{\"status\":\"ok\"}"), NULL);
	if (c->n == NULL)
		return serve_error(conn, r, 503, "config", "node configuration error");
	cfg = &c->n->cfg;
	if (cfg->internal_key == NULL || cfg->internal_key[0] == 0) {
		serve_check_config(c->n);
		return serve_error(conn, r, 503, "config", "internal service key not configured");
	}
	if (!serve_key_ok(cfg->internal_key,
			  MHD_lookup_connection_value(conn, MHD_HEADER_KIND, cfg->internal_key_header)))
		return serve_error(conn, r, 401, "key", "Invalid or missing internal service key");
	if (r->too_large)
		return serve_error(conn, r, 413, "too_large", "Request body too large (limit 1 MiB)");
	switch (r->route->id) {
	case ROUTE_DATAFRAME:
		return serve_cohort(c, conn, r, POLICY_DATAFRAME);
	case ROUTE_ACCESSION_IDS:
		return serve_cohort(c, conn, r, POLICY_ACCESSION_IDS);
	default:
		return serve_images(c, conn, r, url);
	}
}

/* serve_method_name - a fixed name for the audit trail (never the client's bytes) */
static const char *serve_method_name(const char *method)
{
	static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(method, known[i]) == 0)
			return known[i];
	return "other";
}

/* serve_route - find the route of url and whether method is its method */
static void serve_route(struct serve_request *r, const char *url, const char *method)
{
	r->method = serve_method_name(method);
	for (size_t i = 0; i < sizeof(serve_routes) / sizeof(serve_routes[0]); i++) {
		const struct serve_route *rt = &serve_routes[i];
		size_t n = strlen(rt->path);
		if (rt->prefix ? strncmp(url, rt->path, n) != 0 || url[n] == 0
			       : strcmp(url, rt->path) != 0)
			continue;
		r->route = rt;
		r->method_ok = strcmp(method, rt->method) == 0 ||
			       (rt->id == ROUTE_HEALTH && strcmp(method, "HEAD") == 0);
		return;
	}
}

/* serve_take_body - keep a piece of the body when it fits the cap, else count it and drop it */
static int serve_take_body(struct serve_request *r, const char *data, size_t n)
{
	r->seen += n;
	if (r->too_large || r->route == NULL || !r->method_ok || r->route->id == ROUTE_HEALTH)
		return 0;
	if (r->len + n > SERVE_BODY_MAX) {
		r->too_large = 1;
		free(r->body);
		r->body = NULL;
		r->len = r->cap = 0;
		return 0;
	}
	if (r->len + n > r->cap) {
		size_t ncap = r->cap ? r->cap : 4096;
		char *nb;
		while (ncap < r->len + n)
			ncap *= 2;
		if (ncap > SERVE_BODY_MAX)
			ncap = SERVE_BODY_MAX;
		if ((nb = realloc(r->body, ncap)) == NULL)
			return -1;
		r->body = nb;
		r->cap = ncap;
	}
	memcpy(r->body + r->len, data, n);
	r->len += n;
	return 0;
}

/* serve_handler - MHD's access handler: headers, then body pieces, then the answer */
static enum MHD_Result serve_handler(void *cls, struct MHD_Connection *conn, const char *url,
				     const char *method, const char *version,
				     const char *upload_data, size_t *upload_data_size,
				     void **con_cls)
{
	struct serve_conn *c = cls;
	struct serve_request *r = *con_cls;
	const char *cl;

	(void)version;
	if (r == NULL) {
		if ((r = calloc(1, sizeof(*r))) == NULL)
			return MHD_NO;
		r->c = c;
		serve_route(r, url, method);
		*con_cls = r;
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						 MHD_HTTP_HEADER_CONTENT_LENGTH);
		/* too big even to read and drop: answer now (MHD then closes the connection) */
		if (cl && strtoull(cl, NULL, 10) > SERVE_DISCARD_MAX)
			return serve_error(conn, r, 413, "too_large",
					   "Request body too large (limit 1 MiB)");
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		if (serve_take_body(r, upload_data, *upload_data_size) < 0)
			return MHD_NO;
		*upload_data_size = 0;
		/* a chunked body that never ends: stop reading it */
		return r->seen > SERVE_DISCARD_MAX ? MHD_NO : MHD_YES;
	}
	return serve_dispatch(c, conn, r, url);
}

/* serve_completed - MHD's request-completed callback: one audit event and one log line */
static void serve_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			    enum MHD_RequestTerminationCode toe)
{
	struct serve_conn *c = cls;
	struct serve_request *r = *con_cls;
	int complete = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK;
	json_t *d;

	(void)conn;
	if (r == NULL)
		return;
	*con_cls = NULL;
	if (r->stream) {
		serve_stream_stop(r->stream);
		serve_stream_collect(r->stream);
	}
	d = json_pack("{s:s,s:s}", "endpoint", r->route ? r->route->endpoint : "other", "method",
		      r->method);
	if (d) {
		json_object_set_new(d, "status", r->status ? json_integer(r->status) : json_null());
		if (r->reason)
			json_object_set_new(d, "reason", json_string(r->reason));
		if (r->count_name)
			json_object_set_new(d, r->count_name, json_integer(r->count));
		if (r->project[0])
			json_object_set_new(d, "project", json_string(r->project));
		json_object_set_new(d, "complete", json_boolean(complete && !r->stream_failed));
	}
	char extra[96] = "";
	if (r->count_name)
		snprintf(extra, sizeof(extra), ", %s %lld", r->count_name, r->count);
	if (r->project[0])
		snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), ", project %s",
			 r->project);
	log_debug("%s %s: %d%s%s", r->method, r->route ? r->route->endpoint : "(unknown path)",
		  r->status, extra, complete ? "" : " (connection ended before the whole answer)");
	if (c->n)
		node_audit(c->n, "serve.request", NULL, NULL, d);
	else
		json_decref(d);
	free(r->body);
	free(r);
}

/* serve_notify - MHD's connection notifier: the loop ends when ours is closed */
static void serve_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
			 enum MHD_ConnectionNotificationCode toe)
{
	struct serve_conn *c = cls;

	(void)conn;
	(void)socket_context;
	if (toe == MHD_CONNECTION_NOTIFY_CLOSED)
		c->closed = 1;
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
/* serve_mhd_log - libmicrohttpd's own messages, at debug (a client's garbage is not our error) */
static void serve_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = 0;
	log_debug("libmicrohttpd: %s", line);
}
#pragma GCC diagnostic pop

/* serve_mono - monotonic seconds */
static double serve_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* serve_connection - answer one accepted connection and return when it is closed */
int serve_connection(struct node *n, int fd, char *err, size_t errlen)
{
	struct serve_conn c = {.n = n, .closed = 0};
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	struct MHD_Daemon *d;
	int flags;

	memset(&peer, 0, sizeof(peer));
	if (getpeername(fd, (struct sockaddr *)&peer, &plen) < 0 || plen == 0) {
		peer.ss_family = AF_UNIX;	/* a socketpair has no name */
		plen = sizeof(sa_family_t);
	}
	if ((flags = fcntl(fd, F_GETFL)) >= 0)
		(void)fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	/* the logger first: MHD reports options given before it on its own stderr logger */
	d = MHD_start_daemon(MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG, 0, NULL, NULL,
			     serve_handler, &c,
			     MHD_OPTION_EXTERNAL_LOGGER, serve_mhd_log, NULL,
			     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)SERVE_TIMEOUT,
			     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SERVE_POOL,
			     MHD_OPTION_CONNECTION_LIMIT, 1u,
			     MHD_OPTION_NOTIFY_COMPLETED, serve_completed, &c,
			     MHD_OPTION_NOTIFY_CONNECTION, serve_notify, &c,
			     MHD_OPTION_END);
	if (d == NULL) {
		close(fd);
		snprintf(err, errlen, "cannot start libmicrohttpd");
		return -1;
	}
	if (MHD_add_connection(d, fd, (const struct sockaddr *)&peer, plen) != MHD_YES) {
		snprintf(err, errlen, "libmicrohttpd refused the connection: %s", strerror(errno));
		MHD_stop_daemon(d);	/* the socket is closed by MHD in any case */
		return -1;
	}
	/*
	 * Deadlines for the whole request, not for idleness: a sender that trickles a
	 * byte at a time resets MHD's idle timeout forever and would keep this slot
	 * (and, with 16 of them, /health) from ever answering.
	 */
	double start = serve_mono(), request_deadline = SERVE_REQUEST_DEADLINE;
#ifdef FLIP_TEST_BUILD
	const char *td = getenv("FLIP_SERVE_REQUEST_DEADLINE");
	if (td != NULL && atof(td) > 0)
		request_deadline = atof(td);
#endif
	while (!c.closed) {
		double left = start - serve_mono() +
			      (c.answering ? (double)SERVE_ANSWER_DEADLINE : request_deadline);
		if (left <= 0) {
			log_info("dropped a connection: %s within %.0f s", c.answering ?
				 "the answer was not taken" : "the request did not arrive",
				 c.answering ? (double)SERVE_ANSWER_DEADLINE : request_deadline);
			break;
		}
		if (MHD_run_wait(d, (int32_t)(left * 1000) + 1) != MHD_YES) {
			snprintf(err, errlen, "libmicrohttpd failed while serving the connection");
			MHD_stop_daemon(d);
			return -1;
		}
	}
	MHD_stop_daemon(d);
	return 0;
}

/* --- sockets -------------------------------------------------------------------------- */

/* serve_same_file - two fds name the same open object */
static int serve_same_file(int a, int b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/* serve_activation_fd - the connection systemd passed (fd 3 with LISTEN_FDS=1, else fd 0) */
int serve_activation_fd(char *err, size_t errlen)
{
	const char *fds = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID");
	int fd = 0, type = 0, listening = 0, nfd, null;
	socklen_t len = sizeof(type);
	struct stat st;

	if (fds && strcmp(fds, "1") == 0 && pid && strtol(pid, NULL, 10) == (long)getpid())
		fd = 3;
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
	if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode) ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM) {
		snprintf(err, errlen, "fd %d is not a stream socket: run flip-serve from "
			 "flip-serve.socket (Accept=yes, StandardInput=socket) or with --listen ADDR",
			 fd);
		return -1;
	}
	len = sizeof(listening);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening) {
		snprintf(err, errlen, "fd %d is a listening socket: flip-serve.socket needs "
			 "Accept=yes (or run flip-serve --listen ADDR)", fd);
		return -1;
	}
	if (fd == 3) {
		(void)fcntl(3, F_SETFD, FD_CLOEXEC);
		return 3;
	}
	/* fd 0 (and fd 1 under inetd-style units) must not keep the connection open */
	nfd = fcntl(0, F_DUPFD_CLOEXEC, 3);
	if (nfd < 0) {
		snprintf(err, errlen, "dup: %s", strerror(errno));
		return -1;
	}
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		if (serve_same_file(1, nfd))
			dup2(null, 1);
		dup2(null, 0);
		if (null > 2)
			close(null);
	}
	return nfd;
}

/* serve_listen_unix - bind an absolute path (a stale socket there is replaced) */
static int serve_listen_unix(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "socket path %s is too long", path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s exists and is not a socket", path);
			return -1;
		}
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(fd, 64) < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* serve_listen - listen on host:port, [v6]:port or an absolute UNIX socket path */
int serve_listen(const char *addr, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV}, *res, *ai;
	char host[256];
	const char *colon, *port;
	size_t hlen;
	int fd = -1, rc, one = 1, saved = 0;

	if (addr[0] == '/')
		return serve_listen_unix(addr, err, errlen);
	colon = strrchr(addr, ':');
	if (colon == NULL || colon == addr || colon[1] == 0) {
		snprintf(err, errlen, "--listen %s: want host:port, [v6]:port or an absolute "
			 "socket path", addr);
		return -1;
	}
	port = colon + 1;
	hlen = (size_t)(colon - addr);
	if (addr[0] == '[' && hlen >= 2 && addr[hlen - 1] == ']')
		addr++, hlen -= 2;
	if (hlen >= sizeof(host)) {
		snprintf(err, errlen, "--listen: host name too long");
		return -1;
	}
	memcpy(host, addr, hlen);
	host[hlen] = 0;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		snprintf(err, errlen, "--listen %s:%s: %s", host, port, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 64) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		snprintf(err, errlen, "cannot listen on %s:%s: %s", host, port, strerror(saved));
	return fd;
}

/* serve_unlisten - close the listening socket; remove a UNIX socket's path */
void serve_unlisten(const char *addr, int fd)
{
	if (fd >= 0)
		close(fd);
	if (addr && addr[0] == '/')
		unlink(addr);
}

static volatile sig_atomic_t serve_stop;

static void serve_on_signal(int sig)
{
	if (sig == SIGTERM || sig == SIGINT)
		serve_stop = 1;
}

/* serve_reap - collect exited children; returns how many are still running */
static int serve_reap(pid_t *kids, int max)
{
	int running = 0, status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (int i = 0; i < max; i++)
			if (kids[i] == pid)
				kids[i] = 0;
		if (WIFSIGNALED(status))
			log_error("connection handler %ld killed by signal %d", (long)pid,
				  WTERMSIG(status));
	}
	for (int i = 0; i < max; i++)
		running += kids[i] != 0;
	return running;
}

/*
 * serve_peer - who is at the other end, for the cap per peer: the address of an
 * IPv4 or IPv6 peer (the port left out), the uid of a UNIX socket's peer.
 */
static void serve_peer(int fd, const struct sockaddr_storage *sa, char key[64])
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (sa->ss_family == AF_INET)
		snprintf(key, 64, "4:%08x",
			 (unsigned)((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr);
	else if (sa->ss_family == AF_INET6) {
		const unsigned char *a =
			((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
		snprintf(key, 64, "6:");
		for (int i = 0; i < 16; i++)
			snprintf(key + 2 + 2 * i, 3, "%02x", a[i]);
	} else if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
		snprintf(key, 64, "u:%ld", (long)cred.uid);
	else
		snprintf(key, 64, "?");
}

/* a connection accepted while its peer had all the slots a peer may have */
struct serve_pending {
	int fd;
	char peer[64];
	double at;		/* monotonic seconds of the accept */
};

/* what serve_loop keeps between its steps */
struct serve_pool {
	int lfd, max, per_peer, npend;
	pid_t *kids;
	char (*peers)[64];
	struct serve_pending *pend;
	struct sigaction old_term, old_int, old_chld;
	sigset_t orig;
	int (*child)(int fd, void *arg);
	void *arg;
};

/* serve_peer_count - running children for this peer */
static int serve_peer_count(const struct serve_pool *sp, const char *peer)
{
	int n = 0;

	for (int i = 0; i < sp->max; i++)
		n += sp->kids[i] != 0 && strcmp(sp->peers[i], peer) == 0;
	return n;
}

/* serve_spawn - fork a child for fd in a free slot; fd is closed here */
static void serve_spawn(struct serve_pool *sp, int fd, const char *peer)
{
	int slot;
	pid_t pid;

	for (slot = 0; sp->kids[slot] != 0; slot++)
		;
	pid = fork();
	if (pid == 0) {
		sigaction(SIGTERM, &sp->old_term, NULL);
		sigaction(SIGINT, &sp->old_int, NULL);
		sigaction(SIGCHLD, &sp->old_chld, NULL);
		sigprocmask(SIG_SETMASK, &sp->orig, NULL);
		close(sp->lfd);
		for (int i = 0; i < sp->npend; i++)
			close(sp->pend[i].fd);
		_exit(sp->child(fd, sp->arg));
	}
	if (pid < 0) {
		log_error("cannot fork a connection handler: %s", strerror(errno));
	} else {
		sp->kids[slot] = pid;
		memcpy(sp->peers[slot], peer, sizeof(sp->peers[slot]));
	}
	close(fd);
}

/*
 * serve_pending_run - drop what waited longer than a request may take, then start
 * the oldest waiting connections whose peers are below their share; returns the
 * number of children running
 */
static int serve_pending_run(struct serve_pool *sp, int running)
{
	double now = serve_mono();
	int k = 0;

	for (int i = 0; i < sp->npend; i++) {
		struct serve_pending *q = &sp->pend[i];
		if (now - q->at > SERVE_REQUEST_DEADLINE) {
			close(q->fd);
		} else if (running < sp->max && serve_peer_count(sp, q->peer) < sp->per_peer) {
			struct serve_pending go = *q;
			sp->pend[i].fd = -1;
			serve_spawn(sp, go.fd, go.peer);
			running++;
		} else {
			sp->pend[k++] = *q;
		}
	}
	sp->npend = k;
	return running;
}

/* serve_loop - accept and fork one child per connection until SIGTERM/SIGINT */
int serve_loop(int lfd, int max_children, int (*child)(int fd, void *arg), void *arg)
{
	struct sigaction sa = {.sa_handler = serve_on_signal};
	sigset_t block;
	struct serve_pool sp = {.lfd = lfd, .max = max_children, .child = child, .arg = arg};
	int running = 0, rc = 0;

	sp.per_peer = max_children / 2 > 0 ? max_children / 2 : 1;
	sp.kids = calloc((size_t)max_children, sizeof(*sp.kids));
	sp.peers = calloc((size_t)max_children, sizeof(*sp.peers));
	sp.pend = calloc(SERVE_PENDING_MAX, sizeof(*sp.pend));
	if (sp.kids == NULL || sp.peers == NULL || sp.pend == NULL) {
		free(sp.kids);
		free(sp.peers);
		free(sp.pend);
		return -1;
	}
	pid_t *kids = sp.kids;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, &sp.orig);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, &sp.old_term);
	sigaction(SIGINT, &sa, &sp.old_int);
	sigaction(SIGCHLD, &sa, &sp.old_chld);	/* a handler, not SIG_IGN: we reap ourselves */
	serve_stop = 0;
	for (;;) {
		struct pollfd p = {.fd = lfd, .events = POLLIN};
		struct timespec tick = {1, 0};	/* waiting connections expire */
		struct sockaddr_storage from;
		socklen_t fromlen = sizeof(from);
		char peer[64];
		int fd, pr;

		running = serve_reap(kids, max_children);
		if (serve_stop)
			break;
		running = serve_pending_run(&sp, running);
		/* full: the kernel's backlog holds new connections until a child exits */
		pr = ppoll(running >= max_children ? NULL : &p, running >= max_children ? 0 : 1,
			   sp.npend ? &tick : NULL, &sp.orig);
		if (pr < 0 && errno != EINTR) {
			rc = -1;
			break;
		}
		if (pr <= 0 || running >= max_children)
			continue;
		memset(&from, 0, sizeof(from));
		fd = accept4(lfd, (struct sockaddr *)&from, &fromlen, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED) {
				struct timespec ts = {0, 100 * 1000 * 1000};
				log_error("accept: %s", strerror(errno));
				nanosleep(&ts, NULL);	/* EMFILE and friends: do not spin */
			}
			continue;
		}
		/* one peer holds at most half the slots: it cannot starve the others; its
		 * further connections wait their turn here (a bounded queue) */
		serve_peer(fd, &from, peer);
		if (serve_peer_count(&sp, peer) >= sp.per_peer) {
			if (sp.npend >= SERVE_PENDING_MAX) {
				log_debug("closed a connection at once: too many waiting");
				close(fd);
				continue;
			}
			sp.pend[sp.npend].fd = fd;
			memcpy(sp.pend[sp.npend].peer, peer, sizeof(peer));
			sp.pend[sp.npend++].at = serve_mono();
			continue;
		}
		serve_spawn(&sp, fd, peer);
	}
	for (int i = 0; i < sp.npend; i++)
		close(sp.pend[i].fd);
	sp.npend = 0;
	/* stopping: let the children finish their answers, then ask them to stop */
	struct timespec end, now;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += SERVE_GRACE;
	while ((running = serve_reap(kids, max_children)) > 0) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec))
			break;
		struct timespec wait = {0, 50 * 1000 * 1000};
		ppoll(NULL, 0, &wait, &sp.orig);
	}
	for (int i = 0; i < max_children; i++)
		if (kids[i] > 0) {
			kill(kids[i], SIGTERM);
			waitpid(kids[i], NULL, 0);
			kids[i] = 0;
		}
	sigaction(SIGTERM, &sp.old_term, NULL);
	sigaction(SIGINT, &sp.old_int, NULL);
	sigaction(SIGCHLD, &sp.old_chld, NULL);
	sigprocmask(SIG_SETMASK, &sp.orig, NULL);
	free(sp.kids);
	free(sp.peers);
	free(sp.pend);
	return rc;
}
