/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http - one connection under libmicrohttpd: routing, the internal key, the headers
 * every answer carries, and one audit event per request (see serve.h, http.h).
 *
 * One process serves one connection: libmicrohttpd runs without a listening
 * socket and without threads of its own (MHD_run_wait() from the caller), is
 * handed the accepted socket with MHD_add_connection(), and the loop ends when
 * MHD reports the connection closed. Every answer says `Connection: close`.
 *
 * Request state lives in struct serve_request (MHD's con_cls): the body as it
 * arrives, then the route's answer. Once the request is all in and the key
 * checked, serve_dispatch() hands it to its endpoint (cohort.c, images.c).
 */
#include "bin/flip-serve/serve.h"
#include "bin/flip-serve/http.h"
#include "bin/flip-serve/stream.h"

#include "lib/envelope.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/task.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#define SERVE_POOL (256u * 1024)	/* MHD's per-connection memory: headers and send buffer */

static const struct serve_route serve_routes[] = {
	{ROUTE_HEALTH, "/health", 0, "GET", "/health"},
	{ROUTE_DATAFRAME, "/cohort/dataframe", 0, "POST", "/cohort/dataframe"},
	{ROUTE_ACCESSION_IDS, "/cohort/accession-ids", 0, "POST", "/cohort/accession-ids"},
	{ROUTE_DOWNLOAD, "/download/images/", 1, "POST", "/download/images/{net_id}"},
	{ROUTE_UPLOAD, "/upload/images/", 1, "PUT", "/upload/images/{net_id}"},
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
enum MHD_Result serve_queue(struct MHD_Connection *conn, struct serve_request *r,
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
enum MHD_Result serve_text(struct MHD_Connection *conn, struct serve_request *r,
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
enum MHD_Result serve_error(struct MHD_Connection *conn, struct serve_request *r,
				   unsigned status, const char *reason, const char *detail)
{
	json_t *o = json_pack("{s:s}", "detail", detail);
	char *text = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;

	json_decref(o);
	r->reason = reason;
	return serve_text(conn, r, status, text, NULL);
}

/* --- requests --------------------------------------------------------------------------- */

/* serve_json_body_type - FastAPI's rule: no Content-Type, application/json or +json */
int serve_json_body_type(struct MHD_Connection *conn)
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
int serve_open_project(const struct config *cfg, const char *wire, char project[37],
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

/* --- the connection ------------------------------------------------------------------------ */

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
		return err_set(err, errlen, "cannot start libmicrohttpd");
	}
	if (MHD_add_connection(d, fd, (const struct sockaddr *)&peer, plen) != MHD_YES) {
		err_set(err, errlen, "libmicrohttpd refused the connection: %s", strerror(errno));
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
			err_set(err, errlen, "libmicrohttpd failed while serving the connection");
			MHD_stop_daemon(d);
			return -1;
		}
	}
	MHD_stop_daemon(d);
	return 0;
}
