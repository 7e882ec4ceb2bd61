/* SPDX-License-Identifier: Apache-2.0 */
/*
 * images - /download/images/{net_id} and /upload/images/{net_id}: an accession's
 * images handed to the FL training code and its results taken back into the store
 * (lib/handoff.h), a download under the decision /cohort/accession-ids makes (see
 * serve.h for the contract; docs/design/imaging.md).
 */
#include "bin/flip-serve/http.h"

#include "lib/digest.h"
#include "lib/handoff.h"
#include "lib/ident.h"
#include "lib/log.h"
#include "lib/statedir.h"
#include "lib/policy.h"
#include "lib/snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <microhttpd.h>

#define SERVE_BAD_DOWNLOAD "Invalid download request"

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
		log_error("snapshot of project %s in %s/" STATEDIR_COHORTS ": %s", r->project,
			  cfg->state_dir, err);
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
enum MHD_Result serve_images(struct serve_conn *c, struct MHD_Connection *conn,
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
