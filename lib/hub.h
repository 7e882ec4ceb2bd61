/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hub - the HTTPS client for the FLIP Central Hub, on libcurl.
 *
 * SYNOPSIS
 *	#include "lib/hub.h"
 *
 *	int hub_init(struct hub *h, const struct config *cfg, char *err, size_t errlen);
 *	int hub_call(struct hub *h, const char *method, const char *path, const char *body,
 *		     size_t bodylen, struct hub_reply *r);
 *	const char *hub_detail(const struct hub_reply *r, char *buf, size_t buflen);
 *	int hub_transient(const struct hub_reply *r);
 *	void hub_reply_free(struct hub_reply *r);
 *	void hub_cleanup(struct hub *h);
 *	void hub_want_cert(struct hub *h);
 *	int hub_cert_expiry(struct hub *h, time_t *not_after);
 *
 * DESCRIPTION
 *	One curl easy handle per program run, so the heartbeat and the fetch share a
 *	connection. Every call carries the header named TRUST_API_KEY_HEADER with the
 *	raw key; JSON bodies are sent with Content-Type: application/json; a NULL body
 *	on POST sends no body at all (Content-Length: 0, not "{}"). Only http and https
 *	are allowed, redirects are not followed, TLS peer and host verification are
 *	always on (FLIP_CA_BUNDLE adds a CA file to the system store, it does not
 *	replace it), the whole call times out after 30 s, connecting after 10 s.
 *	Proxies come from the environment as curl reads them (HTTPS_PROXY, NO_PROXY).
 *	Reply bodies are capped at HUB_MAX_REPLY; a larger one is a transport error.
 *
 *	hub_call() returns 0 when an HTTP answer arrived (any status, in r->status,
 *	body in r->body, the Date header in r->date, Retry-After in r->retry_after as
 *	seconds, at most HUB_MAX_RETRY_AFTER) and -1 when none did (r->error says why
 *	in the operator's terms: which party refused - the proxy, the hub's certificate,
 *	the TLS handshake - and what to change, then libcurl's own words). hub_transient() says whether a
 *	reply should be retried: no answer, 429, or 5xx. hub_detail() extracts the
 *	hub's "detail" (FastAPI's error member) for messages, bounded and printable.
 *
 *	hub_want_cert() asks libcurl to keep the certificates of the next TLS
 *	handshake (flipctl doctor does, the programs do not: it costs a PEM copy of
 *	the chain); after a call, hub_cert_expiry() gives the hub certificate's
 *	notAfter: 0, or -1 when the hub is plain http, no handshake happened on this
 *	handle, or the date cannot be read.
 *
 *	The API key is never logged; the curl handle's header list holding it is
 *	wiped in hub_cleanup().
 */
#ifndef FLIP_HUB_H
#define FLIP_HUB_H

#include <stddef.h>
#include <time.h>

#include "lib/config.h"

#define HUB_MAX_REPLY (64u * 1024 * 1024)
#define HUB_TIMEOUT_SECONDS 30L
#define HUB_MAX_RETRY_AFTER 600L	/* the longest Retry-After honoured, in seconds */

struct hub {
	void *curl;		/* CURL * */
	void *headers;		/* struct curl_slist * holding the key header */
	void *json_headers;	/* the same plus Content-Type */
	char *base;		/* CENTRAL_HUB_API_URL */
	char *ca_extra;		/* FLIP_CA_BUNDLE */
	char *key_header_line;	/* "<header>: <key>" (secret) */
	long calls;		/* requests made on this handle */
	int last_failed;	/* the previous call got no answer (its connection is gone) */
	int proxied;		/* every call goes through HTTPS_PROXY (no NO_PROXY) */
	long last_status;	/* HTTP status of the last call, 0 when no answer (metrics) */
};

struct hub_reply {
	long status;		/* HTTP status, 0 when no answer */
	char *body;		/* NUL-terminated */
	size_t len;
	char date[64];		/* the Date header, "" when absent */
	long retry_after;	/* the Retry-After header in seconds (capped), 0 when absent */
	char error[320];	/* why no answer arrived (see hub_explain() in hub.c) */
	int sent;		/* the request may have reached the hub (for exactly-once bookkeeping) */
	int maybe_resent;	/* libcurl may have sent it twice (see hub.c): a 409 may be our own */
	double seconds;		/* total time */
};

int hub_init(struct hub *h, const struct config *cfg, char *err, size_t errlen);
int hub_call(struct hub *h, const char *method, const char *path, const char *body,
	     size_t bodylen, struct hub_reply *r);
const char *hub_detail(const struct hub_reply *r, char *buf, size_t buflen);
int hub_transient(const struct hub_reply *r);
void hub_reply_free(struct hub_reply *r);
void hub_cleanup(struct hub *h);
void hub_want_cert(struct hub *h);
int hub_cert_expiry(struct hub *h, time_t *not_after);

#endif
