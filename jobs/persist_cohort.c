/* SPDX-License-Identifier: Apache-2.0 */
/*
 * persist_cohort - freeze the approved cohort's membership, once per project.
 *
 * docs/design/data-access.md, "Snapshots: membership, frozen once". The hub sends
 * persist_cohort at approval and again later as a routine re-check. When the
 * project already has a snapshot the node answers with its facts and runs
 * nothing: the approved cohort never changes under the researcher. Otherwise it
 * runs the approved SQL under the guard, the governance policy (action
 * cohort.statistics) and the threshold, and freezes who is in the cohort: the
 * distinct person ids and accession ids, written by cohort_live_freeze() from a
 * cursor (memory flat), plus meta.json and the query of record. No row value is
 * written. Row-level reads re-run the query of record against live OMOP.
 *
 * A project still holding a format 1 snapshot (row values, from flip-node before
 * membership snapshots) is converted here when the hub's query is the one it was
 * frozen from (snapshot_migrate); a different query is refused with what to do.
 */
#include "jobs/jobs.h"

#include "jobs/cohort_live.h"
#include "jobs/cohort_stats.h"
#include "lib/digest.h"
#include "lib/log.h"
#include "lib/omop.h"
#include "lib/policy.h"
#include "lib/snapshot.h"
#include "lib/statedir.h"
#include "jobs/sqlguard.h"
#include "lib/task.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PERSIST_TOO_SMALL "Cohort is too small for row-level data to be released."

/* persist_answer_facts - success with the facts of the snapshot in meta */
static void persist_answer_facts(struct job_answer *a, const char *project, const json_t *meta)
{
	json_t *facts = snapshot_facts(meta);

	if (facts == NULL) {
		log_error("persist_cohort for project %s: the snapshot's meta.json lacks its facts",
			  project);
		jobs_answer_fail(a, 500, "Trust-side storage error");
		return;
	}
	a->outcome = JOB_ANSWER;
	a->success = 1;
	a->result_text = json_dumps(facts, JSON_ENSURE_ASCII);
	a->detail = json_pack("{s:s,s:O,s:O,s:b}", "project_id", project, "row_count",
			      json_object_get(facts, "row_count"), "subject_count",
			      json_object_get(facts, "subject_count"), "already_frozen", 1);
	json_decref(facts);
}

/* persist_existing - 1 answered from an existing snapshot, 0 none, -1 answered (failure) */
static int persist_existing(struct job_ctx *ctx, const char *project, const char *sql,
			    struct job_answer *a)
{
	const struct config *cfg = &ctx->node->cfg;
	char err[512];
	struct snapshot *s = snapshot_open(cfg->state_dir, project, err, sizeof(err));

	if (s == NULL && errno == EPROTO) {
		if (snapshot_migrate(cfg->state_dir, project, sql, cfg->snapshot_max_bytes, err,
				     sizeof(err)) < 0) {
			int stale = errno == ESTALE;
			log_error("persist_cohort for project %s: cannot convert its format 1 snapshot: "
				  "%s%s", project, err, stale ? "; delete FLIP_STATE_DIR/" STATEDIR_COHORTS "/<project> "
				  "to freeze the approved query anew" : "");
			jobs_answer_fail(a, stale ? 409 : 500, stale
					 ? "The project's snapshot predates membership snapshots and "
					   "was frozen from another query; the trust must delete it."
					 : "Trust-side storage error");
			return -1;
		}
		log_info("persist_cohort for project %s: format 1 snapshot converted to membership; "
			 "its row values are gone", project);
		s = snapshot_open(cfg->state_dir, project, err, sizeof(err));
	}
	if (s == NULL) {
		if (errno == ENOENT)
			return 0;
		log_error("persist_cohort for project %s: snapshot unreadable: %s", project, err);
		jobs_answer_fail(a, 500, "Trust-side storage error");
		return -1;
	}
	log_info("persist_cohort for project %s: already frozen (query %.12s); answered with its "
		 "facts, nothing re-run", project,
		 json_string_value(json_object_get(snapshot_meta(s), "query_hash")));
	persist_answer_facts(a, project, snapshot_meta(s));
	snapshot_close(s);
	return 1;
}

static void persist_cohort_run(struct job_ctx *ctx, struct job_answer *a)
{
	const struct config *cfg = &ctx->node->cfg;
	const char *sql = json_string_value(json_object_get(ctx->payload, "query"));
	const char *pid = json_string_value(json_object_get(ctx->payload, "project_id"));
	const char *qid = json_string_value(json_object_get(ctx->payload, "query_id"));
	struct policy *pol = NULL;
	struct policy_decision d;
	struct cohort_columns c = {0};
	struct cohort_frozen fz = {0};
	struct snapshot_writer *w = NULL;
	struct omop db = {0};
	struct omop_error e = {0};
	char project[37], hash[65], err[512], created[32];
	char *checked = NULL, *subject_sql = NULL;
	int failed, rc;
	long long subjects = -1;
	json_t *meta = NULL, *cols = NULL;
	PGresult *res;

	if (task_uuid_canonical(pid, project) < 0) {
		jobs_answer_fail(a, 400, "project_id is not a UUID");
		return;
	}
	if (cfg->state_dir == NULL || cfg->state_dir[0] == 0) {
		jobs_answer_fail(a, 503, "Cohort snapshot store is not configured");
		return;
	}
	if (persist_existing(ctx, project, sql, a) != 0)
		return;
	digest_query(sql, hash);
	pol = jobs_policy(ctx, a, &failed);
	if (failed)
		return;
	policy_decide(pol, POLICY_STATISTICS, project, cfg->cohort_threshold, &d);
	if (!d.permit) {
		log_info("persist_cohort for project %s denied by the governance policy (rule %s); "
			 "nothing frozen", project, d.rule[0] ? d.rule : "(none matched)");
		jobs_answer_fail(a, 403, PERSIST_TOO_SMALL);
		goto out;
	}
	checked = sqlguard_check(sql, err, sizeof(err));
	if (checked == NULL) {
		jobs_answer_fail(a, 400, "%s", err);
		goto out;
	}
	rc = omop_open(&db, cfg, &e);
	if (rc == ERR_OK)
		rc = cohort_columns(&db, checked, &c, &e);
	if (rc == ERR_OK && c.person < 0 && c.accession < 0) {
		jobs_answer_fail(a, 400, "The cohort has neither a person_id nor an accession_id "
			       "column; nothing identifies its members.");
		goto out;
	}
	/* only bare OMOP ids count as people (docs/design/data-access.md "Subjects"): a
	 * person_id column that is not one makes the cohort uncountable whatever else it
	 * has, exactly as the statistics count it; an uncountable cohort is never frozen */
	if (rc == ERR_OK && (c.person >= 0 ? !c.person_countable : !c.accession_countable)) {
		log_info("persist_cohort for project %s: the cohort's ids are not bare OMOP "
			 "references, its subjects cannot be counted; nothing frozen", project);
		jobs_answer_fail(a, 403, PERSIST_TOO_SMALL);
		goto out;
	}
	if (rc == ERR_OK) {
		w = snapshot_create(cfg->state_dir, project, cfg->snapshot_max_bytes, err, sizeof(err));
		if (w == NULL) {
			log_error("persist_cohort for project %s: %s", project, err);
			a->outcome = JOB_TRANSIENT;	/* local disk: retried, then reported */
			snprintf(a->service, sizeof(a->service), "disk");
			goto out;
		}
		rc = cohort_live_freeze(&db, checked, &c, w, &fz, &e);
		if (rc == ERR_FINAL && e.stopped) {
			int big = errno == EFBIG;
			if (!big)
				log_error("persist_cohort for project %s: cannot write the membership: %s",
					  project, strerror(errno));
			jobs_answer_fail(a, big ? 413 : 500, big
					 ? "Cohort snapshot exceeds SNAPSHOT_MAX_BYTES"
					 : "snapshot_storage_error");
			goto out;
		}
	}
	subjects = fz.persons;
	if (rc == ERR_OK && c.person < 0) {
		/* accession ids only: the persons behind them, as the statistics count them */
		if ((subject_sql = cohort_subject_sql(checked, &c)) == NULL) {
			jobs_answer_fail(a, 500, "internal_error");
			goto out;
		}
		if ((rc = omop_query(&db, subject_sql, 0, NULL, &res, &e)) == ERR_OK) {
			subjects = PQgetisnull(res, 0, 0) ? -1 : strtoll(PQgetvalue(res, 0, 0), NULL, 10);
			PQclear(res);
		}
	}
	if (jobs_answer_omop(a, rc, &e) != ERR_OK)
		goto out;
	omop_close(&db);
	if (subjects < 0 || subjects < d.floor) {
		log_info("persist_cohort for project %s: cohort below the threshold of %ld subjects; "
			 "nothing frozen", project, d.floor);
		jobs_answer_fail(a, 403, PERSIST_TOO_SMALL);
		goto out;
	}
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	cols = json_array();
	for (int i = 0; cols && i < c.n; i++)
		if (c.keep[i])
			json_array_append_new(cols, json_string(c.names[i]));
	meta = json_pack("{s:s,s:s?,s:I,s:I,s:b,s:O,s:s,s:s,s:s}", "project_id", project,
			 "query_id", qid, "row_count", (json_int_t)fz.rows, "subject_count",
			 (json_int_t)subjects, "has_accessions", c.accession >= 0, "columns", cols,
			 "query_hash", hash, "snapshot_at", created, "person_order", fz.person_order);
	if (meta == NULL || snapshot_commit(w, meta, sql, err, sizeof(err)) < 0) {
		int saved = errno;
		w = NULL;	/* commit frees the writer */
		if (saved == EEXIST && persist_existing(ctx, project, sql, a) != 0)
			goto out;	/* frozen meanwhile by another run: that one stands */
		log_error("persist_cohort for project %s: %s", project, err);
		if (saved == EFBIG) {
			jobs_answer_fail(a, 413, "Cohort snapshot exceeds SNAPSHOT_MAX_BYTES");
			goto out;
		}
		a->outcome = JOB_TRANSIENT;
		snprintf(a->service, sizeof(a->service), "disk");
		goto out;
	}
	w = NULL;
	persist_answer_facts(a, project, meta);
	json_object_set_new(a->detail, "already_frozen", json_false());
	json_object_set_new(a->detail, "query_fingerprint", json_stringn(hash, 12));
	log_info("persist_cohort for project %s: membership of %lld persons and %lld accessions "
		 "frozen (%lld rows)", project, fz.persons < 0 ? 0 : fz.persons, fz.accessions, fz.rows);
out:
	omop_close(&db);
	snapshot_abort(w);
	cohort_columns_free(&c);
	json_decref(meta);
	json_decref(cols);
	free(checked);
	free(subject_sql);
	policy_free(pol);
}

const struct jobs_entry jobs_persist_cohort = {"persist_cohort", persist_cohort_run};
