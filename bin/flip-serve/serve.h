/* SPDX-License-Identifier: Apache-2.0 */
/*
 * serve - flip-serve's HTTP side: the FL client's data endpoints, one connection at a time.
 *
 * SYNOPSIS
 *	#include "bin/flip-serve/serve.h"
 *
 *	void serve_check_config(const struct node *n);
 *	int serve_connection(struct node *n, int fd, char *err, size_t errlen);
 *
 *	int serve_activation_fd(char *err, size_t errlen);
 *	int serve_listen(const char *addr, char *err, size_t errlen);
 *	void serve_unlisten(const char *addr, int fd);
 *	int serve_loop(int lfd, int max_children, int (*child)(int fd, void *arg), void *arg);
 *	double serve_mono(void);
 *
 * DESCRIPTION
 *	serve_connection() answers the HTTP requests of one accepted socket with
 *	libmicrohttpd (MHD_USE_NO_LISTEN_SOCKET + MHD_add_connection, polled from
 *	the calling thread) and returns once the connection is closed. fd is taken
 *	over (closed). Every answer carries `Connection: close`, so one request is
 *	served per connection; a connection idle for SERVE_TIMEOUT seconds is dropped,
 *	and so is one whose request is not all in SERVE_REQUEST_DEADLINE seconds after
 *	it was accepted, or whose answer is not all taken SERVE_ANSWER_DEADLINE seconds
 *	after (whatever trickles in or out meanwhile).
 *	n is the node opened for this connection (its config read afresh, its own
 *	audit trail); NULL when the configuration could not be read: /health still
 *	answers, every other endpoint answers 503.
 *
 *	Endpoints (docs/design/fl.md; FLIP's paths, bodies and status codes; errors are
 *	{"detail": "..."}):
 *	  GET  /health                      200 {"status":"ok"}, no key
 *	  POST /cohort/dataframe            the query of record on live OMOP, kept to the
 *	                                    frozen membership, column-oriented
 *	  POST /cohort/accession-ids        {"accession_ids": [frozen ids still in
 *	                                    image_occurrence, sorted]}
 *	  POST /download/images/{net_id}    {"path": ...}: the accession's images handed
 *	                                    to the training code (lib/handoff.h), under
 *	                                    the decision of /cohort/accession-ids
 *	  PUT  /upload/images/{net_id}      the training code's files into the store;
 *	                                    answers [stored paths]
 *	Unknown paths are 404, a known path with another method 405 (both before
 *	the key, as FastAPI routes before it resolves dependencies). Every other
 *	answer needs the internal key (TRUST_INTERNAL_SERVICE_KEY, in the header
 *	named by TRUST_INTERNAL_SERVICE_KEY_HEADER), compared in constant time over
 *	SHA-256 digests: 401 when missing or wrong, 503 when the node has none.
 *	Bodies are JSON, at most SERVE_BODY_MAX bytes (413 beyond), parsed strictly
 *	(duplicate keys refused); a body that is not a JSON object of the right shape
 *	is 422. A cohort request then goes: open encrypted_project_id (context
 *	project_id; 400), a UUID (400), the governance policy (500
 *	access_policy_invalid: fail closed), its decision (403), the snapshot (403 when
 *	there is none; a format 1 snapshot is converted when the caller's query is its
 *	own, else 503), the query of record re-run on live OMOP and kept to the
 *	frozen members (cohort_live.h), the threshold against the live subject count
 *	and the decision's floor (403), then 200. The caller's SQL is not run; a
 *	query hash that differs from the snapshot's is logged (fingerprints only).
 *	The dataframe's values go to unnamed temporary files during the live pass and
 *	are streamed (chunked) from them by a producer thread through a pipe, so
 *	memory stays flat whatever the row count. A temporary file that cannot be
 *	read back mid-stream ends the chunked body with an error (the client sees a
 *	truncated transfer, never a short but well-formed answer). While the OMOP
 *	role is at its connection limit a request waits for a free connection (up to
 *	SERVE_CONNECT_WAIT seconds).
 *	Image requests (docs/design/imaging.md) are served, not stubbed. The body is
 *	a JSON object with string fields encrypted_central_hub_project_id and
 *	accession_id (an upload's also scan_id and resource_id, plain names, and
 *	files and exist_ok), else 422. A net_id or accession_id that is not a safe
 *	name (a traversal attempt) is 400 "Invalid download request" in a download,
 *	422 in an upload. A download's query takes assessor_type scan or assessor
 *	(default scan) and resource_type, any one safe path segment (default NIFTI),
 *	else 400 "Invalid download request". The project id opens as in a cohort
 *	request (400; the AES key is not checked first: without one, 400 too).
 *	A download then needs what
 *	/cohort/accession-ids needs: the governance policy (500
 *	access_policy_invalid), its cohort.accession_ids decision for the project
 *	(403), a snapshot (403 when there is none) whose subject count reaches the
 *	decision's floor (403); then handoff_download() (force_refresh=true, 1 or
 *	yes makes the copy anew) and 200 {"path": ...}. An upload goes to
 *	handoff_upload() and answers 200 with the list of stored paths. A hand-off's
 *	refusal is its status: 404 not found, 409 resource exists, 422, 500.
 *
 *	Every request is one audit event "serve.request" with detail {endpoint,
 *	method, status, reason (a category, on refusals), rows | ids | files (counts),
 *	project (first 12 hex of SHA-256 of the canonical project id), complete
 *	(false when a stream was cut)}: never values, never SQL. One log line per
 *	request at debug; errors at error.
 *
 *	serve_check_config() logs, once per process, what makes keyed endpoints
 *	unavailable (no internal key, no AES key); a listening parent calls it at
 *	start so its children do not repeat it.
 *
 *	serve_activation_fd() finds the connection socket systemd passed: fd 3 when
 *	LISTEN_FDS=1 and LISTEN_PID is ours, else fd 0 (StandardInput=socket). It
 *	must be a connected stream socket; fd 0 (and fd 1 when it is the same socket)
 *	is then pointed at /dev/null so that nothing written to stdout can reach
 *	the client. Returns the fd to give serve_connection(), or -1.
 *
 *	serve_listen() binds and listens on ADDR: host:port ([v6]:port for IPv6) or an
 *	absolute UNIX socket path (a stale socket there is replaced; any other file is
 *	refused). serve_unlisten() closes it and removes a UNIX socket path.
 *	serve_loop() accepts connections and forks one child per connection, which
 *	runs child(fd, arg) and exits with its return value; at most max_children run
 *	at once (further connections wait in the backlog), at most half of them for
 *	one peer (an IP address, or the uid of a UNIX socket's peer): a connection over
 *	that share waits its turn in a queue of SERVE_PENDING_MAX (beyond it, or after
 *	SERVE_REQUEST_DEADLINE seconds of waiting, it is closed) while other peers are
 *	served; children are reaped as they
 *	exit. SIGTERM or SIGINT stops accepting, gives running children
 *	SERVE_GRACE seconds to finish, then sends them SIGTERM and reaps them.
 *
 *	serve_mono() is monotonic seconds, the clock the deadlines are measured on.
 *
 * DIAGNOSTICS
 *	serve_connection() returns 0 when the connection was handled (whatever the
 *	HTTP status), -1 with a message in err when libmicrohttpd could not take it.
 *	serve_activation_fd() and serve_listen() return -1 with a message in err.
 *	serve_loop() returns 0 after a stop signal, -1 when waiting failed.
 *	Nothing here exits the process except a serve_loop() child.
 *
 * FILES
 *	listener.c  serve_activation_fd(), serve_listen(), serve_unlisten(),
 *	            serve_loop() (the per-peer share and its queue), serve_mono()
 *	http.c      serve_connection() and its deadlines, routing, the internal key,
 *	            the answers' headers, the audit event, serve_check_config()
 *	            (http.h: what the pieces below share with it)
 *	cohort.c    /cohort/dataframe and /cohort/accession-ids
 *	stream.c    the streamed cohort answers (stream.h)
 *	images.c    /download/images/{net_id} and /upload/images/{net_id}
 */
#ifndef FLIP_SERVE_H
#define FLIP_SERVE_H

#include <stddef.h>

#include "lib/node.h"

#define SERVE_BODY_MAX (1024u * 1024)	  /* request body cap: 413 beyond */
#define SERVE_DISCARD_MAX (16u * 1024 * 1024) /* an oversized body is read and dropped up to this */
#define SERVE_TIMEOUT 60		  /* seconds a connection may stay idle */
#define SERVE_REQUEST_DEADLINE 30	  /* seconds from connection to the whole request in */
#define SERVE_ANSWER_DEADLINE 1800	  /* seconds from connection to the answer all sent */
#define SERVE_MAX_CHILDREN 16		  /* concurrent connections in --listen mode */
#define SERVE_PENDING_MAX 64		  /* connections waiting for their peer's share */
#define SERVE_GRACE 10			  /* seconds children get to finish after SIGTERM */

void serve_check_config(const struct node *n);
int serve_connection(struct node *n, int fd, char *err, size_t errlen);

int serve_activation_fd(char *err, size_t errlen);
int serve_listen(const char *addr, char *err, size_t errlen);
void serve_unlisten(const char *addr, int fd);
int serve_loop(int lfd, int max_children, int (*child)(int fd, void *arg), void *arg);
double serve_mono(void);

#endif
