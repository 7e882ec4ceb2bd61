/* SPDX-License-Identifier: Apache-2.0 */
/*
 * heartbeat - liveness and identity against the hub (see heartbeat.h).
 *
 * The hub marks a trust offline 30 s after its last heartbeat, and flip-poll runs
 * every 5 s, so a heartbeat must never wait behind anything else: it is the first
 * call of every poll cycle and its probes are local and cheap.
 */
#include "lib/heartbeat.h"

#include "lib/digest.h"
#include "lib/durable.h"
#include "lib/envelope.h"
#include "lib/flclient.h"
#include "lib/log.h"
#include "lib/statedir.h"
#include "lib/task.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define HEARTBEAT_BACKLOG_DEGRADED 600	/* seconds a result may wait in out/ before "degraded" */

static long heartbeat_ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000L + (t1.tv_nsec - t0->tv_nsec) / 1000000L;
}

/* heartbeat_spool_status - healthy, degraded (backlog or disk nearly full) or down */
static const char *heartbeat_spool_status(struct node *n)
{
	struct statvfs vfs;
	char **names;
	size_t cnt;
	const char *status = "healthy";

	if (!n->have_spool || statvfs(n->cfg.spool_dir, &vfs) < 0)
		return "down";
	if (vfs.f_blocks && (double)vfs.f_bavail / (double)vfs.f_blocks < 0.05)
		status = "degraded";
	if (spool_list(&n->sp, SPOOL_OUT, &names, &cnt) < 0)
		return "down";
	if (cnt > 0) {
		struct job job;
		if (spool_job_open(&n->sp, SPOOL_OUT, names[0], &job) == 0) {
			struct stat st;
			if (fstat(job.dirfd, &st) == 0 &&
			    time(NULL) - st.st_mtime > HEARTBEAT_BACKLOG_DEGRADED)
				status = "degraded";
			spool_job_close(&job);
		}
	}
	spool_list_free(names, cnt);
	return status;
}

/*
 * heartbeat_fl_client - the FL client as flip-fl's supervisor recorded it, or NULL
 * when this node does not run one (no FLIP_STATE_DIR/fl). Local files only.
 */
json_t *heartbeat_fl_client(struct node *n)
{
	struct flclient fc;
	json_t *st;
	int fd = statedir_find_sub(n->cfg.state_dir, STATEDIR_FL);

	if (fd < 0)
		return NULL;
	memset(&fc, 0, sizeof(fc));
	fc.statefd = fd;
	fc.state_dir = n->cfg.state_dir;
	st = flclient_status(&fc, node_now());
	close(fd);
	return st;
}

/* heartbeat_snapshot - the health snapshot the hub accepts */
json_t *heartbeat_snapshot(struct node *n)
{
	struct timespec t0;
	char collected[32];
	time_t now = time(NULL);
	struct tm tm;
	const char *spool_status;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	spool_status = heartbeat_spool_status(n);
	gmtime_r(&now, &tm);
	strftime(collected, sizeof(collected), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_t *snap = json_pack("{s:{s:{s:s,s:s,s:n},s:{s:s,s:n,s:I}},s:s}",
				 "services",
				 "flip-node", "status", "healthy", "version", FLIP_VERSION, "response_ms",
				 "spool", "status", spool_status, "version", "response_ms",
				 (json_int_t)heartbeat_ms_since(&t0),
				 "collected_at", collected);
	json_t *fl = heartbeat_fl_client(n);
	if (snap && fl) {
		/* running: healthy; stopped by the operator: degraded; otherwise down */
		const char *status = json_is_true(json_object_get(fl, "running")) ? "healthy"
				     : json_is_true(json_object_get(fl, "stopped")) ? "degraded"
										   : "down";
		json_object_set_new(json_object_get(snap, "services"), "fl-client",
				    json_pack("{s:s,s:n,s:n}", "status", status, "version",
					      "response_ms"));
	}
	json_decref(fl);
	return snap;
}

/* heartbeat_previous_trust - the trust id last announced in a program's log ("authenticated
 * to hub as ..."), "" when none. flipctl doctor's heartbeats keep their reply too but
 * announce nothing: the journal of flip-poll still gets the line after a doctor run. */
static void heartbeat_previous_trust(int sfd, char *out, size_t outlen)
{
	char *text;
	size_t len;
	json_t *v;

	out[0] = 0;
	if (sfd < 0 || durable_read(sfd, STATEDIR_HUB, 1 << 20, &text, &len) < 0)
		return;
	v = json_loadb(text, len, 0, NULL);
	free(text);
	const char *id = json_string_value(json_object_get(v, "announced"));
	if (id)
		snprintf(out, outlen, "%s", id);
	json_decref(v);
}

/* heartbeat_keep - keep the reply for flipctl status */
static void heartbeat_keep(int sfd, json_t *reply, const struct hub_reply *r, int fp_match,
			   const char *announced)
{
	char ts[32];
	time_t now = time(NULL);
	struct tm tm;

	if (sfd < 0)
		return;
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_t *state = json_pack("{s:s,s:O,s:s,s:f,s:i}", "received_at", ts, "reply", reply,
				  "hub_date", r->date, "seconds", r->seconds,
				  "fingerprint_match", fp_match);
	if (state != NULL && announced != NULL && announced[0])
		json_object_set_new(state, "announced", json_string(announced));
	/* no fsync: a lost copy costs nothing, and this runs every 5 s (whole thanks to rename) */
	if (state == NULL || durable_write_json_sync(sfd, STATEDIR_HUB, state, 0600, 0) < 0)
		log_warn("cannot keep the heartbeat reply in FLIP_STATE_DIR: %s", strerror(errno));
	json_decref(state);
}

/* heartbeat_kit_fingerprint - what identifies "this kit" for the mismatch marker */
static void heartbeat_kit_fingerprint(const struct config *cfg, char out[65])
{
	char keyhash[65], *text = NULL;

	digest_sha256_hex(cfg->api_key ? cfg->api_key : "", cfg->api_key ? strlen(cfg->api_key) : 0,
			  keyhash);
	if (asprintf(&text, "%s\n%s\n%s", cfg->hub_url ? cfg->hub_url : "", keyhash,
		     cfg->expected_trust_id ? cfg->expected_trust_id : "") < 0) {
		memset(out, '0', 64);
		out[64] = 0;
		return;
	}
	digest_sha256_hex(text, strlen(text), out);
	free(text);
}

/* heartbeat_blocked - 1 while a trust id mismatch was seen with this very kit */
int heartbeat_blocked(struct node *n, char *err, size_t errlen)
{
	int sfd = node_state_dirfd(n, NULL), blocked = 0;
	char *text, fp[65];
	size_t len;

	if (sfd < 0)
		return 0;
	if (durable_read(sfd, STATEDIR_MISMATCH, 1 << 16, &text, &len) == 0) {
		json_t *v = json_loadb(text, len, 0, NULL);
		free(text);
		heartbeat_kit_fingerprint(&n->cfg, fp);
		const char *kit = json_string_value(json_object_get(v, "kit"));
		if (kit && strcmp(kit, fp) == 0) {
			snprintf(err, errlen,
				 "the hub answered as trust %s, not EXPECTED_TRUST_ID %s, at %s; not "
				 "calling the hub again with this kit: install the right kit file, or "
				 "run flipctl doctor once the hub side is fixed",
				 json_string_value(json_object_get(v, "hub_trust_id")) ?: "?",
				 n->cfg.expected_trust_id ? n->cfg.expected_trust_id : "?",
				 json_string_value(json_object_get(v, "seen_at")) ?: "?");
			blocked = 1;
		} else {
			unlinkat(sfd, STATEDIR_MISMATCH, 0);	/* the kit changed: try again */
		}
		json_decref(v);
	}
	close(sfd);
	return blocked;
}

/* heartbeat_mark_mismatch - remember the mismatch (or forget it when identity is proven) */
static void heartbeat_mark_mismatch(struct node *n, int sfd, const char *hub_id)
{
	char fp[65], ts[32];
	time_t now = time(NULL);
	struct tm tm;

	if (sfd < 0)
		return;
	if (hub_id == NULL) {
		unlinkat(sfd, STATEDIR_MISMATCH, 0);
		return;
	}
	heartbeat_kit_fingerprint(&n->cfg, fp);
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_t *v = json_pack("{s:s,s:s,s:s}", "kit", fp, "hub_trust_id", hub_id, "seen_at", ts);
	if (v == NULL || durable_write_json(sfd, STATEDIR_MISMATCH, v, 0600) < 0)
		log_warn("cannot record the trust id mismatch: %s", strerror(errno));
	json_decref(v);
}

static int heartbeat_uuid_equal(const char *a, const char *b)
{
	char ca[37], cb[37];

	if (task_uuid_canonical(a, ca) == 0 && task_uuid_canonical(b, cb) == 0)
		return strcmp(ca, cb) == 0;
	return strcmp(a, b) == 0;
}

/* heartbeat_check_reply - identity and key fingerprint checks on a 200 reply */
static enum err_kind heartbeat_check_reply(struct node *n, const struct hub_reply *r,
					   int *wrong_trust, char *err, size_t errlen)
{
	json_t *reply = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, NULL);
	const char *id, *name, *fp;
	char prev[128] = "", ours[13];
	enum err_kind rc = ERR_OK;
	int fp_match = -1;
	int sfd = node_state_dirfd(n, NULL);

	if (!json_is_object(reply)) {
		snprintf(err, errlen, "hub heartbeat reply is not a JSON object");
		rc = ERR_TRANSIENT;
		goto out;
	}
	id = json_string_value(json_object_get(reply, "trust_id"));
	name = json_string_value(json_object_get(reply, "trust_name"));
	fp = json_string_value(json_object_get(reply, "aes_key_fingerprint"));
	/* the operator's tool (flipctl doctor) does not take the announcement from the
	 * programs' journal: deploy-on-prem.md runs it before the timers start */
	bool announces = n->prog == NULL || strcmp(n->prog, "flipctl") != 0;
	heartbeat_previous_trust(sfd, prev, sizeof(prev));
	if (id != NULL) {
		if (announces && strcmp(prev, id) != 0) {
			log_info("authenticated to hub as trust %s (%s)", name ? name : "?", id);
			snprintf(prev, sizeof(prev), "%s", id);
		}
		if (n->cfg.expected_trust_id && !heartbeat_uuid_equal(id, n->cfg.expected_trust_id)) {
			snprintf(err, errlen,
				 "the hub answered as trust %s (%s) but EXPECTED_TRUST_ID is %s: "
				 "this host has another trust's kit; fix the kit file, do not retry",
				 name ? name : "?", id, n->cfg.expected_trust_id);
			rc = ERR_AUTH;
			if (wrong_trust != NULL)
				*wrong_trust = 1;
			heartbeat_mark_mismatch(n, sfd, id);
		} else if (n->cfg.expected_trust_id) {
			heartbeat_mark_mismatch(n, sfd, NULL);	/* identity proven */
		}
	}
	if (fp != NULL) {
		envelope_fingerprint(n->cfg.aes_key, ours);
		fp_match = strcasecmp(fp, ours) == 0;
		if (!fp_match)
			log_error("AES key fingerprint mismatch: the hub holds %.12s, this node %s; "
				  "the kit file is stale: install the current kit's AES_KEY_BASE64",
				  fp, ours);
	}
	heartbeat_keep(sfd, reply, r, fp_match, prev);
out:
	if (sfd >= 0)
		close(sfd);
	json_decref(reply);
	return rc;
}

/* heartbeat_send - one heartbeat, with the 422 fallback */
enum err_kind heartbeat_send(struct node *n, struct hub *h, int with_snapshot, int *wrong_trust,
			     char *err, size_t errlen)
{
	struct hub_reply r;
	char *body = NULL, detail[320];
	enum err_kind rc;

	if (wrong_trust != NULL)
		*wrong_trust = 0;

	if (with_snapshot) {
		json_t *snap = heartbeat_snapshot(n);
		body = snap ? json_dumps(snap, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
		json_decref(snap);
	}
	hub_call(h, "POST", "/trust/heartbeat", body, body ? strlen(body) : 0, &r);
	if (r.status == 422 && body != NULL) {
		log_warn("the hub refused the health snapshot (422: %s); sent a bodyless heartbeat",
			 hub_detail(&r, detail, sizeof(detail)));
		hub_reply_free(&r);
		hub_call(h, "POST", "/trust/heartbeat", NULL, 0, &r);
	}
	free(body);
	hub_detail(&r, detail, sizeof(detail));
	if (r.status == 200) {
		rc = heartbeat_check_reply(n, &r, wrong_trust, err, errlen);
	} else if (r.status == 401) {
		snprintf(err, errlen,
			 "the hub refused the API key (401: %s); check TRUST_API_KEY and "
			 "TRUST_API_KEY_HEADER, and that the hub holds `flipctl key-hash`",
			 detail);
		rc = ERR_AUTH;
	} else {
		if (r.status)
			snprintf(err, errlen, "heartbeat failed: HTTP %ld: %s", r.status, detail);
		else
			snprintf(err, errlen, "heartbeat failed: %s", detail);
		rc = ERR_TRANSIENT;
	}
	hub_reply_free(&r);
	return rc;
}
