/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cohort - /cohort/dataframe and /cohort/accession-ids (see serve.h for the contract).
 *
 * A cohort answer is the query of record re-run against live OMOP and kept to the
 * frozen membership (cohort_live.h); the status depends on the live subject count,
 * so the whole pass runs before the answer is queued, the kept values going to the
 * stream's temporary files (stream.h), which a producer thread then streams out.
 */
#include "bin/flip-serve/serve.h"
#include "bin/flip-serve/http.h"
#include "bin/flip-serve/stream.h"

#include "jobs/cohort_live.h"
#include "jobs/sqlguard.h"

#include "lib/err.h"
#include "lib/digest.h"
#include "lib/log.h"
#include "lib/statedir.h"
#include "lib/omop.h"
#include "lib/policy.h"
#include "lib/snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <microhttpd.h>

#define SERVE_CONNECT_WAIT 30.0	/* seconds to wait for a free OMOP connection */

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
				  "or delete FLIP_STATE_DIR/" STATEDIR_COHORTS "/<project> to freeze anew",
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
		log_error("snapshot of project %s in %s/" STATEDIR_COHORTS ": %s", r->project,
			  cfg->state_dir, err);
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
enum MHD_Result serve_cohort(struct serve_conn *c, struct MHD_Connection *conn,
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
