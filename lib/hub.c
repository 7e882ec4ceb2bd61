/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hub - the HTTPS client for the FLIP Central Hub (see hub.h for the contract).
 *
 * libcurl does the HTTP and TLS; this module pins the options a hospital's
 * security review will ask about in one place: verification on, no redirects,
 * http/https only, bounded time and bounded reply size.
 */
#include "lib/hub.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

static int hub_global_ready;

/* hub_ssl_ctx - add FLIP_CA_BUNDLE to the store curl has already loaded */
static CURLcode hub_ssl_ctx(CURL *curl, void *sslctx, void *userdata)
{
	X509_STORE *store = SSL_CTX_get_cert_store((SSL_CTX *)sslctx);
	const char *file = userdata;

	(void)curl;
	if (file == NULL)
		return CURLE_OK;
	if (store == NULL || X509_STORE_load_file(store, file) != 1)
		return CURLE_SSL_CACERT_BADFILE;
	return CURLE_OK;
}

struct hub_sink {
	struct hub_reply *r;
	size_t cap;
	int over;
};

static size_t hub_write(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct hub_sink *s = userdata;
	size_t n = size * nmemb;
	struct hub_reply *r = s->r;

	if (r->len + n > HUB_MAX_REPLY) {
		s->over = 1;
		return 0;	/* aborts the transfer */
	}
	if (r->len + n + 1 > s->cap) {
		size_t ncap = s->cap ? s->cap : 4096;
		while (ncap < r->len + n + 1)
			ncap *= 2;
		char *nb = realloc(r->body, ncap);
		if (nb == NULL)
			return 0;
		r->body = nb;
		s->cap = ncap;
	}
	memcpy(r->body + r->len, data, n);
	r->len += n;
	r->body[r->len] = 0;
	return n;
}

/*
 * hub_retry_after - a Retry-After value (delta-seconds or an HTTP date) as seconds
 * from now, capped at HUB_MAX_RETRY_AFTER so a hostile or misconfigured hub cannot
 * park results for longer than the backoff cap; 0 when absent, past or unreadable.
 */
static long hub_retry_after(const char *v, size_t n)
{
	char buf[64];
	size_t j = 0;
	long secs = 0;
	struct tm tm;

	while (n > 0 && (*v == ' ' || *v == '\t'))
		v++, n--;
	while (j < n && j < sizeof(buf) - 1 && v[j] != '\r' && v[j] != '\n')
		buf[j] = v[j], j++;
	buf[j] = 0;
	if (buf[0] >= '0' && buf[0] <= '9') {
		for (j = 0; buf[j] >= '0' && buf[j] <= '9'; j++)
			if ((secs = secs * 10 + (buf[j] - '0')) > HUB_MAX_RETRY_AFTER)
				secs = HUB_MAX_RETRY_AFTER;
		if (buf[j] != 0 && buf[j] != ' ')
			return 0;
	} else {
		memset(&tm, 0, sizeof(tm));
		const char *end = strptime(buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
		if (end == NULL)
			return 0;
		double d = difftime(timegm(&tm), time(NULL));
		secs = d <= 0 ? 0 : d > HUB_MAX_RETRY_AFTER ? HUB_MAX_RETRY_AFTER : (long)d;
	}
	return secs > HUB_MAX_RETRY_AFTER ? HUB_MAX_RETRY_AFTER : secs;
}

static size_t hub_header(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct hub_reply *r = userdata;
	size_t n = size * nmemb;

	if (n > 5 && strncasecmp(data, "date:", 5) == 0) {
		size_t i = 5, j = 0;
		while (i < n && data[i] == ' ')
			i++;
		while (i < n && data[i] != '\r' && data[i] != '\n' && j < sizeof(r->date) - 1)
			r->date[j++] = data[i++];
		r->date[j] = 0;
	} else if (n > 12 && strncasecmp(data, "retry-after:", 12) == 0) {
		r->retry_after = hub_retry_after(data + 12, n - 12);
	}
	return n;
}

/* hub_timeout - HUB_TIMEOUT_SECONDS; test builds take FLIP_HUB_TIMEOUT (1..30) so the
 * fault tests can show a slow hub without waiting half a minute per call */
static long hub_timeout(void)
{
#ifdef FLIP_TEST_BUILD
	const char *s = getenv("FLIP_HUB_TIMEOUT");
	char *end;
	long v = s ? strtol(s, &end, 10) : 0;

	if (s && *end == 0 && v >= 1 && v <= HUB_TIMEOUT_SECONDS)
		return v;
#endif
	return HUB_TIMEOUT_SECONDS;
}

/* hub_init - a curl handle configured for the hub */
int hub_init(struct hub *h, const struct config *cfg, char *err, size_t errlen)
{
	CURL *c;
	struct curl_slist *hd = NULL, *jhd = NULL;

	memset(h, 0, sizeof(*h));
	if (!hub_global_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			snprintf(err, errlen, "cannot initialise libcurl");
			return -1;
		}
		hub_global_ready = 1;
	}
	if (asprintf(&h->key_header_line, "%s: %s", cfg->api_key_header, cfg->api_key) < 0) {
		h->key_header_line = NULL;
		goto nomem;
	}
	h->base = strdup(cfg->hub_url);
	if (h->base == NULL)
		goto nomem;
	if (cfg->ca_bundle && (h->ca_extra = strdup(cfg->ca_bundle)) == NULL)
		goto nomem;
	hd = curl_slist_append(NULL, h->key_header_line);
	/* curl adds "Expect: 100-continue" to large POSTs; the hub does not need the round trip */
	hd = hd ? curl_slist_append(hd, "Expect:") : NULL;
	jhd = curl_slist_append(NULL, h->key_header_line);
	jhd = jhd ? curl_slist_append(jhd, "Expect:") : NULL;
	jhd = jhd ? curl_slist_append(jhd, "Content-Type: application/json") : NULL;
	if (hd == NULL || jhd == NULL)
		goto nomem;
	h->headers = hd;
	h->json_headers = jhd;
	c = curl_easy_init();
	if (c == NULL)
		goto nomem;
	h->curl = c;
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, hub_timeout());
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "flip-node/" FLIP_VERSION);
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, hub_write);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, hub_header);
	/* from the kit file or the environment (config applied the override already) */
	if (cfg->https_proxy) {
		curl_easy_setopt(c, CURLOPT_PROXY, cfg->https_proxy);
		/* NO_PROXY may exempt the hub: then a failure is not the proxy's */
		h->proxied = cfg->no_proxy == NULL || cfg->no_proxy[0] == 0;
	}
	if (cfg->no_proxy)
		curl_easy_setopt(c, CURLOPT_NOPROXY, cfg->no_proxy);
	if (h->ca_extra) {
		curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, hub_ssl_ctx);
		curl_easy_setopt(c, CURLOPT_SSL_CTX_DATA, h->ca_extra);
	}
	return 0;
nomem:
	if (hd)
		curl_slist_free_all(hd);
	if (jhd)
		curl_slist_free_all(jhd);
	h->headers = h->json_headers = NULL;
	hub_cleanup(h);
	snprintf(err, errlen, "out of memory setting up the hub client");
	return -1;
}

/* hub_want_cert - keep the next handshake's certificates (for hub_cert_expiry) */
void hub_want_cert(struct hub *h)
{
	curl_easy_setopt(h->curl, CURLOPT_CERTINFO, 1L);
}

/* hub_cert_expiry - the hub certificate's notAfter, from libcurl's certinfo */
int hub_cert_expiry(struct hub *h, time_t *not_after)
{
	struct curl_certinfo *ci = NULL;
	struct tm tm;

	if (curl_easy_getinfo(h->curl, CURLINFO_CERTINFO, &ci) != CURLE_OK || ci == NULL ||
	    ci->num_of_certs < 1)
		return -1;
	/* the first certificate is the server's; OpenSSL prints "Jan  1 00:00:00 2027 GMT" */
	for (struct curl_slist *l = ci->certinfo[0]; l; l = l->next) {
		const char *v;
		if (strncmp(l->data, "Expire date:", 12) != 0)
			continue;
		for (v = l->data + 12; *v == ' '; v++)
			;
		memset(&tm, 0, sizeof(tm));
		const char *end = strptime(v, "%b %d %H:%M:%S %Y GMT", &tm);
		if (end == NULL || *end != 0)
			return -1;
		*not_after = timegm(&tm);
		return 0;
	}
	return -1;
}

/*
 * hub_explain - why no answer arrived, in the operator's terms: which party refused
 * (the proxy, the hub's certificate, the TLS handshake) and what to change, followed
 * by libcurl's own words. The categories are fixed texts (docs/reliability.md lists
 * them); nothing in them comes from the network except libcurl's bounded message.
 */
static void hub_explain(const struct hub *h, CURLcode rc, const char *why, char *out, size_t n)
{
	CURL *c = h->curl;
	long connect_code = 0, verify = 0;
	int proxied = h->proxied;

	curl_easy_getinfo(c, CURLINFO_HTTP_CONNECTCODE, &connect_code);
	curl_easy_getinfo(c, CURLINFO_SSL_VERIFYRESULT, &verify);
	if (proxied && (connect_code == 401 || connect_code == 407)) {
		snprintf(out, n, "the proxy refused our credentials (CONNECT answered %ld): put "
			 "the proxy's user and password in HTTPS_PROXY (http://user:password@host:port)",
			 connect_code);
	} else if (proxied && connect_code >= 300) {
		snprintf(out, n, "the proxy refused the tunnel to the hub (CONNECT answered %ld): "
			 "ask its administrators to allow HTTPS to the hub's host and port",
			 connect_code);
	} else if (proxied && (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_PROXY)) {
		snprintf(out, n, "cannot reach the proxy in HTTPS_PROXY: %s", why);
	} else if (rc == CURLE_PEER_FAILED_VERIFICATION && strstr(why, "target host name")) {
		/* libcurl checks the name itself after OpenSSL accepted the chain */
		snprintf(out, n, "the hub's TLS certificate is not for the host in "
			 "CENTRAL_HUB_API_URL: %s", why);
	} else if (rc == CURLE_PEER_FAILED_VERIFICATION) {
		switch (verify) {
		case X509_V_ERR_CERT_HAS_EXPIRED:
		case X509_V_ERR_CERT_NOT_YET_VALID:
			snprintf(out, n, "the hub's TLS certificate is %s: %s (its operators must "
				 "renew it, or this host's clock is wrong: flipctl doctor)",
				 verify == X509_V_ERR_CERT_HAS_EXPIRED ? "expired" : "not valid yet",
				 why);
			break;
		case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
		case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
		case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
		case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
		case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
			snprintf(out, n, "the hub's TLS certificate is signed by a CA this host does "
				 "not trust: %s (behind a TLS-inspecting proxy, set FLIP_CA_BUNDLE to "
				 "its CA file)", why);
			break;
		case X509_V_ERR_HOSTNAME_MISMATCH:
		case X509_V_ERR_IP_ADDRESS_MISMATCH:
			snprintf(out, n, "the hub's TLS certificate is not for the host in "
				 "CENTRAL_HUB_API_URL: %s", why);
			break;
		default:
			snprintf(out, n, "the hub's TLS certificate was refused: %s", why);
		}
	} else if (rc == CURLE_SSL_CONNECT_ERROR && (strstr(why, "protocol version") ||
						     strstr(why, "unsupported protocol"))) {
		snprintf(out, n, "no TLS version in common with the hub (flip-node needs TLS 1.2 "
			 "or later): %s", why);
	} else if (rc == CURLE_SSL_CACERT_BADFILE) {
		snprintf(out, n, "cannot load the CA file in FLIP_CA_BUNDLE: %s", why);
	} else if (rc == CURLE_OPERATION_TIMEDOUT) {
		snprintf(out, n, "no answer from the hub in time: %s", why);
	} else {
		snprintf(out, n, "%s", why);
	}
}

/* hub_call - one request to CENTRAL_HUB_API_URL + path */
int hub_call(struct hub *h, const char *method, const char *path, const char *body,
	     size_t bodylen, struct hub_reply *r)
{
	CURL *c = h->curl;
	char url[2048];
	char curlerr[CURL_ERROR_SIZE] = "";
	struct hub_sink sink;
	CURLcode rc;
	curl_off_t reqsize = 0;
	long connects = 0;

	memset(r, 0, sizeof(*r));
	h->last_status = 0;
	sink = (struct hub_sink){r, 0, 0};
	if (snprintf(url, sizeof(url), "%s%s", h->base, path) >= (int)sizeof(url)) {
		snprintf(r->error, sizeof(r->error), "URL too long");
		return -1;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curlerr);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	if (strcmp(method, "GET") == 0) {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, (struct curl_slist *)h->headers);
	} else {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? bodylen : 0));
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, (struct curl_slist *)(body ? h->json_headers
										   : h->headers));
	}
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	h->last_status = r->status;
	curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &r->seconds);
	curl_easy_getinfo(c, CURLINFO_REQUEST_SIZE, &reqsize);
	curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
	r->sent = reqsize > 0;
	/*
	 * When a kept-alive connection dies before any answer, libcurl sends the request
	 * again on a new connection, by itself. For a POST the hub may then have processed
	 * it twice: the first copy accepted, the second answered 409. A new connection
	 * after earlier calls on this handle is the only trace of that, so it counts as
	 * "may have been sent twice" (a false alarm only turns a 409 into done/, and a
	 * requeued task comes back by re-delivery anyway).
	 */
	r->maybe_resent = h->calls++ > 0 && !h->last_failed && connects > 0;
	/*
	 * ...but after a call that got no answer (timeout, dropped, TLS refused) libcurl
	 * has closed that connection, so this call's new one is expected: counting it
	 * made a fetch after a failed heartbeat report claimed tasks as lost.
	 */
	h->last_failed = rc != CURLE_OK;
	if (r->body == NULL) {
		r->body = calloc(1, 1);
		if (r->body == NULL) {
			snprintf(r->error, sizeof(r->error), "out of memory");
			return -1;
		}
	}
	if (rc != CURLE_OK) {
		if (sink.over)
			snprintf(r->error, sizeof(r->error), "reply larger than %u bytes",
				 HUB_MAX_REPLY);
		else
			hub_explain(h, rc, curlerr[0] ? curlerr : curl_easy_strerror(rc), r->error,
				    sizeof(r->error));
		r->status = 0;
		return -1;
	}
	return 0;
}

/* hub_detail - the hub's "detail" text (or a bounded, printable body excerpt) */
const char *hub_detail(const struct hub_reply *r, char *buf, size_t buflen)
{
	json_t *v, *d;
	const char *src = r->body ? r->body : "";
	size_t j = 0;

	if (r->status == 0) {
		snprintf(buf, buflen, "%s", r->error);
		return buf;
	}
	v = json_loadb(src, r->len, 0, NULL);
	d = v ? json_object_get(v, "detail") : NULL;
	char *dumped = NULL;
	if (json_is_string(d))
		src = json_string_value(d);
	else if (d != NULL && (dumped = json_dumps(d, JSON_COMPACT)) != NULL)
		src = dumped;
	for (size_t i = 0; src[i] && j + 1 < buflen && j < 300; i++)
		buf[j++] = isprint((unsigned char)src[i]) ? src[i] : '?';
	buf[j] = 0;
	free(dumped);
	json_decref(v);
	return buf;
}

/* hub_transient - should this reply be retried later */
int hub_transient(const struct hub_reply *r)
{
	return r->status == 0 || r->status == 429 || r->status >= 500;
}

/* hub_reply_free - release a reply */
void hub_reply_free(struct hub_reply *r)
{
	free(r->body);
	r->body = NULL;
	r->len = 0;
}

/* hub_cleanup - release the handle and wipe the key header */
void hub_cleanup(struct hub *h)
{
	if (h->curl)
		curl_easy_cleanup(h->curl);
	/* curl_slist_append copied the header line: wipe those copies too */
	for (struct curl_slist *s = h->headers; s; s = s->next)
		OPENSSL_cleanse(s->data, strlen(s->data));
	for (struct curl_slist *s = h->json_headers; s; s = s->next)
		OPENSSL_cleanse(s->data, strlen(s->data));
	if (h->headers)
		curl_slist_free_all(h->headers);
	if (h->json_headers)
		curl_slist_free_all(h->json_headers);
	if (h->key_header_line) {
		OPENSSL_cleanse(h->key_header_line, strlen(h->key_header_line));
		free(h->key_header_line);
	}
	free(h->base);
	free(h->ca_extra);
	memset(h, 0, sizeof(*h));
}
