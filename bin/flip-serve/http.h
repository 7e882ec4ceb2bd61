/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http - what the pieces of flip-serve's HTTP side share: a request, its route, its answer.
 *
 * SYNOPSIS
 *	#include "bin/flip-serve/http.h"
 *
 *	enum MHD_Result serve_queue(struct MHD_Connection *conn, struct serve_request *r,
 *				    unsigned status, struct MHD_Response *resp, const char *allow);
 *	enum MHD_Result serve_text(struct MHD_Connection *conn, struct serve_request *r,
 *				   unsigned status, char *text, const char *allow);
 *	enum MHD_Result serve_error(struct MHD_Connection *conn, struct serve_request *r,
 *				    unsigned status, const char *reason, const char *detail);
 *	int serve_json_body_type(struct MHD_Connection *conn);
 *	int serve_open_project(const struct config *cfg, const char *wire, char project[37],
 *			       const char **detail);
 *
 *	enum MHD_Result serve_cohort(struct serve_conn *c, struct MHD_Connection *conn,
 *				     struct serve_request *r, enum policy_action action);
 *	enum MHD_Result serve_images(struct serve_conn *c, struct MHD_Connection *conn,
 *				     struct serve_request *r, const char *url);
 *
 * DESCRIPTION
 *	serve_connection() (http.c) keeps one struct serve_conn for its connection and
 *	one struct serve_request per request (MHD's con_cls): the route its URL and
 *	method found (serve_routes), the body as it arrives, then what the answer was,
 *	for the audit event: status, reason, a count, the project's fingerprint, and
 *	the stream of a streamed answer (stream.h). When the request is all in, the
 *	route known and the internal key right, the router calls its endpoint:
 *	serve_cohort() (cohort.c) for /cohort/dataframe (POLICY_DATAFRAME) and
 *	/cohort/accession-ids (POLICY_ACCESSION_IDS), serve_images() (images.c) for
 *	/download/images/{net_id} and /upload/images/{net_id}, url being the whole
 *	path. Each queues exactly one answer.
 *
 *	The answer helpers (http.c): serve_queue() queues resp (taken) with
 *	Content-Type: application/json, Connection: close and, when allow is set,
 *	Allow; it records the status, and from then on the answer's deadline applies
 *	to the connection. serve_text() answers malloc'd JSON text (taken).
 *	serve_error() answers FastAPI's {"detail": detail} and records reason, a
 *	refusal's category, for the audit trail.
 *
 *	The request helpers (http.c): serve_json_body_type() is FastAPI's rule for a
 *	JSON body (no Content-Type, application/json or application/...+json).
 *	serve_open_project() opens an encrypted project id (envelope context
 *	"project_id") into the canonical project id (36 characters and the NUL).
 *
 * DIAGNOSTICS
 *	The MHD_Result functions return MHD_NO when no answer could be queued (out of
 *	memory: MHD then closes the connection), else what MHD_queue_response() said.
 *	serve_open_project() returns 0, or the HTTP status to answer (400) with
 *	*detail.
 */
#ifndef FLIP_SERVE_HTTP_H
#define FLIP_SERVE_HTTP_H

#include <stddef.h>

#include <microhttpd.h>

#include "lib/config.h"
#include "lib/node.h"
#include "lib/policy.h"

#define SERVE_TOO_SMALL "Cohort is too small for row-level data to be released."
#define SERVE_NO_SNAPSHOT "No approved cohort snapshot exists for this project."

enum serve_route_id { ROUTE_HEALTH, ROUTE_DATAFRAME, ROUTE_ACCESSION_IDS, ROUTE_DOWNLOAD, ROUTE_UPLOAD };

struct serve_route {
	enum serve_route_id id;
	const char *path;	/* the path, or its prefix when prefix is set */
	int prefix;		/* the path continues with {net_id} */
	const char *method;
	const char *endpoint;	/* the name logs and the audit trail use */
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
	const char *count_name;	/* "rows", "ids" or "files" once counted */
	long long count;
	int stream_failed;
	char project[13];	/* fingerprint of the canonical project id, "" when unknown */
	struct serve_stream *stream;
};

enum MHD_Result serve_queue(struct MHD_Connection *conn, struct serve_request *r,
			    unsigned status, struct MHD_Response *resp, const char *allow);
enum MHD_Result serve_text(struct MHD_Connection *conn, struct serve_request *r,
			   unsigned status, char *text, const char *allow);
enum MHD_Result serve_error(struct MHD_Connection *conn, struct serve_request *r,
			    unsigned status, const char *reason, const char *detail);
int serve_json_body_type(struct MHD_Connection *conn);
int serve_open_project(const struct config *cfg, const char *wire, char project[37],
		       const char **detail);

enum MHD_Result serve_cohort(struct serve_conn *c, struct MHD_Connection *conn,
			     struct serve_request *r, enum policy_action action);
enum MHD_Result serve_images(struct serve_conn *c, struct MHD_Connection *conn,
			     struct serve_request *r, const char *url);

#endif
